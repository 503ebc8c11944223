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
from scipy import stats
from typer.testing import CliRunner

from td_jax.analysis import asymptotic
from td_jax.catalog import get_suite, suite_file
from td_jax.cli import app
from td_jax.engine import driver
from td_jax.engine.driver import run_suite
from td_jax.engine.scoring import atlas, atlas_axes, atlas_boundary, atlas_theory
from td_jax.engine.specs import RuleSpec, Suite, TaskSpec
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
    "nsr_iqr",
    "tested",
    "theory_floor",
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


def test_atlas_csv_has_one_row_per_pair_with_the_axes(run):
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
    assert (frame["tested"] == (frame["status"] == "tested")).all() and not frame["tested"].all()
    # IQR-based ratio (item 7): t2 (its IQR from scipy), a Gaussian (its std), t5 (below).
    t2 = by.loc["bandit/t2_s1"]
    iqr = 2 * stats.t.ppf(0.75, 2) * 0.826
    assert t2["nsr_iqr"] == pytest.approx(iqr / 1.349, rel=1e-6)
    assert by.loc["bandit/gaussian_s3", "nsr_iqr"] == pytest.approx(3.0, rel=1e-3)
    assert t2["nsr_iqr"] == pytest.approx(t2["noise_to_signal"], rel=1e-9)  # df <= 2: same
    assert by.loc["bandit/t5_s1", "nsr_iqr"] < 0.9 * by.loc["bandit/t5_s1", "noise_to_signal"]
    assert np.isnan(t2["skew"]) and by.loc["bandit/t2_s1", "loc"] == 1.0  # item 16


def test_finest_and_transient_columns_cross_check(run):
    """s_finest is the S of sample_complexity.csv's finest band row with both N finite and
    no censoring; the transient columns are its first row above the band."""
    frame, cells = _read(run / "atlas.csv"), _read(run / "sample_complexity.csv")
    cells = cells[cells["weighting"] == "visit"]
    checked = 0
    for pair in frame.itertuples():
        mine = cells[(cells["rule"] == pair.rule) & (cells["task"] == pair.task)]
        base = cells[(cells["rule"] == pair.baseline) & (cells["task"] == pair.task)]
        both = mine.merge(base[["epsilon", "n_updates"]], on="epsilon", suffixes=("", "_b"))
        ok = both[
            (both["regime"] == "band")
            & both["censored"].isna()
            & np.isfinite(both["n_updates"])
            & np.isfinite(both["n_updates_b"])
            & np.isfinite(both["speedup"])
        ].sort_values("epsilon")
        if not len(ok):
            assert np.isnan(pair.s_finest)
            continue
        assert pair.s_finest == pytest.approx(ok["speedup"].iloc[0], rel=1e-9)
        assert pair.eps_finest_rel == pytest.approx(pair.eps_finest / pair.e0, rel=1e-9)
        checked += 1
        trans = mine[mine["regime"] == "transient"].sort_values("epsilon")
        if len(trans):
            assert pair.transient_eps == pytest.approx(trans["epsilon"].iloc[0])
            want = trans["speedup"].iloc[0]
            assert (np.isnan(want) and np.isnan(pair.transient_speedup)) or (
                pair.transient_speedup == pytest.approx(want)
            )
    assert checked >= 10


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
        r"Held-out accuracy \(leave-one-task-out over (\d+) tasks.*?\): (\S+) \(exact 95% "
        r"lower bound (\S+)\), against (\S+) for the majority",
        text,
    )
    assert acc, text
    n_tasks, values = int(acc.group(1)), [float(acc.group(k)) for k in (2, 3, 4)]
    assert all(np.isnan(v) or 0.0 <= v <= 1.0 for v in values)
    if n_tasks < atlas_boundary.MIN_TASKS:  # atlas_quick calls too few pairs for a boundary
        assert f"No boundary found ({n_tasks} tasks" in text
    assert "QTD converges faster than TD for the mean" in text or "No boundary found (" in text
    assert "nsr_iqr" in text and atlas_theory.AGREEMENT in text
    assert "## Theory on the bandit" in text and "infinite variance" in text
    manifest = json.loads((run / "manifest.json").read_text())
    files = manifest["reports"]["atlas"]
    assert {
        "atlas.csv",
        "atlas.md",
        "atlas_phase_gamma0.png",
        "atlas_phase_gamma0.5.png",
        "atlas_s_vs_m.png",
        "atlas_model.json",
    } <= set(files)
    for name in files:
        assert (run / name).stat().st_size > 0, name
    assert manifest["configuration"]["reports"] == ["atlas"]
    # The standard verdict is kept, and ends with the atlas's answer: the sentence and the
    # boundary model's held-out accuracy, as atlas_model.json gives them.
    verdict = (run / "verdict.md").read_text()
    model = json.loads((run / "atlas_model.json").read_text())
    assert verdict.index("# Does distributional TD") < verdict.index("## Atlas: where")
    assert f"**{model['sentence']}**" in verdict and str(n_tasks) in verdict
    assert f"held-out accuracy {model['heldout_accuracy']:.3f}" in verdict
    assert model["answer_tested"] == int(
        (frame := pd.read_csv(run / "atlas.csv")).query("distributional and role == 'answer'")
        ["tested"].sum()
    )  # fmt: skip
    assert len(frame) == model["pairs"]


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
            "family": "gaussian",
            "nsr_iqr": nsr,
            "inv_df": rng.choice([0.0, 0.2, 0.5], n),
            "skew": 0.0,
            "gamma": rng.choice([0.0, 0.5], n),
            "m": 8.0,
            "task": [f"t{i}" for i in range(n)],
            "verdict": np.where(nsr > 1, "faster", "slower"),
        }
    )
    model = atlas_boundary.fit_report(frame)
    assert model["heldout_accuracy"] > 0.9 > model["majority_accuracy"]
    assert model["sentence"].startswith(
        "QTD converges faster than TD for the mean (rather than slower) when the noise-to-signal "
        "ratio is >"
    )
    flat = frame.assign(verdict="slower")
    assert atlas_boundary.fit_report(flat)["sentence"].startswith("No boundary found")


