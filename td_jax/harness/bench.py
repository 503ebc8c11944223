"""Run a suite by the sample-complexity protocol: tune per accuracy, then evaluate.

A unit is one rule on the tasks of one environment that share a step unit. Each unit runs
its step-size grid on the tuning seeds, selects per (task, weighting, eps) the
configuration with the smallest N(eps), extends its grid past any selection on an edge and
reruns the new configurations, then runs only the selected configurations on the
evaluation seeds (``td_jax.harness.tuning``). Every ``td_jax.run`` call is saved atomically
under ``<out>/.units/`` as soon as it finishes, so an interrupted bench resumes on rerun.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from td_jax import envs as env_lib
from td_jax import rules as rule_lib
from td_jax.harness import report, store, tuning
from td_jax.harness.store import UNITS, BenchError
from td_jax.harness.suites import RuleSpec, Suite, TaskSpec
from td_jax.runner import RunResult, run
from td_jax.runner.inputs import check_rule_takes_env, structure
from td_jax.runner.metrics import WEIGHTINGS, checkpoint_density, dense_checkpoints
from td_jax.types import UpdateRule

SLOW_RULES = frozenset({"edrl"})  # an imputation per update: 100-300x slower than TD


def checkpoints(suite: Suite, env: str) -> np.ndarray:
    """Dense log-spaced checkpoints (``suite.per_decade`` a decade) over the env's horizon."""
    return dense_checkpoints(suite.horizon(env), suite.per_decade)


def build_rule(spec: RuleSpec, tasks: dict[str, Any]) -> tuple[UpdateRule, dict[str, Any]]:
    """Makes a suite's rule and returns it with the hyperparameters used.

    ``support="auto"`` covers the tasks' returns: every state's return lies in the support
    with probability >= 1 - ``support_tail`` (default 1e-4), widened by ``support_margin``
    (default 10%) of its width on each side.
    """
    hparams = dict(spec.hparams)
    if hparams.get("support") == "auto":
        del hparams["support"]
        tail = float(hparams.pop("support_tail", 1e-4))
        margin = float(hparams.pop("support_margin", 0.1))
        bounds = np.asarray([env.truth().bounds(tail) for env in tasks.values()])
        lo, hi = float(bounds[:, 0].min()), float(bounds[:, 1].max())
        pad = margin * max(hi - lo, 1.0)
        hparams.update(v_min=lo - pad, v_max=hi + pad)
    if isinstance(spec.rule, str):
        return rule_lib.make(spec.rule, **hparams), hparams
    try:
        rule = spec.rule(**hparams)
    except Exception as err:  # noqa: BLE001 - a plug-in's own failure, reported in one line
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory raised {type(err).__name__}: {err} "
            f"({Path(where.filename).name}, line {where.lineno})"
        ) from None
    if not isinstance(rule, UpdateRule):
        raise BenchError(
            f"plug-in rule {spec.label!r}: its factory must return a "
            f"td_jax.UpdateRule, got {type(rule).__name__}"
        )
    return rule, hparams


class TaskInfo:
    """What the protocol needs of a task: its env, state weights and error scales."""

    def __init__(self, spec: TaskSpec, env: Any, mode: str, horizon: int):
        self.spec, self.env, self.horizon = spec, env, horizon
        self.values = np.asarray(env.true_values(), np.float64)
        self.variances = np.asarray(env.return_variances(), np.float64)
        uniform = np.full(env.num_states, 1.0 / env.num_states)
        visits = env.visit_distribution() if mode == "online" else uniform
        self.weights = {"visit": visits, "uniform": uniform}
        self.scales, self.scale_kind, self.msq = {}, {}, {}
        for name, w in self.weights.items():
            var = float(np.sum(w * self.variances))
            msq = float(np.sum(w * np.square(self.values)))
            self.msq[name] = msq
            if np.isfinite(var) and var > 1e-12:
                self.scales[name], self.scale_kind[name] = var, "return variance"
            elif msq > 1e-12:
                self.scales[name], self.scale_kind[name] = msq, "mean square value"
            else:
                self.scales[name], self.scale_kind[name] = 1.0, "1"
        self.min_visits = float(horizon * visits.min()) if mode == "online" else float(horizon)
        if np.all(np.isfinite(self.variances)):
            self.spread = np.sqrt(self.variances)
        else:  # no finite variance: the interquartile range, in a Gaussian's std units
            q = np.asarray(env.true_quantiles([0.25, 0.75]), np.float64)
            self.spread = (q[:, 1] - q[:, 0]) / 1.349
        # The error of the all-zero initial estimate: an eps at or above it is reached by not
        # learning at all (N = 1 for any small enough step), so such cells are not tuned.
        self.initial_error = {w: self.msq[w] / self.scales[w] for w in self.weights}

    def manifest(self) -> dict[str, Any]:
        v = self.weights["visit"]
        return {
            "horizon": self.horizon,
            "return_std": float(np.sqrt(np.sum(v * self.variances))),
            "rms_value": float(np.sqrt(np.sum(v * np.square(self.values)))),
            "min_expected_visits": self.min_visits,
            "scale": self.scales,
            "scale_kind": self.scale_kind,
            "initial_error": self.initial_error,
        }


