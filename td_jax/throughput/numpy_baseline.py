"""Baseline (a): the throughput workload in numpy, vectorised over learners.

Same workload as ``td_jax.run`` in online mode: each stream (seed) follows one trajectory
of the MRP, drawing one transition per step with numpy's own RNG (``numpy.random.Generator``,
PCG64), and that one transition updates the learners of all its step sizes. The MRP comes as
its numpy tables (``mrp_tables``), sampled like ``td_jax.envs.MRP.step``: the outcome and
the restart state by inverse CDF, Gaussian rewards as ``loc + scale * (mean + std * z)``.
Metrics as in the timed td_jax runs: each learner's value RMSE at the final step only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from td_jax.throughput.numpy_rules import F32, Rule

KERNEL_NORMAL = 1  # td_jax.rewards.sampling.KERNEL_NORMAL


@dataclass
class Tables:
    """An MRP as numpy arrays (see ``td_jax.envs.MRP``); rewards must be Gaussian."""

    start_probs: np.ndarray  # [S]
    outcome_probs: np.ndarray  # [S, B]
    next_state: np.ndarray  # [S, B]
    terminal: np.ndarray  # [S, B]
    reward_index: np.ndarray  # [S, B]
    reward_mean: np.ndarray  # [slots] loc + scale * mean
    reward_std: np.ndarray  # [slots] scale * std
    gamma: float
    true_values: np.ndarray  # [S]

    def to_dict(self) -> dict[str, Any]:
        return {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tables:
        return cls(**{k: np.asarray(v) for k, v in d.items()})


def mrp_tables(env: Any, kernel_of_family: np.ndarray) -> Tables:
    """Extracts ``Tables`` from a td_jax MRP (called where jax is loaded)."""
    rw = env.rewards
    kernels = kernel_of_family[np.asarray(rw.family)]
    if np.any(kernels != KERNEL_NORMAL):
        raise ValueError(
            "the numpy baseline samples Gaussian rewards only; got reward kernels"
            f" {sorted(set(kernels.tolist()))} (Gaussian is {KERNEL_NORMAL})"
        )
    params, loc, scale = (np.asarray(x, np.float64) for x in (rw.params, rw.loc, rw.scale))
    return Tables(
        start_probs=np.asarray(env.start_probs, np.float64),
        outcome_probs=np.asarray(env.outcome_probs, np.float64),
        next_state=np.asarray(env.next_state, np.int64),
        terminal=np.asarray(env.terminal, bool),
        reward_index=np.asarray(env.reward_index, np.int64),
        reward_mean=loc + scale * params[:, 0],
        reward_std=scale * params[:, 1],
        gamma=float(np.asarray(env.gamma)),
        true_values=np.asarray(env.true_values(), np.float64),
    )


class Sampler:
    """One transition per stream per step: ``step(s) -> (r_t, discount_t, s_t)``."""

    def __init__(self, tables: Tables, rng: np.random.Generator):
        self.t, self.rng = tables, rng
        self.outcome_cdf = np.cumsum(tables.outcome_probs, axis=1).astype(F32)
        self.start_cdf = np.cumsum(tables.start_probs).astype(F32)

    def reset(self, n: int) -> np.ndarray:
        return self._categorical(self.rng.random(n, F32), self.start_cdf[None, :])

    @staticmethod
    def _categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
        idx = np.count_nonzero(cdf <= u[:, None], axis=1)
        return np.minimum(idx, cdf.shape[-1] - 1)

    def step(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, n = self.t, len(s)
        u = self.rng.random((2, n), F32)
        j = self._categorical(u[0], self.outcome_cdf[s])
        slot, term = t.reward_index[s, j], t.terminal[s, j]
        r = (t.reward_mean[slot] + t.reward_std[slot] * self.rng.standard_normal(n)).astype(F32)
        s_t = np.where(term, self._categorical(u[1], self.start_cdf[None, :]), t.next_state[s, j])
        discount = np.where(term, F32(0.0), F32(t.gamma))
        return r, discount, s_t


def run_numpy(
    rule: Rule, tables: Tables, num_streams: int, step_sizes: np.ndarray, num_steps: int, seed: int
) -> dict[str, Any]:
    """Runs ``num_streams x len(step_sizes)`` learners for ``num_steps``; times it.

    Returns ``run_seconds`` (init, every update and the final metric), ``learner_updates``
    and the final value RMSE of every learner (``value_error [streams, A]``).
    """
    rng = np.random.default_rng(seed)
    alphas = np.asarray(step_sizes, F32)
    sampler = Sampler(tables, rng)
    t0 = time.perf_counter()
    state = rule.init(num_streams, len(tables.true_values), len(alphas))
    s = sampler.reset(num_streams)
    for _ in range(num_steps):
        r, d, s_t = sampler.step(s)
        rule.update(state, s, r, d, s_t, alphas, rng)
        s = s_t
    values = rule.values(state)  # [streams, S, A]
    err = values - tables.true_values.astype(F32)[None, :, None]
    value_error = np.sqrt(np.mean(err * err, axis=1))
    seconds = time.perf_counter() - t0
    return {
        "run_seconds": seconds,
        "learner_updates": num_streams * len(alphas) * num_steps,
        "value_error": value_error,
    }
