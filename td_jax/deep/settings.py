"""What a deep-control suite runs, as data: tasks, agents, their configurations, seeds.

A suite runs each agent in up to two configurations (issue: deep agents compared fairly):

* ``common``: every agent with the same optimiser and its settings, network, replay,
  target period and exploration (the suite's ``common`` table); an agent adds only its
  head (``HEAD_KEYS``: atoms, quantiles, kappa), and, with ``support_from_task``, C51 puts
  its support on the task's return range (``td_jax.deep.supports``);
* ``reference``: each agent's own reference settings on top of ``common`` (CleanRL's DQN
  and C51, Dabney et al.'s QR-DQN: ``td_jax.deep.agents``), on ``reference_tasks``. An
  agent whose reference settings come out equal to its common ones on a task is not run
  twice: its reference rows are its common runs.

An ``Ablation`` reruns one (agent, task) of a configuration with one setting changed at a
time, at a fixed learning rate, on the evaluation seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from td_jax.deep import agents as agents_lib
from td_jax.deep import noise as noise_lib
from td_jax.deep import supports

# gym's registered reward_threshold of Acrobot-v1; CartPole-v0's (195), a milestone below
# CartPole-v1's 475, which a 40,000-step budget does not reach.
THRESHOLDS = {"CartPole-v1": 195.0, "Acrobot-v1": -100.0, "Breakout-MinAtar": 10.0}
NOISES: dict[str, dict[str, Any]] = {
    "none": {"kind": "none"},
    "gaussian": {"kind": "gaussian", "std": 1.0},
    "student_t": {"kind": "student_t", "std": 1.0, "df": 3.0},
    "bernoulli_sparse": {"kind": "bernoulli_sparse", "p": 0.1},
}
CPU_COMMON = {"total_steps": 40_000, "learning_starts": 1_000}
CPU_AGENTS = {"dqn": {}, "c51": {"num_atoms": 51}, "qrdqn": {"num_quantiles": 25}}
TUNING_OFFSET = 10_000  # tuning seeds start here, so they never meet evaluation seeds
COMMON, REFERENCE = "common", "reference"
# What an agent may set in the common configuration: its head, nothing the others share.
HEAD_KEYS = frozenset({"num_atoms", "num_quantiles", "huber_kappa", "v_min", "v_max"})
SUPPORT = "task"  # an ablation variant's ``support``: C51's support from the task


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published direction: ``agent`` is ``expected`` ("better" / "worse") than DQN on
    ``task`` by ``score`` ("final" or "auc"); ``source`` says where the paper says so."""

    agent: str
    task: str
    expected: str
    score: str
    source: str

    def __post_init__(self):
        if self.expected not in ("better", "worse") or self.score not in ("final", "auc"):
            raise ValueError(f"claim {self}: expected must be better/worse and score "
                             "final/auc")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Ablation:
    """One (agent, task) of ``configuration`` rerun with one change per variant.

    Attributes:
      agent, task: what is ablated (a task of the suite, ``env/noise``).
      configuration: ``common`` or ``reference``: the settings the variants change.
      learning_rate: the fixed rate of the base run and of every variant without its own.
      variants: name -> changes: agent hyperparameters, ``learning_rate``, or ``support =
        "task"`` (C51's support from the task). Empty: no ablation.
    """

    agent: str = ""
    task: str = ""
    configuration: str = REFERENCE
    learning_rate: float = 1e-3
    variants: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.variants and self.configuration not in (COMMON, REFERENCE):
            raise ValueError(f"ablation configuration must be {COMMON!r} or {REFERENCE!r}, "
                             f"got {self.configuration!r}")  # fmt: skip
        if self.variants and not self.learning_rate > 0:
            raise ValueError(f"ablation learning_rate must be > 0, got {self.learning_rate!r}")
        for name, changes in self.variants.items():
            if not changes:
                raise ValueError(f"ablation variant {name!r} changes nothing")
            if changes.get("support", SUPPORT) != SUPPORT:
                raise ValueError(f"ablation variant {name!r}: support must be {SUPPORT!r}, "
                                 f"got {changes['support']!r}")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DeepSuite:
    """A deep-control benchmark: agents x (env, reward noise) x seeds x learning rates, in
    one or two configurations (the module docstring).

    Attributes:
      common: hyperparameters every agent's config gets (the budget; with ``reference``,
        every shared setting).
      agents: per-agent hyperparameters on top of ``common`` (with ``reference``: its head
        only, ``HEAD_KEYS``).
      reference: each agent's reference settings on top of ``common`` (empty: one
        configuration).
      reference_tasks: the tasks the reference configuration runs on (empty: all).
      support_from_task: C51's support in the common configuration from the task.
      final_bins: windows averaged into the final return.
      requires_accelerator: refuse to run on a CPU-only jax.
    """

    name: str
    description: str
    envs: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1")
    noises: tuple[str, ...] = tuple(NOISES)
    agents: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: dict(CPU_AGENTS)
    )
    common: Mapping[str, Any] = dataclasses.field(default_factory=lambda: dict(CPU_COMMON))
    learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    agent_learning_rates: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=dict
    )  # per-agent grids in place of ``learning_rates`` (one rate: fixed, not tuned)
    num_seeds: int = 10
    tuning_seeds: int = 3
    max_extensions: int = 3
    claims: tuple[Claim, ...] = ()
    num_bins: int = 50
    final_bins: int = 5
    base_seed: int = 0
    reps: int = 2_000
    requires_accelerator: bool = False
    reference: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    reference_tasks: tuple[str, ...] = ()
    support_from_task: bool = False
    ablation: Ablation = dataclasses.field(default_factory=Ablation)

    def __post_init__(self):
        tasks = set(self.tasks())
        if self.reference:
            for agent, hp in self.agents.items():
                extra = sorted(set(hp) - HEAD_KEYS)
                if extra:
                    raise ValueError(
                        f"agents.{agent} sets {', '.join(extra)}: in a suite with a reference "
                        "configuration every agent shares the common settings and adds only "
                        f"its head ({', '.join(sorted(HEAD_KEYS))}); put the rest in common "
                        "or reference"
                    )
        unknown = sorted(set(self.reference) - set(self.agents))
        unknown += sorted(t for t in self.reference_tasks if t not in tasks)
        if self.ablation.variants:
            unknown += [x for x in (self.ablation.agent,) if x not in self.agents]
            unknown += [x for x in (self.ablation.task,) if x not in tasks]
        if unknown:
            raise ValueError(f"unknown agent(s) or task(s) {unknown}; agents: "
                             f"{', '.join(self.agents)}; tasks: "
                             f"{', '.join(sorted(tasks))}")  # fmt: skip
        if self.support_from_task and any(k in self.agents.get("c51", {})
                                          for k in ("v_min", "v_max")):  # fmt: skip
            raise ValueError("agents.c51 sets v_min/v_max while support_from_task is true: "
                             "choose one")  # fmt: skip

    def task_support(self, task: str, gamma: float) -> tuple[float, float]:
        """C51's (v_min, v_max) from ``task``'s return range (``td_jax.deep.supports``)."""
        env, noise = task.split("/", 1)
        return supports.task_support(env, NOISES[noise], gamma)

    def agent_config(
        self, agent: str, configuration: str = COMMON, task: str | None = None
    ) -> agents_lib.AgentConfig:
        """``agent``'s config in ``configuration`` on ``task`` (its support, where it is
        the task's; ``task`` None: the config without a task's support)."""
        if configuration == REFERENCE:
            return agents_lib.make_config(agent, **{**self.common, **self.reference[agent]})
        if configuration != COMMON:
            raise ValueError(f"configuration must be {COMMON!r} or {REFERENCE!r}, got "
                             f"{configuration!r}")  # fmt: skip
        hp = {**self.common, **self.agents[agent]}
        if self.support_from_task and agent == "c51" and task is not None:
            gamma = hp.get("gamma", agents_lib.DQNConfig.gamma)
            hp["v_min"], hp["v_max"] = self.task_support(task, gamma)
        return agents_lib.make_config(agent, **hp)

    def configs(self) -> dict[str, agents_lib.AgentConfig]:
        """Each agent's common config (without a task's support)."""
        return {a: self.agent_config(a) for a in self.agents}

    def configurations(self) -> tuple[str, ...]:
        return (COMMON, REFERENCE) if self.reference else (COMMON,)

    def runs_on(self, configuration: str, task: str) -> bool:
        return configuration == COMMON or not self.reference_tasks or task in self.reference_tasks

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {
            f"{env}/{noise}": {
                "env": env, "noise_key": noise,
                "noise": noise_lib.as_noise(NOISES[noise]).describe(),
                "threshold": THRESHOLDS[env],
            }
            for env in self.envs for noise in self.noises
        }  # fmt: skip

    def seeds(self) -> list[int]:
        """The evaluation seeds (the scores)."""
        return list(range(self.base_seed, self.base_seed + self.num_seeds))

    def tuning_seed_list(self) -> list[int]:
        """The tuning seeds (the learning-rate choice), disjoint from ``seeds()``."""
        start = self.base_seed + TUNING_OFFSET
        return list(range(start, start + self.tuning_seeds))

    def grids(self) -> dict[str, tuple[float, ...]]:
        """Each agent's learning-rate grid (one rate: fixed, not tuned)."""
        return {a: tuple(self.agent_learning_rates.get(a, self.learning_rates))
                for a in self.agents}  # fmt: skip

    def tuned_agents(self) -> list[str]:
        """The agents whose learning rate is chosen on the tuning seeds."""
        return [a for a, grid in self.grids().items() if len(grid) > 1]

    def budget(self) -> str:
        steps = self.common.get("total_steps", agents_lib.DQNConfig.total_steps)
        grids, tuned = self.grids(), self.tuned_agents()
        fixed = {a: g[0] for a, g in grids.items() if a not in tuned}
        parts = []
        if fixed:
            parts.append(
                "learning rate fixed: " + ", ".join(f"{a} {lr:g}" for a, lr in fixed.items())
            )
        by_grid: dict[tuple[float, ...], list[str]] = {}
        for a in tuned:
            by_grid.setdefault(grids[a], []).append(a)
        for grid, names in by_grid.items():
            parts.append(
                f"learning rate of {', '.join(names)} chosen per task from {list(grid)} "
                f"(extended past an edge choice up to {self.max_extensions} time(s)) by mean "
                f"AUC on {self.tuning_seeds} tuning seeds"
            )
        return (f"Budget: {steps:,} environment steps per run; {'; '.join(parts)}; "
                f"{self.num_seeds} evaluation seeds; {len(self.tasks())} tasks, agents "
                f"{', '.join(self.agents)}; curves in {self.num_bins} windows.")  # fmt: skip

    def selection_text(self) -> str:
        """How each agent's learning rate was set, in the verdict's words."""
        tuned = self.tuned_agents()
        fixed = [a for a in self.agents if a not in tuned]
        parts = []
        if tuned:
            parts.append(f"{', '.join(tuned)} at the learning rate with the best mean AUC on "
                         "separate tuning seeds, per task (tuning.csv)")  # fmt: skip
        if fixed:
            parts.append(f"{', '.join(fixed)} at the suite's fixed learning rate, never tuned "
                         "(tuning.csv lists it)")  # fmt: skip
        return "Learning rates: " + "; ".join(parts) + "; scored on the evaluation seeds."

    def config(self) -> dict[str, Any]:
        out = {
            "name": self.name, "envs": list(self.envs),
            "noises": {n: NOISES[n] for n in self.noises},
            "agents": {a: dataclasses.asdict(c) for a, c in self.configs().items()},
            "learning_rates": list(self.learning_rates), "num_seeds": self.num_seeds,
            "agent_learning_rates": {a: list(g) for a, g in self.agent_learning_rates.items()},
            "tuning_seeds": self.tuning_seed_list(), "max_extensions": self.max_extensions,
            "claims": [dataclasses.asdict(c) for c in self.claims],
            "num_bins": self.num_bins, "final_bins": self.final_bins,
            "base_seed": self.base_seed, "thresholds": {e: THRESHOLDS[e] for e in self.envs},
        }  # fmt: skip
        # The keys below only where a suite uses them (older manifests keep their digests).
        if self.support_from_task and "c51" in self.agents:
            out["agents"]["c51"].update(v_min=SUPPORT, v_max=SUPPORT)
            gamma = out["agents"]["c51"]["gamma"]
            out["supports"] = {t: list(self.task_support(t, gamma)) for t in self.tasks()}
        if self.reference:
            out["reference"] = {a: dataclasses.asdict(self.agent_config(a, REFERENCE))
                                for a in self.reference}  # fmt: skip
            out["reference_tasks"] = list(self.reference_tasks) or list(self.tasks())
        if self.ablation.variants:
            out["ablation"] = dataclasses.asdict(self.ablation)
        return out
