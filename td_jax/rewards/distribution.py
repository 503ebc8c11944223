"""``RewardDistribution``: a reward law as a pytree, sampled in JAX, known exactly in numpy.

The pytree holds only arrays -- a family index, a fixed-size parameter vector, a padded
atom table and the standardising affine map -- so rewards of *different* families have the
same tree structure and leaf shapes and stack into one batched axis. Sampling dispatches on
the (possibly traced) family index; the truth functions (``mean``, ``cdf``, ``quantile``,
``expectile``...) rebuild the exact float64 law from the leaves and need a single, concrete
(unstacked) reward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from td_jax import strict
from td_jax.rewards import exact, families
from td_jax.rewards import sampling as smp

DEFAULT_CAPACITY = 8  # atoms held by every reward; Dabney's magnitude task needs 7


class LawMethods:
    """The truth side every reward type shares, read off its exact law: a subclass defines
    ``law() -> exact.Law`` (``RewardDistribution``, ``mixture.Mixture``)."""

    law: Callable[[], exact.Law]  # each subclass's own method

    @property
    def mean(self) -> float:
        return self.law().mean

    @property
    def variance(self) -> float:
        """The variance; ``inf`` where it is infinite (student_t with df <= 2)."""
        return self.law().variance

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    def cdf(self, x: exact.ArrayLike) -> exact.ArrayLike:
        return self.law().cdf(x)

    def quantile(self, tau: exact.ArrayLike) -> exact.ArrayLike:
        """``inf{x : F(x) >= tau}``, tau in [0, 1]."""
        return self.law().quantile(tau)

    def expectile(self, tau: exact.ArrayLike) -> exact.ArrayLike:
        """The tau-expectile, tau in (0, 1) (Newey and Powell 1987)."""
        return self.law().expectile(tau)


@struct.dataclass
class RewardDistribution(LawMethods):
    """A reward law: ``X = loc + scale * B`` with ``B`` drawn from a named family.

    Attributes (pytree leaves; f64 numpy when made, any array type once transformed):
      family: int32[] index into ``td_jax.rewards.available()``.
      params: f64[5] the family's parameters (see each family's ``config``).
      locs: f64[K] atom locations, sorted, padded by repeating the largest one.
      probs: f64[K] atom probabilities, zero on padding (atom families only).
      loc: f64[] and scale: f64[] the standardising affine map (0 and 1 when unused).
    """

    family: Any
    params: Any
    locs: Any
    probs: Any
    loc: Any
    scale: Any

    # -- sampling (JAX) -------------------------------------------------------------------

    def sample(self, key: jax.Array, shape: Sequence[int] = ()) -> jax.Array:
        """f32 samples of the given shape; jittable, vmappable over rewards and keys."""
        return self._sample(key, tuple(shape), static_kernel(self))

    def _sample(self, key: jax.Array, shape: tuple[int, ...], kernel: int | None) -> jax.Array:
        return self.from_uniforms(*smp.uniforms(key, shape), kernel=kernel)

    def from_uniforms(self, u1: jax.Array, u2: jax.Array, kernel: int | None = None) -> jax.Array:
        """Samples as a function of two independent (0, 1) uniforms (common random numbers).

        ``kernel``: the sampler index when known statically (see ``static_kernel``).
        """
        chex.assert_rank(self.params, 1)
        chex.assert_rank([self.family, self.loc, self.scale], 0)
        f32 = jnp.float32
        if kernel is None:
            kernel = jnp.asarray(families.KERNEL_OF_FAMILY)[jnp.asarray(self.family)]
        base = smp.draw(
            kernel,
            u1,
            u2,
            jnp.asarray(self.params, f32),
            jnp.asarray(self.locs, f32),
            jnp.asarray(self.probs, f32),
        )
        return (jnp.asarray(self.loc, f32) + jnp.asarray(self.scale, f32) * base).astype(f32)

    # -- exact truth (numpy float64) ------------------------------------------------------

    @property
    def name(self) -> str:
        return families.FAMILIES[_concrete_family(self)].name

    @property
    def capacity(self) -> int:
        return int(np.shape(self.locs)[-1])

    def law(self) -> exact.Law:
        """The exact float64 law, with the standardising map applied."""
        fam = families.FAMILIES[_concrete_family(self)]
        params, locs, probs = (
            np.asarray(x, np.float64) for x in (self.params, self.locs, self.probs)
        )
        base = fam.law(params, locs, probs)
        return exact.affine(base, float(np.asarray(self.loc)), float(np.asarray(self.scale)))

    def config(self) -> dict[str, Any]:
        """JSON-able description; ``make(**config)`` rebuilds an equal reward."""
        fam = families.FAMILIES[_concrete_family(self)]
        params, locs, probs = (
            np.asarray(x, np.float64) for x in (self.params, self.locs, self.probs)
        )
        out: dict[str, Any] = {"name": fam.name, **fam.config(params, locs, probs)}
        loc, scale = float(np.asarray(self.loc)), float(np.asarray(self.scale))
        if loc != 0.0 or scale != 1.0:
            law = self.law()
            out["standardize"] = [law.mean, law.std]
        return out


def _concrete_family(reward: RewardDistribution) -> int:
    fam = np.asarray(reward.family)
    if fam.ndim != 0:
        raise ValueError(
            f"truth functions need a single reward, got a stacked one with family shape {fam.shape}"
        )
    return int(fam)


def static_kernel(reward: Any) -> Any:
    """The sampler kernel when every family in ``reward`` is concrete and the same, else None.

    With one kernel known at trace time the program calls it directly; ``lax.switch`` under
    ``vmap`` would otherwise evaluate every kernel and select. Another reward type (a
    ``td_jax.rewards.Mixture``) gives its own static hint (``kernel_hint()``), which its
    ``from_uniforms`` takes in the same place.
    """
    if not isinstance(reward, RewardDistribution):
        return reward.kernel_hint()
    if isinstance(reward.family, jax.core.Tracer):
        return None
    kernels = np.unique(families.KERNEL_OF_FAMILY[np.asarray(reward.family)])
    return int(kernels[0]) if kernels.size == 1 else None


def make(
    name: str,
    *,
    standardize: tuple[float, float] | None = None,
    capacity: int = DEFAULT_CAPACITY,
    **params: Any,
) -> RewardDistribution:
    """Makes a reward distribution of family ``name`` (see ``available()``/``describe()``).

    Args:
      name: family name.
      standardize: optional ``(mean, std)``; applies the affine map ``loc + scale * X`` that
        gives the reward exactly this mean and standard deviation, so that families compare
        on equal footing. Needs a finite variance; a deterministic reward takes std = 0.
      capacity: atoms held by the pytree (padding with zero probability); rewards stack
        only with equal capacity (``pad``/``stack`` equalise it).
      **params: the family's parameters; defaults in ``defaults(name)``.

    Raises:
      ValueError: unknown name or parameter, or an invalid value (named, with the value
        given and what is allowed).
    """
    strict.check_known_name("reward distribution", name, available())
    fam = families.BY_NAME[name]
    strict.check_known_kwargs(name, params, fam.defaults)
    p, locs, probs = fam.build(**params)
    capacity = max(strict.check_int(name, "capacity", capacity, 1), locs.size)
    reward = RewardDistribution(
        family=np.asarray(families.INDEX[name], np.int32),
        params=p,
        locs=np.concatenate([locs, np.full(capacity - locs.size, locs.max())]),
        probs=np.concatenate([probs, np.zeros(capacity - probs.size)]),
        loc=np.zeros(()),
        scale=np.ones(()),
    )
    return reward if standardize is None else apply_standardize(reward, standardize)


def apply_standardize(reward: Any, target: Any) -> Any:
    """``reward`` (any reward type with ``loc`` and ``scale`` leaves) moved and scaled to the
    ``(mean, std)`` of ``target``; see ``make``'s ``standardize``."""
    name = reward.name
    t = strict.check_vector(name, "standardize", target, 2)
    mean, std = t
    if std < 0:
        strict.fail(name, "standardize std", float(std), ">= 0")
    base = reward.law()
    if not np.isfinite(base.variance):
        strict.fail(name, "standardize", tuple(t), "used only on a family with finite variance")
    if base.variance == 0.0:
        if std != 0.0:
            strict.fail(name, "standardize std", float(std), "0 for a reward without variance")
        loc, scale = mean - base.mean, 1.0
    else:
        if std == 0.0:
            strict.fail(name, "standardize std", 0.0, "> 0 for a reward with variance")
        scale = std / base.std
        loc = mean - scale * base.mean
    return reward.replace(loc=np.asarray(loc, np.float64), scale=np.asarray(scale, np.float64))


