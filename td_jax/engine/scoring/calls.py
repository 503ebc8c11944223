"""Scoring a prediction suite: per-eps cells (description) and one call per (rule, task).

``cells`` (``sample_complexity.csv``): per (rule, task, weighting, eps) N(eps) with its
re-selection interval (``estimand.cell_boot``), S(eps) against the baseline with its
interval and p-value, and a status; descriptive, with Benjamini-Hochberg per weighting as
before. ``pairs`` (``estimand.csv``): per (rule, task) on each estimand axis (the
prediction suites' visit weighting; every metric of a control suite), the estimand
(the geometric mean of S over the band) with its interval and the call, BH over (rule,
task) pairs within each role: the answer's rules, the null controls that can fail, and
the pipeline checks (rules that are the baseline by construction).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from td_jax.analysis import sample_complexity as sc
from td_jax.engine import tuning
from td_jax.engine.errors import BenchError
from td_jax.engine.scoring import estimand
from td_jax.engine.specs import Suite
from td_jax.rules.facts import baseline_reason

PRIMARY = "visit"  # the prediction suites' estimand axis (``Suite.estimand_axes``)
ROLES = ("answer", "null control", "pipeline check")  # not "null": a CSV reader's NA


def identity(spec, rule, env) -> str:
    """Why (rule, task) is the baseline by construction ('' if it is not), from the rule's
    own facts (``RuleFacts.baseline``) and the grid it is tuned on (``spec.scale``).

    Such cells are controls: they are reported, tested in their own BH family, and kept
    out of the answer (a rule that is TD there says nothing about distributional TD).
    """
    one_step = float(np.asarray(env.gamma)) == 0.0 or bool(np.all(np.asarray(env.terminal)))
    return baseline_reason(rule.facts, one_step, spec.scale)


SAME_STREAM = (
    "tuned on other seeds, but every seed is the same stream here (its tuning "
    "curves are the baseline's exactly): the baseline"
)


def seed_invariant(suite: Suite, unit, base_unit, task: str) -> str:
    """Why a split-seed replicate (``tuning.is_split``) is the baseline by construction on
    ``task`` ('' where it is not): the baseline's own rule and grid, whose tuning curves on
    its seeds equal the baseline's on theirs, bit for bit, for every configuration both
    ran (a task with no randomness, such as a deterministic chain, gives every seed the
    same stream). Its selection, and so its N, is then the baseline's: S = 1 whatever the
    statistics, a check of the pipeline, not a null that can fail (SCIENCE.md 9)."""
    if base_unit is None or not tuning.is_split(unit.spec, suite):
        return ""
    strip = {"label": "", "tuning_seeds": None, "note": ""}
    if dataclasses.replace(unit.spec, **strip) != dataclasses.replace(base_unit.spec, **strip):
        return ""
    mine, theirs = unit.tuning.get(task, {}), base_unit.tuning.get(task, {})
    common = [c for c in mine if c in theirs]
    same = bool(common) and all(np.array_equal(mine[c], theirs[c], equal_nan=True) for c in common)
    return SAME_STREAM if same else ""


def role_of(suite: Suite, label: str, why: str) -> str:
    if label in suite.nulls and not why:  # a null that cannot fail is a pipeline check
        return "null control"
    if label in suite.placebos or why:
        return "pipeline check"
    return "answer"


def _boots(suite: Suite, units) -> dict:
    out = {}
    for unit in units:
        split = tuning.is_split(unit.spec, suite)
        for t in unit.tasks:
            for wi, w in enumerate(unit.axes):
                eps = tuning.task_eps(suite, t, w)
                out[(unit.spec.label, t.spec.label, w)] = estimand.cell_boot(
                    unit, t.spec.label, wi, w, eps, suite.reps, split, suite.margin
                )
    return out


def _row(suite, unit, t, w, k, s, b: estimand.CellBoot, floor, why) -> dict:
    eps = tuning.task_eps(suite, t, w)
    rel = eps[k] / t.initial_error[w]
    band = tuning.band_mask(suite)
    lo, hi = estimand.interval(b.boot[:, k : k + 1])
    regime = "band" if band[k] else ("transient" if rel > suite.band[1] else "below band")
    search = getattr(unit, "search", {}).get((t.spec.label, w, k), {})
    return {
        "rule": unit.spec.label, "task": t.spec.label, suite.axis_column: w, "epsilon": eps[k],
        "eps_relative": float(suite.eps_grid[k]), "regime": regime,
        "n_updates": b.n[k], "n_low": lo[0], "n_high": hi[0],
        **tuning.describe(s.config, tuning.unit_of(unit, t.spec.label), unit.num_states),
        "reached": bool(np.isfinite(b.n[k])),
        "floor": np.nan if floor is None else floor[w],
        "identity": why, "alpha_units": np.nan if s.config is None else s.config.alpha,
        "step_unit": tuning.unit_of(unit, t.spec.label), "edge": s.edge, "flat_edge": s.flat,
        "search": ",".join(f"{f}:{v}" for f, v in sorted(search.items())),
        "candidates": len(unit.candidates.get((t.spec.label, w), [[]] * (k + 1))[k]),
        "coverage": unit.coverage.get((t.spec.label, w), [1.0] * (k + 1))[k],
        "diverged": int(b.diverged[k]), "seeds": b.seeds if s.config is not None else 0,
        "n_tuning": s.n_tuning, "reached_tuning": s.reached, "horizon": int(unit.steps[-1]),
    }  # fmt: skip


def _plateau(suite, unit, label: str, wi: int, w: str, floor) -> tuple[float, float, float]:
    """A rule without a known floor (a plug-in): the level its error levels off at, from
    the evaluation curves of its selection at the finest eps it was tuned for
    (``estimand.plateau``); nan where it has a floor or its tail still falls."""
    nan = (float("nan"),) * 3
    if floor is not None and np.isfinite(floor[w]):
        return nan
    picks = [s.config for s in unit.selected[(label, w)] if s.config is not None]
    if not picks:
        return nan
    return estimand.plateau(unit.steps, unit.evaluation[label][picks[-1]][:, :, wi], suite.reps)


def _status(s, bsel, floor_e: float, eps_k: float, diverged: int, nr, nb) -> str:
    if s.config is None or bsel.config is None:
        return "trivial"
    if diverged > 0:
        return "diverged"
    if np.isfinite(floor_e) and floor_e >= eps_k:
        return "cannot reach"
    if s.edge or bsel.edge:
        return "edge"
    if not np.isfinite(nr) and not np.isfinite(nb):
        return "neither reached"
    if np.nanmin([nr, nb]) < sc.EARLY_UPDATES:
        return "early"
    return "tested"


def cell_frame(suite: Suite, units, floor_table) -> tuple[pd.DataFrame, dict]:
    """Per-eps rows with N and S intervals (selection included); returns them and the
    boots (for the estimand)."""
    boots = _boots(suite, units)
    by_label = {(u.spec.label, t.spec.label): (u, t) for u in units for t in u.tasks}
    rows = []
    for unit in units:
        for t in unit.tasks:
            base = suite.baseline_of(unit.spec.label)
            other = by_label.get((base, t.spec.label))
            why = identity(unit.spec, unit.rule, t.env) or seed_invariant(
                suite, unit, None if other is None else other[0], t.spec.label
            )
            floor = floor_table.get((unit.spec.label, t.spec.label))
            for wi, w in enumerate(unit.axes):
                b = boots[(unit.spec.label, t.spec.label, w)]
                sels = unit.selected[(t.spec.label, w)]
                level = _plateau(suite, unit, t.spec.label, wi, w, floor)
                for k, s in enumerate(sels):
                    row = _row(suite, unit, t, w, k, s, b, floor, why)
                    row.update(plateau=level[0], plateau_low=level[1], plateau_high=level[2])
                    row.update(baseline=base, speedup=np.nan, s_low=np.nan, s_high=np.nan,
                               p_value=np.nan, s_se=np.nan, censored="")  # fmt: skip
                    if unit.spec.label == base or other is None:
                        row["status"] = "baseline" if unit.spec.label == base else "no baseline"
                    else:
                        bsel = other[0].selected[(t.spec.label, w)][k]
                        _compare(row, suite, s, bsel, b, boots[(base, t.spec.label, w)], k,
                                 level, float(unit.steps[-1]))  # fmt: skip
                    rows.append(row)
    cells = pd.DataFrame(rows)
    tested = cells["status"] == "tested"
    cells["significant"] = False
    for _, fam in cells[tested].groupby([cells[suite.axis_column], cells["identity"] != ""]):
        cells.loc[fam.index, "significant"] = sc.benjamini_hochberg(
            fam["p_value"].to_numpy(), suite.fdr_q
        )
    cells["verdict"] = _verdicts(cells, tested, suite.margin)
    return cells, boots


def _compare(row: dict, suite, s, bsel, b, bb, k: int, level, horizon: float) -> None:
    """Fills one per-eps row's status and, where tested, S(eps) with its interval."""
    row["status"] = _status(s, bsel, row["floor"], row["epsilon"], row["diverged"],
                            b.n[k], bb.n[k])  # fmt: skip
    reached = np.isfinite(b.n[k])
    if row["status"] == "tested" and not reached and level[0] >= row["epsilon"]:
        row["status"] = f"cannot reach (plateau {level[0]:.3g} [{level[1]:.3g}, {level[2]:.3g}])"
    if row["status"] != "tested":
        return
    point = float(estimand.log_s(bb.n[k], b.n[k], horizon))
    res = estimand.test(point, estimand.log_s(bb.boot[:, k], b.boot[:, k], horizon), suite.margin)
    censored = "" if reached and np.isfinite(bb.n[k]) else ("baseline" if reached else "rule")
    row.update(speedup=np.exp(res.log_s), s_low=np.exp(res.low), s_high=np.exp(res.high),
               p_value=res.p_value, s_se=res.se, censored=censored)  # fmt: skip


