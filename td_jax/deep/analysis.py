"""Scores, tables, figures and the verdict of a deep-control suite (no training here).

Per (agent, task, seed, learning rate) the run gives the mean true return of the episodes
finished in each of ``num_bins`` windows of environment steps. A window where no episode
ended (possible only when episodes are longer than a window) takes the previous window's
value; windows before the first finished episode take that window's value. Scores of one
run:

* ``auc``: the mean of that curve over the windows (the area under the learning curve
  divided by the budget), the speed-of-learning score;
* ``final``: the mean of the last ``final_bins`` windows (training episodes, with epsilon
  at its final value);
* ``steps_to_threshold``: the end of the first window whose return reaches the task's
  threshold; a run that never does is censored (``inf`` in arrays, "not reached" in
  tables), never given a number.

Each agent's learning rate is the one of the grid with the best mean AUC on separate
tuning seeds, per task (``td_jax.deep.suites``; reported with its grid edge, if any); the
scores are those of the evaluation seeds at that rate. Intervals: IQM over seeds with 95%
stratified-bootstrap CIs (``td_jax.engine.scoring.stats.iqm_intervals``) and rliable's probability
of improvement of each distributional agent over DQN on AUC and on the final return, with
bootstrap CIs (Agarwal et al. 2021).
"""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from td_jax.engine.scoring import stats  # noqa: E402
from td_jax.engine.scoring.markdown import markdown_table  # noqa: E402

BASELINE = "dqn"


def fill_curve(returns: np.ndarray) -> np.ndarray:
    """Forward-fills NaN windows along the last axis (a leading NaN takes the first value)."""
    out = np.array(returns, np.float64)
    flat = out.reshape(-1, out.shape[-1])
    for row in flat:
        ok = np.flatnonzero(np.isfinite(row))
        if ok.size == 0:
            row[:] = 0.0  # no episode ended at all: nothing learned to report
            continue
        idx = np.maximum.accumulate(np.where(np.isfinite(row), np.arange(row.size), ok[0]))
        row[:] = row[idx]
    return out


def run_scores(curve: np.ndarray, ends: np.ndarray, threshold: float, final_bins: int):
    """auc, final, steps_to_threshold (inf when censored) of f64[..., bins] curves."""
    auc = curve.mean(-1)
    final = curve[..., -final_bins:].mean(-1)
    hit = curve >= threshold
    first = np.where(hit.any(-1), np.argmax(hit, -1), -1)
    steps = np.where(first >= 0, ends[np.maximum(first, 0)], np.inf)
    return auc, final, steps


