"""Figures of a suite: error curves with interval bands, step-size sensitivity, distributions."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from td_jax import envs as env_lib  # noqa: E402
from td_jax.harness import stats  # noqa: E402
from td_jax.harness.suites import Suite  # noqa: E402
from td_jax.runner import RunResult  # noqa: E402


def _grid(n: int):
    cols = min(7, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _save(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path.name


def _colors(rules: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {r: cmap(i % 10) for i, r in enumerate(rules)}


def error_curves(out: Path, suite: Suite, curves: pd.DataFrame, selected: pd.DataFrame) -> str:
    """IQM normalised value error vs updates (log-log), 95% bootstrap bands, eval seeds."""
    rules = list(dict.fromkeys(r.label for r in suite.rules))
    tasks = sorted(curves["task"].unique())
    ev = curves[curves["split"] == "evaluation"].merge(
        selected[["rule", "task", "step_size"]], on=["rule", "task", "step_size"]
    )
    steps = np.sort(ev["step"].unique())
    bands = {}
    for r in rules:
        sub = ev[ev["rule"] == r].pivot_table(
            index="seed", columns=["task", "step"], values="normalized_error"
        )
        sub = sub.reindex(columns=pd.MultiIndex.from_product([tasks, steps]))
        mat = np.nan_to_num(sub.to_numpy(np.float64), nan=1e6, posinf=1e6)
        point, low, high = stats.iqm_intervals({r: mat}, reps=500)[r]
        shape = (len(tasks), len(steps))
        bands[r] = (point.reshape(shape), low.reshape(shape), high.reshape(shape))
    fig, axes = _grid(len(tasks))
    colors = _colors(rules)
    for j, (ax, task) in enumerate(zip(axes, tasks, strict=False)):
        for r in rules:
            point, low, high = (b[j] for b in bands[r])
            ax.plot(steps, point, color=colors[r], lw=1.3, label=r)
            ax.fill_between(steps, low, high, color=colors[r], alpha=0.2, lw=0)
        ax.axhline(suite.threshold, color="k", lw=0.6, ls=":")
        ax.set(xscale="log", yscale="log", title=task)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: normalised value error (IQM, 95% CI) vs updates; dotted: threshold",
        fontsize=9,
    )
    return _save(fig, out / "error_curves.png")


def sensitivity(out: Path, suite: Suite, learners: pd.DataFrame, selected: pd.DataFrame) -> str:
    """Mean log-error AUC on the tuning seeds vs step size; markers: selected step sizes."""
    from td_jax.harness.analysis import sensitivity as table

    sens = table(learners)
    rules = list(dict.fromkeys(r.label for r in suite.rules))
    tasks = sorted(sens["task"].unique())
    colors = _colors(rules)
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=False):
        for r in rules:
            sub = sens[(sens["task"] == task) & (sens["rule"] == r)].sort_values("step_size")
            y = np.where(np.isfinite(sub["auc"]), sub["auc"], np.nan)
            ax.plot(sub["step_size"], y, color=colors[r], lw=1.2, marker=".", label=r)
            pick = selected[(selected["task"] == task) & (selected["rule"] == r)]
            if len(pick) and np.isfinite(pick["score"].iloc[0]):
                ax.plot(pick["step_size"], pick["score"], "o", color=colors[r], mfc="none")
        ax.set(xscale="log", title=task)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: step-size sensitivity (mean log10-error AUC on tuning seeds; "
        "gaps: diverged)",
        fontsize=9,
    )
    return _save(fig, out / "sensitivity.png")


def distributions(out: Path, suite: Suite, selected: pd.DataFrame, results: list[RunResult]) -> str:
    """Learned vs true return distribution (CDF) of state 0, first evaluation seed."""
    rules = [r.label for r in suite.rules]
    colors = _colors(rules)
    seed = min(suite.eval_seeds)
    fig, axes = _grid(len(suite.tasks))
    for ax, task in zip(axes, sorted(suite.tasks, key=lambda t: t.label), strict=False):
        env = env_lib.make(task.env, **task.env_params)
        locs, probs = env.true_distribution(0)
        ax.step(locs, np.cumsum(probs), where="post", color="k", lw=2.0, label="truth")
        for res in results:
            if task.label not in res.envs:
                continue
            rule = res.rules[0]
            pick = selected[(selected["task"] == task.label) & (selected["rule"] == rule)]
            if not len(pick):
                continue
            a = int(np.flatnonzero(np.isclose(res.step_sizes, pick["step_size"].iloc[0]))[0])
            n = int(np.flatnonzero(res.seeds == seed)[0])
            l_locs, l_probs = (x[a, n, 0] for x in res.final_distributions[f"{rule}/{task.label}"])
            order = np.argsort(l_locs)
            ax.step(
                l_locs[order],
                np.cumsum(l_probs[order]),
                where="post",
                color=colors[rule],
                lw=1.0,
                label=rule,
            )
        cdf = np.cumsum(probs)
        lo = locs[min(np.searchsorted(cdf, 0.001), locs.size - 1)]
        hi = locs[min(np.searchsorted(cdf, 0.999), locs.size - 1)]
        pad = 0.25 * max(hi - lo, 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(task.label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: learned vs true return distribution of state 0 (CDF), seed {seed}",
        fontsize=9,
    )
    return _save(fig, out / "distributions.png")


def write_all(
    out: Path,
    suite: Suite,
    curves: pd.DataFrame,
    selected: pd.DataFrame,
    learners: pd.DataFrame,
    results: list[RunResult],
) -> list[str]:
    return [
        error_curves(out, suite, curves, selected),
        sensitivity(out, suite, learners, selected),
        distributions(out, suite, selected, results),
    ]
