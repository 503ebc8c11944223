"""``MDP``: a tabular Markov decision process with exact ground truth, for control.

The outcome model of ``MRP`` with an action axis: from state ``s`` under action ``a`` one of
``B`` outcomes ``j`` happens with probability ``outcome_probs[s, a, j]``; it leads to
``next_state[s, a, j]``, pays a reward drawn from ``rewards[reward_index[s, a, j]]`` and may
end the episode (``terminal[s, a, j]``). Fixing the action (``action_mrp``) or a policy
(``induced_mrp``) gives an ``MRP``, so the stream (``step``) and the return distributions are
computed by the same code as prediction's.

Truth (SCIENCE.md section 8): Q* by value iteration, then policy iteration from its greedy
policy, which ends at an exactly evaluated optimal policy (each evaluation a linear solve);
V*, the optimal policy, the exact value of any policy, and the return distribution under
the optimal policy (``optimal_truth``). Puterman (1994), "Markov Decision Processes",
sections 6.3-6.4; Sutton and Barto (2018), ch. 4.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from td_jax.envs.mrp import MRP, TabularTask
from td_jax.envs.truth import ReturnTruth
from td_jax.types import Transition

VALUE_TOLERANCE = 1e-10  # sup-norm error of optimal_q, as SCIENCE.md section 8 asks
TIE_TOLERANCE = 1e-9  # actions within this of the best are ties: the lowest index is greedy
POLICY_ITERATIONS = 1_000  # policy iteration's rounds at most (it settles in a few)


@struct.dataclass
class MDP(TabularTask):
    """A tabular MDP; fields as ``MRP``'s with an action axis after the state axis.

    Attributes:
      gamma: float discount, in [0, 1).
      start_probs: f64[S] start-state distribution.
      outcome_probs: f64[S, A, B]; next_state: int32[S, A, B]; terminal: bool[S, A, B];
        reward_index: int32[S, A, B] (a slot of ``rewards``).
      rewards: RewardDistribution with leaves stacked over [num_slots].
      params: numeric construction parameters (seed, slip, ...), reported by config().
      name, num_states, num_actions, episodic, spec, reward_labels: static.
    """

    num_actions: int = struct.field(pytree_node=False)

    # -- stream (JAX) ---------------------------------------------------------------------

    def action_mrp(self, a: Any) -> MRP:
        """The MRP of always taking action ``a`` (an int, or a traced int32 inside jit).

        A Python int slices the numpy tables (float64 kept for the truth); a traced one, or
        traced tables (an MDP of a stacked batch), the JAX arrays (the stream).
        """
        concrete = not isinstance(self.outcome_probs, jax.core.Tracer)
        xp = np if isinstance(a, int | np.integer) and concrete else jnp
        return MRP(
            gamma=self.gamma,
            start_probs=self.start_probs,
            outcome_probs=xp.asarray(self.outcome_probs)[:, a],
            next_state=xp.asarray(self.next_state)[:, a],
            terminal=xp.asarray(self.terminal)[:, a],
            reward_index=xp.asarray(self.reward_index)[:, a],
            rewards=self.rewards,
            params=self.params,
            name=self.name,
            num_states=self.num_states,
            episodic=self.episodic,
            spec=self.spec,
            reward_labels=self.reward_labels,
        )

    def reset(self, key: jax.Array) -> jax.Array:
        """A start state, int32[]."""
        return self.action_mrp(0).reset(key)

    def step(self, key: jax.Array, s: jax.Array, a: jax.Array) -> Transition:
        """One transition from state ``s`` under action ``a`` (``MRP.step``'s sampling:
        the same key gives the same outcome and reward uniforms whatever the action)."""
        a = jnp.asarray(a, jnp.int32)
        chex.assert_rank(a, 0)
        return self.action_mrp(a).step(key, s)

    # -- structure (numpy) ----------------------------------------------------------------

    def _np(self, name: str) -> np.ndarray:
        x = np.asarray(getattr(self, name))
        if x.ndim != 3:
            raise ValueError(
                f"{self.name}: truth accessors need a single MDP, got a stacked one "
                f"({name} has shape {x.shape})"
            )
        return x

    def expected_rewards(self) -> np.ndarray:
        """f64[S, A]: E[r_t | s_tm1 = s, a]."""
        means = np.array([self.action_mrp(0).reward_slot(i).law().mean
                          for i in range(len(self.reward_labels))])  # fmt: skip
        return (self._np("outcome_probs") * means[self._np("reward_index")]).sum(axis=2)

    def continuation_tensor(self) -> np.ndarray:
        """f64[S, A, S]: P(next state = s' and the episode goes on | s, a)."""
        return np.stack([self.action_mrp(a).continuation_matrix()
                         for a in range(self.num_actions)], axis=1)  # fmt: skip

    # -- ground truth ---------------------------------------------------------------------

    def induced_mrp(self, policy: Any) -> MRP:
        """The MRP of following ``policy``: int[S] actions, or f[S, A] action probabilities."""
        from td_jax.envs.catalog import build

        pi = self._policy_matrix(policy)
        probs, nxt = self._np("outcome_probs"), self._np("next_state")
        term, slot = self._np("terminal"), self._np("reward_index")
        outcomes = []
        for s in range(self.num_states):
            row = [
                (float(pi[s, a] * probs[s, a, j]), int(nxt[s, a, j]), bool(term[s, a, j]),
                 int(slot[s, a, j]))
                for a in range(self.num_actions) if pi[s, a] > 0
                for j in range(probs.shape[2]) if probs[s, a, j] > 0
            ]  # fmt: skip
            outcomes.append(row)
        laws = [self.action_mrp(0).reward_slot(i) for i in range(len(self.reward_labels))]
        return build(
            f"{self.name}[policy]", outcomes=outcomes, rewards=laws,
            reward_labels=self.reward_labels, start_probs=np.asarray(self.start_probs),
            gamma=float(np.asarray(self.gamma)), episodic=self.episodic, spec=self.spec,
            params=dict(self.params),
        )  # fmt: skip

    def _policy_matrix(self, policy: Any) -> np.ndarray:
        S, A = self.num_states, self.num_actions
        arr = np.asarray(policy)
        if arr.shape == (S,) and np.issubdtype(arr.dtype, np.integer):
            if np.any((arr < 0) | (arr >= A)):
                raise ValueError(f"{self.name}: policy actions must be in [0, {A}), got {arr}")
            return np.eye(A)[arr]
        if arr.shape == (S, A):
            arr = arr.astype(np.float64)
            if np.any(arr < 0) or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-9):
                raise ValueError(
                    f"{self.name}: a stochastic policy needs rows of non-negative "
                    f"probabilities summing to 1, got row sums {arr.sum(axis=1)}"
                )
            return arr
        raise ValueError(
            f"{self.name}: policy must be int[{S}] actions or f[{S}, {A}] probabilities, "
            f"got shape {arr.shape} of {arr.dtype}"
        )

    def policy_values(self, policy: Any) -> np.ndarray:
        """f64[S]: the exact value of ``policy`` (a linear solve)."""
        return self.induced_mrp(policy).true_values()

    def policy_q(self, policy: Any) -> np.ndarray:
        """f64[S, A]: Q^pi = r(s, a) + gamma sum_s' P(s' | s, a) V^pi(s')."""
        gamma = float(np.asarray(self.gamma))
        v = self.policy_values(policy)
        return self.expected_rewards() + gamma * self.continuation_tensor() @ v

    def optimal_q(self) -> np.ndarray:
        """f64[S, A]: Q*, to ``VALUE_TOLERANCE`` in sup norm.

        Value iteration to a loose tolerance, then policy iteration from its greedy policy:
        each policy is evaluated exactly (a linear solve) and an action changes only where
        another is better by more than float64 rounding, so it stops at a policy greedy
        for its own Q, which is then Q* up to the solve's rounding (Puterman 1994,
        Theorem 6.4.2), ties included.
        """
        gamma = float(np.asarray(self.gamma))
        r, p = self.expected_rewards(), self.continuation_tensor()
        q = np.zeros_like(r)
        for _ in range(100_000):
            q_new = r + gamma * p @ q.max(axis=1)
            delta = float(np.max(np.abs(q_new - q)))
            q = q_new
            if delta * gamma <= 1e-6 * (1.0 - gamma):
                break
        policy = greedy(q)
        rows = np.arange(self.num_states)
        for _ in range(POLICY_ITERATIONS):
            q = self.policy_q(policy)
            best, current = q.max(axis=1), q[rows, policy]
            switch = best > current + 1e-12 * np.maximum(1.0, np.abs(best))
            if not switch.any():
                return q
            policy = np.where(switch, np.argmax(q, axis=1), policy).astype(np.int32)
        raise RuntimeError(
            f"{self.name}: policy iteration did not settle in {POLICY_ITERATIONS} rounds"
        )

    def optimal_values(self) -> np.ndarray:
        """f64[S]: V*(s) = max_a Q*(s, a)."""
        return self.optimal_q().max(axis=1)

    def optimal_policy(self) -> np.ndarray:
        """int32[S]: the greedy action of Q* (ties within TIE_TOLERANCE: lowest index)."""
        return greedy(self.optimal_q())

    def optimal_truth(self) -> ReturnTruth:
        """The true return laws per state under the optimal policy (``MRP.truth``)."""
        return self.induced_mrp(self.optimal_policy()).truth()

    def value_gap(self, policy: Any) -> np.ndarray:
        """f64[S]: V*(s) - V^pi(s) >= 0, exact."""
        return self.optimal_values() - self.policy_values(policy)

    def config(self) -> dict[str, Any]:
        """JSON-able description of the task, for manifests."""
        out = self.action_mrp(0).config()
        out["num_actions"] = self.num_actions
        return out


def greedy(q: np.ndarray) -> np.ndarray:
    """int32[S]: per row the lowest-index action within TIE_TOLERANCE of the row's max."""
    q = np.asarray(q, np.float64)
    best = q.max(axis=-1, keepdims=True)
    return np.argmax(q >= best - TIE_TOLERANCE, axis=-1).astype(np.int32)
