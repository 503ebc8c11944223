"""The prediction track: a unit is one rule on the tasks of one environment that share a
step unit, run by ``td_jax.run`` on exact MRPs.

The driver (``engine.driver``) makes the units, runs each through the one tuning loop
(``engine.search``), computes the bias floors in a child process beside them, and writes
the report (``engine.scoring.report``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from td_jax.engine import floors as floor_lib
from td_jax.engine import store, tuning
from td_jax.engine.scoring import report
from td_jax.engine.specs import RuleSpec, Suite
from td_jax.engine.store import UNITS, BenchError
from td_jax.engine.tasks import TaskInfo, normalised, stream_mask
from td_jax.engine.units import build_rule, sweeps
from td_jax.rewards import registry as reward_registry
from td_jax.runner import RunResult, run
from td_jax.runner.inputs import check_rule_takes_env, structure
from td_jax.runner.metrics import WEIGHTINGS, checkpoint_density, dense_checkpoints


def checkpoints(suite: Suite, env: str) -> np.ndarray:
    """Dense log-spaced checkpoints (``suite.per_decade`` a decade) over the env's horizon."""
    return dense_checkpoints(suite.horizon(env), suite.per_decade)


class Unit:
    """One rule on the tasks of one environment: with one step unit (``unit``), or, in a
    refining suite (whose rounds give every task its own sweep), each task with its own
    (``units``: {task label: unit}; ``unit`` is then the smallest), so that a return-unit
    rule over rewards of many scales runs as one program, not one per scale."""

    def __init__(self, spec: RuleSpec, env: str, unit: float | dict[str, float],
                 tasks: list[TaskInfo], suite):  # fmt: skip
        self.spec, self.env, self.tasks = spec, env, tasks
        self.units = dict(unit) if isinstance(unit, dict) and len(set(unit.values())) > 1 else {}
        self.unit = min(unit.values()) if isinstance(unit, dict) else unit
        envs = {m.spec.label: m.env for t in tasks for m in t.members}
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
        # Re-selection bootstrap: per-seed tuning curves (estimand axes, f32[N, C, A]),
        # each cell's candidates, and each band cell's compass status per family.
        self.tuning_curves: dict[str, dict[tuning.Config, np.ndarray]] = {
            t.spec.label: {} for t in tasks
        }
        self.candidates: dict[tuple[str, str], list[list[tuning.Config]]] = {}
        self.coverage: dict[tuple[str, str], list[float]] = {}  # per cell (``_candidates``)
        self.search: dict[tuple[str, str, int], dict[str, str]] = {}
        self.rounds = 0
        self.refinements = 0
        self.pad: int | None = None  # the tuning runs' padded size (refining suites)
        self.cache: store.Units | None = None  # set by tune_and_evaluate
        self.policy = store.policy()  # taken here, in the main thread (``store.Units``)
        self.cancel = threading.Event()  # set by the driver when another unit fails

    axes = tuple(WEIGHTINGS)  # the names of the curves' last axis
    cache_kind = RunResult

    @property
    def name(self) -> str:
        if self.units:
            return f"{self.spec.label}__{self.env}__u{self.unit:g}-{max(self.units.values()):g}"
        return f"{self.spec.label}__{self.env}__u{self.unit:g}"

    def execute(
        self, configs, seeds, suite: Suite, tag: str, on_chunk=None, size=None
    ) -> RunResult:
        """``configs`` x ``seeds`` on the unit's tasks: one list for all, or ``{task label:
        list}``, each task its own (``_execute``)."""
        return _execute(self, configs, seeds, suite, tag, on_chunk, size)

    def curves(self, result: RunResult) -> dict[str, np.ndarray]:
        return normalised(result, self.tasks)


