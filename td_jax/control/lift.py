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


def greedy_actions(q: Array) -> Array:
    """int32[S]: argmax over actions, exact ties to the lowest index (``MDP.optimal_policy``
    also calls actions within 1e-9 of the best ties)."""
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def lifted_transition(
    q: Array, s_tm1: Array, a_tm1: Array, r_t: Array, discount_t: Array, s_t: Array
) -> Transition:
    """The state-action transition (s, a) -> (s', argmax_a' q[s', a']) of the lifted table."""
    num_actions = q.shape[-1]
    a_star = greedy_actions(q)[s_t]
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
) -> Any:
    """One control update of pair (transition.s_tm1, a_tm1) toward its greedy target."""
    q = q_values(rule, state, num_actions)
    lifted = lifted_transition(
        q, transition.s_tm1, a_tm1, transition.r_t, transition.discount_t, transition.s_t
    )
    return rule.update(state, lifted, step_size, key)


def epsilon_greedy(key: PRNGKey, q_s: Array, epsilon: Array) -> Array:
    """int32[]: a uniformly random action with probability epsilon, else the greedy one."""
    k_explore, k_action = jax.random.split(key)
    random_action = jax.random.randint(k_action, (), 0, q_s.shape[-1], jnp.int32)
    explore = jax.random.uniform(k_explore) < epsilon
    return jnp.where(explore, random_action, greedy_actions(q_s[None])[0])
