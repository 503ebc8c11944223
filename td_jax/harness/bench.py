"""Run a suite: one resumable unit per (rule, environment), then score, report and plot.

Each unit (a rule on every task of one environment, all step sizes and seeds) is one call
of ``td_jax.run`` and is saved atomically under ``<out>/.units/`` as soon as it finishes,
so an interrupted bench (Ctrl-C, kill -9) resumes on rerun without recomputing it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

import td_jax
from td_jax import envs as env_lib
from td_jax import rules as rule_lib
from td_jax.harness import report
from td_jax.harness.suites import RuleSpec, Suite, TaskSpec
from td_jax.runner import RunResult, log_checkpoints, run
from td_jax.runner.inputs import check_rule_takes_env
from td_jax.types import UpdateRule

UNITS = ".units"


class BenchError(ValueError):
    """A problem with the user's input: reported as one line, exit status 2."""


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoints(suite: Suite) -> np.ndarray:
    """Log-spaced checkpoints plus every budget."""
    points = log_checkpoints(suite.num_steps, suite.num_checkpoints)
    return np.unique(np.concatenate([points, np.asarray(suite.budgets, np.int64)]))


def build_rule(spec: RuleSpec, tasks: dict[str, Any]) -> UpdateRule:
    """Makes a suite's rule; ``support="auto"`` covers the tasks' returns with a 10% margin."""
    hparams = dict(spec.hparams)
    if hparams.get("support") == "auto":
        del hparams["support"]
        bounds = np.asarray([env.return_bounds() for env in tasks.values()])
        lo, hi = float(bounds[:, 0].min()), float(bounds[:, 1].max())
        pad = 0.1 * max(hi - lo, 1.0)
        hparams.update(v_min=lo - pad, v_max=hi + pad)
    if isinstance(spec.rule, str):
        return rule_lib.make(spec.rule, **hparams)
    rule = spec.rule(**hparams)
    if not isinstance(rule, UpdateRule):
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory must return a "
            f"td_jax.UpdateRule, got {type(rule).__name__}"
        )
    return rule


def _units(suite: Suite) -> list[tuple[RuleSpec, str, list[TaskSpec]]]:
    by_env: dict[str, list[TaskSpec]] = {}
    for task in suite.tasks:
        by_env.setdefault(task.env, []).append(task)
    return [(r, env, tasks) for r in suite.rules for env, tasks in by_env.items()]


def _guard_directory(out: Path, suite: Suite) -> None:
    for marker in (out / "manifest.json", out / UNITS / "suite.json"):
        if marker.exists():
            try:
                found = json.loads(marker.read_text()).get("suite")
            except (OSError, json.JSONDecodeError):
                found = None
            if found != suite.name:
                raise BenchError(
                    f"output directory {out} holds results of suite {found!r}, not "
                    f"{suite.name!r}; choose another --out"
                )


