"""One setting at a time: what makes an agent fail on a task (``settings.Ablation``).

The suite's ``ablation`` names an (agent, task) of one configuration and variants that
each change one thing (the support, the target period, Adam's epsilon, the learning rate,
...). Every variant and the configuration's own settings (``base``) run at the ablation's
fixed learning rate (or a variant's own) on the evaluation seeds. Reported per variant:
IQM return AUC and final return with 95% stratified-bootstrap intervals, the median over
seeds of the drop from a run's best window to its final return (a collapse shows as a
large drop), the seeds reaching the task's threshold, and rliable's probability that the
variant's AUC beats the base run's on a seed (Agarwal et al. 2021), with its interval.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from td_jax.deep import agents as agents_lib
from td_jax.deep import analysis
from td_jax.deep.settings import SUPPORT, DeepSuite
from td_jax.engine.scoring import stats
from td_jax.engine.scoring.markdown import markdown_table

BASE = "base"


def variant_config(suite: DeepSuite, changes: dict[str, Any]) -> tuple[Any, float]:
    """(agent config, learning rate) of a variant: the ablation's configuration with
    ``changes`` applied."""
    ab = suite.ablation
    base = suite.agent_config(ab.agent, ab.configuration, ab.task)
    own = {k: v for k, v in changes.items() if k not in ("learning_rate", "support")}
    hp = {**dataclasses.asdict(base), **own}
    lr = float(changes.get("learning_rate", ab.learning_rate))
    if changes.get("support") == SUPPORT:
        hp["v_min"], hp["v_max"] = suite.task_support(ab.task, base.gamma)
    return agents_lib.make_config(ab.agent, **hp), lr


def describe(changes: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in changes.items()) or "none (the configuration's)"


def units(suite: DeepSuite, tasks: dict[str, dict[str, Any]], unit_class) -> list:
    """The ablation's units (``base`` first); [] without variants."""
    ab = suite.ablation
    if not ab.variants:
        return []
    out = []
    for name, changes in {BASE: {}, **ab.variants}.items():
        config, lr = variant_config(suite, dict(changes))
        out.append(unit_class(f"ablation:{name}", ab.agent, ab.task, tasks[ab.task], config, (lr,)))
    return out


def table(suite: DeepSuite, all_units: list, ends: np.ndarray) -> pd.DataFrame | None:
    """ablation.csv: a row per variant (``base`` first); None without an ablation."""
    ab = suite.ablation
    runs = {u.configuration.split(":", 1)[1]: u for u in all_units
            if u.configuration.startswith("ablation:")}  # fmt: skip
    if not runs:
        return None
    threshold = suite.tasks()[ab.task]["threshold"]
    curves = {name: analysis.fill_curve(np.asarray(u.result.returns)[:, 0])
              for name, u in runs.items()}  # fmt: skip
    scores = {name: analysis.run_scores(c, ends, threshold, suite.final_bins)
              for name, c in curves.items()}  # fmt: skip
    ivals = {s: stats.iqm_intervals({n: v[i][:, None] for n, v in scores.items()}, reps=suite.reps)
             for i, s in enumerate(("auc", "final"))}  # fmt: skip
    rows = []
    for k, (name, unit) in enumerate(runs.items()):
        auc, final, steps = scores[name]
        row = {"variant": name, "changes": describe(dict(ab.variants.get(name, {}))),
               "learning_rate": unit.lr, "seeds": auc.size}  # fmt: skip
        for s in ("auc", "final"):
            point, low, high = (float(v[0]) for v in ivals[s][name])
            row |= {f"{s}_iqm": point, f"{s}_low": low, f"{s}_high": high}
        row["median_drop"] = float(np.median(curves[name].max(-1) - final))
        row["reached_threshold"] = f"{int(np.isfinite(steps).sum())}/{steps.size}"
        pi = ((np.nan,) * 3 if name == BASE else
              analysis._prob_improvement(auc, scores[BASE][0], k, suite.reps))  # fmt: skip
        row |= {"p_beats_base": pi[0], "p_beats_base_low": pi[1], "p_beats_base_high": pi[2]}
        rows.append(row)
    return pd.DataFrame(rows)


def finding(frame: pd.DataFrame, ab) -> str:
    """The generated sentence: which single changes lift the AUC over the base run (the
    interval of P(beats base) above 0.5), which lower it, which leave it unclear."""
    rows = frame[frame["variant"] != BASE]
    up = rows[rows["p_beats_base_low"] > 0.5]
    down = rows[rows["p_beats_base_high"] < 0.5]
    same = rows[~rows.index.isin(up.index) & ~rows.index.isin(down.index)]
    base = frame[frame["variant"] == BASE].iloc[0]

    def names(g: pd.DataFrame) -> str:
        said = [f"{r.variant} (P {r.p_beats_base:.2f} [{r.p_beats_base_low:.2f}, "
                f"{r.p_beats_base_high:.2f}])" for r in g.itertuples()]  # fmt: skip
        return ", ".join(said) or "none"

    return (f"{ab.agent} on {ab.task} ({ab.configuration} configuration, lr "
            f"{ab.learning_rate:g}): base IQM AUC {base['auc_iqm']:.1f}, median drop from its "
            f"best window to its final return {base['median_drop']:.1f}. Single changes that "
            f"lift its AUC: {names(up)}. That lower it: {names(down)}. No clear effect: "
            f"{names(same)}.")  # fmt: skip


def section(frame: pd.DataFrame, ab) -> str:
    """The verdict's markdown: the finding, then the table."""
    cols = ["variant", "changes", "learning_rate", "auc_iqm", "auc_low", "auc_high",
            "final_iqm", "median_drop", "reached_threshold", "p_beats_base",
            "p_beats_base_low", "p_beats_base_high"]  # fmt: skip
    return "\n".join(["## Ablation", "", finding(frame, ab), "",
                      markdown_table(frame[cols], ".3g"), ""])  # fmt: skip
