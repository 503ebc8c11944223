"""Policy-evaluation environments (Markov reward processes) and control tasks (MDPs), with
exact ground truth.

``make(name, **params)`` builds an ``MRP`` pytree; ``available()`` and ``describe()`` list
them. Every MRP has jittable ``reset(key)`` and ``step(key, s) -> Transition``, exact
``true_values()`` and true return distributions (``true_distribution``,
``true_distribution_table``, ``true_quantiles``, ``true_expectiles``) with a stated W1
error ``truth_error`` (0 where exact). MRPs of one structure stack leaf-wise (``stack``)
into a batched axis, whatever their reward families. ``tabular_mdp`` and ``make_mdp`` build
``MDP`` control tasks (``td_jax.envs.mdp``): exact Q*, V*, optimal policy, any policy's value.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from td_jax import rewards as _rewards
from td_jax.envs import continuous as _continuous  # noqa: F401 (registers continuous_walk)
from td_jax.envs.catalog import (
    available,
    bandit,
    build,
    chain,
    describe,
    make,
    random_mrp,
    random_walk,
    two_state,
)
from td_jax.envs.mdp import MDP
from td_jax.envs.mdp_catalog import (
    available_mdps,
    describe_mdps,
    garnet_mdp,
    gridworld,
    make_mdp,
    risky_safe,
    tabular_mdp,
)
from td_jax.envs.mrp import DEFAULT_TABLE_ATOMS, MRP
from td_jax.envs.truth import ReturnTruth


def stack(envs: Sequence[MRP]) -> MRP:
    """Stacks MRPs of one structure along a new leading axis of every leaf.

    Reward atom tables are padded to a common capacity first, so rewards of any families
    mix. Raises ValueError if the static structure (name, num_states, table widths) differs.
    """
    envs = list(envs)
    first = envs[0]
    for env in envs[1:]:
        same = (env.name, env.num_states, env.spec, np.shape(env.outcome_probs)) == (
            first.name, first.num_states, first.spec, np.shape(first.outcome_probs)
        )  # fmt: skip
        if not same:
            raise ValueError(
                f"stack: envs must share a structure, got {env.name}{dict(env.spec)} "
                f"and {first.name}{dict(first.spec)}"
            )
    capacity = max(env.rewards.capacity for env in envs)
    envs = [env.replace(rewards=_rewards.pad(env.rewards, capacity)) for env in envs]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *envs)


__all__ = [
    "DEFAULT_TABLE_ATOMS",
    "MDP",
    "MRP",
    "ReturnTruth",
    "available",
    "available_mdps",
    "bandit",
    "build",
    "chain",
    "describe",
    "describe_mdps",
    "garnet_mdp",
    "gridworld",
    "make",
    "make_mdp",
    "random_mrp",
    "random_walk",
    "risky_safe",
    "stack",
    "tabular_mdp",
    "two_state",
]
