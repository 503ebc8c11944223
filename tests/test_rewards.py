"""Conformance tests every reward distribution must pass (bsuite-style), plus Dabney's numbers.

Exact functions are checked against scipy.stats (or hand-written sums for finite laws),
never against td_jax's own code path; samplers are checked against the exact law with
confidence bounds that hold for the law at hand (DKW for the CDF, CLT moments only where
the needed moments exist).
"""

from __future__ import annotations

import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from td_jax import rewards

N_SAMPLES = 1_000_000
DKW_EPS = float(np.sqrt(np.log(2 / 1e-6) / (2 * N_SAMPLES)))  # P(sup|F_n - F| > eps) <= 1e-6
Z = 6.0  # CLT bound for moments

CASES = {
    "deterministic": ("deterministic", {"value": 1.5}),
    "gaussian": ("gaussian", {"mean": 1.0, "std": 2.0}),
    "bimodal": ("bimodal", {"means": (-2.0, 3.0), "stds": (0.5, 1.0), "weights": (0.3, 0.7)}),
    "bernoulli": ("bernoulli", {"p": 0.2, "value": 3.0}),
    "exponential": ("exponential", {"scale": 2.0}),
    "lognormal": ("lognormal", {"mu": 0.2, "sigma": 0.5}),
    "student_t": ("student_t", {"df": 5.0, "loc": 1.0, "scale": 2.0}),
    "student_t_heavy": ("student_t", {"df": 1.5}),  # infinite variance
    "uniform": ("uniform", {"low": -1.0, "high": 3.0}),
    "categorical": ("categorical", {"values": [4.0, -2.0, 0.5], "probs": [0.3, 0.2, 0.5]}),
    "dabney_magnitude": ("dabney_magnitude", {}),
    "dabney_probability": ("dabney_probability", {"p": 0.1, "magnitude": 2.0}),
    "lognormal_std": ("lognormal", {"sigma": 0.75, "standardize": (0.0, 1.0)}),
    "student_t_std": ("student_t", {"df": 3.0, "standardize": (1.0, 2.0)}),
    "bernoulli_std": ("bernoulli", {"p": 0.1, "standardize": (0.0, 1.0)}),
}
DISCRETE = {"deterministic", "bernoulli", "categorical", "dabney_magnitude", "dabney_probability"}

# Dabney et al. (2020), written out here independently of td_jax.rewards.families.
DABNEY_VALUES = [0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0]
DABNEY_FREQS = [0.06612594, 0.09090909, 0.14847358, 0.15489467, 0.31159175, 0.1509519, 0.07705306]


# -- independent references ---------------------------------------------------------------


class Discrete:
    def __init__(self, values, probs):
        order = np.argsort(values)
        self.v = np.asarray(values, float)[order]
        self.p = np.asarray(probs, float)[order] / np.sum(probs)

    def mean(self):
        return float(self.p @ self.v)

    def var(self):
        return float(self.p @ (self.v - self.mean()) ** 2)

    def mu4(self):
        return float(self.p @ (self.v - self.mean()) ** 4)

    def cdf(self, x):
        return np.array([self.p[self.v <= xi].sum() for xi in np.atleast_1d(x)])

    def ppf(self, taus):
        cum = np.cumsum(self.p)
        return np.array([self.v[np.argmax(cum >= t - 1e-12)] for t in np.atleast_1d(taus)])

    def expectile(self, tau):
        def g(e):
            return tau * self.p @ np.maximum(self.v - e, 0) - (1 - tau) * self.p @ np.maximum(
                e - self.v, 0
            )

        if self.v[0] == self.v[-1]:
            return self.v[0]
        return optimize.brentq(g, self.v[0], self.v[-1], xtol=1e-13)


