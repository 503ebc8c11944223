"""Reproduction: Obando-Ceron and Castro (2021), "Revisiting Rainbow: Promoting more
Insightful and Inclusive Deep Reinforcement Learning Research", ICML,
https://arxiv.org/abs/2011.14826.

Suite ``rainbow2021`` (``td-jax bench --suite rainbow2021``). What the paper reports on the
classic-control tasks we share (CartPole, Acrobot), for distributional RL added to DQN
(its "DQN + Distributional", i.e. C51's categorical loss on DQN; the paper runs no separate
C51 agent and gives no table of returns, so directions are all there is to compare):

* Section 4.2: "distributional RL, when added on its own to DQN, may actually hurt
  performance (e.g. Acrobot and Freeway)"; the authors' write-up of Figure 1 adds that it
  "can sometimes have a large negative effect on learning (Acrobot and MountainCar)". We
  check: C51 is worse than DQN on Acrobot over the learning curve (AUC).
* Figure 1, CartPole: at the last iteration DQN + Distributional ends higher than DQN (about
  190 against 120, read off the plot by eye; the paper states no number). We check: C51's
  final return is better than DQN's on CartPole.
* QR-DQN against DQN: the paper compares QR-DQN only with its own Rainbow variants (Figure 3,
  Section 5.2), never with DQN, so there is no claim to check; we report what we measure.

Setup, from the paper (Section 4.1: MLPs of 2 x 512 units, Adam, Dopamine) and its published
gin configs (revisiting_rainbow/Configs, ``dqn_cartpole.gin``, ``quantile_cartpole.gin``,
``rainbow_cartpole.gin`` and their Acrobot twins): 30 iterations x 1,000 training steps
(30,000 environment steps), replay 50,000, batch 128, target update every 100 steps,
learning after 500 transitions, update period 4 (DQN, and C51 as DQN + Distributional) and 2
(QR-DQN), Adam eps 3.125e-4, gamma 0.99, a constant epsilon of 0.01 (Dopamine's
``identity_epsilon`` with its default ``epsilon_train``), the DQN loss a mean squared error,
QR-DQN with 51 quantiles and kappa 1, C51 with 51 atoms on the Rainbow configs' support
[-200, 200] (no C51 config exists). Learning rates fixed at the configs' 1e-3 (DQN, and C51
as DQN + Distributional) and 1e-4 (QR-DQN): Figure 1 compares the components "under constant
hyper-parameter settings" (Section 4.2), so nothing is tuned here.

Where we differ, and why: 2 x 128 units instead of 2 x 512 (the 512-unit network costs about
16 times more per update, over an hour of 2 CPU cores for this suite); gymnax's CartPole-v1
(500-step episodes) instead of CartPole-v0 (200), so CartPole returns are on another scale;
no observation normalisation; 10 evaluation seeds instead of 100 (the intervals are wider).
"""

from __future__ import annotations

from td_jax.deep import suites as deep_suites
from td_jax.deep.suites import DeepSuite
from td_jax.studies import suite_files

NAME = "rainbow2021"
# The settings the docstring describes, the claims included: benchmarks/rainbow2021.toml.
SETTINGS = DeepSuite
suite = deep_suites.suite  # the suite its study file defines


def rainbow2021() -> DeepSuite:
    """The suite's configuration: benchmarks/rainbow2021.toml's [settings]."""
    return suite_files.settings(NAME)
