"""The device atlas (benchmarks/atlas_device.toml, td_jax.studies.atlas_device): its file
names 10^4 tasks or more, its generator builds the factorial as a study file would (checked,
every rule unsliced but edrl, each law at mean 1 and the stated spread), and its time
estimate recomputes from the committed CPU atlas and accelerator rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from td_jax import rewards
from td_jax.studies import atlas_device, suite_files

ROOT = Path(__file__).resolve().parents[1]
SMALL = atlas_device.Grid(
    student_t_df=(1.5, 5.0),
    lognormal_sigma=(1.0,),
    bernoulli_p=(0.1,),
    noise_std=(0.3, 3.0),
    chain_gamma=(0.9,),
    chain_states=(3, 5),
    garnet_gamma=(0.5,),
    horizons={"bandit": 123},
)


def _grid() -> atlas_device.Grid:
    return suite_files.settings("atlas_device")


def test_the_device_file_names_ten_thousand_tasks_or_more():
    grid = _grid()
    counts = atlas_device.task_count(grid)
    assert sum(counts.values()) >= 10_000
    assert min(grid.student_t_df) <= 1.5 and max(grid.noise_std) / min(grid.noise_std) >= 1e3
    assert {0.5, 0.9} <= set(grid.chain_gamma) and len(grid.chain_states) >= 2


def test_the_generator_builds_the_factorial_as_a_study_file():
    suite = atlas_device.suite("small", "a small device atlas", SMALL)
    counts = atlas_device.task_count(SMALL)
    laws = (2 + 1 + 1 + 1) * 2  # (t x 2, Gaussian, lognormal, Bernoulli) x 2 noise levels
    assert counts == {"bandit": laws, "chain": 2 * laws, "random_mrp": laws}
    assert len(suite.tasks) == sum(counts.values())
    assert suite.horizons["bandit"] == 123 and suite.reports == ("atlas",)
    base = suite_files.load(suite_files.builtin_files()["atlas"])
    assert [r.label for r in suite.rules] == [r.label for r in base.rules]
    for rule in suite.rules:  # every rule on every task, but the kept slice
        if rule.label == "edrl":
            assert rule.envs == ("bandit",) and rule.tasks is None
        else:
            assert rule.envs is None and rule.tasks is None
    labels = {t.label for t in suite.tasks}
    assert {"chain_g0.9_n3/t1p5_s0", "chain_g0.9_n5/gauss_s1", "garnet_g0.5/bern0p1_s1"} <= labels


@pytest.mark.parametrize("name", ["t1p5_s1", "t5_s0", "lognorm1_s1", "bern0p1_s0", "gauss_s1"])
def test_each_law_has_mean_one_and_the_stated_spread(name):
    spec = dict(atlas_device.rewards(SMALL)[name])
    law = rewards.make(spec.pop("name"), **spec)
    std = SMALL.noise_std[int(name[-1])]
    if name.startswith("t1p5"):  # no variance: IQR / 1.349 is the stated spread
        assert float(law.quantile(0.5)) == pytest.approx(1.0, abs=1e-5)
        iqr = float(law.quantile(0.75) - law.quantile(0.25))
        assert iqr / 1.349 == pytest.approx(std, rel=1e-4)
        assert np.isinf(float(law.variance))
        return
    assert float(law.mean) == pytest.approx(1.0, rel=1e-5)
    assert float(np.sqrt(law.variance)) == pytest.approx(std, rel=1e-4)


def test_the_estimate_recomputes_from_the_committed_atlas_and_rows():
    """Second route: per (rule, env), the CPU atlas's configurations per task from its
    CSVs, times the seeds and the horizon, scaled to the device tasks, over the rate."""
    results = ROOT / "results" / "atlas"
    est = json.loads((results / "device_estimate.json").read_text())
    again = atlas_device.estimate(results, ROOT / "results" / "throughput_gpu.json",
                                  _grid())  # fmt: skip
    assert again["seconds"] == pytest.approx(est["seconds"], rel=1e-9)
    assert est["tasks"] == sum(atlas_device.task_count(_grid()).values())
    rows = {(r["rule"], r["env"]): r for r in est["rows"]}
    td = rows[("td", "bandit")]
    manifest = json.loads((results / "manifest.json").read_text())
    sens = pd.read_csv(results / "sensitivity.csv")
    conv = pd.read_csv(results / "convergence.csv")
    key = ["task", "step_size", "schedule"]
    mine = sens[
        (sens.rule == "td") & (sens.weighting == "visit") & sens.task.str.startswith("bandit/")
    ]
    evals = conv[
        (conv.rule == "td") & (conv.weighting == "visit") & conv.task.str.startswith("bandit/")
    ]
    updates = (len(mine.drop_duplicates(key)) * manifest["num_tuning_seeds"]
               + len(evals.drop_duplicates(key)) * manifest["num_evaluation_seeds"])  # fmt: skip
    horizon = manifest["configuration"]["horizons"]["bandit"]
    assert td["work_from"] == "td"
    per_task = updates * horizon / mine["task"].nunique()
    scale = _grid().horizons["bandit"] / horizon
    assert td["updates"] == pytest.approx(per_task * td["device_tasks"] * scale, rel=1e-9)
    assert td["seconds"] == pytest.approx(td["updates"] / td["ups"], rel=1e-9)
    # Every rule on every environment (edrl on the bandit), TD's work standing in where the
    # CPU atlas did not run the rule there.
    assert rows[("qtd128", "chain")]["work_from"] == "td"
    assert {env for rule, env in rows if rule == "edrl"} == {"bandit"}
    assert len(rows) == 3 * len(manifest["configuration"]["rules"]) - 2
    text = (results / "device_estimate.md").read_text()
    assert f"about **{est['seconds'] / 60:.0f} minutes**" in text
