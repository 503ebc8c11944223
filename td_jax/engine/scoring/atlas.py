"""The atlas report (``Suite.reports = ("atlas",)``): where distributional TD converges faster
than TD, as a table over the axes of the reward law and the task, with the asymptotic
theory laid over the bandit cells (SCIENCE.md section 10; issue 26).

It reads the standard report's files in the results directory (``estimand.csv``,
``sample_complexity.csv``) and the suite's own specs, with the environments and rules they
build (never the units), so ``td-jax report DIR`` rewrites it from a finished run. It writes:

* ``atlas.csv``: one row per (rule, task) pair of ``estimand.csv`` (visit weighting),
  tested or not (``status``, and ``tested``: status is "tested"): the estimand S over the
  band with its interval, the call, the floor, the transient above the band; the task's
  and reward's axes (``atlas_axes``: environment, gamma, states, instances, family, shape
  parameters, ``standardize``, ``df_tail``, ``inv_df``, ``skew``, the engine's
  ``noise_to_signal`` and ``nsr_iqr``), the rule's size m; the measured S at the finest
  band eps (``atlas_theory.finest``); and on bandit cells of tabular QTD, S_inf, the
  regime, the bias, the normalised floor, ``agreement`` and ``reason``
  (``atlas_theory``);
* the figures (``atlas_plots``) and ``results/<suite>/atlas.md``: counts per rule, the
  boundary model (``atlas_boundary``) with its held-out accuracy, theory against
  measurement, and the generated sentence. The atlas has its own page: verdict.md stays the
  standard one.

S_inf is a reference mark only: nothing of the protocol is tuned toward it.

References: Rowland et al. (2023), An analysis of quantile temporal-difference learning,
arXiv:2301.04462 (the QTD asymptotics laid over the bandit cells).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from td_jax import envs
from td_jax.engine.scoring import atlas_axes, atlas_boundary, atlas_plots, atlas_theory
from td_jax.engine.specs import Suite, TaskSpec
from td_jax.engine.store import write_csv, write_text

PRIMARY = atlas_theory.PRIMARY
QTD_LIKE = atlas_boundary.QTD_LIKE  # registry rules the bandit theory describes (tabular QTD)
skewness = atlas_axes.skewness
PAIR_COLUMNS = (
    "rule",
    "task",
    "baseline",
    "role",
    "distributional",
    "identity",
    "status",
    "verdict",
    "significant",
    "speedup",
    "s_low",
    "s_high",
    "p_value",
    "band_points",
    "eps_high",
    "eps_low",
    "e0",
    "floor",
    "noise_to_signal",
    "transient_eps",
    "transient_speedup",
    "transient_status",
)
# Columns every atlas.csv has, rows or not (an empty estimand.csv gives a header only).
COLUMNS = (
    *PAIR_COLUMNS,
    "env",
    "gamma",
    "num_states",
    "family",
    "df_tail",
    "inv_df",
    "skew",
    "nsr_iqr",
    "rule_name",
    "m",
    *atlas_theory.FINEST,
    *atlas_theory.FINEST_N,
    *atlas_theory.THEORY,
    "regime",
    "agreement",
    "reason",
)


def bandit_law(task: TaskSpec) -> Any:
    """The exact reward law of a one-law task (a bandit), read from the built env; None
    where the env has several reward laws or instances."""
    if task.instances:
        return None
    laws = envs.make(task.env, **task.env_params).reward_laws()
    return laws[0] if len(laws) == 1 else None


def atlas_frame(suite: Suite, pairs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``atlas.csv``: one row per (rule, task) pair of ``estimand.csv`` (visit weighting),
    every pair, tested or not."""
    tasks = {t.label: t for t in suite.tasks}
    rules = {r.label: r for r in suite.rules}
    task_cols = {label: atlas_axes.task_axes(t, suite.mode) for label, t in tasks.items()}
    rule_cols = {label: atlas_axes.rule_axes(r) for label, r in rules.items()}
    laws: dict[str, Any] = {}
    prim = pairs[pairs["weighting"] == PRIMARY] if "weighting" in pairs else pairs
    rows = []
    for _, p in prim.iterrows():
        row = {c: p[c] for c in PAIR_COLUMNS if c in p}
        row |= task_cols[p["task"]] | rule_cols[p["rule"]]
        row |= atlas_theory.finest(cells, p["rule"], p["task"], float(p.get("e0", np.nan)))
        if row["rule_name"] in QTD_LIKE and row["num_states"] == 1 and p["task"] not in laws:
            laws[p["task"]] = bandit_law(tasks[p["task"]])
        row |= atlas_theory.theory(row, laws.get(p["task"]), QTD_LIKE)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=[*frame.columns, *(c for c in COLUMNS if c not in frame)])
    frame["log_s"] = np.log(frame["speedup"].astype(float))
    frame["tested"] = frame["status"] == "tested"
    frame["faster"] = frame["verdict"] == "faster"
    return frame


