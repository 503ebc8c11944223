"""One compiled program: a rule on a group of same-shaped tasks, every stream x step size.

The learner axis is (stream, step size), where a stream is one (task, seed) pair. Each
stream draws its transitions once per step from keys that depend only on (task, seed) and
the step index, and every step size of the stream consumes the same transition (common
random numbers; the draw is shared, not repeated, across step sizes). The loop is a
``lax.scan`` over checkpoint segments with a ``fori_loop`` inside each, so metrics are
reduced at checkpoints and no per-step history is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.tabular import TabularState
from td_jax.runner import metrics
from td_jax.types import Array, PRNGKey, Transition, UpdateRule

Schedule = Callable[[Array], Array]


class ProgramConfig(NamedTuple):
    """Static configuration of one program (hashable parts only matter for tracing)."""

    rule: UpdateRule
    num_states: int
    mode: str  # "online" or "synchronous"
    checkpoints: tuple[int, ...]
    schedule: Schedule | None
    divergence_bound: float
    distribution_metric: bool
    keep_distributions: bool = False


class Truth(NamedTuple):
    """Exact ground truth of each task of a group, stacked on a leading task axis."""

    values: Array  # f32[E, S]
    locs: Array  # f32[E, S, N]
    probs: Array  # f32[E, S, N]


class Outputs(NamedTuple):
    """Per learner metrics at each checkpoint, and the final value estimates."""

    value_error: Array  # f32[B, A, C]
    distribution_error: Array  # f32[B, A, C]
    diverged: Array  # bool[B, A, C]
    final_values: Array  # f32[B, A, S]
    final_locs: Array  # f32[B, A, S, K] (empty K = 0 unless keep_distributions)
    final_probs: Array  # f32[B, A, S, K]


def stream_keys(base_key: PRNGKey, step: Array) -> tuple[PRNGKey, PRNGKey]:
    """The environment's and the rule's keys at update ``step`` of one stream."""
    k_env, k_rule = jax.random.split(jax.random.fold_in(base_key, step))
    return k_env, k_rule


def online_step(config: ProgramConfig, env: Any, carry, step: Array, key: PRNGKey, alphas: Array):
    """One transition from the stream's trajectory, applied to every step size's learner."""
    env_state, states = carry
    k_env, k_rule = stream_keys(key, step)
    transition = env.step(k_env, env_state)
    update = jax.vmap(config.rule.update, in_axes=(0, None, 0, None))
    return transition.s_t, update(states, transition, alphas, k_rule)


def synchronous_step(
    config: ProgramConfig, env: Any, carry, step: Array, key: PRNGKey, alphas: Array
):
    """Every state updated at once from a generative model (Jacobi: all from the old table)."""
    env_state, states = carry
    k_env, k_rule = stream_keys(key, step)
    num_states = config.num_states
    all_states = jnp.arange(num_states, dtype=jnp.int32)
    transitions: Transition = jax.vmap(env.step)(jax.random.split(k_env, num_states), all_states)
    rule_keys = jax.random.split(k_rule, num_states)

    def one_learner(state: TabularState, alpha: Array) -> TabularState:
        copies = jax.vmap(config.rule.update, in_axes=(None, 0, None, 0))(
            state, transitions, alpha, rule_keys
        )
        return TabularState(copies.table[all_states, all_states])

    return env_state, jax.vmap(one_learner)(states, alphas)


def learner_metrics(config: ProgramConfig, state, truth_values, truth_locs, truth_probs):
    """Value RMSE, mean W1 and the divergence flag of one learner."""
    values = config.rule.values(state)
    value_error = metrics.value_rmse(values, truth_values)
    if config.distribution_metric:
        locs, probs = config.rule.distribution(state)
        dist_error = metrics.mean_wasserstein1(locs, probs, truth_locs, truth_probs)
    else:
        dist_error = jnp.float32(jnp.nan)
    return value_error, dist_error, metrics.diverged(values, config.divergence_bound)


def make_program(config: ProgramConfig) -> Callable[..., Outputs]:
    """Builds ``program(envs, truth, env_index, keys, step_sizes) -> Outputs`` (not jitted).

    ``env_index`` and ``keys`` come as ``[k, mb]`` micro-batches; outputs are flat ``[k*mb]``.

    Args (of the returned function):
      envs: a task pytree stacked on a leading axis E (tasks of one structure).
      truth: ``Truth`` stacked on the same axis.
      env_index: i32[k, mb], the task of each stream.
      keys: the PRNG key of each stream, [k, mb] typed keys or u32[k, mb, 2] raw.
      step_sizes: f32[A], shared by every stream.
    """
    checkpoints = np.asarray(config.checkpoints, np.int32)
    starts = np.concatenate([[0], checkpoints[:-1]]).astype(np.int32)
    step_fn = online_step if config.mode == "online" else synchronous_step
    schedule = config.schedule

    def one_stream(envs, truth: Truth, env_index: Array, key: PRNGKey, step_sizes: Array):
        env = jax.tree.map(lambda x: x[env_index], envs)
        t_values, t_locs, t_probs = (x[env_index] for x in truth)
        k_init, k_reset, k_run = jax.random.split(key, 3)
        state0 = config.rule.init(k_init, config.num_states)
        states = jax.tree.map(
            lambda x: jnp.broadcast_to(x, (step_sizes.shape[0], *x.shape)), state0
        )

        def body(step, carry):
            alphas = step_sizes if schedule is None else step_sizes * schedule(step)
            return step_fn(config, env, carry, step, k_run, alphas)

        def segment(carry, bounds):
            carry = jax.lax.fori_loop(bounds[0], bounds[1], body, carry)
            per_learner = jax.vmap(learner_metrics, in_axes=(None, 0, None, None, None))
            return carry, per_learner(config, carry[1], t_values, t_locs, t_probs)

        carry = (env.reset(k_reset), states)
        (_, states), (v_err, d_err, div) = jax.lax.scan(
            segment, carry, (jnp.asarray(starts), jnp.asarray(checkpoints))
        )
        # scan stacks checkpoints first: [C, A] -> [A, C]; divergence is sticky.
        div = jax.lax.cummax(div.T.astype(jnp.int32), axis=1).astype(bool)
        if config.keep_distributions:
            locs, probs = jax.vmap(config.rule.distribution)(states)
        else:
            locs = probs = jnp.zeros((step_sizes.shape[0], config.num_states, 0), jnp.float32)
        return Outputs(v_err.T, d_err.T, div, jax.vmap(config.rule.values)(states), locs, probs)

    def micro_batch(envs, truth: Truth, env_index: Array, keys: Array, step_sizes: Array):
        if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
            keys = jax.random.wrap_key_data(keys)
        return jax.vmap(one_stream, in_axes=(None, None, 0, 0, None))(
            envs, truth, env_index, keys, step_sizes
        )

    def program(envs, truth: Truth, env_index: Array, keys: Array, step_sizes: Array) -> Outputs:
        # [k, mb] micro-batches run one after another through the same fixed-shape body:
        # XLA's vectorisation (and so float rounding) depends on the batch shape, so fixing
        # it makes results bit-identical whatever the chunk size, and bounds live memory.
        num_micro, size = env_index.shape[:2]
        out = jax.lax.map(
            lambda xs: micro_batch(envs, truth, xs[0], xs[1], step_sizes), (env_index, keys)
        )
        return jax.tree.map(lambda x: x.reshape(num_micro * size, *x.shape[2:]), out)

    return program
