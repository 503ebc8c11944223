"""Bias floors: the mean-value error of a distributional rule's fixed point, exactly.

QTD, CTD and EDRL converge to the fixed point of a projected distributional Bellman
operator, not to the true return law, so their mean estimate can be biased; the error of
that fixed point's mean is a floor no step-size schedule can get under (SCIENCE.md
section 7). Computed by iterating the projected operator on the exact model:

* quantile rules (``qtd``, ``dopamine_quantile``): ``theta_i(s)`` = the tau_i-quantile of
  ``R + gamma theta_J(s')`` with J uniform over the statistics (Rowland et al., JMLR 2024,
  "An Analysis of Quantile Temporal-Difference Learning": QTD's fixed points are those of
  this operator; a dopamine quantile population with one random cell read at s' has the
  same expected update and so the same fixed point). Quantiles of the exact continuous
  mixture by bisection to 1e-10.
* ``ctd``: the Cramer projection of ``R + gamma Z(s')`` onto the support (Rowland et al.,
  AISTATS 2018), from the reward laws' exact partial moments.
* expectile rules with gamma = 0 or terminal transitions only (a bandit): the targets are
  reward samples, so the fixed point is the reward's exact expectiles; the rule's mean is
  its 0.5-expectile (EDRL with an odd number of midpoint levels: exact, floor 0) or the
  mean of the samples its own imputation returns from those expectiles (dopamine cells).
* the dopamine expectile population elsewhere: the fixed point of expectile TD that reads
  one random cell at s' (``expectile_fixed_point``), whose mean readout is the middle cell.

Elsewhere a floor is not computed here (``None``); reports then say so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from td_jax.rewards import exact
from td_jax.rules.dopamine import DEFAULT_NUM_CELLS
from td_jax.rules.expectile import DEFAULT_ITERATIONS, DEFAULT_NUM_EXPECTILES
from td_jax.rules.quantile import midpoint_taus

MAX_ITERATIONS = 2_000
TOLERANCE = 1e-9  # of the return range: far below the floors reported (>= 1e-6 of it)


def _model(env: Any):
    probs = np.asarray(env.outcome_probs, np.float64)
    nxt = np.asarray(env.next_state, np.int64)
    term = np.asarray(env.terminal, bool)
    slot = np.asarray(env.reward_index, np.int64)
    return probs, nxt, term, slot, float(np.asarray(env.gamma)), env.reward_laws()


def _groups(probs, nxt, term, slot, gamma) -> list[tuple]:
    """The model's (state, outcome) pairs grouped by reward law: per law, (law slot, the
    states, their outcome probabilities, the successor states or None where terminal).
    One call of each law's cdf then serves every state (vectorised bisection)."""
    out = []
    s_idx, j_idx = np.nonzero(probs > 0)
    stop = term[s_idx, j_idx] | (gamma == 0.0)
    for law_slot in np.unique(slot[s_idx, j_idx]):
        for ends in (True, False):
            sel = (slot[s_idx, j_idx] == law_slot) & (stop == ends)
            if sel.any():
                ss, jj = s_idx[sel], j_idx[sel]
                out.append((int(law_slot), ss, probs[ss, jj], None if ends else nxt[ss, jj]))
    return out


def _mixture(groups, laws, name: str, x: np.ndarray, gamma: float, stats: np.ndarray):
    """f64[S, m]: per state s, E[g(x_s - gamma * stat_J(s'))] under the model, where g is
    each reward law's method ``name`` (``cdf``: the target's cdf; ``upper``: its upper
    partial moment E[(Y - x)_+]) and J is uniform over the statistics at s'."""
    total = np.zeros_like(x)
    for law_slot, ss, p, succ in groups:
        g = getattr(laws[law_slot], name)
        if succ is None:
            f = np.asarray(g(x[ss]), np.float64)
        else:
            shifted = x[ss][:, :, None] - gamma * stats[succ][:, None, :]
            f = np.asarray(g(shifted), np.float64).mean(axis=2)
        np.add.at(total, ss, p[:, None] * f)
    return total


def _range(env: Any, laws, gamma: float) -> tuple[float, float]:
    """(lo, hi) holding every state's return with probability >= 1 - 2e-4 per reward, from
    the reward laws alone (no return law): with r_lo and r_hi the laws' extreme 1e-4 and
    1 - 1e-4 quantiles, a discounted sum of rewards lies in [min(r_lo, r_lo / (1 - gamma)),
    max(r_hi, r_hi / (1 - gamma))]. Undiscounted episodic tasks take the return laws'
    bounds. It only brackets the root finding (checked on every sweep)."""
    if gamma >= 1.0:
        return env.return_bounds()
    q = np.array([np.asarray(law.quantile([1e-4, 1.0 - 1e-4]), np.float64) for law in laws])
    r_lo, r_hi = float(q[:, 0].min()), float(q[:, 1].max())
    return min(r_lo, r_lo / (1.0 - gamma)), max(r_hi, r_hi / (1.0 - gamma))


