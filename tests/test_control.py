"""Control learners: lifted rules reproduce prediction, converge to Q*, pick the optimal policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from td_jax import envs, rules
from td_jax.control import lift, run_control
from td_jax.rules import tabular_rule
from td_jax.types import Transition

RULES = ("td", "qtd", "ctd", "edrl", "dopamine_expectile", "dopamine_quantile")


def _deterministic_mdp(gamma):
    """3 states, 2 actions, deterministic moves and rewards."""
    moves = np.eye(3)[[[1, 2], [2, 0], [0, 1]]]
    return envs.tabular_mdp(moves, [[0.0, 1.0], [2.0, 0.0], [0.0, 0.5]], gamma)


def _hparams(name):
    return {"ctd": {"v_min": -5.0, "v_max": 5.0}}.get(name, {})


@pytest.mark.parametrize("name", RULES)
def test_one_action_per_state_reproduces_the_prediction_rule_update_by_update(name):
    rule = rules.make(name, **_hparams(name))
    rng = np.random.default_rng(0)
    state = rule.init(jax.random.key(0), 4)
    control = lift.init(rule, jax.random.key(0), 4, 1)
    chex_equal = np.testing.assert_array_equal
    chex_equal(np.asarray(state.table), np.asarray(control.table))
    for i in range(30):
        s, s_next = rng.integers(0, 4, size=2)
        tr = Transition(
            jnp.int32(s), jnp.float32(rng.normal()), jnp.float32(0.9), jnp.int32(s_next)
        )
        key = jax.random.key(i)
        state = rule.update(state, tr, jnp.float32(0.1), key)
        control = lift.update(rule, control, 1, tr, jnp.int32(0), jnp.float32(0.1), key)
        chex_equal(np.asarray(state.table), np.asarray(control.table))
    assert np.abs(np.asarray(state.table)).max() > 0.05  # the learner moved


def test_a_rule_written_once_runs_in_prediction_control_and_parametric_form():
    """The README's ten-line kernel, unchanged: tabular prediction with td_jax.run, control
    with run_control, and a parametric learner with approx.make (one-hot features, linear,
    sgd: the tabular rule, so the values agree); all three from the rule's one definition."""
    import td_jax

    def clipped_td(v, r_t, discount_t, v_next, step_size, key):
        return v + step_size * jnp.clip(r_t + discount_t * v_next - v, -1.0, 1.0)

    rule = tabular_rule(clipped_td, init_stat=jnp.zeros(1), distributional=False)
    assert rule.definition is not None and rule.definition.name == "clipped_td"
    env = envs.make("chain", num_states=4, reward={"name": "gaussian", "std": 3.0})
    parametric = td_jax.approx.make(rule, approximator="linear", features="one_hot")
    both = td_jax.run({"tabular": rule, "linear": parametric}, {"chain": env}, [0.1], 2, 300,
                      checkpoints=[300], progress=False)  # fmt: skip
    tab, lin = both.final_values["chain"]
    np.testing.assert_allclose(lin, tab, rtol=1e-5, atol=1e-6)
    assert np.abs(tab).max() > 0.1  # it learned, with clipping active (std 3 rewards)
    mdp = _deterministic_mdp(0.5)
    result = run_control(rule, mdp, [0.5], 1, 200, checkpoints=[200])
    assert result.q_error[0, 0, -1] < 1e-5


def test_synchronous_q_learning_is_exact_on_a_deterministic_mdp():
    # Deterministic transitions and rewards: synchronous Q-learning with alpha = 1 is value
    # iteration, and with alpha = 0.5 it contracts at rate 1 - alpha (1 - gamma).
    mdp = _deterministic_mdp(0.8)
    result = run_control("td", mdp, [1.0, 0.5], 2, 300, checkpoints=[10, 300])
    assert np.all(result.q_error[:, :, -1] < 1e-4)
    assert np.all(result.value_gap[:, :, -1] < 1e-5)
    np.testing.assert_allclose(result.q_final[0, 0], mdp.optimal_q(), atol=1e-4)


