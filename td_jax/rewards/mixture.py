"""``Mixture``: weights over reward laws of any families, built-in or registered.

A mixture is its own pytree type, so the built-in ``RewardDistribution``'s pytree and every
program compiled for it are untouched; its components are columns: built-in ones as a
``RewardDistribution`` stacked over ``[Cb]`` (point masses included: ``deterministic``, or
any atom table), then the components of each registered family (``Part``). A rewards list
that mixes types (a task's reward slots) is lifted to one mixture layout (``stack``), zero
weights padding the columns a slot does not use.

Sampling (Rowland et al. 2018's mixture rewards, drawn by the composition method, Devroye
1986, "Non-Uniform Random Variate Generation", ch. II.4): the second uniform ``u2`` picks
component ``c`` by inverse CDF over the cumulative weights ``b``, and its position inside
``[b_{c-1}, b_c)``, ``v = (u2 - b_{c-1}) / w_c``, is again uniform on (0, 1) and independent
of the choice; the component then draws from ``(u1, v)``. A two-Gaussian mixture therefore
draws exactly as the ``bimodal`` family does. Resolution cost (f32): the component
probabilities are those of the 2^23-point uniform grid, exact up to 2^-23 each (and weights
below about 6e-8 round away); a component's ``u1`` keeps its full 2^23-point resolution,
so inverse-CDF samplers (Gaussian, exponential, lognormal, uniform, atoms, Student t's
radius) keep their tails; its ``u2`` (Student t's angle, ``bimodal``'s own choice, a
registered sampler's second uniform) has about ``w_c * 2^23`` levels.

Truth: the exact law is ``td_jax.rewards.exact.mixture`` of the components' laws (mean,
variance -- ``inf`` if any component's is --, CDF, ``inf{x : F(x) >= tau}`` quantiles by
bisection on the mixture CDF, expectiles from the upper partial moments), exact for
built-in components and to ``td_jax.rewards.numerical``'s tolerance for registered ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from td_jax.rewards import distribution as dist
from td_jax.rewards import exact, registry
from td_jax.rewards import sampling as smp

TINY = 2.0**-24  # the conditional uniform stays in [TINY, 1 - TINY], as smp.unit's do


@struct.dataclass
class Part:
    """The components of one registered family: ``params`` f64[C_n, P], ``loc`` and
    ``scale`` f64[C_n] (each component's standardising map)."""

    params: Any
    loc: Any
    scale: Any


@struct.dataclass
class Mixture(dist.LawMethods):
    """A finite mixture of reward laws, ``X = loc + scale * B``, ``B`` from component c with
    probability ``w_c``.

    Attributes (pytree leaves, f64 numpy when made):
      weights: f64[C] the columns' weights (built-in ones first, then each registered
        family's), zero on padding.
      bounds: f64[C] their cumulative sums, exactly 1 from the last positive weight on (the
        sampler's; the truth reads ``weights``).
      builtin: RewardDistribution with leaves stacked over [Cb] (Cb >= 1).
      parts: one ``Part`` per family in ``registered``.
      loc, scale: f64[] the mixture's standardising map.
      registered: static, the ``registry.RegisteredFamily`` of each part.
    """

    weights: Any
    bounds: Any
    builtin: dist.RewardDistribution
    parts: tuple[Part, ...]
    loc: Any
    scale: Any
    registered: tuple[registry.RegisteredFamily, ...] = struct.field(pytree_node=False)

    # -- sampling (JAX) -------------------------------------------------------------------

    def sample(self, key: jax.Array, shape: Sequence[int] = ()) -> jax.Array:
        """f32 samples of the given shape; jittable, vmappable over rewards and keys."""
        return self.from_uniforms(*smp.uniforms(key, tuple(shape)))

    def kernel_hint(self) -> tuple[int | None, ...]:
        """Per built-in column, its sampler kernel where it is static (see
        ``distribution.static_kernel``); taken before a traced gather of reward slots."""
        family = self.builtin.family
        return tuple(
            dist.static_kernel(self.builtin.replace(family=family[..., j]))
            for j in range(np.shape(family)[-1])
        )

    def from_uniforms(self, u1: jax.Array, u2: jax.Array, kernel: Any = None) -> jax.Array:
        """Samples from two independent (0, 1) uniforms (module docstring: the method).

        ``kernel``: ``kernel_hint()`` of the (possibly slot-stacked) mixture, when taken
        before its leaves were gathered; else it is read from this one.
        """
        hint = self.kernel_hint() if kernel is None else kernel
        f32 = jnp.float32
        bounds = jnp.asarray(self.bounds, f32)
        c = jnp.searchsorted(bounds, u2, side="right", method="compare_all")
        c = jnp.minimum(c, bounds.shape[-1] - 1)
        lo = jnp.where(c > 0, bounds[jnp.maximum(c - 1, 0)], 0.0)
        hi = bounds[c]
        v = jnp.clip((u2 - lo) / jnp.where(hi > lo, hi - lo, 1.0), TINY, 1.0 - TINY)
        draws = [
            jax.tree.map(lambda x, j=j: x[j], self.builtin).from_uniforms(u1, v, k)
            for j, k in enumerate(hint)
        ]
        for family, part in zip(self.registered, self.parts, strict=True):
            for j in range(np.shape(part.loc)[-1]):
                x = family.draw(u1, v, jnp.asarray(part.params[j], f32))
                draws.append(jnp.asarray(part.loc[j], f32) + jnp.asarray(part.scale[j], f32) * x)
        x = jnp.select([c == j for j in range(len(draws))], draws)
        return (jnp.asarray(self.loc, f32) + jnp.asarray(self.scale, f32) * x).astype(f32)

    # -- exact truth (numpy float64) ------------------------------------------------------

    @property
    def capacity(self) -> int:
        return int(np.shape(self.builtin.locs)[-1])

    @property
    def name(self) -> str:
        cols = _columns(_single(self))
        return cols[0][1].name if len(cols) == 1 else "mixture"

    def law(self) -> exact.Law:
        """The exact float64 law, the standardising map applied."""
        cols = _columns(_single(self))
        base = exact.mixture([col.law() for _, col in cols], [w for w, _ in cols])
        if isinstance(base, exact.Mixture):
            base = AtomExactMixture(base.laws, base.weights)
        return exact.affine(base, float(np.asarray(self.loc)), float(np.asarray(self.scale)))

    def config(self) -> dict[str, Any]:
        """JSON-able description; ``td_jax.rewards.make(**config)`` rebuilds an equal law.
        A mixture of one component (a registered family's reward) is that component."""
        cols = _columns(_single(self))
        loc, scale = float(np.asarray(self.loc)), float(np.asarray(self.scale))
        if len(cols) == 1:
            return cols[0][1].moved(loc, scale).config()
        out: dict[str, Any] = {
            "name": "mixture",
            "components": [col.config() for _, col in cols],
            "weights": [w for w, _ in cols],
        }
        if loc != 0.0 or scale != 1.0:
            law = self.law()
            out["standardize"] = [law.mean, law.std]
        return out


class AtomExactMixture(exact.Mixture):
    """``exact.Mixture`` whose quantile is exactly an atom where ``inf{x : F(x) >= tau}`` is
    one: the bisection stops a few ulps above it, so a result within 8 ulps above an atom
    ``a`` of an atomic component with ``F(a) >= tau`` is ``a``."""

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        q = super()._quantile(t)
        atoms = [law.locs for law in self.laws if isinstance(law, exact.Atoms)]
        if not atoms:
            return q
        a = np.sort(np.concatenate(atoms))
        k = np.searchsorted(a, q, side="right") - 1
        below = a[np.maximum(k, 0)]
        eps = 8 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(q))
        snap = (k >= 0) & (q - below <= eps) & (self._cdf(below) >= t)
        return np.where(snap, below, q)


