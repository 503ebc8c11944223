"""The mixture family and registered reward families (issue 25, item 2).

References are independent of td_jax's code path: scipy.stats laws, scipy.integrate.quad
for partial moments and brentq for quantiles and expectiles.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, stats

import td_jax
from td_jax import envs, rewards

GAUSS, ATOM, EXPO = stats.norm(0.5, 1.2), 2.0, stats.expon(scale=1.5)
WEIGHTS = np.array([0.5, 0.2, 0.3])
SPEC = {
    "name": "mixture",
    "components": [{"name": "gaussian", "mean": 0.5, "std": 1.2}, ATOM,
                   {"name": "exponential", "scale": 1.5}],
    "weights": WEIGHTS.tolist(),
}  # fmt: skip


def ref_cdf(x):
    x = np.asarray(x, np.float64)
    return WEIGHTS[0] * GAUSS.cdf(x) + WEIGHTS[1] * (x >= ATOM) + WEIGHTS[2] * EXPO.cdf(x)


def ref_quantile(tau: float) -> float:
    """inf{x : F(x) >= tau}: the atom where tau falls in its jump, else F's root."""
    if ref_cdf(ATOM - 1e-12) < tau <= ref_cdf(ATOM):
        return ATOM
    return optimize.brentq(lambda x: ref_cdf(x) - tau, -20.0, 40.0, xtol=1e-14)


def gauss_pdf(x, m, s):
    return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))


def expon_pdf(x, s):
    return np.exp(-x / s) / s


def ref_expectile(tau: float, parts) -> float:
    """tau E[(X-e)_+] = (1-tau) E[(e-X)_+], with E[(e-X)_+] = E[(X-e)_+] - E[X] + e and the
    upper partial moment by quad over each part's density; ``parts`` are (weight, frozen
    scipy law) or (weight, atom location)."""
    fast = []  # plain numpy densities: a frozen scipy pdf costs ~50 us a call inside quad
    for w, law in parts:
        if isinstance(law, float):
            fast.append((w, None, law, law))
            continue
        m, s = law.mean(), law.std()
        if law.dist.name == "norm":
            pdf = functools.partial(gauss_pdf, m=m, s=s)
        else:
            pdf = functools.partial(expon_pdf, s=s)
        fast.append((w, pdf, m, law.support()[0]))
    mean = sum(part[0] * part[2] for part in fast)

    def upper(e: float) -> float:
        return sum(
            w * (max(m - e, 0.0) if pdf is None
                 else integrate.quad(lambda x, f=pdf: (x - e) * f(x), max(e, lo), np.inf)[0])
            for w, pdf, m, lo in fast
        )  # fmt: skip

    g = lambda e: tau * upper(e) - (1 - tau) * (upper(e) - mean + e)  # noqa: E731
    return optimize.brentq(g, mean - 10.0, mean + 10.0, xtol=1e-12)


def draw(reward, key, n: int) -> np.ndarray:
    """``reward.sample(key, (n,))`` as one compiled program (the reward's leaves constant)."""
    return np.asarray(jax.jit(lambda k: reward.sample(k, (n,)))(key))


# -- the mixture: exact functions -----------------------------------------------------------


