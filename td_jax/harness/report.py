"""Scoring a finished suite and writing its files: CSVs, the table, the verdict, plots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from td_jax.harness import analysis, plots, stats
from td_jax.harness.suites import Suite
from td_jax.runner import RunResult

VERDICT_TITLE = "# Does distributional TD converge faster than TD?"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def score(suite: Suite, results: list[RunResult]):
    """Curves, per-learner metrics, the selection, the evaluation summary and comparisons."""
    frame = pd.concat([r.to_dataframe() for r in results], ignore_index=True)
    true_values = {env: v for r in results for env, v in r.true_values.items()}
    scale = analysis.normalisers(true_values, {env: env for env in true_values})
    curves = analysis.tidy(frame, scale, suite)
    learners = analysis.learner_summary(curves, suite)
    selected = analysis.select_step_sizes(learners, suite)
    ev = analysis.evaluation_learners(learners, selected)
    # Whether a rule is distributional comes from the UpdateRule itself (plug-in and
    # parametric rules are factories, so their spec's name cannot tell).
    flags = {n: bool(f) for r in results for n, f in zip(r.rules, r.distributional, strict=True)}
    summary = summarise(ev, selected, learners, suite, flags)
    comparison = stats.compare_to_baseline(ev, suite.baseline_of, censor=2.0 * suite.num_steps)
    wins = stats.paired_wins(ev, suite.baseline_of)
    return curves, learners, selected, ev, summary, comparison, wins


def _finite(x: np.ndarray, censor: float) -> np.ndarray:
    return np.where(np.isfinite(x), x, censor)


def summarise(
    ev: pd.DataFrame,
    selected: pd.DataFrame,
    learners: pd.DataFrame,
    suite: Suite,
    flags: dict[str, bool] | None = None,
) -> pd.DataFrame:
    """Per (rule, task): IQM and 95% stratified-bootstrap CI of each metric on eval seeds."""
    rules = list(dict.fromkeys(r.label for r in suite.rules))
    tasks = sorted(ev["task"].unique())
    censor = 2.0 * suite.num_steps
    metrics = {
        "steps_to_threshold": censor,
        "final_error": 1e6,
        "auc": 6.0,
        "final_distribution_error": 1e6,
    }
    metrics.update({f"error_at_{b}": 1e6 for b in suite.budgets})
    rows = {(r, t): {"rule": r, "task": t} for r in rules for t in tasks}
    for metric, cap in metrics.items():
        scores = {}
        for r in rules:
            sub = ev[ev["rule"] == r].pivot(index="seed", columns="task", values=metric)
            scores[r] = _finite(sub.reindex(columns=tasks).to_numpy(np.float64), cap)
        for r, (point, low, high) in stats.iqm_intervals(scores).items():
            for j, t in enumerate(tasks):
                rows[(r, t)].update(
                    {metric: point[j], f"{metric}_low": low[j], f"{metric}_high": high[j]}
                )
    out = pd.DataFrame(rows.values())
    reached = (
        ev.assign(reached=np.isfinite(ev["steps_to_threshold"]))
        .groupby(["rule", "task"])
        .agg(reached=("reached", "sum"), n_eval=("seed", "size"), diverged_eval=("diverged", "sum"))
        .reset_index()
    )
    all_div = learners.groupby(["rule", "task"])["diverged"].sum().rename("diverged_any_step_size")
    out = out.merge(selected.rename(columns={"score": "tuning_score"}), on=["rule", "task"])
    out = out.merge(reached, on=["rule", "task"]).merge(all_div.reset_index(), on=["rule", "task"])
    distributional = {r.label: r.rule not in ("td", "td_lambda") for r in suite.rules}
    distributional.update(flags or {})
    out["distributional"] = out["rule"].map(distributional)
    return out


def write_all(
    suite: Suite, out: Path, results: list[RunResult], ckpts: np.ndarray
) -> dict[str, Any]:
    """Writes every result file of a suite; returns the manifest's scoring part."""
    curves, learners, selected, ev, summary, comparison, wins = score(suite, results)
    out = Path(out)
    chosen = curves.merge(selected[["rule", "task", "step_size"]], on=["rule", "task", "step_size"])
    _write_csv(
        chosen[
            [
                "rule",
                "task",
                "step_size",
                "seed",
                "split",
                "step",
                "value_error",
                "normalized_error",
                "distribution_error",
                "diverged",
            ]
        ],
        out / "convergence.csv",
    )
    _write_csv(analysis.sensitivity(learners), out / "sensitivity.csv")
    _write_csv(summary, out / "summary.csv")
    _write_csv(comparison, out / "comparison.csv")
    _write_text(out / "table.md", convergence_table(summary, suite))
    _write_text(out / "verdict.md", verdict(comparison, summary, suite, wins))
    figures = plots.write_all(out, suite, curves, selected, learners, results)
    truth_error = {env: e for r in results for env, e in r.truth_error.items()}
    return {
        "suite": suite.name,
        "configuration": suite.config(),
        "seeds": {"tuning": list(suite.tuning_seeds), "evaluation": list(suite.eval_seeds)},
        "checkpoints": ckpts.tolist(),
        "truth_error": truth_error,
        "selected_step_sizes": json.loads(selected.to_json(orient="records")),
        "figures": figures,
    }