ANDERSON_MEMORY = 5


def _fixed_point(sweep, x0: np.ndarray, width: float) -> np.ndarray:
    """The fixed point of ``sweep`` (T, a gamma-contraction in the sup norm), to
    ``|T(x) - x| < TOLERANCE * width``; returns T(x) there.

    Anderson acceleration (type II, memory ``ANDERSON_MEMORY``; Walker and Ni 2011,
    "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 49:1715-1735)
    with a safeguard: when the residual grows past the best so far the history is dropped
    and the next step is the plain one, which contracts. The plain iteration needs
    log(tol) / log(gamma) sweeps (about 175 at gamma 0.9); the accelerated one a fraction.
    ``sweep(x, center, reach)`` computes T(x) knowing that it lies within ``reach`` of
    ``center`` (T(x_k) is within gamma |x_k - x_{k-1}| of T(x_{k-1})): a warm bracket for
    its root finding, which checks it and falls back to the whole range."""
    x, center, reach = x0, x0, np.inf
    g_prev = f_prev = None
    d_f: list[np.ndarray] = []
    d_g: list[np.ndarray] = []
    best = np.inf
    g = x0
    for _ in range(MAX_ITERATIONS):
        g = sweep(x, center, reach)
        f = g - x
        residual = float(np.max(np.abs(f)))
        if residual < TOLERANCE * width:
            break
        if f_prev is not None:
            d_f = (d_f + [(f - f_prev).ravel()])[-ANDERSON_MEMORY:]
            d_g = (d_g + [(g - g_prev).ravel()])[-ANDERSON_MEMORY:]
        if residual > best:
            d_f, d_g = [], []
        best = min(best, residual)
        step = g
        if d_f:
            coef = np.linalg.lstsq(np.stack(d_f, 1), f.ravel(), rcond=None)[0]
            step = g - (np.stack(d_g, 1) @ coef).reshape(g.shape)
        center, reach = g, 2.0 * float(np.max(np.abs(step - x))) + 1e-9 * width
        x, g_prev, f_prev = step, g, f
    return g


def _bisect(past, center, reach, lo: float, hi: float, width: float):
    """(a, b): every entry's root of ``past`` (bool, False below the root and True from it
    on) bracketed to 1e-10 * width, by bisection from the warm bracket ``center`` +-
    ``reach`` (``_fixed_point``'s), or from [lo, hi] where that does not hold it."""
    a, b = np.maximum(center - reach, lo), np.minimum(center + reach, hi)
    bad = past(a) | ~past(b)
    a, b = np.where(bad, lo, a), np.where(bad, hi, b)
    while np.max(b - a) > 1e-10 * width:
        mid = 0.5 * (a + b)
        ok = past(mid)
        b, a = np.where(ok, mid, b), np.where(ok, a, mid)
    return a, b


def _atom_quantiles(groups, laws, gamma: float, theta: np.ndarray, taus: np.ndarray):
    """f64[S, m]: each state's target quantiles where every reward law is finitely
    supported: the target ``R + gamma theta_J(s')`` is then itself a set of atoms, sorted
    and read at each tau directly (a tau equal to a cumulative probability, up to 1e-12,
    takes that atom, as ``exact.Atoms``)."""
    S, m = theta.shape
    owner, vals, wts = [], [], []
    for law_slot, ss, p, succ in groups:
        law = laws[law_slot]
        if succ is None:
            v = np.broadcast_to(law.locs, (len(ss), law.size))
            w = p[:, None] * law.probs[None, :]
        else:
            v = (law.locs[None, :, None] + gamma * theta[succ][:, None, :]).reshape(len(ss), -1)
            w = np.repeat(p[:, None] * law.probs[None, :] / m, m, axis=1)
        owner.append(np.repeat(ss, v.shape[1]))
        vals.append(v.ravel())
        wts.append(w.ravel())
    owner, vals, wts = np.concatenate(owner), np.concatenate(vals), np.concatenate(wts)
    order = np.lexsort((vals, owner))
    owner, vals, wts = owner[order], vals[order], wts[order]
    out = np.empty((S, m))
    starts = np.searchsorted(owner, np.arange(S + 1))
    for s in range(S):
        cum = np.cumsum(wts[starts[s] : starts[s + 1]])
        k = np.searchsorted(cum, taus - 1e-12, side="left")
        out[s] = vals[starts[s] : starts[s + 1]][np.minimum(k, cum.size - 1)]
    return out


