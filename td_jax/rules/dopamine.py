"""The dopamine population of Dabney et al. (2020): cells with asymmetric learning rates.

Each cell i keeps a prediction V_i(s) and two rates. On a transition it bootstraps from a
randomly chosen cell j at s_t: ``delta_i = r_t + discount_t * V_j(s_t) - V_i(s_tm1)``, and
``V_i += step_size * (alpha_plus_i if delta_i > 0 else alpha_minus_i) * f(delta_i)``.
``f(delta) = delta`` learns the tau_i-expectile and ``f = sign`` the tau_i-quantile, with
``tau_i = alpha_plus_i / (alpha_plus_i + alpha_minus_i)``; cells with tau > 0.5 are
"optimistic". Each cell's learned statistic is its reversal point.

Reference:
  Dabney, Kurth-Nelson, Uchida, Starkweather, Hassabis, Munos, Botvinick (2020). A
  distributional code for value in dopamine-based reinforcement learning. Nature
  577:671-675. https://doi.org/10.1038/s41586-019-1924-6
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from td_jax.fusion import compute_once
from td_jax.rewards import sampling as smp
from td_jax.rules.definition import RuleDefinition
from td_jax.rules.expectile import DEFAULT_ITERATIONS, expectile_readouts, impute_samples
from td_jax.rules.facts import HALF_TD_ONE_STEP, with_facts
from td_jax.rules.quantile import midpoint_taus
from td_jax.rules.tabular import tabular_of
from td_jax.strict import check_finite, check_rates, check_size, check_taus
from td_jax.types import Array, PRNGKey, UpdateRule

DEFAULT_NUM_CELLS = 20  # cells when neither a count nor levels/rates are given


def uniform_indices(key: PRNGKey, n: int) -> Array:
    """n independent cell indices, uniform on {0..n-1}, from one random word each.

    ``floor(u * n)`` for a 23-bit uniform u; its bias, at most n / 2^23, is far below
    anything measured (``jax.random.randint`` draws two words per index). The words are the
    key's own ``jax.random.bits``: JAX's threefry2x32 and the runner's
    ``runner.keys.FUSED_THREEFRY`` (the same hash without JAX's rolled CPU loop) give the same
    bits; other key implementations give their own. The indices depend on the key alone,
    which the runner shares across a stream's step sizes, so ``compute_once`` keeps XLA from
    recomputing the hash for every learner (the rule 1.8-1.9x faster at 1,000 learners on the
    throughput workload than with JAX's loop; same indices).
    """
    u = smp.unit(jax.random.bits(key, (n,), jnp.uint32))
    return compute_once(jnp.minimum(jnp.floor(u * n), n - 1).astype(jnp.int32))


def dopamine_signal(
    v: Array,
    r_t: Array,
    discount_t: Array,
    v_next: Array,
    key: PRNGKey,
    alpha_plus: Array,
    alpha_minus: Array,
    quantile: bool,
) -> Array:
    """The population's direction at one state: ``(alpha_+ or alpha_-)_i * f(delta_i)``.

    ``delta_i = r_t + discount_t * V_j(s_t) - V_i(s_tm1)`` with j drawn uniformly for each
    cell (``key``); the rate is alpha_plus for a positive error, alpha_minus otherwise.

    Args:
      v: f32[n] the cells' predictions at s_tm1.
      r_t, discount_t: f32[] the transition's reward and discount.
      v_next: f32[n] the cells' predictions at s_t.
      key: chooses, for each cell, the cell at s_t it bootstraps from.
      alpha_plus, alpha_minus: f32[n] per-cell rates for positive / negative errors.
      quantile: static; f = sign (quantile code) if True, else f = identity (expectile).
    """
    chex.assert_rank([v, r_t, discount_t, v_next], [1, 0, 0, 1])
    n = v.shape[0]
    j = uniform_indices(key, n)
    delta = r_t + discount_t * v_next[j] - v
    rate = jnp.where(delta > 0.0, alpha_plus, alpha_minus)
    return rate * (jnp.sign(delta) if quantile else delta)


def dopamine_kernel(
    v: Array,
    r_t: Array,
    discount_t: Array,
    v_next: Array,
    step_size: Array,
    key: PRNGKey,
    alpha_plus: Array,
    alpha_minus: Array,
    quantile: bool,
) -> Array:
    """One update of a population of cells at one state:
    ``V_i += step_size * dopamine_signal(...)_i``.

    Args:
      v: f32[n] the cells' predictions at s_tm1.
      r_t, discount_t: f32[] the transition's reward and discount.
      v_next: f32[n] the cells' predictions at s_t.
      step_size: f32[] a global scale on both rates (the swept axis).
      key: chooses, for each cell, the cell at s_t it bootstraps from.
      alpha_plus, alpha_minus: f32[n] per-cell rates for positive / negative errors.
      quantile: static; f = sign (quantile code) if True, else f = identity (expectile).

    Returns:
      f32[n] new predictions at s_tm1.
    """
    g = dopamine_signal(v, r_t, discount_t, v_next, key, alpha_plus, alpha_minus, quantile)
    return v + step_size * g


def _rates(
    rule: str,
    num_cells: int | None,
    taus: Sequence[float] | None,
    alpha_plus: Sequence[float] | None,
    alpha_minus: Sequence[float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    if num_cells is not None and (taus is not None or alpha_plus is not None):
        raise ValueError(
            f"{rule}: give num_cells, or taus, or alpha_plus/alpha_minus (they fix the cell "
            f"count), not num_cells={num_cells!r} with them"
        )
    if (alpha_plus is None) != (alpha_minus is None):
        raise ValueError(f"{rule}: give both alpha_plus and alpha_minus, or neither")
    if alpha_plus is not None:
        if taus is not None:
            raise ValueError(f"{rule}: give either taus or alpha_plus/alpha_minus, not both")
        ap = check_rates(rule, "alpha_plus", alpha_plus)
        am = check_rates(rule, "alpha_minus", alpha_minus)
        if ap.shape != am.shape:
            raise ValueError(
                f"{rule}: alpha_plus and alpha_minus must have the same length, "
                f"got {ap.size} and {am.size}"
            )
        zero = np.flatnonzero(ap + am <= 0.0)
        if zero.size:
            raise ValueError(
                f"{rule}: alpha_plus + alpha_minus must be > 0 for every cell, got 0 for "
                f"cell {int(zero[0])}"
            )
        return ap, am
    if taus is None:
        num_cells = DEFAULT_NUM_CELLS if num_cells is None else num_cells
        taus = midpoint_taus(check_size(rule, "num_cells", num_cells, 1))
    t = check_taus(rule, taus)
    return t, 1.0 - t


def _population(
    quantile: bool, rule: str, num_cells, taus, alpha_plus, alpha_minus, init_value, num_iterations
) -> UpdateRule:
    ap, am = _rates(rule, num_cells, taus, alpha_plus, alpha_minus)
    init_value = check_finite(rule, "init_value", init_value)
    ap_j, am_j = jnp.asarray(ap, jnp.float32), jnp.asarray(am, jnp.float32)

    def signal(v, r_t, discount_t, v_next, key):
        return dopamine_signal(v, r_t, discount_t, v_next, key, ap_j, am_j, quantile)

    init = np.full(ap.shape, init_value, np.float32)
    if quantile:
        definition = RuleDefinition(signal, init, name=rule)
    else:
        tau_arr = jnp.asarray(ap / (ap + am), jnp.float32)
        iters = check_size(rule, "num_iterations", num_iterations, 1)
        values_fn, distribution_fn = expectile_readouts(
            tau_arr, lambda e: impute_samples(e, tau_arr, None, iters)
        )
        definition = RuleDefinition(signal, init, values_fn, distribution_fn, name=rule)
    return tabular_of(definition)


def dopamine_expectile(
    num_cells: int | None = None,
    taus: Sequence[float] | None = None,
    alpha_plus: Sequence[float] | None = None,
    alpha_minus: Sequence[float] | None = None,
    init_value: float = 0.0,
    num_iterations: int = DEFAULT_ITERATIONS,
) -> UpdateRule:
    """Dopamine population, expectile code: f(delta) = delta (Dabney et al. 2020).

    Rates come from ``taus`` (alpha_plus = tau, alpha_minus = 1 - tau), from explicit
    ``alpha_plus`` / ``alpha_minus`` (tau = alpha_plus / (alpha_plus + alpha_minus)), or from
    ``num_cells`` midpoint levels (default 20; only when neither is given). ``values`` reads
    the mean off the cells' expectiles (``td_jax.rules.expectile.expectile_mean``: the
    0.5-expectile, interpolated between the levels either side of 0.5), without a solve;
    ``distribution`` decodes the population by imputation (``num_iterations`` solver
    iterations, ``td_jax.rules.impute_samples``).
    """
    rule = _population(
        False,
        "dopamine_expectile",
        num_cells,
        taus,
        alpha_plus,
        alpha_minus,
        init_value,
        num_iterations,
    )
    return with_facts(rule, mean_step=0.5, baseline="one_step", baseline_why=HALF_TD_ONE_STEP)


def dopamine_quantile(
    num_cells: int | None = None,
    taus: Sequence[float] | None = None,
    alpha_plus: Sequence[float] | None = None,
    alpha_minus: Sequence[float] | None = None,
    init_value: float = 0.0,
) -> UpdateRule:
    """Dopamine population, quantile code: f(delta) = sign(delta) (Dabney et al. 2020).

    Rates as for ``dopamine_expectile``; values are the mean of the cells' quantiles.
    """
    rule = _population(
        True, "dopamine_quantile", num_cells, taus, alpha_plus, alpha_minus, init_value, 1
    )
    return with_facts(rule, step_unit="return")
