"""The committed results/deep_control, read back: the noise interaction recomputed from
curves.csv by a second route, both configurations present, the budget kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from td_jax.deep import suites

DEEP = Path(__file__).resolve().parents[1] / "results" / "deep_control"


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    return pd.read_csv(DEEP / "curves.csv")


def _aucs(curves: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Per (configuration, agent, task): each seed's AUC, the mean over windows of its
    curve with empty windows filled forward (leading ones from the first finished episode):
    pandas' fills, not ``analysis.fill_curve``."""
    out: dict[tuple, list] = {}
    keys = ["configuration", "agent", "task", "seed"]
    for (c, a, t, _), g in curves.sort_values([*keys, "env_step"]).groupby(keys, sort=True):
        filled = g["return"].ffill().bfill().fillna(0.0)
        out.setdefault((c, a, t), []).append(float(filled.mean()))
    return {k: np.asarray(v) for k, v in out.items()}


def _did(cols: list[np.ndarray]) -> float:
    m = [c.mean() for c in cols]
    return (m[1] - m[0]) - (m[3] - m[2])


def test_the_noise_interaction_recomputes_from_the_curves(curves):
    """Each DiD from the plain tasks' runs (curves.csv) and the noisy tasks' runs at the
    plain task's rates (noise_interaction_curves.csv), by a second route."""
    table = pd.read_csv(DEEP / "noise_interaction.csv")
    summary = pd.read_csv(DEEP / "summary.csv").set_index(["configuration", "agent", "task"])
    fixed = pd.read_csv(DEEP / "noise_interaction_curves.csv")
    plain, noisy = _aucs(curves), _aucs(fixed)
    rates = fixed.groupby(["configuration", "agent", "task"])["learning_rate"].unique()
    rng = np.random.default_rng(0)
    assert len(table) >= 12
    for row in table.itertuples():
        cols = [(plain if n == "none" else noisy)[(row.configuration, a, f"{row.env}/{n}")]
                for a in (row.agent, "dqn") for n in ("none", row.noise)]  # fmt: skip
        assert _did(cols) == pytest.approx(row.did, abs=0.01)
        # The interval: a plain percentile bootstrap, each group resampled on its own.
        boot = [_did([c[rng.integers(0, c.size, c.size)] for c in cols]) for _ in range(4000)]
        low, high = np.percentile(boot, [2.5, 97.5])
        width = row.did_high - row.did_low
        assert abs(low - row.did_low) <= 0.1 * width and abs(high - row.did_high) <= 0.1 * width
        assert row.call == ("less hurt" if row.did_low > 0 else "more hurt" if row.did_high < 0
                            else "no clear difference")  # fmt: skip
        # The noisy runs are at the plain task's tuned rates (summary.csv), the flags hold.
        for agent, lr in ((row.agent, row.lr_agent), ("dqn", row.lr_dqn)):
            assert summary.loc[(row.configuration, agent, f"{row.env}/none"), "learning_rate"] == lr
            key = (row.configuration, agent, f"{row.env}/{row.noise}")
            assert list(rates[key]) == [lr]
        flags = set(str(row.flags).split(", ")) - {"nan", ""}
        assert ("rises" in flags) == (row.change_agent > 0)
        first = summary.loc[(row.configuration, row.agent, f"{row.env}/none")]
        assert ("fails" in flags) == (first["p_improvement_high"] < 0.5)


def test_both_configurations_ran_within_the_budget(curves):
    manifest = json.loads((DEEP / "manifest.json").read_text())
    suite = suites.deep_control()
    assert manifest["wall_seconds"] <= 3600  # the 60 minutes on 2 cores
    seeds = curves.groupby(["configuration", "agent", "task"])["seed"].nunique()
    assert len(seeds) == 2 * 3 * 8 and (seeds >= 10).all()  # every task in both
    gamma = manifest["configuration"]["agents"]["c51"]["gamma"]
    for task, support in manifest["configuration"]["supports"].items():
        assert support == list(suite.task_support(task, gamma))
    summary = pd.read_csv(DEEP / "summary.csv")
    ref = summary[summary.configuration == "reference"].set_index(["agent", "task"])
    common = summary[summary.configuration == "common"].set_index(["agent", "task"])
    shared = ref[ref["runs"] == "the common configuration's"]
    assert set(shared.index.get_level_values(0)) == {"qrdqn"}  # its settings are the common ones
    pd.testing.assert_series_equal(shared["auc_iqm"], common.loc[shared.index, "auc_iqm"])
    verdict = (DEEP / "verdict.md").read_text()
    assert manifest["answer"] in verdict and "## Ablation" in verdict
