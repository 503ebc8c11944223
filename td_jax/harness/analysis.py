"""Per-learner convergence metrics and honest step-size selection.

Scoring is separate from running (bsuite's split): everything here reads the tidy
per-checkpoint frame built from ``RunResult``s and never touches JAX.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from td_jax.harness.suites import Suite

LEARNER = ["rule", "task", "step_size", "seed"]


def normalisers(true_values: dict[str, np.ndarray], task_of_env: dict[str, str]) -> dict:
    """Per task, the error of an all-zero estimate: RMS of the true values (floor 1e-8)."""
    return {
        task_of_env[env]: max(float(np.sqrt(np.mean(np.square(v)))), 1e-8)
        for env, v in true_values.items()
    }


def tidy(frame: pd.DataFrame, scale: dict[str, float], suite: Suite) -> pd.DataFrame:
    """Adds the normalised error and the tuning / evaluation split to a run's frame."""
    out = frame.rename(columns={"env": "task"}).copy()
    out["normalized_error"] = out["value_error"] / out["task"].map(scale)
    tuning = set(suite.tuning_seeds)
    out["split"] = np.where(out["seed"].isin(tuning), "tuning", "evaluation")
    return out


def learner_summary(curves: pd.DataFrame, suite: Suite) -> pd.DataFrame:
    """One row per learner: steps to threshold, log-error AUC, final and budget errors.

    * ``steps_to_threshold``: the first checkpoint after which the normalised error stays
      below ``suite.threshold``; ``inf`` if never (or if the learner diverged).
    * ``auc``: the area under log10(normalised error) over log10(steps), divided by the
      log-step range, i.e. the average log-error across the run; ``inf`` if diverged.
    """
    curves = curves.sort_values([*LEARNER, "step"])
    steps = np.sort(curves["step"].unique())
    groups = curves.groupby(LEARNER, sort=True)
    keys = groups.size().index
    n_ckpt = steps.size
    err = curves["normalized_error"].to_numpy().reshape(len(keys), n_ckpt)
    div = curves["diverged"].to_numpy().reshape(len(keys), n_ckpt).any(axis=1)
    dist = curves["distribution_error"].to_numpy().reshape(len(keys), n_ckpt)
    bad = div | ~np.isfinite(err).all(axis=1)

    below = err < suite.threshold
    stays = np.flip(np.logical_and.accumulate(np.flip(below, axis=1), axis=1), axis=1)
    first = np.where(stays.any(axis=1), stays.argmax(axis=1), -1)
    steps_to = np.where(first >= 0, steps[np.maximum(first, 0)], np.inf)
    logs = np.log10(np.maximum(err, 1e-12))
    span = np.log10(steps[-1]) - np.log10(steps[0]) if n_ckpt > 1 else 1.0
    auc = np.trapezoid(logs, np.log10(steps), axis=1) / span if n_ckpt > 1 else logs[:, 0]
    out = keys.to_frame(index=False)
    out["steps_to_threshold"] = np.where(bad, np.inf, steps_to)
    out["auc"] = np.where(bad, np.inf, auc)
    out["final_error"] = np.where(bad, np.inf, err[:, -1])
    out["final_distribution_error"] = np.where(bad, np.inf, dist[:, -1])
    for budget in suite.budgets:
        idx = int(np.searchsorted(steps, budget, side="right") - 1)
        out[f"error_at_{budget}"] = np.where(bad, np.inf, err[:, max(idx, 0)])
    out["diverged"] = bad
    out["split"] = np.where(out["seed"].isin(set(suite.tuning_seeds)), "tuning", "evaluation")
    return out


def sensitivity(learners: pd.DataFrame) -> pd.DataFrame:
    """Step-size sensitivity on the tuning seeds: mean criterion per (rule, task, step size)."""
    tune = learners[learners["split"] == "tuning"]
    agg = tune.groupby(["rule", "task", "step_size"]).agg(
        auc=("auc", "mean"),
        final_error=("final_error", "mean"),
        diverged=("diverged", "sum"),
        n=("seed", "size"),
    )
    return agg.reset_index()


def select_step_sizes(learners: pd.DataFrame, suite: Suite) -> pd.DataFrame:
    """Each (rule, task)'s step size, chosen on the tuning seeds only.

    The criterion is the mean over tuning seeds of the AUC (or of log10 final error); a step
    size with any diverged tuning learner scores ``inf``. Ties go to the smaller step size.
    """
    sens = sensitivity(learners)
    score = sens["auc"] if suite.criterion == "auc" else np.log10(sens["final_error"])
    sens = sens.assign(score=np.where(sens["diverged"] > 0, np.inf, score))
    sens = sens.sort_values(["rule", "task", "score", "step_size"])
    best = sens.groupby(["rule", "task"], sort=False).head(1)
    return best[["rule", "task", "step_size", "score"]].reset_index(drop=True)


def evaluation_learners(learners: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """The evaluation-seed learners at each (rule, task)'s selected step size."""
    ev = learners[learners["split"] == "evaluation"]
    return ev.merge(selected[["rule", "task", "step_size"]], on=["rule", "task", "step_size"])
