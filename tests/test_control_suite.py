"""The control suites: the protocol end to end, its floors, its files and its CLI inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax import catalog, envs
from td_jax.analysis import sample_complexity as sc
from td_jax.cli import app
from td_jax.control import ControlRuns, run_controls
from td_jax.engine import floors
from td_jax.engine.control_truth import ControlTask, control_floor, pair_mrp
from td_jax.engine.driver import run_suite


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("control_quick")
    manifest = run_suite(catalog.get_suite("control_quick"), out, quiet=True)
    return out, manifest


def test_control_quick_runs_end_to_end_and_its_n_recomputes_from_the_curves(quick):
    out, manifest = quick
    for name in ("sample_complexity.csv", "estimand.csv", "convergence.csv",
                 "sensitivity.csv", "verdict.md", "table.md", "curves.png", "speedups.png",
                 "manifest.json"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert manifest["wall_seconds"] > 0 and "sync/risky_safe/student_t" in manifest["tasks"]
    cells = pd.read_csv(out / "sample_complexity.csv")
    conv = pd.read_csv(out / "convergence.csv")
    assert set(cells["metric"]) == {"q_error", "value_gap"}
    checked = 0
    for _, row in cells[cells["schedule"] != "none"].iterrows():
        curve = conv[(conv["rule"] == row["rule"]) & (conv["task"] == row["task"])
                     & (conv["metric"] == row["metric"]) & (conv["schedule"] == row["schedule"])
                     & np.isclose(conv["step_size"], row["step_size"])]  # fmt: skip
        n = sc.crossing_times(curve["step"].to_numpy(), curve["mean_error"].to_numpy(),
                              np.array([row["epsilon"]]))[0]  # fmt: skip
        if np.isfinite(row["n_updates"]):
            assert n == pytest.approx(row["n_updates"], rel=1e-4)
            checked += 1
        else:
            assert not np.isfinite(n)
    assert checked >= 5
    # The placebo (Q-learning at a matched step) is never called faster or slower.
    placebo = cells[cells["rule"] == "td_placebo"]
    assert not placebo["verdict"].isin(["faster", "slower"]).any()
    # One call per (rule, task, metric), the nulls that can fail among them, their rate
    # in the verdict and the manifest.
    pairs = pd.read_csv(out / "estimand.csv")
    assert not pairs.duplicated(["rule", "task", "metric"]).any()
    assert set(pairs["metric"]) == {"q_error", "value_gap"}
    roles = pairs.groupby("rule")["role"].first()
    assert set(roles[["td_rescaled_a", "td_rescaled_b", "td_split"]]) == {"null control"}
    assert roles["td_placebo"] == "pipeline check" and roles["qtd"] == "answer"
    nulls = pairs[(pairs["role"] == "null control") & (pairs["status"] == "tested")]
    assert manifest["null_controls"]["tested"] == len(nulls) >= 1
    text = (out / "verdict.md").read_text()
    rate = manifest["null_controls"]["rate"]
    assert f"**Null false-positive rate: {rate:.3f}** (" in text
    # Bounds are never calls.
    assert not pairs.loc[pairs["status"].str.startswith("bound"), "verdict"].isin(
        ["faster", "slower", "no detectable difference"]).any()  # fmt: skip


def test_a_rerun_reuses_every_unit(quick):
    out, first = quick
    again = run_suite(catalog.get_suite("control_quick"), out, quiet=True)
    assert again["units_computed"] == 0 and again["units_reused"] == first["units_computed"]
    a = pd.read_csv(out / "sample_complexity.csv")
    assert a["verdict"].notna().all()


CONTROL_PLUGIN = """
import jax.numpy as jnp
from td_jax import rules

def make_rule():
    \"\"\"TD(0) written as a user's kernel: lifted to control like the built-in rules.\"\"\"
    return rules.tabular_rule(lambda v, r, d, vn, a, k: v + a * (r + d * vn - v),
                              init_stat=jnp.zeros(1), distributional=False)

def make_traces():
    return rules.make("td_lambda")

def make_diverging():
    # A kernel whose table goes NaN: its cells must say diverged, never a number.
    return rules.tabular_rule(lambda v, r, d, vn, a, k: v + a * jnp.nan,
                              init_stat=jnp.zeros(1), distributional=False)
