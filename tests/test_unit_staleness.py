"""A saved unit is reused only by the code that made it (issue 23, items 1 and 6): its key
holds the digests of td_jax's source and of each plug-in rule's code; a mismatch is
recomputed and says so; ``--reuse-stale`` reuses on purpose and is recorded; a plug-in
factory that exits or interrupts is the user's error (one line, exit 2)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax import catalog, code_digests
from td_jax.cli import app
from td_jax.engine import plugins, store
from td_jax.engine.driver import run_suite
from td_jax.engine.specs import RuleSpec, Suite
from td_jax.engine.store import UNITS

MODULE = "stale_unit_rules"  # the plug-in module the tests write (a name no other test uses)
PLUGIN = textwrap.dedent("""
    import sys

    import jax.numpy as jnp

    from td_jax import rules

    FACTOR = {factor}  # the kernel's step multiplier: what the "user" edits between runs


    def kernel(v, r_t, discount_t, v_next, step_size, key):
        return v + FACTOR * step_size * (r_t + discount_t * v_next - v)


    def make_rule():
        return rules.tabular_rule(kernel, init_stat=jnp.zeros(1), distributional=False)


    def make_exit_rule():
        sys.exit(0)


    def make_interrupting_rule():
        raise KeyboardInterrupt
""")


def tiny_suite(*extra: RuleSpec, name: str = "stale_tiny") -> Suite:
    """TD, its placebo, the quick suite's null controls (where it has them) and ``extra``
    on one noisy bandit: 4 tuning seeds, 4 evaluation seeds, 300 updates (seconds)."""
    base = catalog.get_suite("quick")
    keep = {"td", "td_placebo", *getattr(base, "nulls", ())}
    rules = tuple(r for r in base.rules if r.label in keep) + extra
    task = next(t for t in base.tasks if t.env == "bandit" and "student_t" in t.label)
    return dataclasses.replace(
        base, name=name, rules=rules, tasks=(task,), tuning_seeds=(0, 1, 2, 3),
        eval_seeds=(10, 11, 12, 13), num_steps=300, horizons={"bandit": 300}, reps=100,
        max_extensions=0, placebos=("td_placebo",), eps_grid=(0.5, 0.03, 0.01),
        band=(0.01, 0.03),
    )  # fmt: skip


def write_plugin(directory: Path, factor: float) -> None:
    """(Re)writes the plug-in module; its stale bytecode is removed, so a reload reads it."""
    (directory / f"{MODULE}.py").write_text(PLUGIN.format(factor=factor))
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)
    importlib.invalidate_caches()


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    write_plugin(work, 2.0)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield work
    sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny run of built-in rules only."""
    out = tmp_path_factory.mktemp("stale") / "finished"
    run_suite(tiny_suite(), out, quiet=True)
    return out


def unit_names(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / UNITS).glob("*.npz"))