def test_checkpoint_c_is_taken_after_exactly_c_synchronous_updates():
    # alpha = 1 on a deterministic MDP: c updates from Q = 0 are c Bellman backups.
    mdp = _deterministic_mdp(0.8)
    result = run_control("td", mdp, [1.0], 1, 5, checkpoints=[1, 2, 3, 5])
    r, p, q_star = mdp.expected_rewards(), mdp.continuation_tensor(), mdp.optimal_q()
    q, expected = np.zeros_like(r), []
    for c in range(1, 6):
        q = r + 0.8 * p @ q.max(axis=1)
        if c in (1, 2, 3, 5):
            expected.append(np.max(np.abs(q - q_star)))
    np.testing.assert_allclose(result.q_error[0, 0], expected, rtol=1e-5)


def test_synchronous_q_learning_converges_to_value_iteration_on_a_stochastic_mdp():
    mdp = envs.make_mdp("garnet_mdp", num_states=5, num_actions=2, reward="gaussian", seed=1)
    result = run_control("td", mdp, [0.02], 32, 4_000, checkpoints=[100, 4_000])
    q_star = mdp.optimal_q()
    # Constant steps leave noise of order sqrt(alpha) / (1 - gamma) in each learner; the
    # seed mean is within 0.1 of Q* (measured 0.05), each learner within 1.0 (measured 0.56).
    assert np.max(np.abs(result.q_final[0].mean(axis=0) - q_star)) < 0.1
    assert np.all(result.q_error[0, :, -1] < 1.0)
    assert np.all(result.q_error[0, :, -1] < result.q_error[0, :, 0])


def test_quantile_q_learning_picks_the_optimal_action_on_the_risky_safe_chain():
    mdp = envs.make_mdp("risky_safe", num_states=3)
    assert mdp.optimal_policy().tolist() == [1, 1, 1]  # risky: the higher mean
    result = run_control("qtd", mdp, [0.02], 16, 6_000, checkpoints=[6_000], seed=1)
    greedy = result.q_final[0].argmax(axis=-1)  # [seeds, S]
    # Once converged, the greedy policy is the optimal one for (nearly) every seed: measured
    # 0.98 of (seed, state) pairs (Q-learning, td lifted, on the same seeds: 0.73).
    assert np.mean(greedy == 1) >= 0.9, greedy
    assert np.median(result.value_gap[0, :, -1]) == 0.0  # the optimal policy: exactly 0


def test_online_epsilon_greedy_learns_the_gridworld():
    mdp = envs.make_mdp("gridworld", size=3, slip=0.1)
    result = run_control("td", mdp, [0.2], 8, 20_000, mode="online", epsilon=0.2,
                         checkpoints=[100, 20_000])  # fmt: skip
    assert np.median(result.value_gap[0, :, -1]) < np.median(result.value_gap[0, :, 0])
    assert np.median(result.value_gap[0, :, -1]) < 0.05
    assert result.info["learner_updates"] == 8 * 20_000
    df = result.to_dataframe()
    assert len(df) == 8 * 2 and set(df["step"]) == {100, 20_000}
    row = df[(df.seed == 3) & (df.step == 20_000)].iloc[0]
    assert row.value_gap == result.value_gap[0, 3, 1] and row.q_error == result.q_error[0, 3, 1]


@pytest.mark.parametrize("mode", ["synchronous", "online"])
def test_ctd_with_a_covering_support_is_q_learning_in_the_mean(mode):
    """Lyle et al. (2019): while the support covers every target atom, categorical
    Q-learning's means follow Q-learning's exactly. Online, the behaviour follows each
    learner's own greedy action; continuous rewards leave no ties for float rounding to
    flip, so the two learners take the same actions and agree to rounding throughout."""
    mdp = envs.make_mdp("garnet_mdp", num_states=4, num_actions=2, reward="gaussian", seed=1)
    # r + gamma z stays inside [-60, 60] while |r| <= 6 (rewards here: |mean| <= 1, std 1).
    ctd = rules.make("ctd", num_atoms=41, v_min=-60.0, v_max=60.0)
    kw = dict(mode=mode, epsilon=0.1, checkpoints=[50, 1_500])
    q_learning = run_control("td", mdp, [0.1, 0.5], 4, 1_500, **kw)
    categorical = run_control(ctd, mdp, [0.1, 0.5], 4, 1_500, **kw)
    np.testing.assert_allclose(categorical.q_final, q_learning.q_final, atol=2e-4)
    np.testing.assert_allclose(categorical.q_error, q_learning.q_error, atol=2e-4)
    np.testing.assert_array_equal(categorical.value_gap > 1e-3, q_learning.value_gap > 1e-3)


