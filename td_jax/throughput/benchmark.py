"""``td-jax throughput``: learner-updates per second, td_jax against two baselines.

For every built-in rule at each learner count (streams x 10 step sizes, online, a 10-state
Gaussian chain, metrics at the final step only) it times ``td_jax.run`` against (a) the same
workload in numpy, vectorised over learners (``numpy_baseline``), and (b) a per-learner
Python loop of jitted rlax calls (``loop_baseline``; its rate does not depend on the learner
count). Then the user workload (``user_workload``: ``td_jax.run`` end to end with default
arguments, first and second call, against numpy of the same size), and each workload row's
rate as a fraction of a roofline (``roofline``, from XLA's cost analysis and the bandwidth
and peak that ``machine`` measures). Each measurement runs in a fresh process (``worker``)
so that its peak memory is its own. Results go to ``throughput.json`` and ``throughput.md``
(``report``), with the issues' targets marked met or not met (``targets``).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import td_jax
from td_jax.throughput import accelerator, machine, report, targets, user_workload, workload

# The directory that holds this td_jax package: a worker process imports the same copy.
PACKAGE_PARENT = pathlib.Path(td_jax.__file__).resolve().parents[1]
JOB_TIMEOUT_S = 1800
# The loop's rate is per learner, so a short run measures it; 200 steps (2,000 updates, a
# fraction of a second to a few) repeated up to 3 times, the fastest kept (worker._best_of).
LOOP_STREAMS, LOOP_STEPS, LOOP_STEPS_QUICK = 1, 200, 10
MILLION = {"learners": 1_000_000, "steps": 10_000, "rules": ("td", "qtd")}


def _measure(job: dict[str, Any], isolate: bool, cache: str | None = "") -> dict[str, Any]:
    """Runs a worker job in a fresh process (``isolate``) or in this one.

    ``cache``: the fresh process's persistent compilation cache (``TD_JAX_CACHE_DIR``):
    ``""`` off, so that compile times are compile times; ``None`` a new empty directory.
    """
    if not isolate:
        from td_jax.throughput.worker import run_job

        return run_job(job)
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # it would take precedence over ours
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="td_jax_cache_") as fresh:
        env["TD_JAX_CACHE_DIR"] = fresh if cache is None else cache
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "td_jax.throughput.worker"],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                env=env,
                timeout=JOB_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {JOB_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    return json.loads(lines[-1])


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[throughput {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _numpy_inputs() -> dict[str, Any]:
    from td_jax.rewards import families
    from td_jax.throughput.numpy_baseline import mrp_tables

    tables = mrp_tables(workload.make_env(), np.asarray(families.KERNEL_OF_FAMILY))
    return {"tables": tables.to_dict(), "step_sizes": workload.STEP_SIZES.tolist()}


def _workload_rows(rules, sizes, num_steps, quick, isolate, progress, numpy_inputs):
    """The workload rows (td_jax and numpy per rule and learner count) and loop rates."""
    rows, loops = [], {}
    for rule in rules:
        baselines = workload.has_baselines(rule)
        if baselines:
            steps_loop = LOOP_STEPS_QUICK if quick else LOOP_STEPS
            _log(progress, f"{rule}: per-learner loop, {LOOP_STREAMS * 10} learners")
            job = {"kind": "loop", "rule": rule, "streams": LOOP_STREAMS, "steps": steps_loop}
            loops[rule] = _measure(job, isolate)
        for learners in sizes:
            np_learners = learners if quick else workload.numpy_learners(rule, learners)
            if num_steps is not None:
                steps = np_steps = int(num_steps)
            elif quick:
                steps = np_steps = workload.QUICK_STEPS
            else:
                steps = workload.num_steps_for(rule, learners)
                np_steps = steps
                if rule in workload.NUMPY_BUDGET:
                    np_steps = workload.num_steps_for(rule, np_learners, numpy=True)
            _log(progress, f"{rule}: {learners:,} learners x {steps} steps: td_jax")
            job = {"kind": "td_jax", "rule": rule, "learners": learners, "steps": steps}
            ours = _measure(job, isolate)
            row = {"rule": rule, "learners": learners, "steps": steps}
            if not baselines:  # a parametric learner: td_jax alone
                rows.append({**row, "td_jax": ours, "numpy": {}})
                continue
            _log(progress, f"{rule}: {np_learners:,} learners x {np_steps} steps: numpy")
            job = {"kind": "numpy", "rule_spec": workload.numpy_rule(rule), **numpy_inputs}
            theirs = _measure({**job, "learners": np_learners, "steps": np_steps}, isolate)
            theirs.update(learners=np_learners, steps=np_steps)
            rows.append({**row, "td_jax": ours, "numpy": theirs})
    return rows, loops


def _user_rows(quick: bool, isolate: bool, progress: bool, numpy_inputs) -> dict[str, Any]:
    """The user-workload rows: two ``td_jax.run`` calls each, and numpy of the same size."""
    num_a = len(user_workload.STEP_SIZES)
    rows = []
    for rule, seeds, steps in user_workload.sizes(quick):
        _log(progress, f"user workload: {rule}, {seeds:,} seeds x {num_a} x {steps:,} steps")
        off = user_workload.times_metrics_off(rule, steps, quick)
        job = {"kind": "user", "rule": rule, "seeds": seeds, "steps": steps, "metrics_off": off}
        ours = _measure(job, isolate, cache=None)  # the first call starts from no cache
        np_steps = steps if quick else user_workload.numpy_steps(rule, seeds, steps)
        _log(progress, f"user workload: {rule}, numpy, {np_steps:,} steps")
        job = {
            "kind": "numpy",
            "rule_spec": workload.numpy_rule(rule),
            **numpy_inputs,
            "step_sizes": list(user_workload.STEP_SIZES),
        }
        theirs = _measure({**job, "learners": seeds * num_a, "steps": np_steps}, isolate)
        theirs.update(learners=seeds * num_a, steps=np_steps)
        rows.append({"rule": rule, "seeds": seeds, "steps": steps, "td_jax": ours, "numpy": theirs})
    return {
        "step_sizes": list(user_workload.STEP_SIZES),
        "defaults": user_workload.run_defaults(),
        "rows": rows,
    }


def _roofline_inputs(rules, quick: bool, isolate: bool, progress: bool) -> dict[str, Any]:
    """Peaks on all cores and on one (a process pinned to it), and XLA's cost per rule."""
    _log(progress, "roofline: memory bandwidth and peak flops")
    job = {"kind": "peaks", "quick": quick}
    peaks = {"all": _measure(job, isolate)}
    if hasattr(os, "sched_getaffinity"):  # one core: always a process of its own
        peaks["one_core"] = _measure({**job, "cpus": [min(os.sched_getaffinity(0))]}, True)
    peaks = {k: v for k, v in peaks.items() if "error" not in v}
    # quick: the first rule alone (its compiles are most of a quick run's roofline time)
    names = list(rules)[:1] if quick else list(rules)
    _log(progress, f"roofline: XLA's cost analysis of {len(names)} rules")
    # The loop-accounting check compiles the whole program twice: the tabular rules' only.
    check = [] if quick else [r for r in names if workload.has_baselines(r)]
    costs = _measure({"kind": "costs", "rules": names, "check": check}, isolate)
    if "error" in costs:  # the whole job failed: record it per rule
        costs = {r: {"error": costs["error"][:300]} for r in names}
    return {"peaks": peaks, "costs": costs}


