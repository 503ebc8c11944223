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

Each group runs at the learning rate tuned on its own task, so a DiD also holds what
changing the rate between the plain and the noisy task did; and an agent that already
fails on the plain task has little left to lose. A row names these *confounds*
(``CONFOUNDS``); the answer counts a call as evidence of robustness only without them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from td_jax.deep.analysis import BASELINE
from td_jax.deep.settings import COMMON
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


CONFOUNDS = {
    "rates": "a learning rate differs between the plain and the noisy task",
    "rises": "the agent's AUC rises with the noise",
    "fails": "the agent is slower than DQN on the plain task",
}


def confounds(row: dict, plain_call: str) -> str:
    """The keys of ``CONFOUNDS`` that hold for a row of ``table`` ('' for none), given the
    agent's call against DQN on the plain task (``analysis.call``)."""
    out = []
    if row["lr_agent_plain"] != row["lr_agent_noise"] or row["lr_dqn_plain"] != row["lr_dqn_noise"]:
        out.append("rates")
    if row["change_agent"] > 0:
        out.append("rises")
    if plain_call == "slower":
        out.append("fails")
    return ", ".join(out)


def _call(low: float, high: float) -> str:
    return "less hurt" if low > 0 else "more hurt" if high < 0 else "no clear difference"


def table(chosen: dict, suite, lrs: dict, summary: pd.DataFrame) -> pd.DataFrame:
    """noise_interaction.csv: a row per (configuration, agent, env, noisy family) where all
    four groups ran. ``chosen[(configuration, agent, task)]``: f64[seeds, bins] curves;
    ``lrs``: their learning rates; ``summary``: summary.csv (the plain task's calls)."""
    from td_jax.deep.analysis import call

    plain = {(r.get("configuration", COMMON), r["agent"], r["task"]): call(r)
             for _, r in summary.iterrows() if r["agent"] != BASELINE}  # fmt: skip
    rows, seed = [], 0
    for configuration in suite.configurations():
        for agent in [a for a in suite.agents if a != BASELINE]:
            for env in suite.envs:
                for noise in [n for n in suite.noises if n != PLAIN]:
                    keys = [(configuration, a, f"{env}/{n}") for a in (agent, BASELINE)
                            for n in (PLAIN, noise)]  # fmt: skip
                    if not all(k in chosen for k in keys):
                        continue
                    matrix = np.stack([chosen[k].mean(-1) for k in keys], axis=1)
                    low, high = interval(matrix, suite.reps, seed)
                    m = matrix.mean(axis=0)
                    row = {
                        "configuration": configuration, "agent": agent, "env": env,
                        "noise": noise, "auc_agent_plain": m[0], "auc_agent_noise": m[1],
                        "auc_dqn_plain": m[2], "auc_dqn_noise": m[3],
                        "change_agent": m[1] - m[0], "change_dqn": m[3] - m[2],
                        "did": did(matrix), "did_low": low, "did_high": high,
                        "call": _call(low, high), "seeds": matrix.shape[0],
                        **{f"lr_{who}_{kind}": lrs[k] for (who, kind), k in zip(
                            [("agent", "plain"), ("agent", "noise"), ("dqn", "plain"),
                             ("dqn", "noise")], keys, strict=True)},
                    }  # fmt: skip
                    row["confounds"] = confounds(row, plain[keys[0]])
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
        "groups' seeds. A call needs the interval to exclude 0. Each group runs at the rate "
        "tuned on its own task; *confounds*: " + "; ".join(
            f"`{k}`: {v}" for k, v in CONFOUNDS.items()) + ". A call with a confound is "
        "not evidence that the agent is more or less robust to the reward noise.", "",
    ]  # fmt: skip
    cols = ["configuration", "agent", "env", "noise", "change_agent", "change_dqn", "did",
            "did_low", "did_high", "call", "confounds"]  # fmt: skip
    return "\n".join([*lines, markdown_table(frame[cols], ".3g"), ""])
