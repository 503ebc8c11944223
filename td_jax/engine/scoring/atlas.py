"""The atlas report (``Suite.reports = ("atlas",)``): where distributional TD converges faster
than TD, as a table over the axes of the reward law and the task, with the asymptotic
theory laid over the bandit cells (SCIENCE.md section 10; issue 26).

It reads the standard report's files in the results directory (``estimand.csv``,
``sample_complexity.csv``) and the suite's own specs (never the units), so ``td-jax report
DIR`` rewrites it from a finished run. It writes:

* ``atlas.csv``: one row per (rule, task) pair of ``estimand.csv`` (the estimand S over the
  band with its interval, the call, the floor, the transient above the band) with the axes
  as columns: environment, gamma, states, Garnet instances; the reward family, its shape
  parameters, ``standardize``; derived: the tail index ``df`` (Student t's; inf for the
  Gaussian, nan otherwise), ``inv_df`` (1 / df, 0 for laws with every moment), the exact
  skewness, the noise-to-signal ratio (the engine's: reward std over the RMS true value
  under the visit weights; ``engine.tasks.TaskInfo``), the rule's size m; the measured S at
  the finest eps; and on bandit cells of tabular QTD, ``S_inf_shared``,
  ``S_inf_per_quantile`` and ``regime`` from ``analysis.asymptotic.speedup_inf`` with
  ``agreement`` and its ``reason``;
* the figures (``atlas_plots``) and ``results/<suite>/atlas.md``: counts per rule, the
  boundary model (``atlas_boundary``) with its held-out accuracy, theory against
  measurement, and the generated sentence. The atlas has its own page: verdict.md stays the
  standard one.

S_inf is a reference mark only: nothing of the protocol is tuned toward it.

References: Rowland et al. (2023), An analysis of quantile temporal-difference learning,
arXiv:2301.04462 (the QTD asymptotics laid over the bandit cells).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from td_jax import envs, rewards
from td_jax.analysis import asymptotic
from td_jax.engine.scoring import atlas_boundary, atlas_plots
from td_jax.engine.specs import RuleSpec, Suite, TaskSpec
from td_jax.engine.store import write_csv, write_text

PRIMARY = "visit"
QTD_LIKE = atlas_boundary.QTD_LIKE  # registry rules the bandit theory describes (tabular QTD)
SIZE_KEYS = ("num_quantiles", "num_cells", "num_atoms", "num_expectiles")
SYMMETRIC = ("gaussian", "student_t", "uniform", "deterministic")
ASYMPTOTIC_N = 1e4  # a finest-eps N below this is "not yet asymptotic" (issue 26: N >= 10^4)
FAMILY_SHAPES = ("df", "p", "sigma", "mu", "scale")
PAIR_COLUMNS = (
    "rule",
    "task",
    "baseline",
    "role",
    "distributional",
    "identity",
    "status",
    "verdict",
    "significant",
    "speedup",
    "s_low",
    "s_high",
    "p_value",
    "band_points",
    "eps_high",
    "eps_low",
    "e0",
    "floor",
    "noise_to_signal",
    "transient_eps",
    "transient_speedup",
    "transient_status",
)


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def reward_spec_of(task: TaskSpec) -> Any:
    """The task's reward spec (``env_params["reward"]``), None where it has none."""
    return task.env_params.get("reward")


def skewness(family: str, params: dict[str, Any], law: Any) -> float:
    """The exact skewness E[(R - mu)^3] / sigma^3 of the reward law (invariant under the
    positive affine map of ``standardize``): 0 for symmetric families (Student t included,
    by symmetry, where the third moment is infinite), closed forms for the exponential (2),
    lognormal ((e^s2 + 2) sqrt(e^s2 - 1)) and Bernoulli ((1 - 2p) / sqrt(p (1 - p))),
    else the quantile integral on 2^16 midpoint levels."""
    if family in SYMMETRIC:
        return 0.0
    if family == "exponential":
        return 2.0
    if family == "lognormal":
        s2 = float(params["sigma"]) ** 2
        return float((math.exp(s2) + 2.0) * math.sqrt(math.expm1(s2)))
    if family == "bernoulli":
        p = float(params["p"])
        return float((1.0 - 2.0 * p) / math.sqrt(p * (1.0 - p)))
    var = float(law.variance)
    if not np.isfinite(var) or var <= 0:
        return float("nan")
    u = (np.arange(2**16) + 0.5) / 2**16
    x = np.asarray(law.quantile(u), np.float64)
    return float(np.mean((x - float(law.mean)) ** 3) / var**1.5)


