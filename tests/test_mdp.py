"""MDPs: exact truth against brute force and closed forms, the stream, and bad inputs."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from td_jax import envs


def _random_mdp(seed: int, S: int = 4, A: int = 3, gamma: float = 0.8):
    """A dense f[S, A, S] MDP with deterministic rewards, and its raw arrays."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(S), size=(S, A))
    r = rng.normal(size=(S, A))
    mdp = envs.tabular_mdp(p, r.tolist(), gamma)
    return mdp, p, r


def _values(p, r, gamma, pi):
    """V^pi by a linear solve on the raw arrays (pi: f[S, A])."""
    p_pi = np.einsum("sa,sat->st", pi, p)
    r_pi = np.einsum("sa,sa->s", pi, r)
    return np.linalg.solve(np.eye(len(r)) - gamma * p_pi, r_pi)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_values_equal_the_best_of_every_deterministic_policy(seed):
    mdp, p, r = _random_mdp(seed)
    S, A = r.shape
    best = np.full(S, -np.inf)
    for actions in itertools.product(range(A), repeat=S):
        best = np.maximum(best, _values(p, r, 0.8, np.eye(A)[list(actions)]))
    np.testing.assert_allclose(mdp.optimal_values(), best, atol=1e-10)
    q = mdp.optimal_q()
    bellman = r + 0.8 * p @ q.max(axis=1)  # Q* is the optimality operator's fixed point
    assert np.max(np.abs(bellman - q)) < 1e-10
    assert np.max(mdp.value_gap(mdp.optimal_policy())) < 1e-10


def test_policy_values_match_a_linear_solve_for_stochastic_and_deterministic_policies():
    mdp, p, r = _random_mdp(3)
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(3), size=4)
    np.testing.assert_allclose(mdp.policy_values(pi), _values(p, r, 0.8, pi), atol=1e-12)
    actions = np.array([2, 0, 1, 1])
    np.testing.assert_allclose(
        mdp.policy_values(actions), _values(p, r, 0.8, np.eye(3)[actions]), atol=1e-12
    )
    q = mdp.policy_q(actions)
    np.testing.assert_allclose(q[np.arange(4), actions], mdp.policy_values(actions), atol=1e-12)
    assert np.all(mdp.value_gap(pi) >= -1e-12) and mdp.value_gap(pi).max() > 0


def test_risky_safe_closed_form():
    n, gamma = 5, 0.9
    mdp = envs.make_mdp("risky_safe", num_states=n, gamma=gamma)
    assert mdp.optimal_policy().tolist() == [1] * n  # risky: mean 1.2 > 1.0
    steps_left = n - np.arange(n)
    v = 1.2 * (1 - gamma**steps_left) / (1 - gamma)
    np.testing.assert_allclose(mdp.optimal_values(), v, rtol=1e-12)
    v_next = np.append(v[1:], 0.0)
    np.testing.assert_allclose(mdp.optimal_q()[:, 0], 1.0 + gamma * v_next, rtol=1e-12)
    np.testing.assert_allclose(mdp.policy_values(np.zeros(n, int)), v / 1.2, rtol=1e-12)
    # The optimal policy's return law: Student t steps, its mean V* and a wide spread.
    truth = mdp.optimal_truth()
    quartiles = truth.quantiles([0.25, 0.75])[0]
    assert quartiles[0] < v[0] < quartiles[1] and quartiles[1] - quartiles[0] > 2.0


def test_gridworld_is_symmetric_and_slip_costs_value():
    grid = envs.make_mdp("gridworld", size=4, slip=0.2, step_reward=-0.05)
    v = grid.optimal_values().reshape(4, 4)
    np.testing.assert_allclose(v, v.T, atol=1e-10)  # the grid is symmetric about its diagonal
    assert v[3, 3] == pytest.approx(1.0)  # the goal pays 1 and ends
    assert np.all(np.diff(v[0]) > 0)  # closer to the goal is better
    sure = envs.make_mdp("gridworld", size=4, slip=0.0, step_reward=-0.05).optimal_values()
    assert sure[0] > v[0, 0]
    # Without slip, 6 steps of -0.05 then the goal's 1 (discounted 0.95 per step).
    assert sure[0] == pytest.approx(-0.05 * (1 - 0.95**6) / 0.05 + 0.95**6)
    uniform = np.full((16, 4), 0.25)
    assert grid.value_gap(uniform)[0] > 0.1


