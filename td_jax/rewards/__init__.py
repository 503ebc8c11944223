"""Reward distributions: JAX samplers with exact float64 ground truth.

``make(name, **params)`` builds a ``RewardDistribution`` pytree; ``available()`` and
``describe()`` list the families. Every family accepts ``standardize=(mean, std)``, which
gives it exactly that mean and standard deviation so families compare on equal footing.

Families: deterministic, gaussian, bimodal (two-Gaussian mixture), bernoulli (sparse),
exponential (skewed), lognormal, student_t (heavy tails, df > 1), uniform, categorical
(any finite values), dabney_magnitude and dabney_probability (Dabney et al., Nature 2020).
"""

from td_jax.rewards.distribution import (
    DEFAULT_CAPACITY,
    RewardDistribution,
    as_reward,
    available,
    defaults,
    describe,
    make,
    pad,
    shift,
    stack,
)
from td_jax.rewards.exact import Law

__all__ = [
    "DEFAULT_CAPACITY",
    "Law",
    "RewardDistribution",
    "as_reward",
    "available",
    "defaults",
    "describe",
    "make",
    "pad",
    "shift",
    "stack",
]
