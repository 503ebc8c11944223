"""Dabney et al. (2020)'s falsifiable test, run on simulated recordings.

Dabney, Kurth-Nelson, Uchida, ..., Botvinick, "A distributional code for value in
dopamine-based reinforcement learning", Nature 577:671-675 (2020),
https://doi.org/10.1038/s41586-019-1924-6, Fig. 4: across recorded dopamine cells, the
asymmetry of a cell's responses to positive and negative prediction errors,
tau = alpha+ / (alpha+ + alpha-), correlates positively with its reversal point, the two
estimated from independent partitions of the trials so that shared noise cannot make the
correlation.

In the model that relation holds by construction (a cell's reversal point is its
tau-expectile; ``dabney2020`` checks that as a model check). What can fail is the
measurement: whether the relation can be read off a finite session of noisy responses with
the paper's kind of estimator. This module simulates such sessions and runs that test:

* cell i has rates (alpha+_i, alpha-_i) and a fixed reversal point V_i; on a trial with
  reward r its response is alpha+_i (r - V_i) if r > V_i else alpha-_i (r - V_i), in units
  of the population's noiseless response (root mean square over cells and trials), plus
  Gaussian noise of standard deviation ``noise`` in those units;
* a session is ``trials`` trials per cell, magnitudes drawn from the task's frequencies;
* from the responses alone, each half of the session gets a continuous two-piece linear fit
  with its kink on the zero crossing (``fit_kink``): the kink is the reversal point, the
  slopes above and below it estimate alpha+ and alpha-;
* the test: Spearman's rho across cells between the asymmetry estimated from the second
  half and the reversal point estimated from the first, with a 95% interval (Fisher z,
  Bonett and Wright's variance for Spearman's rho, Psychometrika 65:23-28, 2000); the claim
  is reproduced in an experiment when the interval lies above 0.

Two controls. ``shuffled``: the same rates with the reversal points permuted across cells
(a fresh permutation per experiment), a population in which asymmetry says nothing about
the reversal point; the share of its experiments called reproduced is the test's
false-positive rate (nominal 2.5%, one side of a 95% interval). ``same trials``: both
estimates from one fit to the whole session, the analysis the paper's split avoids.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats

from td_jax.reproductions import _common as common
from td_jax.rewards.exact import Atoms

POPULATIONS = ("model", "shuffled")
ESTIMATES = ("split halves", "same trials")


@dataclasses.dataclass(frozen=True)
class RecordingConfig:
    """The simulated recordings: noise levels, session lengths, replicate experiments."""

    noise_levels: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # x response unit
    trials: tuple[int, ...] = (100, 200, 400)  # per cell and session
    headline_trials: int = 200  # the session length the verdict calls the claim at
    experiments: int = 200  # independent sessions of the whole population per setting
    example_noise: tuple[float, ...] = (0.5, 2.0, 8.0)  # shown in the figure's scatter
    seed: int = 4  # numpy seed of trials, noise and permutations
    grid: int = 32  # kink positions tried per gap between neighbouring magnitudes
    refinements: int = 3  # rounds of 16 positions around the best, each 8x finer
    level: float = 0.95  # of each experiment's interval for rho
    power: float = 0.8  # reproduced at a noise level: interval above 0 in this share

    def __post_init__(self) -> None:
        trials, noise = tuple(self.trials), tuple(self.noise_levels)
        checks = (
            ("trials", trials, all(int(n) == n >= 8 and n % 2 == 0 for n in trials),
             "even integers >= 8"),
            ("headline_trials", self.headline_trials, self.headline_trials in trials,
             f"one of trials {trials}"),
            ("noise_levels", noise, all(x >= 0 for x in noise), "numbers >= 0"),
            ("example_noise", self.example_noise, set(self.example_noise) <= set(noise),
             f"among noise_levels {noise}"),
            ("experiments", self.experiments, self.experiments >= 1, "an integer >= 1"),
            ("grid", self.grid, self.grid >= 2, "an integer >= 2"),
            ("refinements", self.refinements, self.refinements >= 0, "an integer >= 0"),
            ("level", self.level, 0 < self.level < 1, "in (0, 1)"),
            ("power", self.power, 0 < self.power <= 1, "in (0, 1]"),
        )  # fmt: skip
        for name, value, ok, allowed in checks:
            if not ok:
                raise ValueError(f"recordings.{name} must be {allowed}, got {value!r}")

    @classmethod
    def quick(cls) -> RecordingConfig:
        return cls(trials=(200,), experiments=40)


class Cells(NamedTuple):
    alpha_plus: np.ndarray  # f64[cells]
    alpha_minus: np.ndarray  # f64[cells]
    reversal: np.ndarray  # f64[cells], the cell's prediction V_i

    @property
    def tau(self) -> np.ndarray:
        return self.alpha_plus / (self.alpha_plus + self.alpha_minus)


class Kink(NamedTuple):
    """A two-piece linear fit per cell (any leading shape)."""

    reversal: np.ndarray  # the kink: where the fitted response crosses zero
    alpha_plus: np.ndarray  # slope above the kink (nan: no trials above)
    alpha_minus: np.ndarray  # slope below it

    @property
    def tau(self) -> np.ndarray:
        total = self.alpha_plus + self.alpha_minus
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, self.alpha_plus / total, np.nan)


# -- simulated recordings -------------------------------------------------------------------


def response_unit(cells: Cells, law: Atoms) -> float:
    """Root mean square of the noiseless responses over cells and the task's trials."""
    delta = law.locs[None, :] - cells.reversal[:, None]
    rate = np.where(delta > 0, cells.alpha_plus[:, None], cells.alpha_minus[:, None])
    return float(np.sqrt(np.mean((rate * delta) ** 2 @ law.probs)))


