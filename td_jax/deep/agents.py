"""Deep value-based control agents: DQN, C51 and QR-DQN, one frozen config each.

An agent is a NamedTuple of pure functions (optax's shape): ``init`` makes the network's
parameters, ``q_values`` maps a batch of observations to action values (the mean of the
return distribution for the distributional agents), ``loss`` is the mean of rlax's
single-transition loss over a replay batch. The training loop (``td_jax.deep.train``) is
shared: only the network's head and the loss differ between agents.

References:
  Mnih et al. (2015). Human-level control through deep reinforcement learning. Nature 518.
  Bellemare, Dabney, Munos (2017). A Distributional Perspective on Reinforcement Learning.
    ICML. https://arxiv.org/abs/1707.06887 (C51: categorical return distribution on a
    fixed support, target projected onto it under the Cramer distance).
  Dabney, Rowland, Bellemare, Munos (2018). Distributional Reinforcement Learning with
    Quantile Regression. AAAI. https://arxiv.org/abs/1710.10044 (QR-DQN: quantile Huber
    loss at the midpoints tau_i = (2i + 1) / 2N).
  Obando-Ceron, Castro (2021). Revisiting Rainbow. ICML. https://arxiv.org/abs/2011.14826
    (these agents on classic control and MinAtar).

Hyperparameters (the defaults): CleanRL's CartPole-v1 settings, ``cleanrl/dqn_jax.py`` and
``cleanrl/c51_jax.py`` (Huang et al. 2022, https://github.com/vwxyzjn/cleanrl), which
PureJaxRL's ``purejaxrl/dqn.py`` (Lu et al. 2022) copies: Adam, learning rate 2.5e-4,
buffer 10,000, batch 128, gamma 0.99, epsilon 1 -> 0.05 over half the budget, learning
starts at 10,000 steps, one update every 10 environment steps, a hard target update every
500 steps, 500,000 steps, an MLP 120-84 with ReLU; C51 101 atoms on [-100, 100] and Adam
eps 0.01 / batch. QR-DQN has no CleanRL file: it takes the same loop and network, kappa 1
(Dabney et al. 2018) and Adam eps 0.01 / batch like C51. PureJaxRL runs 10 environments in
parallel (``num_envs``), one update per 10 environment steps. The suites change the budget
and the steps tied to it to fit 2 CPU cores (``td_jax.deep.suites`` says how).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import rlax

from td_jax import strict


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN (Mnih et al. 2015), CleanRL ``dqn_jax.py`` CartPole defaults.

    Attributes:
      learning_rate: Adam's step size (the sweep overrides it: ``train(key, lr)``).
      adam_eps: Adam's epsilon.
      buffer_size: transitions held by the circular replay buffer.
      batch_size: transitions per gradient update.
      gamma: discount.
      epsilon_start, epsilon_end: epsilon-greedy's linear schedule ...
      exploration_fraction: ... reaching ``epsilon_end`` after this fraction of the budget.
      learning_starts: environment steps of pure collection before the first update.
      train_frequency: environment steps per gradient update.
      target_update_interval: environment steps between hard target-network copies.
      total_steps: the budget, in environment steps (summed over ``num_envs``).
      num_envs: environments stepped in parallel (gymnax, vmapped).
      hidden: the MLP's hidden widths.
      double_q: the double-Q target (van Hasselt et al. 2016); off in CleanRL's DQN.
    """

    learning_rate: float = 2.5e-4
    adam_eps: float = 1e-8
    buffer_size: int = 10_000
    batch_size: int = 128
    gamma: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.5
    learning_starts: int = 10_000
    train_frequency: int = 10
    target_update_interval: int = 500
    total_steps: int = 500_000
    num_envs: int = 10
    hidden: tuple[int, ...] = (120, 84)
    double_q: bool = False

    name = "dqn"

    def __post_init__(self):
        _positive(self, "learning_rate", "adam_eps")
        _positive_int(self, "buffer_size", "batch_size", "train_frequency",
                      "target_update_interval", "total_steps", "num_envs")  # fmt: skip
        _between(self, "gamma", 0.0, 1.0)
        _between(self, "epsilon_start", 0.0, 1.0)
        _between(self, "epsilon_end", 0.0, 1.0)
        _between(self, "exploration_fraction", 0.0, 1.0, low_open=True)
        strict.check_int(self.name, "learning_starts", self.learning_starts, 0)
        if self.batch_size > self.buffer_size:
            self._fail("batch_size", self.batch_size, f"<= buffer_size ({self.buffer_size})")
        for name in ("train_frequency", "target_update_interval", "total_steps", "buffer_size"):
            if getattr(self, name) % self.num_envs:
                self._fail(name, getattr(self, name), f"a multiple of num_envs ({self.num_envs})")
        if self.learning_starts >= self.total_steps:
            self._fail(
                "learning_starts", self.learning_starts, f"< total_steps ({self.total_steps})"
            )
        hidden = self.hidden
        widths = strict.integers(hidden) if isinstance(hidden, tuple) else None
        if widths is None or not np.all(widths > 0):
            self._fail("hidden", hidden, "a tuple of positive integers")
        strict.check_bool(self.name, "double_q", self.double_q)
        # The network with one input and one action: a lower bound, checked before anything
        # allocates (``check_memory`` refines it once the environment is known).
        strict.check_memory(
            self.name, f"a network with {self._size_text()}",
            memory_estimate(self, obs_size=1, num_actions=1),
        )  # fmt: skip

    def _fail(self, name: str, value: Any, allowed: str) -> None:
        strict.fail(self.name, name, value, allowed)

    def _size_text(self) -> str:
        return f"hidden={self.hidden}, buffer_size={self.buffer_size:,}"

    @property
    def num_outputs(self) -> int:
        """The head's outputs per action (atoms, quantiles; 1 for DQN)."""
        return 1


