"""Input handling of ``td_jax.run``: names, counts and whether a rule can take an env.

Everything here runs before anything compiles, so bad input fails fast with one message
naming the offending value (``jax.eval_shape`` traces a rule without running it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from td_jax import strict
from td_jax.protocols import MRPLike
from td_jax.rules import make as make_rule
from td_jax.rules.tabular import TabularState
from td_jax.runner.metrics import log_checkpoints
from td_jax.types import Transition, UpdateRule

MAX_STEPS = 2**31 - 1  # the compiled loop counts updates (and checkpoints) in int32
# Stream keys fold in the base seed and the seed indices as uint32 (control's the same).
SEED_LIMIT = strict.SEED_LIMIT
SEED_WHY = " (keys fold it in as uint32)"
F32_TINY = strict.F32_TINY  # the smallest normal float32


def named(items: Any, kind: str, make=None, single=None) -> list[tuple[str, Any]]:
    """Normalises a mapping or a sequence of items / names / (name, item) pairs; an item on
    its own (``single(items)``: an UpdateRule or an MRP, which may be tuples) is one item."""
    if items is None or isinstance(items, set | frozenset):
        raise ValueError(
            f"{kind}s must be a mapping {{name: {kind}}}, a list or one {kind}, got {items!r}"
        )
    if isinstance(items, Mapping):
        pairs = list(items.items())
        bad = [k for k, _ in pairs if not isinstance(k, str) or not k]
        if bad:
            raise ValueError(f"{kind} names must be non-empty strings, got {bad[0]!r}")
    elif isinstance(items, str) or not isinstance(items, Sequence) or single(items):
        pairs = [items]
    else:
        pairs = list(items)
    out = [_named_item(item, i, kind, make) for i, item in enumerate(pairs)]
    if not out:
        raise ValueError(f"run needs at least one {kind}, got an empty {kind} list")
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"{kind} names must be unique, got duplicates {dupes} (name them with a mapping "
            f"{{name: {kind}}})"
        )
    return out


def _named_item(item: Any, i: int, kind: str, make) -> tuple[str, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        name, obj = item
    elif isinstance(item, str):
        name, obj = item, item
    else:
        name, obj = getattr(item, "name", f"{kind}{i}"), item
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} names must be non-empty strings, got {name!r}")
    if isinstance(obj, str):
        if make is None:
            raise ValueError(
                f"{kind} {name!r} must be an object, got the string {obj!r} (build it with "
                f"td_jax.{kind}s.make)"
            )
        obj = make(obj)
    return name, obj


# Pairs already traced in this process: (rule, env structure, mode) -> the check's result.
# Tracing costs ~20 ms a pair, a fifth of a small run's wall time on repeated calls.
_CHECKED: dict[Any, tuple[Any, int]] = {}
_MAX_CHECKED = 1024


def structure(tree: Any) -> tuple:
    """A pytree's structure as a hashable key: its tree (static fields included) and each
    leaf's shape and dtype as JAX computes in it (float64 is float32 unless x64 is on)."""
    leaves, treedef = jax.tree.flatten(tree)
    dtypes = (x.dtype if hasattr(x, "dtype") else np.result_type(x) for x in leaves)
    canonical = map(jax.dtypes.canonicalize_dtype, dtypes)
    return treedef, tuple(zip(map(np.shape, leaves), canonical, strict=True))


def check_rule_takes_env(rule_name: str, rule: UpdateRule, env_name: str, env: Any, mode: str):
    """Traces (never compiles) init/update/values/distribution on the env's transitions.

    A pair already checked in this process (the same rule object, an env of the same
    structure: tree, static fields, leaf shapes and dtypes, and the same mode) is not
    traced again: what it checks depends on those alone.
    """
    try:
        memo = (rule, structure(env), mode)
        hash(memo)
    except TypeError:  # an unhashable rule or static field: check every time
        memo = None
    if memo is not None and memo in _CHECKED:
        return _CHECKED[memo]
    out = _check_rule_takes_env(rule_name, rule, env_name, env, mode)
    if memo is not None:
        if len(_CHECKED) >= _MAX_CHECKED:
            _CHECKED.clear()
        _CHECKED[memo] = out
    return out


