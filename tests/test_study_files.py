"""Suites as files (issue 25, item 1): every built-in comparison suite is a file under
benchmarks/ that loads into the suite its committed results were produced by; a bad file
is refused in one line naming the file and the key, exit 2, before anything compiles; the
example study (a plug-in rule, its own accuracy band) runs end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from td_jax import catalog
from td_jax.cli import app
from td_jax.engine.specs import RuleSpec, Suite
from td_jax.engine.store import UNITS
from td_jax.rewards import registry
from td_jax.studies import module_files, suite_files
from td_jax.studies.suite_files import SuiteFileError

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
EXAMPLE = ROOT / "examples" / "study.toml"
COMMITTED = [
    n for n in catalog.comparison_suites() if (ROOT / "results" / n / "manifest.json").exists()
]
# sha256 of the sorted-key JSON of suite.config(), taken from the Python definitions the
# files replaced (td_jax/studies/*_suites.py, reproductions/rowland2023.py) for the suites
# without committed results (quick's since retaken for its diagonal probes; approx_quick's
# and control_quick's for placebo labels they hold: linear_ctd, and td_placebo alone);
# those with results are checked against their manifests.
CONFIG_SHA256 = {
    "quick": "1d8fe3bbd2110c983d1cabf765f4a8dac112bf2bc55ebfd52e8882ed5b622eef",
    "approx_quick": "4e86fcea4c15286a50035ef1a09714d0da10424694da2184bb1c9826b2c92f39",
    "control_quick": "16826f64130112d482b23aa0e96bee4199de58de6685134faa4d4f48ccb6ae80",
}

# Suites with code of their own (benchmarks/<name>.toml names the module, holds its
# settings): sha256 as above of the configuration their manifests record (the reproductions'
# Config as config_dict, a DeepSuite's config()), taken from the Python definitions before
# the settings moved into the files; the committed results are checked against these too.
MODULE_SUITES = {
    "dabney2020": "f82f562b9065558310c63ea0774c4f23297b83fe861aaa07108882fea63f23b0",
    "lyle2019": "5633b0d4a218c4eb26c73f35f4b1420308214a3c48bcf4f3a2f70d6dd91cdeb4",
    "rainbow2021": "d0bacd9b5b67cc530763d1bdeed216568142cccc60ed603e67e925ce9305470a",
    "deep_control": "3d0274e07edc506cf45613017decfb06138fefe4c1efcd21a34777af35eb39c1",
    "deep_control_quick": "cf71be8829a096c48c60aa64bf517fa2405ed582b6e79a03de27b2cac58b8ef9",
    "deep_minatar": "d0a937adb4b011ddfd2a7d3245b1ea44b5bed0f6d6c55913461d353760f7e171",
}
GENERATED = ("atlas_device",)  # prediction suites a module generates from its settings
QUICK_SHA256 = {  # the reproductions' reduced configurations (Config.quick(), the tests')
    "dabney2020": "436a393fc93178790cde53468b0062c877f304e0e9431016c5f6ac3b22b26da1",
    "lyle2019": "01b5625b18e837e06ddd5c1bfd9254ed7ca9582ba73d95e2b9016501474293f1",
}


def _digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=list).encode()).hexdigest()


def test_every_builtin_comparison_suite_is_a_file():
    assert suite_files.builtin_dir() == BENCHMARKS  # a checkout reads its own top-level folder
    assert sorted(catalog.FILES) == sorted([*catalog.comparison_suites(), *MODULE_SUITES])
    assert catalog.available() == sorted(catalog.FILES)  # every suite is a file
    for name, path in catalog.FILES.items():
        assert path == BENCHMARKS / f"{name}.toml"
        if name in GENERATED:  # 10^4 tasks: its generator is tested on a small grid
            continue
        suite = catalog.get_suite(name)
        assert suite.name == name
        if name not in MODULE_SUITES:  # (a module suite's runner is a new closure)
            assert suite == suite_files.load(path)
    # The harness's quick fixture and `td-jax bench --suite quick` get it from the file.
    assert catalog.suite_file("quick") == BENCHMARKS / "quick.toml"
    assert isinstance(catalog.get_suite("quick"), Suite)


def _resolved(spec: RuleSpec) -> RuleSpec:
    """The spec as a run resolves it (``engine.driver.resolved``): a factory's step unit
    and grid scale from the facts of the rule it builds (a placeholder support for
    ``support = "auto"``, which does not change the facts)."""
    if isinstance(spec.rule, str):
        return spec
    hparams = dict(spec.hparams)
    if hparams.pop("support", None) == "auto":
        hparams = {k: v for k, v in hparams.items() if not k.startswith("support_")}
        hparams |= {"v_min": -1.0, "v_max": 1.0}
    return spec.resolved(spec.rule(**hparams).facts)


@pytest.mark.parametrize("name", COMMITTED)
def test_a_file_equals_the_suite_that_produced_its_committed_results(name):
    manifest = json.loads((ROOT / "results" / name / "manifest.json").read_text())
    suite = catalog.get_suite(name)
    run = dataclasses.replace(suite, rules=tuple(_resolved(r) for r in suite.rules))
    assert _digest(run.config()) == _digest(manifest["configuration"])


@pytest.mark.parametrize("name", sorted(CONFIG_SHA256))
def test_a_file_without_committed_results_equals_its_python_definition(name):
    assert _digest(catalog.get_suite(name).config()) == CONFIG_SHA256[name]


def _copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """benchmarks/<name>.toml copied with ``old`` (which it holds) replaced by ``new``."""
    text = (BENCHMARKS / f"{name}.toml").read_text()
    assert old in text
    path = tmp_path / f"my_{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_an_unknown_key_in_a_copied_file_is_one_line_and_exit_2(tmp_path):
    path = _copy(tmp_path, "quick", "[search]\n", "[search]\nmax_refinement = 3\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("td-jax: error:"), result.output
    assert str(path) in lines[0] and "'search.max_refinement'" in lines[0]
    assert "allowed in [search]:" in lines[0] and "max_refinements" in lines[0]
    assert not out.exists()  # refused before anything ran or was written


# The seeds, horizon and accuracy of the small studies below.
TINY_SETTINGS = """\
[seeds]
tuning = [0, 1]
evaluation = [10, 11]
[horizons]
num_steps = 100
[accuracy]
eps_grid = [0.5, 0.1]
band = [0.1, 0.5]
"""
BASELINE_ONLY = (
    """\