def test_skewness_closed_forms_match_the_quantile_integral():
    from td_jax import rewards

    for spec, family, params, scipy_skew in (
        ({"name": "lognormal", "sigma": 0.5}, "lognormal", {"sigma": 0.5}, stats.lognorm(0.5)),
        ({"name": "bernoulli", "p": 0.2}, "bernoulli", {"p": 0.2}, stats.bernoulli(0.2)),
        ({"name": "exponential"}, "exponential", {}, stats.expon()),
    ):
        law = rewards.as_reward(spec).law()
        closed = atlas.skewness(family, params, law)
        assert closed == pytest.approx(float(scipy_skew.stats("s")), rel=1e-9), spec
        numeric = atlas.skewness("numeric", params, law)  # the quantile integral's route
        assert closed == pytest.approx(numeric, rel=1e-2), spec
    assert atlas.skewness("bernoulli", {"p": 0.2, "value": -3.0}, None) == pytest.approx(-1.5)
    for p in (0.0, 1.0):  # a point mass: no skewness, no ZeroDivisionError
        assert np.isnan(atlas.skewness("bernoulli", {"p": p, "value": 1.0}, None))
    assert np.isnan(atlas.skewness("student_t", {"df": 3.0}, None))
    assert atlas.skewness("student_t", {"df": 3.5}, None) == 0.0
    assert np.isnan(atlas.skewness("deterministic", {"value": 1.0}, None))


def _known(axes: dict) -> dict:
    return {k: v for k, v in axes.items() if v == v}  # nan != nan


def _axes(env: str, **params):
    return atlas_axes.task_axes(TaskSpec(label="x", env=env, env_params=params))


def test_reward_axes_come_from_the_built_env_in_every_spec_form():
    """The pair form, a Reward object, defaults and per-state rewards (items 3, 4)."""
    from td_jax import rewards

    want = _axes("bandit", reward={"name": "student_t", "df": 4.0, "loc": 1.0, "scale": 2.0})
    for spec in (
        ("student_t", {"df": 4.0, "loc": 1.0, "scale": 2.0}),
        rewards.as_reward({"name": "student_t", "df": 4.0, "loc": 1.0, "scale": 2.0}),
    ):
        got = _axes("bandit", reward=spec)
        assert got["family"] == "student_t" and got["df_tail"] == 4.0 and got["inv_df"] == 0.25
        assert got["loc"] == 1.0 and got["scale"] == 2.0 and _known(got) == _known(want)
    default = _axes("bandit")  # no reward given: the env's own
    assert default["family"] != "" and np.isfinite(default["skew"])
    assert np.isnan(default["inv_df"])  # a family without a df (item 16)
    chain = _axes("chain", num_states=3)
    assert chain["family"] == "gaussian" and chain["std"] == 1.0 and chain["inv_df"] == 0.0
    mixed = _axes("chain", num_states=2, rewards=[{"name": "exponential"}, {"name": "gaussian"}])
    assert mixed["family"] == "mixed" and mixed["reward_laws"] == 2
    assert np.isnan(mixed["skew"]) and mixed["inv_df"] == 0.0 and np.isnan(mixed["df_tail"])
    garnet = _axes("random_mrp")
    assert garnet["family"] == "gaussian" and garnet["skew"] == 0.0 and garnet["reward_laws"] > 1