def _prob_improvement(x: np.ndarray, y: np.ndarray, seed: int, reps: int):
    """P(X > Y) of seed scores f64[n] and its 95% bootstrap CI (rliable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rliable import library, metrics
    with stats._seeded(seed):
        point, interval = library.get_interval_estimates(
            {"pair": (x[:, None], y[:, None])},
            metrics.probability_of_improvement,
            reps=reps,
            confidence_interval_size=stats.CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    return float(point["pair"]), float(interval["pair"][0, 0]), float(interval["pair"][1, 0])


def tables(
    results: dict[tuple[str, str], dict[str, np.ndarray]],
    tasks: dict[str, dict[str, Any]],
    agents: tuple[str, ...],
    chosen_lr: dict[tuple[str, str], float],
    seeds: list[int],
    ends: np.ndarray,
    final_bins: int,
    reps: int = stats.REPS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """curves.csv rows, summary.csv rows, and the evaluation curves f64[seeds, bins].

    ``results[(agent, task)]``: the evaluation runs at the learning rate chosen on the
    tuning seeds (``chosen_lr``), ``suites.DeepRuns`` of one rate: ``returns`` f32[seeds, 1,
    bins], ``counts`` int[...].
    ``tasks[task]``: ``env``, ``noise`` (its description) and ``threshold``.
    """
    rows, chosen, per = [], {}, {}
    for (agent, task), res in results.items():
        returns, counts = np.asarray(res.returns)[:, 0], np.asarray(res.counts)[:, 0]
        lr = chosen_lr[(agent, task)]
        for s, seed in enumerate(seeds):
            for b, end in enumerate(ends):
                rows.append((agent, task, seed, lr, int(end), returns[s, b], int(counts[s, b])))
        curve = fill_curve(returns)
        chosen[(agent, task)] = curve
        auc, final, steps = run_scores(curve, ends, tasks[task]["threshold"], final_bins)
        per[(agent, task)] = {"lr": lr, "auc": auc, "final": final, "steps": steps}
    curves = pd.DataFrame(rows, columns=["agent", "task", "seed", "learning_rate", "env_step",
                                         "return", "episodes"])  # fmt: skip
    task_names = list(tasks)
    ivals = {}
    for score in ("auc", "final"):
        ivals[score] = stats.iqm_intervals(
            {a: np.stack([per[(a, t)][score] for t in task_names], axis=1) for a in agents},
            reps=reps,
        )
    summary = []
    for t_i, task in enumerate(task_names):
        for agent in agents:
            p = per[(agent, task)]
            reached = np.isfinite(p["steps"])
            median = float(np.median(p["steps"]))
            row = {
                "agent": agent, "task": task, "env": tasks[task]["env"],
                "reward_noise": tasks[task]["noise"], "learning_rate": p["lr"],
                "seeds": len(seeds),
            }  # fmt: skip
            for score in ("auc", "final"):
                point, low, high = (float(v[t_i]) for v in ivals[score][agent])
                row.update({f"{score}_iqm": point, f"{score}_low": low, f"{score}_high": high})
            row.update({
                "threshold": tasks[task]["threshold"],
                "reached_threshold": f"{int(reached.sum())}/{reached.size}",
                "median_steps_to_threshold": int(median) if np.isfinite(median)
                else "not reached",
            })  # fmt: skip
            for score in ("auc", "final"):
                if agent != BASELINE and BASELINE in agents:
                    pi = _prob_improvement(p[score], per[(BASELINE, task)][score], t_i, reps)
                else:
                    pi = (np.nan, np.nan, np.nan)
                row.update({f"p_improvement_{score}": pi[0], f"p_improvement_{score}_low": pi[1],
                            f"p_improvement_{score}_high": pi[2]})  # fmt: skip
            summary.append(row)
    frame = pd.DataFrame(summary)
    # The AUC columns keep their first names (p_improvement_low / _high).
    frame = frame.rename(columns={"p_improvement_auc_low": "p_improvement_low",
                                  "p_improvement_auc_high": "p_improvement_high"})  # fmt: skip
    return curves, frame, chosen


def figure(task: str, chosen: dict, agents: tuple[str, ...], ends: np.ndarray,
           configurations: tuple[str, ...], lrs: dict):  # fmt: skip
    """Learning curves of one task: mean over seeds and a 95% normal band, each agent at
    its selected learning rate; ``chosen[(configuration, agent, task)]`` f64[seeds, bins]
    (a second configuration dashed, without its band)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for c_i, configuration in enumerate(configurations):
        for k, agent in enumerate(agents):
            if (configuration, agent, task) not in chosen:
                continue
            curve = chosen[(configuration, agent, task)]
            mean = curve.mean(0)
            lr = lrs[(configuration, agent, task)]
            label = f"{agent} (lr {lr:g})" if len(configurations) == 1 else (
                f"{agent}, {configuration} (lr {lr:g})")  # fmt: skip
            ax.plot(ends, mean, color=f"C{k}", lw=1.5, ls="-" if c_i == 0 else "--", label=label)
            if c_i == 0 and curve.shape[0] > 1:
                half = 1.96 * curve.std(0, ddof=1) / np.sqrt(curve.shape[0])
                ax.fill_between(ends, mean - half, mean + half, color=f"C{k}", alpha=0.2)
    ax.set(xlabel="environment steps", ylabel="true episodic return (training episodes)",
           title=f"{task}: mean over {curve.shape[0]} seeds, 95% band")  # fmt: skip
    ax.legend(fontsize=7)
    return fig


def call(row: pd.Series) -> str:
    """faster / slower / no clear difference: P(improvement) on AUC against 0.5."""
    low, high = row["p_improvement_low"], row["p_improvement_high"]
    if low > 0.5:
        return "faster"
    if high < 0.5:
        return "slower"
    return "no clear difference"


def verdict_lines(summary: pd.DataFrame, configuration: str = "") -> list[str]:
    """One configuration's section: per task in plain words, the overall count, the table
    (``configuration`` '': a suite of one configuration, no heading)."""
    lines = [f"## The {configuration} configuration", ""] if configuration else []
    calls = []
    for task, group in summary.groupby("task", sort=False):
        base = group[group["agent"] == BASELINE].iloc[0]
        parts = []
        for _, row in group[group["agent"] != BASELINE].iterrows():
            calls.append(call(row))
            said = {
                "faster": "learns **faster** than DQN",
                "slower": "learns **slower** than DQN",
                "no clear difference": "shows **no clear difference** from DQN",
            }[calls[-1]]
            parts.append(
                f"{row['agent']} {said} (P(improvement) on AUC "
                f"{row['p_improvement_auc']:.2f} [{row['p_improvement_low']:.2f}, "
                f"{row['p_improvement_high']:.2f}]; IQM AUC {row['auc_iqm']:.1f} "
                f"[{row['auc_low']:.1f}, {row['auc_high']:.1f}])"
            )
        lines.append(
            f"- **{task}**: DQN IQM AUC {base['auc_iqm']:.1f} [{base['auc_low']:.1f}, "
            f"{base['auc_high']:.1f}], final {base['final_iqm']:.1f}; " + "; ".join(parts) + "."
        )
    lines += [
        "",
        f"Overall: of {len(calls)} (distributional agent, task) comparisons, "
        f"{calls.count('faster')} faster, {calls.count('slower')} slower, "
        f"{calls.count('no clear difference')} without a clear difference (a call needs the "
        "95% interval of P(improvement) to exclude 0.5).",
        "",
    ]
    cols = ["agent", "task", "learning_rate", "auc_iqm", "auc_low", "auc_high", "final_iqm",
            "final_low", "final_high", "reached_threshold", "median_steps_to_threshold",
            "p_improvement_auc", "p_improvement_low", "p_improvement_high"]  # fmt: skip
    return [*lines, markdown_table(summary[cols], ".3g"), ""]


