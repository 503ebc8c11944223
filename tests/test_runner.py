"""td_jax.run: common random numbers, determinism, metrics, modes, devices, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from td_jax import rules
from td_jax.runner import RunResult, run
from td_jax.runner.run import stream_key
from tests.helpers import tiny_mrp

ENVS = {"tiny": tiny_mrp(1.0), "tiny_noisy": tiny_mrp(3.0)}


def reward_recorder():
    """A rule that ignores its step size and sums the rewards seen from each state."""

    def kernel(v, r_t, discount_t, v_next, step_size, key):
        del discount_t, v_next, step_size, key
        return v + r_t

    return rules.tabular_rule(kernel, init_stat=jnp.zeros(1), distributional=False)


def test_common_random_numbers_across_rules_and_step_sizes():
    res = run(
        {"a": reward_recorder(), "b": reward_recorder(), "td": rules.make("td")},
        ENVS,
        [0.01, 0.1, 0.5],
        3,
        300,
        num_checkpoints=3,
        progress=False,
    )
    for env in ENVS:
        sums = res.final_values[env]  # [rule, step_size, seed, S]
        np.testing.assert_array_equal(sums[0], sums[1])  # two rules, same transitions
        np.testing.assert_array_equal(sums[0, 0], sums[0, 2])  # step sizes share the stream
        assert not np.array_equal(sums[0, 0, 0], sums[0, 0, 1])  # seeds differ
    assert not np.array_equal(res.final_values["tiny"][0], res.final_values["tiny_noisy"][0])


@pytest.mark.parametrize("memo_seeds", [4096, 2])
def test_stream_keys_are_stream_key_per_seed_memoised_or_not(monkeypatch, memo_seeds):
    # Both paths (a memoised seed set, and one above MEMO_SEEDS computed each time) give
    # every seed its documented stream_key; memoised arrays cannot be written through.
    module = sys.modules["td_jax.runner.run"]
    monkeypatch.setattr(module, "MEMO_SEEDS", memo_seeds)
    seeds = np.array([0, 1, 7, 2**31, 2**32 - 1], np.int64)
    for base in (0, 2**32 - 1):
        keys = module._stream_keys(base, "chain/gaussian", seeds)
        expected = [jax.random.key_data(stream_key(base, "chain/gaussian", int(s))) for s in seeds]
        np.testing.assert_array_equal(keys, np.stack(expected))
    if memo_seeds >= seeds.size:
        with pytest.raises(ValueError, match="read-only"):
            keys[0, 0] = 1


def test_ctd_tracks_td_through_the_runner():
    """The Lyle et al. null control holds through the runner: same stream, same means."""
    ctd = rules.make("ctd", num_atoms=201, v_min=-40.0, v_max=40.0)
    res = run(
        {"td": rules.make("td"), "ctd": ctd},
        {"tiny": ENVS["tiny"]},
        [0.05, 0.2],
        2,
        500,
        num_checkpoints=4,
        progress=False,
    )
    # Tolerance: float32 rounding accumulated over 500 updates of 201 probabilities.
    np.testing.assert_allclose(res.value_error[0], res.value_error[1], atol=1e-3)
    np.testing.assert_allclose(res.final_values["tiny"][0], res.final_values["tiny"][1], atol=1e-3)


@pytest.mark.parametrize("name", ["td", "qtd", "dopamine_expectile"])
def test_bit_identical_across_chunk_sizes(name):
    kwargs = dict(num_checkpoints=4, progress=False)
    full = run([name], ENVS, [0.02, 0.2], 5, 200, **kwargs)
    for chunk in (1, 3):
        other = run([name], ENVS, [0.02, 0.2], 5, 200, chunk_size=chunk, **kwargs)
        np.testing.assert_array_equal(other.value_error, full.value_error)
        np.testing.assert_array_equal(other.distribution_error, full.distribution_error)
        for env in ENVS:
            np.testing.assert_array_equal(other.final_values[env], full.final_values[env])


def _words(key, step: int, start: int, count: int) -> np.ndarray:
    """Counter words (step, start + i) of a key, from JAX's reference threefry_2x32."""
    data = jax.random.key_data(key)
    counters = jnp.concatenate([jnp.full(count, step, jnp.uint32),
                                start + jnp.arange(count, dtype=jnp.uint32)])  # fmt: skip
    out = jax.extend.random.threefry_2x32(data, counters)
    return out[:count] ^ out[count:]


