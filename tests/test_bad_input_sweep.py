"""Issue 23's sweep: bad inputs across the command line and the Python API, each refused in
one line (exit 2, or a ValueError) before anything compiles or allocates, with no traceback.

tests/test_bad_inputs.py holds td_jax.run's, the rewards', rules' and MRPs' cases; these are
the MDP files and tables, control, the deep agents' configurations, resource guards (memory
estimated before allocating), output directories and full disks. Commands run in-process
(typer's CliRunner): a subprocess would reload JAX for every case.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import td_jax
from td_jax import envs, rules, strict
from td_jax.cli import app
from td_jax.control import run_control
from td_jax.deep import agents
from td_jax.engine import store

GiB = 2**30
INF = float("inf")
ENOSPC = "No space left on device"


@pytest.fixture(autouse=True)
def _machine_of_16_gib(monkeypatch):
    """The resource guards' ceiling is half of physical memory: fix it at 8 GiB, so that
    the cases do not depend on the machine that runs them."""
    monkeypatch.setattr(strict, "physical_memory", lambda: 16 * GiB, raising=False)


def _one_line(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- the command line -------------------------------------------------------------------------

MDP_OK = {"transitions": [[[[1.0, 0]]]], "rewards": [[0.0]], "gamma": 0.9}


def _mdp(**fields) -> dict:
    """An MDP file's contents: one state, one action, with ``fields`` replaced."""
    return {**MDP_OK, **fields}


def _outcome(*outcome) -> dict:
    return _mdp(transitions=[[[list(outcome)]]])


