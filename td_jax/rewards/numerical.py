"""A law known only through its CDF: the truth side of a registered reward family.

``Numerical(cdf)`` gives a numpy CDF the interface of every exact law
(``td_jax.rewards.exact.Law``): quantiles by bisection on the CDF, and the mean, the
variance and the upper partial moment ``U(e) = E[(X - e)_+]`` (hence expectiles) by
adaptive quadrature of tail integrals (QUADPACK's QAGI, Piessens et al. 1983, through
``scipy.integrate.quad``):

  E[X] = m + int_0^inf S(m + y) dy - int_0^inf F(m - y) dy,      m the median, S = 1 - F;
  E[(X - m)^2] = 2 int_0^inf y S(m + y) dy + 2 int_0^inf y F(m - y) dy;
  U(e) = int_e^inf S(x) dx (e >= m), or E[X] - e + int_-inf^e F(x) dx (e < m).

Tolerance (``tests/test_reward_mixture.py`` checks it against scipy.stats): quantiles to
float64 resolution in x (``inf{x : F(x) >= tau}``, atoms and flat pieces included, up to the
accuracy of the given CDF; where F reaches 0 or 1 in float64, tau = 0 and 1 give that
point); mean, variance, ``U`` and expectiles to ``RTOL`` = 1e-8 of the law's spread
(quadrature to ``QUAD_RTOL`` = 1e-11 relative or ``QUAD_ATOL`` = 1e-14 of the spread,
expectiles by Brent's method to float64 resolution). A variance whose integral the
quadrature cannot converge (tails as heavy as ``x^-3`` or heavier, e.g. Student t with
df <= 3) is reported as ``inf``; a mean that does not converge is an error.
Integrals run in units of the law's spread (``(q_0.9 - q_0.1) / 2.563``), so the tolerance
does not depend on the reward's scale.
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
        self.mean = self.median + self._tail(lambda y: 1.0 - self._F(self.median + y))
        self.mean -= self._tail(lambda y: self._F(self.median - y))
        if not np.isfinite(self.mean):
            raise CDFError("its mean must be finite (the tail integrals do not converge)")
        second = self._tail(lambda y: 2.0 * y * (1.0 - self._F(self.median + y)))
        second += self._tail(lambda y: 2.0 * y * self._F(self.median - y))
        d = self.mean - self.median
        self.variance = float(max(second - d * d, 0.0)) if np.isfinite(second) else float("inf")

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

    def _tail(self, f: Callable[[float], float], moment: bool = True) -> float:
        """int_0^inf f(y) dy, integrated in units of the spread. For a ``moment``, ``inf``
        where the quadrature does not converge; otherwise (a tail of ``U``, finite once the
        mean is) its best estimate."""
        s = self.scale
        with warnings.catch_warnings():
            warnings.simplefilter("error" if moment else "ignore", integrate.IntegrationWarning)
            try:
                value, _ = integrate.quad(
                    lambda z: f(s * z), 0.0, np.inf, epsabs=QUAD_ATOL, epsrel=QUAD_RTOL, limit=500
                )
            except integrate.IntegrationWarning:
                return float("inf")
        return float(value * s)

    def _pieces(self, f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray):
        """int_a^b f for many short intervals at once: Gauss-Legendre with 24 and 48 nodes,
        and adaptive quadrature on the intervals where the two disagree (a kink or a jump)."""
        x24, w24 = np.polynomial.legendre.leggauss(24)
        x48, w48 = np.polynomial.legendre.leggauss(48)
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        coarse = half * (f(mid[:, None] + half[:, None] * x24) @ w24)
        fine = half * (f(mid[:, None] + half[:, None] * x48) @ w48)
        for i in np.flatnonzero(np.abs(fine - coarse) > QUAD_RTOL * self.scale):
            fine[i] = integrate.quad(f, a[i], b[i], epsabs=QUAD_ATOL * self.scale,
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
            tail = self._tail(lambda y: 1.0 - self._F(r[-1] + y), moment=False)
            out[right] = tail + np.concatenate([np.cumsum(gaps[::-1])[::-1], [0.0]])
        left = pts[~right]
        if left.size:  # U(e) = mean - e + int_-inf^e F: from the smallest point, forwards
            gaps = self._pieces(self._F, left[:-1], left[1:])
            tail = self._tail(lambda y: self._F(left[0] - y), moment=False)
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
