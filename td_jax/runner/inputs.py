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

from td_jax.rules import make as make_rule
from td_jax.rules.tabular import TabularState
from td_jax.runner.metrics import log_checkpoints
from td_jax.types import Transition, UpdateRule

MODES = ("online", "synchronous")


def named(items: Any, kind: str, make=None) -> list[tuple[str, Any]]:
    """Normalises a mapping or a sequence of items / names / (name, item) pairs."""
    if isinstance(items, Mapping):
        pairs = list(items.items())
    elif isinstance(items, str) or not isinstance(items, Sequence):
        pairs = [items]
    else:
        pairs = list(items)
    out = []
    for i, item in enumerate(pairs):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, obj = item
        elif isinstance(item, str):
            name, obj = item, item
        else:
            name, obj = getattr(item, "name", f"{kind}{i}"), item
        if isinstance(obj, str):
            if make is None:
                raise ValueError(f"{kind} {name!r} must be an object, got the string {obj!r}")
            obj = make(obj)
        out.append((str(name), obj))
    if not out:
        raise ValueError(f"run needs at least one {kind}, got an empty {kind} list")
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{kind} names must be unique, got duplicates {dupes}")
    return out


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_rule_takes_env(rule_name: str, rule: UpdateRule, env_name: str, env: Any, mode: str):
    """Traces (never compiles) init/update/values/distribution on the env's transitions."""
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
    alphas: np.ndarray  # f64[A]
    decay: np.ndarray  # f64[A], inf for constant steps
    seeds: np.ndarray  # i64[N]
    checkpoints: np.ndarray  # i64[C]
    mode: str
    shapes: dict  # (rule, env) -> (state shape struct, number of atoms)
    groups: list[list[int]]  # env indices of each task structure


def validate(
    rules, envs, step_sizes, num_seeds, num_steps, mode, checkpoints, num_checkpoints,
    schedule, chunk_size, micro_batch, divergence_bound, truth_atoms, distribution_metric,
    decay,
) -> Inputs:  # fmt: skip
    """Every input check of ``td_jax.run``, before anything compiles; ValueError names the
    bad value and what is allowed. Returns the normalised inputs."""
    rule_list = named(rules, "rule", make_rule)
    env_list = named(envs, "env")
    for name, rule in rule_list:
        if not isinstance(rule, UpdateRule):
            raise ValueError(f"rule {name!r} must be a td_jax.UpdateRule, got {type(rule)}")
    alphas = np.asarray(step_sizes, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"step_sizes must be a non-empty 1-D sequence, got shape {alphas.shape}")
    bad = alphas[~(np.isfinite(alphas) & (alphas > 0))]
    if bad.size:
        raise ValueError(f"step sizes must be finite and > 0, got {float(bad[0])!r}")
    if decay is None:
        decay_arr = np.full(alphas.shape, np.inf)
    else:
        decay_arr = np.asarray(decay, dtype=np.float64).reshape(-1)
        if decay_arr.shape != alphas.shape:
            raise ValueError(
                f"decay must have one entry per step size ({alphas.size}), got {decay_arr.size}"
            )
        bad = decay_arr[~(decay_arr > 0)]
        if bad.size:
            raise ValueError(f"decay scales must be > 0 (inf: constant), got {float(bad[0])!r}")
    pairs = list(zip(alphas.tolist(), decay_arr.tolist(), strict=True))
    if len(set(pairs)) != len(pairs):
        dupe = next(p for p in pairs if pairs.count(p) > 1)
        raise ValueError(f"step sizes (with their decay) must be distinct, got {dupe} twice")
    if isinstance(num_seeds, int | np.integer) and not isinstance(num_seeds, bool):
        seeds = np.arange(check_positive_int("num_seeds", num_seeds))
    else:
        seeds = np.asarray(num_seeds).reshape(-1)
        if not np.issubdtype(seeds.dtype, np.integer) and not (
            seeds.size and np.all(np.mod(seeds, 1) == 0)
        ):
            raise ValueError(
                f"num_seeds must be a positive integer or a list of seed indices, got {num_seeds!r}"
            )
        seeds = seeds.astype(np.int64)
        if seeds.size == 0 or np.any(seeds < 0) or len(set(seeds.tolist())) != seeds.size:
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    num_steps = check_positive_int("num_steps", num_steps)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if checkpoints is None:
        ckpts = log_checkpoints(num_steps, num_checkpoints)
    else:
        raw = np.asarray(checkpoints).reshape(-1)
        if raw.size and not np.all(np.mod(raw, 1) == 0):
            raise ValueError(f"checkpoints must be whole update counts, got {list(raw)}")
        ckpts = raw.astype(np.int64)
        if ckpts.size == 0 or np.any(np.diff(ckpts) <= 0) or ckpts[0] < 1 or ckpts[-1] > num_steps:
            raise ValueError(
                f"checkpoints must increase strictly within [1, num_steps="
                f"{num_steps}], got {list(ckpts)}"
            )
    check_positive_int("truth_atoms", truth_atoms)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    if micro_batch is not None:
        check_positive_int("micro_batch", micro_batch)
    if not (isinstance(divergence_bound, int | float) and divergence_bound > 0):
        raise ValueError(f"divergence_bound must be a number > 0, got {divergence_bound!r}")
    if distribution_metric not in (True, False, "all", "final"):
        raise ValueError(
            "distribution_metric must be True, False, 'all' or 'final', got "
            f"{distribution_metric!r}"
        )
    if schedule is not None and not callable(schedule):
        raise ValueError(f"schedule must be a callable count -> multiplier, got {schedule!r}")
    for env_name, env in env_list:
        for attr in ("num_states", "step", "reset", "true_values", "true_distribution_table"):
            if not hasattr(env, attr):
                raise ValueError(f"env {env_name!r} has no {attr!r}: not a td_jax MRP")
    # Trace every (rule, env) pair before anything compiles.
    shapes = {
        (r, e): check_rule_takes_env(r, rule, e, env, mode)
        for r, rule in rule_list
        for e, env in env_list
    }
    # Group tasks of one structure into one batched axis.
    groups: dict[Any, list[int]] = {}
    for i, (_, env) in enumerate(env_list):
        leaves, treedef = jax.tree.flatten(env)
        signature = (treedef, tuple((np.shape(x), jnp.asarray(x).dtype) for x in leaves))
        groups.setdefault(signature, []).append(i)
    return Inputs(
        rule_list, env_list, alphas, decay_arr, seeds, ckpts, mode, shapes, list(groups.values())
    )
