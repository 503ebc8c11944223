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
    table = pd.read_csv(DEEP / "noise_interaction.csv")
    summary = pd.read_csv(DEEP / "summary.csv").set_index(["configuration", "agent", "task"])
    lr = summary["learning_rate"].to_dict()
    aucs = _aucs(curves)
    rng = np.random.default_rng(0)
    assert len(table) >= 12
    for row in table.itertuples():
        cols = [aucs[(row.configuration, a, f"{row.env}/{n}")]
                for a in (row.agent, "dqn") for n in ("none", row.noise)]  # fmt: skip
        assert _did(cols) == pytest.approx(row.did, abs=0.01)
        # The interval: a plain percentile bootstrap, each group resampled on its own.
        boot = [_did([c[rng.integers(0, c.size, c.size)] for c in cols]) for _ in range(4000)]
        low, high = np.percentile(boot, [2.5, 97.5])
        width = row.did_high - row.did_low
        assert abs(low - row.did_low) <= 0.1 * width and abs(high - row.did_high) <= 0.1 * width
        assert row.call == ("less hurt" if row.did_low > 0 else "more hurt" if row.did_high < 0
                            else "no clear difference")  # fmt: skip
        # Its confounds, from summary.csv: the four groups' rates, the agent's own change,
        # its call against DQN on the plain task.
        rates = [lr[(row.configuration, a, f"{row.env}/{n}")]
                 for a in (row.agent, "dqn") for n in ("none", row.noise)]  # fmt: skip
        flags = set(str(row.confounds).split(", ")) - {"nan", ""}
        assert ("rates" in flags) == (rates[0] != rates[1] or rates[2] != rates[3])
        assert ("rises" in flags) == (row.change_agent > 0)
        plain = summary.loc[(row.configuration, row.agent, f"{row.env}/none")]
        assert ("fails" in flags) == (plain["p_improvement_high"] < 0.5)


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
