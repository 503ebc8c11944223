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

from td_jax.rules.dopamine import DEFAULT_NUM_CELLS
from td_jax.rules.expectile import DEFAULT_ITERATIONS, DEFAULT_NUM_EXPECTILES
from td_jax.rules.validation import midpoint_taus

MAX_ITERATIONS = 2_000
TOLERANCE = 1e-8  # of the return range: far below the floors reported (>= 1e-6 of it)


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


def quantile_fixed_point(env: Any, taus: np.ndarray) -> np.ndarray:
    """f64[S, m]: the fixed point of the quantile-projected Bellman operator at ``taus``.

    Each sweep solves every state's quantiles at once by bisection on the exact mixture
    cdf of the target ``R + gamma theta_J(s')`` (J uniform over the statistics)."""
    probs, nxt, term, slot, gamma, laws = _model(env)
    taus = np.asarray(taus, np.float64)
    m = taus.size
    lo, hi = env.return_bounds()
    width = max(hi - lo, 1.0)
    lo, hi = lo - 10 * width, hi + 10 * width
    theta = np.tile(np.asarray(env.true_values(), np.float64)[:, None], (1, m))
    groups = _groups(probs, nxt, term, slot, gamma)
    reach = hi - lo  # the first sweep brackets the whole range
    for _ in range(MAX_ITERATIONS):

        def cdf(x, theta=theta):  # x: f[S, m] -> F_s(x) of each state's target
            return _mixture(groups, laws, "cdf", x, gamma, theta)

        # Warm bracket around the last iterate (a contraction moves it by at most gamma
        # times the last change); the whole range where it does not hold.
        a, b = np.maximum(theta - reach, lo), np.minimum(theta + reach, hi)
        bad = (cdf(a) >= taus) | (cdf(b) < taus)
        a, b = np.where(bad, lo, a), np.where(bad, hi, b)
        while np.max(b - a) > 1e-10 * width:  # inf{x : F(x) >= tau}, by bisection
            mid = 0.5 * (a + b)
            ok = cdf(mid) >= taus
            b, a = np.where(ok, mid, b), np.where(ok, a, mid)
        change = np.max(np.abs(b - theta))
        theta = b
        reach = 2.0 * change + 1e-9 * width
        if change < TOLERANCE * width:
            break
    return theta


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
    lo, hi = env.return_bounds()
    width = max(hi - lo, 1.0)
    lo, hi = lo - 10 * width, hi + 10 * width
    e = np.tile(np.asarray(env.true_values(), np.float64)[:, None], (1, m))
    groups = _groups(probs, nxt, term, slot, gamma)
    for _ in range(MAX_ITERATIONS):
        mean = np.zeros(S)  # E[Y] of each state's target
        for law_slot, ss, p, succ in groups:
            nxt_mean = 0.0 if succ is None else gamma * e[succ].mean(axis=1)
            np.add.at(mean, ss, p * (laws[law_slot].mean + nxt_mean))

        def gap(x, e=e, mean=mean):  # tau U(x) - (1 - tau) L(x), falling in x: f[S, m]
            upper = _mixture(groups, laws, "upper", x, gamma, e)
            lower = x - mean[:, None] + upper  # E[(x - Y)_+] = x - E[Y] + E[(Y - x)_+]
            return taus * upper - (1.0 - taus) * lower

        a, b = np.full((S, m), lo), np.full((S, m), hi)
        while np.max(b - a) > 1e-10 * width:
            mid = 0.5 * (a + b)
            pos = gap(mid) > 0
            a, b = np.where(pos, mid, a), np.where(pos, b, mid)
        new = 0.5 * (a + b)
        change = np.max(np.abs(new - e))
        e = new
        if change < TOLERANCE * width:
            break
    return e


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
    """``python -m td_jax.harness.floors``: floors of the jobs read as JSON from stdin
    ``{key: {rule, hparams, env, env_params, weights}}``; writes ``{key: floor}`` to stdout.
    The bench runs it in a child process so that these numpy loops do not hold the GIL that
    the JAX runs need."""
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