# (args, pattern of the one line, an --mdp-file's contents or None). "{mdp}" in args is the
# file; "{tmp}" a fresh directory.
CLI_ROWS = [
    # control: MDP files (issue 23 item 2)
    (
        ["control", "--mdp-file", "{mdp}"],
        r"next states \(transitions\[0\]\[0\]\[0\]\[1\]\) "
        r"must be integers in \[0, 1\), got 1\.7",
        _outcome(1.0, 1.7),
    ),
    (["control", "--mdp-file", "{mdp}"], r"next states .* got None", _outcome(1.0, None)),
    (["control", "--mdp-file", "{mdp}"], r"next states .* got 1e\+20", _outcome(1.0, 1e20)),
    (["control", "--mdp-file", "{mdp}"], r"next states .* got True", _outcome(1.0, True)),
    (["control", "--mdp-file", "{mdp}"], r"next states .* got '0'", _outcome(1.0, "0")),
    (
        ["control", "--mdp-file", "{mdp}"],
        r"terminal flags \(transitions\[0\]\[0\]\[0\]\[2\]\) "
        r"must be True or False, got 'false'",
        _outcome(1.0, 0, "false"),
    ),
    (["control", "--mdp-file", "{mdp}"], r"terminal flags .* got 1", _outcome(1.0, 0, 1)),
    (["control", "--mdp-file", "{mdp}"], r"terminal flags .* got None", _outcome(1.0, 0, None)),
    (
        ["control", "--mdp-file", "{mdp}"],
        r"gamma must be a finite number, got 'x'",
        _mdp(gamma="x"),
    ),
    (["control", "--mdp-file", "{mdp}"], r"unknown keys \['seed'\]", _mdp(seed=1)),
    (
        ["control", "--mdp-file", "{tmp}/absent.json"],
        r"cannot read --mdp-file .*absent\.json",
        None,
    ),
    # control: parameters, step sizes, seeds (items 2 and 4)
    (
        ["control", "--param", "num_states=200000"],
        r"risky_safe: an MDP of 200,000 states x 2 "
        r"actions \(its exact truth\) needs about 1\.75 TiB of memory, more than the 8 GiB",
        None,
    ),
    (
        [
            "control",
            "--mdp",
            "garnet_mdp",
            "--param",
            "num_actions=200",
            "--param",
            "num_states=3000",
        ],
        r"garnet_mdp: an MDP of 3,000 states x 200 actions .* 13\.7 GiB",
        None,
    ),
    (["control", "--mdp", "gridworld", "--param", "size=200"], r"40,000 states x 4 actions", None),
    (
        ["control", "--param", "num_states=1.5"],
        r"num_states must be an integer >= 1, got 1\.5",
        None,
    ),
    (["control", "--param", "num_states"], r"--param must look like name=value", None),
    (
        ["control", "--step-size", "1e39"],
        r"run_control: step sizes must lie in float32's normal "
        r"range \[1\.175e-38, 3\.403e\+38\] .*got 1e\+39",
        None,
    ),
    (["control", "--step-size", "1e-50"], r"float32's normal range .*got 1e-50", None),
    (["control", "--step-size", "nan"], r"step sizes must be finite and > 0, got nan", None),
    (["control", "--epsilon", "1.5"], r"epsilon must be in \[0, 1\], got 1\.5", None),
    (["control", "--steps", "0"], r"run_control: num_steps must be an integer.* got 0", None),
    (["control", "--rule", "nope"], r"unknown rule 'nope'", None),
    (["control", "--seeds", "x"], r"Invalid value for '--seeds'", None),
    # throughput --out: bench's output-directory checks (item 8)
    (
        ["throughput", "--quick", "--out", "/proc/td_jax_results"],
        r"cannot write results to /proc/td_jax_results",
        None,
    ),
    (["throughput", "--quick", "--out", "{tmp}/file"], r"output directory .*file is a file", None),
    (["throughput", "--quick", "--out", " "], r"--out is empty", None),
    # deep: typed, finite configurations and the network's memory (items 2 and 4)
    (
        ["deep", "--set", "learning_rate=1e999"],
        r"dqn: learning_rate must be a finite number, "
        r"got inf",
        None,
    ),
    (["deep", "--set", "adam_eps=inf"], r"adam_eps must be a finite number, got 'inf'", None),
    (
        ["deep", "--set", "learning_starts=True"],
        r"learning_starts must be an integer >= 0, "
        r"got True",
        None,
    ),
    (["deep", "--set", "double_q=1"], r"double_q must be True or False, got 1", None),
    (["deep", "--set", "hidden=(64, True)"], r"hidden must be a tuple of positive integers", None),
    (
        ["deep", "--agent", "c51", "--set", "num_atoms=1000000000000"],
        r"c51: a network with num_atoms=1,000,000,000,000, .* needs about .* TiB",
        None,
    ),
    (["deep", "--agent", "c51", "--set", "v_max=1e999"], r"v_max must be a finite number", None),
    (
        ["deep", "--agent", "qrdqn", "--set", "huber_kappa=1e999"],
        r"huber_kappa must be a finite number, got inf",
        None,
    ),
    (["deep", "--set", "hidden=(1000000000,)"], r"a network with hidden=\(1000000000,\)", None),
    (
        ["deep", "--seeds", "20000"],
        r"dqn: 20000 learner\(s\) on CartPole-v1 with hidden=\(120, "
        r"84\), buffer_size=10,000 needs about",
        None,
    ),
    # bench, compare, list
    (["bench", "--suite", "quick", "--rule", "my:rule:x"], r"--rule|cannot import", None),
    (["bench", "--suite", "quick", "--frobnicate"], r"No such option: --frobnicate", None),
    (["compare", "{tmp}/absent", "{tmp}"], r"absent is not a directory", None),
    (["compare", "{tmp}"], r"Missing argument 'dir_b'", None),
    (["list", "extra"], r"Got unexpected extra argument\(s\) \(extra\)", None),
    (["lists"], r"No such command 'lists'", None),
]


def _cli_param(row):
    args, pattern, mdp = row
    label = " ".join(args) + ("" if mdp is None else f" {json.dumps(mdp)}")
    return pytest.param(args, pattern, mdp, id=label[:90])


@pytest.mark.parametrize(("args", "pattern", "mdp"), [_cli_param(r) for r in CLI_ROWS])
def test_bad_cli_input_is_one_line_and_exit_2(tmp_path, args, pattern, mdp):
    (tmp_path / "file").write_text("x")
    if mdp is not None:
        (tmp_path / "task.json").write_text(json.dumps(mdp))
    args = [a.replace("{mdp}", str(tmp_path / "task.json")).replace("{tmp}", str(tmp_path))
            for a in args]  # fmt: skip
    result = CliRunner().invoke(app, args)
    lines = _one_line(result.output)
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("td-jax: error: "), result.output
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- the Python API ---------------------------------------------------------------------------