def _check_rule_takes_env(rule_name: str, rule: UpdateRule, env_name: str, env: Any, mode: str):
    num_states = env.num_states
    key = jax.random.key(0)
    try:
        state = jax.eval_shape(lambda k: rule.init(k, num_states), key)
        transition = jax.eval_shape(env.step, key, jnp.int32(0))
        new_state = jax.eval_shape(rule.update, state, transition, jnp.float32(0.1), key)
        values = jax.eval_shape(rule.values, state)
        locs, probs = jax.eval_shape(rule.distribution, state)
    except Exception as err:  # noqa: BLE001 - reported with context, then re-raised
        raise ValueError(
            f"rule {rule_name!r} cannot take the transitions of env {env_name!r}: "
            f"{type(err).__name__}: {err}"
        ) from err
    if jax.tree.structure(new_state) != jax.tree.structure(state) or any(
        a.shape != b.shape or a.dtype != b.dtype
        for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state), strict=True)
    ):
        raise ValueError(
            f"rule {rule_name!r}: update changed the state's structure, shapes "
            f"or dtypes on env {env_name!r}"
        )
    if values.shape != (num_states,):
        raise ValueError(
            f"rule {rule_name!r}: values() must return f32[{num_states}] on env "
            f"{env_name!r}, got shape {values.shape}"
        )
    if locs.shape != probs.shape or locs.ndim != 2 or locs.shape[0] != num_states:
        raise ValueError(
            f"rule {rule_name!r}: distribution() must return two [{num_states}, K] "
            f"arrays, got {locs.shape} and {probs.shape}"
        )
    if mode == "synchronous" and not isinstance(state, TabularState):
        raise ValueError(
            f"rule {rule_name!r} cannot run in synchronous mode: it needs a tabular rule "
            f"(TabularState), got {type(state).__name__} (e.g. eligibility traces follow a "
            "trajectory)"
        )
    if not isinstance(transition, Transition):
        raise ValueError(f"env {env_name!r}: step() must return a Transition")
    return state, locs.shape[1]


class Inputs(NamedTuple):
    rule_list: list[tuple[str, UpdateRule]]
    env_list: list[tuple[str, Any]]
    alphas: np.ndarray  # f64[A], or f64[E, A]: each env's own step sizes
    decay: np.ndarray  # like alphas, inf for constant steps
    seeds: np.ndarray  # i64[N]
    checkpoints: np.ndarray  # i64[C]
    mode: str
    shapes: dict  # (rule, env) -> (state shape struct, number of atoms)
    groups: list[list[int]]  # env indices of each task structure
    streams: np.ndarray  # bool[E, N]: the (env, seed) streams run


def validate(
    rules, envs, step_sizes, num_seeds, num_steps, mode, checkpoints, num_checkpoints,
    schedule, chunk_size, micro_batch, divergence_bound, truth_atoms, distribution_metric,
    decay, streams=None, **options,
) -> Inputs:  # fmt: skip
    """Every input check of ``td_jax.run``, before anything compiles; ValueError names the
    bad value and what is allowed. ``options``: run's other keywords (seed,
    memory_fraction, keep_distributions, progress, unroll). Returns the normalised inputs."""
    rule_list = named(rules, "rule", make_rule, single=lambda x: isinstance(x, UpdateRule))
    for name, rule in rule_list:
        if not isinstance(rule, UpdateRule):
            raise ValueError(f"rule {name!r} must be a td_jax.UpdateRule, got {type(rule)}")
    env_list = named(envs, "env", single=lambda x: hasattr(x, "num_states"))
    for env_name, env in env_list:
        strict.check_implements(f"env {env_name!r}", env, MRPLike)
    alphas, decay_arr = _per_env_step_sizes(step_sizes, decay, len(env_list))
    num_steps = strict.check_int(None, "num_steps", num_steps, 1, MAX_STEPS, " (int32 step counts)")
    strict.check_mode(None, mode)
    num_checkpoints = strict.check_int(None, "num_checkpoints", num_checkpoints, 1)
    if checkpoints is None:
        ckpts = log_checkpoints(num_steps, num_checkpoints)
    else:
        ckpts = _checkpoints(checkpoints, num_steps)
    count = strict.integer(num_seeds)  # a count is checked before its indices are made
    shape = (len(rule_list), len(env_list), alphas.shape[-1])
    if count is not None and count >= 1:
        _check_result_memory(*shape, count, ckpts.size)
    seeds = _seeds(num_seeds)
    if count is None:
        _check_result_memory(*shape, seeds.size, ckpts.size)
    _check_schedule(schedule)
    _check_options(
        chunk_size=chunk_size, micro_batch=micro_batch, divergence_bound=divergence_bound,
        truth_atoms=truth_atoms, distribution_metric=distribution_metric, **options,
    )  # fmt: skip
    # Trace every (rule, env) pair before anything compiles.
    shapes = {
        (r, e): check_rule_takes_env(r, rule, e, env, mode)
        for r, rule in rule_list
        for e, env in env_list
    }
    # Group tasks of one structure into one batched axis.
    groups: dict[Any, list[int]] = {}
    for i, (_, env) in enumerate(env_list):
        groups.setdefault(structure(env), []).append(i)
    mask = stream_mask(streams, len(env_list), seeds.size)
    return Inputs(
        rule_list, env_list, alphas, decay_arr, seeds, ckpts, mode, shapes,
        list(groups.values()), mask,
    )  # fmt: skip


