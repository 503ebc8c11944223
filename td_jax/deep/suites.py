"""Deep-control suites as data: ``deep_control``, ``deep_control_quick`` and a MinAtar entry.

The question (SCIENCE.md section 8): do distributional agents (C51, QR-DQN) learn faster
than DQN? The small-scale anchor is Obando-Ceron and Castro, "Revisiting Rainbow", ICML
2021 (https://arxiv.org/abs/2011.14826), who ran these agents on classic control and
MinAtar. Here: gymnax's CartPole-v1 and Acrobot-v1, each with its plain reward and with
zero-mean reward noise from td_jax's families (``td_jax.deep.noise``); the score is the
true (noise-free) return.

Sizing for 2 CPU cores: the agents keep CleanRL's CartPole hyperparameters
(``td_jax.deep.agents``) except for what ties to the budget, which is 40,000 environment
steps instead of 500,000: learning starts after 1,000 steps (CleanRL's 10,000 is 2% of its
budget; 10,000 would be a fifth of ours), epsilon still decays over half the budget. C51
has 51 atoms (Bellemare et al.'s, instead of CleanRL's 101) and QR-DQN 25 quantiles
(instead of the paper's 200): the pairwise loss terms cost O(atoms^2) per transition, which
on 2 cores decides the budget. Learning rates: with CleanRL's 2.5e-4, QR-DQN diverged on
CartPole in our first runs while learning at 1e-3, and 1e-3 was the best of {2.5e-4, 1e-3}
for every agent and task, an edge choice; so each agent's rate is chosen per task from
{3e-4, 1e-3, 3e-3} (extended up to 3 times past an edge) by mean AUC on 3 tuning seeds,
and scored on 10 separate evaluation seeds (SCIENCE.md section 7: never tuned and scored
on the same seeds). The wall time is in the manifest.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from td_jax.deep import agents as agents_lib
from td_jax.deep import analysis
from td_jax.deep import noise as noise_lib
from td_jax.deep import train as train_lib
from td_jax.engine import driver, store
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import CustomSuite
from td_jax.runner.result import read_npz, write_npz
from td_jax.studies import suite_files

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
class DeepSuite:
    """A deep-control benchmark: agents x (env, reward noise) x seeds x learning rates.

    Attributes:
      common: hyperparameters every agent's config gets (the budget).
      agents: per-agent hyperparameters on top of ``common``.
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

    def configs(self) -> dict[str, agents_lib.AgentConfig]:
        return {a: agents_lib.make_config(a, **{**self.common, **hp})
                for a, hp in self.agents.items()}  # fmt: skip

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

    def config(self) -> dict[str, Any]:
        return {
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


@dataclasses.dataclass
class DeepRuns:
    """One unit's training curves, a ``store.Units`` result kind (``save`` / ``load`` /
    ``info``, like ``RunResult``): ``returns`` f32[seeds, lrs, bins], the mean true return
    of the episodes ending in each window, NaN where none did; ``counts`` int[seeds, lrs,
    bins], how many ended there."""

    returns: np.ndarray
    counts: np.ndarray
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Writes ``path`` (a ``.npz`` archive) atomically; ``load`` reads it back."""
        meta = np.frombuffer(json.dumps(self.info, default=str).encode(), dtype=np.uint8)
        return write_npz(path, {"returns": self.returns, "counts": self.counts, "meta": meta})

    @classmethod
    def load(cls, path: str | Path) -> DeepRuns:
        """Reads a file ``save`` wrote (ValueError naming the file if it is not one)."""

        def read(data) -> DeepRuns:
            info = json.loads(bytes(data["meta"]).decode())
            return cls(data["returns"], data["counts"], info)

        return read_npz(path, "DeepRuns", read)


def compute_unit(
    suite: DeepSuite, agent: str, task: dict[str, Any], seeds: list[int], lrs: list[float]
) -> DeepRuns:
    """One (agent, task): ``seeds`` x ``lrs`` in one jitted program."""
    config = suite.configs()[agent]
    out = train_lib.run_batch(config, task["env"], seeds, lrs, NOISES[task["noise_key"]],
                              suite.num_bins)  # fmt: skip
    return DeepRuns(np.asarray(out["returns"]), np.asarray(out["counts"]))


def _edge(lr: float, grid: list[float]) -> str:
    if len(grid) < 2:
        return ""
    return "low" if lr <= min(grid) else "high" if lr >= max(grid) else ""


def tune_and_evaluate(suite: DeepSuite, units: store.Units, agent: str, task_name: str,
                      task: dict[str, Any]):  # fmt: skip
    """Learning rate by mean AUC on the tuning seeds (the grid extended by its own ratio
    past an edge choice, ``max_extensions`` times at most), then the evaluation seeds at
    that rate. Returns (evaluation arrays, chosen lr, its edge or '', tuning rows)."""
    base = {"suite": suite.config(), "agent": agent, "task": task_name}
    name = f"{agent}__{task_name.replace('/', '__')}"
    grid, auc = list(suite.agent_learning_rates.get(agent, suite.learning_rates)), {}
    ratio = grid[1] / grid[0] if len(grid) > 1 else 1.0
    new, rounds = (list(grid) if len(grid) > 1 else []), 0
    best, edge = grid[0], ""  # one rate: fixed by the suite, nothing to tune
    while new:
        res = units.get(
            f"{name}__tune{rounds}",
            {**base, "tune": new},
            lambda n=new: compute_unit(suite, agent, task, suite.tuning_seed_list(), n),
        )
        curve = analysis.fill_curve(res.returns)  # [seeds, lrs, bins]
        for j, lr in enumerate(new):
            auc[lr] = float(curve[:, j].mean())
        best = max(auc, key=lambda lr: (auc[lr], -lr))
        edge = _edge(best, grid)
        if not edge or rounds >= suite.max_extensions:
            break
        step = ratio if edge == "high" else 1.0 / ratio
        new = [float(f"{best * step:.3g}")]
        grid += new
        rounds += 1
    rows = [{"agent": agent, "task": task_name, "learning_rate": lr,
             "tuning_auc_mean": auc.get(lr, float("nan")), "chosen": lr == best}
            for lr in sorted(auc or {best: None})]  # fmt: skip
    res = units.get(
        f"{name}__eval",
        {**base, "eval": best},
        lambda: compute_unit(suite, agent, task, suite.seeds(), [best]),
    )
    return res, best, edge, rows


class DeepUnit:
    """One (agent, task) of a deep suite, as the driver runs it (``engine.driver``): its
    learning rate tuned on the tuning seeds, then its evaluation seeds."""

    spec = None  # no rule spec: a deep suite's agents are its own

    def __init__(self, agent: str, task_name: str, task: dict[str, Any]):
        self.agent, self.task_name, self.task = agent, task_name, task
        self.cache: store.Units | None = None
        self.policy = store.policy()  # taken here, in the main thread (``store.Units``)
        self.result: DeepRuns | None = None
        self.lr, self.edge, self.rows = float("nan"), "", []

    @property
    def name(self) -> str:
        return f"{self.agent}__{self.task_name.replace('/', '__')}"


def _prepare(suite: DeepSuite) -> dict[str, dict[str, Any]]:
    if suite.requires_accelerator and jax.default_backend() == "cpu":
        raise BenchError(f"suite {suite.name!r} runs when an accelerator is present; jax sees "
                         "only the CPU")  # fmt: skip
    return suite.tasks()


def _make_units(suite: DeepSuite, tasks: dict[str, dict[str, Any]]) -> list[DeepUnit]:
    return [DeepUnit(agent, name, task) for name, task in tasks.items() for agent in suite.agents]


def _run_unit(unit: DeepUnit, suite: DeepSuite, out: Path) -> None:
    unit.cache = store.Units(out, lambda msg: None, kind=DeepRuns, policy=unit.policy)
    unit.result, unit.lr, unit.edge, unit.rows = tune_and_evaluate(
        suite, unit.cache, unit.agent, unit.task_name, unit.task
    )


def _describe(unit: DeepUnit) -> str:
    edge = f" (grid edge {unit.edge})" if unit.edge else ""
    return (f"lr {unit.lr:g}{edge}, {unit.cache.computed} run(s) computed, "
            f"{unit.cache.reused} reused")  # fmt: skip


def _write(suite: DeepSuite, stage: Path, units: list[DeepUnit], tasks: dict[str, Any],
           floors: dict, out: Path) -> dict[str, Any]:  # fmt: skip
    """The tables, figures and verdict into ``stage``; the manifest's entries so far."""
    results = {(u.agent, u.task_name): u.result for u in units}
    chosen_lr = {(u.agent, u.task_name): u.lr for u in units}
    edges = {(u.agent, u.task_name): u.edge for u in units}
    tuning_rows = [row for u in units for row in u.rows]
    ends = np.asarray(train_lib.window_ends(suite.configs()[next(iter(suite.agents))].total_steps,
                                            suite.num_bins))  # fmt: skip
    agent_names = tuple(suite.agents)
    curves, summary, chosen = analysis.tables(
        results, tasks, agent_names, chosen_lr, suite.seeds(), ends, suite.final_bins,
        suite.reps,
    )  # fmt: skip
    summary["lr_grid_edge"] = [edges[(a, t)] for a, t in zip(summary["agent"], summary["task"],
                                                             strict=True)]  # fmt: skip
    files = [store.write_csv(curves, stage / "curves.csv"),
             store.write_csv(summary, stage / "summary.csv"),
             store.write_csv(pd.DataFrame(tuning_rows), stage / "tuning.csv")]  # fmt: skip
    lrs = dict(zip(zip(summary["agent"], summary["task"], strict=True),
                   summary["learning_rate"], strict=True))  # fmt: skip
    for task_name in tasks:
        fig = analysis.figure(task_name, chosen, agent_names, ends, lrs)
        files.append(store.save_figure(fig, stage / f"curve_{task_name.replace('/', '_')}.png"))
    files.append(store.write_text(stage / "verdict.md", _verdict(suite, summary)))
    return _manifest(suite, summary, edges, results, files)


def _verdict(suite: DeepSuite, summary: pd.DataFrame) -> str:
    text = analysis.verdict(summary, suite.description, suite.budget())
    claims = analysis.claims_section(summary, suite.claims)
    return text.rstrip("\n") + "\n\n" + claims if claims else text


def _manifest(suite: DeepSuite, summary: pd.DataFrame, edges: dict, results: dict,
              files: list[str]) -> dict[str, Any]:  # fmt: skip
    headline = summary[["agent", "task", "learning_rate", "auc_iqm", "auc_low", "auc_high",
                        "final_iqm", "p_improvement_auc", "p_improvement_low",
                        "p_improvement_high"]].to_dict(orient="records")  # fmt: skip
    return {
        "suite": suite.name, "configuration": suite.config(),
        # Tuning seeds only where some agent's rate is tuned (none: every rate is fixed).
        "seeds": {"tuning": suite.tuning_seed_list() if suite.tuned_agents() else [],
                  "evaluation": suite.seeds()},
        "lr_grid_edges": int(sum(bool(e) for e in edges.values())),
        "headline": headline, "files": sorted(files + ["manifest.json"]),
        # Training time of every unit, cached ones included (None: a unit saved without it).
        "unit_seconds_all": float(sum(r.info["unit_seconds"] for r in results.values())),
    }  # fmt: skip


# The deep agents' track of the one suite driver: one (agent, task) at a time (each is one
# large jitted program that uses every core), no bias floors.
TRACK = driver.Track(prepare=_prepare, make_units=_make_units, run_unit=_run_unit,
                     write=_write, describe=_describe, workers=1)  # fmt: skip


def run_suite(suite: DeepSuite, out: Path, quiet: bool = False) -> dict[str, Any]:
    """Trains every unit (resumable), writes the report into ``out``, returns the manifest
    (``engine.driver.run_suite`` on the deep track)."""
    return driver.run_suite(suite, out, quiet=quiet, track=TRACK)


SETTINGS = DeepSuite  # the dataclass of a deep study file's [settings] (studies.module_files)


def suite(name: str, description: str, settings: DeepSuite) -> CustomSuite:
    """The suite a deep study file defines (``name`` and ``description`` are the file's,
    already in ``settings``)."""
    return CustomSuite(settings.name, settings.description,
                       lambda out, quiet=False: run_suite(settings, out, quiet))  # fmt: skip


def deep_control() -> DeepSuite:
    """benchmarks/deep_control.toml: DQN vs C51 vs QR-DQN on CartPole-v1 and Acrobot-v1,
    plain and with reward noise (CPU-sized)."""
    return suite_files.settings("deep_control")


def deep_control_quick() -> DeepSuite:
    """benchmarks/deep_control_quick.toml: seconds, a tiny budget for the tests (nothing is
    learned; the plumbing is checked)."""
    return suite_files.settings("deep_control_quick")


def deep_minatar() -> DeepSuite:
    """benchmarks/deep_minatar.toml: Breakout-MinAtar (Young and Tian 2019, in gymnax), as
    in Revisiting Rainbow: runs when an accelerator is present (about 3 hours of 2 CPU
    cores per agent otherwise)."""
    return suite_files.settings("deep_minatar")
