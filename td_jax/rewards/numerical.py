"""A law known only through its CDF: the truth side of a registered reward family.

``Numerical(cdf)`` gives a numpy CDF the interface of every exact law
(``td_jax.rewards.exact.Law``): quantiles by bisection on the CDF, and the mean, the
variance and the upper partial moment ``U(e) = E[(X - e)_+]`` (hence expectiles) by
quadrature of tail integrals (Gauss-Legendre, and QUADPACK's adaptive QAGS, Piessens et al.
1983, through ``scipy.integrate.quad``, where it is not enough):

  E[X] = m + int_0^inf S(m + y) dy - int_0^inf F(m - y) dy,      m the median, S = 1 - F;
  E[(X - m)^2] = 2 int_0^inf y S(m + y) dy + 2 int_0^inf y F(m - y) dy;
  U(e) = int_e^inf S(x) dx (e >= m), or E[X] - e + int_-inf^e F(x) dx (e < m).

Tails: each tail integral runs over doubling pieces ``[0, s], [s, 2s], [2s, 4s], ...`` (``s``
the law's spread, ``(q_0.9 - q_0.1) / 2.563``; Gauss-Legendre on every piece, adaptive
quadrature where 24 and 48 nodes disagree) out to ``Y``, the first piece end where the tail
probability ``G`` (``1 - F(m + y)`` or ``F(m - y)``) is at most ``TAIL_LEVEL`` = 1e-12.
Beyond ``Y`` the tail is taken to be the power law ``G(y) ~ C y^-a`` it is there: ``a`` is
the log-log slope of ``G`` over ``[Y / 4, Y]``, the p-th moment (p = 1 the mean, 2 the
variance) is finite iff ``a > p`` (decided with a margin: ``a <= p + MARGIN`` = 0.02 is
taken as divergent, the value being then all extrapolation), and the rest of the integral
is the power law's, ``p Y^p G(Y) / (a - p)`` (negligible for light tails, where ``a`` is
large or ``G(Y)`` is 0). So Student t has a finite mean for df > 1 and a finite variance
``df / (df - 2)`` for df > 2 (and ``inf`` for 1 < df <= 2); a Cauchy law (df = 1), whose
mean does not exist, is refused. The divergence is decided from the tail itself, never from
a quadrature warning.

Tolerance (``tests/test_reward_mixture.py`` and ``tests/test_registered_rewards.py`` check it
against scipy.stats): quantiles to float64 resolution in x (``inf{x : F(x) >= tau}``, atoms
and flat pieces included, up to the accuracy of the given CDF; where F reaches 0 or 1 in
float64, tau = 0 and 1 give that point); mean, variance, ``U`` and expectiles to ``RTOL`` =
1e-8 of the law's spread where the tail falls to ``TAIL_LEVEL`` within a few dozen spreads
(Gaussian, Laplace, exponential, Gumbel, bounded laws; quadrature to ``QUAD_RTOL`` = 1e-11
of the spread, expectiles by Brent's method to float64 resolution). Heavier tails add the
error of the fitted exponent (``1 - F`` near 1e-12 holds about 4 digits in float64):
Student t with df 2.2 to 4.5 and Lomax with c 1.2 to 4 are tested to 1e-5 relative (mean
and variance; t with df 1.2 to 1.5: mean to 1e-5 of the spread), and a tail that is not a
power law beyond 1e-12 but still slow (lognormal with sigma 2) to 1e-3 in the variance.
Integrals run in units of the spread, so the tolerance does not depend on the reward's
scale; but the CDF is evaluated at ``m + y``, whose rounding is that of the median ``m``:
a law whose spread is few float64 ulps of its median loses digits to it (a Gaussian of sd
1e-3 at 1e9, 1e4 ulps: variance to 1e-6 relative; below about 1e6 ulps an error that
cannot compute the mean says so).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import integrate, optimize

from td_jax.rewards import exact

RTOL = 1e-8  # stated accuracy of mean, variance, U and expectiles, relative to the spread
QUAD_RTOL = 1e-11
QUAD_ATOL = 1e-14  # in units of the spread: far tails, where the integral is ~0, stop early
TAIL_LEVEL = 1e-12  # the tail probability where the power-law extrapolation starts
MARGIN = 0.02  # a tail exponent within this of a moment's order makes that moment inf
SLOPE_SPAN = 2  # doublings over which the tail exponent is fitted ([Y / 4, Y])
_DOUBLINGS = 1100  # widening steps before a support end is taken to be infinite (~2^1100)


class CDFError(ValueError):
    """The callable given is not a distribution function (one line: what failed)."""


class Numerical(exact.Law):
    """A law from its CDF alone; see the module docstring for the method and tolerance."""

    def __init__(self, cdf: Callable[[np.ndarray], np.ndarray]):
        self._cdf_fn = cdf
        self._check_shape()
        self.median = 0.0
        self.median = float(self._bisect(np.array(0.5), 1.0))
        q = self._bisect(np.array([0.1, 0.9]), 1.0)
        self.scale = float(q[1] - q[0]) / 2.563 or max(1.0, abs(self.median))
        self.mean = self.median + self._tail(lambda y: 1.0 - self._F(self.median + y), 1)
        self.mean -= self._tail(lambda y: self._F(self.median - y), 1)
        if not np.isfinite(self.mean):
            raise CDFError(self._why_no_mean())
        second = self._tail(lambda y: 1.0 - self._F(self.median + y), 2)
        second += self._tail(lambda y: self._F(self.median - y), 2)
        d = self.mean - self.median
        self.variance = float(max(second - d * d, 0.0)) if np.isfinite(second) else float("inf")

    def _why_no_mean(self) -> str:
        """Why the mean came out non-finite: a tail as heavy as ``x^-1`` (or heavier), or, for
        a law far from 0 against its spread, the CDF's own rounding there."""
        ulps = self.scale / max(np.spacing(abs(self.median)), np.finfo(np.float64).tiny)
        if ulps < 1e6:
            return (
                f"its mean could not be computed: the spread {self.scale:.3g} is only "
                f"{ulps:.3g} float64 ulps of the median {self.median:.6g}, so quadrature of "
                "the cdf there is dominated by rounding (shift the law nearer 0 and add the "
                "offset with standardize or a loc parameter)"
            )
        return "its mean must be finite (a tail decays like x^-1 or slower: no mean exists)"

    # -- the CDF and its checks -----------------------------------------------------------

    def _F(self, x):
        return np.clip(np.asarray(self._cdf_fn(np.asarray(x, np.float64)), np.float64), 0.0, 1.0)

    def _check_shape(self) -> None:
        x = np.concatenate([-np.logspace(12, -3, 61), [0.0], np.logspace(-3, 12, 61)])
        try:
            f = np.asarray(self._cdf_fn(x), np.float64)
        except Exception as err:  # a user's function: report any failure in one line
            msg = f"calling it on a float64 array failed ({type(err).__name__}: {err})"
            raise CDFError(msg) from None
        if f.shape != x.shape:
            raise CDFError(f"it must return an array of its input's shape {x.shape}, got {f.shape}")
        if not np.all(np.isfinite(f)) or np.any((f < 0) | (f > 1)):
            raise CDFError("its values must be finite and in [0, 1] (got nan, inf or out of range)")
        if np.any(np.diff(f) < -1e-12):
            raise CDFError("it must be non-decreasing")
        if f[0] > 1e-6 or f[-1] < 1.0 - 1e-6:
            raise CDFError(f"it must go from 0 to 1 (F(-1e12) = {f[0]:.3g}, F(1e12) = {f[-1]:.3g})")

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self._F(x)

    # -- quantiles ------------------------------------------------------------------------

    def _bisect(self, t: np.ndarray, width: float) -> np.ndarray:
        """inf{x : F(x) >= t} for t in (0, 1): widen a bracket around the median, bisect."""
        lo = np.full(t.shape, self.median - width)
        hi = np.full(t.shape, self.median + width)
        for _ in range(_DOUBLINGS):
            need_lo, need_hi = self._F(lo) >= t, self._F(hi) < t
            if not (need_lo.any() or need_hi.any()):
                break
            lo = np.where(need_lo, self.median - 2.0 * (self.median - lo), lo)
            hi = np.where(need_hi, self.median + 2.0 * (hi - self.median), hi)
        for _ in range(2200):  # enough to reach adjacent floats from any bracket
            mid = 0.5 * (lo + hi)
            if np.all((mid == lo) | (mid == hi)):  # adjacent floats everywhere
                break
            above = self._F(mid) >= t
            lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
        return hi

    def _end(self, sign: float) -> float:
        """sup{x : F(x) = 0} (sign -1) or inf{x : F(x) = 1} (sign +1); +-inf if unbounded."""
        target = 0.0 if sign < 0 else 1.0
        inner, step = self.median, self.scale
        for _ in range(_DOUBLINGS):
            outer = self.median + sign * step
            if not np.isfinite(outer):
                break
            if self._F(outer) == target:
                while True:  # F(inner) != target == F(outer): bisect to adjacent floats
                    mid = 0.5 * (inner + outer)
                    if mid in (inner, outer):
                        return float(outer)
                    inner, outer = (inner, mid) if self._F(mid) == target else (mid, outer)
            inner, step = outer, 2.0 * step
        return sign * float("inf")

    def _quantile(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.float64)
        inner = (t > 0) & (t < 1)
        q = self._bisect(np.where(inner, t, 0.5), self.scale)
        lower = self._end(-1.0) if np.any(t <= 0) else 0.0
        upper = self._end(1.0) if np.any(t >= 1) else 0.0
        return np.where(inner, q, np.where(t <= 0, lower, upper))

    # -- integrals ------------------------------------------------------------------------

    def _tail(self, g: Callable[[np.ndarray], np.ndarray], p: int, moment: bool = True) -> float:
        """``int_0^inf p y^(p-1) G(y) dy`` for a tail probability ``G`` (non-increasing,
        vectorised): the doubling pieces to ``Y`` plus the fitted power law beyond it (module
        docstring). For a ``moment``, ``inf`` where the tail exponent is ``<= p + MARGIN``;
        otherwise (a tail of ``U``, finite once the mean is) the best estimate."""
        s = self.scale
        k = np.arange(-SLOPE_SPAN, _DOUBLINGS + 1)
        with np.errstate(over="ignore"):
            y = s * np.exp2(k.astype(np.float64))
        y = y[np.isfinite(y)]
        with np.errstate(invalid="ignore"):
            gy = np.asarray(g(y), np.float64)
        low = np.flatnonzero((gy <= TAIL_LEVEL) & (y >= s))
        if not low.size:  # the tail never falls to TAIL_LEVEL: heavier than any power
            return float("inf") if moment else float("nan")
        j = int(low[0])
        edges = np.concatenate([[0.0], y[SLOPE_SPAN : j + 1]])
        body = float(np.sum(self._pieces(lambda x: p * x ** (p - 1) * g(x), edges[:-1],
                                         edges[1:], p)))  # fmt: skip
        if gy[j] <= 0.0:
            return body
        slope = np.log(gy[j - SLOPE_SPAN] / gy[j]) / (SLOPE_SPAN * np.log(2.0))
        if slope <= p + MARGIN:
            if moment:
                return float("inf")
            slope = p + MARGIN
        return body + p * y[j] ** p * gy[j] / (slope - p)

    def _pieces(self, f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
                p: int = 1) -> np.ndarray:  # fmt: skip
        """int_a^b f for many short intervals at once: Gauss-Legendre with 24 and 48 nodes,
        and adaptive quadrature on the intervals where the two disagree (a kink or a jump)
        by more than ``QUAD_RTOL`` of ``scale^p`` and than float64 rounding can explain
        (``f`` is ``p y^(p-1)`` times a probability, each rounded to ~1e-16 absolute: the
        far pieces of a heavy tail, where quadrature cannot do better)."""
        unit = self.scale**p
        noise = 100.0 * np.finfo(np.float64).eps * np.abs(b**p - a**p)
        x24, w24 = np.polynomial.legendre.leggauss(24)
        x48, w48 = np.polynomial.legendre.leggauss(48)
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        coarse = half * (f(mid[:, None] + half[:, None] * x24) @ w24)
        fine = half * (f(mid[:, None] + half[:, None] * x48) @ w48)
        with warnings.catch_warnings():  # a jump or rounding: its best estimate serves
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            for i in np.flatnonzero(np.abs(fine - coarse) > QUAD_RTOL * unit + noise):
                fine[i] = integrate.quad(f, a[i], b[i], epsabs=QUAD_ATOL * unit,
                                         epsrel=QUAD_RTOL, limit=500)[0]  # fmt: skip
        return fine

    def _upper(self, e: np.ndarray) -> np.ndarray:
        """U(e) for many e: one tail integral from the outermost point of each side of the
        median, then the integrals between consecutive points, summed inwards."""
        e = np.asarray(e, np.float64)
        pts, inverse = np.unique(e.reshape(-1), return_inverse=True)
        out = np.empty(pts.shape)
        right = pts >= self.median
        r = pts[right]
        if r.size:  # U(e) = int_e^inf S: from the largest point, then backwards
            gaps = self._pieces(lambda x: 1.0 - self._F(x), r[:-1], r[1:])
            tail = self._tail(lambda y: 1.0 - self._F(r[-1] + y), 1, moment=False)
            out[right] = tail + np.concatenate([np.cumsum(gaps[::-1])[::-1], [0.0]])
        left = pts[~right]
        if left.size:  # U(e) = mean - e + int_-inf^e F: from the smallest point, forwards
            gaps = self._pieces(self._F, left[:-1], left[1:])
            tail = self._tail(lambda y: self._F(left[0] - y), 1, moment=False)
            out[~right] = self.mean - left + tail + np.concatenate([[0.0], np.cumsum(gaps)])
        return out[inverse].reshape(e.shape)

    def _expectile(self, t: np.ndarray) -> np.ndarray:
        def one(tau: float) -> float:
            def g(e: float) -> float:
                u = float(self._upper(np.array(e)))
                return tau * u - (1.0 - tau) * (u - self.mean + e)

            width = self.scale
            while g(self.mean - width) < 0 or g(self.mean + width) > 0:
                width *= 2.0
            return optimize.brentq(
                g, self.mean - width, self.mean + width, xtol=1e-14 * self.scale, rtol=1e-15
            )

        return np.vectorize(one, otypes=[np.float64])(t)