def _replay(rule, env, seed: int, num_steps: int, step_size, mode: str = "online"):
    """The stream of (env, seed) rebuilt from the documented keys, learned outside run().

    Update t draws the words at counters (t, i) of the stream's run key: the env's
    (``step_words`` per transition; one transition per state in synchronous mode), then
    the rule key's two words (one key per state in synchronous mode).
    ``step_size``: a number, or a function of the update index t = 0, 1, ..."""
    key = stream_key(0, "tiny", seed)
    k_init, k_reset, k_run = jax.random.split(key, 3)
    state = rule.init(k_init, env.num_states)
    s = env.reset(k_reset)
    num_states = env.num_states
    if hasattr(env, "step_from_bits"):
        n, step = env.step_words, env.step_from_bits
    else:  # any other env: a key made of two words
        n, step = 2, lambda w, s: env.step(jax.random.wrap_key_data(w), s)
    for t in range(num_steps):
        alpha = jnp.float32(step_size(t) if callable(step_size) else step_size)
        if mode == "online":
            tr = step(_words(k_run, t, 0, n), s)
            k_rule = jax.random.wrap_key_data(_words(k_run, t, n, 2))
            state = rule.update(state, tr, alpha, k_rule)
            s = tr.s_t
            continue
        words = _words(k_run, t, 0, num_states * n).reshape(num_states, n)
        keys = _words(k_run, t, num_states * n, 2 * num_states).reshape(num_states, 2)
        table = state.table
        for x in range(num_states):  # Jacobi: every state from the old table
            tr = step(words[x], jnp.int32(x))
            new = rule.update(state, tr, alpha, jax.random.wrap_key_data(keys[x]))
            table = table.at[x].set(new.table[x])
        state = type(state)(table)
    return state


