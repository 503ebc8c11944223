"""Scoring a finished control suite: the prediction report's N(eps) / S(eps) / BH cells with
the metrics (``q_error``, ``value_gap``) in place of the weightings, then the files.

* ``sample_complexity.csv``: per (rule, task, metric, eps) N(eps) on the evaluation seeds
  with its interval, the configuration, the floor, S(eps) against Q-learning and the call;
* ``convergence.csv``: evaluation-seed mean normalised metric of every evaluated
  configuration at every checkpoint (N(eps) can be recomputed from it);
* ``sensitivity.csv``: N(eps) on the tuning seeds of every configuration tried;
* ``verdict.md``, ``table.md``, ``curves.png`` and ``speedups.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from td_jax.harness import report  # noqa: E402
from td_jax.harness import sample_complexity as sc  # noqa: E402
from td_jax.harness.control_suites import ControlSuite  # noqa: E402
from td_jax.harness.store import save_figure, write_csv, write_text  # noqa: E402

METRIC_TEXT = {
    "q_error": "||Q - Q*||_inf",
    "value_gap": "value gap max_s V*(s) - V^pi(s) of the greedy policy",
}
CALLS = ("faster", "slower", "no detectable difference")


def score(suite: ControlSuite, units, floor_table) -> pd.DataFrame:
    """The cells frame (column ``metric``; statuses and calls as ``report._speedups``)."""
    axes = tuple(suite.metrics)
    cells = report._cell_rows(suite, units, floor_table, axes)
    cells = report._speedups(suite, units, cells, axes)
    return cells.rename(columns={"weighting": "metric"})


def family_of(task: str) -> str:
    """``sync/risky_safe/student_t`` -> ``student_t`` (a task without one: its MDP)."""
    parts = task.split("/")
    return parts[2] if len(parts) > 2 else parts[-1]


def _counts(sub: pd.DataFrame) -> dict[str, int]:
    v = sub["verdict"]
    return {
        "faster": int((v == "faster").sum()),
        "slower": int((v == "slower").sum()),
        "no_difference": int((v == "no detectable difference").sum()),
        "cannot_reach": int((v == "cannot reach").sum()),
        "not_tested": int((~v.isin(CALLS) & (v != "cannot reach")).sum()),
    }


def _count_text(c: dict[str, int]) -> str:
    return (f"{c['faster']} faster, {c['slower']} slower, {c['no_difference']} no detectable "
            f"difference, {c['cannot_reach']} below its floor")  # fmt: skip


def _cell_text(row) -> str:
    if row["verdict"] not in CALLS:
        return row["verdict"]
    bound = {"rule": ">=", "baseline": "<="}.get(row["censored"] or "", "")
    s = f"S {bound}{row['speedup']:.2f} [{row['s_low']:.2f}, {row['s_high']:.2f}]"
    return f"{row['verdict']} ({s})" if row["verdict"] != CALLS[2] else s


def verdict_markdown(suite: ControlSuite, cells: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """The control verdict's markdown and its summary (counts per rule, metric, family)."""
    rivals = cells[cells["rule"] != cells["baseline"]]
    placebo = rivals[rivals["rule"].isin(suite.placebos)]
    tested_placebo = placebo[placebo["verdict"].isin(CALLS)]
    fp = int(tested_placebo["verdict"].isin(["faster", "slower"]).sum())
    lines = [
        "# Verdict: do distributional control learners learn to act faster than Q-learning?",
        "",
        f"Suite `{suite.name}`: every rule lifted to control (greedy target: the next action "
        f"is the argmax of the rule's own mean), by the sample-complexity protocol of "
        f"SCIENCE.md sections 7-8. Metrics, each divided by the task's return scale: "
        f"{METRIC_TEXT['q_error']} and the {METRIC_TEXT['value_gap']}, both exact. N(eps): "
        f"updates after which the mean over {len(suite.eval_seeds)} evaluation seeds stays "
        f"<= eps; each rule at its own step-size configuration per (task, metric, eps), "
        f"chosen on {len(suite.tuning_seeds)} separate tuning seeds. S = N_Q-learning / "
        f"N_rule with a 95% paired bootstrap interval; a call needs Benjamini-Hochberg at "
        f"q = {suite.fdr_q:g} and the interval outside [1/{1 + suite.margin:g}, "
        f"{1 + suite.margin:g}]. Synchronous tasks use a generative model (every pair each "
        f"step, common random numbers across rules); online tasks act epsilon-greedily "
        f"(epsilon = {suite.epsilon:g}) on each learner's own means.",
        "",
        f"Control: td_placebo (Q-learning at a matched step) false-positive rate "
        f"{fp / max(len(tested_placebo), 1):.3f} ({fp} of {len(tested_placebo)} tested cells).",
        "",
    ]
    summary: dict[str, Any] = {"placebo_false_positives": fp,
                               "placebo_tested": int(len(tested_placebo)), "rules": {}}  # fmt: skip
    for metric in suite.metrics:
        lines += [f"## {METRIC_TEXT[metric]}", ""]
        sub = rivals[(rivals["metric"] == metric) & ~rivals["rule"].isin(suite.placebos)]
        for rule, grp in sub.groupby("rule", sort=False):
            c = _counts(grp)
            summary["rules"].setdefault(rule, {})[metric] = {
                "all": c, "families": {f: _counts(g) for f, g in
                                       grp.groupby(grp["task"].map(family_of))}}  # fmt: skip
            lines.append(f"- **{rule}**: {_count_text(c)} of {len(grp)} cells.")
            for fam, g in grp.groupby(grp["task"].map(family_of)):
                lines.append(f"  - {fam}: {_count_text(_counts(g))}")
        lines.append("")
    lines += ["## Cells (rule, task, metric: S at each eps, coarse to fine)", ""]
    for (rule, task, metric), grp in rivals.groupby(["rule", "task", "metric"], sort=False):
        parts = [f"eps {r['epsilon']:g}: {_cell_text(r)}" for _, r in grp.iterrows()]
        lines.append(f"- {rule} / {task} / {metric}: " + "; ".join(parts))
    return "\n".join(lines) + "\n", summary