def _fmt(x: float, lo: float, hi: float, censor: float | None = None) -> str:
    if censor is not None and x >= censor:
        return "not reached"
    if censor is not None:
        return f"{x:,.0f} [{lo:,.0f}, {hi:,.0f}]"
    return f"{x:.3g} [{lo:.3g}, {hi:.3g}]"


def convergence_table(summary: pd.DataFrame, suite: Suite) -> str:
    """Markdown: tasks x rules, steps to threshold and final error with 95% CIs."""
    censor = 2.0 * suite.num_steps
    rules = list(dict.fromkeys(r.label for r in suite.rules))
    lines = [
        f"# Convergence table: suite `{suite.name}`",
        "",
        f"IQM over {len(suite.eval_seeds)} evaluation seeds with 95% stratified-bootstrap "
        f"intervals (rliable), each rule at its own step size chosen on "
        f"{len(suite.tuning_seeds)} separate tuning seeds by `{suite.criterion}`. "
        f"Steps to threshold: updates until the normalised value error (RMSE / RMS of the "
        f"true values) stays below {suite.threshold} (never reached: counted as "
        f"{censor:,.0f}). **Bold**: best in the row.",
        "",
    ]
    for title, metric, cens in (
        ("Steps to threshold", "steps_to_threshold", censor),
        (f"Normalised value error after {suite.num_steps:,} updates", "final_error", None),
    ):
        lines += [
            f"## {title}",
            "",
            "| task | " + " | ".join(rules) + " |",
            "|---" * (len(rules) + 1) + "|",
        ]
        for task, grp in summary.groupby("task"):
            grp = grp.set_index("rule")
            best = grp[metric].min()
            cells = []
            for r in rules:
                row = grp.loc[r]
                cell = _fmt(row[metric], row[f"{metric}_low"], row[f"{metric}_high"], cens)
                cells.append(
                    f"**{cell}**" if row[metric] == best and cell != "not reached" else cell
                )
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Distribution error (W1 to the true return distribution, mean over states)",
        "",
        "| task | " + " | ".join(rules) + " |",
        "|---" * (len(rules) + 1) + "|",
    ]
    for task, grp in summary.groupby("task"):
        grp = grp.set_index("rule")
        cells = [
            _fmt(
                grp.loc[r, "final_distribution_error"],
                grp.loc[r, "final_distribution_error_low"],
                grp.loc[r, "final_distribution_error_high"],
            )
            for r in rules
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Classical rules' distribution is a point mass at the mean (W1 of a single-value code).",
        "",
        "## Selected step sizes and divergence",
        "",
        "| task | " + " | ".join(rules) + " |",
        "|---" * (len(rules) + 1) + "|",
    ]
    for task, grp in summary.groupby("task"):
        grp = grp.set_index("rule")
        cells = [
            f"{grp.loc[r, 'step_size']:.3g} ({int(grp.loc[r, 'diverged_any_step_size'])} div.)"
            for r in rules
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict(
    comparison: pd.DataFrame, summary: pd.DataFrame, suite: Suite, wins: dict[str, np.ndarray]
) -> str:
    """Markdown: per task and rule, faster / slower / no detectable difference, then overall.

    Only distributional rules enter the verdict; classical ones (td_lambda) are compared in
    comparison.csv and the table.
    """
    distributional = set(summary.loc[summary["distributional"], "rule"])
    comparison = comparison[comparison["rule"].isin(distributional)]
    bases = sorted({suite.baseline_of(r) for r in comparison["rule"]} or {suite.baseline})
    against = ", ".join(f"`{b}`" for b in bases)
    lines = [
        VERDICT_TITLE,
        "",
        f"Suite `{suite.name}`. Each distributional rule against its baseline "
        f"({against}{'' if not suite.baselines else ', by rule: see comparison.csv'}), "
        f"both at their own tuned step sizes, paired by evaluation seed "
        f"(common random numbers). *ratio*: geometric mean over seeds of steps-to-threshold "
        f"(rule / baseline), with a 95% bootstrap interval; below 1 is faster. "
        f"*P(beat)*: the paired probability that the rule's log-error AUC is lower. A task "
        f"is *faster* / *slower* only when the ratio's interval excludes 1.",
        "",
    ]
    rules = list(dict.fromkeys(comparison["rule"]))
    lines += ["| task | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
    for task, grp in comparison.groupby("task"):
        grp = grp.set_index("rule")
        cells = []
        for r in rules:
            row = grp.loc[r]
            cells.append(
                f"{row['verdict']}: {row['ratio']:.2f} [{row['ratio_low']:.2f}, "
                f"{row['ratio_high']:.2f}], P(beat) {row['p_beat']:.2f}"
            )
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "## Overall", ""]
    tasks = sorted(comparison["task"].unique())
    aggregate = stats.aggregate_mean_interval({r: wins[r] for r in rules})
    for r in rules:
        sub = comparison[comparison["rule"] == r].set_index("task").reindex(tasks)
        counts = sub["verdict"].value_counts()
        p, lo, hi = aggregate[r]
        lines.append(
            f"- `{r}`: faster on {counts.get('faster', 0)}, slower on "
            f"{counts.get('slower', 0)}, no detectable difference on "
            f"{counts.get('no detectable difference', 0)}, neither reached on "
            f"{counts.get('neither reached', 0)} of {len(tasks)} tasks; aggregate "
            f"P(beat {suite.baseline_of(r)}) across tasks {p:.2f} [{lo:.2f}, {hi:.2f}] "
            "(stratified bootstrap over seeds within tasks)."
        )
    faster = comparison[comparison["verdict"] == "faster"]
    slower = comparison[comparison["verdict"] == "slower"]
    pairs = len(comparison)
    if len(faster) == 0:
        headline = (
            f"**No.** No distributional rule converged detectably faster than "
            f"{against} on any task ({len(slower)} of {pairs} rule-task pairs "
            f"were slower)."
        )
    elif len(faster) > len(slower):
        headline = (
            f"**Sometimes, more often than not.** Faster on {len(faster)} and slower on "
            f"{len(slower)} of {pairs} rule-task pairs; faster on: "
            f"{', '.join(sorted(faster['task'].unique()))}."
        )
    else:
        headline = (
            f"**Not in general.** Faster on {len(faster)} and slower on {len(slower)} "
            f"of {pairs} rule-task pairs; faster on: "
            f"{', '.join(sorted(faster['task'].unique()))}."
        )
    lines += ["", f"Overall: {headline}", ""]
    return "\n".join(lines)
