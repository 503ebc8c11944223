"""Exact float64 distribution functions: the ground-truth side of rewards and returns.

Every law here is known in closed form (or as a finite mixture of closed forms), so its
mean, variance, CDF, quantiles and expectiles are computed, not estimated. The one
primitive each law must supply besides the CDF and quantile is the upper partial moment
``U(e) = E[(X - e)_+]``: expectiles, E|X|, the Cramer projection onto a lattice and the
Wasserstein-1 error of a quantile table all follow from it without numerical integration.

Definitions (SCIENCE.md section 5):
  tau-quantile: ``inf{x : F(x) >= tau}``;
  tau-expectile ``e``: ``tau * E[(X - e)_+] = (1 - tau) * E[(e - X)_+]`` (Newey and Powell,
  Econometrica 1987), the unique root, found by bisection to float64 precision.
"""

from __future__ import annotations

import abc

import numpy as np
from scipy import special

ArrayLike = float | np.ndarray

_BISECT_ITERS = 200


def _as_array(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _out(x_in: ArrayLike, value: np.ndarray) -> ArrayLike:
    """Scalars in, float out; arrays in, arrays of the same shape out."""
    return float(value) if np.ndim(x_in) == 0 else value


def check_levels(taus: ArrayLike, *, open_interval: bool) -> np.ndarray:
    arr = _as_array(taus)
    ok = (arr > 0.0) & (arr < 1.0) if open_interval else (arr >= 0.0) & (arr <= 1.0)
    if not np.all(ok):
        allowed = "in the open interval (0, 1)" if open_interval else "in [0, 1]"
        bad = arr[~ok].reshape(-1)[0]
        raise ValueError(f"tau must be {allowed}, got {float(bad)!r}")
    return arr


class Law(abc.ABC):
    """A real-valued distribution with exact float64 functionals.

    Subclasses set ``mean`` and ``variance`` and implement ``_cdf``, ``_quantile`` and
    ``_upper`` on float64 arrays.
    """

    mean: float
    variance: float

    def cdf(self, x: ArrayLike) -> ArrayLike:
        return _out(x, self._cdf(_as_array(x)))

    def quantile(self, tau: ArrayLike) -> ArrayLike:
        """``inf{x : F(x) >= tau}`` for tau in [0, 1] (tau = 0 gives the lower support end)."""
        return _out(tau, self._quantile(check_levels(tau, open_interval=False)))

    def upper(self, e: ArrayLike) -> ArrayLike:
        """Upper partial moment ``E[(X - e)_+]``."""
        return _out(e, self._upper(_as_array(e)))

    def expectile(self, tau: ArrayLike) -> ArrayLike:
        """The tau-expectile for tau in (0, 1); the 0.5-expectile is the mean."""
        t = check_levels(tau, open_interval=True)
        return _out(tau, self._expectile(t))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    def mean_abs(self) -> float:
        """E|X| = E[X_+] + E[X_-] = 2 U(0) - E[X]."""
        return float(2.0 * self._upper(np.zeros(()))) - self.mean

    def spread(self) -> float:
        """A scale for brackets and grids: the std if finite, else an interquantile range."""
        if np.isfinite(self.variance):
            return float(np.sqrt(self.variance))
        q = self._quantile(np.array([0.25, 0.75]))
        return float(q[1] - q[0]) / 1.349

    def _expectile(self, t: np.ndarray) -> np.ndarray:
        def g(e: np.ndarray) -> np.ndarray:
            # tau * E[(X-e)_+] - (1-tau) * E[(e-X)_+], with E[(e-X)_+] = U(e) - mean + e.
            u = self._upper(e)
            return t * u - (1.0 - t) * (u - self.mean + e)

        width = max(self.spread(), 1e-12 * (1.0 + abs(self.mean)), 1e-300)
        lo = np.full_like(t, self.mean - width)
        hi = np.full_like(t, self.mean + width)
        # g is decreasing in e; widen until g(lo) >= 0 >= g(hi).
        for _ in range(2000):
            need_lo, need_hi = g(lo) < 0, g(hi) > 0
            if not (need_lo.any() or need_hi.any()):
                break
            lo = np.where(need_lo, self.mean - 2.0 * (self.mean - lo), lo)
            hi = np.where(need_hi, self.mean + 2.0 * (hi - self.mean), hi)
        for _ in range(_BISECT_ITERS):
            mid = 0.5 * (lo + hi)
            pos = g(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
            if np.all(hi - lo <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mid))):
                break
        return 0.5 * (lo + hi)

    @abc.abstractmethod
    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x), elementwise."""

    @abc.abstractmethod
    def _quantile(self, t: np.ndarray) -> np.ndarray:
        """inf{x : F(x) >= t}, elementwise, for t in (0, 1)."""

    @abc.abstractmethod
    def _upper(self, e: np.ndarray) -> np.ndarray:
        """E[(X - e)_+], elementwise: the upper partial moment the expectiles solve with."""


class Atoms(Law):
    """A finitely supported law: sorted locations with positive probabilities.

    Atoms closer than ``merge_tol`` (relative) are merged, so sums built along different
    paths (e.g. r1 + gamma*r2 computed in two orders) count as one outcome.
    """

    def __init__(self, locs: ArrayLike, probs: ArrayLike, merge_tol: float = 1e-12):
        locs, probs = _as_array(locs).reshape(-1), _as_array(probs).reshape(-1)
        keep = probs > 0
        locs, probs = locs[keep], probs[keep]
        if locs.size == 0:
            raise ValueError("Atoms needs at least one atom with positive probability")
        order = np.argsort(locs, kind="stable")
        locs, probs = locs[order], probs[order] / probs.sum()
        new_group = np.ones(locs.size, dtype=bool)
        new_group[1:] = np.diff(locs) > merge_tol * np.maximum(1.0, np.abs(locs[1:]))
        group = np.cumsum(new_group) - 1
        self.probs = np.bincount(group, weights=probs)
        self.locs = locs[new_group]
        self.mean = float(np.dot(self.probs, self.locs))
        self.variance = float(np.dot(self.probs, (self.locs - self.mean) ** 2))
        self._cum = np.cumsum(self.probs)
        # Tail sums from the right: P(X >= x_k) and E[X; X >= x_k].
        self._tail_p = np.concatenate([np.cumsum(self.probs[::-1])[::-1], [0.0]])
        self._tail_px = np.concatenate([np.cumsum((self.probs * self.locs)[::-1])[::-1], [0.0]])

    @property
    def size(self) -> int:
        return int(self.locs.size)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.locs, x, side="right")
        return np.where(k > 0, self._cum[np.maximum(k - 1, 0)], 0.0)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        # Tolerance so that tau equal to a cumulative probability is not lost to rounding.
        k = np.searchsorted(self._cum, t - 1e-12, side="left")
        return self.locs[np.clip(k, 0, self.locs.size - 1)]

    def _upper(self, e: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.locs, e, side="right")  # first atom strictly above e
        return self._tail_px[k] - e * self._tail_p[k]


class Normal(Law):
    """N(m, s^2); U(e) = s*phi(z) + (m - e)*(1 - Phi(z)), z = (e - m)/s."""

    def __init__(self, m: float, s: float):
        self.m, self.s = float(m), float(s)
        self.mean, self.variance = self.m, self.s**2

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.ndtr((x - self.m) / self.s)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        return self.m + self.s * special.ndtri(t)

    def _upper(self, e: np.ndarray) -> np.ndarray:
        z = (e - self.m) / self.s
        phi = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        return self.s * phi + (self.m - e) * special.ndtr(-z)


class Exponential(Law):
    """Exponential with mean ``b`` on [0, inf); U(e) = b*exp(-e/b) for e >= 0."""

    def __init__(self, b: float):
        self.b = float(b)
        self.mean, self.variance = self.b, self.b**2

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0.0) / self.b), 0.0)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return -self.b * np.log1p(-t)

    def _upper(self, e: np.ndarray) -> np.ndarray:
        return np.where(e >= 0, self.b * np.exp(-np.maximum(e, 0.0) / self.b), self.b - e)


class LogNormal(Law):
    """exp(N(mu, sigma^2)); E[X; X > e] = exp(mu + sigma^2/2) * Phi((mu + sigma^2 - ln e)/sigma)."""

    def __init__(self, mu: float, sigma: float):
        self.mu, self.sigma = float(mu), float(sigma)
        self.mean = float(np.exp(self.mu + 0.5 * self.sigma**2))
        self.variance = float(np.expm1(self.sigma**2) * np.exp(2 * self.mu + self.sigma**2))

    def _z(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(np.maximum(x, 0.0)) - self.mu) / self.sigma

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, special.ndtr(self._z(x)), 0.0)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        return np.exp(self.mu + self.sigma * special.ndtri(t))

    def _upper(self, e: np.ndarray) -> np.ndarray:
        z = self._z(e)
        tail = self.mean * special.ndtr(self.sigma - z) - e * special.ndtr(-z)
        return np.where(e > 0, tail, self.mean - e)


class StudentT(Law):
    """Standard Student t with ``df`` > 1 degrees of freedom.

    E[T; T > e] = (df + e^2)/(df - 1) * f(e), which is finite exactly when df > 1.
    """

    def __init__(self, df: float):
        self.df = float(df)
        self.mean = 0.0
        self.variance = self.df / (self.df - 2.0) if self.df > 2.0 else float("inf")
        self._log_norm = (
            special.gammaln(0.5 * (self.df + 1))
            - special.gammaln(0.5 * self.df)
            - 0.5 * np.log(self.df * np.pi)
        )

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self._log_norm - 0.5 * (self.df + 1) * np.log1p(x * x / self.df))

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return special.stdtr(self.df, x)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        return np.where(
            t <= 0, -np.inf, np.where(t >= 1, np.inf, special.stdtrit(self.df, np.clip(t, 0, 1)))
        )

    def _upper(self, e: np.ndarray) -> np.ndarray:
        tail_mean = (self.df + e * e) / (self.df - 1.0) * self._pdf(e)
        return tail_mean - e * special.stdtr(self.df, -e)


class Uniform(Law):
    """Uniform on [a, b]; U(e) = (b - e)^2 / (2 (b - a)) inside the interval."""

    def __init__(self, a: float, b: float):
        self.a, self.b = float(a), float(b)
        self.mean, self.variance = 0.5 * (self.a + self.b), (self.b - self.a) ** 2 / 12.0

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.a) / (self.b - self.a), 0.0, 1.0)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        return self.a + (self.b - self.a) * t

    def _upper(self, e: np.ndarray) -> np.ndarray:
        inside = (self.b - np.clip(e, self.a, self.b)) ** 2 / (2.0 * (self.b - self.a))
        return np.where(e < self.a, self.mean - e, inside)


class Affine(Law):
    """``loc + scale * X`` for scale > 0: the standardising map every reward family shares."""

    def __init__(self, base: Law, loc: float, scale: float):
        self.base, self.loc, self.scale = base, float(loc), float(scale)
        self.mean = self.loc + self.scale * base.mean
        self.variance = self.scale**2 * base.variance

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self.base._cdf((x - self.loc) / self.scale)

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        return self.loc + self.scale * self.base._quantile(t)

    def _upper(self, e: np.ndarray) -> np.ndarray:
        return self.scale * self.base._upper((e - self.loc) / self.scale)


class Mixture(Law):
    """A finite mixture. Quantiles by bisection inside [min_k q_k(tau), max_k q_k(tau)]."""

    def __init__(self, laws: list[Law], weights: ArrayLike):
        w = _as_array(weights)
        self.laws, self.weights = list(laws), w / w.sum()
        self.mean = float(
            sum(wk * law.mean for wk, law in zip(self.weights, self.laws, strict=True))
        )
        second = sum(
            wk * (law.variance + law.mean**2)
            for wk, law in zip(self.weights, self.laws, strict=True)
        )
        self.variance = float(second - self.mean**2) if np.isfinite(second) else float("inf")

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return sum(wk * law._cdf(x) for wk, law in zip(self.weights, self.laws, strict=True))

    def _upper(self, e: np.ndarray) -> np.ndarray:
        return sum(wk * law._upper(e) for wk, law in zip(self.weights, self.laws, strict=True))

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        qs = np.stack([law._quantile(t) for law in self.laws])
        lo, hi = qs.min(axis=0), qs.max(axis=0)
        interior = (t > 0) & (t < 1) & (hi > lo)
        lo_i, hi_i = np.where(interior, lo, 0.0), np.where(interior, hi, 0.0)
        for _ in range(_BISECT_ITERS):
            mid = 0.5 * (lo_i + hi_i)
            above = self._cdf(mid) >= t
            lo_i, hi_i = np.where(above, lo_i, mid), np.where(above, mid, hi_i)
            if np.all(hi_i - lo_i <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mid))):
                break
        return np.where(interior, hi_i, np.where(t <= 0, lo, hi))


def affine(law: Law, loc: float, scale: float) -> Law:
    """``loc + scale * X``; the law itself for the identity, atoms for atoms (so that exact
    enumeration still applies)."""
    if loc == 0.0 and scale == 1.0:
        return law
    if isinstance(law, Atoms):
        return Atoms(loc + scale * law.locs, law.probs)
    return Affine(law, loc, scale)


def mixture(laws: list[Law], weights: ArrayLike) -> Law:
    """Mixture with zero-weight parts dropped; all-atomic mixtures stay exactly atomic."""
    w = _as_array(weights)
    parts = [(law, wk) for law, wk in zip(laws, w, strict=True) if wk > 0]
    if len(parts) == 1:
        return parts[0][0]
    if all(isinstance(law, Atoms) for law, _ in parts):
        locs = np.concatenate([law.locs for law, _ in parts])
        probs = np.concatenate([law.probs * wk for law, wk in parts])
        return Atoms(locs, probs)
    return Mixture([law for law, _ in parts], [wk for _, wk in parts])


def midpoint_levels(n: int) -> np.ndarray:
    """tau_i = (2i - 1) / (2n), i = 1..n: the levels of an n-atom quantile table."""
    return (2.0 * np.arange(1, n + 1) - 1.0) / (2.0 * n)


def _tail_integral(law: Law, u: np.ndarray) -> np.ndarray:
    """M(u) = int_u^1 F^{-1}(v) dv = U(q_u) + q_u (1 - u), with M(0) = mean, M(1) = 0.

    Valid for any law (atoms included): on a flat stretch of F^{-1} the expression does
    not depend on which q_u is taken.
    """
    inner = (u > 0) & (u < 1)
    q = law._quantile(np.where(inner, u, 0.5))
    m = law._upper(q) + q * (1.0 - u)
    return np.where(u <= 0, law.mean, np.where(u >= 1, 0.0, m))


def quantization_w1(law: Law, n: int) -> float:
    """Exact W1 between ``law`` and its n equally weighted mid-level quantile atoms.

    Per cell [a, b] with atom q at the midpoint level m:
    int_a^b |F^{-1}(v) - q| dv = q (m - a) - (M(a) - M(m)) + (M(m) - M(b)) - q (b - m).
    """
    a = np.arange(n) / n
    b = np.arange(1, n + 1) / n
    m = midpoint_levels(n)
    q = law._quantile(m)
    ma, mm, mb = _tail_integral(law, a), _tail_integral(law, m), _tail_integral(law, b)
    cells = q * (m - a) - (ma - mm) + (mm - mb) - q * (b - m)
    return float(np.sum(np.maximum(cells, 0.0)))


def w1_discrete(
    locs_a: ArrayLike, probs_a: ArrayLike, locs_b: ArrayLike, probs_b: ArrayLike
) -> float:
    """Exact W1 between two weighted-atom distributions: the integral of |F_a - F_b|."""
    la, pa = _as_array(locs_a).reshape(-1), _as_array(probs_a).reshape(-1)
    lb, pb = _as_array(locs_b).reshape(-1), _as_array(probs_b).reshape(-1)
    grid = np.union1d(la, lb)
    fa = np.cumsum(np.bincount(np.searchsorted(grid, la), weights=pa, minlength=grid.size))
    fb = np.cumsum(np.bincount(np.searchsorted(grid, lb), weights=pb, minlength=grid.size))
    fa, fb = fa / fa[-1], fb / fb[-1]
    return float(np.sum(np.abs(fa - fb)[:-1] * np.diff(grid)))
