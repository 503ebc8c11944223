"""Input handling of ``td_jax.run``: names, counts and whether a rule can take an env.

Everything here runs before anything compiles, so bad input fails fast with one message
naming the offending value (``jax.eval_shape`` traces a rule without running it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.tabular import TabularState
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