def _verdicts(frame: pd.DataFrame, tested, margin: float) -> np.ndarray:
    band = 1.0 + margin
    whole = frame["censored"].fillna("") == ""
    sig = tested & frame["significant"] & whole
    return np.select(
        [sig & (frame["s_low"] > band), sig & (frame["s_high"] < 1.0 / band), tested & whole],
        ["faster", "slower", "no detectable difference"],
        default=np.where(tested, "bound", frame["status"]),
    )


def pair_frame(suite: Suite, units, cells: pd.DataFrame, boots: dict) -> pd.DataFrame:
    """One row per (rule, task) against its baseline on each of the suite's estimand axes
    (``suite.estimand_axes``: the prediction suites' visit weighting, or each control
    metric): the estimand."""
    by_label = {(u.spec.label, t.spec.label): (u, t) for u in units for t in u.tasks}
    rel_band = tuning.band_mask(suite)
    col = suite.axis_column
    prim = cells[cells[col].isin(suite.estimand_axes)]
    rows = []
    for (rule, task, w), grp in prim.groupby(["rule", "task", col], sort=False):
        base = grp["baseline"].iloc[0]
        if rule == base or (base, task) not in by_label:
            continue
        unit, t = by_label[(rule, task)]
        bunit, _ = by_label[(base, task)]
        mine = (prim["rule"] == base) & (prim["task"] == task) & (prim[col] == w)
        bfloor = prim.loc[mine, "floor"]
        floors = (float(grp["floor"].iloc[0]), float(bfloor.iloc[0]) if len(bfloor) else 0.0)
        band_rows = grp[grp["regime"] == "band"]
        if len(band_rows) and not band_rows["reached_tuning"].all():  # levels off: a floor
            floors = floors + (float(grp["plateau"].iloc[0]),)
        rows.append(_pair(suite, unit, bunit, t, w, grp, boots, rel_band, floors))
    pairs = pd.DataFrame(rows)
    if not len(pairs):
        return pairs
    tested = pairs["status"] == "tested"
    pairs["significant"] = False
    for _, fam in pairs[tested].groupby(["role", col]):
        pairs.loc[fam.index, "significant"] = sc.benjamini_hochberg(
            fam["p_value"].to_numpy(), suite.fdr_q
        )
    pairs["verdict"] = _verdicts(pairs.assign(censored=""), tested, suite.margin)
    return pairs


