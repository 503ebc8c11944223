"""The built-in td_jax rules in numpy, vectorised over learners: baseline (a) of the throughput
benchmark.

The same update equations as ``td_jax.rules`` (docstrings there give the papers), written the
way a numpy user would: every learner's table in one array, fancy indexing to read and write
the two rows a transition touches, broadcasting for the rest. Tables are
``f32[streams, states, step_sizes, K]``, so one stream's step sizes, which share its
transition, sit next to each other. Each rule is ``init / update / values`` on plain arrays;
``update`` takes one transition per stream (``s_tm1, r_t, discount_t, s_t``: ``[streams]``)
and changes the table in place. Where td_jax's kernels use an algorithm (the m x m count of
QTD, the K x K Cramer matrix of CTD, EDRL's imputation solver and expectile mean readout, in
``numpy_imputation``), this uses the same one, so that "same workload" holds and the
comparison measures the execution, not the maths.

No jax here: the benchmark runs this in a process of its own, so that its memory and start-up
are numpy's alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from td_jax.throughput.numpy_imputation import expectile_mean, impute_samples
from td_jax.throughput.numpy_imputation import expectile_residuals as expectile_residuals

F32 = np.float32


def _rows(table: np.ndarray, s: np.ndarray) -> np.ndarray:
    return table[np.arange(table.shape[0]), s]


def _set_rows(table: np.ndarray, s: np.ndarray, new: np.ndarray) -> None:
    table[np.arange(table.shape[0]), s] = new


@dataclass
class Rule:
    """One rule's parameters; ``kind`` picks the update below."""

    kind: str
    num_stats: int = 1
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0, F32))
    support: np.ndarray = field(default_factory=lambda: np.zeros(0, F32))
    alpha_plus: np.ndarray = field(default_factory=lambda: np.zeros(0, F32))
    alpha_minus: np.ndarray = field(default_factory=lambda: np.zeros(0, F32))
    lam: float = 0.0
    iterations: int = 2  # the imputation solver's (td_jax's default)

    def init(self, streams: int, states: int, step_sizes: int) -> dict[str, np.ndarray]:
        shape = (streams, states, step_sizes, self.num_stats)
        table = np.zeros(shape, F32)
        if self.kind == "ctd":  # a point mass at 0, projected (td_jax's init_value = 0)
            z = self.support
            table[...] = np.clip(1 - np.abs(z) / (z[1] - z[0]), 0, 1).astype(F32)
        out = {"table": table}
        if self.kind == "td_lambda":
            out["trace"] = np.zeros(shape[:3], F32)
        return out

    def update(self, state: dict, s_tm1, r_t, discount_t, s_t, alphas, rng) -> None:
        """Applies each stream's transition to all of its step sizes' learners, in place."""
        table = state["table"]
        r = r_t.astype(F32)[:, None, None]
        d = discount_t.astype(F32)[:, None, None]
        a = alphas.astype(F32)[None, :, None]
        if self.kind == "td_lambda":
            self._td_lambda(state, s_tm1, r_t, discount_t, s_t, alphas)
            return
        stat, stat_next = _rows(table, s_tm1), _rows(table, s_t)  # [streams, A, K]
        if self.kind == "td":
            new = stat + a * (r + d * stat_next - stat)
        elif self.kind == "qtd":
            targets = r + d * stat_next
            count = np.count_nonzero(targets[..., None, :] < stat[..., :, None], axis=-1)
            new = stat + a * (self.taus - count.astype(F32) / F32(self.num_stats))
        elif self.kind == "ctd":
            new = stat + a * (self._ctd_target(r_t, discount_t, stat_next) - stat)
        elif self.kind.startswith("dopamine"):
            n = self.num_stats
            j = rng.integers(0, n, size=(len(s_tm1), 1, n))  # per stream, shared by step sizes
            delta = r + d * np.take_along_axis(stat_next, np.broadcast_to(j, stat.shape), -1)
            delta = delta - stat
            rate = np.where(delta > 0, self.alpha_plus, self.alpha_minus)
            f = np.sign(delta) if self.kind == "dopamine_quantile" else delta
            new = stat + a * rate * f
        elif self.kind == "edrl":
            new = self._edrl(stat, stat_next, r_t, discount_t, alphas)
        else:
            raise ValueError(f"unknown rule kind {self.kind!r}")
        _set_rows(table, s_tm1, new.astype(F32))

    def _td_lambda(self, state, s_tm1, r_t, discount_t, s_t, alphas) -> None:
        v, trace = state["table"][..., 0], state["trace"]  # [streams, S, A]
        rows = np.arange(len(s_tm1))
        trace[rows, s_tm1] += F32(1.0)
        delta = r_t.astype(F32)[:, None] + discount_t.astype(F32)[:, None] * v[rows, s_t]
        delta = delta - v[rows, s_tm1]  # [streams, A]
        v += alphas.astype(F32)[None, None, :] * delta[:, None, :] * trace
        trace *= (discount_t.astype(F32) * F32(self.lam))[:, None, None]

    def _ctd_target(self, r_t, discount_t, p_next) -> np.ndarray:
        """The Cramer projection of r + gamma Z(s'): one K x K matrix per stream.

        Dense, shared by the stream's step sizes and applied by one batched matmul: in
        numpy this beats the O(K) scatter-add td_jax uses (np.bincount: 17.7 vs 9.8 ms per
        step of 10,000 learners, K = 51), so baseline (a) keeps its faster form.
        """
        z = self.support
        locs = np.clip(r_t[:, None] + discount_t[:, None] * z[None, :], z[0], z[-1]).astype(F32)
        weights = np.clip(1 - np.abs(locs[:, None, :] - z[None, :, None]) / (z[1] - z[0]), 0, 1)
        return np.matmul(p_next, weights.astype(F32).transpose(0, 2, 1))  # [streams, A, K]

    def _edrl(self, e, e_next, r_t, discount_t, alphas) -> np.ndarray:
        streams, num_a, m = e.shape
        flat = e_next.reshape(-1, m)
        samples = np.sort(flat, axis=-1)  # td_jax's EDRL imputes m samples
        boot = np.repeat(discount_t != 0, num_a)  # discount 0: the target ignores s_t
        if boot.any():
            samples[boot] = impute_samples(flat[boot], self.taus, m, self.iterations)
        y = r_t.astype(F32)[:, None, None] + discount_t.astype(F32)[
            :, None, None
        ] * samples.reshape(streams, num_a, -1)
        return expectile_step(e, y, alphas.astype(F32)[None, :, None], self.taus)

    def values(self, state: dict) -> np.ndarray:
        """``f32[streams, S, A]``: each learner's mean-return estimate per state."""
        table = state["table"]
        if self.kind == "ctd":
            return table @ self.support
        if self.kind in ("edrl", "dopamine_expectile"):
            half = np.flatnonzero(np.abs(self.taus - 0.5) < 1e-6)
            if half.size:
                return table[..., half[0]]
            flat = table.reshape(-1, table.shape[-1])
            if (self.taus < 0.5).any() and (self.taus > 0.5).any():  # no solve
                return expectile_mean(flat, self.taus).reshape(table.shape[:-1])
            x = impute_samples(flat, self.taus, table.shape[-1], self.iterations)
            return x.mean(axis=-1).reshape(table.shape[:-1])
        return table.mean(axis=-1)


def expectile_step(e: np.ndarray, y: np.ndarray, alpha: Any, taus: np.ndarray) -> np.ndarray:
    """``e_i += alpha * mean_j |tau_i - 1{y_j < e_i}| (y_j - e_i)``; e [..., m], y [..., N]."""
    diff = y[..., None, :] - e[..., :, None]
    weight = np.abs(taus[:, None] - (diff < 0))
    return e + alpha * np.mean(weight * diff, axis=-1)
