"""The sample-complexity protocol's pieces against known answers: N(eps) on synthetic curves,
the paired bootstrap, Benjamini-Hochberg, dense checkpoints, grids and edges, exact floors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import td_jax
from td_jax.analysis import sample_complexity as sc
from td_jax.catalog import get_suite
from td_jax.engine import floors, tuning
from td_jax.engine.specs import RuleSpec
from td_jax.runner.metrics import checkpoint_density, dense_checkpoints


def test_dense_checkpoints_hold_20_per_decade():
    c = dense_checkpoints(50_000, 20)
    assert c[0] == 1 and c[-1] == 50_000 and np.all(np.diff(c) > 0)
    assert list(c[:10]) == list(range(1, 11))  # every update below 10
    assert checkpoint_density(c) >= 20
    assert checkpoint_density(np.geomspace(1, 3000, 16).round()) < 20  # the old schedule


@pytest.mark.parametrize("floor", [0.0, 0.002])
def test_crossing_time_of_c_over_t_plus_floor_is_within_2_percent(floor):
    """error = c / t + floor crosses eps at t = c / (eps - floor)."""
    steps = dense_checkpoints(100_000, 20)
    c = 3.0
    curve = c / steps + floor
    eps = np.array([0.3, 0.1, 0.03, 0.01, 0.005, 0.003])
    n = sc.crossing_times(steps, curve, eps)
    truth = c / (eps - floor)
    np.testing.assert_allclose(n, truth, rtol=0.02)
    # Below the floor, and past the horizon: not reached (nan), never a number.
    assert np.isnan(sc.crossing_times(steps, curve, np.array([floor / 2 + 1e-9]))).all()
    short = steps[steps <= 100]
    assert np.isnan(sc.crossing_times(short, c / short + floor, np.array([0.003]))).all()


def test_crossing_is_the_last_exit_not_the_first_dip():
    steps = np.array([1, 10, 100, 1000])
    curve = np.array([1.0, 0.01, 0.5, 0.001])  # dips below 0.1, comes back, then stays
    n = sc.crossing_times(steps, curve, np.array([0.1]))[0]
    assert 100 < n < 1000
    assert sc.crossing_times(steps, np.array([0.05, 0.04, 0.03, 0.02]), np.array([0.1]))[0] == 1
    diverged = np.array([1.0, 0.01, np.inf, np.inf])
    assert np.isnan(sc.crossing_times(steps, diverged, np.array([0.1]))[0])


def test_paired_bootstrap_sees_a_halving_and_identical_curves():
    rng = np.random.default_rng(0)
    steps = dense_checkpoints(10_000, 20)
    scale = rng.uniform(0.5, 2.0, size=(50, 1))  # per-seed noise shared by both (CRN)
    base = scale * 2.0 / steps
    fast = scale * 1.0 / steps  # exactly twice as fast at every eps
    eps = np.array([0.1, 0.01])
    sp = sc.bootstrap_speedup(steps, fast, base, eps, reps=500)
    np.testing.assert_allclose(np.exp(sp.log_s), 2.0, rtol=0.02)
    assert np.all(np.exp(sp.log_low) > 1.9) and np.all(sp.p_value < 0.01)
    same = sc.bootstrap_speedup(steps, base, base, eps, margin=0.05, reps=500)
    np.testing.assert_array_equal(same.log_s, 0.0)
    assert np.all(same.p_value == 1.0)


def test_censoring_is_explicit_in_the_speedup():
    """A not-reached N is the horizon in S: a bound, never an infinite speed-up; a baseline
    that just misses eps at the horizon gives no call (the referee's near-miss case)."""
    steps = np.array([1, 10, 100])
    reached = np.tile([1.0, 0.1, 0.001], (5, 1))
    never = np.ones((5, 3))
    sp = sc.bootstrap_speedup(steps, never, reached, np.array([0.01]), reps=100)
    assert np.isnan(sp.n_rule[0]) and np.isfinite(sp.log_s[0]) and sp.log_s[0] < 0
    assert np.exp(sp.log_s[0]) >= sp.n_base[0] / 100 - 1e-9  # S <= N_base / T: a bound
    sp = sc.bootstrap_speedup(steps, never, never, np.array([0.01]), reps=100)
    assert sp.p_value[0] == 1.0
    steps = np.arange(1, 101)
    rule = np.tile(np.where(steps >= 99.9, 0.009, 1.0), (20, 1))  # reaches at the horizon
    base = np.tile(np.full(100, 0.0101), (20, 1))  # just above eps at the horizon
    sp = sc.bootstrap_speedup(steps, rule, base, np.array([0.01]), margin=0.05, reps=200)
    assert np.exp(sp.log_high[0]) < 1.05 and sp.p_value[0] == 1.0


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 0.002, size=20)])
    ours = sc.benjamini_hochberg(p, 0.05)
    adjusted = scipy.stats.false_discovery_control(p, method="bh")
    np.testing.assert_array_equal(ours, adjusted <= 0.05)
    with pytest.raises(ValueError, match="q must be in"):
        sc.benjamini_hochberg(p, 1.5)


