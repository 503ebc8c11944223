"""``tabular_mdp`` and the built-in control tasks, each returning an ``MDP``.

Every factory validates its parameters (ValueError naming the parameter, the value and what
is allowed) and reports them through ``MDP.config()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from td_jax import rewards as reward_lib
from td_jax import strict
from td_jax.envs.catalog import garnet_params, make_from, split_probabilities
from td_jax.envs.mdp import MDP

RewardSpec = Any  # anything td_jax.rewards.as_reward accepts


def tabular_mdp(
    transitions: Any,
    rewards: Sequence[Sequence[RewardSpec]],
    gamma: float,
    start_probs: Sequence[float] | None = None,
    *,
    name: str = "tabular_mdp",
    spec: Sequence[tuple[str, Any]] = (),
    params: dict[str, Any] | None = None,
) -> MDP:
    """An MDP from transition probabilities and one reward spec per (state, action).

    Args:
      transitions: f[S, A, S] row-stochastic probabilities (a continuing task), or outcome
        lists: ``transitions[s][a]`` a list of ``(probability, next_state)`` or
        ``(probability, next_state, terminal)`` tuples (a terminal outcome ends the episode).
      rewards: ``rewards[s][a]``, the law of the reward paid on leaving s under a (any spec
        ``td_jax.rewards.as_reward`` accepts: a family name, a number, a mapping...).
      gamma: in [0, 1).
      start_probs: f[S] start-state distribution (default uniform).

    Raises:
      ValueError: in one line naming the field, the value and what is allowed: a next
        state that is not an integer in [0, S) (1.7, None, "1", True), a terminal flag that
        is not True or False ("false", 0), or an MDP whose exact truth (``truth_bytes``)
        exceeds ``strict.memory_ceiling()``, half of physical memory.
    """
    outcomes = _outcome_lists(name, transitions)
    S, A = len(outcomes), len(outcomes[0])
    check_table_size(name, S, A)
    gamma = strict.check_finite(name, "gamma", gamma)
    if not 0.0 <= gamma < 1.0:
        strict.fail(name, "gamma", gamma, "in [0, 1) (gamma = 1 would need every policy to end)")
    if isinstance(rewards, str | bytes | dict) or len(rewards) != S:
        strict.fail(name, "rewards", _count(rewards), f"{S} rows (one per state) of {A} specs")
    for s, row in enumerate(rewards):
        if isinstance(row, str | bytes | dict) or len(row) != A:
            strict.fail(name, f"rewards[{s}]", _count(row), f"{A} specs (one per action)")
    width = max(len(o) for row in outcomes for o in row)
    probs = np.zeros((S, A, width))
    nxt = np.zeros((S, A, width), np.int32)
    term = np.zeros((S, A, width), bool)
    for s in range(S):
        for a in range(A):
            row = outcomes[s][a]
            p = strict.check_simplex(name, f"transition probabilities of (s={s}, a={a})",
                               [o[0] for o in row])  # fmt: skip
            padded = list(row) + [row[-1]] * (width - len(row))  # probability-0 padding
            for j, o in enumerate(padded):
                probs[s, a, j] = p[j] if j < len(row) else 0.0
                where = f"transitions[{s}][{a}][{j}]"
                nxt[s, a, j] = _next_state(name, where, o[1], S)
                if len(o) > 2:  # JSON true / false; not 0, 1 or "false"
                    term[s, a, j] = strict.check_bool(name, f"terminal flags ({where}[2])", o[2])
    slots = np.arange(S * A, dtype=np.int32).reshape(S, A)
    starts = np.full(S, 1.0 / S) if start_probs is None else start_probs
    return MDP(
        gamma=gamma,
        start_probs=strict.check_simplex(name, "start_probs", starts, S),
        outcome_probs=probs,
        next_state=nxt,
        terminal=term,
        reward_index=np.repeat(slots[:, :, None], width, axis=2),
        rewards=reward_lib.stack([reward_lib.as_reward(r) for row in rewards for r in row]),
        params=dict(params or {}),
        name=name,
        num_states=S,
        num_actions=A,
        episodic=bool(term.any()),
        spec=(("num_states", S), ("num_actions", A), *tuple(spec)),
        reward_labels=tuple(f"s{s}a{a}" for s in range(S) for a in range(A)),
    )


def _next_state(owner: str, where: str, value: Any, num_states: int) -> int:
    """An outcome's next state: an integer (not 1.7, True or "1") in [0, num_states)."""
    x = strict.integer(value)
    if x is None or not 0 <= x < num_states:
        strict.fail(owner, f"next states ({where}[1])", value, f"integers in [0, {num_states})")
    return x


