"""Suites as data: each declares its rules, tasks, step sizes, seeds, budget and thresholds.

A suite is a frozen description, in the spirit of bsuite's sweep files; running and scoring
live elsewhere (``td_jax.harness.bench``, ``analysis``). Reward variants wrap a base
environment (``env_params["reward"]``) rather than forking it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from td_jax.types import UpdateRule

# Rewards of the headline study: every family shifted and scaled to mean 1, std 1 (the
# deterministic one is 1), so that families differ only in shape (SCIENCE.md section 7).
STANDARD = (1.0, 1.0)
HEADLINE_REWARDS: dict[str, Any] = {
    "deterministic": {"name": "deterministic", "value": 1.0},
    "gaussian": {"name": "gaussian", "standardize": STANDARD},
    "bimodal": {"name": "bimodal", "standardize": STANDARD},
    "bernoulli": {"name": "bernoulli", "p": 0.1, "standardize": STANDARD},
    "exponential": {"name": "exponential", "standardize": STANDARD},
    "student_t": {"name": "student_t", "df": 2.5, "standardize": STANDARD},
    "dabney_magnitude": {"name": "dabney_magnitude", "standardize": STANDARD},
}


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """A rule of a suite: a registry name (or a factory) and its hyperparameters.

    ``support="auto"`` in ``hparams`` (categorical rules) sets ``v_min`` / ``v_max`` from the
    return bounds of the tasks the rule runs on, with a 10% margin.
    """

    label: str
    rule: str | Callable[..., UpdateRule]
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    step_sizes: tuple[float, ...] | None = None  # None: the suite's grid

    def config(self) -> dict[str, Any]:
        rule = self.rule if isinstance(self.rule, str) else _qualname(self.rule)
        return {
            "label": self.label,
            "rule": rule,
            "hparams": dict(self.hparams),
            "step_sizes": None if self.step_sizes is None else list(self.step_sizes),
        }


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A task: an environment with parameters (including its reward distribution)."""

    label: str
    env: str
    env_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return {"label": self.label, "env": self.env, "env_params": dict(self.env_params)}


@dataclasses.dataclass(frozen=True)
class Suite:
    """A benchmark, as data.

    Attributes:
      threshold: steps-to-threshold counts updates until the normalised value error (RMSE
        over states divided by the RMS of the true values, i.e. the error of an all-zero
        estimate) stays below this.
      budgets: update counts at which the value error is reported.
      criterion: how each rule's step size is chosen on the tuning seeds: "auc" (lowest
        mean area under the log-error curve) or "final" (lowest final error).
      baseline: the classical rule every distributional rule is compared against.
      baselines: per-rule overrides ``{rule label: baseline label}``, e.g. so that MLP
        learners are compared with the MLP TD learner and linear ones with linear TD.
    """

    name: str
    description: str
    rules: tuple[RuleSpec, ...]
    tasks: tuple[TaskSpec, ...]
    step_sizes: tuple[float, ...]
    tuning_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    num_steps: int
    num_checkpoints: int = 16
    threshold: float = 0.1
    budgets: tuple[int, ...] = ()
    criterion: str = "auc"
    mode: str = "online"
    baseline: str = "td"
    baselines: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def baseline_of(self, rule: str) -> str:
        """The label of the rule ``rule`` is compared against."""
        return self.baselines.get(rule, self.baseline)

    def __post_init__(self):
        overlap = set(self.tuning_seeds) & set(self.eval_seeds)
        if overlap:
            raise ValueError(
                f"suite {self.name}: tuning and evaluation seeds must be disjoint, "
                f"both contain {sorted(overlap)}"
            )
        if self.criterion not in ("auc", "final"):
            raise ValueError(
                f"suite {self.name}: criterion must be 'auc' or 'final', got {self.criterion!r}"
            )

    def with_rules(self, extra: tuple[RuleSpec, ...]) -> Suite:
        labels = {r.label for r in self.rules}
        clash = [r.label for r in extra if r.label in labels]
        if clash:
            raise ValueError(
                f"plug-in rule label {clash[0]!r} clashes with a rule of suite {self.name}"
            )
        return dataclasses.replace(self, rules=self.rules + tuple(extra))

    def config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rules"] = [r.config() for r in self.rules]
        out["tasks"] = [t.config() for t in self.tasks]
        return out