def test_synchronous_mode_refuses_a_non_tabular_rule_by_name():
    rule = rules.make("td_lambda", lambda_=0.5)  # its state carries traces beside the table
    with pytest.raises(ValueError) as info:
        run_control(rule, envs.make_mdp("risky_safe"), [0.1], 1, 10)
    assert "synchronous mode needs a tabular rule" in str(info.value)
    assert "mode='online'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "offline"}, "offline"),
        ({"epsilon": 1.5}, "1.5"),
        ({"step_sizes": [0.1, -1.0]}, "step sizes"),
        ({"num_seeds": 0}, "num_seeds"),
        ({"checkpoints": [5, 3]}, "checkpoints"),
        ({"checkpoints": [3, 5]}, "end at num_steps"),
        ({"decay": [0.0]}, "decay scales must be > 0"),
        ({"step_sizes": [1e39]}, "float32"),
        ({"step_sizes": [[0.1], [0.2]]}, "one row per env (1)"),
        ({"num_seeds": [1, 1]}, "distinct seed indices"),
    ],
)
def test_bad_control_inputs_say_what_was_wrong(kwargs, message):
    args = {"step_sizes": [0.1], "num_seeds": 1, "num_steps": 10, **kwargs}
    with pytest.raises(ValueError) as info:
        run_control("td", envs.make_mdp("risky_safe"), **args)
    assert message in str(info.value)


def test_a_batch_of_rules_and_mdps_equals_each_pair_run_alone():
    """Same-shaped MDPs share one program (stacked), others get their own; every (rule, MDP)
    cell equals its own run, and explicit seed indices pick the same streams."""
    from td_jax.control import run_controls

    mdps = {
        "g1": envs.make_mdp("garnet_mdp", num_states=4, num_actions=2, reward="gaussian", seed=1),
        "g2": envs.make_mdp("garnet_mdp", num_states=4, num_actions=2, reward="student_t",
                            seed=2),
        "rs": envs.make_mdp("risky_safe", num_states=3),
    }  # fmt: skip
    kw = {"checkpoints": [20, 200], "decay": [np.inf, 50.0]}
    runs = run_controls(["td", "qtd"], mdps, [0.1, 0.3], 3, 200, **kw)
    assert runs.metrics["q_error"].shape == (2, 3, 2, 3, 2)
    assert len(runs.info["compile_seconds_by_program"]) == 4  # 2 rules x 2 shapes
    labels = list(mdps)
    # Three of the six cells, covering both rules, both programs and a stacked member.
    for r, e in ((0, 1), (1, 0), (1, 2)):
        label = labels[e]
        alone = run_control(["td", "qtd"][r], mdps[label], [0.1, 0.3], 3, 200, **kw)
        for name in ("q_error", "q_sq_error", "value_gap"):
            np.testing.assert_allclose(runs.metrics[name][r, e], getattr(alone, name),
                                       rtol=2e-6, atol=1e-7)  # fmt: skip
        np.testing.assert_allclose(runs.q_final[label][r], alone.q_final, rtol=2e-6, atol=1e-7)
    picked = run_controls(["td"], {"g1": mdps["g1"]}, [0.1, 0.3], [2, 0], 200, **kw)
    np.testing.assert_array_equal(picked.metrics["q_error"][0, 0],
                                  runs.metrics["q_error"][0, 0][:, [2, 0]])  # fmt: skip
    df = runs.to_dataframe()
    assert len(df) == 2 * 3 * 2 * 3 * 2 and set(df["mdp"]) == set(mdps)


