"""Asymptotic theory of tabular QTD against TD on a bandit (gamma = 0): SCIENCE.md section 10.

A reference mark laid over the measured speed-ups, never a target: nothing in the protocol
is tuned toward it.

**TD.** With steps c / t, TD on a bandit is a Robbins-Monro scheme for the mean whose error
has asymptotic variance ``c^2 sigma^2 / ((2c - 1) t)`` for c > 1/2 (``td_variance``); its
derivative in c is ``2 c sigma^2 (c - 1) / (2c - 1)^2``, so the minimum is at c = 1 (the
sample mean), ``sigma^2 / t``.

**QTD.** Tabular QTD with m midpoint levels ``tau_i = (2i - 1) / (2m)``, one shared step
c / t and the mean read as ``(1/m) sum_i theta_i`` has mean field ``h_i = tau_i - F(theta_i)``,
root at the quantiles ``q_i``, Jacobian ``-A``, ``A = diag(f(q_i))``, and noise covariance
``Sigma_ij = min(tau_i, tau_j) - tau_i tau_j``. When every ``c f(q_i) > 1/2``,
``sqrt(t) (theta_t - q)`` is asymptotically normal with covariance V solving

    (c A - I/2) V + V (c A - I/2)^T = c^2 Sigma

(``lyapunov_covariance``; solved with ``scipy.linalg.solve_continuous_lyapunov``). Since A is
diagonal the solution is also ``V_ij = c^2 Sigma_ij / (c (f_i + f_j) - 1)``: every term is
convex in c on the admissible range (``Sigma_ij > 0``), so the mean's variance
``v(c) = 1^T V 1 / m^2`` has one minimum, and it lies in ``[1 / max f, 1 / min f]`` (each term's
minimiser is ``2 / (f_i + f_j)``): ``optimal_shared_gain`` searches log c there. With one gain
per level, ``c_i = 1 / f(q_i)`` (not tabular QTD's), the variance is the efficient
L-estimator's ``1^T A^-1 Sigma A^-1 1 / m^2`` (``per_quantile_variance``), which tends to
sigma^2 as m grows. ``speedup_inf`` gives ``S_inf = sigma^2 / variance`` for both.

The QTD mean also has a bias, ``(1/m) sum_i q_i - E[R]`` (the quantile projection's): for a
skewed law it is the floor of the normalised error (section 7.6), which no step removes.

**The density.** Rewards expose exact cdfs and quantiles but no density. ``density`` maps the
exact law onto scipy.stats where the family is known (gaussian, exponential, lognormal,
student_t, uniform, their affine maps and mixtures: exact to float64), and otherwise takes a
Richardson-extrapolated central difference of the exact cdf with a step of 1e-3 of the
local quantile spacing (truncation O(h^4), round-off ~1e-16 / (h f); relative error about
1e-9 on the built-in families at m <= 256, tested). Where a level's quantile is an atom,
f is undefined there: the local theory does not apply (the estimate locks onto the atom;
the bias is the whole story) and ``speedup_inf`` says so (regime "atoms", S = nan).

References:
  Benveniste, Metivier and Priouret (1990), Adaptive Algorithms and Stochastic
    Approximations, Springer: part I, ch. 3 (asymptotic normality, the Lyapunov equation).
  Kushner and Yin (2003), Stochastic Approximation and Recursive Algorithms and
    Applications, 2nd ed., Springer: ch. 10 (rate of convergence).
  Rowland, Munos, Azar, Tang, Ostrovski, Harutyunyan, Tuyls, Bellemare and Dabney (2023),
    An analysis of quantile temporal-difference learning, arXiv:2301.04462.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import optimize, stats
from scipy.linalg import solve_continuous_lyapunov

from td_jax.rewards import exact

__all__ = [
    "SpeedupInf",
    "density",
    "levels",
    "lyapunov_covariance",
    "noise_covariance",
    "optimal_shared_gain",
    "per_quantile_variance",
    "qtd_mean_variance",
    "quantile_bias",
    "speedup_inf",
    "td_variance",
]

FINITE, INFINITE, ATOMS = "finite variance", "infinite variance", "atoms"
_REL_STEP = 1e-3  # numerical derivative step, relative to the local quantile spacing
_JUMP = 0.1  # fine / coarse differences further apart than this: a jump of F at q_i


class SpeedupInf(NamedTuple):
    """Asymptotic speed-up of tabular QTD's mean over TD's (both at their best step c / t).

    S_inf_shared: sigma^2 / min_c v(c), one shared step (tabular QTD).
    S_inf_per_quantile: sigma^2 / L-estimator variance, a gain 1 / f(q_i) per level.
    c_opt: the minimising shared c; var_shared, var_per_quantile: the two QTD variances
      (times t); var_td: sigma^2 (TD at c = 1).
    bias: (1/m) sum q_i - mean, the QTD mean's asymptotic bias (its floor).
    regime: "finite variance", "infinite variance" (S = inf: TD is slower than 1/t) or
      "atoms" (a level sits on an atom: S = nan); reason: a sentence saying why.
    floor: bias^2 / sigma^2, the squared error of QTD's mean that no step removes, in the
      units of a bandit suite's eps (the error over the reward variance); nan where sigma^2
      is infinite or 0. Where it is not small against eps, S_inf (a ratio of 1/t
      variances) does not describe the measured S: QTD's error stops at the floor.
    """

    S_inf_shared: float
    S_inf_per_quantile: float
    c_opt: float
    var_shared: float
    var_per_quantile: float
    var_td: float
    bias: float
    regime: str
    reason: str
    floor: float = float("nan")


def _law(reward: Any) -> exact.Law:
    if isinstance(reward, exact.Law):
        return reward
    if hasattr(reward, "law"):
        return reward.law()
    from td_jax.rewards import as_reward

    return as_reward(reward).law()


def levels(m: int) -> np.ndarray:
    """tau_i = (2i - 1) / (2m), i = 1..m."""
    if int(m) != m or m < 1:
        raise ValueError(f"m must be a positive integer, got {m!r}")
    return exact.midpoint_levels(int(m))


def noise_covariance(tau: np.ndarray) -> np.ndarray:
    """Sigma_ij = min(tau_i, tau_j) - tau_i tau_j: the covariance of 1{R < q_i}."""
    return np.minimum.outer(tau, tau) - np.outer(tau, tau)


def _exact_pdf(law: exact.Law, x: np.ndarray) -> np.ndarray | None:
    """The density from scipy.stats where the law's family is known, else None."""
    if isinstance(law, exact.Normal):
        return stats.norm.pdf(x, law.m, law.s)
    if isinstance(law, exact.Exponential):
        return stats.expon.pdf(x, scale=law.b)
    if isinstance(law, exact.LogNormal):
        return stats.lognorm.pdf(x, law.sigma, scale=np.exp(law.mu))
    if isinstance(law, exact.StudentT):
        return stats.t.pdf(x, law.df)
    if isinstance(law, exact.Uniform):
        return stats.uniform.pdf(x, law.a, law.b - law.a)
    if isinstance(law, exact.Atoms):
        return np.zeros_like(x)  # off the atoms (at an atom f is undefined: see _atoms)
    if isinstance(law, exact.Affine):
        base = _exact_pdf(law.base, (x - law.loc) / law.scale)
        return None if base is None else base / law.scale
    if isinstance(law, exact.Mixture):
        parts = [_exact_pdf(part, x) for part in law.laws]
        if any(p is None for p in parts):
            return None
        return sum(w * p for w, p in zip(law.weights, parts, strict=True))
    return None


