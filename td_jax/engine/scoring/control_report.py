"""Scoring a finished control suite by the prediction suites' calibrated protocol
(``engine.scoring.calls``, SCIENCE.md section 9) with the metrics (``q_error``, ``value_gap``)
in place of the weightings, then the files.

* ``estimand.csv``: the call, one per (rule, task, metric): the geometric mean of S over
  the band with its re-selection bootstrap interval, role (answer, null control, pipeline
  check), BH and verdict; the transient apart;
* ``sample_complexity.csv``: per (rule, task, metric, eps) N(eps) on the evaluation seeds
  with its interval, the configuration, the floor, S(eps) against Q-learning (description);
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

from td_jax.analysis import sample_complexity as sc  # noqa: E402
from td_jax.engine.control_specs import ControlSuite  # noqa: E402
from td_jax.engine.scoring import calls, report  # noqa: E402
from td_jax.engine.store import save_figure, write_csv, write_text  # noqa: E402

METRIC_TEXT = {
    "q_error": "||Q - Q*||_inf",
    "value_gap": "value gap max_s V*(s) - V^pi(s) of the greedy policy",
}
CALLS = ("faster", "slower", "no detectable difference")
ORDER = [
    "rule", "task", "metric", "epsilon", "n_updates", "n_low", "n_high", "step_size",
    "schedule", "decay", "reached", "floor", "baseline", "speedup", "s_low", "s_high",
    "censored", "p_value", "s_se", "significant", "verdict", "status", "identity",
    "eps_relative", "regime", "plateau", "plateau_low", "plateau_high", "alpha_units",
    "step_unit", "edge", "flat_edge", "search", "candidates", "coverage", "diverged", "seeds",
    "n_tuning", "reached_tuning", "horizon",
]  # fmt: skip


def score(suite: ControlSuite, units, floor_table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, pairs): the per-eps cells (column ``metric``; description) and the estimand
    per (rule, task, metric) with its call (``engine.scoring.calls``, as the prediction suites)."""
    cells, boots = calls.cell_frame(suite, units, floor_table)
    return cells, calls.pair_frame(suite, units, cells, boots)


def family_of(task: str) -> str:
    """``sync/risky_safe/student_t`` -> ``student_t`` (a task without one: its MDP)."""
    parts = task.split("/")
    return parts[2] if len(parts) > 2 else parts[-1]


def _counts(sub: pd.DataFrame) -> dict[str, int]:
    """Calls of (rule, task, metric) pairs: a bound or an untested pair is never a call."""
    v = sub["verdict"].astype(str)
    return {
        "faster": int((v == "faster").sum()),
        "slower": int((v == "slower").sum()),
        "no_difference": int((v == "no detectable difference").sum()),
        "bound": int(sub["status"].astype(str).str.startswith("bound").sum()),
        "not_tested": int((~v.isin(CALLS) & ~sub["status"].astype(str).str.startswith("bound"))
                          .sum()),
    }  # fmt: skip


def _count_text(c: dict[str, int]) -> str:
    return (f"{c['faster']} faster, {c['slower']} slower, {c['no_difference']} no detectable "
            f"difference, {c['bound']} bound(s), {c['not_tested']} not tested")  # fmt: skip


def _cell_text(row) -> str:
    """A per-eps cell: S with its interval, or its status. A side that never reached eps
    makes S a bound: the rule not reached means N_rule >= the horizon, so S <= the value;
    the baseline not reached, S >= it."""
    if row["status"] != "tested":
        return str(row["verdict"])
    bound = {"rule": "<=", "baseline": ">="}.get(row["censored"] or "", "")
    s = f"S {bound}{row['speedup']:.2f} [{row['s_low']:.2f}, {row['s_high']:.2f}]"
    return f"{row['verdict']} ({s})" if row["verdict"] in CALLS[:2] else s


def _pair_text(row) -> str:
    if row["status"] == "tested":
        s = f"S = {row['speedup']:.2f} [{row['s_low']:.2f}, {row['s_high']:.2f}]"
    elif str(row["status"]).startswith("bound") and np.isfinite(row["speedup"]):
        sign = "<=" if "rule not reached" in row["status"] else ">="
        s = f"S {sign} {row['speedup']:.2f}"
    else:
        return str(row["status"])
    band = f"band eps {row['eps_high']:.3g}..{row['eps_low']:.3g} ({int(row['band_points'])})"
    verdict = row["verdict"] if row["status"] == "tested" else row["status"]
    return f"{verdict}, {s}, {band}"


