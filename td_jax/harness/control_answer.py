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
    """Per distributional rule and metric: faster / slower / no difference / below floor."""
    loaded = _load(directory)
    if loaded is None:
        return []
    manifest, _ = loaded
    summary = manifest["summary"]
    cfg = manifest["configuration"]
    lines = [
        f"Tabular control (`results/{directory.name}/`, {len(cfg['tasks'])} MDP tasks, "
        f"{len(cfg['eval_seeds'])} evaluation seeds, {manifest['wall_seconds']:.0f} s): cells "
        f"(task x eps) where the rule's N(eps) is significantly smaller (faster) or larger "
        f"(slower) than Q-learning's, after Benjamini-Hochberg. Placebo false positives: "
        f"{summary['placebo_false_positives']} of {summary['placebo_tested']} tested cells.",
        "",
        "| rule | metric | faster | slower | no detectable difference | below floor | cells |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule, per_metric in summary["rules"].items():
        for metric, c in per_metric.items():
            a = c["all"]
            total = sum(a.values())
            lines.append(f"| `{rule}` | {metric} | {a['faster']} | {a['slower']} | "
                         f"{a['no_difference']} | {a['cannot_reach']} | {total} |")  # fmt: skip
    faster = sorted({
        fam for per_metric in summary["rules"].values() for c in per_metric.values()
        for fam, f in c["families"].items() if f["faster"] > f["slower"]})  # fmt: skip
    lines += ["", "Reward families where some distributional rule is faster more often than "
              f"slower: {', '.join(faster) if faster else 'none'}."]  # fmt: skip
    return lines


def deep_lines(directory: Path) -> list[str]:
    """Per task: C51 and QR-DQN against DQN (IQM return AUC, P(improvement), intervals)."""
    try:
        summary = pd.read_csv(directory / "summary.csv")
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError, pd.errors.ParserError):
        return []
    lines = [
        f"Deep control (`results/{directory.name}/`, {manifest['wall_seconds']:.0f} s): "
        "probability that the distributional agent's return AUC beats DQN's on a seed "
        "(rliable), with its 95% interval, per task.",
        "",
    ]
    cols = ("agent", "task", "p_improvement_auc", "p_improvement_low", "p_improvement_high",
            "auc_iqm", "auc_low", "auc_high")  # fmt: skip
    missing = [c for c in cols if c not in summary]
    if missing:
        raise ValueError(f"{directory / 'summary.csv'} lacks the columns {missing}")
    rows = summary.dropna(subset=["p_improvement_auc"])
    lines += ["| task | agent | P(AUC beats DQN's) [95% CI] | IQM AUC [95% CI] |",
              "|---|---|---|---|"]  # fmt: skip
    for r in rows.itertuples():
        lines.append(f"| {r.task} | {r.agent} | {r.p_improvement_auc:.2f} "
                     f"[{r.p_improvement_low:.2f}, {r.p_improvement_high:.2f}] | "
                     f"{r.auc_iqm:.1f} [{r.auc_low:.1f}, {r.auc_high:.1f}] |")  # fmt: skip
    return lines


def control_section(root: Path) -> list[str]:
    """The section's markdown lines from ``root/control`` and ``root/deep_control`` ([] if
    neither exists)."""
    root = Path(root)
    tab, deep = tabular_lines(root / "control"), deep_lines(root / "deep_control")
    if not tab and not deep:
        return []
    return [TITLE, "", *tab, *([""] if tab and deep else []), *deep, ""]