def _qualname(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def headline_rules(m: int = 32, cells: int = 20) -> tuple[RuleSpec, ...]:
    """The seven built-in rules with the study's hyperparameters."""
    return (
        RuleSpec("td", "td"),
        RuleSpec("td_lambda", "td_lambda", {"lambda_": 0.8}),
        RuleSpec("qtd", "qtd", {"num_quantiles": m}),
        RuleSpec("ctd", "ctd", {"num_atoms": 51, "support": "auto"}),
        RuleSpec("edrl", "edrl", {"num_expectiles": 11, "num_iterations": 5}),
        RuleSpec("dopamine_expectile", "dopamine_expectile", {"num_cells": cells}),
        RuleSpec("dopamine_quantile", "dopamine_quantile", {"num_cells": cells}),
    )


def headline_tasks(
    rewards: Mapping[str, Any], chain_states: int = 5, mrp_states: int = 10
) -> tuple[TaskSpec, ...]:
    """bandit, chain and random_mrp, each with every reward distribution."""
    tasks = []
    for label, reward in rewards.items():
        tasks.append(TaskSpec(f"bandit/{label}", "bandit", {"reward": reward}))
        tasks.append(
            TaskSpec(
                f"chain/{label}",
                "chain",
                {"num_states": chain_states, "reward": reward, "gamma": 0.9},
            )
        )
        tasks.append(
            TaskSpec(
                f"random_mrp/{label}",
                "random_mrp",
                {"num_states": mrp_states, "reward": reward, "gamma": 0.9, "seed": 0},
            )
        )
    return tuple(sorted(tasks, key=lambda t: t.label))


def _grid(low: float, high: float, num: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.geomspace(low, high, num).round(6))


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    SUITES[suite.name] = suite
    return suite


register_suite(
    Suite(
        name="default",
        description="headline study: 7 rules x (bandit, chain, random_mrp) x 7 reward families",
        rules=headline_rules(),
        tasks=headline_tasks(HEADLINE_REWARDS),
        step_sizes=_grid(0.003, 1.0, 8),
        tuning_seeds=tuple(range(0, 8)),
        eval_seeds=tuple(range(100, 120)),
        num_steps=3_000,
        num_checkpoints=16,
        threshold=0.1,
        budgets=(300, 1_000, 3_000),
    )
)

register_suite(
    Suite(
        name="quick",
        description="the default suite's shape, small: for tests and a first look (< 60 s)",
        rules=headline_rules(m=8, cells=8),
        tasks=headline_tasks(
            {k: HEADLINE_REWARDS[k] for k in ("deterministic", "student_t")},
            chain_states=3,
            mrp_states=4,
        ),
        step_sizes=_grid(0.03, 0.5, 3),
        tuning_seeds=(0, 1, 2),
        eval_seeds=(10, 11, 12, 13, 14),
        num_steps=300,
        num_checkpoints=8,
        threshold=0.2,
        budgets=(100, 300),
    )
)


@dataclasses.dataclass(frozen=True)
class CustomSuite:
    """A suite with its own runner and reports (e.g. a paper reproduction).

    ``run(out: Path, quiet: bool) -> dict`` writes ``out`` (results/<name>/) and returns
    the manifest it wrote; it must resume and guard its directory like ``run_suite``.
    """

    name: str
    description: str
    run: Callable[..., dict[str, Any]]


CUSTOM_SUITES: dict[str, CustomSuite] = {}


def register_custom_suite(suite: CustomSuite) -> CustomSuite:
    CUSTOM_SUITES[suite.name] = suite
    return suite


def _load_builtin_custom_suites() -> None:
    """Imports the modules that register reproduction suites (kept lazy: they are heavy)."""
    import importlib
    import pkgutil

    try:
        package = importlib.import_module("td_jax.reproductions")
    except ModuleNotFoundError:
        return
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"td_jax.reproductions.{info.name}")


def get_suite(name: str) -> Suite | CustomSuite:
    """The registered suite ``name``; ValueError lists the available ones."""
    _load_builtin_custom_suites()
    if name in SUITES:
        return SUITES[name]
    if name in CUSTOM_SUITES:
        return CUSTOM_SUITES[name]
    raise ValueError(f"unknown suite {name!r}; available suites: {', '.join(available())}")


def available() -> list[str]:
    _load_builtin_custom_suites()
    return sorted({*SUITES, *CUSTOM_SUITES})


def describe() -> dict[str, str]:
    _load_builtin_custom_suites()
    table = {
        **{n: s.description for n, s in SUITES.items()},
        **{n: s.description for n, s in CUSTOM_SUITES.items()},
    }
    return {name: table[name] for name in sorted(table)}


import td_jax.approx.suites  # noqa: E402, F401  (registers the approx suites)