def _null_line(rates: dict[str, Any], bold: bool = False) -> str:
    if not rates["tested"]:
        return "no null control was tested"
    rate = f"Null false-positive rate: {rates['rate']:.3f}"
    ci = f"95% CI [{rates['low']:.3f}, {rates['high']:.3f}]"
    return (f"{f'**{rate}**' if bold else rate} ({rates['called']} of {rates['tested']} tested "
            f"pairs called different, {ci})")  # fmt: skip


def verdict_markdown(suite: ControlSuite, cells: pd.DataFrame, pairs: pd.DataFrame,
                     nulls: dict[str, Any]) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The control verdict's markdown and its summary: per rule and metric the calls over
    tasks (one estimand per (rule, task, metric)), per reward family too."""
    search = calls.search_ends(suite, cells)
    lines = _intro(suite, nulls, search["line"])
    summary: dict[str, Any] = {"null_controls": nulls, "null_controls_by_metric": {},
                               "rules": {}, "pipeline_checks": {},
                               "coverage": calls.coverage_summary(suite, pairs),
                               "search": search}  # fmt: skip
    lines += _calibration(suite, pairs, summary)
    answer = pairs[pairs["role"] == "answer"] if len(pairs) else pairs
    lines += _answer(suite, answer, summary)
    lines += _description(answer, cells)
    return "\n".join(lines) + "\n", summary


def _intro(suite: ControlSuite, nulls: dict[str, Any], search: str) -> list[str]:
    band = f"[e0 x {suite.band[0]:g}, e0 x {suite.band[1]:g}]"
    return [
        "# Verdict: do distributional control learners learn to act faster than Q-learning?",
        "",
        f"Suite `{suite.name}`: every rule lifted to control (greedy target: the next action "
        f"is the argmax of the rule's own mean; exact ties broken at random per seed, and "
        f"risky_safe's optimal action index varies across states), by the protocol of "
        f"SCIENCE.md sections 7-9. Metrics, each divided by the task's return scale: "
        f"{METRIC_TEXT['q_error']} and the {METRIC_TEXT['value_gap']}, both exact. N(eps): "
        f"updates after which the mean over {len(suite.eval_seeds)} evaluation seeds stays "
        f"<= eps, with eps relative to each task's initial error e0 (the all-zero start). "
        f"Each rule's step size (and for the decaying schedule alpha0 and its scale "
        f"jointly) is chosen per (task, metric, eps) on {len(suite.tuning_seeds)} tuning "
        f"seeds, refined by a compass search (up to {suite.max_refinements} rounds) until "
        f"flat to {suite.margin:.0%}. **The call** "
        f"is one per (rule, task, metric): the geometric mean of S = N_Q-learning / N_rule "
        f"over the band {band} (eps both rules reach on the tuning seeds, above 3x their "
        f"floors), with a paired bootstrap interval that re-selects the step on resampled "
        f"tuning seeds (the configurations re-selected most often are evaluated until they "
        f"cover {suite.coverage:.0%} of resamples, at most {suite.candidates}), widened on "
        f"either side by the search's tie tolerance "
        f"x{1 + suite.margin / 2:g}; Benjamini-Hochberg at q = {suite.fdr_q:g} over (rule, "
        f"task) pairs per metric and role, and the interval outside [1/{1 + suite.margin:g}, "
        f"{1 + suite.margin:g}]. A band that one side does not reach is a bound, never a "
        f"call. Synchronous tasks use a generative model (every pair each step, common "
        f"random numbers across rules); online tasks act epsilon-greedily (epsilon = "
        f"{suite.epsilon:g}) on each learner's own means.",
        "",
        search,
        "",
        f"**Calibration.** Null controls that can fail ({', '.join(suite.nulls) or 'none'}: "
        f"Q-learning with its step x1.37 and x0.59 inside it, and tuned on disjoint seeds): "
        f"{_null_line(nulls, bold=True)}.",
    ]


def _calibration(suite: ControlSuite, pairs: pd.DataFrame, summary: dict) -> list[str]:
    """The null controls' rates per metric and the pipeline checks (``summary`` filled)."""
    lines, col = [], "metric"
    for metric in suite.metrics:
        sub = pairs[pairs[col] == metric] if len(pairs) else pairs
        rates = calls.null_rates(suite, sub)
        summary["null_controls_by_metric"][metric] = rates
        lines.append(f"- {metric}: {_null_line(rates)}.")
    checks = pairs[pairs["role"] == "pipeline check"] if len(pairs) else pairs
    if len(checks):
        called = int(checks["verdict"].isin(CALLS[:2]).sum())
        tested = int((checks["status"] == "tested").sum())
        summary["pipeline_checks"] = {"tested": tested, "called": called}
        # Only tested pairs can be called: the rest (early, bounds, under-tuned) are not
        # evidence either way, so they are not in the denominator.
        lines.append(f"- Pipeline checks ({', '.join(sorted(set(checks['rule'])))}: the "
                     f"baseline by construction) called different in {called} of "
                     f"{tested} tested pairs ({len(checks)} in all).")  # fmt: skip
    return [*lines, "", summary["coverage"]["line"], ""]


