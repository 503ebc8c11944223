"""Reward distributions: JAX samplers with exact float64 ground truth.

``make(name, **params)`` builds a reward pytree; ``available()`` and ``describe()`` list
the families. Every family accepts ``standardize=(mean, std)``, which gives it exactly that
mean and standard deviation so families compare on equal footing.

Families: deterministic, gaussian, bimodal (two-Gaussian mixture), bernoulli (sparse),
exponential (skewed), lognormal, student_t (heavy tails, df > 1), uniform, categorical
(any finite values), dabney_magnitude and dabney_probability (Dabney et al., Nature 2020);
``mixture`` (weights over any of them, point masses included: ``td_jax.rewards.mixture``);
and a user's own, ``register(name, sampler, cdf, defaults=...)`` (``td_jax.rewards.registry``,
its truth computed numerically: ``td_jax.rewards.numerical``).
"""

from td_jax.rewards.api import as_reward, available, defaults, describe, make, pad, stack
from td_jax.rewards.distribution import DEFAULT_CAPACITY, RewardDistribution, shift
from td_jax.rewards.exact import Law
from td_jax.rewards.mixture import Mixture
from td_jax.rewards.registry import RegisteredFamily, register

__all__ = [
    "DEFAULT_CAPACITY",
    "Law",
    "Mixture",
    "RegisteredFamily",
    "RewardDistribution",
    "as_reward",
    "available",
    "defaults",
    "describe",
    "make",
    "pad",
    "register",
    "shift",
    "stack",
]
