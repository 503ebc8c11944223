"""``run_control``: one rule on one MDP, every step size x seed as one jitted batch.

Two modes (SCIENCE.md section 8):
- ``synchronous``: a generative model; every (s, a) pair draws its own transition each
  step and all pairs update at once from the old table (Jacobi), the setting of the
  sample-complexity theory of Q-learning (Li et al. 2021, arXiv 2102.06548). The draws
  depend only on the seed and the step, so every rule and step size sees the same samples
  (common random numbers).
- ``online``: each learner acts epsilon-greedily on its own means and learns from the one
  transition it causes; environment and exploration randomness come from per-seed keys.

Metrics at checkpoints, exact: ``q_error = max_(s,a) |Q(s, a) - Q*(s, a)|`` and
``value_gap = max_s V*(s) - V^pi(s)`` for the learner's greedy policy pi, evaluated by a
linear solve inside the program.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from td_jax.control import lift
from td_jax.envs.mdp import MDP
from td_jax.rules.tabular import TabularState
from td_jax.runner.metrics import log_checkpoints
from td_jax.types import Array, Transition, UpdateRule

MODES = ("synchronous", "online")


class ControlResult(NamedTuple):
    """What ``run_control`` returns (numpy arrays; learners indexed [step size, seed]).

    Attributes:
      checkpoints: int64[C] update counts at which metrics were taken.
      step_sizes: f64[A_steps].
      q_error: f32[A_steps, seeds, C] sup-norm error of Q against Q*.
      value_gap: f32[A_steps, seeds, C] max_s V* - V^pi of the greedy policy (>= 0; 0 for
        an optimal policy).
      q_final: f32[A_steps, seeds, S, A] the final mean estimates.
      info: mode, epsilon, compile and run seconds, learner-updates.
    """

    checkpoints: np.ndarray
    step_sizes: np.ndarray
    q_error: np.ndarray
    value_gap: np.ndarray
    q_final: np.ndarray
    info: dict[str, Any]

    def to_dataframe(self) -> pd.DataFrame:
        """A tidy frame: one row per (step_size, seed, step), columns q_error and value_gap."""
        a, seed, c = np.indices(self.q_error.shape).reshape(3, -1)
        return pd.DataFrame(
            {
                "step_size": self.step_sizes[a],
                "seed": seed,
                "step": self.checkpoints[c],
                "q_error": self.q_error.reshape(-1),
                "value_gap": self.value_gap.reshape(-1),
            }
        )


def run_control(
    rule: str | UpdateRule,
    mdp: MDP,
    step_sizes: Sequence[float] | np.ndarray,
    num_seeds: int,
    num_steps: int,
    *,
    mode: str = "synchronous",
    epsilon: float = 0.1,
    checkpoints: Sequence[int] | None = None,
    num_checkpoints: int = 20,
    seed: int = 0,
) -> ControlResult:
    """Runs ``rule`` as a control learner (``td_jax.control.lift``) on ``mdp``.

    Args:
      rule: a registry name (``td_jax.rules.available()``) or a tabular ``UpdateRule``.
      mdp: an ``MDP`` (``td_jax.envs.make_mdp`` / ``tabular_mdp``).
      step_sizes: positive constant step sizes, a traced batch axis.
      num_seeds, num_steps: learners per step size; steps (synchronous: each updates every
        pair once).
      mode: ``synchronous`` or ``online``. epsilon: online exploration rate, in [0, 1].
      checkpoints: update counts in [1, num_steps] (default ``num_checkpoints`` log-spaced).
    """
    rule_fn, alphas, checks = _validate(rule, mdp, step_sizes, num_seeds, num_steps, mode,
                                        epsilon, checkpoints, num_checkpoints)  # fmt: skip
    program = jax.jit(_program(rule_fn, mdp, mode, checks))
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    eps = jnp.float32(epsilon)
    t0 = time.perf_counter()
    compiled = program.lower(keys, alphas, eps).compile()
    t1 = time.perf_counter()
    q_err, gap, q_final = jax.block_until_ready(compiled(keys, alphas, eps))
    t2 = time.perf_counter()
    pairs = mdp.num_states * mdp.num_actions if mode == "synchronous" else 1
    return ControlResult(
        checkpoints=checks,
        step_sizes=np.asarray(alphas, np.float64),
        q_error=np.asarray(q_err),
        value_gap=np.asarray(gap),
        q_final=np.asarray(q_final),
        info={
            "mode": mode,
            "epsilon": float(epsilon),
            "compile_seconds": t1 - t0,
            "run_seconds": t2 - t1,
            "learner_updates": int(len(alphas) * num_seeds * num_steps * pairs),
        },
    )


def _validate(rule, mdp, step_sizes, num_seeds, num_steps, mode, epsilon, checkpoints, count):
    from td_jax import rules

    if not isinstance(mdp, MDP):
        raise ValueError(f"run_control: mdp must be a td_jax.envs.MDP, got {type(mdp).__name__}")
    if mode not in MODES:
        raise ValueError(f"run_control: unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if not (isinstance(epsilon, int | float) and 0.0 <= epsilon <= 1.0):
        raise ValueError(f"run_control: epsilon must be in [0, 1], got {epsilon!r}")
    for name, value in (("num_seeds", num_seeds), ("num_steps", num_steps)):
        bad = isinstance(value, bool) or not isinstance(value, int | np.integer)
        if bad or not 1 <= value < 2**31:
            raise ValueError(f"run_control: {name} must be an integer in [1, 2^31), got {value!r}")
    alphas = np.asarray(step_sizes, np.float64).reshape(-1)
    if alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 0)):
        raise ValueError(f"run_control: step sizes must be positive and finite, got {alphas}")
    if checkpoints is None:
        checks = log_checkpoints(int(num_steps), count)
    else:
        checks = np.asarray(checkpoints)
        if checks.ndim != 1 or checks.size == 0 or not np.issubdtype(checks.dtype, np.integer):
            raise ValueError(f"run_control: checkpoints must be integers, got {checkpoints!r}")
        if np.any(np.diff(checks) <= 0) or checks[0] < 1 or checks[-1] != num_steps:
            raise ValueError(
                f"run_control: checkpoints must increase within [1, {num_steps}] and end at "
                f"num_steps = {num_steps}, got {checks}"
            )
    rule_fn = rules.make(rule) if isinstance(rule, str) else rule
    if not isinstance(rule_fn, UpdateRule):
        raise ValueError(f"run_control: rule must be a name or an UpdateRule, got {rule!r}")
    return rule_fn, jnp.asarray(alphas, jnp.float32), checks.astype(np.int64)


def _program(rule: UpdateRule, mdp: MDP, mode: str, checkpoints: np.ndarray):
    S, A = mdp.num_states, mdp.num_actions
    gamma = jnp.float32(np.asarray(mdp.gamma))
    q_star64 = mdp.optimal_q()
    q_star = jnp.asarray(q_star64, jnp.float32)
    # V* - V^pi = (I - gamma P_pi)^-1 (V* - Q*(s, pi(s))): solved directly, so the gap is
    # >= 0 by construction and exactly 0 for an optimal policy (no float32 cancellation).
    advantage = jnp.asarray(q_star64.max(axis=1, keepdims=True) - q_star64, jnp.float32)
    p_cont = jnp.asarray(mdp.continuation_tensor(), jnp.float32)
    bounds = np.stack([np.concatenate([[0], checkpoints[:-1]]), checkpoints], axis=1)
    pair_s = jnp.repeat(jnp.arange(S, dtype=jnp.int32), A)
    pair_a = jnp.tile(jnp.arange(A, dtype=jnp.int32), S)

    def metrics(state):
        q = lift.q_values(rule, state, A)
        pi = lift.greedy_actions(q)
        rows = jnp.arange(S)
        gap = jnp.linalg.solve(jnp.eye(S) - gamma * p_cont[rows, pi], advantage[rows, pi])
        return jnp.max(jnp.abs(q - q_star)), jnp.max(gap)

    def synchronous(carry, step, key, alpha, epsilon):
        del epsilon
        state, s = carry
        if not isinstance(state, TabularState):
            raise ValueError(
                "run_control: synchronous mode needs a tabular rule (a TabularState), got a "
                f"rule whose state is {type(state).__name__}; use mode='online' for it"
            )
        k_env, k_rule = jax.random.split(jax.random.fold_in(key, step))
        tr = jax.vmap(mdp.step)(jax.random.split(k_env, S * A), pair_s, pair_a)
        q = lift.q_values(rule, state, A)
        lifted = jax.vmap(lift.lifted_transition, in_axes=(None, 0, 0, 0, 0, 0))(
            q, tr.s_tm1, pair_a, tr.r_t, tr.discount_t, tr.s_t
        )
        copies = jax.vmap(rule.update, in_axes=(None, 0, None, 0))(
            state, lifted, alpha, jax.random.split(k_rule, S * A)
        )
        rows = jnp.arange(S * A)
        return TabularState(copies.table[rows, rows]), s

    def online(carry, step, key, alpha, epsilon):
        state, s = carry
        k_env, k_act, k_rule = jax.random.split(jax.random.fold_in(key, step), 3)
        q = lift.q_values(rule, state, A)  # read once: behaviour and target use the same
        a = lift.epsilon_greedy(k_act, q[s], epsilon)
        tr: Transition = mdp.step(k_env, s, a)
        lifted = lift.lifted_transition(q, tr.s_tm1, a, tr.r_t, tr.discount_t, tr.s_t)
        return rule.update(state, lifted, alpha, k_rule), tr.s_t

    step_fn = synchronous if mode == "synchronous" else online

    def learner(key: Array, alpha: Array, epsilon: Array):
        k_init, k_start, k_run = jax.random.split(key, 3)
        carry = (lift.init(rule, k_init, S, A), mdp.reset(k_start))

        def segment(carry, bound):
            def body(step, c):
                return step_fn(c, step, k_run, alpha, epsilon)

            carry = jax.lax.fori_loop(bound[0], bound[1], body, carry)
            q_err, gap = metrics(carry[0])
            return carry, (q_err, gap)

        carry, (q_err, gap) = jax.lax.scan(segment, carry, jnp.asarray(bounds, jnp.int32))
        return q_err, gap, lift.q_values(rule, carry[0], A)

    per_seed = jax.vmap(learner, in_axes=(None, 0, None))  # step sizes share a seed's key

    def program(keys, alphas, epsilon):
        q_err, gap, q = jax.vmap(per_seed, in_axes=(0, None, None))(keys, alphas, epsilon)
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  [seeds, A] -> [A, seeds]
        return swap(q_err), swap(gap), swap(q)

    return program
