"""The atlas report (``Suite.reports = ("atlas",)``, ``td_jax.engine.scoring.atlas``): the
small ``atlas_quick`` suite run once, its atlas.csv against the standard outputs and the
asymptotic theory (Rowland et al. 2023, arXiv:2301.04462), the figures, the boundary model's
report, and the study-file key."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax.analysis import asymptotic
from td_jax.catalog import get_suite, suite_file
from td_jax.cli import app
from td_jax.engine.driver import run_suite
from td_jax.engine.scoring import atlas, atlas_boundary
from td_jax.engine.specs import Suite
from td_jax.studies.suite_files import SuiteFileError, file_record, load

AXES = (
    "env",
    "gamma",
    "num_states",
    "instances",
    "family",
    "df",
    "standardize_mean",
    "standardize_std",
    "df_tail",
    "inv_df",
    "skew",
    "noise_to_signal",
    "m",
    "speedup",
    "s_low",
    "s_high",
    "verdict",
    "floor",
    "transient_eps",
    "transient_speedup",
    "S_inf_shared",
    "S_inf_per_quantile",
    "regime",
    "agreement",
    "reason",
)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("atlas") / "atlas_quick"
    suite = get_suite("atlas_quick")
    run_suite(suite, out, quiet=True, source=file_record(suite_file("atlas_quick")))
    return out


def test_atlas_csv_has_one_row_per_tested_pair_with_the_axes(run):
    frame, pairs = _read(run / "atlas.csv"), _read(run / "estimand.csv")
    pairs = pairs[pairs["weighting"] == "visit"]
    assert len(frame) == len(pairs)
    assert set(zip(frame["rule"], frame["task"], strict=True)) == set(
        zip(pairs["rule"], pairs["task"], strict=True)
    )
    assert "td" not in set(frame["rule"])  # the baseline is what each row is tested against
    for col in AXES:
        assert col in frame.columns, col
    by = frame.drop_duplicates("task").set_index("task")
    assert by.loc["bandit/t2_s1", "gamma"] == 0.0 and by.loc["chain/t2_s1", "gamma"] == 0.5
    assert by.loc["chain/t5_s3", "num_states"] == 3
    assert by.loc["bandit/t2_s1", "df_tail"] == 2.0 and by.loc["bandit/t2_s1", "inv_df"] == 0.5
    assert np.isinf(by.loc["bandit/gaussian_s1", "df_tail"])
    assert np.isnan(by.loc["bandit/exponential_s1", "df_tail"])
    assert by.loc["bandit/exponential_s3", "skew"] == pytest.approx(2.0)
    assert by.loc["bandit/t5_s3", "standardize_std"] == 3.0
    # The bandit's value scale is its mean (1): noise-to-signal is the reward std.
    assert by.loc["bandit/gaussian_s3", "noise_to_signal"] == pytest.approx(3.0, rel=1e-5)
    sizes = frame.drop_duplicates("rule").set_index("rule")["m"]
    assert sizes["qtd4"] == 4 and sizes["qtd8"] == 8 and sizes["ctd"] == 21


def test_estimands_recompute_from_sample_complexity(run):
    """Second route: the geometric mean of N_td / N_rule over the band's rows of
    sample_complexity.csv is atlas.csv's S (tests/test_results.py's check)."""
    frame, cells = _read(run / "atlas.csv"), _read(run / "sample_complexity.csv")
    cells = cells[(cells["weighting"] == "visit") & (cells["regime"] == "band")]
    tested = frame[frame["status"] == "tested"]
    assert len(tested) >= 3
    for pair in tested.itertuples():
        mine = cells[(cells["rule"] == pair.rule) & (cells["task"] == pair.task)]
        mine = mine[
            (mine["epsilon"] >= pair.eps_low * (1 - 1e-9))
            & (mine["epsilon"] <= pair.eps_high * (1 + 1e-9))
        ].set_index("eps_relative")
        base = cells[(cells["rule"] == pair.baseline) & (cells["task"] == pair.task)]
        base = base.set_index("eps_relative")
        assert len(mine) == pair.band_points
        log_s = np.log(base.loc[mine.index, "n_updates"] / mine["n_updates"])
        assert np.exp(log_s.mean()) == pytest.approx(pair.speedup, rel=1e-4)


def test_s_inf_columns_are_the_theory(run):
    frame = _read(run / "atlas.csv")
    suite = get_suite("atlas_quick")
    specs = {t.label: t.env_params["reward"] for t in suite.tasks}
    bandit_qtd = frame[
        frame["task"].str.startswith("bandit/") & frame["rule"].str.startswith("qtd")
    ]
    assert len(bandit_qtd) == 16
    for row in bandit_qtd.itertuples():
        s = asymptotic.speedup_inf(specs[row.task], int(row.m))
        assert row.regime == s.regime
        for got, want in (
            (row.S_inf_shared, s.S_inf_shared),
            (row.S_inf_per_quantile, s.S_inf_per_quantile),
        ):
            assert (np.isinf(got) and np.isinf(want)) or got == pytest.approx(want, rel=1e-5)
    assert (
        bandit_qtd[bandit_qtd["family"] == "student_t"].query("df == 2")["regime"]
        == "infinite variance"
    ).all()
    others = frame[~frame.index.isin(bandit_qtd.index)]
    assert others["S_inf_shared"].isna().all() and (others["regime"].fillna("") == "").all()


def test_report_files_and_boundary_model(run):
    text = (run / "atlas.md").read_text()
    acc = re.search(
        r"Held-out accuracy \(leave-one-task-out.*?\): ([0-9.]+), against ([0-9.]+)", text
    )
    assert acc, text
    assert 0.0 <= float(acc.group(1)) <= 1.0 and 0.0 <= float(acc.group(2)) <= 1.0
    assert "QTD converges faster than TD for the mean" in text or "No boundary found" in text
    assert "## Theory on the bandit" in text and "infinite variance" in text
    manifest = json.loads((run / "manifest.json").read_text())
    files = manifest["reports"]["atlas"]
    assert {
        "atlas.csv",
        "atlas.md",
        "atlas_phase_gamma0.png",
        "atlas_phase_gamma0.5.png",
        "atlas_s_vs_m.png",
    } <= set(files)
    for name in files:
        assert (run / name).stat().st_size > 0, name
    assert manifest["configuration"]["reports"] == ["atlas"]
    assert (run / "verdict.md").stat().st_size > 0  # the standard verdict is kept


def test_boundary_tree_finds_a_planted_boundary():
    """A planted rule (faster iff noise-to-signal > 1) is found, held out, and said."""
    rng = np.random.default_rng(0)
    n = 40
    nsr = 10 ** rng.uniform(-1, 1, n)
    frame = pd.DataFrame(
        {
            "status": "tested",
            "role": "answer",
            "rule_name": "qtd",
            "distributional": True,
            "noise_to_signal": nsr,
            "inv_df": rng.choice([0.0, 0.2, 0.5], n),
            "skew": 0.0,
            "gamma": rng.choice([0.0, 0.5], n),
            "m": 8.0,
            "task": [f"t{i}" for i in range(n)],
            "faster": nsr > 1,
        }
    )
    model = atlas_boundary.fit_report(frame)
    assert model["heldout_accuracy"] > 0.9 > model["majority_accuracy"]
    assert model["sentence"].startswith(
        "QTD converges faster than TD for the mean when the noise-to-signal ratio is >"
    )
    flat = frame.assign(faster=False)
    assert atlas_boundary.fit_report(flat)["sentence"].startswith("No boundary found")


def test_skewness_closed_forms_match_the_quantile_integral():
    from td_jax import rewards

    for spec, family, params in (
        ({"name": "lognormal", "sigma": 0.5}, "lognormal", {"sigma": 0.5}),
        ({"name": "bernoulli", "p": 0.2}, "bernoulli", {"p": 0.2}),
        ({"name": "exponential"}, "exponential", {}),
    ):
        law = rewards.as_reward(spec).law()
        closed = atlas.skewness(family, params, law)
        numeric = atlas.skewness("numeric", params, law)
        assert closed == pytest.approx(numeric, rel=0.05), family


def test_unknown_report_is_refused_in_one_line(tmp_path):
    text = (
        suite_file("atlas_quick").read_text().replace('reports = ["atlas"]', 'reports = ["atlass"]')
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuiteFileError, match=r"reports\[0\] must be one of 'atlas'"):
        load(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "reports[0]" in line and "'atlas'" in line
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown report 'nope'"):
        dataclasses.replace(get_suite("quick"), reports=("nope",))


@pytest.mark.parametrize("name", ["default", "quick", "rowland2023", "approx", "control"])
def test_existing_suite_configs_are_unchanged(name):
    """Suites without reports keep their configs (so their committed manifests): no
    ``reports`` key; one with reports differs by that key only."""
    suite = get_suite(name)
    cfg = suite.config()
    assert "reports" not in cfg
    if isinstance(suite, Suite):
        with_atlas = dataclasses.replace(suite, reports=("atlas",)).config()
        assert with_atlas.pop("reports") == ["atlas"] and with_atlas == cfg
    committed = Path(__file__).resolve().parents[1] / "results" / name / "manifest.json"
    if committed.exists() and shutil.which("git"):
        assert "reports" not in json.loads(committed.read_text())["configuration"]