def test_mixture_exact_functions_match_scipy():
    r = rewards.make(**SPEC)
    means = np.array([GAUSS.mean(), ATOM, EXPO.mean()])
    second = np.array([GAUSS.var() + GAUSS.mean() ** 2, ATOM**2, EXPO.var() + EXPO.mean() ** 2])
    mean = WEIGHTS @ means
    np.testing.assert_allclose(r.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(r.variance, WEIGHTS @ second - mean**2, rtol=1e-12)
    xs = np.linspace(-4.0, 8.0, 49)
    np.testing.assert_allclose(r.cdf(xs), ref_cdf(xs), rtol=1e-12, atol=1e-14)
    taus = [0.01, 0.2, 0.5, 0.7, float(ref_cdf(ATOM)), 0.8, 0.95, 0.999]
    np.testing.assert_allclose(r.quantile(taus), [ref_quantile(t) for t in taus], rtol=1e-9)
    parts = list(zip(WEIGHTS, [GAUSS, ATOM, EXPO], strict=True))
    for tau in (0.05, 0.3, 0.5, 0.9):
        np.testing.assert_allclose(r.expectile(tau), ref_expectile(tau, parts), rtol=1e-8)


def test_mixture_quantile_is_right_at_the_atom():
    r = rewards.make(**SPEC)
    below, at = float(ref_cdf(ATOM - 1e-9)), float(r.cdf(ATOM))  # F(2), as the law sums it
    assert r.quantile(below + 1e-6) == ATOM and r.quantile(at) == ATOM
    assert r.quantile(at + 1e-9) > ATOM and r.quantile(below - 1e-6) < ATOM


def test_mixture_variance_is_infinite_with_a_heavy_component():
    r = rewards.make("mixture", components=[1.0, ("student_t", {"df": 1.5})], weights=[0.4, 0.6])
    assert r.variance == np.inf
    np.testing.assert_allclose(r.mean, 0.4, rtol=1e-12)


def test_mixture_of_point_masses_stays_atomic():
    r = rewards.make("mixture", components=[0.0, 1.0, ("bernoulli", {"p": 0.5, "value": 4.0})],
                     weights=[0.25, 0.25, 0.5])  # fmt: skip
    law = r.law()
    assert isinstance(law, rewards.Law) and type(law).__name__ == "Atoms"
    np.testing.assert_allclose(law.locs, [0.0, 1.0, 4.0])
    np.testing.assert_allclose(law.probs, [0.5, 0.25, 0.25])


def test_mixture_config_round_trip_and_standardize():
    r = rewards.make(**SPEC)
    again = rewards.make(**json.loads(json.dumps(r.config())))
    for a, b in zip(jax.tree.leaves(r), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    s = rewards.make(**SPEC, standardize=(1.0, 0.5))
    np.testing.assert_allclose([s.mean, s.std], [1.0, 0.5], rtol=1e-12)
    s2 = rewards.make(**json.loads(json.dumps(s.config())))
    np.testing.assert_allclose(s2.quantile([0.1, 0.5, 0.9]), s.quantile([0.1, 0.5, 0.9]))
    nested = rewards.make("mixture", components=[SPEC, -3.0], weights=[0.5, 0.5])
    np.testing.assert_allclose(nested.mean, 0.5 * r.mean - 1.5, rtol=1e-12)


# -- the mixture: sampling --------------------------------------------------------------------


def test_mixture_samples_match_the_law():
    n = 20_000
    x = draw(rewards.make(**SPEC), jax.random.key(0), n).astype(np.float64)
    dkw = np.sqrt(np.log(2 / 1e-6) / (2 * n))  # P(sup |F_n - F| > dkw) <= 1e-6
    pts = np.linspace(-3.0, 7.0, 101)
    emp = np.searchsorted(np.sort(x), pts, side="right") / n
    assert np.max(np.abs(emp - ref_cdf(pts))) < dkw
    assert abs(np.mean(x == np.float32(ATOM)) - WEIGHTS[1]) < 6 * np.sqrt(0.2 * 0.8 / n)
    r = rewards.make(**SPEC)
    assert abs(x.mean() - r.mean) < 6 * np.sqrt(r.variance / n)


def test_two_gaussian_mixture_draws_as_bimodal():
    key = jax.random.key(1)
    b = rewards.make("bimodal", means=(-1.0, 2.0), stds=(0.5, 1.0), weights=(0.3, 0.7))
    m = rewards.make("mixture", components=[{"name": "gaussian", "mean": -1.0, "std": 0.5},
                                            {"name": "gaussian", "mean": 2.0, "std": 1.0}],
                     weights=[0.3, 0.7])  # fmt: skip
    np.testing.assert_array_equal(draw(b, key, 4096), draw(m, key, 4096))


def test_slots_of_mixed_types_stack_and_keep_their_laws():
    mix = rewards.make(**SPEC)
    stacked = rewards.stack(["gaussian", mix, 3.0])
    assert isinstance(stacked, rewards.Mixture)
    keys = jax.random.split(jax.random.key(2), 3)
    x = np.asarray(jax.jit(jax.vmap(lambda r, k: r.sample(k, (20_000,))))(stacked, keys))
    np.testing.assert_array_equal(x[2], 3.0)
    assert abs(x[0].mean()) < 0.05 and abs(x[0].std() - 1.0) < 0.05
    alone = draw(mix, keys[1], 20_000)
    # Lifting pads with weight 0: the same draws (to f32 rounding: the stacked program
    # switches over kernels where the lone one calls its kernel directly).
    np.testing.assert_allclose(x[1], alone, rtol=1e-6, atol=1e-6)


# -- registered families ----------------------------------------------------------------------


def laplace_sampler(u1, u2, loc, scale):
    """Laplace(loc, scale) by inverse CDF."""
    del u2
    return loc - scale * jnp.sign(u1 - 0.5) * jnp.log1p(-2.0 * jnp.abs(u1 - 0.5))


def laplace_cdf(x, loc, scale):
    return stats.laplace.cdf(x, loc, scale)


def laplace_expectile(tau: float, m: float, b: float) -> float:
    """Closed-form partial moments of Laplace(m, b): E[(e - X)_+] = b/2 exp((e - m)/b) for
    e <= m, E[(X - e)_+] = b/2 exp(-(e - m)/b) for e >= m; the other from E[X] = m."""

    def g(e: float) -> float:
        if e <= m:
            lower = 0.5 * b * np.exp((e - m) / b)
            upper = lower + m - e
        else:
            upper = 0.5 * b * np.exp(-(e - m) / b)
            lower = upper - m + e
        return tau * upper - (1 - tau) * lower

    return optimize.brentq(g, m - 50 * b, m + 50 * b, xtol=1e-15)


@pytest.fixture(scope="module")
def laplace():
    return rewards.register("laplace_test", laplace_sampler, laplace_cdf,
                            defaults={"loc": 0.0, "scale": 1.0}, overwrite=True)  # fmt: skip


def test_registered_laplace_matches_scipy_within_the_stated_tolerance(laplace):
    loc, scale = 0.5, 2.0
    r = rewards.make("laplace_test", loc=loc, scale=scale)
    ref = stats.laplace(loc, scale)
    spread = np.sqrt(ref.var())
    tol = 1e-8 * spread  # td_jax.rewards.numerical.RTOL of the spread
    assert abs(r.mean - ref.mean()) < tol and abs(r.variance - ref.var()) < tol * spread
    taus = np.array([0.001, 0.1, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(r.quantile(taus), ref.ppf(taus), rtol=1e-12, atol=1e-12)
    for tau in (0.05, 0.5, 0.8):
        assert abs(r.expectile(tau) - laplace_expectile(tau, loc, scale)) < tol
    assert r.config() == {"name": "laplace_test", "loc": 0.5, "scale": 2.0}
    x = draw(r, jax.random.key(3), 20_000).astype(np.float64)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-4


def test_registered_shifted_exponential_in_a_mixture(laplace):
    del laplace
    rewards.register("shifted_exp_test", lambda u1, u2, shift: shift - jnp.log(u1),
                     lambda x, shift: stats.expon.cdf(x, loc=shift),
                     defaults={"shift": 1.0}, overwrite=True)  # fmt: skip
    r = rewards.make("shifted_exp_test", shift=-1.0)
    np.testing.assert_allclose([r.mean, r.variance], [0.0, 1.0], atol=1e-8)
    np.testing.assert_allclose(r.quantile([0.0, 0.5]), [-1.0, np.log(2.0) - 1.0], atol=1e-12)
    m = rewards.make("mixture", components=[{"name": "laplace_test", "scale": 2.0}, r, 5.0],
                     weights=[0.25, 0.5, 0.25])  # fmt: skip
    np.testing.assert_allclose(m.mean, 1.25, atol=1e-8)
    np.testing.assert_allclose(m.variance, 0.25 * 8 + 0.5 * 1 + 0.25 * 25 - 1.25**2, atol=1e-7)
    again = rewards.make(**json.loads(json.dumps(m.config())))
    np.testing.assert_allclose(again.quantile([0.1, 0.6]), m.quantile([0.1, 0.6]), atol=1e-12)
    std = rewards.make("shifted_exp_test", standardize=(2.0, 3.0))
    np.testing.assert_allclose([std.mean, std.std], [2.0, 3.0], rtol=1e-8)


def td_bandit_moments(name: str) -> tuple[float, float, float, float]:
    """TD(0) at step 0.02 for 400 steps on a bandit of ``name`` (loc 1.5, scale 0.5), 256
    learners: (their mean, its theory, their std, its theory). V_t -> E[r]: the bias is
    1.5 * 0.98^400, and the stationary std of V is sd(r) sqrt(a / (2 - a)) (Laplace: sd
    = sqrt(2) * scale), reached to 1 - 0.98^800 ~ 1 - 1e-7."""
    env = envs.bandit({"name": name, "loc": 1.5, "scale": 0.5})
    res = td_jax.run(["td"], [env], [0.02], 256, 400, progress=False, distribution_metric=False)
    np.testing.assert_allclose(res.true_values["bandit"], [1.5], rtol=1e-12)
    final = res.final_values["bandit"][0, 0, :, 0].astype(np.float64)
    std = np.sqrt(2.0) * 0.5 * np.sqrt(0.02 / 1.98)
    return final.mean(), 1.5 * (1 - 0.98**400), final.std(ddof=1), std


def test_registered_family_in_td_run_on_a_bandit(laplace):
    del laplace
    mean, mean_theory, std, std_theory = td_bandit_moments("laplace_test")
    assert abs(mean - mean_theory) < 6 * std_theory / 16  # 6 standard errors of 256
    # The spread too (a sampler of the wrong scale fails): the sample std of 256 learners
    # is within about 4.4% (one se) of its theory; 20% is 4.5 se.
    assert abs(std / std_theory - 1.0) < 0.2, (std, std_theory)


def test_the_bandit_check_catches_a_sampler_of_the_wrong_scale(laplace):
    wide = lambda u1, u2, loc, scale: laplace_sampler(u1, u2, loc, 1.5 * scale)  # noqa: E731
    rewards.register("laplace_wide_test", wide, laplace_cdf,
                     defaults={"loc": 0.0, "scale": 1.0}, overwrite=True)  # fmt: skip
    mean, mean_theory, std, std_theory = td_bandit_moments("laplace_wide_test")
    assert abs(mean - mean_theory) < 6 * std_theory / 16  # its mean is right: not enough
    assert abs(std / std_theory - 1.0) > 0.2  # its scale is 1.5x: the check above fails


def test_mixture_and_registered_rewards_in_tasks(laplace):
    del laplace
    chain = envs.chain(3, rewards=[SPEC, "laplace_test", 1.0], gamma=0.9)
    np.testing.assert_allclose(
        chain.expected_rewards(), [rewards.make(**SPEC).mean, 0.0, 1.0], atol=1e-8
    )
    cfg = chain.config()["rewards"]
    assert cfg["step1"] == {"name": "laplace_test", "loc": 0.0, "scale": 1.0}
    garnet = envs.random_mrp(4, 2, reward=SPEC, seed=1)
    assert abs(np.mean(garnet.expected_rewards())) < 3.0
    res = td_jax.run(["td"], {"chain": chain}, [0.1], 2, 50, progress=False)
    assert np.all(np.isfinite(res.value_error))


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "gaussian"}, r"must be a new name \(it is a built-in family\), got 'gaussian'"),
        ({"name": "mixture"}, r"name must be a new name \(it is a built-in family\)"),
        ({"name": "my law"}, r"name must be a name of letters, digits and _"),
        ({"sampler": 3}, r"laplace2: sampler must be callable, got 3"),
        ({"cdf": None}, r"laplace2: cdf must be callable, got None"),
        ({"defaults": {"loc": "a"}}, r"laplace2: default 'loc' must be a finite number"),
        ({"defaults": {"mu": 0.0}}, r"laplace2: sampler must be a callable taking \(u1, u2, mu\)"),
        ({"defaults": {"loc": 0.0, "scale": -1.0}}, r"laplace2: cdf must be a distribution"),
        ({"sampler": lambda u1, u2, loc, scale: u1[:1]}, r"samples of the uniforms' shape"),
    ],
)
def test_register_errors(kwargs, message):
    args = {"name": "laplace2", "sampler": laplace_sampler, "cdf": laplace_cdf,
            "defaults": {"loc": 0.0, "scale": 1.0}, **kwargs}  # fmt: skip
    with pytest.raises(ValueError, match=message):
        rewards.register(args.pop("name"), args.pop("sampler"), args.pop("cdf"), **args)


