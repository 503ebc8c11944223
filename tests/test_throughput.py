"""The throughput benchmark: its baselines compute what td_jax computes, and a quick run works."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import report, workload
from benchmarks.loop_baseline import make_update
from benchmarks.numpy_baseline import Sampler, mrp_tables
from benchmarks.numpy_rules import Rule, expectile_residuals, impute_samples
from benchmarks.throughput import run_throughput
from td_jax import rules
from td_jax.rewards import families
from td_jax.types import Transition

STREAMS, STEPS = 6, 300


@pytest.fixture(scope="module")
def stream():
    """An identical transition stream for both implementations: numpy's sampler, [T, N]."""
    tables = mrp_tables(workload.make_env(), np.asarray(families.KERNEL_OF_FAMILY))
    sampler = Sampler(tables, np.random.default_rng(3))
    s = sampler.reset(STREAMS)
    out = []
    for _ in range(STEPS):
        r, d, s_t = sampler.step(s)
        out.append((s, r, d, s_t))
        s = s_t
    s_tm1, r, d, s_t = (np.stack(x) for x in zip(*out, strict=True))
    return tables, Transition(s_tm1.astype(np.int32), r, d, s_t.astype(np.int32))


def _numpy_values(name: str, tables, tr: Transition) -> np.ndarray:
    spec = {k: np.asarray(v, np.float32) if isinstance(v, list) else v
            for k, v in workload.numpy_rule(name).items()}  # fmt: skip
    rule = Rule(**spec)
    state = rule.init(STREAMS, len(tables.true_values), len(workload.STEP_SIZES))
    rng = np.random.default_rng(0)
    for t in range(STEPS):
        rule.update(state, tr.s_tm1[t], tr.r_t[t], tr.discount_t[t], tr.s_t[t],
                    workload.STEP_SIZES, rng)  # fmt: skip
    return rule.values(state)  # [N, S, A]


def _td_jax_values(name: str, num_states: int, tr: Transition) -> np.ndarray:
    rule = workload.make_rule(name)

    def learner(stream: Transition, alpha):
        def body(state, t):
            return rule.update(state, t, alpha, jax.random.key(0)), None

        state, _ = jax.lax.scan(body, rule.init(jax.random.key(0), num_states), stream)
        return rule.values(state)

    per_stream = jax.vmap(learner, in_axes=(None, 0))  # step sizes share the stream
    stream_major = jax.tree.map(lambda x: jnp.swapaxes(jnp.asarray(x), 0, 1), tr)
    alphas = jnp.asarray(workload.STEP_SIZES, jnp.float32)
    out = jax.jit(jax.vmap(per_stream, in_axes=(0, None)))(stream_major, alphas)  # [N, A, S]
    return np.swapaxes(np.asarray(out), 1, 2)


@pytest.mark.parametrize("name", ["td", "td_lambda", "qtd", "ctd"])
def test_numpy_baseline_computes_what_td_jax_computes(stream, name):
    """Same workload: fed the same transitions, numpy's learners equal td_jax's."""
    tables, tr = stream
    ours = _td_jax_values(name, len(tables.true_values), tr)
    theirs = _numpy_values(name, tables, tr)
    assert np.abs(ours).max() > 0.5  # the learners moved
    # float32 on both sides; only the order of a few roundings differs.
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)