def reward_axes(spec: Any) -> dict[str, Any]:
    """The reward law's axes: family, shape parameters, ``standardize``, tail, skewness,
    mean and std (inf where the variance is)."""
    out: dict[str, Any] = {"family": "", **{k: np.nan for k in FAMILY_SHAPES}}
    out |= {
        "standardize_mean": np.nan,
        "standardize_std": np.nan,
        "df_tail": np.nan,
        "inv_df": np.nan,
        "skew": np.nan,
        "reward_mean": np.nan,
        "reward_std": np.nan,
    }
    if spec is None:
        return out
    if isinstance(spec, str | int | float):
        spec = (
            {"name": "deterministic", "value": float(spec)}
            if not isinstance(spec, str)
            else {"name": spec}
        )
    spec = {k: _frozen(v) for k, v in dict(spec).items()}
    family = str(spec.get("name", ""))
    params = {**rewards.defaults(family), **spec} if family in rewards.available() else spec
    law = rewards.as_reward(spec).law()
    out["family"] = family
    for k in FAMILY_SHAPES:
        if isinstance(params.get(k), int | float) and k in rewards.defaults(family):
            out[k] = float(params[k])
    if spec.get("standardize") is not None:
        out["standardize_mean"], out["standardize_std"] = map(float, spec["standardize"])
    if family == "student_t":
        out["df_tail"] = float(params["df"])
    elif family == "gaussian":
        out["df_tail"] = np.inf
    out["inv_df"] = 1.0 / float(params["df"]) if family == "student_t" else 0.0
    out["skew"] = skewness(family, params, law)
    out["reward_mean"], out["reward_std"] = float(law.mean), float(np.sqrt(law.variance))
    return out


def task_axes(task: TaskSpec) -> dict[str, Any]:
    """A task's axes: environment, gamma, states and instances (one env built, no program
    compiled), and its reward's (``reward_axes``)."""
    build = dict(task.env_params)
    if task.instances:
        build[task.instance_param] = task.instances[0]
    env = envs.make(task.env, **build)
    inst = ",".join(str(g) for g in task.instances)
    return {
        "env": task.env,
        "gamma": float(np.asarray(env.gamma)),
        "num_states": int(env.num_states),
        "instances": inst,
        "num_instances": max(len(task.instances), 1),
        **reward_axes(reward_spec_of(task)),
    }


def rule_axes(spec: RuleSpec) -> dict[str, Any]:
    """A rule's registry name and size m (quantiles, cells, atoms or expectiles; nan for a
    rule without one)."""
    name = spec.rule if isinstance(spec.rule, str) else "plugin"
    m = next((spec.hparams[k] for k in SIZE_KEYS if k in spec.hparams), np.nan)
    return {"rule_name": name, "m": float(m)}


def finest(cells: pd.DataFrame, rule: str, task: str) -> dict[str, float]:
    """The measured S at the finest eps where both N are finite (visit weighting), with
    the two N and the relative eps; nan where there is none."""
    sub = cells[(cells["rule"] == rule) & (cells["task"] == task) & (cells["weighting"] == PRIMARY)]
    sub = sub[np.isfinite(sub["speedup"].astype(float))].sort_values("epsilon")
    out = {
        "eps_finest": np.nan,
        "s_finest": np.nan,
        "s_finest_low": np.nan,
        "s_finest_high": np.nan,
        "n_rule_finest": np.nan,
        "n_base_finest": np.nan,
    }
    if not len(sub):
        return out
    row = sub.iloc[0]
    base = cells[
        (cells["rule"] == row["baseline"])
        & (cells["task"] == task)
        & (cells["weighting"] == PRIMARY)
        & np.isclose(cells["epsilon"], row["epsilon"])
    ]
    rel = row["eps_relative"] if "eps_relative" in row else row["epsilon"]
    return {
        "eps_finest": float(rel),
        "s_finest": float(row["speedup"]),
        "s_finest_low": float(row["s_low"]),
        "s_finest_high": float(row["s_high"]),
        "n_rule_finest": float(row["n_updates"]),
        "n_base_finest": float(base["n_updates"].iloc[0]) if len(base) else np.nan,
    }