def test_harmonic_decay_follows_its_schedule_and_inf_is_constant():
    # Deterministic MDP, synchronous: Q_{t+1} = (1 - a_t) Q_t + a_t T Q_t exactly, with
    # a_t = alpha / (1 + alpha t / d).
    mdp = _deterministic_mdp(0.8)
    res = run_control("td", mdp, [0.5, 0.5], 1, 30, checkpoints=[10, 30], decay=[np.inf, 4.0])
    plain = run_control("td", mdp, [0.5], 1, 30, checkpoints=[10, 30])
    np.testing.assert_array_equal(res.q_error[0], plain.q_error[0])
    r, p, q_star = mdp.expected_rewards(), mdp.continuation_tensor(), mdp.optimal_q()
    q, expected = np.zeros_like(r), []
    for t in range(30):
        a_t = 0.5 / (1.0 + 0.5 * t / 4.0)
        q = (1 - a_t) * q + a_t * (r + 0.8 * p @ q.max(axis=1))
        if t + 1 in (10, 30):
            expected.append(np.max(np.abs(q - q_star)))
    np.testing.assert_allclose(res.q_error[1, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(res.q_sq_error[1, 0, -1], np.mean((q - q_star) ** 2), rtol=1e-4)


def test_greedy_ties_go_to_the_highest_priority_and_strict_maxima_ignore_it():
    q = jnp.asarray([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [3.0, 1.0, 0.0]])
    priority = jnp.asarray([[0.1, 0.9, 0.5], [0.9, 0.2, 0.3], [0.0, 1.0, 1.0]])
    assert lift.greedy_actions(q, priority).tolist() == [1, 2, 0]
    assert lift.greedy_actions(q).tolist() == [0, 1, 0]  # no priority: the lowest index


def _frozen_rule():
    """A rule that never learns: Q stays 0, every action ties for ever."""
    return tabular_rule(lambda v, r, d, vn, a, k: v, init_stat=jnp.zeros(1))


@pytest.mark.parametrize("mode", ["synchronous", "online"])
def test_ties_break_at_random_per_seed_not_to_the_first_action(mode):
    """With Q = 0 the greedy policy is each seed's tie order: its value gap varies across
    seeds and averages to the gap of a uniformly random choice per state, not the gap of
    always taking action 0 (the safe, suboptimal one on risky_safe)."""
    mdp = envs.make_mdp("risky_safe", num_states=4)
    res = run_control(_frozen_rule(), mdp, [0.1], 400, 5, mode=mode, checkpoints=[5])
    gaps = res.value_gap[0, :, 0]
    assert len(np.unique(np.round(gaps, 5))) > 4
    first = float(np.max(mdp.value_gap(np.zeros(4, np.int32))))
    assert np.all(gaps <= first + 1e-5) and gaps.mean() < 0.8 * first
    # Every deterministic policy, each equally likely: the expected max gap, exactly.
    policies = np.array(np.meshgrid(*[[0, 1]] * 4)).reshape(4, -1).T.astype(np.int32)
    expected = np.mean([np.max(mdp.value_gap(p)) for p in policies])
    assert gaps.mean() == pytest.approx(expected, abs=4 * gaps.std() / np.sqrt(400))


def test_each_mdp_can_run_its_own_step_sizes_bit_identical_to_separate_runs():
    from td_jax.control import run_controls

    a = envs.make_mdp("garnet_mdp", num_states=4, num_actions=2, seed=1)
    b = envs.make_mdp("garnet_mdp", num_states=4, num_actions=2, seed=2)
    both = run_controls({"td": "td"}, {"a": a, "b": b}, [[0.1, 0.3], [0.2, 0.05]], 3, 40,
                        decay=[[np.inf, 5.0], [np.inf, np.inf]], checkpoints=[10, 40])  # fmt: skip
    assert both.step_sizes.shape == (2, 2)
    for e, (mdp, steps, decay) in enumerate(
        [(a, [0.1, 0.3], [np.inf, 5.0]), (b, [0.2, 0.05], [np.inf, np.inf])]
    ):
        alone = run_controls({"td": "td"}, {"m": mdp}, steps, 3, 40, decay=decay,
                             checkpoints=[10, 40])  # fmt: skip
        for k in ("q_error", "value_gap"):
            np.testing.assert_array_equal(both.metrics[k][:, e], alone.metrics[k][:, 0])


def test_risky_safe_order_seed_moves_the_optimal_action_across_states():
    plain = envs.make_mdp("risky_safe", num_states=5)
    mixed = envs.make_mdp("risky_safe", num_states=5, order_seed=0)
    assert plain.optimal_policy().tolist() == [1] * 5
    policy = mixed.optimal_policy()
    assert set(policy.tolist()) == {0, 1}
    swap = policy == 0  # where the risky action sits first, Q* is the plain one's, swapped
    np.testing.assert_allclose(
        mixed.optimal_q(), np.where(swap[:, None], plain.optimal_q()[:, ::-1], plain.optimal_q())
    )
    assert mixed.config()["order_seed"] == 0
