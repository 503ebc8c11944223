"""A rule with its step multiplied inside it: the reparameterised null (SCIENCE.md 9)."""

from __future__ import annotations

import dataclasses

from td_jax.rules.definition import RuleDefinition
from td_jax.strict import check_finite
from td_jax.types import Rescaling, UpdateRule


def rescaled(rule: UpdateRule, factor: float) -> UpdateRule:
    """``rule`` at ``factor`` times the step it is given, for any rule (a plug-in too).

    The same learner reparameterised: tuned on the rule's own grid, its step landscape is
    the rule's shifted by ``log(factor)``. With a factor that is not a power of the grid's
    ratio no grid point maps onto one of the rule's, so only a search that finds the
    optimum wherever the grid falls calls the two equal: a null control that can fail
    (unlike a factor of 1/2 on a grid twice the rule's, which is the rule by construction).
    A rule's definition (the direction its statistics move, ``stat += step * signal``)
    is rescaled too, so control and parametric liftings see the same factor.

    Args:
      rule: any ``UpdateRule``.
      factor: the step multiplier, finite and > 0.
    """
    factor = check_finite("rescaled", "factor", factor)
    if not factor > 0.0:
        raise ValueError(f"rescaled: factor must be > 0, got {factor!r}")
    if not isinstance(rule, UpdateRule):
        raise ValueError(f"rescaled: rule must be a td_jax.UpdateRule, got {type(rule).__name__}")
    update = rule.update

    def rescaled_update(state, transition, step_size, key):
        return update(state, transition, step_size * factor, key)

    definition = rule.definition
    if isinstance(definition, RuleDefinition):
        signal = definition.signal

        def rescaled_signal(stat_s, r_t, discount_t, stat_next, key):
            return factor * signal(stat_s, r_t, discount_t, stat_next, key)

        definition = dataclasses.replace(definition, signal=rescaled_signal)
    # The engine is not told the factor (its facts keep the rule's step unit and mean step,
    # as a plug-in that does not declare them), and a rescaled rule is no longer the
    # baseline by construction anywhere.
    facts = rule.facts._replace(baseline="", baseline_why="")
    return rule._replace(
        update=rescaled_update,
        definition=definition,
        facts=facts,
        rescale_of=Rescaling(rule, factor, rescaled_update),
    )
