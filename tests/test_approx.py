"""Parametric (linear and MLP) TD learners: reductions to the tabular rules, the linear-TD
fixed point, a thousand MLP learners in one program, the continuous-state task and the
approx suite end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from typer.testing import CliRunner

import td_jax
from td_jax import approx, rules
from td_jax.approx import signals
from td_jax.catalog import available as available_suites
from td_jax.catalog import get_suite
from td_jax.cli import app
from td_jax.engine.driver import run_suite
from td_jax.envs.continuous import grid_positions
from tests.helpers import mrp_stream, run_stream

P = np.array([[0.2, 0.8, 0.0], [0.0, 0.3, 0.7], [0.6, 0.0, 0.4]])
HPARAMS = {
    "td": {},
    "qtd": {"num_quantiles": 8},
    "ctd": {"num_atoms": 21, "v_min": -25.0, "v_max": 25.0},
    "edrl": {"num_expectiles": 5},
    "td_lambda": {"lambda_": 0.7},
}


@pytest.fixture(scope="module")
def stream():
    def reward_fn(key, s):
        return jnp.asarray([0.0, 1.0, -2.0], jnp.float32)[s] + jax.random.uniform(key)

    batch = mrp_stream(jax.random.PRNGKey(0), P, reward_fn, 0.9, 1_000, 1)
    return jax.tree.map(lambda x: x[0], batch)


def _trajectory(rule, stream, step_size, num_states, init_key=0):
    """(every intermediate state, every intermediate values()) of one learner."""

    def body(state, xs):
        tr, k = xs
        state = rule.update(state, tr, jnp.float32(step_size), k)
        return state, (state, rule.values(state))

    keys = jax.random.split(jax.random.PRNGKey(1), stream.r_t.shape[0])
    init = rule.init(jax.random.PRNGKey(init_key), num_states)
    return jax.jit(lambda s: jax.lax.scan(body, init, (s, keys))[1])(stream)


def _kernel(states) -> np.ndarray:
    return np.asarray(states.params["params"]["readout"]["kernel"])


def test_package_exposes_its_namespace():
    for name in approx.__all__:
        assert hasattr(approx, name), name
    # The parametric rules, then every other tabular rule of the registry (its definition).
    assert approx.available()[:5] == ["td", "td_lambda", "qtd", "ctd", "edrl"]
    assert set(approx.available()) == set(td_jax.rules.available())
    assert "continuous_walk" in td_jax.envs.available()
    assert {"approx", "approx_quick"} <= set(available_suites())


@pytest.mark.parametrize("name", sorted(approx.FEATURES))
def test_every_feature_map_represents_constants(name):
    feats = approx.make_features(name)(jax.random.PRNGKey(3), 7)
    table, unit = np.asarray(feats.table), np.asarray(feats.unit)
    assert table.shape[0] == 7 and unit.shape == (table.shape[1],)
    np.testing.assert_allclose(table @ unit, 1.0, rtol=1e-6)
    norms = np.linalg.norm(table, axis=1)
    assert np.all(norms > 0.3) and np.all(norms < 2.0), norms  # about unit scale
    if name in ("one_hot", "tile"):
        np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


@pytest.mark.parametrize("approximator", ["linear", "mlp"])
@pytest.mark.parametrize("rule", ["td", "qtd", "ctd"])
def test_learners_start_at_the_tabular_initial_statistics(rule, approximator):
    hp = dict(HPARAMS[rule], init_value=0.5)
    features = "tile" if approximator == "linear" else "position"
    learner = approx.make(rule, approximator=approximator, features=features, **hp)
    tabular = rules.make(rule, **hp)
    state = learner.init(jax.random.PRNGKey(0), 6)
    np.testing.assert_allclose(
        learner.values(state), tabular.values(tabular.init(jax.random.PRNGKey(0), 6)), atol=1e-6
    )


@pytest.mark.parametrize("name", ["td", "qtd", "ctd"])
def test_one_hot_linear_sgd_is_the_tabular_rule_step_by_step(stream, name):
    """Linear + one-hot + sgd puts J^T g = g into row s_tm1: the tabular update.

    On CPU the trajectories agree bit for bit; the tolerance only allows XLA to contract a
    multiply-add differently in the two programs.
    """
    tab_states, tab_values = _trajectory(rules.make(name, **HPARAMS[name]), stream, 0.1, 3)
    lin = approx.make(name, approximator="linear", features="one_hot", optimizer="sgd",
                      **HPARAMS[name])  # fmt: skip
    lin_states, lin_values = _trajectory(lin, stream, 0.1, 3)
    table = np.asarray(tab_states.table)
    assert np.abs(table[-1] - table[0]).max() > 0.1  # the learners moved
    np.testing.assert_allclose(_kernel(lin_states), table, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lin_values, tab_values, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, atol", [("td_lambda", 1e-5), ("edrl", 2e-3)])
def test_one_hot_linear_sgd_tracks_the_tabular_rule(stream, name, atol):
    """TD(lambda) multiplies alpha * delta * e in another order; EDRL's imputation solver
    amplifies rounding a little. Both stay on the tabular trajectory."""
    _, tab_values = _trajectory(rules.make(name, **HPARAMS[name]), stream, 0.1, 3)
    lin = approx.make(name, approximator="linear", features="one_hot", **HPARAMS[name])
    _, lin_values = _trajectory(lin, stream, 0.1, 3)
    assert np.abs(np.asarray(tab_values)).max() > 0.5
    np.testing.assert_allclose(lin_values, tab_values, rtol=0, atol=atol)


def test_linear_td_lambda_zero_is_linear_td(stream):
    td = approx.make("td", features="tile")
    tdl = approx.make("td_lambda", features="tile", lambda_=0.0)
    np.testing.assert_allclose(
        _trajectory(tdl, stream, 0.1, 3)[1], _trajectory(td, stream, 0.1, 3)[1], atol=1e-5
    )


def test_linear_ctd_mean_follows_linear_td(stream):
    """Lyle et al. (2019): with a linear model the CTD mean moves by alpha phi'.phi delta,
    exactly as linear TD's value does, while the support covers every return."""
    features = {"name": "tile", "num_tilings": 2, "num_tiles": 2}
    td = approx.make("td", features=features)
    ctd = approx.make("ctd", features=features, num_atoms=101, v_min=-25.0, v_max=25.0)
    td_values = np.asarray(_trajectory(td, stream, 0.1, 3)[1])
    ctd_states, ctd_values = _trajectory(ctd, stream, 0.1, 3)
    assert np.abs(td_values).max() > 1.0
    np.testing.assert_allclose(ctd_values, td_values, atol=5e-4, rtol=0)
    # ... and stays normalised: the features represent constants and sum(g) = 0.
    probs = jax.vmap(ctd.distribution)(jax.tree.map(lambda x: x[-1:], ctd_states))[1]
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-4)


