"""The built-in policy-evaluation tasks, each a factory returning an ``MRP`` table.

Every factory validates its parameters when called (ValueError naming the parameter, the
value and what is allowed) and reports them through ``MRP.config()``, and refuses a task too
large for memory (``check_table_size``) before it allocates anything of the task's size.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from td_jax import rewards as reward_lib
from td_jax import strict
from td_jax.envs.mrp import MRP

RewardSpec = Any  # anything td_jax.rewards.as_reward accepts

# Bytes one outcome (probability, next state, terminal, reward slot) takes while an MRP is
# built: a Python tuple of four numbers in the outcome lists (about 130 bytes), then its
# entries in the four tables and the checked copy of the probabilities (about 25 bytes).
OUTCOME_BYTES = 160
# Dense [S, S] float64 matrices the exact truth holds at once: the continuation matrix,
# I - gamma P, the solve's factorisation, its identity right-hand side and its result.
TRUTH_MATRICES = 5


def truth_bytes(num_states: int, outcomes: int = 1) -> float:
    """Bytes an MRP of ``num_states`` states with ``outcomes`` outcomes a state takes to build
    and to solve exactly (values, variances, absorption laws: dense [S, S] linear algebra)."""
    S = float(num_states)
    return 8.0 * TRUTH_MATRICES * S * S + OUTCOME_BYTES * S * outcomes


def check_table_size(owner: str, num_states: int, outcomes: int = 1) -> None:
    """Refuses, before anything of its size is allocated, an MRP whose outcome tables and
    exact truth cannot fit in memory (``strict.memory_ceiling()``, half of physical memory),
    in one line naming its size and the estimate (as ``mdp_catalog.check_table_size`` for MDPs)."""
    each = f" x {outcomes:,} outcomes" if outcomes > 1 else ""
    strict.check_memory(
        owner, f"an MRP of {num_states:,} states{each} (its outcome tables and exact truth)",
        truth_bytes(num_states, outcomes),
    )  # fmt: skip


def one_hot(n: int, i: int) -> np.ndarray:
    """f64[n]: probability 1 on ``i`` (``np.eye(n)[i]`` without its [n, n] matrix)."""
    out = np.zeros(n)
    out[i] = 1.0
    return out


def build(
    name: str,
    *,
    outcomes: Sequence[Sequence[tuple[float, int, bool, int]]],
    rewards: Sequence[RewardSpec],
    reward_labels: Sequence[str],
    start_probs: Sequence[float],
    gamma: float,
    episodic: bool,
    spec: Sequence[tuple[str, Any]] = (),
    params: dict[str, Any] | None = None,
) -> MRP:
    """Assembles and validates an MRP from per-state outcome lists.

    Args:
      outcomes: for each state, ``(probability, next_state, terminal, reward_slot)`` tuples.
      rewards: one reward spec per slot (see ``td_jax.rewards.as_reward``).
      gamma: in [0, 1], and < 1 for a continuing task; an episodic task must end with
        probability 1 from every state.
    """
    S = len(outcomes)
    strict.check_int(name, "num_states", S, 1)
    check_table_size(name, S, max(len(row) for row in outcomes))
    episodic = strict.check_bool(name, "episodic", episodic)
    gamma = strict.check_finite(name, "gamma", gamma)
    if not 0.0 <= gamma <= 1.0:
        strict.fail(name, "gamma", gamma, "in [0, 1]")
    if not episodic and gamma >= 1.0:
        strict.fail(name, "gamma", gamma, "in [0, 1) for a continuing task")
    width = max(len(row) for row in outcomes)
    probs = np.zeros((S, width))
    nxt = np.zeros((S, width), np.int32)
    term = np.zeros((S, width), bool)
    slot = np.zeros((S, width), np.int32)
    for s, row in enumerate(outcomes):
        # Padding repeats the last outcome with probability 0 (see mrp._categorical).
        row = list(row) + [row[-1]] * (width - len(row))
        for j, (p, n, t, k) in enumerate(row):
            probs[s, j] = p if j < len(outcomes[s]) else 0.0
            nxt[s, j], term[s, j], slot[s, j] = n, t, k
    probs[:] = np.stack([strict.check_simplex(name, f"outcome probabilities of state {s}", row)
                         for s, row in enumerate(probs)])  # fmt: skip
    if np.any((nxt < 0) | (nxt >= S)):
        strict.fail(name, "next states", sorted(set(nxt.ravel().tolist())), f"in [0, {S})")
    if len(reward_labels) != len(rewards):
        strict.fail(name, "reward_labels", list(reward_labels), f"{len(rewards)} labels")
    if np.any((slot < 0) | (slot >= len(rewards))):
        allowed = f"in [0, {len(rewards)}) (one per reward)"
        strict.fail(name, "reward slots", sorted(set(slot.ravel().tolist())), allowed)
    env = MRP(
        gamma=gamma,
        start_probs=strict.check_simplex(name, "start_probs", start_probs, S),
        outcome_probs=probs,
        next_state=nxt,
        terminal=term,
        reward_index=slot,
        rewards=reward_lib.stack([reward_lib.as_reward(r) for r in rewards]),
        params=dict(params or {}),
        name=name,
        num_states=S,
        episodic=episodic,
        spec=tuple(spec),
        reward_labels=tuple(reward_labels),
    )
    if episodic and gamma == 1.0:
        radius = float(np.max(np.abs(np.linalg.eigvals(env.continuation_matrix()))))
        if radius >= 1.0 - 1e-12:
            strict.fail(name, "gamma", gamma, "< 1 unless every episode ends with probability 1")
    return env


def reward_list(owner: str, rewards: Any, n: int, per: str) -> list[RewardSpec]:
    """``rewards`` as a list of ``n`` reward specs; a string or a mapping is one spec, not a
    list of them (``rewards="gaussian"`` would otherwise read as 8 rewards)."""
    allowed = f"{n} rewards" + (f" (one {per})" if per else "")
    if isinstance(rewards, str | bytes | Mapping) or not isinstance(rewards, Sequence | np.ndarray):
        strict.fail(owner, "rewards", rewards, f"a list of {allowed}")
    if len(rewards) != n:
        strict.fail(owner, "rewards", f"{len(rewards)} rewards", allowed)
    return list(rewards)


def bandit(reward: RewardSpec = "dabney_magnitude") -> MRP:
    """One state, gamma = 0: a cue, then a reward; every step is a fresh trial.

    Dabney, Kurth-Nelson, Uchida et al., "A distributional code for value in dopamine-based
    reinforcement learning", Nature 577:671-675 (2020). Each transition has
    s_tm1 = s_t = 0 and discount_t = 0, so the return is the reward itself.
    """
    return build(
        "bandit", outcomes=[[(1.0, 0, True, 0)]], rewards=[reward], reward_labels=("reward",),
        start_probs=[1.0], gamma=0.0, episodic=True,
    )  # fmt: skip


def chain(
    num_states: int = 5,
    reward: RewardSpec = "gaussian",
    rewards: Sequence[RewardSpec] | None = None,
    gamma: float = 0.9,
) -> MRP:
    """N states in a line, 0 -> 1 -> ... -> N-1 -> end; episodes start at 0.

    Step i pays ``rewards[i]`` (or ``reward`` at every step). Deterministic transitions with
    discrete rewards give an exactly enumerable return distribution. A standard test bed
    for multi-step credit assignment (Sutton and Barto 2018, ch. 7; Rowland et al. 2018).
    """
    n = strict.check_int("chain", "num_states", num_states, 1)
    check_table_size("chain", n)
    rewards = [reward] * n if rewards is None else reward_list("chain", rewards, n, "per state")
    outcomes = [[(1.0, min(i + 1, n - 1), i == n - 1, i)] for i in range(n)]
    return build(
        "chain", outcomes=outcomes, rewards=rewards,
        reward_labels=tuple(f"step{i}" for i in range(n)),
        start_probs=one_hot(n, 0), gamma=gamma, episodic=True, spec=(("num_states", n),),
    )  # fmt: skip


def random_walk(
    num_states: int = 5,
    gamma: float = 1.0,
    left_reward: RewardSpec | None = None,
    right_reward: RewardSpec | None = None,
    step_reward: RewardSpec = 0.0,
) -> MRP:
    """Sutton's random walk: start in the centre, step left or right with probability 1/2.

    Sutton (1988), "Learning to predict by the methods of temporal differences"; Sutton and
    Barto (2018), Example 6.2 (5 states, rewards 0 left / +1 right, V = 1/6..5/6) and
    Example 7.1 (19 states, -1 left / +1 right). Defaults follow those by size.
    """
    n = strict.check_int("random_walk", "num_states", num_states, 3)
    if n % 2 == 0:
        strict.fail("random_walk", "num_states", n, "odd (the walk starts in the centre)")
    check_table_size("random_walk", n, 2)
    left = (0.0 if n == 5 else -1.0) if left_reward is None else left_reward
    right = 1.0 if right_reward is None else right_reward
    outcomes = [
        [(0.5, max(i - 1, 0), i == 0, 1 if i == 0 else 0),
         (0.5, min(i + 1, n - 1), i == n - 1, 2 if i == n - 1 else 0)]
        for i in range(n)
    ]  # fmt: skip
    return build(
        "random_walk", outcomes=outcomes, rewards=[step_reward, left, right],
        reward_labels=("step", "left", "right"), start_probs=one_hot(n, n // 2),
        gamma=gamma, episodic=True, spec=(("num_states", n),),
    )  # fmt: skip


def garnet_params(name: str, num_states, branching, seed, mean_scale, means: str) -> tuple:
    """Validated (S, branching, seed, mean_scale) of a Garnet task (MRP or MDP); ``means``
    names what mean_scale is the std of, for the error."""
    S = strict.check_int(name, "num_states", num_states, 1)
    b = strict.check_int(name, "branching", branching, 1)
    if b > S:
        strict.fail(name, "branching", b, f"<= num_states = {S}")
    seed = strict.check_int(name, "seed", seed, 0)
    mean_scale = strict.check_finite(name, "mean_scale", mean_scale)
    if mean_scale < 0:
        strict.fail(name, "mean_scale", mean_scale, f">= 0 (the std of the {means})")
    return S, b, seed, mean_scale


def split_probabilities(rng: np.random.Generator, b: int) -> np.ndarray:
    """``b`` probabilities: [0, 1] split at ``b - 1`` sorted uniform cut points (Garnet)."""
    return np.diff(np.concatenate([[0.0], np.sort(rng.uniform(size=b - 1)), [1.0]]))


def random_mrp(
    num_states: int = 10,
    branching: int = 3,
    gamma: float = 0.9,
    seed: int = 0,
    reward: RewardSpec = "gaussian",
    mean_scale: float = 1.0,
    rewards: Sequence[RewardSpec] | None = None,
    ergodic: bool = True,
) -> MRP:
    """Garnet-style random MRP: S states, ``branching`` successors each, continuing.

    Archibald, McKinnon and Thomas (1995), "On the generation of Markov decision processes";
    Bhatnagar et al. (2009), "Natural actor-critic algorithms" (Garnet). Each state draws
    ``branching`` distinct successors and splits probability at sorted uniform cut points.
    With ``ergodic`` the successor ``(s + 1) mod S`` is always among them, so the stream
    visits every state. State s pays ``reward`` (the noise law) moved to a mean drawn from
    N(0, mean_scale^2), or ``rewards[s]`` when given. Everything is drawn from ``seed``.
    Random MRPs with various reward laws are the test bed of Rowland et al. (ICML 2023).
    """
    name = "random_mrp"
    S, b, seed, mean_scale = garnet_params(
        name, num_states, branching, seed, mean_scale, "state means"
    )
    ergodic = strict.check_bool(name, "ergodic", ergodic)
    check_table_size(name, S, b)
    if rewards is not None:
        rewards = reward_list(name, rewards, S, "per state")
    rng = np.random.default_rng(seed)
    outcomes = []
    for s in range(S):
        if ergodic:
            ring = (s + 1) % S
            others = np.array([x for x in range(S) if x != ring], dtype=np.int64)
            succ = [ring, *rng.choice(others, b - 1, replace=False).tolist()]
        else:
            succ = rng.choice(S, b, replace=False).tolist()
        p = split_probabilities(rng, b)
        outcomes.append([(float(pi), int(n), False, s) for pi, n in zip(p, succ, strict=True)])
    means = mean_scale * rng.normal(size=S)
    if rewards is None:
        noise = reward_lib.as_reward(reward)
        rewards = [reward_lib.shift(noise, m - noise.mean) for m in means]
    return build(
        name, outcomes=outcomes, rewards=rewards,
        reward_labels=tuple(f"state{s}" for s in range(S)), start_probs=np.full(S, 1.0 / S),
        gamma=gamma, episodic=False, spec=(("num_states", S), ("branching", b)),
        params={"seed": seed, "mean_scale": mean_scale, "ergodic": ergodic},
    )  # fmt: skip


def two_state(
    switch: float = 0.25,
    gamma: float = 0.9,
    rewards: Sequence[RewardSpec] = (0.0, ("bernoulli", {"p": 0.5, "value": 1.0})),
) -> MRP:
    """Two states that swap with probability ``switch``; state s pays ``rewards[s]``.

    A minimal continuing MRP of the kind Rowland et al. use to study quantile TD:
    "An Analysis of Quantile Temporal-Difference Learning", JMLR 25 (2024), arXiv:2301.04462.
    The paper's own example parameters could not be checked against the text here, so the
    structure and defaults are ours: with gamma > 0 the return law has countably many atoms
    and QTD's fixed point differs from the true quantiles.
    """
    p = strict.check_probability("two_state", "switch", switch)
    rewards = reward_list("two_state", rewards, 2, "")
    outcomes = [[(1.0 - p, s, False, s), (p, 1 - s, False, s)] for s in (0, 1)]
    return build(
        "two_state", outcomes=outcomes, rewards=rewards, reward_labels=("state0", "state1"),
        start_probs=[0.5, 0.5], gamma=gamma, episodic=False, params={"switch": p},
    )  # fmt: skip


FACTORIES: dict[str, tuple[Callable[..., MRP], str]] = {
    "bandit": (bandit, "one state, gamma = 0: cue then reward (Dabney et al. 2020)"),
    "chain": (chain, "N states in a line, one reward law per step, episodic"),
    "random_walk": (random_walk, "Sutton's 5/19-state random walk, terminal rewards"),
    "random_mrp": (random_mrp, "Garnet random MRP: S states, branching b, continuing"),
    "two_state": (two_state, "two-state continuing MRP for QTD analysis (Rowland et al. 2024)"),
}


def make(name: str, **params: Any) -> MRP:
    """Makes environment ``name`` (see ``available()``/``describe()``) with ``params``."""
    return make_from(FACTORIES, "environment", name, params)


def make_from(factories: dict[str, tuple[Callable, str]], kind: str, name: str, params):
    """``factories[name][0](**params)``, refusing an unknown name or parameter in one line."""
    strict.check_known_name(kind, name, list(factories))
    factory = factories[name][0]
    strict.check_known_kwargs(name, params, inspect.signature(factory).parameters)
    return factory(**params)


def available() -> list[str]:
    return list(FACTORIES)


def describe() -> dict[str, str]:
    return {name: desc for name, (_, desc) in FACTORIES.items()}
