"""Interval estimates: IQM with stratified-bootstrap CIs (rliable).

References:
  Agarwal, Schwarzer, Castro, Courville, Bellemare (2021). Deep reinforcement learning at
  the edge of the statistical precipice. NeurIPS. https://arxiv.org/abs/2108.13264
"""

from __future__ import annotations

import warnings

import numpy as np

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