def test_softmax_ctd_stays_a_distribution_under_adam(stream):
    """C51's head: an MLP trained by adam still outputs a distribution, and learns."""
    hp = {"num_atoms": 21, "v_min": -25.0, "v_max": 25.0, "head": "softmax"}
    ctd = approx.make("ctd", approximator="mlp", features="position", optimizer="adam", **hp)
    states, values = _trajectory(ctd, stream, 0.001, 3)
    last = jax.tree.map(lambda x: x[-1], states)
    locs, probs = ctd.distribution(last)
    assert np.all(np.asarray(probs) >= 0.0)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)
    true_v = np.linalg.solve(np.eye(3) - 0.9 * P, [0.5, 1.5, -1.5])  # E[U(0, 1)] = 0.5
    rmse = np.sqrt(np.mean((np.asarray(values) - true_v) ** 2, axis=1))
    assert rmse[500:].mean() < 0.5 * rmse[0], (rmse[0], rmse[500:].mean())  # 1.37 -> 0.45


def test_step_size_scales_an_optimizer_built_at_learning_rate_one():
    """sgd / adam at learning rate 1, updates times the traced step size == adam(alpha)."""
    alpha = 0.03
    rule = approx.make("qtd", approximator="mlp", features="position", optimizer="adam",
                       num_quantiles=4)  # fmt: skip
    state = rule.init(jax.random.PRNGKey(0), 5)
    transitions = [
        td_jax.Transition(jnp.int32(s), jnp.float32(r), jnp.float32(0.9), jnp.int32(n))
        for s, r, n in [(0, 1.0, 1), (1, -2.0, 3), (3, 0.5, 4)]
    ]
    model = approx.mlp(4)
    sg = signals.qtd(num_quantiles=4)
    reference = optax.adam(alpha)

    @jax.jit
    def reference_step(params, opt_state, phi_s, phi_next, tr):
        stat_next = model.apply(params, phi_next)
        stat_s, pullback = jax.vjp(lambda p: model.apply(p, phi_s), params)
        g = sg.signal(stat_s, tr.r_t, tr.discount_t, stat_next, None)
        updates, opt_state = reference.update(pullback(-g)[0], opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    update = jax.jit(rule.update)
    params, opt_state = state.params, reference.init(state.params)
    for tr in transitions:
        phi_s, phi_next = state.features[tr.s_tm1], state.features[tr.s_t]
        params, opt_state = reference_step(params, opt_state, phi_s, phi_next, tr)
        state = update(state, tr, jnp.float32(alpha), jax.random.PRNGKey(1))
    for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_linear_td_converges_to_the_lstd_fixed_point():
    """Tsitsiklis & Van Roy (1997): linear TD converges to the w solving A w = b with
    A = Phi^T D (Phi - gamma P Phi), b = Phi^T D r, D the stationary distribution; that is
    neither the truth nor its best approximation when d < S."""
    env = td_jax.envs.make("random_mrp", num_states=6, branching=3, gamma=0.9, seed=3,
                           reward={"name": "gaussian", "std": 0.5})  # fmt: skip
    S, gamma = env.num_states, 0.9
    rng = np.random.default_rng(1)
    phi = np.concatenate([rng.normal(size=(S, 2)), np.ones((S, 1))], axis=1) / np.sqrt(3.0)

    def fixed_features(key, num_states):
        return approx.Features(jnp.asarray(phi, jnp.float32), jnp.asarray([0.0, 0.0, 3**0.5]))

    # Exact fixed point with numpy, independently of the learner.
    p = env.transition_matrix()
    eigvals, eigvecs = np.linalg.eig(p.T)
    d = np.real(eigvecs[:, np.argmin(np.abs(eigvals - 1.0))])
    D = np.diag(d / d.sum())
    w = np.linalg.solve(phi.T @ D @ (phi - gamma * p @ phi), phi.T @ D @ env.expected_rewards())
    lstd = phi @ w
    v = env.true_values()
    best = phi @ np.linalg.solve(phi.T @ D @ phi, phi.T @ D @ v)
    assert np.abs(lstd - v).max() > 1.0 and np.abs(lstd - best).max() > 1.0

    def trajectory(key):
        k0, k1 = jax.random.split(key)

        def body(s, k):
            tr = env.step(k, s)
            return tr.s_t, tr

        return jax.lax.scan(body, env.reset(k0), jax.random.split(k1, 200_000))[1]

    stream = jax.jit(jax.vmap(trajectory))(jax.random.split(jax.random.PRNGKey(0), 8))
    rule = approx.make("td", approximator="linear", features=fixed_features)
    _, averaged = run_stream(rule, stream, 0.005, S, average_from=0.5)
    learned = np.asarray(jax.vmap(rule.values)(averaged)).mean(axis=0)
    np.testing.assert_allclose(learned, lstd, atol=0.1)  # values ~10; 1% of them


def test_a_thousand_mlp_learners_train_in_one_program():
    env = td_jax.envs.make("continuous_walk", num_states=11, reward="gaussian")
    rule = approx.make("td", approximator="mlp", features="position", optimizer="adam")
    step_sizes = [0.003, 0.01, 0.03, 0.1]
    result = td_jax.run({"mlp_td": rule}, [env], step_sizes, num_seeds=256, num_steps=400,
                        num_checkpoints=4, distribution_metric=False)  # fmt: skip
    assert result.value_error.shape[2:4] == (4, 256)  # 1,024 learners
    assert len(result.info["compile_seconds"]) == 1  # one compiled program
    assert result.info["learner_updates"] == 1024 * 400
    err = result.value_error[0, 0]  # [step size, seed, checkpoint]
    assert np.isfinite(err).all() and not result.diverged.any()
    best = np.argmin(np.median(err[:, :, -1], axis=1))
    assert np.median(err[best, :, -1]) < 0.5 * np.median(err[best, :, 0])


def test_continuous_walk_values_are_the_positions_exactly():
    env = td_jax.envs.make("continuous_walk", num_states=21, max_jump=0.25,
                           reward={"name": "exponential", "standardize": [1.0, 1.0]})  # fmt: skip
    x = grid_positions(21)
    np.testing.assert_allclose(env.true_values(), x, atol=1e-12)
    assert env.truth().method == "exact-absorption" and env.truth_error < 0.05
    # Monte Carlo returns from the ends and the centre agree with the exact law's mean.
    states = jnp.asarray([0, 10, 20], jnp.int32)

    def episode_return(key, s):
        def cond(carry):
            return carry[2]

        def body(carry):
            s, total, alive, k = carry
            k, k_step = jax.random.split(k)
            tr = env.step(k_step, s)
            return tr.s_t, total + tr.r_t, tr.discount_t > 0.0, k

        return jax.lax.while_loop(cond, body, (s, jnp.float32(0.0), True, key))[1]

    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    returns = jax.jit(jax.vmap(jax.vmap(episode_return, (None, 0)), (0, None)))(keys, states)
    returns = np.asarray(returns)
    se = returns.std(axis=0) / np.sqrt(returns.shape[0])
    assert np.all(np.abs(returns.mean(axis=0) - x[[0, 10, 20]]) < 4 * se)
    q = env.true_quantiles([0.25, 0.75])[[0, 10, 20]]
    np.testing.assert_allclose(np.quantile(returns, [0.25, 0.75], axis=0).T, q, atol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rule": "nope"}, "unknown parametric rule"),
        ({"rule": "td", "features": "nope"}, "unknown features"),
        ({"rule": "td", "approximator": "nope"}, "unknown approximator"),
        ({"rule": "td", "optimizer": "nope"}, "unknown optimizer"),
        ({"rule": "qtd", "num_quantiles": 0}, "num_quantiles"),
        ({"rule": "qtd", "bogus": 1}, "bad hyperparameters"),
        ({"rule": "td", "approximator": {"name": "mlp", "hidden": []}}, "hidden"),
        ({"rule": "td", "features": {"name": "tile", "num_tiles": 0}}, "num_tiles"),
        ({"rule": "ctd", "head": "sigmoid"}, "head"),
    ],
)
def test_bad_configuration_fails_before_compiling(kwargs, match):
    with pytest.raises(ValueError, match=match):
        approx.make(**kwargs)


