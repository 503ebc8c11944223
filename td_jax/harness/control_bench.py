"""Run a control suite by the sample-complexity protocol (SCIENCE.md sections 7 and 8).

The prediction harness's protocol, lifted: a unit is one rule on the MDPs of one kind, mode
and step unit; it runs its step-size grid on the tuning seeds (``td_jax.control
.run_controls``), selects per (task, metric, eps) the configuration with the smallest N(eps)
on the seed-mean curve, extends the grid past edge selections, then runs the selections on
the evaluation seeds (``harness.bench.tune_and_evaluate``). N(eps), S(eps) against
Q-learning with a paired bootstrap (common random numbers: every rule and step size of a
seed draws the same transitions in synchronous mode) and Benjamini-Hochberg are the
prediction report's (``harness.report``), with the metrics in place of the weightings.
Every run is cached under ``<out>/.units/``: an interrupted bench resumes on rerun.
"""

from __future__ import annotations

import concurrent.futures
import functools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from td_jax import envs as env_lib
from td_jax.control import ControlRuns, run_controls
from td_jax.harness import bench, store, tuning
from td_jax.harness.control_suites import ControlSuite
from td_jax.harness.control_truth import ControlTask, control_floor
from td_jax.harness.errors import BenchError
from td_jax.harness.suites import CustomSuite, RuleSpec
from td_jax.rules.tabular import TabularState
from td_jax.runner.metrics import dense_checkpoints


class ControlUnit:
    """One rule on the tasks of one MDP kind, mode and step unit (``bench.Unit``'s shape)."""

    cache_kind = ControlRuns

    def __init__(self, spec: RuleSpec, key: tuple, unit: float, tasks: list[ControlTask],
                 suite: ControlSuite):  # fmt: skip
        self.spec, self.unit, self.tasks = spec, unit, tasks
        self.mdp_name, self.mode = key[0], key[1]
        self.axes = tuple(suite.metrics)
        # The support of "auto" covers the returns of every pair under the optimal policy.
        self.rule, self.hparams = bench.build_rule(spec, {t.spec.label: t.pairs for t in tasks})
        state = self.rule.init(jax.random.key(0), 2)
        if self.mode == "synchronous" and not isinstance(state, TabularState):
            raise BenchError(
                f"rule {spec.label!r} cannot run on the synchronous task {tasks[0].spec.label!r}:"
                " synchronous control updates a table of statistics (a TabularState, as "
                f"rules.tabular_rule makes); its state is a {type(state).__name__}"
            )
        # Harmonic decay d = c * unit * (pairs updated per step): 1 synchronous, S*A online.
        self.num_states = 1 if self.mode == "synchronous" else tasks[0].num_pairs
        self.steps = dense_checkpoints(tasks[0].horizon, suite.per_decade)
        self.configs = tuning.initial_configs(spec, suite)
        self.tuning = {t.spec.label: {} for t in tasks}
        self.evaluation = {t.spec.label: {} for t in tasks}
        self.selected: dict[tuple[str, str], list[tuning.Selection]] = {}
        # Refining suites (as ``bench.Unit``): per-seed tuning curves of the estimand's
        # metrics, each cell's candidates, the compass searches' status, padded run size.
        self.tuning_curves = {t.spec.label: {} for t in tasks}
        self.candidates: dict[tuple[str, str], list[list[tuning.Config]]] = {}
        self.coverage: dict[tuple[str, str], list[float]] = {}  # per cell (``_candidates``)
        self.search: dict[tuple[str, str, int], dict[str, str]] = {}
        self.rounds = 0
        self.refinements = 0
        self.pad: int | None = None
        self.cache: store.Units | None = None
        self.policy = store.policy()  # taken in the main thread (``store.Units``)

    @property
    def name(self) -> str:
        return f"{self.spec.label}__{self.mode}_{self.mdp_name}__u{self.unit:g}"

    def execute(self, configs, seeds, suite: ControlSuite, tag: str, on_chunk=None, size=None):
        """``configs`` x ``seeds`` on the unit's MDPs, cached: one list for every MDP, or
        ``{task label: list}``, each MDP its own sweep padded to ``size`` (``bench.sweeps``),
        in one program (``run_controls``' per-MDP step sizes)."""
        pairs, steps, decay = bench.sweeps(self, configs, size)
        key = {
            "rule": self.spec.config(), "hparams": self.hparams,
            "tasks": [t.spec.config() for t in self.tasks], "configs": pairs,
            "seeds": list(seeds), "steps": self.steps.tolist(), "epsilon": suite.epsilon,
        }  # fmt: skip

        def compute() -> ControlRuns:
            return run_controls(
                {self.spec.label: self.rule}, {t.spec.label: t.mdp for t in self.tasks},
                steps, list(seeds), int(self.steps[-1]), mode=self.mode,
                epsilon=suite.epsilon, checkpoints=self.steps, decay=decay,
            )  # fmt: skip

        # The rule's code joins the key: a plug-in edited between runs is recomputed.
        return self.cache.get(f"{self.name}__{tag}", key, compute, rule=self.spec.rule)

    def curves(self, runs: ControlRuns) -> dict[str, np.ndarray]:
        """Per task, f64[configs, seeds, C, metrics]: the normalised metrics, inf from the
        first checkpoint where the learner's Q error is not finite (it diverged) on: a
        NaN table's greedy policy is some policy, so its value gap alone would look
        finite."""
        out = {}
        for e, t in enumerate(self.tasks):
            bad = ~np.isfinite(np.asarray(runs.metrics["q_error"][0, e]))
            bad = np.logical_or.accumulate(bad, axis=-1)[..., None]
            per = [np.asarray(runs.metrics[m][0, e], np.float64) / t.scale for m in self.axes]
            x = np.stack(per, axis=-1)
            out[t.spec.label] = np.where(np.isfinite(x) & ~bad, x, np.inf)
        return out


