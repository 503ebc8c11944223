"""The public reward entry points over every kind of reward: the built-in families
(``td_jax.rewards.distribution``), ``mixture`` (``td_jax.rewards.mixture``) and families a
user registered (``td_jax.rewards.registry``). A reward spec names any of them wherever
one is accepted: ``make``, a task's reward, a mixture component, a study file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from td_jax import strict
from td_jax.rewards import distribution as dist
from td_jax.rewards import families, mixture, registry

MIXTURE_DEFAULTS: dict[str, Any] = {
    "components": ({"name": "gaussian", "mean": -1.0, "std": 0.5}, 1.0),
    "weights": (0.5, 0.5),
}
MIXTURE_DESCRIPTION = (
    "weights over rewards of any families, point masses included (a number is one): "
    "components=[spec, ...], weights=[...]"
)

Reward = dist.RewardDistribution | mixture.Mixture


def make(
    name: str,
    *,
    standardize: tuple[float, float] | None = None,
    capacity: int = dist.DEFAULT_CAPACITY,
    **params: Any,
) -> Reward:
    """Makes a reward of family ``name`` (see ``available()``/``describe()``).

    Args:
      name: a built-in family, ``"mixture"`` or a registered family.
      standardize: optional ``(mean, std)``: the affine map giving exactly this mean and
        standard deviation (finite variance needed; std = 0 for a reward without variance).
      capacity: atoms held by the pytree (see ``distribution.make``).
      **params: the family's parameters (``defaults(name)``). A mixture takes
        ``components``, a list of reward specs (anything ``as_reward`` accepts: a number is
        a point mass), and ``weights``, probabilities of the same length.

    Returns a ``RewardDistribution`` for a built-in family, else a ``Mixture`` (a
    registered family's reward is a mixture of one component).

    Raises:
      ValueError: unknown name or parameter, or an invalid value, in one line.
    """
    if name in families.BY_NAME:
        return dist.make(name, standardize=standardize, capacity=capacity, **params)
    strict.check_known_name("reward distribution", name, available())
    capacity = strict.check_int(name, "capacity", capacity, 1)
    if name == registry.MIXTURE:
        reward = _mixture(capacity, **params)
    else:
        family = registry.get(name)
        one = mixture.Registered(family, family.build(params), 0.0, 1.0)
        reward = mixture.combine([one], np.ones(1), capacity)
    if standardize is None:
        return reward
    return dist.apply_standardize(reward, standardize)


def _mixture(capacity: int, **params: Any) -> mixture.Mixture:
    strict.check_known_kwargs(registry.MIXTURE, params, MIXTURE_DEFAULTS)
    p = {**MIXTURE_DEFAULTS, **params}
    specs = p["components"]
    if isinstance(specs, str | bytes | Mapping) or not isinstance(specs, Sequence) or not specs:
        strict.fail(registry.MIXTURE, "components", specs, "a non-empty list of reward specs")
    weights = strict.check_simplex(registry.MIXTURE, "weights", p["weights"], len(specs))
    return mixture.combine([as_reward(s) for s in specs], weights, capacity)


def as_reward(spec: Any) -> Reward:
    """Coerces a reward spec: a reward, a family name (built-in, "mixture" or registered), a
    number (a point mass), a mapping ``{"name": ..., **params}`` or a pair ``(name, params)``."""
    if isinstance(spec, mixture.Mixture):
        return spec
    return dist.as_reward(spec, make=make)


def stack(rewards: Sequence[Any]) -> Reward:
    """Stacks rewards along a new leading axis; rewards of built-in families stay a
    ``RewardDistribution`` (``distribution.stack``), others lift all to one mixture layout."""
    rewards = [as_reward(r) for r in rewards]
    if all(isinstance(r, dist.RewardDistribution) for r in rewards):
        return dist.stack(rewards)
    return mixture.stack(rewards)


def pad(reward: Reward, capacity: int) -> Reward:
    """Pads the atom tables to ``capacity`` (see ``distribution.pad``)."""
    if isinstance(reward, mixture.Mixture):
        return reward.replace(builtin=dist.pad(reward.builtin, capacity))
    return dist.pad(reward, capacity)


def available() -> list[str]:
    """Built-in families (in family-index order), "mixture", then registered families."""
    return [*dist.available(), registry.MIXTURE, *registry.names()]


def describe() -> dict[str, str]:
    """One-line description of every family (with its reference where there is one)."""
    out = {**dist.describe(), registry.MIXTURE: MIXTURE_DESCRIPTION}
    for name in registry.names():
        family = registry.get(name)
        ref = f" [{family.reference}]" if family.reference else ""
        out[name] = f"{family.description} (registered){ref}"
    return out


def defaults(name: str) -> dict[str, Any]:
    """The default parameters of family ``name``."""
    strict.check_known_name("reward distribution", name, available())
    if name in families.BY_NAME:
        return dist.defaults(name)
    if name == registry.MIXTURE:
        return dict(MIXTURE_DEFAULTS)
    return dict(registry.get(name).defaults)
