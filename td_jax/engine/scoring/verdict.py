"""The verdict: per (rule, task) one line over the eps grid, controls, overall answers.

Everything here reads ``sample_complexity.csv``'s frame; the README's findings sentence is
``summary["sentence"]``, generated here so that it always comes from the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from td_jax.analysis.sample_complexity import EARLY_UPDATES
from td_jax.engine.scoring import calls
from td_jax.engine.specs import Suite

VERDICT_TITLE = "# Does distributional TD converge faster than TD?"
PRIMARY = "visit"
CALLS = ("faster", "slower")
EARLY = EARLY_UPDATES


def family_of(task: str) -> str:
    """The reward family of a task label ``env/family`` or ``env/family@scale``."""
    return task.split("/", 1)[-1]


def _pair_text(row) -> str:
    """e.g. 'faster: S = 1.31 [1.12, 1.52] over 7 eps (0.0021 to 0.019)'."""
    status = row["status"]
    if status != "tested" and not str(status).startswith("bound"):
        return str(status)
    s = f"S = {row['speedup']:.2f} [{row['s_low']:.2f}, {row['s_high']:.2f}]"
    span = f"over {int(row['band_points'])} eps ({row['eps_low']:.2g} to {row['eps_high']:.2g})"
    if str(status).startswith("bound"):
        sign = "<=" if "rule" in status else ">="
        return f"{status}: S {sign} {row['speedup']:.2f} {span}, not a call"
    return f"{row['verdict']}: {s} {span}"


def _transient_text(row) -> str:
    if not np.isfinite(row.get("transient_eps", np.nan)):
        return ""
    if row["transient_status"] in ("faster", "slower", "no detectable difference"):
        return f"; transient (eps = e0/2): S = {row['transient_speedup']:.2f}"
    return f"; transient (eps = e0/2): {row['transient_status']}"


def _tally(sub: pd.DataFrame) -> dict[str, int]:
    v = sub["verdict"].value_counts()
    out = {k: int(v.get(k, 0)) for k in CALLS + ("no detectable difference",)}
    out["tested"] = int((sub["status"] == "tested").sum())
    out["untested"] = int(len(sub)) - out["tested"]
    out["diverged"] = int((sub["status"] == "diverged").sum())
    return out


def _answer(c: dict[str, int]) -> str:
    f, s = c["faster"], c["slower"]
    if c["tested"] == 0:
        return "diverged" if c["diverged"] else "not tested"
    if f == 0 and s == 0:
        return "no detectable difference"
    return "faster" if s == 0 else ("slower" if f == 0 else "mixed")


def _method(suite: Suite) -> str:
    lo, hi = suite.band
    return (
        f"Suite `{suite.name}`. Error: the squared value error weighted by the stream's visit "
        f"distribution, divided by the return variance under the same weights. e0: that error "
        f"for the all-zero initial estimate. N(eps): updates after which the mean over "
        f"{len(suite.eval_seeds)} evaluation seeds stays <= eps. Each rule is tuned per eps on "
        f"{len(suite.tuning_seeds)} separate tuning seeds (constant and harmonic steps, in the "
        f"rule's units), from a coarse grid refined by compass search (up to "
        f"{suite.max_refinements} rounds) until the neighbours of the choice are within "
        f"{suite.margin:g} of it. **The call**, one per (rule, task): the "
        f"geometric mean of S(eps) = N_baseline / N_rule over the band eps in [e0 x {lo:g}, "
        f"e0 x {hi:g}] that both rules reach on the tuning seeds after at least {EARLY} "
        f"updates, above 3x both bias floors; its 95% interval is a paired bootstrap over "
        f"evaluation seeds that also resamples the tuning seeds and re-selects the "
        f"configuration by the tuning rule ({suite.reps} resamples; among every "
        f"configuration run, those it re-selects most often are evaluated until they cover "
        f"{suite.coverage:.0%} of resamples, at most {suite.candidates}, joined by the "
        f"task's other evaluated configurations; *coverage*: the share covered), "
        f"widened on either side by the search's resolution, its tie tolerance "
        f"x{1 + suite.margin / 2:g}. A (rule, task) with a "
        f"band selection still on a grid edge is *under-tuned*, not tested. A random-MRP task "
        f"pools its Garnet instances (seed s on instance s mod K): one call per family. "
        f"*noise/signal*: the reward noise's std over the RMS true value (the reward-scale "
        f"axis). *faster* / *slower* need Benjamini-Hochberg "
        f"at q = {suite.fdr_q:g} over (rule, task) pairs (answer, nulls and pipeline checks "
        f"apart) to reject |log S| <= log(1 + {suite.margin:g}) and the interval beyond that "
        f"band. A band where one side misses some eps on the evaluation seeds is a *bound*, "
        f"never a call. *transient*: N at e0 / 2, how fast a rule leaves the zero start "
        f"(sign-driven rules move at most alpha per update), reported apart. Per-eps N(eps) and "
        f"S(eps) are in table.md and sample_complexity.csv (description, not calls). Method: "
        f"docs and SCIENCE.md sections 7 and 9."
    )


def _nulls_lines(suite: Suite, pairs: pd.DataFrame, nulls: dict, coverage: str) -> list[str]:
    lines = ["## Calibration: nulls that can fail", ""]
    notes = {r.label: r.note for r in suite.rules}
    for rule, c in nulls["rules"].items():
        lines.append(f"- `{rule}` ({notes.get(rule, '')}): {c['called']} of {c['tested']} "
                     "(rule, task) pairs called faster or slower.")  # fmt: skip
    rate = nulls["rate"]
    lines += [
        "",
        f"**Null false-positive rate: {rate:.3f}** ({nulls['called']} of {nulls['tested']} "
        f"tested pairs; 95% Clopper-Pearson interval [{nulls['low']:.3f}, "
        f"{nulls['high']:.3f}]; nominal {suite.fdr_q:g}).",
        "",
        coverage,
        "",
    ]
    checks = pairs[pairs["role"] == "pipeline check"]
    if len(checks):  # a suite without pipeline checks prints no empty section
        lines += ["Pipeline checks (the baseline by construction; they check selection, "
                  "pairing, bootstrap and BH, not calibration):", ""]  # fmt: skip
    for rule, sub in checks.groupby("rule", sort=False):
        c = _tally(sub)
        why = "; ".join(sorted(set(sub["identity"].fillna("")) - {""}))
        lines.append(f"- `{rule}`{f' ({why})' if why else ''}: {c['faster'] + c['slower']} of "
                     f"{c['tested']} tested pairs called.")  # fmt: skip
    return lines + [""]


def verdict_markdown(
    suite: Suite, cells: pd.DataFrame, pairs: pd.DataFrame, nulls: dict, notes: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The verdict's markdown and its machine-readable summary, from the (rule, task)
    estimand (``calls.pair_frame``); the README's sentence is ``summary["sentence"]``."""
    search = calls.search_ends(suite, cells)
    lines = [VERDICT_TITLE, "", _method(suite), "", search["line"], ""]
    coverage = calls.coverage_summary(suite, pairs)
    lines += _nulls_lines(suite, pairs, nulls, coverage["line"])
    summary: dict[str, Any] = {"rules": {}, "families": {}, "nulls": nulls, "coverage": coverage,
                               "search": search}  # fmt: skip
    rules = [r.label for r in suite.rules if r.label in set(pairs.get("rule", []))]
    lines += ["## Per rule and task (visit weighting)", ""]
    for r in rules:
        lines += [f"### `{r}` vs `{suite.baseline_of(r)}`", ""]
        if r in notes:
            lines += [f"Note: {notes[r]}", ""]
        for _, row in pairs[pairs["rule"] == r].sort_values("task").iterrows():
            why = f" (pipeline check: {row['identity']})" if row["identity"] else ""
            nsr = row.get("noise_to_signal", np.nan)
            nsr = f" (noise/signal {nsr:.2g})" if np.isfinite(nsr) else ""
            lines.append(f"- {row['task']}{nsr}: {_pair_text(row)}{_transient_text(row)}{why}")
        lines.append("")
    answer = pairs[pairs["role"] == "answer"]
    lines += ["## Overall", ""]
    for r in rules:
        sub = answer[answer["rule"] == r]
        if not len(sub):
            lines.append(f"- `{r}`: a control only (see above).")
            continue
        c = _tally(sub)
        dist = bool(sub["distributional"].iloc[0])
        summary["rules"][r] = {**c, "answer": _answer(c), "distributional": dist}
        kind = "" if dist else " (not distributional: outside the answer)"
        lines.append(f"- `{r}`{kind}: {_answer(c)}: faster on {c['faster']}, slower on "
                     f"{c['slower']}, no detectable difference on "
                     f"{c['no detectable difference']} of {c['tested']} tested tasks "
                     f"({c['untested']} untested).")  # fmt: skip
    dist = answer[answer["distributional"].astype(bool)]
    lines += ["", "By reward family (distributional rules, (rule, task) calls):", ""]
    for fam, sub in dist.groupby(dist["task"].map(family_of)):
        c = _tally(sub)
        summary["families"][fam] = {**c, "answer": _answer(c)}
        lines.append(f"- {fam}: {_answer(c)} (faster {c['faster']}, slower {c['slower']}, no "
                     f"detectable difference {c['no detectable difference']} of "
                     f"{c['tested']} tested)")  # fmt: skip
    total = _tally(dist)
    summary["totals"] = total
    summary["sentence"] = _sentence(suite, dist, total, nulls)
    summary["largest"] = _largest(dist)
    lines += ["", f"**Answer.** {summary['sentence']}", ""]
    if summary["largest"]:
        lines += ["Largest speed-ups called (geometric mean over the band):", ""]
        lines += [f"- `{x['rule']}` on {x['task']}: S = {x['speedup']:.2f} "
                  f"[{x['s_low']:.2f}, {x['s_high']:.2f}]" for x in summary["largest"]]  # fmt: skip
        lines.append("")
    if suite.claims:
        lines += claims_section(suite, pairs, summary)
    return "\n".join(lines), summary


