"""One compiled program: a rule on a group of same-shaped tasks, every stream x step size.

The learner axis is (stream, step size), where a stream is one (task, seed) pair. Each
stream draws its transitions once per step from keys that depend only on (task, seed) and
the step index, and every step size of the stream consumes the same transition (common
random numbers; the draw is shared, not repeated, across step sizes). The loop is a
``lax.scan`` over checkpoint segments with a ``fori_loop`` inside each, so metrics are
reduced at checkpoints and no per-step history is stored.

Randomness: a stream's draws at update ``t`` are the words at counters ``(t, i)`` of its
key (``keys.counter_bits``): the environment's first (``env.step_from_bits`` where the task
has it, otherwise a key made of two words for ``env.step``), then the rule's key. Each is
one hash per word, straight from the stream's key.

Performance (td_jax/throughput/benchmark.py measures it): each stream's sample is drawn one step
ahead and carried, so that XLA computes it once per stream instead of fusing it into, and
repeating it for, every learner; the rule key is derived where the update reads it, not
carried, so a deterministic rule never hashes it; keys use ``keys.FUSED_THREEFRY`` (JAX's
threefry bits without its CPU loop); and task leaves shared by every task of the group are
constants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from td_jax.rules.tabular import TabularState
from td_jax.runner import keys as key_lib
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
    distribution_metric: bool | str  # True / "all", "final" or False
    keep_distributions: bool = False
    value_metrics: tuple[str, ...] = tuple(metrics.VALUE_METRICS)  # names, computed in order
    unroll: int = 1  # updates per loop iteration (``unrolled_loop``)


class Truth(NamedTuple):
    """Exact ground truth of each task of a group, stacked on a leading task axis."""

    values: Array  # f32[E, S]
    locs: Array  # f32[E, S, N]
    probs: Array  # f32[E, S, N]
    visits: Array  # f32[E, S] state weights of the stream (metrics.StateTruth.visits)


class Outputs(NamedTuple):
    """Per learner metrics at each checkpoint, and the final value estimates."""

    value_error: Array  # f32[B, A, C]
    distribution_error: Array  # f32[B, A, C]
    diverged: Array  # bool[B, A, C]
    final_values: Array  # f32[B, A, S]
    final_locs: Array  # f32[B, A, S, K] (empty K = 0 unless keep_distributions)
    final_probs: Array  # f32[B, A, S, K]
    value_metrics: Array  # f32[B, A, C, M], config.value_metrics in order


KEY_WORDS = 2  # words of a key (threefry keys are u32[2])


def env_words(env: Any) -> int:
    """Random words one transition of ``env`` takes: its ``step_words``, or a key's."""
    return int(env.step_words) if hasattr(env, "step_from_bits") else KEY_WORDS


def env_step(env: Any, words: Array, s: Array) -> Transition:
    """A transition from ``s`` given its ``env_words(env)`` random words."""
    if hasattr(env, "step_from_bits"):
        return env.step_from_bits(words, s)
    return env.step(key_lib.wrap(words), s)


def rule_keys(config: ProgramConfig, env: Any, key: PRNGKey, step: Array) -> PRNGKey:
    """The rule's key at update ``step`` (one per state in synchronous mode): the counters
    after the environment's."""
    copies = config.num_states if config.mode == "synchronous" else 1
    words = key_lib.counter_bits(key, step, copies * env_words(env), copies * KEY_WORDS)
    words = words.reshape(copies, KEY_WORDS) if config.mode == "synchronous" else words
    return key_lib.wrap(words)


def online_draw(config: ProgramConfig, env: Any, key: PRNGKey, step: Array, env_state: Array):
    """Update ``step``'s sample of one stream: a transition from its trajectory."""
    del config
    transition = env_step(env, key_lib.counter_bits(key, step, 0, env_words(env)), env_state)
    return transition, transition.s_t


def online_apply(config: ProgramConfig, sample: Transition, states, alphas: Array, key: PRNGKey):
    """Applies one stream's transition to every step size's learner (``key``: the rule's)."""
    update = jax.vmap(config.rule.update, in_axes=(0, None, 0, None))
    return update(states, sample, alphas, key)


def synchronous_draw(config: ProgramConfig, env: Any, key: PRNGKey, step: Array, env_state: Array):
    """A transition from every state of a generative model."""
    n = env_words(env)
    words = key_lib.counter_bits(key, step, 0, config.num_states * n)
    all_states = jnp.arange(config.num_states, dtype=jnp.int32)
    transitions = jax.vmap(lambda w, s: env_step(env, w, s))(
        words.reshape(config.num_states, n), all_states
    )
    return transitions, env_state