def test_rule_size_resolves_aliases_defaults_and_taus():
    def m(rule, **hp):
        return atlas_axes.rule_size(RuleSpec(label="x", rule=rule, hparams=hp))

    assert m("qtd") == 32 and m("qtd", m=16) == 16 and m("ctd") == 51 and m("ctd", K=7) == 7
    assert m("edrl") == 11 and m("edrl", taus=[0.1, 0.5, 0.9]) == 3
    assert m("ctd", num_atoms=21, support="auto") == 21
    assert np.isnan(m("td"))


def _cells(rows):
    base = {"weighting": "visit", "regime": "band", "censored": np.nan}
    return pd.DataFrame([base | r for r in rows])


def test_finest_skips_bounds_transients_and_uses_absolute_eps():
    """A band eps where the baseline is not reached (a bound: finite S, infinite N) and a
    transient eps are never the finest; eps_finest is absolute, eps_finest_rel over e0."""
    inf = np.inf
    cells = _cells(
        [
            {"rule": "td", "epsilon": 0.5, "n_updates": 10.0, "regime": "transient"},
            {"rule": "td", "epsilon": 0.02, "n_updates": 3000.0},
            {"rule": "td", "epsilon": 0.01, "n_updates": inf},
            {"rule": "q", "epsilon": 0.5, "n_updates": 5.0, "regime": "transient",
             "speedup": 2.0, "s_low": 1.5, "s_high": 3.0},
            {"rule": "q", "epsilon": 0.02, "n_updates": 1000.0, "speedup": 3.0,
             "s_low": 2.0, "s_high": 4.0},
            {"rule": "q", "epsilon": 0.01, "n_updates": 2000.0, "speedup": 9.0,
             "s_low": 5.0, "s_high": 12.0, "censored": "baseline"},
        ]
    ).assign(task="t", baseline="td")  # fmt: skip
    got = atlas_theory.finest(cells, "q", "t", e0=0.2)
    assert got["s_finest"] == 3.0 and got["eps_finest"] == 0.02
    assert got["eps_finest_rel"] == pytest.approx(0.1) and got["n_base_finest"] == 3000.0
    only_bounds = cells[cells["epsilon"] != 0.02]
    assert np.isnan(atlas_theory.finest(only_bounds, "q", "t", e0=0.2)["s_finest"])


def _row(**kw):
    row = {"rule_name": "qtd", "gamma": 0.0, "num_states": 1, "m": 4.0, "status": "tested",
           "floor": 0.0, "eps_finest": 0.01, "s_finest": 2.0, "s_finest_low": 1.5,
           "s_finest_high": 3.0, "n_rule_finest": 1e5, "n_base_finest": 1e5}  # fmt: skip
    return row | kw


def test_agreement_rules_on_constructed_rows():
    gauss = {"name": "gaussian", "standardize": [1.0, 1.0]}
    from td_jax import rewards

    law = rewards.as_reward(gauss).law()
    s_inf = asymptotic.speedup_inf(law, 4).S_inf_shared  # 0.887
    cases = [
        (_row(s_finest=0.9, s_finest_low=0.8, s_finest_high=0.95), "agrees", ""),
        (_row(s_finest=0.5, s_finest_low=0.4, s_finest_high=0.6), "same side", "unexplained"),
        (_row(), "disagrees", "unexplained"),
        (_row(s_finest_low=0.007, s_finest_high=53.0), "inconclusive", "contains 1"),
        (_row(s_finest=20.0, s_finest_low=2.0, s_finest_high=40.0), "inconclusive", "wider"),
        (_row(n_rule_finest=np.nan, n_base_finest=500.0), "disagrees", "not yet asymptotic"),
        (_row(floor=0.002), "disagrees", "floor"),
        (_row(s_finest=np.nan, status="bound (rule not reached)"), "not reached", "bound"),
    ]
    assert 0.8 < s_inf < 0.95
    for row, word, why in cases:
        got = atlas_theory.theory(row, law, ("qtd",))
        assert got["agreement"] == word and why in got["reason"], (row, got)
    # Exponential at m = 4: the floor bias^2 / sigma^2 (0.084^2) beside S_inf (item 9).
    expo = rewards.as_reward({"name": "exponential", "standardize": [1.0, 1.0]}).law()
    got = atlas_theory.theory(_row(), expo, ("qtd",))
    assert got["theory_floor"] == pytest.approx(got["qtd_bias"] ** 2) and got["theory_floor"] > 7e-3
    assert got["reason"].startswith("floor")


