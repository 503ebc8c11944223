"""Figures of a suite: S(eps) and N(eps) curves, error curves at the tuned configurations,
step-size sensitivity."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from td_jax.engine.specs import Suite  # noqa: E402
from td_jax.engine.store import save_figure  # noqa: E402


def _grid(n: int):
    cols = min(7, n)
    rows = math.ceil(n / cols)
    width, height = 2.9 * cols, 2.4 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    # A fixed layout (inches kept for the titles, ticks and the suptitle): tight_layout
    # measured every panel's text and took a third of the report's plotting time.
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.1 / width, bottom=0.35 / height,
                        top=1 - 0.55 / height, wspace=0.32, hspace=0.45)  # fmt: skip
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _colors(rules: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {r: cmap(i % 10) for i, r in enumerate(rules)}


PRIMARY = "visit"


def _log_axes(ax, title: str, x_log: bool = True) -> None:
    """Log scales where the panel has positive finite data (a panel with none, e.g. every
    cell not reached, stays linear and says so)."""
    ys = [np.asarray(line.get_ydata(), float) for line in ax.get_lines()]
    has = any(np.any(np.isfinite(y) & (y > 0)) for y in ys)
    if has:
        ax.set_yscale("log")
        if x_log:
            ax.set_xscale("log")
        # Minor ticks at 2 and 5 only: matplotlib's default eight per decade on every log
        # axis of ~100 panels was half of the figures' drawing time.
        for axis in (ax.yaxis, ax.xaxis) if x_log else (ax.yaxis,):
            axis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    else:
        ax.text(0.5, 0.5, "nothing reached", transform=ax.transAxes, ha="center", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)


def _by_task_rule(frame: pd.DataFrame) -> dict:
    """``{(task, rule): rows}``: one pass over a large frame instead of a filter per panel."""
    return dict(tuple(frame.groupby(["task", "rule"], sort=False)))


def _x(suite: Suite) -> str:
    """The accuracy column the figures use: eps / e0 on relative grids, else eps."""
    return "eps_relative" if getattr(suite, "eps_relative", False) else "epsilon"


def _rules(suite: Suite, present) -> list[str]:
    return [r.label for r in suite.rules if r.label in set(present)]


def _panels(suite: Suite, prim: pd.DataFrame):
    """(figure, axes, the accuracy column, colours by rule, and per task its axis, label
    and each rule's cells sorted by accuracy): the per-task grid of the eps figures."""
    tasks = sorted(prim["task"].unique())
    rules = _rules(suite, prim["rule"])
    x = _x(suite)
    fig, axes = _grid(len(tasks))
    by = _by_task_rule(prim)
    panels = [(ax, task, [(r, by[(task, r)].sort_values(x)) for r in rules if (task, r) in by])
              for ax, task in zip(axes, tasks, strict=False)]  # fmt: skip
    return fig, axes, x, _colors(rules), panels


def speedup_curves(out: Path, suite: Suite, cells: pd.DataFrame) -> str:
    """S(eps) vs eps per task with 95% bands; filled markers: significant; x: floor."""
    prim = cells[(cells["weighting"] == PRIMARY) & (cells["rule"] != cells["baseline"])]
    fig, axes, x, colors, panels = _panels(suite, prim)
    for ax, task, subs in panels:
        for r, sub in subs:
            s = sub["speedup"].clip(1e-2, 1e2)
            ax.plot(sub[x], s, color=colors[r], lw=1.1, label=r)
            ax.fill_between(
                sub[x],
                sub["s_low"].clip(1e-2, 1e2),
                sub["s_high"].clip(1e-2, 1e2),
                color=colors[r],
                alpha=0.15,
                lw=0,
            )
            sig = sub["verdict"].isin(["faster", "slower"])
            ax.plot(sub[x][sig], s[sig], "o", color=colors[r], ms=3)
            floor = sub["floor"].iloc[0] * sub[x].iloc[0] / sub["epsilon"].iloc[0]
            if np.isfinite(floor) and floor >= min(suite.eps_grid) / 3:  # only floors in view
                ax.axvline(floor, color=colors[r], lw=0.6, ls="--")
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        _log_axes(ax, task)
        ax.set_xlim(max(suite.eps_grid) * 1.2, min(suite.eps_grid) / 3)  # coarse to fine
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: speed-up S(eps) = N_{suite.baseline}/N_rule vs accuracy {x} (finer to "
        "the right; 95% bands; dots: significant after BH; dashed: rule's floor)",
        fontsize=9,
    )  # fmt: skip
    return save_figure(fig, out / "speedup.png", tight=False)


def n_curves(out: Path, suite: Suite, cells: pd.DataFrame) -> str:
    """N(eps) vs eps per task, every rule (baseline included), 95% bands."""
    prim = cells[cells["weighting"] == PRIMARY]
    fig, axes, x, colors, panels = _panels(suite, prim)
    for ax, task, subs in panels:
        for r, sub in subs:
            ax.plot(sub[x], sub["n_updates"], color=colors[r], lw=1.1, marker=".",
                    ms=3, label=r)  # fmt: skip
            high = sub["n_high"].where(np.isfinite(sub["n_high"]), sub["horizon"])
            ax.fill_between(sub[x], sub["n_low"], high, color=colors[r], alpha=0.15)
        _log_axes(ax, task)
        ax.set_xlim(max(suite.eps_grid) * 1.2, min(suite.eps_grid) / 1.2)  # coarse to fine
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{suite.name}: N(eps) vs {x}, updates to stay below eps (gaps: not reached)",
                 fontsize=9)  # fmt: skip
    return save_figure(fig, out / "n_eps.png", tight=False)