@pytest.mark.parametrize("task", ["mrp", "custom"])
def test_a_replay_from_the_documented_counters_reproduces_run_in_both_modes(task):
    """Both modes, a rule that reads its key (the dopamine cells pick targets with it), on a
    built-in MRP (``step_from_bits``) and on a custom env (``step(key, s)`` only). The
    expectile code: the quantile code's sign can flip on one float rounding (XLA fuses
    multiply-adds in the compiled run), which a replay cannot be asked to match."""
    from td_jax import envs

    env = envs.make("random_walk", num_states=5) if task == "mrp" else ENVS["tiny_noisy"]
    assert hasattr(env, "step_from_bits") == (task == "mrp")
    rule = rules.make("dopamine_expectile", num_cells=5)
    for mode in ("online", "synchronous"):
        res = run({"d": rule}, {"tiny": env}, [0.3], [3], 25, checkpoints=[25], mode=mode,
                  progress=False)  # fmt: skip
        state = _replay(rule, env, 3, 25, 0.3, mode)
        np.testing.assert_allclose(
            res.final_values["tiny"][0, 0, 0], rule.values(state), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", ["qtd", "ctd"])
def test_checkpoint_metrics_equal_direct_computation(name):
    env = ENVS["tiny"]
    rule = rules.make(name, **({"num_quantiles": 8} if name == "qtd" else {"num_atoms": 21}))
    res = run({name: rule}, {"tiny": env}, [0.1], [2], 60, checkpoints=[10, 60], progress=False)
    state = _replay(rule, env, 2, 60, 0.1)
    values = np.asarray(rule.values(state))
    truth = env.true_values()
    np.testing.assert_allclose(
        res.value_error[0, 0, 0, 0, -1], np.sqrt(np.mean((values - truth) ** 2)), rtol=1e-4
    )
    locs, probs = (np.asarray(x) for x in rule.distribution(state))
    t_locs, t_probs = env.true_distribution_table(256)
    w1 = np.mean(
        [
            scipy.stats.wasserstein_distance(locs[s], t_locs[s], probs[s], t_probs[s])
            for s in range(env.num_states)
        ]
    )
    np.testing.assert_allclose(res.distribution_error[0, 0, 0, 0, -1], w1, rtol=1e-3)


@pytest.mark.parametrize("mode", ["online", "synchronous"])
def test_modes_converge_to_truth(mode):
    env = {"tiny": tiny_mrp(0.5)}
    res = run(
        ["td", "qtd"], env, [0.02, 0.1], 4, 3_000, mode=mode, num_checkpoints=5, progress=False
    )
    first = res.value_error[..., 0].mean()
    last = res.value_error[..., -1].mean(axis=(1, 3)).min(axis=-1)  # best step size per rule
    # |V| ~ 3-5; td reaches within 0.3 RMSE (constant-step noise), qtd within its bias.
    assert last[0] < 0.3 and last[1] < 0.6 and first > 2.0, (mode, first, last)


def test_schedule_scales_the_swept_step_size():
    sched = optax.polynomial_schedule(
        init_value=1.0, end_value=0.05, power=1, transition_steps=2_000
    )
    const = run(["td"], {"tiny": tiny_mrp(3.0)}, [0.2], 8, 2_000, num_checkpoints=3, progress=False)
    decayed = run(
        ["td"],
        {"tiny": tiny_mrp(3.0)},
        [0.2],
        8,
        2_000,
        num_checkpoints=3,
        schedule=sched,
        progress=False,
    )
    assert decayed.value_error[..., -1].mean() < const.value_error[..., -1].mean()


def test_harmonic_decay_matches_a_replay_and_constant_is_unchanged():
    """decay d: update t uses alpha / (1 + alpha t / d); d = inf is bit-identical to no decay."""
    env = ENVS["tiny"]
    rule = rules.make("td")
    res = run({"td": rule}, {"tiny": env}, [0.5, 0.5], [1], 40, checkpoints=[40],
              decay=[np.inf, 3.0], progress=False)  # fmt: skip
    plain = run({"td": rule}, {"tiny": env}, [0.5], [1], 40, checkpoints=[40], progress=False)
    np.testing.assert_array_equal(res.final_values["tiny"][0, 0], plain.final_values["tiny"][0, 0])
    state = _replay(rule, env, 1, 40, lambda t: 0.5 / (1.0 + 0.5 * t / 3.0))
    np.testing.assert_allclose(
        res.final_values["tiny"][0, 1, 0], rule.values(state), rtol=1e-5, atol=1e-6
    )


def test_value_metrics_are_weighted_squared_errors_of_the_values():
    from td_jax import envs

    env = envs.make("random_mrp", num_states=4, seed=22)
    res = run(["td"], {"tiny": env}, [0.1], 3, 50, checkpoints=[50], progress=False)
    err = res.final_values["tiny"][0, 0] - env.true_values()  # [seeds, S]
    visits = env.visit_distribution()
    assert np.ptp(visits) > 0.05  # not uniform: the two weightings differ
    np.testing.assert_allclose(res.metrics["sq_error_visit"][0, 0, 0, :, -1],
                               (err**2) @ visits, rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(res.metrics["sq_error_uniform"][0, 0, 0, :, -1],
                               (err**2).mean(axis=1), rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(res.visits["tiny"], visits)
    assert {"sq_error_visit", "sq_error_uniform", "decay"} <= set(res.to_dataframe().columns)


def test_divergence_flag_is_sticky():
    res = run(
        ["td"],
        {"tiny": tiny_mrp()},
        [0.5, 3.0],
        2,
        300,
        num_checkpoints=6,
        divergence_bound=1e3,
        progress=False,
    )
    assert not res.diverged[0, 0, 0].any()
    assert res.diverged[0, 0, 1, :, -1].all()
    assert np.all(np.diff(res.diverged[0, 0, 1].astype(int), axis=-1) >= 0)


def test_dataframe_and_save_load(tmp_path):
    res = run(
        ["td", "qtd"],
        ENVS,
        [0.05, 0.1],
        3,
        100,
        num_checkpoints=4,
        progress=False,
        keep_distributions=True,
    )
    locs, probs = res.final_distributions["qtd/tiny"]
    assert locs.shape == (2, 3, 3, 32) and np.allclose(probs.sum(-1), 1.0)
    np.testing.assert_allclose(locs.mean(-1), res.final_values["tiny"][1], rtol=1e-5)
    df = res.to_dataframe()
    assert {
        "rule",
        "env",
        "step_size",
        "seed",
        "step",
        "value_error",
        "distribution_error",
        "diverged",
    } <= set(df.columns)
    assert len(df) == 2 * 2 * 2 * 3 * res.checkpoints.size
    row = df[
        (df.rule == "qtd")
        & (df.env == "tiny_noisy")
        & (df.step_size == 0.1)
        & (df.seed == 2)
        & (df.step == 100)
    ]
    assert row.value_error.item() == pytest.approx(res.value_error[1, 1, 1, 2, -1])
    loaded = RunResult.load(res.save(tmp_path / "run.npz"))
    np.testing.assert_array_equal(loaded.value_error, res.value_error)
    np.testing.assert_array_equal(loaded.final_distributions["qtd/tiny"][0], locs)
    assert loaded.rules == res.rules and loaded.info["mode"] == "online"
    assert list(tmp_path.iterdir()) == [tmp_path / "run.npz"]  # no temporary left


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"rules": []}, r"at least one rule, got an empty rule list"),
        ({"step_sizes": [0.1, -0.1]}, r"step sizes must be finite and > 0, got -0.1"),
        ({"step_sizes": [[0.1, 0.2]]}, r"step_sizes must be a non-empty 1-D sequence"),
        ({"num_steps": 0}, r"num_steps must be an integer >= 1, got 0"),
        ({"num_seeds": 0}, r"num_seeds must be an integer >= 1, got 0"),
        ({"mode": "sync"}, r"mode must be one of \('online', 'synchronous'\), got 'sync'"),
        ({"rules": ["td_lambda"], "mode": "synchronous"}, r"cannot run in synchronous mode"),
        ({"rules": ["nope"]}, r"unknown rule 'nope'"),
        ({"checkpoints": [5, 3]}, r"checkpoints must increase strictly"),
        ({"envs": {"x": object()}}, r"env 'x' does not implement td_jax.protocols.MRPLike"),
        ({"num_seeds": 2.5}, r"num_seeds must be a positive integer or a list of seed"),
        ({"checkpoints": [2.5, 10]}, r"checkpoints must be whole update counts"),
        ({"step_sizes": [0.1, 0.1]}, r"must be distinct, got \(0.1, inf\) twice"),
        ({"decay": [1.0, 2.0]}, r"decay must have one entry per step size \(1\), got 2"),
        ({"decay": [-1.0]}, r"decay scales must be > 0 \(inf: constant\), got -1.0"),
        ({"divergence_bound": -1}, r"divergence_bound must be a number > 0, got -1"),
        ({"divergence_bound": float("nan")}, r"divergence_bound must be a number > 0, got nan"),
    ],
)
def test_bad_input_fails_before_compiling(kwargs, pattern):
    args = {
        "rules": ["td"],
        "envs": ENVS,
        "step_sizes": [0.1],
        "num_seeds": 2,
        "num_steps": 10,
    } | kwargs
    with pytest.raises(ValueError, match=pattern):
        run(progress=False, **args)


