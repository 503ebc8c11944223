"""Core types shared by every part of td_jax: a transition and an update rule.

The update-rule contract follows optax's ``GradientTransformation``: a NamedTuple of
pure functions closed over hyperparameters by a factory (see ``td_jax.rules``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

Array = jax.Array
PRNGKey = jax.Array
RuleState = Any  # any pytree


class Transition(NamedTuple):
    """One transition of a Markov reward process, with rlax's naming.

    Attributes:
      s_tm1: int32[] state the transition leaves.
      r_t: float32[] reward received.
      discount_t: float32[] gamma, or 0 at an episode boundary.
      s_t: int32[] state reached (the next episode's start state after a boundary).
    """

    s_tm1: Array
    r_t: Array
    discount_t: Array
    s_t: Array


class UpdateRule(NamedTuple):
    """A tabular or parametric TD learner as a tuple of pure functions.

    Attributes:
      init: ``init(key, num_states) -> state`` builds the learner state (any pytree).
      update: ``update(state, transition, step_size, key) -> state`` applies one
        transition. ``step_size`` is a traced scalar so that a sweep over step sizes
        is a ``vmap`` and never a recompile.
      values: ``values(state) -> f32[num_states]``, the mean-return estimate.
      distribution: ``distribution(state) -> (locs f32[S, K], probs f32[S, K])``, the
        learned return distribution as weighted atoms (classical TD: one atom).
      distributional: whether the rule learns more than the mean; the harness reports
        a distribution error only for these.
      definition: the rule's one definition (``td_jax.rules.RuleDefinition``: the direction
        its per-state statistics move) where it has one, as every tabular rule does; control
        and parametric learners are built from it. None for other rules (TD(lambda)'s
        traces, parametric learners).
    """

    init: Callable[[PRNGKey, int], RuleState]
    update: Callable[[RuleState, Transition, Array, PRNGKey], RuleState]
    values: Callable[[RuleState], Array]
    distribution: Callable[[RuleState], tuple[Array, Array]]
    distributional: bool = False
    definition: Any = None
