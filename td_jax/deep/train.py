"""The whole training run of a deep agent as one jitted function (PureJaxRL's shape).

``make_train(config, env_name, reward_noise)`` returns a pure ``train(key, learning_rate)``:
one ``lax.scan`` over iterations, each stepping ``num_envs`` gymnax environments
(auto-reset in ``step``) with epsilon-greedy actions, writing the transitions into a
circular replay buffer held as arrays in the carry, and, on the iterations the schedule
says, one gradient update on a uniform replay batch and a hard target-network copy. The
schedule's predicates depend only on the iteration index, which is not batched when seeds
or learning rates are vmapped, so ``lax.cond`` stays a branch instead of becoming a select
that would run the update on every iteration.

Metrics are reduced inside the scan: the true (noise-free) returns of the episodes that end
in each of ``num_bins`` equal windows of environment steps are summed and counted; nothing
is stacked per step. gymnax (1.0) tells termination from truncation at its time limit
(500 steps on CartPole-v1 and Acrobot-v1) and hands back the last observation before the
auto-reset: the buffer stores that observation, and the target bootstraps through a
truncation (discount gamma) and not through a termination (discount 0). PureJaxRL's DQN,
written for gymnax 0.0.x, treated both as terminal.

References:
  Lu, Kuba, Letcher, Metz, Schroeder de Witt, Foerster (2022). Discovered Policy
    Optimisation. NeurIPS (PureJaxRL: https://github.com/luchris429/purejaxrl,
    ``purejaxrl/dqn.py``).
  Lange (2022). gymnax: A JAX-based Reinforcement Learning Environment Library.
    https://github.com/RobertTLange/gymnax
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import optax

from td_jax.deep import agents as agents_lib
from td_jax.deep import noise as noise_lib

# Discrete-action gymnax environments the agents run on (MinAtar needs an accelerator to
# finish in reasonable time, see td_jax.deep.suites).
ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
)
NUM_BINS = 50


class Buffer(NamedTuple):
    """The circular replay buffer: slot ``t % size`` holds environment step ``t``."""

    obs_tm1: jax.Array  # f32[size, *obs]
    a_tm1: jax.Array  # int32[size]
    r_t: jax.Array  # f32[size], the training (possibly noisy) reward
    discount_t: jax.Array  # f32[size], gamma * (1 - terminated)
    obs_t: jax.Array  # f32[size, *obs]


class Carry(NamedTuple):
    """The scan's state (one seed, one learning rate)."""

    params: Any
    target_params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # f32[E, *obs]
    buffer: Buffer
    episode_return: jax.Array  # f32[E], true return of the running episodes
    return_sum: jax.Array  # f32[num_bins]
    episode_count: jax.Array  # int32[num_bins]
    loss_sum: jax.Array  # f32[num_bins]
    key: jax.Array


def check_env(env_name: str) -> None:
    """ValueError naming ``env_name`` and the allowed environments."""
    if env_name not in ENVS:
        raise ValueError(f"unknown gymnax environment {env_name!r}; use one of {', '.join(ENVS)}")


def epsilon(config: agents_lib.AgentConfig, t: jax.Array) -> jax.Array:
    """Linear epsilon from ``epsilon_start`` to ``epsilon_end`` over the first
    ``exploration_fraction`` of the budget (CleanRL's linear_schedule)."""
    duration = config.exploration_fraction * config.total_steps
    frac = jnp.minimum(t / duration, 1.0)
    return config.epsilon_start + frac * (config.epsilon_end - config.epsilon_start)