name = "alone"
description = "the baseline alone"
track = "prediction"
baseline = "td"
"""
    + TINY_SETTINGS
    + """\
[search]
constant_grid = [0.1, 0.3]
[controls]
nulls = []
[[rules]]
label = "td"
rule = "td"
[rewards]
gaussian = {name = "gaussian"}
[[tasks]]
env = "bandit"
each_reward = ["gaussian"]
"""
)


def test_a_study_of_its_baseline_alone_is_refused_in_one_line(tmp_path):
    # It compares nothing: its verdict and plots would be empty (a traceback before).
    path = tmp_path / "alone.toml"
    path.write_text(BASELINE_ONLY)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    expected = ("td-jax: error: suite alone: every rule is a baseline (td), so nothing is "
                "compared; add a rule to [[rules]] or give one with --rule")  # fmt: skip
    assert lines == [expected], result.output
    assert not out.exists()


# (suite file, text in it, its replacement, what the one-line error must say)
BAD_VALUES = [
    ("quick", "reps = 300", 'reps = "300"', r"scoring\.reps must be an integer >= 1, got '300'"),
    ("quick", "reps = 300", "reps = 0", r"scoring\.reps must be an integer >= 1, got 0"),
    ("quick", "band = [0.01, 0.1]", "band = [0.1, 0.01]", r"accuracy\.band must be .*low < high"),
    ("quick", 'rule = "qtd"', 'rule = "qtdd"', r"unknown rule at rules\[5\]\.rule 'qtdd'"),
    ("quick", "num_quantiles = 8", "num_quantile = 8", r"rules\[5\]\.hparams: .*'num_quantile'"),
    (
        "quick",
        '"student_t", df',
        '"studentt", df',
        r"rewards\.student_t: unknown reward .*'studentt'",
    ),
    ("quick", '"deterministic", "student_t"]', '"deterministic", "levy"]', r"each_reward\[1\]"),
    ("quick", 'env = "chain"', 'env = "chains"', r"tasks\[1\]\.env must be one of bandit, chain"),
    ("quick", "num_states = 3", "num_states = 0", r"tasks\[1\] \('chain/deterministic'\) params"),
    (
        "quick",
        "tuning = [0, 1, 2, 3]",
        "tuning = [0, 1, 2, 10]",
        r"seeds\.tuning and seeds\.evaluation must be disjoint, both hold \[10\]",
    ),
    ("quick", '"td_rescaled_a", "td_r', '"td_rescaled_c", "td_r', r"controls\.nulls\[0\] must be"),
    # A placebo label the file does not define would silently leave a pipeline check in
    # the answer (approx once named tabular rules it does not hold).
    (
        "quick",
        'placebos = ["td_placebo", "ctd"]',
        'placebos = ["td_placebo", "cdt"]',
        r"controls\.placebos\[1\] must be a rule label of this file \(.*\), got 'cdt'",
    ),
    ("control_quick", "epsilon = 0.1", "epsilon = 1.5", r"control\.epsilon must be in \[0, 1\]"),
    ("control_quick", 'track = "control"', 'track = "c"', r"track must be one of 'prediction'"),
]


@pytest.mark.parametrize(("name", "old", "new", "pattern"), BAD_VALUES)
def test_a_bad_value_names_the_file_and_the_key(tmp_path, name, old, new, pattern):
    path = _copy(tmp_path, name, old, new)
    with pytest.raises(SuiteFileError) as info:
        suite_files.load(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert re.search(pattern, message), message


def test_a_file_that_is_not_toml_or_not_there_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    for path, text in ((bad, "not a valid TOML file"), (tmp_path / "none.toml", "cannot read")):
        with pytest.raises(SuiteFileError, match=text):
            catalog.get_suite(str(path))


def test_td_jax_list_names_the_files():
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in catalog.FILES:
        assert re.search(rf"^  {name} +.*\[benchmarks/{name}\.toml\]$", result.output, re.M)
    assert "--suite path/to/study.toml" in result.output


def _tiny_example(tmp_path: Path) -> Path:
    """examples/study.toml beside its plug-in, on fewer seeds and updates and a band those
    reach (the search as the file sets it: its programs cost the same whatever the grid)."""
    text = EXAMPLE.read_text()
    for old, new in (
        ("num_steps = 5_000", "num_steps = 2_000"),
        ("band = [0.03, 0.3]", "band = [0.1, 0.5]"),
        ("tuning = {start = 0, stop = 10}", "tuning = [0, 1, 2]"),
        ("evaluation = {start = 1000, stop = 1040}", "evaluation = [1000, 1001, 1002, 1003]"),
        ("[horizons]\n", "[scoring]\nreps = 50\n\n[horizons]\n"),
    ):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new)
    work = tmp_path / "study"
    work.mkdir()
    shutil.copy(EXAMPLE.parent / "huber_td.py", work / "huber_td.py")
    (work / "study.toml").write_text(text)
    return work / "study.toml"


@pytest.mark.slow  # about 15 s with a warm XLA cache (four rules compile), 50 s cold
def test_the_example_study_runs_end_to_end(tmp_path):
    example = suite_files.load(EXAMPLE)
    assert len(example.eval_seeds) == 40 and example.band == (0.03, 0.3)
    (task,) = example.tasks
    assert task.env_params["gamma"] == 0.95 and task.env_params["num_states"] == 5
    assert {r.label for r in example.rules} == {"td", "td_rescaled", "qtd", "huber_td"}
    path, out = _tiny_example(tmp_path), tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["suite"] == "my_study"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["suite_file"] == {"path": str(path), "sha256": sha}
    rules = {r["label"]: r for r in manifest["configuration"]["rules"]}
    assert rules["huber_td"]["rule"].startswith("huber_td:make_rule")
    assert "plugin" not in rules["huber_td"]  # the file names it; `report` rereads the file
    verdict = (out / "verdict.md").read_text()
    assert "huber_td" in verdict and "qtd" in verdict
    # `td-jax report` finds the study file again through the manifest and re-scores it.
    again = CliRunner().invoke(app, ["report", str(out), "-q"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "manifest.json").read_text())["suite_file"]["sha256"] == sha


def test_the_reference_documents_every_key_and_shows_the_example():
    from td_jax.studies import suite_schema as schema

    doc = (ROOT / "docs" / "study_files.md").read_text()
    keys = {k for s in (*schema.PREDICTION.values(), *schema.CONTROL.values()) for k in s}
    keys |= {*schema.RULE, *schema.TASK["prediction"], *schema.TASK["control"], *schema.CLAIM}
    keys |= {s for s in (*schema.PREDICTION, *schema.CONTROL) if s}
    keys |= set(module_files.HEADER)
    missing = sorted(k for k in keys if f"`{k}`" not in doc and f"[{k}]" not in doc)
    assert not missing, missing
    block = re.findall(r"```toml\n(.*?)```", doc, re.S)[0]
    assert tomllib.loads(block) == tomllib.loads(EXAMPLE.read_text())


def test_the_reference_example_of_a_registered_family_loads(tmp_path, monkeypatch):
    """docs/study_files.md's module registering a Laplace family and its study (its second
    toml block), written side by side, load: the task's reward is the registered family."""
    doc = (ROOT / "docs" / "study_files.md").read_text()
    (module,) = re.findall(r"```python\n# laplace_rewards\.py\n(.*?)```", doc, re.S)
    study = re.findall(r"```toml\n(.*?)```", doc, re.S)[1]
    (tmp_path / "laplace_rewards.py").write_text(module)
    (tmp_path / "laplace_study.toml").write_text(study)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "laplace_rewards", raising=False)
    try:
        suite = suite_files.load(tmp_path / "laplace_study.toml")
    finally:
        sys.modules.pop("laplace_rewards", None)
    (task,) = suite.tasks
    assert task.env_params["reward"]["name"] == "laplace" and registry.get("laplace")
    assert registry.get("laplace").build({"loc": 1.0, "scale": 0.5}).tolist() == [1.0, 0.5]


