"""`td-jax control` (issue 25, item 5): plug-in rules, each rule's own step unit, the control
suites' normalised metrics with intervals over seeds, and a plain statement that one
untuned configuration is not a comparison."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from td_jax import envs
from td_jax.cli import app
from td_jax.control import run_controls
from td_jax.engine import control_look
from td_jax.engine.control_truth import ControlTask

PLUGIN = """
import td_jax


def make_rule():
    return td_jax.rules.make("td")
"""


def test_the_look_scales_return_unit_rules_and_normalises_like_the_suites():
    mdp = envs.make_mdp("risky_safe", num_states=3)
    task = ControlTask(None, mdp, 200)
    rows, units = control_look.look(task, ["td", "qtd"], [0.1, 0.3], 6, 200, "synchronous", 0.1)
    # QTD's step is in return units: x the RMS return over state-action pairs (Q*^2 + Var).
    rms = np.sqrt(np.mean(np.square(task.pairs.true_values()) + task.pairs.return_variances()))
    assert units["td"] == ("fraction", 1.0) and units["qtd"][0] == "return"
    assert units["qtd"][1] == float(f"{rms:.3g}")
    qtd = [r for r in rows if r.rule == "qtd"]
    assert [r.absolute for r in qtd] == [0.1 * units["qtd"][1], 0.3 * units["qtd"][1]]
    # TD's numbers, recomputed: the final errors over seeds, divided by the task's scale.
    runs = run_controls({"td": "td"}, {mdp.name: mdp}, [0.1, 0.3], 6, 200)
    for a, row in enumerate(r for r in rows if r.rule == "td"):
        q = runs.metrics["q_error"][0, 0, a, :, -1] / task.scale
        mean, low, high = row.q_error
        np.testing.assert_allclose(mean, q.mean(), rtol=1e-6)
        assert low <= mean <= high and high - low > 0


def test_the_command_takes_a_plugin_and_says_it_is_not_a_comparison(tmp_path, monkeypatch):
    (tmp_path / "my_look_rules.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    args = ["control", "--mdp", "risky_safe", "--param", "num_states=3", "--rule", "td",
            "--rule", "qtd", "--rule", "mine=my_look_rules:make_rule", "--seeds", "4",
            "--steps", "100"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "metrics divided by the task's scale" in lines[0] and "95% bootstrap" in lines[0]
    assert any(x.startswith("qtd: step sizes in return units, x ") for x in lines)
    table = {x.split()[0]: x for x in lines if x.split()[0] in ("td", "mine")}
    # The plug-in is TD itself: the same numbers as the built-in TD (common random numbers).
    assert table["mine"].split()[1:] == table["td"].split()[1:]
    assert lines[-1] == control_look.NOT_A_COMPARISON and "--suite control_quick" in lines[-1]
    bad = CliRunner().invoke(app, ["control", "--rule", "nope:make"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output
