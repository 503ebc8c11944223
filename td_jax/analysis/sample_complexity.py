"""Sample complexity N(eps), the speed-up S(eps) with a paired bootstrap, and FDR control.

SCIENCE.md section 7. ``N_A(eps)`` is the number of updates after which the mean over seeds
of A's normalised error stays at or below eps, read off the seed-mean curve by log-log
interpolation between checkpoints. A curve still above eps at its last checkpoint has not
reached it: that is reported as such (``nan`` here), never as a number. The speed-up
``S(eps) = N_baseline(eps) / N_rule(eps)`` gets its 95% interval from a paired bootstrap
over evaluation seeds (common random numbers: both rules saw the same streams, so each
resample takes the same seeds for both), recomputing both mean curves in each resample.

References:
  Efron and Tibshirani (1993), An Introduction to the Bootstrap, ch. 13 and 16.
  Benjamini and Hochberg (1995), Controlling the false discovery rate, JRSS B 57:289-300.
"""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple

import numpy as np
import scipy.stats

from td_jax.memo import SharedLRU

CONFIDENCE = 0.95
REPS = 2_000
# An accuracy met within this many updates (every one a checkpoint) measures the first
# steps from the all-zero start, i.e. the initialisation and the step's units, not a rate
# of convergence: the reports show such cells ("early") but call no difference there.
EARLY_UPDATES = 10