def stream_mask(streams: Any, num_envs: int, num_seeds: int) -> np.ndarray:
    """bool[E, N]: which (env, seed) streams to run; every one for ``None``. ValueError
    unless ``streams`` is a bool array of that shape with at least one stream."""
    if streams is None:
        return np.ones((num_envs, num_seeds), bool)
    mask = np.asarray(streams)
    if mask.dtype != bool:
        raise ValueError(f"streams must be a bool array [envs, seeds], got dtype {mask.dtype}")
    if mask.shape != (num_envs, num_seeds):
        raise ValueError(
            f"streams must have shape (envs, seeds) = {(num_envs, num_seeds)}, got {mask.shape}"
        )
    if not mask.any():
        raise ValueError("streams selects no (env, seed) stream: at least one must be True")
    return mask


# Bytes of result per (rule, env, step size, seed, checkpoint): the float32 metrics (the
# squared errors under each weighting and their companions, at most 8) and a flag.
RESULT_BYTES_PER_CELL = 8 * 4 + 1


def _check_result_memory(rules: int, envs: int, steps: int, seeds: int, ckpts: int) -> None:
    """The result's arrays (every metric and the divergence flags, [R, E, A, N, C] each)
    are allocated whole: refuses, in one line, a run whose arrays cannot fit."""
    strict.check_memory(
        None, f"a run of {rules} rule(s) x {envs} env(s) x {steps} step size(s) x "
        f"{seeds:,} seed(s) x {ckpts} checkpoint(s) (its result arrays)",
        float(rules) * envs * steps * seeds * ckpts * RESULT_BYTES_PER_CELL,
    )  # fmt: skip


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _per_env_step_sizes(step_sizes: Any, decay: Any, num_envs: int):
    """``_step_sizes``, or for a 2-D ``step_sizes`` (one row per env, in the envs' order,
    every row the same length) each row checked as one sweep: f64[E, A] each."""
    try:
        ndim = np.ndim(step_sizes)
    except ValueError:  # ragged: _step_sizes names what is wrong
        ndim = 1
    if ndim != 2 or isinstance(step_sizes, str):
        return _step_sizes(step_sizes, decay)
    rows = list(step_sizes)
    if len(rows) != num_envs:
        raise ValueError(
            f"step_sizes must be a non-empty 1-D sequence of numbers, or a 2-D one with one "
            f"row per env ({num_envs}); got {len(rows)} row(s): {step_sizes!r}"
        )
    decays = [None] * num_envs if decay is None else list(decay)
    if len(decays) != num_envs:
        raise ValueError(
            f"with per-env step_sizes, decay must have one row per env ({num_envs}), got {decay!r}"
        )
    pairs = [_step_sizes(a, d) for a, d in zip(rows, decays, strict=True)]
    return np.stack([a for a, _ in pairs]), np.stack([d for _, d in pairs])


def _step_sizes(step_sizes: Any, decay: Any) -> tuple[np.ndarray, np.ndarray]:
    """f64[A] step sizes and f64[A] decay scales (inf: constant), checked in float64 and in
    the learners' float32."""
    alphas = strict.check_step_sizes(None, step_sizes)
    decay_arr = np.full(alphas.shape, np.inf) if decay is None else _decay(decay, alphas.size)
    pairs = list(zip(alphas.tolist(), decay_arr.tolist(), strict=True))
    if len(set(pairs)) != len(pairs):
        dupe = next(p for p in pairs if pairs.count(p) > 1)
        raise ValueError(f"step sizes (with their decay) must be distinct, got {dupe} twice")
    with np.errstate(divide="ignore"):
        inv32 = (1.0 / decay_arr).astype(np.float32)
    seen: dict[tuple, int] = {}
    for i, key in enumerate(zip(alphas.astype(np.float32).tolist(), inv32.tolist(), strict=True)):
        if key in seen:
            raise ValueError(
                "step sizes (with their decay) must be distinct in float32 (the learners' "
                f"precision), got {pairs[seen[key]]} and {pairs[i]}"
            )
        seen[key] = i
    return alphas, decay_arr


