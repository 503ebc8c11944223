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

deep_control runs two configurations (``td_jax.deep.settings``: a common one, with C51's
support from the task, and each agent's reference settings), the noise interaction
(``td_jax.deep.interaction``) and an ablation of reference C51 on Acrobot
(``td_jax.deep.ablation``); a call holds only if it holds in both configurations.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from td_jax.deep import ablation, analysis, interaction
from td_jax.deep import agents as agents_lib
from td_jax.deep import train as train_lib
from td_jax.deep.settings import (  # noqa: F401  (the suite's names, re-exported)
    COMMON,
    CPU_AGENTS,
    CPU_COMMON,
    NOISES,
    REFERENCE,
    SUPPORT,
    THRESHOLDS,
    TUNING_OFFSET,
    Ablation,
    Claim,
    DeepSuite,
)
from td_jax.engine import driver, store
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import CustomSuite
from td_jax.runner.result import read_npz, write_npz
from td_jax.studies import suite_files


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
    suite: DeepSuite,
    config: agents_lib.AgentConfig,
    task: dict[str, Any],
    seeds: list[int],
    lrs: list[float],
) -> DeepRuns:
    """One (agent config, task): ``seeds`` x ``lrs`` in one jitted program."""
    out = train_lib.run_batch(config, task["env"], seeds, lrs, NOISES[task["noise_key"]],
                              suite.num_bins)  # fmt: skip
    return DeepRuns(np.asarray(out["returns"]), np.asarray(out["counts"]))


def _edge(lr: float, grid: list[float]) -> str:
    if len(grid) < 2:
        return ""
    return "low" if lr <= min(grid) else "high" if lr >= max(grid) else ""


class DeepUnit:
    """One (configuration, agent, task) of a deep suite, or one ablation variant, as the
    driver runs it (``engine.driver``): its learning rate tuned on the tuning seeds (a
    one-rate grid: fixed), then its evaluation seeds."""

    spec = None  # no rule spec: a deep suite's agents are its own

    def __init__(self, configuration: str, agent: str, task_name: str, task: dict[str, Any],
                 config: agents_lib.AgentConfig, grid: tuple[float, ...]):  # fmt: skip
        self.configuration, self.agent, self.task_name, self.task = (
            configuration, agent, task_name, task)  # fmt: skip
        self.config, self.grid = config, tuple(grid)
        self.cache: store.Units | None = None
        self.policy = store.policy()  # taken here, in the main thread (``store.Units``)
        self.cancel = threading.Event()  # set by the driver when another unit fails
        self.result: DeepRuns | None = None
        self.lr, self.edge, self.rows = float("nan"), "", []
        # A fixed-rate unit of the noise interaction: the plain task's unit (whose tuned
        # rate it runs at) and the noisy task's own (``interaction.units``).
        self.plain: DeepUnit | None = None
        self.noisy: DeepUnit | None = None

    @property
    def name(self) -> str:
        base = f"{self.agent}__{self.task_name.replace('/', '__')}"
        if self.configuration == COMMON:
            return base
        if self.configuration == REFERENCE:
            return f"reference__{base}"
        if self.configuration.startswith(interaction.FIXED):
            return f"{self.configuration.replace(':', '_')}__{base}"
        return f"ablation__{self.configuration.split(':', 1)[1].replace(' ', '_')}"


def tune_and_evaluate(suite: DeepSuite, units: store.Units, unit: DeepUnit):
    """Learning rate by mean AUC on the tuning seeds (the grid extended by its own ratio
    past an edge choice, ``max_extensions`` times at most), then the evaluation seeds at
    that rate. Returns (evaluation arrays, chosen lr, its edge or '', tuning rows)."""
    base = {"suite": suite.config(), "agent": unit.agent, "task": unit.task_name}
    if unit.configuration != COMMON:  # (the common units keep their keys' shape)
        base |= {"configuration": unit.configuration, "config": dataclasses.asdict(unit.config)}
    grid, auc = list(unit.grid), {}
    ratio = grid[1] / grid[0] if len(grid) > 1 else 1.0
    new, rounds = (list(grid) if len(grid) > 1 else []), 0
    best, edge = grid[0], ""  # one rate: fixed by the suite, nothing to tune

    def compute(seeds, lrs):
        return lambda: compute_unit(suite, unit.config, unit.task, seeds, lrs)

    while new:
        res = units.get(f"{unit.name}__tune{rounds}", {**base, "tune": new},
                        compute(suite.tuning_seed_list(), new))  # fmt: skip
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
    rows = [{"agent": unit.agent, "task": unit.task_name, "learning_rate": lr,
             "tuning_auc_mean": auc.get(lr, float("nan")), "chosen": lr == best}
            for lr in sorted(auc or {best: None})]  # fmt: skip
    if suite.reference:
        rows = [{"configuration": unit.configuration, **row} for row in rows]
    res = units.get(f"{unit.name}__eval", {**base, "eval": best},
                    compute(suite.seeds(), [best]))  # fmt: skip
    return res, best, edge, rows