def _table(*outcome):
    return lambda: envs.tabular_mdp([[[outcome]]], [[0.0]], 0.9)


def _control(**kwargs):
    base = {"step_sizes": [0.1], "num_seeds": 1, "num_steps": 10}
    return lambda: run_control("td", envs.make_mdp("risky_safe"), **(base | kwargs))


def _config(agent, **overrides):
    return lambda: agents.make_config(agent, **overrides)


API_ROWS = [
    # envs.tabular_mdp: next states and terminal flags as given, never int() / bool() of them
    (
        "next 1.7",
        _table(1.0, 1.7),
        r"tabular_mdp: next states .* must be integers in \[0, 1\), "
        r"got 1\.7",
    ),
    ("next None", _table(1.0, None), r"next states .* got None"),
    ("next 1e20", _table(1.0, 1e20), r"next states .* got 1e\+20"),
    ("next -1", _table(1.0, -1), r"next states .* got -1"),
    ("next np.float64", _table(1.0, np.float64(0.0)), r"next states .* got np\.float64\(0\.0\)"),
    ("terminal 'false'", _table(1.0, 0, "false"), r"terminal flags .* True or False, got 'false'"),
    ("terminal 0", _table(1.0, 0, 0), r"terminal flags .* got 0"),
    # resource guards: an MDP's exact truth, a rule's pairwise temporaries, a network
    (
        "risky_safe 200000",
        lambda: envs.make_mdp("risky_safe", num_states=200_000),
        r"risky_safe: an MDP of 200,000 states x 2 actions .* 1\.75 TiB .* more than the 8 GiB",
    ),
    (
        "garnet_mdp 10**6",
        lambda: envs.make_mdp("garnet_mdp", num_states=10**6),
        r"garnet_mdp: an MDP of 1,000,000 states x 3 actions",
    ),
    (
        "tabular_mdp 40000",
        lambda: envs.tabular_mdp([[[(1.0, 0)]]] * 40_000, [[0.0]] * 40_000, 0.9),
        r"tabular_mdp: an MDP of 40,000 states x 1 actions .* 59\.6 GiB",
    ),
    # prediction environments (MRPs): their outcome tables and exact truth, before allocating
    (
        "chain 200000",
        lambda: envs.make("chain", num_states=200_000),
        r"chain: an MRP of 200,000 states \(its outcome tables and exact truth\) needs about "
        r"1\.46 TiB of memory, more than the 8 GiB",
    ),
    ("envs.chain 200000", lambda: envs.chain(num_states=200_000), r"chain: an MRP of 200,000"),
    (
        "random_walk 200001",
        lambda: envs.make("random_walk", num_states=200_001),
        r"random_walk: an MRP of 200,001 states x 2 outcomes .* 1\.46 TiB",
    ),
    (
        "random_mrp 100000",
        lambda: envs.make("random_mrp", num_states=100_000),
        r"random_mrp: an MRP of 100,000 states x 3 outcomes .* 373 GiB",
    ),
    (
        "continuous_walk 200000",
        lambda: envs.make("continuous_walk", num_states=200_000),
        r"continuous_walk: an MRP of 200,000 states x 80,001 outcomes .* 3\.78 TiB",
    ),
    (  # the outcome tables count: the truth alone (0.93 GiB) would fit
        "continuous_walk outcomes",
        lambda: envs.make("continuous_walk", num_states=5001, max_jump=1.0),
        r"an MRP of 5,001 states x 10,001 outcomes .* 8\.38 GiB",
    ),
    (
        "envs.build 20000",
        lambda: envs.build(
            "mine",
            outcomes=[[(1.0, 0, True, 0)]] * 20_000,
            rewards=[0.0],
            reward_labels=("r",),
            start_probs=[1.0] + [0.0] * 19_999,
            gamma=0.9,
            episodic=True,
        ),
        r"mine: an MRP of 20,000 states .* 14\.9 GiB",
    ),
    (
        "td_jax.run chain 200000",
        lambda: td_jax.run(["td"], envs.make("chain", num_states=200_000), [0.1], 1, 10),
        r"chain: an MRP of 200,000 states",
    ),
    (
        "td_jax.run 2**31 seeds",
        lambda: td_jax.run(["td"], envs.make("chain", num_states=3), [0.1], 2**31, 10),
        r"a run of 1 rule\(s\) x 1 env\(s\) x 1 step size\(s\) x 2,147,483,648 seed\(s\) "
        r"x 10 checkpoint\(s\) \(its result arrays\) needs about 660 GiB",
    ),
    (
        "control 2**31 seeds",
        _control(num_seeds=2**31),
        r"run_control: 1 rule\(s\) x 1 MDP\(s\) x 1 step size\(s\) x 2,147,483,648 seed\(s\)"
        r" \(their metrics and final tables\) needs about",
    ),
    (
        "ctd 10**12",
        lambda: rules.make("ctd", num_atoms=10**12),
        r"ctd: num_atoms=1,000,000,000,000 \(one update's pairwise \[K, K\] temporaries\) needs",
    ),
    ("qtd 10**6", lambda: rules.make("qtd", num_quantiles=10**6), r"qtd: num_quantiles=1,000,000"),
    ("edrl 10**9", lambda: rules.make("edrl", num_expectiles=10**9), r"edrl: num_expectiles="),
    ("dopamine 10**9", lambda: rules.make("dopamine_quantile", num_cells=10**9), r"num_cells="),
    ("c51 10**12", _config("c51", num_atoms=10**12), r"c51: a network with num_atoms=1,000,"),
    ("qrdqn 10**7", _config("qrdqn", num_quantiles=10**7), r"qrdqn: a network with num_quant"),
    ("dqn hidden", _config("dqn", hidden=(10**9,)), r"dqn: a network with hidden=\(1000000000,\)"),
    ("dqn buffer", _config("dqn", buffer_size=10**12, total_steps=10**13), r"buffer_size=1,000,"),
    # control: the same step-size and seed checks as td_jax.run
    ("control 1e39", _control(step_sizes=[1e39]), r"run_control: step sizes must lie in float32"),
    ("control 1e-50", _control(step_sizes=[0.1, 1e-50]), r"float32's normal range .* 1e-50"),
    ("control inf", _control(step_sizes=[INF]), r"step sizes must be finite and > 0, got inf"),
    ("control '0.1'", _control(step_sizes=["0.1"]), r"step_sizes must be a non-empty 1-D seq"),
    (
        "control seed index 2**32",
        _control(num_seeds=[0, 2**32]),
        r"run_control: num_seeds must be a count or distinct seed indices in \[0, 2\*\*32\)",
    ),
    ("control seed indices 0.5", _control(num_seeds=[0.5]), r"distinct seed indices in \[0,"),
    (
        "control num_seeds 2**32+1",
        _control(num_seeds=2**32 + 1),
        r"num_seeds must be an integer <= 4294967296 \(keys fold seed indices in as uint32\)",
    ),
    ("control num_seeds True", _control(num_seeds=True), r"num_seeds must be a count or"),
    (
        "control seed 2**32",
        _control(seed=2**32),
        r"run_control: seed must be an integer <= 4294967295 \(keys fold it in as uint32\)",
    ),
    ("control seed -1", _control(seed=-1), r"run_control: seed must be an integer >= 0, got -1"),
    ("control seed 1.0", _control(seed=1.0), r"seed must be an integer >= 0, got 1\.0"),
    ("control epsilon True", _control(epsilon=True), r"epsilon must be in \[0, 1\], got True"),
    ("control steps True", _control(num_steps=True), r"num_steps must be an integer.* got True"),
    (
        "control steps 10.0",
        _control(num_steps=10.0),
        r"run_control: num_steps must be an integer >= 1, got 10\.0",
    ),
    (
        "control steps 2**31",
        _control(num_steps=2**31),
        r"run_control: num_steps must be an integer <= 2147483647 \(int32 step counts\)",
    ),
    (
        "control num_checkpoints 0",
        _control(num_checkpoints=0),
        r"run_control: num_checkpoints must be an integer >= 1, got 0",
    ),
    # deep configurations: finite and typed
    ("dqn lr inf", _config("dqn", learning_rate=INF), r"dqn: learning_rate must be a finite"),
    (
        "dqn adam_eps inf",
        _config("dqn", adam_eps=INF),
        r"adam_eps must be a finite number, got inf",
    ),
    (
        "dqn learning_starts True",
        _config("dqn", learning_starts=True),
        r"dqn: learning_starts must be an integer >= 0, got True",
    ),
    ("dqn batch_size True", _config("dqn", batch_size=True), r"batch_size must be an integer >= 1"),
    (
        "dqn gamma nan",
        _config("dqn", gamma=float("nan")),
        r"gamma must be a finite number, got nan",
    ),
    ("dqn epsilon_end '0'", _config("dqn", epsilon_end="0"), r"epsilon_end must be a finite num"),
    ("dqn double_q 0", _config("dqn", double_q=0), r"double_q must be True or False, got 0"),
    ("dqn hidden 1.5", _config("dqn", hidden=(64, 1.5)), r"hidden must be a tuple of positive"),
    ("c51 v_max inf", _config("c51", v_max=INF), r"c51: v_max must be a finite number, got inf"),
    ("c51 v_min -inf", _config("c51", v_min=-INF), r"v_min must be a finite number, got -inf"),
    ("c51 num_atoms True", _config("c51", num_atoms=True), r"num_atoms must be an integer >= 2"),
    ("qrdqn kappa inf", _config("qrdqn", huber_kappa=INF), r"huber_kappa must be a finite num"),
    ("qrdqn num_quantiles 2.0", _config("qrdqn", num_quantiles=2.0), r"an integer >= 1, got 2\.0"),
]


