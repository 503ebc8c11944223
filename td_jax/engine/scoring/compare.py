"""``td-jax compare``: two result directories' convergence tables, aligned.

Only runs of one suite are compared: the same suite name, and each task label shared by the
two runs defined the same way in both manifests (``configuration.tasks``). Otherwise cells
that share a label measure different things, and their "regressions" are noise; the user
may still ask (``allow_different_suites``), and the output then says so. Rules whose
definitions differ under one label (``qtd`` with 32 quantiles against 8), differing seed
sets and other protocol settings are flagged above the table. Prediction results are
compared per (rule, task, weighting, eps), control results per (rule, task, metric, eps);
where both runs wrote ``estimand.csv``, its one speedup per (rule, task) is compared too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from td_jax.engine.errors import BenchError

AXES = ("weighting", "metric")  # the prediction suites' cell axis, the control suites'
KIND = {"weighting": "prediction", "metric": "control"}
CELL_COLUMNS = ["n_updates", "n_low", "n_high"]
# A rule's configuration fields that change its numbers on a cell both runs have ("note",
# "envs" and "tasks" only say where, or why, it runs).
RULE_FIELDS_IGNORED = ("label", "note", "envs", "tasks")
# Protocol settings compared on their own lines (seeds) or not at all (names and texts).
CONFIG_IGNORED = ("name", "description", "rules", "tasks", "tuning_seeds", "eval_seeds",
                  "claims")  # fmt: skip


def _read_csv(directory: Path, name: str, manifest: dict) -> pd.DataFrame:
    """``directory/name`` checked against the manifest's digest, or a one-line error."""
    path = directory / name
    expected = (manifest.get("file_sha256") or {}).get(name)
    if expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise BenchError(
            f"{path} does not match its manifest's digest (truncated or edited); rerun the "
            "bench that wrote it"
        )
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BenchError(f"{path} is not a readable CSV ({type(err).__name__})") from None


def _load(directory: Path) -> tuple[pd.DataFrame, dict, str, pd.DataFrame | None]:
    """A complete results directory's N(eps) table, manifest, cell axis ("weighting" or
    "metric") and estimand table (None where it has none), or a one-line error.

    Complete means: ``manifest.json`` present (it is written last) and, where it lists the
    report's sha256 digests, each CSV read matching its digest (not truncated, not from
    another run)."""
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
    if not isinstance(manifest, dict):
        raise BenchError(f"{manifest_path} is not a td_jax manifest (not a JSON object)")
    frame = _read_csv(directory, path.name, manifest)
    axes = [axis for axis in AXES if axis in frame.columns]
    if len(axes) != 1:
        raise BenchError(
            f"{path} has {'both' if axes else 'neither'} of the columns 'weighting' "
            "(prediction results) and 'metric' (control results)"
        )
    axis = axes[0]
    missing = sorted({"rule", "task", "epsilon", *CELL_COLUMNS} - set(frame.columns))
    if missing:
        raise BenchError(f"{path} lacks the columns {missing}")
    frame["epsilon"] = frame["epsilon"].round(8)
    estimand = None
    if (directory / "estimand.csv").exists():
        estimand = _read_csv(directory, "estimand.csv", manifest)
        if {"rule", "task", "speedup", "s_low", "s_high"} - set(estimand.columns):
            estimand = None  # an older layout: compared per cell only
    return frame, manifest, axis, estimand


def _cell(n: float, lo: float, hi: float, diverged: float = 0) -> str:
    if not np.isfinite(n):
        return "diverged" if diverged > 0 else "not reached"
    hi_s = "not reached" if not np.isfinite(hi) else f"{hi:,.0f}"
    return f"{n:,.0f} [{lo:,.0f}, {hi_s}]"


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, axis: str = "weighting") -> pd.DataFrame:
    """Joins two sample-complexity tables on (rule, task, ``axis``, eps); marks changes
    whose 95% intervals of N(eps) do not overlap.

    ``axis`` is "weighting" for prediction results and "metric" for control results.
    ``change`` is "slower" when B's interval lies entirely above A's (a regression, or A
    reached eps and B did not), "faster" when entirely below, "" otherwise.
    """
    keys = ["rule", "task", axis, "epsilon"]
    joined = a.merge(b, on=keys, suffixes=("_a", "_b"), how="outer", indicator=True)
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


