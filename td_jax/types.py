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

# How learners see a task, everywhere a mode is given (td_jax.run, control, the suites):
# "online", one trajectory per stream; "synchronous", every state (or state-action pair)
# updated each step from a generative model, all from the previous estimates.
MODES = ("online", "synchronous")


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


class RuleFacts(NamedTuple):
    """What the engine needs to know about a rule to tune it fairly and to read its cells.

    Built-in rules carry their own; a plug-in declares its own with
    ``td_jax.rules.with_facts`` (the defaults are TD's). The engine keeps no list of rule
    names: it reads these fields (SCIENCE.md sections 7 and 9).

    Attributes:
      step_unit: "fraction": the step is a fraction of the error, as in TD (the grid is
        used as it is); "return": the statistic moves by at most the step in return units
        per update, as in QTD (sign-driven: the grid is multiplied by the task's return
        scale).
      mean_step: the rule's mean moves at this multiple of the step it is given (1 for TD;
        1/2 for EDRL and the expectile cells, whose 0.5-level weight |tau - 1{y < e}| is
        1/2, and for the placebo). The grid is divided by it, so that equal grid points
        are equal effective steps.
      relative_cost: the cost of one update relative to TD's (EDRL's imputation: about
        100); the engine starts the costliest units first, so that they overlap the rest.
      baseline: where the rule is the baseline (TD) by construction, on a grid matched by
        ``mean_step``: "" (nowhere), "always", or "one_step" (tasks whose every transition
        has discount 0). Such cells are pipeline checks, kept out of the answer.
      baseline_why: why, in the report's words (required with ``baseline``).
    """

    step_unit: str = "fraction"
    mean_step: float = 1.0
    relative_cost: float = 1.0
    baseline: str = ""
    baseline_why: str = ""


class Rescaling(NamedTuple):
    """What ``td_jax.rules.rescaled`` made a rule from: ``base`` at ``factor`` times its step,
    through the update function ``update`` it built. The runner runs ``base``'s program
    with the steps times ``factor`` only while the rule's update is still ``update`` (a
    rule whose update was replaced since runs its own)."""

    base: Any  # the UpdateRule
    factor: float
    update: Callable[..., Any]


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
      distributional: whether the rule learns more than the mean; the engine reports
        a distribution error only for these.
      definition: the rule's one definition (``td_jax.rules.RuleDefinition``: the direction
        its per-state statistics move) where it has one, as every tabular rule does; control
        and parametric learners are built from it. None for other rules (TD(lambda)'s
        traces, parametric learners).
      facts: what the engine reads about the rule (``RuleFacts``: its step unit, mean-step
        factor, cost, and where it is the baseline by construction).
      rescale_of: a ``Rescaling(rule, factor, update)`` where this rule is
        ``td_jax.rules.rescaled(rule, factor)``, else None. ``td_jax.run`` then runs
        ``rule``'s compiled program with every step multiplied by ``factor`` (the same
        product the rescaled update takes, so the same numbers): a rule and its
        reparameterised copies share one program.
    """

    init: Callable[[PRNGKey, int], RuleState]
    update: Callable[[RuleState, Transition, Array, PRNGKey], RuleState]
    values: Callable[[RuleState], Array]
    distribution: Callable[[RuleState], tuple[Array, Array]]
    distributional: bool = False
    definition: Any = None
    facts: RuleFacts = RuleFacts()
    rescale_of: Rescaling | None = None
