"""``run_control`` / ``run_controls``: tabular control learners, every rule x MDP x step size
x seed as one batch (``td_jax.control.program``).

Two modes (SCIENCE.md section 8):
- ``synchronous``: a generative model; every (s, a) pair draws its own transition each
  step and all pairs update at once from the old table (Jacobi), the setting of the
  sample-complexity theory of Q-learning (Li et al. 2021, arXiv 2102.06548). The draws
  depend only on the seed and the step, so every rule and step size sees the same samples
  (common random numbers).
- ``online``: each learner acts epsilon-greedily on its own means and learns from the one
  transition it causes; environment and exploration randomness come from per-seed keys.

Metrics at checkpoints, exact: ``q_error = max_(s,a) |Q(s, a) - Q*(s, a)|``, ``q_sq_error``
(its mean square over pairs) and ``value_gap = max_s V*(s) - V^pi(s)`` for the learner's
greedy policy pi, evaluated by a linear solve inside the program.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from td_jax import strict
from td_jax.control import program as program_lib
from td_jax.envs.mdp import MDP
from td_jax.protocols import MDPLike
from td_jax.runner import compile_cache
from td_jax.runner.inputs import MAX_STEPS, _per_env_step_sizes, structure
from td_jax.runner.metrics import log_checkpoints
from td_jax.runner.program import shared_leaves
from td_jax.runner.result import read_npz, write_npz
from td_jax.types import UpdateRule

# One control program executes at a time per process (compilation still overlaps): two
# run concurrently on XLA's CPU client (the control suite's two workers) deadlocked, both
# waiting in block_until_ready with no thread busy. Each execution uses every core anyway.
_EXECUTION_LOCK = threading.Lock()
METRICS = ("q_error", "q_sq_error", "value_gap")


class ControlResult(NamedTuple):
    """What ``run_control`` returns (numpy arrays; learners indexed [step size, seed]).

    Attributes:
      checkpoints: int64[C] update counts at which metrics were taken.
      step_sizes: f64[A_steps].
      q_error: f32[A_steps, seeds, C] sup-norm error of Q against Q*.
      value_gap: f32[A_steps, seeds, C] max_s V* - V^pi of the greedy policy (>= 0; 0 for
        an optimal policy).
      q_final: f32[A_steps, seeds, S, A] the final mean estimates.
      info: mode, epsilon, compile and run seconds, learner-updates.
      q_sq_error: f32[A_steps, seeds, C] mean over pairs of (Q - Q*)^2.
    """

    checkpoints: np.ndarray
    step_sizes: np.ndarray
    q_error: np.ndarray
    value_gap: np.ndarray
    q_final: np.ndarray
    info: dict[str, Any]
    q_sq_error: np.ndarray | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """A tidy frame: one row per (step_size, seed, step), columns q_error and value_gap."""
        a, seed, c = np.indices(self.q_error.shape).reshape(3, -1)
        return pd.DataFrame(
            {
                "step_size": self.step_sizes[a],
                "seed": seed,
                "step": self.checkpoints[c],
                "q_error": self.q_error.reshape(-1),
                "value_gap": self.value_gap.reshape(-1),
            }
        )


class ControlRuns(NamedTuple):
    """What ``run_controls`` returns: every metric as f32[R, E, A_steps, seeds, C].

    Attributes:
      rules, mdps: the labels, in order (axes R and E).
      checkpoints: int64[C]; step_sizes, decay: f64[A_steps] (decay inf: constant), or
        f64[E, A_steps] where the MDPs ran their own step sizes.
      seeds: int64[seeds], the seed indices.
      metrics: ``{"q_error", "q_sq_error", "value_gap"}`` -> f32[R, E, A_steps, seeds, C].
      q_final: per MDP label, f32[R, A_steps, seeds, S, A] the final mean estimates.
      info: mode, epsilon, compile and run seconds per program, learner-updates.
    """

    rules: tuple[str, ...]
    mdps: tuple[str, ...]
    checkpoints: np.ndarray
    step_sizes: np.ndarray
    decay: np.ndarray
    seeds: np.ndarray
    metrics: dict[str, np.ndarray]
    q_final: dict[str, np.ndarray]
    info: dict[str, Any]

    def save(self, path: str | os.PathLike) -> Path:
        """Writes ``path`` (a ``.npz`` archive) atomically; ``load`` reads it back."""
        arrays = {
            "checkpoints": self.checkpoints,
            "step_sizes": self.step_sizes,
            "decay": self.decay,
            "seeds": self.seeds,
            **{f"metric/{k}": v for k, v in self.metrics.items()},
            **{f"q_final/{k}": v for k, v in self.q_final.items()},
        }
        meta = {"rules": list(self.rules), "mdps": list(self.mdps), "info": self.info}
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
        return write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ControlRuns:
        """Reads a file ``save`` wrote (ValueError naming the file if it is not one)."""

        def read(data) -> ControlRuns:
            meta = json.loads(bytes(data["meta"]).decode())
            return cls(
                rules=tuple(meta["rules"]),
                mdps=tuple(meta["mdps"]),
                checkpoints=data["checkpoints"],
                step_sizes=data["step_sizes"],
                decay=data["decay"],
                seeds=data["seeds"],
                metrics={k[7:]: data[k] for k in data.files if k.startswith("metric/")},
                q_final={k[8:]: data[k] for k in data.files if k.startswith("q_final/")},
                info=meta["info"],
            )

        return read_npz(path, "ControlRuns", read)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (rule, mdp, step size, seed, step) with every metric."""
        shape = self.metrics["q_error"].shape
        r, e, a, n, c = np.indices(shape).reshape(5, -1)
        return pd.DataFrame(
            {
                "rule": np.asarray(self.rules)[r],
                "mdp": np.asarray(self.mdps)[e],
                "step_size": self.step_sizes[e, a]
                if self.step_sizes.ndim == 2
                else self.step_sizes[a],
                "decay": self.decay[e, a] if self.decay.ndim == 2 else self.decay[a],
                "seed": self.seeds[n],
                "step": self.checkpoints[c],
                **{k: v.reshape(-1) for k, v in self.metrics.items()},
            }
        )


