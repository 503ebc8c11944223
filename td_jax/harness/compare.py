"""``td-jax compare``: two result directories' convergence tables, aligned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = (("steps_to_threshold", "steps to threshold"), ("final_error", "final error"))


def _load(directory: Path) -> tuple[pd.DataFrame, dict]:
    directory = Path(directory)
    path = directory / "summary.csv"
    if not path.exists():
        raise ValueError(
            f"{directory} is not a td_jax results directory (no summary.csv); "
            "run `td-jax bench --out DIR` first"
        )
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return pd.read_csv(path), manifest


def _cell(x: float, lo: float, hi: float, steps: bool) -> str:
    return f"{x:,.0f} [{lo:,.0f}, {hi:,.0f}]" if steps else f"{x:.3g} [{lo:.3g}, {hi:.3g}]"


def compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Joins two summaries on (rule, task); marks changes whose 95% intervals do not overlap.

    ``change`` is "slower" / "worse" when B's interval lies entirely above A's (a
    regression), "faster" / "better" when entirely below, "" otherwise.
    """
    joined = a.merge(b, on=["rule", "task"], suffixes=("_a", "_b"), how="outer", indicator=True)
    for metric, _ in METRICS:
        worse = joined[f"{metric}_low_b"] > joined[f"{metric}_high_a"]
        better = joined[f"{metric}_high_b"] < joined[f"{metric}_low_a"]
        up, down = ("slower", "faster") if metric == "steps_to_threshold" else ("worse", "better")
        joined[f"{metric}_change"] = np.select([worse, better], [up, down], "")
    return joined


def compare_dirs(dir_a: Path, dir_b: Path) -> tuple[str, int]:
    """Markdown comparison of two result directories and the number of regressions."""
    a, man_a = _load(dir_a)
    b, man_b = _load(dir_b)
    joined = compare_frames(a, b)
    lines = [f"# td-jax compare: A = {dir_a}, B = {dir_b}", ""]
    if man_a.get("suite") != man_b.get("suite"):
        lines += [
            f"Note: different suites (A: {man_a.get('suite')}, B: {man_b.get('suite')}); "
            "only (rule, task) pairs present in both are compared.",
            "",
        ]
    only = joined[joined["_merge"] != "both"]
    both = joined[joined["_merge"] == "both"].sort_values(["task", "rule"])
    regressions = 0
    for metric, title in METRICS:
        steps = metric == "steps_to_threshold"
        lines += [
            f"## {title} (IQM [95% CI])",
            "",
            "| task | rule | A | B | change |",
            "|---|---|---|---|---|",
        ]
        for _, row in both.iterrows():
            change = row[f"{metric}_change"]
            regressions += change == "slower"
            mark = f"**{change}**" if change in ("slower", "worse") else change
            lines.append(
                f"| {row['task']} | {row['rule']} | "
                f"{_cell(row[f'{metric}_a'], row[f'{metric}_low_a'], row[f'{metric}_high_a'], steps)} | "  # noqa: E501
                f"{_cell(row[f'{metric}_b'], row[f'{metric}_low_b'], row[f'{metric}_high_b'], steps)} | "  # noqa: E501
                f"{mark} |"
            )
        lines.append("")
    if len(only):
        lines += [
            "Only in one run: "
            + ", ".join(
                f"{r.rule} on {r.task} ({'A' if r._merge == 'left_only' else 'B'})"
                for r in only.itertuples()
            ),
            "",
        ]
    lines.append(f"{regressions} rule-task pair(s) slower beyond the intervals.")
    return "\n".join(lines), int(regressions)