def verdict(description: str, budget: str, selection: str, sections: list[list[str]],
            answer: str = "") -> str:  # fmt: skip
    """The verdict: the question, the budget, the answer (where given), each
    configuration's section."""
    lines = ["# Do distributional agents learn faster than DQN?", "", description, "", budget,
             "", selection, ""]  # fmt: skip
    if answer:
        lines += [f"**Answer.** {answer}", ""]
    lines += [
        "Scores: AUC = mean true return over the learning curve (higher = learned sooner);"
        " final = mean over the last windows; steps to threshold censored when not reached.",
        "",
    ]
    for section in sections:
        lines += section
    return "\n".join(lines)


def answer(summary: pd.DataFrame, did: pd.DataFrame | None = None) -> str:
    """One sentence per distributional agent: its calls against DQN, those that hold in
    both configurations (where the suite has two) apart from those in one only; and the
    noise interaction's calls, where measured."""
    two = "configuration" in summary and summary["configuration"].nunique() > 1
    rows = summary[summary["agent"] != BASELINE].copy()
    rows["call"] = [call(r) for _, r in rows.iterrows()]
    out = []
    for agent, group in rows.groupby("agent", sort=False):
        if not two:
            n = len(group)
            out.append(f"{agent} learned faster than DQN on {(group.call == 'faster').sum()} "
                       f"of {n} tasks and slower on {(group.call == 'slower').sum()}.")  # fmt: skip
            continue
        by = group.pivot(index="task", columns="configuration", values="call").dropna()
        both = by[by.nunique(axis=1) == 1].iloc[:, 0]
        one = by[by.nunique(axis=1) > 1]
        which = "; ".join(f"{t}: " + ", ".join(f"{c} {v}" for c, v in r.items())
                          for t, r in one.iterrows())  # fmt: skip
        out.append(
            f"{agent} against DQN, on the {len(by)} task(s) run in both configurations: faster "
            f"in both on {(both == 'faster').sum()}, slower in both on "
            f"{(both == 'slower').sum()}, no clear difference in both on "
            f"{(both == 'no clear difference').sum()}; the call depends on the configuration "
            f"on {len(one)}" + (f" ({which})" if which else "") + "."
        )
    if did is not None and len(did):
        for (configuration, agent), g in did.groupby(["configuration", "agent"], sort=False):
            clean = g[~g["flags"].fillna("").str.contains("fails")]
            out.append(
                f"At the plain task's learning rates, reward noise ({configuration} "
                f"configuration) costs {agent} less AUC than DQN on "
                f"{(g.call == 'less hurt').sum()} of {len(g)} (env, noise) pairs and more on "
                f"{(g.call == 'more hurt').sum()}; where {agent} is not already slower than "
                f"DQN on the plain task: less on {(clean.call == 'less hurt').sum()} and "
                f"more on {(clean.call == 'more hurt').sum()} of {len(clean)}."
            )
    return " ".join(out)


def _direction(row: pd.Series, score: str) -> str:
    prefix = "p_improvement" if score == "auc" else "p_improvement_final"
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    return "better" if low > 0.5 else "worse" if high < 0.5 else "no clear difference"


def claims_section(summary: pd.DataFrame, claims) -> str:
    """Markdown: each published direction against the measured one (P(improvement) of the
    claim's score over DQN, 95% interval excluding 0.5), '' when there are none."""
    if not claims:
        return ""
    lines = ["## Claims", "",
             "| claim (source) | agent | task | score | measured P(improvement) [95% CI] | "
             "measured | verdict |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        row = summary[(summary["agent"] == c.agent) & (summary["task"] == c.task)].iloc[0]
        prefix = "p_improvement" if c.score == "auc" else "p_improvement_final"
        point = row["p_improvement_auc"] if c.score == "auc" else row["p_improvement_final"]
        measured = _direction(row, c.score)
        word = "reproduced" if measured == c.expected else "NOT reproduced"
        lines.append(f"| {c.expected} than DQN ({c.source}) | {c.agent} | {c.task} | "
                     f"{c.score} | {point:.2f} [{row[f'{prefix}_low']:.2f}, "
                     f"{row[f'{prefix}_high']:.2f}] | {measured} | {word} |")  # fmt: skip
    return "\n".join(lines) + "\n"
