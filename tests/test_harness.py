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

import td_jax
from td_jax.catalog import get_suite, suite_file
from td_jax.cli import app
from td_jax.engine import store
from td_jax.engine.driver import run_suite
from td_jax.engine.store import UNITS
from td_jax.runner import RunResult, compile_cache
from td_jax.studies.suite_files import file_record
from tests.helpers import tiny_mrp

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "sample_complexity.csv",
    "estimand.csv",
    "convergence.csv",
    "sensitivity.csv",
    "table.md",
    "verdict.md",
    "speedup.png",
    "n_eps.png",
    "error_curves.png",
    "sensitivity.png",
    "manifest.json",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """The persistent XLA cache the CLI subprocesses of these tests share: this process's
    own where it has one (td_jax.run turns it on), so that they load what the ``quick``
    fixture compiled instead of compiling it again; else a fresh one of their own."""
    active = compile_cache.enable_persistent_cache()
    return Path(active) if active else tmp_path_factory.mktemp("xla_cache")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quick") / "quick"
    # The suite read from benchmarks/quick.toml, whose sha256 the manifest records.
    run_suite(get_suite("quick"), out, quiet=True, source=file_record(suite_file("quick")))
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
    suite = get_suite("quick")
    assert manifest["suite"] == "quick" and manifest["wall_seconds"] > 0
    assert manifest["suite_file"]["path"] == "benchmarks/quick.toml"
    assert manifest["suite_file"] == file_record(suite_file("quick"))
    assert manifest["seeds"] == {"tuning": list(suite.tuning_seeds),
                                 "evaluation": list(suite.eval_seeds)}  # fmt: skip
    assert manifest["checkpoint_density"] >= 20
    assert {"jax", "numpy", "rlax", "td_jax"} <= set(manifest["versions"])
    assert manifest["device"]["backend"] == "cpu" and "commit" in manifest["git"]
    for info in manifest["tasks"].values():
        assert info["min_expected_visits"] >= suite.min_visits
    verdict = (quick / "verdict.md").read_text()
    assert verdict.startswith("# Does distributional TD converge faster than TD?")
    assert re.search(r"Null false-positive rate: [0-9.]+", verdict)
    nulls = manifest["null_controls"]
    assert nulls["tested"] >= 4 and set(nulls["rules"]) <= set(suite.nulls)
    cells = pd.read_csv(quick / "sample_complexity.csv")
    columns = {"rule", "task", "weighting", "epsilon", "n_updates", "n_low", "n_high",
               "step_size", "schedule", "reached", "floor"}  # fmt: skip
    assert columns <= set(cells.columns)
    runs = sum(len(suite.tasks) if r.envs is None else
               sum(t.env in r.envs for t in suite.tasks) for r in suite.rules)  # fmt: skip
    assert len(cells) == runs * 2 * len(suite.eps_grid)
    # A censored cell is never a number.
    assert cells.loc[~cells["reached"], "n_updates"].isna().all()


def test_n_eps_recomputes_from_convergence_csv(quick):
    """Any reader can recompute N(eps) from convergence.csv and get sample_complexity.csv."""
    cells = pd.read_csv(quick / "sample_complexity.csv")
    conv = pd.read_csv(quick / "convergence.csv")
    checked = 0
    for row in cells[cells["reached"]].itertuples():
        sub = conv[(conv.rule == row.rule) & (conv.task == row.task)
                   & (conv.weighting == row.weighting) & (conv.schedule == row.schedule)
                   & np.isclose(conv.step_size, row.step_size)].sort_values("step")  # fmt: skip
        steps, err = sub["step"].to_numpy(), sub["mean_error"].to_numpy()
        # Log-log interpolation after the last checkpoint above eps, by hand.
        above = np.flatnonzero(err > row.epsilon)
        if above.size == 0:
            n = steps[0]
        else:
            i = above[-1]
            f = np.log(err[i] / row.epsilon) / np.log(err[i] / err[i + 1])
            n = np.exp(np.log(steps[i]) + f * np.log(steps[i + 1] / steps[i]))
        assert n == pytest.approx(row.n_updates, rel=1e-4)
        checked += 1
    assert checked > 50


