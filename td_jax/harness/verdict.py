"""The verdict: per (rule, task) one line over the eps grid, controls, overall answers.

Everything here reads ``sample_complexity.csv``'s frame; the README's findings sentence is
``summary["sentence"]``, generated here so that it always comes from the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from td_jax.harness.sample_complexity import EARLY_UPDATES
from td_jax.harness.suites import Suite

VERDICT_TITLE = "# Does distributional TD converge faster than TD?"
PRIMARY = "visit"
CALLS = ("faster", "slower")
EARLY = EARLY_UPDATES
TESTED = ("faster", "slower", "no detectable difference")


def family_of(task: str) -> str:
    """The reward family of a task label ``env/family`` or ``env/family@scale``."""
    return task.split("/", 1)[-1]


def _s(row) -> str:
    s, lo, hi = row["speedup"], row["s_low"], row["s_high"]
    if not np.isfinite(s):
        return "S n/a"
    if row.get("censored") == "baseline":  # only the rule reached eps: S is a lower bound
        return f"S >= {s:.2f} [{lo:.2f}, {hi:.2f}], TD not reached"
    if row.get("censored") == "rule":
        return f"S <= {s:.2f} [{lo:.2f}, {hi:.2f}], rule not reached"
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
    """e.g. 'faster at eps 0.03 to 0.3 (S = 1.6 [1.3, 2.0] at eps 0.095); no detectable
    difference at eps 0.003 to 0.017; floor 0.004' (S shown for the middle eps of a run)."""
    parts = []
    for verdict, seg in _segments(grp):
        e_hi, e_lo = seg["epsilon"].max(), seg["epsilon"].min()
        span = f"eps = {e_hi:g}" if e_hi == e_lo else f"eps {e_lo:g} to {e_hi:g}"
        text = f"{verdict} at {span}"
        if verdict == "diverged":
            worst = seg.loc[seg["diverged"].idxmax()]
            text = f"diverged ({int(worst['diverged'])} of {int(worst['seeds'])} seeds) at {span}"
        if verdict in CALLS:
            mid = seg.iloc[len(seg) // 2]
            text += f" ({_s(mid)} at eps {mid['epsilon']:g})"
        parts.append(text)
    floor = grp["floor"].iloc[0]
    tail = f"; floor {floor:.2g}" if np.isfinite(floor) and floor > 0 else ""
    return "; ".join(parts) + tail


KINDS = ("faster", "slower", "no detectable difference", "diverged", "cannot reach",
         "neither reached", "edge", "trivial", "early")  # fmt: skip


def _counts(sub: pd.DataFrame) -> dict[str, int]:
    c = sub["verdict"].value_counts()
    out = {k: int(c.get(k, 0)) for k in KINDS}
    beyond = sub[sub["beyond_grid_band"].fillna(False).astype(bool)]["verdict"].value_counts()
    out["faster beyond grid band"] = int(beyond.get("faster", 0))
    out["slower beyond grid band"] = int(beyond.get("slower", 0))
    return out


def _answer(counts: dict[str, int]) -> str:
    f, s = counts["faster"], counts["slower"]
    if f == 0 and s == 0:
        return "diverged" if counts["diverged"] else "no detectable difference"
    if s == 0:
        return "faster"
    if f == 0:
        return "slower"
    return "mixed"


def _count_line(c: dict[str, int], total: int) -> str:
    return (
        f"faster in {c['faster']} ({c['faster beyond grid band']} beyond the grid band), "
        f"slower in {c['slower']} ({c['slower beyond grid band']}), no detectable difference in "
        f"{c['no detectable difference']}, diverged in {c['diverged']}, cannot reach (floor) "
        f"in {c['cannot reach']}, "
        f"neither reached within the horizon in {c['neither reached']}, edge-tuned in "
        f"{c['edge']}, met by the initial estimate (trivial) in {c['trivial']}, met within "
        f"{EARLY} updates (early) in {c['early']} of {total} (task, eps) cells"
    )


def verdict_markdown(
    suite: Suite, cells: pd.DataFrame, notes: dict[str, str], band: float | None = None
) -> tuple[str, dict[str, Any]]:
    """The verdict's markdown and its machine-readable summary.

    ``band``: the grid-resolution band (``report.grid_band``); calls whose interval clears
    it are counted apart as *beyond the grid band*."""
    band = band if band is not None else 1.0 + suite.margin
    prim = cells[(cells["weighting"] == PRIMARY) & (cells["rule"] != cells["baseline"])]
    placebos = [p for p in suite.placebos if p in set(prim["rule"])]
    calibration = [p for p in suite.calibration if p in set(prim["rule"])]
    controls = prim["rule"].isin(placebos) | (prim["identity"].fillna("") != "")
    tested = prim["verdict"].isin(TESTED)
    n_flat = int((cells.get("flat_edge", pd.Series(dtype=str)).fillna("") != "").sum())
    n_tested_all = int(
        cells["verdict"].isin(["faster", "slower", "no detectable difference"]).sum()
    )
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
        f"resamples); where one side does not reach eps its N is taken as the horizon, so S "
        f"is a bound (shown as S >= or S <=). A cell is *faster* / *slower* only when "
        f"Benjamini-Hochberg at q = {suite.fdr_q:g} rejects |log S| <= log(1 + "
        f"{suite.margin:g}) and the interval lies beyond that band (families: each "
        f"weighting, cells equal to TD by construction apart; {n_tested_all} tested cells "
        f"in all); an eps met within {EARLY} updates by either side is *early* (it measures "
        f"the start, not a rate) and not called; an eps at or below "
        f"a rule's bias floor is *cannot reach*; a selection on a grid edge extends the grid "
        f"(up to {suite.max_extensions} times), then takes an interior configuration within "
        f"{suite.margin:g} of it where one exists (a flat optimum; "
        f"{n_flat} cells), else it is *edge* and "
        f"not called; an eps at or above the all-zero estimate's error is "
        f"*trivial* (met without learning) and not tuned. eps grid: "
        f"{', '.join(f'{e:g}' for e in suite.eps_grid)}.",
        "",
    ]
    summary: dict[str, Any] = {"rules": {}, "families": {}, "placebos": {}}
    lines += ["## Controls that must come out null", ""]
    ctrl = prim[controls & tested]
    for rule, sub in ctrl.groupby("rule", sort=False):
        n_fp = int(sub["verdict"].isin(CALLS).sum())
        why = "; ".join(sorted(set(sub["identity"].fillna("")) - {""}))
        kind = f" ({why}, on {sub['task'].nunique()} tasks)" if why else ""
        summary["placebos"][rule] = {"tested": int(len(sub)), "false_positives": n_fp}
        lines.append(
            f"- `{rule}`{kind}: {n_fp} of {len(sub)} tested cells called faster or slower."
        )
    fp = int(ctrl["verdict"].isin(CALLS).sum())
    rate = fp / max(len(ctrl), 1)
    lines += [
        "",
        f"**Placebo false-positive rate: {rate:.3f}** ({fp} of {len(ctrl)} tested control "
        "cells, visit weighting). These controls are the baseline up to a reparameterisation "
        "(or, for `ctd`, up to float rounding and support clipping), so they check the "
        "pipeline (selection, pairing, bootstrap, BH), not the test's calibration:",
        "",
    ]
    summary["placebo_false_positive_rate"] = rate
    for rule in calibration:
        sub = prim[(prim["rule"] == rule) & tested]
        n_fp = int(sub["verdict"].isin(CALLS).sum())
        grid_rate = n_fp / max(len(sub), 1)
        summary["grid_resolution_false_positive_rate"] = grid_rate
        lines.append(
            f"- **grid-resolution control** `{rule}` (TD on a grid half a grid step off TD's): "
            f"{n_fp} of {len(sub)} tested cells called faster or slower (rate "
            f"{grid_rate:.3f}); differences of that kind can come from the step grid alone. "
            f"95% of its |S| lie within x{band:.2f}: the **grid band**. Below, calls whose "
            f"interval clears [1/{band:.2f}, {band:.2f}] are counted as *beyond the grid band*."
        )
    summary["grid_band"] = band
    lines += [""]
    rules = [r.label for r in suite.rules if r.label in set(prim["rule"])]
    lines += ["## Per rule and task (visit weighting)", ""]
    for r in rules:
        lines += [f"### `{r}` vs `{suite.baseline_of(r)}`", ""]
        if r in notes:
            lines += [f"Note: {notes[r]}", ""]
        for task, grp in prim[prim["rule"] == r].groupby("task"):
            why = grp["identity"].fillna("").iloc[0]
            lines.append(f"- {task}: {rule_task_line(grp)}" + (f" (control: {why})" if why else ""))
        lines.append("")
    lines += ["## Overall", ""]
    answer = prim[~controls & ~prim["rule"].isin(calibration)]
    for r in rules:
        sub = answer[answer["rule"] == r]
        if not len(sub):
            lines.append(f"- `{r}`: a control only (see above).")
            continue
        c = _counts(sub)
        summary["rules"][r] = {**c, "cells": int(len(sub)), "answer": _answer(c)}
        lines.append(f"- `{r}`: {_answer(c)}: {_count_line(c, len(sub))}.")
    classical = {"td_lambda"} | set(calibration) | set(placebos)
    dist = answer[~answer["rule"].isin(classical)]
    lines += ["", "By reward family (distributional rules, controls excluded):", ""]
    for fam, sub in dist.groupby(dist["task"].map(family_of)):
        c = _counts(sub)
        summary["families"][fam] = {**c, "cells": int(len(sub)), "answer": _answer(c)}
        lines.append(
            f"- {fam}: {_answer(c)} (faster {c['faster']} ({c['faster beyond grid band']} "
            f"beyond the grid band), slower {c['slower']} ({c['slower beyond grid band']}), "
            f"no detectable difference {c['no detectable difference']} of {len(sub)})"
        )
    total = _counts(dist)
    tested_dist = dist["verdict"].isin(TESTED).sum()
    faster_fams = sorted(f for f, v in summary["families"].items() if v["faster"] > v["slower"])
    slower_fams = sorted(f for f, v in summary["families"].items() if v["slower"] > v["faster"])
    sentence = (
        f"Across {dist['rule'].nunique()} distributional rules and {dist['task'].nunique()} "
        f"tasks (controls excluded), distributional TD was faster than TD in "
        f"{total['faster']} and slower in {total['slower']} of {int(tested_dist)} tested "
        f"(rule, task, eps) cells (FDR q = {suite.fdr_q:g}; beyond the grid band x{band:.2f}: "
        f"{total['faster beyond grid band']} faster, {total['slower beyond grid band']} "
        f"slower); faster more often than slower for: "
        f"{', '.join(faster_fams) or 'no reward family'}; slower more often for: "
        f"{', '.join(slower_fams) or 'no reward family'}; placebo false-positive rate "
        f"{rate:.3f}."
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
