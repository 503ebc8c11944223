"""The control track: a unit is one rule, lifted to control (``td_jax.control``), on the
MDPs of one kind, mode and step unit (SCIENCE.md sections 7 and 8).

The prediction protocol, lifted: the driver (``engine.driver``) runs each unit through the
one tuning loop (``engine.search``) on the tuning seeds of ``td_jax.control
.run_controls``, selecting per (task, metric, eps) the configuration with the smallest
N(eps), then the selections on the evaluation seeds. N(eps), S(eps) against Q-learning
with a paired bootstrap (common random numbers: every rule and step size of a seed draws
the same transitions in synchronous mode) and Benjamini-Hochberg are the prediction
report's (``engine.scoring.calls``), with the metrics in place of the weightings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from td_jax import envs as env_lib
from td_jax.control import ControlRuns, run_controls
from td_jax.engine import store, tuning
from td_jax.engine.control_specs import ControlSuite
from td_jax.engine.control_truth import ControlTask, control_floor
from td_jax.engine.errors import BenchError
from td_jax.engine.scoring import control_report
from td_jax.engine.specs import RuleSpec
from td_jax.engine.units import build_rule, sweeps
from td_jax.rules.tabular import TabularState
from td_jax.runner.metrics import dense_checkpoints


class ControlUnit:
    """One rule on the tasks of one MDP kind, mode and step unit (``prediction.Unit``'s shape)."""

    cache_kind = ControlRuns

    def __init__(self, spec: RuleSpec, key: tuple, unit: float, tasks: list[ControlTask],
                 suite: ControlSuite):  # fmt: skip
        self.spec, self.unit, self.tasks = spec, unit, tasks
        self.mdp_name, self.mode = key[0], key[1]
        self.axes = tuple(suite.metrics)
        # The support of "auto" covers the returns of every pair under the optimal policy.
        self.rule, self.hparams = build_rule(spec, {t.spec.label: t.pairs for t in tasks})
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
        # Refining suites (as ``prediction.Unit``): per-seed tuning curves of the estimand's
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
        self.cancel = threading.Event()  # set by the driver when another unit fails

    @property
    def name(self) -> str:
        return f"{self.spec.label}__{self.mode}_{self.mdp_name}__u{self.unit:g}"

    def execute(self, configs, seeds, suite: ControlSuite, tag: str, on_chunk=None, size=None):
        """``configs`` x ``seeds`` on the unit's MDPs, cached: one list for every MDP, or
        ``{task label: list}``, each MDP its own sweep padded to ``size`` (``units.sweeps``),
        in one program (``run_controls``' per-MDP step sizes)."""
        pairs, steps, decay = sweeps(self, configs, size)
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
            rule, _ = build_rule(spec, {t.spec.label: t.pairs for t in mine})
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


def floors(units: list[ControlUnit]) -> dict[tuple[str, str], dict | None]:
    """Each (rule, task)'s floors (``control_truth.control_floor``; numpy, quick enough to
    run in the main thread while the units run)."""
    table = {}
    for unit in units:
        name = unit.spec.rule if isinstance(unit.spec.rule, str) else None
        for t in unit.tasks:
            table[(unit.spec.label, t.spec.label)] = (
                None if name is None else control_floor(name, unit.hparams, t)
            )
    return table


def start_floors(units: list[ControlUnit], out: Path) -> tuple[Callable[[], dict]]:
    """The floors, computed now (the driver calls this in the main thread once the units
    are queued, so they run beside them); (finish: returns them)."""
    table = floors(units)
    return (lambda: table,)


def write_report(suite: ControlSuite, stage: Path, units: list[ControlUnit],
                 tasks: dict[str, ControlTask], floor_table: dict,
                 out: Path) -> dict[str, Any]:  # fmt: skip
    """The control report into ``stage`` (``scoring.control_report.write_all``); the
    manifest's entries so far."""
    manifest = control_report.write_all(suite, stage, units, tasks, floor_table)
    manifest["tasks"] = {label: t.manifest() for label, t in tasks.items()}
    return manifest