def _execute(unit: Unit, configs, seeds, suite: Suite, tag: str, on_chunk, size=None):
    """One ``td_jax.run`` of ``configs`` x ``seeds`` on the unit's tasks, cached.

    ``configs``: a list run on every task, or ``{task label: list}``: each task its own
    configurations, in one program (the runner's per-env step sizes), each row padded to
    ``size`` (default ``padded_count`` of the longest); a task's first
    ``len(configs[label])`` rows are its.
    """
    pairs, steps, decay = sweeps(unit, configs, size)
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
            steps,
            list(seeds),
            int(unit.steps[-1]),
            mode=suite.mode,
            checkpoints=unit.steps,
            decay=decay,
            distribution_metric=False,
            progress=on_chunk,
            streams=stream_mask(unit.tasks, seeds),
            compile_streams=tuning_streams(unit, suite),
        )

    return unit.cache.get(
        f"{unit.name}__{tag}", key, compute, rule=unit.spec.rule, rewards=list(unit.envs.values())
    )


def tuning_streams(unit, suite: Suite) -> int:
    """The (task, seed) streams of the unit's tuning runs: every run of the unit (its
    evaluation on more seeds too) compiles its program for that many, so that one program
    serves them all (``td_jax.run``'s ``compile_streams``). A unit whose tasks are of
    several structures (one program each) shares only where a structure's tuning streams
    reach that count."""
    seeds = tuning.tuning_seeds_of(unit.spec, suite)
    mask = stream_mask(unit.tasks, seeds)
    return int(mask.sum()) if mask is not None else len(seeds) * len(unit.envs)


def make_units(suite: Suite, infos: dict[str, TaskInfo]) -> list[Unit]:
    """Units: (rule, environment, step unit) with the tasks they hold."""
    units = []
    for spec in suite.rules:
        envs = {m.spec.label: m.env for t in infos.values() if runs_on(spec, t.spec)
                for m in t.members}  # fmt: skip
        spec = spec.resolved(build_rule(spec, envs)[0].facts) if envs else spec
        # A refining suite runs every task its own sweep, so one unit per environment
        # holds tasks of any step unit; otherwise the tasks of a unit share one.
        per_task = suite.max_refinements > 0
        groups: dict[tuple, dict[str, TaskInfo]] = {}
        scales: dict[str, float] = {}
        for info in infos.values():
            if not runs_on(spec, info.spec):
                continue
            u = tuning.unit_scale(spec, info.values, info.variances, info.weights["visit"],
                                  info.spread)  # fmt: skip
            scales[info.spec.label] = u
            key = (info.spec.env,) if per_task else (info.spec.env, u)
            groups.setdefault(key, {})[info.spec.label] = info
        for key, tasks in groups.items():
            unit = {label: scales[label] for label in tasks} if per_task else key[1]
            units.append(Unit(spec, key[0], unit, list(tasks.values()), suite))
    # The costliest rules first, so that their long runs overlap everything else.
    return sorted(units, key=lambda u: -u.rule.facts.relative_cost)


def runs_on(spec: RuleSpec, task) -> bool:
    """Whether the rule runs on the task (``task``: a TaskSpec; its env and label)."""
    if spec.envs is not None and task.env not in spec.envs:
        return False
    return spec.tasks is None or task.label in spec.tasks


def preflight(units: list[Unit], mode: str) -> None:
    """Every rule must take every task's transitions (plug-ins included), checked by
    tracing before anything compiles or runs; one task per structure stands for all."""
    for unit in units:
        checked = set()
        for name, env in unit.envs.items():
            signature = structure(env)
            if signature not in checked:
                checked.add(signature)
                try:
                    check_rule_takes_env(unit.spec.label, unit.rule, name, env, mode)
                except ValueError as err:
                    if isinstance(unit.spec.rule, str):
                        raise  # a built-in rule that fails its own suite is a bug
                    raise BenchError(f"plug-in {err}") from None