def truth_bytes(num_states: int, num_actions: int) -> float:
    """Bytes the exact truth of an MDP takes (float64 dense tables): the continuation tensor
    [S, A, S] and, for each policy evaluation, about four [S, S] matrices (the induced
    chain, I - gamma P, the solve's factorisation and the identity)."""
    return 8.0 * num_states * num_states * (num_actions + 4)


def check_table_size(owner: str, num_states: int, num_actions: int) -> None:
    """Refuses, before anything is built, an MDP whose exact truth cannot fit in memory
    (``strict.memory_ceiling()``, half of physical memory) in one line."""
    strict.check_memory(
        owner, f"an MDP of {num_states:,} states x {num_actions:,} actions (its exact truth)",
        truth_bytes(num_states, num_actions),
    )  # fmt: skip


def _count(x: Any) -> str:
    return f"{len(x)} entries" if isinstance(x, Sequence | np.ndarray) else repr(x)


def _numeric_rows(x: Any) -> bool:
    """Whether nested lists hold numbers at depth 3 (an f[S, A, S] array as lists)."""
    try:
        return isinstance(x[0][0][0], int | float | np.integer | np.floating)
    except (TypeError, IndexError, KeyError):
        return False


def _outcome_lists(name: str, transitions: Any) -> list[list[list[tuple]]]:
    """``transitions`` as ``[s][a]`` lists of (probability, next_state[, terminal])."""
    if isinstance(transitions, np.ndarray) or _numeric_rows(transitions):
        arr = np.asarray(transitions, np.float64)
        if arr.ndim != 3 or arr.shape[0] != arr.shape[2] or 0 in arr.shape:
            strict.fail(name, "transitions", f"shape {arr.shape}", "f[S, A, S] or outcome lists")
        return [
            [[(float(arr[s, a, t]), t) for t in range(arr.shape[2]) if arr[s, a, t] != 0.0]
             or [(float(arr[s, a, 0]), 0)] for a in range(arr.shape[1])]
            for s in range(arr.shape[0])
        ]  # fmt: skip
    if not isinstance(transitions, Sequence) or not transitions:
        strict.fail(name, "transitions", type(transitions).__name__, "f[S, A, S] or outcome lists")
    A = len(transitions[0])
    for s, row in enumerate(transitions):
        if not isinstance(row, Sequence) or len(row) != A or A == 0:
            strict.fail(name, f"transitions[{s}]", _count(row), f"{A} actions' outcome lists")
        for a, outs in enumerate(row):
            ok = (
                isinstance(outs, Sequence)
                and outs
                and all(isinstance(o, Sequence) and len(o) in (2, 3) for o in outs)
            )
            if not ok:
                allowed = "a non-empty list of (probability, next_state[, terminal])"
                strict.fail(name, f"transitions[{s}][{a}]", outs, allowed)
    return [[list(outs) for outs in row] for row in transitions]


def risky_safe(
    num_states: int = 5,
    safe_reward: float = 1.0,
    risky_reward: RewardSpec = ("student_t", {"df": 2.5, "loc": 1.2, "scale": 2.0}),
    gamma: float = 0.9,
    order_seed: int | None = None,
) -> MDP:
    """A chain of N decisions, each between a safe and a risky action; episodes start at 0.

    At every state both actions move one step right (the last state's moves end the episode): the
    safe action pays ``safe_reward`` for sure, the risky one a heavy-tailed reward with a
    higher mean (default Student t, df 2.5, mean 1.2, scale 2), so the risky action is
    optimal for the mean while its return distribution is the widest. The classic setting
    where a mean-greedy distributional learner must still pick by the mean (Bellemare,
    Dabney and Rowland 2023, "Distributional Reinforcement Learning", ch. 7).

    ``order_seed``: None puts the safe action at index 0 in every state; an integer draws
    each state's order from it, so the optimal action's index varies across states and a
    learner's tie rule cannot favour it (SCIENCE.md section 9).
    """
    n = strict.check_int("risky_safe", "num_states", num_states, 1)
    check_table_size("risky_safe", n, 2)
    safe = strict.check_finite("risky_safe", "safe_reward", safe_reward)
    outcomes = [[[(1.0, min(s + 1, n - 1), s == n - 1)]] * 2 for s in range(n)]
    params: dict[str, Any] = {"safe_reward": safe}
    if order_seed is None:
        rewards = [[safe, risky_reward]] * n
    else:
        seed = strict.check_int("risky_safe", "order_seed", order_seed, 0)
        flips = np.random.default_rng(seed).random(n) < 0.5
        rewards = [[risky_reward, safe] if f else [safe, risky_reward] for f in flips]
        params["order_seed"] = seed
    return tabular_mdp(
        outcomes, rewards, gamma, np.eye(n)[0], name="risky_safe", params=params,
    )  # fmt: skip


