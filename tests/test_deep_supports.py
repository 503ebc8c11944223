"""deep_control's fair comparison: the common configuration's shared settings, C51's
supports from the task against the discounted returns episodes actually produce, and the
suite's refusal of a common configuration that is not common."""

from __future__ import annotations

import dataclasses

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from td_jax.deep import agents, noise, suites, supports
from td_jax.deep.settings import COMMON, NOISES, REFERENCE, DeepSuite

SHARED = [f.name for f in dataclasses.fields(agents.DQNConfig)]  # optimiser, network, replay...


def test_the_common_configuration_gives_every_agent_the_same_settings():
    suite = suites.deep_control()
    grids = suite.grids()
    assert len(set(grids.values())) == 1  # one learning-rate grid, tuned the same way
    for task in suite.tasks():
        configs = {a: dataclasses.asdict(suite.agent_config(a, COMMON, task)) for a in suite.agents}
        dqn = {k: configs["dqn"][k] for k in SHARED}
        for agent, config in configs.items():
            assert {k: config[k] for k in SHARED} == dqn, (agent, task)
        # and the reference configuration is each agent's own: DQN's Adam eps differs
        assert suite.agent_config("dqn", REFERENCE).adam_eps != configs["dqn"]["adam_eps"]


def test_a_common_configuration_that_sets_a_shared_key_per_agent_is_refused():
    with pytest.raises(ValueError, match="agents.c51 sets adam_eps: in a suite with a reference"):
        DeepSuite("probe", "probe", agents={"dqn": {}, "c51": {"adam_eps": 1e-8}},
                  reference={"dqn": {}})  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown agent\(s\) or task\(s\) \['Pong/none'\]"):
        DeepSuite("probe", "probe", reference={"dqn": {}}, reference_tasks=("Pong/none",))


def test_support_arithmetic():
    # Acrobot: returns in [-1 / (1 - gamma), 0]; 10% pad; gaussian std 1 adds 3 / sqrt(1-g^2)
    assert supports.task_support("Acrobot-v1", "none", 0.99) == (-110.0, 10.0)
    sd = 3 / np.sqrt(1 - 0.99**2)
    lo, hi = supports.task_support("CartPole-v1", {"kind": "gaussian", "std": 1.0}, 0.99)
    assert lo == pytest.approx(-10 - sd, abs=0.1) and hi == pytest.approx(110 + sd, abs=0.1)
    with pytest.raises(ValueError, match="no reward range is known for 'Pong'"):
        supports.task_support("Pong", "none", 0.99)


def _policy(env: str, obs: jax.Array, key: jax.Array, smart: bool) -> jax.Array:
    """A random policy, or a competent one: CartPole pushes toward the pole's lean
    (episodes reach the 500-step limit), Acrobot pumps energy with the first joint."""
    if not smart:
        return jax.random.randint(key, obs.shape[:1], 0, 2 if env == "CartPole-v1" else 3)
    if env == "CartPole-v1":
        return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(jnp.int32)
    return jnp.where(obs[:, 4] > 0, 2, 0).astype(jnp.int32)


def _episodes(env_name: str, smart: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rewards and episode ends f32/bool[1500, 16] of 16 environments under the policy."""
    env, params = gymnax.make(env_name)
    n, steps = 16, 1500
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), n), params)

    def body(carry, key):
        obs, state = carry
        k_a, k_s = jax.random.split(key)
        action = _policy(env_name, obs, k_a, smart)
        obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_s, n), state, action, params)  # fmt: skip
        return (obs, state), (reward.astype(jnp.float32), terminated | truncated)

    keys = jax.random.split(jax.random.key(1), steps)
    _, (rewards, dones) = jax.lax.scan(body, (obs, state), keys)
    return np.asarray(rewards), np.asarray(dones)


def _returns_to_go(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """The discounted return from every step to its episode's end (an episode cut by the
    window's end is left out)."""
    g, seen_end, out = np.zeros(rewards.shape[1]), np.zeros(rewards.shape[1], bool), []
    for t in range(rewards.shape[0] - 1, -1, -1):
        seen_end |= dones[t]
        g = rewards[t] + gamma * np.where(dones[t], 0.0, g)
        out.append(g[seen_end])
    return np.concatenate(out)


@pytest.mark.parametrize("env", ["CartPole-v1", "Acrobot-v1"])
def test_the_supports_cover_the_returns(env):
    """Every noise family's support holds the discounted training returns of random and
    competent episodes: all of them without noise, at least 99.5% with it (a t with 3
    degrees of freedom and the sparse reward have tails past any finite support)."""
    suite = suites.deep_control()
    gamma = suite.agent_config("c51", COMMON).gamma
    episodes = {smart: _episodes(env, smart) for smart in (False, True)}
    for key in suite.noises:
        v_min, v_max = suite.task_support(f"{env}/{key}", gamma)
        for smart, (rewards, dones) in episodes.items():
            noisy = np.asarray(noise.make_noiser(NOISES[key])(jax.random.key(2), rewards))
            g = _returns_to_go(noisy, dones, gamma)
            assert g.size > 1000
            inside = np.mean((g >= v_min) & (g <= v_max))
            assert inside >= (1.0 if key == "none" else 0.995), (
                key,
                smart,
                inside,
                g.min(),
                g.max(),
            )
        # and the support is the task's, not CleanRL's symmetric [-100, 100]
        assert (v_min < 0 < v_max) and abs(v_max + v_min) > 50
