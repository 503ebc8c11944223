"""Ground truth for MRPs: values by a linear solve, return laws exactly or with a W1 bound.

Values: ``V = (I - gamma P_cont)^-1 r_bar`` (numpy float64), never by simulation.

Return distributions, first method that applies (``ReturnTruth.method``):
  * ``exact-one-step``: gamma = 0 or every outcome ends the episode; the return is the
    reward of one transition, a finite mixture of the reward laws (Dabney's bandit).
  * ``exact-absorption``: gamma = 1 and every non-terminal transition pays exactly 0 (the
    random walk); the return is the terminal reward, a mixture weighted by absorption
    probabilities from a linear solve.
  * ``exact-degenerate``: the return variance (exact, by a linear solve on second moments)
    is zero; the return is the point mass at V.
  * ``exact-enumeration``: finite horizon (acyclic continuation graph) and discrete rewards;
    every return atom is enumerated (chains).
  * ``lattice-dp``: distributional dynamic programming on a fine lattice (Rowland et al.,
    AISTATS 2018: the Cramer projection of ``R + gamma G'``), run coarse-to-fine. Each
    iteration adds at most the coupling cost of its projections, clipping and FFT noise,
    all computed, and shrinks the previous error by gamma, so the W1 bound
    ``E_{k+1} = e_{k+1} + gamma P_cont E_k`` holds at every iteration from
    ``E_0 = E|G - c|``; its final value is the stated error (``ReturnTruth.errors``).

All exact methods have error 0. A table of N quantile atoms adds its own quantisation
error, computed exactly (``td_jax.rewards.exact.quantization_w1``).
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any

import jax
import numpy as np

from td_jax.envs import lattice
from td_jax.memo import SharedLRU
from td_jax.rewards import exact

MAX_EXACT_ATOMS = 200_000  # enumeration gives up above this many atoms per state
_CACHE = SharedLRU(64)  # the suites' unit threads share it


def values(env: Any) -> np.ndarray:
    """f64[S]: the exact solution of the Bellman equation."""
    p_cont = env.continuation_matrix()
    gamma = float(np.asarray(env.gamma))
    return np.linalg.solve(np.eye(env.num_states) - gamma * p_cont, env.expected_rewards())


def visit_distribution(env: Any) -> np.ndarray:
    """f64[S]: the stationary distribution of the online stream's state process.

    The stream never stops (episodes restart from ``start_probs``), so this is the long-run
    fraction of updates made at each state: the weighting of TD theory (Tsitsiklis and Van
    Roy 1997). Solved exactly as the left null vector of ``P - I`` with sum 1; for a chain
    with several recurrent classes (not built in) it is the one reached from the start.
    """
    p = env.transition_matrix()
    n = p.shape[0]
    # d P = d, sum d = 1, restricted to what the start distribution reaches: the average
    # of the start law propagated for many steps solves it for any recurrent structure.
    a = np.vstack([p.T - np.eye(n), np.ones((1, n))])
    b = np.concatenate([np.zeros(n), [1.0]])
    d, *_ = np.linalg.lstsq(a, b, rcond=None)
    if np.min(d) < -1e-9 or not np.allclose(d @ p, d, atol=1e-9):
        raise ValueError(f"{env.name}: the stream has no unique stationary distribution")
    d = np.maximum(d, 0.0)
    return d / d.sum()


def return_variances(env: Any) -> np.ndarray:
    """f64[S]: the exact variance of each state's return (inf where a reward has none)."""
    probs = np.asarray(env.outcome_probs, np.float64)
    cont = (probs > 0) & ~np.asarray(env.terminal, bool)
    stds = _return_stds(
        env.reward_laws(), probs, np.asarray(env.next_state, np.int64), cont,
        np.asarray(env.reward_index, np.int64), float(np.asarray(env.gamma)),
        values(env), env.continuation_matrix(),
    )  # fmt: skip
    return np.square(stds)