"""


def test_a_plugin_rule_joins_a_control_suite_and_the_builtins_are_reused(
    quick, tmp_path, monkeypatch
):
    out, first = quick
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_control_rules.py").write_text(CONTROL_PLUGIN)
    monkeypatch.chdir(work)
    copy = tmp_path / "with_plugin"
    shutil.copytree(out, copy)
    args = ["bench", "--suite", "control_quick", "--out", str(copy), "--quiet"]
    plugins = ["--rule", "mine=my_control_rules:make_rule",
               "--rule", "broken=my_control_rules:make_diverging"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, *plugins])
    assert result.exit_code == 0, result.output
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["units_reused"] == first["units_computed"] and manifest["units_computed"] >= 2
    cells = pd.read_csv(copy / "sample_complexity.csv")
    mine = cells[cells["rule"] == "mine"]
    assert len(mine) and mine["verdict"].notna().all()
    # Q-learning written by hand: never called faster or slower than the built-in one.
    assert not mine["verdict"].isin(["faster", "slower"]).any()
    assert "warning: rule broken diverged on task sync/risky_safe/student_t" in result.output
    nan = cells[(cells["rule"] == "broken") & (cells["schedule"] != "none")]
    assert len(nan) and (nan["diverged"] > 0).all() and (nan["status"] == "diverged").all()
    assert nan["speedup"].isna().all() and (nan["verdict"] == "diverged").all()
    pairs = pd.read_csv(copy / "estimand.csv")
    assert (pairs.loc[pairs["rule"] == "broken", "status"] == "diverged").all()
    again = CliRunner().invoke(app, [*args, "--rule", "td=my_control_rules:make_rule"])
    assert again.exit_code == 2 and "clashes with a rule of suite control_quick" in again.output
    traces = CliRunner().invoke(app, [*args, "--rule", "my_control_rules:make_traces"])
    assert traces.exit_code == 2 and len(traces.output.strip().splitlines()) == 1
    assert "cannot run on the synchronous task" in traces.output
    assert "its state is a TDLambdaState" in traces.output
    fixed = CliRunner().invoke(app, ["bench", "--suite", "rowland2023", "--out", str(copy),
                                     "--rule", "my_control_rules:make_rule"])  # fmt: skip
    assert fixed.exit_code == 2 and "control_quick" in fixed.output  # a suite that takes one


def test_with_one_action_the_control_floor_is_the_prediction_floor():
    """A one-action MDP is an MRP: the control fixed point is QTD's prediction fixed point,
    so the floor of ||Q - Q*||_inf is the sup of |mean(fixed point) - V|."""
    mdp = envs.tabular_mdp(
        np.eye(3)[[[1], [2], [0]]],
        [[("exponential", {"scale": 1.0})], [1.0], [("bernoulli", {"p": 0.2})]],
        0.8,
    )
    task = ControlTask(None, mdp, 100)
    got = control_floor("qtd", {"num_quantiles": 4}, task)
    mrp = mdp.action_mrp(0)
    theta = floors.quantile_fixed_point(mrp, floors.midpoint_taus(4))
    want = np.max(np.abs(theta.mean(axis=1) - mrp.true_values())) / task.scale
    assert got["q_error"] == pytest.approx(want, rel=1e-9) and want > 1e-3
    assert got["value_gap"] == 0.0
    assert control_floor("td", {}, task)["q_error"] < 1e-12


def test_the_pair_mrp_of_the_optimal_policy_has_q_star_as_its_values():
    mdp = envs.make_mdp("garnet_mdp", num_states=5, num_actions=3, seed=1)
    q = mdp.optimal_q()
    pairs = pair_mrp(mdp, mdp.optimal_policy())
    np.testing.assert_allclose(pairs.true_values().reshape(q.shape), q, atol=1e-8)


def test_control_runs_save_and_load_round_trip(tmp_path):
    runs = run_controls(["td"], {"m": envs.make_mdp("risky_safe", num_states=2)}, [0.1, 0.3], 2,
                        20, checkpoints=[5, 20])  # fmt: skip
    runs.save(tmp_path / "r.npz")
    back = ControlRuns.load(tmp_path / "r.npz")
    assert back.rules == runs.rules and back.mdps == runs.mdps
    for k in runs.metrics:
        np.testing.assert_array_equal(back.metrics[k], runs.metrics[k])
    np.testing.assert_array_equal(back.q_final["m"], runs.q_final["m"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a file ControlRuns.save wrote"):
        ControlRuns.load(tmp_path / "bad.npz")


def _cli(*args):
    result = CliRunner().invoke(app, ["control", *args])
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"transitions": [[[0.5, 0.4]], [[0.0, 1.0]]], "rewards": [[1.0], [0.0]], "gamma": 0.9},
         "summing to 1"),
        ({"transitions": [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]],
          "rewards": [[1.0, 0.0], [0.0]], "gamma": 0.9}, "one per action"),
        ({"transitions": [[[1.0]]], "rewards": [[1.0]], "gamma": 0.9, "seed": 1},
         "unknown keys"),
    ],
)  # fmt: skip
def test_bad_control_inputs_fail_in_one_line_with_exit_2(tmp_path, spec, message):
    path = tmp_path / "task.json"
    path.write_text(json.dumps(spec))
    code, text = _cli("--mdp-file", str(path))
    assert code == 2 and message in text and len(text.splitlines()) == 1, text


def test_unknown_mdp_and_bad_mdp_parameter_fail_with_exit_2():
    code, text = _cli("--mdp", "nope")
    assert code == 2 and "unknown MDP 'nope'" in text and "risky_safe" in text
    code, text = _cli("--mdp", "risky_safe", "--param", "num_states=0")
    assert code == 2 and "num_states" in text and len(text.splitlines()) == 1
    code, text = _cli("--mdp", "risky_safe", "--param", "bogus=1")
    assert code == 2 and "unknown parameter 'bogus'" in text


def test_td_jax_control_prints_final_errors_per_rule_and_step():
    code, text = _cli("--mdp", "risky_safe", "--param", "num_states=2", "--rule", "td",
                      "--steps", "50", "--seeds", "2", "--step-size", "0.5")  # fmt: skip
    assert code == 0, text
    row = [line for line in text.splitlines() if line.startswith("td ")][0].split()
    assert float(row[1]) == 0.5 and np.isfinite(float(row[2]))


def test_the_pipeline_checks_line_counts_only_tested_pairs(quick):
    """Early, bound and under-tuned pairs cannot be called, so the verdict's denominator
    (and the manifest's) is the tested pairs, with the total beside it."""
    out, manifest = quick
    pairs = pd.read_csv(out / "estimand.csv")
    checks = pairs[pairs["role"] == "pipeline check"]
    tested = int((checks["status"] == "tested").sum())
    lines = (out / "verdict.md").read_text().splitlines()
    line = next(x for x in lines if x.startswith("- Pipeline checks ("))
    assert line.endswith(f" of {tested} tested pairs ({len(checks)} in all)."), line
    assert manifest["summary"]["pipeline_checks"]["tested"] == tested


def test_a_bound_reads_the_right_way_round():
    """The rule not reaching eps means N_rule >= the horizon, so S = N_base / N_rule is at
    most the value printed; the baseline not reaching it, at least."""
    from td_jax.engine.scoring.control_report import _cell_text

    row = {"status": "tested", "verdict": "bound", "speedup": 0.5, "s_low": 0.4,
           "s_high": 0.6, "censored": "rule"}  # fmt: skip
    assert "S <=0.50" in _cell_text(row)
    assert "S >=0.50" in _cell_text({**row, "censored": "baseline"})


def test_report_rescores_a_control_directory_byte_identically(quick, tmp_path):
    """`td-jax report` runs a control suite's directory through the one driver in score-only
    mode: every file rewritten byte for byte, no unit computed."""
    out, _ = quick
    copy = tmp_path / "rescored"
    shutil.copytree(out, copy)
    files = [p.name for p in out.iterdir() if p.is_file() and p.name != "manifest.json"]
    result = CliRunner().invoke(app, ["report", str(copy), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in files:
        assert (copy / name).read_bytes() == (out / name).read_bytes(), name
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["units_computed"] == 0 and manifest["units_reused"] > 0
