"""td_jax.deep: the C51 / QR-DQN losses against numpy, DQN learning CartPole, the quick
suite end to end (and resumed), the true-return metric under reward noise, config and CLI
errors."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from td_jax import catalog
from td_jax.cli import app
from td_jax.deep import agents, analysis, noise, suites, train


def _c51_reference(atoms, logits_tm1, a, r, d, logits_t):
    """Bellemare et al. 2017, Algorithm 1, written out with loops."""
    probs_t = np.exp(logits_t) / np.exp(logits_t).sum(-1, keepdims=True)
    a_star = np.argmax((probs_t * atoms).sum(-1))
    v_min, v_max, n = atoms[0], atoms[-1], atoms.size
    dz = (v_max - v_min) / (n - 1)
    m = np.zeros(n)
    for j in range(n):
        tz = np.clip(r + d * atoms[j], v_min, v_max)
        b = (tz - v_min) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            m[lo] += probs_t[a_star, j]
        else:
            m[lo] += probs_t[a_star, j] * (hi - b)
            m[hi] += probs_t[a_star, j] * (b - lo)
    log_p = logits_tm1[a] - np.log(np.exp(logits_tm1[a]).sum())
    return -(m * log_p).sum()


def _qr_reference(q_tm1, a, r, d, q_t, kappa):
    """Dabney et al. 2018, Algorithm 1: quantile Huber loss, sum over i, mean over j."""
    n = q_tm1.shape[1]
    tau = (np.arange(n) + 0.5) / n
    target = r + d * q_t[np.argmax(q_t.mean(1))]
    u = target[None, :] - q_tm1[a][:, None]
    if kappa > 0:
        h = np.where(np.abs(u) <= kappa, 0.5 * u**2, kappa * (np.abs(u) - 0.5 * kappa))
    else:
        h = np.abs(u)
    return (np.abs(tau[:, None] - (u < 0)) * h).mean(1).sum()


@pytest.mark.parametrize("jit", [False, True])
def test_c51_loss_matches_numpy_projection(jit):
    atoms = np.linspace(-2.0, 2.0, 5).astype(np.float32)
    rng = np.random.default_rng(0)
    logits_tm1 = rng.normal(size=(2, 5)).astype(np.float32)
    logits_t = rng.normal(size=(2, 5)).astype(np.float32)
    loss = jax.jit(agents.c51_loss_kernel) if jit else agents.c51_loss_kernel
    for a, r, d in [(1, 0.5, 0.9), (0, 1.7, 0.9), (1, -0.3, 0.0)]:  # 1.7: clipped at v_max
        got = loss(jnp.asarray(atoms), jnp.asarray(logits_tm1), jnp.int32(a), jnp.float32(r),
                   jnp.float32(d), jnp.asarray(logits_t))  # fmt: skip
        want = _c51_reference(atoms.astype(np.float64), logits_tm1, a, r, d, logits_t)
        np.testing.assert_allclose(float(got), want, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("kappa", [0.0, 1.0])
def test_qr_loss_matches_numpy_quantile_huber(jit, kappa):
    rng = np.random.default_rng(1)
    q_tm1 = rng.normal(size=(3, 4)).astype(np.float32) * 2
    q_t = rng.normal(size=(3, 4)).astype(np.float32) * 2
    loss = lambda *xs: agents.qr_loss_kernel(*xs, kappa)  # noqa: E731
    loss = jax.jit(loss) if jit else loss
    for a, r, d in [(2, 0.5, 0.9), (0, -1.0, 0.0)]:
        got = loss(jnp.asarray(q_tm1), jnp.int32(a), jnp.float32(r), jnp.float32(d),
                   jnp.asarray(q_t))  # fmt: skip
        np.testing.assert_allclose(float(got), _qr_reference(q_tm1, a, r, d, q_t, kappa),
                                   rtol=1e-5)  # fmt: skip


def test_dqn_loss_is_half_squared_td_error():
    q_tm1, q_t = jnp.array([1.0, 2.0]), jnp.array([0.5, 3.0])
    got = agents.dqn_loss_kernel(q_tm1, jnp.int32(0), jnp.float32(1.0), jnp.float32(0.5),
                                 q_t, q_t, False)  # fmt: skip
    np.testing.assert_allclose(float(got), 0.5 * (1.0 + 0.5 * 3.0 - 1.0) ** 2)


def test_dqn_learns_cartpole_milestone():
    """DQN reaches CartPole-v0's "solved" reward threshold, 195 (gym's registration of
    CartPole-v0), as the mean final return of 4 seeds within 40,000 environment steps.

    The full reference (CleanRL's ``dqn_jax.py``, PureJaxRL's ``dqn.py``: about 500 within
    500,000 steps) does not fit a test on 2 cores; this is the milestone at 8% of that
    budget, with learning rate 1e-3 (CleanRL: 2.5e-4) and learning starting at 1,000
    steps (CleanRL: 10,000 of 500,000), the ``deep_control`` suite's budget. Measured:
    262 for seeds 0-3, 234 for seeds 4-7 (10 seeds: 246).
    """
    config = agents.make_config("dqn", total_steps=40_000, learning_starts=1_000)
    out = train.run_batch(config, "CartPole-v1", range(4), [1e-3])
    curve = analysis.fill_curve(np.asarray(out["returns"])[:, 0])
    final = curve[:, -5:].mean(-1)
    assert final.mean() >= 195.0, final
    assert curve[:, :3].mean() < 50.0  # and it started from a random policy's ~20


def test_true_return_is_reported_under_reward_noise():
    """With epsilon 1 the actions are random and do not depend on learning, so the
    metric, the true return, must be identical with and without reward noise; the
    seeds x learning-rates double vmap gives [seeds, lrs, bins]."""
    config = agents.make_config(
        "dqn", total_steps=600, learning_starts=200, buffer_size=200, batch_size=16,
        target_update_interval=100, epsilon_start=1.0, epsilon_end=1.0, hidden=(8,),
    )  # fmt: skip
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    lrs = jnp.asarray([1e-3, 1e-2])
    got = {}
    for kind in ("none", "bernoulli_sparse"):
        tr = train.make_train(config, "CartPole-v1", kind, num_bins=3)
        got[kind] = jax.jit(jax.vmap(jax.vmap(tr, (None, 0)), (0, None)))(keys, lrs)
    assert got["none"]["returns"].shape == (2, 2, 3)
    np.testing.assert_array_equal(got["none"]["returns"], got["bernoulli_sparse"]["returns"])
    assert int(got["none"]["counts"].sum()) > 0
    assert not np.allclose(got["none"]["loss"], got["bernoulli_sparse"]["loss"])


def test_noise_variants_keep_the_mean():
    key = jax.random.key(3)
    reward = jnp.ones(200_000)
    for kind in ("gaussian", "student_t", "bernoulli", "bernoulli_sparse"):
        x = np.asarray(noise.make_noiser(kind)(key, reward), np.float64)
        assert abs(x.mean() - 1.0) < 0.05, kind
    sparse = np.asarray(noise.make_noiser("bernoulli_sparse")(key, reward))
    assert set(np.unique(sparse)) <= {0.0, 10.0}
    gauss = np.asarray(noise.make_noiser({"kind": "gaussian", "std": 2.0})(key, reward))
    assert abs(gauss.std() - 2.0) < 0.05


@pytest.mark.parametrize(
    ("agent", "field", "value", "message"),
    [
        ("dqn", "learning_rate", -1.0, "learning_rate must be > 0, got -1.0"),
        ("dqn", "gamma", 1.5, "gamma must be in [0, 1], got 1.5"),
        ("dqn", "batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("dqn", "train_frequency", 15, "train_frequency must be a multiple of num_envs"),
        ("c51", "num_atoms", 1, "num_atoms must be an integer >= 2, got 1"),
        ("c51", "v_max", -200.0, "v_max must be > v_min"),
        ("qrdqn", "huber_kappa", -1.0, "huber_kappa must be >= 0, got -1.0"),
    ],
)
def test_config_errors_name_parameter_value_and_rule(agent, field, value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        agents.make_config(agent, **{field: value})


def test_quick_suite_end_to_end_and_resumes(tmp_path):
    """deep_control_quick: two tasks in the common configuration, one in the reference one
    (DQN's and C51's own settings; QR-DQN's equal its common ones, so its rows reuse those
    runs), the noise interaction and a one-variant ablation."""
    suite = catalog.get_suite("deep_control_quick")
    manifest = suite.run(tmp_path, quiet=True)
    for name in ("curves.csv", "summary.csv", "verdict.md", "manifest.json", "ablation.csv",
                 "noise_interaction.csv", "noise_interaction_curves.csv",
                 "curve_CartPole-v1_gaussian.png"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    curves = pd.read_csv(tmp_path / "curves.csv")
    # (configuration, agents x tasks) x seeds x lrs x windows
    assert len(curves) == (3 * 2 + 3 * 1) * 3 * 1 * 10
    assert set(curves["agent"]) == {"dqn", "c51", "qrdqn"}
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert {"configuration", "auc_iqm", "auc_low", "auc_high", "final_iqm", "runs",
            "p_improvement_auc", "median_steps_to_threshold"} <= set(summary.columns)  # fmt: skip
    assert (summary["auc_low"] <= summary["auc_iqm"] + 1e-9).all()
    dist = summary[summary["agent"] != "dqn"]["p_improvement_auc"]
    assert dist.between(0, 1).all() and len(dist) == 6
    ref = summary[summary.configuration == "reference"].set_index("agent")
    common = summary[(summary.configuration == "common")
                     & (summary.task == "CartPole-v1/gaussian")].set_index("agent")  # fmt: skip
    assert ref.loc["qrdqn", "runs"] == "the common configuration's"
    assert ref.loc["qrdqn", "auc_iqm"] == common.loc["qrdqn", "auc_iqm"]
    assert ref.loc["c51", "runs"] == "own"
    assert ref.loc["c51", "auc_iqm"] != common.loc["c51", "auc_iqm"]
    # One learning rate: nothing to tune, one evaluation run per unit: 6 common, DQN's and
    # C51's reference runs, the ablation's base and its variant.
    assert manifest["wall_seconds"] > 0 and manifest["units_computed"] == 10
    assert manifest["seeds"]["tuning"] == []  # every rate fixed: no tuning seed is used
    assert manifest["configuration"]["supports"]["CartPole-v1/none"] == [-10.0, 110.0]
    assert "never tuned" in (tmp_path / "verdict.md").read_text()
    tuning = pd.read_csv(tmp_path / "tuning.csv")
    assert tuning["chosen"].sum() == 8 and (summary["lr_grid_edge"].fillna("") == "").all()
    assert json.loads((tmp_path / "manifest.json").read_text())["suite"] == "deep_control_quick"
    again = suite.run(tmp_path, quiet=True)
    assert again["units_reused"] == 10 and again["units_computed"] == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "curves.csv"), curves)
    # The units are suites.DeepRuns files: a truncated one is recomputed, not trusted.
    unit = sorted((tmp_path / ".units").glob("*.npz"))[0]
    runs = suites.DeepRuns.load(unit)
    assert runs.returns.shape == (3, 1, 10) and runs.info["unit_seconds"] > 0
    unit.write_bytes(unit.read_bytes()[:50])
    with pytest.raises(ValueError, match="is not a file DeepRuns.save wrote"):
        suites.DeepRuns.load(unit)
    third = suite.run(tmp_path, quiet=True)
    assert third["units_reused"] == 9 and third["units_computed"] == 1
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "curves.csv"), curves)


def test_budget_names_each_grid_and_the_fixed_rates():
    suite = suites.DeepSuite(
        "probe", "probe", learning_rates=(3e-4, 1e-3),
        agent_learning_rates={"dqn": (1e-3,), "c51": (1e-4, 1e-3, 1e-2)},
    )  # fmt: skip
    assert suite.tuned_agents() == ["c51", "qrdqn"]
    budget = suite.budget()
    assert "learning rate fixed: dqn 0.001" in budget
    assert "c51 chosen per task from [0.0001, 0.001, 0.01]" in budget
    assert "qrdqn chosen per task from [0.0003, 0.001]" in budget


def test_steps_to_threshold_is_censored_not_a_number():
    curve = np.array([[1.0, 5.0, 9.0], [1.0, 2.0, 3.0]])
    _, _, steps = analysis.run_scores(curve, np.array([10, 20, 30]), 5.0, 1)
    assert steps[0] == 20 and np.isinf(steps[1])
    filled = analysis.fill_curve(np.array([np.nan, 2.0, np.nan, 4.0]))
    np.testing.assert_array_equal(filled, [2.0, 2.0, 2.0, 4.0])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--env", "Pong-v0"], "unknown gymnax environment 'Pong-v0'; use one of CartPole-v1"),
        (["--agent", "rainbow"], "unknown agent 'rainbow'"),
        (["--set", "learning_rate=-1"], "learning_rate must be > 0, got -1.0"),
        (["--agent", "c51", "--set", "num_atom=51"], "unknown c51 hyperparameter 'num_atom'"),
        (["--set", "gamma"], "--set must look like key=value"),
        (["--reward-noise", "loud"], "unknown --reward-noise 'loud'"),
        (["--steps", "5000"], "learning_starts must be < total_steps (5000), got 10000"),
    ],
)
def test_cli_deep_bad_input_is_one_line_exit_2(args, needle):
    result = CliRunner().invoke(app, ["deep", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("td-jax: error: "), result.stderr
    assert needle in lines[0]


def test_claims_are_called_from_the_p_improvement_interval():
    """A claim is reproduced only when the interval of P(improvement) over DQN excludes 0.5
    in the claimed direction (rainbow2021's claims go through this)."""
    from td_jax.deep.suites import Claim
    from td_jax.reproductions import rainbow2021

    summary = pd.DataFrame([
        {"agent": "c51", "task": "A", "p_improvement_auc": 0.1, "p_improvement_low": 0.0,
         "p_improvement_high": 0.3, "p_improvement_final": 0.6, "p_improvement_final_low": 0.4,
         "p_improvement_final_high": 0.8},
    ])  # fmt: skip
    text = analysis.claims_section(
        summary, (Claim("c51", "A", "worse", "auc", "s"), Claim("c51", "A", "better", "final", "s"))
    )
    rows = [line for line in text.splitlines() if line.startswith("| worse") or
            line.startswith("| better")]  # fmt: skip
    assert rows[0].endswith("| worse | reproduced |")
    assert rows[1].endswith("| no clear difference | NOT reproduced |")
    assert analysis.claims_section(summary, ()) == ""
    suite = rainbow2021.rainbow2021()
    assert {c.task for c in suite.claims} <= set(suite.tasks())
    assert suite.configs()["qrdqn"].train_frequency == 2