def test_exact_ties_and_gamma_zero():
    # Tied actions (mean_scale 0: every reward mean 0): Q* = 0, the lowest action greedy.
    flat = envs.make_mdp("garnet_mdp", mean_scale=0.0, seed=2)
    assert np.max(np.abs(flat.optimal_q())) < 1e-12
    assert flat.optimal_policy().tolist() == [0] * 10
    mdp, p, r = _random_mdp(6, gamma=0.0)
    np.testing.assert_allclose(mdp.optimal_q(), r, atol=1e-15)  # gamma 0: Q* is the reward


def test_garnet_is_reproducible_and_its_optimal_truth_has_the_optimal_mean():
    a, b = envs.make_mdp("garnet_mdp", seed=4), envs.make_mdp("garnet_mdp", seed=4)
    np.testing.assert_array_equal(a.optimal_q(), b.optimal_q())
    assert not np.allclose(envs.make_mdp("garnet_mdp", seed=5).optimal_q(), a.optimal_q())
    induced = a.induced_mrp(a.optimal_policy())
    np.testing.assert_allclose(induced.true_values(), a.optimal_values(), atol=1e-9)


def test_step_samples_the_chosen_actions_outcomes():
    mdp, p, r = _random_mdp(5)
    keys = jax.random.split(jax.random.key(0), 40_000)
    step = jax.jit(jax.vmap(mdp.step, in_axes=(0, None, None)))
    for s, a in [(0, 0), (2, 1), (3, 2)]:
        tr = step(keys, s, a)
        freq = np.bincount(np.asarray(tr.s_t), minlength=4) / len(keys)
        np.testing.assert_allclose(freq, p[s, a], atol=4 * np.sqrt(0.25 / len(keys)))
        np.testing.assert_allclose(np.asarray(tr.r_t), r[s, a], rtol=1e-6)
        assert np.all(np.asarray(tr.discount_t) == np.float32(0.8))
    # One key: the same uniforms whatever the action (common random numbers across actions):
    # two actions with one outcome table and one reward law draw the same transition.
    twin = envs.tabular_mdp(np.stack([p[:, 0], p[:, 0]], axis=1), [["gaussian"] * 2] * 4, 0.8)
    for k in keys[:20]:
        assert twin.step(k, 2, 0) == twin.step(k, 2, 1)


def test_episodic_outcome_lists_end_and_restart():
    mdp = envs.tabular_mdp(
        [[[(1.0, 1)], [(0.5, 0), (0.5, 1, True)]], [[(1.0, 0, True)], [(1.0, 1, True)]]],
        [[0.0, 1.0], [2.0, 3.0]],
        0.9,
        [1.0, 0.0],
    )
    assert mdp.episodic and mdp.num_actions == 2
    tr = mdp.step(jax.random.key(1), 1, 0)
    assert float(tr.discount_t) == 0.0 and int(tr.s_t) == 0  # ended, restarted at the start
    # V*(1) = 3 (action 1, then the episode ends); Q*(0, 0) = 0 + 0.9 * 3.
    np.testing.assert_allclose(mdp.optimal_values()[1], 3.0, atol=1e-12)
    np.testing.assert_allclose(mdp.optimal_q()[0, 0], 2.7, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: envs.make_mdp("cliff"), "cliff"),
        (lambda: envs.tabular_mdp(np.full((2, 2, 2), 0.6), [[0, 0], [0, 0]], 0.9), "0.6"),
        (lambda: envs.tabular_mdp(np.full((2, 2, 2), 0.5), [[0, 0]], 0.9), "1 entries"),
        (lambda: envs.tabular_mdp(np.full((2, 2, 2), 0.5), [[0], [0, 0]], 0.9), "rewards[0]"),
        (lambda: envs.tabular_mdp(np.full((2, 2, 3), 0.5), [[0, 0], [0, 0]], 0.9), "(2, 2, 3)"),
        (lambda: envs.tabular_mdp(np.full((2, 2, 2), 0.5), [[0, 0], [0, 0]], 1.0), "[0, 1)"),
        (lambda: envs.tabular_mdp([[[(1.0, 5)]]], [[0.0]], 0.5), "next states"),
        (lambda: envs.make_mdp("gridworld", slip=1.5), "slip"),
        (lambda: envs.make_mdp("garnet_mdp", branching=20), "branching"),
        (lambda: envs.make_mdp("risky_safe").policy_values([0, 1]), "policy"),
    ],
)
def test_bad_inputs_say_what_was_wrong(call, message):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert message in str(info.value)


def test_td_jax_list_names_the_control_tasks():
    from typer.testing import CliRunner

    from td_jax.cli import app

    out = CliRunner().invoke(app, ["list"])
    assert out.exit_code == 0
    assert "control tasks (MDPs):" in out.output
    for name in envs.available_mdps():
        assert f"  {name}" in out.output
