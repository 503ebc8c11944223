"""Scoring a finished suite: N(eps), S(eps) with intervals and FDR control, files, verdict.

Reads the units' seed-mean tuning curves and per-seed evaluation curves (never JAX):
* ``sample_complexity.csv``: per (rule, task, weighting, eps), N(eps) on the evaluation
  seeds with its bootstrap interval, the configuration used, whether it was reached, the
  rule's floor, and against the baseline S(eps), its interval, p-value and verdict;
* ``convergence.csv``: the evaluation seeds' mean normalised error of every evaluated
  configuration at every checkpoint, both weightings, from which N(eps) can be recomputed;
* ``sensitivity.csv``: N(eps) on the tuning seeds for every configuration tried;
* ``verdict.md``, ``table.md`` and the figures (``td_jax.engine.scoring.plots``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from td_jax.analysis import sample_complexity as sc
from td_jax.engine import tuning
from td_jax.engine.scoring import calls, control_answer, plots
from td_jax.engine.scoring.verdict import verdict_markdown
from td_jax.engine.specs import Suite
from td_jax.engine.store import write_csv, write_text
from td_jax.runner.metrics import WEIGHTINGS

PRIMARY = "visit"
EARLY_UPDATES = sc.EARLY_UPDATES


def convergence_frame(units, axes=tuple(WEIGHTINGS), column: str = "weighting") -> pd.DataFrame:
    """Evaluation-seed mean normalised error of every evaluated configuration (``column``
    names the axis: the weighting, or a control suite's metric)."""
    frames = []
    for unit in units:
        for t in unit.tasks:
            for cfg, curves in unit.evaluation[t.spec.label].items():
                mean = np.stack([sc.mean_curve(curves[:, :, w]) for w in range(curves.shape[2])])
                d = tuning.describe(cfg, tuning.unit_of(unit, t.spec.label), unit.num_states)
                del d["decay"]  # step_size and schedule name the configuration
                for wi, w in enumerate(axes):
                    frames.append(
                        pd.DataFrame(
                            {
                                "rule": unit.spec.label,
                                "task": t.spec.label,
                                column: w,
                                **d,
                                "step": unit.steps,
                                "mean_error": mean[wi],
                            }
                        )
                    )
    return pd.concat(frames, ignore_index=True)


def sensitivity_frame(
    suite: Suite, units, axes=tuple(WEIGHTINGS), column: str = "weighting"
) -> pd.DataFrame:
    """N(eps) on the tuning seeds of every configuration tried, per weighting (or
    ``column``: a control suite's metric)."""
    rows = []
    for unit in units:
        for t in unit.tasks:
            runs = unit.tuning[t.spec.label]
            if not runs:
                continue
            means = np.stack(list(runs.values()))  # [K, C, W]
            eps_of = [tuning.task_eps(suite, t, w) for w in axes]
            ns = [sc.crossing_times(unit.steps, means[:, :, wi], eps_of[wi])  # [K, E]
                  for wi in range(len(axes))]  # fmt: skip
            for k, (cfg, mean) in enumerate(runs.items()):
                d = tuning.describe(cfg, tuning.unit_of(unit, t.spec.label), unit.num_states)
                for wi, w in enumerate(axes):
                    eps, n = eps_of[wi], ns[wi][k]
                    for e, x, rel in zip(eps, n, suite.eps_grid, strict=True):
                        rows.append(
                            {"rule": unit.spec.label, "task": t.spec.label, column: w,
                             "epsilon": e, "eps_relative": rel, "step_size": d["step_size"],
                             "schedule": d["schedule"], "alpha_units": cfg.alpha,
                             "n_tuning": x, "final_error": mean[-1, wi]}
                        )  # fmt: skip
    frame = pd.DataFrame(rows)
    if not getattr(suite, "eps_relative", False):  # absolute grids: the column says nothing
        frame = frame.drop(columns="eps_relative")
    return frame


def diverged_cells(cells: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per (rule, task) with a diverged evaluation seed: the most seeds lost at
    any eps or weighting, of how many."""
    sub = cells[cells["diverged"].fillna(0) > 0]
    out = []
    for (rule, task), grp in sub.groupby(["rule", "task"], sort=True):
        worst = grp.loc[grp["diverged"].idxmax()]
        out.append({"rule": rule, "task": task, "diverged": int(worst["diverged"]),
                    "seeds": int(worst["seeds"])})  # fmt: skip
    return out


def write_all(
    suite: Suite,
    out: Path,
    units,
    infos,
    floor_table,
    results_root: Path | None = None,
    stale: list[str] | None = None,
) -> dict[str, Any]:
    """Writes every result file of a suite; returns the manifest's scoring part.

    ``results_root``: where the control suites' results live (the default suite's verdict
    ends with their answer, ``engine.scoring.control_answer``, when they are there). ``stale``:
    with ``--reuse-stale``, the units reused although other code made them (the verdict
    says so)."""
    out = Path(out)
    cells, boots = calls.cell_frame(suite, units, floor_table)
    pairs = calls.pair_frame(suite, units, cells, boots)
    nulls = calls.calibrated_null_rates(suite, pairs)
    order = [
        "rule", "task", "weighting", "epsilon", "n_updates", "n_low", "n_high", "step_size",
        "schedule", "decay", "reached", "floor", "baseline", "speedup", "s_low", "s_high",
        "censored", "p_value", "s_se", "significant", "verdict", "identity", "eps_relative",
        "regime", "plateau", "plateau_low", "plateau_high", "alpha_units", "step_unit", "edge",
        "flat_edge", "search", "candidates", "coverage",
        "diverged", "seeds", "n_tuning", "reached_tuning", "horizon",
    ]  # fmt: skip
    cells = cells[order]
    write_csv(cells, out / "sample_complexity.csv")
    write_csv(pairs, out / "estimand.csv")
    convergence = convergence_frame(units)
    write_csv(convergence, out / "convergence.csv")
    sensitivity = sensitivity_frame(suite, units)
    write_csv(sensitivity, out / "sensitivity.csv")
    notes = {r.label: r.note for r in suite.rules if r.note}
    verdict_text, summary = verdict_markdown(suite, cells, pairs, nulls, notes)
    if results_root is not None:
        control = control_answer.control_section(results_root)
        if control:
            verdict_text = verdict_text.rstrip("\n") + "\n\n" + "\n".join(control)
    if stale is not None:
        verdict_text = verdict_text.rstrip("\n") + (
            f"\n\n**Reused on purpose (--reuse-stale): {len(stale)} unit(s) computed by other "
            f"code** ({', '.join(stale) or 'none'}); these numbers may not be what this code "
            "computes.\n"
        )
    write_text(out / "verdict.md", verdict_text)
    write_text(out / "table.md", sample_complexity_table(suite, cells))
    figures = plots.write_all(out, suite, cells, convergence, sensitivity)
    edges = cells[(cells["edge"] != "") & cells["edge"].notna()]
    flat = cells[(cells["flat_edge"] != "") & cells["flat_edge"].notna()]
    keys = ["rule", "task", "weighting", "epsilon"]
    return {
        "suite": suite.name,
        "protocol": "sample complexity N(eps) tuned per accuracy and refined to a flat optimum; "
        "one estimand per (rule, task): the geometric mean of S over the band (SCIENCE.md "
        "section 9)",
        "configuration": suite.config(),
        "seeds": {"tuning": list(suite.tuning_seeds), "evaluation": list(suite.eval_seeds)},
        "num_evaluation_seeds": len(suite.eval_seeds),
        "num_tuning_seeds": len(suite.tuning_seeds),
        "null_controls": nulls,
        "edge_selections": int(len(edges)),
        "edge_cells": edges[["rule", "task", "weighting", "epsilon", "edge"]].to_dict("records"),
        "diverged_cells": diverged_cells(cells),
        "flat_edge_selections": int(len(flat)),
        "flat_edge_cells": flat[keys + ["flat_edge", "schedule", "step_size"]].to_dict("records"),
        "grid_extensions": {u.name: u.rounds for u in units},
        "refinement_rounds": {u.name: getattr(u, "refinements", 0) for u in units},
        "configurations_tried": {u.name: sum(len(v) for v in u.tuning.values()) for u in units},
        "fdr_q": suite.fdr_q,
        "summary": summary,
        "figures": figures,
    }


def _fmt_n(n: float, lo: float, hi: float) -> str:
    if not np.isfinite(n):
        return "not reached"
    hi_s = "not reached" if not np.isfinite(hi) else f"{hi:,.0f}"
    return f"{n:,.0f} [{lo:,.0f}, {hi_s}]"


def sample_complexity_table(suite: Suite, cells: pd.DataFrame) -> str:
    """Markdown: N(eps) per task x rule at each eps (primary weighting)."""
    rules = list(dict.fromkeys(r.label for r in suite.rules))
    prim = cells[cells["weighting"] == PRIMARY]
    lines = [
        f"# Sample complexity: suite `{suite.name}`",
        "",
        f"N(eps): updates after which the mean over {len(suite.eval_seeds)} evaluation seeds "
        "of the normalised value error (visit-weighted squared error / return variance) "
        f"stays <= eps, with a 95% bootstrap interval; each rule at its configuration "
        f"selected for that eps on {len(suite.tuning_seeds)} separate tuning seeds. "
        "*not reached*: still above eps at the horizon (a censored cell, not a number).",
        "",
    ]
    relative = getattr(suite, "eps_relative", False)
    for e in suite.eps_grid:
        col = "eps_relative" if relative else "epsilon"
        sub = prim[np.isclose(prim[col], e)]
        head = f"eps = {e:g} x e0 (the task's initial error)" if relative else f"eps = {e:g}"
        lines += [f"## {head}", "", *n_table(sub, rules, ("faster", "slower")), ""]
    return "\n".join(lines)


def n_table(sub: pd.DataFrame, rules: list[str], tags: tuple[str, ...]) -> list[str]:
    """Markdown rows of one eps: N(eps) [interval] per task x rule, the verdict in brackets
    where it is one of ``tags``, "diverged (k of n)" or "not run" in its place."""
    lines = ["| task | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
    for task, grp in sub.groupby("task"):
        grp = grp.set_index("rule")
        row = []
        for r in rules:
            if r not in grp.index:
                row.append("not run")
                continue
            x = grp.loc[r]
            if x.get("diverged", 0) > 0:
                row.append(f"diverged ({int(x['diverged'])} of {int(x['seeds'])})")
                continue
            cell = _fmt_n(x["n_updates"], x["n_low"], x["n_high"])
            if x["verdict"] in tags:
                cell += f" ({x['verdict']})"
            row.append(cell)
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    return lines
