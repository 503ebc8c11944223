"""What the control protocol needs of an MDP: its error scale, step unit and bias floors.

The state-action MRP of a policy pi has one state per pair (s, a): from (s, a) it pays the
reward of (s, a) and moves to (s', pi(s')). Its values are Q^pi, its return laws those of
the pairs, and a distributional control rule's fixed point for a fixed greedy policy is
the prediction fixed point of that MRP (``engine.floors``). The control fixed point is
found by iterating: fixed point of the MRP of pi, greedy policy of its means, until the
policy repeats (SCIENCE.md section 8; Bellemare et al. 2017 show the control operator is
not a contraction, so a cycle is possible and reported as no floor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from td_jax.engine import floors
from td_jax.envs.catalog import build
from td_jax.envs.mdp import MDP, greedy
from td_jax.envs.mrp import MRP
from td_jax.runner.metrics import return_spread

MAX_POLICY_ROUNDS = 50


def pair_mrp(mdp: MDP, policy: np.ndarray) -> MRP:
    """The MRP over pairs (s, a) (index s * A + a) of acting ``policy`` after the first step."""
    A = mdp.num_actions
    probs = np.asarray(mdp.outcome_probs, np.float64)
    nxt, term = np.asarray(mdp.next_state), np.asarray(mdp.terminal)
    slot = np.asarray(mdp.reward_index)
    outcomes = []
    for s in range(mdp.num_states):
        for a in range(A):
            row = [(float(probs[s, a, j]), int(nxt[s, a, j]) * A + int(policy[nxt[s, a, j]]),
                    bool(term[s, a, j]), int(slot[s, a, j]))
                   for j in range(probs.shape[2]) if probs[s, a, j] > 0]  # fmt: skip
            outcomes.append(row)
    base = mdp.action_mrp(0)
    laws = [base.reward_slot(i) for i in range(len(mdp.reward_labels))]
    n = mdp.num_states * A
    return build(
        f"{mdp.name}[pairs]", outcomes=outcomes, rewards=laws, reward_labels=mdp.reward_labels,
        start_probs=np.full(n, 1.0 / n), gamma=float(np.asarray(mdp.gamma)),
        episodic=mdp.episodic, spec=mdp.spec, params=dict(mdp.params),
    )  # fmt: skip


class ControlTask:
    """One MDP of a control suite with its exact truth and the protocol's scales.

    Attributes:
      q_star: f64[S, A]. optimal: int[S]. pairs: the optimal policy's pair MRP.
      scale: the error scale (return units): the RMS over pairs of the return's standard
        deviation under the optimal policy (its interquartile range / 1.349 where a return
        has no finite variance); fallback the RMS of Q*, then 1. ``scale_kind`` names it.
        Both metrics (||Q - Q*||_inf and the value gap max_s V* - V^pi) are divided by it.
      initial_error: the normalised metrics of the all-zero start: ||Q*||_inf and the value
        gap of the uniform policy (every action ties at Q = 0 and ties break at random).
    """

    def __init__(self, spec: Any, mdp: MDP, horizon: int):
        self.spec, self.mdp, self.horizon = spec, mdp, horizon
        self.q_star = mdp.optimal_q()
        self.optimal = greedy(self.q_star)
        self.pairs = pair_mrp(mdp, self.optimal)
        self.spread = return_spread(self.pairs, self.pairs.return_variances())
        rms_spread = float(np.sqrt(np.mean(np.square(self.spread))))
        rms_q = float(np.sqrt(np.mean(np.square(self.q_star))))
        if rms_spread > 1e-6 * max(rms_q, 1.0):  # else deterministic up to float rounding
            self.scale, self.scale_kind = rms_spread, "RMS return std (optimal policy)"
        elif rms_q > 1e-9:
            self.scale, self.scale_kind = rms_q, "RMS of Q*"
        else:
            self.scale, self.scale_kind = 1.0, "1"
        # The all-zero start: Q = 0, and its greedy policy breaks the all-action tie at
        # random (``control.lift.tie_priority``), so its expected behaviour is the uniform
        # policy's.
        uniform = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
        self.initial_error = {
            "q_error": float(np.max(np.abs(self.q_star))) / self.scale,
            "value_gap": float(np.max(mdp.value_gap(uniform))) / self.scale,
        }

    @property
    def env(self) -> MDP:
        return self.mdp

    @property
    def num_pairs(self) -> int:
        return self.mdp.num_states * self.mdp.num_actions

    def manifest(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "scale": self.scale,
            "scale_kind": self.scale_kind,
            "initial_error": self.initial_error,
            "optimal_policy": self.optimal.tolist(),
            "max_abs_q_star": float(np.max(np.abs(self.q_star))),
        }


def _pair_means(rule: str, hparams: dict, mrp: MRP) -> np.ndarray | None:
    """f64[S * A]: the mean readout of the rule's prediction fixed point on ``mrp``."""
    if rule in ("td", "td_placebo", "td_lambda"):
        return np.asarray(mrp.true_values(), np.float64)
    if rule == "qtd":
        taus = floors.midpoint_taus(int(hparams.get("num_quantiles", 32)))
        return floors.quantile_fixed_point(mrp, taus).mean(axis=1)
    if rule == "dopamine_quantile" and "alpha_plus" not in hparams:
        taus = floors.rule_levels(hparams, "num_cells", floors.DEFAULT_NUM_CELLS)
        return floors.quantile_fixed_point(mrp, taus).mean(axis=1)
    if rule == "ctd":
        z = np.linspace(float(hparams["v_min"]), float(hparams["v_max"]),
                        int(hparams.get("num_atoms", 51)))  # fmt: skip
        return floors.categorical_fixed_point(mrp, z) @ z
    if rule == "dopamine_expectile" and "alpha_plus" not in hparams:
        taus = floors.rule_levels(hparams, "num_cells", floors.DEFAULT_NUM_CELLS)
        half = np.flatnonzero(np.abs(taus - 0.5) < 1e-6)
        if half.size:  # the mean readout is the middle cell
            return floors.expectile_fixed_point(mrp, taus)[:, half[0]]
    return None


def control_floor(rule: str, hparams: dict, task: ControlTask) -> dict[str, float] | None:
    """The control fixed point's normalised ``{q_error, value_gap}``, or None (no exact
    fixed point for this rule, or the greedy policy cycles)."""
    mdp, A = task.mdp, task.mdp.num_actions
    policy, seen = task.optimal, set()
    for _ in range(MAX_POLICY_ROUNDS):
        means = _pair_means(rule, hparams, pair_mrp(mdp, policy))
        if means is None:
            return None
        q = means.reshape(mdp.num_states, A)
        new = greedy(q)
        if np.array_equal(new, policy):
            gap = float(np.max(mdp.value_gap(policy)))
            return {
                "q_error": float(np.max(np.abs(q - task.q_star))) / task.scale,
                "value_gap": max(gap, 0.0) / task.scale,
            }
        key = new.tobytes()
        if key in seen:
            return None
        seen.add(key)
        policy = new
    return None