def test_the_readme_section_quotes_the_example():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Your own study in one file") :]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    example = [line.split("#")[0].strip() for line in EXAMPLE.read_text().splitlines()]
    for line in block.splitlines():
        assert line.split("#")[0].strip() in example, line


LAPLACE = '''
import jax.numpy as jnp
import numpy as np

from td_jax import rewards


def sampler(u1, u2, loc, scale):
    """Laplace(loc, scale) by inverse cdf."""
    return loc - scale * jnp.sign(u1 - 0.5) * jnp.log1p(-2.0 * jnp.abs(u1 - 0.5))


def cdf(x, loc, scale):
    z = (np.asarray(x) - loc) / scale
    return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))


rewards.register("laplace_study_test", sampler, cdf, defaults={"loc": 0.0, "scale": 1.0},
                 overwrite=True)
'''
TINY_STUDY = (
    """
name = "laplace_tiny"
description = "td and a null on a bandit of a registered Laplace family"
imports = ["{module}"]
"""
    + TINY_SETTINGS
    + """\
[search]
max_extensions = 0
[scoring]
reps = 20
[controls]
placebos = []
nulls = ["td_rescaled"]
[[rules]]
label = "td"
rule = "td"
[[rules]]
label = "td_rescaled"
like = "td"
step_factor = 1.37
[[tasks]]
label = "bandit/laplace"
env = "bandit"
params = {{reward = {{name = "laplace_study_test", loc = 1.0, scale = 0.5}}}}
"""
)


