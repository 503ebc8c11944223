"""The typed contracts of what users implement (``td_jax.protocols``, issue 24 item 5) and the
one check vocabulary (``td_jax.strict``): a plug-in's type error names the contract it
broke and what it lacks, in one line, before anything compiles."""

from __future__ import annotations

import ast
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import td_jax
from td_jax import envs, rules, strict
from td_jax.control import run_controls
from td_jax.protocols import MDPLike, MRPLike, missing_members


def test_the_built_in_tasks_implement_their_contracts():
    mrp = envs.make("chain", num_states=3)
    mdp = envs.make_mdp("risky_safe")
    assert isinstance(mrp, MRPLike) and not missing_members(mrp, MRPLike)
    assert isinstance(mdp, MDPLike) and not missing_members(mdp, MDPLike)
    assert not isinstance(mrp, MDPLike)  # an MRP's step takes no action: no num_actions
    assert td_jax.MRPLike is MRPLike and td_jax.Kernel is not None


class _HalfAnMRP:
    """Has a state count and a stream, but no exact truth."""

    num_states = 2

    def reset(self, key):
        return jnp.int32(0)

    def step(self, key, s):
        raise AssertionError("never stepped: refused before tracing")


def test_run_names_the_mrp_contract_and_the_missing_members():
    with pytest.raises(ValueError) as err:
        td_jax.run(["td"], {"mine": _HalfAnMRP()}, [0.1], 2, 10)
    msg = str(err.value)
    assert "env 'mine' does not implement td_jax.protocols.MRPLike" in msg
    assert "'true_distribution_table', 'true_values'" in msg and "_HalfAnMRP" in msg
    assert "\n" not in msg


def test_run_control_names_the_mdp_contract():
    with pytest.raises(ValueError, match=r"run_control: mdp 'mine' does not implement "
                       r"td_jax.protocols.MDPLike \(it has no 'num_actions', 'optimal_q', "
                       r"'value_gap'\)"):  # fmt: skip
        run_controls({"td": "td"}, {"mine": envs.make("chain", num_states=3)}, [0.1], 2, 10)


def _kernel(stat_s, r_t, discount_t, stat_next, step_size, key):
    return stat_s + step_size * (r_t + discount_t * stat_next - stat_s)


def test_tabular_rule_checks_its_kernel_against_the_contract():
    rule = rules.tabular_rule(_kernel, init_stat=jnp.zeros(1), distributional=False)
    mrp = envs.make("chain", num_states=3)
    result = td_jax.run({"mine": rule, "td": "td"}, {"c": mrp}, [0.1], 2, 50)
    errors = np.asarray(result.value_error)
    np.testing.assert_allclose(errors[0], errors[1], rtol=1e-6)  # the kernel is TD's
    contract = (
        r"tabular_rule: kernel must be a td_jax.protocols.Kernel, \(stat_s, r_t, "
        r"discount_t, stat_next, step_size, key\) -> stat_s'; it does not take those 6"
    )
    with pytest.raises(ValueError, match=contract):
        rules.tabular_rule(lambda stat, r: stat, init_stat=jnp.zeros(1))
    with pytest.raises(ValueError, match=r"tabular_rule: kernel must be a td_jax.protocols"):
        rules.tabular_rule("td", init_stat=jnp.zeros(1))


PACKAGE = Path(td_jax.__file__).parent


def _passes_through_to_strict(node: ast.FunctionDef) -> bool:
    """Whether the function's body (its docstring aside) is one call of ``strict.check*``
    with its own arguments: a second name for one of strict's checks."""
    body = [b for b in node.body
            if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]  # fmt: skip
    if len(body) != 1 or not isinstance(body[0], ast.Return | ast.Expr):
        return False
    call = body[0].value
    func = getattr(call, "func", None)
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id == "strict" and func.attr.startswith("check")):  # fmt: skip
        return False
    # A pass-through hands on its own parameters (or constants) and computes nothing.
    params = {a.arg for a in node.args.args + node.args.kwonlyargs}
    args = list(call.args) + [k.value for k in call.keywords]
    return all((isinstance(a, ast.Name) and a.id in params) or isinstance(a, ast.Constant)
               for a in args)  # fmt: skip


def test_strict_is_the_one_check_module():
    """No module re-wraps strict's checks: the old per-package vocabularies (rewards'
    ``checks``, rules' ``validation``) are gone, and no function outside strict is a bare
    pass-through to one of its checks."""
    assert not (PACKAGE / "rewards" / "checks.py").exists()
    assert not (PACKAGE / "rules" / "validation.py").exists()
    wrappers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "strict.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            if _passes_through_to_strict(node):
                wrappers.append(f"{path.name}:{node.name}")
    assert not wrappers, wrappers
    sample = ast.parse("def f(a):\n    'doc'\n    return strict.check_int(None, 'a', a, 1)")
    assert _passes_through_to_strict(sample.body[0])  # the detector sees a wrapper
    domain = ast.parse("def g(n):\n    return strict.check_memory(None, f'{n} rows', 8.0 * n)")
    assert not _passes_through_to_strict(domain.body[0])  # and not a domain check


def test_one_message_shape_across_rewards_rules_and_envs():
    cases = [
        (lambda: td_jax.rewards.make("gaussian", std=-1.0), "gaussian: std must be > 0, got -1.0"),
        (lambda: rules.make("qtd", num_quantiles=0),
         "qtd: num_quantiles must be an integer >= 1, got 0"),
        (lambda: envs.make("chain", num_states=3, gamma=1.5), "gamma must be"),
        (lambda: strict.check_simplex("mine", "p", [0.5, 0.6]),
         "mine: p must be probabilities summing to 1 (they sum to 1.1), got [0.5, 0.6]"),
    ]  # fmt: skip
    for make, text in cases:
        with pytest.raises(ValueError) as err:
            make()
        assert text in str(err.value), (text, str(err.value))
