"""Suites as data, the engine's types: a rule, a task and a suite of the sample-complexity
protocol, each a frozen description in the spirit of bsuite's sweep files.

Running lives in ``td_jax.engine.driver`` and scoring in ``td_jax.engine.scoring``; the
suites themselves (the headline study, its quick form, ...) are files above the engine,
``benchmarks/<name>.toml``, read by ``td_jax.studies.suite_files``. Reward variants wrap a
base environment (``env_params["reward"]``) rather than forking it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from td_jax import rules as rule_lib
from td_jax.engine.errors import BenchError
from td_jax.rules.facts import STEP_UNITS
from td_jax.types import RuleFacts, UpdateRule


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """A rule of a suite: a registry name (or a factory) and its hyperparameters.

    ``support="auto"`` in ``hparams`` (categorical rules) sets ``v_min`` / ``v_max`` from the
    return bounds of the tasks the rule runs on, with a 10% margin.

    Attributes:
      step_sizes: the rule's constant-step grid in its own units (None: the suite's).
      step_unit: "fraction" (the step is a fraction of the error, as in TD) or "return"
        (the statistic moves by at most alpha in return units: the grid is multiplied by
        the task's return scale). None: the rule's own (``RuleFacts.step_unit``).
      step_scale: multiplies the grid. None: 1 / the rule's ``RuleFacts.mean_step`` (2 for
        rules whose mean moves at half the step they are given: ``td_placebo``, EDRL and
        the expectile cells), so that equal grid points are equal effective steps.
      envs: the environments it runs on (None: every one of the suite); ``note`` says why.
      tasks: the task labels it runs on (None: every task of its environments).
      tuning_seeds: the rule's own tuning seeds (None: the suite's); a split-seed
        replicate of the baseline is the baseline tuned on seeds disjoint from its own.
      step_factor: the rule runs at this multiple of the step it is given, inside it
        (``td_jax.rules.rescaled``), on its unchanged grid: the reparameterised null.
      plugin: ``label=module:factory`` for a rule given with ``--rule`` ('' otherwise):
        recorded in the manifest, so that ``td-jax report`` re-imports it.
    """

    label: str
    rule: str | Callable[..., UpdateRule]
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    step_sizes: tuple[float, ...] | None = None
    step_unit: str | None = None
    envs: tuple[str, ...] | None = None
    note: str = ""
    step_scale: float | None = None
    tasks: tuple[str, ...] | None = None
    tuning_seeds: tuple[int, ...] | None = None
    step_factor: float = 1.0
    plugin: str = ""

    def __post_init__(self):
        if self.step_unit is not None and self.step_unit not in STEP_UNITS:
            raise ValueError(
                f"rule {self.label!r}: step_unit must be 'fraction' or 'return', "
                f"got {self.step_unit!r}"
            )

    @property
    def unit(self) -> str | None:
        """The step unit: the spec's own, or a registry rule's (``RuleFacts``); None for a
        factory's, known once it is built (``resolved``)."""
        if self.step_unit is not None:
            return self.step_unit
        facts = self.facts()
        return None if facts is None else facts.step_unit

    def facts(self) -> RuleFacts | None:
        """A registry rule's facts, read off the rule its name builds with default
        hyperparameters (facts are per rule, not per setting); None for a factory, whose
        facts are known once it is built."""
        if isinstance(self.rule, str) and self.rule in rule_lib.available():
            try:
                return rule_lib.make(self.rule).facts
            except ValueError:  # a registered factory that needs hyperparameters
                return None
        return None

    def resolved(self, facts: RuleFacts) -> RuleSpec:
        """This spec with the step unit and grid scale it leaves open (None) taken from the
        built rule's ``facts``: what the engine tunes."""
        return dataclasses.replace(
            self,
            step_unit=self.step_unit or facts.step_unit,
            step_scale=self.step_scale if self.step_scale is not None else 1.0 / facts.mean_step,
        )

    @property
    def scale(self) -> float | None:
        """The grid's multiplier: ``step_scale``, or 1 / a registry rule's mean step (None
        for a factory's, known once it is built)."""
        if self.step_scale is not None:
            return self.step_scale
        facts = self.facts()
        return None if facts is None else 1.0 / facts.mean_step

    def config(self) -> dict[str, Any]:
        rule = self.rule if isinstance(self.rule, str) else _qualname(self.rule)
        return {
            "label": self.label,
            "rule": rule,
            "hparams": dict(self.hparams),
            "step_sizes": None if self.step_sizes is None else list(self.step_sizes),
            "step_unit": self.unit,
            "envs": None if self.envs is None else list(self.envs),
            "note": self.note,
            "step_scale": self.scale,
            "tasks": None if self.tasks is None else list(self.tasks),
            "tuning_seeds": None if self.tuning_seeds is None else list(self.tuning_seeds),
            "step_factor": self.step_factor,
        } | ({"plugin": self.plugin} if self.plugin else {})


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A task: an environment with parameters (including its reward distribution)."""

    label: str
    env: str
    env_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Random instances pooled into the task (``td_jax.engine.tasks.PooledTask``): the
    # values of ``instance_param`` (e.g. Garnet seeds); seed s runs on instance s mod K.
    instances: tuple[int, ...] = ()
    instance_param: str = "seed"

    def __post_init__(self):
        inst = tuple(self.instances)
        if any(isinstance(g, bool) or not isinstance(g, int | np.integer) for g in inst) or (
            len(set(inst)) != len(inst)
        ):
            raise ValueError(
                f"task {self.label!r}: instances must be distinct integers (values of "
                f"{self.instance_param!r}), got {self.instances!r}"
            )

    def config(self) -> dict[str, Any]:
        out = {"label": self.label, "env": self.env, "env_params": dict(self.env_params)}
        if self.instances:
            out["instances"] = {self.instance_param: list(self.instances)}
        return out


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published claim a suite checks: ``rule`` is ``expected`` ("faster" / "slower") than
    the baseline on ``task``. Reproduced when, over the eps grid (visit weighting), some
    cell is called ``expected`` and none the opposite."""

    text: str
    rule: str
    task: str
    expected: str

    def __post_init__(self):
        if self.expected not in ("faster", "slower"):
            raise ValueError(f"claim {self.text!r}: expected must be 'faster' or 'slower', "
                             f"got {self.expected!r}")  # fmt: skip


