"""Conformance tests every environment must pass, plus hand-computed fixtures.

Truth is compared with Monte Carlo under bounds valid for the law at hand: a CLT bound for
values and the DKW inequality for return CDFs (P(sup|F_n - F| > eps) <= 1e-6).
"""

from __future__ import annotations

import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from td_jax import envs, rewards
from td_jax.types import Transition

N_RETURNS = 10_000  # Monte Carlo returns per state
DKW_EPS = float(np.sqrt(np.log(2 / 1e-6) / (2 * N_RETURNS)))

# name -> (factory kwargs, Monte Carlo horizon, truth method expected)
CASES = {
    "bandit": (("bandit", {}), 1, "exact-one-step"),
    "bandit_t": (("bandit", {"reward": ("student_t", {"df": 3.0})}), 1, "exact-one-step"),
    "chain_dabney": (
        ("chain", {"num_states": 3, "reward": "dabney_magnitude", "gamma": 0.8}),
        3,
        "exact-enumeration",
    ),
    "chain_gauss": (("chain", {"num_states": 3, "gamma": 0.9}), 3, "lattice-dp"),
    "random_walk": (("random_walk", {}), 150, "exact-absorption"),
    "random_walk_disc": (("random_walk", {"gamma": 0.8}), 120, "lattice-dp"),
    "random_mrp": (
        ("random_mrp", {"num_states": 4, "branching": 2, "gamma": 0.6, "seed": 3}),
        40,
        "lattice-dp",
    ),
    "two_state": (("two_state", {"gamma": 0.7}), 60, "lattice-dp"),
    "continuous_walk": (
        ("continuous_walk", {"num_states": 11, "max_jump": 0.3}),
        200,
        "exact-absorption",
    ),
}


@functools.cache
def env_of(case: str) -> envs.MRP:
    (name, params), _, _ = CASES[case]
    return envs.make(name, **params)


@functools.cache
def mc_returns(case: str) -> np.ndarray:
    """f64[S, N_RETURNS] discounted returns from every state, truncated at the horizon."""
    env, horizon = env_of(case), CASES[case][1]
    starts = jnp.repeat(jnp.arange(env.num_states, dtype=jnp.int32), N_RETURNS)

    @jax.jit
    def run(key):
        def body(carry, k):
            s, coef, g = carry
            tr = jax.vmap(env.step)(jax.random.split(k, s.shape[0]), s)
            return (tr.s_t, coef * tr.discount_t, g + coef * tr.r_t), None

        init = (starts, jnp.ones(starts.shape), jnp.zeros(starts.shape))
        (_, coef, g), _ = jax.lax.scan(body, init, jax.random.split(key, horizon))
        return g, coef

    g, coef = run(jax.random.key(11))
    # The horizon is chosen so that the unfinished tail is negligible.
    assert float(jnp.max(coef)) < 1e-6
    return np.asarray(g, np.float64).reshape(env.num_states, N_RETURNS)


def test_available_and_describe():
    names = envs.available()
    for required in ("bandit", "chain", "random_walk", "random_mrp", "two_state"):
        assert required in names
    assert set(envs.describe()) == set(names)


@pytest.mark.parametrize("case", list(CASES))
def test_truth_method_and_table(case):
    env = env_of(case)
    truth = env.truth()
    assert truth.method == CASES[case][2]
    locs, probs = env.true_distribution_table(200)
    chex.assert_shape([locs, probs], (env.num_states, 200))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.diff(locs, axis=1) >= 0) and np.all(probs >= 0)
    # The table's mean is the value up to its W1 error (|mean difference| <= W1).
    err = env.table_error(200)
    np.testing.assert_allclose((locs * probs).sum(axis=1), env.true_values(), atol=err + 1e-9)
    if truth.method.startswith("exact"):
        assert np.all(truth.errors == 0.0)
    # The DP bound is held to 2e-3 of the return scale; the 1000-atom table adds its own
    # quantisation error (largest for heavy tails: about 1e-2 std for student_t(3)).
    scale = max(1.0, max(law.std for law in truth.laws))
    assert np.all(truth.errors <= 2e-3 * scale)
    assert 0.0 <= env.truth_error < 0.01 * scale
    for s in range(env.num_states):
        l1, p1 = env.true_distribution(s)
        assert np.all(np.diff(l1) > 0) and abs(p1.sum() - 1) < 1e-12