def test_an_edited_plugin_kernel_is_recomputed_and_matches_a_fresh_run(
    plugin_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    first = run_suite(tiny_suite(plugins.load_rule(f"mine={MODULE}:make_rule")), out, quiet=True)
    digest = first["code_digests"]["plugins"][f"{MODULE}:make_rule"]
    names = unit_names(out)
    before = pd.read_csv(out / "sample_complexity.csv")
    write_plugin(plugin_dir, 0.25)  # the user's edit: the kernel's step from 2x to 0.25x
    importlib.reload(sys.modules[MODULE])
    suite = tiny_suite(plugins.load_rule(f"mine={MODULE}:make_rule"))
    capsys.readouterr()
    second = run_suite(suite, out, quiet=True)
    err = capsys.readouterr().err
    assert second["code_digests"]["plugins"][f"{MODULE}:make_rule"] != digest
    stale = re.findall(r"unit (\S+): its code digest changed \(plug-in code (\w+) -> \w+\); "
                       r"recomputing", err)  # fmt: skip
    # One line per stale unit (which, and that its code changed): every one of the plug-in's
    # units that the second run asked for again, its first tuning round always among them.
    assert stale and all(name.startswith("mine__") and old == digest for name, old in stale)
    assert any(name.endswith("__tune0") for name, _ in stale), err
    assert second["stale_units_recomputed"] == len(stale)
    builtin = [n for n in names if not n.startswith("mine__")]
    assert second["units_reused"] == len(builtin)  # the built-in rules' units are reused
    fresh = tmp_path / "fresh"
    run_suite(suite, fresh, quiet=True)
    new = pd.read_csv(out / "sample_complexity.csv")
    pd.testing.assert_frame_equal(new, pd.read_csv(fresh / "sample_complexity.csv"))
    changed = new[new["rule"] == "mine"].reset_index(drop=True)
    assert not changed.equals(before[before["rule"] == "mine"].reset_index(drop=True))


def test_the_plugin_digest_covers_its_module_a_kernel_module_it_imports_and_its_code(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "stale_kernels.py").write_text("def kernel(v):\n    return 2 * v\n")
    (tmp_path / "stale_rules2.py").write_text(
        "from stale_kernels import kernel\n\ndef make_rule():\n    return kernel\n"
    )
    try:
        module = importlib.import_module("stale_rules2")
        found = code_digests._user_sources(module.make_rule)
        assert [name for name, _ in found] == ["stale_kernels", "stale_rules2"]
        before = code_digests._rule_digest(module.make_rule)
        (tmp_path / "stale_kernels.py").write_text("def kernel(v):\n    return 3 * v\n")
        assert code_digests._rule_digest(module.make_rule) != before
    finally:
        sys.modules.pop("stale_rules2", None)
        sys.modules.pop("stale_kernels", None)
    # Without a source file: the bytecode (and nested code) stands for the factory.
    namespace: dict = {}
    exec("def make(x):\n    return lambda y: x * y + 1\n", namespace)  # noqa: S102
    text = code_digests._code_text(namespace["make"])
    exec("def make(x):\n    return lambda y: x * y + 2\n", namespace)  # noqa: S102
    assert text and code_digests._code_text(namespace["make"]) != text
    assert code_digests.rule_digest("td") is None and code_digests.rule_digest(None) is None


def test_an_edit_to_a_td_jax_rule_file_changes_the_source_digest(tmp_path):
    package = tmp_path / "td_jax"
    shutil.copytree(code_digests.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digests.tree_digest(package)
    rule_file = package / "rules" / "classical.py"
    os.utime(rule_file, (0, 0))  # a touch is no edit
    (package / "rules" / "__pycache__").mkdir(exist_ok=True)
    (package / "rules" / "__pycache__" / "stray.py").write_text("x = 1\n")
    assert code_digests.tree_digest(package) == before
    rule_file.write_text(rule_file.read_text() + "\n# an edit\n")
    assert code_digests.tree_digest(package) != before
    assert code_digests.source_digest() == code_digests.tree_digest(code_digests.PACKAGE)


def test_a_changed_td_jax_source_invalidates_every_unit(finished, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    names = unit_names(out)
    monkeypatch.setattr(code_digests, "source_digest", lambda: "edited00source00")
    capsys.readouterr()
    manifest = run_suite(tiny_suite(), out, quiet=True)
    err = capsys.readouterr().err
    for name in names:
        assert re.search(rf"unit {name}: its code digest changed \(td_jax source \w+ -> "
                         r"edited00source00\); recomputing", err), err  # fmt: skip
    assert manifest["units_computed"] == len(names) and manifest["units_reused"] == 0
    assert manifest["stale_units_recomputed"] == len(names)
    assert manifest["code_digests"] == {"td_jax": "edited00source00", "plugins": {}}
    assert manifest["reuse_stale"] is False and manifest["stale_units_reused"] == []
    # Recomputed by the same (really unchanged) code: the same numbers.
    pd.testing.assert_frame_equal(pd.read_csv(out / "sample_complexity.csv"),
                                  pd.read_csv(finished / "sample_complexity.csv"))  # fmt: skip
    again = run_suite(tiny_suite(), out, quiet=True)
    assert again["units_computed"] == 0 and again["stale_units_recomputed"] == 0


def test_report_refuses_units_of_other_code_unless_asked(finished, tmp_path, monkeypatch):
    """Re-scoring (``store.score_only``, ``td-jax report``) computes nothing: a unit of other
    code is an error naming it and no unit file is written; with ``reuse_stale`` it is
    re-scored and recorded."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    saved = {p: p.stat().st_mtime_ns for p in (out / UNITS).glob("*.npz")}
    monkeypatch.setattr(code_digests, "source_digest", lambda: "edited00source00")
    with store.score_only(), pytest.raises(store.BenchError) as err:
        run_suite(tiny_suite(), out, quiet=True)
    assert re.search(
        r"unit \S+: its code digest changed \(td_jax source \w+ -> "
        r"edited00source00\) \(computed by other code\): td-jax report",
        str(err.value),
    )
    assert {p: p.stat().st_mtime_ns for p in (out / UNITS).glob("*.npz")} == saved
    with store.score_only(), store.reuse_stale():
        manifest = run_suite(tiny_suite(), out, quiet=True)
    assert manifest["units_computed"] == 0 and len(manifest["stale_units_reused"]) == len(saved)


class Box:
    """The smallest unit kind: an ``info`` dict and a number, saved as JSON."""

    def __init__(self, value: float, info: dict | None = None):
        self.value, self.info = value, info or {}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"value": self.value, "info": self.info}))

    @classmethod
    def load(cls, path: Path) -> Box:
        data = json.loads(path.read_text())
        return cls(data["value"], data["info"])


def test_units_record_their_code_and_a_unit_without_digests_is_stale(tmp_path, monkeypatch):
    (tmp_path / UNITS).mkdir()
    lines: list[str] = []
    units = store.Units(tmp_path, lines.append, kind=Box, warn=lines.append)
    calls = []

    def compute() -> Box:
        calls.append(1)
        return Box(float(len(calls)))

    assert units.get("u", {"a": 1}, compute).value == 1.0
    saved = json.loads((tmp_path / UNITS / "u.npz").read_text())["info"]
    assert saved["code_digests"] == store.code_digest() == {
        "td_jax": code_digests.source_digest(), "plugin": None}  # fmt: skip
    assert units.get("u", {"a": 1}, compute).value == 1.0 and not lines
    # A unit saved by older code (no digests) with a matching configuration: stale.
    del saved["code_digests"]
    (tmp_path / UNITS / "u.npz").write_text(json.dumps({"value": 1.0, "info": saved}))
    assert units.get("u", {"a": 1}, compute).value == 2.0
    assert lines == ["unit u: it was saved without a code digest (by an older td_jax); "
                     "recomputing"]  # fmt: skip
    # Another configuration is recomputed without a word, as before.
    assert units.get("u", {"a": 2}, compute).value == 3.0 and len(lines) == 1
    # A plug-in's digest joins the key: another factory's code is stale.
    assert units.get("u", {"a": 2}, compute, rule=Box).value == 4.0
    assert "its code digest changed (plug-in code None -> " in lines[-1]


def test_reuse_stale_reuses_on_purpose_and_says_so(finished, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    names = unit_names(out)
    suite = tiny_suite()
    monkeypatch.setitem(catalog.SUITES, suite.name, suite)
    monkeypatch.setattr(code_digests, "source_digest", lambda: "edited00source00")
    args = ["bench", "--suite", suite.name, "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--reuse-stale"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reuse_stale"] is True and manifest["stale_units_reused"] == names
    assert manifest["units_computed"] == 0 and manifest["units_reused"] == len(names)
    assert f"warning: unit {names[0]}: its code digest changed" in result.output
    assert re.search(rf"td-jax: warning: --reuse-stale: {len(names)} unit\(s\) computed by "
                     r"other code were reused", result.output), result.output  # fmt: skip
    verdict = (out / "verdict.md").read_text()
    assert f"Reused on purpose (--reuse-stale): {len(names)} unit(s)" in verdict
    assert not store.reusing_stale()  # only inside the run that asked
    # Without the flag the same units are recomputed.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reuse_stale"] is False and manifest["stale_units_reused"] == []
    assert manifest["units_computed"] == len(names)


class Exited(AssertionError):
    """os._exit called: the CLI took the plug-in's exception for a real interrupt."""


@pytest.mark.parametrize(
    ("factory", "pattern"),
    [
        ("make_exit_rule", r"its factory raised SystemExit: sys\.exit\(0\) ends the program; "
                           rf"a plug-in must not exit \({MODULE}\.py, line \d+\)"),
        ("make_interrupting_rule", r"its factory raised KeyboardInterrupt: a factory must "
                                   rf"return a td_jax\.UpdateRule.* \({MODULE}\.py, line \d+\)"),
    ],
)  # fmt: skip
def test_a_factory_that_exits_or_interrupts_is_a_user_error(
    plugin_dir, tmp_path, monkeypatch, factory, pattern
):
    def no_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", no_exit)
    suite = tiny_suite()
    monkeypatch.setitem(catalog.SUITES, suite.name, suite)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", suite.name, "--out", str(out),
                                      "--rule", f"{MODULE}:{factory}", "--quiet"])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("td-jax: error: plug-in rule"), lines
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output and not out.exists()


def test_a_module_that_exits_on_import_is_a_user_error(tmp_path, monkeypatch):
    (tmp_path / "stale_exiting_module.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tiny_suite()
    monkeypatch.setitem(catalog.SUITES, suite.name, suite)
    result = CliRunner().invoke(app, ["bench", "--suite", suite.name, "--out",
                                      str(tmp_path / "out"), "--rule",
                                      "stale_exiting_module:make"])  # fmt: skip
    sys.modules.pop("stale_exiting_module", None)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(
        r"cannot import module 'stale_exiting_module': SystemExit: sys\.exit\(0\)", lines[0]
    ), lines


def test_control_units_key_on_their_plugin_code(plugin_dir):
    from td_jax.engine import control

    base = catalog.get_suite("control_quick")
    spec = plugins.load_rule(f"mine={MODULE}:make_rule")
    suite = dataclasses.replace(base, rules=(base.rules[0], spec), tasks=base.tasks[:1])
    (unit,) = [u for u in control.make_units(suite, control.prepare_tasks(suite))
               if u.spec.label == "mine"]  # fmt: skip
    asked = {}

    class Cache:
        def get(self, name, key, compute, *, rule=None):
            asked.update(name=name, rule=rule)

    unit.cache = Cache()
    unit.execute(unit.configs[:1], (0,), suite, "tune0")
    assert asked["rule"] is spec.rule and asked["name"].startswith("mine__")
    assert store.rule_digest(asked["rule"]) == code_digests.rule_digest(spec.rule) is not None