def _counts(frame: pd.DataFrame) -> list[str]:
    lines = [
        "| rule | role | tested | faster | slower | no detectable difference | untested |",
        "|---|---|---|---|---|---|---|",
    ]
    for (rule, role), g in frame.groupby(["rule", "role"], sort=False):
        tested = g[g["status"] == "tested"]
        v = tested["verdict"]
        lines.append(
            f"| `{rule}` | {role} | {len(tested)} | {(v == 'faster').sum()} | "
            f"{(v == 'slower').sum()} | {(v == 'no detectable difference').sum()} | "
            f"{len(g) - len(tested)} |"
        )
    return lines


def _theory_lines(frame: pd.DataFrame) -> list[str]:
    sub = frame[frame["regime"].fillna("") != ""]
    if not len(sub):
        return ["No bandit cell of tabular QTD: no theory to lay over.", ""]
    lines = [
        "S_inf: Rowland et al. (2023, arXiv:2301.04462) and SCIENCE.md section 10, one "
        "shared step c/t (tabular QTD) and one gain per quantile; floor: the QTD mean's "
        "bias^2 / sigma^2 (the normalised squared error no step removes, in eps's units). "
        "The measured S is at the finest band eps where the cell is tested and both N "
        "are finite (eps in the suite's units and over e0), with its 95% interval.",
        "",
        atlas_theory.AGREEMENT,
        "",
        "| rule | task | m | regime | S_inf shared | S_inf per quantile | floor | eps | "
        "eps / e0 | measured S | agreement | reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in sub.iterrows():
        lines.append(
            f"| `{r['rule']}` | {r['task']} | {r['m']:.0f} | {r['regime']} | "
            f"{r['S_inf_shared']:.3g} | {r['S_inf_per_quantile']:.3g} | "
            f"{r['theory_floor']:.3g} | {r['eps_finest']:.3g} | {r['eps_finest_rel']:.3g} | "
            f"{r['s_finest']:.3g} [{r['s_finest_low']:.3g}, {r['s_finest_high']:.3g}] | "
            f"{r['agreement']} | {r['reason'] or '-'} |"
        )
    agree = sub["agreement"].value_counts().to_dict()
    lines += ["", "Agreement: " + ", ".join(f"{k} {v}" for k, v in sorted(agree.items())) + ".", ""]
    return lines


NSR_NOTE = (
    "Two noise-to-signal columns: `noise_to_signal` is the engine's (the reward std over "
    "the RMS true value under the visit weights; where a variance is infinite, Student t "
    "with df <= 2, the spread is IQR / 1.349 instead, so its definition switches at "
    "df = 2), and `nsr_iqr` uses IQR / 1.349 for every law (one definition over the "
    "whole atlas). The phase diagrams and the boundary model use `nsr_iqr`."
)


def atlas_markdown(
    suite: Suite, frame: pd.DataFrame, model: dict[str, Any], figures: list[str]
) -> str:
    """``results/<suite>/atlas.md``: counts per rule, the boundary model, theory against
    measurement, and the generated sentence."""
    lines = [
        f"# Atlas: suite `{suite.name}`",
        "",
        f"{len(frame)} (rule, task) pairs against the baseline on the visit weighting, "
        f"{int(frame['tested'].sum())} of them tested (atlas.csv: one row per pair, "
        "`tested` and `status` say which); the estimand is the geometric mean of S over "
        "the band (SCIENCE.md section 9). atlas.csv holds every axis as a column. The "
        "standard verdict is verdict.md.",
        "",
        NSR_NOTE,
        "",
        "## Calls per rule",
        "",
        *_counts(frame),
        "",
        "## Boundary model",
        "",
        *atlas_boundary.markdown(model),
        "",
        "## Theory on the bandit",
        "",
        *_theory_lines(frame),
        "## Sentence",
        "",
        f"**{model['sentence']}**",
        "",
        "## Figures",
        "",
        *[f"- `{f}`" for f in figures],
        "",
    ]
    return "\n".join(lines)


def _read(path: Path) -> pd.DataFrame:
    """A report CSV; an empty file (no pair, no cell) reads as an empty frame."""
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write(suite: Suite, out: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """Writes the atlas into ``out`` (the staging directory, after the standard report);
    returns the file names written."""
    out = Path(out)
    pairs, cells = _read(out / "estimand.csv"), _read(out / "sample_complexity.csv")
    frame = atlas_frame(suite, pairs, cells)
    model = atlas_boundary.fit_report(frame)
    files = [write_csv(frame, out / "atlas.csv")]
    figures = atlas_plots.write_all(out, frame, QTD_LIKE)
    files += figures
    files.append(write_text(out / "atlas.md", atlas_markdown(suite, frame, model, figures)))
    summary = model_summary(frame, model, figures)
    files.append(write_text(out / "atlas_model.json", json.dumps(summary, indent=1) + "\n"))
    verdict = out / "verdict.md"
    if verdict.exists():  # the standard verdict ends with the atlas's answer
        text = verdict.read_text().rstrip("\n") + "\n\n" + "\n".join(verdict_section(summary))
        write_text(verdict, text + "\n")
    return files


def model_summary(frame: pd.DataFrame, model: dict[str, Any], figures: list[str]) -> dict:
    """``atlas_model.json``: what the README and the verdict quote (the generated sentence,
    the boundary model's held-out accuracy, the calls of the answer's rules)."""
    answer = frame[(frame["role"] == "answer") & frame["distributional"].astype(bool)]
    tested = answer[answer["tested"].astype(bool)]
    return {
        "sentence": model["sentence"],
        "boundary_found": bool(atlas_boundary.found(model)),
        "what": model["what"],
        "rows": model["rows"],
        "faster": model["faster"],
        "tasks": model["tasks"],
        "heldout": model["heldout"],
        "heldout_accuracy": model["heldout_accuracy"],
        "accuracy_low": model["accuracy_low"],
        "majority_accuracy": model["majority_accuracy"],
        "pairs": int(len(frame)),
        "answer_pairs": int(len(answer)),
        "answer_tested": int(len(tested)),
        "answer_faster": int((tested["verdict"] == "faster").sum()),
        "answer_slower": int((tested["verdict"] == "slower").sum()),
        "figures": figures,
    }


def verdict_section(summary: dict[str, Any]) -> list[str]:
    """The atlas's answer at the end of verdict.md: the sentence and the boundary model's
    held-out accuracy (details in atlas.md)."""
    return [
        "## Atlas: where distributional TD converges faster",
        "",
        f"{summary['answer_tested']} of {summary['answer_pairs']} (distributional rule, task) "
        f"pairs tested: {summary['answer_faster']} faster, {summary['answer_slower']} slower "
        "(atlas.csv; the calls above).",
        "",
        f"Boundary model (a depth-2 tree on the axes, fitted on {summary['rows']} called "
        f"pairs of {summary['what']}): held-out accuracy {summary['heldout_accuracy']:.3f} "
        f"(leave-one-task-out over {summary['tasks']} tasks; exact 95% lower bound "
        f"{summary['accuracy_low']:.3f}), against {summary['majority_accuracy']:.3f} for "
        "the majority class. Details: atlas.md.",
        "",
        f"**{summary['sentence']}**",
    ]