@pytest.fixture
def laplace_study(tmp_path, monkeypatch) -> Path:
    """A study file beside the module it imports (a name no other test uses), which
    registers the reward family its task uses."""
    module = "laplace_study_family"
    work = tmp_path / "study"
    work.mkdir()
    (work / f"{module}.py").write_text(LAPLACE)
    (work / "study.toml").write_text(TINY_STUDY.format(module=module))
    monkeypatch.chdir(tmp_path)  # not the study's folder: found from the file's folder
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield work / "study.toml"
    sys.modules.pop(module, None)


def test_a_study_imports_its_reward_family_and_runs_end_to_end(laplace_study, tmp_path):
    out = tmp_path / "out"
    bench = ["bench", "--suite", str(laplace_study), "--out", str(out), "-q"]
    result = CliRunner().invoke(app, bench)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["suite"] == "laplace_tiny"
    assert "laplace_study_test" in manifest["code_digests"]["rewards"]
    assert (out / "verdict.md").stat().st_size > 0
    assert json.loads((out / UNITS / "floors.json").read_text())  # in the parent process
    # `report` loads the file again, its imports included (in a new process too).
    sys.modules.pop("laplace_study_family")
    again = CliRunner().invoke(app, ["report", str(out), "-q"])
    assert again.exit_code == 0, again.output
    assert "laplace_study_family" in sys.modules


@pytest.mark.parametrize(
    ("imports", "pattern"),
    [
        ('["no_such_module_xyz"]', r"imports\[0\]: cannot import module 'no_such_mod.*NotFound"),
        ('["bad-name"]', r"imports\[0\] must be a module name .*got 'bad-name'"),
        ('"laplace_study_family"', r"imports must be an array of strings"),
    ],
)
def test_an_import_that_fails_is_one_line_and_exit_2(laplace_study, tmp_path, imports, pattern):
    text = laplace_study.read_text().replace('["laplace_study_family"]', imports)
    laplace_study.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(laplace_study), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"td-jax: error: {laplace_study}: "), lines
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()