def _decay(decay: Any, num_alphas: int) -> np.ndarray:
    decay_arr = strict.reals(decay)
    if decay_arr is None:
        raise ValueError(
            f"decay must be a 1-D sequence of numbers, one per step size ({num_alphas}), "
            f"got {decay!r}"
        )
    if decay_arr.size != num_alphas:
        raise ValueError(
            f"decay must have one entry per step size ({num_alphas}), got {decay_arr.size}"
        )
    bad = decay_arr[~(decay_arr > 0)]
    if bad.size:
        raise ValueError(f"decay scales must be > 0 (inf: constant), got {float(bad[0])!r}")
    bad = decay_arr[decay_arr < 1.0 / strict.F32_MAX]
    if bad.size:
        raise ValueError(
            f"decay scales must be >= {1.0 / strict.F32_MAX:.4g} (the learners use 1 / decay "
            f"in float32), got {float(bad[0])!r}"
        )
    return decay_arr


def _seeds(num_seeds: Any) -> np.ndarray:
    """i64[N] seed indices: 0..n-1 for a count n, else the indices given."""
    count = strict.integer(num_seeds)
    if count is not None:
        return np.arange(strict.check_int(None, "num_seeds", count, 1, SEED_LIMIT, SEED_WHY))
    seeds = strict.integers(num_seeds)
    if seeds is None or seeds.size == 0:
        raise ValueError(
            f"num_seeds must be a positive integer or a list of seed indices, got {num_seeds!r}"
        )
    bad = seeds[(seeds < 0) | (seeds >= SEED_LIMIT)]
    if bad.size:
        raise ValueError(f"seed indices must be integers in [0, 2**32){SEED_WHY}, got {bad[0]}")
    values, counts = np.unique(seeds, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"seed indices must be distinct, got {values[counts > 1][0]} repeated")
    return seeds


def _checkpoints(checkpoints: Any, num_steps: int) -> np.ndarray:
    ckpts = strict.integers(checkpoints)
    if ckpts is None:
        raise ValueError(
            "checkpoints must be whole update counts (a 1-D sequence of integers), got "
            f"{checkpoints!r}"
        )
    if ckpts.size == 0 or np.any(np.diff(ckpts) <= 0) or ckpts[0] < 1 or ckpts[-1] > num_steps:
        raise ValueError(
            f"checkpoints must increase strictly within [1, num_steps={num_steps}], got "
            f"{ckpts.tolist()}"
        )
    return ckpts


def _check_schedule(schedule: Any) -> None:
    """A schedule maps the int32 update count to a scalar multiplier (traced, not run)."""
    if schedule is None:
        return
    if not callable(schedule):
        raise ValueError(f"schedule must be a callable count -> multiplier, got {schedule!r}")
    try:
        out = jax.eval_shape(schedule, jax.ShapeDtypeStruct((), jnp.int32))
    except Exception as err:  # noqa: BLE001 - reported with context, then re-raised
        raise ValueError(
            f"schedule must be a callable count -> multiplier; traced on an int32 count it "
            f"raised {type(err).__name__}: {err}"
        ) from err
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.number):
        raise ValueError(
            f"schedule must return a scalar multiplier (a number) for a count, got {out!r}"
        )


def _check_options(chunk_size, micro_batch, divergence_bound, truth_atoms, distribution_metric,
                   seed=0, memory_fraction=0.25, keep_distributions=False, progress=None,
                   unroll=None, compile_streams=None) -> None:  # fmt: skip
    """The scalar settings of ``td_jax.run``."""
    strict.check_int(None, "truth_atoms", truth_atoms, 1)
    for name, value in (("chunk_size", chunk_size), ("micro_batch", micro_batch),
                        ("unroll", unroll), ("compile_streams", compile_streams)):  # fmt: skip
        if value is not None:
            strict.check_int(None, name, value, 1)
    bound = strict.real(divergence_bound)
    if bound is None or not bound > 0:
        raise ValueError(f"divergence_bound must be a number > 0, got {divergence_bound!r}")
    metric_ok = isinstance(distribution_metric, str) and distribution_metric in ("all", "final")
    if not (metric_ok or _is_bool(distribution_metric)):
        raise ValueError(
            "distribution_metric must be True, False, 'all' or 'final', got "
            f"{distribution_metric!r}"
        )
    strict.check_int(None, "seed", seed, 0, SEED_LIMIT - 1, SEED_WHY)
    fraction = strict.real(memory_fraction)
    if fraction is None or not 0.0 < fraction <= 1.0:
        raise ValueError(f"memory_fraction must be a number in (0, 1], got {memory_fraction!r}")
    if not _is_bool(keep_distributions):
        raise ValueError(f"keep_distributions must be True or False, got {keep_distributions!r}")
    if not (progress is None or _is_bool(progress) or callable(progress)):
        raise ValueError(
            "progress must be None, True, False or a callable progress(done_chunks, "
            f"total_chunks), got {progress!r}"
        )