def _prepare(suite: DeepSuite) -> dict[str, dict[str, Any]]:
    if suite.requires_accelerator and jax.default_backend() == "cpu":
        raise BenchError(f"suite {suite.name!r} runs when an accelerator is present; jax sees "
                         "only the CPU")  # fmt: skip
    return suite.tasks()


def _make_units(suite: DeepSuite, tasks: dict[str, dict[str, Any]]) -> list[DeepUnit]:
    """Every (configuration, task, agent), a reference config equal to the common one on
    its task left out (its rows are the common runs), then the ablation's variants."""
    grids, units = suite.grids(), []
    for configuration in suite.configurations():
        for name, task in tasks.items():
            if not suite.runs_on(configuration, name):
                continue
            for agent in suite.agents:
                if configuration == REFERENCE and agent not in suite.reference:
                    continue
                config = suite.agent_config(agent, configuration, name)
                if configuration == REFERENCE and config == suite.agent_config(agent, COMMON, name):
                    continue
                units.append(DeepUnit(configuration, agent, name, task, config, grids[agent]))
    return (
        units + interaction.units(suite, units, DeepUnit) + ablation.units(suite, tasks, DeepUnit)
    )


def _run_unit(unit: DeepUnit, suite: DeepSuite, out: Path) -> None:
    unit.cache = store.Units(
        out, lambda msg: None, kind=DeepRuns, policy=unit.policy, cancel=unit.cancel
    )
    if unit.configuration.startswith(interaction.FIXED):  # the noisy task at the plain's rate
        if not np.isfinite(unit.plain.lr):
            raise BenchError(f"{unit.name}: its plain task's unit has not run")
        if unit.plain.lr == unit.noisy.lr:  # the noisy task's own run is at that rate
            unit.result, unit.lr = unit.noisy.result, unit.plain.lr
            return
        unit.grid = (unit.plain.lr,)
    unit.result, unit.lr, unit.edge, unit.rows = tune_and_evaluate(suite, unit.cache, unit)


def _describe(unit: DeepUnit) -> str:
    edge = f" (grid edge {unit.edge})" if unit.edge else ""
    return (f"lr {unit.lr:g}{edge}, {unit.cache.computed} run(s) computed, "
            f"{unit.cache.reused} reused")  # fmt: skip


def _resolved(suite: DeepSuite, units: list[DeepUnit]) -> dict[tuple[str, str, str], DeepUnit]:
    """(configuration, agent, task) -> the unit that holds its runs (a reference config
    equal to the common one: the common unit)."""
    main = {(u.configuration, u.agent, u.task_name): u for u in units
            if u.configuration in (COMMON, REFERENCE)}  # fmt: skip
    for name in suite.tasks():
        if not suite.reference or not suite.runs_on(REFERENCE, name):
            continue
        for agent in suite.agents:
            main.setdefault((REFERENCE, agent, name), main[(COMMON, agent, name)])
    return main


