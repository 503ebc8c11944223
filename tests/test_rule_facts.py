"""Facts about a rule live on the rule (issue 24, item 4): the engine tunes and reads a
plug-in by what it declares (``td_jax.rules.with_facts``), exactly as it does a built-in
rule with the same facts; nothing is keyed by a rule's name."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from td_jax import RuleFacts, rules
from td_jax.catalog import get_suite
from td_jax.engine import prediction, tuning
from td_jax.engine.scoring import calls
from td_jax.engine.specs import RuleSpec
from td_jax.engine.tasks import prepare_tasks


def _td_kernel(v, r_t, discount_t, v_next, step_size, key):
    return v + step_size * (r_t + discount_t * v_next - v)


def _sign_kernel(q, r_t, discount_t, q_next, step_size, key):
    """QTD at the median, written by a user: moves by the step in return units."""
    return q + step_size * (0.5 - (r_t + discount_t * q_next < q).astype(q.dtype))


def plain_td() -> rules.UpdateRule:
    return rules.tabular_rule(_td_kernel, init_stat=jnp.zeros(1), distributional=False)


def declared_return_unit() -> rules.UpdateRule:
    rule = rules.tabular_rule(_sign_kernel, init_stat=jnp.zeros(1))
    return rules.with_facts(rule, step_unit="return", distributional=True)


def declared_half_step() -> rules.UpdateRule:
    rule = rules.tabular_rule(lambda v, r, d, vn, a, k: _td_kernel(v, r, d, vn, 0.5 * a, k),
                              init_stat=jnp.zeros(1), distributional=False)  # fmt: skip
    return rules.with_facts(rule, mean_step=0.5, baseline="always", baseline_why="TD, halved")


def _units(*extra: RuleSpec) -> dict[tuple[str, str], prediction.Unit]:
    base = get_suite("quick")
    keep = [r for r in base.rules if r.label in ("td", "qtd", "td_placebo", "edrl")]
    suite = dataclasses.replace(base, rules=(*keep, *extra))
    units = prediction.make_units(suite, prepare_tasks(suite))
    return {(u.spec.label, t.spec.label): u for u in units for t in u.tasks}


def test_built_in_rules_carry_their_facts():
    assert rules.make("td").facts == RuleFacts()
    assert rules.make("qtd").facts.step_unit == "return"
    assert rules.make("dopamine_quantile").facts.step_unit == "return"
    for name in ("edrl", "dopamine_expectile", "td_placebo"):
        assert rules.make(name).facts.mean_step == 0.5
    assert rules.make("td_placebo").facts.baseline == "always"
    assert rules.make("td_lambda").facts.baseline == "one_step"
    assert rules.make("edrl").facts.relative_cost > 1
    # The reparameterised null hides its factor from the engine and is no baseline.
    hidden = rules.rescaled(rules.make("td_placebo"), 1.37).facts
    assert hidden.mean_step == 0.5 and hidden.baseline == ""


def test_a_plugin_tuned_by_its_declared_facts_as_the_built_in_rule_with_them():
    units = _units(
        RuleSpec("mine_td", plain_td),
        RuleSpec("mine_sign", declared_return_unit),
        RuleSpec("mine_half", declared_half_step),
    )
    for task in {t for _, t in units}:
        td, qtd = units[("td", task)], units.get(("qtd", task))
        # Undeclared: TD's facts, TD's grid.
        assert units[("mine_td", task)].unit == 1.0
        assert units[("mine_td", task)].configs == td.configs
        # A declared return-unit step: the task's return scale, QTD's, on QTD's grid.
        sign = units[("mine_sign", task)]
        assert sign.unit == qtd.unit and sign.configs == qtd.configs
        # A declared half step: the grid twice TD's, as the placebo's.
        half = units[("mine_half", task)]
        assert half.configs == units[("td_placebo", task)].configs
        assert [c.alpha for c in half.configs] == [
            pytest.approx(2 * c.alpha, rel=1e-5) for c in td.configs
        ]
        # Its declared baseline is read as the placebo's is: a pipeline check everywhere.
        env = half.tasks[0].env
        assert calls.identity(half.spec, half.rule, env) == "TD, halved"
        assert calls.identity(td.spec, td.rule, env) == ""
    assert {u.unit for (label, _), u in units.items() if label == "mine_sign"} != {1.0}
    # The costliest rule first, whatever its name.
    assert next(iter(units))[0] == "edrl"


def test_a_spec_overrides_the_rule_and_the_identity_needs_the_matched_grid():
    units = _units(RuleSpec("mine_half", declared_half_step, step_scale=1.0))
    unit = next(u for (label, _), u in units.items() if label == "mine_half")
    assert unit.spec.step_scale == 1.0 and unit.spec.step_unit == "fraction"
    assert calls.identity(unit.spec, unit.rule, unit.tasks[0].env) == ""
    bandit = next(u for (label, t), u in units.items() if label == "edrl" and "bandit" in t)
    assert calls.identity(bandit.spec, bandit.rule, bandit.tasks[0].env).startswith("one-step")


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (
            {"step_unit": "returns"},
            "step_unit must be one of ('fraction', 'return'), got 'returns'",
        ),
        ({"mean_step": 0.0}, "mean_step must be a finite number > 0, got 0.0"),
        ({"relative_cost": float("nan")}, "relative_cost must be a finite number > 0, got nan"),
        ({"baseline": "sometimes", "baseline_why": "x"}, "baseline must be one of"),
        ({"baseline": "always"}, "baseline and baseline_why go together"),
        ({"speed": 2.0}, "unknown fact(s) ['speed']"),
        ({"distributional": "yes"}, "distributional must be a bool, got 'yes'"),
    ],
)
def test_bad_facts_are_refused_with_the_field_and_value(facts, message):
    with pytest.raises(ValueError) as err:
        rules.with_facts(plain_td(), **facts)
    assert message in str(err.value)


def test_an_unresolved_factory_spec_is_refused_by_the_tuning_grid():
    spec = RuleSpec("mine", plain_td)
    assert spec.unit is None and spec.scale is None
    with pytest.raises(ValueError, match="unresolved"):
        tuning.initial_configs(spec, get_suite("quick"))
    resolved = spec.resolved(declared_return_unit().facts)
    assert resolved.unit == "return" and resolved.scale == 1.0
    assert np.isfinite(resolved.scale)


def test_numpy_numbers_are_facts_and_the_matched_grid_is_read_to_rounding():
    from td_jax.rules.facts import baseline_reason

    facts = rules.with_facts(plain_td(), mean_step=np.float32(0.5)).facts
    assert facts.mean_step == 0.5 and type(facts.mean_step) is float
    half = declared_half_step().facts
    assert baseline_reason(half, False, 2.0 * (1 + 1e-12)) == "TD, halved"
    assert baseline_reason(half, False, 2.1) == ""
