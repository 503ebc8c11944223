"""Interval estimates: IQM with stratified-bootstrap CIs (rliable), paired comparisons.

References:
  Agarwal, Schwarzer, Castro, Courville, Bellemare (2021). Deep reinforcement learning at
  the edge of the statistical precipice. NeurIPS. https://arxiv.org/abs/2108.13264
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.stats

CONFIDENCE = 0.95
REPS = 2_000


def _rliable():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import library

    return library


class _seeded:
    """Seeds numpy's global generator for a block, then restores it.

    arch's bootstrap (under rliable) draws from the global generator despite the
    ``random_state`` rliable passes it, so intervals are reproducible only this way.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = np.random.get_state()  # noqa: NPY002 - arch uses the global one
        np.random.seed(self.seed)  # noqa: NPY002
        warnings.filterwarnings("ignore", category=FutureWarning, module="arch")

    def __exit__(self, *exc):
        np.random.set_state(self.state)  # noqa: NPY002


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50%, rliable's robust aggregate.

    Same cut as ``scipy.stats.trim_mean(x, 0.25)`` (int(n/4) from each end), written with
    one sort because the bootstrap calls it thousands of times.
    """
    x = np.moveaxis(np.asarray(x, np.float64), axis, 0)
    n = x.shape[0]
    k = int(0.25 * n)
    return np.sort(x, axis=0)[k : n - k].mean(axis=0)


def iqm_intervals(scores: dict[str, np.ndarray], seed: int = 0, reps: int = REPS):
    """Per-task IQM and its 95% stratified-bootstrap CI, for each method.

    Args:
      scores: ``{method: f64[num_seeds, num_tasks]}`` (finite values).

    Returns:
      ``{method: (point f64[T], low f64[T], high f64[T])}``.
    """
    library = _rliable()
    with _seeded(seed):
        points, intervals = library.get_interval_estimates(
            scores,
            lambda x: iqm(x, axis=0),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    return {k: (points[k], intervals[k][0], intervals[k][1]) for k in scores}


def aggregate_mean_interval(scores: dict[str, np.ndarray], seed: int = 0, reps: int = REPS):
    """Mean over all tasks and seeds with a stratified-bootstrap CI (seeds within tasks)."""
    library = _rliable()
    with _seeded(seed):
        points, intervals = library.get_interval_estimates(
            scores,
            lambda x: np.array([np.mean(x)]),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    return {
        k: (float(points[k][0]), float(intervals[k][0][0]), float(intervals[k][1][0]))
        for k in scores
    }


# AUCs (mean log10 error) closer than this are a tie: float32 rounding, not a difference
# (e.g. the CTD == TD null control differs from TD by ~1e-6 here).
TIE_TOLERANCE = 1e-4


def _wins(auc_rule, auc_base):
    """1 where the rule's AUC is lower beyond ``TIE_TOLERANCE``, 1/2 on a tie, else 0."""
    gap = np.asarray(auc_base, np.float64) - np.asarray(auc_rule, np.float64)
    tie = np.abs(gap) <= TIE_TOLERANCE
    return np.where(tie, 0.5, (gap > 0).astype(np.float64))


def paired_mean_interval(diff: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences with a 95% percentile-bootstrap CI over seeds."""
    diff = np.asarray(diff, np.float64)
    mean = float(np.mean(diff))
    if diff.size < 2 or np.ptp(diff) == 0:
        return mean, mean, mean
    res = scipy.stats.bootstrap(
        (diff,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=REPS,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_to_baseline(
    ev: pd.DataFrame, baseline: str | Callable[[str], str], censor: float, seed: int = 0
) -> pd.DataFrame:
    """Each rule against its baseline on each task, paired by evaluation seed.

    ``baseline`` is a rule label, or a function from a rule's label to its baseline's.

    * ratio: exp(mean log(steps_rule / steps_baseline)) with its bootstrap CI, steps to
      threshold censored at ``censor`` when never reached (so a ratio is conservative).
    * p_beat: the fraction of seeds on which the rule's log-error AUC is below the
      baseline's (ties count 1/2), with its CI: a paired probability of improvement.
    * verdict: "faster" when the ratio's CI lies below 1, "slower" above 1, else "no
      detectable difference"; "neither reached" when no learner of either reached it.
    """
    rows = []
    baseline_of = baseline if callable(baseline) else (lambda _rule: baseline)
    by_rule = ev.set_index(["rule", "task", "seed"])
    for (rule, task), grp in ev.groupby(["rule", "task"]):
        if rule == baseline_of(rule):
            continue
        grp = grp.set_index("seed").sort_index()
        ref = by_rule.loc[(baseline_of(rule), task)].reindex(grp.index)
        s_rule = np.minimum(grp["steps_to_threshold"].to_numpy(), censor)
        s_base = np.minimum(ref["steps_to_threshold"].to_numpy(), censor)
        log_ratio = np.log(s_rule) - np.log(s_base)
        mean, low, high = paired_mean_interval(log_ratio, seed)
        a_rule, a_base = grp["auc"].to_numpy(), ref["auc"].to_numpy()
        wins = _wins(a_rule, a_base)
        p, p_low, p_high = paired_mean_interval(wins.astype(float), seed)
        if np.all(s_rule >= censor) and np.all(s_base >= censor):
            verdict = "neither reached"
        elif high < 0:
            verdict = "faster"
        elif low > 0:
            verdict = "slower"
        else:
            verdict = "no detectable difference"
        rows.append(
            {
                "rule": rule,
                "task": task,
                "baseline": baseline_of(rule),
                "ratio": np.exp(mean),
                "ratio_low": np.exp(low),
                "ratio_high": np.exp(high),
                "p_beat": p,
                "p_beat_low": p_low,
                "p_beat_high": p_high,
                "verdict": verdict,
                "n_seeds": len(grp),
            }
        )
    return pd.DataFrame(rows)


def paired_wins(ev: pd.DataFrame, baseline: str | Callable[[str], str]) -> dict[str, np.ndarray]:
    """Per rule, f64[seeds, tasks]: 1 where its log-error AUC beats its baseline's on that
    evaluation seed, 1/2 on a tie, else 0 (paired by seed, so common random numbers)."""
    baseline_of = baseline if callable(baseline) else (lambda _rule: baseline)
    auc = ev.pivot_table(index=["task", "seed"], columns="rule", values="auc")
    tasks = sorted(ev["task"].unique())
    out = {}
    for rule in auc.columns:
        base = baseline_of(rule)
        if rule == base:
            continue
        wins = pd.Series(_wins(auc[rule], auc[base]), index=auc.index)
        out[rule] = wins.unstack("task").reindex(columns=tasks).to_numpy(np.float64)
    return out
