"""Expectile TD with imputation (EDRL) and the jittable imputation solver.

References:
  Rowland, Dadashi, Kumar, Munos, Bellemare, Dabney (2019). Statistics and samples in
  distributional reinforcement learning. ICML. https://arxiv.org/abs/1902.08102
  Dabney, Kurth-Nelson, Uchida, Starkweather, Hassabis, Munos, Botvinick (2020). A
  distributional code for value in dopamine-based reinforcement learning. Nature
  577:671-675 (the same imputation decodes rewards from dopamine cells).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.definition import RuleDefinition, equal_atoms
from td_jax.rules.facts import HALF_TD_ONE_STEP, with_facts
from td_jax.rules.quantile import midpoint_taus
from td_jax.rules.tabular import tabular_of
from td_jax.strict import check_finite, check_size, check_taus
from td_jax.types import Array, PRNGKey, UpdateRule

DEFAULT_NUM_EXPECTILES = 11  # expectiles when neither a count nor levels are given
DEFAULT_ITERATIONS = 2  # imputation solves after the start (impute_samples)
STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.125)  # of each solve's step, the best one taken


def expectile_residuals(samples: Array, expectiles: Array, taus: Array) -> Array:
    """``mean_j [tau_i (x_j - e_i)_+ - (1 - tau_i)(e_i - x_j)_+]`` for each level i.

    Zero for every i exactly when e_i is the tau_i-expectile of the samples' empirical
    distribution (SCIENCE.md section 4).
    """
    diff = samples[None, :] - expectiles[:, None]
    terms = taus[:, None] * jnp.maximum(diff, 0.0) - (1.0 - taus[:, None]) * jnp.maximum(-diff, 0.0)
    return _sum(terms, 1) / samples.shape[0]


def _sum(x: Array, axis: int = -1) -> Array:
    """Sum along ``axis`` as a fixed tree of elementwise additions (halves added pairwise,
    an odd last element carried). A reduce's order of additions is XLA's choice, per shape:
    alone and inside a batch of another size it rounds differently (batch invariance,
    ``impute_samples``)."""
    axis = axis % x.ndim
    while x.shape[axis] > 1:
        size, half = x.shape[axis], x.shape[axis] // 2
        pair = jax.lax.slice_in_dim(x, 0, half, axis=axis) + jax.lax.slice_in_dim(
            x, half, 2 * half, axis=axis
        )
        if size % 2:
            pair = jnp.concatenate([pair, jax.lax.slice_in_dim(x, size - 1, size, axis=axis)], axis)
        x = pair
    return jnp.squeeze(x, axis)


# -- imputation ---------------------------------------------------------------------------
# Shapes are short vectors (m levels, n samples) and the runner vmaps over thousands of
# learners. XLA CPU's sort and cumsum dominate at these sizes: sorts count ranks instead,
# and prefix sums are log-depth scans. Float sums are ``_sum``'s fixed trees.

_TINY = 1e-12


def _sort(x: Array) -> Array:
    """Ascending sort of a short vector: ranks by counting, then one gather."""
    idx = jnp.arange(x.shape[0])
    xj, xk = x[:, None], x[None, :]
    rank = jnp.sum((xk < xj) | ((xk == xj) & (idx[None, :] < idx[:, None])), axis=1)
    return x[jnp.sum(jnp.where(rank[None, :] == idx[:, None], idx[None, :], 0), axis=1)]


def _prefix(x: Array) -> Array:
    """``[0, x_0, x_0 + x_1, ...]`` along axis 0 (a log-depth scan: the same additions in
    the same order however the caller batches, unlike a matrix product)."""
    return jnp.concatenate([jnp.zeros_like(x[:1]), jax.lax.associative_scan(jnp.add, x)])


def _bracket(expectiles: Array, taus: Array) -> tuple[Array, Array]:
    """Linear interpolation of the expectile curve at tau = 0.5, and its worst-case error.

    With a and b the levels nearest 0.5 from below and above, exact expectiles pin the
    mean to ``e_a + (e_b - e_a) ((0.5 - tau_a) + (1 - 2P) h) / (tau_b - tau_a)``, where
    ``P`` in [0, 1] is the average CDF over [e_a, e_b] and
    ``h = (1 - 2 tau_a)(2 tau_b - 1) / 2``: subtract ``tau E(X - e)_+ = (1 - tau) E(e - X)_+``
    at both levels. P = 1/2 is the interpolation; the error is at most ``|e_b - e_a| h /
    (tau_b - tau_a)``, 0 when a level is 0.5.
    """
    a = jnp.argmax(jnp.where(taus <= 0.5, taus, -jnp.inf))
    b = jnp.argmin(jnp.where(taus >= 0.5, taus, jnp.inf))
    t_a, t_b, e_a, e_b = taus[a], taus[b], expectiles[a], expectiles[b]
    gap = jnp.where(t_b > t_a, t_b - t_a, 1.0)
    frac = jnp.clip(jnp.where(t_b > t_a, (0.5 - t_a) / gap, 0.0), 0.0, 1.0)
    half = jnp.maximum((1.0 - 2.0 * t_a) * (2.0 * t_b - 1.0), 0.0) / (2.0 * gap)
    return e_a + frac * (e_b - e_a), jnp.abs(e_b - e_a) * half


@jax.jit
def expectile_mean(expectiles: Array, taus: Array) -> Array:
    """The mean read off expectiles: the 0.5-expectile, estimated when it is not learned.

    Linear interpolation in tau between the levels a, b nearest 0.5 on either side, then
    moved into the range of means for which the cell-average CDFs the expectiles imply
    (``_start``; each affine in the mean) are nondecreasing, as a distribution's are. For
    exact expectiles of any distribution the true mean satisfies both constraints, so the
    error is at most the interpolation's, ``|e_b - e_a| (1 - 2 tau_a)(2 tau_b - 1) /
    (2 (tau_b - tau_a))`` (``_bracket``): 0 when 0.5 is a level, ``0.025 |e_b - e_a|`` for
    20 midpoint levels, where the second step leaves a few percent of that
    (tests/test_imputation.py). Needs a level on each side of 0.5 (or at it).

    Args:
      expectiles: f32[m] expectile estimates.
      taus: f32[m] their levels, in (0, 1).

    Returns:
      f32[] the mean estimate.
    """
    chex.assert_rank([expectiles, taus], 1)
    return _mean_estimate(_sort(expectiles), jnp.sort(taus.astype(expectiles.dtype)))


def _mean_estimate(e: Array, t: Array) -> Array:
    """``expectile_mean`` for sorted e and t."""
    mean0, bound = _bracket(e, t)
    mu = mean0
    if e.shape[0] >= 3:
        # U_i = E(X - e_i)_+ = alpha_i (mean - e_i), so each Fbar_i = g_i + h_i mean.
        informative = jnp.abs(1.0 - 2.0 * t) > 1e-3
        alpha = (1.0 - t) / jnp.where(informative, 1.0 - 2.0 * t, 1.0)
        width = jnp.maximum(jnp.diff(e), _TINY)
        dg, dh = jnp.diff(-jnp.diff(alpha * e) / width), jnp.diff(jnp.diff(alpha) / width)
        valid = jnp.abs(dh) > 1e-6 * jnp.max(jnp.abs(dh))
        root = -dg / jnp.where(valid, dh, 1.0)
        lo = jnp.max(jnp.where(valid & (dh > 0), root, -jnp.inf))
        hi = jnp.min(jnp.where(valid & (dh < 0), root, jnp.inf))
        # Rounding can cross the two ends where they meet (no mass near the mean).
        mu = jnp.clip(mu, jnp.minimum(lo, hi), jnp.maximum(lo, hi))
    return jnp.clip(mu, mean0 - bound, mean0 + bound)


def _start(e: Array, t: Array, n: int) -> Array:
    """Sorted samples from the cell-average CDFs that sorted expectiles e (levels t) imply.

    Given the mean, ``U(e_i) = E(X - e_i)_+ = (1 - t_i)(mean - e_i) / (1 - 2 t_i)`` and the
    cell between e_i and e_i+1 has average CDF ``Fbar_i = 1 + (U_i+1 - U_i) / (e_i+1 - e_i)``.
    N equal atoms match every expectile exactly iff each count k_i = #{x <= e_i} satisfies
    ``N Fbar_i-1 <= k_i <= N Fbar_i``: the count chosen is the one in that range nearest
    N F(e_i), F(e_i) interpolated between neighbouring cells (the nearer end if no integer
    fits); the samples then spread evenly over their cells.
    """
    m = e.shape[0]
    w = 1.0 - 2.0 * t
    informative = jnp.abs(w) > 1e-3
    mu = _mean_estimate(e, t)
    u = (1.0 - t) * (mu - e) / jnp.where(informative, w, 1.0)
    # A level at tau = 0.5 says nothing of U beyond the mean: U there is read off the line
    # through its neighbours.
    e_l, e_r = jnp.roll(e, 1), jnp.roll(e, -1)
    u_l, u_r = jnp.roll(u, 1), jnp.roll(u, -1)
    u_mid = u_l + (u_r - u_l) * (e - e_l) / jnp.maximum(e_r - e_l, _TINY)
    interior = (jnp.arange(m) > 0) & (jnp.arange(m) < m - 1)
    u = jnp.where(informative, u, jnp.where(interior, u_mid, 0.5 * jnp.abs(mu - e)))
    width = jnp.diff(e)
    fbar = jnp.clip(1.0 + jnp.diff(u) / jnp.maximum(width, _TINY), 0.0, 1.0)
    fbar = jax.lax.cummax(jnp.where(width > 0, fbar, 0.0))
    if m >= 3:
        # F(e_i) between the cell averages either side: the rise splits as the rises next
        # to it do (a flat neighbour holds no mass), else linearly in the cell widths.
        f_l, f_r, w_l, w_r = fbar[:-1], fbar[1:], width[:-1], width[1:]
        rise = jnp.diff(fbar)
        rise_l = jnp.concatenate([rise[:1], rise[:-1]])
        rise_r = jnp.concatenate([rise[1:], rise[-1:]])
        eps = 1e-3 / n
        share = (rise_l + eps * w_l / jnp.maximum(w_l + w_r, _TINY)) / (rise_l + rise_r + eps)
        first = fbar[0] - (fbar[1] - fbar[0]) * width[0] / jnp.maximum(width[0] + width[1], _TINY)
        last = fbar[-1] + (fbar[-1] - fbar[-2]) * width[-1] / jnp.maximum(
            width[-1] + width[-2], _TINY
        )
        f_at = jnp.concatenate([first[None], f_l + (f_r - f_l) * share, last[None]])
    else:
        f_at = jnp.concatenate([fbar, fbar])
    lower_tail = jnp.maximum(u[0] - (mu - e[0]), 0.0)  # E(e_1 - X)_+
    upper_tail = jnp.maximum(u[-1], 0.0)  # E(X - e_m)_+
    lo = jnp.ceil(n * jnp.concatenate([jnp.zeros(1, e.dtype), fbar]) - 1e-4)
    hi = jnp.floor(n * jnp.concatenate([fbar, jnp.ones(1, e.dtype)]) + 1e-4)
    k = jnp.clip(jnp.round(n * f_at), jnp.minimum(lo, hi), jnp.maximum(lo, hi))
    k = jax.lax.cummax(jnp.clip(k, 0.0, n))
    # Mass beyond the outer expectiles needs a sample there.
    k = jnp.clip(k, jnp.where(lower_tail > 0, 1.0, 0.0), jnp.where(upper_tail > 0, n - 1.0, n))
    edges = jnp.concatenate([jnp.zeros(1, e.dtype), k])  # first sample of each cell
    count = jnp.maximum(jnp.diff(jnp.concatenate([edges, jnp.full((1,), n, e.dtype)])), 1.0)
    # A tail's samples lie at mean distance d beyond the outer expectile, as E(e_1 - X)_+
    # or E(X - e_m)_+ require, spread over [d/2, 3d/2] (a compromise between an atom there
    # and a continuous tail: the expectiles do not tell them apart).
    d_lo = n * lower_tail / count[0]
    d_hi = n * upper_tail / count[-1]
    left = jnp.concatenate([(e[0] - 1.5 * d_lo)[None], e[:-1], (e[-1] + 0.5 * d_hi)[None]])
    span = jnp.concatenate([d_lo[None], width, d_hi[None]])
    j = jnp.arange(n, dtype=e.dtype)
    cell = jnp.sum(k[None, :] <= j[:, None], axis=1, dtype=jnp.int32)
    return left[cell] + (j - edges[cell] + 0.5) / count[cell] * span[cell]


def _spread_start(e: Array, t: Array, n: int) -> Array:
    """Sorted e interpolated at N evenly spaced levels and spread x2 about their mean
    (expectiles are contracted towards the mean relative to quantiles)."""
    grid = (jnp.arange(n, dtype=e.dtype) + 0.5) / n
    mean = _sum(e) / e.shape[0]
    return mean + 2.0 * (jnp.interp(grid, t, e) - mean)


def _objective(x: Array, e: Array, t: Array) -> Array:
    res = expectile_residuals(x, e, t)
    return _sum(res * res)


def _propose(x: Array, e: Array, t: Array, n: int) -> tuple[Array, Array]:
    """Residuals at sorted x and the least-squares minimiser of their linear piece.

    With k_i = #{x_j <= e_i} fixed, ``N residual_i = (1 - 2 t_i) S_k_i + t_i S_N - e_i c_i``
    in the prefix sums S_k of sorted x (``c_i = (1 - t_i) k_i + t_i (N - k_i)``): each S_k
    is fitted in closed form given S_N, then S_N. The samples between two consecutive
    counts shift together by their share of the change, which keeps their spread.
    """
    ki = jnp.sum(x[None, :] <= e[:, None], axis=1, dtype=jnp.int32)  # nondecreasing
    k = ki.astype(x.dtype)
    prefix = _prefix(x)  # [n+1]
    s_k, s_n = prefix[ki], prefix[n]
    a = jnp.where((ki > 0) & (ki < n), 1.0 - 2.0 * t, 0.0)
    c = jnp.where(ki == n, 1.0 - t, t)
    b = e * ((1.0 - t) * k + t * (n - k))
    res = (a * s_k + c * s_n - b) / n
    # Sums over each run of levels sharing a count, summed directly: a difference of
    # prefix sums would cancel catastrophically for the small a_i near tau = 0.5.
    same = (ki[None, :] == ki[:, None]).astype(x.dtype)  # [m, m]
    run = _sum(same[:, :, None] * jnp.stack([a * a, a * b, a * c], 1)[None], 1)
    aa, ab, ac = run[:, 0], run[:, 1], run[:, 2]
    ok = aa > 1e-8  # a run of tau = 0.5 levels leaves its S_k free: kept
    inv = jnp.where(ok, 1.0 / jnp.where(ok, aa, 1.0), 0.0)
    alpha = c - a * ac * inv  # residual_i = alpha_i S_N + beta_i once S_k is fitted
    beta = jnp.where(ok, a * ab * inv, a * s_k) - b
    den = _sum(alpha * alpha)
    s_n_new = jnp.where(den > 1e-6, -_sum(alpha * beta) / jnp.where(den > 1e-6, den, 1.0), s_n)
    s_new = jnp.where(ok, (ab - ac * s_n_new) * inv, s_k)
    s_new = jnp.where(ki == 0, 0.0, jnp.where(ki == n, s_n_new, s_new))
    zero = jnp.zeros(1, x.dtype)
    knots = jnp.concatenate([zero, k, zero + n])
    shift = jnp.concatenate([zero, s_new - s_k, (s_n_new - s_n)[None]])
    per_cell = jnp.diff(shift) / jnp.maximum(jnp.diff(knots), 1.0)  # [m+1]
    cell = jnp.sum(e[None, :] < x[:, None], axis=1, dtype=jnp.int32)
    return res, x + per_cell[cell]


@functools.partial(jax.jit, static_argnames=("num_samples", "num_iterations"))
def impute_samples(
    expectiles: Array,
    taus: Array,
    num_samples: int | None = None,
    num_iterations: int = DEFAULT_ITERATIONS,
) -> Array:
    """Samples whose expectiles match the given ones (Rowland et al. 2019, section 5).

    Minimises ``sum_i residual_i(x)^2`` (``expectile_residuals``) over N equally weighted
    samples. The residuals are piecewise linear in x, linear while the counts
    ``k_i = #{x_j <= e_i}`` stay fixed. Of two starts the better is kept: one reads the
    counts off the expectiles (``_start``: N equal atoms match every expectile exactly iff
    ``N Fbar_i-1 <= k_i <= N Fbar_i``, with Fbar the average CDF over each cell between
    neighbouring expectiles, which the expectiles determine given the mean), the other
    spreads the expectiles x2 about their mean (``_spread_start``; it wins on
    inconsistent, learned expectiles at clustered levels, e.g. Dabney et al.'s cells).
    Each iteration solves the current linear piece exactly, in closed form
    (``_propose``), and moves to the best of that solve and fractions of the way to it
    (``STEP_FRACTIONS``), never up the objective. The budget is fixed and there is no
    data-dependent control flow, so the solve is jittable and vmappable; it is also
    batch-invariant: a vector's samples are the same bits alone, in a vmapped batch of
    any size, and with constant or traced levels (tests/test_imputation.py). Expectiles are
    rearranged (sorted against sorted levels, as true ones are) and solved relative to
    the median expectile (float32 at large offsets).

    Accuracy (tests/test_imputation.py): given exact midpoint expectiles (11 and 20
    levels) of a 4-atom, a bimodal, the exponential, a Student-t (3) and Dabney et al.'s
    magnitude law, the samples' Wasserstein-1 distance to the law is 0.47-1.04x that of
    scipy's multi-start L-BFGS-B optimum of the same objective (the test allows 1.25x).
    Where N equal atoms can match exactly the residuals reach float32 rounding after one
    iteration; where they cannot (an atom whose mass is not a multiple of 1/N) the
    largest residual left is small (0.05% of the range for Dabney's magnitudes, 11
    levels; tests/test_rules_reductions.py bounds it by 0.2%). On 40 learned cells at
    random levels (the Dabney 2020 reproduction) the objective keeps falling to about
    20 iterations: use more there.

    Args:
      expectiles: f32[m] expectile estimates.
      taus: f32[m] their levels, in (0, 1).
      num_samples: N, the number of samples to impute (default m).
      num_iterations: linear-piece solves (>= 0; 0 returns the start).

    Returns:
      f32[N] imputed samples, sorted.
    """
    chex.assert_rank([expectiles, taus], 1)
    chex.assert_equal_shape([expectiles, taus])
    m = expectiles.shape[0]
    n = m if num_samples is None else int(num_samples)
    if m == 1:  # any N equal samples at e match it exactly
        return jnp.full((n,), expectiles[0], expectiles.dtype)
    t = jnp.sort(taus.astype(expectiles.dtype))
    e = _sort(expectiles)
    center = e[m // 2]
    e = e - center
    # Batch invariance: one vector's samples are the same bits alone, in a batch of any
    # size, under vmap or with traced levels. Sums are fixed trees (``_sum``), and the
    # levels are tied to this vector's data (t + 0 * center: XLA does not fold a float
    # times 0): quantities of the levels alone are otherwise compiled apart from the
    # batch, shared by its rows, and rounded differently (a division by them becomes a
    # multiplication by a shared reciprocal, or is constant-folded when the levels are
    # constants). A last-bit difference changes a count #{x_j <= e_i}, the start kept or
    # the step taken, and with it the samples by up to 1e-2.
    t = t + 0.0 * center
    # Two starts, the better kept: the counts read off the expectiles (exact where the
    # expectiles are consistent) and the expectiles spread x2 about their mean (robust
    # where they are not, e.g. learned ones at clustered levels).
    x_count, x_spread = _start(e, t, n), _spread_start(e, t, n)
    f_count, f_spread = _objective(x_count, e, t), _objective(x_spread, e, t)
    take = f_count <= f_spread
    x0 = jnp.where(take, x_count, x_spread)
    f0 = jnp.where(take, f_count, f_spread)
    fractions = jnp.asarray(STEP_FRACTIONS, e.dtype)

    def step(carry, _):
        x, f = carry
        _, proposal = _propose(x, e, t, n)
        # The piece's solve, or a fraction of the way there when the counts change on
        # the way (a kink): the objective never increases.
        cands = x[None, :] + fractions[:, None] * (proposal - x)[None, :]
        fs = jax.vmap(lambda c: _objective(c, e, t))(cands)
        i = jnp.argmin(fs)
        better = fs[i] < f
        return (jnp.where(better, _sort(cands[i]), x), jnp.where(better, fs[i], f)), None

    unroll = max(num_iterations, 1) if num_iterations <= 4 else 1  # bounded compile time
    (best, _), _ = jax.lax.scan(step, (x0, f0), None, length=num_iterations, unroll=unroll)
    return best + center


def expectile_signal(e: Array, targets: Array, taus: Array) -> Array:
    """``mean_j |tau_i - 1{y_j < e_i}| (y_j - e_i)``: the expectile-regression direction.

    The negative gradient of the expectile loss at target samples y_j (Rowland et al.
    2019); EDRL's and the expectile cells' definitions move along it.

    Args:
      e: f32[m] expectile estimates at s_tm1.
      targets: f32[N] target samples y_j.
      taus: f32[m] levels.
    """
    chex.assert_rank([e, targets, taus], 1)
    diff = targets[None, :] - e[:, None]
    weight = jnp.abs(taus[:, None] - (diff < 0.0).astype(e.dtype))
    return jnp.mean(weight * diff, axis=1)


def expectile_kernel(e: Array, targets: Array, step_size: Array, taus: Array) -> Array:
    """The expectile-regression step ``e_i += alpha * mean_j |tau_i - 1{y_j < e_i}| (y_j - e_i)``.

    Args:
      e: f32[m] expectile estimates at s_tm1.
      targets: f32[N] target samples y_j.
      step_size: f32[] alpha.
      taus: f32[m] levels.
    """
    return e + step_size * expectile_signal(e, targets, taus)


def expectile_readouts(tau_arr: Array, impute):
    """(values_fn, distribution_fn) of statistics that are expectiles at levels ``tau_arr``.

    The mean estimate is the 0.5-expectile where that level is learned (it is the mean),
    otherwise ``expectile_mean``'s interpolation between the levels either side of 0.5 (no
    solve; error bound in its docstring), and the mean of the imputed samples only when no
    level lies on one side of 0.5. The distribution is the imputed samples (``impute``).
    """
    taus_np = np.asarray(tau_arr, np.float64)
    half = int(np.argmin(np.abs(taus_np - 0.5)))
    has_half = bool(abs(taus_np[half] - 0.5) < 1e-6)
    bracketed = bool((taus_np < 0.5).any() and (taus_np > 0.5).any())

    def values_fn(e: Array) -> Array:
        if has_half:
            return e[half]
        return expectile_mean(e, tau_arr) if bracketed else jnp.mean(impute(e))

    def distribution_fn(e: Array) -> tuple[Array, Array]:
        return equal_atoms(impute(e))

    return values_fn, distribution_fn


def edrl_setup(
    num_expectiles: int | None,
    taus: list[float] | None,
    num_samples: int | None,
    num_iterations: int,
    init_value: float,
) -> tuple[np.ndarray, int | None, int, float]:
    """Validates EDRL's hyperparameters: (levels, samples or None, iterations, init value).

    Used by ``edrl_definition``.
    """
    if taus is None:
        num_expectiles = DEFAULT_NUM_EXPECTILES if num_expectiles is None else num_expectiles
        taus_np = midpoint_taus(check_size("edrl", "num_expectiles", num_expectiles, 1))
    elif num_expectiles is not None:
        raise ValueError(
            f"edrl: give num_expectiles or taus (they fix the count), not "
            f"num_expectiles={num_expectiles!r} with them"
        )
    else:
        taus_np = check_taus("edrl", taus)
    n = None if num_samples is None else check_size("edrl", "num_samples", num_samples, 1)
    iters = check_size("edrl", "num_iterations", num_iterations, 1)
    return taus_np, n, iters, check_finite("edrl", "init_value", init_value)


def edrl_definition(
    num_expectiles: int | None = None,
    taus: list[float] | None = None,
    num_samples: int | None = None,
    num_iterations: int = DEFAULT_ITERATIONS,
    init_value: float = 0.0,
) -> RuleDefinition:
    """EDRL's definition: m expectiles moved along ``expectile_signal`` toward
    y_j = r_t + discount_t * x_j, with x_j imputed at s_t (``impute_samples``)."""
    taus_np, n, iters, init_value = edrl_setup(
        num_expectiles, taus, num_samples, num_iterations, init_value
    )
    tau_arr = jnp.asarray(taus_np, jnp.float32)

    def impute(e: Array) -> Array:
        return impute_samples(e, tau_arr, n, iters)

    def signal(e, r_t, discount_t, e_next, key: PRNGKey):
        del key
        chex.assert_rank([e, r_t, discount_t, e_next], [1, 0, 0, 1])
        # With discount 0 the target does not depend on s_t: skip the solve.
        samples = jax.lax.cond(discount_t == 0.0, jnp.sort, impute, e_next)
        return expectile_signal(e, r_t + discount_t * samples, tau_arr)

    values_fn, distribution_fn = expectile_readouts(tau_arr, impute)
    init = jnp.full((taus_np.size,), init_value, jnp.float32)
    return RuleDefinition(signal, init, values_fn, distribution_fn, True, name="edrl")


def edrl(
    num_expectiles: int | None = None,
    taus: list[float] | None = None,
    num_samples: int | None = None,
    num_iterations: int = DEFAULT_ITERATIONS,
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
      num_iterations: the imputation solver's iterations after its first solve (>= 1;
        ``impute_samples``).
      init_value: the initial value of every expectile.
    """
    definition = edrl_definition(num_expectiles, taus, num_samples, num_iterations, init_value)
    # An imputation (an expectile solve) per update: 100-300x TD's cost.
    return with_facts(tabular_of(definition), mean_step=0.5, relative_cost=100.0,
                      baseline="one_step", baseline_why=HALF_TD_ONE_STEP)  # fmt: skip