@pytest.mark.parametrize(("call", "pattern"), [pytest.param(c, p, id=i) for i, c, p in API_ROWS])
def test_bad_api_input_is_a_one_line_value_error(call, pattern):
    with pytest.raises(ValueError) as info:
        call()
    assert "\n" not in str(info.value), str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_control_and_run_share_the_step_size_vocabulary():
    """One check for step sizes: control's message is td_jax.run's, prefixed by its owner."""
    import td_jax

    for bad in ([1e39], [1e-50], [0.0], ["0.1"]):
        with pytest.raises(ValueError) as control:
            _control(step_sizes=bad)()
        with pytest.raises(ValueError) as predict:
            td_jax.run(["td"], envs.make("chain", num_states=3), bad, 1, 10)
        assert str(control.value) == f"run_control: {predict.value}"


def test_control_and_run_share_the_step_count_vocabulary():
    """One check for num_steps: control's message is td_jax.run's, prefixed by its owner."""
    for bad in (0, True, 10.0, "10", 2**31):
        with pytest.raises(ValueError) as control:
            _control(num_steps=bad)()
        with pytest.raises(ValueError) as predict:
            td_jax.run(["td"], envs.make("chain", num_states=3), [0.1], 1, bad)
        assert str(control.value) == f"run_control: {predict.value}"


