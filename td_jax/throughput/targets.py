"""The throughput report's targets (issues 1 and 12), each judged met or not from a result.

Workload rows, per learner count: every rule and the median rule against numpy, every rule
against the per-learner loop, compile time; EDRL against its committed rate; the million-
learner runs; the user-workload targets (``user_workload.targets``); and issue 12's GPU
targets, read from the accelerator report beside this one (``met`` None: not measured).
"""

from __future__ import annotations

import statistics
from typing import Any

from td_jax.throughput import user_workload, workload

TARGET_NUMPY_EVERY, TARGET_NUMPY_MEDIAN, TARGET_LOOP, TARGET_COMPILE_S = 2.0, 5.0, 300.0, 10.0
# EDRL's rate in results/throughput.md as committed before issue 12 (commit a8a6189,
# ``rows[*].td_jax.ups`` of results/throughput.json), per learner count; the target is 10x.
EDRL_COMMITTED_UPS = {1_000: 25_195.1, 10_000: 39_171.6, 100_000: 33_669.7}
TARGET_EDRL = 10.0


def _ratio(a: dict, b: dict) -> float | None:
    if "ups" not in a or "ups" not in b or not b["ups"]:
        return None
    return a["ups"] / b["ups"]


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per row: rule, learners, td_jax / numpy and td_jax / loop speed-ups (None if missing)."""
    out = []
    for row in result.get("rows", []):
        if not workload.has_baselines(row["rule"]):
            continue  # parametric learners: no baselines, not part of the CPU targets
        loop = result.get("loop", {}).get(row["rule"], {})
        out.append(
            {
                "rule": row["rule"],
                "learners": row["learners"],
                "numpy": _ratio(row["td_jax"], row["numpy"]),
                "loop": _ratio(row["td_jax"], loop),
                "compile": row["td_jax"].get("compile_seconds"),
            }
        )
    return out


def _edrl(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in result.get("rows", []):
        committed = EDRL_COMMITTED_UPS.get(row["learners"])
        if row["rule"] != "edrl" or committed is None:
            continue
        ups = row["td_jax"].get("ups")
        out.append(
            {
                "target": f"edrl >= {TARGET_EDRL:g}x its committed rate",
                "learners": row["learners"],
                "met": ups is not None and ups >= TARGET_EDRL * committed,
                "detail": f"{ups / committed:.1f}x ({ups:.3g} against {committed:.3g})"
                if ups is not None
                else row["td_jax"].get("error", "failed")[:80],
            }
        )
    return out


def _accelerator(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's GPU targets, each as judged by the newest accelerator report beside this
    one that measured its rule (``result["accelerator"]``, from ``accelerator.summary``);
    ``met`` is None (not measured) where none did."""
    from td_jax.throughput.accelerator import H200_BASIS, TARGETS

    reports = result.get("accelerator") or []
    out = []
    for rule, threshold, basis in TARGETS:
        if basis != H200_BASIS:
            continue
        row = {
            "target": f"GPU: {rule} >= {threshold:.1e} learner-updates/s ({basis})",
            "learners": None,
        }
        judged = [
            (report, t)
            for report in reports
            for t in report["targets"]
            if (t["rule"], t["threshold"]) == (rule, threshold) and t["measured"]
        ]
        if judged:
            report, t = judged[0]
            where = f"{report['file']}, {report['device_kind']}, {report['date']}"
            out.append({**row, "met": t["met"], "detail": f"{t['detail']} ({where})"})
            continue
        # The newest report here, if any, was made before this target (or measured nothing
        # for its rule): name it, so a reader sees what the GPU numbers on file are.
        why = (
            f"{reports[0]['file']} ({reports[0]['device_kind']}, {reports[0]['date']})"
            " predates this target"
            if reports
            else "no accelerator report beside this one"
        )
        detail = f"{why}; `td-jax throughput --accelerator` on a GPU measures it"
        out.append({**row, "met": None, "detail": detail})
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each issue target, per learner count: met or not, with the numbers behind it."""
    table = ratios(result)
    out = []
    for learners in sorted({r["learners"] for r in table}):
        rows = [r for r in table if r["learners"] == learners]
        if any(r["numpy"] is None for r in rows):
            out.append(
                {"target": "all", "learners": learners, "met": False, "detail": "a run failed"}
            )
            continue
        worst = min(rows, key=lambda r: r["numpy"])
        median = statistics.median(r["numpy"] for r in rows)
        loop = [r for r in rows if r["loop"] is not None]
        compile_max = max(rows, key=lambda r: r["compile"] or 0.0)
        below = ", ".join(f"{r['rule']} {r['loop']:.0f}x" for r in loop if r["loop"] < TARGET_LOOP)
        out += [
            {
                "target": f"every rule >= {TARGET_NUMPY_EVERY:g}x numpy",
                "learners": learners,
                "met": worst["numpy"] >= TARGET_NUMPY_EVERY,
                "detail": f"lowest: {worst['rule']} {worst['numpy']:.1f}x",
            },
            {
                "target": f"median rule >= {TARGET_NUMPY_MEDIAN:g}x numpy",
                "learners": learners,
                "met": median >= TARGET_NUMPY_MEDIAN,
                "detail": f"median {median:.1f}x",
            },
            {
                "target": f"every rule >= {TARGET_LOOP:g}x the per-learner loop",
                "learners": learners,
                "met": bool(loop) and not below,
                "detail": f"median {statistics.median(r['loop'] for r in loop):.0f}x"
                + (f"; below: {below}" if below else "")
                if loop
                else "no loop measurement",
            },
            {
                "target": f"compile <= {TARGET_COMPILE_S:g} s per rule structure",
                "learners": learners,
                "met": (compile_max["compile"] or 0.0) <= TARGET_COMPILE_S,
                "detail": f"longest: {compile_max['rule']} {compile_max['compile']:.1f} s",
            },
        ]
    million = result.get("million")
    if million:
        runs = million["runs"]
        ok = all("error" not in r for r in runs.values())
        detail = "; ".join(
            f"{rule}: {r['wall_seconds']:.0f} s wall, peak RSS {r['peak_rss_mb'] / 1024:.1f} GB"
            if "error" not in r
            else f"{rule}: {r['error']}"
            for rule, r in runs.items()
        )
        out.append(
            {
                "target": f"{million['learners']:,} learners x {million['steps']:,} steps complete",
                "learners": million["learners"],
                "met": ok,
                "detail": f"run of {million.get('date', 'unknown date')}: {detail}",
            }
        )
    return out + _edrl(result) + user_workload.targets(result) + _accelerator(result)