def garnet_mdp(
    num_states: int = 10,
    num_actions: int = 3,
    branching: int = 3,
    gamma: float = 0.9,
    seed: int = 0,
    reward: RewardSpec = "gaussian",
    mean_scale: float = 1.0,
) -> MDP:
    """Garnet random MDP: each (s, a) has ``branching`` distinct successors, continuing.

    Archibald, McKinnon and Thomas (1995); Bhatnagar et al. (2009). Each (s, a) draws its
    successors and splits probability at sorted uniform cut points; it pays ``reward`` (the
    noise law) moved to a mean drawn from N(0, mean_scale^2). Everything from ``seed``.
    """
    name = "garnet_mdp"
    S, b, seed, mean_scale = garnet_params(
        name, num_states, branching, seed, mean_scale, "(s, a) means"
    )
    A = strict.check_int(name, "num_actions", num_actions, 1)
    check_table_size(name, S, A)
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(S):
        row = []
        for _ in range(A):
            succ = rng.choice(S, b, replace=False)
            p = split_probabilities(rng, b)
            row.append([(float(pi), int(t)) for pi, t in zip(p, succ, strict=True)])
        outcomes.append(row)
    noise = reward_lib.as_reward(reward)
    means = mean_scale * rng.normal(size=(S, A))
    rewards = [[reward_lib.shift(noise, m - noise.mean) for m in row] for row in means]
    return tabular_mdp(
        outcomes, rewards, gamma, name=name, spec=(("branching", b),),
        params={"seed": seed, "mean_scale": mean_scale},
    )  # fmt: skip


GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def gridworld(
    size: int = 4,
    slip: float = 0.1,
    goal_reward: RewardSpec = 1.0,
    step_reward: RewardSpec = ("gaussian", {"mean": -0.05, "std": 0.1}),
    gamma: float = 0.95,
) -> MDP:
    """A size x size grid; start top-left, goal bottom-right.

    Four actions (up, right, down, left); with probability ``slip`` the move goes in one
    of the three other directions instead, uniformly (backwards included: a slippery
    version of Sutton and Barto's grid of Example 4.1, not Russell and Norvig's sideways
    slip). Moving into a wall stays put. Every step pays
    ``step_reward``; at the goal, any action pays ``goal_reward`` and ends the episode
    (rewards are per (state, action), so the goal pays on leaving).
    """
    name = "gridworld"
    n = strict.check_int(name, "size", size, 2)
    check_table_size(name, n * n, 4)
    slip = strict.check_probability(name, "slip", slip)
    goal = n * n - 1

    def move(s: int, d: int) -> int:
        r, c = divmod(s, n)
        r2, c2 = r + GRID_MOVES[d][0], c + GRID_MOVES[d][1]
        return r2 * n + c2 if 0 <= r2 < n and 0 <= c2 < n else s

    outcomes = []
    for s in range(n * n):
        row = []
        for a in range(4):
            if s == goal:
                row.append([(1.0, 0, True)])
                continue
            dist: dict[int, float] = {}
            for d in range(4):
                t = move(s, d)
                dist[t] = dist.get(t, 0.0) + (1.0 - slip if d == a else slip / 3.0)
            row.append([(p, t) for t, p in dist.items() if p > 0])
        outcomes.append(row)
    rewards = [[goal_reward if s == goal else step_reward] * 4 for s in range(n * n)]
    return tabular_mdp(
        outcomes, rewards, gamma, np.eye(n * n)[0], name=name, spec=(("size", n),),
        params={"slip": slip},
    )  # fmt: skip


FACTORIES: dict[str, tuple[Callable[..., MDP], str]] = {
    "risky_safe": (risky_safe, "N decisions: a certain reward vs a heavy-tailed higher mean"),
    "garnet_mdp": (garnet_mdp, "Garnet random MDP: S states, A actions, branching b, continuing"),
    "gridworld": (gridworld, "stochastic (slippery) grid, goal bottom-right, episodic"),
}


def make_mdp(name: str, **params: Any) -> MDP:
    """Makes control task ``name`` (see ``available_mdps()``) with ``params``."""
    return make_from(FACTORIES, "MDP", name, params)


def available_mdps() -> list[str]:
    return list(FACTORIES)


def describe_mdps() -> dict[str, str]:
    return {name: desc for name, (_, desc) in FACTORIES.items()}
