"""Test helpers: drive a rule over a given stream of transitions, independent of the runner."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.types import Transition, UpdateRule


def categorical_rewards(key, values, probs, shape) -> jax.Array:
    """Rewards drawn from a finite distribution (the tests' own sampler)."""
    idx = jax.random.choice(key, len(values), shape=shape, p=jnp.asarray(probs))
    return jnp.asarray(values, jnp.float32)[idx]


def bandit_stream(rewards: jax.Array) -> Transition:
    """A single-state, gamma = 0 stream: each reward is one trial."""
    zeros = jnp.zeros(rewards.shape, jnp.int32)
    return Transition(zeros, rewards, jnp.zeros_like(rewards), zeros)


def mrp_stream(key, p_matrix: np.ndarray, reward_fn, gamma: float, num_steps: int, batch: int):
    """Online trajectories of a continuing MRP: f32/i32 [batch, num_steps] fields."""
    num_states = p_matrix.shape[0]
    logits = jnp.log(jnp.asarray(p_matrix, jnp.float32))

    def one(k):
        def body(s, k_t):
            k_s, k_r = jax.random.split(k_t)
            s_next = jax.random.categorical(k_s, logits[s])
            return s_next, Transition(s, reward_fn(k_r, s), jnp.float32(gamma), s_next)

        k0, k1 = jax.random.split(k)
        s0 = jax.random.randint(k0, (), 0, num_states)
        return jax.lax.scan(body, s0, jax.random.split(k1, num_steps))[1]

    return jax.jit(jax.vmap(one))(jax.random.split(key, batch))


def run_stream(
    rule: UpdateRule,
    stream: Transition,
    step_size,
    num_states: int,
    seed: int = 0,
    average_from: float = 0.5,
):
    """Runs one learner per row of ``stream`` ([batch, T] fields).

    Returns the final states and the Polyak average, over the last ``1 - average_from``
    of the steps, of the values and of the raw state leaves (to damp constant-step noise).
    """
    batch, num_steps = stream.r_t.shape
    start = int(num_steps * average_from)

    def one(stream_b, key):
        k_init, k_run = jax.random.split(key)
        state = rule.init(k_init, num_states)
        zero = jax.tree.map(jnp.zeros_like, state)

        def body(carry, xs):
            state, acc = carry
            t, tr, k = xs
            state = rule.update(state, tr, jnp.float32(step_size), k)
            acc = jax.tree.map(lambda a, s: a + jnp.where(t >= start, s, 0.0), acc, state)
            return (state, acc), None

        xs = (jnp.arange(num_steps), stream_b, jax.random.split(k_run, num_steps))
        (state, acc), _ = jax.lax.scan(body, (state, zero), xs)
        avg = jax.tree.map(lambda a: a / (num_steps - start), acc)
        return state, avg

    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    return jax.jit(jax.vmap(one))(stream, keys)