class Unit:
    """One rule on the tasks of one environment that share a step unit."""

    def __init__(self, spec: RuleSpec, env: str, unit: float, tasks: list[TaskInfo], suite):
        self.spec, self.env, self.unit, self.tasks = spec, env, unit, tasks
        envs = {t.spec.label: t.env for t in tasks}
        self.rule, self.hparams = build_rule(spec, envs)
        self.envs = envs
        self.num_states = tasks[0].env.num_states
        self.steps = checkpoints(suite, env)
        self.configs = tuning.initial_configs(spec, suite)
        self.tuning: dict[str, dict[tuning.Config, np.ndarray]] = {t.spec.label: {} for t in tasks}
        self.evaluation: dict[str, dict[tuning.Config, np.ndarray]] = {
            t.spec.label: {} for t in tasks
        }
        self.selected: dict[tuple[str, str], list[tuning.Selection]] = {}
        self.rounds = 0
        self.cache: store.Units | None = None  # set by tune_and_evaluate

    axes = tuple(WEIGHTINGS)  # the names of the curves' last axis
    cache_kind = RunResult

    @property
    def name(self) -> str:
        return f"{self.spec.label}__{self.env}__u{self.unit:g}"

    def execute(self, configs, seeds, suite: Suite, tag: str, on_chunk=None) -> RunResult:
        return _execute(self, configs, seeds, suite, tag, on_chunk)

    def curves(self, result: RunResult) -> dict[str, np.ndarray]:
        return _normalised(result, self.tasks)


def _normalised(result: RunResult, tasks: list[TaskInfo]) -> dict[str, np.ndarray]:
    """Per task, f64[A, N, C, W]: the normalised squared errors (inf once diverged)."""
    out = {}
    for e, t in enumerate(tasks):
        per_w = []
        for w in WEIGHTINGS:
            x = result.metrics[WEIGHTINGS[w]][0, e].astype(np.float64) / t.scales[w]
            x = np.where(result.diverged[0, e] | ~np.isfinite(x), np.inf, x)
            per_w.append(x)
        out[t.spec.label] = np.stack(per_w, axis=-1)
    return out


def _execute(unit: Unit, configs, seeds, suite: Suite, tag: str, on_chunk):
    """One ``td_jax.run`` of ``configs`` x ``seeds`` on the unit's tasks, cached."""
    pairs = [c.absolute(unit.unit, unit.num_states) for c in configs]
    key = {
        "rule": unit.spec.config(),
        "hparams": unit.hparams,
        "tasks": [t.spec.config() for t in unit.tasks],
        "configs": pairs,
        "seeds": list(seeds),
        "steps": unit.steps.tolist(),
        "mode": suite.mode,
    }

    def compute() -> RunResult:
        return run(
            {unit.spec.label: unit.rule},
            unit.envs,
            [p[0] for p in pairs],
            list(seeds),
            int(unit.steps[-1]),
            mode=suite.mode,
            checkpoints=unit.steps,
            decay=[p[1] for p in pairs],
            distribution_metric=False,
            progress=on_chunk,
        )

    return unit.cache.get(f"{unit.name}__{tag}", key, compute)


def _select_all(unit: Unit, suite: Suite, eps: np.ndarray, flat: float | None = None) -> set:
    """Selections of every (task, weighting, eps) of a unit; returns the edges left."""
    edges = set()
    for t in unit.tasks:
        for wi, w in enumerate(unit.axes):
            mean = {c: m[:, wi] for c, m in unit.tuning[t.spec.label].items()}
            sel = tuning.select(unit.steps, mean, eps, tie=0.5 * suite.margin, flat=flat)
            trivial = tuning.Selection(None, float("nan"), "", reached=False)
            sel = [trivial if e >= t.initial_error[w] else x
                   for e, x in zip(eps, sel, strict=True)]  # fmt: skip
            unit.selected[(t.spec.label, w)] = sel
            edges |= {(s.config.family, s.edge, s.config.alpha, s.config.c)
                      for s in sel if s.config is not None and s.edge and not s.flat}  # fmt: skip
    return edges


