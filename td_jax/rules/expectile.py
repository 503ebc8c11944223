"""Expectile TD with imputation (EDRL) and the jittable imputation solver.

References:
  Rowland, Dadashi, Kumar, Munos, Bellemare, Dabney (2019). Statistics and samples in
  distributional reinforcement learning. ICML. https://arxiv.org/abs/1902.08102
  Dabney, Kurth-Nelson, Uchida, Starkweather, Hassabis, Munos, Botvinick (2020). A
  distributional code for value in dopamine-based reinforcement learning. Nature
  577:671-675 (the same imputation decodes rewards from dopamine cells).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.tabular import tabular_rule
from td_jax.rules.validation import check_finite, check_int, check_taus, midpoint_taus
from td_jax.types import Array, PRNGKey, UpdateRule

DEFAULT_NUM_EXPECTILES = 11  # expectiles when neither a count nor levels are given


def expectile_residuals(samples: Array, expectiles: Array, taus: Array) -> Array:
    """``mean_j [tau_i (x_j - e_i)_+ - (1 - tau_i)(e_i - x_j)_+]`` for each level i.

    Zero for every i exactly when e_i is the tau_i-expectile of the samples' empirical
    distribution (SCIENCE.md section 4).
    """
    diff = samples[None, :] - expectiles[:, None]
    return jnp.mean(
        taus[:, None] * jnp.maximum(diff, 0.0) - (1.0 - taus[:, None]) * jnp.maximum(-diff, 0.0),
        axis=1,
    )


def solve_spd(matrix: Array, rhs: Array) -> Array:
    """Solves ``matrix @ x = rhs`` for a small symmetric positive-definite matrix.

    Gauss-Jordan elimination without pivoting (stable for SPD matrices), unrolled over the
    static size so that, vmapped over thousands of learners, XLA vectorises it across
    learners; a batched LAPACK call per tiny matrix was EDRL's bottleneck on CPU.
    """
    n = matrix.shape[0]
    aug = jnp.concatenate([matrix, rhs[:, None]], axis=1)
    for k in range(n):
        pivot = aug[k] / aug[k, k]
        aug = aug - aug[:, k : k + 1] * pivot[None, :]
        aug = aug.at[k].set(pivot)
    return aug[:, n]


def impute_samples(
    expectiles: Array, taus: Array, num_samples: int | None = None, num_iterations: int = 20
) -> Array:
    """Samples whose expectiles match the given ones (Rowland et al. 2019, section 5).

    Minimises ``sum_i residual_i(x)^2`` (see ``expectile_residuals``) by damped Gauss-Newton
    (Levenberg-Marquardt) with backtracking and a fixed iteration budget, so it is
    jittable and vmappable.
    The residuals are piecewise linear in x with Jacobian
    ``J_ij = (tau_i 1{x_j > e_i} + (1 - tau_i) 1{x_j <= e_i}) / N``, so Gauss-Newton is exact
    once the ordering of samples against expectiles settles; the start spreads the
    expectiles away from their mean, since samples are more dispersed than expectiles.
    With N equally weighted samples an exact match need not exist; on the Dabney et al.
    magnitude distribution the largest residual left is about 0.5% of the reward range
    (tests/test_rules_reductions.py states the bound).

    Args:
      expectiles: f32[m] expectile estimates.
      taus: f32[m] their levels, in (0, 1).
      num_samples: N, the number of samples to impute (default m).
      num_iterations: the fixed solver budget.

    Returns:
      f32[N] imputed samples, sorted.
    """
    chex.assert_rank([expectiles, taus], 1)
    m = expectiles.shape[0]
    n = m if num_samples is None else num_samples
    mean = jnp.mean(expectiles)
    # Start: expectile values interpolated at N evenly spaced levels, spread x2 about the
    # mean (expectiles are contracted towards the mean relative to quantiles).
    order = jnp.argsort(taus)
    grid = (jnp.arange(n, dtype=expectiles.dtype) + 0.5) / n
    x0 = jnp.interp(grid, taus[order], expectiles[order])
    x0 = mean + 2.0 * (x0 - mean)
    fractions = jnp.asarray([1.0, 0.5, 0.25, 0.125, 0.0625, 0.0], expectiles.dtype)

    def objective(x: Array) -> Array:
        return jnp.sum(expectile_residuals(x, expectiles, taus) ** 2)

    def body(x, _):
        res = expectile_residuals(x, expectiles, taus)
        above = (x[None, :] > expectiles[:, None]).astype(x.dtype)
        jac = (taus[:, None] * above + (1.0 - taus[:, None]) * (1.0 - above)) / n
        jtj = jac.T @ jac
        damping = 1e-6 * jnp.trace(jtj) / n + 1e-12
        step = solve_spd(jtj + damping * jnp.eye(n, dtype=x.dtype), jac.T @ res)
        # Backtracking over a fixed set of fractions (0 included): never increases the
        # objective, which keeps the fixed budget safe across the residuals' kinks.
        candidates = x[None, :] - fractions[:, None] * step[None, :]
        best = jnp.argmin(jax.vmap(objective)(candidates))
        return candidates[best], None

    x, _ = jax.lax.scan(body, x0, None, length=num_iterations)
    return jnp.sort(x)


def expectile_kernel(e: Array, targets: Array, step_size: Array, taus: Array) -> Array:
    """The expectile-regression step ``e_i += alpha * mean_j |tau_i - 1{y_j < e_i}| (y_j - e_i)``.

    Args:
      e: f32[m] expectile estimates at s_tm1.
      targets: f32[N] target samples y_j.
      step_size: f32[] alpha.
      taus: f32[m] levels.
    """
    chex.assert_rank([e, targets, taus], 1)
    diff = targets[None, :] - e[:, None]
    weight = jnp.abs(taus[:, None] - (diff < 0.0).astype(e.dtype))
    return e + step_size * jnp.mean(weight * diff, axis=1)


def edrl_setup(
    num_expectiles: int | None,
    taus: list[float] | None,
    num_samples: int | None,
    num_iterations: int,
    init_value: float,
) -> tuple[np.ndarray, int | None, int, float]:
    """Validates EDRL's hyperparameters: (levels, samples or None, iterations, init value).

    Shared by the tabular rule and its parametric form (``td_jax.approx.signals.edrl``).
    """
    if taus is None:
        num_expectiles = DEFAULT_NUM_EXPECTILES if num_expectiles is None else num_expectiles
        taus_np = midpoint_taus(check_int("edrl", "num_expectiles", num_expectiles, 1))
    elif num_expectiles is not None:
        raise ValueError(
            f"edrl: give num_expectiles or taus (they fix the count), not "
            f"num_expectiles={num_expectiles!r} with them"
        )
    else:
        taus_np = check_taus("edrl", taus)
    n = None if num_samples is None else check_int("edrl", "num_samples", num_samples, 1)
    iters = check_int("edrl", "num_iterations", num_iterations, 1)
    return taus_np, n, iters, check_finite("edrl", "init_value", init_value)


def edrl(
    num_expectiles: int | None = None,
    taus: list[float] | None = None,
    num_samples: int | None = None,
    num_iterations: int = 20,
    init_value: float = 0.0,
) -> UpdateRule:
    """EDRL: expectile TD with imputation at the next state (Rowland et al. 2019).

    Naive expectile TD treats learned expectiles as samples of the next return and
    collapses towards the mean; EDRL imputes samples x_j at s_t whose expectiles match the
    learned ones, then regresses e(s_tm1) towards y_j = r_t + discount_t * x_j.

    Args:
      num_expectiles: m >= 1 (default 11), with midpoint levels (2i-1)/(2m); not with ``taus``.
      taus: explicit expectile levels in (0, 1).
      num_samples: N imputed samples (default m).
      num_iterations: the imputation solver's fixed budget (>= 1).
      init_value: the initial value of every expectile.
    """
    taus_np, n, iters, init_value = edrl_setup(
        num_expectiles, taus, num_samples, num_iterations, init_value
    )
    tau_arr = jnp.asarray(taus_np, jnp.float32)

    def impute(e: Array) -> Array:
        return impute_samples(e, tau_arr, n, iters)

    def kernel(e, r_t, discount_t, e_next, step_size, key: PRNGKey):
        del key
        chex.assert_rank([e, r_t, discount_t, e_next], [1, 0, 0, 1])
        # With discount 0 the target does not depend on s_t: skip the solve.
        samples = jax.lax.cond(discount_t == 0.0, jnp.sort, impute, e_next)
        return expectile_kernel(e, r_t + discount_t * samples, step_size, tau_arr)

    kernel.__name__ = "edrl_kernel"
    return expectile_rule(kernel, tau_arr, impute, taus_np.size, init_value)


def expectile_rule(kernel, tau_arr: Array, impute, num_stats: int, init_value: float):
    """A tabular rule whose statistics are expectiles: values and distribution by imputation.

    The mean estimate is the 0.5-expectile where that level is learned (it is the mean),
    otherwise the mean of the imputed samples.
    """
    half = jnp.argmin(jnp.abs(tau_arr - 0.5))
    has_half = bool(jnp.abs(tau_arr[half] - 0.5) < 1e-6)

    def values_fn(e: Array) -> Array:
        return e[half] if has_half else jnp.mean(impute(e))

    def distribution_fn(e: Array) -> tuple[Array, Array]:
        x = impute(e)
        return x, jnp.full(x.shape, 1.0 / x.shape[0], x.dtype)

    return tabular_rule(
        kernel,
        init_stat=jnp.full((num_stats,), init_value, jnp.float32),
        values_fn=values_fn,
        distribution_fn=distribution_fn,
    )