def synchronous_apply(
    config: ProgramConfig, sample: Transition, states, alphas: Array, keys: PRNGKey
):
    """Every state updated at once (Jacobi: all from the old table), one rule key each."""
    transitions = sample
    all_states = jnp.arange(config.num_states, dtype=jnp.int32)

    def one_learner(state: TabularState, alpha: Array) -> TabularState:
        copies = jax.vmap(config.rule.update, in_axes=(None, 0, None, 0))(
            state, transitions, alpha, keys
        )
        return TabularState(copies.table[all_states, all_states])

    return jax.vmap(one_learner)(states, alphas)


MODE_STEPS = {  # per mode of td_jax.types.MODES: (draw, apply)
    "online": (online_draw, online_apply),
    "synchronous": (synchronous_draw, synchronous_apply),
}


def learner_metrics(
    config: ProgramConfig, state, truth_values, truth_locs, truth_probs, visits, is_last=True
):
    """Value RMSE, mean W1, the divergence flag and the value metrics of one learner.

    With ``distribution_metric="final"`` the W1 is computed at the last checkpoint only
    (a ``lax.cond`` on the unbatched checkpoint index, so other checkpoints skip it).
    """
    values = config.rule.values(state)
    value_error = metrics.value_rmse(values, truth_values)

    def w1():
        locs, probs = config.rule.distribution(state)
        return metrics.mean_wasserstein1(locs, probs, truth_locs, truth_probs).astype(jnp.float32)

    if config.distribution_metric == "final":
        dist_error = jax.lax.cond(is_last, w1, lambda: jnp.float32(jnp.nan))
    elif config.distribution_metric:
        dist_error = w1()
    else:
        dist_error = jnp.float32(jnp.nan)
    state_truth = metrics.StateTruth(truth_values, visits)
    extra = [metrics.VALUE_METRICS[m](values, state_truth) for m in config.value_metrics]
    extra = jnp.stack(extra) if extra else jnp.zeros((0,), jnp.float32)
    diverged = metrics.diverged(values, config.divergence_bound)
    return value_error, dist_error, diverged, extra.astype(jnp.float32)


def shared_leaves(envs: Any) -> tuple[Array | None, ...]:
    """For each leaf of stacked tasks: its value if every task has the same, else None.

    The program bakes shared values in as constants, so that what the task's code decides
    statically from them (e.g. the reward sampler of a family, instead of a switch over all
    of them) is decided at trace time, and table lookups read constants.
    """
    out = []
    for leaf in jax.tree.leaves(envs):
        x = np.asarray(leaf)
        out.append(jnp.asarray(x[0]) if x.shape[0] >= 1 and (x == x[:1]).all() else None)
    return tuple(out)


def unrolled_loop(lower: Array, upper: Array, body, carry, unroll: int):
    """``fori_loop(lower, upper, body, carry)`` with ``unroll`` updates per iteration.

    The bounds are traced (checkpoint segments), where ``fori_loop``'s own ``unroll`` does
    not apply: the loop runs ``(upper - lower) // unroll`` iterations of ``unroll`` calls,
    then the remainder one at a time. The same calls in the same order, so results equal
    the plain loop's up to float rounding (XLA may fuse the unrolled body's multiply-adds
    differently); fewer iterations cut the per-iteration launch cost on accelerators.
    """
    if unroll <= 1:
        return jax.lax.fori_loop(lower, upper, body, carry)

    def block(i, c):
        start = lower + i * unroll
        for j in range(unroll):
            c = body(start + j, c)
        return c

    full = (upper - lower) // unroll
    carry = jax.lax.fori_loop(0, full, block, carry)
    return jax.lax.fori_loop(lower + full * unroll, upper, body, carry)


def _stream_task(envs, truth: Truth, env_index: Array, shared) -> tuple[Any, tuple]:
    """A stream's task and truth: row ``env_index`` of the stacked ones, with the leaves
    every task shares (``shared``) as the program's constants."""
    leaves, treedef = jax.tree.flatten(envs)
    consts = shared or (None,) * len(leaves)
    env = treedef.unflatten(
        [x[env_index] if c is None else c for x, c in zip(leaves, consts, strict=True)]
    )
    return env, tuple(x[env_index] for x in truth)


