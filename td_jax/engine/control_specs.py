"""Control suites as data, the engine's types: tabular control learners on exact MDPs
(SCIENCE.md section 8); the suites themselves are files, ``benchmarks/control.toml`` and
``control_quick.toml``.

Each suite runs every rule as a control learner (``td_jax.control``) on MDPs with exact
Q*, tunes each rule's step size per (task, metric, eps) on tuning seeds, evaluates the
selection on separate evaluation seeds and compares N(eps) with Q-learning's by the
protocol of section 7 (``td_jax.engine.control``). The metrics are the sup-norm
error ||Q - Q*||_inf and the greedy policy's value gap max_s V*(s) - V^pi(s), both divided
by the task's return scale (``control_truth.ControlTask``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from td_jax import strict
from td_jax.engine.specs import RuleSpec, log_grid, with_plugins

METRICS = ("q_error", "value_gap")


@dataclasses.dataclass(frozen=True)
class MDPSpec:
    """A control task: a built-in MDP (``td_jax.envs.make_mdp``) with parameters, the mode
    its learners run in and, optionally, its own horizon."""

    label: str
    mdp: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    mode: str = "synchronous"
    horizon: int | None = None

    def __post_init__(self):
        strict.check_mode(f"task {self.label!r}", self.mode)

    def config(self) -> dict[str, Any]:
        return {"label": self.label, "mdp": self.mdp, "params": dict(self.params),
                "mode": self.mode, "horizon": self.horizon}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ControlSuite:
    """A control benchmark, as data.

    Attributes:
      rules: as in ``engine.specs.Suite`` (``baseline`` is Q-learning, the ``td`` rule
        lifted to control). tasks: the MDPs.
      num_steps: updates per learner (synchronous: each updates every pair once a step).
      eps_grid: accuracies of both metrics (normalised), decreasing.
      epsilon: the online learners' exploration rate.
      constant_grid, harmonic_steps, harmonic_c, per_decade, margin, fdr_q, reps,
        max_extensions, placebos, nulls, eps_relative, band, max_refinements,
        refine_within, diagonals, candidates: as in ``Suite``. The harmonic decay's d is
        c * unit for a synchronous task (every pair updates each step) and c * S * A * unit
        online.
        Every metric is an estimand: one call per (rule, task, metric), each refined.
    """

    name: str
    description: str
    rules: tuple[RuleSpec, ...]
    tasks: tuple[MDPSpec, ...]
    tuning_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    num_steps: int
    eps_grid: tuple[float, ...]
    epsilon: float = 0.1
    constant_grid: tuple[float, ...] = log_grid(1e-3, 1.0, 3)
    harmonic_steps: tuple[float, ...] = (1.0,)
    harmonic_c: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
    per_decade: int = 20
    margin: float = 0.05
    fdr_q: float = 0.05
    reps: int = 2_000
    max_extensions: int = 4
    baseline: str = "td"
    # ctd: with a support covering every return its mean moves exactly as Q-learning's
    # (the Cramer projection preserves the mean; Lyle et al. 2019, section 3), as the
    # prediction suites' placebo list says: a check of the pipeline, not an answer.
    placebos: tuple[str, ...] = ("td_placebo", "ctd")
    metrics: tuple[str, ...] = METRICS
    nulls: tuple[str, ...] = ()
    eps_relative: bool = False
    band: tuple[float, float] = (1e-3, 1e-1)
    max_refinements: int = 0
    refine_within: float = 1.5
    diagonals: bool = False
    candidates: int = 6
    coverage: float = 0.95

    axis_column: ClassVar[str] = "metric"

    @property
    def estimand_axes(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    def __post_init__(self):
        overlap = set(self.tuning_seeds) & set(self.eval_seeds)
        if overlap:
            raise ValueError(f"suite {self.name}: tuning and evaluation seeds must be disjoint, "
                             f"both contain {sorted(overlap)}")  # fmt: skip
        eps = np.asarray(self.eps_grid, np.float64)
        if eps.size < 1 or np.any(eps <= 0) or np.any(np.diff(eps) >= 0):
            raise ValueError(f"suite {self.name}: eps_grid must be positive and decreasing, "
                             f"got {self.eps_grid}")  # fmt: skip
        if self.baseline not in [r.label for r in self.rules]:
            raise ValueError(f"suite {self.name}: baseline {self.baseline!r} is not a rule")
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"suite {self.name}: unknown metrics {sorted(unknown)}; "
                             f"allowed: {METRICS}")  # fmt: skip

    def with_rules(self, extra: tuple[RuleSpec, ...]) -> ControlSuite:
        """The suite with plug-in rules added (each lifted to control like the built-in
        ones, ``td_jax.control.lift``); refuses a label already used."""
        return dataclasses.replace(self, rules=with_plugins(self.name, self.rules, extra))

    def horizon(self, task: MDPSpec) -> int:
        return int(task.horizon or self.num_steps)

    def baseline_of(self, rule: str) -> str:
        return self.baseline

    def config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rules"] = [r.config() for r in self.rules]
        out["tasks"] = [t.config() for t in self.tasks]
        if not self.diagonals:  # absent: the configs of suites made before it existed
            del out["diagonals"]
        return out