@pytest.mark.parametrize("case", list(CASES))
def test_truth_matches_monte_carlo(case):
    env, g = env_of(case), np.sort(mc_returns(case), axis=1)
    truth, v = env.truth(), env.true_values()
    chex.assert_shape(v, (env.num_states,))
    # Values: CLT bound on the Monte Carlo mean.
    se = g.std(axis=1) / np.sqrt(N_RETURNS)
    assert np.all(np.abs(g.mean(axis=1) - v) <= 5.0 * se + 1e-6), (g.mean(axis=1), v)
    # The 0.5-expectile is the mean: exact laws to round-off, lattice laws to their W1 bound.
    bound = truth.errors.max() + 1e-9 * (1 + np.abs(v).max())
    np.testing.assert_allclose(env.true_expectiles([0.5])[:, 0], v, rtol=0, atol=bound)
    assert np.all(np.diff(env.true_expectiles([0.1, 0.3, 0.7, 0.9]), axis=1) >= 0)
    taus = np.linspace(0.02, 0.98, 25)
    q = env.true_quantiles(taus)
    chex.assert_shape(q, (env.num_states, taus.size))
    for s, law in enumerate(truth.laws):
        if truth.method.startswith("exact"):
            # DKW just above the true quantiles (the nudge keeps f32/f64 atom rounding out).
            pts = q[s] + 1e-5 * (1 + np.abs(q[s]))
            emp = np.searchsorted(g[s], pts, side="right") / N_RETURNS
            assert np.max(np.abs(emp - law.cdf(pts))) < DKW_EPS, (s, emp, law.cdf(pts))
        else:
            # A lattice law spreads each true atom over neighbouring lattice points, so its
            # CDF is compared in W1: W1(emp, lattice) <= truth error + W1(emp, true), and
            # E W1(emp, true) <= J / sqrt(n), J = int sqrt(F (1 - F)) (Bobkov-Ledoux 2019).
            f = np.cumsum(law.probs)[:-1]
            j = np.sum(np.sqrt(f * (1 - f)) * np.diff(law.locs))
            w1 = stats.wasserstein_distance(g[s], law.locs, v_weights=law.probs)
            assert w1 <= truth.errors[s] + 5 * j / np.sqrt(N_RETURNS), (s, w1, j)
    lo, hi = env.return_bounds()
    assert np.mean((g < lo) | (g > hi)) < 1e-4 + 5 * np.sqrt(1e-4 / g.size) + 1e-4


@pytest.mark.parametrize("case", list(CASES))
def test_step_jits_vmaps_and_matches_transition_matrix(case):
    env = env_of(case)
    n = 10_000  # steps from every state: one jitted, vmapped call over n * S keys
    states = jnp.repeat(jnp.arange(env.num_states, dtype=jnp.int32), n)
    keys = jax.random.split(jax.random.key(5), states.shape[0])
    tr = jax.jit(jax.vmap(env.step))(keys, states)
    assert isinstance(tr, Transition)
    chex.assert_shape(list(tr), (states.shape[0],))
    chex.assert_type(list(tr), [jnp.int32, jnp.float32, jnp.float32, jnp.int32])
    np.testing.assert_array_equal(tr.s_tm1, states)
    assert np.all(np.isin(np.asarray(tr.discount_t), [0.0, np.float32(env.gamma)]))
    assert all(x.shape == () for x in jax.eval_shape(env.step, keys[0], jnp.int32(0)))
    assert jax.eval_shape(env.reset, keys[0]).shape == ()
    # Empirical s_t | s_tm1 frequencies against the stream's transition matrix.
    s_t = np.asarray(tr.s_t).reshape(env.num_states, n)
    freq = np.stack([np.bincount(row, minlength=env.num_states) / n for row in s_t])
    p = env.transition_matrix()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-3)
    if float(env.gamma) > 0:
        ended = (np.asarray(tr.discount_t) == 0).reshape(env.num_states, n).mean(axis=1)
        t = env.termination_probs()
        assert np.all(np.abs(ended - t) <= 5 * np.sqrt(t * (1 - t) / n) + 1e-3)
    r = np.asarray(tr.r_t, np.float64).reshape(env.num_states, n)
    se = r.std(axis=1) / np.sqrt(n)
    assert np.all(np.abs(r.mean(axis=1) - env.expected_rewards()) <= 6 * se + 1e-6)
    # step(key, s) is step_from_bits of the key's step_bits (the runner's entry point).
    words = jax.vmap(env.step_bits)(keys[:64])
    chex.assert_shape(words, (64, env.step_words))
    again = jax.jit(jax.vmap(env.step_from_bits))(words, states[:64])
    for a, b in zip(again, tr, strict=True):
        np.testing.assert_array_equal(a, np.asarray(b)[:64])