# Verdicts the control table prints beside N(eps).
VERDICT_TAGS = ("faster", "slower", "cannot reach", "trivial")


def sample_complexity_table(suite: ControlSuite, cells: pd.DataFrame) -> str:
    """Markdown: N(eps) per task x rule at each (metric, eps)."""
    rules = [r.label for r in suite.rules]
    lines = [f"# Sample complexity: control suite `{suite.name}`", "",
             "N(eps) [95% interval] per task x rule; *not reached*: censored at the horizon.",
             ""]  # fmt: skip
    for metric in suite.metrics:
        for e in suite.eps_grid:
            sub = cells[(cells["metric"] == metric) & np.isclose(cells["epsilon"], e)]
            lines += [f"## {metric}, eps = {e:g}", "", *report.n_table(sub, rules, VERDICT_TAGS),
                      ""]  # fmt: skip
    return "\n".join(lines)


def _middle_selection(cells: pd.DataFrame, rule: str, task: str, metric: str):
    sub = cells[(cells["rule"] == rule) & (cells["task"] == task) & (cells["metric"] == metric)
                & cells["schedule"].ne("none")]  # fmt: skip
    return None if sub.empty else sub.iloc[len(sub) // 2]


def curves_figure(out: Path, suite: ControlSuite, cells, convergence) -> str:
    """Mean error curves per task and metric, each rule at its selection for the middle eps."""
    tasks = sorted(cells["task"].unique())
    metrics = list(suite.metrics)
    fig, axes = plt.subplots(len(metrics), len(tasks), squeeze=False,
                             figsize=(2.8 * len(tasks), 2.4 * len(metrics)))  # fmt: skip
    cmap = plt.get_cmap("tab10")
    for j, task in enumerate(tasks):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            for k, r in enumerate(rule.label for rule in suite.rules):
                sel = _middle_selection(cells, r, task, metric)
                if sel is None:
                    continue
                c = convergence[(convergence["rule"] == r) & (convergence["task"] == task)
                                & (convergence["metric"] == metric)
                                & np.isclose(convergence["step_size"], sel["step_size"])
                                & (convergence["schedule"] == sel["schedule"])]  # fmt: skip
                y = np.maximum(c["mean_error"].to_numpy(), 1e-6)
                ax.plot(c["step"], y, color=cmap(k % 10), lw=1, label=r)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{task}\n{metric}", fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, out / "curves.png")


def speedups_figure(out: Path, suite: ControlSuite, cells) -> str:
    """S(eps) with its 95% interval per task (q_error), one line per rule."""
    sub = cells[(cells["rule"] != cells["baseline"]) & (cells["metric"] == suite.metrics[0])]
    tasks = sorted(sub["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), squeeze=False, figsize=(2.8 * len(tasks), 2.6))
    cmap = plt.get_cmap("tab10")
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        for k, r in enumerate(rule.label for rule in suite.rules):
            g = sub[(sub["task"] == task) & (sub["rule"] == r)]
            g = g[g["verdict"].isin(CALLS)]
            if g.empty:
                continue
            ax.plot(g["epsilon"], g["speedup"], "o-", ms=3, lw=1, color=cmap(k % 10), label=r)
            ax.fill_between(g["epsilon"], g["s_low"], g["s_high"], color=cmap(k % 10), alpha=0.15)
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.invert_xaxis()
        ax.set_title(f"{task}: S(eps), {suite.metrics[0]}", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, out / "speedups.png")


def write_all(suite: ControlSuite, out: Path, units, tasks, floor_table) -> dict[str, Any]:
    """Writes every result file; returns the manifest's scoring part."""
    out = Path(out)
    axes = tuple(suite.metrics)
    cells = score(suite, units, floor_table)
    write_csv(cells, out / "sample_complexity.csv")
    convergence = report.convergence_frame(units, axes).rename(columns={"weighting": "metric"})
    write_csv(convergence, out / "convergence.csv")
    sensitivity = report.sensitivity_frame(suite, units, axes)
    write_csv(sensitivity.rename(columns={"weighting": "metric"}), out / "sensitivity.csv")
    text, summary = verdict_markdown(suite, cells)
    write_text(out / "verdict.md", text)
    write_text(out / "table.md", sample_complexity_table(suite, cells))
    figures = [curves_figure(out, suite, cells, convergence), speedups_figure(out, suite, cells)]
    edges = cells[(cells["edge"] != "") & cells["edge"].notna()]
    return {
        "suite": suite.name,
        "protocol": "sample complexity N(eps) of control learners (SCIENCE.md sections 7-8)",
        "configuration": suite.config(),
        "seeds": {"tuning": list(suite.tuning_seeds), "evaluation": list(suite.eval_seeds)},
        "edge_selections": int(len(edges)),
        "edge_cells": edges[["rule", "task", "metric", "epsilon", "edge"]].to_dict("records"),
        "grid_extensions": {u.name: u.rounds for u in units},
        "configurations_tried": {u.name: len(u.configs) for u in units},
        "floors": {f"{r}|{t}": v for (r, t), v in floor_table.items()},
        "early_updates": sc.EARLY_UPDATES,
        "summary": summary,
        "figures": figures,
    }
