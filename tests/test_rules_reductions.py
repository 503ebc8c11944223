"""Reductions between rules, the CTD == TD null control, and agreement with rlax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from td_jax import rules
from tests.helpers import bandit_stream, categorical_rewards, mrp_stream

P = np.array([[0.2, 0.8, 0.0], [0.0, 0.3, 0.7], [0.6, 0.0, 0.4]])


def _trajectory(rule, stream, step_size, num_states):
    """Every intermediate state of one learner on a [T] stream."""

    def body(state, xs):
        tr, k = xs
        state = rule.update(state, tr, jnp.float32(step_size), k)
        return state, state

    keys = jax.random.split(jax.random.PRNGKey(1), stream.r_t.shape[0])
    init = rule.init(jax.random.PRNGKey(0), num_states)
    return jax.jit(lambda s: jax.lax.scan(body, init, (s, keys))[1])(stream)


@pytest.fixture(scope="module")
def stream():
    def reward_fn(key, s):
        return jnp.asarray([0.0, 1.0, -2.0], jnp.float32)[s] + jax.random.uniform(key)

    batch = mrp_stream(jax.random.PRNGKey(0), P, reward_fn, 0.9, 2_000, 1)
    return jax.tree.map(lambda x: x[0], batch)


def test_td_lambda_zero_is_td_step_by_step(stream):
    td = _trajectory(rules.make("td"), stream, 0.1, 3)
    tdl = _trajectory(rules.make("td_lambda", lambda_=0.0), stream, 0.1, 3)
    # Equal up to float32 rounding: XLA may contract a*delta*1 + v into a fused multiply-add.
    np.testing.assert_allclose(
        np.asarray(tdl.v), np.asarray(td.table[..., 0]), rtol=1e-6, atol=1e-6
    )


def test_ctd_mean_follows_td_exactly(stream):
    """Lyle et al. 2019: with every return inside the support, CTD's mean is TD's."""
    # Returns lie in [-2/(1-0.9), 2/(1-0.9)] = [-20, 20]; the support [-25, 25] covers them.
    ctd = rules.make("ctd", num_atoms=101, v_min=-25.0, v_max=25.0)
    td_values = np.asarray(_trajectory(rules.make("td"), stream, 0.1, 3).table[..., 0])
    ctd_states = _trajectory(ctd, stream, 0.1, 3)
    ctd_values = np.asarray(jax.vmap(ctd.values)(ctd_states))
    assert np.abs(td_values).max() > 1.0  # the learners moved
    np.testing.assert_allclose(ctd_values, td_values, atol=2e-4, rtol=0)


def test_ctd_parts_from_td_when_support_clips(stream):
    ctd = rules.make("ctd", num_atoms=11, v_min=-1.0, v_max=1.0)
    td_values = np.asarray(_trajectory(rules.make("td"), stream, 0.1, 3).table[..., 0])
    ctd_values = np.asarray(jax.vmap(ctd.values)(_trajectory(ctd, stream, 0.1, 3)))
    assert np.abs(ctd_values - td_values).max() > 0.5


def test_single_median_cell_tracks_median():
    # Reward law with median 1.0 (F(0) = 0.3, F(1) = 0.6): one cell at tau = 0.5.
    rewards = categorical_rewards(
        jax.random.PRNGKey(2), [0.0, 1.0, 4.0], [0.3, 0.3, 0.4], (1, 8_000)
    )
    stream = jax.tree.map(lambda x: x[0], bandit_stream(rewards))
    states = _trajectory(rules.make("dopamine_quantile", taus=[0.5]), stream, 0.01, 1)
    cell = np.asarray(states.table[:, 0, 0])
    assert abs(cell[4_000:].mean() - 1.0) < 0.05


def test_single_median_cell_is_qtd_with_one_quantile():
    # Continuous rewards (no ties, where sign(0) = 0 and QTD's strict < differ): one cell at
    # tau = 0.5 with rates (1/2, 1/2) is QTD with m = 1 step by step.
    rewards = jax.random.normal(jax.random.PRNGKey(4), (2_000,)) + 1.0
    stream = bandit_stream(rewards)
    cell = _trajectory(rules.make("dopamine_quantile", taus=[0.5]), stream, 0.01, 1)
    qtd = _trajectory(rules.make("qtd", num_quantiles=1), stream, 0.01, 1)
    np.testing.assert_allclose(cell.table[:, 0, 0], qtd.table[:, 0, 0], atol=1e-5)


def _random_inputs(seed: int, k: int = 16):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=k).astype(np.float32),
        np.float32(rng.normal()),
        np.float32(rng.uniform(0.0, 1.0)),
        rng.normal(size=k).astype(np.float32),
    )


@pytest.mark.parametrize("seed", range(5))
def test_td_error_matches_rlax(seed):
    v, r, d, v_next = _random_inputs(seed)
    new = rules.td_kernel(v[:1], r, d, v_next[:1], jnp.float32(1.0), None)
    np.testing.assert_allclose(new - v[:1], rlax.td_learning(v[0], r, d, v_next[0]), rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_cramer_projection_matches_rlax(seed):
    rng = np.random.default_rng(seed)
    support = jnp.linspace(-3.0, 4.0, 15)
    locs = jnp.asarray(np.sort(rng.normal(0.5, 3.0, size=9)), jnp.float32)  # some clip
    probs = jnp.asarray(rng.dirichlet(np.ones(9)), jnp.float32)
    ours = rules.cramer_project(locs, probs, support)
    np.testing.assert_allclose(ours, rlax.categorical_l2_project(locs, probs, support), atol=1e-6)


@pytest.mark.parametrize(
    "locs",
    [
        [-3.0, -2.5, 0.0, 4.0, 4.0],  # on support points, both ends
        [9.0, 9.0, 9.0, 9.0, 9.0],  # all above: a point mass at the top (discount 0)
        [-9.0, -9.0, -9.0, -9.0, -9.0],  # all below
        [3.99, -2.99, 0.7, 0.25, -10.0],  # unsorted, next to the ends
    ],
)
def test_cramer_projection_edge_cases_match_rlax(locs):
    support = jnp.linspace(-3.0, 4.0, 15)
    locs = jnp.asarray(locs, jnp.float32)
    probs = jnp.asarray([0.1, 0.2, 0.3, 0.25, 0.15], jnp.float32)
    ours = rules.cramer_project(locs, probs, support)
    np.testing.assert_allclose(ours, rlax.categorical_l2_project(locs, probs, support), atol=1e-6)
    np.testing.assert_allclose(float(jnp.sum(ours)), 1.0, atol=1e-6)
    batched = jax.vmap(rules.cramer_project, (0, 0, None))(
        jnp.stack([locs, locs[::-1]]), jnp.stack([probs, probs[::-1]]), support
    )
    np.testing.assert_allclose(batched[0], ours, atol=1e-7)
    np.testing.assert_allclose(batched[1], ours, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_quantile_step_matches_rlax_gradient(seed):
    theta, r, d, theta_next = _random_inputs(seed)
    taus = jnp.asarray(rules.midpoint_taus(theta.shape[0]), jnp.float32)
    ours = rules.qtd_kernel(theta, r, d, theta_next, jnp.float32(0.1), taus)
    target = r + d * theta_next
    grad = jax.grad(rlax.quantile_regression_loss)(jnp.asarray(theta), taus, target)
    np.testing.assert_allclose(ours, theta - 0.1 * grad, atol=1e-6)


def test_ctd_step_matches_rlax_categorical_target():
    rng = np.random.default_rng(0)
    support = jnp.linspace(-5.0, 5.0, 21)
    p = jnp.asarray(rng.dirichlet(np.ones(21)), jnp.float32)
    p_next = jnp.asarray(rng.dirichlet(np.ones(21)), jnp.float32)
    r, d = jnp.float32(0.7), jnp.float32(0.9)
    ours = rules.ctd_kernel(p, r, d, p_next, jnp.float32(1.0), support)
    expected = rlax.categorical_l2_project(r + d * support, p_next, support)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_imputed_samples_reproduce_their_expectiles():
    """Decoding Dabney et al.'s magnitude distribution: the samples' expectiles match."""
    import scipy.optimize

    values = np.array([0.1, 0.3, 1.2, 2.5, 5, 10, 20])
    probs = np.array(
        [0.06612594, 0.09090909, 0.14847358, 0.15489467, 0.31159175, 0.1509519, 0.07705306]
    )
    probs /= probs.sum()
    taus = rules.midpoint_taus(11)
    truth = [
        scipy.optimize.brentq(
            lambda e, t=t: (
                t * probs @ np.maximum(values - e, 0) - (1 - t) * probs @ np.maximum(e - values, 0)
            ),
            0,
            20,
        )
        for t in taus
    ]
    e = jnp.asarray(truth, jnp.float32)
    x = rules.impute_samples(e, jnp.asarray(taus, jnp.float32))
    residual = np.abs(rules.expectile_residuals(x, e, jnp.asarray(taus, jnp.float32)))
    # Bound stated in impute_samples: 0.2% of the reward range (20); 11 equal atoms cannot
    # match these expectiles exactly, and 0.05% is left.
    assert residual.max() < 0.002 * 20
    assert abs(float(x.mean()) - probs @ values) < 0.05
