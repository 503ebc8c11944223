"""``td-jax compare``: two result directories' convergence tables, aligned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["rule", "task", "weighting", "epsilon"]


def _load(directory: Path) -> tuple[pd.DataFrame, dict]:
    directory = Path(directory)
    path = directory / "sample_complexity.csv"
    if not path.exists():
        raise ValueError(
            f"{directory} is not a td_jax results directory (no sample_complexity.csv); "
            "run `td-jax bench --out DIR` first"
        )
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    frame = pd.read_csv(path)
    missing = sorted(set(KEYS + ["n_updates", "n_low", "n_high"]) - set(frame.columns))
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}")
    frame["epsilon"] = frame["epsilon"].round(8)
    return frame, manifest


def _cell(n: float, lo: float, hi: float) -> str:
    if not np.isfinite(n):
        return "not reached"
    hi_s = "not reached" if not np.isfinite(hi) else f"{hi:,.0f}"
    return f"{n:,.0f} [{lo:,.0f}, {hi_s}]"


def compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Joins two sample-complexity tables on (rule, task, weighting, eps); marks changes
    whose 95% intervals of N(eps) do not overlap.

    ``change`` is "slower" when B's interval lies entirely above A's (a regression, or A
    reached eps and B did not), "faster" when entirely below, "" otherwise.
    """
    joined = a.merge(b, on=KEYS, suffixes=("_a", "_b"), how="outer", indicator=True)
    inf = np.inf
    lo_b = joined["n_low_b"].fillna(inf)
    hi_a = joined["n_high_a"].fillna(inf)
    lo_a = joined["n_low_a"].fillna(inf)
    hi_b = joined["n_high_b"].fillna(inf)
    reached_a = np.isfinite(joined["n_updates_a"])
    reached_b = np.isfinite(joined["n_updates_b"])
    slower = (reached_a & ~reached_b) | (reached_a & reached_b & (lo_b > hi_a))
    faster = (~reached_a & reached_b) | (reached_a & reached_b & (hi_b < lo_a))
    both = joined["_merge"] == "both"
    joined["change"] = np.select([both & slower, both & faster], ["slower", "faster"], "")
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
            "only cells present in both are compared.",
            "",
        ]
    only = joined[joined["_merge"] != "both"]
    both = joined[joined["_merge"] == "both"].sort_values(KEYS)
    lines += [
        "## N(eps), updates to stay below eps (95% CI)",
        "",
        "| task | rule | weighting | eps | A | B | change |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in both.itertuples():
        mark = f"**{row.change}**" if row.change == "slower" else row.change
        lines.append(
            f"| {row.task} | {row.rule} | {row.weighting} | {row.epsilon:g} | "
            f"{_cell(row.n_updates_a, row.n_low_a, row.n_high_a)} | "
            f"{_cell(row.n_updates_b, row.n_low_b, row.n_high_b)} | {mark} |"
        )
    lines.append("")
    if len(only):
        side = np.where(only["_merge"] == "left_only", "A", "B")
        pairs = sorted(set(zip(only["rule"], only["task"], side, strict=True)))
        lines += ["Only in one run: " + ", ".join(f"{r} on {t} ({w})" for r, t, w in pairs), ""]
    regressions = int((both["change"] == "slower").sum())
    lines.append(f"{regressions} cell(s) slower beyond the intervals.")
    return "\n".join(lines), regressions
