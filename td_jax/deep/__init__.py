"""Deep value-based control on gymnax: DQN, C51 and QR-DQN, whole training in one jit.

``make_train(config, env_name, reward_noise)`` returns a pure ``train(key, learning_rate)``
(PureJaxRL's shape); ``jax.jit(jax.vmap(jax.vmap(train, (None, 0)), (0, None)))`` runs
seeds x learning rates. Agents in ``agents``, reward noise in ``noise``, the loop in
``train``, the suites ``deep_control`` / ``deep_control_quick`` in ``suites``, their scores
and verdict in ``analysis``.
"""

from td_jax.deep.agents import (
    CONFIGS,
    Agent,
    AgentConfig,
    Batch,
    C51Config,
    DQNConfig,
    QRDQNConfig,
    c51_loss_kernel,
    dqn_loss_kernel,
    make_agent,
    make_config,
    qr_loss_kernel,
)
from td_jax.deep.noise import KINDS, RewardNoise, make_noiser
from td_jax.deep.train import ENVS, check_env, make_train, run_batch, window_ends

__all__ = [
    "CONFIGS",
    "ENVS",
    "KINDS",
    "Agent",
    "AgentConfig",
    "Batch",
    "C51Config",
    "DQNConfig",
    "QRDQNConfig",
    "RewardNoise",
    "c51_loss_kernel",
    "check_env",
    "dqn_loss_kernel",
    "make_agent",
    "make_config",
    "make_noiser",
    "make_train",
    "qr_loss_kernel",
    "run_batch",
    "window_ends",
]