def _learn(agent, params, target_params, opt_state, batch, tx):
    loss, grads = jax.value_and_grad(agent.loss)(params, target_params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def _networks_step(agent, tx, carry: Carry, buffer, key, sample: tuple, is_learn, is_sync):
    """One iteration's training of the networks: a minibatch of ``sample`` = (batch size,
    filled size) transitions drawn with ``key``, a gradient step where ``is_learn``, the
    target synced where ``is_sync``. Returns (params, target params, optimiser state, loss).
    Only the networks go through the conds: a buffer in their operands is copied."""
    idx = jax.random.randint(key, (sample[0],), 0, sample[1])
    batch = agents_lib.Batch(*(leaf[idx] for leaf in buffer))
    params, opt_state, loss = jax.lax.cond(
        is_learn,
        lambda p, tp, o, b: _learn(agent, p, tp, o, b, tx),
        lambda p, tp, o, b: (p, o, jnp.zeros((), jnp.float32)),
        carry.params, carry.target_params, carry.opt_state, batch,
    )  # fmt: skip
    target_params = jax.lax.cond(
        is_sync, lambda p, tp: p, lambda p, tp: tp, params, carry.target_params
    )
    return params, target_params, opt_state, loss


def _initial_carry(params, opt_state, env_state, obs, buffer_shape: tuple, n_env: int,
                   num_bins: int, key) -> Carry:  # fmt: skip
    """The loop's start: the target network equal to the online one, an empty replay
    buffer of ``buffer_shape`` = (size, observation shape), no episode finished."""
    size, obs_shape = buffer_shape
    zeros_obs = jnp.zeros((size, *obs_shape), jnp.float32)
    buffer = Buffer(zeros_obs, jnp.zeros(size, jnp.int32), jnp.zeros(size, jnp.float32),
                    jnp.zeros(size, jnp.float32), zeros_obs)  # fmt: skip
    return Carry(
        params=params, target_params=params, opt_state=opt_state,
        env_state=env_state, obs=obs.astype(jnp.float32), buffer=buffer,
        episode_return=jnp.zeros(n_env, jnp.float32),
        return_sum=jnp.zeros(num_bins, jnp.float32),
        episode_count=jnp.zeros(num_bins, jnp.int32),
        loss_sum=jnp.zeros(num_bins, jnp.float32), key=key,
    )  # fmt: skip


def _check(config: agents_lib.AgentConfig, env_name: str, num_bins: int) -> None:
    check_env(env_name)
    if not isinstance(num_bins, int) or not 1 <= num_bins <= config.total_steps:
        raise ValueError(f"num_bins must be an integer in [1, total_steps], got {num_bins!r}")


def make_train(
    config: agents_lib.AgentConfig,
    env_name: str,
    reward_noise: noise_lib.RewardNoise | str | dict | None = None,
    num_bins: int = NUM_BINS,
) -> Callable[[jax.Array, jax.Array], dict[str, jax.Array]]:
    """A pure ``train(key, learning_rate) -> metrics`` for ``config`` on ``env_name``.

    Metrics: ``returns`` f32[num_bins], the mean true return of the episodes finished in
    each window of ``total_steps / num_bins`` environment steps (NaN where none finished);
    ``counts`` int32[num_bins], how many finished; ``loss`` f32[num_bins], the summed
    training loss of the updates in each window. Vmap it over keys and learning rates:
    ``jax.jit(jax.vmap(jax.vmap(train, (None, 0)), (0, None)))``.
    """
    _check(config, env_name, num_bins)
    env, env_params = gymnax.make(env_name)
    num_actions = int(env.num_actions)
    obs_shape = tuple(env.observation_space(env_params).shape)
    agents_lib.check_memory(config, math.prod(obs_shape), num_actions, 1, env_name)
    agent = agents_lib.make_agent(config, num_actions)
    noisy = noise_lib.make_noiser(reward_noise)
    n_env, size = config.num_envs, config.buffer_size
    num_iters = config.total_steps // n_env
    update_every = config.train_frequency // n_env
    target_every = config.target_update_interval // n_env
    reset = jax.vmap(env.reset, (0, None))
    step = jax.vmap(env.step, (0, 0, 0, None))

    def body(carry: Carry, i: jax.Array, tx) -> tuple[Carry, None]:
        key, k_explore, k_random, k_step, k_noise, k_learn = jax.random.split(carry.key, 6)
        t = i * n_env  # environment steps taken before this iteration
        greedy = jnp.argmax(agent.q_values(carry.params, carry.obs), axis=-1)
        explore = jax.random.uniform(k_explore, (n_env,)) < epsilon(config, t)
        action = jnp.where(explore, jax.random.randint(k_random, (n_env,), 0, num_actions),
                           greedy)  # fmt: skip
        obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(k_step, n_env), carry.env_state, action, env_params
        )
        reward = reward.astype(jnp.float32)
        done = terminated | truncated
        new = Buffer(
            carry.obs,
            action.astype(jnp.int32),
            noisy(k_noise, reward),
            config.gamma * (1.0 - terminated.astype(jnp.float32)),
            info["final_observation"].astype(jnp.float32),
        )
        # A contiguous block (size % n_env == 0) at an unbatched offset: written in place.
        start = t % size
        buffer = jax.tree.map(
            lambda old, x: jax.lax.dynamic_update_slice_in_dim(old, x, start, 0),
            carry.buffer, new,
        )  # fmt: skip
        ep = carry.episode_return + reward
        window = jnp.minimum((t + n_env - 1) * num_bins // config.total_steps, num_bins - 1)
        carry = carry._replace(
            env_state=env_state, obs=obs.astype(jnp.float32), buffer=buffer,
            episode_return=jnp.where(done, 0.0, ep),
            return_sum=carry.return_sum.at[window].add(jnp.where(done, ep, 0.0).sum()),
            episode_count=carry.episode_count.at[window].add(done.sum(dtype=jnp.int32)),
            key=key,
        )  # fmt: skip
        filled = t + n_env
        is_learn = ((i + 1) % update_every == 0) & (filled > config.learning_starts)
        params, target_params, opt_state, loss = _networks_step(
            agent, tx, carry, buffer, k_learn, (config.batch_size, jnp.minimum(filled, size)),
            is_learn, (i + 1) % target_every == 0,
        )  # fmt: skip
        carry = carry._replace(
            params=params, target_params=target_params, opt_state=opt_state,
            loss_sum=carry.loss_sum.at[window].add(loss),
        )  # fmt: skip
        return carry, None

    def train(key: jax.Array, learning_rate: jax.Array) -> dict[str, jax.Array]:
        tx = optax.adam(learning_rate, eps=config.adam_eps)
        k_net, k_env, k_run = jax.random.split(key, 3)
        params = agent.init(k_net, jnp.zeros((1, *obs_shape), jnp.float32))
        obs, env_state = reset(jax.random.split(k_env, n_env), env_params)
        carry = _initial_carry(params, tx.init(params), env_state, obs, (size, obs_shape),
                               n_env, num_bins, k_run)  # fmt: skip
        carry, _ = jax.lax.scan(lambda c, i: body(c, i, tx), carry, jnp.arange(num_iters))
        count = carry.episode_count
        returns = jnp.where(count > 0, carry.return_sum / jnp.maximum(count, 1), jnp.nan)
        return {"returns": returns, "counts": count, "loss": carry.loss_sum}

    return train


def window_ends(total_steps: int, num_bins: int = NUM_BINS) -> list[int]:
    """The environment step at which each metric window ends."""
    return [(b + 1) * total_steps // num_bins for b in range(num_bins)]


def run_batch(
    config: agents_lib.AgentConfig,
    env_name: str,
    seeds: list[int] | range,
    learning_rates: list[float] | tuple[float, ...],
    reward_noise: noise_lib.RewardNoise | str | dict | None = None,
    num_bins: int = NUM_BINS,
    lrs_per_call: int | None = 1,
) -> dict[str, jax.Array]:
    """Every seed x learning rate; metrics f32[seeds, lrs, num_bins].

    One jitted ``vmap(vmap(train))``, compiled once and called on ``lrs_per_call``
    learning rates at a time (None: all at once). On a CPU the distributional losses'
    O(atoms^2) temporaries of a whole seeds x lrs batch overflow the caches and run several
    times slower than the same work in smaller calls.
    """
    train = make_train(config, env_name, reward_noise, num_bins)
    keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds), jnp.uint32))
    lrs = jnp.asarray(list(learning_rates), jnp.float32)
    batched = jax.jit(jax.vmap(jax.vmap(train, (None, 0)), (0, None)))
    chunk = lrs.shape[0] if lrs_per_call is None else lrs_per_call
    env, env_params = gymnax.make(env_name)
    obs_size = math.prod(env.observation_space(env_params).shape)
    learners = keys.shape[0] * min(chunk, lrs.shape[0])  # vectorised in one call
    agents_lib.check_memory(config, obs_size, int(env.num_actions), learners, env_name)
    parts = [jax.block_until_ready(batched(keys, lrs[i : i + chunk]))
             for i in range(0, lrs.shape[0], chunk)]  # fmt: skip
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *parts)