def quantile_fixed_point(env: Any, taus: np.ndarray) -> np.ndarray:
    """f64[S, m]: the fixed point of the quantile-projected Bellman operator at ``taus``.

    Each sweep solves every state's quantiles at once by bisection on the exact mixture
    cdf of the target ``R + gamma theta_J(s')`` (J uniform over the statistics)."""
    probs, nxt, term, slot, gamma, laws = _model(env)
    taus = np.asarray(taus, np.float64)
    m = taus.size
    lo, hi = _range(env, laws, gamma)
    width = max(hi - lo, 1.0)
    lo, hi = lo - 10 * width, hi + 10 * width
    theta0 = np.tile(np.asarray(env.true_values(), np.float64)[:, None], (1, m))
    groups = _groups(probs, nxt, term, slot, gamma)

    if all(isinstance(laws[g[0]], exact.Atoms) for g in groups):  # exact: no bisection

        def sweep(theta, center, reach):
            return _atom_quantiles(groups, laws, gamma, theta, taus)

        return _fixed_point(sweep, theta0, width)

    def sweep(theta, center, reach):  # inf{x : F_s(x) >= tau} of each state's target
        def past(x):
            return _mixture(groups, laws, "cdf", x, gamma, theta) >= taus

        return _bisect(past, center, reach, lo, hi, width)[1]

    return _fixed_point(sweep, theta0, width)


def expectile_fixed_point(env: Any, taus: np.ndarray) -> np.ndarray:
    """f64[S, m]: fixed point of naive expectile TD with its statistics as samples at s'.

    ``e_i(s)`` = the tau_i-expectile of ``R + gamma e_J(s')``, J uniform over the
    statistics: the dopamine expectile population, whose update reads one random cell at s'
    (Dabney et al. 2020), and the "naive" expectile TD that Rowland et al. (ICML 2019) show
    collapses towards the mean. Each expectile solves tau E[(Y - e)_+] = (1 - tau) E[(e - Y)_+]
    with the partial moments of the exact reward laws, by bisection.
    """
    probs, nxt, term, slot, gamma, laws = _model(env)
    taus = np.asarray(taus, np.float64)
    S, m = probs.shape[0], taus.size
    lo, hi = _range(env, laws, gamma)
    width = max(hi - lo, 1.0)
    lo, hi = lo - 10 * width, hi + 10 * width
    e0 = np.tile(np.asarray(env.true_values(), np.float64)[:, None], (1, m))
    groups = _groups(probs, nxt, term, slot, gamma)

    def sweep(e, center, reach):
        mean = np.zeros(S)  # E[Y] of each state's target
        for law_slot, ss, p, succ in groups:
            nxt_mean = 0.0 if succ is None else gamma * e[succ].mean(axis=1)
            np.add.at(mean, ss, p * (laws[law_slot].mean + nxt_mean))

        def gap(x):  # tau U(x) - (1 - tau) L(x), falling in x: f[S, m]
            upper = _mixture(groups, laws, "upper", x, gamma, e)
            lower = x - mean[:, None] + upper  # E[(x - Y)_+] = x - E[Y] + E[(Y - x)_+]
            return taus * upper - (1.0 - taus) * lower

        a, b = _bisect(lambda x: gap(x) <= 0, center, reach, lo, hi, width)
        return 0.5 * (a + b)

    return _fixed_point(sweep, e0, width)


def categorical_fixed_point(env: Any, support: np.ndarray) -> np.ndarray:
    """f64[S, K]: the fixed point of the Cramer-projected Bellman operator on ``support``
    (evenly spaced)."""
    probs, nxt, term, slot, gamma, laws = _model(env)
    z = np.asarray(support, np.float64)
    K, S = z.size, probs.shape[0]
    dz = z[1] - z[0]
    p = np.full((S, K), 1.0 / K)

    def project(upper: np.ndarray) -> np.ndarray:
        # upper[k] = E[(X - z_k)_+]; hat-function masses from second differences.
        out = np.empty(K)
        out[0] = 1.0 - (upper[0] - upper[1]) / dz
        out[1:-1] = (upper[:-2] - 2.0 * upper[1:-1] + upper[2:]) / dz
        out[-1] = (upper[-2] - upper[-1]) / dz
        return out

    for _ in range(MAX_ITERATIONS):
        new = np.zeros_like(p)
        for s in range(S):
            for j in np.flatnonzero(probs[s] > 0):
                law = laws[slot[s, j]]
                if term[s, j] or gamma == 0.0:
                    up = np.asarray(law.upper(z))
                else:  # X = R + gamma Z', Z' on the support with probs p[s']
                    up = np.asarray(law.upper(z[:, None] - gamma * z[None, :])) @ p[nxt[s, j]]
                new[s] += probs[s, j] * project(up)
        change = np.max(np.abs(new - p))
        p = new
        if change < TOLERANCE:
            break
    return p


def _weights_error(mean: np.ndarray, env: Any, weights: dict[str, np.ndarray]) -> dict:
    v = np.asarray(env.true_values(), np.float64)
    return {k: float(np.sum(w * np.square(mean - v))) for k, w in weights.items()}


