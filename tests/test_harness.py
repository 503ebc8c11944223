"""The convergence harness end to end on the quick suite: files, numbers, selection,
resume after kill -9, plug-ins and every bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax.cli import app
from td_jax.harness import analysis, stats
from td_jax.harness.bench import UNITS, run_suite
from td_jax.harness.suites import get_suite
from td_jax.runner import RunResult

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "convergence.csv",
    "summary.csv",
    "sensitivity.csv",
    "comparison.csv",
    "table.md",
    "verdict.md",
    "error_curves.png",
    "sensitivity.png",
    "distributions.png",
    "manifest.json",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A persistent XLA cache shared by the CLI subprocesses of these tests."""
    return tmp_path_factory.mktemp("xla_cache")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quick") / "quick"
    run_suite(get_suite("quick"), out, quiet=True)
    return out


def _cli(args: list[str], cache_dir: Path, cwd: Path = ROOT, **kw) -> subprocess.Popen:
    env = dict(os.environ, TD_JAX_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "td_jax", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_quick_suite_writes_every_file(quick):
    for name in FILES:
        assert (quick / name).stat().st_size > 0, name
    manifest = json.loads((quick / "manifest.json").read_text())
    assert manifest["suite"] == "quick" and manifest["wall_seconds"] > 0
    assert manifest["seeds"] == {"tuning": [0, 1, 2], "evaluation": [10, 11, 12, 13, 14]}
    assert {"jax", "numpy", "rlax", "td_jax"} <= set(manifest["versions"])
    assert manifest["device"]["backend"] == "cpu" and "commit" in manifest["git"]
    verdict = (quick / "verdict.md").read_text()
    assert verdict.startswith("# Does distributional TD converge faster than TD?")
    assert re.search(r"Overall: \*\*", verdict)
    summary = pd.read_csv(quick / "summary.csv")
    suite = get_suite("quick")
    assert len(summary) == len(suite.rules) * len(suite.tasks)


def test_table_numbers_match_the_csv(quick):
    summary = pd.read_csv(quick / "summary.csv").set_index(["task", "rule"])
    table = (quick / "table.md").read_text().split("## ")[2]  # the final-error section
    header = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    rows = [line for line in table.splitlines() if line.startswith("| chain/")]
    assert rows
    for line in rows:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        task = cells[0]
        for rule, cell in zip(header[1:], cells[1:], strict=True):
            point = float(cell.split(" [")[0])
            assert point == pytest.approx(summary.loc[(task, rule), "final_error"], rel=5e-3)
        best = min(summary.loc[(task, r), "final_error"] for r in header[1:])
        bold = [
            r for r, c in zip(header[1:], line.strip("|").split("|")[1:], strict=True) if "**" in c
        ]
        assert all(summary.loc[(task, r), "final_error"] == best for r in bold)


def test_convergence_csv_is_the_selected_learners(quick):
    conv = pd.read_csv(quick / "convergence.csv")
    summary = pd.read_csv(quick / "summary.csv")
    chosen = conv.groupby(["rule", "task"])["step_size"].unique()
    for row in summary.itertuples():
        assert list(chosen[(row.rule, row.task)]) == pytest.approx([row.step_size])
    assert set(conv["split"]) == {"tuning", "evaluation"}


def test_selection_uses_tuning_seeds_only(quick):
    sens = pd.read_csv(quick / "sensitivity.csv")
    summary = pd.read_csv(quick / "summary.csv")
    assert (sens["n"] == 3).all()  # only the 3 tuning seeds enter the sensitivity table
    for (rule, task), grp in sens.groupby(["rule", "task"]):
        score = np.where(grp["diverged"] > 0, np.inf, grp["auc"])
        expected = grp["step_size"].to_numpy()[np.argmin(score)]
        got = summary[(summary.rule == rule) & (summary.task == task)]["step_size"].item()
        assert got == pytest.approx(expected)


def test_selection_ignores_evaluation_seeds():
    """Evaluation seeds that favour another step size do not move the selection."""
    suite = get_suite("quick")
    rows = []
    for seed in (*suite.tuning_seeds, *suite.eval_seeds):
        tuning = seed in suite.tuning_seeds
        for alpha, auc in ((0.1, -2.0 if tuning else 0.0), (0.5, -1.0 if tuning else -5.0)):
            rows.append(
                {
                    "rule": "td",
                    "task": "t",
                    "step_size": alpha,
                    "seed": seed,
                    "auc": auc,
                    "final_error": 0.1,
                    "diverged": False,
                    "split": "tuning" if tuning else "evaluation",
                }
            )
    selected = analysis.select_step_sizes(pd.DataFrame(rows), suite)
    assert selected["step_size"].item() == 0.1


def test_paired_comparison_is_paired_by_seed():
    ev = pd.DataFrame(
        {
            "rule": ["td"] * 6 + ["qtd"] * 6,
            "task": ["t"] * 12,
            "seed": list(range(6)) * 2,
            "steps_to_threshold": [100, 200, 400, 800, 1600, 3200] + [50, 100, 200, 400, 800, 1600],
            "auc": [0.0] * 6 + [-1.0] * 6,
        }
    )
    table = stats.compare_to_baseline(ev, "td", censor=10_000)
    row = table.iloc[0]
    # Every pair halves: ratio exactly 0.5 with a degenerate interval, faster, P(beat) = 1.
    assert row["ratio"] == pytest.approx(0.5) and row["ratio_high"] == pytest.approx(0.5)
    assert row["verdict"] == "faster" and row["p_beat"] == 1.0


def test_compare_marks_regressions(quick, tmp_path):
    worse = tmp_path / "worse"
    shutil.copytree(quick, worse)
    summary = pd.read_csv(worse / "summary.csv")
    hit = summary.index[(summary.rule == "qtd") & (summary.task == "chain/deterministic")]
    for col in ("steps_to_threshold", "steps_to_threshold_low", "steps_to_threshold_high"):
        summary.loc[hit, col] = summary.loc[hit, col] * 10 + 1_000
    summary.to_csv(worse / "summary.csv", index=False)
    runner = CliRunner()
    same = runner.invoke(app, ["compare", str(quick), str(quick), "--fail-on-regression"])
    assert same.exit_code == 0 and "0 rule-task pair(s) slower" in same.output
    res = runner.invoke(app, ["compare", str(quick), str(worse), "--fail-on-regression"])
    assert res.exit_code == 1
    assert re.search(r"\| chain/deterministic \| qtd \|.*\*\*slower\*\*", res.output)


PLUGIN = textwrap.dedent('''
    import jax.numpy as jnp
    from td_jax import rules

    def clipped_td(v, r_t, discount_t, v_next, step_size, key):
        return v + step_size * jnp.clip(r_t + discount_t * v_next - v, -1.0, 1.0)

    def make_rule():
        """Clipped TD(0)."""
        return rules.tabular_rule(clipped_td, init_stat=jnp.zeros(1), distributional=False)

    def make_bad_rule():
        return rules.tabular_rule(lambda v, r, d, vn, a, k: jnp.concatenate([v, v]),
                                  init_stat=jnp.zeros(1))
''')


def test_plugin_rule_runs_beside_the_builtins(quick, tmp_path, cache_dir):
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_rules.py").write_text(PLUGIN)
    out = tmp_path / "with_plugin"
    shutil.copytree(quick, out)  # built-in units are reused; only the plug-in's run
    proc = _cli(
        ["bench", "--suite", "quick", "--out", str(out), "--rule", "my_rules:make_rule", "--quiet"],
        cache_dir,
        cwd=work,
    )
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-2000:]
    summary = pd.read_csv(out / "summary.csv")
    assert "make_rule" in set(summary["rule"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["units_computed"] == 3 and manifest["units_reused"] == 21


def test_resume_after_kill(quick, tmp_path, cache_dir):
    out = tmp_path / "resumed"
    shutil.copytree(quick, out)
    for name in FILES:
        (out / name).unlink()
    units = sorted((out / UNITS).glob("*.npz"))
    removed = units[::3]
    for path in removed:
        path.unlink()
    proc = _cli(["bench", "--suite", "quick", "--out", str(out), "--quiet"], cache_dir)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / UNITS).glob("*.npz"))) <= len(units) - len(
        removed
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    for path in (out / UNITS).glob("*.npz"):
        RunResult.load(path)  # every unit on disk is complete
    assert not (out / "summary.csv").exists() or pd.read_csv(out / "summary.csv") is not None
    proc = _cli(["bench", "--suite", "quick", "--out", str(out), "--quiet"], cache_dir)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["units_reused"] >= len(units) - len(removed) + 1
    assert manifest["units_computed"] <= len(removed) - 1
    # Deterministic: the resumed run's numbers equal the uninterrupted run's.
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "summary.csv"), pd.read_csv(quick / "summary.csv")
    )


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["bench", "--suite", "nope"], r"unknown suite 'nope'; available suites: .*default"),
        (["bench", "--suite", "quick", "--rule", "no_colon"], r"must look like module:factory"),
        (
            ["bench", "--suite", "quick", "--rule", "not_a_module_xyz:f"],
            r"cannot import module 'not_a_module_xyz'",
        ),
        (["bench", "--suite", "quick", "--rule", "my_rules:missing"], r"has no attribute"),
        (
            ["bench", "--suite", "quick", "--rule", "my_rules:make_bad_rule"],
            r"rule 'make_bad_rule' cannot take the transitions of env",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, pattern):
    (tmp_path / "my_rules.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("td-jax: error:"), result.output
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert not (out / "summary.csv").exists()


def test_directory_of_another_suite_is_refused(quick, tmp_path):
    out = tmp_path / "other"
    shutil.copytree(quick, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["bench", "--suite", "default", "--out", str(out)])
    assert result.exit_code == 2
    assert "holds results of suite 'quick', not 'default'" in result.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
