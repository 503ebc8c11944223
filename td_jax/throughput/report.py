"""The throughput report: ``throughput.md`` from a result, and both files written.

The sections: the machine, the workload rows (td_jax against numpy and the per-learner
loop), the linear and MLP learners, the user workload (``user_workload``), the roofline
(``roofline``), the targets (``targets``) and the million-learner runs.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from td_jax.throughput import machine, roofline, user_workload, workload
from td_jax.throughput.targets import ratios


def _cores(x: dict) -> str:
    return f"{x['cores_busy']:.1f}" if "cores_busy" in x else "-"


def _per_core(ours: dict, theirs: dict) -> float | None:
    """Speed-up per busy core: td_jax's ups per core over numpy's."""
    try:
        return (ours["ups"] / ours["cores_busy"]) / (theirs["ups"] / theirs["cores_busy"])
    except (KeyError, ZeroDivisionError):
        return None


def mem(x: dict) -> str:
    """Peak resident MB and its growth during the run, or the run's error."""
    if "peak_rss_mb" not in x:
        return x.get("error", "-")[:40]
    return f"{x['peak_rss_mb']:.0f} (+{x['peak_rss_mb'] - x['rss_before_mb']:.0f})"


def _parametric_table(result: dict[str, Any]) -> list[str]:
    """Rows of linear / MLP learners (td_jax.approx), beside the tabular rule they learn."""
    rows = [r for r in result.get("rows", []) if not workload.has_baselines(r["rule"])]
    if not rows:
        return []
    tabular = {(r["rule"], r["learners"]): r["td_jax"] for r in result.get("rows", [])}
    lines = [
        "",
        "## Linear and MLP learners",
        "",
        "The same workload through td_jax.approx: a flax model of state features trained by"
        " the rule's semi-gradient with an optax optimizer whose learning rate is the swept"
        " step size (features: 4 tilings x 4 tiles for linear, the scaled position for the"
        " 32x32 ReLU MLP). No numpy or loop baseline; 'x tabular' is the rate relative to"
        " the tabular form of the same rule at the same learner count.",
        "",
        "| learner | learners | steps | td_jax ups | x tabular | compile s | td_jax peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours = row["td_jax"]
        base = workload.APPROX_RULES[row["rule"]][0]
        ref = tabular.get((base, row["learners"]), {})
        ratio = ours["ups"] / ref["ups"] if ref.get("ups") and "ups" in ours else None
        lines.append(
            f"| {workload.LABELS.get(row['rule'], row['rule'])} | {row['learners']:,}"
            f" | {row['steps']} | {_fmt(ours.get('ups'))} | {_fmt(ratio, '.2f')}"
            f" | {_fmt(ours.get('compile_seconds'), '.1f')} | {mem(ours)} |"
        )
    return lines


def _fmt(x: float | None, spec: str = ".2g") -> str:
    if x is None:
        return "-"
    return f"{x:{spec}}" if abs(x) < 1e4 else f"{x:.2e}"


def targets_table(judged: list[dict[str, Any]]) -> list[str]:
    """The Targets section: met, **not met**, or not measured (``met`` None)."""
    lines = ["", "## Targets", "", "| target | learners | met | numbers |", "|---|---:|---|---|"]
    for t in judged:
        verdict = "not measured" if t["met"] is None else "met" if t["met"] else "**not met**"
        learners = "-" if t["learners"] is None else f"{t['learners']:,}"
        lines.append(f"| {t['target']} | {learners} | {verdict} | {t['detail']} |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = _header(result)
    lines += _results(result)
    lines += _parametric_table(result)
    lines += user_workload.markdown(result)
    lines += roofline.markdown(result)
    lines += targets_table(result.get("targets", []))
    lines += _million(result.get("million"))
    if "seconds" in result:
        lines += ["", f"Benchmark wall time: {result['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _header(result: dict[str, Any]) -> list[str]:
    """The machine, its load and the workload."""
    m = result.get("machine", {})
    lines = ["# td_jax throughput", ""]
    if m:
        v = m.get("versions", {})
        lines += [
            f"Machine: {m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical"
            f" cores, {m['memory_gb']} GB; backend {m['backend']}, devices {m['devices']}.",
            f"Vector ISA: {machine.isa_text(m)}.",
            "Versions: "
            + ", ".join(f"{k} {val}" for k, val in v.items())
            + f", python {m['python']}."
            + machine.commit_text(m),
        ]
    if "load_average" in result:
        la = result["load_average"]
        lines.append(
            f"Load average (1/5/15 min) before: {', '.join(f'{x:.1f}' for x in la['before'])};"
            f" after: {', '.join(f'{x:.1f}' for x in la['after'])} (other processes share"
            " the CPU when these exceed 0)."
        )
    wl = result.get("workload")
    if wl:
        lines += [
            "",
            f"Workload: online TD on a {wl['env']['num_states']}-state chain with Gaussian"
            " rewards; learners = streams (seeds) x 10 step sizes, one transition per stream and"
            f" step shared by its step sizes; {wl['metrics']}. Rules at td_jax's defaults except"
            f" {', '.join(workload.LABELS.values())}.",
        ]
    return lines


def _results(result: dict[str, Any]) -> list[str]:
    """td_jax against the baselines, per rule and learner count."""
    lines = ["", "## Results", ""]
    lines += [
        "ups = learner-updates per second. numpy: baseline (a), the same workload vectorised"
        " over learners (numpy RNG, same update equations; CTD's projection in numpy's faster"
        " dense form, td_jax's in its O(K) scatter form). loop: baseline (b), a per-learner"
        " Python loop of jitted rlax calls; its rate is per learner, so it does not depend on"
        " the learner count (measured per rule on"
        f" {next(iter(result.get('loop', {}).values()), {}).get('learners', '?')} learners)."
        " cores: CPU time over wall time of the timed run (XLA splits large kernels over"
        " the cores; numpy computes on one, its BLAS may use more); 'x numpy per core'"
        " divides each side's rate by its cores. Runs under 3 s are repeated (up to 3"
        " times) and the fastest kept. compile: td_jax's XLA compile time. Peak MB: peak"
        " resident memory of the process"
        " that ran the measurement (ru_maxrss), with its growth during the run in brackets;"
        " it includes the Python interpreter and, for td_jax, jax, XLA and the compiler."
        " 'numpy ups (on N x T)': numpy ran N learners for T steps where the full size would"
        " take it many minutes; once vectorised its cost per learner-update is flat in the"
        " learner count. Times include each run's final value metric (for the expectile"
        " rules without a 0.5 level, expectile_mean's readout: no imputation).",
        "",
        "| rule | learners | steps | td_jax ups | numpy ups | x numpy | cores td_jax / numpy"
        " | x numpy per core | loop ups | x loop | compile s | td_jax peak MB | numpy peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratio_rows = {(r["rule"], r["learners"]): r for r in ratios(result)}
    for row in result.get("rows", []):
        if not workload.has_baselines(row["rule"]):
            continue
        ours, theirs = row["td_jax"], row["numpy"]
        loop = result.get("loop", {}).get(row["rule"], {})
        rr = ratio_rows[(row["rule"], row["learners"])]

        numpy_ups = _fmt(theirs.get("ups"))
        shape = (theirs.get("learners", row["learners"]), theirs.get("steps", row["steps"]))
        if shape != (row["learners"], row["steps"]):
            numpy_ups += f" (on {shape[0]:,} x {shape[1]})"
        lines.append(
            f"| {workload.LABELS.get(row['rule'], row['rule'])} | {row['learners']:,}"
            f" | {row['steps']} | {_fmt(ours.get('ups'))} | {numpy_ups}"
            f" | {_fmt(rr['numpy'], '.1f')} | {_cores(ours)} / {_cores(theirs)}"
            f" | {_fmt(_per_core(ours, theirs), '.1f')}"
            f" | {_fmt(loop.get('ups'))} | {_fmt(rr['loop'], '.0f')}"
            f" | {_fmt(ours.get('compile_seconds'), '.1f')} | {mem(ours)} | {mem(theirs)} |"
        )
    return lines


def _million(million: dict[str, Any] | None) -> list[str]:
    """The one-million-learner runs, or how to add them."""
    lines = ["", "## One million learners", ""]
    if million:
        lines.append(
            f"{million['learners']:,} learners x {million['steps']:,} steps on the same chain"
            f" ({million['date']}; `td-jax throughput --million`):"
        )
        if "load_average" in million:
            la = million["load_average"]
            lines.append(
                f"Load average before: {', '.join(f'{x:.1f}' for x in la['before'])};"
                f" after: {', '.join(f'{x:.1f}' for x in la['after'])}."
            )
        lines += [
            "",
            "| rule | wall s | run s | compile s | ups | peak RSS GB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for rule, r in million["runs"].items():
            if "error" in r:
                lines.append(f"| {rule} | failed: {r['error'][:80]} | | | | |")
                continue
            label = workload.LABELS.get(rule, rule)
            lines.append(
                f"| {label} | {r['wall_seconds']:.0f} | {r['run_seconds']:.0f}"
                f" | {r['compile_seconds']:.1f} | {_fmt(r['ups'])}"
                f" | {r['peak_rss_mb'] / 1024:.2f} |"
            )
    else:
        lines.append("Not run: `td-jax throughput --million` adds it.")
    return lines


def write(out_dir: pathlib.Path, result: dict[str, Any]) -> None:
    """Writes ``throughput.json`` and ``throughput.md``."""
    (out_dir / "throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "throughput.md").write_text(markdown(result))