def shift(reward: RewardDistribution, delta: float) -> RewardDistribution:
    """The same law moved by ``delta`` (used to give per-state means to a shared noise law)."""
    return reward.replace(loc=np.asarray(np.asarray(reward.loc, np.float64) + delta))


def pad(reward: RewardDistribution, capacity: int) -> RewardDistribution:
    """Pads the atom table (last axis) to ``capacity`` with zero-probability copies."""
    k = reward.capacity
    if capacity < k:
        raise ValueError(f"pad: capacity must be >= {k} (the current one), got {capacity}")
    if capacity == k:
        return reward
    locs, probs = np.asarray(reward.locs), np.asarray(reward.probs)
    extra = capacity - k
    locs = np.concatenate([locs, np.repeat(locs[..., -1:], extra, axis=-1)], axis=-1)
    probs = np.concatenate([probs, np.zeros((*probs.shape[:-1], extra))], axis=-1)
    return reward.replace(locs=locs, probs=probs)


def stack(rewards: Sequence[RewardDistribution]) -> RewardDistribution:
    """Stacks rewards (any families) along a new leading axis, padding atoms to match."""
    rewards = [as_reward(r) for r in rewards]
    capacity = max(r.capacity for r in rewards)
    padded = [pad(r, capacity) for r in rewards]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *padded)


def as_reward(spec: Any, make: Any = make) -> RewardDistribution:
    """Coerces a reward spec: a RewardDistribution, a family name, a number (deterministic),
    a mapping ``{"name": ..., **params}`` or a pair ``(name, params)``, built by ``make``
    (``td_jax.rewards.as_reward`` passes its own, which knows mixtures and registered
    families)."""
    if isinstance(spec, RewardDistribution):
        return spec
    if isinstance(spec, str):
        return make(spec)
    if isinstance(spec, int | float | np.integer | np.floating) and not isinstance(spec, bool):
        return make("deterministic", value=float(spec))
    if isinstance(spec, Mapping) and "name" in spec:
        kwargs = dict(spec)
        return make(kwargs.pop("name"), **kwargs)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return make(spec[0], **dict(spec[1]))
    raise ValueError(
        "reward must be a RewardDistribution, a family name, a number, a mapping with "
        f"'name', or a (name, params) pair, got {spec!r}"
    )


def available() -> list[str]:
    """Names of the reward families, in family-index order."""
    return [f.name for f in families.FAMILIES]


def describe() -> dict[str, str]:
    """One-line description of every family (with its reference where there is one)."""
    return {
        f.name: f.description + (f" [{f.reference}]" if f.reference else "")
        for f in families.FAMILIES
    }


def defaults(name: str) -> dict[str, Any]:
    """The default parameters of family ``name``."""
    strict.check_known_name("reward distribution", name, available())
    return dict(families.BY_NAME[name].defaults)