def draw_sessions(
    law: Atoms, shape: tuple[int, ...], trials: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's magnitude index (drawn from the task's frequencies) and standard normal
    noise, both of shape ``shape + (trials,)``."""
    index = rng.choice(law.locs.size, size=(*shape, trials), p=law.probs)
    return index, rng.standard_normal((*shape, trials))


def responses(
    cells: Cells, law: Atoms, index: np.ndarray, eps: np.ndarray, noise: float, unit: float
) -> np.ndarray:
    """The cells' asymmetrically scaled prediction errors plus noise (Dabney 2020, Fig. 1:
    alpha+ (r - V) above the reversal point, alpha- (r - V) below), in response units.
    ``cells.reversal`` may carry leading axes (one population per experiment)."""
    delta = law.locs[index] - cells.reversal[..., None]
    rate = np.where(delta > 0, cells.alpha_plus[:, None], cells.alpha_minus[:, None])
    return rate * delta / unit + noise * eps


def tally(index: np.ndarray, y: np.ndarray, num_magnitudes: int) -> tuple[np.ndarray, ...]:
    """Per cell and magnitude: the number of trials and the sum of their responses."""
    lead, cells = index.shape[:-1], int(np.prod(index.shape[:-1]))
    flat = (np.arange(cells)[:, None] * num_magnitudes + index.reshape(cells, -1)).ravel()
    counts = np.bincount(flat, minlength=cells * num_magnitudes)
    sums = np.bincount(flat, weights=y.ravel(), minlength=cells * num_magnitudes)
    return counts.reshape(*lead, -1).astype(np.float64), sums.reshape(*lead, -1)


# -- estimates from responses ---------------------------------------------------------------


def _sides(counts: np.ndarray, sums: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sufficient statistics (trials, sum of m, of m^2, of y, of m y) of the trials at the
    magnitudes below (k <= b) and above (k > b) each gap b between neighbouring magnitudes:
    two arrays of shape (..., 5, gaps)."""
    stats = np.stack([counts, counts * m, counts * m**2, sums, sums * m], axis=-2)
    below = np.cumsum(stats, axis=-1)[..., :-1]
    return below, stats.sum(axis=-1, keepdims=True) - below