def _answer(suite: ControlSuite, answer: pd.DataFrame, summary: dict) -> list[str]:
    """Per metric and rule, its calls over the tasks; distributional rules' counts go to
    ``summary["rules"]`` (the answer), the others are reported outside it."""
    lines, col = [], "metric"
    for metric in suite.metrics:
        lines += [f"## {METRIC_TEXT[metric]}", ""]
        sub = answer[answer[col] == metric] if len(answer) else answer
        for rule, grp in sub.groupby("rule", sort=False) if len(sub) else []:
            c = _counts(grp)
            fams = {f: _counts(g) for f, g in grp.groupby(grp["task"].map(family_of))}
            if bool(grp["distributional"].iloc[0]):  # the answer: distributional rules only
                summary["rules"].setdefault(rule, {})[metric] = {"all": c, "families": fams}
                tag = ""
            else:
                tag = " (not a distributional rule: reported, outside the answer)"
            lines.append(f"- **{rule}**{tag}: {_count_text(c)} of {len(grp)} tasks.")
            for _, r in grp.iterrows():
                lines.append(f"  - {r['task']}: {_pair_text(r)}")
        lines.append("")
    return lines


def _description(answer: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """The transient, diverged cells and the per-eps cells: description, not the answer."""
    col = "metric"
    lines = ["## The transient (description, not the answer)", "",
              "How fast each rule leaves the zero start: S at the coarsest eps above the "
              "band, per (rule, task, metric).", ""]  # fmt: skip
    for _, r in answer.iterrows() if len(answer) else []:
        if r["transient_status"]:
            lines.append(f"- {r['rule']} / {r['task']} / {r[col]}: eps "
                         f"{r['transient_eps']:.3g}: {r['transient_status']}"
                         + (f", S = {r['transient_speedup']:.2f}"
                            if np.isfinite(r["transient_speedup"]) else ""))  # fmt: skip
    diverged = report.diverged_cells(cells)
    if diverged:
        lines += ["", "## Diverged", ""]
        lines += [f"- {d['rule']} on {d['task']}: {d['diverged']} of {d['seeds']} evaluation "
                  "seeds" for d in diverged]  # fmt: skip
    rivals = cells[cells["rule"] != cells["baseline"]]
    lines += ["", "## Cells (description: rule, task, metric, S at each eps, coarse to fine)",
              ""]  # fmt: skip
    for (rule, task, metric), grp in rivals.groupby(["rule", "task", col], sort=False):
        parts = [f"eps {r['epsilon']:.3g}: {_cell_text(r)}" for _, r in grp.iterrows()]
        lines.append(f"- {rule} / {task} / {metric}: " + "; ".join(parts))
    return lines


# Verdicts the control table prints beside N(eps).
VERDICT_TAGS = ("faster", "slower", "cannot reach", "trivial", "bound")


def sample_complexity_table(suite: ControlSuite, cells: pd.DataFrame) -> str:
    """Markdown: N(eps) per task x rule at each (metric, eps)."""
    rules = [r.label for r in suite.rules]
    lines = [f"# Sample complexity: control suite `{suite.name}`", "",
             "N(eps) [95% interval] per task x rule; *not reached*: censored at the horizon.",
             ""]  # fmt: skip
    for metric in suite.metrics:
        for e in suite.eps_grid:
            at = cells["eps_relative"] if suite.eps_relative else cells["epsilon"]
            sub = cells[(cells["metric"] == metric) & np.isclose(at, e)]
            head = f"eps = e0 x {e:g}" if suite.eps_relative else f"eps = {e:g}"
            lines += [f"## {metric}, {head}", "", *report.n_table(sub, rules, VERDICT_TAGS),
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


def speedups_figure(out: Path, suite: ControlSuite, pairs: pd.DataFrame) -> str:
    """The estimand per (rule, task) with its 95% interval, one panel per metric; bounds
    and untested pairs are left out (they are not calls)."""
    metrics = list(suite.metrics)
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, figsize=(5.0 * len(metrics), 4.0))
    cmap = plt.get_cmap("tab10")
    rules = [r.label for r in suite.rules if r.label != suite.baseline]
    for j, metric in enumerate(metrics):
        ax = axes[0, j]
        sub = pairs[(pairs["metric"] == metric) & (pairs["status"] == "tested")] if len(
            pairs) else pairs  # fmt: skip
        tasks = sorted(sub["task"].unique()) if len(sub) else []
        for k, rule in enumerate(rules):
            g = sub[sub["rule"] == rule] if len(sub) else sub
            if not len(g):
                continue
            y = np.asarray([tasks.index(t) for t in g["task"]]) + 0.8 * (k / len(rules) - 0.4)
            x = g["speedup"].to_numpy(float)
            lo, hi = x - g["s_low"].to_numpy(float), g["s_high"].to_numpy(float) - x
            ax.errorbar(x, y, xerr=[lo, hi], fmt="o", ms=3, lw=1,
                        color=cmap(k % 10), label=rule)  # fmt: skip
        ax.axvline(1.0, color="k", lw=0.6)
        ax.set_xscale("log")
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
        ax.set_xlabel("S = N_Q-learning / N_rule over the band (95% interval)", fontsize=7)
        ax.set_title(f"{metric}: the call per (rule, task)", fontsize=8)
        ax.tick_params(labelsize=6)
        if len(sub):
            ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, out / "speedups.png")


