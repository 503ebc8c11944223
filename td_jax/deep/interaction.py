"""Does distributional learning make an agent more robust to the reward distribution?

Per configuration, distributional agent, environment and reward-noise family: the change
in mean return AUC from the plain task to the noisy one, less DQN's change (a difference
in differences),

    DiD = (AUC_agent(noise) - AUC_agent(plain)) - (AUC_dqn(noise) - AUC_dqn(plain)),

each AUC the mean over the evaluation seeds of a run's AUC (``analysis.run_scores``; the
true, noise-free return). DiD > 0: the noise costs the agent less than it costs DQN. The
four groups are independent runs; the 95% interval is rliable's stratified bootstrap
(Agarwal et al. 2021, https://arxiv.org/abs/2108.13264), resampling the seeds of each
group apart (the groups are its strata). A call needs the interval to exclude 0.

The noisy groups run at the learning rate tuned on the plain task (``units``: one
evaluation per noisy task, or the noisy task's own run where its tuned rate is the same),
so that a DiD does not hold what changing the rate did. An agent that already fails on the
plain task has little left to lose; and noise can raise an agent's AUC (``FLAGS``). The
answer counts the calls apart where the agent fails on the plain task.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from td_jax.deep.analysis import BASELINE, call, fill_curve
from td_jax.deep.settings import COMMON, REFERENCE
from td_jax.engine.scoring import stats
from td_jax.engine.scoring.markdown import markdown_table

PLAIN = "none"


def did(matrix: np.ndarray) -> float:
    """DiD of f64[seeds, 4] AUCs, columns (agent plain, agent noisy, DQN plain, DQN noisy)."""
    m = matrix.mean(axis=0)
    return float((m[1] - m[0]) - (m[3] - m[2]))


def interval(matrix: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """The 95% stratified-bootstrap interval of ``did`` (rliable; the columns are strata)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import library
    with stats._seeded(seed):
        _, ci = library.get_interval_estimates(
            {"did": matrix}, lambda x: np.array([did(x)]), reps=reps,
            confidence_interval_size=stats.CONFIDENCE, random_state=np.random.RandomState(seed),
        )  # fmt: skip
    return float(ci["did"][0, 0]), float(ci["did"][1, 0])


FIXED = "fixed"  # the configuration prefix of the fixed-rate units: "fixed:common"
FLAGS = {
    "rises": "the agent's AUC rises with the noise",
    "fails": "the agent is slower than DQN on the plain task (little left to lose)",
}


def units(suite, main: list, unit_class) -> list:
    """Per configuration, agent and noisy task run with its plain task: a unit that
    evaluates the agent there at the plain task's tuned rate (set when it runs)."""
    if PLAIN not in suite.noises:
        return []
    by = {(u.configuration, u.agent, u.task_name): u for u in main}
    out = []
    for (configuration, agent, task), noisy in by.items():
        env, noise = task.split("/", 1)
        plain = by.get((configuration, agent, f"{env}/{PLAIN}"))
        if noise == PLAIN or plain is None:
            continue
        unit = unit_class(f"{FIXED}:{configuration}", agent, task, noisy.task, noisy.config,
                          noisy.grid)  # fmt: skip
        unit.plain, unit.noisy = plain, noisy
        out.append(unit)
    return out


def _fixed_units(suite, all_units: list) -> dict:
    """(configuration, agent, noisy task) -> its fixed-rate unit; an agent whose reference
    settings are its common ones takes its common unit."""
    out = {(u.configuration.split(":", 1)[1], u.agent, u.task_name): u
           for u in all_units if u.configuration.startswith(f"{FIXED}:")}  # fmt: skip
    for (configuration, agent, task), u in list(out.items()):
        if configuration == COMMON and suite.reference and suite.runs_on(REFERENCE, task):
            out.setdefault((REFERENCE, agent, task), u)
    return out


def fixed_curves(suite, all_units: list) -> dict:
    """(configuration, agent, noisy task) -> (f64[seeds, bins] curves, rate) at the plain
    task's rate (``_fixed_units``)."""
    return {k: (fill_curve(np.asarray(u.result.returns)[:, 0]), u.lr)
            for k, u in _fixed_units(suite, all_units).items()}  # fmt: skip