def tune_and_evaluate(unit: Unit, suite: Suite, out: Path | None, on_chunk=None) -> Unit:
    """Tuning rounds (extending the grid past edge selections), then evaluation.

    Once the extension budget is spent, edge selections within the suite's margin of an
    interior configuration take it (``tuning.select``'s ``flat``).
    ``out``: the results directory whose ``.units/`` caches every run (None: no cache).
    ``unit``: anything with ``Unit``'s attributes and its ``execute`` / ``curves``
    (the control suites' units too)."""
    unit.cache = store.Units(out, lambda msg: None, kind=unit.cache_kind)
    eps = np.asarray(suite.eps_grid, np.float64)
    new = list(unit.configs)
    while True:
        result = unit.execute(new, suite.tuning_seeds, suite, f"tune{unit.rounds}", on_chunk)
        for label, curves in unit.curves(result).items():
            for i, c in enumerate(new):
                unit.tuning[label][c] = curves[i].mean(axis=0)  # [C, W] seed-mean
        edges = _select_all(unit, suite, eps)
        new = tuning.extend(unit.configs, edges) if edges else []
        if not new or unit.rounds >= suite.max_extensions:
            break
        unit.configs = unit.configs + new
        unit.rounds += 1
    if edges:
        _select_all(unit, suite, eps, flat=suite.margin)
    chosen = sorted(
        {s.config for sel in unit.selected.values() for s in sel if s.config is not None},
        key=lambda c: (c.family, c.c, c.alpha),
    )
    if chosen:
        result = unit.execute(chosen, suite.eval_seeds, suite, "eval", on_chunk)
        for label, curves in unit.curves(result).items():
            for i, c in enumerate(chosen):
                unit.evaluation[label][c] = curves[i]  # [N, C, W]
    return unit


POLL_SECONDS = 0.2  # how often the main thread wakes while units run (signal handling)