def _largest(dist: pd.DataFrame, k: int = 3) -> list[dict]:
    faster = dist[dist["verdict"] == "faster"].sort_values("speedup", ascending=False).head(k)
    return [{c: (float(r[c]) if c in ("speedup", "s_low", "s_high") else r[c])
             for c in ("rule", "task", "speedup", "s_low", "s_high")}
            for _, r in faster.iterrows()]  # fmt: skip


def _sentence(suite: Suite, dist: pd.DataFrame, total: dict, nulls: dict) -> str:
    fams = {f: _answer(_tally(g)) for f, g in dist.groupby(dist["task"].map(family_of))}
    faster = sorted(f for f, a in fams.items() if a == "faster")
    slower = sorted(f for f, a in fams.items() if a == "slower")
    return (
        f"Across {dist['rule'].nunique()} distributional rules and {dist['task'].nunique()} "
        f"tasks, distributional TD was faster than TD on {total['faster']} and slower on "
        f"{total['slower']} of {total['tested']} tested (rule, task) pairs (geometric-mean "
        f"S over the band e0 x {suite.band[1]:g} to e0 x {suite.band[0]:g}, BH q = "
        f"{suite.fdr_q:g}); only faster for: {', '.join(faster) or 'no reward family'}; only "
        f"slower for: {', '.join(slower) or 'no reward family'}; null controls called "
        f"{nulls['called']} of {nulls['tested']} (rate {nulls['rate']:.3f})."
    )


def claims_section(suite: Suite, pairs: pd.DataFrame, summary: dict) -> list[str]:
    """Each published claim: *reproduced* when its (rule, task) pair is called as claimed
    (the estimand, after BH)."""
    lines = ["## Claims", "", "| claim | rule | task | call | S over the band | verdict |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    summary["claims"] = []
    for c in suite.claims:
        sub = pairs[(pairs["rule"] == c.rule) & (pairs["task"] == c.task)]
        call = str(sub["verdict"].iloc[0]) if len(sub) else "not run"
        text = _pair_text(sub.iloc[0]) if len(sub) else "not run"
        ok = call == c.expected
        word = "reproduced" if ok else "NOT reproduced"
        lines.append(f"| {c.text} | `{c.rule}` | {c.task} | {call} | {text} | {word} |")
        summary["claims"].append({"text": c.text, "rule": c.rule, "task": c.task,
                                  "call": call, "reproduced": ok})  # fmt: skip
    lines.append("")
    return lines
