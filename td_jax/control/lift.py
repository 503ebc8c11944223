"""Any tabular rule as a control learner: its own update, toward a greedy target.

SCIENCE.md section 8: distributional control updates (s, a) toward r + gamma Z(s', a*) with
``a* = argmax_a' mean Z(s', a')`` (Watkins 1989 for the mean; Bellemare, Dabney and Munos
2017 and Dabney et al. 2018 for the distributional rules). A tabular ``UpdateRule`` keeps
one statistic vector per "state" and updates the row of ``s_tm1`` from the row of ``s_t``;
control runs the same rule on a table over state-action pairs, ``row(s, a) = s * A + a``,
and feeds it the transition from pair (s, a) to pair (s', a*). The rule is not re-derived:
Q-learning is TD lifted, quantile Q-learning QTD lifted, and a user's ``tabular_rule``
kernel lifts the same way. With one action per state the lifted transition is the
prediction transition itself, so control reproduces prediction update by update.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from td_jax.types import Array, PRNGKey, Transition, UpdateRule


def init(rule: UpdateRule, key: PRNGKey, num_states: int, num_actions: int) -> Any:
    """The rule's state over ``num_states * num_actions`` state-action rows."""
    return rule.init(key, num_states * num_actions)


def q_values(rule: UpdateRule, state: Any, num_actions: int) -> Array:
    """f32[S, A]: the rule's mean estimate of every state-action pair."""
    return rule.values(state).reshape(-1, num_actions)


TIE_STREAM = 0x7469  # fold_in tag of the tie-breaking priorities (other streams unchanged)


def tie_priority(key: PRNGKey, num_states: int, num_actions: int) -> Array:
    """f32[S, A]: a random priority per (state, action), drawn once per seed.

    With an all-zero start every action ties, and an argmax that takes the lowest index
    would make the value gap partly measure where the optimal action happens to sit
    (SCIENCE.md section 9). Drawn from the seed's stream key, so every rule and step size
    of a seed breaks its ties alike (common random numbers)."""
    return jax.random.uniform(jax.random.fold_in(key, TIE_STREAM), (num_states, num_actions))


def greedy_actions(q: Array, priority: Array | None = None) -> Array:
    """int32[...]: argmax over the last axis; exact ties go to the action of highest
    ``priority`` (same shape as ``q``; None: the lowest index, as ``MDP.optimal_policy``)."""
    if priority is None:
        return jnp.argmax(q, axis=-1).astype(jnp.int32)
    best = q >= jnp.max(q, axis=-1, keepdims=True)
    return jnp.argmax(jnp.where(best, priority, -1.0), axis=-1).astype(jnp.int32)


def lifted_transition(
    q: Array,
    s_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    s_t: Array,
    priority: Array | None = None,
) -> Transition:
    """The state-action transition (s, a) -> (s', argmax_a' q[s', a']) of the lifted table
    (ties by ``priority``, f32[S, A], as ``greedy_actions``)."""
    num_actions = q.shape[-1]
    # Only the next state's row: under the synchronous vmap over pairs an argmax over the
    # whole table would be computed once per pair (S x A times a step).
    a_star = greedy_actions(q[s_t], None if priority is None else priority[s_t])
    return Transition(
        s_tm1=(s_tm1 * num_actions + a_tm1).astype(jnp.int32),
        r_t=r_t,
        discount_t=discount_t,
        s_t=(s_t * num_actions + a_star).astype(jnp.int32),
    )


def update(
    rule: UpdateRule,
    state: Any,
    num_actions: int,
    transition: Transition,
    a_tm1: Array,
    step_size: Array,
    key: PRNGKey,
    priority: Array | None = None,
) -> Any:
    """One control update of pair (transition.s_tm1, a_tm1) toward its greedy target."""
    q = q_values(rule, state, num_actions)
    lifted = lifted_transition(
        q, transition.s_tm1, a_tm1, transition.r_t, transition.discount_t, transition.s_t,
        priority,
    )  # fmt: skip
    return rule.update(state, lifted, step_size, key)


def epsilon_greedy(
    key: PRNGKey, q_s: Array, epsilon: Array, priority_s: Array | None = None
) -> Array:
    """int32[]: a uniformly random action with probability epsilon, else the greedy one
    (ties by ``priority_s``, f32[A])."""
    k_explore, k_action = jax.random.split(key)
    random_action = jax.random.randint(k_action, (), 0, q_s.shape[-1], jnp.int32)
    explore = jax.random.uniform(k_explore) < epsilon
    tie = None if priority_s is None else priority_s[None]
    return jnp.where(explore, random_action, greedy_actions(q_s[None], tie)[0])
