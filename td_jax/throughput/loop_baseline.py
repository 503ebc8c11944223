"""Baseline (b): one learner at a time, a Python loop over jitted per-learner rlax calls.

How a user without td_jax might write the workload: each learner keeps its own table, and
for every transition and every learner the loop calls a jitted update built from rlax's
functions (``rlax.td_learning``, the gradient of ``rlax.quantile_regression_loss``,
``rlax.categorical_l2_project``, the gradient of ``rlax.expectile_loss``; the dopamine cells
and EDRL's imputation, which rlax lacks, use td_jax's maths in plain jax). Transitions come
from baseline (a)'s numpy sampler, one per stream and step, shared by the stream's step sizes.
The cost is per call, so the rate does not depend on how many learners there are: it is
measured on a few and holds for any number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import rlax

from td_jax.throughput import workload
from td_jax.throughput.numpy_baseline import Sampler, mrp_tables

Update = Callable[..., Any]


def _table_update(stat_fn) -> Update:
    """``(table [S, K], s, r, d, s_next, alpha, j) -> table`` from a per-row update."""

    def update(table, s, r, d, s_next, alpha, j):
        return table.at[s].set(stat_fn(table[s], r, d, table[s_next], alpha, j))

    return update


def make_update(name: str, spec: dict[str, Any]) -> tuple[Update, Callable[[int], Any]]:
    """The jitted per-learner update of rule ``name`` and its ``init(num_states)``."""
    taus = jnp.asarray(spec.get("taus", []), jnp.float32)
    k = int(spec.get("num_stats", 1))

    def zeros(num_states: int):
        return jnp.zeros((num_states, k), jnp.float32)

    if name == "td":

        def stat(v, r, d, v_next, alpha, j):
            return v + alpha * rlax.td_learning(v[0], r, d, v_next[0])

    elif name == "td_lambda":
        lam = float(spec["lam"])

        def update(state, s, r, d, s_next, alpha, j):
            v, trace = state
            trace = trace.at[s].add(1.0)
            v = v + alpha * rlax.td_learning(v[s], r, d, v[s_next]) * trace
            return v, trace * (d * lam)

        init = lambda n: (jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.float32))  # noqa: E731
        return jax.jit(update), init
    elif name == "qtd":

        def stat(theta, r, d, theta_next, alpha, j):
            grad = jax.grad(rlax.quantile_regression_loss)(theta, taus, r + d * theta_next)
            return theta - alpha * grad

    elif name == "ctd":
        support = jnp.asarray(spec["support"], jnp.float32)

        def stat(p, r, d, p_next, alpha, j):
            target = rlax.categorical_l2_project(r + d * support, p_next, support)
            return p + alpha * (target - p)

        def zeros(num_states: int):  # td_jax's init: a point mass at 0, projected
            p0 = rlax.categorical_l2_project(jnp.zeros(1), jnp.ones(1), support)
            return jnp.broadcast_to(p0, (num_states, k))

    elif name in ("edrl", "dopamine_expectile", "dopamine_quantile"):
        stat = _expectile_or_cells(name, spec, taus)
    else:
        raise ValueError(f"no loop baseline for rule {name!r}")
    return jax.jit(_table_update(stat)), zeros


def _expectile_or_cells(name: str, spec: dict[str, Any], taus: jax.Array):
    from td_jax.rules.expectile import impute_samples

    def expectile_step(e, y, alpha):
        def loss(e):
            pred, target = jnp.broadcast_arrays(e[:, None], y[None, :])
            return jnp.sum(jnp.mean(rlax.expectile_loss(pred, target, taus[:, None]), axis=1))

        return e - 0.5 * alpha * jax.grad(loss)(e)  # e_i += alpha mean_j |tau - 1{.}| (y - e)

    if name == "edrl":
        iters = int(spec["iterations"])

        def stat(e, r, d, e_next, alpha, j):
            impute = lambda x: impute_samples(x, taus, None, iters)  # noqa: E731
            samples = jax.lax.cond(d == 0.0, jnp.sort, impute, e_next)
            return expectile_step(e, r + d * samples, alpha)

        return stat
    ap = jnp.asarray(spec["alpha_plus"], jnp.float32)
    am = jnp.asarray(spec["alpha_minus"], jnp.float32)

    def stat(v, r, d, v_next, alpha, j):
        delta = r + d * v_next[j] - v
        rate = jnp.where(delta > 0.0, ap, am)
        f = jnp.sign(delta) if name == "dopamine_quantile" else delta
        return v + alpha * rate * f

    return stat


def run_loop(name: str, streams: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """Times ``streams x len(STEP_SIZES)`` learners for ``steps``, one call per update."""
    from td_jax.rewards import families

    env = workload.make_env()
    tables = mrp_tables(env, np.asarray(families.KERNEL_OF_FAMILY))
    spec = workload.numpy_rule(name)
    update, init = make_update(name, spec)
    alphas = [np.float32(a) for a in workload.STEP_SIZES]
    num_states, cells = len(tables.true_values), int(spec.get("num_stats", 1))
    rng = np.random.default_rng(seed)
    sampler = Sampler(tables, rng)
    states = [[init(num_states) for _ in alphas] for _ in range(streams)]
    j0 = np.zeros(cells, np.int32)
    t0 = time.perf_counter()
    jax.block_until_ready(update(states[0][0], 0, np.float32(0), np.float32(0.9), 1, alphas[0], j0))
    compile_seconds = time.perf_counter() - t0
    s = sampler.reset(streams)
    t0 = time.perf_counter()
    for _ in range(steps):
        r, d, s_t = sampler.step(s)
        j = rng.integers(0, cells, size=(streams, cells), dtype=np.int32)
        for i in range(streams):
            args = (int(s[i]), r[i], d[i], int(s_t[i]))
            states[i] = [
                update(st, *args, a, j[i]) for st, a in zip(states[i], alphas, strict=True)
            ]
        s = s_t
    jax.block_until_ready(states)
    seconds = time.perf_counter() - t0
    updates = streams * len(alphas) * steps
    return {
        "learners": streams * len(alphas),
        "steps": steps,
        "run_seconds": seconds,
        "compile_seconds": compile_seconds,
        "learner_updates": updates,
        "ups": updates / seconds,
        "rlax": getattr(rlax, "__version__", "unknown"),
    }