def _pair(suite, unit, bunit, t, w: str, grp, boots, rel_band, floors) -> dict:
    rule, task, base = unit.spec.label, t.spec.label, grp["baseline"].iloc[0]
    why = grp["identity"].fillna("").iloc[0]
    eps = tuning.task_eps(suite, t, w)
    sel, bsel = unit.selected[(task, w)], bunit.selected[(task, w)]
    b, bb = boots[(rule, task, w)], boots[(base, task, w)]
    mask = estimand.band_of(rel_band, sel, bsel, floors, eps)
    T = float(unit.steps[-1])
    transient = grp[grp["regime"] == "transient"].sort_values("epsilon").head(1)
    row = {
        "rule": rule, "task": task, suite.axis_column: w, "baseline": base,
        "role": role_of(suite, rule, why),
        "distributional": bool(getattr(unit.rule, "distributional", False)),
        "identity": why, "band_points": int(mask.sum()),
        "coverage": _coverage(unit, bunit, task, w, mask),
        "eps_high": float(eps[mask].max()) if mask.any() else np.nan,
        "eps_low": float(eps[mask].min()) if mask.any() else np.nan,
        "e0": float(t.initial_error[w]), "floor": floors[0],
        "noise_to_signal": float(getattr(t, "noise_to_signal", np.nan)),
        "speedup": np.nan, "s_low": np.nan, "s_high": np.nan, "p_value": np.nan, "s_se": np.nan,
        "transient_eps": float(transient["epsilon"].iloc[0]) if len(transient) else np.nan,
        "transient_n_rule": float(transient["n_updates"].iloc[0]) if len(transient) else np.nan,
        "transient_speedup": float(transient["speedup"].iloc[0]) if len(transient) else np.nan,
        "transient_status": str(transient["verdict"].iloc[0]) if len(transient) else "",
    }  # fmt: skip
    if (b.diverged > 0).any():  # loud: a diverged rule is never "untested"
        row["status"] = "diverged"
        return row
    if estimand.under_tuned(rel_band, sel, bsel, floors, eps):
        row["status"] = "under-tuned (a band selection on a grid edge)"
        return row
    if not mask.any():
        row["status"] = estimand.band_reason(rel_band, sel, bsel, floors, eps)
        return row
    if (b.diverged[mask] > 0).any() or (bb.diverged[mask] > 0).any():
        row["status"] = "diverged"
        return row
    point = estimand.log_s(bb.n[mask], b.n[mask], T)
    censored = not (np.isfinite(b.n[mask]).all() and np.isfinite(bb.n[mask]).all())
    boot = estimand.log_s(bb.boot[:, mask], b.boot[:, mask], T).mean(axis=1)
    res = estimand.test(float(point.mean()), boot, suite.margin)
    row.update(speedup=np.exp(res.log_s), s_low=np.exp(res.low), s_high=np.exp(res.high),
               p_value=res.p_value, s_se=res.se)  # fmt: skip
    if censored:
        row["status"] = "bound (rule not reached)" if not np.isfinite(b.n[mask]).all() else (
            "bound (baseline not reached)")  # fmt: skip
        row["p_value"] = np.nan
        return row
    row["status"] = "tested"
    return row