def crossing_times(steps: np.ndarray, curves: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """N(eps) of each curve: the interpolated update count after which it stays <= eps.

    Args:
      steps: i64[C] checkpoints (increasing, >= 1).
      curves: f[..., C] errors at the checkpoints (NaN / inf: diverged, counts as above).
      eps: f[E] accuracies (> 0).

    Returns:
      f64[..., E]: N(eps). ``nan`` where the curve is above eps at its last checkpoint (not
      reached within the horizon); ``steps[0]`` where it never exceeds eps (reached by the
      first checkpoint: an upper bound). Between the last checkpoint above eps, i, and the
      next, the crossing is interpolated linearly in (log step, log error).
    """
    steps = np.asarray(steps, np.float64)
    curves = np.asarray(curves, np.float64)
    eps = np.asarray(eps, np.float64)
    c = np.where(np.isfinite(curves), curves, np.inf)
    above = c[..., None, :] > eps[:, None]  # [..., E, C]
    n_ckpt = steps.size
    any_above = above.any(axis=-1)
    last = n_ckpt - 1 - np.argmax(above[..., ::-1], axis=-1)  # last index above eps
    reached = ~above[..., -1]
    i = np.clip(last, 0, n_ckpt - 2)
    j = i + 1
    c_b = np.broadcast_to(c[..., None, :], above.shape)
    c_i = np.take_along_axis(c_b, i[..., None], -1)[..., 0]
    c_j = np.take_along_axis(c_b, j[..., None], -1)[..., 0]
    ls_i, ls_j = np.log(steps[i]), np.log(steps[j])
    tiny = 1e-300
    lc_i, lc_j = np.log(np.maximum(c_i, tiny)), np.log(np.maximum(c_j, tiny))
    le = np.log(np.broadcast_to(eps, c_i.shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(np.isfinite(lc_i) & (lc_i > lc_j), (lc_i - le) / (lc_i - lc_j), 1.0)
    # An exact 0 at the next checkpoint (deterministic tasks): the log-log crossing's limit
    # as that error goes to 0, i.e. the checkpoint before it. Continuous in the error, so a
    # learner that reaches exactly 0 and one that reaches 1e-20 get the same N.
    frac = np.where(c_j <= 0.0, 0.0, frac)
    n = np.exp(ls_i + np.clip(frac, 0.0, 1.0) * (ls_j - ls_i))
    n = np.where(any_above, n, steps[0])
    return np.where(reached, n, np.nan)


def mean_curve(errors: np.ndarray) -> np.ndarray:
    """The seed-mean of per-seed curves f[N, C]; a diverged seed (NaN / inf) makes it inf."""
    e = np.where(np.isfinite(errors), errors, np.inf)
    return e.mean(axis=0)


def log_speedup(n_base: np.ndarray, n_rule: np.ndarray, horizon: float) -> np.ndarray:
    """log(N_base / N_rule), a not-reached N taken as the horizon T.

    Where only the rule reached eps this is a lower bound on log S (the baseline's N is
    more than T), where only the baseline did an upper bound, so a direction called from it
    is conservative; where neither did it is 0 (no information: such cells are not tested).
    """
    nb = np.where(np.isfinite(n_base), n_base, horizon)
    nr = np.where(np.isfinite(n_rule), n_rule, horizon)
    return np.log(nb) - np.log(nr)


class Speedup(NamedTuple):
    """S(eps) = N_base / N_rule on the evaluation seeds, per eps (f64[E] each)."""

    n_rule: np.ndarray  # N_rule(eps), nan: not reached
    n_base: np.ndarray
    log_s: np.ndarray  # log S; a bound where one of them did not reach eps (log_speedup)
    log_low: np.ndarray  # 95% percentile-bootstrap interval of log S
    log_high: np.ndarray
    p_value: np.ndarray  # two-sided p of H0: |log S| <= log(1 + margin), normal approx.
    se: np.ndarray  # bootstrap standard error of log S


def bootstrap_n(
    steps: np.ndarray, errors: np.ndarray, eps: np.ndarray, reps: int = REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N(eps) of the seed-mean curve and its 95% percentile-bootstrap interval over seeds.

    A resample whose mean curve does not reach eps counts as +inf (so a high end of inf
    says: in more than 2.5% of resamples, not reached within the horizon). Same ``seed``,
    same resamples as ``bootstrap_speedup``: the intervals of two rules are paired.
    """
    n = crossing_times(steps, mean_curve(errors), eps)
    boot = crossing_times(steps, _resampled_means(errors, resample_weights(
        errors.shape[0], reps, seed)), eps)  # fmt: skip
    boot = np.where(np.isfinite(boot), boot, np.inf)
    alpha = 1.0 - CONFIDENCE
    low = np.quantile(boot, alpha / 2, axis=0, method="inverted_cdf")
    high = np.quantile(boot, 1 - alpha / 2, axis=0, method="inverted_cdf")
    return n, low, high


# A suite's cells reuse each (rule, task, configuration) curve; the units' threads share it.
_MEANS_CACHE = SharedLRU(256)


def _resampled_means(errors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """f64[reps, C]: the mean curve of each resample (inf where it holds a diverged seed).

    Memoised on the curves' bytes and the weights' identity (``resample_weights`` returns
    one read-only array per (seeds, reps, seed)): every eps of a cell, and every cell
    compared with the same baseline configuration, resamples the same curves."""
    errors = np.ascontiguousarray(errors, np.float64)
    key = (errors.shape, hashlib.blake2b(errors.tobytes(), digest_size=16).digest(), id(weights))
    hit = _MEANS_CACHE.get(key)
    if hit is not None and hit[0] is weights:  # the entry holds its weights: unique ids
        return hit[1]
    finite = np.isfinite(errors)
    out = weights @ np.where(finite, errors, 0.0)
    if not finite.all():
        bad = weights @ (~finite).astype(np.float64)
        out = np.where(bad > 0, np.inf, out)
    out.flags.writeable = False
    _MEANS_CACHE.put(key, (weights, out))
    return out


@functools.lru_cache(maxsize=16)
def resample_weights(num_seeds: int, reps: int, seed: int) -> np.ndarray:
    """f64[reps, num_seeds]: how often each seed appears in each bootstrap resample, / n.

    Cached (read-only): the same (seeds, reps, seed) gives the same resamples everywhere,
    which is what pairs two rules' intervals."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num_seeds, size=(reps, num_seeds))
    counts = np.zeros((reps, num_seeds))
    np.add.at(counts, (np.arange(reps)[:, None], idx), 1.0)
    out = counts / num_seeds
    out.flags.writeable = False
    return out


def bootstrap_speedup(
    steps: np.ndarray,
    err_rule: np.ndarray,
    err_base: np.ndarray,
    eps: np.ndarray,
    *,
    margin: float = 0.0,
    reps: int = REPS,
    seed: int = 0,
) -> Speedup:
    """S(eps) with a paired bootstrap over seeds (rows of both arrays are the same seeds).

    Args:
      steps: i64[C] checkpoints; the last is the horizon T that stands in for a
        not-reached N (``log_speedup``).
      err_rule, err_base: f[N, C] per-seed normalised errors, row k of each from seed k.
      eps: f[E] accuracies.
      margin: speed-ups within [1/(1+margin), 1+margin] are not a difference: the p-value
        tests H0 |log S| <= log(1 + margin) (margin 0: H0 S = 1).
      reps: bootstrap resamples. seed: the resampling seed (reproducible intervals).

    The p-value uses the normal approximation with the bootstrap standard error, so that it
    is not floored at 2 / (reps + 1) (which would leave Benjamini-Hochberg over thousands
    of cells without power); calls also require the percentile interval to clear the band.
    """
    err_rule, err_base = np.asarray(err_rule, np.float64), np.asarray(err_base, np.float64)
    if err_rule.shape != err_base.shape:
        raise ValueError(
            f"paired curves must have the same shape, got {err_rule.shape} and {err_base.shape}"
        )
    horizon = float(np.asarray(steps)[-1])
    n_rule = crossing_times(steps, mean_curve(err_rule), eps)
    n_base = crossing_times(steps, mean_curve(err_base), eps)
    point = log_speedup(n_base, n_rule, horizon)
    w = resample_weights(err_rule.shape[0], reps, seed)
    boot = log_speedup(
        crossing_times(steps, _resampled_means(err_base, w), eps),
        crossing_times(steps, _resampled_means(err_rule, w), eps),
        horizon,
    )  # [reps, E]
    alpha = 1.0 - CONFIDENCE
    low = np.quantile(boot, alpha / 2, axis=0, method="inverted_cdf")
    high = np.quantile(boot, 1 - alpha / 2, axis=0, method="inverted_cdf")
    se = boot.std(axis=0, ddof=1)
    band = np.log1p(margin)
    excess = np.abs(point) - band
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, excess / se, np.where(excess > 0, np.inf, -np.inf))
    p = np.where(excess > 0, 2.0 * scipy.stats.norm.sf(z), 1.0)
    p = np.where(np.isfinite(n_rule) | np.isfinite(n_base), p, 1.0)
    return Speedup(n_rule, n_base, point, low, high, p, se)


def benjamini_hochberg(p_values: np.ndarray, q: float) -> np.ndarray:
    """bool mask of the hypotheses rejected at false discovery rate ``q`` (step-up rule).

    Rejects the k smallest p-values, k the largest index with p_(k) <= k q / m.
    """
    p = np.asarray(p_values, np.float64).reshape(-1)
    if not 0.0 < q < 1.0:
        raise ValueError(f"FDR level q must be in (0, 1), got {q!r}")
    m = p.size
    if m == 0:
        return np.zeros(0, bool)
    order = np.argsort(p, kind="stable")
    ok = p[order] <= q * np.arange(1, m + 1) / m
    k = int(np.max(np.nonzero(ok)[0])) + 1 if ok.any() else 0
    out = np.zeros(m, bool)
    out[order[:k]] = True
    return out.reshape(np.shape(p_values))