def test_selection_minimises_n_on_tuning_seeds(quick):
    sens = pd.read_csv(quick / "sensitivity.csv")
    cells = pd.read_csv(quick / "sample_complexity.csv")
    margin = get_suite("quick").margin
    for row in cells[cells["reached_tuning"]].itertuples():
        grp = sens[
            (sens.rule == row.rule)
            & (sens.task == row.task)
            & (sens.weighting == row.weighting)
            & np.isclose(sens.epsilon, row.epsilon)
        ]
        best = grp["n_tuning"].min()
        # The smallest N up to the tie tolerance (a fixed preference among near-ties), or,
        # where an edge was resolved as a flat optimum, the margin past that near-tie; the
        # CSVs keep 6 digits.
        flat = isinstance(row.flat_edge, str) and row.flat_edge != ""
        tol = (1 + 0.5 * margin) * (1 + margin) if flat else 1 + 0.5 * margin
        assert best * (1 - 1e-5) <= row.n_tuning <= best * tol * (1 + 1e-5)
        assert len(grp) > 5  # the whole grid was tried on the tuning seeds
    fallback = cells[~cells["reached_tuning"]]
    assert fallback["n_tuning"].isna().all()  # none reached on tuning: evaluated, censored


def _family(schedule: str) -> str:
    return "constant" if schedule == "constant" else "harmonic"


def test_reparameterised_td_ends_at_tds_n_within_the_margin(quick):
    """TD with its step x1.37 or x0.59 inside it, tuned on TD's own grid: wherever both
    searches ended flat, its N(eps) on the (shared) tuning seeds is TD's within the
    suite's margin, although no grid point of one maps onto the other's."""
    cells = pd.read_csv(quick / "sample_complexity.csv")
    margin = get_suite("quick").margin
    band = cells[(cells.regime == "band") & (cells.weighting == "visit")
                 & (cells.n_tuning >= 10)]  # fmt: skip
    td = band[band.rule == "td"].set_index(["task", "eps_relative"])
    checked, within = 0, []
    for row in band[band.rule.isin(["td_rescaled_a", "td_rescaled_b"])].itertuples():
        if (row.task, row.eps_relative) not in td.index:
            continue
        ref = td.loc[(row.task, row.eps_relative)]
        flat = f"{_family(row.schedule)}:flat" in str(row.search)
        if not (flat and f"{_family(ref['schedule'])}:flat" in str(ref["search"])):
            continue
        ratio = row.n_tuning / ref["n_tuning"]
        within.append(1 / (1 + margin) <= ratio <= 1 + margin)
        checked += 1
    assert checked >= 8 and all(within), (checked, np.mean(within))


def test_the_uniform_band_cells_carry_the_selection_in_their_interval(quick):
    """quick sets ``reselect_secondary``: the uniform weighting's band cells, chosen among
    every configuration run (the visit searches' probes included), are re-selected on
    resamples of the tuning seeds as the visit cells are; transient cells keep their
    selection alone."""
    cells = pd.read_csv(quick / "sample_complexity.csv")
    assert get_suite("quick").reselect_secondary
    band = cells[(cells.regime == "band") & cells["reached"] & cells["step_size"].notna()]
    for weighting in ("visit", "uniform"):
        sub = band[band.weighting == weighting]
        assert len(sub) >= 20 and (sub["candidates"] > 1).mean() > 0.5, weighting
    assert (cells.loc[cells.regime == "transient", "candidates"] <= 1).all()