def test_column_gathers_equal_plain_indexing():
    from td_jax.envs.mrp import _take

    rng = np.random.default_rng(0)
    index = jnp.asarray(rng.integers(0, 6, size=(7, 3)), jnp.int32)
    for shape in ((6,), (6, 5), (6, 2, 4)):
        table = jnp.asarray(rng.normal(size=shape), jnp.float32)
        np.testing.assert_array_equal(jax.jit(_take)(table, index), table[index])
    flags = jnp.asarray(rng.random((6, 3)) < 0.5)
    np.testing.assert_array_equal(_take(flags, index), flags[index])


def test_known_values():
    np.testing.assert_allclose(envs.make("random_walk").true_values(), np.arange(1, 6) / 6)
    np.testing.assert_allclose(
        envs.make("random_walk", num_states=19).true_values(), np.arange(-9, 10) / 10, atol=1e-12
    )
    np.testing.assert_allclose(envs.make("bandit").true_values(), [5.2078], atol=5e-5)
    np.testing.assert_allclose(
        envs.make("bandit").true_expectiles([0.05, 0.95]), [[1.3886, 13.8029]], atol=5e-5
    )


def test_hand_computed_chain_distribution():
    # From state 0: r0 in {0, 1} w.p. 1/2, then r1 = 2 discounted by 1/2: returns {1, 2}.
    env = envs.make("chain", num_states=2, rewards=[("bernoulli", {"p": 0.5}), 2.0], gamma=0.5)
    locs, probs = env.true_distribution(0)
    np.testing.assert_allclose(locs, [1.0, 2.0])
    np.testing.assert_allclose(probs, [0.5, 0.5])
    table_locs, table_probs = env.true_distribution_table(4)
    np.testing.assert_allclose(table_locs, [[1, 2, 2, 2], [2, 2, 2, 2]])
    np.testing.assert_allclose(table_probs, [[0.5, 0.5, 0, 0], [1, 0, 0, 0]])
    assert env.truth_error == 0.0
    np.testing.assert_allclose(env.true_quantiles([0.5, 0.51]), [[1.0, 2.0], [2.0, 2.0]])


def test_random_walk_distribution_is_two_atoms():
    env = envs.make("random_walk", num_states=19)
    locs, probs = env.true_distribution(9)
    np.testing.assert_allclose(locs, [-1.0, 1.0])
    np.testing.assert_allclose(probs, [0.5, 0.5])


def test_stacked_envs_with_different_reward_families_vmap():
    env_a = envs.make("chain", num_states=3, reward=2.0)
    env_b = envs.make("chain", num_states=3, reward=("categorical", {"values": [10, 20]}))
    stacked = jax.tree.map(lambda *x: jnp.stack(x), env_a, env_b)  # the plain leaf-wise stack
    keys = jax.random.split(jax.random.key(2), 2)
    tr = jax.jit(jax.vmap(lambda e, k, s: e.step(k, s)))(stacked, keys, jnp.array([0, 1]))
    np.testing.assert_array_equal(tr.s_t, [1, 2])
    assert float(tr.r_t[0]) == 2.0 and float(tr.r_t[1]) in (10.0, 20.0)

    mrps = [
        envs.make("random_mrp", num_states=4, seed=0, reward="gaussian"),
        envs.make("random_mrp", num_states=4, seed=1, reward=("student_t", {"df": 3})),
        envs.make("random_mrp", num_states=4, seed=2, reward="dabney_magnitude"),
    ]
    batch = envs.stack(mrps)
    keys = jax.random.split(jax.random.key(3), (3, 1000))

    def per_env(env, ks):
        return jax.vmap(env.step, in_axes=(0, None))(ks, jnp.int32(0))

    tr = jax.jit(jax.vmap(per_env))(batch, keys)
    chex.assert_shape(list(tr), (3, 1000))
    r = np.asarray(tr.r_t)
    for i, env in enumerate(mrps):
        mean = env.expected_rewards()[0]
        assert abs(r[i].mean() - mean) < 6 * r[i].std() / np.sqrt(1000)
    assert np.unique(r[2]).size <= 7  # the Dabney law, moved to state 0's mean


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("chain", {"gamma": 1.5}, r"chain: gamma must be in \[0, 1\], got 1\.5"),
        ("chain", {"gamma": -0.1}, r"chain: gamma must be in \[0, 1\], got -0\.1"),
        ("random_mrp", {"gamma": 1.0}, r"random_mrp: gamma must be in \[0, 1\) for a continuing"),
        ("two_state", {"gamma": 1.0}, r"two_state: gamma must be in \[0, 1\) for a continuing"),
        ("random_mrp", {"num_states": 0}, r"random_mrp: num_states must be an integer >= 1, got 0"),
        ("random_mrp", {"num_states": 3, "branching": 4}, r"branching must be <= num_states = 3"),
        ("chain", {"num_states": 0}, r"chain: num_states must be an integer >= 1, got 0"),
        ("random_walk", {"num_states": 4}, r"random_walk: num_states must be odd"),
        ("two_state", {"switch": 2.0}, r"two_state: switch must be a probability in \[0, 1\]"),
        ("chain", {"reward": ("student_t", {"df": 1.0})}, r"student_t: df must be > 1\.0"),
        ("chain", {"reward": "nope"}, r"unknown reward distribution 'nope'; available:"),
        ("chain", {"rewards": [1.0]}, r"chain: rewards must be 5 rewards"),
        ("chain", {"length": 3}, r"chain: unknown parameter 'length'; allowed parameters:"),
        ("maze", {}, r"unknown environment 'maze'; available: bandit, chain, random_walk"),
    ],
)
def test_validation_errors(name, params, message):
    with pytest.raises(ValueError, match=message):
        envs.make(name, **params)