def prepare_tasks(suite: ControlSuite) -> dict[str, ControlTask]:
    """Every task's MDP and exact truth (a bad parameter is the user's error: exit 2)."""
    out = {}
    for spec in suite.tasks:
        try:
            mdp = env_lib.make_mdp(spec.mdp, **spec.params)
        except ValueError as err:
            raise BenchError(f"suite {suite.name}, task {spec.label}: {err}") from None
        out[spec.label] = ControlTask(spec, mdp, suite.horizon(spec))
    return out


def make_units(suite: ControlSuite, tasks: dict[str, ControlTask]) -> list[ControlUnit]:
    units = []
    for spec in suite.rules:
        mine = [t for t in tasks.values() if spec.envs is None or t.spec.mdp in spec.envs]
        if mine:  # the step unit and grid scale the rule's facts leave to it
            rule, _ = bench.build_rule(spec, {t.spec.label: t.pairs for t in mine})
            spec = spec.resolved(rule.facts)
        groups: dict[tuple, list[ControlTask]] = {}
        for t in mine:
            uniform = np.full(t.num_pairs, 1.0 / t.num_pairs)
            u = tuning.unit_scale(spec, t.pairs.true_values(), t.pairs.return_variances(),
                                  uniform, t.spread)  # fmt: skip
            key = (t.spec.mdp, t.spec.mode, t.num_pairs, t.horizon, u)
            groups.setdefault(key, []).append(t)
        units += [ControlUnit(spec, key, key[-1], ts, suite) for key, ts in groups.items()]
    return units


def _floors(units: list[ControlUnit]) -> dict[tuple[str, str], dict | None]:
    table = {}
    for unit in units:
        name = unit.spec.rule if isinstance(unit.spec.rule, str) else None
        for t in unit.tasks:
            table[(unit.spec.label, t.spec.label)] = (
                None if name is None else control_floor(name, unit.hparams, t)
            )
    return table


def run_control_suite(
    suite: ControlSuite,
    out: Path,
    *,
    quiet: bool = False,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) a control suite into ``out`` and writes every report."""
    from td_jax.harness import control_report

    log = log or store.logger(quiet)
    out = Path(out)
    start = time.perf_counter()
    tasks = prepare_tasks(suite)
    units = make_units(suite, tasks)
    suite = bench.resolved(suite, units)  # the manifest says what each rule was tuned on
    store.guard(out, suite.name)
    done = {"n": 0, "lock": threading.Lock()}

    def work(unit: ControlUnit) -> ControlUnit:
        t0 = time.perf_counter()
        bench.tune_and_evaluate(unit, suite, out)
        with done["lock"]:
            done["n"] += 1
            n, elapsed = done["n"], time.perf_counter() - start
        log(f"  [{n}/{len(units)}] {unit.name}: {time.perf_counter() - t0:.1f} s, "
            f"{len(unit.configs)} configurations, {unit.rounds} extension(s), "
            f"{unit.cache.computed} run(s) computed, {unit.cache.reused} reused; "
            f"elapsed {elapsed:.0f} s, ETA {elapsed / n * (len(units) - n):.0f} s")  # fmt: skip
        return unit

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(work, unit) for unit in units}
        floor_table = _floors(units)  # numpy, in the main thread, while the units run
        while pending:
            done_now, pending = concurrent.futures.wait(
                pending, timeout=bench.POLL_SECONDS,
                return_when=concurrent.futures.FIRST_COMPLETED)  # fmt: skip
            for future in done_now:
                future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    stage = store.staging_dir(out)
    manifest = control_report.write_all(suite, stage, units, tasks, floor_table)
    manifest["tasks"] = {label: t.manifest() for label, t in tasks.items()}
    total = store.Units(out, log)
    total.seconds = sum(u.cache.seconds for u in units)
    total.computed = sum(u.cache.computed for u in units)
    total.reused = sum(u.cache.reused for u in units)
    manifest = store.write_manifest(stage, manifest, total, start)
    store.publish(stage, out)
    for d in manifest["diverged_cells"]:  # loud, even when quiet
        print(f"td-jax: warning: rule {d['rule']} diverged on task {d['task']} ({d['diverged']} "
              f"of {d['seeds']} evaluation seeds); its cells say so", file=sys.stderr)  # fmt: skip
    return manifest


def as_custom_suite(suite: ControlSuite) -> CustomSuite:
    """The suite as the catalog and ``td-jax bench --suite`` run it."""
    return CustomSuite(
        suite.name,
        suite.description,
        functools.partial(run_control_suite, suite),
        with_rules=lambda extra: as_custom_suite(suite.with_rules(extra)),
    )