def test_register_refuses_a_taken_name(laplace):
    with pytest.raises(ValueError, match=r"name must be new \(pass overwrite=True"):
        rewards.register("laplace_test", laplace.sampler, laplace.cdf, defaults=laplace.defaults)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"name": "laplace_test", "scale": -1.0}, r"laplace_test: cdf must be a distribution"),
        ({"name": "laplace_test", "mu": 1.0}, r"laplace_test: unknown parameter 'mu'"),
        ({"name": "laplace_test", "loc": "x"}, r"laplace_test: loc must be a finite number"),
        ({"name": "mixture", "weights": [0.5, 0.6]}, r"mixture: weights must be .* sum"),
        ({"name": "mixture", "components": []}, r"mixture: components must be a non-empty"),
        ({"name": "mixture", "components": "gaussian"}, r"mixture: components must be"),
        ({"name": "mixture", "components": ["nope", 1.0]}, r"unknown reward distribution 'nope'"),
        ({"name": "mixture", "components": [{"name": "gaussian", "std": 0}, 1.0]}, r"std must"),
        ({"name": "mixture", "mu": 1}, r"mixture: unknown parameter 'mu'"),
    ],
)
def test_make_errors(laplace, params, message):
    del laplace
    with pytest.raises(ValueError, match=message):
        rewards.make(**params)


def test_listed_everywhere(laplace):
    del laplace
    names = rewards.available()
    assert "mixture" in names and "laplace_test" in names
    assert set(rewards.describe()) == set(names)
    assert rewards.defaults("laplace_test") == {"loc": 0.0, "scale": 1.0}
    assert rewards.make("mixture").config()["name"] == "mixture"
