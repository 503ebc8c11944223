"""Facts about a rule that the engine reads: declared on the rule, never kept by name.

A built-in rule carries its ``RuleFacts`` (``td_jax.types``); a plug-in declares its own::

    def make_rule():
        rule = td_jax.rules.tabular_rule(my_kernel, init_stat=jnp.zeros(8))
        return td_jax.rules.with_facts(rule, step_unit="return", distributional=True)

The suites' engine tunes a rule on its own grid (``step_unit``, ``mean_step``), keeps the
cells where it is the baseline by construction out of the answer (``baseline``), and starts
the costliest units first (``relative_cost``): SCIENCE.md sections 7 and 9.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from td_jax.types import RuleFacts, UpdateRule

STEP_UNITS = ("fraction", "return")
BASELINES = ("", "always", "one_step")

# Why a built-in rule is TD by construction on one-step tasks (gamma = 0 or every transition
# terminal): the targets are rewards, so EDRL's 0.5-expectile and the expectile population's
# middle cell move their mean as TD does at half the step (|tau - 1{r < e}| = 1/2 at tau =
# 1/2), and TD(lambda)'s traces are cleared after every update.
HALF_TD_ONE_STEP = "one-step task: its mean is TD at half the step, on a grid twice TD's"
ONE_STEP_TRACES = "one-step task: every trace is cleared each step, so TD(lambda) is TD(0)"


def check_facts(facts: RuleFacts, where: str = "rule") -> RuleFacts:
    """``facts`` if every field is allowed; else ValueError naming the field and value."""
    if not isinstance(facts, RuleFacts):
        raise ValueError(f"{where}: facts must be a td_jax.RuleFacts, got {type(facts).__name__}")
    if facts.step_unit not in STEP_UNITS:
        raise ValueError(f"{where}: step_unit must be one of {STEP_UNITS}, got {facts.step_unit!r}")
    for name in ("mean_step", "relative_cost"):
        value = getattr(facts, name)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
        if not (ok and math.isfinite(value) and value > 0):
            raise ValueError(f"{where}: {name} must be a finite number > 0, got {value!r}")
    facts = facts._replace(mean_step=float(facts.mean_step),
                           relative_cost=float(facts.relative_cost))  # fmt: skip
    if facts.baseline not in BASELINES:
        raise ValueError(f"{where}: baseline must be one of {BASELINES}, got {facts.baseline!r}")
    if bool(facts.baseline) != bool(facts.baseline_why):
        raise ValueError(
            f"{where}: baseline and baseline_why go together (a place and why), got "
            f"baseline={facts.baseline!r}, baseline_why={facts.baseline_why!r}"
        )
    return facts


def with_facts(rule: UpdateRule, *, distributional: bool | None = None, **facts: Any) -> UpdateRule:
    """``rule`` with the given ``RuleFacts`` fields (and ``distributional``) replaced.

    Args:
      rule: any ``UpdateRule``.
      distributional: whether the rule learns more than the mean (None: unchanged). The
        answer counts only distributional rules.
      **facts: ``step_unit``, ``mean_step``, ``relative_cost``, ``baseline``,
        ``baseline_why`` (see ``td_jax.RuleFacts``).

    Raises:
      ValueError: an unknown field or a value that is not allowed (the message names it).
    """
    if not isinstance(rule, UpdateRule):
        raise ValueError(f"with_facts: rule must be a td_jax.UpdateRule, got {type(rule).__name__}")
    unknown = sorted(set(facts) - set(RuleFacts._fields))
    if unknown:
        raise ValueError(f"with_facts: unknown fact(s) {unknown}; allowed: {RuleFacts._fields}")
    new = check_facts(rule.facts._replace(**facts), "with_facts")
    out = rule._replace(facts=new)
    if distributional is not None:
        if not isinstance(distributional, bool | np.bool_):
            raise ValueError(f"with_facts: distributional must be a bool, got {distributional!r}")
        out = out._replace(distributional=bool(distributional))
    return out


def baseline_reason(facts: RuleFacts, one_step: bool, grid_scale: float) -> str:
    """Why the rule is the baseline by construction on a task ('' where it is not).

    Args:
      facts: the rule's facts.
      one_step: whether every transition of the task has discount 0 (a bandit).
      grid_scale: the multiple of the suite's grid the rule is tuned on; the identity
        holds only where it matches the rule's mean step (``grid_scale * mean_step == 1``).
    """
    if not facts.baseline or not math.isclose(grid_scale * facts.mean_step, 1.0, rel_tol=1e-9):
        return ""
    if facts.baseline == "always" or one_step:
        return facts.baseline_why
    return ""
