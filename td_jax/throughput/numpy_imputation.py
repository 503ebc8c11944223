"""td_jax's expectile imputation and mean readout in numpy, vectorised over rows (learners).

A port of ``td_jax.rules.expectile`` (``impute_samples``, ``expectile_mean`` and their
helpers; the maths is documented there): the count-reading start, then exact closed-form
solves of the current linear piece, keeping the best iterate. Arrays are ``[L, m]``
expectiles and ``[L, N]`` samples, float32, with the levels ``[m]`` shared by every row.
Prefix sums use the same log-depth scan as td_jax (``jax.lax.associative_scan``'s order of
additions), so that both sides round alike. No jax here (see ``numpy_rules``).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.125)  # td_jax.rules.expectile.STEP_FRACTIONS
_TINY = 1e-12
CHUNK_ROWS = 8192  # rows imputed together: bounds the [rows, m, N] temporaries


def expectile_residuals(x: np.ndarray, e: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``mean_j [tau_i (x_j - e_i)_+ - (1 - tau_i)(e_i - x_j)_+]``; x, e: [..., n], [..., m]."""
    diff = x[..., None, :] - e[..., :, None]
    t = taus[:, None]
    return np.mean(t * np.maximum(diff, 0) - (1 - t) * np.maximum(-diff, 0), axis=-1)


def _scan(x: np.ndarray, axis: int) -> np.ndarray:
    """Inclusive prefix sum along ``axis`` in ``jax.lax.associative_scan``'s order."""
    num = x.shape[axis]
    if num < 2:
        return x
    take = lambda a, s: a[(slice(None),) * (axis % a.ndim) + (s,)]  # noqa: E731
    odd = _scan(take(x, slice(0, -1, 2)) + take(x, slice(1, None, 2)), axis)
    head = take(odd, slice(0, -1)) if num % 2 == 0 else odd
    even = np.concatenate([take(x, slice(0, 1)), head + take(x, slice(2, None, 2))], axis)
    out = np.empty_like(x)
    out[(slice(None),) * (axis % x.ndim) + (slice(0, None, 2),)] = even
    out[(slice(None),) * (axis % x.ndim) + (slice(1, None, 2),)] = odd
    return out