@dataclasses.dataclass(frozen=True)
class C51Config(DQNConfig):
    """C51 (Bellemare, Dabney, Munos 2017), CleanRL ``c51_jax.py`` CartPole defaults.

    Attributes:
      num_atoms: atoms of the fixed support, evenly spaced on [v_min, v_max].
      v_min, v_max: the support's ends (targets outside are clipped onto them).
    """

    adam_eps: float = 0.01 / 128
    num_atoms: int = 101
    v_min: float = -100.0
    v_max: float = 100.0

    name = "c51"

    def __post_init__(self):
        strict.check_int(self.name, "num_atoms", self.num_atoms, 2)
        strict.check_finite(self.name, "v_min", self.v_min)
        strict.check_finite(self.name, "v_max", self.v_max)
        if not self.v_min < self.v_max:
            self._fail("v_max", self.v_max, f"> v_min ({self.v_min})")
        super().__post_init__()
        if self.double_q:
            self._fail("double_q", self.double_q, "False for c51 (rlax's categorical_q_learning)")

    def _size_text(self) -> str:
        return f"num_atoms={self.num_atoms:,}, {super()._size_text()}"

    @property
    def num_outputs(self) -> int:
        return self.num_atoms


@dataclasses.dataclass(frozen=True)
class QRDQNConfig(DQNConfig):
    """QR-DQN (Dabney, Rowland, Bellemare, Munos 2018) on the CleanRL DQN loop.

    Attributes:
      num_quantiles: N, the quantile midpoints tau_i = (2i + 1) / 2N.
      huber_kappa: kappa of the quantile Huber loss (1 in the paper; 0: plain quantile loss).
    """

    adam_eps: float = 0.01 / 128
    num_quantiles: int = 51
    huber_kappa: float = 1.0

    name = "qrdqn"

    def __post_init__(self):
        strict.check_int(self.name, "num_quantiles", self.num_quantiles, 1)
        if not strict.check_finite(self.name, "huber_kappa", self.huber_kappa) >= 0:
            self._fail("huber_kappa", self.huber_kappa, ">= 0")
        super().__post_init__()
        if self.double_q:
            self._fail("double_q", self.double_q, "False for qrdqn (the target net selects)")

    def _size_text(self) -> str:
        return f"num_quantiles={self.num_quantiles:,}, {super()._size_text()}"

    @property
    def num_outputs(self) -> int:
        return self.num_quantiles


AgentConfig = DQNConfig | C51Config | QRDQNConfig
CONFIGS: dict[str, type[DQNConfig]] = {"dqn": DQNConfig, "c51": C51Config, "qrdqn": QRDQNConfig}