# Reports a suite may add after the standard one (``Suite.reports``); the driver maps each
# name to its writer (``engine.driver.REPORT_WRITERS``).
REPORTS = ("atlas",)


def log_grid(low: float, high: float, per_decade: int) -> tuple[float, ...]:
    num = int(round(per_decade * np.log10(high / low))) + 1
    return tuple(float(x) for x in np.geomspace(low, high, num).round(8))


@dataclasses.dataclass(frozen=True)
class Suite:
    """A benchmark, as data: the sample-complexity protocol of SCIENCE.md section 7.

    Attributes:
      horizons: updates per learner, by environment name (``num_steps`` where absent).
      eps_grid: accuracies at which N(eps) is measured; the error is the squared value
        error weighted over states (by the stream's visit distribution, and uniformly),
        divided by the return variance under the same weights (fallback when that is 0:
        the mean square of the true values; then 1).
      constant_grid: constant step sizes, in the rule's own units (3 or more per decade).
      harmonic_steps, harmonic_c: the decaying family alpha_t = alpha0 / (1 + alpha0 t / d)
        with d = c * num_states * unit: alpha0 from ``harmonic_steps`` (default 1: one
        dimension, no ridge) x c from ``harmonic_c`` (for TD, c = 1 and alpha0 = 1 on a
        bandit is the sample mean).
      per_decade: checkpoint density (>= 20 per decade of updates).
      margin: speed-ups within [1/(1 + margin), 1 + margin] are not called a difference.
      fdr_q: the Benjamini-Hochberg false discovery rate of the calls: over the (rule,
        task) pairs of the estimand, separately within each role (answer, nulls,
        pipeline checks) and estimand axis (SCIENCE.md section 9.4). The per-eps table
        (description, not calls) applies it per weighting, pipeline checks apart.
      reps: bootstrap resamples. max_extensions: grid extensions before an edge selection
        is reported as such.
      placebos: labels of rules that are the baseline by construction (``td_placebo``,
        ``ctd`` with a covering support): checks of the pipeline, not of calibration.
      nulls: labels of null controls that CAN fail: the baseline reparameterised inside
        its kernel and the baseline tuned on disjoint seeds. Their false-positive rate,
        with a binomial interval, is the suite's calibration (SCIENCE.md section 9).
      eps_relative: ``eps_grid`` holds multiples of each task's initial error e0 (the
        error of the all-zero estimate) instead of absolute accuracies.
      band: the estimand's accuracy band as multiples of e0 (relative grids): the call per
        (rule, task) is the geometric mean of S(eps) over the grid's eps in the band that
        both rules reach on the tuning seeds, beyond ``EARLY_UPDATES`` and above 3x the
        floors. Grid points above the band measure the transient from the zero start.
      max_refinements: compass-search rounds that refine each band cell's selection
        until it is flat to the margin (0: none; ``engine.refine``).
      refine_within: a family is refined where its best N is within this factor of the
        best of all families.
      diagonals: the harmonic family's compass search probes the diagonals of
        (log alpha0, log c) too, not only the axes (``engine.refine.DIAGONALS``). Off
        by default: the search the committed approx, control and atlas results were made
        with; the headline suites turn it on.
      start_rows: alpha0 values (multiples of the unit, as ``harmonic_steps``) of extra
        harmonic rows evaluated after the grid's extensions, before refinement: each is a
        compass-search start (``engine.refine.starts``), never a grid axis, so the grid
        does not extend along alpha0. N(eps) over (alpha0, c) can have two basins (a
        slow, constant-like decay and a large alpha0 with a fast decay); a single row
        reaches one or the other depending on where the grid falls. Empty by default
        (quick sets one row; SCIENCE.md 9.2 says what it cost default).
      reselect_secondary: the re-selection bootstrap (candidates and their per-seed tuning
        curves) also on the band cells of the weightings outside the estimand (the
        prediction suites' uniform weighting), so that their per-eps intervals carry the
        selection step too (SCIENCE.md 9.3). Off by default: the committed approx results
        were made without it (the atlas turns it on).
      candidates, coverage: per band cell, the configurations most often re-selected on
        resamples of the tuning seeds are evaluated (for the re-selection bootstrap) until
        they cover ``coverage`` of the resamples or number ``candidates`` with the
        selection; free rows of the evaluation program take more (``search._candidates``).
      baseline: the rule every other is compared against; ``baselines`` overrides per rule.
      claims: published claims the verdict marks *reproduced* or *NOT reproduced*.
      reports: reports written after the standard one, each a name of ``REPORTS`` (e.g.
        "atlas": ``td_jax.engine.scoring.atlas``), into the same staging directory, so
        they are published with it and ``td-jax report DIR`` rewrites them too. In
        ``config()`` only when non-empty (a suite without reports keeps its manifest).
    """

    name: str
    description: str
    rules: tuple[RuleSpec, ...]
    tasks: tuple[TaskSpec, ...]
    tuning_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    num_steps: int
    eps_grid: tuple[float, ...]
    horizons: Mapping[str, int] = dataclasses.field(default_factory=dict)
    constant_grid: tuple[float, ...] = log_grid(1e-3, 1.0, 3)
    harmonic_steps: tuple[float, ...] = (1.0,)
    harmonic_c: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    per_decade: int = 20
    margin: float = 0.05
    fdr_q: float = 0.05
    reps: int = 2_000
    max_extensions: int = 6
    mode: str = "online"
    baseline: str = "td"
    baselines: Mapping[str, str] = dataclasses.field(default_factory=dict)
    placebos: tuple[str, ...] = ("td_placebo", "ctd")
    nulls: tuple[str, ...] = ()
    eps_relative: bool = False
    band: tuple[float, float] = (1e-3, 1e-1)
    max_refinements: int = 0
    refine_within: float = 1.5
    diagonals: bool = False
    start_rows: tuple[float, ...] = ()
    reselect_secondary: bool = False
    candidates: int = 6
    coverage: float = 0.95
    min_visits: int = 100
    claims: tuple[Claim, ...] = ()
    reports: tuple[str, ...] = ()

    # The curves' axis the estimand is read on (one call per (rule, task) on it), and the
    # cells' column that names an axis.
    estimand_axes: ClassVar[tuple[str, ...]] = ("visit",)
    axis_column: ClassVar[str] = "weighting"

    def baseline_of(self, rule: str) -> str:
        """The label of the rule ``rule`` is compared against."""
        return self.baselines.get(rule, self.baseline)

    def horizon(self, env: str) -> int:
        return int(self.horizons.get(env, self.num_steps))

    def __post_init__(self):
        overlap = set(self.tuning_seeds) & set(self.eval_seeds)
        if overlap:
            raise ValueError(
                f"suite {self.name}: tuning and evaluation seeds must be disjoint, "
                f"both contain {sorted(overlap)}"
            )
        eps = np.asarray(self.eps_grid, np.float64)
        if eps.size < 1 or np.any(eps <= 0) or np.any(np.diff(eps) >= 0):
            raise ValueError(
                f"suite {self.name}: eps_grid must be positive and decreasing, got {self.eps_grid}"
            )
        labels = [r.label for r in self.rules]
        for r in self.rules:
            if r.tuning_seeds is None:
                continue
            clash = (set(r.tuning_seeds) & set(self.eval_seeds)) | (
                set(r.tuning_seeds) & set(self.tuning_seeds)
            )
            if clash:
                raise ValueError(
                    f"suite {self.name}: rule {r.label!r}'s tuning_seeds must be disjoint "
                    f"from the suite's tuning and evaluation seeds, both hold {sorted(clash)}"
                )
        unknown = [r for r in self.reports if r not in REPORTS]
        if unknown:
            raise ValueError(
                f"suite {self.name}: unknown report {unknown[0]!r}; allowed: {', '.join(REPORTS)}"
            )
        if self.baseline not in labels and not self.baselines:
            raise ValueError(
                f"suite {self.name}: baseline {self.baseline!r} is not one of its rules {labels}"
            )

    def with_rules(self, extra: tuple[RuleSpec, ...]) -> Suite:
        """The suite with plug-in rules added; refuses a label already used."""
        return dataclasses.replace(self, rules=with_plugins(self.name, self.rules, extra))

    def config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rules"] = [r.config() for r in self.rules]
        out["tasks"] = [t.config() for t in self.tasks]
        out["reports"] = list(self.reports)
        if not self.reports:  # absent: the configs (and manifests) of suites without reports
            del out["reports"]
        for key in ("diagonals", "start_rows", "reselect_secondary"):
            if not out[key]:  # absent: the configs of suites made before it existed
                del out[key]
        return out