def test_placebos_and_the_edrl_bandit_identity_come_out_null(quick):
    cells = pd.read_csv(quick / "sample_complexity.csv")
    placebo = cells[cells["rule"].isin(["td_placebo", "ctd"])]
    assert not placebo["verdict"].isin(["faster", "slower"]).any()
    # On a bandit EDRL's 0.5-expectile moves like TD at half the step: with its grid in its
    # own units (x2) its N(eps) at the matched step is TD's.
    edrl = cells[(cells.rule == "edrl") & cells.task.str.startswith("bandit/")]
    td = cells[cells.rule == "td"].set_index(["task", "weighting", "epsilon"])
    assert len(edrl)
    for row in edrl.itertuples():
        ref = td.loc[(row.task, row.weighting, row.epsilon)]
        if np.isnan(ref["step_size"]):  # trivial cell (eps >= the initial error): not tuned
            assert np.isnan(row.step_size)
            continue
        assert row.step_size == pytest.approx(2 * ref["step_size"], rel=1e-5)
        if np.isfinite(ref["n_updates"]):
            assert row.n_updates == pytest.approx(ref["n_updates"], rel=1e-3)
        assert row.verdict not in ("faster", "slower")


def test_compare_marks_regressions(quick, tmp_path):
    worse = tmp_path / "worse"
    shutil.copytree(quick, worse)
    cells = pd.read_csv(worse / "sample_complexity.csv")
    hit = (cells.rule == "qtd") & (cells.task == "chain/student_t") & cells["reached"]
    assert hit.any()
    for col in ("n_updates", "n_low", "n_high"):
        cells.loc[hit, col] = cells.loc[hit, col] * 10 + 1_000
    cells.to_csv(worse / "sample_complexity.csv", index=False)
    runner = CliRunner()
    edited = runner.invoke(app, ["compare", str(quick), str(worse)])
    assert edited.exit_code == 2 and "does not match its manifest's digest" in edited.output
    manifest = json.loads((worse / "manifest.json").read_text())  # as if another run wrote it
    manifest["file_sha256"] = store.file_digests(worse)
    (worse / "manifest.json").write_text(json.dumps(manifest))
    same = runner.invoke(app, ["compare", str(quick), str(quick), "--fail-on-regression"])
    assert same.exit_code == 0 and "0 cell(s) slower" in same.output
    res = runner.invoke(app, ["compare", str(quick), str(worse), "--fail-on-regression"])
    assert res.exit_code == 3
    assert re.search(r"\| chain/student_t \| qtd \|.*\*\*slower\*\*", res.output)
    # Different rule sets: compared where both have cells, the rest summarised per rule.
    fewer = tmp_path / "fewer"
    shutil.copytree(quick, fewer)
    cells = pd.read_csv(fewer / "sample_complexity.csv")
    cells[cells.rule != "ctd"].to_csv(fewer / "sample_complexity.csv", index=False)
    manifest["file_sha256"] = store.file_digests(fewer)
    (fewer / "manifest.json").write_text(json.dumps(manifest))
    res = runner.invoke(app, ["compare", str(quick), str(fewer)])
    assert res.exit_code == 0 and re.search(
        r"Only in one run \(not compared\): A: ctd \(\d+ tasks?\)", res.output
    )
    # Incomplete (no manifest), or not a directory: one line, exit 2.
    (fewer / "manifest.json").unlink()
    res = runner.invoke(app, ["compare", str(quick), str(fewer)])
    assert res.exit_code == 2 and "incomplete (no manifest.json" in res.output
    res = runner.invoke(app, ["compare", str(quick), str(fewer / "verdict.md")])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_a_cut_publish_is_finished_and_temporaries_cleaned(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_figure.png").write_bytes(b"old")
    (out / "verdict.md").write_text("old verdict")
    (out / "manifest.json").write_text("{}")
    stage = store.staging_dir(out)
    (stage / "verdict.md").write_text("new verdict")
    (stage / "manifest.json").write_text('{"suite": "s"}')
    (out / ".verdict.md.123.tmp").write_text("partial")
    (out / store.UNITS).mkdir()
    (out / store.UNITS / "tmpab12cd.tmp").write_bytes(b"a unit save cut by a kill")
    store.recover(out)  # as after a kill between staging and publishing
    assert (out / "verdict.md").read_text() == "new verdict"
    assert json.loads((out / "manifest.json").read_text()) == {"suite": "s"}
    assert not (out / "old_figure.png").exists()  # the old report's files do not linger
    assert not (out / store.STAGING).exists() and not list(out.glob(".*.tmp"))
    assert not list((out / store.UNITS).glob("*.tmp"))
    stage = store.staging_dir(out)
    (stage / "verdict.md").write_text("half-written report, no manifest")
    store.recover(out)  # an unfinished staging is dropped; the published report stays
    assert (out / "verdict.md").read_text() == "new verdict" and not stage.exists()


def test_unreadable_units_are_recomputed_with_a_warning(tmp_path):
    messages = []
    units = store.Units(tmp_path, lambda msg: None, warn=messages.append)  # loud: stderr
    (tmp_path / store.UNITS).mkdir()
    env = {"tiny": tiny_mrp()}

    def compute():
        return td_jax.run(["td"], env, [0.1], 1, 5, progress=False)

    first = units.get("u", {"k": 1}, compute)
    for broken in (b"", b"PK\x03\x04 truncated", bytes(range(256)) * 4):  # empty, cut, garbage
        (tmp_path / store.UNITS / "u.npz").write_bytes(broken)
        again = units.get("u", {"k": 1}, compute)
        np.testing.assert_array_equal(again.value_error, first.value_error)
    assert len(messages) == 3 and all("unreadable" in m and "recomputing" in m for m in messages)
    assert units.computed == 4


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

    def make_raising_rule():
        raise RuntimeError("boom")

    def make_biased_rule():
        """TD toward a target clipped above at 0.5 past the estimate: biased low under
        reward noise, so its error levels off (a plateau), and not distributional."""
        def kernel(v, r_t, discount_t, v_next, step_size, key):
            return v + step_size * jnp.minimum(r_t + discount_t * v_next - v, 0.5)
        return rules.tabular_rule(kernel, init_stat=jnp.zeros(1), distributional=False)

    def make_nan_rule():
        """Returns NaN: a rule that diverges at every step size."""
        return rules.tabular_rule(lambda v, r, d, vn, a, k: v + jnp.nan * a,
                                  init_stat=jnp.zeros(1), distributional=False)
''')


def test_plugin_rule_runs_beside_the_builtins(quick, tmp_path, monkeypatch):
    """In-process (the CLI's own path, as a subprocess would run it, with the fixture's
    compiled programs): the plug-ins are imported from the working directory."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_rules.py").write_text(PLUGIN)
    monkeypatch.chdir(work)
    monkeypatch.delitem(sys.modules, "my_rules", raising=False)  # another test's, if any
    out = tmp_path / "with_plugin"
    shutil.copytree(quick, out)  # built-in units are reused; only the plug-in's run
    result = CliRunner().invoke(
        app,
        ["bench", "--suite", "quick", "--out", str(out), "--rule", "my_rules:make_rule",
         "--rule", "my_rules:make_nan_rule", "--rule", "my_rules:make_biased_rule",
         "--quiet"],
    )  # fmt: skip
    sys.modules.pop("my_rules", None)
    err = result.output
    assert result.exit_code == 0, err[-2000:]
    cells = pd.read_csv(out / "sample_complexity.csv")
    assert "make_rule" in set(cells["rule"])
    # Divergence is loud: marked in the cells, the table, the verdict and on stderr.
    nan = cells[(cells.rule == "make_nan_rule") & cells["n_tuning"].notna()]
    assert len(nan) == 0  # no configuration reached any eps on the tuning seeds
    nan = cells[(cells.rule == "make_nan_rule") & (cells["seeds"] > 0)]
    assert len(nan) and (nan["verdict"] == "diverged").all()
    assert (nan["diverged"] == nan["seeds"]).any()
    assert "diverged (" in (out / "table.md").read_text()
    verdict = (out / "verdict.md").read_text()
    line = next(x for x in verdict.splitlines() if x.startswith("- `make_nan_rule` ("))
    assert line.startswith("- `make_nan_rule` (not distributional: outside the answer): diverged")
    assert re.search(r"warning: rule make_nan_rule diverged on task \S+ \(\d+ of \d+", err)
    manifest = json.loads((out / "manifest.json").read_text())
    before = json.loads((quick / "manifest.json").read_text())
    assert manifest["runs_reused"] == before["runs_computed"] and manifest["runs_computed"] >= 3
    # Recorded as given, for `td-jax report` to re-import; the grid its facts gave.
    given = {r["label"]: r for r in manifest["configuration"]["rules"] if r.get("plugin")}
    assert given["make_rule"]["plugin"] == "make_rule=my_rules:make_rule"
    assert (given["make_rule"]["step_unit"], given["make_rule"]["step_scale"]) == ("fraction", 1.0)
    assert set(given) == {"make_rule", "make_nan_rule", "make_biased_rule"}
    # Non-distributional plug-ins stay out of the answer: its counts are unchanged.
    assert manifest["summary"]["families"] == before["summary"]["families"]
    assert manifest["summary"]["totals"] == before["summary"]["totals"]
    for rule in ("make_rule", "make_biased_rule"):
        assert manifest["summary"]["rules"][rule]["distributional"] is False
        assert f"- `{rule}` (not distributional: outside the answer)" in verdict
    # A rule whose error levels off above eps reads plateau there, never "slower".
    biased = cells[(cells.rule == "make_biased_rule") & (cells.weighting == "visit")]
    plateau = biased[biased["verdict"].str.startswith("cannot reach (plateau")]
    assert len(plateau), biased[["task", "eps_relative", "verdict"]]
    assert (plateau["plateau"] >= plateau["epsilon"]).all()


def test_resume_after_kill(quick, tmp_path, cache_dir):
    out = tmp_path / "resumed"
    shutil.copytree(quick, out)
    for name in FILES:
        (out / name).unlink()
    units = sorted((out / UNITS).glob("*.npz"))
    # The evaluations of a few units, of several rules: enough to kill a run between them
    # (their tuning runs are reused; each evaluation is one run).
    removed = sorted((out / UNITS).glob("*__eval.npz"))[::9]
    assert len(removed) >= 3 and len({p.name.split("__")[0] for p in removed}) >= 2
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
    # The resume in-process (the CLI's own path, with the fixture's compiled programs).
    result = CliRunner().invoke(app, ["bench", "--suite", "quick", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_reused"] >= len(units) - len(removed) + 1
    assert 1 <= manifest["runs_computed"] <= len(removed) - 1  # the kill landed mid-run
    # Deterministic: the resumed run's numbers equal the uninterrupted run's.
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "sample_complexity.csv"), pd.read_csv(quick / "sample_complexity.csv")
    )


def test_ctrl_c_stops_within_seconds_and_the_log_speaks(quick, tmp_path, cache_dir):
    """Without a terminal one line per finished unit (done/total, ETA); SIGINT ends the run
    within 5 s, keeping the finished units. The run resumes the quick suite with the
    evaluations of a third of its units to redo, so that it is interrupted mid-way."""
    out = tmp_path / "interrupted"
    shutil.copytree(quick, out)
    evals = sorted((out / UNITS).glob("*__eval.npz"))
    for path in evals[::3]:
        path.unlink()
    kept = len(evals) - len(evals[::3])
    # The child takes SIGINT's default disposition whatever this worker process inherited
    # (an ignored SIGINT is inherited across exec, and Python then installs no handler).
    proc = _cli(["bench", "--suite", "quick", "--out", str(out)], cache_dir,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / UNITS).glob("*__eval.npz"))) <= kept:
        time.sleep(0.1)
    time.sleep(0.5)  # a unit line is logged once its evaluation run is saved
    status = Path(f"/proc/{proc.pid}/status")
    ignored = [x for x in status.read_text().splitlines() if x.startswith("SigIgn")] if (
        status.exists()) else []  # fmt: skip
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        message = f"no exit 60 s after SIGINT ({ignored}); stderr: {err[-2000:]}"
        raise AssertionError(message) from None
    assert time.time() - t0 < 5.0 and proc.returncode == 130, err[-2000:]
    assert "interrupted; finished units are kept" in err
    assert re.search(r"\[\d+/\d+\] \S+: [\d.]+ s, .* ETA \d+ s", err), err[-2000:]
    for path in (out / UNITS).glob("*.npz"):
        RunResult.load(path)  # every unit on disk is whole


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
            r"plug-in rule 'make_bad_rule' cannot take the transitions of env",
        ),
        (
            ["bench", "--suite", "quick", "--rule", "my_rules:make_raising_rule"],
            r"plug-in rule 'make_raising_rule': its factory raised RuntimeError: boom \(my_rules",
        ),
        (
            [
                "bench",
                "--suite",
                "quick",
                "--rule",
                "a=my_rules:make_rule",
                "--rule",
                "a=my_rules:make_rule",
            ],
            r"label 'a' is given twice",
        ),  # fmt: skip
        (
            ["bench", "--suite", "quick", "--rule", "../up=my_rules:make_rule"],
            r"label '../up' may hold only letters, digits and _ . -",
        ),
        (
            ["bench", "--suite", "quick", "--rule", "td=my_rules:make_rule"],
            r"label 'td' clashes with a rule of suite quick",
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
    assert not out.exists()  # nothing is written when the input is refused


@pytest.mark.parametrize("where", ["empty", "file", "proc", "locked"])
def test_output_directory_problems_are_one_line_and_exit_2(tmp_path, where):
    import fcntl

    held = None
    if where == "empty":
        out, pattern = "", r"--out is empty"
    elif where == "file":
        (tmp_path / "f").write_text("x")
        out, pattern = str(tmp_path / "f"), r"output directory .*f is a file"
    elif where == "proc":
        out, pattern = "/proc/td_jax_results", r"cannot write results to /proc/td_jax_results"
    else:
        (tmp_path / "o" / UNITS).mkdir(parents=True)
        held = open(tmp_path / "o" / UNITS / "lock", "w")  # noqa: SIM115 - another run's lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        out, pattern = str(tmp_path / "o"), r"in use by another td-jax run \(pid 4242\)"
    try:
        result = CliRunner().invoke(app, ["bench", "--suite", "quick", "--out", out, "--quiet"])
    finally:
        if held is not None:
            held.close()
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert re.search(pattern, lines[0]), lines[0]


def test_start_rows_start_searches_and_are_no_grid_axis(quick):
    """quick's ``start_rows = [3.0]``: every unit runs the harmonic row alpha0 = 3k (k the
    rule's grid scale) over the grid's c values after its extensions (the ``rows`` run),
    and no extension grows the grid along alpha0 (the rows are search starts)."""
    suite = get_suite("quick")
    assert suite.start_rows == (3.0,) and suite.harmonic_steps == (1.0,)
    rows = sorted((quick / UNITS).glob("*__rows*.npz"))
    units = {p.name.split("__")[0] for p in rows}
    assert units == {r.label for r in suite.rules}, units
    sens = pd.read_csv(quick / "sensitivity.csv")
    td = sens[(sens.rule == "td") & sens.schedule.str.startswith("harmonic")]
    started = td[np.isclose(td.alpha_units, 3.0)]
    assert len(started) and started.schedule.nunique() >= len(suite.harmonic_c)
    # As a grid row (harmonic_steps = [1, 3]) it made alpha0 an axis of the grid, which
    # the extensions grew two rows past each end at its ratio, 3: 1/9, 1/3, 9 and 27 (the
    # compass probes move by other ratios).
    for extended in (1 / 9, 1 / 3, 9.0, 27.0):
        assert not np.isclose(td.alpha_units, extended, rtol=1e-4).any(), extended


def test_report_rescores_a_finished_directory_byte_identically(quick, tmp_path):
    """``td-jax report DIR``: every report file rewritten from the saved units, byte for
    byte, computing none; a unit that is not saved is an error naming it."""
    out = tmp_path / "rescored"
    shutil.copytree(quick, out)
    files = [p for p in out.iterdir() if p.is_file() and p.name != "manifest.json"]
    before = {p.name: p.read_bytes() for p in files}
    assert {"sample_complexity.csv", "estimand.csv", "verdict.md", "table.md"} <= set(before)
    for path in files:
        path.unlink()
    result = CliRunner().invoke(app, ["report", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in files} == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_computed"] == 0 and manifest["units_computed"] == 0
    assert manifest["runs_reused"] == json.loads((quick / "manifest.json").read_text())[
        "runs_computed"]  # fmt: skip
    victim = sorted((out / UNITS).glob("*__eval.npz"))[0]
    victim.unlink()
    missing = CliRunner().invoke(app, ["report", str(out), "--quiet"])
    assert missing.exit_code == 2 and not victim.exists(), missing.output
    assert f"unit {victim.stem} is not saved in {out}" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    empty = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert empty.exit_code == 2 and "is not a finished results directory" in empty.output


def test_directory_of_another_suite_is_refused(quick, tmp_path):
    out = tmp_path / "other"
    shutil.copytree(quick, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["bench", "--suite", "default", "--out", str(out)])
    assert result.exit_code == 2
    assert "holds results of suite 'quick', not 'default'" in result.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_installs_are_pinned_by_the_committed_lock():
    lock = (ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lock if line and not line.startswith("#"))
    for package in ("jax", "jaxlib", "numpy", "scipy", "flax", "optax", "chex", "rlax"):
        assert package in pins, package
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK) -e '.[dev]'" in makefile and "lock:" in makefile
    info = store.lock_info()
    assert info["file"] == "constraints.txt" and len(info["sha256"]) == 64


def _analysis_n(quick: Path, rule: str, suite) -> pd.DataFrame:
    """``td_jax.analysis.n_eps`` on the saved evaluation runs of ``rule`` on the bandits."""
    frames = []
    for path in sorted((quick / UNITS).glob(f"{rule}__bandit__u*__eval.npz")):
        result = RunResult.load(path)
        frames.append(td_jax.analysis.n_eps(result, suite.eps_grid, relative=True, reps=50))
    return pd.concat(frames)


def test_the_analysis_api_gives_the_suites_n_and_s(quick):
    """``td_jax.analysis.n_eps`` on a unit's saved evaluation run gives the suite's N(eps) at
    the selected configuration (and its eps, e0 x eps_relative), and the ratio of two rules'
    gives the suite's S(eps): the library API and the engine compute the same numbers."""
    suite = get_suite("quick")
    cells = pd.read_csv(quick / "sample_complexity.csv")
    cells = cells[cells.task.str.startswith("bandit/") & (cells.weighting == "visit")
                  & cells["reached"] & cells["step_size"].notna()]  # fmt: skip
    found = {}
    for rule in ("td", "qtd"):
        api = _analysis_n(quick, rule, suite)
        for row in cells[cells.rule == rule].itertuples():
            hit = api[(api.env == row.task) & np.isclose(api.eps, row.epsilon, rtol=1e-5)
                      & np.isclose(api.step_size, row.step_size, rtol=1e-5)
                      & np.isclose(api.decay, row.decay, rtol=1e-5, equal_nan=True)]  # fmt: skip
            assert len(hit) == 1, (rule, row.task, row.epsilon, row.step_size)
            assert hit.n_updates.iloc[0] == pytest.approx(row.n_updates, rel=1e-5)
            found[(rule, row.task, row.eps_relative)] = hit.n_updates.iloc[0]
    assert len(found) >= 8
    checked = 0
    for row in cells[(cells.rule == "qtd") & cells["speedup"].notna()].itertuples():
        key = (row.task, row.eps_relative)
        if ("td",) + key in found and ("qtd",) + key in found:
            s = found[("td",) + key] / found[("qtd",) + key]
            assert s == pytest.approx(row.speedup, rel=1e-4)
            checked += 1
    assert checked >= 2