class Registered(dist.LawMethods):
    """One registered-family component, unstacked (numpy), for truth and config."""

    def __init__(self, family: registry.RegisteredFamily, params, loc: float, scale: float):
        self.family, self.params = family, np.asarray(params, np.float64)
        self.loc, self.scale = float(loc), float(scale)

    @property
    def name(self) -> str:
        return self.family.name

    def moved(self, loc: float, scale: float) -> Registered:
        return Registered(self.family, self.params, loc + scale * self.loc, scale * self.scale)

    def law(self) -> exact.Law:
        base = registry.law(self.family, tuple(self.params.tolist()))
        return exact.affine(base, self.loc, self.scale)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, **self.family.config(self.params)}
        if self.loc != 0.0 or self.scale != 1.0:
            law = self.law()
            out["standardize"] = [law.mean, law.std]
        return out


def _moved(reward: dist.RewardDistribution, loc: float, scale: float):
    return reward.replace(
        loc=np.asarray(loc + scale * np.asarray(reward.loc, np.float64)),
        scale=np.asarray(scale * np.asarray(reward.scale, np.float64)),
    )


class _Builtin:
    """Adapter: a built-in column with the ``moved`` / ``law`` / ``config`` / ``name`` of
    ``Registered``."""

    def __init__(self, reward: dist.RewardDistribution):
        self.reward = reward
        self.name = reward.name

    def moved(self, loc: float, scale: float) -> dist.RewardDistribution:
        return _moved(self.reward, loc, scale)

    def law(self) -> exact.Law:
        return self.reward.law()

    def config(self) -> dict[str, Any]:
        return self.reward.config()