def _positive(config: Any, *names: str) -> None:
    for name in names:
        strict.check_positive(config.name, name, getattr(config, name))


def _positive_int(config: Any, *names: str) -> None:
    for name in names:
        strict.check_int(config.name, name, getattr(config, name), 1)


def _between(config: Any, name: str, low: float, high: float, low_open: bool = False) -> None:
    value = getattr(config, name)
    x = strict.check_finite(config.name, name, value)
    if not ((low < x if low_open else low <= x) and x <= high):
        strict.fail(config.name, name, value, f"in {'(' if low_open else '['}{low:g}, {high:g}]")


def memory_estimate(config: Any, obs_size: int, num_actions: int, learners: int = 1) -> float:
    """Bytes a training run of ``config`` needs (float32), estimated before allocating.

    Per learner: the online and target networks, Adam's two moments and the gradients (5x
    the parameters), the replay buffer (two observations, action, reward and discount per
    slot), the batch's activations, and the distributional losses' pairwise
    [batch, outputs, outputs] temporaries (C51's projection, QR-DQN's quantile pairs).
    """
    widths = [int(obs_size), *(int(h) for h in config.hidden), num_actions * config.num_outputs]
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=False))
    buffer = config.buffer_size * (2 * obs_size + 3)
    activations = 3 * config.batch_size * sum(widths)
    k = config.num_outputs
    pairwise = 3 * config.batch_size * k * k if k > 1 else 0
    return 4.0 * learners * (5 * params + buffer + activations + pairwise)


def check_memory(config: Any, obs_size: int, num_actions: int, learners: int, env: str) -> None:
    """Refuses, in one line, a run of ``learners`` networks on ``env`` that would need more
    than ``strict.memory_ceiling()`` (half of physical memory)."""
    what = f"{learners} learner(s) on {env} with {config._size_text()}"
    strict.check_memory(config.name, what, memory_estimate(config, obs_size, num_actions, learners))


def make_config(agent: str, **overrides: Any) -> AgentConfig:
    """The config of ``agent`` ("dqn", "c51", "qrdqn") with ``overrides``; ValueError names
    an unknown agent or hyperparameter and lists the allowed ones."""
    if agent not in CONFIGS:
        raise ValueError(f"unknown agent {agent!r}; use one of {', '.join(CONFIGS)}")
    cls = CONFIGS[agent]
    fields = [f.name for f in dataclasses.fields(cls)]
    for name in overrides:
        if name not in fields:
            raise ValueError(
                f"unknown {agent} hyperparameter {name!r}; allowed: {', '.join(fields)}"
            )
    return cls(**overrides)


class MLP(nn.Module):
    """ReLU MLP with a linear head of ``num_outputs`` (CleanRL's QNetwork: 120-84)."""

    hidden: Sequence[int]
    num_outputs: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)  # MinAtar observations are images
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_outputs)(x)


class Batch(NamedTuple):
    """A replay batch: obs_tm1 f32[B, ...], a_tm1 int32[B], r_t f32[B] (the reward the
    agent is trained on), discount_t f32[B] (gamma, 0 at episode ends), obs_t f32[B, ...]."""

    obs_tm1: jax.Array
    a_tm1: jax.Array
    r_t: jax.Array
    discount_t: jax.Array
    obs_t: jax.Array


class Agent(NamedTuple):
    """The pure functions of an agent.

    init(key, obs f32[1, ...]) -> params; q_values(params, obs f32[B, ...]) -> f32[B, A];
    loss(params, target_params, batch) -> f32[] (the mean over the batch).
    """

    init: Callable[[jax.Array, jax.Array], Any]
    q_values: Callable[[Any, jax.Array], jax.Array]
    loss: Callable[[Any, Any, Batch], jax.Array]


