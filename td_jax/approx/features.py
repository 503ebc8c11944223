"""State features for parametric learners: one-hot, random, tile coding, position, Fourier.

A feature map is a function ``(key, num_states) -> Features``: the table ``f32[S, d]``
whose row ``s`` is the feature vector of state ``s``, and a *unit* vector ``u`` with
``table @ u == 1`` on every state. Every built-in map can represent the constant function,
so a linear learner starts exactly at its initial statistics (``W0 = u init_stat^T``), and
a linear categorical learner stays normalised (Bellemare et al. 2019).

The key makes random features a draw per learner stream: in ``td_jax.run`` every rule of a
seed gets the same draw (common random numbers), every seed its own.

Geometry. Features that need a geometry read the state's *position*: state ``s`` of an
``S``-state task sits at ``x_s = s / (S - 1)`` on the unit interval. That is the natural
embedding of the line tasks (``chain``, ``random_walk``) and exactly the observation of the
continuous-state task (``continuous_walk``, whose grid point ``s`` IS the point ``x_s`` of a
continuous process); on other tasks such features aggregate neighbouring state indices.

Scale. Rows have norm about 1 (one-hot and tile coding exactly 1), so a step size means
about the same change at the visited state whichever features are used, as in the tabular
case. (Sutton and Barto (2018), section 9.5.4, suggest alpha / num_tilings for the same
reason.)

References:
  Sutton & Barto (2018), Reinforcement Learning: An Introduction, 2nd ed., sections 9.5
  (coarse coding, tile coding, Fourier basis) and 9.4 (linear TD and its fixed point).
  Konidaris, Osentoski, Thomas (2011). Value function approximation in reinforcement
  learning using the Fourier basis. AAAI.
  Rahimi & Recht (2007). Random features for large-scale kernel machines. NeurIPS.
  Bellemare, Le Roux, Castro, Lyle (2019). Distributional reinforcement learning with
  linear function approximation. AISTATS. https://arxiv.org/abs/1902.03149
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.approx.specs import from_spec
from td_jax.strict import check_size
from td_jax.types import Array, PRNGKey


class Features(NamedTuple):
    """A feature table and a unit vector ``u`` with ``table @ u == 1`` on every state."""

    table: Array  # f32[S, d]
    unit: Array  # f32[d]


FeatureMap = Callable[[PRNGKey, int], Features]


def positions(num_states: int) -> np.ndarray:
    """f64[S]: the position ``s / (S - 1)`` of each state on the unit interval (0 if S = 1)."""
    return np.linspace(0.0, 1.0, num_states) if num_states > 1 else np.zeros(1)


def one_hot() -> FeatureMap:
    """The tabular case: ``phi(s) = e_s``, d = S. Linear + one-hot + sgd IS the tabular rule."""

    def features(key: PRNGKey, num_states: int) -> Features:
        del key
        return Features(jnp.eye(num_states, dtype=jnp.float32), jnp.ones(num_states, jnp.float32))

    return features


def random_features(num_features: int = 8) -> FeatureMap:
    """Gaussian random features plus a bias: ``phi(s) = [g_s, 1] / sqrt(d)``, g_s ~ N(0, I).

    The classic test bed of linear TD on random MRPs (e.g. Tsitsiklis & Van Roy 1997;
    Lyle et al. 2019); d < S makes the value function unrepresentable in general, so the
    learner converges to the TD fixed point, not to the truth.

    Args:
      num_features: d >= 1, the bias column included.
    """
    d = check_size("random features", "num_features", num_features, 1)
    scale = 1.0 / np.sqrt(d)

    def features(key: PRNGKey, num_states: int) -> Features:
        g = jax.random.normal(key, (num_states, d - 1), jnp.float32)
        table = jnp.concatenate([g, jnp.ones((num_states, 1), jnp.float32)], axis=1) * scale
        unit = jnp.zeros(d, jnp.float32).at[-1].set(1.0 / scale)
        return Features(table, unit)

    return features


def tile_coding(num_tilings: int = 4, num_tiles: int = 4) -> FeatureMap:
    """Tile coding (coarse coding) of the state's position on [0, 1].

    ``num_tilings`` tilings, each ``num_tiles + 1`` tiles of width ``1 / num_tiles``, tiling
    ``t`` offset by ``t / (num_tilings * num_tiles)``; each state activates one tile per
    tiling, each active feature is ``1 / sqrt(num_tilings)`` (so ``|phi(s)| = 1``).
    d = num_tilings * (num_tiles + 1). Sutton & Barto (2018), section 9.5.4.
    """
    n_t = check_size("tile features", "num_tilings", num_tilings, 1)
    n = check_size("tile features", "num_tiles", num_tiles, 1)
    d = n_t * (n + 1)

    def features(key: PRNGKey, num_states: int) -> Features:
        del key
        x = positions(num_states)
        table = np.zeros((num_states, d), np.float32)
        for t in range(n_t):
            idx = np.minimum(np.floor(x * n + t / n_t).astype(np.int64), n)
            table[np.arange(num_states), t * (n + 1) + idx] = 1.0 / np.sqrt(n_t)
        return Features(jnp.asarray(table), jnp.full(d, 1.0 / np.sqrt(n_t), jnp.float32))

    return features


def position() -> FeatureMap:
    """Affine features of the position: ``phi(s) = [1, 2 x_s - 1] / sqrt(2)``.

    Linear learners on these represent exactly the functions affine in the position (the
    value of ``continuous_walk`` at gamma = 1, of Sutton's random walk); they are also the
    raw input of an MLP on a continuous state.
    """

    def features(key: PRNGKey, num_states: int) -> Features:
        del key
        x = 2.0 * positions(num_states) - 1.0
        table = np.stack([np.ones_like(x), x], axis=1) / np.sqrt(2.0)
        return Features(jnp.asarray(table, jnp.float32), jnp.asarray([np.sqrt(2.0), 0.0]))

    return features


def fourier(order: int = 4) -> FeatureMap:
    """Fourier cosine basis of the position: ``phi_k(s) = cos(pi k x_s) / sqrt(order + 1)``.

    k = 0..order (k = 0 is the bias). Konidaris, Osentoski & Thomas (2011).
    """
    m = check_size("fourier features", "order", order, 0)
    scale = 1.0 / np.sqrt(m + 1)

    def features(key: PRNGKey, num_states: int) -> Features:
        del key
        x = positions(num_states)
        table = np.cos(np.pi * np.arange(m + 1)[None, :] * x[:, None]) * scale
        unit = np.zeros(m + 1)
        unit[0] = 1.0 / scale
        return Features(jnp.asarray(table, jnp.float32), jnp.asarray(unit, jnp.float32))

    return features


FEATURES: dict[str, tuple[Callable[..., FeatureMap], str]] = {
    "one_hot": (one_hot, "one feature per state (the tabular case)"),
    "random": (random_features, "Gaussian random features plus a bias, a draw per seed"),
    "tile": (tile_coding, "tile coding (coarse coding) of the position on [0, 1]"),
    "position": (position, "affine features [1, x] of the position"),
    "fourier": (fourier, "Fourier cosine basis of the position (Konidaris et al. 2011)"),
}


def make_features(spec: str | Mapping[str, Any] | FeatureMap) -> FeatureMap:
    """A feature map from a name, ``{"name": ..., **params}``, or a feature map itself.

    Raises:
      ValueError: for an unknown name (the message lists them) or bad parameters.
    """
    if callable(spec):
        return spec
    factories = {name: entry[0] for name, entry in FEATURES.items()}
    allowed = "a name, a mapping with 'name', or a feature map"
    return from_spec("features", spec, factories, allowed=allowed)