def floor(rule: str, hparams: dict, env: Any, weights: dict[str, np.ndarray]) -> dict | None:
    """The fixed point's squared mean error per weighting ``{name: error}``, or None.

    Args:
      rule: a registry name. hparams: its hyperparameters (as the suite builds it; CTD needs
        ``v_min`` / ``v_max``). env: the task. weights: ``{weighting: f64[S]}``.
    """
    gamma = float(np.asarray(env.gamma))
    one_step = gamma == 0.0 or bool(np.all(np.asarray(env.terminal)))
    if rule in ("td", "td_lambda", "td_placebo"):
        return dict.fromkeys(weights, 0.0)  # classical TD's fixed point is V itself
    if rule == "qtd":
        taus = midpoint_taus(int(hparams.get("num_quantiles", 32)))
        return _weights_error(quantile_fixed_point(env, taus).mean(axis=1), env, weights)
    if rule == "dopamine_quantile" and "alpha_plus" not in hparams:
        theta = quantile_fixed_point(env, rule_levels(hparams, "num_cells", DEFAULT_NUM_CELLS))
        return _weights_error(theta.mean(axis=1), env, weights)
    if rule == "ctd":
        k = int(hparams.get("num_atoms", 51))
        z = np.linspace(float(hparams["v_min"]), float(hparams["v_max"]), k)
        return _weights_error(categorical_fixed_point(env, z) @ z, env, weights)
    if rule in ("edrl", "dopamine_expectile") and one_step:
        return _expectile_one_step(rule, hparams, env, weights)
    if rule == "dopamine_expectile" and "alpha_plus" not in hparams:
        taus = rule_levels(hparams, "num_cells", DEFAULT_NUM_CELLS)
        half = np.flatnonzero(np.abs(taus - 0.5) < 1e-6)
        if half.size:  # the mean readout is the middle cell (else it is an imputation)
            e = expectile_fixed_point(env, taus)
            return _weights_error(e[:, half[0]], env, weights)
    return None


def rule_levels(hparams: dict, count_key: str, default: int) -> np.ndarray:
    """The rule's levels: explicit ``taus``, else midpoints for its count (or the default)."""
    if hparams.get("taus") is not None:
        return np.asarray(hparams["taus"], np.float64)
    return midpoint_taus(int(hparams.get(count_key) or default))


def _expectile_one_step(rule: str, hparams: dict, env: Any, weights: dict) -> dict:
    import jax.numpy as jnp

    from td_jax.rules.expectile import expectile_mean, impute_samples

    if rule == "edrl":
        taus = rule_levels(hparams, "num_expectiles", DEFAULT_NUM_EXPECTILES)
    else:
        taus = rule_levels(hparams, "num_cells", DEFAULT_NUM_CELLS)
    iters = int(hparams.get("num_iterations", DEFAULT_ITERATIONS))
    truth = np.asarray(env.true_expectiles(taus), np.float64)  # [S, m]
    half = np.flatnonzero(np.abs(taus - 0.5) < 1e-6)
    tau32 = jnp.asarray(taus, jnp.float32)
    if half.size:
        mean = truth[:, half[0]]  # the 0.5-expectile is the mean: exact
    elif (taus < 0.5).any() and (taus > 0.5).any():  # the rules' readout: no solve
        mean = np.array([float(expectile_mean(jnp.asarray(e, jnp.float32), tau32)) for e in truth])
    else:
        mean = np.array(
            [float(jnp.mean(impute_samples(jnp.asarray(e, jnp.float32), tau32, None, iters)))
             for e in truth]
        )  # fmt: skip
    return _weights_error(mean, env, weights)


def _main() -> None:
    """``python -m td_jax.engine.floors``: floors of the jobs read as JSON from stdin
    ``{key: {rule, hparams, env, env_params, weights}}``; writes ``{key: floor}`` to stdout.
    The bench runs it in a child process so that these numpy loops do not hold the GIL that
    the JAX runs need. It builds tasks from their configurations, so a task with a reward
    family registered in the parent (``td_jax.rewards.register``) is never sent here: the
    parent computes those floors itself (``prediction.finish_floors``)."""
    import json
    import sys

    from td_jax import envs

    jobs = json.loads(sys.stdin.read())
    out = {}
    for key, job in jobs.items():
        env = envs.make(job["env"], **job["env_params"])
        weights = {w: np.asarray(x, np.float64) for w, x in job["weights"].items()}
        out[key] = floor(job["rule"], job["hparams"], env, weights)
    sys.stdout.write(json.dumps(out))


__all__ = ["categorical_fixed_point", "expectile_fixed_point", "floor", "quantile_fixed_point"]

if __name__ == "__main__":
    _main()
