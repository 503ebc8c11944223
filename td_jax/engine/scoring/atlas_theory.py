"""The atlas's measured S at the finest eps and the asymptotic theory laid over the bandit
cells of tabular QTD (Rowland et al. 2023, arXiv:2301.04462; SCIENCE.md section 10).

``finest``: the finest eps of the band (``regime == "band"``, visit weighting) where the
cell is tested (a finite S), not censored, and both N (the rule's and its baseline's) are
finite; its
eps (absolute, the suite's units, and over e0), S with its 95% interval, and both N.

``theory``: S_inf (one shared step; one gain per quantile), the regime, the QTD mean's bias
and its normalised floor bias^2 / sigma^2 (``asymptotic.SpeedupInf.floor``: the squared
error, in the suite's units, that no step removes), then ``agreement`` (``AGREEMENT``) and
its ``reason``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from td_jax.analysis import asymptotic

PRIMARY = "visit"
ASYMPTOTIC_N = 1e4  # a finest-eps N below this is "not yet asymptotic" (issue 26: N >= 10^4)
WIDE = 10.0  # an interval wider than this factor (high / low) is inconclusive
NEAR_FLOOR = 10.0  # the finest eps within this factor of the floor: reason "floor"
AGREEMENT = (
    "The finest measured S's 95% interval [lo, hi] against S_inf (shared step): "
    "'inconclusive' where it contains 1 or hi / lo > 10; else 'agrees' where S_inf lies "
    "inside it, 'same side' where S_inf is on the interval's side of 1 (both above or "
    "both below), 'disagrees' otherwise; 'no theory' on atoms, 'not reached' for a bound "
    "pair without a finest eps, 'not measured' for any other pair without one. Reason: "
    "for 'inconclusive', which of its two conditions; for 'same side' and 'disagrees', "
    "the first that holds of: atoms; infinite variance; 'floor' where the finest eps "
    "is at most 10 times the larger of the engine's floor and bias^2 / sigma^2; 'not yet "
    "asymptotic' where the smaller N there is below 1e4; else 'unexplained'."
)
FINEST = ("eps_finest", "eps_finest_rel", "s_finest", "s_finest_low", "s_finest_high")
FINEST_N = ("n_rule_finest", "n_base_finest")
THEORY = ("S_inf_shared", "S_inf_per_quantile", "qtd_bias", "theory_floor")


def _visit(cells: pd.DataFrame, rule: str, task: str) -> pd.DataFrame:
    sub = cells[(cells["rule"] == rule) & (cells["task"] == task)]
    return sub[sub["weighting"] == PRIMARY] if "weighting" in sub else sub


def finest(cells: pd.DataFrame, rule: str, task: str, e0: float) -> dict[str, float]:
    """The measured S at the finest band eps where the cell is tested, uncensored, and
    both N are finite; nan where there is none."""
    out = dict.fromkeys((*FINEST, *FINEST_N), np.nan)
    if "rule" not in cells:  # no cell at all
        return out
    sub = _visit(cells, rule, task)
    if not len(sub):
        return out
    base = _visit(cells, sub["baseline"].iloc[0], task)
    merged = sub.merge(base[["epsilon", "n_updates"]], on="epsilon", suffixes=("", "_base"))
    ok = (
        (merged["regime"] == "band")
        & (merged["censored"].fillna("").astype(str) == "")
        & np.isfinite(merged["n_updates"].astype(float))
        & np.isfinite(merged["n_updates_base"].astype(float))
        & np.isfinite(merged["speedup"].astype(float))
    )
    good = merged[ok].sort_values("epsilon")
    if not len(good):
        return out
    row = good.iloc[0]
    eps = float(row["epsilon"])
    return {
        "eps_finest": eps,
        "eps_finest_rel": eps / e0 if np.isfinite(e0) and e0 > 0 else np.nan,
        "s_finest": float(row["speedup"]),
        "s_finest_low": float(row["s_low"]),
        "s_finest_high": float(row["s_high"]),
        "n_rule_finest": float(row["n_updates"]),
        "n_base_finest": float(row["n_updates_base"]),
    }


def theory(row: dict[str, Any], law: Any, qtd_like: tuple[str, ...]) -> dict[str, Any]:
    """S_inf, the regime, the bias and the normalised floor for a bandit cell of tabular
    QTD (``law``: its reward's exact law), with ``agreement`` and ``reason``; empty
    elsewhere."""
    out: dict[str, Any] = dict.fromkeys(THEORY, np.nan) | {
        "regime": "",
        "agreement": "",
        "reason": "",
    }
    if row["rule_name"] not in qtd_like or row["gamma"] != 0.0 or row["num_states"] != 1:
        return out
    if law is None or not np.isfinite(row["m"]):
        return out
    s = asymptotic.speedup_inf(law, int(row["m"]))
    out |= {
        "S_inf_shared": s.S_inf_shared,
        "S_inf_per_quantile": s.S_inf_per_quantile,
        "regime": s.regime,
        "qtd_bias": s.bias,
        "theory_floor": s.floor,
    }
    return out | agreement(row, s)


def _side(lo: float, hi: float, target: float) -> str:
    if lo <= target <= hi:
        return "agrees"
    return "same side" if (lo > 1.0) == (target > 1.0) else "disagrees"


def agreement(row: dict[str, Any], s: asymptotic.SpeedupInf) -> dict[str, str]:
    """Theory against the finest measured S (``AGREEMENT``)."""
    lo, hi = float(row["s_finest_low"]), float(row["s_finest_high"])
    if s.regime == asymptotic.ATOMS:
        return {"agreement": "no theory", "reason": "atoms"}
    if not np.isfinite(row["s_finest"]):
        if str(row.get("status", "")).startswith("bound"):
            return {"agreement": "not reached", "reason": str(row["status"])}
        return {"agreement": "not measured", "reason": "no tested band eps with both N finite"}
    if lo <= 1.0 <= hi:
        return {"agreement": "inconclusive", "reason": "the interval contains 1"}
    if hi / lo > WIDE:
        return {"agreement": "inconclusive", "reason": "the interval is wider than 10x"}
    word = _side(lo, hi, s.S_inf_shared)
    return {"agreement": word, "reason": "" if word == "agrees" else _reason(row, s)}


def _reason(row: dict[str, Any], s: asymptotic.SpeedupInf) -> str:
    if s.regime == asymptotic.INFINITE:
        return "infinite variance (S_inf = inf: S grows as eps shrinks)"
    floors = [f for f in (row.get("floor"), s.floor) if f is not None and np.isfinite(f)]
    top = max(floors, default=0.0)
    if top > 0 and row["eps_finest"] <= NEAR_FLOOR * top:
        return f"floor (finest eps {row['eps_finest']:.3g} within 10x of the floor {top:.3g})"
    if np.nanmin([row["n_rule_finest"], row["n_base_finest"]]) < ASYMPTOTIC_N:
        return "not yet asymptotic (N < 1e4 at the finest eps)"
    return "unexplained"
