"""One definition per rule: the direction its statistics move, and what they mean.

A TD rule keeps a statistic vector ``f32[K]`` per state (one value, K quantiles, K
probabilities, K expectiles, K cells) and is defined by the direction one transition moves
the statistic of the state it leaves::

    stat_s += step_size * signal(stat_s, r_t, discount_t, stat_next, key)

with ``stat_next`` the statistic of the state it reaches (a sample of r + gamma Z(s') is
built from it). ``signal`` does not depend on the step size. Every setting is a lifting of
that one definition, never a re-derivation:

* prediction: ``td_jax.rules.tabular_of(definition)``, the tabular rule whose kernel is
  ``stat_s + step_size * signal(...)``;
* control: ``td_jax.control`` runs the tabular rule on state-action rows toward the greedy
  target (s', argmax_a' mean Z(s', a'));
* parametric: ``td_jax.approx.parametric_rule`` follows ``signal`` through a model (its
  semi-gradient: the negative gradient of the rule's loss with the target held fixed,
  Sutton & Barto 2018, section 9.3).

A rule written as a kernel for ``tabular_rule`` gets its definition by
``signal = kernel(..., step_size=1) - stat`` (``signal_of_kernel``), exact for kernels
affine in the step size, as every built-in one is; so a user's rule runs in all three
settings too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from td_jax.protocols import Kernel
from td_jax.types import Array, PRNGKey

Signal = Callable[[Array, Array, Array, Array, PRNGKey], Array]

# Hyperparameter aliases every entry point accepts (rules.make, approx.make, suites).
ALIASES: dict[str, str] = {"m": "num_quantiles", "K": "num_atoms", "lam": "lambda_",
                           "lambda": "lambda_"}  # fmt: skip


def canonical(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hparams`` with every alias (``ALIASES``) replaced by its full name; refuses both."""
    out = dict(hparams)
    for alias, name in ALIASES.items():
        if alias in out:
            if name in out:
                raise ValueError(f"give {name!r} or its alias {alias!r}, not both")
            out[name] = out.pop(alias)
    return out


def mean_of_atoms(stat: Array) -> Array:
    """The mean of equally weighted atoms (TD's one value, quantiles, samples)."""
    return jnp.mean(stat)


def equal_atoms(stat: Array) -> tuple[Array, Array]:
    """The statistics as equally weighted atoms."""
    return stat, jnp.full(stat.shape, 1.0 / stat.shape[0], dtype=stat.dtype)


@dataclasses.dataclass(frozen=True, eq=False)
class RuleDefinition:
    """A rule, once: its direction and the meaning of its K statistics per state.

    Compared and hashed by identity (a rule object, like its functions), so rules that
    carry one stay usable as cache keys.

    Attributes:
      signal: ``(stat_s f32[K], r_t, discount_t, stat_next f32[K], key) -> f32[K]``.
      init_stat: f32[K], every state's initial statistics.
      values_fn: ``f32[K] -> f32[]``, the mean-return estimate.
      distribution_fn: ``f32[K] -> (locs f32[K'], probs f32[K'])``.
      distributional: whether the statistics say more than the mean.
      name: for messages.
    """

    signal: Signal
    init_stat: Any
    values_fn: Callable[[Array], Array] = mean_of_atoms
    distribution_fn: Callable[[Array], tuple[Array, Array]] = equal_atoms
    distributional: bool = True
    name: str = "rule"

    def __post_init__(self):
        stat = np.asarray(self.init_stat)
        if stat.ndim != 1 or stat.size < 1 or not np.all(np.isfinite(stat)):
            raise ValueError(
                f"{self.name}: init_stat must be a finite f32[K] vector with K >= 1, got shape "
                f"{stat.shape}"
            )
        object.__setattr__(self, "init_stat", jnp.asarray(stat, jnp.float32))


def kernel_of(definition: RuleDefinition) -> Kernel:
    """The tabular kernel of a definition: ``stat_s + step_size * signal(...)``."""
    signal = definition.signal

    def kernel(stat_s, r_t, discount_t, stat_next, step_size, key):
        return stat_s + step_size * signal(stat_s, r_t, discount_t, stat_next, key)

    kernel.__name__ = f"{definition.name}_kernel"
    return kernel


def signal_of_kernel(kernel: Kernel) -> Signal:
    """The direction of a tabular kernel: ``kernel(..., step_size=1) - stat``.

    Exact (up to float rounding) for kernels affine in the step size, which every built-in
    kernel is; this is how a user's kernel for ``tabular_rule`` drives a parametric learner.
    """

    def signal(stat, r_t, discount_t, stat_next, key):
        return kernel(stat, r_t, discount_t, stat_next, jnp.ones((), stat.dtype), key) - stat

    signal.__name__ = f"{getattr(kernel, '__name__', 'kernel')}_signal"
    return signal
