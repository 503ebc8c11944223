"""Property tests (hypothesis): the rules' invariants on random transitions.

Each property is checked on random tables, rewards, discounts and step sizes: CTD stays on
the simplex; the Cramer projection keeps the mean inside its support; TD(lambda = 0) is
TD(0); one-cell / one-quantile rules reduce to their classical counterparts; kernels are pure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import td_jax
from td_jax.rules.categorical import cramer_project
from td_jax.rules.expectile import expectile_residuals, impute_samples
from td_jax.types import Transition

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
NUM_STATES = 4
floats = st.floats(-5.0, 5.0, allow_nan=False, width=32)
steps = st.floats(0.0009765625, 1.0, allow_nan=False, width=32)  # 2^-10 .. 1
discounts = st.sampled_from([0.0, 0.5, 0.9, 1.0])


def _transitions(data: st.DataObject, n: int) -> list[Transition]:
    out = []
    for _ in range(n):
        out.append(
            Transition(
                s_tm1=jnp.int32(data.draw(st.integers(0, NUM_STATES - 1))),
                r_t=jnp.float32(data.draw(floats)),
                discount_t=jnp.float32(data.draw(discounts)),
                s_t=jnp.int32(data.draw(st.integers(0, NUM_STATES - 1))),
            )
        )
    return out


def _apply(rule: td_jax.UpdateRule, transitions, step: float, seed: int = 0):
    update = jax.jit(rule.update)
    state = rule.init(jax.random.key(seed), NUM_STATES)
    for i, t in enumerate(transitions):
        state = update(state, t, jnp.float32(step), jax.random.fold_in(jax.random.key(seed), i))
    return state


def _values(rule: td_jax.UpdateRule, transitions, step: float) -> np.ndarray:
    return np.asarray(rule.values(_apply(rule, transitions, step)))


@SETTINGS
@given(data=st.data(), step=steps)
def test_ctd_probabilities_stay_on_the_simplex(data, step):
    rule = td_jax.rules.make("ctd", num_atoms=11, v_min=-20.0, v_max=20.0)
    state = _apply(rule, _transitions(data, 12), step)
    probs = np.asarray(rule.distribution(state)[1])
    assert np.all(probs >= -1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@SETTINGS
@given(
    locs=st.lists(st.floats(-3.0, 3.0, allow_nan=False, width=32), min_size=1, max_size=9),
    weights=st.lists(st.floats(0.0078125, 1.0, width=32), min_size=9, max_size=9),
)
def test_cramer_projection_keeps_the_mean_inside_the_support(locs, weights):
    support = jnp.linspace(-3.0, 3.0, 13)
    p = np.asarray(weights[: len(locs)], np.float64)
    p /= p.sum()
    projected = cramer_project(jnp.asarray(locs), jnp.asarray(p, jnp.float32), support)
    assert np.all(np.asarray(projected) >= 0.0)
    np.testing.assert_allclose(float(projected.sum()), 1.0, atol=1e-5)
    np.testing.assert_allclose(float(projected @ support), float(np.dot(p, locs)), atol=1e-5)


@SETTINGS
@given(data=st.data(), step=steps)
def test_td_lambda_zero_is_td(data, step):
    transitions = _transitions(data, 10)
    np.testing.assert_allclose(
        _values(td_jax.rules.make("td_lambda", lambda_=0.0), transitions, step),
        _values(td_jax.rules.make("td"), transitions, step),
        rtol=1e-6,
        atol=1e-6,
    )


@SETTINGS
@given(data=st.data(), step=steps, seed=st.integers(0, 2**31 - 1))
def test_one_cell_rules_reduce_to_their_classical_counterparts(data, step, seed):
    """One cell at tau = 1/2: the expectile cell and EDRL move like TD at half the step (the
    0.5-expectile update is alpha * delta / 2), the quantile cell like QTD with m = 1. The
    two quantile forms differ only at an exact tie (delta = 0: the cell's sign(0) = 0 does
    not move, QTD's indicator moves up by alpha / 2), so rewards here are continuous draws
    (a tie has probability 0), not hypothesis's simple numbers."""
    rewards = np.random.default_rng(seed).normal(size=10).astype(np.float32)
    transitions = [t._replace(r_t=jnp.float32(r)) for t, r in
                   zip(_transitions(data, 10), rewards, strict=True)]  # fmt: skip
    half = _values(td_jax.rules.make("td"), transitions, step / 2)
    for name, hp in (("dopamine_expectile", {"num_cells": 1}), ("edrl", {"num_expectiles": 1})):
        got = _values(td_jax.rules.make(name, **hp), transitions, step)
        np.testing.assert_allclose(got, half, rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(
        _values(td_jax.rules.make("dopamine_quantile", num_cells=1), transitions, step),
        _values(td_jax.rules.make("qtd", num_quantiles=1), transitions, step),
        rtol=1e-6,
        atol=1e-6,
    )


@SETTINGS
@given(data=st.data(), step=steps, name=st.sampled_from(td_jax.rules.available()))
def test_kernels_are_pure(data, step, name):
    """Same state, transition, step and key: the same new state, call after call."""
    rule = td_jax.rules.make(name)
    transitions = _transitions(data, 3)
    state = _apply(rule, transitions[:2], step, seed=3)
    key = jax.random.key(7)
    update = jax.jit(rule.update)
    first = update(state, transitions[2], jnp.float32(step), key)
    again = update(state, transitions[2], jnp.float32(step), key)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


_IMPUTE = jax.jit(impute_samples, static_argnums=(2, 3))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    values=st.lists(st.floats(-5.0, 5.0, allow_nan=False, width=32), min_size=2, max_size=12),
    m=st.sampled_from([3, 11]),
)
def test_imputation_residual_never_increases_over_iterations(values, m):
    """On the expectiles of any sample set, more solver iterations never leave a larger
    residual (sum of squared expectile residuals) than fewer."""
    taus = jnp.asarray(td_jax.rules.midpoint_taus(m), jnp.float32)
    x = np.asarray(values, np.float64)
    e = np.full(m, x.mean())
    for _ in range(200):  # exact sample expectiles by fixed-point iteration
        w = np.abs(np.asarray(taus)[:, None] - (x[None, :] < e[:, None]))
        e = (w * x[None, :]).sum(1) / w.sum(1)
    e = jnp.asarray(e, jnp.float32)
    objective = [
        float(jnp.sum(expectile_residuals(_IMPUTE(e, taus, None, k), e, taus) ** 2))
        for k in (1, 2, 5)  # unrolled (<= 4) and scanned solver loops
    ]
    for before, after in zip(objective, objective[1:], strict=False):
        assert after <= before * (1 + 1e-4) + 1e-10, objective