def write_all(suite: ControlSuite, out: Path, units, tasks, floor_table) -> dict[str, Any]:
    """Writes every result file; returns the manifest's scoring part. A suite that calls
    differences without a tested null control is an error (as the prediction suites)."""
    out = Path(out)
    axes = tuple(suite.metrics)
    cells, pairs = score(suite, units, floor_table)
    nulls = calls.calibrated_null_rates(suite, pairs)
    cells = cells[ORDER]
    write_csv(cells, out / "sample_complexity.csv")
    write_csv(pairs, out / "estimand.csv")
    convergence = report.convergence_frame(units, axes, "metric")
    write_csv(convergence, out / "convergence.csv")
    write_csv(report.sensitivity_frame(suite, units, axes, "metric"), out / "sensitivity.csv")
    text, summary = verdict_markdown(suite, cells, pairs, nulls)
    write_text(out / "verdict.md", text)
    write_text(out / "table.md", sample_complexity_table(suite, cells))
    figures = [curves_figure(out, suite, cells, convergence), speedups_figure(out, suite, pairs)]
    edges = cells[(cells["edge"] != "") & cells["edge"].notna()]
    return {
        "suite": suite.name,
        "protocol": "sample complexity N(eps) of control learners, tuned per accuracy and "
        "refined to a flat optimum; one estimand per (rule, task, metric): the geometric mean "
        "of S over the band (SCIENCE.md sections 7-9)",
        "configuration": suite.config(),
        "seeds": {"tuning": list(suite.tuning_seeds), "evaluation": list(suite.eval_seeds)},
        "null_controls": nulls,
        "edge_selections": int(len(edges)),
        "edge_cells": edges[["rule", "task", "metric", "epsilon", "edge"]].to_dict("records"),
        "diverged_cells": report.diverged_cells(cells),
        "grid_extensions": {u.name: u.rounds for u in units},
        "refinement_rounds": {u.name: u.refinements for u in units},
        "configurations_tried": {u.name: sum(len(v) for v in u.tuning.values()) for u in units},
        "floors": {f"{r}|{t}": v for (r, t), v in floor_table.items()},
        "early_updates": sc.EARLY_UPDATES,
        "summary": summary,
        "figures": figures,
    }
