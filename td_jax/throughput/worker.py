"""One throughput measurement, run in a process of its own: ``python -m td_jax.throughput.worker``.

Reads a JSON job on stdin and prints a JSON result as the last line of stdout. A fresh
process per measurement makes its peak memory (``ru_maxrss``) its own, and keeps the numpy
baseline free of jax. Jobs:
  * ``{"kind": "td_jax", "rule", "learners", "steps"}``: ``td_jax.run`` on the workload;
  * ``{"kind": "numpy", "rule_spec", "tables", "step_sizes", "learners", "steps"}``:
    baseline (a);
  * ``{"kind": "loop", "rule", "streams", "steps"}``: baseline (b), per-learner rlax calls;
  * ``{"kind": "user", "rule", "seeds", "steps", "metrics_off"}``: a user-workload row,
    two identical default-argument ``td_jax.run`` calls (``user_workload.measure``);
  * ``{"kind": "peaks", "quick"}``: memory bandwidth and peak flops (``machine``);
  * ``{"kind": "costs", "rules", "check"}``: XLA's cost per update (``roofline``), and the
    whole program's at two step counts for the rules in ``check``.
A job may name ``cpus``: the process pins itself to them before anything else runs.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

import numpy as np


def rss_mb() -> float:
    """Resident memory of this process now, MB (from /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (``ru_maxrss`` is KB on Linux)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


# A run shorter than this is repeated (at most REPEATS times, while the repeats take under
# REPEAT_BUDGET_S) and the fastest kept: short timings are the ones that other processes
# on the machine disturb most.
REPEAT_BELOW_S, REPEATS, REPEAT_BUDGET_S = 3.0, 3, 15.0


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _best_of(measure) -> dict[str, Any]:
    """Runs ``measure() -> dict`` (with ``run_seconds``) once or a few times; keeps the best."""
    runs, started = [], time.perf_counter()
    while True:
        runs.append(measure())
        elapsed = time.perf_counter() - started
        short = runs[-1]["run_seconds"] < REPEAT_BELOW_S
        if not short or len(runs) >= REPEATS or elapsed > REPEAT_BUDGET_S:
            break
    best = min(runs, key=lambda r: r["run_seconds"])
    out = {**best, "repeats": len(runs), "run_seconds_all": [r["run_seconds"] for r in runs]}
    if "compile_seconds" in best:  # repeats reuse the first run's compiled program
        out["compile_seconds"] = max(r["compile_seconds"] for r in runs)
    return out


def time_td_jax(rule: str, learners: int, steps: int) -> dict[str, Any]:
    """One timed ``td_jax.run`` of the workload: rates, compile time, cores busy, error.

    ``learners`` is rounded down to whole streams of ``workload.STEP_SIZES``. Shared by the
    CPU benchmark (below) and ``td_jax.throughput.accelerator``.
    """
    import td_jax
    from td_jax.throughput import workload

    streams = learners // len(workload.STEP_SIZES)
    t0 = time.perf_counter()
    result = td_jax.run(
        {rule: workload.make_rule(rule)},
        {"chain": workload.make_env()},
        workload.STEP_SIZES,
        streams,
        steps,
        checkpoints=[steps],
        distribution_metric=False,
        progress=False,
    )
    info = result.info
    return {
        "learners": streams * len(workload.STEP_SIZES),
        "steps": steps,
        "run_seconds": info["run_seconds"],
        "compile_seconds": sum(info["compile_seconds"].values()),
        "wall_seconds": time.perf_counter() - t0,
        # Cores kept busy while running: XLA may split large kernels over the cores.
        "cores_busy": info.get("run_cpu_seconds", float("nan")) / info["run_seconds"],
        "learner_updates": info["learner_updates"],
        "ups": info["learner_updates"] / info["run_seconds"],
        "value_error": float(np.nanmean(result.value_error)),
        "diverged_share": float(np.mean(result.diverged)),
    }


def td_jax_job(job: dict[str, Any]) -> dict[str, Any]:
    import jax

    before = rss_mb()
    learners, steps = int(job["learners"]), int(job["steps"])
    out = _best_of(lambda: time_td_jax(job["rule"], learners, steps))
    out.update(rss_before_mb=before, peak_rss_mb=peak_rss_mb())
    out["devices"] = [str(d) for d in jax.devices()]
    return out


def numpy_job(job: dict[str, Any]) -> dict[str, Any]:
    from td_jax.throughput.numpy_baseline import Tables, run_numpy
    from td_jax.throughput.numpy_rules import Rule

    spec = {
        k: np.asarray(v, np.float32) if isinstance(v, list) else v
        for k, v in job["rule_spec"].items()
    }
    rule, tables = Rule(**spec), Tables.from_dict(job["tables"])
    alphas = np.asarray(job["step_sizes"], np.float32)
    streams = int(job["learners"]) // len(alphas)
    before = rss_mb()

    def measure() -> dict[str, Any]:
        cpu0 = _cpu_seconds()
        out = run_numpy(rule, tables, streams, alphas, int(job["steps"]), seed=0)
        return {
            "run_seconds": out["run_seconds"],
            "cores_busy": (_cpu_seconds() - cpu0) / out["run_seconds"],
            "learner_updates": out["learner_updates"],
            "ups": out["learner_updates"] / out["run_seconds"],
            "value_error": float(np.mean(out["value_error"])),
        }

    out = _best_of(measure)
    out.update(rss_before_mb=before, peak_rss_mb=peak_rss_mb(), numpy=np.__version__)
    return out


def loop_job(job: dict[str, Any]) -> dict[str, Any]:
    from td_jax.throughput.loop_baseline import run_loop

    return _best_of(lambda: run_loop(job["rule"], int(job["streams"]), int(job["steps"])))


def user_job(job: dict[str, Any]) -> dict[str, Any]:
    from td_jax.throughput import user_workload

    before = rss_mb()
    out = user_workload.measure(
        job["rule"], int(job["seeds"]), int(job["steps"]), bool(job["metrics_off"])
    )
    return {**out, "rss_before_mb": before, "peak_rss_mb": peak_rss_mb()}


def peaks_job(job: dict[str, Any]) -> dict[str, Any]:
    from td_jax.throughput import machine

    return machine.measure_peaks(quick=bool(job.get("quick", False)))


def costs_job(job: dict[str, Any]) -> dict[str, Any]:
    from td_jax.throughput import roofline

    return roofline.rule_costs(list(job["rules"]), check=list(job.get("check", [])))


JOBS = {
    "td_jax": td_jax_job,
    "numpy": numpy_job,
    "loop": loop_job,
    "user": user_job,
    "peaks": peaks_job,
    "costs": costs_job,
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Runs one job in this process."""
    return JOBS[job["kind"]](job)


def main() -> None:
    job = json.loads(sys.stdin.read())
    if job.get("cpus") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(job["cpus"]))  # before jax starts its thread pools
    print(json.dumps(run_job(job)), flush=True)


if __name__ == "__main__":
    main()