def theory(row: dict[str, Any], spec: Any) -> dict[str, Any]:
    """S_inf (both gains) and the regime for a bandit cell of tabular QTD, with whether the
    finest measured S agrees (inside its interval, or on the same side of 1) and why not."""
    nan = {
        "S_inf_shared": np.nan,
        "S_inf_per_quantile": np.nan,
        "regime": "",
        "qtd_bias": np.nan,
        "agreement": "",
        "reason": "",
    }
    if row["rule_name"] not in QTD_LIKE or row["gamma"] != 0.0 or row["num_states"] != 1:
        return nan
    if spec is None or not np.isfinite(row["m"]):
        return nan
    s = asymptotic.speedup_inf(_frozen_spec(spec), int(row["m"]))
    out = {
        "S_inf_shared": s.S_inf_shared,
        "S_inf_per_quantile": s.S_inf_per_quantile,
        "regime": s.regime,
        "qtd_bias": s.bias,
    }
    return out | _agreement(row, s)


def _frozen_spec(spec: Any) -> Any:
    if isinstance(spec, dict):
        return {k: _frozen(v) for k, v in spec.items()}
    return spec


def _agreement(row: dict[str, Any], s: asymptotic.SpeedupInf) -> dict[str, str]:
    """Theory against the finest measured S: 'agrees' (S_inf inside the measured interval),
    'same side' (of S = 1), 'disagrees', 'not measured'; the reason where it does not
    agree: atoms, infinite variance, the floor, or not yet asymptotic (N < 10^4)."""
    meas, lo, hi = row["s_finest"], row["s_finest_low"], row["s_finest_high"]
    target = s.S_inf_shared
    if not np.isfinite(meas):
        return {"agreement": "not measured", "reason": "no eps where both N are finite"}
    if s.regime == asymptotic.ATOMS:
        return {"agreement": "no theory", "reason": "atoms"}
    if s.regime == asymptotic.INFINITE:
        word = "same side" if meas > 1 else "disagrees"
        return {
            "agreement": word,
            "reason": "infinite variance (S_inf = inf: S grows as eps shrinks)",
        }
    if lo <= target <= hi:
        return {"agreement": "agrees", "reason": ""}
    word = "same side" if (meas - 1) * (target - 1) > 0 else "disagrees"
    floor = row["floor"]
    eps_abs = row["eps_finest"] * row["e0"] if np.isfinite(row["e0"]) else row["eps_finest"]
    if np.isfinite(floor) and floor > 0 and eps_abs <= 3.0 * floor:
        return {"agreement": word, "reason": "floor"}
    if min(row["n_rule_finest"], row["n_base_finest"]) < ASYMPTOTIC_N:
        return {"agreement": word, "reason": "not yet asymptotic (N < 1e4 at the finest eps)"}
    return {"agreement": word, "reason": "unexplained"}