class Continuous:
    """Wraps a frozen scipy law (or a mixture of them) with mu4 and quad-based expectiles."""

    def __init__(self, parts, weights=(1.0,)):
        self.parts, self.w = parts, np.asarray(weights) / np.sum(weights)

    def mean(self):
        return float(sum(w * d.mean() for w, d in zip(self.w, self.parts, strict=True)))

    def var(self):
        m = self.mean()
        return float(
            sum(
                w * (d.var() + (d.mean() - m) ** 2) for w, d in zip(self.w, self.parts, strict=True)
            )
        )

    def mu4(self):
        m = self.mean()
        return float(
            sum(
                w * d.expect(lambda x: (x - m) ** 4)
                for w, d in zip(self.w, self.parts, strict=True)
            )
        )

    def pdf(self, x):
        return sum(w * d.pdf(x) for w, d in zip(self.w, self.parts, strict=True))

    def cdf(self, x):
        return sum(w * d.cdf(x) for w, d in zip(self.w, self.parts, strict=True))

    def ppf(self, taus):
        if len(self.parts) == 1:
            return self.parts[0].ppf(taus)
        lo, hi = min(d.ppf(1e-12) for d in self.parts), max(d.ppf(1 - 1e-12) for d in self.parts)
        return np.array(
            [optimize.brentq(lambda x, t=t: self.cdf(x) - t, lo, hi, xtol=1e-13) for t in taus]
        )

    def _partial(self, e, upper):
        """E[(X - e)_+] (upper) or E[(e - X)_+], by scipy's quad-based expect per part."""
        if upper:
            parts = [d.expect(lambda x: x - e, lb=e, epsabs=1e-13) for d in self.parts]
        else:
            parts = [d.expect(lambda x: e - x, ub=e, epsabs=1e-13) for d in self.parts]
        return float(np.dot(self.w, parts))

    def expectile(self, tau):
        def g(e):
            return tau * self._partial(e, True) - (1 - tau) * self._partial(e, False)

        lo, hi = self.ppf([1e-3])[0], self.ppf([1 - 1e-3])[0]
        return optimize.brentq(g, lo, hi, xtol=1e-12)


class Affine:
    def __init__(self, base, a, b):
        self.base, self.a, self.b = base, a, b

    def mean(self):
        return self.a + self.b * self.base.mean()

    def var(self):
        return self.b**2 * self.base.var()

    def mu4(self):
        return self.b**4 * self.base.mu4()

    def cdf(self, x):
        return self.base.cdf((np.asarray(x) - self.a) / self.b)

    def ppf(self, taus):
        return self.a + self.b * np.asarray(self.base.ppf(taus))

    def expectile(self, tau):
        return self.a + self.b * self.base.expectile(tau)


def reference(name: str, params: dict):
    params = dict(params)
    target = params.pop("standardize", None)
    p = {**rewards.defaults(name), **params}
    base = {
        "deterministic": lambda: Discrete([p["value"]], [1.0]),
        "gaussian": lambda: Continuous([stats.norm(p["mean"], p["std"])]),
        "bimodal": lambda: Continuous(
            [stats.norm(m, s) for m, s in zip(p["means"], p["stds"], strict=True)], p["weights"]
        ),
        "bernoulli": lambda: Discrete([0.0, p["value"]], [1 - p["p"], p["p"]]),
        "exponential": lambda: Continuous([stats.expon(scale=p["scale"])]),
        "lognormal": lambda: Continuous([stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]))]),
        "student_t": lambda: Continuous([stats.t(p["df"], p["loc"], p["scale"])]),
        "uniform": lambda: Continuous([stats.uniform(p["low"], p["high"] - p["low"])]),
        "categorical": lambda: Discrete(p["values"], p["probs"]),
        "dabney_magnitude": lambda: Discrete(DABNEY_VALUES, DABNEY_FREQS),
        "dabney_probability": lambda: Discrete([0.0, p["magnitude"]], [1 - p["p"], p["p"]]),
    }[name]()
    if target is None:
        return base
    b = target[1] / np.sqrt(base.var())
    return Affine(base, target[0] - b * base.mean(), b)


@functools.cache
def _sampler():
    # One program for every family: the family index is a traced leaf (lax.switch).
    return jax.jit(lambda r, k: r.sample(k, (N_SAMPLES,)))


@functools.cache
def samples(case: str) -> np.ndarray:
    name, params = CASES[case]
    x = _sampler()(rewards.make(name, **params), jax.random.key(7))
    return np.asarray(x, np.float64)


# -- conformance --------------------------------------------------------------------------


def test_available_and_describe():
    names = rewards.available()
    for required in {n for n, _ in CASES.values()}:
        assert required in names
    assert set(rewards.describe()) == set(names)
    assert all(isinstance(d, str) and d for d in rewards.describe().values())


