"""The atlas's figures (matplotlib, Agg): per rule and gamma, the phase diagram of log S over
tail weight x noise-to-signal with each call's significance marked and the S = 1 contour
where the points span a plane; and S against m for tabular QTD with the asymptotic
speed-ups S_inf (Rowland et al. 2023, arXiv:2301.04462; SCIENCE.md section 10) marked on
the bandit cells.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from td_jax.engine.store import save_figure  # noqa: E402

MARKERS = {
    "faster": ("^", "significantly faster"),
    "slower": ("v", "significantly slower"),
    "": ("o", "not called"),
    "untested": ("X", "not tested"),
}
LIMIT = np.log(4.0)  # the colour scale's half-range of log S
TAIL_GAUSSIAN = 0.0  # 1/df of the Gaussian limit (and of laws with every moment)


def _call(row: pd.Series) -> str:
    if row["status"] != "tested":
        return "untested"
    return row["verdict"] if row["verdict"] in ("faster", "slower") else ""


def _contour(ax, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """The S = 1 contour (tricontour of log S at 0) where the finite points span a plane
    and log S changes sign."""
    ok = np.isfinite(z) & np.isfinite(x) & np.isfinite(y)
    x, y, z = x[ok], y[ok], z[ok]
    if len(z) < 3 or not (z.min() < 0 < z.max()):
        return
    if np.linalg.matrix_rank(np.column_stack([x - x.mean(), y - y.mean()])) < 2:
        return
    try:
        ax.tricontour(x, y, z, levels=[0.0], colors="k", linewidths=1.0)
    except (ValueError, RuntimeError):  # a degenerate triangulation: no contour
        return


def phase_panel(ax, sub: pd.DataFrame, title: str):
    """One panel: log S (colour) over 1/df x log10 noise-to-signal, marker by call."""
    x = sub["inv_df"].astype(float).fillna(TAIL_GAUSSIAN).to_numpy()
    y = np.log10(sub["noise_to_signal"].astype(float).clip(lower=1e-6)).to_numpy()
    z = sub["log_s"].astype(float).to_numpy()
    calls = sub.apply(_call, axis=1).to_numpy()
    sc = None
    for call, (marker, label) in MARKERS.items():
        k = calls == call
        if k.any():
            sc = ax.scatter(
                x[k],
                y[k],
                c=np.nan_to_num(z[k], nan=0.0),
                cmap="coolwarm_r",
                vmin=-LIMIT,
                vmax=LIMIT,
                marker=marker,
                s=60,
                edgecolors="k",
                linewidths=0.5,
                label=label,
            )
    _contour(ax, x, y, z)
    ax.set_xlabel("tail weight 1/df (0: Gaussian or every moment finite)", fontsize=7)
    ax.set_ylabel("log10 noise-to-signal", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
    return sc


def phase_figures(out: Path, frame: pd.DataFrame) -> list[str]:
    """One figure per gamma, one panel per rule tested against the baseline."""
    files = []
    rows = frame[frame["family"].isin(["student_t", "gaussian"])]  # the tail axis
    for gamma, g in rows.groupby("gamma"):
        rules = list(dict.fromkeys(g["rule"]))
        fig, axes = plt.subplots(1, len(rules), figsize=(3.6 * len(rules), 3.2), squeeze=False)
        sc = None
        for ax, rule in zip(axes.flat, rules, strict=True):
            sc = phase_panel(ax, g[g["rule"] == rule], f"{rule}, gamma = {gamma:g}") or sc
        if sc is not None:
            fig.colorbar(sc, ax=list(axes.flat), label="log S (S = N_baseline / N_rule)")
        fig.suptitle(
            f"Atlas: log S over tail weight x noise-to-signal (gamma = {gamma:g})", fontsize=9
        )
        name = f"atlas_phase_gamma{gamma:g}.png"
        files.append(save_figure(fig, out / name, tight=False))
    return files


def m_figure(out: Path, frame: pd.DataFrame, qtd_like: tuple[str, ...]) -> list[str]:
    """S (with its interval) against m for tabular QTD, one line per task; S_inf (shared:
    diamond, per quantile: star) on the bandit cells."""
    sub = frame[frame["rule_name"].isin(qtd_like) & frame["m"].notna()]
    if not len(sub):
        return []
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for task, g in sub.sort_values("m").groupby("task"):
        s = g["speedup"].astype(float).to_numpy()
        err = np.abs(np.stack([s - g["s_low"].astype(float), g["s_high"].astype(float) - s]))
        line = ax.errorbar(
            g["m"], s, yerr=np.nan_to_num(err), marker="o", ms=4, lw=1, capsize=2, label=task
        )
        color = line[0].get_color()
        for col, marker in (("S_inf_shared", "D"), ("S_inf_per_quantile", "*")):
            v = g[col].astype(float)
            ok = np.isfinite(v) & (v > 0)
            ax.scatter(g["m"][ok], v[ok], marker=marker, facecolors="none", edgecolors=color)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("m (quantiles)")
    ax.set_ylabel("S over the band")
    ax.set_title(
        "QTD: S against m (diamond: S_inf shared step, star: per-quantile gain)", fontsize=8
    )
    ax.legend(fontsize=5, ncol=2)
    return [save_figure(fig, out / "atlas_s_vs_m.png")]


def write_all(out: Path, frame: pd.DataFrame, qtd_like: tuple[str, ...] = ("qtd",)) -> list[str]:
    """Every atlas figure into ``out``; returns their file names."""
    return phase_figures(out, frame) + m_figure(out, frame, qtd_like)
