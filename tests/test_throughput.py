"""The throughput benchmark: its baselines compute what td_jax computes, and a quick run works."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from td_jax import rules
from td_jax.rewards import families
from td_jax.rules.expectile import expectile_mean
from td_jax.runner.metrics import dense_checkpoints
from td_jax.throughput import report, roofline, targets, user_workload, workload
from td_jax.throughput.benchmark import run_throughput
from td_jax.throughput.loop_baseline import make_update
from td_jax.throughput.numpy_baseline import Sampler, mrp_tables
from td_jax.throughput.numpy_imputation import expectile_mean as numpy_expectile_mean
from td_jax.throughput.numpy_rules import Rule, expectile_residuals, impute_samples
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


@pytest.mark.parametrize("name", ["td", "td_lambda", "qtd", "ctd", "edrl"])
def test_numpy_baseline_computes_what_td_jax_computes(stream, name):
    """Same workload: fed the same transitions, numpy's learners equal td_jax's."""
    tables, tr = stream
    ours = _td_jax_values(name, len(tables.true_values), tr)
    theirs = _numpy_values(name, tables, tr)
    assert np.abs(ours).max() > 0.5  # the learners moved
    # float32 on both sides; only the order of a few roundings differs. EDRL's imputation
    # makes discrete choices (counts, the step fraction) that a rounding tie can flip, and
    # the learners carry a flip forward: 2 of 600 values differ by up to 2e-4.
    tol = 1e-3 if name == "edrl" else 1e-4
    np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)


def _sample_expectiles(taus: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """f32[rows, m]: the expectiles of 300-sample normal, exponential, bimodal and Student-t
    laws, scaled and shifted (fixed-point iteration)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 4, size=(rows, 1))
    x = rng.normal(size=(rows, 300))
    x = np.where(kind == 1, rng.exponential(size=x.shape), x)
    x = np.where(kind == 2, np.where(rng.random(x.shape) < 0.3, -2.0, 1.0) + 0.1 * x, x)
    x = np.where(kind == 3, rng.standard_t(3, size=x.shape), x)
    x = x * rng.uniform(0.5, 2.0, size=(rows, 1)) + rng.normal(size=(rows, 1))
    e = np.full((rows, len(taus)), x.mean(axis=1, keepdims=True))
    for _ in range(50):
        w = np.abs(taus[None, :, None] - (x[:, None, :] < e[..., None]))
        e = (w * x[:, None, :]).sum(-1) / w.sum(-1)
    return e.astype(np.float32)


@pytest.mark.parametrize("m, n", [(11, 11), (20, 16)])
def test_numpy_imputation_matches_td_jax(m, n):
    """Baseline (a)'s imputation and mean readout are td_jax's algorithm (same workload)."""
    taus = rules.midpoint_taus(m).astype(np.float32)
    e = _sample_expectiles(taus, 200, seed=m)
    t = jnp.asarray(taus)
    ours = np.asarray(jax.vmap(lambda v: rules.impute_samples(v, t, n))(e))
    theirs = impute_samples(e, taus, n, 2)
    assert theirs.dtype == np.float32 and theirs.shape == ours.shape == (200, n)
    gap = np.abs(theirs - ours).max(axis=1)
    # XLA fuses multiply-adds and numpy does not, so the two differ by float32 roundings.
    # With 11 levels (0.5 among them) that is all. With 20, a run of levels next to 0.5
    # (1 - 2 tau = +-0.05) has its prefix sum fitted as a difference of sums over all
    # levels divided by its sum of squares (0.005): the roundings grow to ~1e-4 and about
    # 1% of the rows take another path, to samples that match the expectiles as well.
    if m == 11:
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    else:
        assert np.mean(gap <= 1e-4) >= 0.95, np.sort(gap)[-10:]
    # On every row: the expectile match and the mean, what the imputation is for.
    np.testing.assert_allclose(
        np.abs(expectile_residuals(theirs, e, taus)).max(axis=1),
        np.abs(expectile_residuals(ours, e, taus)).max(axis=1),
        atol=2e-5,
    )
    np.testing.assert_allclose(theirs.mean(axis=1), ours.mean(axis=1), atol=1e-4)
    # The mean readout without a solve: td_jax's expectile_mean.
    mean_ours = np.asarray(jax.vmap(lambda v: expectile_mean(v, t))(e))
    np.testing.assert_allclose(numpy_expectile_mean(e, taus), mean_ours, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["edrl", "dopamine_expectile"])