def test_numpy_imputation_matches_td_jax():
    taus = rules.midpoint_taus(11).astype(np.float32)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 400)) * rng.uniform(0.5, 2.0, size=(5, 1))
    e = np.full((5, 11), x.mean(axis=1, keepdims=True))
    for _ in range(100):  # sample expectiles by fixed-point iteration
        w = np.abs(taus[None, :, None] - (x[:, None, :] < e[..., None]))
        e = (w * x[:, None, :]).sum(-1) / w.sum(-1)
    e = e.astype(np.float32)
    ours = np.asarray(jax.vmap(lambda v: rules.impute_samples(v, jnp.asarray(taus)))(e))
    theirs = impute_samples(e, taus, 11, 20)

    # The samples matching given expectiles are not unique, and the solver's path is
    # sensitive to rounding: compare what the imputation is for, the expectile match.
    def worst_residual(x):
        return np.abs(expectile_residuals(x, e, taus)).max()

    assert worst_residual(theirs) < max(2 * worst_residual(ours), 1e-3)
    np.testing.assert_allclose(theirs.mean(axis=1), ours.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(np.median(theirs, axis=1), np.median(ours, axis=1), atol=0.05)


@pytest.mark.parametrize("name", ["td", "qtd", "ctd", "edrl", "dopamine_quantile"])
def test_loop_baseline_step_equals_td_jax_update(name):
    """Baseline (b)'s rlax-based update is the rule's update on one learner's table."""
    spec = workload.numpy_rule(name)
    update, init = make_update(name, spec)
    rule = workload.make_rule(name)
    rng = np.random.default_rng(2)
    k = int(spec.get("num_stats", 1))
    table = init(4)
    if name != "ctd":
        table = jnp.asarray(np.sort(rng.normal(size=(4, k)), axis=1), jnp.float32)
    ours = rule.update(
        rules.TabularState(table), Transition(1, 0.7, 0.9, 2), 0.1, jax.random.key(0)
    )
    j = (
        np.asarray(rules.dopamine.uniform_indices(jax.random.key(0), k))
        if "dopamine" in name
        else np.zeros(k)
    )
    theirs = update(
        table, 1, np.float32(0.7), np.float32(0.9), 2, np.float32(0.1), j.astype(np.int32)
    )
    np.testing.assert_allclose(theirs, ours.table, atol=1e-5)


def test_targets_are_judged_per_learner_count():
    fast = {"ups": 1e8, "compile_seconds": 3.0}
    result = {
        "rows": [
            {"rule": "td", "learners": 10, "td_jax": fast, "numpy": {"ups": 1e7}},
            {"rule": "qtd", "learners": 10, "td_jax": fast, "numpy": {"ups": 6e7}},
        ],
        "loop": {"td": {"ups": 1e4}, "qtd": {"ups": 1e6}},
    }
    verdicts = {t["target"]: t for t in report.targets(result)}
    assert not verdicts["every rule >= 2x numpy"]["met"]  # qtd: 1.7x
    assert verdicts["median rule >= 5x numpy"]["met"]  # median of 10x and 1.7x: 5.8x
    assert verdicts["compile <= 10 s per rule structure"]["met"]
    loop = verdicts["every rule >= 300x the per-learner loop"]
    assert not loop["met"] and "qtd 100x" in loop["detail"]


def test_quick_run_writes_both_reports(tmp_path):
    result = run_throughput(tmp_path, quick=True, progress=False)
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert {r["rule"] for r in result["rows"]} == set(workload.QUICK_RULES)
    for row in result["rows"]:
        assert row["td_jax"]["ups"] > 0 and row["numpy"]["ups"] > 0, row
        # Same workload, independent samples: final errors of the same size.
        assert 0.5 < row["td_jax"]["value_error"] / row["numpy"]["value_error"] < 2.0
    assert all(result["loop"][r]["ups"] > 0 for r in workload.QUICK_RULES)
    text = (tmp_path / "throughput.md").read_text()
    assert "## Targets" in text and "| td | 1,000 |" in text
    assert result["machine"]["versions"]["jax"] == jax.__version__


def test_parametric_rows_run_without_baselines_and_stay_out_of_targets(tmp_path):
    result = run_throughput(
        tmp_path, sizes=(20,), rules=("td", "linear_td", "mlp_qtd"), num_steps=20, quick=True
    )
    rows = {r["rule"]: r for r in result["rows"]}
    assert set(rows) == {"td", "linear_td", "mlp_qtd"}
    for name in ("linear_td", "mlp_qtd"):
        assert rows[name]["td_jax"]["ups"] > 0 and rows[name]["numpy"] == {}
        assert name not in result["loop"]
        assert result["workload"]["rules"][name]["approximator"] in ("linear", "mlp")
    # The CPU targets compare with the baselines, so they are judged on td alone here.
    assert all("a run failed" not in t["detail"] for t in result["targets"])
    assert {r["rule"] for r in report.ratios(result)} == {"td"}
    text = (tmp_path / "throughput.md").read_text()
    assert "## Linear and MLP learners" in text
    assert "| linear td (tiles 4x4, sgd) | 20 | 20 |" in text
    # The rule the row names is the parametric form, not the tabular one.
    rule = workload.make_rule("linear_td")
    state = rule.init(jax.random.PRNGKey(0), 10)
    assert not hasattr(state, "table")


def test_accelerator_report_runs_and_judges_targets(tmp_path, monkeypatch):
    from benchmarks import accelerator

    monkeypatch.setattr(accelerator, "CALIBRATION_STEPS", 5)
    monkeypatch.setattr(accelerator, "TARGET_SECONDS", 0.05)
    result = accelerator.run_accelerator(tmp_path, rules=("td", "qtd"), sizes=(20,))
    backend = jax.default_backend()
    saved = json.loads((tmp_path / f"throughput_{backend}.json").read_text())
    assert [r["rule"] for r in saved["rows"]] == ["td", "qtd"]
    for row in saved["rows"]:
        assert row["learners"] == 20 and row["steps"] >= 5
        assert row["ups"] == pytest.approx(row["learner_updates"] / row["run_seconds"])
        assert row["learner_updates"] == 20 * row["steps"]
    met = {t["target"].split()[0]: t["met"] for t in result["targets"]}
    for rule, target in accelerator.TARGETS.items():
        best = max(r["ups"] for r in saved["rows"] if r["rule"] == rule)
        assert met[rule] == (best >= target)
    text = (tmp_path / f"throughput_{backend}.md").read_text()
    assert "| td | 20 |" in text and "## Targets" in text


def test_accelerator_cli_refuses_cpu(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from td_jax.cli import app

    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # whatever this machine has
    result = CliRunner().invoke(app, ["throughput", "--accelerator", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs a GPU or TPU" in result.output
    assert not list(tmp_path.iterdir())  # nothing written
