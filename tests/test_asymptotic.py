"""The bandit's asymptotic theory (``td_jax.analysis.asymptotic``, SCIENCE.md section 10):
closed forms, an independent Lyapunov solve, and a Monte-Carlo run of tabular QTD."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from td_jax import rewards
from td_jax.analysis import asymptotic as asy
from td_jax.rewards import numerical

LAWS = {
    "gaussian": rewards.make("gaussian", mean=1.0, std=2.0),
    "student_t3": rewards.make("student_t", df=3.0),
    "exponential": rewards.make("exponential", scale=0.5),
    "lognormal": rewards.make("lognormal", sigma=0.75),
    "bimodal": rewards.make("bimodal"),
}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_one_quantile_is_the_median_with_variance_one_over_four_f_squared(name):
    law = LAWS[name]
    median = law.quantile(0.5)
    f = (law.cdf(median + 1e-5) - law.cdf(median - 1e-5)) / 2e-5
    c, var = asy.optimal_shared_gain(law, 1)
    assert c == pytest.approx(1.0 / f, rel=1e-6)
    assert var == pytest.approx(1.0 / (4.0 * f * f), rel=1e-6)
    assert asy.qtd_mean_variance(law, 1, 1.0 / f) == pytest.approx(var, rel=1e-6)
    assert asy.per_quantile_variance(law, 1) == pytest.approx(var, rel=1e-6)
    assert asy.qtd_mean_variance(law, 1, 0.4999 / f) == np.inf  # c f <= 1/2: no 1/t rate


@pytest.mark.parametrize("name", sorted(LAWS))
def test_the_shared_gain_is_the_minimum_over_a_grid(name):
    c, var = asy.optimal_shared_gain(LAWS[name], 8)
    grid = c * np.exp(np.linspace(-1.0, 1.0, 41))
    values = [asy.qtd_mean_variance(LAWS[name], 8, x) for x in grid]
    assert var <= min(values) * (1 + 1e-9)
    assert var == pytest.approx(asy.qtd_mean_variance(LAWS[name], 8, c), rel=1e-12)


def test_gaussian_per_quantile_variance_tends_to_sigma_squared():
    law = rewards.make("gaussian", mean=-2.0, std=3.0)
    values = [asy.per_quantile_variance(law, m) for m in (8, 32, 256)]
    assert values[0] > values[1] > values[2] > 9.0
    assert values[2] == pytest.approx(9.0, rel=0.01)
    s = asy.speedup_inf(law, 32)  # SCIENCE.md section 10's numbers
    assert 0.45 < s.S_inf_shared < 0.49 and 0.99 < s.S_inf_per_quantile < 1.0
    assert s.regime == "finite variance" and s.var_td == pytest.approx(9.0)


def _exponential_bias(b: float, m: int) -> float:
    """q_i = -b log(1 - tau_i); the levels are symmetric about 1/2, so the mean of the q_i
    is -b/m sum log tau_i = b (log 2m - log((2m)! / (2^m m!)) / m); the mean is b."""
    odd = special.gammaln(2 * m + 1) - m * np.log(2.0) - special.gammaln(m + 1)
    return b * (np.log(2.0 * m) - odd / m) - b


def test_bias_is_zero_for_symmetric_laws_and_the_closed_form_for_the_exponential():
    for law in (LAWS["gaussian"], LAWS["student_t3"], LAWS["bimodal"]):
        assert abs(asy.quantile_bias(law, 7)) < 1e-12
    for m in (1, 8, 128):
        bias = asy.quantile_bias(LAWS["exponential"], m)
        assert bias == pytest.approx(_exponential_bias(0.5, m), abs=1e-12)
    assert asy.quantile_bias(LAWS["exponential"], 1) == pytest.approx(0.5 * (np.log(2) - 1))
    s = asy.speedup_inf(LAWS["exponential"], 8)
    assert s.bias == pytest.approx(_exponential_bias(0.5, 8), abs=1e-12)
    # With gains 1/f_i = b / (1 - tau_i) the L-estimator's variance is exactly b^2 at every
    # m: Sigma_ij / (f_i f_j) = b^2 tau_i / (1 - tau_i) for i <= j, and summing over j >= i
    # gives b^2 2m tau_i = b^2 (2i - 1), whose sum over i is b^2 m^2.
    for m in (1, 3, 8, 64):
        assert asy.per_quantile_variance(LAWS["exponential"], m) == pytest.approx(0.25)
    assert s.S_inf_per_quantile == pytest.approx(1.0)


def test_lyapunov_solution_matches_a_kronecker_solve_and_the_elementwise_form():
    tau = asy.levels(6)
    _, f, _ = asy.density(LAWS["lognormal"], tau)
    c = 1.3 / f.min()
    v = asy.lyapunov_covariance(f, tau, c)
    drift = c * np.diag(f) - 0.5 * np.eye(6)
    big = np.kron(np.eye(6), drift) + np.kron(drift, np.eye(6))  # vec(MV + VM^T), M = M^T
    sigma = asy.noise_covariance(tau)
    vec = np.linalg.solve(big, (c * c * sigma).reshape(-1))
    np.testing.assert_allclose(v, vec.reshape(6, 6), rtol=1e-10)
    np.testing.assert_allclose(v, c * c * sigma / (c * np.add.outer(f, f) - 1), rtol=1e-10)
    # A gain 1 / f_i per level: the drift is I/2 and V = A^-1 Sigma A^-1.
    np.testing.assert_allclose(
        asy.lyapunov_covariance(f, tau, 1.0 / f), sigma / np.outer(f, f), rtol=1e-10
    )
    with pytest.raises(ValueError, match="c f"):
        asy.lyapunov_covariance(f, tau, 0.49 / f.min())


def test_td_variance_is_smallest_at_c_equal_one_where_it_is_sigma_squared():
    sigma2 = 2.5
    best = optimize.minimize_scalar(
        lambda c: asy.td_variance(sigma2, c), bounds=(0.51, 10.0), method="bounded"
    )
    assert best.x == pytest.approx(1.0, abs=1e-4)
    assert asy.td_variance(sigma2, 1.0) == sigma2
    assert asy.td_variance(sigma2, 2.0) == pytest.approx(4 * sigma2 / 3)
    assert asy.td_variance(sigma2, 0.5) == np.inf


def test_regimes():
    heavy = asy.speedup_inf(rewards.make("student_t", df=2.0), 8)
    assert heavy.regime == "infinite variance"
    assert heavy.S_inf_shared == np.inf and heavy.S_inf_per_quantile == np.inf
    assert np.isfinite(heavy.var_shared) and heavy.c_opt > 0  # QTD keeps its 1/t rate
    assert asy.speedup_inf(rewards.make("student_t", df=2.5), 8).regime == "finite variance"
    for spec in ({"name": "bernoulli", "p": 0.1}, {"name": "deterministic", "value": 1.0}):
        s = asy.speedup_inf(rewards.make(**spec), 8)
        assert s.regime == "atoms" and np.isnan(s.S_inf_shared) and np.isfinite(s.bias)
    on_level = rewards.make(
        "mixture", components=[{"name": "gaussian"}, {"name": "deterministic"}], weights=[0.7, 0.3]
    )
    assert asy.speedup_inf(on_level, 8).regime == "atoms"
    off_level = rewards.make(  # the point mass at 5 holds no level: the theory applies
        "mixture",
        components=[{"name": "gaussian"}, {"name": "deterministic", "value": 5.0}],
        weights=[0.99, 0.01],
    )
    assert asy.speedup_inf(off_level, 8).regime == "finite variance"


def test_numerical_density_of_a_cdf_only_law():
    for name in ("lognormal", "exponential", "student_t3"):
        law = LAWS[name].law()
        tau = asy.levels(256)
        q = law.quantile(tau)
        f, jump = asy._numerical_pdf(law, tau, q)
        np.testing.assert_allclose(f, asy._exact_pdf(law, q), rtol=1e-9)
        assert not jump
    laplace = numerical.Numerical(stats.laplace.cdf)
    q, f, on_atom = asy.density(laplace, asy.levels(4))
    np.testing.assert_allclose(f, stats.laplace.pdf(q), rtol=1e-9)
    assert not on_atom
    atom = numerical.Numerical(lambda x: 0.5 * stats.norm.cdf(x) + 0.5 * (x >= 1.0))
    assert asy.speedup_inf(atom, 4).regime == "atoms"


def test_simulated_tabular_qtd_matches_the_theory():
    """Gaussian, m = 4, 2,000 seeds x 4,000 steps of c / (t + 20) from the true quantiles
    (the offset keeps the first steps in the linear regime; it does not change the limit).
    At c* and 2 c* (theory 1.13 and 1.54 sigma^2) t Var(mean) must be within 20%: a
    Lyapunov solution without the -I/2 term, or one off by 20%, fails."""
    law, m = rewards.make("gaussian"), 4
    tau, t0, steps = asy.levels(m), 20, 4_000
    c_opt, _ = asy.optimal_shared_gain(law, m)
    gains = np.array([c_opt, 2 * c_opt])[:, None, None]
    theta = np.broadcast_to(law.quantile(tau), (2, 2_000, m)).copy()
    rng = np.random.default_rng(7)
    for t in range(steps):
        r = rng.standard_normal((1, 2_000, 1))  # common random numbers for both gains
        theta += gains / (t + 1 + t0) * (tau - (r < theta))
    measured = (steps + t0) * np.var(theta.mean(axis=2), axis=1)
    theory = [asy.qtd_mean_variance(law, m, c) for c in gains.ravel()]
    np.testing.assert_allclose(measured, theory, rtol=0.2)
    assert measured[1] / measured[0] == pytest.approx(theory[1] / theory[0], rel=0.1)
