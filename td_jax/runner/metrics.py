"""Metrics reduced inside the scan: value errors, Wasserstein-1 distribution error, divergence.

Each takes ONE learner's estimates and the exact truth of its task; the runner vmaps them.

``VALUE_METRICS`` holds the cheap checkpoint metrics of the mean estimate, as plain functions
``metric(values f32[S], truth: StateTruth) -> f32[]`` (rliable's metric-as-function): the
runner computes every one at every checkpoint and ``RunResult.metrics`` carries them by
name, so adding one is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from td_jax.types import Array


class StateTruth(NamedTuple):
    """One task's exact truth as the value metrics see it."""

    values: Array  # f32[S] exact V
    visits: Array  # f32[S] state weights of the online stream (sum 1; uniform if synchronous)


def sq_error_visit(values: Array, truth: StateTruth) -> Array:
    """``sum_s d(s) (V[s] - V*[s])^2``, d the visit distribution of the stream: the norm of TD
    theory (Tsitsiklis and Van Roy 1997), SCIENCE.md section 7's primary error."""
    chex.assert_equal_shape([values, truth.values, truth.visits])
    return jnp.sum(truth.visits * jnp.square(values - truth.values))


def sq_error_uniform(values: Array, truth: StateTruth) -> Array:
    """``mean_s (V[s] - V*[s])^2``: every state weighted equally (the secondary error)."""
    chex.assert_equal_shape([values, truth.values])
    return jnp.mean(jnp.square(values - truth.values))


VALUE_METRICS: dict[str, Callable[[Array, StateTruth], Array]] = {
    "sq_error_visit": sq_error_visit,
    "sq_error_uniform": sq_error_uniform,
}
# The weighting each squared-error metric stands for, as reports name it.
WEIGHTINGS = {"visit": "sq_error_visit", "uniform": "sq_error_uniform"}


def visit_weights(env: Any, mode: str) -> np.ndarray:
    """f64[S]: the state weights of the stream: its visit distribution online, uniform when
    every state is updated each step (synchronous) or the task does not say."""
    if mode == "online" and hasattr(env, "visit_distribution"):
        return np.asarray(env.visit_distribution(), np.float64)
    return np.full(env.num_states, 1.0 / env.num_states)


def return_spread(env: Any, variances: np.ndarray) -> np.ndarray:
    """f64[S]: each state's return std, or where some return has no finite variance (Student
    t with df <= 2) the interquartile range / 1.349 (a Gaussian's std from its IQR) of
    every state's return (``env.true_quantiles``)."""
    var = np.asarray(variances, np.float64)
    if np.all(np.isfinite(var)):
        return np.sqrt(var)
    q = np.asarray(env.true_quantiles([0.25, 0.75]), np.float64)
    return (q[:, 1] - q[:, 0]) / 1.349


def return_scale(values: np.ndarray, variances: np.ndarray, weights: np.ndarray,
                 spread: np.ndarray | None = None) -> float:  # fmt: skip
    """The RMS return under ``weights``, sqrt(sum_s w_s (V(s)^2 + Var[G_s])): the unit of a
    return-unit rule's steps (``RuleFacts.step_unit``). Where a return has no finite
    variance, ``spread`` (f[S], e.g. the interquartile range / 1.349) stands in for its std."""
    var = np.asarray(variances, np.float64)
    if not np.all(np.isfinite(var)):
        if spread is None:
            raise ValueError("a return has infinite variance; give a spread")
        var = np.square(np.asarray(spread, np.float64))
    return float(np.sqrt(np.sum(weights * (np.square(values) + var))))


def error_scale(values: np.ndarray, variances: np.ndarray | None,
                weights: np.ndarray) -> tuple[float, str]:  # fmt: skip
    """(scale, what it is) of a squared value error weighted by ``weights``: the return
    variance under the same weights, so that an error of 1 is the noise of one return
    (SCIENCE.md section 7); the mean square value where that variance is 0 or not finite
    (or ``variances`` is None: the task does not say); 1 where both are 0. Every suite's
    eps, and ``RunResult.normalised_error``, are in these units."""
    w = np.asarray(weights, np.float64)
    msq = float(np.sum(w * np.square(np.asarray(values, np.float64))))
    var = float("nan") if variances is None else float(np.sum(w * np.asarray(variances)))
    if np.isfinite(var) and var > 1e-12:
        return var, "return variance"
    if msq > 1e-12:
        return msq, "mean square value"
    return 1.0, "1"


def log_checkpoints(num_steps: int, num_checkpoints: int = 20) -> np.ndarray:
    """Roughly log-spaced update counts in [1, num_steps], unique, always ending at num_steps."""
    if num_checkpoints < 1:
        raise ValueError(f"num_checkpoints must be >= 1, got {num_checkpoints}")
    points = np.geomspace(1, num_steps, num_checkpoints).round().astype(np.int64)
    return np.unique(np.append(points, num_steps))


