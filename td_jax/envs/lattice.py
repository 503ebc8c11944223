"""Distributional dynamic programming on a lattice, with a computed W1 error bound.

Rowland, Bellemare, Dabney, Munos, Teh, "An Analysis of Categorical Distributional
Reinforcement Learning", AISTATS 2018: the Cramer projection onto an evenly spaced support
moves mass only to the two neighbouring points, so each projection costs at most half a
spacing in W1 (the exact coupling cost ``2 w (1 - w) delta`` is computed here).

One iteration maps every state's lattice law to the projection of ``R + gamma G'`` (rewards
discretised once, ``gamma G'`` projected, sums by FFT convolution, out-of-range mass
clipped to the ends). Its W1 bound follows the recursion
``E_{k+1}(s) = e_{k+1}(s) + sum_s' P_cont(s, s') (proj_k(s') + gamma E_k(s'))`` with
``e`` the reward-projection, clipping and round-off costs, from
``E_0 = E|G - c|`` for the start at the point mass ``c``. Iteration stops once ``E`` is
within a tolerance of its limit; whatever it is then is the stated error. The lattice is
refined coarse-to-fine (each level embeds exactly in the next) so most iterations run on
few points, after a probe run has located the return tails.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import sparse

from td_jax.rewards import exact

DP_RTOL = 1e-3  # target W1 bound of the lattice DP, relative to the largest return std
MAX_LATTICE = 2**17  # cap on fine lattice points (the bound is reported either way)
COARSE_LATTICE = 2**11  # the first, coarse level
PROBE_LATTICE = 2**12  # the probe that locates the return tails
MAX_ITERS = 100_000
TAIL_SDS = 8.0  # probe half-width beyond the values, in return stds


def _reward_pmf(law: exact.Law, shift: float, kr_lo: int, mr: int, delta: float):
    """Cramer projection of ``R - shift`` on lattice points (kr_lo + m) * delta, clipped.

    Returns (pmf f64[mr], W1 bound of the projection including the clipped tails).
    """
    x = (kr_lo + np.arange(mr)) * delta
    if isinstance(law, exact.Atoms):
        t = np.clip((law.locs - shift) / delta - kr_lo, 0.0, mr - 1.0)
        lo = np.minimum(np.floor(t).astype(np.int64), mr - 2) if mr > 1 else np.zeros(t.size, int)
        w = t - lo if mr > 1 else np.zeros(t.size)
        pmf = np.bincount(lo, law.probs * (1 - w), mr)
        if mr > 1:
            pmf += np.bincount(lo + 1, law.probs * w, mr)
        clip = np.dot(law.probs, np.abs((law.locs - shift) - (kr_lo + t) * delta))
        return pmf, float(np.dot(law.probs, 2.0 * w * (1.0 - w)) * delta + clip)
    # p_m = (I_m - I_{m-1}) / delta with I_m the integral of the clipped CDF over cell m
    # (Simpson's rule): differences of O(delta) integrals keep full relative precision.
    f = law._cdf(x + shift)
    f_mid = law._cdf(x[:-1] + 0.5 * delta + shift)
    cells = delta / 6.0 * (f[:-1] + 4.0 * f_mid + f[1:])
    cells = np.concatenate([cells, [delta]])  # the clipped CDF is 1 from the top point on
    pmf = np.maximum(np.diff(np.concatenate([[0.0], cells])) / delta, 0.0)
    # The pmf's CDF on cell m is C_m = I_m / delta, inside [F(x_m), F(x_m+1)] since F is
    # monotone; so W1 <= delta * sum_m max(C_m - F(x_m), F(x_m+1) - C_m) (about delta / 2
    # for a smooth law, at most delta), plus the clipped tails E[(x_0 - Y)_+] + E[(Y - x_top)_+].
    c = cells[:-1] / delta
    inner = delta * np.sum(np.maximum(c - f[:-1], f[1:] - c))
    tails = law._upper(np.array(x[-1] + shift)) + (
        law._upper(np.array(x[0] + shift)) - (law.mean - shift - x[0])
    )
    return pmf / pmf.sum(), float(inner + tails)


def solve(
    laws: list[exact.Law],
    probs: np.ndarray,
    nxt: np.ndarray,
    term: np.ndarray,
    slot: np.ndarray,
    gamma: float,
    v: np.ndarray,
    sd: np.ndarray,
    p_cont: np.ndarray,
) -> tuple[list[exact.Atoms], np.ndarray]:
    """Per-state lattice laws (``exact.Atoms``) of the return and their W1 bounds.

    Args: the outcome tables of an MRP, its reward laws per slot, gamma, the exact values
    ``v``, return stds ``sd`` (inf if infinite) and the continuation matrix.
    """
    S = probs.shape[0]
    used = probs > 0
    resolvent = np.linalg.inv(np.eye(S) - gamma * p_cont)
    horizon = resolvent.sum(axis=1)  # expected discounted number of steps
    used_slots = np.unique(slot[used])
    if np.all(np.isfinite(sd)):
        scale = max(float(sd.max()), 1e-6 * (1.0 + float(np.abs(v).max())))
    else:  # infinite variance: a robust spread stands in for the std
        scale = max(laws[k].spread() for k in used_slots) * float(np.sqrt(horizon.max()))
    # A probe on a range wide enough for heavy reward tails locates the return tails; the
    # real run then clips where one more lattice point costs about what the clipped tail
    # does: P(G > hi) ~ 1 / MAX_LATTICE (clipping stays costed in the bound either way).
    dev = max(
        float(np.max(np.abs(np.asarray(laws[k].quantile([1e-7, 1 - 1e-7])) - laws[k].mean)))
        for k in used_slots
    )
    wide = max(TAIL_SDS * scale, dev * float(horizon.max()))
    problem = (laws, probs, nxt, term, slot, gamma, p_cont, resolvent, scale)
    lo_p, hi_p = float(v.min()) - wide, float(v.max()) + wide
    probe, _ = _solve(problem, lo_p, hi_p, _dyadic((hi_p - lo_p) / PROBE_LATTICE), 0.5)
    level = 1.0 / MAX_LATTICE
    q = np.array([law.quantile([level, 1 - level]) for law in probe])
    lo_v, hi_v = float(q[:, 0].min()), float(q[:, 1].max())
    pad = 0.05 * (hi_v - lo_v) + (hi_p - lo_p) / PROBE_LATTICE
    lo_v, hi_v = min(lo_v - pad, float(v.min())), max(hi_v + pad, float(v.max()))
    # Dyadic spacing so that dyadic rewards (integers, halves...) sit on lattice points.
    delta_f = _dyadic(DP_RTOL * scale / horizon.max())
    while (hi_v - lo_v) / delta_f > MAX_LATTICE:
        delta_f *= 2.0
    return _solve(problem, lo_v, hi_v, delta_f, 0.1)


def _dyadic(x: float) -> float:
    return float(2.0 ** np.floor(np.log2(x)))


def _outcome_groups(probs, nxt, slot, cont, fin, num_laws: int):
    """(state, slot) groups of continuing outcomes with their next-state weights
    ``w_next`` f[G, S], the state of each group ``agg`` f[S, G], and the terminal outcomes'
    reward-law weights ``term_w`` f[S, L]."""
    S = probs.shape[0]
    groups = sorted({(s, int(slot[s, j])) for s, j in zip(*np.nonzero(cont), strict=True)})
    w_next = np.zeros((len(groups), S))
    for g, (s, k) in enumerate(groups):
        for j in np.flatnonzero(cont[s] & (slot[s] == k)):
            w_next[g, nxt[s, j]] += probs[s, j]
    agg = np.zeros((S, len(groups)))
    agg[[s for s, _ in groups], np.arange(len(groups))] = 1.0
    term_w = np.zeros((S, num_laws))
    np.add.at(term_w, (np.nonzero(fin)[0], slot[fin]), probs[fin])
    return groups, w_next, agg, term_w


def _reward_lattice(laws, used_slots, shifts: tuple[float, float], half: float, delta: float):
    """Every used reward law's pmf on one reward lattice of spacing ``delta`` (its range
    clipped to +-2 ``half``), shifted by each of ``shifts``: (first index, length, and per
    shift the pmfs f[L, M] with their W1 discretisation errors f[L])."""
    ranges = []
    for k in used_slots:
        q = np.asarray(laws[k].quantile([1e-10, 1 - 1e-10]))
        for sh in shifts:
            ranges += [max(q[0] - sh, -2 * half), min(q[1] - sh, 2 * half)]
    kr_lo, kr_hi = int(np.floor(min(ranges) / delta)), int(np.ceil(max(ranges) / delta))
    mr = max(kr_hi - kr_lo + 1, 2)
    out = []
    for sh in shifts:
        pmf, err = np.zeros((len(laws), mr)), np.zeros(len(laws))
        for k in used_slots:
            pmf[k], err[k] = _reward_pmf(laws[k], sh, kr_lo, mr, delta)
        out.append((pmf, err))
    return kr_lo, mr, *out


def _projection(i0: int, gamma: float, delta: float):
    """gamma-scaling then Cramer projection onto the lattice of 2 i0 + 1 points around its
    centre, as a sparse matrix, and each point's coupling cost of the projection."""
    m = 2 * i0 + 1
    idx = np.arange(m)
    t = i0 + (idx - i0) * gamma
    low = np.clip(np.floor(t).astype(np.int64), 0, m - 2)
    w = t - low
    proj = sparse.csr_matrix(
        (
            np.concatenate([1 - w, w]),
            (np.concatenate([idx, idx]), np.concatenate([low, low + 1])),
        ),
        shape=(m, m),
    )
    return proj, 2.0 * w * (1.0 - w) * delta