def test_grids_are_in_the_rules_units_and_edges_extend():
    suite = get_suite("default")
    td = tuning.initial_configs(RuleSpec("td", "td"), suite)
    constant = [c.alpha for c in td if c.family == "constant"]
    assert len(constant) / np.log10(max(constant) / min(constant)) >= 3  # 3+ per decade
    qtd = RuleSpec("qtd", "qtd")
    reward = {"name": "gaussian", "standardize": (1, 10)}
    env = td_jax.envs.make("chain", num_states=5, reward=reward)
    u = tuning.unit_scale(qtd, env.true_values(), env.return_variances(), env.visit_distribution())
    assert u > 10  # sign-driven steps scale with the return scale
    assert tuning.unit_scale(RuleSpec("td", "td"), env.true_values(), env.return_variances(),
                             env.visit_distribution()) == 1.0  # fmt: skip
    top = max(td, key=lambda c: (c.family == "constant", c.alpha))
    assert tuning.edge_of(top, td) == "alpha high"
    new = tuning.extend(td, {(top.family, "alpha high", top.alpha, top.c)})
    assert min(c.alpha for c in new) > top.alpha and len(new) == 2
    assert tuning.edge_of(top, td + new) == ""


def test_qtd_floor_on_a_chain_matches_a_long_run():
    """The exact floor (quantile-projected DP) vs the seed-averaged values of a long run with
    decaying steps: the bias of QTD's mean, within 5%."""
    env = td_jax.envs.make("chain", num_states=3, reward={"name": "bernoulli", "p": 0.1})
    m = 4
    theta = floors.quantile_fixed_point(env, td_jax.rules.midpoint_taus(m))
    v = env.true_values()
    bias = theta.mean(axis=1) - v
    assert np.abs(bias).max() > 0.05  # a skewed reward: QTD's mean is biased
    steps = 200_000  # over 10x the default suite's chain horizon
    result = td_jax.run(
        {"qtd": td_jax.rules.make("qtd", num_quantiles=m)}, {"chain": env}, [0.5], 256, steps,
        decay=[50.0], distribution_metric=False, checkpoints=[steps],
    )  # fmt: skip
    averaged = result.final_values["chain"][0, 0].mean(axis=0)  # over seeds: bias remains
    weights = env.visit_distribution()
    floor = float(np.sum(weights * bias**2))
    long_run = float(np.sum(weights * (averaged - v) ** 2))
    assert long_run == pytest.approx(floor, rel=0.05)


