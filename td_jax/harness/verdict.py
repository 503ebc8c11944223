"""The verdict: per (rule, task) one line over the eps grid, controls, overall answers.

Everything here reads ``sample_complexity.csv``'s frame; the README's findings sentence is
``summary["sentence"]``, generated here so that it always comes from the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from td_jax.harness.suites import Suite

VERDICT_TITLE = "# Does distributional TD converge faster than TD?"
PRIMARY = "visit"
CALLS = ("faster", "slower")


def family_of(task: str) -> str:
    """The reward family of a task label ``env/family`` or ``env/family@scale``."""
    return task.split("/", 1)[-1]


def _s(row) -> str:
    s, lo, hi = row["speedup"], row["s_low"], row["s_high"]
    if s == np.inf:
        return "S = inf (only the rule reached)"
    if s == 0:
        return "S = 0 (only the baseline reached)"
    if not np.isfinite(s):
        return "S n/a"
    return f"S = {s:.2f} [{lo:.2f}, {hi:.2f}]"


def _segments(grp: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Runs of equal verdicts over eps, coarse to fine."""
    grp = grp.sort_values("epsilon", ascending=False)
    out, cur, rows = [], None, []
    for _, row in grp.iterrows():
        if row["verdict"] != cur and rows:
            out.append((cur, pd.DataFrame(rows)))
            rows = []
        cur = row["verdict"]
        rows.append(row)
    if rows:
        out.append((cur, pd.DataFrame(rows)))
    return out