@pytest.mark.parametrize("case", list(CASES))
def test_exact_functions_match_scipy(case):
    name, params = CASES[case]
    r, ref = rewards.make(name, **params), reference(name, params)
    taus = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    np.testing.assert_allclose(r.mean, ref.mean(), rtol=1e-9, atol=1e-12)
    if np.isfinite(ref.var()):
        np.testing.assert_allclose(r.variance, ref.var(), rtol=1e-9, atol=1e-12)
    else:
        assert r.variance == np.inf
    np.testing.assert_allclose(r.quantile(taus), ref.ppf(taus), rtol=1e-9, atol=1e-10)
    xs = np.linspace(ref.ppf([0.001])[0] - 1, ref.ppf([0.999])[0] + 1, 23)
    np.testing.assert_allclose(r.cdf(xs), ref.cdf(xs), rtol=1e-9, atol=1e-12)
    for tau in (0.05, 0.3, 0.8):
        np.testing.assert_allclose(r.expectile(tau), ref.expectile(tau), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_quantile_inverts_cdf(case):
    name, params = CASES[case]
    r = rewards.make(name, **params)
    taus = np.linspace(0.005, 0.995, 41)
    q = np.asarray(r.quantile(taus))
    if name in DISCRETE:
        # q = inf{x : F(x) >= tau}: F(q) >= tau and F just below q is < tau.
        assert np.all(np.asarray(r.cdf(q)) >= taus - 1e-12)
        below = np.asarray(r.cdf(q - 1e-9 * (1 + np.abs(q))))
        assert np.all(below < taus)
    else:
        np.testing.assert_allclose(r.quantile(r.cdf(q)), q, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_expectiles(case):
    name, params = CASES[case]
    r = rewards.make(name, **params)
    np.testing.assert_allclose(r.expectile(0.5), r.mean, rtol=1e-10, atol=1e-12)
    e = np.asarray(r.expectile(np.linspace(0.01, 0.99, 25)))
    if r.variance > 0:
        assert np.all(np.diff(e) > 0)
    else:
        np.testing.assert_allclose(e, r.mean, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_samples_match_law(case):
    name, params = CASES[case]
    r, ref, x = rewards.make(name, **params), reference(name, params), samples(case)
    assert x.shape == (N_SAMPLES,)
    # CDF: DKW holds for every law, heavy-tailed ones included.
    if name in DISCRETE:
        v = np.unique(np.asarray(r.quantile(np.linspace(0, 1, 201))))
        pts = np.concatenate([[v[0] - 1], 0.5 * (v[1:] + v[:-1]), [v[-1] + 1]])
    else:
        pts = np.asarray(ref.ppf(np.linspace(0.001, 0.999, 101)))
    emp = np.searchsorted(np.sort(x), pts, side="right") / N_SAMPLES
    assert np.max(np.abs(emp - ref.cdf(pts))) < DKW_EPS + 1e-6
    # Moments: CLT bounds, used only where the moments they need exist.
    var = ref.var()
    if np.isfinite(var):
        assert abs(x.mean() - ref.mean()) <= Z * np.sqrt(var / N_SAMPLES) + 1e-6
    mu4 = ref.mu4() if name != "student_t" or CASES[case][1].get("df", 3.0) > 4 else np.inf
    if np.isfinite(mu4) and var > 0:
        assert abs(x.var() - var) <= Z * np.sqrt((mu4 - var**2) / N_SAMPLES) + 1e-6 * var
    elif var == 0:
        np.testing.assert_allclose(x, ref.mean(), rtol=1e-6)


def test_dabney_magnitude_numbers():
    r = rewards.make("dabney_magnitude")
    np.testing.assert_allclose(r.mean, 5.2078, atol=5e-5)
    np.testing.assert_allclose(
        r.expectile([0.05, 0.25, 0.5, 0.75, 0.95]),
        [1.3886, 3.3353, 5.2078, 7.7671, 13.8029],
        atol=5e-5,
    )
    np.testing.assert_allclose(np.sum(r.probs), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "name", ["gaussian", "bimodal", "bernoulli", "exponential", "lognormal", "uniform"]
)
def test_standardize_gives_chosen_mean_and_std(name):
    r = rewards.make(name, standardize=(-1.5, 0.25))
    np.testing.assert_allclose([r.mean, r.std], [-1.5, 0.25], rtol=1e-12)
    again = rewards.make(**r.config())
    np.testing.assert_allclose(again.quantile([0.1, 0.9]), r.quantile([0.1, 0.9]), rtol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_config_is_json_and_rebuilds(case):
    name, params = CASES[case]
    r = rewards.make(name, **params)
    cfg = json.loads(json.dumps(r.config()))
    again = rewards.make(**cfg)
    np.testing.assert_allclose(again.quantile([0.2, 0.5, 0.8]), r.quantile([0.2, 0.5, 0.8]))


def test_sample_is_jittable_float32_and_traces_once():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def draw(reward, key):
        return reward.sample(key, (3, 4))

    for name in ("gaussian", "student_t", "dabney_magnitude", "bimodal"):
        x = draw(rewards.make(name), jax.random.key(0))
        chex.assert_shape(x, (3, 4))
        chex.assert_type(x, jnp.float32)
    shape = jax.eval_shape(rewards.make("gaussian").sample, jax.random.key(0))
    assert shape.shape == () and shape.dtype == jnp.float32


def test_rewards_of_different_families_stack_under_vmap():
    parts = [
        rewards.make("deterministic", value=2.0),
        rewards.make("gaussian", mean=-3.0, std=0.5),
        rewards.make("categorical", values=[10.0, 20.0], probs=[0.5, 0.5]),
    ]
    plain = jax.tree.map(lambda *xs: jnp.stack(xs), *parts)  # the leaf-wise stack
    keys = jax.random.split(jax.random.key(1), 3)
    x = np.asarray(jax.jit(jax.vmap(lambda r, k: r.sample(k, (20_000,))))(plain, keys))
    np.testing.assert_allclose(x[0], 2.0)
    assert abs(x[1].mean() + 3.0) < 0.05 and abs(x[1].std() - 0.5) < 0.05
    assert set(np.unique(x[2])) == {10.0, 20.0}
    # rewards.stack pads atom tables, so rewards of different capacities stack as well.
    wide = rewards.make("categorical", values=np.arange(12.0), probs=np.full(12, 1 / 12))
    stacked = rewards.stack([*parts, wide])
    chex.assert_shape([stacked.locs, stacked.probs], (4, 12))
    np.testing.assert_allclose(stacked.probs.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("gaussian", {"std": -1.0}, r"gaussian: std must be > 0, got -1\.0"),
        ("student_t", {"df": 1.0}, r"student_t: df must be > 1\.0, got 1\.0"),
        ("student_t", {"df": 0.5}, r"student_t: df must be > 1\.0, got 0\.5"),
        ("exponential", {"scale": 0.0}, r"exponential: scale must be > 0, got 0\.0"),
        ("lognormal", {"sigma": -2}, r"lognormal: sigma must be > 0, got -2\.0"),
        ("bernoulli", {"p": 1.5}, r"bernoulli: p must be a probability in \[0, 1\], got 1\.5"),
        ("categorical", {"values": [0, 1], "probs": [-0.5, 1.5]}, r"categorical: probs must"),
        ("categorical", {"values": [0, 1], "probs": [0.5, 0.6]}, r"sum to 1\.1"),
        ("bimodal", {"weights": (0.2, 0.2)}, r"bimodal: weights must be probabilities summing"),
        ("bimodal", {"stds": (1.0, -1.0)}, r"bimodal: stds must be > 0"),
        ("uniform", {"low": 1.0, "high": 0.0}, r"uniform: high must be > low = 1\.0, got 0\.0"),
        ("gaussian", {"mu": 1.0}, r"gaussian: unknown parameter 'mu'; allowed parameters: mean"),
        ("student_t", {"df": 2.0, "standardize": (0, 1)}, r"student_t: standardize must be"),
        ("nope", {}, r"unknown reward distribution 'nope'; available: deterministic, gaussian"),
    ],
)
def test_validation_errors(name, params, message):
    with pytest.raises(ValueError, match=message):
        rewards.make(name, **params)


def test_truth_functions_refuse_a_stacked_reward():
    stacked = rewards.stack([rewards.make("gaussian"), rewards.make("uniform")])
    with pytest.raises(ValueError, match="single reward"):
        _ = stacked.mean
