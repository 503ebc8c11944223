"""Lift a per-state kernel into a tabular ``UpdateRule``: a new rule in a few lines.

A kernel sees ONE transition and the statistics of the two states it touches::

    kernel(stat_s, r_t, discount_t, stat_next, step_size, key) -> new stat_s

where ``stat_s`` and ``stat_next`` are ``f32[K]`` (K quantiles, K probabilities, one value
...). ``tabular_rule`` stores a table ``f32[num_states, K]``, gathers the two rows, calls
the kernel and writes the row back, so the caller writes only the 5-15 lines of maths, in
the spirit of rlax's value-learning kernels. Example, TD(0)::

    def td0(v, r_t, discount_t, v_next, step_size, key):
        return v + step_size * (r_t + discount_t * v_next - v)

    rule = tabular_rule(td0, init_stat=jnp.zeros(1), distributional=False)

The rule carries its definition (``rule.definition``, ``td_jax.rules.definition``), so the
same kernel also runs as a control learner (``td_jax.control``) and a parametric one
(``td_jax.approx.make(rule, ...)``). Built-in rules are written the other way round: their
direction once (``RuleDefinition``), and ``tabular_of(definition)`` makes the tabular rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from td_jax import strict
from td_jax.rules.definition import (
    Kernel,
    RuleDefinition,
    equal_atoms,
    kernel_of,
    mean_of_atoms,
    signal_of_kernel,
)
from td_jax.types import Array, PRNGKey, Transition, UpdateRule

# Tables of at most this many entries (and rows of more than one statistic) write the
# updated row back by a select over the whole table instead of a scatter: same values, CTD
# (K = 51) 1.4x and the dopamine quantile cells 1.1x faster on CPU, TD's one-entry rows
# faster by the scatter (10,000 learners on the throughput workload).
SELECT_MAX_ENTRIES = 4096


class TabularState(NamedTuple):
    """State of a tabular learner: one statistic vector per state."""

    table: Array  # f32[num_states, K]


def tabular_of(definition: RuleDefinition) -> UpdateRule:
    """The tabular rule of a definition: kernel ``stat_s + step_size * signal(...)``."""
    return tabular_rule(
        kernel_of(definition),
        init_stat=definition.init_stat,
        values_fn=definition.values_fn,
        distribution_fn=definition.distribution_fn,
        distributional=definition.distributional,
        definition=definition,
    )


def tabular_rule(
    kernel: Kernel,
    *,
    init_stat: Array | Callable[[PRNGKey], Array],
    values_fn: Callable[[Array], Array] = mean_of_atoms,
    distribution_fn: Callable[[Array], tuple[Array, Array]] = equal_atoms,
    distributional: bool = True,
    definition: RuleDefinition | None = None,
) -> UpdateRule:
    """Builds a tabular ``UpdateRule`` from a per-state kernel.

    Args:
      kernel: ``(stat_s f32[K], r_t f32[], discount_t f32[], stat_next f32[K],
        step_size f32[], key) -> f32[K]``, the update of the statistics of ``s_tm1``.
      init_stat: the initial statistics of every state, ``f32[K]``, or a function of a
        PRNG key returning them (called once per state with independent keys).
      values_fn: per-state mean-return estimate from ``f32[K]`` (default: the mean of
        the statistics, right for TD, quantiles and samples).
      distribution_fn: per-state ``(locs f32[K'], probs f32[K'])`` (default: the
        statistics as equally weighted atoms).
      distributional: whether the rule learns more than the mean.
      definition: the rule's definition when the kernel was made from one (``tabular_of``);
        otherwise it is read off the kernel (``signal_of_kernel``), unless ``init_stat``
        is a function (random initial statistics: no parametric form).

    Returns:
      An ``UpdateRule`` whose state is a ``TabularState`` and whose ``definition`` is the
      rule's ``RuleDefinition`` (or None, as above).
    """
    strict.check_kernel("tabular_rule", kernel)
    if definition is None and not callable(init_stat):
        definition = RuleDefinition(
            signal_of_kernel(kernel), init_stat, values_fn, distribution_fn, distributional,
            name=getattr(kernel, "__name__", "kernel").removesuffix("_kernel"),
        )  # fmt: skip

    def init(key: PRNGKey, num_states: int) -> TabularState:
        if callable(init_stat):
            table = jax.vmap(init_stat)(jax.random.split(key, num_states))
        else:
            stat = jnp.asarray(init_stat, jnp.float32)
            table = jnp.broadcast_to(stat, (num_states, *stat.shape))
        chex.assert_rank(table, 2)
        return TabularState(jnp.asarray(table, jnp.float32))

    def update(
        state: TabularState, transition: Transition, step_size: Array, key: PRNGKey
    ) -> TabularState:
        table = state.table
        s_tm1, s_t = transition.s_tm1, transition.s_t
        stat_s, stat_next = table[s_tm1], table[s_t]
        new = kernel(
            stat_s,
            jnp.asarray(transition.r_t, table.dtype),
            jnp.asarray(transition.discount_t, table.dtype),
            stat_next,
            jnp.asarray(step_size, table.dtype),
            key,
        )
        if new.shape != stat_s.shape or new.dtype != stat_s.dtype:
            name = getattr(kernel, "__name__", repr(kernel))
            raise ValueError(
                f"kernel {name} must return {stat_s.dtype}{list(stat_s.shape)} like its "
                f"stat_s input, got {new.dtype}{list(new.shape)}"
            )
        if table.shape[1] > 1 and table.size <= SELECT_MAX_ENTRIES:
            # A one-hot select over the small table: vmapped over learners XLA fuses it
            # with the kernel, where a one-row scatter runs as a separate loop.
            hit = (jnp.arange(table.shape[0]) == s_tm1)[:, None]
            return TabularState(jnp.where(hit, new[None, :], table))
        return TabularState(table.at[s_tm1].set(new))

    def values(state: TabularState) -> Array:
        return jax.vmap(values_fn)(state.table)

    def distribution(state: TabularState) -> tuple[Array, Array]:
        return jax.vmap(distribution_fn)(state.table)

    return UpdateRule(init, update, values, distribution, distributional, definition)