def run_throughput(
    out_dir: pathlib.Path,
    sizes: Sequence[int] = workload.SIZES,
    rules: Sequence[str] | None = None,
    num_steps: int | None = None,
    quick: bool = False,
    progress: bool | None = None,
    million: bool = False,
    user: bool = True,
    roofline: bool = True,
) -> dict[str, Any]:
    """Measures td_jax and both baselines; writes ``throughput.{json,md}`` in ``out_dir``.

    Args:
      out_dir: the results directory (created if missing).
      sizes: learner counts; each is rounded down to a multiple of the 10 step sizes.
      rules: rule names (default: every built-in rule; ``quick``: td and qtd).
      num_steps: updates per learner of every timed run (default: per rule and size, from
        ``workload.UPDATE_BUDGET``, about 1-5 s of td_jax each).
      quick: a smoke run in this process (default 1,000 learners, 50 steps, td and qtd;
        the user workload td alone at 8 seeds x 50 steps; the roofline of the first rule,
        from small peak measurements, the one-core one in a process pinned to one core), for
        tests; memory figures are the whole process's.
      progress: log each measurement to stderr (default: when stderr is a terminal).
      million: also run ``run_million``'s 1,000,000-learner runs (about half an hour).
      user: also run the user-workload rows (``user_workload``).
      roofline: also measure the machine's peaks and each rule's cost per update.

    Returns:
      The report as written to ``throughput.json``.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    if rules is None:
        rules = workload.QUICK_RULES if quick else (*workload.RULES, *workload.APPROX_RULES)
    if quick and tuple(sizes) == tuple(workload.SIZES):
        sizes = workload.QUICK_SIZES
    step_count = len(workload.STEP_SIZES)
    sizes = [max(step_count, int(n) // step_count * step_count) for n in sizes]
    isolate = not quick
    numpy_inputs = _numpy_inputs()
    started = time.time()
    load_before = os.getloadavg()
    result: dict[str, Any] = {"schema": 2, "quick": quick, "machine": machine.describe()}
    if roofline:  # first: the peaks are best measured before the machine has warmed up
        result.update(_roofline_inputs(rules, quick, isolate, progress))
    rows, loops = _workload_rows(rules, sizes, num_steps, quick, isolate, progress, numpy_inputs)
    if user:
        result["user"] = _user_rows(quick, isolate, progress, numpy_inputs)
    result.update(
        workload={
            "env": {"name": "chain", **workload.ENV},
            "step_sizes": workload.STEP_SIZES.tolist(),
            "mode": "online",
            "rules": {r: workload.describe(r) for r in rules},
            "metrics": "value RMSE at the final step only (checkpoints=[num_steps]), no W1",
        },
        load_average={"before": list(load_before), "after": list(os.getloadavg())},
        seconds=time.time() - started,
        rows=rows,
        loop=loops,
    )
    previous = out_dir / "throughput.json"
    if million:
        result["million"] = _million(progress)
    elif previous.exists() and not quick:
        old = json.loads(previous.read_text())
        if "million" in old:
            result["million"] = old["million"]  # keep the last million-learner run
    result["accelerator"] = accelerator.summary(out_dir)
    result["targets"] = targets.targets(result)
    report.write(out_dir, result)
    return result


def _million(progress: bool) -> dict[str, Any]:
    load_before = os.getloadavg()
    runs = {}
    for rule in MILLION["rules"]:
        _log(progress, f"{rule}: {MILLION['learners']:,} learners x {MILLION['steps']:,} steps")
        job = {"kind": "td_jax", "rule": rule, "learners": MILLION["learners"]}
        runs[rule] = _measure({**job, "steps": MILLION["steps"]}, isolate=True)
    return {
        "learners": MILLION["learners"],
        "steps": MILLION["steps"],
        "machine": machine.describe(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "runs": runs,
    }


def run_million(out_dir: pathlib.Path, progress: bool | None = None) -> dict[str, Any]:
    """Runs td and QTD (m = 32) with 1,000,000 learners for 10,000 steps on the chain.

    Records wall time, run and compile time and peak memory into ``out_dir``'s
    ``throughput.json`` / ``.md`` (kept with an earlier full run's results if there is one).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    path = out_dir / "throughput.json"
    result = json.loads(path.read_text()) if path.exists() else {"rows": [], "loop": {}}
    result["million"] = _million(progress)
    result.setdefault("machine", machine.describe())
    result["accelerator"] = accelerator.summary(out_dir)
    result["targets"] = targets.targets(result)
    report.write(out_dir, result)
    return result