def test_dopamine_expectile_floor_matches_a_long_run():
    """Naive expectile TD (one random cell read at s') collapses towards the mean on a skewed
    chain: its middle cell's exact fixed point vs a long run's seed-averaged values."""
    env = td_jax.envs.make("chain", num_states=3, reward={"name": "bernoulli", "p": 0.1})
    e = floors.expectile_fixed_point(env, td_jax.rules.midpoint_taus(5))
    v, w = env.true_values(), env.visit_distribution()
    floor = float(np.sum(w * (e[:, 2] - v) ** 2))
    assert floor > 1e-3
    steps = 200_000
    result = td_jax.run(
        {"de": td_jax.rules.make("dopamine_expectile", num_cells=5)}, {"chain": env}, [1.0],
        256, steps, decay=[50.0], distribution_metric=False, checkpoints=[steps],
    )  # fmt: skip
    averaged = result.final_values["chain"][0, 0].mean(axis=0)
    assert float(np.sum(w * (averaged - v) ** 2)) == pytest.approx(floor, rel=0.05)


def test_ctd_floor_is_zero_inside_its_support_and_edrl_bandit_is_exact():
    env = td_jax.envs.make("chain", num_states=3, reward={"name": "bernoulli", "p": 0.3})
    w = {"visit": env.visit_distribution()}
    assert (
        floors.floor("ctd", {"num_atoms": 41, "v_min": -1.0, "v_max": 4.0}, env, w)["visit"] < 1e-12
    )  # the Cramer projection keeps the mean (Lyle et al. 2019)
    clipped = floors.floor("ctd", {"num_atoms": 41, "v_min": 0.0, "v_max": 1.0}, env, w)
    assert clipped["visit"] > 1e-3  # a support that clips biases the mean
    bandit = td_jax.envs.make("bandit", reward="exponential")
    edrl = floors.floor("edrl", {"num_expectiles": 11}, bandit, {"visit": np.ones(1)})
    assert edrl["visit"] < 1e-20  # the 0.5-expectile is the mean (to float64 rounding)
    assert floors.floor("edrl", {}, env, w) is None  # not computable here: reports say so


def test_a_task_with_too_few_visits_per_state_is_refused():
    import dataclasses

    from td_jax.engine.store import BenchError
    from td_jax.engine.tasks import prepare_tasks

    suite = get_suite("quick")
    short = dataclasses.replace(suite, horizons={"random_mrp": 200})
    with pytest.raises(BenchError, match=r"expected visits in 200 updates; at least 100"):
        prepare_tasks(short)
    infos = prepare_tasks(suite)
    assert all(i.min_visits >= 100 for i in infos.values())
    assert all(set(i.scales) == {"visit", "uniform"} for i in infos.values())


def test_flat_optima_at_an_edge_resolve_to_an_interior_configuration():
    """A plateau in c: near-ties prefer the interior; once the budget is spent an edge
    selection within the margin of an interior configuration takes it; a real edge stays."""
    steps = np.array([1, 10, 100, 1000])
    configs = [tuning.Config("harmonic", 1.0, c) for c in (1.0, 10.0, 100.0, 1000.0)]
    configs += [tuning.Config("constant", a, np.inf) for a in (0.1, 0.5)]

    def curve(n_cross: float) -> np.ndarray:  # error 1/t scaled to cross 0.1 at n_cross
        return 0.1 * n_cross / steps

    # N = 200 at c = 1, then a plateau 100, 99, 98 towards the top edge (c = 1000).
    n_of = [200.0, 100.0, 99.0, 98.0, 500.0, 400.0]
    curves = {c: curve(n) for c, n in zip(configs, n_of, strict=True)}
    eps = np.array([0.1])
    plain = tuning.select(steps, curves, eps)[0]
    assert plain.config.c == 1000.0 and plain.edge == "c high" and plain.flat == ""
    tied = tuning.select(steps, curves, eps, tie=0.025)[0]  # 99 and 100 tie with 98
    assert tied.config.c == 100.0 and tied.edge == "" and tied.flat == ""
    resolved = tuning.select(steps, curves, eps, flat=0.05)[0]
    assert resolved.config.c == 100.0 and resolved.edge == "" and resolved.flat == "c high"
    # Still improving at the edge (interior 2x worse): the edge stays and is reported.
    curves[configs[1]] = curves[configs[2]] = curve(196.0)
    kept = tuning.select(steps, curves, eps, flat=0.05)[0]
    assert kept.config.c == 1000.0 and kept.edge == "c high" and kept.flat == ""


