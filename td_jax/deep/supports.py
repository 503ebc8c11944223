"""C51's support from the task: its discounted return range, widened by the reward noise.

C51 (Bellemare, Dabney, Munos 2017, https://arxiv.org/abs/1707.06887) puts its return
distribution on a fixed support [v_min, v_max]; targets outside it are clipped onto the end
atoms. CleanRL's [-100, 100] (``td_jax.deep.agents``) wastes half the atoms on CartPole-v1
(returns in [0, 100]) and on Acrobot-v1 (returns in [-100, 0]), and on Acrobot a policy that
never reaches the goal has values at v_min itself. Here the support is the task's:

* the noise-free discounted return lies in [min(0, r_lo) / (1 - gamma), max(0, r_hi) / (1 -
  gamma)] for per-step rewards in [r_lo, r_hi] (``REWARD_RANGE``, read off gymnax's
  ``step``; an episode's end is absorbing with reward 0);
* reward noise of per-step standard deviation sigma_r (``noise_std``) adds to a return a
  zero-mean sum whose standard deviation is at most sigma_r / sqrt(1 - gamma^2), which the
  support covers ``sigmas`` times;
* and a ``pad`` fraction of the noise-free range on each side (the learned distribution
  passes the ends while it learns).

``tests/test_deep_supports.py`` checks that the supports of deep_control cover the
discounted noisy returns of long episodes of each task.
"""

from __future__ import annotations

import math

from td_jax.deep import noise as noise_lib

# Per-step noise-free reward range of each environment (gymnax 0.0.x-1.x ``step``):
# CartPole 1 a step (0 once terminal), Acrobot -1 a step and 0 on reaching the goal,
# MountainCar -1 a step, Breakout-MinAtar +1 a brick.
REWARD_RANGE = {
    "CartPole-v1": (0.0, 1.0),
    "Acrobot-v1": (-1.0, 0.0),
    "MountainCar-v0": (-1.0, 0.0),
    "Breakout-MinAtar": (0.0, 1.0),
}
SIGMAS = 3.0  # the noise's return standard deviations the support covers
PAD = 0.1  # and this fraction of the noise-free return range on each side


def noise_std(noise: noise_lib.RewardNoise, reward_range: tuple[float, float]) -> float:
    """The per-step standard deviation the noise adds to a reward in ``reward_range``."""
    if noise.kind == "none":
        return 0.0
    if noise.kind == "bernoulli_sparse":  # r B / p: variance r^2 (1 - p) / p
        biggest = max(abs(x) for x in reward_range)
        return biggest * math.sqrt((1.0 - noise.p) / noise.p)
    return float(noise.std)


def return_range(env: str, gamma: float) -> tuple[float, float]:
    """The noise-free discounted return range of ``env`` (ValueError naming an env
    without a known reward range)."""
    if env not in REWARD_RANGE:
        raise ValueError(f"no reward range is known for {env!r} (C51's support from the "
                         f"task); known: {', '.join(REWARD_RANGE)}")  # fmt: skip
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1) for a support from the task, got {gamma!r}")
    lo, hi = REWARD_RANGE[env]
    return min(0.0, lo) / (1.0 - gamma), max(0.0, hi) / (1.0 - gamma)


def task_support(
    env: str, noise, gamma: float, sigmas: float = SIGMAS, pad: float = PAD
) -> tuple[float, float]:
    """(v_min, v_max) of C51 on ``env`` with reward ``noise`` (anything
    ``noise.as_noise`` takes) at discount ``gamma``, rounded outwards to 0.1."""
    if not (sigmas >= 0 and pad >= 0):
        raise ValueError(f"support sigmas and pad must be >= 0, got {sigmas!r}, {pad!r}")
    lo, hi = return_range(env, gamma)
    spread = noise_std(noise_lib.as_noise(noise), REWARD_RANGE[env])
    margin = pad * (hi - lo) + sigmas * spread / math.sqrt(1.0 - gamma**2)
    return math.floor((lo - margin) * 10) / 10, math.ceil((hi + margin) * 10) / 10
