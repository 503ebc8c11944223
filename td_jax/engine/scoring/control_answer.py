"""The control answer, in a few lines, from committed results: ``results/control`` (tabular
control learners, N(eps) against Q-learning) and ``results/deep_control`` (DQN, C51 and
QR-DQN on gymnax tasks). Used by the default suite's verdict and by the README's
generated ``control`` block, so both quote only what those directories hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

TITLE = "## Control: do distributional learners learn to act faster?"


def _load(directory: Path) -> tuple[dict[str, Any], pd.DataFrame] | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        cells = pd.read_csv(directory / "sample_complexity.csv")
    except (OSError, json.JSONDecodeError, pd.errors.ParserError):
        return None
    return manifest, cells


def tabular_lines(directory: Path) -> list[str]:
    """Per distributional rule and metric: its calls over the tasks (one estimand per
    (rule, task, metric), ``engine.scoring.control_report``), and the null controls' rate."""
    loaded = _load(directory)
    if loaded is None:
        return []
    manifest, _ = loaded
    summary = manifest["summary"]
    cfg = manifest["configuration"]
    nulls = summary["null_controls"]
    rate = (f"{nulls['called']} of {nulls['tested']} tested pairs (rate {nulls['rate']:.3f}, "
            f"95% CI [{nulls['low']:.3f}, {nulls['high']:.3f}])" if nulls["tested"]
            else "none tested")  # fmt: skip
    lines = [
        f"Tabular control (`results/{directory.name}/`, {len(cfg['tasks'])} MDP tasks, "
        f"{len(cfg['eval_seeds'])} evaluation seeds, {manifest['wall_seconds']:.0f} s): one "
        f"call per (rule, task, metric), the geometric mean of S = N_Q-learning / N_rule over "
        f"the band [e0 x {cfg['band'][0]:g}, e0 x {cfg['band'][1]:g}], after "
        f"Benjamini-Hochberg; a band one side does not reach is a bound, not a call. Null "
        f"controls called different: {rate}.",
        "",
        "| rule | metric | faster | slower | no detectable difference | bound | not tested |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule, per_metric in summary["rules"].items():
        for metric, c in per_metric.items():
            a = c["all"]
            lines.append(f"| `{rule}` | {metric} | {a['faster']} | {a['slower']} | "
                         f"{a['no_difference']} | {a['bound']} | {a['not_tested']} |")  # fmt: skip
    faster = sorted({
        fam for per_metric in summary["rules"].values() for c in per_metric.values()
        for fam, f in c["families"].items() if f["faster"] > f["slower"]})  # fmt: skip
    lines += ["", "Reward families where some distributional rule is called faster on more "
              f"tasks than slower: {', '.join(faster) if faster else 'none'}.", "",
              tabular_words(summary["rules"])]  # fmt: skip
    return lines


def tabular_words(rules: dict[str, dict[str, Any]]) -> str:
    """The tabular table in one sentence per metric: the called pairs by rule, the rest."""
    parts = []
    metrics = dict.fromkeys(m for per_metric in rules.values() for m in per_metric)
    for metric in metrics:
        counts = {rule: per_metric[metric]["all"] for rule, per_metric in rules.items()
                  if metric in per_metric}  # fmt: skip
        total = {k: sum(c[k] for c in counts.values())
                 for k in ("faster", "slower", "no_difference", "bound", "not_tested")}  # fmt: skip
        tested = total["faster"] + total["slower"] + total["no_difference"]
        called = []
        for k in ("faster", "slower"):
            who = ", ".join(f"`{r}` {c[k]}" for r, c in counts.items() if c[k])
            called.append(f"{k} on {total[k]} ({who})" if total[k] else f"{k} on 0")
        parts.append(
            f"on {metric}, of {tested} tested (rule, task) pairs the distributional rules are "
            f"called {called[0]} and {called[1]}, with no detectable difference on "
            f"{total['no_difference']}; {total['bound']} pair(s) are bounds and "
            f"{total['not_tested']} not tested (the status column of `estimand.csv` says why: "
            "early, neither reached, under-tuned or below the floor)"
        )
    return "In words (generated): " + "; ".join(parts) + "."


def deep_lines(directory: Path) -> list[str]:
    """Per task: C51 and QR-DQN against DQN (P(improvement) of return AUC, intervals), in
    each configuration the suite ran, then its generated answer (``td_jax.deep.analysis
    .answer``: which calls hold in both configurations, and the noise interaction)."""
    try:
        summary = pd.read_csv(directory / "summary.csv")
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError, pd.errors.ParserError):
        return []
    cols = ("agent", "task", "p_improvement_auc", "p_improvement_low", "p_improvement_high",
            "auc_iqm", "auc_low", "auc_high")  # fmt: skip
    missing = [c for c in cols if c not in summary]
    if missing:
        raise ValueError(f"{directory / 'summary.csv'} lacks the columns {missing}")
    if "configuration" not in summary:
        summary = summary.assign(configuration="the suite's")
    configurations = list(dict.fromkeys(summary["configuration"]))
    rows = summary.dropna(subset=["p_improvement_auc"])
    lines = [
        f"Deep control (`results/{directory.name}/`, {manifest['wall_seconds']:.0f} s"
        + (f", resuming {len(manifest.get('stale_units_reused', []))} saved runs of earlier "
           "code" if manifest.get("reuse_stale") else "") + "): "
        "probability that the distributional agent's return AUC beats DQN's on a seed "
        "(rliable), with its 95% interval, per task"
        + (" and configuration: `common` (one optimiser, network, replay and exploration for "
           "every agent; C51's support from the task) and `reference` (each agent's own "
           "settings; - where not run)." if len(configurations) > 1 else "."),
        "",
        "| task | agent | " + " | ".join(
            f"P(AUC beats DQN's), {c}" if len(configurations) > 1
            else "P(AUC beats DQN's) [95% CI]" for c in configurations) + " |",
        "|---|---|" + "---|" * len(configurations),
    ]  # fmt: skip
    cell = {(r.configuration, r.task, r.agent): f"{r.p_improvement_auc:.2f} "
            f"[{r.p_improvement_low:.2f}, {r.p_improvement_high:.2f}]"
            for r in rows.itertuples()}  # fmt: skip
    for task, agent in dict.fromkeys(zip(rows["task"], rows["agent"], strict=True)):
        lines.append(f"| {task} | {agent} | "
                     + " | ".join(cell.get((c, task, agent), "-") for c in configurations)
                     + " |")  # fmt: skip
    if manifest.get("answer"):
        lines += ["", f"In words (generated, `verdict.md`): {manifest['answer']}"]
    return lines


def control_section(root: Path) -> list[str]:
    """The section's markdown lines from ``root/control`` and ``root/deep_control`` ([] if
    neither exists)."""
    root = Path(root)
    tab, deep = tabular_lines(root / "control"), deep_lines(root / "deep_control")
    if not tab and not deep:
        return []
    return [TITLE, "", *tab, *([""] if tab and deep else []), *deep, ""]
