"""Reward noise for the deep control tasks, drawn from td_jax's own reward families.

The agent is trained on the noisy reward; the reported return is always the environment's
true (noise-free) one. Variants (``RewardNoise.kind``):

* ``none``: the reward unchanged.
* ``gaussian``: r + e with e ~ ``td_jax.rewards.make("gaussian", standardize=(0, std))``,
  i.e. N(0, std^2).
* ``student_t``: r + e with e a Student t with ``df`` degrees of freedom (heavy tails),
  standardised by ``td_jax.rewards`` to mean 0 and standard deviation ``std`` (df > 2).
* ``bernoulli``: r + e with e a Bernoulli(p) standardised to mean 0 and std ``std``
  (a rare large positive kick, a frequent small negative one).
* ``bernoulli_sparse``: r * B / p with B ~ ``td_jax.rewards.make("bernoulli", p=p)``: the
  reward arrives with probability p, scaled by 1/p, else 0. Same mean, variance
  r^2 (1 - p) / p; ``std`` is unused.

Every variant leaves the expected reward, hence Q* and the optimal policy, unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from td_jax import rewards

KINDS = ("none", "gaussian", "student_t", "bernoulli", "bernoulli_sparse")


@dataclasses.dataclass(frozen=True)
class RewardNoise:
    """A reward-noise variant (see the module docstring).

    Attributes:
      kind: one of ``KINDS``.
      std: the additive noise's standard deviation (gaussian, student_t, bernoulli).
      df: Student t degrees of freedom (> 2, so that the variance is finite).
      p: the Bernoulli probability (bernoulli, bernoulli_sparse).
    """

    kind: str = "none"
    std: float = 1.0
    df: float = 3.0
    p: float = 0.1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"reward noise must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.std > 0:
            raise ValueError(f"reward noise std must be > 0, got {self.std!r}")
        if not self.df > 2:
            raise ValueError(f"reward noise df must be > 2 (finite variance), got {self.df!r}")
        if not 0 < self.p <= 1:
            raise ValueError(f"reward noise p must be in (0, 1], got {self.p!r}")

    def law(self) -> rewards.RewardDistribution | None:
        """The td_jax reward distribution the noise is drawn from (None for ``none``)."""
        standard = (0.0, float(self.std))
        if self.kind == "gaussian":
            return rewards.make("gaussian", standardize=standard)
        if self.kind == "student_t":
            return rewards.make("student_t", df=float(self.df), standardize=standard)
        if self.kind == "bernoulli":
            return rewards.make("bernoulli", p=float(self.p), standardize=standard)
        if self.kind == "bernoulli_sparse":
            return rewards.make("bernoulli", p=float(self.p), value=1.0)
        return None

    def describe(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "bernoulli_sparse":
            return f"bernoulli_sparse(p={self.p:g})"
        extra = f", df={self.df:g}" if self.kind == "student_t" else ""
        extra += f", p={self.p:g}" if self.kind == "bernoulli" else ""
        return f"{self.kind}(std={self.std:g}{extra})"


def as_noise(spec: RewardNoise | str | dict[str, Any] | None) -> RewardNoise:
    """``None`` / a kind / a dict of ``RewardNoise`` fields / a ``RewardNoise``."""
    if spec is None:
        return RewardNoise()
    if isinstance(spec, RewardNoise):
        return spec
    if isinstance(spec, str):
        return RewardNoise(kind=spec)
    return RewardNoise(**spec)


def make_noiser(spec: RewardNoise | str | dict[str, Any] | None):
    """``noisy(key, reward f32[...]) -> f32[...]``, the training reward of ``spec``."""
    noise = as_noise(spec)
    law = noise.law()
    if law is None:
        return lambda key, reward: reward
    if noise.kind == "bernoulli_sparse":
        p = float(noise.p)

        def sparse(key: jax.Array, reward: jax.Array) -> jax.Array:
            return reward * law.sample(key, jnp.shape(reward)) / p

        return sparse

    def additive(key: jax.Array, reward: jax.Array) -> jax.Array:
        return reward + law.sample(key, jnp.shape(reward))

    return additive