def test_numpy_expectile_values_equal_td_jax(name):
    """The mean readout of expectile tables: the 0.5 level, else td_jax's expectile_mean."""
    spec = workload.numpy_rule(name)
    rule = Rule(**{k: np.asarray(v, np.float32) if isinstance(v, list) else v
                   for k, v in spec.items()})  # fmt: skip
    table = _sample_expectiles(rule.taus, 24, seed=5)
    state = {"table": table.reshape(2, 3, 4, -1)}  # [streams, S, A, m]
    ours = workload.make_rule(name).values(rules.TabularState(jnp.asarray(table)))
    theirs = rule.values(state).reshape(-1)
    np.testing.assert_allclose(theirs, np.asarray(ours), atol=1e-5, rtol=0)


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
    verdicts = {t["target"]: t for t in targets.targets(result)}
    assert not verdicts["every rule >= 2x numpy"]["met"]  # qtd: 1.7x
    assert verdicts["median rule >= 5x numpy"]["met"]  # median of 10x and 1.7x: 5.8x
    assert verdicts["compile <= 10 s per rule structure"]["met"]
    loop = verdicts["every rule >= 300x the per-learner loop"]
    assert not loop["met"] and "qtd 100x" in loop["detail"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run (about 20 s), shared by the tests of what it writes."""
    out = tmp_path_factory.mktemp("throughput")
    return out, run_throughput(out, quick=True, progress=False)


def test_quick_run_writes_both_reports(quick_run):
    tmp_path, result = quick_run
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
    # The CPU is recorded, so that a difference between machines can be traced.
    assert result["machine"]["cpu"] and isinstance(result["machine"]["vector_isa"], list)
    assert "Vector ISA:" in text
    # And the code: the commit of this checkout (CI and make test run in one).
    import subprocess

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    if head.strip():
        assert result["machine"]["git"]["commit"] == head.strip()
        assert f"Code: td_jax at commit {head.strip()[:12]}" in text


def test_quick_run_writes_user_workload_and_roofline(quick_run):
    tmp_path, result = quick_run
    text = (tmp_path / "throughput.md").read_text()
    # User workload: two identical default-argument td_jax.run calls, and numpy.
    (row,) = result["user"]["rows"]
    ours = row["td_jax"]
    assert (row["rule"], row["seeds"], row["steps"]) == ("td", 8, 50)
    assert ours["learner_updates"] == 8 * len(user_workload.STEP_SIZES) * 50
    assert ours["ups"] == pytest.approx(ours["learner_updates"] / ours["second"]["wall_seconds"])
    assert ours["first"]["value_error"] == ours["second"]["value_error"]  # same call
    assert "metrics_off" in ours and row["numpy"]["ups"] > 0
    assert "## User workload: td_jax.run end to end" in text
    assert "| td | 8 | 4 | 50 |" in text
    assert "second / first" in text and "default / metrics off" in text
    dense = ours["dense"]  # td: the bench-density value error against the loop alone
    assert dense["checkpoints"] == len(dense_checkpoints(50, user_workload.DENSE_PER_DECADE))
    assert dense["share"] == pytest.approx(
        dense["dense_run_seconds"] / dense["loop_run_seconds"] - 1.0
    )
    assert "dense metric" in text and "checkpoints/decade" in text
    # Roofline: peaks on all cores and on one, XLA's cost per update, fractions per row.
    peaks = result["peaks"]
    assert peaks["one_core"]["threads"] == 1
    assert all(p["triad_gbs"] > 0 and p["peak_gflops"] > 0 for p in peaks.values())
    td = result["costs"]["td"]
    # One update of a 10-state table: XLA's count is between the hand count's 16 bytes and
    # a few whole tables; its flops are mostly the stream's sampling, shared by 10 learners.
    assert 16 <= td["bytes"] <= 6 * td["state_bytes"] and td["state_bytes"] == 40
    assert td["sampling"]["flops"] < td["flops"] and not td["loops"]
    assert "## Roofline" in text and "| bytes / update |" in text
    rows = {r["rule"]: r for r in roofline.rows(result)}
    assert set(rows) == {"td"}  # quick: the first rule's cost alone
    for r in rows.values():
        assert r["fraction"] == pytest.approx(r["ups"] / r["roofline"])
        assert r["roofline"] == pytest.approx(
            min(
                peaks["all"]["triad_gbs"] * 1e9 / r["bytes"],
                peaks["all"]["peak_gflops"] * 1e9 / r["flops"],
            )
        )


def test_user_workload_and_edrl_targets():
    def user_row(rule, seeds, steps, first, second, numpy_ups, off=None, dense=None):
        ours = {"first": {"wall_seconds": first}, "second": {"wall_seconds": second}}
        ours["ups"] = seeds * 4 * steps / second
        if off is not None:
            ours["metrics_off"] = {"wall_seconds": off}
        if dense is not None:
            ours["dense"] = {"share": dense, "checkpoints": 67}
        return {"rule": rule, "seeds": seeds, "steps": steps, "td_jax": ours,
                "numpy": {"ups": numpy_ups}}  # fmt: skip

    result = {
        "rows": [{"rule": "edrl", "learners": 1_000, "td_jax": {"ups": 3e5}, "numpy": {}}],
        "user": {
            "step_sizes": [0.1, 0.2, 0.3, 0.4],
            "rows": [
                user_row("td", 512, 2_000, 4.0, 0.4, 1e6, off=0.3, dense=0.04),  # 10.2x, 10%
                user_row("qtd", 512, 2_000, 4.0, 2.0, 1e6),  # 2.0x numpy, 50%
                user_row("td", 4_096, 20_000, 20.0, 16.0, 1e7, dense=0.25),  # 2.0x numpy
            ],
        },
    }
    verdicts = {t["target"].split(" (")[0]: t for t in targets.targets(result)}
    small = verdicts["end to end >= 2x numpy"]
    assert small["met"] and small["learners"] == 2_048 and "qtd 2.0x" in small["detail"]
    assert not verdicts["end to end >= 4x numpy"]["met"]
    second = verdicts["second call <= 25% of the first"]
    assert not second["met"] and "qtd 50%" in second["detail"]
    assert verdicts["td default arguments <= 1.5x metrics off"]["met"]  # 0.4 / 0.3
    dense = [t for t in targets.targets(result) if "checkpoints/decade" in t["target"]]
    assert [(t["learners"], t["met"]) for t in dense] == [(2_048, True), (16_384, False)]
    assert dense[1]["detail"] == "td +25.0%"
    edrl = verdicts["edrl >= 10x its committed rate"]  # 3e5 against 2.52e4
    assert edrl["met"] and edrl["learners"] == 1_000 and edrl["detail"].startswith("11.9x")


def test_parametric_rows_run_without_baselines_and_stay_out_of_targets(tmp_path):
    result = run_throughput(
        tmp_path,
        sizes=(20,),
        rules=("td", "linear_td", "mlp_qtd"),
        num_steps=20,
        quick=True,
        user=False,
        roofline=False,
    )
    rows = {r["rule"]: r for r in result["rows"]}
    assert set(rows) == {"td", "linear_td", "mlp_qtd"}
    for name in ("linear_td", "mlp_qtd"):
        assert rows[name]["td_jax"]["ups"] > 0 and rows[name]["numpy"] == {}
        assert name not in result["loop"]
        assert result["workload"]["rules"][name]["approximator"] in ("linear", "mlp")
    # The CPU targets compare with the baselines, so they are judged on td alone here.
    assert all("a run failed" not in t["detail"] for t in result["targets"])
    assert {r["rule"] for r in targets.ratios(result)} == {"td"}
    text = (tmp_path / "throughput.md").read_text()
    assert "## Linear and MLP learners" in text
    assert "| linear td (tiles 4x4, sgd) | 20 | 20 |" in text
    # The rule the row names is the parametric form, not the tabular one.
    rule = workload.make_rule("linear_td")
    state = rule.init(jax.random.PRNGKey(0), 10)
    assert not hasattr(state, "table")


def test_accelerator_report_runs_and_judges_targets(tmp_path, monkeypatch):
    from td_jax.throughput import accelerator

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
    assert len(result["targets"]) == len(accelerator.TARGETS) == 4
    for judged, (rule, target, _) in zip(result["targets"], accelerator.TARGETS, strict=True):
        best = max(r["ups"] for r in saved["rows"] if r["rule"] == rule)
        assert judged["target"].startswith(f"{rule} >= {target:.1e}")
        assert judged["met"] == (best >= target)
    text = (tmp_path / f"throughput_{backend}.md").read_text()
    assert "| td | 20 |" in text and "## Targets" in text


def test_gpu_targets_come_from_the_accelerator_report_beside_the_cpu_one(tmp_path):
    from td_jax.throughput import accelerator

    def gpu_rows():
        judged = targets.targets({"accelerator": accelerator.summary(tmp_path)})
        return [t for t in judged if t["target"].startswith("GPU")]

    rows = gpu_rows()  # no accelerator report: both not measured
    assert [t["met"] for t in rows] == [None, None]
    assert "no accelerator report beside this one" in rows[0]["detail"]
    # Reports that must not break the CPU report: torn, not a report, malformed targets.
    (tmp_path / "throughput_torn.json").write_text('{"date": "2027')
    (tmp_path / "throughput_list.json").write_text("[1, 2]")
    bad = {"date": "2026-01-01 00:00:00", "device_kind": "X", "targets": ["td >= 1.0e+11", None]}
    (tmp_path / "throughput_bad.json").write_text(json.dumps(bad))
    (tmp_path / "throughput_nodate.json").write_text(json.dumps({**bad, "date": 5}))
    (tmp_path / "throughput.json").write_text(json.dumps({"rows": []}))  # the CPU report
    judged = [{"target": "td >= 1e+09 learner-updates/s", "met": True, "detail": "x"}]
    old = {"date": "2026-11-28 02:38:58", "device_kind": "NVIDIA H200", "rows": [],
           "targets": judged}  # fmt: skip
    (tmp_path / "throughput_gpu.json").write_text(json.dumps(old))
    assert [r["file"] for r in accelerator.summary(tmp_path)] == [
        "throughput_gpu.md", "throughput_bad.md"]  # fmt: skip
    rows = gpu_rows()  # reports from before the targets
    assert [t["met"] for t in rows] == [None, None]
    assert "throughput_gpu.md (NVIDIA H200, 2026-11-28 02:38:58) predates" in rows[0]["detail"]
    new = {**old, "date": "2026-12-05 10:00:00", "rows": [
        {"rule": "td", "learners": 1 << 22, "ups": 1.2e11},
        {"rule": "qtd", "learners": 1 << 20, "ups": 9e9}]}  # fmt: skip
    new["targets"] = accelerator.targets(new)
    (tmp_path / "throughput_gpu2.json").write_text(json.dumps(new))
    newest = {**new, "date": "2026-12-06 10:00:00", "device_kind": "NVIDIA H100", "rows": []}
    newest["targets"] = accelerator.targets(newest)  # measured nothing: judges nothing
    (tmp_path / "throughput_gpu3.json").write_text(json.dumps(newest))
    rows = gpu_rows()  # the newest report that judges each target
    assert [t["met"] for t in rows] == [True, False]
    assert rows[0]["target"] == "GPU: td >= 1.0e+11 learner-updates/s (issue 12, one H200)"
    assert "1.2e+11 at 4,194,304 learners (throughput_gpu2.md, NVIDIA H200" in rows[0]["detail"]
    text = "\n".join(report.targets_table([*rows, {**rows[0], "met": None}]))
    assert "| GPU: td >= 1.0e+11 learner-updates/s (issue 12, one H200) | - | met |" in text
    assert "| - | not measured |" in text


def test_accelerator_cli_refuses_cpu(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from td_jax.cli import app

    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # whatever this machine has
    result = CliRunner().invoke(app, ["throughput", "--accelerator", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs a GPU or TPU" in result.output
    assert not list(tmp_path.iterdir())  # nothing written
