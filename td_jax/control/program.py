"""The compiled control program: one rule on a group of same-shaped MDPs, every stream x step.

A stream is one (MDP, seed) pair; each stream's learners are its step sizes, which share the
stream's key and so its samples (common random numbers across step sizes; across rules too,
as every rule's program draws from the same keys). MDP leaves are stacked on a leading axis
and each stream reads its own MDP's, so MDPs of one shape are one batch and one program.

Modes (SCIENCE.md section 8): ``synchronous`` (a generative model: every (s, a) pair draws a
transition each step; all pairs update from the old table) and ``online`` (epsilon-greedy on
the learner's own means). Metrics at checkpoints, exact: ``||Q - Q*||_inf``, the mean
squared error over pairs, and the greedy policy's value gap ``max_s V*(s) - V^pi(s)``
(a linear solve inside the program).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.control import lift
from td_jax.envs.mdp import MDP
from td_jax.rules.tabular import TabularState
from td_jax.types import Array, Transition, UpdateRule


class Truth(NamedTuple):
    """Per MDP of a group, stacked on a leading axis E (float32)."""

    q_star: Array  # [E, S, A]
    advantage: Array  # [E, S, A]: V*(s) - Q*(s, a), >= 0
    p_cont: Array  # [E, S, A, S]: P(s' and the episode goes on | s, a)
    gamma: Array  # [E]


def truth_of(mdps: list[MDP]) -> Truth:
    """The exact truth of each MDP (value iteration, then policy iteration: ``optimal_q``)."""
    q = [m.optimal_q() for m in mdps]
    return Truth(
        jnp.asarray(np.stack(q), jnp.float32),
        jnp.asarray(np.stack([x.max(axis=1, keepdims=True) - x for x in q]), jnp.float32),
        jnp.asarray(np.stack([m.continuation_tensor() for m in mdps]), jnp.float32),
        jnp.asarray([float(np.asarray(m.gamma)) for m in mdps], jnp.float32),
    )


def _metrics(rule: UpdateRule, state: Any, num_actions: int, truth: Truth, priority: Array):
    """(sup-norm Q error, mean squared Q error, greedy value gap) of one learner."""
    q_star, advantage, p_cont, gamma = truth
    q = lift.q_values(rule, state, num_actions)
    pi = lift.greedy_actions(q, priority)
    rows = jnp.arange(q.shape[0])
    # V* - V^pi = (I - gamma P_pi)^-1 (V* - Q*(s, pi(s))): solved directly, so the gap is
    # >= 0 by construction and exactly 0 for an optimal policy (no float32 cancellation).
    eye = jnp.eye(q.shape[0], dtype=q.dtype)
    gap = jnp.linalg.solve(eye - gamma * p_cont[rows, pi], advantage[rows, pi])
    err = q - q_star
    return jnp.max(jnp.abs(err)), jnp.mean(err * err), jnp.max(gap)


def _synchronous(rule, env: MDP, carry, step, key, alpha, epsilon, priority):
    del epsilon
    state, s = carry
    if not isinstance(state, TabularState):
        raise ValueError(
            "run_control: synchronous mode needs a tabular rule (a TabularState), got a "
            f"rule whose state is {type(state).__name__}; use mode='online' for it"
        )
    num_s, num_a = env.num_states, env.num_actions
    pair_s = jnp.repeat(jnp.arange(num_s, dtype=jnp.int32), num_a)
    pair_a = jnp.tile(jnp.arange(num_a, dtype=jnp.int32), num_s)
    k_env, k_rule = jax.random.split(jax.random.fold_in(key, step))
    tr = jax.vmap(env.step)(jax.random.split(k_env, num_s * num_a), pair_s, pair_a)
    q = lift.q_values(rule, state, num_a)
    lifted = jax.vmap(lift.lifted_transition, in_axes=(None, 0, 0, 0, 0, 0, None))(
        q, tr.s_tm1, pair_a, tr.r_t, tr.discount_t, tr.s_t, priority
    )
    copies = jax.vmap(rule.update, in_axes=(None, 0, None, 0))(
        state, lifted, alpha, jax.random.split(k_rule, num_s * num_a)
    )
    rows = jnp.arange(num_s * num_a)
    return TabularState(copies.table[rows, rows]), s


def _online(rule, env: MDP, carry, step, key, alpha, epsilon, priority):
    state, s = carry
    k_env, k_act, k_rule = jax.random.split(jax.random.fold_in(key, step), 3)
    q = lift.q_values(rule, state, env.num_actions)  # read once: behaviour and target
    a = lift.epsilon_greedy(k_act, q[s], epsilon, priority[s])
    tr: Transition = env.step(k_env, s, a)
    lifted = lift.lifted_transition(q, tr.s_tm1, a, tr.r_t, tr.discount_t, tr.s_t, priority)
    return rule.update(state, lifted, alpha, k_rule), tr.s_t


STEPS = {"synchronous": _synchronous, "online": _online}


def make_program(rule: UpdateRule, mode: str, checkpoints: np.ndarray, shared: tuple):
    """``program(mdps, truth, env_index, keys, alphas, inv_decay, epsilon)`` -> metrics.

    ``mdps``: MDPs stacked leaf-wise on an axis E; ``env_index`` i32[B] and ``keys`` [B]
    the streams; ``alphas`` / ``inv_decay`` f32[E, A] each MDP's step sizes and 1/d of
    their harmonic decay ``alpha / (1 + alpha t / d)`` (0: constant). Greedy actions break
    exact ties by a random priority per (state, action) drawn once from the stream's key
    (``lift.tie_priority``): random per seed, shared by the stream's rules and step sizes.
    ``shared``: the leaves every MDP of the group has alike
    (``runner.program.shared_leaves``), used as constants, so that what an MDP's code
    decides from them statically (its reward sampler) is decided at trace time. Returns
    (q_error, q_sq_error, value_gap) f32[B, A, C] and the final Q f32[B, A, S, A_actions].
    """
    bounds = np.stack([np.concatenate([[0], checkpoints[:-1]]), checkpoints], axis=1)
    step_fn = STEPS[mode]

    def learner(env: MDP, truth: Truth, key, alpha, inv_decay, epsilon):
        k_init, k_start, k_run = jax.random.split(key, 3)
        priority = lift.tie_priority(key, env.num_states, env.num_actions)
        carry = (lift.init(rule, k_init, env.num_states, env.num_actions), env.reset(k_start))

        def segment(carry, bound):
            def body(step, c):
                alpha_t = alpha / (1.0 + alpha * step.astype(jnp.float32) * inv_decay)
                return step_fn(rule, env, c, step, k_run, alpha_t, epsilon, priority)

            carry = jax.lax.fori_loop(bound[0], bound[1], body, carry)
            return carry, _metrics(rule, carry[0], env.num_actions, truth, priority)

        carry, out = jax.lax.scan(segment, carry, jnp.asarray(bounds, jnp.int32))
        return (*out, lift.q_values(rule, carry[0], env.num_actions))

    def stream(mdps: MDP, truth: Truth, index, key, alphas, inv_decay, epsilon):
        leaves, treedef = jax.tree.flatten(mdps)
        env = treedef.unflatten(
            [x[index] if c is None else c for x, c in zip(leaves, shared, strict=True)]
        )
        mine = Truth(*(x[index] for x in truth))
        per_step = jax.vmap(learner, in_axes=(None, None, None, 0, 0, None))
        return per_step(env, mine, key, alphas[index], inv_decay[index], epsilon)

    def program(mdps, truth, env_index, keys, alphas, inv_decay, epsilon):
        return jax.vmap(stream, in_axes=(None, None, 0, 0, None, None, None))(
            mdps, truth, env_index, keys, alphas, inv_decay, epsilon
        )

    return program
