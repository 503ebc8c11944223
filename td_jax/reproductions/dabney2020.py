"""Reproduction: Dabney et al. (2020), "A distributional code for value in dopamine-based
reinforcement learning", Nature 577:671-675, https://doi.org/10.1038/s41586-019-1924-6.

Suite ``dabney2020`` (``td-jax bench --suite dabney2020``). A population of model dopamine
cells, each with its own pair of learning rates for positive and negative prediction errors,
learns the reward of one cue (a bandit: gamma = 0, so each cell's reversal point is its
learned statistic of the reward distribution).

Model checks, against exact ground truth. They hold by construction of the model (tau_i is
defined as alpha_plus_i / (alpha_plus_i + alpha_minus_i), the learner's own fixed point), so
they check the implementation and the finite-rate bias, not the paper's hypothesis:

(a) each cell's reversal point against the exact tau_i-expectile (expectile code,
    f(delta) = delta) or tau_i-quantile (quantile code, f = sign) of the variable-magnitude
    reward distribution;
(d) the variable-probability task (reward 1 with probability 0.1, 0.5, 0.9): a cell's
    response to the 50% cue relative to the 10% and 90% cues orders with its asymmetry,
    optimistic cells (tau > 0.5) above the midpoint, pessimistic ones below (Fig. 3).

Tests that can fail:

(a') the paper's test of (a) on recordings (Fig. 4), run on simulated finite sessions of
    noisy responses: asymmetry and reversal point estimated per cell from disjoint halves
    of the trials, their correlation across cells with its interval, at stated noise levels,
    with a population in which the relation is absent as a control
    (``td_jax.reproductions.dabney2020_recordings``);
(b) decoding: a reward distribution imputed from the (tau_i, reversal point) pairs
    (``td_jax.rules.impute_samples``, SCIENCE.md section 4) against a classical single-value
    code (a point mass at the mean learned by TD), in Wasserstein-1 to the true distribution;
(c) a figure of decoded vs true distribution (the paper's Fig. 5 shows the same).

Rates. The paper's public simulation code (as reproduced in public copies of its notebook)
draws ``alpha_plus_i, alpha_minus_i ~ Uniform(0, 1)`` independently per cell and scales
both by a global ``beta = 0.2``; we draw the same (numpy ``default_rng(rate_seed)``) and
make ``beta`` the runner's step size, swept over ``scales`` with 0.2 first. The resulting
tau_i = U1 / (U1 + U2) has density peaked at 0.5 and reaching both ends.

Reversal point. A real cell's reversal point is read from many trials' responses; the
model's prediction under a constant rate keeps fluctuating, so we take its stationary mean:
the mean over ``num_sessions`` independent sessions (seeds) of the prediction after
``num_trials`` trials (the public notebook likewise averages 10 runs). Under a constant rate
that mean carries an O(beta) bias (Jensen's inequality on the piecewise-linear mean update);
the table shows it shrinking with beta.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

import td_jax
from td_jax import envs, rewards, rules
from td_jax.engine import store
from td_jax.engine.scoring import stats
from td_jax.engine.specs import CustomSuite
from td_jax.reproductions import _common as common
from td_jax.reproductions import dabney2020_recordings as recording
from td_jax.rewards.exact import Atoms
from td_jax.runner import wasserstein1
from td_jax.studies import suite_files
from td_jax.types import UpdateRule

NAME = "dabney2020"
CODES = ("dopamine_expectile", "dopamine_quantile")
MAGNITUDE = "magnitude"


@dataclasses.dataclass(frozen=True)
class Config:
    """What the suite runs, read from benchmarks/dabney2020.toml (``settings()``);
    ``quick()`` is the reduced version the tests use.

    Attributes:
      num_cells: cells of the population.
      rate_seed: numpy seed of the population's rates.
      scales: global rate scales beta (0.2 is the paper's).
      num_sessions: independent sessions (seeds) averaged into a reversal point.
      num_trials: trials per session.
      probabilities: the variable-probability task's reward probabilities.
      decode_iterations: impute_samples solves (converged: 50 gives the same).
      level_tolerance: |implied expectile level - tau_i| of a converged expectile cell.
      quantile_slack: quantile cells: levels tau_i +- slack ...
      value_tolerance: ... and this much reward outside that band.
      base_seed: the sessions' first seed.
      recordings: (a'): simulated recordings of the expectile cells at scales[0].
    """

    num_cells: int
    rate_seed: int
    scales: tuple[float, ...]
    num_sessions: int
    num_trials: int
    probabilities: tuple[float, ...]
    decode_iterations: int
    level_tolerance: float
    quantile_slack: float
    value_tolerance: float
    base_seed: int
    recordings: recording.RecordingConfig

    @classmethod
    def quick(cls) -> Config:
        """The smallest scale only: all quantile cells converge within 50,000 trials there."""
        return dataclasses.replace(settings(), scales=(0.02,), num_sessions=16,
                                   recordings=recording.RecordingConfig.quick())  # fmt: skip


SETTINGS = Config  # the dataclass of the file's [settings] (studies.module_files)


def settings() -> Config:
    """The suite's configuration: benchmarks/dabney2020.toml's [settings]."""
    return suite_files.settings(NAME)


def suite(name: str, description: str, config: Config) -> CustomSuite:
    """The suite its study file defines (``td-jax bench --suite dabney2020``)."""
    return CustomSuite(name, description, functools.partial(run, config=config))


def draw_rates(num_cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell (alpha_plus, alpha_minus), independent Uniform(0, 1) as in the paper's code."""
    rng = np.random.default_rng(seed)
    return rng.uniform(size=num_cells), rng.uniform(size=num_cells)


def _readout(state) -> tuple[jax.Array, jax.Array]:
    table = state.table
    return table, jnp.full(table.shape, 1.0 / table.shape[1], table.dtype)


def population(code: str, alpha_plus: np.ndarray, alpha_minus: np.ndarray) -> UpdateRule:
    """The built-in dopamine rule, read out raw: ``distribution`` gives the cells' predictions
    (their reversal points) instead of a decoding, and ``values`` their plain average (the
    runner's value metric is not used here; skipping the decoder keeps compilation short)."""
    rule = rules.make(code, alpha_plus=list(alpha_plus), alpha_minus=list(alpha_minus))
    return rule._replace(distribution=_readout, values=lambda state: state.table.mean(axis=1))


def tasks(config: Config) -> dict[str, Any]:
    out = {MAGNITUDE: envs.make("bandit", reward="dabney_magnitude")}
    for p in config.probabilities:
        out[f"p{p:g}"] = envs.make("bandit", reward={"name": "dabney_probability", "p": p})
    return out


class Simulation(NamedTuple):
    taus: np.ndarray  # f64[cells]
    alpha_plus: np.ndarray
    alpha_minus: np.ndarray
    reversal: dict[str, dict[str, np.ndarray]]  # code -> task -> f32[scale, session, cell]
    td_mean: np.ndarray  # f32[scale, session], TD's learned mean on the magnitude task


def simulate(config: Config, units: common.Units) -> Simulation:
    """Both codes on every task, and a classical TD cell on the magnitude task: one
    ``td_jax.run`` each, every scale and session batched, resumable through ``units``."""
    ap, am = draw_rates(config.num_cells, config.rate_seed)
    task_envs, sessions = tasks(config), list(range(config.num_sessions))
    # The recordings are analysis, not simulation: leaving them out of the key keeps the
    # saved runs valid when only they change.
    key = {k: v for k, v in common.config_dict(config).items() if k != "recordings"}
    reversal = {}
    for code in CODES:
        res = units.get(code, {"config": key, "code": code}, lambda code=code: td_jax.run(
            {code: population(code, ap, am)}, task_envs, config.scales, sessions,
            config.num_trials, seed=config.base_seed, num_checkpoints=4,
            distribution_metric=False, keep_distributions=True, progress=False,
        ))  # fmt: skip
        locs = {t: res.final_distributions[f"{code}/{t}"][0] for t in task_envs}
        reversal[code] = {t: x[:, :, 0, :] for t, x in locs.items()}
    # A classical cell: TD at the population's mean rate, E[alpha] = 0.5, times beta.
    res = units.get("td", {"config": key, "code": "td"}, lambda: td_jax.run(
        {"td": rules.make("td")}, {MAGNITUDE: task_envs[MAGNITUDE]},
        [0.5 * s for s in config.scales], sessions, config.num_trials, seed=config.base_seed,
        num_checkpoints=4, progress=False,
    ))  # fmt: skip
    return Simulation(ap / (ap + am), ap, am, reversal, res.final_values[MAGNITUDE][0, :, :, 0])


# -- analysis -----------------------------------------------------------------------------


def implied_expectile_level(law: Atoms, x: np.ndarray) -> np.ndarray:
    """The level whose expectile is x: E[(x - X)_+] / (E[(x - X)_+] + E[(X - x)_+])."""
    up = law.upper(x)
    low = x - law.mean + up
    return low / (low + up)


def quantile_band_error(law: Atoms, taus: np.ndarray, x: np.ndarray, slack: float) -> np.ndarray:
    """Distance of x from [Q(tau - slack), Q(tau + slack)]: 0 inside the band.

    The slack in level absorbs cells whose tau lies within ``slack`` of a jump of the
    (discrete) CDF: there the quantile drift is proportional to |tau - F| and vanishes.
    """
    lo = law.quantile(np.clip(taus - slack, 0.0, 1.0))
    hi = law.quantile(np.clip(taus + slack, 0.0, 1.0))
    return np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)


def quantile_decode(points: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantile code: each reversal point is an atom weighted by its cell's share of [0, 1]
    (boundaries halfway between neighbouring sorted taus)."""
    order = np.argsort(taus)
    t = taus[order]
    edges = np.concatenate([[0.0], 0.5 * (t[1:] + t[:-1]), [1.0]])
    return points[..., order], np.broadcast_to(np.diff(edges), points.shape)


def _w1(locs, probs, law: Atoms) -> np.ndarray:
    """W1 of (batched) weighted atoms to the true law, with the runner's exact metric."""
    locs = jnp.asarray(locs, jnp.float32)
    probs = jnp.broadcast_to(jnp.asarray(probs, jnp.float32), locs.shape)
    tl, tp = jnp.asarray(law.locs, jnp.float32), jnp.asarray(law.probs, jnp.float32)
    flat_l, flat_p = locs.reshape(-1, locs.shape[-1]), probs.reshape(-1, locs.shape[-1])
    w = jax.vmap(lambda a, b: wasserstein1(a, b, tl, tp))(flat_l, flat_p)
    return np.asarray(w, np.float64).reshape(locs.shape[:-1])


def _impute(points: np.ndarray, taus: np.ndarray, iterations: int) -> np.ndarray:
    flat = jnp.asarray(points.reshape(-1, points.shape[-1]), jnp.float32)
    t = jnp.asarray(taus, jnp.float32)
    solve = jax.jit(jax.vmap(lambda e: rules.impute_samples(e, t, None, iterations)))
    return np.asarray(solve(flat)).reshape(points.shape)


def lbfgs_decode(points: np.ndarray, taus: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Samples matching the expectiles by scipy's L-BFGS on the same objective.

    The paper decoded with scipy's bounded minimisers from random starts; this one runs
    unbounded (no prior on the reward range) to convergence from two starts, the
    expectiles interpolated at N levels and spread x2 about their mean, and ``starts``
    (``impute_samples``' answer), and keeps the lower objective: a reference for how much
    of the decoding error is the fixed-budget jittable solver's.
    """
    order = np.argsort(taus)
    n = taus.size
    grid = (np.arange(n) + 0.5) / n

    def objective(x: np.ndarray, e: np.ndarray) -> tuple[float, np.ndarray]:
        diff = x[None, :] - e[:, None]
        weight = np.where(diff > 0, taus[:, None], 1.0 - taus[:, None])
        res = np.mean(weight * diff, axis=1)
        return float(res @ res), 2.0 * (res @ weight) / n

    out = np.empty(points.shape)
    for k, (e, x1) in enumerate(zip(points.reshape(-1, n), starts.reshape(-1, n), strict=True)):
        x0 = np.interp(grid, taus[order], e[order])
        x0 = e.mean() + 2.0 * (x0 - e.mean())
        sols = [
            scipy.optimize.minimize(
                objective,
                x,
                args=(e,),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-10},
            )
            for x in (x0, np.asarray(x1, np.float64))
        ]
        out.reshape(-1, n)[k] = np.sort(min(sols, key=lambda sol: sol.fun).x)
    return out


def _iqm_ci(x: np.ndarray) -> tuple[float, float, float]:
    point, low, high = stats.iqm_intervals({"x": np.asarray(x, np.float64)[:, None]})["x"]
    return float(point[0]), float(low[0]), float(high[0])


def _frame(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {k: np.broadcast_to(v, np.shape(columns["tau"])) for k, v in columns.items()}
    )


def analyse(config: Config, sim: Simulation) -> dict[str, Any]:
    """Every table of the suite, from a simulation."""
    law = rewards.make("dabney_magnitude").law()
    taus = sim.taus
    exact = {"dopamine_expectile": law.expectile(taus), "dopamine_quantile": law.quantile(taus)}
    reversal, decoding, probability, decoded = [], [], [], {}
    for a, scale in enumerate(config.scales):
        for code in CODES:
            per_session = sim.reversal[code][MAGNITUDE][a].astype(np.float64)
            rp = per_session.mean(axis=0)
            nan = np.full_like(rp, np.nan)
            if code == "dopamine_expectile":
                level, band = implied_expectile_level(law, rp) - taus, nan
                ok = np.abs(level) <= config.level_tolerance
            else:
                level, band = nan, quantile_band_error(law, taus, rp, config.quantile_slack)
                ok = band <= config.value_tolerance
            reversal.append(_frame(
                code=code, scale=scale, cell=np.arange(taus.size), tau=taus,
                alpha_plus=sim.alpha_plus, alpha_minus=sim.alpha_minus, exact=exact[code],
                reversal_point=rp, se=per_session.std(axis=0, ddof=1) / np.sqrt(len(per_session)),
                error=rp - exact[code], level_error=level, band_error=band, within_tolerance=ok,
            ))  # fmt: skip
            # Decoding, from the session-mean reversal points and from each session alone.
            points = np.concatenate([rp[None], per_session])
            if code == "dopamine_expectile":
                imputed = _impute(points, taus, config.decode_iterations)
                decoders = {
                    f"{code} (impute_samples)": imputed,
                    f"{code} (L-BFGS)": lbfgs_decode(points, taus, imputed),
                }
                decoders = {k: (x, np.full(x.shape, 1 / taus.size)) for k, x in decoders.items()}
            else:
                decoders = {code: quantile_decode(points, taus)}
            for label, (locs, probs) in decoders.items():
                w = _w1(locs, probs, law)
                decoded[(label, scale)] = (locs[0], probs[0])
                decoding.append(_decode_row(label, scale, w[0], w[1:]))
            probability.append(_probability(config, sim, code, a, scale))
        td = sim.td_mean[a].astype(np.float64)
        w_mean = _w1([td.mean()], [1.0], law).item()
        decoding.append(_decode_row("td (point mass)", scale, w_mean, _w1(td[:, None], 1.0, law)))
    median_w1 = float(np.sum(law.probs * np.abs(law.locs - law.quantile(0.5))))
    decoding.append(_decode_row("best point mass (median)", np.nan, median_w1, None))
    cells = recording_cells(sim)
    table, examples = recording.recordings(cells, law, config.recordings)
    return {
        "reversal": pd.concat(reversal, ignore_index=True),
        "decoding": pd.DataFrame(decoding),
        "probability": pd.concat(probability, ignore_index=True),
        "decoded": decoded,
        "law": law,
        "recordings": table,
        "recording_cells": cells,
        "recording_examples": examples,
    }


def recording_cells(sim: Simulation) -> recording.Cells:
    """The cells whose recordings (a') simulates: the expectile cells' rates (without the
    global scale, which the response unit cancels) and, as reversal points, their learned
    predictions at ``scales[0]`` (0.2, the paper's) averaged over sessions: the values (a)
    checks against the exact expectiles."""
    learned = sim.reversal["dopamine_expectile"][MAGNITUDE][0].astype(np.float64).mean(axis=0)
    return recording.Cells(sim.alpha_plus, sim.alpha_minus, learned)


def _decode_row(code: str, scale: float, w_mean: float, w_sessions: np.ndarray | None) -> dict:
    point, low, high = (np.nan,) * 3 if w_sessions is None else _iqm_ci(w_sessions)
    return {"code": code, "scale": scale, "w1_session_mean": float(w_mean),
            "w1_per_session_iqm": point, "w1_low": low, "w1_high": high}  # fmt: skip


def _probability(config: Config, sim: Simulation, code: str, a: int, scale: float):
    """Per cell: the 50% cue's value relative to the 10% and 90% cues' (0 = like 10%)."""
    ps = config.probabilities
    v = {p: sim.reversal[code][f"p{p:g}"][a].astype(np.float64).mean(axis=0) for p in ps}
    stat = "expectile" if code == "dopamine_expectile" else "quantile"
    truth = {p: getattr(rewards.make("dabney_probability", p=p), stat)(sim.taus) for p in ps}
    lo, mid, hi = ps[0], ps[len(ps) // 2], ps[-1]

    def index(x):  # undefined (nan) where the 10% and 90% cues' values coincide
        span = x[hi] - x[lo]
        return (x[mid] - x[lo]) / np.where(np.abs(span) > 1e-3, span, np.nan)

    idx = index(v)
    return _frame(
        code=code, scale=scale, cell=np.arange(sim.taus.size), tau=sim.taus,
        **{f"value_p{p:g}": v[p] for p in ps}, index=idx, exact_index=index(truth),
        optimistic=sim.taus > 0.5, above_midpoint=idx > 0.5,
    )  # fmt: skip


def probability_summary(prob: pd.DataFrame) -> pd.DataFrame:
    """Per (code, scale): Spearman rank correlation of index with tau and the share of
    cells on the paper's side of the midpoint (optimistic above, pessimistic below)."""
    rows = []
    for (code, scale), g in prob.groupby(["code", "scale"], sort=False):
        g = g[np.isfinite(g["index"])]
        rows.append({
            "code": code, "scale": scale, "cells": len(g),
            "spearman_tau_index": scipy.stats.spearmanr(g["tau"], g["index"]).statistic,
            "share_ordered": (g["optimistic"] == g["above_midpoint"]).mean(),
            "max_abs_index_error": np.nanmax(np.abs(g["index"] - g["exact_index"])),
        })  # fmt: skip
    return pd.DataFrame(rows)


def reversal_summary(rev: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (code, scale), g in rev.groupby(["code", "scale"], sort=False):
        rows.append({
            "code": code, "scale": scale, "cells": len(g),
            "max_abs_error": g["error"].abs().max(), "mean_abs_error": g["error"].abs().mean(),
            "max_abs_level_error": g["level_error"].abs().max(),
            "max_band_error": g["band_error"].max(), "median_se": g["se"].median(),
            "within_tolerance": int(g["within_tolerance"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows)


# -- figures ------------------------------------------------------------------------------


def figure_reversal(out: Path, config: Config, tables: dict) -> str:
    """(a) Reversal points against the exact statistic, cells sorted by tau (x axis)."""
    rev, law = tables["reversal"], tables["law"]
    grid = np.linspace(0.005, 0.995, 400)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.8, len(config.scales)))
    for ax, code in zip(axes, CODES, strict=True):
        curve = law.expectile(grid) if code == "dopamine_expectile" else law.quantile(grid)
        ax.plot(grid, curve, color="k", lw=1.5, label="exact statistic of the reward")
        for scale, color in zip(config.scales, colors, strict=True):
            g = rev[(rev["code"] == code) & (rev["scale"] == scale)].sort_values("tau")
            ax.errorbar(
                g["tau"],
                g["reversal_point"],
                yerr=2 * g["se"],
                fmt="o",
                ms=3.5,
                color=color,
                lw=0.8,
                label=f"cells, beta = {scale:g} (+-2 se)",
            )
        ax.set(
            xlabel="tau = alpha+ / (alpha+ + alpha-)",
            ylabel="reversal point (uL)",
            title=code[9:] + " code",
        )
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Dabney 2020, variable-magnitude task: {config.num_cells} cells' reversal "
        "points against the exact tau-expectile / tau-quantile",
        fontsize=9,
    )
    return common.save_figure(fig, out / "reversal_points.png")  # fmt: skip


DECODERS = {
    "dopamine_expectile (impute_samples)": "C3",
    "dopamine_expectile (L-BFGS)": "C1",
    "dopamine_quantile": "C0",
}


def figure_decoding(out: Path, config: Config, tables: dict, sim: Simulation) -> str:
    """(c) Decoded vs true reward distribution (densities as the paper shows, and CDFs)."""
    law, dec = tables["law"], tables["decoding"].set_index(["code", "scale"])
    scale, xs = config.scales[0], np.linspace(-2, 25, 500)
    fig, (ax, ax_cdf) = plt.subplots(1, 2, figsize=(10, 4))
    ax.bar(law.locs, law.probs, width=0.5, color="0.6", label="true distribution (mass)")
    ax_cdf.step(
        np.r_[-2, law.locs, 25],
        np.r_[0, np.cumsum(law.probs), 1],
        where="post",
        color="k",
        lw=2,
        label="truth",
    )
    ax_kde = ax.twinx()
    for code, color in DECODERS.items():
        locs, probs = tables["decoded"][(code, scale)]
        kde = scipy.stats.gaussian_kde(locs, bw_method=0.15, weights=probs)
        ax_kde.plot(xs, kde(xs), color=color, lw=1.8, label=f"decoded, {code[9:]} code")
        o, w = np.argsort(locs), dec.loc[(code, scale), "w1_session_mean"]
        ax_cdf.step(
            np.r_[-2, locs[o], 25],
            np.r_[0, np.cumsum(probs[o]), 1],
            where="post",
            color=color,
            label=f"decoded, {code[9:]} code (W1 {w:.2f})",
        )
    m, w = sim.td_mean[0].mean(), dec.loc[("td (point mass)", scale), "w1_session_mean"]
    ax.axvline(m, color="k", ls="--", lw=1.2, label=f"classical TD: point mass {m:.2f}")
    ax_cdf.step(
        [-2, m, 25],
        [0, 1, 1],
        where="post",
        color="k",
        ls="--",
        label=f"classical point mass (W1 {w:.2f})",
    )
    ax.set(xlabel="reward (uL)", ylabel="probability", title=f"beta = {scale:g}")
    ax_kde.set_ylabel("decoded density (KDE)")
    handles = [
        h + k
        for h, k in zip(
            ax.get_legend_handles_labels(), ax_kde.get_legend_handles_labels(), strict=True
        )
    ]
    ax.legend(*handles, fontsize=7, loc="upper right")
    ax_cdf.set(xlabel="reward (uL)", ylabel="cumulative probability", xlim=(-2, 25))
    ax_cdf.legend(fontsize=7, loc="lower right")
    fig.suptitle("Decoding the reward distribution from (tau, reversal point) pairs", fontsize=9)
    return common.save_figure(fig, out / "decoding.png")  # fmt: skip


def figure_probability(out: Path, config: Config, tables: dict) -> str:
    """(d) Each cell's 50%-cue value between its 10% and 90% values, against its tau."""
    prob, scale = tables["probability"], config.scales[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, code in zip(axes, CODES, strict=True):
        g = prob[(prob["code"] == code) & (prob["scale"] == scale)].sort_values("tau")
        ax.scatter(g["tau"], g["index"], c=np.where(g["optimistic"], "C3", "C0"), s=14, zorder=3)
        ax.plot(g["tau"], g["exact_index"], color="k", lw=1, label="exact (fixed point)")
        ax.axhline(0.5, color="0.5", ls=":")
        ax.axvline(0.5, color="0.5", ls=":")
        ax.set(xlabel="tau", ylabel="(V50% - V10%) / (V90% - V10%)")
        ax.set_title(
            f"{code[9:]} code, beta = {scale:g}: red optimistic, blue pessimistic", fontsize=8
        )
        ax.legend(fontsize=7)
    fig.suptitle(
        "Variable-probability task: the 50% cue's value between the 10% and 90% cues'", fontsize=9
    )
    return common.save_figure(fig, out / "probability.png")  # fmt: skip


# -- the suite ----------------------------------------------------------------------------


def _mark(ok: bool, yes: str = "reproduced", no: str = "NOT reproduced") -> str:
    return yes if ok else no


def _claim_lines(config: Config, tables: dict) -> list[str]:
    """The tests that can fail: (a') on simulated recordings and (b) decoding."""
    dec = tables["decoding"]
    best = dec.loc[dec["code"] == "best point mass (median)", "w1_session_mean"].item()
    codes = dec[dec["code"].isin(DECODERS)]
    ok_b = bool((codes["w1_session_mean"] < best).all())
    b0 = codes[codes["scale"] == config.scales[0]]
    td0 = dec[(dec["code"] == "td (point mass)") & (dec["scale"] == config.scales[0])]
    return [
        "## Tests that can fail", "",
        recording.claim_line(config.recordings, tables["recordings"]),
        f"- **(b) Decoding beats a single-value code: {_mark(ok_b)}.** W1 to the true "
        f"distribution at beta = {config.scales[0]:g}: "
        + ", ".join(f"{r.code[9:]} {r.w1_session_mean:.2f}" for r in b0.itertuples())
        + f"; classical TD point mass {td0['w1_session_mean'].item():.2f} (no point mass can "
        f"do better than {best:.2f}).", "",
    ]  # fmt: skip


def _model_check_lines(config: Config, tables: dict) -> list[str]:
    """(a) and (d): true by construction of the model, so checks of it, not of the paper."""
    rs = reversal_summary(tables["reversal"]).set_index(["code", "scale"])
    ps = probability_summary(tables["probability"])
    n, small = config.num_cells, min(config.scales)
    ok_a = all(rs.loc[(c, small), "within_tolerance"] == n for c in CODES)
    cells = "; ".join(
        f"{c[9:]}: "
        + ", ".join(
            f"{rs.loc[(c, s), 'within_tolerance']}/{n} at beta {s:g}" for s in config.scales
        )
        for c in CODES
    )
    exp = ps[ps["code"] == "dopamine_expectile"]
    ok_d = bool((exp["spearman_tau_index"] > 0.95).all() and (exp["share_ordered"] > 0.9).all())
    return [
        "## Model checks (hold by construction: tau is the learner's own fixed point)", "",
        f"- **(a) Reversal points = each cell's tau-statistic: {_mark(ok_a, 'passes', 'FAILS')}"
        f"** (at beta = {small:g}). Cells within tolerance -- {cells}.",
        f"- **(d) Variable-probability task, optimistic above / pessimistic below: "
        f"{_mark(ok_d, 'passes', 'FAILS')}** (expectile code: Spearman(tau, index) "
        + ", ".join(f"{r.spearman_tau_index:.3f}" for r in exp.itertuples())
        + ", share of cells on their side " + ", ".join(f"{r.share_ordered:.2f}" for r in
                                                        exp.itertuples()) + ").", "",
    ]  # fmt: skip


def verdict(config: Config, tables: dict) -> str:
    """The tests that can fail, marked reproduced or not; the model checks, marked passes
    or FAILS; then the tables."""
    rs = reversal_summary(tables["reversal"]).set_index(["code", "scale"])
    dec, ps = tables["decoding"], probability_summary(tables["probability"])
    return "\n".join([
        "# Reproduction: Dabney et al. (2020), Nature 577:671-675", "",
        *_claim_lines(config, tables),
        *_model_check_lines(config, tables),
        f"{config.num_cells} cells, rates alpha+/- ~ U(0, 1) (seed {config.rate_seed}) times a "
        f"global scale beta in {list(config.scales)} (0.2 is the paper's code); reversal point "
        f"= mean over {config.num_sessions} sessions of the prediction after "
        f"{config.num_trials:,} trials. Tolerances: expectile cells |implied level - tau| <= "
        f"{config.level_tolerance}; quantile cells within {config.value_tolerance} uL of "
        f"[Q(tau - {config.quantile_slack}), Q(tau + {config.quantile_slack})].", "",
        *recording.section(config.recordings, tables["recordings"], (
            f"the {config.num_cells} expectile cells' rates, and as reversal points V_i "
            f"their learned predictions at beta = {config.scales[0]:g} (the session means of "
            "(a))")),
        "## (a) Reversal points vs exact statistics (uL)", "",
        common.markdown_table(rs.reset_index()), "",
        "## (b) Decoding: W1 to the true reward distribution (uL)", "",
        "`w1_session_mean`: decoded from the session-mean reversal points; per-session: IQM "
        "[95% CI] over sessions, each decoded from one session's predictions alone.", "",
        common.markdown_table(dec), "",
        "## (d) Variable-probability task", "",
        "index = (V50% - V10%) / (V90% - V10%) per cell (0: like the 10% cue, 1: like 90%).", "",
        common.markdown_table(ps), "",
    ])  # fmt: skip


def compute(config: Config, out: Path | None = None, quiet: bool = True):
    """Runs (or reuses) the simulation and returns (simulation, tables, units)."""
    units = common.Units(out, common.logger(quiet))
    sim = simulate(config, units)
    return sim, analyse(config, sim), units


def run(out: Path, quiet: bool = False, config: Config | None = None) -> dict[str, Any]:
    """Writes ``out`` (results/dabney2020/) and returns its manifest."""
    config = config or settings()
    start = time.perf_counter()
    out = Path(out)
    common.guard(out, NAME)
    sim, tables, units = compute(config, out, quiet)
    stage = store.staging_dir(out)  # the report is written whole, then published
    files = [
        common.write_csv(tables["reversal"], stage / "reversal_points.csv"),
        common.write_csv(tables["decoding"], stage / "decoding.csv"),
        common.write_csv(tables["probability"], stage / "probability.csv"),
        common.write_csv(tables["recordings"], stage / "recordings.csv"),
        common.write_text(stage / "verdict.md", verdict(config, tables)),
        figure_reversal(stage, config, tables),
        figure_decoding(stage, config, tables, sim),
        figure_probability(stage, config, tables),
        recording.figure(stage, config.recordings, tables["recordings"],
                         tables["recording_cells"], tables["recording_examples"]),
    ]  # fmt: skip
    headline = {
        "reversal": reversal_summary(tables["reversal"]).to_dict(orient="records"),
        "decoding": tables["decoding"].to_dict(orient="records"),
        "probability": probability_summary(tables["probability"]).to_dict(orient="records"),
        "recordings": recording.calls(config.recordings, tables["recordings"]).to_dict(
            orient="records"
        ),
    }
    seeds = {"sessions": list(range(config.num_sessions))}
    manifest = common.write_manifest(stage, NAME, config, seeds, units, start,
                                     files + ["manifest.json"], headline)  # fmt: skip
    store.publish(stage, out)
    return manifest
