"""A task with a continuous state: a random walk on [0, 1] with uniform jumps, exit pays position.

How a continuous state fits the ``Transition`` contract (int states). The walk is observed
on a fine grid: the int state ``s`` is grid point ``s`` and its observation is the point
``x_s = s / (S - 1)`` of the unit interval, which is exactly the position convention every
geometric feature map of ``td_jax.approx.features`` reads (``positions(S)``). Jumps are
uniform on the grid multiples in ``[-w, w]``, so the walk never leaves the grid and the
grid process is the continuous process with uniform jumps on ``[-w, w]`` restricted to
grid starting points; nothing about the MRP contract, the runner or the tabular rules
changes (a tabular learner on it is one table entry per grid point).

The process: from ``x``, jump to ``y = x + k / (S - 1)`` with ``k`` uniform on
``{-J, ..., J}``, ``J = round(w (S - 1))``. If ``y`` lies in [0, 1] the walk goes on
(reward 0); otherwise the episode ends and pays ``y + noise``, the exit position plus a
zero-mean reward noise of any family (``reward``); the next episode starts at a uniformly
drawn grid point, so the stream visits every state.

Exact values in closed form. With gamma = 1 the position is a martingale with bounded
increments and the episode ends a.s. with integrable length, so by optional stopping
``V(x) = E[X_tau] = x``, on the continuous process and on every grid alike: the value is
affine in the observation, and the return law (a mixture of the shifted noise over the
exit positions, weighted by exact absorption probabilities) is nonlinear in it. The MRP
machinery computes both exactly (truth method ``exact-absorption``); tests check
``true_values() == positions``. With gamma < 1 the values are still exact (a linear solve)
but have no closed form.

References: optional stopping, e.g. Williams (1991), Probability with Martingales, 10.10;
the discrete special case is Sutton's random walk (Sutton 1988; Sutton & Barto 2018, 6.2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from td_jax import rewards as reward_lib
from td_jax import strict
from td_jax.envs import catalog
from td_jax.envs.mrp import MRP

RewardSpec = Any


def grid_positions(num_states: int) -> np.ndarray:
    """f64[S]: the observation ``x_s = s / (S - 1)`` of each grid state (the features'
    position convention, ``td_jax.approx.features.positions``)."""
    return np.linspace(0.0, 1.0, num_states)


def continuous_walk(
    num_states: int = 41,
    max_jump: float = 0.2,
    reward: RewardSpec = "gaussian",
    gamma: float = 1.0,
) -> MRP:
    """A random walk on [0, 1] with uniform jumps, observed on a grid; exit pays its position.

    Args:
      num_states: S >= 3 grid points (the resolution of the observation).
      max_jump: w in (0, 1], the half-width of the uniform jump; at least one grid step.
      reward: the noise law added to the exit position; it is recentred to mean 0, so
        the exit reward has mean equal to the exit position and the law's shape and spread
        (e.g. ``{"name": "student_t", "df": 2.5, "standardize": [1, 1]}``).
      gamma: the discount, in [0, 1]; at 1 (default), ``V(x) = x`` exactly.
    """
    name = "continuous_walk"
    n = strict.check_int(name, "num_states", num_states, 3)
    w = strict.check_finite(name, "max_jump", max_jump)
    if not 0.0 < w <= 1.0:
        strict.fail(name, "max_jump", w, "in (0, 1]")
    jump = round(w * (n - 1))
    if jump < 1:
        step = 1.0 / (n - 1)
        strict.fail(
            name,
            "max_jump",
            w,
            f"at least one grid step, 1 / (num_states - 1) = {step:.6g} "
            "(jumps are whole grid steps, rounded)",
        )
    catalog.check_table_size(name, n, 2 * jump + 1)
    noise = reward_lib.as_reward(reward)
    # Slots: 0 pays nothing (the walk goes on), 1.. pay exit offsets -J..-1, then +1..+J
    # beyond the ends, i.e. exit positions -J/(S-1)..-1/(S-1) and 1+1/(S-1)..1+J/(S-1).
    exits = [-k for k in range(jump, 0, -1)] + [n - 1 + k for k in range(1, jump + 1)]
    slot_of = {y: i + 1 for i, y in enumerate(exits)}
    rewards = [0.0] + [reward_lib.shift(noise, y / (n - 1) - noise.mean) for y in exits]
    labels = ("step", *(f"exit{y / (n - 1):+.4f}" for y in exits))
    p = 1.0 / (2 * jump + 1)
    outcomes = []
    for s in range(n):
        row = []
        for k in range(-jump, jump + 1):
            y = s + k
            if 0 <= y < n:
                row.append((p, y, False, 0))
            else:
                row.append((p, s, True, slot_of[y]))
        outcomes.append(row)
    return catalog.build(
        name, outcomes=outcomes, rewards=rewards, reward_labels=labels,
        start_probs=np.full(n, 1.0 / n), gamma=gamma, episodic=True,
        spec=(("num_states", n), ("jump", jump)), params={"max_jump": w},
    )  # fmt: skip


# Registered in the environment catalog on import (td_jax.envs imports this module).
catalog.FACTORIES.setdefault(
    "continuous_walk",
    (continuous_walk, "continuous-state random walk on [0, 1] on a grid, exit pays position"),
)
