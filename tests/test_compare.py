"""``td-jax compare`` on small result directories made from the committed results: runs of
different suites are refused, differing rules and seeds are flagged, disjoint runs are an
error, control results compare per metric, and the estimand compares where both have it."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax.cli import app

RESULTS = Path(__file__).resolve().parent.parent / "results"
FILES = ("sample_complexity.csv", "estimand.csv")


def _run(
    out: Path,
    source: str = "default",
    manifest_edit: Callable[[dict], None] | None = None,
    cells_edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    estimand_edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> Path:
    """A results directory as ``results/<source>`` wrote it, edited, with the digests of
    the edited files recorded as another run would have recorded them."""
    out.mkdir()
    manifest = json.loads((RESULTS / source / "manifest.json").read_text())
    digests = {}
    for name, edit in zip(FILES, (cells_edit, estimand_edit), strict=True):
        if not (RESULTS / source / name).exists():
            continue
        if edit is None:
            shutil.copy(RESULTS / source / name, out / name)
        else:
            edit(pd.read_csv(RESULTS / source / name)).to_csv(out / name, index=False)
        digests[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    manifest["file_sha256"] = digests
    if manifest_edit is not None:
        manifest_edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _compare(*args: str | Path):
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def _one_line_exit_2(res) -> str:
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    return res.output


def _slower(cells: pd.DataFrame, task_prefix: str) -> pd.DataFrame:
    hit = cells.task.str.startswith(task_prefix) & cells["reached"].astype(bool)
    for col in ("n_updates", "n_low", "n_high"):
        cells.loc[hit, col] = cells.loc[hit, col] * 10 + 1_000
    return cells


def _as_quick(manifest: dict) -> None:
    """What the quick suite's manifest says of the tasks both suites name (chain_states=3)."""
    manifest["suite"] = "quick"
    for task in manifest["configuration"]["tasks"]:
        if task["label"].startswith("chain/"):
            task["env_params"]["num_states"] = 3


def test_runs_of_different_suites_are_refused_unless_allowed(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", manifest_edit=_as_quick, cells_edit=lambda c: _slower(c, "chain/"))
    out = _one_line_exit_2(_compare(a, b, "--fail-on-regression"))
    assert "different suites (A: default, B: quick)" in out
    assert "chain/" in out and "--allow-different-suites" in out
    res = _compare(a, b, "--fail-on-regression", "--allow-different-suites")
    assert res.exit_code == 3 and "**--allow-different-suites**" in res.output

    # One suite name, one task redefined under its label: refused too, naming the task.
    def redefine(manifest: dict) -> None:
        task = next(t for t in manifest["configuration"]["tasks"] if t["label"] == "chain/gaussian")
        task["env_params"]["num_states"] = 3

    c = _run(tmp_path / "c", manifest_edit=redefine)
    out = _one_line_exit_2(_compare(a, c))
    assert "1 task(s) defined differently under one label (chain/gaussian;" in out
    assert "env_params.num_states" in out


def test_differing_rules_and_seeds_are_flagged(tmp_path):
    def fewer_quantiles_and_seeds(manifest: dict) -> None:
        config = manifest["configuration"]
        qtd = next(r for r in config["rules"] if r["label"] == "qtd")
        qtd["hparams"]["num_quantiles"] = 8
        config["tuning_seeds"] = manifest["seeds"]["tuning"] = [0, 1, 2, 3]

    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", manifest_edit=fewer_quantiles_and_seeds)
    res = _compare(a, b)
    assert res.exit_code == 0, res.output
    assert "rule qtd is defined differently: hparams.num_quantiles 32 vs 8" in res.output
    assert "tuning seeds differ: A [0, ..., 19] (20 values), B [0, 1, 2, 3]" in res.output
    assert "evaluation seeds differ" not in res.output
    same = _compare(a, a)
    assert same.exit_code == 0 and "The runs differ" not in same.output


def test_runs_with_no_cell_in_common_are_an_error(tmp_path):
    a = _run(tmp_path / "a", cells_edit=lambda c: c[c.task.str.startswith("bandit/")])
    b = _run(tmp_path / "b", cells_edit=lambda c: c[c.task.str.startswith("chain/")])
    assert "no cell in common" in _one_line_exit_2(_compare(a, b))


def test_control_results_compare_per_metric(tmp_path):
    a = _run(tmp_path / "a", "control")
    b = _run(tmp_path / "b", "control", cells_edit=lambda c: _slower(c, "sync/risky_safe/"))
    same = _compare(a, a, "--fail-on-regression")
    assert same.exit_code == 0, same.output
    assert "| task | rule | metric | eps |" in same.output and "0 cell(s) slower" in same.output
    res = _compare(a, b, "--fail-on-regression")
    assert res.exit_code == 3, res.output
    assert "| sync/risky_safe/gaussian | qtd | q_error |" in res.output
    assert "**slower**" in res.output
    # Prediction against control: never comparable, one line whatever the flags.
    prediction = _run(tmp_path / "p")
    for flags in ((), ("--allow-different-suites",)):
        out = _one_line_exit_2(_compare(prediction, a, *flags))
        assert "prediction results (per weighting)" in out and "control results" in out


def test_the_estimand_is_compared_where_both_runs_have_it(tmp_path):
    def lower(pairs: pd.DataFrame) -> pd.DataFrame:
        hit = (pairs.rule == "qtd") & (pairs.task == "chain/gaussian")
        assert hit.sum() == 1 and pairs.loc[hit, "speedup"].notna().all()
        pairs.loc[hit, ["speedup", "s_low", "s_high"]] = [0.01, 0.005, 0.02]
        return pairs

    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", estimand_edit=lower)
    res = _compare(a, b)
    assert res.exit_code == 0, res.output
    assert "## Estimand" in res.output
    assert "| chain/gaussian | qtd |" in res.output and "0.01 [0.005, 0.02] | lower |" in res.output
    assert "1 (rule, task) estimand(s) changed beyond the intervals." in res.output
    (b / "estimand.csv").unlink()  # one run without it: per-cell comparison only
    res = _compare(a, b)
    assert res.exit_code == 0 and "## Estimand" not in res.output


@pytest.mark.parametrize("source", ["default", "control"])
def test_a_run_compared_with_itself_has_no_change(source, tmp_path):
    a = _run(tmp_path / "a", source)
    res = _compare(a, a, "--fail-on-regression")
    assert res.exit_code == 0 and "0 cell(s) slower beyond the intervals." in res.output
    assert "faster |" not in res.output and "slower |" not in res.output