def dqn_loss_kernel(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_target: jax.Array,
    q_t_online: jax.Array,
    double_q: bool,
) -> jax.Array:
    """Half the squared Q-learning error of one transition (PureJaxRL's DQN loss up to the
    factor 1/2; Mnih et al. 2015), via rlax.q_learning or rlax.double_q_learning."""
    chex.assert_rank([q_tm1, a_tm1, q_t_target], [1, 0, 1])
    if double_q:
        td = rlax.double_q_learning(q_tm1, a_tm1, r_t, discount_t, q_t_target, q_t_online)
    else:
        td = rlax.q_learning(q_tm1, a_tm1, r_t, discount_t, q_t_target)
    return rlax.l2_loss(td)


def c51_loss_kernel(
    atoms: jax.Array,
    logits_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    logits_t: jax.Array,
) -> jax.Array:
    """C51's cross-entropy to the Cramer-projected target of one transition
    (Bellemare et al. 2017, Algorithm 1), via rlax.categorical_q_learning.

    Args: atoms f32[N]; logits_tm1, logits_t (target network) f32[A, N]; a_tm1 int32[].
    """
    chex.assert_rank([atoms, logits_tm1, logits_t], [1, 2, 2])
    return rlax.categorical_q_learning(atoms, logits_tm1, a_tm1, r_t, discount_t, atoms, logits_t)


def qr_loss_kernel(
    quantiles_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    quantiles_t: jax.Array,
    kappa: float,
) -> jax.Array:
    """QR-DQN's quantile Huber loss of one transition (Dabney et al. 2018, Algorithm 1),
    via rlax.quantile_q_learning; the target network both selects and evaluates.

    Args: quantiles_tm1, quantiles_t f32[A, N] (network layout; rlax wants [N, A]).
    """
    chex.assert_rank([quantiles_tm1, quantiles_t], 2)
    n = quantiles_tm1.shape[-1]
    tau = (jnp.arange(n, dtype=jnp.float32) + 0.5) / n
    return rlax.quantile_q_learning(
        quantiles_tm1.T, tau, a_tm1, r_t, discount_t, quantiles_t.T, quantiles_t.T,
        huber_param=kappa,
    )  # fmt: skip


def make_agent(config: AgentConfig, num_actions: int) -> Agent:
    """The network and loss of ``config``'s agent for ``num_actions`` discrete actions."""
    if isinstance(config, C51Config):
        n = config.num_atoms
        atoms = jnp.linspace(config.v_min, config.v_max, n, dtype=jnp.float32)
        net = MLP(config.hidden, num_actions * n)

        def logits(params, obs):
            return net.apply(params, obs).reshape(obs.shape[0], num_actions, n)

        def q_values(params, obs):
            return jnp.sum(jax.nn.softmax(logits(params, obs)) * atoms, axis=-1)

        def loss(params, target_params, b: Batch):
            kernel = jax.vmap(c51_loss_kernel, (None, 0, 0, 0, 0, 0))
            return kernel(atoms, logits(params, b.obs_tm1), b.a_tm1, b.r_t, b.discount_t,
                          logits(target_params, b.obs_t)).mean()  # fmt: skip

    elif isinstance(config, QRDQNConfig):
        n = config.num_quantiles
        net = MLP(config.hidden, num_actions * n)

        def quantiles(params, obs):
            return net.apply(params, obs).reshape(obs.shape[0], num_actions, n)

        def q_values(params, obs):
            return quantiles(params, obs).mean(axis=-1)

        def loss(params, target_params, b: Batch):
            kernel = jax.vmap(qr_loss_kernel, (0, 0, 0, 0, 0, None))
            return kernel(quantiles(params, b.obs_tm1), b.a_tm1, b.r_t, b.discount_t,
                          quantiles(target_params, b.obs_t), config.huber_kappa).mean()  # fmt: skip

    else:
        net = MLP(config.hidden, num_actions)

        def q_values(params, obs):
            return net.apply(params, obs)

        def loss(params, target_params, b: Batch):
            online_t = (
                q_values(params, b.obs_t) if config.double_q else q_values(target_params, b.obs_t)
            )
            kernel = jax.vmap(dqn_loss_kernel, (0, 0, 0, 0, 0, 0, None))
            return kernel(q_values(params, b.obs_tm1), b.a_tm1, b.r_t, b.discount_t,
                          q_values(target_params, b.obs_t), jax.lax.stop_gradient(online_t),
                          config.double_q).mean()  # fmt: skip

    return Agent(init=net.init, q_values=q_values, loss=loss)