def test_approx_quick_suite_end_to_end(tmp_path):
    """The approx suites run by the same protocol as default: N(eps), per-eps tuning, S(eps),
    each MLP learner against mlp_td and each linear one against linear_td."""
    out = tmp_path / "approx_quick"
    suite = get_suite("approx_quick")
    manifest = run_suite(suite, out, quiet=True)
    for name in ["sample_complexity.csv", "convergence.csv", "table.md", "verdict.md",
                 "manifest.json", "speedup.png", "n_eps.png"]:  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert manifest["suite"] == "approx_quick" and manifest["runs_computed"] >= 2 * len(suite.rules)
    verdict = (out / "verdict.md").read_text()
    assert verdict.startswith("# Does distributional TD converge faster than TD?")
    assert "**Answer.**" in verdict
    cells = pd.read_csv(out / "sample_complexity.csv")
    assert set(cells["rule"]) == {r.label for r in suite.rules}
    baselines = dict(zip(cells["rule"], cells["baseline"], strict=False))
    assert baselines["mlp_qtd"] == "mlp_td" and baselines["linear_qtd"] == "linear_td"
    assert cells["reached"].any()
    # The manifest says what each rule (the suite's own factories) was tuned on, and a
    # re-score takes them as the suite's, not as plug-ins.
    rules = manifest["configuration"]["rules"]
    assert {(r["step_unit"], r["step_scale"]) for r in rules} == {("fraction", 1.0)}
    assert not any("plugin" in r for r in rules)
    before = (out / "sample_complexity.csv").read_bytes()
    result = CliRunner().invoke(app, ["report", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "sample_complexity.csv").read_bytes() == before