def _write(suite: DeepSuite, stage: Path, units: list[DeepUnit], tasks: dict[str, Any],
           floors: dict, out: Path) -> dict[str, Any]:  # fmt: skip
    """The tables, figures and verdict into ``stage``; the manifest's entries so far."""
    main = _resolved(suite, units)
    ends = np.asarray(train_lib.window_ends(suite.configs()[next(iter(suite.agents))].total_steps,
                                            suite.num_bins))  # fmt: skip
    agent_names = tuple(suite.agents)
    parts, chosen = [], {}
    for configuration in suite.configurations():
        names = {t: tasks[t] for t in tasks if suite.runs_on(configuration, t)}
        keys = [(configuration, a, t) for t in names for a in agent_names]
        curves, summary, picked = analysis.tables(
            {(a, t): main[(c, a, t)].result for c, a, t in keys}, names, agent_names,
            {(a, t): main[(c, a, t)].lr for c, a, t in keys}, suite.seeds(), ends,
            suite.final_bins, suite.reps,
        )  # fmt: skip
        pairs = list(zip(summary["agent"], summary["task"], strict=True))
        summary["lr_grid_edge"] = [main[(configuration, a, t)].edge for a, t in pairs]
        if suite.reference:
            shared = [main[(configuration, a, t)].configuration != configuration for a, t in pairs]
            summary["runs"] = np.where(shared, "the common configuration's", "own")
            curves.insert(0, "configuration", configuration)
            summary.insert(0, "configuration", configuration)
        parts.append((curves, summary))
        chosen |= {(configuration, a, t): v for (a, t), v in picked.items()}
    curves = pd.concat([c for c, _ in parts], ignore_index=True)
    summary = pd.concat([s for _, s in parts], ignore_index=True)
    tuning_rows = [row for u in units if u.configuration in (COMMON, REFERENCE) for row in u.rows]
    files = [store.write_csv(curves, stage / "curves.csv"),
             store.write_csv(summary, stage / "summary.csv"),
             store.write_csv(pd.DataFrame(tuning_rows), stage / "tuning.csv")]  # fmt: skip
    extra = {}
    lrs = {k: u.lr for k, u in main.items()}
    fixed = interaction.fixed_curves(suite, units)
    did = interaction.table(chosen, fixed, suite, lrs, summary) if fixed else None
    if did is not None and len(did):
        files.append(store.write_csv(did, stage / "noise_interaction.csv"))
        fixed_runs = interaction.curves_frame(suite, units, ends)
        files.append(store.write_csv(fixed_runs, stage / "noise_interaction_curves.csv"))
    abl = ablation.table(suite, units, ends)
    if abl is not None:
        files.append(store.write_csv(abl, stage / "ablation.csv"))
    for task_name in tasks:
        fig = analysis.figure(task_name, chosen, agent_names, ends, suite.configurations(), lrs)
        files.append(store.save_figure(fig, stage / f"curve_{task_name.replace('/', '_')}.png"))
    text, extra["answer"] = _verdict(suite, summary, did, abl)
    files.append(store.write_text(stage / "verdict.md", text))
    edges = {k: u.edge for k, u in main.items()}
    runs = list({id(u.result): u.result for u in units}.values())  # a reused run once
    return _manifest(suite, summary, edges, runs, files) | extra


def _verdict(suite: DeepSuite, summary: pd.DataFrame, did: pd.DataFrame | None,
             abl: pd.DataFrame | None) -> tuple[str, str]:  # fmt: skip
    """The verdict's markdown and its one-sentence answer."""
    answer = analysis.answer(summary, did)
    sections = []
    for configuration in suite.configurations():
        rows = summary[summary["configuration"] == configuration] if suite.reference else summary
        sections.append(analysis.verdict_lines(rows, configuration if suite.reference else ""))
    text = analysis.verdict(suite.description, suite.budget(), suite.selection_text(),
                            sections, answer if suite.reference else "")  # fmt: skip
    if did is not None and len(did):
        text += "\n" + interaction.section(did)
    if abl is not None:
        text += "\n" + ablation.section(abl, suite.ablation)
    claims = analysis.claims_section(summary, suite.claims)
    return (text.rstrip("\n") + "\n\n" + claims if claims else text), answer


def _manifest(suite: DeepSuite, summary: pd.DataFrame, edges: dict, results: list,
              files: list[str]) -> dict[str, Any]:  # fmt: skip
    cols = ["agent", "task", "learning_rate", "auc_iqm", "auc_low", "auc_high", "final_iqm",
            "p_improvement_auc", "p_improvement_low", "p_improvement_high"]  # fmt: skip
    if suite.reference:
        cols = ["configuration", *cols]
    return {
        "suite": suite.name, "configuration": suite.config(),
        # Tuning seeds only where some agent's rate is tuned (none: every rate is fixed).
        "seeds": {"tuning": suite.tuning_seed_list() if suite.tuned_agents() else [],
                  "evaluation": suite.seeds()},
        "lr_grid_edges": int(sum(bool(e) for e in edges.values())),
        "headline": summary[cols].to_dict(orient="records"),
        "files": sorted(files + ["manifest.json"]),
        # Training time of every unit, cached ones included (None: a unit saved without it).
        "unit_seconds_all": float(sum(r.info["unit_seconds"] for r in results)),
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