def run_control(
    rule: str | UpdateRule,
    mdp: MDP,
    step_sizes: Sequence[float] | np.ndarray,
    num_seeds: int,
    num_steps: int,
    *,
    mode: str = "synchronous",
    epsilon: float = 0.1,
    checkpoints: Sequence[int] | None = None,
    num_checkpoints: int = 20,
    seed: int = 0,
    decay: Sequence[float] | None = None,
) -> ControlResult:
    """Runs ``rule`` as a control learner (``td_jax.control.lift``) on ``mdp``.

    One rule and one MDP of ``run_controls``; arguments as there.
    """
    runs = run_controls(
        {"rule": rule}, {"mdp": mdp}, step_sizes, num_seeds, num_steps, mode=mode,
        epsilon=epsilon, checkpoints=checkpoints, num_checkpoints=num_checkpoints, seed=seed,
        decay=decay,
    )  # fmt: skip
    m = {k: v[0, 0] for k, v in runs.metrics.items()}
    return ControlResult(
        checkpoints=runs.checkpoints,
        step_sizes=runs.step_sizes,
        q_error=m["q_error"],
        value_gap=m["value_gap"],
        q_final=runs.q_final["mdp"][0],
        info=runs.info,
        q_sq_error=m["q_sq_error"],
    )