def test_episodic_gamma_one_needs_termination():
    outcomes = [[(1.0, 0, False, 0)]]  # a self-loop that never ends
    with pytest.raises(ValueError, match=r"loop: gamma must be < 1 unless every episode ends"):
        envs.build(
            "loop", outcomes=outcomes, rewards=[1.0], reward_labels=("r",), start_probs=[1.0],
            gamma=1.0, episodic=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"loop: outcome probabilities of state 0 must"):
        envs.build(
            "loop", outcomes=[[(0.7, 0, True, 0)]], rewards=[1.0], reward_labels=("r",),
            start_probs=[1.0], gamma=0.5, episodic=True,
        )  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_config_is_json(case):
    env = env_of(case)
    cfg = json.loads(json.dumps(env.config()))
    assert cfg["name"] == CASES[case][0][0]
    assert cfg["gamma"] == pytest.approx(float(env.gamma))
    assert isinstance(env.num_states, int) and isinstance(env.episodic, bool)
    for reward_cfg in cfg["rewards"].values():
        rewards.make(**reward_cfg)  # every recorded reward rebuilds


def test_table_error_is_the_exact_quantisation_w1():
    # For a gaussian bandit the truth is exact, so the table's W1 to N(0, 1) is all of it;
    # integrate |F_table - Phi| on a fine grid, independently of td_jax.
    env = envs.make("bandit", reward="gaussian")
    locs, probs = env.true_distribution_table(100)
    x = np.linspace(-9.0, 9.0, 2_000_001)
    f_table = np.cumsum(probs[0])[np.clip(np.searchsorted(locs[0], x, side="right") - 1, 0, None)]
    f_table[x < locs[0, 0]] = 0.0
    w1 = np.sum(np.abs(f_table - stats.norm.cdf(x))) * (x[1] - x[0])
    np.testing.assert_allclose(env.table_error(100), w1, rtol=1e-4)


def test_degenerate_and_long_chain_truths_are_exact():
    env = envs.make("two_state", rewards=(1.0, 1.0), gamma=0.9)
    assert env.truth().method == "exact-degenerate"
    np.testing.assert_allclose(env.true_distribution(1)[0], [10.0])
    long = envs.make("chain", num_states=1500, reward=("bernoulli", {"p": 0.5}), gamma=1.0)
    assert long.truth().method == "exact-enumeration"  # no recursion limit on long chains
    np.testing.assert_allclose(long.true_quantiles([0.5])[0], [750.0])


def test_build_validates_tables():
    kwargs = dict(rewards=[1.0], reward_labels=("r",), start_probs=[1.0], gamma=0.5)
    with pytest.raises(ValueError, match=r"t: next states must be in \[0, 1\), got \[3\]"):
        envs.build("t", outcomes=[[(1.0, 3, False, 0)]], episodic=False, **kwargs)
    with pytest.raises(ValueError, match=r"t: reward slots must be in \[0, 1\)"):
        envs.build("t", outcomes=[[(1.0, 0, True, 2)]], episodic=True, **kwargs)
