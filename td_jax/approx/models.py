"""Approximators: flax models from state features to a learner's statistics.

A ``Model`` is a pair of pure functions, like ``td_jax.UpdateRule``:
``init(key, features, init_stat) -> params`` and ``apply(params, phi f32[..., d]) -> f32[..., K]``.
Both built-in models start at the rule's initial statistics on every state, as a tabular
learner does, so classical and distributional learners start from the same estimate:

* ``linear``: ``phi @ W`` without a bias (the feature map carries one where it has one),
  ``W0 = u init_stat^T`` with ``u`` the feature map's unit vector. With one-hot features
  this is exactly a table (Sutton & Barto 2018, section 9.4).
* ``mlp``: hidden Dense layers (LeCun-normal init) and a readout whose kernel starts at zero
  and whose bias starts at ``init_stat`` (so the initial output is ``init_stat`` and the
  hidden layers get gradient once the readout has moved).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from td_jax import strict
from td_jax.approx.features import Features
from td_jax.approx.specs import from_spec
from td_jax.types import Array, PRNGKey

Params = Any  # a flax parameter pytree

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


class Model(NamedTuple):
    """A parametric approximator: ``init(key, features, init_stat)``, ``apply(params, phi)``."""

    init: Callable[[PRNGKey, Features, Array], Params]
    apply: Callable[[Params, Array], Array]
    name: str = "model"


class _Linear(nn.Module):
    num_outputs: int

    @nn.compact
    def __call__(self, phi: Array) -> Array:
        return nn.Dense(self.num_outputs, use_bias=False, name="readout")(phi)


class _MLP(nn.Module):
    hidden: tuple[int, ...]
    num_outputs: int
    activation: str

    @nn.compact
    def __call__(self, phi: Array) -> Array:
        x = phi
        for i, width in enumerate(self.hidden):
            x = ACTIVATIONS[self.activation](nn.Dense(width, name=f"hidden_{i}")(x))
        return nn.Dense(self.num_outputs, kernel_init=nn.initializers.zeros, name="readout")(x)


def linear(num_outputs: int) -> Model:
    """Linear readout ``phi @ W`` (d x K weights), starting at ``init_stat`` on every state."""
    module = _Linear(num_outputs)

    def init(key: PRNGKey, features: Features, init_stat: Array) -> Params:
        del key  # deterministic: the initial statistics on every state
        kernel = features.unit[:, None] * jnp.asarray(init_stat, jnp.float32)[None, :]
        return {"params": {"readout": {"kernel": kernel}}}  # module.init's structure

    return Model(init, module.apply, "linear")


def mlp(num_outputs: int, hidden: Sequence[int] = (32, 32), activation: str = "relu") -> Model:
    """A multilayer perceptron with a zero-initialised readout biased to ``init_stat``.

    Args:
      num_outputs: K, the statistics per state.
      hidden: widths of the hidden layers.
      activation: one of ``ACTIVATIONS``.
    """
    widths = strict.integers(hidden)
    if widths is None or widths.size == 0 or np.any(widths < 1):
        raise ValueError(
            f"mlp: hidden must be non-empty positive widths (a sequence of integers >= 1), "
            f"got {hidden!r}"
        )
    widths = tuple(widths.tolist())
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"mlp: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    module = _MLP(widths, num_outputs, activation)

    def init(key: PRNGKey, features: Features, init_stat: Array) -> Params:
        params = module.init(key, features.table[0])
        bias = jnp.asarray(init_stat, jnp.float32)
        return jax.tree_util.tree_map_with_path(
            lambda path, x: bias if _is_readout_bias(path) else x, params
        )

    return Model(init, module.apply, "mlp")


def _is_readout_bias(path) -> bool:
    keys = [getattr(p, "key", None) for p in path]
    return keys[-2:] == ["readout", "bias"]


MODELS: dict[str, Callable[..., Model]] = {"linear": linear, "mlp": mlp}


def make_model(spec: str | Mapping[str, Any] | Callable[[int], Model], num_outputs: int) -> Model:
    """A model with ``num_outputs`` outputs from a name, ``{"name": ..., **params}`` or a
    callable ``num_outputs -> Model``."""
    if callable(spec):
        return spec(num_outputs)
    allowed = "a name, a mapping with 'name', or a callable"
    return from_spec("approximator", spec, MODELS, num_outputs, allowed=allowed)