def _module_config(name: str) -> dict:
    """The configuration suite ``name``'s manifest records, from its file's settings."""
    from td_jax.reproductions import _common

    settings = suite_files.settings(name)
    return settings.config() if hasattr(settings, "config") else _common.config_dict(settings)


@pytest.mark.parametrize("name", sorted(MODULE_SUITES))
def test_a_module_suite_file_holds_the_settings_its_code_ran(name):
    text = (BENCHMARKS / f"{name}.toml").read_text()
    raw = tomllib.loads(text)
    assert raw["track"] in ("reproduction", "deep") and raw["module"].startswith("td_jax.")
    suite = catalog.get_suite(name)
    assert suite.name == name and suite.description == raw["description"]
    config = _module_config(name)
    assert _digest(config) == MODULE_SUITES[name]
    manifest = ROOT / "results" / name / "manifest.json"
    if manifest.exists():  # the committed results are this configuration's
        recorded = json.loads(manifest.read_text())["configuration"]
        assert _digest(config) == _digest(recorded)


def test_the_modules_read_their_settings_from_their_files():
    from td_jax.deep import suites as deep_suites
    from td_jax.reproductions import _common, dabney2020, lyle2019, rainbow2021

    assert dabney2020.settings() == suite_files.settings("dabney2020")
    assert isinstance(dabney2020.settings().recordings.trials, tuple)  # arrays as tuples
    assert isinstance(lyle2019.settings().gamma, float) and lyle2019.settings().num_atoms == 51
    assert rainbow2021.rainbow2021() == suite_files.settings("rainbow2021")
    assert deep_suites.deep_control_quick().common["hidden"] == (16,)
    assert deep_suites.deep_minatar().requires_accelerator
    for module in (dabney2020, lyle2019):
        assert _digest(_common.config_dict(module.Config.quick())) == QUICK_SHA256[module.NAME]


# (suite file, text in it, its replacement, what the one-line error must say)
BAD_MODULE_FILES = [
    (
        "dabney2020",
        "num_cells = 40",
        "num_cell = 40",
        r"unknown key 'settings\.num_cell'; "
        r"allowed in \[settings\]: num_cells, rate_seed",
    ),  # fmt: skip
    ("dabney2020", "num_cells = 40\n", "", r"missing key 'settings\.num_cells'"),
    ("dabney2020", "seed = 4", 'seed = "4"', r"settings\.recordings\.seed must be an integer"),
    ("lyle2019", "gamma = 0.9", "gamma = [0.9]", r"settings\.gamma must be a finite number"),
    ("deep_control", "num_seeds = 10", "num_seeds = 1.5", r"settings\.num_seeds must be an int"),
    ("rainbow2021", 'expected = "worse"', 'expected = "bad"', r"expected must be better/worse"),
    ("rainbow2021", "module = ", "modul = ", r"unknown key 'modul'"),
    ("lyle2019", '"td_jax.reproductions.lyle2019"', '"td_jax.nope"', r"module: cannot import"),
]


@pytest.mark.parametrize(("name", "old", "new", "pattern"), BAD_MODULE_FILES)
def test_a_bad_module_suite_file_is_one_line_and_exit_2(tmp_path, name, old, new, pattern):
    path = _copy(tmp_path, name, old, new)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"td-jax: error: {path}: "), lines
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()


def test_a_module_suite_records_its_file_in_the_manifest(tmp_path, monkeypatch):
    """A suite with its own code (a reproduction, the deep suites) writes its manifest
    itself: run from its file by the CLI, the manifest still records the file and its
    sha256; written outside the CLI's block, it records none."""
    from td_jax.engine import store
    from td_jax.engine.specs import CustomSuite
    from td_jax.reproductions import _common

    def run(out: Path, quiet: bool = False) -> dict:
        store.guard(out, "lyle2019")
        units = store.Units(out, log=lambda msg: None)
        config = dataclasses.make_dataclass("Config", [("n", int)])(1)
        return _common.write_manifest(out, "lyle2019", config, {}, units, 0.0, [], {})

    fake = CustomSuite("lyle2019", "a stand-in for the reproduction's runner", run)
    monkeypatch.setattr(catalog, "get_suite", lambda name: fake)
    out = tmp_path / "lyle"
    result = CliRunner().invoke(app, ["bench", "--suite", "lyle2019", "--out", str(out),
                                      "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    path = BENCHMARKS / "lyle2019.toml"
    assert manifest["suite_file"] == {
        "path": "benchmarks/lyle2019.toml",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert "suite_file" not in run(tmp_path / "plain")