def atlas_frame(suite: Suite, pairs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``atlas.csv``: one row per (rule, task) pair of ``estimand.csv`` (visit weighting)."""
    tasks = {t.label: t for t in suite.tasks}
    rules = {r.label: r for r in suite.rules}
    task_cols = {label: task_axes(t) for label, t in tasks.items()}
    prim = pairs[pairs["weighting"] == PRIMARY] if "weighting" in pairs else pairs
    rows = []
    for _, p in prim.iterrows():
        row = {c: p[c] for c in PAIR_COLUMNS if c in p}
        row |= task_cols[p["task"]] | rule_axes(rules[p["rule"]])
        row |= finest(cells, p["rule"], p["task"])
        row |= theory(row, reward_spec_of(tasks[p["task"]]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["log_s"] = np.log(frame["speedup"].astype(float))
    frame["faster"] = frame["verdict"] == "faster"
    return frame


def _counts(frame: pd.DataFrame) -> list[str]:
    lines = [
        "| rule | role | tested | faster | slower | no detectable difference | untested |",
        "|---|---|---|---|---|---|---|",
    ]
    for (rule, role), g in frame.groupby(["rule", "role"], sort=False):
        tested = g[g["status"] == "tested"]
        v = tested["verdict"]
        lines.append(
            f"| `{rule}` | {role} | {len(tested)} | {(v == 'faster').sum()} | "
            f"{(v == 'slower').sum()} | {(v == 'no detectable difference').sum()} | "
            f"{len(g) - len(tested)} |"
        )
    return lines


def _theory_lines(frame: pd.DataFrame) -> list[str]:
    sub = frame[frame["regime"].fillna("") != ""]
    if not len(sub):
        return ["No bandit cell of tabular QTD: no theory to lay over.", ""]
    lines = [
        "S_inf: Rowland et al. (2023, arXiv:2301.04462) and SCIENCE.md section 10, one "
        "shared step c/t (tabular QTD) and one gain per quantile; the measured S is at "
        "the finest eps where both N are finite, with its 95% interval.",
        "",
        "| rule | task | m | regime | S_inf shared | S_inf per quantile | eps / e0 | "
        "measured S | agreement | reason |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in sub.iterrows():
        lines.append(
            f"| `{r['rule']}` | {r['task']} | {r['m']:.0f} | {r['regime']} | "
            f"{r['S_inf_shared']:.3g} | {r['S_inf_per_quantile']:.3g} | {r['eps_finest']:.3g} | "
            f"{r['s_finest']:.3g} [{r['s_finest_low']:.3g}, {r['s_finest_high']:.3g}] | "
            f"{r['agreement']} | {r['reason'] or '-'} |"
        )
    agree = sub["agreement"].value_counts().to_dict()
    lines += ["", "Agreement: " + ", ".join(f"{k} {v}" for k, v in sorted(agree.items())) + ".", ""]
    return lines


def atlas_markdown(
    suite: Suite, frame: pd.DataFrame, model: dict[str, Any], figures: list[str]
) -> str:
    """``results/<suite>/atlas.md``: counts per rule, the boundary model, theory against
    measurement, and the generated sentence."""
    lines = [
        f"# Atlas: suite `{suite.name}`",
        "",
        f"{len(frame)} (rule, task) pairs against the baseline on the visit weighting; the "
        "estimand is the geometric mean of S over the band (SCIENCE.md section 9). "
        "atlas.csv holds every axis as a column. The standard verdict is verdict.md.",
        "",
        "## Calls per rule",
        "",
        *_counts(frame),
        "",
        "## Boundary model",
        "",
        *atlas_boundary.markdown(model),
        "",
        "## Theory on the bandit",
        "",
        *_theory_lines(frame),
        "## Sentence",
        "",
        f"**{model['sentence']}**",
        "",
        "## Figures",
        "",
        *[f"- `{f}`" for f in figures],
        "",
    ]
    return "\n".join(lines)


def write(suite: Suite, out: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """Writes the atlas into ``out`` (the staging directory, after the standard report);
    returns the file names written."""
    out = Path(out)
    pairs = pd.read_csv(out / "estimand.csv", keep_default_na=False, na_values=[""])
    cells = pd.read_csv(out / "sample_complexity.csv", keep_default_na=False, na_values=[""])
    frame = atlas_frame(suite, pairs, cells)
    model = atlas_boundary.fit_report(frame)
    files = [write_csv(frame, out / "atlas.csv")]
    figures = atlas_plots.write_all(out, frame, QTD_LIKE)
    files += figures
    files.append(write_text(out / "atlas.md", atlas_markdown(suite, frame, model, figures)))
    return files