@pytest.mark.parametrize(
    "reward", [{"name": "student_t", "df": 2.5}, {"name": "bernoulli", "p": 0.1}]
)
def test_quantile_floor_solves_its_fixed_point_equation(reward):
    """The accelerated solver's answer, checked by its definition with independent cdfs
    (scipy's t, or the atoms enumerated): theta_i(s) = inf{x : F_s(x) >= tau_i}, F_s the
    cdf of R + gamma theta_J(s') (J uniform), to the solver's tolerance."""
    env = td_jax.envs.make("random_mrp", reward=reward, seed=3)
    taus = td_jax.rules.midpoint_taus(8)
    theta = floors.quantile_fixed_point(env, taus)
    probs, nxt = np.asarray(env.outcome_probs), np.asarray(env.next_state)
    term, slot = np.asarray(env.terminal), np.asarray(env.reward_index)
    gamma, laws = float(env.gamma), env.reward_laws()

    def cdf(s, x):  # F_s(x), by scipy or by enumeration
        total = 0.0
        for j in np.flatnonzero(probs[s] > 0):
            law = laws[slot[s, j]]
            shift = 0.0 if term[s, j] else gamma * theta[nxt[s, j]]
            if reward["name"] == "student_t":
                z = x - shift
                while hasattr(law, "base"):  # affine maps down to the standard t
                    z, law = (z - law.loc) / law.scale, law.base
                total += probs[s, j] * np.mean(scipy.stats.t.cdf(z, law.df))
            else:
                y = law.locs[:, None] + np.broadcast_to(shift, (len(taus),))[None, :]
                total += probs[s, j] * np.mean(law.probs @ (y <= x))
        return total

    width = float(np.ptp(theta)) + 1.0
    for s in range(theta.shape[0]):
        for i, tau in enumerate(taus):
            assert cdf(s, theta[s, i] + 1e-6 * width) >= tau - 1e-9
            assert cdf(s, theta[s, i] - 1e-6 * width) < tau + 1e-9


def test_expectile_floor_solves_its_fixed_point_equation():
    """e_i(s) solves tau E[(Y - e)_+] = (1 - tau) E[(e - Y)_+] for Y = R + gamma e_J(s'),
    the targets' atoms enumerated here, to the solver's tolerance."""
    env = td_jax.envs.make("random_mrp", reward={"name": "bernoulli", "p": 0.2}, seed=4)
    taus = td_jax.rules.midpoint_taus(5)
    e = floors.expectile_fixed_point(env, taus)
    probs, nxt = np.asarray(env.outcome_probs), np.asarray(env.next_state)
    term, slot = np.asarray(env.terminal), np.asarray(env.reward_index)
    gamma, laws = float(env.gamma), env.reward_laws()
    scale = float(np.ptp(e)) + 1.0
    for s in range(e.shape[0]):
        ys, ws = [], []
        for j in np.flatnonzero(probs[s] > 0):
            law = laws[slot[s, j]]
            nxt_e = np.zeros(1) if term[s, j] else gamma * e[nxt[s, j]]
            ys.append((law.locs[:, None] + nxt_e[None, :]).ravel())
            ws.append((probs[s, j] * law.probs[:, None] / nxt_e.size * np.ones(nxt_e.size)).ravel())
        y, w = np.concatenate(ys), np.concatenate(ws)
        for i, tau in enumerate(taus):
            up, down = w @ np.maximum(y - e[s, i], 0), w @ np.maximum(e[s, i] - y, 0)
            assert tau * up - (1 - tau) * down == pytest.approx(0.0, abs=1e-7 * scale)
