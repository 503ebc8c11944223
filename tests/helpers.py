"""Test helpers: drive a rule over a given stream of transitions, independent of the runner."""

from __future__ import annotations

import flax
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


@flax.struct.dataclass
class TinyMRP:
    """A continuing tabular MRP with Gaussian rewards: the runner tests' own task."""

    p_matrix: jax.Array  # f32[S, S]
    reward_mean: jax.Array  # f32[S]
    reward_std: jax.Array  # f32[]
    gamma: float = flax.struct.field(pytree_node=False, default=0.8)
    name: str = flax.struct.field(pytree_node=False, default="tiny")

    @property
    def num_states(self) -> int:
        return self.p_matrix.shape[0]

    def reset(self, key):
        return jax.random.randint(key, (), 0, self.num_states)

    def step(self, key, s):
        k_s, k_r = jax.random.split(key)
        s_next = jax.random.categorical(k_s, jnp.log(self.p_matrix[s]))
        r = self.reward_mean[s] + self.reward_std * jax.random.normal(k_r)
        return Transition(jnp.int32(s), r, jnp.float32(self.gamma), jnp.int32(s_next))

    def true_values(self):
        p = np.asarray(self.p_matrix, np.float64)
        return np.linalg.solve(np.eye(len(p)) - self.gamma * p, np.asarray(self.reward_mean))

    def true_distribution_table(self, num_atoms: int = 256):
        """Monte Carlo quantile atoms (only the runner's metric plumbing is tested on it)."""
        rng = np.random.default_rng(0)
        p = np.asarray(self.p_matrix, np.float64)
        n, horizon = 4_000, int(np.ceil(np.log(1e-4) / np.log(self.gamma)))
        taus = (2 * np.arange(num_atoms) + 1) / (2 * num_atoms)
        locs = []
        for s0 in range(self.num_states):
            s, ret = np.full(n, s0), np.zeros(n)
            for t in range(horizon):
                ret += self.gamma**t * (
                    np.asarray(self.reward_mean)[s] + float(self.reward_std) * rng.normal(size=n)
                )
                s = (rng.random(n)[:, None] > np.cumsum(p[s], axis=1)).sum(axis=1)
            locs.append(np.quantile(ret, taus))
        locs = np.asarray(locs)
        return locs, np.full(locs.shape, 1.0 / num_atoms)


def tiny_mrp(std: float = 1.0, gamma: float = 0.8, name: str = "tiny") -> TinyMRP:
    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]], np.float32)
    return TinyMRP(
        jnp.asarray(p), jnp.asarray([1.0, -0.5, 2.0], jnp.float32), jnp.float32(std), gamma, name
    )