def run_controls(
    rules: Mapping[str, str | UpdateRule] | Sequence[str],
    mdps: Mapping[str, MDP],
    step_sizes: Sequence[float] | np.ndarray,
    num_seeds: int | Sequence[int],
    num_steps: int,
    *,
    mode: str = "synchronous",
    epsilon: float = 0.1,
    checkpoints: Sequence[int] | None = None,
    num_checkpoints: int = 20,
    seed: int = 0,
    decay: Sequence[float] | None = None,
) -> ControlRuns:
    """Every rule x MDP x step size x seed as control learners, one program per rule and
    MDP shape (MDPs of one shape are a batched axis).

    Args:
      rules: ``{label: name or tabular UpdateRule}``, or registry names.
      mdps: ``{label: MDP}`` (``td_jax.envs.make_mdp`` / ``tabular_mdp``).
      step_sizes: step sizes (finite, > 0, in float32's normal range, distinct with their
        decay), a traced batch axis: one sweep for every MDP, or a 2-D sequence with one
        row per MDP (in ``mdps``' order, rows of one length), each MDP its own sweep.
      num_seeds: a count (seeds 0..n-1) or explicit seed indices; seed i's key is
        ``fold_in(key(seed), i)``, the same for every rule, step size and MDP.
      num_steps: updates per learner (synchronous: each updates every pair once).
      mode: ``synchronous`` or ``online``. epsilon: online exploration rate, in [0, 1].
      checkpoints: update counts in [1, num_steps] ending at num_steps (default
        ``num_checkpoints`` log-spaced).
      decay: per step size (of ``step_sizes``' shape), d of the harmonic schedule
        ``alpha / (1 + alpha t / d)``
        (inf or None: constant).
    """
    strict.check_seed("run_control", "seed", seed)
    rule_list, mdp_list, alphas64, decay64, seeds, checks = _validate(
        rules, mdps, step_sizes, num_seeds, num_steps, mode, epsilon, checkpoints,
        num_checkpoints, decay,
    )  # fmt: skip
    compile_cache.enable_persistent_cache()
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
        jnp.asarray(seeds, jnp.uint32)
    )
    with np.errstate(divide="ignore"):
        inv_decay = jnp.asarray(1.0 / decay64, jnp.float32)  # [E, A]; 0: constant
    alphas = jnp.asarray(alphas64, jnp.float32)
    shape = (len(rule_list), len(mdp_list), alphas.shape[1], seeds.size, checks.size)
    metrics = {k: np.full(shape, np.nan, np.float32) for k in METRICS}
    finals = {label: None for label, _ in mdp_list}
    compile_s, run_s = {}, 0.0
    for r, (rule_label, rule) in enumerate(rule_list):
        for members in _groups(mdp_list):
            group = [mdp_list[i][1] for i in members]
            stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *group)
            env_index = jnp.repeat(jnp.arange(len(members), dtype=jnp.int32), seeds.size)
            stream_keys = jnp.tile(keys, len(members))
            rows = jnp.asarray(members)
            # The streams stay on one device: sharding them (as td_jax.run does) changed
            # QTD's float rounding on 4 virtual CPU devices, and a control result must not
            # depend on the device count (tests/test_runner.py runs it on 1 and 4).
            args = (stacked, program_lib.truth_of(group), env_index, stream_keys, alphas[rows],
                    inv_decay[rows], jnp.float32(epsilon))  # fmt: skip
            t0 = time.perf_counter()
            compiled, _ = _compiled(rule, mode, checks, shared_leaves(stacked), args)
            # Compile time alone: the wait for the execution lock below is neither.
            compile_s[f"{rule_label}/{mdp_list[members[0]][0]}"] = time.perf_counter() - t0
            with _EXECUTION_LOCK:
                t1 = time.perf_counter()
                q_err, q_sq, gap, q = jax.block_until_ready(compiled(*args))
            run_s += time.perf_counter() - t1
            for k, x in zip(METRICS, (q_err, q_sq, gap), strict=True):
                x = np.asarray(x).reshape(len(members), seeds.size, *x.shape[1:])
                metrics[k][r, members] = x.swapaxes(1, 2)  # [E, seeds, A, C] -> [E, A, seeds, C]
            q = np.asarray(q).reshape(len(members), seeds.size, *q.shape[1:]).swapaxes(1, 2)
            for j, i in enumerate(members):
                label = mdp_list[i][0]
                if finals[label] is None:
                    finals[label] = np.zeros((len(rule_list), *q.shape[1:]), np.float32)
                finals[label][r] = q[j]
    pairs = [m.num_states * m.num_actions if mode == "synchronous" else 1 for _, m in mdp_list]
    return ControlRuns(
        rules=tuple(label for label, _ in rule_list),
        mdps=tuple(label for label, _ in mdp_list),
        checkpoints=checks,
        step_sizes=_shared_row(alphas64),
        decay=_shared_row(decay64),
        seeds=seeds,
        metrics=metrics,
        q_final=finals,
        info={
            "mode": mode,
            "epsilon": float(epsilon),
            "compile_seconds": sum(compile_s.values()),
            "compile_seconds_by_program": compile_s,
            "run_seconds": run_s,
            "learner_updates": int(
                len(rule_list) * alphas.shape[1] * seeds.size * num_steps * sum(pairs)
            ),  # fmt: skip
        },
    )


def _compiled(rule: UpdateRule, mode: str, checks: np.ndarray, shared: tuple,
              args: tuple) -> tuple[Any, bool]:  # fmt: skip
    """The compiled control program for these arguments, from the runner's in-process
    cache (``runner.compile_cache``) where an identical one was compiled before, else
    traced and compiled now (and kept; XLA's persistent cache serves other processes)."""

    def build():
        program = program_lib.make_program(rule, mode, checks, shared)
        return jax.jit(program).lower(*args).compile()

    config = ("control", rule, mode, tuple(int(c) for c in checks))
    key = compile_cache.program_key(config, shared, args)
    try:
        hash(key)
    except TypeError:  # an unhashable static part of a plug-in rule: no reuse
        return build(), False
    return compile_cache.get_compiled(key, build)


def _groups(mdp_list: list[tuple[str, MDP]]) -> list[list[int]]:
    """Indices of MDPs of one structure (tree, static fields, leaf shapes): one program each."""
    groups: dict[Any, list[int]] = {}
    for i, (_, mdp) in enumerate(mdp_list):
        groups.setdefault(structure(mdp), []).append(i)
    return list(groups.values())


def _shared_row(x: np.ndarray) -> np.ndarray:
    """f64[A] where every MDP ran the same sweep, else f64[E, A] (one row per MDP)."""
    x = np.asarray(x, np.float64)
    return x[0].copy() if np.all(x == x[:1]) else x.copy()