def _single(m: Mixture) -> Mixture:
    if np.ndim(m.bounds) != 1:
        raise ValueError(
            f"truth functions need a single reward, got a stacked one with bounds shape "
            f"{np.shape(m.bounds)}"
        )
    return m


def _columns(m: Mixture) -> list[tuple[float, Any]]:
    """The positive-weight columns of one mixture: (weight, _Builtin or Registered)."""
    w = np.asarray(m.weights, np.float64)
    cols: list[Any] = [
        _Builtin(jax.tree.map(lambda x, j=j: np.asarray(x)[j], m.builtin))
        for j in range(np.shape(m.builtin.family)[-1])
    ]
    for family, part in zip(m.registered, m.parts, strict=True):
        p, loc, scale = (np.asarray(x, np.float64) for x in (part.params, part.loc, part.scale))
        cols += [Registered(family, p[j], loc[j], scale[j]) for j in range(loc.size)]
    return [(float(wj), col) for wj, col in zip(w, cols, strict=True) if wj > 0]


# -- building: flatten into columns, then lay the columns out -----------------------------


def columns_of(reward: Any) -> list[tuple[float, Any]]:
    """A reward's positive-weight components, its own map pushed into each; a built-in
    reward or a ``Registered`` component is one column of weight 1."""
    if isinstance(reward, dist.RewardDistribution):
        return [(1.0, _Builtin(reward))]
    if isinstance(reward, Registered):
        return [(1.0, reward)]
    loc, scale = float(np.asarray(reward.loc)), float(np.asarray(reward.scale))
    return [(w, _wrap(col.moved(loc, scale))) for w, col in _columns(_single(reward))]


def _wrap(x: Any) -> Any:
    return _Builtin(x) if isinstance(x, dist.RewardDistribution) else x


def _layout(column_lists: list[list[tuple[float, Any]]]) -> tuple[int, dict]:
    """(Cb, {family: C_n}): the columns that hold every list (Cb >= 1)."""
    cb, per = 1, {}
    for cols in column_lists:
        cb = max(cb, sum(isinstance(c, _Builtin) for _, c in cols))
        counts: dict = {}
        for _, c in cols:
            if isinstance(c, Registered):
                counts[c.family] = counts.get(c.family, 0) + 1
        for family, n in counts.items():
            per[family] = max(per.get(family, 0), n)
    return cb, per


def _assemble(cols: list[tuple[float, Any]], layout: tuple[int, dict], capacity: int) -> Mixture:
    cb, per = layout
    filler = dist.make("deterministic", value=0.0, capacity=capacity)
    builtin = [(w, c.reward) for w, c in cols if isinstance(c, _Builtin)]
    builtin += [(0.0, filler)] * (cb - len(builtin))
    weights, parts = [w for w, _ in builtin], []
    for family, n in per.items():
        mine = [(w, c) for w, c in cols if isinstance(c, Registered) and c.family is family]
        pad = Registered(family, list(family.defaults.values()), 0.0, 1.0)
        mine += [(0.0, pad)] * (n - len(mine))
        weights += [w for w, _ in mine]
        parts.append(Part(params=np.stack([c.params.reshape(-1) for _, c in mine]),
                          loc=np.array([c.loc for _, c in mine]),
                          scale=np.array([c.scale for _, c in mine])))  # fmt: skip
    w = np.asarray(weights, np.float64) / np.sum(weights)
    bounds = np.cumsum(w)
    bounds[np.flatnonzero(w > 0)[-1] :] = 1.0  # so that u2 < 1 always picks a component
    return Mixture(
        weights=w,
        bounds=bounds,
        builtin=dist.stack([dist.pad(r, max(capacity, r.capacity)) for _, r in builtin]),
        parts=tuple(parts),
        loc=np.zeros(()),
        scale=np.ones(()),
        registered=tuple(per),
    )


def combine(components: Sequence[Any], weights: np.ndarray, capacity: int) -> Mixture:
    """The mixture of ``components`` (rewards of any type; mixtures are flattened) with
    ``weights`` (a validated probability vector)."""
    cols = [(w * wc, c) for w, r in zip(weights, components, strict=True)
            for wc, c in columns_of(r) if w * wc > 0]  # fmt: skip
    return _assemble(cols, _layout([cols]), capacity)


def stack(rewards: Sequence[Any]) -> Mixture:
    """Rewards of any types lifted to one mixture layout and stacked on a new leading axis."""
    lists = [columns_of(r) for r in rewards]
    layout = _layout(lists)
    capacity = max(r.capacity for r in rewards)
    mixtures = [_assemble(cols, layout, capacity) for cols in lists]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *mixtures)