def _solve(problem, lo_v: float, hi_v: float, delta_f: float, tol_final: float):
    """Coarse-to-fine lattice DP on [lo_v, hi_v] down to spacing delta_f.

    Returns the per-state lattice laws and their W1 bounds.
    """
    laws, probs, nxt, term, slot, gamma, p_cont, resolvent, scale = problem
    S = probs.shape[0]
    used = probs > 0
    cont, fin = used & ~term, used & term
    eye = np.eye(S)
    used_slots = np.unique(slot[used])
    levels = max(0, int(np.ceil(np.log2((hi_v - lo_v) / delta_f / COARSE_LATTICE))))
    delta = delta_f * 2.0**levels
    # DP runs on G - c. With discrete rewards and 0 in range, c = 0 keeps a zero reward and
    # the atom at return 0 exact; otherwise centring (c on the coarse lattice) halves the
    # lattice, and keeps lattice-valued rewards aligned when gamma = 1.
    discrete = all(isinstance(laws[k], exact.Atoms) for k in used_slots)
    if discrete and lo_v <= 0.0 <= hi_v:
        c = 0.0
    else:
        c = float(np.round(0.5 * (lo_v + hi_v) / delta) * delta)
    i0 = int(np.ceil(max(c - lo_v, hi_v - c) / delta))
    half = i0 * delta
    shift_c, shift_t = c * (1.0 - gamma), c

    # Initial bound: W1(delta_c, G_s) <= E|G_s - c| <= sum_t gamma^t E|R_t - shift_t|.
    abs_c = np.array([2.0 * law.upper(shift_c) - (law.mean - shift_c) for law in laws])
    abs_t = np.array([2.0 * law.upper(shift_t) - (law.mean - shift_t) for law in laws])
    a = (probs * np.where(term, abs_t[slot], abs_c[slot])).sum(axis=1)
    bound = resolvent @ a
    eta = np.zeros((S, 2 * i0 + 1))
    eta[:, i0] = 1.0

    groups, w_next, agg, term_w = _outcome_groups(probs, nxt, slot, cont, fin, len(laws))
    one_group_per_state = len(groups) == S and np.array_equal(agg, eye)

    for level in range(levels, -1, -1):
        if level < levels:  # embed the coarser solution exactly: point i -> 2i
            delta, i0 = delta / 2.0, 2 * i0
            finer = np.zeros((S, 2 * i0 + 1))
            finer[:, ::2] = eta
            eta = finer
        m = 2 * i0 + 1
        proj, proj_cost = _projection(i0, gamma, delta)
        kr_lo, mr, (pmf_c, err_c), (pmf_t, err_t) = _reward_lattice(
            laws, used_slots, (shift_c, shift_t), half, delta
        )
        ext_len = m + mr - 1
        nfft = scipy.fft.next_fast_len(ext_len, real=True)
        group_fft = scipy.fft.rfft(pmf_c[[k for _, k in groups]], nfft, axis=1)
        term_ext = np.zeros((S, ext_len))
        term_ext[:, i0 : i0 + mr] = term_w @ pmf_t
        # ext index n holds return index n + kr_lo; outside [0, m) is clipped to the ends.
        n_lo, n_hi = max(0, -kr_lo), min(ext_len, m - kr_lo)
        dist_below = (n_lo - np.arange(n_lo)) * delta  # distance moved up to index 0
        dist_above = (np.arange(n_hi, ext_len) + kr_lo - (m - 1)) * delta
        step_err = (probs * np.where(term, err_t[slot], err_c[slot])).sum(axis=1)
        width = 2.0 * half
        tol = tol_final if level == 0 else 0.5  # stop once E is near its limit
        for _ in range(MAX_ITERS):
            proj_err = eta @ proj_cost  # coupling cost of projecting gamma * eta, per state
            scaled = (proj.T @ eta.T).T
            mixed = w_next @ scaled
            conv = scipy.fft.irfft(scipy.fft.rfft(mixed, nfft, axis=1) * group_fft, nfft, axis=1)
            ext = (conv[:, :ext_len] if one_group_per_state else agg @ conv[:, :ext_len]) + term_ext
            neg = -np.minimum(ext, 0.0).sum(axis=1)  # FFT round-off
            ext = np.maximum(ext, 0.0)
            low_part, high_part = ext[:, :n_lo], ext[:, n_hi:]
            clip_cost = low_part @ dist_below + high_part @ dist_above
            new = np.zeros((S, m))
            new[:, n_lo + kr_lo : n_hi + kr_lo] = ext[:, n_lo:n_hi]
            new[:, 0] += low_part.sum(axis=1)
            new[:, -1] += high_part.sum(axis=1)
            mass = new.sum(axis=1)
            noise = (2.0 * neg + np.abs(mass - 1.0) + 1e-15 * m) * width
            eta = new / mass[:, None]
            e = step_err + clip_cost + noise + p_cont @ proj_err
            bound = e + gamma * (p_cont @ bound)
            steady = resolvent @ e
            if np.max(bound - steady) <= tol * np.max(steady) + 1e-12 * scale:
                break
    locs = c + (np.arange(2 * i0 + 1) - i0) * delta
    return [exact.Atoms(locs, eta[s]) for s in range(S)], bound