def error_curves(out: Path, suite: Suite, cells: pd.DataFrame, convergence: pd.DataFrame) -> str:
    """Evaluation mean error vs updates at each rule's configuration for the middle eps."""
    mid = suite.eps_grid[len(suite.eps_grid) // 2]
    prim = cells[(cells["weighting"] == PRIMARY) & np.isclose(cells[_x(suite)], mid)]
    conv = convergence[convergence["weighting"] == PRIMARY]
    tasks = sorted(prim["task"].unique())
    rules = _rules(suite, prim["rule"])
    colors = _colors(rules)
    fig, axes = _grid(len(tasks))
    picks, curves = _by_task_rule(prim), _by_task_rule(conv)
    for ax, task in zip(axes, tasks, strict=False):
        level = mid  # a task where no rule has a selection (or a rule not run on it)
        for r in rules:
            pick = picks.get((task, r))
            if pick is None or not np.isfinite(pick["step_size"].iloc[0]):
                continue
            row = pick.iloc[0]
            sub = curves[(task, r)]
            sub = sub[np.isclose(sub["step_size"], row["step_size"])
                      & (sub["schedule"] == row["schedule"])]  # fmt: skip
            ax.plot(sub["step"], sub["mean_error"], color=colors[r], lw=1.1, label=r)
            level = row["epsilon"]
        ax.axhline(level, color="k", lw=0.6, ls=":")
        _log_axes(ax, task)
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: mean normalised error over evaluation seeds vs updates, each rule at "
        f"its configuration for {_x(suite)} = {mid:g} (dotted: eps)",
        fontsize=9,
    )
    return save_figure(fig, out / "error_curves.png", tight=False)


def sensitivity(out: Path, suite: Suite, sensitivity: pd.DataFrame) -> str:
    """N(eps) on the tuning seeds vs constant step (rule units), for the middle eps."""
    mid = suite.eps_grid[len(suite.eps_grid) // 2]
    keep = (sensitivity["weighting"] == PRIMARY) & np.isclose(sensitivity[_x(suite)], mid)
    sub = sensitivity[keep & (sensitivity["schedule"] == "constant")]
    tasks = sorted(sub["task"].unique())
    rules = _rules(suite, sub["rule"])
    colors = _colors(rules)
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=False):
        for r in rules:
            g = sub[(sub["task"] == task) & (sub["rule"] == r)].sort_values("alpha_units")
            ax.plot(g["alpha_units"], g["n_tuning"], color=colors[r], lw=1.1, marker=".",
                    ms=3, label=r)  # fmt: skip
        _log_axes(ax, task)
    axes[0].legend(fontsize=6)
    fig.suptitle(
        f"{suite.name}: sensitivity, N({_x(suite)} = {mid:g}) on tuning seeds vs constant step in "
        "the rule's units (gaps: not reached)",
        fontsize=9,
    )
    return save_figure(fig, out / "sensitivity.png", tight=False)


def write_all(out: Path, suite: Suite, cells, convergence, sensitivity_frame) -> list[str]:
    return [
        speedup_curves(out, suite, cells),
        n_curves(out, suite, cells),
        error_curves(out, suite, cells, convergence),
        sensitivity(out, suite, sensitivity_frame),
    ]