def curves_frame(suite, all_units: list, ends: np.ndarray) -> pd.DataFrame:
    """noise_interaction_curves.csv: the fixed-rate runs of the noisy tasks, in
    curves.csv's columns (configuration, agent, task, seed, learning_rate, env_step,
    return, episodes)."""
    rows = []
    for (configuration, agent, task), u in _fixed_units(suite, all_units).items():
        returns = np.asarray(u.result.returns)[:, 0]
        counts = np.asarray(u.result.counts)[:, 0]
        for s, seed in enumerate(suite.seeds()):
            for b, end in enumerate(ends):
                rows.append((configuration, agent, task, seed, u.lr, int(end), returns[s, b],
                             int(counts[s, b])))  # fmt: skip
    columns = ["configuration", "agent", "task", "seed", "learning_rate", "env_step",
               "return", "episodes"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def flags(row: dict, plain_call: str) -> str:
    """The keys of ``FLAGS`` that hold for a row of ``table`` ('' for none), given the
    agent's call against DQN on the plain task (``analysis.call``)."""
    out = ["rises"] if row["change_agent"] > 0 else []
    return ", ".join(out + (["fails"] if plain_call == "slower" else []))


def _call(low: float, high: float) -> str:
    return "less hurt" if low > 0 else "more hurt" if high < 0 else "no clear difference"


def table(chosen: dict, fixed: dict, suite, lrs: dict, summary: pd.DataFrame) -> pd.DataFrame:
    """noise_interaction.csv: a row per (configuration, agent, env, noisy family) where all
    four groups ran. ``chosen[(configuration, agent, task)]``: f64[seeds, bins] curves
    (the plain groups); ``fixed``: (curves, rate) of the noisy groups at the plain task's
    rate (``fixed_curves``); ``lrs``: the plain groups' rates; ``summary``: summary.csv."""
    plain = {(r.get("configuration", COMMON), r["agent"], r["task"]): call(r)
             for _, r in summary.iterrows() if r["agent"] != BASELINE}  # fmt: skip
    rows, seed = [], 0
    for configuration in suite.configurations():
        for agent in [a for a in suite.agents if a != BASELINE]:
            for env in suite.envs:
                for noise in [n for n in suite.noises if n != PLAIN]:
                    base = [(configuration, a, f"{env}/{PLAIN}") for a in (agent, BASELINE)]
                    noisy = [(configuration, a, f"{env}/{noise}") for a in (agent, BASELINE)]
                    if not all(k in chosen for k in base) or not all(k in fixed for k in noisy):
                        continue
                    cols = [chosen[base[0]], fixed[noisy[0]][0], chosen[base[1]],
                            fixed[noisy[1]][0]]  # fmt: skip
                    matrix = np.stack([c.mean(-1) for c in cols], axis=1)
                    low, high = interval(matrix, suite.reps, seed)
                    m = matrix.mean(axis=0)
                    row = {
                        "configuration": configuration, "agent": agent, "env": env,
                        "noise": noise, "lr_agent": lrs[base[0]], "lr_dqn": lrs[base[1]],
                        "auc_agent_plain": m[0], "auc_agent_noise": m[1],
                        "auc_dqn_plain": m[2], "auc_dqn_noise": m[3],
                        "change_agent": m[1] - m[0], "change_dqn": m[3] - m[2],
                        "did": did(matrix), "did_low": low, "did_high": high,
                        "call": _call(low, high), "seeds": matrix.shape[0],
                    }  # fmt: skip
                    ran = (fixed[noisy[0]][1], fixed[noisy[1]][1])
                    if ran != (row["lr_agent"], row["lr_dqn"]):
                        raise ValueError(
                            f"noise interaction {configuration}/{agent}/{env}/{noise}: the "
                            f"noisy runs are at learning rates {ran}, not the plain task's "
                            f"{(row['lr_agent'], row['lr_dqn'])}"
                        )
                    row["flags"] = flags(row, plain[base[0]])
                    rows.append(row)
                    seed += 1
    return pd.DataFrame(rows)


def section(frame: pd.DataFrame) -> str:
    """The verdict's markdown of ``table``."""
    lines = [
        "## The noise interaction", "",
        "Per agent: the change in mean return AUC from the plain task to each reward-noise "
        "family, less DQN's change (difference in differences; > 0: the noise costs the agent "
        "less than DQN), with rliable's stratified-bootstrap 95% interval over the four "
        "groups' seeds. A call needs the interval to exclude 0. Every agent runs the noisy "
        "task at the learning rate tuned on the plain task (`lr_agent`, `lr_dqn`). *Flags*: "
        + "; ".join(f"`{k}`: {v}" for k, v in FLAGS.items()) + ".", "",
    ]  # fmt: skip
    cols = ["configuration", "agent", "env", "noise", "lr_agent", "lr_dqn", "change_agent",
            "change_dqn", "did", "did_low", "did_high", "call", "flags"]  # fmt: skip
    return "\n".join([*lines, markdown_table(frame[cols], ".3g"), ""])