def _atoms(law: exact.Law) -> np.ndarray | None:
    """The law's atom locations where its structure is known, else None."""
    if isinstance(law, exact.Atoms):
        return law.locs
    if isinstance(law, exact.Affine):
        base = _atoms(law.base)
        return None if base is None else law.loc + law.scale * base
    if isinstance(law, exact.Mixture):
        parts = [_atoms(part) for part in law.laws]
        return None if any(p is None for p in parts) else np.concatenate(parts)
    if _exact_pdf(law, np.zeros(1)) is not None:
        return np.zeros(0)
    return None


def _numerical_pdf(law: exact.Law, tau: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, bool]:
    """Richardson-extrapolated central difference of the cdf at q = Q(tau); also whether
    the two step sizes disagree (a jump or a kink at some q_i: f undefined there)."""
    below = q - np.asarray(law.quantile(tau / 2))
    above = np.asarray(law.quantile((1 + tau) / 2)) - q
    h = _REL_STEP * np.minimum(below, above)  # x +- h stays inside the support

    flat = ~(h > 0)  # Q constant around tau: an atom at q
    h = np.where(flat, 1e-300, h)

    def diff(step: np.ndarray) -> np.ndarray:
        return (np.asarray(law.cdf(q + step)) - np.asarray(law.cdf(q - step))) / (2 * step)

    coarse, fine = diff(h), diff(h / 2)
    f = (4 * fine - coarse) / 3
    # A jump J inside [q - h, q + h] doubles the fine difference (J / h against J / 2h).
    jump = np.abs(fine - coarse) > _JUMP * np.abs(coarse)
    return f, bool(np.any(flat | jump))