def _progress_bar(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar.start()
    return bar


def run_suite(
    suite: Suite,
    out: Path,
    *,
    quiet: bool = False,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) ``suite`` into ``out`` and writes every report. Returns the manifest.

    Args:
      suite: what to run.
      out: the results directory (created; refused if it holds another suite's results).
      quiet: no progress bar or log lines.
      workers: units run concurrently (compilation overlaps with computation).
      log: where log lines go (default: stderr unless quiet).
    """
    log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr))
    out = Path(out)
    _guard_directory(out, suite)
    (out / UNITS).mkdir(parents=True, exist_ok=True)
    write_atomic(out / UNITS / "suite.json", json.dumps({"suite": suite.name}))
    start = time.perf_counter()
    ckpts = checkpoints(suite)
    seeds = sorted(suite.tuning_seeds + suite.eval_seeds)
    env_cache: dict[str, Any] = {}
    units = _units(suite)
    bar = _progress_bar(quiet)
    overall = bar.add_task(f"suite {suite.name}", total=len(units)) if bar else None
    # Build envs (truth is computed once per task) and rules first, in the main thread.
    prepared = []
    for spec, env_name, tasks in units:
        envs = {}
        for t in tasks:
            if t.label not in env_cache:
                env_cache[t.label] = env_lib.make(t.env, **t.env_params)
            envs[t.label] = env_cache[t.label]
        rule = build_rule(spec, envs)
        step_sizes = spec.step_sizes or suite.step_sizes
        key = _hash(
            {
                "rule": spec.config(),
                "tasks": [t.config() for t in tasks],
                "step_sizes": step_sizes,
                "seeds": seeds,
                "steps": suite.num_steps,
                "checkpoints": ckpts.tolist(),
                "mode": suite.mode,
                "version": td_jax.__version__,
            }
        )
        prepared.append(
            (
                spec,
                env_name,
                envs,
                rule,
                step_sizes,
                key,
                out / UNITS / f"{spec.label}__{env_name}.npz",
            )
        )

    # Preflight: every rule must take every task's transitions (plug-ins included), checked
    # by tracing before anything compiles or runs.
    # Tasks of one structure (pytree, shapes, dtypes: what lets them batch) give the rule
    # the same transitions' types, so one task per structure stands for the others.
    for spec, _, envs, rule, *_ in prepared:
        checked = set()
        for name, env in envs.items():
            leaves, treedef = jax.tree.flatten(env)
            signature = (treedef, tuple((np.shape(x), np.result_type(x)) for x in leaves))
            if signature not in checked:
                checked.add(signature)
                check_rule_takes_env(spec.label, rule, name, env, suite.mode)
    for stale in (out / UNITS).glob("*.tmp"):
        stale.unlink()  # a save interrupted by kill -9; its unit is recomputed

    def compute(item) -> tuple[RunResult, bool]:
        spec, env_name, envs, rule, step_sizes, key, path = item
        result = _load_unit(path, key)
        if result is not None:
            return result, False
        task = bar.add_task(f"  {spec.label} on {env_name}", total=1) if bar else None

        def on_chunk(done, total):
            if bar is not None:
                bar.update(task, completed=done, total=total)

        t0 = time.perf_counter()
        result = run(
            {spec.label: rule},
            envs,
            step_sizes,
            seeds,
            suite.num_steps,
            mode=suite.mode,
            checkpoints=ckpts,
            keep_distributions=True,
            distribution_metric="final",  # tables report the final W1 only
            progress=on_chunk,
        )
        result.info.update(unit_hash=key, unit_seconds=time.perf_counter() - t0)
        result.save(path)  # atomic: a killed bench never leaves a half-written unit
        if bar is not None:
            bar.remove_task(task)
        return result, True

    # Units run two at a time: XLA compilation dominates small units and releases the GIL.
    results, computed, reused = [], 0, 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for result, fresh in pool.map(compute, prepared):
                results.append(result)
                computed, reused = computed + fresh, reused + (not fresh)
                if bar is not None:
                    bar.advance(overall)
    finally:
        if bar is not None:
            bar.stop()
    log(f"{computed} unit(s) computed, {reused} reused from {out / UNITS}")
    manifest = report.write_all(suite, out, results, ckpts)
    compute_seconds = sum(r.info.get("unit_seconds", 0.0) for r in results)
    manifest.update(
        environment_info(),
        wall_seconds=time.perf_counter() - start,
        compute_seconds=compute_seconds,
        units_computed=computed,
        units_reused=reused,
    )
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=str))
    return manifest


def _load_unit(path: Path, key: str) -> RunResult | None:
    if not path.exists():
        return None
    try:
        result = RunResult.load(path)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # unreadable: recompute (atomic writes make this rare)
    return result if result.info.get("unit_hash") == key else None


def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                # Benchmark outputs under results/ do not make the source dirty.
                ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def environment_info() -> dict[str, Any]:
    """Versions, git commit and device, for manifests."""
    import importlib.metadata as md

    versions = {}
    for pkg in (
        "jax",
        "jaxlib",
        "numpy",
        "scipy",
        "pandas",
        "rlax",
        "rliable",
        "flax",
        "optax",
        "chex",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    versions["td_jax"] = td_jax.__version__
    versions["python"] = platform.python_version()
    return {
        "versions": versions,
        "git": _git_commit(),
        "device": {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
        },
    }


def suite_summary(suite: Suite) -> dict[str, Any]:
    """The manifest's description of a suite."""
    cfg = suite.config()
    cfg["num_learners"] = (
        sum(len(r.step_sizes or suite.step_sizes) for r in suite.rules)
        * len(suite.tasks)
        * (len(suite.tuning_seeds) + len(suite.eval_seeds))
    )
    return cfg