def make_program(
    config: ProgramConfig, shared: tuple[Array | None, ...] | None = None
) -> Callable[..., Outputs]:
    """Builds ``program(envs, truth, env_index, keys, step_sizes, inv_decay, step_factor)
    -> Outputs``.

    Not jitted. ``inv_decay`` f32[A] is 1/d of each step size's harmonic decay (0: constant);
    ``step_factor`` f32[] multiplies every step the rule is given (1: as they are; a
    rescaled rule's factor, ``UpdateRule.rescale_of``, runs it on its base rule's program).

    ``env_index`` and ``keys`` come as ``[k, mb]`` micro-batches; outputs are flat ``[k*mb]``.
    ``shared`` (from ``shared_leaves(envs)``) marks the task leaves every task shares; the
    program uses those values as constants instead of the ``envs`` argument's.

    Args (of the returned function):
      envs: a task pytree stacked on a leading axis E (tasks of one structure).
      truth: ``Truth`` stacked on the same axis.
      env_index: i32[k, mb], the task of each stream.
      keys: the PRNG key of each stream, [k, mb] typed keys or u32[k, mb, 2] raw.
      step_sizes: f32[A], shared by every stream, or f32[E, A]: row ``env_index``.
    """
    checkpoints = np.asarray(config.checkpoints, np.int32)
    starts = np.concatenate([[0], checkpoints[:-1]]).astype(np.int32)
    draw, apply = MODE_STEPS[config.mode]
    schedule = config.schedule

    def one_stream(envs, truth: Truth, env_index: Array, key: PRNGKey, step_sizes: Array,
                   inv_decay: Array, step_factor: Array):  # fmt: skip
        env, (t_values, t_locs, t_probs, t_visits) = _stream_task(envs, truth, env_index, shared)
        if step_sizes.ndim == 2:  # each env its own step sizes (static: the input's rank)
            step_sizes, inv_decay = step_sizes[env_index], inv_decay[env_index]
        k_init, k_reset, k_run = jax.random.split(key, 3)
        state0 = config.rule.init(k_init, config.num_states)
        states = jax.tree.map(
            lambda x: jnp.broadcast_to(x, (step_sizes.shape[0], *x.shape)), state0
        )

        # The carry holds the stream's sample for the coming update, drawn one step ahead:
        # a loop-carried buffer is materialised, so XLA cannot fuse (and so recompute) the
        # per-stream sampling into every learner's update. The draws are the same ones.
        def body(step, carry):
            (sample, env_state), states = carry
            # Harmonic decay alpha / (1 + alpha t / d), traced per learner (1/d = 0: constant,
            # and then exactly alpha, so constant-step results do not change).
            alphas = step_sizes / (1.0 + step_sizes * step.astype(jnp.float32) * inv_decay)
            alphas = alphas if schedule is None else alphas * schedule(step)
            alphas = alphas * step_factor  # exact at 1; a rescaled rule's own product
            # The sample is update `step`'s (drawn one step ahead); its rule key is
            # derived here, not carried, so a rule that ignores it never computes it.
            states = apply(config, sample, states, alphas, rule_keys(config, env, k_run, step))
            return draw(config, env, k_run, step + 1, env_state), states

        def segment(carry, bounds):
            carry = unrolled_loop(bounds[0], bounds[1], body, carry, config.unroll)
            per_learner = jax.vmap(learner_metrics, in_axes=(None, 0, None, None, None, None, None))
            is_last = bounds[1] == checkpoints[-1]
            return carry, per_learner(
                config, carry[1], t_values, t_locs, t_probs, t_visits, is_last
            )

        carry = (draw(config, env, k_run, jnp.int32(0), env.reset(k_reset)), states)
        (_, states), (v_err, d_err, div, extra) = jax.lax.scan(
            segment, carry, (jnp.asarray(starts), jnp.asarray(checkpoints))
        )
        # scan stacks checkpoints first: [C, A] -> [A, C]; divergence is sticky.
        div = jax.lax.cummax(div.T.astype(jnp.int32), axis=1).astype(bool)
        if config.keep_distributions:
            locs, probs = jax.vmap(config.rule.distribution)(states)
        else:
            locs = probs = jnp.zeros((step_sizes.shape[0], config.num_states, 0), jnp.float32)
        final = jax.vmap(config.rule.values)(states)
        return Outputs(v_err.T, d_err.T, div, final, locs, probs, extra.swapaxes(0, 1))

    def micro_batch(envs, truth, env_index: Array, keys: Array, step_sizes, inv_decay, factor):
        if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
            keys = jax.random.key_data(keys)
        keys = key_lib.wrap(keys)  # jax's threefry bits, compiled without loops
        return jax.vmap(one_stream, in_axes=(None, None, 0, 0, None, None, None))(
            envs, truth, env_index, keys, step_sizes, inv_decay, factor
        )

    def program(envs, truth: Truth, env_index: Array, keys: Array, step_sizes: Array,
                inv_decay: Array, step_factor: Array) -> Outputs:  # fmt: skip
        # [k, mb] micro-batches run one after another through the same fixed-shape body:
        # XLA's vectorisation (and so float rounding) depends on the batch shape, so fixing
        # it makes results bit-identical whatever the chunk size, and bounds live memory.
        num_micro, size = env_index.shape[:2]
        out = jax.lax.map(
            lambda xs: micro_batch(envs, truth, xs[0], xs[1], step_sizes, inv_decay, step_factor),
            (env_index, keys),
        )
        return jax.tree.map(lambda x: x.reshape(num_micro * size, *x.shape[2:]), out)

    return program