def test_s_inf_matches_the_median_closed_form():
    """Independent check: at m = 1 QTD tracks the median with variance 1 / (4 f(med)^2) at
    its best gain c = 1 / f(med), so S_inf = 4 sigma^2 f(med)^2 (Gaussian: 2 / pi)."""
    s = asymptotic.speedup_inf({"name": "gaussian", "std": 2.0}, 1)
    assert s.S_inf_shared == pytest.approx(2.0 / np.pi, rel=1e-6)
    law = {"name": "student_t", "df": 5.0}
    want = 4 * stats.t.var(5) * stats.t.pdf(0, 5) ** 2
    assert asymptotic.speedup_inf(law, 1).S_inf_shared == pytest.approx(want, rel=1e-6)


def _called(n_tasks: int, per_task: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    nsr = np.repeat(10 ** rng.uniform(-1, 1, n_tasks), per_task)
    return pd.DataFrame(
        {
            "status": "tested", "role": "answer", "rule_name": "qtd", "distributional": True,
            "family": "gaussian", "nsr_iqr": nsr, "inv_df": 0.0, "skew": 0.0, "gamma": 0.0,
            "m": np.tile(2.0 ** np.arange(2, 2 + per_task), n_tasks),
            "task": np.repeat([f"t{i}" for i in range(n_tasks)], per_task),
            "verdict": np.where(nsr > 1, "faster", "slower"),
        }
    )  # fmt: skip


def test_boundary_folds_hold_out_whole_tasks_and_need_eight(monkeypatch):
    frame = _called(12)
    sizes = []
    fit = atlas_boundary.fit_tree

    def recording(x, y, *depth):
        if not depth:  # a fold's root (the recursion passes its depth)
            sizes.append(len(y))
        return fit(x, y, *depth)

    monkeypatch.setattr(atlas_boundary, "fit_tree", recording)
    model = atlas_boundary.fit_report(frame)
    assert sorted(set(sizes[1:])) == [33]  # every fold leaves out a whole task's 3 rows
    monkeypatch.undo()
    assert atlas_boundary.found(model) and model["heldout_accuracy"] == 1.0
    assert model["sentence"].startswith("QTD converges faster than TD for the mean (rather")
    # Balanced classes: the baseline is the best constant, one half (a fold's training
    # majority would be the other class every time, and read 0).
    balanced = _called(8).assign(verdict=np.repeat(["faster", "slower"] * 4, 3), nsr_iqr=1.0)
    assert atlas_boundary.fit_report(balanced)["majority_accuracy"] == 0.5
    few = atlas_boundary.fit_report(_called(5))
    assert few["sentence"].startswith("No boundary found (5 tasks, accuracy 1.00 vs majority")
    ctd = _called(12).assign(
        rule_name="ctd",
        verdict=np.where(_called(12)["nsr_iqr"] > 1, "faster", "no detectable difference"),
    )
    model = atlas_boundary.fit_report(ctd)
    assert model["rows"] == int((ctd["verdict"] == "faster").sum())  # calls only (item 12)
    assert "QTD" not in model["sentence"] and "ctd" in model["what"]


def test_a_report_that_raises_is_recorded_and_the_rest_published(tmp_path, monkeypatch, capsys):
    def boom(suite, stage, manifest):
        raise RuntimeError("no atlas today")

    monkeypatch.setitem(driver.REPORT_WRITERS, "atlas", boom)
    suite = get_suite("atlas_quick")
    got = driver.write_reports(suite, tmp_path, {"x": 1})
    assert got == {"x": 1, "reports": {"atlas": {"error": "RuntimeError: no atlas today"}}}
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "atlas report failed" in err
    plain = dataclasses.replace(suite, reports=())
    assert driver.write_reports(plain, tmp_path, {"x": 1}) == {"x": 1}
    assert not list(tmp_path.iterdir())  # no atlas files, no reports key


def test_an_empty_estimand_writes_an_empty_atlas(tmp_path):
    (tmp_path / "estimand.csv").write_text("")
    (tmp_path / "sample_complexity.csv").write_text("")
    files = atlas.write(get_suite("atlas_quick"), tmp_path)
    assert "atlas.csv" in files and "atlas.md" in files
    assert "No boundary found (0 tasks" in (tmp_path / "atlas.md").read_text()


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