def test_rule_that_cannot_take_the_env_is_reported():
    def kernel(v, r_t, discount_t, v_next, step_size, key):  # expects 2 statistics per state
        return v + step_size * jnp.stack([r_t, r_t]) + v_next[:2] * discount_t

    bad = rules.tabular_rule(kernel, init_stat=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"rule 'bad' cannot take the transitions of env"):
        run({"bad": bad}, ENVS, [0.1], 1, 10, progress=False)


FOUR_DEVICES = textwrap.dedent("""
    import json, sys, numpy as np, jax
    from td_jax.runner import run
    from tests.helpers import tiny_mrp
    assert len(jax.devices()) == int(sys.argv[1]), jax.devices()
    from td_jax import envs
    from td_jax.control import run_controls
    res = run(["td", "qtd"], {"tiny": tiny_mrp(1.0), "tiny_noisy": tiny_mrp(3.0)},
              [0.02, 0.2], 5, 200, num_checkpoints=4, progress=False)
    # Control gives the same numbers whatever the device count, and a second identical call
    # reuses the compiled program (the runner's in-process cache).
    mdps = {"rs": envs.make_mdp("risky_safe"), "rs2": envs.make_mdp("risky_safe", safe_reward=1.1)}
    ctl = run_controls({"td": "td", "qtd": "qtd"}, mdps, [0.1, 0.3], 4, 100, num_checkpoints=4)
    again = run_controls({"td": "td", "qtd": "qtd"}, mdps, [0.1, 0.3], 4, 100, num_checkpoints=4)
    print(json.dumps({"v": res.value_error.tolist(), "d": res.distribution_error.tolist(),
                      "f": res.final_values["tiny"].tolist(),
                      "q": ctl.metrics["q_error"].tolist(), "g": ctl.metrics["value_gap"].tolist(),
                      "again": again.metrics["q_error"].tolist(),
                      "recompiled": again.info["compile_seconds"]}))
""")


def _four_devices_output(count: int) -> dict:
    """FOUR_DEVICES's output with ``count`` virtual CPU devices: in this process where it
    already has exactly that (one CPU device: no second JAX start-up and compile), else in
    a subprocess started with the flag."""
    if count == jax.device_count() and jax.default_backend() == "cpu":
        out = io.StringIO()
        with contextlib.redirect_stdout(out), mock.patch.object(sys, "argv", ["-", str(count)]):
            exec(FOUR_DEVICES, {"__name__": "four_devices"})  # noqa: S102 (the test's own script)
        return json.loads(out.getvalue().strip().splitlines()[-1])
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={count}",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES, str(count)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_virtual_devices_match_one():
    outputs = [_four_devices_output(count) for count in (1, 4)]
    for key in ("v", "d", "f", "q", "g"):
        np.testing.assert_array_equal(np.asarray(outputs[0][key]), np.asarray(outputs[1][key]))
    for out in outputs:
        np.testing.assert_array_equal(np.asarray(out["again"]), np.asarray(out["q"]))
        assert out["recompiled"] < 0.05, out["recompiled"]  # a cache hit: no trace, no compile


def test_saved_results_get_the_permissions_of_other_outputs(tmp_path):
    result = run(["td"], {"tiny": tiny_mrp()}, [0.1], 1, 5, progress=False)
    path = result.save(tmp_path / "r.npz")
    (tmp_path / "plain.txt").write_text("x")
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "plain.txt").st_mode & 0o777