def test_control_checkpoints_follow_num_checkpoints_whatever_the_seeds():
    """The default checkpoints are num_checkpoints log-spaced counts, with a count of seeds
    or a list of seed indices (d134b1a read the seeds' count as the checkpoints' number, and
    a list of seed indices as None: a TypeError)."""
    from td_jax.runner.metrics import log_checkpoints

    mdp = envs.make_mdp("risky_safe")
    for seeds in (3, [0, 5]):
        runs = run_control("td", mdp, [0.1], seeds, 1000, num_checkpoints=7)
        np.testing.assert_array_equal(runs.checkpoints, log_checkpoints(1000, 7))


def test_the_memory_ceiling_is_half_of_physical_memory(monkeypatch):
    assert strict.memory_ceiling() == 8 * GiB
    monkeypatch.undo()  # the machine's own, from os.sysconf
    assert 0 < strict.memory_ceiling() <= strict.physical_memory()
    envs.make_mdp("garnet_mdp", num_states=300)  # what the suites use is far below it
    envs.make("random_mrp", num_states=300)
    envs.make("continuous_walk")
    agents.make_config("c51")
    rules.make("qtd", num_quantiles=512)


# -- full disks: one line naming the path and the errno's text, nothing half-written -----------


class _Result:
    """A unit's result: anything with info and save(path) (``store.Units``' contract)."""

    def __init__(self):
        self.info = {}

    def save(self, path):
        from td_jax.runner.result import write_npz

        return write_npz(path, {"x": np.zeros(1000)})