def _validate(rules, mdps, step_sizes, num_seeds, num_steps, mode, epsilon, checkpoints,
              num_checkpoints, decay):  # fmt: skip
    from td_jax import rules as rules_lib

    if isinstance(mdps, MDP):
        mdps = {mdps.name: mdps}
    if not isinstance(mdps, Mapping) or not mdps:
        raise ValueError(f"run_control: mdps must be a non-empty {{label: MDP}}, got {mdps!r}")
    for label, mdp in mdps.items():
        strict.check_implements(f"run_control: mdp {label!r}", mdp, MDPLike)
        if not isinstance(mdp, MDP):  # the learners' program reads the tables themselves
            raise ValueError(
                f"run_control: mdp {label!r} must be a td_jax.envs.MDP (make one with "
                f"td_jax.envs.tabular_mdp), got {type(mdp).__name__}"
            )
    strict.check_mode("run_control", mode)
    x = strict.real(epsilon)  # a number, not a bool or a string
    if x is None or not 0.0 <= x <= 1.0:
        raise ValueError(f"run_control: epsilon must be in [0, 1], got {epsilon!r}")
    # td_jax.run's check: an integer (not a bool, not a float), int32 step counts.
    num_steps = strict.check_int("run_control", "num_steps", num_steps, 1, MAX_STEPS,
                                 " (int32 step counts)")  # fmt: skip
    # Seed indices are folded into keys as uint32 (as td_jax.run's): [0, 2**32) for both.
    count = strict.integer(num_seeds)
    if count is not None:
        strict.check_int("run_control", "num_seeds", count, 1, strict.SEED_LIMIT,
                         " (keys fold seed indices in as uint32)")  # fmt: skip
        seeds = None  # made once the memory check below has passed
    else:
        seeds = strict.integers(num_seeds)
        bad = seeds is None or seeds.size == 0 or np.any((seeds < 0) | (seeds >= strict.SEED_LIMIT))
        if bad or np.unique(seeds).size != seeds.size:
            raise ValueError(
                f"run_control: num_seeds must be a count or distinct seed indices in [0, 2**32) "
                f"(keys fold them in as uint32), got {num_seeds!r}"
            )
    try:  # the runner's checks: finite, > 0, float32's normal range, distinct (with decay)
        alphas, d = _per_env_step_sizes(step_sizes, decay, len(mdps))
    except ValueError as err:
        raise ValueError(f"run_control: {err}") from None
    if alphas.ndim == 1:  # one sweep for every MDP
        alphas, d = np.broadcast_to(alphas, (len(mdps), alphas.size)), np.broadcast_to(
            d, (len(mdps), d.size))  # fmt: skip
    if checkpoints is None:
        num_checkpoints = strict.check_int("run_control", "num_checkpoints", num_checkpoints, 1)
        checks = log_checkpoints(num_steps, num_checkpoints)
    else:
        checks = np.asarray(checkpoints)
        if checks.ndim != 1 or checks.size == 0 or not np.issubdtype(checks.dtype, np.integer):
            raise ValueError(f"run_control: checkpoints must be integers, got {checkpoints!r}")
        if np.any(np.diff(checks) <= 0) or checks[0] < 1 or checks[-1] != num_steps:
            raise ValueError(
                f"run_control: checkpoints must increase within [1, {num_steps}] and end at "
                f"num_steps = {num_steps}, got {checks}"
            )
    if isinstance(rules, str | UpdateRule):
        rules = {rules if isinstance(rules, str) else "rule": rules}
    elif not isinstance(rules, Mapping):
        rules = {name: name for name in rules}
    rule_list = []
    for label, rule in rules.items():
        rule_fn = rules_lib.make(rule) if isinstance(rule, str) else rule
        if not isinstance(rule_fn, UpdateRule):
            raise ValueError(f"run_control: rule must be a name or an UpdateRule, got {rule!r}")
        rule_list.append((str(label), rule_fn))
    if not rule_list:
        raise ValueError("run_control: give at least one rule")
    # The metrics ([R, E, A, N, C] float32, one array each) and the final tables ([R, A, N,
    # S, actions] float32 per MDP) are allocated whole: refuse what cannot fit, in one line.
    n_seeds = count if seeds is None else seeds.size
    learners = len(rule_list) * alphas.shape[-1] * n_seeds
    pairs = sum(m.num_states * m.num_actions for m in mdps.values())
    nbytes = 4.0 * learners * (len(METRICS) * len(mdps) * checks.size + pairs)
    strict.check_memory(
        "run_control", f"{len(rule_list)} rule(s) x {len(mdps)} MDP(s) x {alphas.shape[-1]} "
        f"step size(s) x {n_seeds:,} seed(s) (their metrics and final tables)", nbytes,
    )  # fmt: skip
    if seeds is None:
        seeds = np.arange(count, dtype=np.int64)
    return rule_list, list(mdps.items()), alphas, d, seeds, checks.astype(np.int64)