def _progress_bar(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    bar.start()
    return bar


def prepare_tasks(suite: Suite) -> dict[str, TaskInfo]:
    """Every task's env and truth; refuses a task whose horizon leaves a state fewer than
    ``suite.min_visits`` expected visits."""
    infos = {}
    for t in suite.tasks:
        info = TaskInfo(t, env_lib.make(t.env, **t.env_params), suite.mode, suite.horizon(t.env))
        if info.min_visits < suite.min_visits:
            raise BenchError(
                f"suite {suite.name}: task {t.label} gives a state {info.min_visits:.0f} "
                f"expected visits in {info.horizon:,} updates; at least {suite.min_visits} "
                f"are needed: raise horizons[{t.env!r}] to "
                f"{int(np.ceil(suite.min_visits / info.weights['visit'].min())):,} or more"
            )
        infos[t.label] = info
    return infos


def make_units(suite: Suite, infos: dict[str, TaskInfo]) -> list[Unit]:
    """Units: (rule, environment, step unit) with the tasks they hold."""
    units = []
    for spec in suite.rules:
        groups: dict[tuple[str, float], list[TaskInfo]] = {}
        for info in infos.values():
            if spec.envs is not None and info.spec.env not in spec.envs:
                continue
            if spec.tasks is not None and info.spec.label not in spec.tasks:
                continue
            u = tuning.unit_scale(spec, info.values, info.variances, info.weights["visit"],
                                  info.spread)  # fmt: skip
            groups.setdefault((info.spec.env, u), []).append(info)
        units += [Unit(spec, env, u, tasks, suite) for (env, u), tasks in groups.items()]
    # The slowest rules first, so that their long runs overlap everything else.
    return sorted(units, key=lambda u: u.spec.rule not in SLOW_RULES)


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
    log = log or store.logger(quiet)
    out = Path(out)
    start = time.perf_counter()
    infos = prepare_tasks(suite)
    units = make_units(suite, infos)
    # Preflight: every rule must take every task's transitions (plug-ins included), checked
    # by tracing before anything compiles or runs; one task per structure stands for all.
    for unit in units:
        checked = set()
        for name, env in unit.envs.items():
            signature = structure(env)
            if signature not in checked:
                checked.add(signature)
                try:
                    check_rule_takes_env(unit.spec.label, unit.rule, name, env, suite.mode)
                except ValueError as err:
                    if isinstance(unit.spec.rule, str):
                        raise  # a built-in rule that fails its own suite is a bug
                    raise BenchError(f"plug-in {err}") from None
    store.guard(out, suite.name)  # after every check: a refused input writes nothing
    bar = _progress_bar(quiet)
    overall = bar.add_task(f"suite {suite.name}", total=len(units)) if bar else None

    done = {"n": 0, "lock": threading.Lock()}

    def work(unit: Unit) -> Unit:
        t0 = time.perf_counter()
        tune_and_evaluate(unit, suite, out)
        with done["lock"]:
            done["n"] += 1
            n, elapsed = done["n"], time.perf_counter() - start
        eta = elapsed / n * (len(units) - n)
        log(
            f"  [{n}/{len(units)}] {unit.name}: {time.perf_counter() - t0:.1f} s, "
            f"{len(unit.configs)} configurations, {unit.rounds} extension(s), "
            f"{unit.cache.computed} run(s) computed, {unit.cache.reused} reused; "
            f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s"
        )
        return unit

    started = start_floors(units, out)  # a child process, beside the units
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(work, unit) for unit in units}
        while pending:
            # A timed wait: the main thread returns to the interpreter every POLL_SECONDS, so
            # a Ctrl-C that the OS delivered to another thread (XLA's, a worker's) is acted
            # on at once, not when the unit the main thread waits on happens to finish.
            done_now, pending = concurrent.futures.wait(
                pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done_now:
                future.result()  # a failed unit raises here
                if bar is not None:
                    bar.advance(overall)
    except BaseException:
        # Ctrl-C (or a failed unit): stop now. Queued units are cancelled; finished ones are
        # on disk; the CLI ends the process without waiting for those in flight.
        pool.shutdown(wait=False, cancel_futures=True)
        if started[3] is not None:
            started[3].kill()
        raise
    finally:
        if bar is not None:
            bar.stop()
    pool.shutdown(wait=True)
    floor_table = finish_floors(started)
    stage = store.staging_dir(out)  # the report is written whole, then published as a set
    # The headline verdict ends with the control answer of the results beside it.
    root = out.parent if suite.name == "default" else None
    manifest = report.write_all(suite, stage, units, infos, floor_table, results_root=root)
    manifest.update(
        runs_computed=sum(u.cache.computed for u in units),
        runs_reused=sum(u.cache.reused for u in units),
        checkpoint_density=min(checkpoint_density(u.steps) for u in units),
        tasks={label: info.manifest() for label, info in infos.items()},
    )
    total = store.Units(out, log)
    total.seconds = sum(u.cache.seconds for u in units)
    total.computed, total.reused = manifest["runs_computed"], manifest["runs_reused"]
    manifest = store.write_manifest(stage, manifest, total, start)
    store.publish(stage, out)
    for d in manifest["diverged_cells"]:  # loud, even when quiet
        print(f"td-jax: warning: rule {d['rule']} diverged on task {d['task']} ({d['diverged']} "
              f"of {d['seeds']} evaluation seeds); its cells say so", file=sys.stderr)  # fmt: skip
    return manifest


def _floor_jobs(units: list[Unit], cache: dict) -> tuple[list, dict]:
    """(every (rule label, task, key), the jobs not in the cache {key: job})."""
    keyed, jobs = [], {}
    for unit in units:
        name = unit.spec.rule if isinstance(unit.spec.rule, str) else None
        for t in unit.tasks:
            key = store.digest({"rule": name, "hparams": unit.hparams, "task": t.spec.config()})
            keyed.append((unit.spec.label, t, key))
            if key not in cache and name is not None:
                jobs[key] = {
                    "rule": name, "hparams": unit.hparams, "env": t.spec.env,
                    "env_params": dict(t.spec.env_params),
                    "weights": {w: x.tolist() for w, x in t.weights.items()},
                }  # fmt: skip
    return keyed, jobs


def start_floors(units: list[Unit], out: Path):
    """Starts the floors (numpy fixed-point iterations, minutes for large m, holding the GIL)
    in a child process beside the units; ``finish_floors`` collects them."""
    path = out / UNITS / "floors.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    keyed, jobs = _floor_jobs(units, cache)
    proc = None
    if jobs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "td_jax.harness.floors"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        proc.stdin.write(json.dumps(jobs, default=str))
        proc.stdin.close()
    return path, cache, keyed, proc


def finish_floors(started) -> dict[tuple[str, str], dict | None]:
    """Each (rule, task)'s bias floor in normalised units per weighting (cached on disk)."""
    path, cache, keyed, proc = started
    if proc is not None:
        output = proc.stdout.read()
        if proc.wait() != 0:
            raise RuntimeError(f"the floors process failed (exit {proc.returncode})")
        cache.update(json.loads(output))
    table = {}
    for label, t, key in keyed:
        raw = cache.get(key)
        table[(label, t.spec.label)] = None if raw is None else {
            w: raw[w] / t.scales[w] for w in raw}  # fmt: skip
    store.write_atomic(path, json.dumps(cache))
    return table