class ReturnTruth:
    """Per-state true return laws with a W1 error bound each (0 where exact)."""

    def __init__(self, laws: list[exact.Law], errors: np.ndarray, method: str):
        self.laws, self.errors, self.method = laws, np.asarray(errors, np.float64), method
        self._tables: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def distribution(self, state: int, num_atoms: int) -> tuple[np.ndarray, np.ndarray]:
        law = self.laws[state]
        if isinstance(law, exact.Atoms):
            return law.locs.copy(), law.probs.copy()
        return law.quantile(exact.midpoint_levels(num_atoms)), np.full(num_atoms, 1.0 / num_atoms)

    def _table(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if n < 1:
            raise ValueError(f"num_atoms must be >= 1, got {n}")
        if n not in self._tables:
            locs, probs = np.zeros((len(self.laws), n)), np.zeros((len(self.laws), n))
            errs = self.errors.copy()
            for s, law in enumerate(self.laws):
                if isinstance(law, exact.Atoms) and law.size <= n:
                    locs[s, : law.size], locs[s, law.size :] = law.locs, law.locs[-1]
                    probs[s, : law.size] = law.probs
                else:
                    locs[s] = law.quantile(exact.midpoint_levels(n))
                    probs[s] = 1.0 / n
                    errs[s] += exact.quantization_w1(law, n)
            self._tables[n] = (locs, probs, errs)
        return self._tables[n]

    def table(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        locs, probs, _ = self._table(n)
        return locs.copy(), probs.copy()

    def table_error(self, n: int) -> float:
        return float(self._table(n)[2].max())

    def quantiles(self, taus: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(taus, np.float64))
        return np.stack([np.asarray(law.quantile(t)) for law in self.laws])

    def expectiles(self, taus: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(taus, np.float64))
        return np.stack([np.asarray(law.expectile(t)) for law in self.laws])

    def bounds(self, delta: float) -> tuple[float, float]:
        # Each state's return lies in [q(delta/2), q(1 - delta/2)] w.p. >= 1 - delta. For
        # approximate (lattice) laws, levels delta/4 and a pad of the W1 bound add margin.
        level = 0.5 * delta if not self.errors.any() else 0.25 * delta
        q = self.quantiles([level, 1.0 - level])
        pad = float(self.errors.max())
        return float(q[:, 0].min()) - pad, float(q[:, 1].max()) + pad


def _fingerprint(env: Any) -> str:
    h = hashlib.sha1()
    h.update(repr((env.name, env.num_states, env.episodic, env.spec)).encode())
    for leaf in jax.tree.leaves(env):
        arr = np.asarray(leaf)
        h.update(repr((arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def return_truth(env: Any) -> ReturnTruth:
    """The true return laws of ``env`` (cached by the env's content)."""
    key = _fingerprint(env)
    truth = _CACHE.get(key)
    if truth is None:
        truth = _compute(env)
        _CACHE.put(key, truth)
    return truth


def _compute(env: Any) -> ReturnTruth:
    S = env.num_states
    probs = np.asarray(env.outcome_probs, np.float64)
    nxt = np.asarray(env.next_state, np.int64)
    term = np.asarray(env.terminal, bool)
    slot = np.asarray(env.reward_index, np.int64)
    gamma = float(np.asarray(env.gamma))
    laws = env.reward_laws()
    used = probs > 0
    cont = used & ~term
    p_cont = env.continuation_matrix()

    def slot_mix(weights: dict[int, float]) -> exact.Law:
        return exact.mixture([laws[k] for k in weights], list(weights.values()))

    if gamma == 0.0 or not cont.any():
        out = []
        for s in range(S):
            w: dict[int, float] = collections.defaultdict(float)
            for j in np.flatnonzero(used[s]):
                w[slot[s, j]] += probs[s, j]
            out.append(slot_mix(w))
        return ReturnTruth(out, np.zeros(S), "exact-one-step")

    pays_zero = all(_is_zero(laws[k]) for k in np.unique(slot[cont]))
    if gamma == 1.0 and pays_zero:
        absorb = np.linalg.solve(np.eye(S) - p_cont, np.eye(S))  # expected visits
        out = []
        for s in range(S):
            w = collections.defaultdict(float)
            for s2 in range(S):
                for j in np.flatnonzero(used[s2] & term[s2]):
                    w[slot[s2, j]] += absorb[s, s2] * probs[s2, j]
            out.append(slot_mix(w))
        return ReturnTruth(out, np.zeros(S), "exact-absorption")

    v = values(env)
    # Degenerate: rewards without variance and one-step targets r + gamma V(s') that agree
    # across outcomes; then G(s) = V(s) almost surely (by induction on the steps).
    means = np.array([law.mean for law in laws])[slot]
    target = means + gamma * np.where(cont, v[nxt], 0.0)
    spread = np.where(used, np.abs(target - v[:, None]), 0.0)
    no_noise = all(laws[k].variance == 0.0 for k in np.unique(slot[used]))
    if no_noise and np.all(spread <= 1e-12 * (1.0 + np.abs(v)[:, None])):
        return ReturnTruth([exact.Atoms([x], [1.0]) for x in v], np.zeros(S), "exact-degenerate")
    sd = _return_stds(laws, probs, nxt, cont, slot, gamma, v, p_cont)

    enumerated = _enumerate(laws, probs, nxt, term, slot, gamma)
    if enumerated is not None:
        return ReturnTruth(enumerated, np.zeros(S), "exact-enumeration")
    locs, errors = lattice.solve(laws, probs, nxt, term, slot, gamma, v, sd, p_cont)
    return ReturnTruth(locs, errors, "lattice-dp")


def _is_zero(law: exact.Law) -> bool:
    return isinstance(law, exact.Atoms) and law.size == 1 and law.locs[0] == 0.0


def _return_stds(laws, probs, nxt, cont, slot, gamma, v, p_cont) -> np.ndarray:
    """Exact return std per state from E[G^2] = E[R^2] + 2 gamma E[R] V' + gamma^2 E[G'^2]."""
    m = np.array([law.mean for law in laws])[slot]
    var = np.array([law.variance for law in laws])[slot]
    if not np.all(np.isfinite(var[probs > 0])):
        return np.full(len(v), np.inf)
    vn = np.where(cont, v[nxt], 0.0)
    b = (probs * (var + m**2 + 2.0 * gamma * m * vn)).sum(axis=1)
    m2 = np.linalg.solve(np.eye(len(v)) - gamma**2 * p_cont, b)
    return np.sqrt(np.maximum(m2 - v**2, 0.0))


def _enumerate(laws, probs, nxt, term, slot, gamma) -> list[exact.Law] | None:
    """Exact atoms by backward induction over an acyclic continuation graph, else None."""
    S = probs.shape[0]
    used = probs > 0
    if not all(isinstance(laws[k], exact.Atoms) for k in np.unique(slot[used])):
        return None
    # Successors before predecessors (Kahn's algorithm on the continuation graph).
    succ = [set(nxt[s, used[s] & ~term[s]].tolist()) for s in range(S)]
    pred: list[list[int]] = [[] for _ in range(S)]
    for s in range(S):
        for t in succ[s]:
            pred[t].append(s)
    waiting = [len(succ[s]) for s in range(S)]
    order = [s for s in range(S) if waiting[s] == 0]
    for t in order:  # grows while iterating
        for s in pred[t]:
            waiting[s] -= 1
            if waiting[s] == 0:
                order.append(s)
    if len(order) < S:  # a cycle: infinitely many paths
        return None
    result: dict[int, exact.Atoms] = {}
    for s in order:  # successors first
        parts, weights = [], []
        for j in np.flatnonzero(used[s]):
            r = laws[slot[s, j]]
            if term[s, j]:
                parts.append(r)
            else:
                g = result[int(nxt[s, j])]
                if r.size * g.size > MAX_EXACT_ATOMS:
                    return None
                locs = (r.locs[:, None] + gamma * g.locs[None, :]).reshape(-1)
                parts.append(exact.Atoms(locs, np.outer(r.probs, g.probs).reshape(-1)))
            weights.append(probs[s, j])
        law = exact.mixture(parts, weights)
        if law.size > MAX_EXACT_ATOMS:
            return None
        result[s] = law
    return [result[s] for s in range(S)]
