"""``td-jax compare``: two result directories' convergence tables, aligned."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from td_jax.harness.store import BenchError

KEYS = ["rule", "task", "weighting", "epsilon"]


def _load(directory: Path) -> tuple[pd.DataFrame, dict]:
    """A complete results directory's N(eps) table and manifest, or a one-line error.

    Complete means: ``manifest.json`` present (it is written last) and, where it lists the
    report's sha256 digests, ``sample_complexity.csv`` matching its digest (not truncated,
    not from another run)."""
    directory = Path(directory)
    path = directory / "sample_complexity.csv"
    if not directory.is_dir():
        raise BenchError(f"{directory} is not a directory; give a results directory")
    if not path.exists():
        raise BenchError(
            f"{directory} is not a td_jax results directory (no sample_complexity.csv); "
            "run `td-jax bench --out DIR` first"
        )
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise BenchError(
            f"{directory} is incomplete (no manifest.json: the run that wrote it was "
            "interrupted); rerun its bench to finish it"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{manifest_path} is unreadable ({err})") from None
    expected = (manifest.get("file_sha256") or {}).get(path.name)
    if expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise BenchError(
            f"{path} does not match its manifest's digest (truncated or edited); rerun the "
            "bench that wrote it"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BenchError(f"{path} is not a readable CSV ({type(err).__name__})") from None
    missing = sorted(set(KEYS + ["n_updates", "n_low", "n_high"]) - set(frame.columns))
    if missing:
        raise BenchError(f"{path} lacks the columns {missing}")
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


def _one_sided(only: pd.DataFrame) -> str:
    """Per side and rule, how many tasks only that run has (e.g. "A: ctd (29 tasks)")."""
    parts = []
    for side, label in (("left_only", "A"), ("right_only", "B")):
        sub = only[only["_merge"] == side]
        if len(sub):
            counts = sub.groupby("rule", sort=True)["task"].nunique()
            rules = ", ".join(f"{r} ({n} task{'s' if n != 1 else ''})" for r, n in counts.items())
            parts.append(f"{label}: {rules}")
    return "; ".join(parts)


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
        lines += ["Only in one run (not compared): " + _one_sided(only), ""]
    regressions = int((both["change"] == "slower").sum())
    lines.append(f"{regressions} cell(s) slower beyond the intervals.")
    return "\n".join(lines), regressions