def _coverage(unit, bunit, task: str, w: str, mask: np.ndarray) -> float:
    """The smallest share, over the band and both rules, of re-selection resamples whose
    configuration was evaluated (``search._candidates``; nan: an empty band)."""
    if not mask.any():
        return float("nan")
    cover = [np.asarray(u.coverage.get((task, w), [1.0] * len(mask)))[mask] for u in (unit, bunit)]
    return float(min(c.min() for c in cover))


def coverage_summary(suite, pairs: pd.DataFrame) -> dict:
    """Over the tested pairs: the re-selection coverage (``_coverage``) as median, minimum
    and the pairs below the suite's target, with a line for the verdicts."""
    tested = pairs[pairs["status"] == "tested"] if len(pairs) else pairs
    cov = tested["coverage"].to_numpy(float) if len(tested) else np.zeros(0)
    out = {"target": suite.coverage, "tested": int(cov.size),
           "median": float(np.median(cov)) if cov.size else float("nan"),
           "min": float(cov.min()) if cov.size else float("nan"),
           "below": int((cov < suite.coverage).sum())}  # fmt: skip
    out["line"] = (
        f"Re-selection coverage (the share of bootstrap resamples whose re-selected "
        f"configuration was evaluated, the smaller of the two rules' over the band): median "
        f"{out['median']:.2f}, minimum {out['min']:.2f} over {out['tested']} tested pairs; "
        f"{out['below']} below the target {suite.coverage:.2f}, where the interval may be "
        f"too narrow (the uncovered resamples take the best evaluated configuration)."
    )
    return out