def _show(value: Any) -> str:
    """A configuration value, short: long lists as their ends and length."""
    if isinstance(value, list) and len(value) > 6:
        return f"[{_show(value[0])}, ..., {_show(value[-1])}] ({len(value)} values)"
    return json.dumps(value, sort_keys=True)


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys ({"hparams": {"m": 8}} -> {"hparams.m": 8})."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):  # an empty mapping adds no key: {} reads as absent
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _differences(a: dict, b: dict, ignored: tuple[str, ...] = ()) -> list[str]:
    """``key A-value vs B-value`` for each (flattened) key whose values differ."""
    fa = _flat({k: v for k, v in a.items() if k not in ignored})
    fb = _flat({k: v for k, v in b.items() if k not in ignored})
    absent = "(absent)"
    return [
        f"{key} {_show(fa[key]) if key in fa else absent} vs "
        f"{_show(fb[key]) if key in fb else absent}"
        for key in sorted(set(fa) | set(fb))
        if fa.get(key, absent) != fb.get(key, absent)
    ]


def _by_label(config: dict, field: str) -> dict[str, dict]:
    items = config.get(field) or []
    return {item["label"]: item for item in items if isinstance(item, dict) and "label" in item}


def _refusal(man_a: dict, man_b: dict) -> str | None:
    """Why the two runs' cells do not measure the same things, or None."""
    reasons = []
    suite_a, suite_b = man_a.get("suite"), man_b.get("suite")
    if suite_a != suite_b:
        reasons.append(f"different suites (A: {suite_a}, B: {suite_b})")
    tasks_a = _by_label(man_a.get("configuration") or {}, "tasks")
    tasks_b = _by_label(man_b.get("configuration") or {}, "tasks")
    redefined = sorted(t for t in set(tasks_a) & set(tasks_b) if tasks_a[t] != tasks_b[t])
    if redefined:
        shown = ", ".join(redefined[:3])
        if len(redefined) > 3:
            shown += f" and {len(redefined) - 3} more"
        first = "; ".join(_differences(tasks_a[redefined[0]], tasks_b[redefined[0]]))
        reasons.append(
            f"{len(redefined)} task(s) defined differently under one label ({shown}; "
            f"{redefined[0]}: {first})"
        )
    return "; ".join(reasons) or None


def _seed_sets(manifest: dict) -> dict[str, Any]:
    seeds = manifest.get("seeds")
    if isinstance(seeds, dict) and seeds:
        return {k: seeds.get(k) for k in ("tuning", "evaluation")}
    config = manifest.get("configuration") or {}
    return {"tuning": config.get("tuning_seeds"), "evaluation": config.get("eval_seeds")}


def _flags(man_a: dict, man_b: dict) -> list[str]:
    """Warnings about what differs between the runs beyond the cells: rules' definitions,
    seed sets and other protocol settings (one bullet each)."""
    config_a, config_b = man_a.get("configuration") or {}, man_b.get("configuration") or {}
    rules_a, rules_b = _by_label(config_a, "rules"), _by_label(config_b, "rules")
    out = []
    for label in sorted(set(rules_a) & set(rules_b)):
        diff = _differences(rules_a[label], rules_b[label], RULE_FIELDS_IGNORED)
        if diff:
            out.append(f"- rule {label} is defined differently: " + "; ".join(diff))
    seeds_a, seeds_b = _seed_sets(man_a), _seed_sets(man_b)
    for kind in ("tuning", "evaluation"):
        if seeds_a[kind] != seeds_b[kind]:
            out.append(f"- {kind} seeds differ: A {_show(seeds_a[kind])}, B {_show(seeds_b[kind])}")
    other = _differences(config_a, config_b, CONFIG_IGNORED)
    if other:
        out.append("- other settings differ: " + "; ".join(other))
    return out


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


def _interval(s: float, lo: float, hi: float, status: Any) -> str:
    if not np.isfinite(s):
        return str(status) if isinstance(status, str) else "no estimate"
    return f"{s:.3g} [{lo:.3g}, {hi:.3g}]"


