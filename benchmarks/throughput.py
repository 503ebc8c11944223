"""``td-jax throughput``: learner-updates per second, td_jax against two baselines.

For every built-in rule at each learner count (streams x 10 step sizes, online, a 10-state
Gaussian chain, metrics at the final step only) it times ``td_jax.run`` against (a) the same
workload in numpy, vectorised over learners (``benchmarks.numpy_baseline``), and (b) a
per-learner Python loop of jitted rlax calls (``benchmarks.loop_baseline``; its rate does not
depend on the learner count). Each measurement runs in a fresh process (``benchmarks.worker``)
so that its peak memory is its own. Results go to ``throughput.json`` and ``throughput.md``
(``benchmarks.report``), with the issue's targets marked met or not met.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import report, workload

ROOT = pathlib.Path(__file__).resolve().parents[1]
JOB_TIMEOUT_S = 1800
# The loop's rate is per learner, so a short run measures it; 200 steps (2,000 updates, a
# fraction of a second to a few) repeated up to 3 times, the fastest kept (worker._best_of).
LOOP_STREAMS, LOOP_STEPS, LOOP_STEPS_QUICK = 1, 200, 10
MILLION = {"learners": 1_000_000, "steps": 10_000, "rules": ("td", "qtd")}


def _measure(job: dict[str, Any], isolate: bool) -> dict[str, Any]:
    """Runs a worker job in a fresh process (``isolate``) or in this one."""
    if not isolate:
        from benchmarks.worker import run_job

        return run_job(job)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
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
    from benchmarks.numpy_baseline import mrp_tables
    from td_jax.rewards import families

    tables = mrp_tables(workload.make_env(), np.asarray(families.KERNEL_OF_FAMILY))
    return {"tables": tables.to_dict(), "step_sizes": workload.STEP_SIZES.tolist()}


def run_throughput(
    out_dir: pathlib.Path,
    sizes: Sequence[int] = workload.SIZES,
    rules: Sequence[str] | None = None,
    num_steps: int | None = None,
    quick: bool = False,
    progress: bool | None = None,
    million: bool = False,
) -> dict[str, Any]:
    """Measures td_jax and both baselines; writes ``throughput.{json,md}`` in ``out_dir``.

    Args:
      out_dir: the results directory (created if missing).
      sizes: learner counts; each is rounded down to a multiple of the 10 step sizes.
      rules: rule names (default: every built-in rule; ``quick``: td and qtd).
      num_steps: updates per learner of every timed run (default: per rule and size, from
        ``workload.UPDATE_BUDGET``, about 1-5 s of td_jax each).
      quick: a smoke run in this process (default 1,000 learners, 50 steps, td and qtd;
        under 30 s), for tests; its memory figures are the whole process's.
      progress: log each measurement to stderr (default: when stderr is a terminal).
      million: also run ``run_million``'s 1,000,000-learner runs (about half an hour).

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
    rows, loops = [], {}
    for rule in rules:
        baselines = workload.has_baselines(rule)
        if baselines:
            steps_loop = LOOP_STEPS_QUICK if quick else LOOP_STEPS
            _log(progress, f"{rule}: per-learner loop, {LOOP_STREAMS * step_count} learners")
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
    result = {
        "schema": 1,
        "quick": quick,
        "machine": report.machine_info(),
        "workload": {
            "env": {"name": "chain", **workload.ENV},
            "step_sizes": workload.STEP_SIZES.tolist(),
            "mode": "online",
            "rules": {r: workload.describe(r) for r in rules},
            "metrics": "value RMSE at the final step only (checkpoints=[num_steps]), no W1",
        },
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "seconds": time.time() - started,
        "rows": rows,
        "loop": loops,
    }
    result["targets"] = report.targets(result)
    previous = out_dir / "throughput.json"
    if million:
        result["million"] = _million(progress)
    elif previous.exists() and not quick:
        old = json.loads(previous.read_text())
        if "million" in old:
            result["million"] = old["million"]  # keep the last million-learner run
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
        "machine": report.machine_info(),
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
    result.setdefault("machine", report.machine_info())
    result["targets"] = report.targets(result)
    report.write(out_dir, result)
    return result
