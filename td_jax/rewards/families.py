"""The reward families: parameters, validation, sampler kernel and exact law of each.

A family is data (bsuite style): a name, defaults, a builder that validates keyword
parameters into a fixed-size parameter vector plus atom arrays, and the inverse maps back to
a JSON config and to an exact float64 ``Law``. The family's position in ``FAMILIES`` is the
int32 stored in a reward pytree, so it must only ever be appended to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from td_jax import strict
from td_jax.rewards import exact
from td_jax.rewards import sampling as smp

Built = tuple[np.ndarray, np.ndarray, np.ndarray]  # params f64[NUM_PARAMS], locs, probs

# Dabney et al. (2020), variable-magnitude task (from Eshel et al. 2015 / Stauffer 2016):
# drop sizes in microlitres and their trial frequencies, renormalised to sum to 1.
DABNEY_MAGNITUDES = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])
DABNEY_FREQUENCIES = np.array(
    [0.06612594, 0.09090909, 0.14847358, 0.15489467, 0.31159175, 0.1509519, 0.07705306]
)


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    kernel: int
    defaults: dict[str, Any]
    description: str
    reference: str
    build: Callable[..., Built]
    config: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]
    law: Callable[[np.ndarray, np.ndarray, np.ndarray], exact.Law]


def _params(*values: float) -> np.ndarray:
    out = np.zeros(smp.NUM_PARAMS)
    out[: len(values)] = values
    return out


def _continuous(*values: float) -> Built:
    # Continuous families carry a dummy one-atom table so that every family has the same
    # leaf shapes and rewards of different families stack.
    return _params(*values), np.zeros(1), np.ones(1)


def _atoms(locs: np.ndarray, probs: np.ndarray, *values: float) -> Built:
    order = np.argsort(locs, kind="stable")
    return _params(*values), locs[order], probs[order]


def _atoms_law(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> exact.Law:
    del params
    return exact.Atoms(locs, probs)


def _deterministic(value: float = 0.0) -> Built:
    v = strict.check_finite("deterministic", "value", value)
    return _atoms(np.array([v]), np.ones(1), v)


def _gaussian(mean: float = 0.0, std: float = 1.0) -> Built:
    return _continuous(
        strict.check_finite("gaussian", "mean", mean), strict.check_positive("gaussian", "std", std)
    )


def _bimodal(
    means: tuple[float, float] = (-1.0, 1.0),
    stds: tuple[float, float] = (0.5, 0.5),
    weights: tuple[float, float] = (0.5, 0.5),
) -> Built:
    m = strict.check_vector("bimodal", "means", means, 2)
    s = strict.check_vector("bimodal", "stds", stds, 2)
    if np.any(s <= 0):
        strict.fail("bimodal", "stds", list(s), "> 0")
    w = strict.check_simplex("bimodal", "weights", weights, 2)
    return _continuous(m[0], m[1], s[0], s[1], w[0])


def _bimodal_config(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> dict:
    del locs, probs
    m1, m2, s1, s2, w1 = (float(x) for x in params)
    return {"means": [m1, m2], "stds": [s1, s2], "weights": [w1, 1.0 - w1]}


def _bimodal_law(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> exact.Law:
    del locs, probs
    m1, m2, s1, s2, w1 = params
    return exact.mixture([exact.Normal(m1, s1), exact.Normal(m2, s2)], [w1, 1.0 - w1])


def _bernoulli(p: float = 0.1, value: float = 1.0) -> Built:
    p = strict.check_probability("bernoulli", "p", p)
    v = strict.check_finite("bernoulli", "value", value)
    return _atoms(np.array([0.0, v]), np.array([1.0 - p, p]), p, v)


def _exponential(scale: float = 1.0) -> Built:
    return _continuous(strict.check_positive("exponential", "scale", scale))


def _lognormal(mu: float = 0.0, sigma: float = 1.0) -> Built:
    return _continuous(
        strict.check_finite("lognormal", "mu", mu),
        strict.check_positive("lognormal", "sigma", sigma),
    )


def _student_t(df: float = 3.0, loc: float = 0.0, scale: float = 1.0) -> Built:
    df = strict.check_greater("student_t", "df", df, 1.0)  # df > 1 so that the mean exists
    return _continuous(
        df,
        strict.check_finite("student_t", "loc", loc),
        strict.check_positive("student_t", "scale", scale),
    )


def _student_t_law(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> exact.Law:
    del locs, probs
    return exact.Affine(exact.StudentT(params[0]), params[1], params[2])


def _uniform(low: float = 0.0, high: float = 1.0) -> Built:
    low = strict.check_finite("uniform", "low", low)
    high = strict.check_finite("uniform", "high", high)
    if not high > low:
        strict.fail("uniform", "high", high, f"> low = {low}")
    return _continuous(low, high)


def _categorical(values: Any = (0.0, 1.0), probs: Any = (0.5, 0.5)) -> Built:
    v = strict.check_vector("categorical", "values", values)
    p = strict.check_simplex("categorical", "probs", probs, v.size)
    return _atoms(v, p, float(v.size))


def _categorical_config(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> dict:
    n = int(params[0])
    return {"values": locs[:n].tolist(), "probs": probs[:n].tolist()}


def _dabney_magnitude() -> Built:
    return _atoms(DABNEY_MAGNITUDES, DABNEY_FREQUENCIES / DABNEY_FREQUENCIES.sum())


def _dabney_probability(p: float = 0.5, magnitude: float = 1.0) -> Built:
    p = strict.check_probability("dabney_probability", "p", p)
    v = strict.check_finite("dabney_probability", "magnitude", magnitude)
    return _atoms(np.array([0.0, v]), np.array([1.0 - p, p]), p, v)


def _named(*names: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], dict]:
    def config(params: np.ndarray, locs: np.ndarray, probs: np.ndarray) -> dict:
        del locs, probs
        return {n: float(params[i]) for i, n in enumerate(names)}

    return config


FAMILIES: tuple[Family, ...] = (
    Family(
        "deterministic", smp.KERNEL_ATOMS, {"value": 0.0},
        "a fixed reward (no reward noise)", "",
        _deterministic, _named("value"), _atoms_law,
    ),
    Family(
        "gaussian", smp.KERNEL_NORMAL, {"mean": 0.0, "std": 1.0},
        "Gaussian reward N(mean, std^2)", "",
        _gaussian, _named("mean", "std"), lambda p, *_: exact.Normal(p[0], p[1]),
    ),
    Family(
        "bimodal", smp.KERNEL_BIMODAL,
        {"means": (-1.0, 1.0), "stds": (0.5, 0.5), "weights": (0.5, 0.5)},
        "two-component Gaussian mixture", "Rowland et al. (2023), arXiv:2305.18388",
        _bimodal,
        _bimodal_config,
        _bimodal_law,
    ),
    Family(
        "bernoulli", smp.KERNEL_ATOMS, {"p": 0.1, "value": 1.0},
        "sparse reward: value with probability p, else 0", "",
        _bernoulli, _named("p", "value"), _atoms_law,
    ),
    Family(
        "exponential", smp.KERNEL_EXPONENTIAL, {"scale": 1.0},
        "skewed reward: exponential with mean scale", "",
        _exponential, _named("scale"), lambda p, *_: exact.Exponential(p[0]),
    ),
    Family(
        "lognormal", smp.KERNEL_LOGNORMAL, {"mu": 0.0, "sigma": 1.0},
        "skewed heavy right tail: exp(N(mu, sigma^2))", "",
        _lognormal, _named("mu", "sigma"), lambda p, *_: exact.LogNormal(p[0], p[1]),
    ),
    Family(
        "student_t", smp.KERNEL_STUDENT_T, {"df": 3.0, "loc": 0.0, "scale": 1.0},
        "heavy tails: loc + scale * Student t(df), df > 1",
        "Rowland et al. (2023), arXiv:2305.18388",
        _student_t, _named("df", "loc", "scale"), _student_t_law,
    ),
    Family(
        "uniform", smp.KERNEL_UNIFORM, {"low": 0.0, "high": 1.0},
        "uniform reward on [low, high]", "",
        _uniform, _named("low", "high"), lambda p, *_: exact.Uniform(p[0], p[1]),
    ),
    Family(
        "categorical", smp.KERNEL_ATOMS, {"values": (0.0, 1.0), "probs": (0.5, 0.5)},
        "any finite values with probabilities", "",
        _categorical, _categorical_config, _atoms_law,
    ),
    Family(
        "dabney_magnitude", smp.KERNEL_ATOMS, {},
        "Dabney 2020 variable-magnitude task: 0.1..20 uL drops, mean 5.2078",
        "Dabney et al., Nature 577:671-675 (2020)",
        _dabney_magnitude, _named(), _atoms_law,
    ),
    Family(
        "dabney_probability", smp.KERNEL_ATOMS, {"p": 0.5, "magnitude": 1.0},
        "Dabney 2020 variable-probability task: magnitude with probability p, else 0",
        "Dabney et al., Nature 577:671-675 (2020)",
        _dabney_probability, _named("p", "magnitude"), _atoms_law,
    ),
)  # fmt: skip

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}
INDEX: dict[str, int] = {f.name: i for i, f in enumerate(FAMILIES)}
KERNEL_OF_FAMILY = np.array([f.kernel for f in FAMILIES], dtype=np.int32)