def _floor_jobs(units: list[Unit], cache: dict) -> tuple[list, dict, dict]:
    """(every (rule label, task, key), the jobs not in the cache for the child {key: job},
    and those computed here {key: (rule, hparams, env, weights)}: a task that uses a
    registered reward family (``td_jax.rewards.register``), which the child, building
    tasks from their configurations, does not have. A floor's key holds the digests of the
    registered families its task uses, so that their code's change recomputes it."""
    keyed, jobs, local = [], {}, {}
    for unit in units:
        name = unit.spec.rule if isinstance(unit.spec.rule, str) else None
        for t in unit.tasks:
            keys = []
            for m in t.members:  # a pooled task: each instance's floor
                families = reward_registry.digests(m.env)
                what = {"rule": name, "hparams": unit.hparams, "task": m.spec.config()}
                key = store.digest({**what, "rewards": families} if families else what)
                keys.append((m, key))
                if key in cache or name is None:
                    continue
                if families:
                    local[key] = (name, unit.hparams, m.env, m.weights)
                else:
                    jobs[key] = {
                        "rule": name, "hparams": unit.hparams, "env": m.spec.env,
                        "env_params": dict(m.spec.env_params),
                        "weights": {w: x.tolist() for w, x in m.weights.items()},
                    }  # fmt: skip
            keyed.append((unit.spec.label, t, keys))
    return keyed, jobs, local


def start_floors(units: list[Unit], out: Path) -> tuple[Callable[[], dict], Callable[[], None]]:
    """Starts the floors (numpy fixed-point iterations, minutes for large m, holding the GIL)
    in a child process beside the units; those of tasks with registered reward families
    are computed here when the units are done (``finish_floors``). Returns (finish: waits
    for them and returns each (rule, task)'s floors; cancel: kills the child)."""
    path = out / UNITS / "floors.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    keyed, jobs, local = _floor_jobs(units, cache)
    proc = None
    if jobs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "td_jax.engine.floors"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        proc.stdin.write(json.dumps(jobs, default=str))
        proc.stdin.close()
    started = (path, cache, keyed, proc, local)
    return (lambda: finish_floors(started)), (lambda: proc is not None and proc.kill())


def finish_floors(started: tuple) -> dict[tuple[str, str], dict | None]:
    """Each (rule, task)'s bias floor in normalised units per weighting (cached on disk)."""
    path, cache, keyed, proc, local = started
    if proc is not None:
        output = proc.stdout.read()
        if proc.wait() != 0:
            raise RuntimeError(f"the floors process failed (exit {proc.returncode})")
        cache.update(json.loads(output))
    for key, (rule, hparams, env, weights) in local.items():
        cache[key] = floor_lib.floor(rule, hparams, env, weights)
    table = {}
    for label, t, keys in keyed:
        raws = [(m, cache.get(key)) for m, key in keys]
        # Normalised by each instance's own scale; a pooled task's floor is their mean.
        table[(label, t.spec.label)] = None if any(r is None for _, r in raws) else {
            w: float(np.mean([r[w] / m.scales[w] for m, r in raws])) for w in raws[0][1]
        }  # fmt: skip
    store.write_atomic(path, json.dumps(cache))
    return table


def write_report(suite: Suite, stage: Path, units: list[Unit], infos: dict[str, TaskInfo],
                 floor_table: dict, out: Path) -> dict[str, Any]:  # fmt: skip
    """The prediction report into ``stage`` (``scoring.report.write_all``); the manifest's
    entries so far. The headline verdict ends with the control answer of the results
    beside it; a ``--reuse-stale`` run lists the stale units it reused."""
    root = out.parent if suite.name == "default" else None
    stale = store.stale_reused(out) if store.reusing_stale() else None
    manifest = report.write_all(suite, stage, units, infos, floor_table, root, stale)
    manifest.update(
        runs_computed=sum(u.cache.computed for u in units),
        runs_reused=sum(u.cache.reused for u in units),
        checkpoint_density=min(checkpoint_density(u.steps) for u in units),
        tasks={label: info.manifest() for label, info in infos.items()},
    )
    return manifest
