"""Paper reproductions on their reduced (``Config.quick()``) configurations.

Each test checks the claim its suite reproduces, against exact ground truth and with the
tolerance the suite states; the full suites (results/<suite>/) are run by
``td-jax bench --suite NAME``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from td_jax import catalog as suites
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import Suite
from td_jax.reproductions import dabney2020, lyle2019

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("dabney2020", "lyle2019")


@pytest.fixture(scope="module")
def dabney():
    config = dabney2020.Config.quick()
    sim, tables, _ = dabney2020.compute(config)
    return config, sim, tables


@pytest.fixture(scope="module")
def lyle_dir(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("repro") / "lyle2019"
    manifest = lyle2019.run(out, quiet=True, config=lyle2019.Config.quick())
    return out, manifest


def test_reproductions_are_registered_custom_suites():
    for name in NAMES:
        assert name in suites.available()
        suite = suites.get_suite(name)
        assert isinstance(suite, suites.CustomSuite) and suite.name == name
        assert name in suites.describe()


# -- Dabney et al. 2020 ---------------------------------------------------------------------


def test_dabney_rates_are_drawn_per_cell_as_in_the_paper():
    ap, am = dabney2020.draw_rates(40, 2020)
    assert ap.shape == am.shape == (40,)
    assert np.all((ap > 0) & (ap < 1) & (am > 0) & (am < 1))
    taus = ap / (ap + am)
    assert taus.min() < 0.2 and taus.max() > 0.8  # both optimistic and pessimistic cells
    assert np.array_equal(ap, dabney2020.draw_rates(40, 2020)[0])  # a fixed population


def test_dabney_reversal_points_match_exact_expectiles_and_quantiles(dabney):
    config, sim, tables = dabney
    assert sim.taus.size >= 40
    rev = tables["reversal"]
    exp = rev[rev["code"] == "dopamine_expectile"]
    # Expectile code: the level whose exact expectile is the reversal point is tau_i.
    assert exp["level_error"].abs().max() <= config.level_tolerance, exp.sort_values("level_error")
    # Quantile code: inside [Q(tau - slack), Q(tau + slack)] up to value_tolerance uL, plus
    # three standard errors of the session mean: the quick run averages 16 sessions, a
    # quarter of the suite's, and its noisiest cells (se ~0.09 uL) are that far from 0.25.
    quant = rev[rev["code"] == "dopamine_quantile"]
    excess = quant["band_error"] - (config.value_tolerance + 3.0 * quant["se"])
    assert excess.max() <= 0.0, quant.assign(excess=excess).sort_values("excess")
    # The implied level is a true inverse: the exact expectile of tau has level tau.
    law = tables["law"]
    taus = np.linspace(0.02, 0.98, 25)
    implied = dabney2020.implied_expectile_level(law, law.expectile(taus))
    np.testing.assert_allclose(implied, taus, atol=1e-9)


def test_dabney_decoded_distribution_beats_a_single_value_code(dabney):
    _, _, tables = dabney
    dec = tables["decoding"].set_index("code")
    law = tables["law"]
    best_point = float(np.sum(law.probs * np.abs(law.locs - law.quantile(0.5))))
    assert dec.loc["best point mass (median)", "w1_session_mean"] == pytest.approx(best_point)
    td = dec.loc["td (point mass)"]
    assert td["w1_session_mean"] >= best_point - 1e-6  # no point mass does better
    for code in ("dopamine_expectile (impute_samples)", "dopamine_expectile (L-BFGS)",
                 "dopamine_quantile"):  # fmt: skip
        row = dec.loc[code]
        assert row["w1_session_mean"] < 0.5 * best_point, (code, row)
        assert row["w1_high"] < td["w1_low"], (code, row)  # per session too, CIs apart


def test_dabney_probability_task_orders_optimistic_and_pessimistic_cells(dabney):
    _, _, tables = dabney
    prob = tables["probability"]
    exp = prob[prob["code"] == "dopamine_expectile"]
    summary = dabney2020.probability_summary(prob).set_index("code")
    assert summary.loc["dopamine_expectile", "spearman_tau_index"] > 0.95
    clear = exp[np.abs(exp["tau"] - 0.5) > 0.05]  # away from the symmetric cell
    assert (clear["optimistic"] == clear["above_midpoint"]).all(), clear
    assert np.abs(exp["index"] - exp["exact_index"]).max() < 0.05


def test_dabney_verdict_separates_model_checks_from_the_recordings_test(dabney):
    """(a) and (d) hold by construction and are labelled so; (a') is the paper's test on
    simulated recordings of the suite's own cells, and it can fail (high noise)."""
    config, sim, tables = dabney
    cells = tables["recording_cells"]
    assert np.array_equal(cells.tau, sim.taus)
    text = dabney2020.verdict(config, tables)
    checks = text.index("## Model checks (hold by construction: tau is the learner's own")
    assert text.index("- **(a') Asymmetry predicts reversal point") < checks
    assert checks < text.index("- **(a) Reversal points") < text.index("- **(d) Variable")
    calls = dabney2020.recording.calls(config.recordings, tables["recordings"])
    assert calls["reproduced"].iloc[0] and not calls["reproduced"].iloc[-1]  # noise 0 / 8
    assert (calls["false_positive_rate"] <= 0.1).all()


# -- Lyle et al. 2019 -----------------------------------------------------------------------


def test_lyle_ctd_mean_follows_td_to_float_tolerance(lyle_dir):
    out, manifest = lyle_dir
    config = lyle2019.Config.quick()
    full = pd.read_csv(out / "ctd_vs_td.csv").set_index("support")
    assert {r["support"] for r in manifest["headline"]} == set(full.index)
    covering = full.loc["covering"]
    width = covering["v_max"] - covering["v_min"]
    assert covering["gap_stream"] / width <= config.float_tolerance
    assert covering["gap_all_seeds"] / width <= config.float_tolerance
    assert covering["within_float_tolerance"]
    assert covering["p_return_outside"] < 1e-6
    clipped = full.drop("covering")
    assert (clipped["relative_gap"] > 100 * config.float_tolerance).all()  # they part
    assert (clipped["p_return_outside"] > 0.01).all()


def test_reproduction_directory_has_manifest_and_resumes(lyle_dir):
    out, manifest = lyle_dir
    for name in manifest["files"]:
        assert (out / name).stat().st_size > 0, name
    assert manifest["suite"] == "lyle2019" and manifest["wall_seconds"] > 0
    assert {"jax", "numpy", "td_jax"} <= set(manifest["versions"])
    assert "commit" in manifest["git"] and manifest["device"]["backend"]
    assert manifest["configuration"]["num_steps"] == lyle2019.Config.quick().num_steps
    assert manifest["seeds"]["seeds"] == list(range(lyle2019.Config.quick().num_seeds))
    again = lyle2019.run(out, quiet=True, config=lyle2019.Config.quick())
    assert again["units_computed"] == 0 and again["units_reused"] >= 1
    assert again["headline"] == manifest["headline"]


def test_reproduction_refuses_another_suites_directory(lyle_dir, tmp_path):
    out, _ = lyle_dir
    with pytest.raises(BenchError, match="holds results of suite 'lyle2019'"):
        dabney2020.run(out, quiet=True, config=dabney2020.Config.quick())
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"suite": "default"}))
    with pytest.raises(BenchError, match="holds results of suite 'default'"):
        dabney2020.run(other, quiet=True, config=dabney2020.Config.quick())


# -- Rowland et al. 2023 --------------------------------------------------------------------


def test_rowland_suite_shares_tasks_with_default_but_not_seeds():
    """Where the two suites share a task it is the same task (label and law), run on other
    seeds: an independent replication, so their agreement is not true by construction."""
    rowland, default = suites.get_suite("rowland2023"), suites.get_suite("default")
    assert isinstance(rowland, Suite)
    mine = {t.label: t.config() for t in rowland.tasks}
    theirs = {t.label: t.config() for t in default.tasks}
    shared = set(mine) & set(theirs)
    assert {"chain/deterministic", "chain/gaussian", "random_mrp/gaussian"} <= shared
    assert all(mine[t] == theirs[t] for t in shared)
    seeds = set(rowland.tuning_seeds) | set(rowland.eval_seeds)
    assert not seeds & (set(default.tuning_seeds) | set(default.eval_seeds))
    assert len(rowland.eval_seeds) >= 100
    assert {c.task for c in rowland.claims} <= set(mine)