def _prefix(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``[0, x_0, x_0 + x_1, ...]`` along ``axis``."""
    zero = np.zeros_like(np.take(x, [0], axis))
    return np.concatenate([zero, _scan(x, axis)], axis)


def _cat(*parts: np.ndarray) -> np.ndarray:
    """Concatenates along the last axis; ``[L]`` parts count as one column."""
    return np.concatenate([p[:, None] if p.ndim == 1 else p for p in parts], axis=-1)


def _clip(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


def _bracket(e: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation at tau = 0.5 between the levels either side, and its error bound."""
    a = int(np.argmax(np.where(t <= 0.5, t, -np.inf)))
    b = int(np.argmin(np.where(t >= 0.5, t, np.inf)))
    t_a, t_b, e_a, e_b = t[a], t[b], e[:, a], e[:, b]
    gap = t_b - t_a if t_b > t_a else F32(1.0)
    frac = _clip((F32(0.5) - t_a) / gap if t_b > t_a else F32(0.0), F32(0.0), F32(1.0))
    half = np.maximum((F32(1.0) - 2 * t_a) * (2 * t_b - F32(1.0)), F32(0.0)) / (2 * gap)
    return e_a + frac * (e_b - e_a), np.abs(e_b - e_a) * half


def _mean_estimate(e: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``expectile_mean`` for sorted rows e [L, m] and sorted levels t [m]."""
    mean0, bound = _bracket(e, t)
    mu = mean0
    if e.shape[1] >= 3:
        informative = np.abs(1 - 2 * t) > 1e-3
        alpha = (1 - t) / np.where(informative, 1 - 2 * t, F32(1.0))
        width = np.maximum(np.diff(e), _TINY)
        dg = np.diff(-np.diff(alpha * e) / width)
        dh = np.diff(np.diff(alpha) / width)
        valid = np.abs(dh) > 1e-6 * np.max(np.abs(dh), axis=1, keepdims=True)
        root = -dg / np.where(valid, dh, F32(1.0))
        lo = np.max(np.where(valid & (dh > 0), root, -np.inf), axis=1).astype(F32)
        hi = np.min(np.where(valid & (dh < 0), root, np.inf), axis=1).astype(F32)
        mu = _clip(mu, np.minimum(lo, hi), np.maximum(lo, hi))
    return _clip(mu, mean0 - bound, mean0 + bound)


def _start(e: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Samples from the cell-average CDFs the expectiles imply (td_jax's ``_start``)."""
    rows, m = e.shape
    w = 1 - 2 * t
    informative = np.abs(w) > 1e-3
    mu = _mean_estimate(e, t)[:, None]
    u = (1 - t) * (mu - e) / np.where(informative, w, F32(1.0))
    e_l, e_r = np.roll(e, 1, axis=1), np.roll(e, -1, axis=1)
    u_l, u_r = np.roll(u, 1, axis=1), np.roll(u, -1, axis=1)
    u_mid = u_l + (u_r - u_l) * (e - e_l) / np.maximum(e_r - e_l, _TINY)
    interior = (np.arange(m) > 0) & (np.arange(m) < m - 1)
    u = np.where(informative, u, np.where(interior, u_mid, F32(0.5) * np.abs(mu - e)))
    width = np.diff(e)
    fbar = _clip(1 + np.diff(u) / np.maximum(width, _TINY), F32(0.0), F32(1.0))
    fbar = np.maximum.accumulate(np.where(width > 0, fbar, F32(0.0)), axis=1)
    if m >= 3:
        f_l, f_r, w_l, w_r = fbar[:, :-1], fbar[:, 1:], width[:, :-1], width[:, 1:]
        rise = np.diff(fbar)
        rise_l = _cat(rise[:, :1], rise[:, :-1])
        rise_r = _cat(rise[:, 1:], rise[:, -1:])
        eps = F32(1e-3 / n)
        share = (rise_l + eps * w_l / np.maximum(w_l + w_r, _TINY)) / (rise_l + rise_r + eps)
        first = fbar[:, 0] - (fbar[:, 1] - fbar[:, 0]) * width[:, 0] / np.maximum(
            width[:, 0] + width[:, 1], _TINY
        )
        last = fbar[:, -1] + (fbar[:, -1] - fbar[:, -2]) * width[:, -1] / np.maximum(
            width[:, -1] + width[:, -2], _TINY
        )
        f_at = _cat(first, f_l + (f_r - f_l) * share, last)
    else:
        f_at = _cat(fbar, fbar)
    lower_tail = np.maximum(u[:, 0] - (mu[:, 0] - e[:, 0]), F32(0.0))  # E(e_1 - X)_+
    upper_tail = np.maximum(u[:, -1], F32(0.0))  # E(X - e_m)_+
    zeros, ones = np.zeros((rows, 1), F32), np.ones((rows, 1), F32)
    lo = np.ceil(n * _cat(zeros, fbar) - F32(1e-4))
    hi = np.floor(n * _cat(fbar, ones) + F32(1e-4))
    k = _clip(np.round(n * f_at), np.minimum(lo, hi), np.maximum(lo, hi))
    k = np.maximum.accumulate(_clip(k, F32(0.0), F32(n)), axis=1)
    k_min = np.where(lower_tail > 0, F32(1.0), F32(0.0))[:, None]
    k = _clip(k, k_min, np.where(upper_tail > 0, F32(n - 1), F32(n))[:, None])
    edges = _cat(zeros, k)  # first sample of each cell
    count = np.maximum(np.diff(_cat(edges, n * ones)), F32(1.0))
    d_lo = n * lower_tail / count[:, 0]
    d_hi = n * upper_tail / count[:, -1]
    left = _cat(e[:, 0] - F32(1.5) * d_lo, e[:, :-1], e[:, -1] + F32(0.5) * d_hi)
    span = _cat(d_lo, width, d_hi)
    j = np.arange(n, dtype=F32)
    cell = np.count_nonzero(k[:, None, :] <= j[None, :, None], axis=2)  # [L, n]
    pick = lambda a: np.take_along_axis(a, cell, axis=1)  # noqa: E731
    return pick(left) + (j - pick(edges) + F32(0.5)) / pick(count) * pick(span)


def _spread_start(e: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """td_jax's ``_spread_start``: sorted e at N even levels, spread x2 about their mean."""
    grid = (np.arange(n, dtype=F32) + F32(0.5)) / F32(n)
    mean = e.mean(axis=1, keepdims=True)
    # np.interp's weights, computed once: the levels are shared by every row.
    hi = np.clip(np.searchsorted(t, grid, side="right"), 1, t.size - 1)
    gap = t[hi] - t[hi - 1]
    w = np.where(gap > 0, (grid - t[hi - 1]) / np.where(gap > 0, gap, F32(1.0)), F32(1.0))
    w = np.clip(w, 0, 1).astype(F32)
    x = e[:, hi - 1] + w * (e[:, hi] - e[:, hi - 1])
    return (mean + 2 * (x - mean)).astype(F32)


def _objective(x: np.ndarray, e: np.ndarray, t: np.ndarray) -> np.ndarray:
    res = expectile_residuals(x, e, t)
    return np.sum(res * res, axis=-1)


def _residuals(x: np.ndarray, e: np.ndarray, t: np.ndarray, n: int):
    """Residuals at sorted x on their linear piece, and the piece's coefficients."""
    ki = np.count_nonzero(x[:, None, :] <= e[:, :, None], axis=2)  # [L, m], nondecreasing
    k = ki.astype(F32)
    prefix = _prefix(x)  # [L, n+1]
    s_k, s_n = np.take_along_axis(prefix, ki, axis=1), prefix[:, n : n + 1]
    a = np.where((ki > 0) & (ki < n), 1 - 2 * t, F32(0.0))
    c = np.where(ki == n, 1 - t, t)
    b = e * ((1 - t) * k + t * (n - k))
    res = (a * s_k + c * s_n - b) / F32(n)
    return res, (ki, k, s_k, s_n, a, b, c)


def _propose(x: np.ndarray, e: np.ndarray, t: np.ndarray, n: int, parts) -> np.ndarray:
    """The least-squares minimiser of the linear piece at x (td_jax's ``_propose``)."""
    ki, k, s_k, s_n, a, b, c = parts
    same = (ki[:, None, :] == ki[:, :, None]).astype(F32)  # [L, m, m]: runs of a count
    run = np.sum(same[..., None] * np.stack([a * a, a * b, a * c], 2)[:, None], axis=2)
    aa, ab, ac = run[..., 0], run[..., 1], run[..., 2]
    ok = aa > 1e-8  # a run of tau = 0.5 levels leaves its S_k free: kept
    inv = np.where(ok, 1 / np.where(ok, aa, F32(1.0)), F32(0.0))
    alpha = c - a * ac * inv
    beta = np.where(ok, a * ab * inv, a * s_k) - b
    den = np.sum(alpha * alpha, axis=1, keepdims=True)
    good = den > 1e-6
    s_n_new = np.where(
        good, -np.sum(alpha * beta, axis=1, keepdims=True) / np.where(good, den, F32(1.0)), s_n
    )
    s_new = np.where(ok, (ab - ac * s_n_new) * inv, s_k)
    s_new = np.where(ki == 0, F32(0.0), np.where(ki == n, s_n_new, s_new))
    zero = np.zeros_like(s_n)
    knots = _cat(zero, k, zero + n)
    shift = _cat(zero, s_new - s_k, s_n_new - s_n)
    per_cell = np.diff(shift) / np.maximum(np.diff(knots), F32(1.0))  # [L, m+1]
    cell = np.count_nonzero(e[:, None, :] < x[:, :, None], axis=2)  # [L, n]
    return x + np.take_along_axis(per_cell, cell, axis=1)


def expectile_mean(e: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """td_jax's ``expectile_mean`` for each row of ``e [L, m]``: ``f32[L]``."""
    e = np.sort(np.asarray(e, F32), axis=-1)
    return _mean_estimate(e, np.sort(np.asarray(taus, F32)))


def impute_samples(e: np.ndarray, taus: np.ndarray, n: int, iterations: int) -> np.ndarray:
    """td_jax's ``impute_samples`` for each row of ``e [L, m]``: ``f32[L, n]``.

    Rows go in chunks of ``CHUNK_ROWS`` so that memory stays bounded.
    """
    e = np.asarray(e, F32)
    if len(e) > CHUNK_ROWS:
        parts = [
            _impute(e[i : i + CHUNK_ROWS], taus, n, iterations)
            for i in range(0, len(e), CHUNK_ROWS)
        ]
        return np.concatenate(parts)
    return _impute(e, taus, n, iterations)


def _impute(e: np.ndarray, taus: np.ndarray, n: int, iterations: int) -> np.ndarray:
    rows, m = e.shape
    if m == 1 or rows == 0:
        return np.broadcast_to(e[:, :1], (rows, n)).astype(F32)
    t = np.sort(np.asarray(taus, F32))
    e = np.sort(e, axis=1)
    center = e[:, m // 2 : m // 2 + 1]
    e = e - center
    # td_jax's two starts, the better kept, then each solve's step or the best fraction of it.
    x_count, x_spread = _start(e, t, n), _spread_start(e, t, n)
    f_count, f_spread = _objective(x_count, e, t), _objective(x_spread, e, t)
    take = f_count <= f_spread
    best = np.where(take[:, None], x_count, x_spread)
    f_best = np.where(take, f_count, f_spread)
    fractions = np.asarray(STEP_FRACTIONS, F32)[None, :, None]
    rows_idx = np.arange(rows)
    for _ in range(iterations):
        _, parts = _residuals(best, e, t, n)
        proposal = _propose(best, e, t, n, parts)
        cands = best[:, None, :] + fractions * (proposal - best)[:, None, :]  # [L, 4, N]
        fs = _objective(cands, e[:, None, :], t)
        i = np.argmin(fs, axis=1)
        f = fs[rows_idx, i]
        better = f < f_best
        best = np.where(better[:, None], np.sort(cands[rows_idx, i], axis=1), best)
        f_best = np.where(better, f, f_best)
    return best + center
