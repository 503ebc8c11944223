"""The protocol in the library (issue 25, item 3): ``RunResult.normalised_error`` and
``td_jax.analysis.n_eps`` / ``speedup`` on a plain ``td_jax.run`` result."""

from __future__ import annotations

import numpy as np
import pytest

import td_jax
from td_jax import analysis, envs

ENV = {"c": envs.make("chain", num_states=4, reward={"name": "gaussian", "mean": 1.0, "std": 1.0})}


@pytest.fixture(scope="module")
def result():
    return td_jax.run(["td", "qtd"], ENV, [0.05, 0.2], 12, 1_000, progress=False)


def test_normalised_error_is_the_visit_weighted_error_over_the_return_variance(result):
    env = ENV["c"]
    w = env.visit_distribution()  # online: the stream's visit distribution
    var = float(np.sum(w * env.return_variances()))  # the suites' error scale
    assert result.info["error_scales"]["c"]["visit"] == pytest.approx(var, rel=1e-12)
    e0 = float(np.sum(w * np.square(env.true_values()))) / var
    assert result.info["initial_error"]["c"]["visit"] == pytest.approx(e0, rel=1e-12)
    x = result.normalised_error("visit")
    np.testing.assert_allclose(
        x, result.metrics["sq_error_visit"].astype(np.float64) / var, rtol=1e-12
    )
    with pytest.raises(ValueError, match=r"weighting must be one of \['uniform', 'visit'\]"):
        result.normalised_error("visits")


def test_n_eps_and_speedup_agree_with_each_other_and_state_bounds(result):
    n = analysis.n_eps(result, [0.3, 0.03], relative=True, reps=200)
    s = analysis.speedup(result, "td", [0.3, 0.03], relative=True, reps=200)
    assert len(n) == 2 * 2 * 2 and len(s) == 2 * 2 and set(s.rule) == {"qtd"}
    e0 = result.info["initial_error"]["c"]["visit"]
    np.testing.assert_allclose(sorted(set(n.eps)), [0.03 * e0, 0.3 * e0])
    for row in s.itertuples():
        pick = (n.step_size == row.step_size) & np.isclose(n.eps, row.eps)
        n_td = n[pick & (n.rule == "td")].n_updates.iloc[0]
        n_qtd = n[pick & (n.rule == "qtd")].n_updates.iloc[0]
        if row.bound == "":
            assert row.speedup == pytest.approx(n_td / n_qtd, rel=1e-12)
            assert row.s_low <= row.speedup <= row.s_high
        else:  # one side not reached: the horizon stands in for its N
            assert row.bound in ("rule", "baseline", "neither reached")
    with pytest.raises(ValueError, match=r"baseline 'ctd' is not a rule of the result"):
        analysis.speedup(result, "ctd", [0.1])
    with pytest.raises(ValueError, match=r"eps must be a non-empty sequence of numbers > 0"):
        analysis.n_eps(result, [0.0])


def test_relative_eps_needs_a_nonzero_initial_error():
    zero = {"z": envs.make("chain", num_states=3, reward={"name": "gaussian", "std": 1.0})}
    res = td_jax.run(["td"], zero, [0.1], 2, 50, progress=False)
    with pytest.raises(ValueError, match=r"env 'z': its initial error e0 is 0.0"):
        analysis.n_eps(res, [0.1], relative=True)
    assert len(analysis.n_eps(res, [0.1])) == 1  # absolute eps still work


def test_step_unit_auto_scales_return_unit_rules_by_each_tasks_rms_return():
    wide = {"name": "gaussian", "mean": 3.0, "std": 2.0}
    two = {"c": ENV["c"], "w": envs.make("chain", num_states=3, reward=wide)}
    auto = td_jax.run(["td", "qtd"], two, [0.05, 0.2], 4, 300, progress=False, step_unit="auto")
    units = auto.info["step_units"]
    for name, env in two.items():
        w = env.visit_distribution()
        rms = np.sqrt(np.sum(w * (np.square(env.true_values()) + env.return_variances())))
        assert units["qtd"][name] == float(f"{rms:.3g}") and units["td"][name] == 1.0
    assert units["qtd"]["c"] != units["qtd"]["w"]  # each task its own unit
    np.testing.assert_array_equal(auto.step_sizes, [0.05, 0.2])  # as given
    given = td_jax.run(["td"], two, [0.05, 0.2], 4, 300, progress=False)
    np.testing.assert_array_equal(auto.value_error[0], given.value_error[0])
    rows = [[0.05 * units["qtd"][n], 0.2 * units["qtd"][n]] for n in two]
    scaled = td_jax.run(["qtd"], two, rows, 4, 300, progress=False)
    np.testing.assert_array_equal(auto.value_error[1], scaled.value_error[0])
    assert auto.rules == ["td", "qtd"] and auto.distributional == [False, True]
    with pytest.raises(ValueError, match=r"unknown step unit 'return'; available: given, auto"):
        td_jax.run(["td"], two, [0.1], 2, 10, step_unit="return")
