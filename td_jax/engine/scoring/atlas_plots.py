"""The atlas's figures (matplotlib, Agg): per gamma, the phase diagram of log S over tail
weight x the IQR-based noise-to-signal ratio (``nsr_iqr``: one spread, IQR / 1.349, for
every law), one panel per (environment, rule), each call's significance marked, a pair
without S (not tested, or no band) in grey, and the S = 1 contour through the tested pairs
where they span a plane; and S against m for tabular QTD, both the band estimand and the
S at the finest band eps (the quantity atlas.md's theory table compares), with the
asymptotic speed-ups S_inf (Rowland et al. 2023, arXiv:2301.04462; SCIENCE.md section 10)
marked on the bandit cells where they are finite.
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
NO_S = "lightgrey"  # a pair without S
NSR_LABEL = "log10 noise-to-signal (IQR/1.349 spread over RMS value)"


def _call(row: pd.Series) -> str:
    if row["status"] != "tested":
        return "untested"
    return row["verdict"] if row["verdict"] in ("faster", "slower") else ""


def _contour(ax, x: np.ndarray, y: np.ndarray, z: np.ndarray, tested: np.ndarray) -> None:
    """The S = 1 contour (tricontour of log S at 0) through the tested pairs (never the
    bounds), where they span a plane and log S changes sign."""
    ok = tested & np.isfinite(z) & np.isfinite(x) & np.isfinite(y)
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
    """One panel: log S (colour; grey where there is none) over 1/df x log10 of the
    IQR-based noise-to-signal ratio, marker by call."""
    x = sub["inv_df"].astype(float).fillna(TAIL_GAUSSIAN).to_numpy()
    y = np.log10(sub["nsr_iqr"].astype(float).clip(lower=1e-6)).to_numpy()
    z = sub["log_s"].astype(float).to_numpy()
    calls = sub.apply(_call, axis=1).to_numpy()
    sc = None
    style = {"s": 60, "edgecolors": "k", "linewidths": 0.5}
    for call, (marker, label) in MARKERS.items():
        k = (calls == call) & np.isfinite(z)
        if k.any():
            sc = ax.scatter(x[k], y[k], c=z[k], cmap="coolwarm_r", vmin=-LIMIT, vmax=LIMIT,
                            marker=marker, label=label, **style)  # fmt: skip
        k = (calls == call) & ~np.isfinite(z)
        if k.any():
            ax.scatter(x[k], y[k], c=NO_S, marker=marker, label=f"{label}, no S", **style)
    _contour(ax, x, y, z, (sub["status"] == "tested").to_numpy())
    ax.set_xlabel("tail weight 1/df (0: Gaussian or light tail)", fontsize=7)
    ax.set_ylabel(NSR_LABEL, fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=5, loc="best")
    return sc


def phase_figures(out: Path, frame: pd.DataFrame) -> list[str]:
    """One figure per gamma: one panel per (environment, rule) tested against the
    baseline (chain and Garnet at the same gamma are never pooled)."""
    files = []
    rows = frame[frame["family"].isin(["student_t", "gaussian"])]  # the tail axis
    for gamma, g in rows.groupby("gamma"):
        rules, env_names = list(dict.fromkeys(g["rule"])), list(dict.fromkeys(g["env"]))
        fig, axes = plt.subplots(
            len(env_names), len(rules), figsize=(3.8 * len(rules), 3.4 * len(env_names)),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        sc = None
        for i, env in enumerate(env_names):
            for j, rule in enumerate(rules):
                sub = g[(g["rule"] == rule) & (g["env"] == env)]
                title = f"{rule} on {env}, gamma = {gamma:g}"
                sc = phase_panel(axes[i, j], sub, title) if len(sub) else sc
                if not len(sub):
                    axes[i, j].set_axis_off()
        if sc is not None:
            fig.colorbar(sc, ax=axes, label="log S (S = N_baseline / N_rule); grey: no S")
        fig.suptitle(f"Atlas: log S over tail weight x noise-to-signal (gamma = {gamma:g})",
                     fontsize=9)  # fmt: skip
        files.append(save_figure(fig, out / f"atlas_phase_gamma{gamma:g}.png", tight=False))
    return files


def _errorbar(ax, m, s, lo, hi, **kw):
    s = np.asarray(s, float)
    err = np.abs(np.stack([s - np.asarray(lo, float), np.asarray(hi, float) - s]))
    return ax.errorbar(m, s, yerr=np.nan_to_num(err), capsize=2, **kw)


def m_figure(out: Path, frame: pd.DataFrame, qtd_like: tuple[str, ...]) -> list[str]:
    """Against m for tabular QTD, one colour per task: S at the finest band eps (solid,
    circles: the theory table's quantity) and over the band (dotted, squares), with their
    intervals; S_inf (shared: diamond, per quantile: star) on the bandit cells where it is
    finite (none for infinite variance, Student t with df <= 2, or atoms)."""
    sub = frame[frame["rule_name"].isin(qtd_like) & frame["m"].notna()]
    if not len(sub):
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for task, g in sub.sort_values("m").groupby("task"):
        line = _errorbar(ax, g["m"], g["s_finest"], g["s_finest_low"], g["s_finest_high"],
                         marker="o", ms=4, lw=1, label=task)  # fmt: skip
        color = line[0].get_color()
        _errorbar(ax, g["m"], g["speedup"], g["s_low"], g["s_high"], marker="s", ms=3,
                  lw=0.8, ls=":", color=color, alpha=0.6)  # fmt: skip
        for col, marker in (("S_inf_shared", "D"), ("S_inf_per_quantile", "*")):
            v = g[col].astype(float)
            ok = np.isfinite(v) & (v > 0)
            ax.scatter(g["m"][ok], v[ok], marker=marker, facecolors="none", edgecolors=color)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("m (quantiles)")
    ax.set_ylabel("S: finest band eps (solid) and band estimand (dotted)", fontsize=8)
    ax.set_title(
        "QTD: S against m (diamond: S_inf shared step, star: per-quantile gain;\n"
        "no mark: S_inf infinite (df <= 2) or undefined (atoms), or not a bandit)",
        fontsize=7,
    )
    ax.legend(fontsize=5, ncol=2)
    return [save_figure(fig, out / "atlas_s_vs_m.png")]


ENV_MARKERS = {"bandit": "o", "chain": "s", "random_mrp": "D"}


def summary_figure(out: Path, frame: pd.DataFrame, qtd_like: tuple[str, ...]) -> list[str]:
    """The atlas in one panel (the README's figure): S of every tested pair of tabular QTD
    (every m) against the noise-to-signal ratio, coloured by tail weight (1/df), its marker
    the environment, filled where the call is significant, with its 95% interval."""
    sub = frame[frame["rule_name"].isin(qtd_like) & (frame["status"] == "tested")]
    sub = sub[np.isfinite(sub["speedup"].astype(float)) & (sub["nsr_iqr"].astype(float) > 0)]
    if not len(sub):
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cmap = plt.get_cmap("viridis")
    tail = sub["inv_df"].astype(float).fillna(0.0)
    norm = matplotlib.colors.Normalize(0.0, max(float(tail.max()), 1e-9))
    for env, marker in ENV_MARKERS.items():
        part = sub[sub["env"] == env]
        if not len(part):
            continue
        x = np.log10(part["nsr_iqr"].astype(float).to_numpy())
        s = part["speedup"].astype(float).to_numpy()
        lo, hi = part["s_low"].astype(float).to_numpy(), part["s_high"].astype(float).to_numpy()
        colours = cmap(norm(tail[part.index].to_numpy()))
        ax.errorbar(x, s, yerr=np.nan_to_num([s - lo, hi - s]), fmt="none", ecolor="0.75",
                    lw=0.6, zorder=1)  # fmt: skip
        called = part["verdict"].isin(["faster", "slower"]).to_numpy()
        ax.scatter(x[called], s[called], c=colours[called], marker=marker, s=30, zorder=3,
                   label=f"{env} (called)")  # fmt: skip
        ax.scatter(x[~called], s[~called], facecolors="none", edgecolors=colours[~called],
                   marker=marker, s=30, zorder=2, label=f"{env} (not called)")  # fmt: skip
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("log10 noise-to-signal (IQR/1.349 spread over RMS value)")
    ax.set_ylabel("S = N_TD / N_QTD (band estimand)")
    ax.set_title("Tabular QTD (m = 8, 32, 128) against TD: S > 1 is faster")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label="tail weight 1/df (0: Gaussian or light tail)")  # fmt: skip
    ax.legend(fontsize=7, loc="lower right")
    return [save_figure(fig, out / "atlas_summary.png")]


def write_all(out: Path, frame: pd.DataFrame, qtd_like: tuple[str, ...] = ("qtd",)) -> list[str]:
    """Every atlas figure into ``out``; returns their file names."""
    return (summary_figure(out, frame, qtd_like) + phase_figures(out, frame)
            + m_figure(out, frame, qtd_like))  # fmt: skip


if __name__ == "__main__":  # re-plots a results directory's atlas figures from its atlas.csv
    import sys

    from td_jax.engine.scoring.atlas_boundary import QTD_LIKE

    where = Path(sys.argv[1] if len(sys.argv) > 1 else "results/atlas")
    table = pd.read_csv(where / "atlas.csv", keep_default_na=False, na_values=[""])
    print("wrote", ", ".join(write_all(where, table, QTD_LIKE)))
