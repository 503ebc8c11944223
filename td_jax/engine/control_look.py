"""A first look at rules as control learners on one MDP (``td-jax control``): each rule at
the step sizes given, in its own step unit, with the suites' normalised metrics and 95%
intervals over seeds.

One untuned configuration per rule is a look, not a comparison: a step size that suits
one rule can be far from another's best, so the look says so and names the suites that
compare (tuned per accuracy, by the protocol of SCIENCE.md sections 7 and 8).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from td_jax.control import run_controls
from td_jax.engine import plugins, tuning
from td_jax.engine.control_truth import ControlTask
from td_jax.engine.specs import RuleSpec
from td_jax.engine.units import build_rule

BOOTSTRAP_REPS = 2_000
NOT_A_COMPARISON = (
    "One untuned configuration per rule is a look, not a comparison: a step size that suits "
    "one rule can be far from another's best. `td-jax bench --suite control_quick` (minutes) "
    "or `--suite control` tunes each rule per accuracy and calls differences with intervals."
)


class Row(NamedTuple):
    """One (rule, step size): the final normalised metrics, mean over seeds and 95% interval."""

    rule: str
    step_size: float  # the step given, in the rule's own unit
    absolute: float  # the step the learner took (step_size x the rule's unit)
    q_error: tuple[float, float, float]  # mean, low, high of ||Q - Q*||_inf / scale
    value_gap: tuple[float, float, float]  # mean, low, high of max_s V* - V^pi / scale


def rule_spec(given: str) -> RuleSpec:
    """A built-in rule name, or a plug-in ``[label=]module:factory``."""
    return plugins.load_rule(given) if ":" in given else RuleSpec(given, given)


def _interval(x: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds and its 95% percentile-bootstrap interval (inf: some seed diverged)."""
    x = np.where(np.isfinite(x), x, np.inf)
    if not np.all(np.isfinite(x)):
        return float("inf"), float("inf"), float("inf")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(BOOTSTRAP_REPS, x.size))
    means = x[idx].mean(axis=1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def look(task: ControlTask, rules: list[str], step_sizes: list[float], seeds: int, steps: int,
         mode: str, epsilon: float) -> tuple[list[Row], dict[str, Any]]:  # fmt: skip
    """Runs each rule at ``step_sizes`` x its unit (``tuning.unit_scale``: 1 for a fraction
    step, the task's RMS return for a return-unit one, as the control suites); returns the
    rows and each rule's unit."""
    uniform = np.full(task.num_pairs, 1.0 / task.num_pairs)
    rows, units = [], {}
    for given in rules:
        spec = rule_spec(given)
        rule, _ = build_rule(spec, {task.mdp.name: task.pairs})
        spec = spec.resolved(rule.facts)
        unit = tuning.unit_scale(spec, task.pairs.true_values(), task.pairs.return_variances(),
                                 uniform, task.spread)  # fmt: skip
        units[spec.label] = (spec.unit, unit)
        runs = run_controls({spec.label: rule}, {task.mdp.name: task.mdp},
                            [a * unit for a in step_sizes], seeds, steps, mode=mode,
                            epsilon=epsilon)  # fmt: skip
        for a, alpha in enumerate(step_sizes):
            q, g = (runs.metrics[m][0, 0, a, :, -1] / task.scale for m in ("q_error", "value_gap"))
            rows.append(Row(spec.label, float(alpha), float(alpha * unit), _interval(q),
                            _interval(g)))  # fmt: skip
    return rows, units


def table(task: ControlTask, rows: list[Row], units: dict[str, Any], seeds: int, steps: int,
          mode: str) -> list[str]:  # fmt: skip
    """The look as text lines: the task, each rule's unit, the table, and what it is not."""
    mdp = task.mdp
    lines = [
        f"{mdp.name}: {mdp.num_states} states x {mdp.num_actions} actions, {mode}, {steps:,} "
        f"updates, {seeds} seeds; metrics divided by the task's scale {task.scale:.4g} "
        f"({task.scale_kind}); mean over seeds [95% bootstrap interval]",
    ]
    for label, (kind, unit) in units.items():
        if kind == "return":
            lines.append(f"{label}: step sizes in return units, x {unit:g} (the task's RMS return)")
    lines.append(f"{'rule':<20} {'step_size':>9} {'q_error':>30} {'value_gap':>30}")
    for r in rows:
        cells = [f"{m:.4g} [{lo:.4g}, {hi:.4g}]" for m, lo, hi in (r.q_error, r.value_gap)]
        lines.append(f"{r.rule:<20} {r.step_size:>9.4g} {cells[0]:>30} {cells[1]:>30}")
    lines.append(NOT_A_COMPARISON)
    return lines