def rule_task_line(grp: pd.DataFrame) -> str:
    """e.g. 'faster for eps >= 0.03 (S = 1.6 [1.3, 2.0] at eps 0.03); no detectable
    difference below; floor 0.004'."""
    parts = []
    for verdict, seg in _segments(grp):
        e_hi, e_lo = seg["epsilon"].max(), seg["epsilon"].min()
        span = f"eps = {e_hi:g}" if e_hi == e_lo else f"eps {e_lo:g} to {e_hi:g}"
        text = f"{verdict} at {span}"
        if verdict in CALLS:
            best = seg.iloc[len(seg) // 2]
            text += f" ({_s(best)} at eps {best['epsilon']:g})"
        parts.append(text)
    floor = grp["floor"].iloc[0]
    tail = f"; floor {floor:.2g}" if np.isfinite(floor) and floor > 0 else ""
    return "; ".join(parts) + tail


def _counts(sub: pd.DataFrame) -> dict[str, int]:
    c = sub["verdict"].value_counts()
    return {k: int(c.get(k, 0)) for k in (
        "faster", "slower", "no detectable difference", "cannot reach", "rule not reached",
        "baseline not reached", "neither reached")}  # fmt: skip


def _answer(counts: dict[str, int], total: int) -> str:
    f, s = counts["faster"], counts["slower"]
    if f == 0 and s == 0:
        return "no detectable difference"
    if f > 0 and s == 0:
        return "faster"
    if s > 0 and f == 0:
        return "slower"
    return "mixed"


def verdict_markdown(
    suite: Suite, cells: pd.DataFrame, notes: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The verdict's markdown and its machine-readable summary."""
    prim = cells[(cells["weighting"] == PRIMARY) & (cells["rule"] != cells["baseline"])]
    placebos = [p for p in suite.placebos if p in set(prim["rule"])]
    tested_all = cells[cells["verdict"].isin(["faster", "slower", "no detectable difference"])]
    lines = [
        VERDICT_TITLE,
        "",
        f"Suite `{suite.name}`, by the sample-complexity protocol (SCIENCE.md section 7). "
        f"Error: squared value error weighted by the stream's visit distribution, divided by "
        f"the return variance under the same weights. N(eps): updates after which the mean "
        f"over {len(suite.eval_seeds)} evaluation seeds stays <= eps. Each rule at its own "
        f"configuration for each eps (constant or harmonic steps, in the rule's units), "
        f"chosen on {len(suite.tuning_seeds)} separate tuning seeds. S(eps) = N_baseline / "
        f"N_rule, 95% paired bootstrap interval over evaluation seeds ({suite.reps} "
        f"resamples). A cell is *faster* / *slower* only when its test rejects "
        f"|log S| <= log(1 + {suite.margin:g}) under Benjamini-Hochberg at q = "
        f"{suite.fdr_q:g} over all {len(tested_all)} tested (rule, task, weighting, eps) "
        f"cells; an eps at or below a rule's bias floor is *cannot reach*. eps grid: "
        f"{', '.join(f'{e:g}' for e in suite.eps_grid)}.",
        "",
    ]
    summary: dict[str, Any] = {"rules": {}, "families": {}, "placebos": {}}
    # Controls first.
    lines += ["## Controls that must come out null", ""]
    pl = prim[prim["rule"].isin(placebos)]
    pl_tested = pl[pl["verdict"].isin(["faster", "slower", "no detectable difference"])]
    fp = int(pl_tested["verdict"].isin(CALLS).sum())
    rate = fp / max(len(pl_tested), 1)
    for p in placebos:
        sub = pl_tested[pl_tested["rule"] == p]
        n_fp = int(sub["verdict"].isin(CALLS).sum())
        summary["placebos"][p] = {"tested": int(len(sub)), "false_positives": n_fp}
        lines.append(f"- `{p}`: {n_fp} of {len(sub)} tested cells called faster or slower.")
    lines += [
        "",
        f"**Placebo false-positive rate: {rate:.3f}** ({fp} of {len(pl_tested)} tested "
        f"placebo cells, visit weighting).",
        "",
    ]
    summary["placebo_false_positive_rate"] = rate
    # Per rule and task.
    rules = [r.label for r in suite.rules if r.label in set(prim["rule"])]
    lines += ["## Per rule and task (visit weighting)", ""]
    for r in rules:
        lines += [f"### `{r}` vs `{suite.baseline_of(r)}`", ""]
        if r in notes:
            lines += [f"Note: {notes[r]}", ""]
        for task, grp in prim[prim["rule"] == r].groupby("task"):
            lines.append(f"- {task}: {rule_task_line(grp)}")
        lines.append("")
    # Overall per rule and per family.
    lines += ["## Overall", ""]
    distributional = [r for r in rules if r not in placebos and r != "td_lambda"]
    for r in rules:
        sub = prim[prim["rule"] == r]
        c = _counts(sub)
        summary["rules"][r] = {**c, "cells": int(len(sub)), "answer": _answer(c, len(sub))}
        lines.append(
            f"- `{r}`: {_answer(c, len(sub))}: faster in {c['faster']}, slower in "
            f"{c['slower']}, no detectable difference in {c['no detectable difference']}, "
            f"cannot reach (floor) in {c['cannot reach']}, not reached within the horizon "
            f"in {c['rule not reached'] + c['neither reached']} of {len(sub)} (task, eps) cells."
        )
    lines += ["", "By reward family (distributional rules only):", ""]
    dist = prim[prim["rule"].isin(distributional)]
    for fam, sub in dist.groupby(dist["task"].map(family_of)):
        c = _counts(sub)
        summary["families"][fam] = {**c, "cells": int(len(sub)), "answer": _answer(c, len(sub))}
        lines.append(
            f"- {fam}: {_answer(c, len(sub))} (faster {c['faster']}, slower {c['slower']}, "
            f"no detectable difference {c['no detectable difference']} of {len(sub)})"
        )
    total = _counts(dist)
    faster_fams = sorted(f for f, v in summary["families"].items() if v["faster"] > v["slower"])
    slower_fams = sorted(f for f, v in summary["families"].items() if v["slower"] > v["faster"])
    sentence = (
        f"Across {len(distributional)} distributional rules and {dist['task'].nunique()} tasks, "
        f"distributional TD was faster than TD in {total['faster']} and slower in "
        f"{total['slower']} of {len(dist)} (rule, task, eps) cells (FDR q = {suite.fdr_q:g}); "
        f"faster more often than slower for: {', '.join(faster_fams) or 'no reward family'}; "
        f"slower more often for: {', '.join(slower_fams) or 'no reward family'}; "
        f"placebo false-positive rate {rate:.3f}."
    )
    summary["sentence"] = sentence
    summary["totals"] = total
    lines += ["", f"**Answer.** {sentence}", ""]
    if suite.claims:
        lines += claims_section(suite, prim, summary)
    return "\n".join(lines), summary


def claims_section(suite: Suite, prim: pd.DataFrame, summary: dict) -> list[str]:
    """Each published claim: *reproduced* when some eps cell is called as claimed and none
    the opposite way (visit weighting, after BH)."""
    lines = ["## Claims", "", "| claim | rule | task | cells as claimed | opposite | verdict |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    summary["claims"] = []
    for c in suite.claims:
        sub = prim[(prim["rule"] == c.rule) & (prim["task"] == c.task)]
        opposite = "slower" if c.expected == "faster" else "faster"
        n_as, n_opp = (
            int((sub["verdict"] == c.expected).sum()),
            int((sub["verdict"] == opposite).sum()),
        )
        ok = n_as > 0 and n_opp == 0
        word = "reproduced" if ok else "NOT reproduced"
        lines.append(f"| {c.text} | `{c.rule}` | {c.task} | {n_as} of {len(sub)} | {n_opp} | "
                     f"{word} |")  # fmt: skip
        summary["claims"].append(
            {"text": c.text, "rule": c.rule, "task": c.task, "as_claimed": n_as,
             "opposite": n_opp, "reproduced": ok}
        )  # fmt: skip
    lines.append("")
    return lines
