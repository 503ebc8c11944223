"""``td-jax throughput --accelerator``: td_jax's learner-updates per second on a GPU or TPU.

The accelerator targets of the throughput benchmark (``TARGETS``): td >= 1e9 and qtd (m = 32)
>= 2e8 learner-updates per second on one H100-class GPU (issue 4), and issue 12's targets on
one H200, td >= 1e11 and qtd (m = 32) >= 1.5e10. Issue 12 states these as half the H200's HBM
roofline; that holds for td (16 bytes per update at 4.8 TB/s: 3e11, half of it 1.5e11), not
for qtd, whose update reads and writes a 128-byte row and reads another (about 384 bytes: a
full DRAM roofline of 1.25e10), so 1.5e10 needs the tables kept on chip across steps, as the
issue's suggested Pallas kernel would. The last H200 run (2026-11-28) measured 2.0e10 and
3.5e9: a fifth and a quarter of these. The workload is the
CPU benchmark's (``td_jax.throughput.workload``: a 10-state Gaussian chain, online, 10 step
sizes sharing each stream's transitions, the value error at the final step only), run at
learner counts where an accelerator is busy. There are no numpy or per-learner-loop baselines
here: at millions of learners they would take hours on the host.

Each (rule, learners) is timed in two runs of the same program shape: a short calibration
run (which also compiles), then a run whose step count aims at ``TARGET_SECONDS``; the
second one's ``run_seconds`` (``td_jax.run``'s time inside the compiled program, compile
excluded) gives the rate. Writes ``throughput_<platform>.json`` and ``.md`` with the device,
its memory peak and the library versions.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from td_jax.throughput import machine, workload
from td_jax.throughput.worker import time_td_jax

RULES = ("td", "qtd", "td_lambda", "ctd", "dopamine_quantile")
SIZES = (1 << 20, 1 << 22, 1 << 24)
H200_BASIS = "issue 12, one H200"
# (rule, learner-updates per second, basis): the best rate over learner counts must reach it.
TARGETS = (
    ("td", 1e9, "one H100-class GPU"),
    ("qtd", 2e8, "one H100-class GPU"),
    ("td", 1e11, H200_BASIS),
    ("qtd", 1.5e10, H200_BASIS),
)
CALIBRATION_STEPS, TARGET_SECONDS, MAX_STEPS = 50, 3.0, 20_000
# Largest learner count per rule: state bytes x learners must fit comfortably.
MAX_LEARNERS = {"qtd": 1 << 22, "ctd": 1 << 22}


def _device_memory() -> dict[str, float]:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return {
        k: stats[k] / 2**30
        for k in ("peak_bytes_in_use", "bytes_limit")
        if isinstance(stats.get(k), int | float)
    }


def measure(rule: str, learners: int) -> dict[str, Any]:
    """Calibrates the step count on a short run, then times a run of about 3 seconds."""
    first = time_td_jax(rule, learners, CALIBRATION_STEPS)
    per_step = first["run_seconds"] / CALIBRATION_STEPS
    steps = int(np.clip(TARGET_SECONDS / max(per_step, 1e-9), CALIBRATION_STEPS, MAX_STEPS))
    out = time_td_jax(rule, learners, steps)
    out["calibration"] = first
    out["device_memory_gb"] = _device_memory()
    return out


def run_accelerator(
    out_dir: pathlib.Path,
    rules: Sequence[str] = RULES,
    sizes: Sequence[int] = SIZES,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Times td_jax alone on the default device; writes ``throughput_<platform>.{json,md}``.

    A row that fails (out of memory, say) records its error and the run goes on; the
    files are rewritten after every row, so a run cut short keeps what it measured.
    """
    import jax

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    device = jax.devices()[0]
    result: dict[str, Any] = {
        "schema": 1,
        "machine": machine.describe(),
        "device_kind": getattr(device, "device_kind", str(device)),
        "workload": {
            "env": {"name": "chain", **workload.ENV},
            "step_sizes": workload.STEP_SIZES.tolist(),
            "rules": {r: workload.RULES.get(r, {}) for r in rules},
            "metrics": "value RMSE at the final step only, no W1",
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": [],
    }
    started = time.time()
    for rule in rules:
        for learners in sizes:
            if learners > MAX_LEARNERS.get(rule, learners):
                continue
            if progress:
                print(f"[accelerator] {rule}: {learners:,} learners", file=sys.stderr, flush=True)
            try:
                row = measure(rule, learners)
            except Exception as err:  # noqa: BLE001 - recorded in the report, run goes on
                row = {"learners": learners, "error": f"{type(err).__name__}: {err}"[:600]}
            result["rows"].append({"rule": rule, **row})
            result["seconds"] = time.time() - started
            write(out_dir, result)
    return result


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The accelerator targets: best rate over learner counts, per targeted rule."""
    out = []
    for rule, target, basis in TARGETS:
        rates = [r for r in result["rows"] if r["rule"] == rule and "ups" in r]
        best = max(rates, key=lambda r: r["ups"], default=None)
        out.append(
            {
                "target": f"{rule} >= {target:.1e} learner-updates/s ({basis})",
                # Structured, so that the CPU report matches targets without parsing text.
                "rule": rule,
                "threshold": target,
                "measured": best is not None,
                "met": best is not None and best["ups"] >= target,
                "detail": "no measurement"
                if best is None
                else f"{best['ups']:.3g} at {best['learners']:,} learners",
            }
        )
    return out


def _valid_targets(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """A report's judged targets in the structured form ``targets`` writes (rule, threshold,
    measured, met, detail); older or hand-edited entries are left out, so they neither break
    the CPU report that reads them nor count as a judgement."""
    entries = saved.get("targets")
    return [
        t
        for t in (entries if isinstance(entries, list) else [])
        if isinstance(t, dict)
        and isinstance(t.get("rule"), str)
        and isinstance(t.get("threshold"), int | float)
        and isinstance(t.get("measured"), bool)
        and isinstance(t.get("met"), bool)
        and isinstance(t.get("detail"), str)
    ]


def summary(out_dir: pathlib.Path) -> list[dict[str, Any]]:
    """The accelerator reports in ``out_dir`` (``throughput_<platform>.json``; the CPU report
    is ``throughput.json``), newest first: file, device, date and judged targets.

    Unreadable files and reports without a date and device are skipped: nothing was measured
    there that the CPU report could quote.
    """
    found = []
    for path in sorted(pathlib.Path(out_dir).glob("throughput_*.json")):
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(saved, dict):
            continue
        date, device = saved.get("date"), saved.get("device_kind")
        if isinstance(date, str) and isinstance(device, str):
            found.append(
                {
                    "file": path.with_suffix(".md").name,
                    "device_kind": device,
                    "date": date,
                    "targets": _valid_targets(saved),
                }
            )
    return sorted(found, key=lambda r: r["date"], reverse=True)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"# td_jax throughput on {result['device_kind']}",
        "",
        f"Device: {result['device_kind']} ({m['backend']}); host: {m['cpu']}"
        f" (vector ISA: {machine.isa_text(m)}), {m['logical_cores']} logical cores."
        f" Versions: {versions}, python {m['python']}.{machine.commit_text(m)}"
        f" Measured {result['date']} by `td-jax throughput --accelerator`, in"
        f" {result.get('seconds', 0.0):.0f} s.",
        "",
        "Workload: the CPU benchmark's (results/throughput.md): online TD on a 10-state chain"
        " with Gaussian rewards, learners = streams x 10 step sizes, value RMSE at the final"
        " step only. ups = learner-updates per second over the timed run (compile excluded;"
        " a calibration run first fixes its step count at about 3 s).",
        "",
        "| rule | learners | steps | ups | run s | compile s | value RMSE | device peak GB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        label = workload.LABELS.get(r["rule"], r["rule"])
        if "error" in r:
            lines.append(f"| {label} | {r['learners']:,} | - | {r['error']} | | | | |")
            continue
        peak = r.get("device_memory_gb", {}).get("peak_bytes_in_use")
        lines.append(
            f"| {label} | {r['learners']:,} | {r['steps']} | {r['ups']:.3g}"
            f" | {r['run_seconds']:.2f} | {r['compile_seconds']:.1f} | {r['value_error']:.3f}"
            f" | {'-' if peak is None else f'{peak:.2f}'} |"
        )
    lines += ["", "## Targets", "", "| target | met | best |", "|---|---|---|"]
    for t in targets(result):
        lines.append(f"| {t['target']} | {'met' if t['met'] else '**not met**'} | {t['detail']} |")
    return "\n".join(lines) + "\n"


def write(out_dir: pathlib.Path, result: dict[str, Any]) -> None:
    """Writes ``throughput_<platform>.json`` and ``.md`` atomically."""
    result["targets"] = targets(result)
    stem = f"throughput_{result['machine']['backend']}"
    for suffix, text in ((".json", json.dumps(result, indent=1) + "\n"), (".md", markdown(result))):
        tmp = out_dir / f".{stem}{suffix}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / f"{stem}{suffix}")