def _gain(side: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The sum of squares explained on one side by the least-squares slope through (c, 0)
    held >= 0: (sum w (m - c) y)_+^2 / sum w (m - c)^2. side: (..., 5, gaps); c: (...,
    gaps, points). 0 where the side has no trials."""
    n, s1, s2, t0, t1 = (side[..., i, :, None] for i in range(5))
    num = np.maximum(t1 - c * t0, 0.0)
    den = s2 + c * (c * n - 2.0 * s1)  # sum w (m - c)^2, expanded
    return num * num / np.maximum(den, 1e-9 * s2 + 1e-300)


def _slope(side: np.ndarray, c: np.ndarray) -> np.ndarray:
    """That slope, sum w (m - c) y / sum w (m - c)^2 held >= 0; nan with no trials.
    side: (..., 5); c: (...)."""
    n, s1, s2, t0, t1 = np.moveaxis(side, -1, 0)
    den = s2 + c * (c * n - 2.0 * s1)
    ok = den > 1e-9 * s2
    return np.where(ok, np.maximum(t1 - c * t0, 0.0) / np.where(ok, den, 1.0), np.nan)


def fit_kink(
    counts: np.ndarray, sums: np.ndarray, magnitudes: np.ndarray, grid: int = 32,
    refinements: int = 3, points: int = 16,
) -> Kink:  # fmt: skip
    """Per cell, the continuous two-piece linear response a+ (r - c)_+ - a- (c - r)_+ that
    fits its trials best in least squares (a+, a- >= 0), from per-magnitude trial counts and
    response sums (..., K): the reversal point c (Dabney 2020: where the response changes
    sign) and the slopes a+, a- (the asymmetric scaling of Fig. 4; tau = a+ / (a+ + a-)).

    c is searched between the smallest and largest magnitude: ``grid`` points in every gap
    between neighbouring magnitudes, then ``refinements`` rounds of ``points`` points
    spanning one step either side of the best (each round shrinks the step
    ``points / 2``-fold); the slopes are exact given c.
    """
    m = np.asarray(magnitudes, np.float64)
    below, above = _sides(counts, sums, m)
    u = (np.arange(grid) + 0.5) / grid  # position inside a gap, never on a magnitude
    c = m[:-1, None] + np.diff(m)[:, None] * u
    gain = _gain(below, c) + _gain(above, c)
    best = gain.reshape(*gain.shape[:-2], -1).argmax(axis=-1)
    gap, u0 = best // grid, u[best % grid]
    below, above = (np.take_along_axis(s, gap[..., None, None], axis=-1) for s in (below, above))
    lo, width = m[:-1][gap][..., None, None], np.diff(m)[gap][..., None, None]
    step, v = 1.0 / grid, (np.arange(points) + 0.5) / points * 2.0 - 1.0
    for _ in range(refinements):
        cand = np.concatenate([u0[..., None], u0[..., None] + step * v], axis=-1)
        cand = np.clip(cand, 1e-9, 1.0 - 1e-9)[..., None, :]
        gain = _gain(below, lo + width * cand) + _gain(above, lo + width * cand)
        u0 = np.take_along_axis(cand[..., 0, :], gain.argmax(axis=-1), axis=-1)[..., 0]
        step *= 2.0 / points
    c = (lo + width * u0[..., None, None])[..., 0, 0]
    return Kink(c, _slope(above[..., 0], c), _slope(below[..., 0], c))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho along the last axis over the pairs where both are finite (ties get
    average ranks), and the number of those pairs."""
    ok = np.isfinite(x) & np.isfinite(y)
    rx, ry = (
        scipy.stats.rankdata(np.where(ok, v, np.nan), axis=-1, nan_policy="omit") for v in (x, y)
    )
    rx, ry = (r - np.nanmean(r, axis=-1, keepdims=True) for r in (rx, ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nansum(rx * ry, -1) / np.sqrt(np.nansum(rx**2, -1) * np.nansum(ry**2, -1))
    return rho, ok.sum(axis=-1)


def rho_interval(rho: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval for Spearman's rho: Fisher z with Bonett and Wright's (Psychometrika 65:23,
    2000) variance (1 + rho^2 / 2) / (n - 3); nan for n <= 3."""
    z = np.arctanh(np.clip(rho, -1 + 1e-12, 1 - 1e-12))
    n = np.asarray(n, np.float64)
    half = scipy.stats.norm.ppf(0.5 + level / 2) * np.sqrt(
        (1 + rho**2 / 2) / np.where(n > 3, n - 3, np.nan)
    )
    return np.tanh(z - half), np.tanh(z + half)


# -- the experiments ------------------------------------------------------------------------


class Estimates(NamedTuple):
    reversal: np.ndarray  # f64[experiments, cells], estimated
    tau: np.ndarray  # f64[experiments, cells], estimated (split halves: from the other half)
    true_reversal: np.ndarray  # f64[experiments, cells]


def estimate(
    cells: Cells, law: Atoms, draws: tuple[np.ndarray, np.ndarray], noise: float, unit: float,
    config: RecordingConfig,
) -> dict[str, Estimates]:  # fmt: skip
    """Both analyses of one set of sessions: reversal point from the first half of each
    cell's trials and asymmetry from the second (the trials are i.i.d., so this is a random
    partition), and both from one fit to all trials."""
    index, eps = draws
    y = responses(cells, law, index, eps, noise, unit)
    half = index.shape[-1] // 2

    def fit(part: slice) -> Kink:
        counts, sums = tally(index[..., part], y[..., part], law.locs.size)
        return fit_kink(counts, sums, law.locs, config.grid, config.refinements)

    first, second, whole = fit(slice(0, half)), fit(slice(half, None)), fit(slice(None))
    truth = np.broadcast_to(cells.reversal, y.shape[:-1])
    return {
        "split halves": Estimates(first.reversal, second.tau, truth),
        "same trials": Estimates(whole.reversal, whole.tau, truth),
    }


def _row(est: Estimates, tau: np.ndarray, level: float) -> dict:
    """Over all experiments: the share whose interval lies above 0, rho's spread and the
    estimates' errors; and a typical experiment's rho and interval (the experiment whose
    rho is the median, the lower one of an even count)."""
    rho, n = spearman(est.tau, est.reversal)
    low, high = rho_interval(rho, n, level)
    tau = np.broadcast_to(tau, est.tau.shape)
    k = int(np.argsort(np.nan_to_num(rho, nan=-np.inf), kind="stable")[(rho.size - 1) // 2])
    return {
        "share_above_zero": float(np.mean(low > 0)), "median_spearman": np.nanmedian(rho),
        "spearman_q05": np.nanquantile(rho, 0.05), "spearman_q95": np.nanquantile(rho, 0.95),
        "true_spearman": np.nanmedian(spearman(tau, est.true_reversal)[0]),
        "median_abs_reversal_error": np.nanmedian(np.abs(est.reversal - est.true_reversal)),
        "median_abs_tau_error": np.nanmedian(np.abs(est.tau - tau)),
        "typical_experiment": k, "typical_cells": int(n[k]), "typical_spearman": rho[k],
        "typical_low": low[k], "typical_high": high[k], "typical_above_zero": bool(low[k] > 0),
    }  # fmt: skip


def recordings(
    cells: Cells, law: Atoms, config: RecordingConfig
) -> tuple[pd.DataFrame, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """Every (population, analysis, session length, noise level): one row of ``_row``.
    Also the figure's examples: the typical experiment's (reversal point, asymmetry)
    estimates of the model population, split halves, headline session length, at each
    ``example_noise``.

    Sessions of the same length share their magnitudes and standard normal draws across
    noise levels and populations (common random numbers: the comparisons are paired)."""
    unit = response_unit(cells, law)
    rng = np.random.default_rng(config.seed)
    order = np.tile(np.arange(cells.reversal.size), (config.experiments, 1))
    shuffled = cells._replace(reversal=cells.reversal[rng.permuted(order, axis=1)])
    populations = {"model": cells, "shuffled": shuffled}
    rows, examples = [], {}
    for trials in config.trials:
        draws = draw_sessions(
            law, order.shape, trials, np.random.default_rng([config.seed, trials])
        )
        for noise in config.noise_levels:
            for pop, c in populations.items():
                for analysis, est in estimate(c, law, draws, noise, unit, config).items():
                    row = {"population": pop, "estimate": analysis, "trials": trials}
                    rows.append(row | {"noise": noise} | _row(est, cells.tau, config.level))
                    if (pop, analysis, trials) == ("model", "split halves", config.headline_trials):
                        k = rows[-1]["typical_experiment"]
                        examples[noise] = (est.reversal[k], est.tau[k])
    table = pd.DataFrame(rows).assign(response_unit=unit)
    return table, {s: examples[s] for s in config.example_noise}


# -- report ---------------------------------------------------------------------------------


def _select(table: pd.DataFrame, **equal: object) -> pd.DataFrame:
    keep = np.ones(len(table), bool)
    for column, value in equal.items():
        keep &= (table[column] == value).to_numpy()
    return table[keep]


def calls(config: RecordingConfig, table: pd.DataFrame) -> pd.DataFrame:
    """Per noise level at the headline session length, split halves: the model's share of
    experiments with the interval above 0 (its power), the call (share >= ``power``), and
    the shuffled population's share (the false-positive rate)."""
    head = _select(table, trials=config.headline_trials, estimate="split halves")
    share = head.pivot(index="noise", columns="population", values="share_above_zero")
    model = head[head["population"] == "model"].set_index("noise")
    return pd.DataFrame({
        "noise": share.index, "power": share["model"].to_numpy(),
        "reproduced": (share["model"] >= config.power).to_numpy(),
        "false_positive_rate": share["shuffled"].to_numpy(),
        "median_spearman": model["median_spearman"].to_numpy(),
        "typical_spearman": model["typical_spearman"].to_numpy(),
        "typical_low": model["typical_low"].to_numpy(),
        "typical_high": model["typical_high"].to_numpy(),
    })  # fmt: skip


def claim_line(config: RecordingConfig, table: pd.DataFrame) -> str:
    """The verdict's bullet for the paper's test on simulated recordings."""
    c = calls(config, table)
    same = _select(
        table, trials=config.headline_trials, estimate="same trials", population="shuffled"
    )
    yes, no = c.loc[c["reproduced"], "noise"], c.loc[~c["reproduced"], "noise"]
    levels = " / ".join(f"{x:g}" for x in c["noise"])
    mark = (f"reproduced at noise {', '.join(f'{x:g}' for x in yes) or 'none'}; "
            f"NOT reproduced at {', '.join(f'{x:g}' for x in no) or 'none'}")  # fmt: skip
    return (
        f"- **(a') Asymmetry predicts reversal point, from {config.headline_trials} noisy "
        f"trials per cell (the paper's Fig. 4 test; can fail): {mark}** (noise in response "
        f"units; reproduced = the 95% interval for Spearman's rho lies above 0 in >= "
        f"{config.power:.0%} of {config.experiments} simulated experiments). Share above 0 at "
        f"noise {levels}: "
        + " / ".join(f"{x:.0%}" for x in c["power"])
        + "; with the reversal points shuffled across cells (no relation): "
        + " / ".join(f"{x:.1%}" for x in c["false_positive_rate"])
        + f" (nominal {(1 - config.level) / 2:.1%}); estimating both from the same trials "
        f"instead of disjoint halves, the shuffled population passes in up to "
        f"{same['share_above_zero'].max():.0%}."
    )


def section(rc: RecordingConfig, table: pd.DataFrame, cells: str) -> list[str]:
    """The verdict's section: the method, the power per session length, the table.
    ``cells`` says where the cells' rates and reversal points come from."""
    unit = table["response_unit"].iloc[0]
    head = table[table["trials"] == rc.headline_trials].drop(columns=["trials", "response_unit"])
    model = table[(table["population"] == "model") & (table["estimate"] == "split halves")]
    power = model.pivot(index="noise", columns="trials", values="share_above_zero")
    power.columns = [f"{n} trials" for n in power.columns]
    return [
        "## (a') Asymmetry vs reversal point on simulated recordings (`recordings.csv`)", "",
        f"Cells: {cells}. Response to reward r: alpha+/-_i (r - V_i) / u plus noise * "
        f"N(0, 1), with u = {unit:.3g} the root mean square of the noiseless responses over "
        "cells and trials, so noise is in units of a typical response. A session: n trials "
        "per cell, magnitudes drawn from the task's frequencies; "
        f"{rc.experiments} sessions (experiments) per setting. Per cell, a continuous "
        "two-piece linear fit (kink on the zero crossing, slopes >= 0) to each half of its "
        "trials: the reversal point from the first half, tau = a+ / (a+ + a-) from the "
        f"second. Test: Spearman's rho across cells with a {rc.level:.0%} interval (Fisher "
        "z, Bonett-Wright variance); reproduced at a noise level when the interval lies "
        f"above 0 in >= {rc.power:.0%} of experiments. Controls: `shuffled` (reversal points "
        "permuted across cells, afresh each experiment: no relation to find) and `same "
        "trials` (both estimates from one fit to all trials). `typical_*`: the experiment "
        "whose rho is the median, alone.", "",
        "Share of experiments whose interval lies above 0 (model, split halves):", "",
        common.markdown_table(power.reset_index()), "",
        f"All analyses at {rc.headline_trials} trials per cell:", "",
        common.markdown_table(head), "",
    ]  # fmt: skip


def _share_panel(ax: plt.Axes, config: RecordingConfig, table: pd.DataFrame, cells: int) -> None:
    """Share of experiments whose interval lies above 0, against noise: the model at every
    session length, and the shuffled population analysed both ways."""
    x = {s: i for i, s in enumerate(config.noise_levels)}
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.8, len(config.trials)))
    lines = [
        ("model", "split halves", n, "-", c) for n, c in zip(config.trials, colors, strict=True)
    ]
    n = config.headline_trials
    lines += [
        ("shuffled", "split halves", n, ":", "0.4"),
        ("shuffled", "same trials", n, "--", "C3"),
    ]
    for pop, est, trials, style, color in lines:
        g = _select(table, population=pop, estimate=est, trials=trials)
        ax.plot(
            g["noise"].map(x), g["share_above_zero"], style, marker="o", ms=3, color=color,
            label=f"{pop}, {est}, {trials} trials",
        )  # fmt: skip
    ax.axhline(config.power, color="k", lw=0.6)
    ax.axhline((1 - config.level) / 2, color="k", lw=0.6, ls=":")
    ax.set_xticks(list(x.values()), [f"{s:g}" for s in x])
    ax.set(
        xlabel="noise sd (response units)", ylabel="share of experiments with interval > 0",
        title=f"{config.experiments} experiments of {cells} cells per point", ylim=(-0.03, 1.03),
    )  # fmt: skip
    ax.legend(fontsize=6.5)


def figure(
    out: Path, config: RecordingConfig, table: pd.DataFrame, cells: Cells,
    examples: dict[float, tuple[np.ndarray, np.ndarray]],
) -> str:  # fmt: skip
    """The test's power and false-positive rate against noise, and a typical experiment's
    estimates (asymmetry from one half of the trials, reversal point from the other)."""
    fig, (ax, ax_scatter) = plt.subplots(1, 2, figsize=(11, 4.2))
    _share_panel(ax, config, table, cells.tau.size)
    order = np.argsort(cells.tau)
    ax_scatter.plot(cells.reversal[order], cells.tau[order], "k-", lw=1, label="truth")
    head = _select(table, population="model", estimate="split halves")
    head = _select(head, trials=config.headline_trials).set_index("noise")
    for k, (noise, (rev, tau)) in enumerate(examples.items()):
        r = head.loc[noise]
        label = (f"noise {noise:g}: rho {r['typical_spearman']:.2f} "
                 f"[{r['typical_low']:.2f}, {r['typical_high']:.2f}]")  # fmt: skip
        ax_scatter.scatter(rev, tau, s=12, color=f"C{k}", label=label)
    ax_scatter.set(
        xlabel="reversal point, first half (uL)", ylabel="asymmetry, second half",
        title=f"the median experiment, {config.headline_trials} trials per cell",
    )  # fmt: skip
    ax_scatter.legend(fontsize=7)
    fig.suptitle(
        "Dabney 2020 Fig. 4 test on simulated recordings: does asymmetry predict reversal "
        "point across cells?", fontsize=9,
    )  # fmt: skip
    return common.save_figure(fig, out / "recordings.png")