def calibrated_null_rates(suite, pairs: pd.DataFrame) -> dict:
    """``null_rates``, refusing a suite whose answer has pairs but whose nulls have no
    tested pair: its calls would have no calibration (SCIENCE.md section 9)."""
    nulls = null_rates(suite, pairs)
    answered = len(pairs) and (pairs["role"] == "answer").any()
    if answered and nulls["tested"] == 0:
        raise BenchError(
            f"suite {suite.name}: it compares rules with its baseline {suite.baseline!r} but "
            f"no null control was tested (nulls {list(suite.nulls)}): its calls would have "
            "no calibration; add null controls (td_jax.engine.specs.null_rules) that "
            "reach its band"
        )
    return nulls


def null_rates(suite: Suite, pairs: pd.DataFrame) -> dict:
    """The null controls' false-positive rate (calls / tested (rule, task) pairs) with its
    Clopper-Pearson 95% interval, overall and per null rule."""
    nulls = (
        pairs[(pairs["role"] == "null control") & (pairs["status"] == "tested")]
        if len(pairs)
        else pairs
    )
    k = int(nulls["verdict"].isin(["faster", "slower"]).sum()) if len(nulls) else 0
    n = int(len(nulls))
    lo, hi = estimand.clopper_pearson(k, n)
    per = {}
    for rule, sub in nulls.groupby("rule", sort=False) if n else []:
        kr = int(sub["verdict"].isin(["faster", "slower"]).sum())
        per[rule] = {"tested": int(len(sub)), "called": kr}
    return {"tested": n, "called": k, "rate": k / n if n else float("nan"),
            "low": lo, "high": hi, "rules": per}  # fmt: skip


SEARCH_ENDS = ("flat", "resolution", "searching", "unreached", "not searched")


def _family(schedule: str) -> str:
    """The family of a ``schedule`` column entry ("constant", "harmonic(c=...)")."""
    return schedule.split("(")[0]


def search_ends(suite, cells: pd.DataFrame) -> dict:
    """How the compass searches behind the band selections ended (``engine.refine``): per
    band cell on the estimand axes whose selection the tuning seeds reach after at least
    ``sc.EARLY_UPDATES`` updates (the cells the bench refines), the status of its selected
    family's search, counted, with a line for the verdicts. "searching": stopped by the
    round budget (``max_refinements``), its N possibly above the family's optimum; "not
    searched": no search of the selected family (none started there)."""
    rounds = int(getattr(suite, "max_refinements", 0))
    out: dict = {"max_refinements": rounds, "searched": 0, **{k: 0 for k in SEARCH_ENDS}}
    if rounds == 0 or "search" not in cells:
        out["line"] = "Step-size search: none (max_refinements = 0): the grid's selections."
        return out
    band = cells[(cells["regime"] == "band") & cells[suite.axis_column].isin(suite.estimand_axes)
                 & cells["reached_tuning"].astype(bool)
                 & (cells["n_tuning"] >= sc.EARLY_UPDATES)]  # fmt: skip
    for schedule, search in zip(band["schedule"], band["search"], strict=True):
        parts = search.split(",") if isinstance(search, str) else []
        ends = dict(part.split(":") for part in parts if ":" in part)
        out["searched"] += 1
        out[ends.get(_family(str(schedule)), "not searched")] += 1
    out["line"] = (
        f"Step-size search, over the {out['searched']} band selections reached on the tuning "
        f"seeds after at least {sc.EARLY_UPDATES} updates: {out['flat']} ended flat (every "
        f"neighbour within {suite.margin:g} of the choice), {out['resolution']} at the "
        f"search's resolution (steps of x1.01, a neighbour still beyond the margin), "
        f"{out['searching']} at the budget of {rounds} refinement rounds (N possibly above "
        f"the optimum), {out['unreached']} with the family unreached and "
        f"{out['not searched']} not searched."
    )
    return out
