"""The calibrated answer: N(eps) and S(eps) with the selection inside their intervals, and
one estimand per (rule, task). SCIENCE.md section 9.

* Selection in the interval. N_A(eps) at the selected configuration is random through the
  selection. Each bootstrap resample draws the tuning seeds and the evaluation seeds anew
  (paired across rules that share them: common random numbers), re-selects among the
  cell's candidates (``search._candidates``: the selection and the configurations most
  often re-selected over every configuration run, ``support``) by their N(eps) on the
  resampled tuning seeds, and reads the chosen one's N(eps) on the resampled evaluation
  seeds.
* One estimand per (rule, task), defined before the evaluation seeds are read: the
  geometric mean of S(eps) = N_baseline / N_rule over the suite's band (eps between e0 x
  band[0] and e0 x band[1], e0 the task's initial error), restricted to the eps both rules
  reach on the tuning seeds after at least ``EARLY_UPDATES`` updates and above 3x both
  floors. A band where one side does not reach some eps on the evaluation seeds gives a
  bound, never a call. Benjamini-Hochberg runs over (rule, task) pairs, separately for the
  answer's rules, the null controls and the pipeline checks.

References: Efron and Tibshirani (1993), ch. 13 and 16 (percentile bootstrap);
Benjamini and Hochberg (1995), JRSS B 57:289-300; Clopper and Pearson (1934),
Biometrika 26:404-413 (the false-positive rate's interval).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.stats

from td_jax.analysis import sample_complexity as sc

FLOOR_FACTOR = 3.0  # band eps must lie above this multiple of a rule's floor
TUNE_SEED, SPLIT_SEED, EVAL_SEED = 1, 2, 0  # resampling seeds (EVAL_SEED: sc's default)
SUPPORT_CHUNK = 32  # configurations whose resampled crossings ``support`` computes at once


class CellBoot(NamedTuple):
    """One (rule, task, weighting): N(eps) at the selection and its re-selected resamples."""

    n: np.ndarray  # f64[E] N on the evaluation seeds' mean curve (nan: not reached)
    boot: np.ndarray  # f64[B, E] re-selected N per resample (inf: not reached)
    diverged: np.ndarray  # i64[E] evaluation seeds diverged at the selection
    seeds: int


def _n_resampled(steps, curves: np.ndarray, weights: np.ndarray, eps: np.ndarray):
    n = sc.crossing_times(steps, sc._resampled_means(curves, weights), eps)
    return np.where(np.isfinite(n), n, np.inf)


def cell_boot(
    unit, label: str, wi: int, w: str, eps: np.ndarray, reps: int, split: bool, margin: float
):
    """The ``CellBoot`` of one (unit, task, weighting) over its eps.

    Each resample re-selects among the cell's candidates by ``tuning.select``'s own rule
    (``reselect``): the selection (candidate 0) stays while its N on the resampled tuning
    seeds is within the tie tolerance of the best candidate's, else the first near-tie in
    the tie rule's order. An argmin would move off a selection made by the tie rule even
    without noise, putting the point outside its own interval.

    ``split``: the rule's tuning seeds are not the baseline's (resampled independently)."""
    sels = unit.selected[(label, w)]
    cands = unit.candidates.get((label, w)) if hasattr(unit, "candidates") else None
    cands = cands or [[] if s.config is None else [s.config] for s in sels]
    steps, n_eps = unit.steps, len(eps)
    n_eval = next(iter(unit.evaluation[label].values())).shape[0] if unit.evaluation[label] else 0
    we = sc.resample_weights(max(n_eval, 1), reps, EVAL_SEED)
    n = np.full(n_eps, np.nan)
    boot = np.full((reps, n_eps), np.inf)
    diverged = np.zeros(n_eps, np.int64)
    memo: dict = {}

    def eval_n(c, e):  # f64[B]: N(eps[e]) of c on each resample of the evaluation seeds
        if ("e", c, e) not in memo:
            curves = unit.evaluation[label][c][:, :, wi]
            memo[("e", c, e)] = _n_resampled(steps, curves, we, eps[e : e + 1])[:, 0]
        return memo[("e", c, e)]

    def tune_n(c, e):  # the same on the tuning seeds
        if ("t", c, e) not in memo:
            curves = unit.tuning_curves[label][c][:, :, wi]
            wt = tuning_weights(curves.shape[0], reps, split)
            memo[("t", c, e)] = _n_resampled(steps, curves, wt, eps[e : e + 1])[:, 0]
        return memo[("t", c, e)]

    for e, cs in enumerate(cands):
        if not cs:
            continue
        curves = unit.evaluation[label][cs[0]][:, :, wi]
        n[e] = sc.crossing_times(steps, sc.mean_curve(curves), eps[e : e + 1])[0]
        diverged[e] = int((~np.isfinite(curves[:, -1])).sum())
        if len(cs) == 1:
            boot[:, e] = eval_n(cs[0], e)
            continue
        tn = np.stack([tune_n(c, e) for c in cs], axis=1)  # [B, K]
        pick = reselect(tn, bool(sels[e].flat), margin)
        en = np.stack([eval_n(c, e) for c in cs], axis=1)
        boot[:, e] = en[np.arange(reps), pick]
    return CellBoot(n, boot, diverged, n_eval)


def covering(share: np.ndarray, target: float, cap: int) -> list[int]:
    """The configurations (indices past the selection, 0) that must be evaluated: the most
    often re-selected first (ties: the tie rule's order), until with the selection they
    cover ``target`` of the resamples or number ``cap`` with it. Resamples of the rest
    take the best of those evaluated (``reselect``), so the interval misses their spread:
    the share covered is reported (``coverage``)."""
    picked, covered = [], float(share[0])
    for i in sorted(range(1, len(share)), key=lambda i: (-share[i], i)):
        if covered >= target or len(picked) + 1 >= cap or share[i] <= 0:
            break
        picked.append(i)
        covered += float(share[i])
    return picked


def tuning_weights(n_seeds: int, reps: int, split: bool) -> np.ndarray:
    """f64[B, N]: the resample weights of a cell's tuning seeds (its own stream for a
    split-seed rule, whose tuning seeds are not the baseline's)."""
    return sc.resample_weights(n_seeds, reps, SPLIT_SEED if split else TUNE_SEED)


def reselect(tn: np.ndarray, flat: bool, margin: float) -> np.ndarray:
    """i64[B]: per resample, the index the tuning rule picks among configurations in
    priority order (column 0 the selection, then the order ``tuning.select`` prefers among
    near-ties): the selection while its N is within the tolerance it was made with (the tie,
    ``1 + margin / 2``; for a selection resolved as a flat edge, that times ``1 + margin``)
    of the best, else the first configuration within ``1 + margin / 2``. None reached (all
    inf): the selection. Keeping the selection while it is near (not re-applying the
    preference among near-ties) keeps the point inside its own interval.

    Args:
      tn: f64[B, K] N(eps) of each configuration on each resample of the tuning seeds.
    """
    best = tn.min(axis=1, keepdims=True)
    tol = np.full(tn.shape[1], 1.0 + 0.5 * margin)
    # A flat-edge selection replaced a near-tie (1 + margin / 2 of the best) by an interior
    # configuration within 1 + margin of it: up to the product above the best.
    tol[0] = (1.0 + 0.5 * margin) * (1.0 + margin) if flat else 1.0 + 0.5 * margin
    near = tn <= best * tol
    return np.argmax(near | ~np.isfinite(best), axis=1)


def support(steps, curves: list[np.ndarray], eps: float, weights, flat: bool, margin: float):
    """f64[K]: the share of tuning-seed resamples on which each configuration would be the
    selection (``reselect``): the re-selection's support, from which the bootstrap's
    candidates are drawn (Efron 2014, "Estimation and accuracy after model selection",
    JASA 109:991-1007: the selection is redone on every resample).

    Args:
      curves: per configuration in priority order (the selection first), f[N, C]
        per-seed tuning errors. weights: f64[B, N] (``tuning_weights``).
    """
    tn = np.empty((weights.shape[0], len(curves)))
    for i in range(0, len(curves), SUPPORT_CHUNK):  # one crossing per chunk of curves
        means = np.stack([sc._resampled_means(c, weights) for c in curves[i : i + SUPPORT_CHUNK]])
        n = sc.crossing_times(steps, means, np.asarray([eps]))[..., 0]  # [k, B]
        tn[:, i : i + SUPPORT_CHUNK] = np.where(np.isfinite(n), n, np.inf).T
    pick = reselect(tn, flat, margin)
    return np.bincount(pick, minlength=len(curves)) / len(pick)


def interval(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile interval over resamples (axis 0)."""
    a = 1.0 - sc.CONFIDENCE
    lo = np.quantile(boot, a / 2, axis=0, method="inverted_cdf")
    hi = np.quantile(boot, 1 - a / 2, axis=0, method="inverted_cdf")
    return lo, hi


def log_s(n_base, n_rule, horizon: float) -> np.ndarray:
    """log(N_base / N_rule), a not-reached N (nan or inf) taken as the horizon."""
    nb = np.where(np.isfinite(n_base), n_base, horizon)
    nr = np.where(np.isfinite(n_rule), n_rule, horizon)
    return np.log(nb) - np.log(nr)


class Test(NamedTuple):
    """log S (point, 95% interval, bootstrap SE) and the p-value of |log S| <= log(1+m)."""

    log_s: float
    low: float
    high: float
    se: float
    p_value: float


def test(point: float, boot: np.ndarray, margin: float) -> Test:
    """The percentile interval of ``boot`` widened by the search's resolution, and the
    normal-approximation p-value of H0 |log S| <= log(1 + margin) with the bootstrap SE
    (``sc.bootstrap_speedup``'s test).

    Resolution: tuning resolves each rule's optimum only to its tie tolerance (any
    configuration within ``1 + margin / 2`` of the best found is as good a selection), so
    each N is known to that factor (above the optimum: one-sided) and S = N_base / N_rule
    to it on either side (the N columns keep the raw percentiles: description). Without
    it a task without reward noise (every seed the same trajectory) has a zero-width
    interval, and two replicates whose searches ended a percent apart disagree.
    """
    lo, hi = interval(boot[:, None])
    resolution = float(np.log1p(0.5 * margin))
    se = float(boot.std(ddof=1))
    excess = abs(point) - np.log1p(margin)
    if se > 0:
        z = excess / se
    else:
        z = np.inf if excess > 0 else -np.inf
    p = float(2.0 * scipy.stats.norm.sf(z)) if excess > 0 else 1.0
    return Test(float(point), float(lo[0]) - resolution, float(hi[0]) + resolution, se, p)


def _eligible(rel_band, sel_rule, sel_base, floors, eps) -> np.ndarray:
    """bool[E]: band eps reached on the tuning seeds by both selections after
    ``sc.EARLY_UPDATES`` updates, above 3x floors (grid edges aside)."""
    floor = max([f for f in floors if np.isfinite(f)], default=0.0)
    out = np.zeros(len(eps), bool)
    for e in np.flatnonzero(rel_band):
        s, b = sel_rule[e], sel_base[e]
        if s.config is None or b.config is None or not (s.reached and b.reached):
            continue
        if min(s.n_tuning, b.n_tuning) < sc.EARLY_UPDATES:
            continue
        out[e] = eps[e] > FLOOR_FACTOR * floor
    return out


def band_of(rel_band: np.ndarray, sel_rule, sel_base, floors: tuple[float, float], eps):
    """bool[E]: the estimand's eps for one (rule, task): in the band, reached on the
    tuning seeds by both selections after ``sc.EARLY_UPDATES`` updates, neither selection
    on a grid edge, above 3x floors."""
    out = _eligible(rel_band, sel_rule, sel_base, floors, eps)
    for e in np.flatnonzero(out):
        out[e] = not (sel_rule[e].edge or sel_base[e].edge)
    return out


def under_tuned(rel_band, sel_rule, sel_base, floors, eps) -> bool:
    """Whether an eligible band eps has a selection still on a grid edge after every
    extension and refinement: the search did not finish, so that (rule, task) is not
    tested (dropping the eps instead would make the estimand's band depend on where a
    search stopped, and two replicates would average over different eps)."""
    out = _eligible(rel_band, sel_rule, sel_base, floors, eps)
    return any(sel_rule[e].edge or sel_base[e].edge for e in np.flatnonzero(out))


def band_reason(rel_band, sel_rule, sel_base, floors, eps) -> str:
    """Why a (rule, task) has no band eps (one phrase)."""
    floor = max([f for f in floors if np.isfinite(f)], default=0.0)
    idx = np.flatnonzero(rel_band)
    if not len(idx):
        return "no band"
    if all(eps[e] <= FLOOR_FACTOR * floor for e in idx):
        return "cannot reach"
    reached = [e for e in idx if sel_rule[e].reached and sel_base[e].reached
               and sel_rule[e].config is not None and sel_base[e].config is not None]  # fmt: skip
    if not reached:
        return "neither reached"
    if all(min(sel_rule[e].n_tuning, sel_base[e].n_tuning) < sc.EARLY_UPDATES for e in reached):
        return "early"
    return "cannot reach"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate k / n."""
    if n == 0:
        return float("nan"), float("nan")
    a = 1.0 - level
    lo = 0.0 if k == 0 else float(scipy.stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


PLATEAU_RATIO = 0.8  # a tail whose late mean is above this fraction of its early mean


def plateau(steps: np.ndarray, curves: np.ndarray, reps: int) -> tuple[float, float, float]:
    """The level a rule's error levels off at, from the tail of its evaluation curves.

    The tail is the checkpoints in [T/4, T] (T the horizon): where the seed-mean error
    over [T/2, T] is above ``PLATEAU_RATIO`` of that over [T/4, T/2) (a rule converging at
    any rate 1/t^a with a > 0.3 falls further), the plateau is the mean over [T/2, T],
    with a 95% bootstrap interval over seeds. Returns (nan, nan, nan) where the tail still
    falls or a seed diverged.

    Args:
      steps: i64[C] checkpoints. curves: f[N, C] per-seed errors. reps: resamples.
    """
    steps = np.asarray(steps, np.float64)
    t = steps[-1]
    early = (steps >= t / 4) & (steps < t / 2)
    late = steps >= t / 2
    curves = np.asarray(curves, np.float64)
    if not early.any() or not np.isfinite(curves).all():
        return float("nan"), float("nan"), float("nan")
    level = curves[:, late].mean()
    if level <= PLATEAU_RATIO * curves[:, early].mean():
        return float("nan"), float("nan"), float("nan")
    w = sc.resample_weights(curves.shape[0], reps, EVAL_SEED)
    boot = w @ curves[:, late].mean(axis=1)
    lo, hi = interval(boot[:, None])
    return float(level), float(lo[0]), float(hi[0])