def density(reward: Any, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(q, f(q), on_atom): the quantiles at levels tau, the density there, and whether some
    q_i is an atom (or, for a law known only by its cdf, a jump or kink)."""
    law = _law(reward)
    tau = np.asarray(tau, np.float64)
    q = np.asarray(law.quantile(tau), np.float64)
    f = _exact_pdf(law, q)
    atoms = _atoms(law)
    if f is None or atoms is None:
        f, rough = _numerical_pdf(law, tau, q)
        return q, f, rough
    near = np.abs(q[:, None] - atoms[None, :]) <= 1e-9 * np.maximum(1.0, np.abs(q[:, None]))
    return q, np.asarray(f, np.float64), bool(near.any())


def lyapunov_covariance(f: np.ndarray, tau: np.ndarray, c: float | np.ndarray) -> np.ndarray:
    """V solving (cA - I/2) V + V (cA - I/2)^T = c^2 Sigma, with A = diag(f) and c a shared
    gain or one per level (then cA = diag(c_i f_i) and the right side is C Sigma C)."""
    gain = np.broadcast_to(np.asarray(c, np.float64), np.shape(f))
    if not np.all(gain * f > 0.5):
        raise ValueError("the Lyapunov equation has no stable solution unless every c f(q_i) > 1/2")
    drift = np.diag(gain * f) - 0.5 * np.eye(len(f))
    return solve_continuous_lyapunov(drift, np.outer(gain, gain) * noise_covariance(tau))


def _mean_var(f: np.ndarray, tau: np.ndarray, c: float) -> float:
    if not np.all(c * f > 0.5):
        return float("inf")
    return float(np.sum(lyapunov_covariance(f, tau, c))) / len(f) ** 2


def qtd_mean_variance(reward: Any, m: int, c: float) -> float:
    """t times the asymptotic variance of tabular QTD's mean (1/m) sum theta_i with one
    shared step c / t: 1^T V 1 / m^2; inf where some c f(q_i) <= 1/2 (slower than 1/t)."""
    tau = levels(m)
    _, f, _ = density(reward, tau)
    return _mean_var(f, tau, float(c))


def _optimal(f: np.ndarray, tau: np.ndarray) -> tuple[float, float]:
    if not np.all(np.isfinite(f) & (f > 0)):
        return float("nan"), float("inf")
    lo = max(1.0 / f.max(), 0.5 / f.min())
    hi = 1.0 / f.min()
    if hi <= lo * (1 + 1e-12):
        return hi, _mean_var(f, tau, hi)
    best = optimize.minimize_scalar(
        lambda log_c: _mean_var(f, tau, float(np.exp(log_c))),
        bounds=(np.log(lo), np.log(hi)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(np.exp(best.x)), float(best.fun)


def optimal_shared_gain(reward: Any, m: int) -> tuple[float, float]:
    """(c*, v(c*)): the shared gain minimising ``qtd_mean_variance`` (v is convex in c on
    c > 1 / (2 min f); its minimum lies in [1 / max f, 1 / min f], searched in log c)."""
    tau = levels(m)
    _, f, _ = density(reward, tau)
    return _optimal(f, tau)


def _per_quantile(f: np.ndarray, tau: np.ndarray) -> float:
    w = 1.0 / f
    return float(w @ noise_covariance(tau) @ w) / len(f) ** 2


def per_quantile_variance(reward: Any, m: int) -> float:
    """1^T A^-1 Sigma A^-1 1 / m^2: QTD's mean with one gain c_i = 1 / f(q_i) per level (the
    efficient L-estimator with equal weights; the Lyapunov solution at those gains)."""
    tau = levels(m)
    _, f, _ = density(reward, tau)
    return _per_quantile(f, tau)


def td_variance(variance: float, c: float) -> float:
    """t times TD's asymptotic error variance with step c / t: c^2 sigma^2 / (2c - 1), inf
    for c <= 1/2; minimised at c = 1, where it is sigma^2."""
    return float(c * c * variance / (2 * c - 1)) if c > 0.5 else float("inf")


def quantile_bias(reward: Any, m: int) -> float:
    """(1/m) sum_i q_i - E[R]: the QTD mean's asymptotic bias (0 for a symmetric law)."""
    law = _law(reward)
    return float(np.mean(law.quantile(levels(m)))) - law.mean


def speedup_inf(reward: Any, m: int) -> SpeedupInf:
    """S_inf of tabular QTD (m levels) over TD for the mean of a bandit's reward."""
    law = _law(reward)
    tau = levels(m)
    _, f, on_atom = density(law, tau)
    bias = quantile_bias(law, m)
    sigma2 = float(law.variance)
    floor = bias**2 / sigma2 if np.isfinite(sigma2) and sigma2 > 0 else float("nan")
    if on_atom:
        why = "a level's quantile is an atom: f is undefined there; QTD has a floor (the bias)"
        return SpeedupInf(*(float("nan"),) * 5, sigma2, bias, ATOMS, why, floor)
    c_opt, var_shared = _optimal(f, tau)
    var_pq = _per_quantile(f, tau)
    if not np.isfinite(sigma2):
        why = "sigma^2 is infinite: TD's error decays slower than 1/t, QTD's at 1/t"
        return SpeedupInf(
            np.inf, np.inf, c_opt, var_shared, var_pq, sigma2, bias, INFINITE, why, floor
        )
    why = "both errors decay as 1/t; S_inf is the ratio of their asymptotic variances"
    if not np.isfinite(var_shared):
        why = "f(q_i) = 0 at some level: no shared step gives a 1/t rate"
    s_shared, s_pq = sigma2 / var_shared, sigma2 / var_pq
    return SpeedupInf(s_shared, s_pq, c_opt, var_shared, var_pq, sigma2, bias, FINITE, why, floor)