def _full_disk(monkeypatch):
    """Every write of data fails as a full disk does: ENOSPC from write(), no file name."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, ENOSPC)

    monkeypatch.setattr(np, "savez_compressed", full)
    monkeypatch.setattr(Path, "write_text", full)


def _leftovers(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_a_unit_saved_on_a_full_disk_names_its_path_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / store.UNITS).mkdir()
    units = store.Units(tmp_path, log=lambda msg: None)
    _full_disk(monkeypatch)
    with pytest.raises(OSError) as info:
        units.get("td_chain", {"rule": "td"}, _Result)
    assert info.value.errno == errno.ENOSPC and info.value.strerror == ENOSPC
    assert info.value.filename == str(tmp_path / store.UNITS / "td_chain.npz")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("what", ["unit", "report"])
def test_bench_on_a_full_disk_is_one_line_and_exit_2(tmp_path, monkeypatch, what):
    from td_jax.engine import driver as bench_lib

    out = tmp_path / "out"

    def run_suite(suite, target, quiet, **_):  # the suite's writes, on a disk that is full
        store.guard(target, suite.name)
        _full_disk(monkeypatch)
        if what == "unit":
            store.Units(target, log=lambda msg: None).get("td_chain", {"rule": "td"}, _Result)
        else:
            store.write_atomic(target / "verdict.md", "# verdict\n")

    monkeypatch.setattr(bench_lib, "run_suite", run_suite)
    result = CliRunner().invoke(app, ["bench", "--suite", "quick", "--out", str(out), "--quiet"])
    lines = _one_line(result.output)
    path = out / store.UNITS / "td_chain.npz" if what == "unit" else out / "verdict.md"
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0] == f"td-jax: error: cannot write {path}: {ENOSPC}"
    assert not path.exists()
    assert [f for f in _leftovers(out) if "tmp" in f] == []


def test_an_os_error_without_a_file_name_names_the_output_directory(tmp_path, monkeypatch):
    from td_jax.engine import driver as bench_lib

    def run_suite(suite, target, quiet, **_):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(bench_lib, "run_suite", run_suite)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--suite", "quick", "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output == f"td-jax: error: cannot write {out}: Read-only file system\n"


def test_throughput_on_a_full_disk_is_one_line_and_exit_2(tmp_path, monkeypatch):
    from td_jax.throughput import benchmark as tp

    def run_throughput(out_dir, **kwargs):  # after the output directory's checks
        _full_disk(monkeypatch)
        store.write_atomic(Path(out_dir) / "throughput.json", "{}")

    monkeypatch.setattr(tp, "run_throughput", run_throughput)
    result = CliRunner().invoke(app, ["throughput", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output == f"td-jax: error: cannot write {tmp_path}/throughput.json: {ENOSPC}\n"
    assert _leftovers(tmp_path) == []


def test_deep_memory_is_estimated_on_the_environment(monkeypatch):
    """The config's bound takes one input and one action; the run's takes the environment's
    observation and the learners vectorised together (here 2 seeds x 2 learning rates)."""
    from td_jax.deep import train

    config = agents.make_config("c51")  # about 17 MB a learner
    monkeypatch.setattr(strict, "physical_memory", lambda: 64 * 2**20)
    train.make_train(config, "CartPole-v1")  # one learner fits in 32 MiB
    with pytest.raises(ValueError, match=r"c51: 4 learner\(s\) on CartPole-v1 with num_atoms="):
        train.run_batch(config, "CartPole-v1", range(2), [1e-3, 3e-4], lrs_per_call=None)