def dense_checkpoints(num_steps: int, per_decade: int = 20) -> np.ndarray:
    """Update counts in [1, num_steps]: every update up to 10, then ``per_decade`` geometric
    points per decade (ratio 10^(1/per_decade), rounded), always ending at num_steps.

    SCIENCE.md section 7: a crossing time read off coarse checkpoints is mostly
    quantisation. Below 10 updates no integer grid can hold 20 points a decade, so every
    update is a checkpoint there.
    """
    if num_steps < 1 or per_decade < 1:
        raise ValueError(f"num_steps and per_decade must be >= 1, got {num_steps} and {per_decade}")
    head = np.arange(1, min(num_steps, 10) + 1)
    if num_steps <= 10:
        return head.astype(np.int64)
    count = int(np.ceil(per_decade * np.log10(num_steps / 10.0))) + 1
    tail = np.geomspace(10, num_steps, count).round().astype(np.int64)
    return np.unique(np.concatenate([head, tail, [num_steps]])).astype(np.int64)


def checkpoint_density(checkpoints: np.ndarray) -> float:
    """The fewest checkpoints in any one-decade window [t, 10 t) with 10 <= t <= T / 10
    (below 10 updates, see ``dense_checkpoints``); the span's own density if shorter."""
    c = np.log10(np.asarray(checkpoints, np.float64))
    c = c[c >= 1.0]
    if c.size < 2:
        return 0.0
    if c[-1] - c[0] < 1.0:
        return float((c.size - 1) / (c[-1] - c[0]))
    starts = c[c <= c[-1] - 1.0]
    counts = np.searchsorted(c, starts + 1.0, side="left") - np.searchsorted(c, starts, "left")
    return float(counts.min())


def value_rmse(values: Array, true_values: Array) -> Array:
    """Root-mean-square error over states: ``sqrt(mean_s (V[s] - V*[s])^2)``."""
    chex.assert_equal_shape([values, true_values])
    return jnp.sqrt(jnp.mean(jnp.square(values - true_values)))


def wasserstein1(locs_a: Array, probs_a: Array, locs_b: Array, probs_b: Array) -> Array:
    """Exact W1 between two weighted-atom distributions: ``integral |F_a(x) - F_b(x)| dx``.

    Merges the atoms, sorts them, and integrates the running difference of the CDFs over
    the gaps; exact for discrete distributions, O((K + N) log(K + N)).
    """
    chex.assert_rank([locs_a, probs_a, locs_b, probs_b], 1)
    locs = jnp.concatenate([locs_a, locs_b])
    weights = jnp.concatenate([probs_a, -probs_b])
    order = jnp.argsort(locs)
    locs, cdf_gap = locs[order], jnp.cumsum(weights[order])
    return jnp.sum(jnp.abs(cdf_gap[:-1]) * jnp.diff(locs))


def wasserstein1_to_sorted(locs: Array, probs: Array, ref_locs: Array, ref_probs: Array) -> Array:
    """Exact W1 to a reference whose atoms are already sorted, without sorting it.

    The K learned atoms are sorted (K is small) and merged into the N sorted reference
    atoms by two binary searches and a scatter: O(N + K log N) instead of a
    O((N + K) log(N + K)) sort, which dominates the metric when N is a fine truth table.
    Equal to ``wasserstein1`` (tested). A single learned atom v (classical TD) is a point
    mass, whose W1 to the reference is ``E|X - v| = sum_i q_i |t_i - v|``: O(N), no merge.
    """
    chex.assert_rank([locs, probs, ref_locs, ref_probs], 1)
    if locs.shape[0] == 1:  # a point mass (its one probability is 1)
        return jnp.sum(ref_probs * jnp.abs(ref_locs - locs[0]))
    order = jnp.argsort(locs)
    locs, probs = locs[order], probs[order]
    k, n = locs.shape[0], ref_locs.shape[0]
    # Stable merge positions: a learned atom goes before reference atoms equal to it.
    pos_a = jnp.arange(k) + jnp.searchsorted(ref_locs, locs, side="left")
    pos_r = jnp.arange(n) + jnp.searchsorted(locs, ref_locs, side="right")
    merged = jnp.zeros(k + n, locs.dtype).at[pos_a].set(locs).at[pos_r].set(ref_locs)
    weights = jnp.zeros(k + n, probs.dtype).at[pos_a].set(probs).at[pos_r].set(-ref_probs)
    return jnp.sum(jnp.abs(jnp.cumsum(weights)[:-1]) * jnp.diff(merged))


def mean_wasserstein1(locs: Array, probs: Array, true_locs: Array, true_probs: Array) -> Array:
    """W1 between learned and true return distributions, averaged over states.

    ``true_locs`` must be sorted along its last axis (the runner sorts the truth table).
    """
    return jnp.mean(jax.vmap(wasserstein1_to_sorted)(locs, probs, true_locs, true_probs))


def diverged(values: Array, bound: float) -> Array:
    """True when an estimate is non-finite or its magnitude exceeds ``bound``."""
    return jnp.logical_not(jnp.all(jnp.isfinite(values))) | (jnp.max(jnp.abs(values)) > bound)