def _qualname(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


# Step factors of the reparameterised nulls: log10 of each is 0.41 and -0.69 grid steps of
# the default grid's ratio 10^(1/3), so that no grid point maps onto one of TD's.
NULL_FACTORS = (1.37, 0.59)
SPLIT_SEEDS = tuple(range(500, 520))  # the split-seed replicate's own tuning seeds
NULLS = ("td_rescaled_a", "td_rescaled_b", "td_split")


def null_rules(
    baseline: RuleSpec, split_seeds: tuple[int, ...] = SPLIT_SEEDS, prefix: str = "td"
) -> tuple[RuleSpec, ...]:
    """The null controls that can fail, built from the baseline's own spec: the baseline
    with its step multiplied inside it by each of ``NULL_FACTORS`` (tuned on the
    baseline's own grid: only a search that finds the optimum wherever the grid falls
    calls them equal), and the baseline tuned on ``split_seeds``, disjoint from the
    suite's tuning seeds (a replicate of the selection). SCIENCE.md section 9."""
    a, b = NULL_FACTORS
    return (
        dataclasses.replace(baseline, label=f"{prefix}_rescaled_a", step_factor=a,
                            note=f"null: {baseline.label} with its step x{a} inside it"),
        dataclasses.replace(baseline, label=f"{prefix}_rescaled_b", step_factor=b,
                            note=f"null: {baseline.label} with its step x{b} inside it"),
        dataclasses.replace(baseline, label=f"{prefix}_split", tuning_seeds=split_seeds,
                            note=f"null: {baseline.label} tuned on seeds disjoint from its own"),
    )  # fmt: skip


def with_plugins(
    suite: str, rules: tuple[RuleSpec, ...], extra: tuple[RuleSpec, ...]
) -> tuple[RuleSpec, ...]:
    """``rules`` and then the plug-in rules ``extra``; BenchError if a label is used twice
    (labels name the unit files)."""
    labels = {r.label for r in rules}
    clash = [r.label for r in extra if r.label in labels]
    if clash:
        raise BenchError(
            f"plug-in rule label {clash[0]!r} clashes with a rule of suite {suite}; "
            "give it another with --rule label=module:factory"
        )
    seen = set()
    for r in extra:
        if r.label in seen:
            raise BenchError(
                f"plug-in rule label {r.label!r} is given twice; labels name the unit "
                "files, so each must be distinct (--rule label=module:factory)"
            )
        seen.add(r.label)
    return tuple(rules) + tuple(extra)


@dataclasses.dataclass(frozen=True)
class CustomSuite:
    """A suite with its own runner and reports (e.g. a paper reproduction).

    ``run(out: Path, quiet: bool) -> dict`` writes ``out`` (results/<name>/) and returns
    the manifest it wrote; it must resume and guard its directory like ``run_suite``.
    """

    name: str
    description: str
    run: Callable[..., dict[str, Any]]