def _estimand_lines(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The per-(rule, task) speedups of both runs, changes beyond the intervals marked."""
    joined = a.merge(b, on=["rule", "task"], suffixes=("_a", "_b"))
    if joined.empty:
        return []
    joined = joined.sort_values(["task", "rule"])
    status_a = joined.get("status_a", pd.Series(index=joined.index, dtype=object))
    status_b = joined.get("status_b", pd.Series(index=joined.index, dtype=object))
    lines = [
        "## Estimand: speedup over the baseline per (rule, task) (95% CI; > 1: the rule is faster)",
        "",
        "| task | rule | A | B | change |",
        "|---|---|---|---|---|",
    ]
    changed = 0
    for i, row in enumerate(joined.itertuples()):
        change = ""
        if np.isfinite(row.speedup_a) and np.isfinite(row.speedup_b):
            if row.s_high_b < row.s_low_a:
                change = "lower"
            elif row.s_low_b > row.s_high_a:
                change = "higher"
        changed += bool(change)
        lines.append(
            f"| {row.task} | {row.rule} | "
            f"{_interval(row.speedup_a, row.s_low_a, row.s_high_a, status_a.iloc[i])} | "
            f"{_interval(row.speedup_b, row.s_low_b, row.s_high_b, status_b.iloc[i])} | "
            f"{change} |"
        )
    lines += ["", f"{changed} (rule, task) estimand(s) changed beyond the intervals.", ""]
    return lines


def compare_dirs(dir_a: Path, dir_b: Path, allow_different_suites: bool = False) -> tuple[str, int]:
    """Markdown comparison of two result directories and the number of regressions.

    BenchError (one line) when the two are runs of different suites or define a shared task
    label differently (unless ``allow_different_suites``), hold different kinds of results
    (prediction and control), or have no cell in common."""
    a, man_a, axis_a, est_a = _load(dir_a)
    b, man_b, axis_b, est_b = _load(dir_b)
    if axis_a != axis_b:
        raise BenchError(
            f"{dir_a} holds {KIND[axis_a]} results (per {axis_a}) and {dir_b} "
            f"{KIND[axis_b]} results (per {axis_b}): they have no cell in common"
        )
    refusal = _refusal(man_a, man_b)
    if refusal and not allow_different_suites:
        raise BenchError(
            f"{dir_a} and {dir_b} are not runs of one suite: {refusal}; their cells are "
            "not comparable (pass --allow-different-suites to compare them anyway)"
        )
    keys = ["rule", "task", axis_a, "epsilon"]
    joined = compare_frames(a, b, axis_a)
    only = joined[joined["_merge"] != "both"]
    both = joined[joined["_merge"] == "both"].sort_values(keys)
    if both.empty:
        raise BenchError(
            f"{dir_a} and {dir_b} have no cell in common (rule, task, {axis_a}, eps): "
            f"nothing to compare (A: {a['rule'].nunique()} rule(s) x {a['task'].nunique()} "
            f"task(s), B: {b['rule'].nunique()} x {b['task'].nunique()})"
        )
    lines = [f"# td-jax compare: A = {dir_a}, B = {dir_b}", ""]
    if refusal:
        lines += [
            f"**--allow-different-suites**: {refusal}. Cells that share a label are "
            "compared anyway, though they may measure different things.",
            "",
        ]
    flags = _flags(man_a, man_b)
    if flags:
        lines += ["**The runs differ beyond their results** (their cells may not be "
                  "comparable):", "", *flags, ""]  # fmt: skip
    lines += [
        "## N(eps), updates to stay below eps (95% CI)",
        "",
        f"| task | rule | {axis_a} | eps | A | B | change |",
        "|---|---|---|---|---|---|---|",
    ]
    div_a = both.get("diverged_a", pd.Series(0, index=both.index)).fillna(0)
    div_b = both.get("diverged_b", pd.Series(0, index=both.index)).fillna(0)
    for i, row in enumerate(both.itertuples()):
        mark = f"**{row.change}**" if row.change == "slower" else row.change
        lines.append(
            f"| {row.task} | {row.rule} | {getattr(row, axis_a)} | {row.epsilon:g} | "
            f"{_cell(row.n_updates_a, row.n_low_a, row.n_high_a, div_a.iloc[i])} | "
            f"{_cell(row.n_updates_b, row.n_low_b, row.n_high_b, div_b.iloc[i])} | {mark} |"
        )
    lines.append("")
    if len(only):
        lines += ["Only in one run (not compared): " + _one_sided(only), ""]
    if est_a is not None and est_b is not None:
        lines += _estimand_lines(est_a, est_b)
    regressions = int((both["change"] == "slower").sum())
    lines.append(f"{regressions} cell(s) slower beyond the intervals.")
    return "\n".join(lines), regressions
