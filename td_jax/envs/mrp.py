"""``MRP``: one pytree type for every tabular policy-evaluation task.

A task is an outcome model: from state ``s`` one of ``B`` outcomes ``j`` happens with
probability ``outcome_probs[s, j]``; it leads to ``next_state[s, j]``, pays a reward drawn
from ``rewards[reward_index[s, j]]`` and may end the episode (``terminal[s, j]``). A bandit,
a chain, a random walk and a Garnet MRP are all tables of this one shape, so tasks with the
same ``num_states`` (and table widths) stack leaf-wise into a batched axis and one program,
whatever their reward families.

Episodic tasks never stop the stream: at a boundary ``discount_t = 0`` and ``s_t`` is a
fresh start state drawn from ``start_probs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from td_jax.rewards import Law, RewardDistribution
from td_jax.rewards import distribution as reward_lib
from td_jax.rewards import sampling as smp
from td_jax.types import Transition

if TYPE_CHECKING:
    from td_jax.envs.truth import ReturnTruth

DEFAULT_TABLE_ATOMS = 1000
STEP_WORDS = 4  # random words per transition: outcome, reward (two), restart state


def _categorical(u: jax.Array, probs: jax.Array) -> jax.Array:
    """Index drawn from a probability vector by inverse CDF at the uniform ``u``.

    Padded (zero-probability) entries repeat the last real one, so an index pushed past the
    end by f32 rounding of the cumulative sum stays valid.
    """
    idx = jnp.searchsorted(jnp.cumsum(probs), u, side="right", method="compare_all")
    return jnp.minimum(idx, probs.shape[-1] - 1).astype(jnp.int32)


def _take(table: Any, index: jax.Array) -> jax.Array:
    """``table[index]`` for a small constant table, gathered one column at a time.

    Same values as ``table[index]``. XLA on CPU compiles a gather of whole rows
    (``[K, W] -> [W]`` per stream) into a scalar loop that also drags the sampler's
    transcendental work fused behind it out of vector code (about 3x slower per step for
    a Gaussian reward, td_jax/throughput); a gather of single elements vectorises, and the
    columns a sampler does not read are dropped by the compiler.
    """
    table = jnp.asarray(table)
    if table.ndim == 1:
        return table[index]
    flat = table.reshape(table.shape[0], -1)
    columns = [flat[:, w][index] for w in range(flat.shape[1])]
    return jnp.stack(columns, axis=-1).reshape(*np.shape(index), *table.shape[1:])


def _uniforms(key: jax.Array, n: int) -> jax.Array:
    # One threefry call for all of a step's randomness: cheaper to run and to compile than
    # a split followed by one draw per use.
    return smp.unit(jax.random.bits(key, (n,), jnp.uint32))


@struct.dataclass
class TabularTask:
    """The tables of a tabular task, shared by ``MRP`` and ``MDP`` (which has an action axis
    after the state axis in every per-outcome table, and ``num_actions``).

    Attributes:
      gamma: float discount (a leaf, so that gamma can be a batched axis too).
      start_probs: f64[S] start-state distribution.
      outcome_probs: f64[S, B] probability of each outcome.
      next_state: int32[S, B] state an outcome leads to (ignored when it is terminal).
      terminal: bool[S, B] whether an outcome ends the episode.
      reward_index: int32[S, B] reward slot paid by an outcome.
      rewards: RewardDistribution with leaves stacked over [num_slots].
      params: dict of numeric construction parameters (seed, p...), reported by config().
      name, num_states, episodic, spec (structural parameters), reward_labels: static.
    """

    gamma: Any
    start_probs: Any
    outcome_probs: Any
    next_state: Any
    terminal: Any
    reward_index: Any
    rewards: RewardDistribution
    params: dict[str, Any]
    name: str = struct.field(pytree_node=False)
    num_states: int = struct.field(pytree_node=False)
    episodic: bool = struct.field(pytree_node=False)
    spec: tuple[tuple[str, Any], ...] = struct.field(pytree_node=False)
    reward_labels: tuple[str, ...] = struct.field(pytree_node=False)


@struct.dataclass
class MRP(TabularTask):
    """A tabular Markov reward process (policy-evaluation task); its tables are
    ``TabularTask``'s."""

    # -- stream (JAX) ---------------------------------------------------------------------

    def reset(self, key: jax.Array) -> jax.Array:
        """A start state, int32[]."""
        return self._start(_uniforms(key, 1)[0])

    def _start(self, u: jax.Array) -> jax.Array:
        return _categorical(u, jnp.asarray(self.start_probs, jnp.float32))

    def step(self, key: jax.Array, s: jax.Array) -> Transition:
        """One transition from state ``s``; all fields scalars (int32, f32, f32, int32)."""
        return self.step_from_bits(self.step_bits(key), s)

    @property
    def step_words(self) -> int:
        """Random words one transition takes (``step_from_bits``)."""
        return STEP_WORDS

    def step_bits(self, key: jax.Array) -> jax.Array:
        """u32[4]: the random words ``step(key, s)`` consumes, whatever ``s``."""
        return jax.random.bits(key, (STEP_WORDS,), jnp.uint32)

    def step_from_bits(self, bits: jax.Array, s: jax.Array) -> Transition:
        """``step`` given its random words: ``step(key, s) == step_from_bits(step_bits(key), s)``.

        The runner draws each step's words straight from a stream's key
        (``runner.keys.counter_bits``) and feeds them here.
        """
        chex.assert_shape(bits, (STEP_WORDS,))
        s = jnp.asarray(s, jnp.int32)
        chex.assert_rank(s, 0)
        u = smp.unit(bits)  # outcome, reward (two), restart state
        j = _categorical(u[0], jnp.asarray(self.outcome_probs, jnp.float32)[s])
        nxt = jnp.asarray(self.next_state, jnp.int32)[s, j]
        term = jnp.asarray(self.terminal, bool)[s, j]
        slot = jnp.asarray(self.reward_index, jnp.int32)[s, j]
        reward = jax.tree.map(lambda x: _take(x, slot), self.rewards)
        r_t = reward.from_uniforms(u[1], u[2], reward_lib.static_kernel(self.rewards))
        s_t = jnp.where(term, self._start(u[3]), nxt)
        discount_t = jnp.where(term, 0.0, jnp.asarray(self.gamma, jnp.float32))
        return Transition(
            s_tm1=s,
            r_t=r_t.astype(jnp.float32),
            discount_t=discount_t.astype(jnp.float32),
            s_t=s_t.astype(jnp.int32),
        )

    # -- structure (numpy) ----------------------------------------------------------------

    def _np(self, name: str) -> np.ndarray:
        x = np.asarray(getattr(self, name))
        if name != "start_probs" and x.ndim != 2:
            raise ValueError(
                f"{self.name}: truth accessors need a single env, got a stacked one "
                f"({name} has shape {x.shape})"
            )
        return x

    def continuation_matrix(self) -> np.ndarray:
        """f64[S, S]: P(next state = s' and the episode goes on | s) (substochastic)."""
        p = self._np("outcome_probs") * ~self._np("terminal").astype(bool)
        out = np.zeros((self.num_states, self.num_states))
        rows = np.repeat(np.arange(self.num_states), p.shape[1])
        np.add.at(out, (rows, self._np("next_state").reshape(-1)), p.reshape(-1))
        return out

    def termination_probs(self) -> np.ndarray:
        """f64[S]: probability that a step from s ends the episode."""
        return (self._np("outcome_probs") * self._np("terminal").astype(bool)).sum(axis=1)

    def transition_matrix(self) -> np.ndarray:
        """f64[S, S]: law of ``s_t`` given ``s_tm1`` in the stream (restarts included)."""
        return self.continuation_matrix() + np.outer(
            self.termination_probs(), np.asarray(self.start_probs, np.float64)
        )

    def reward_slot(self, slot: int) -> RewardDistribution:
        return jax.tree.map(lambda x: np.asarray(x)[slot], self.rewards)

    def reward_laws(self) -> list[Law]:
        return [self.reward_slot(i).law() for i in range(len(self.reward_labels))]

    def expected_rewards(self) -> np.ndarray:
        """f64[S]: E[r_t | s_tm1 = s]."""
        means = np.array([law.mean for law in self.reward_laws()])
        return (self._np("outcome_probs") * means[self._np("reward_index")]).sum(axis=1)

    # -- ground truth ---------------------------------------------------------------------

    def true_values(self) -> np.ndarray:
        """f64[S]: V = (I - gamma P_cont)^-1 r_bar, by an exact linear solve."""
        from td_jax.envs import truth

        return truth.values(self)

    def visit_distribution(self) -> np.ndarray:
        """f64[S]: long-run fraction of the online stream's updates made at each state."""
        from td_jax.envs import truth

        self._np("outcome_probs")
        return truth.visit_distribution(self)

    def return_variances(self) -> np.ndarray:
        """f64[S]: Var[G | s_0 = s], exact (second moments by a linear solve)."""
        from td_jax.envs import truth

        self._np("outcome_probs")
        return truth.return_variances(self)

    def truth(self) -> ReturnTruth:
        """The per-state true return laws, their W1 error bounds and the method used."""
        from td_jax.envs import truth

        self._np("outcome_probs")  # refuses a stacked env with a clear message
        return truth.return_truth(self)

    def true_distribution(
        self, state: int, num_atoms: int = DEFAULT_TABLE_ATOMS
    ) -> tuple[np.ndarray, np.ndarray]:
        """(locs, probs) of the true return distribution of ``state`` as sorted atoms.

        Exact atoms where the law is finite; the dynamic-programming lattice where it was
        computed on one; ``num_atoms`` mid-level quantile atoms for an exact continuous law.
        """
        return self.truth().distribution(int(state), num_atoms)

    def true_distribution_table(
        self, num_atoms: int = DEFAULT_TABLE_ATOMS
    ) -> tuple[np.ndarray, np.ndarray]:
        """(locs f64[S, N], probs f64[S, N]): every state's truth as N weighted atoms.

        Exact atoms padded with zero-probability atoms where they fit, otherwise N equally
        weighted quantile atoms at levels (2i - 1) / (2N). ``table_error(N)`` bounds its W1
        distance to the real distributions.
        """
        return self.truth().table(num_atoms)

    def table_error(self, num_atoms: int = DEFAULT_TABLE_ATOMS) -> float:
        """Max over states of a W1 bound between the N-atom table and the true law."""
        return self.truth().table_error(num_atoms)

    @property
    def truth_error(self) -> float:
        """W1 bound of the default (1000-atom) table vs the real distribution; 0 if exact."""
        return self.table_error(DEFAULT_TABLE_ATOMS)

    def true_quantiles(self, taus: Any) -> np.ndarray:
        """f64[S, len(taus)]: the tau-quantiles of every state's return."""
        return self.truth().quantiles(taus)

    def true_expectiles(self, taus: Any) -> np.ndarray:
        """f64[S, len(taus)]: the tau-expectiles of every state's return."""
        return self.truth().expectiles(taus)

    def return_bounds(self) -> tuple[float, float]:
        """(lo, hi) holding every state's return with probability >= 1 - 1e-4."""
        return self.truth().bounds(1e-4)

    def config(self) -> dict[str, Any]:
        """JSON-able description of the task, for manifests."""
        out: dict[str, Any] = {"name": self.name, **dict(self.spec)}
        for key, value in self.params.items():
            out[key] = np.asarray(value).item()
        out["gamma"] = float(np.asarray(self.gamma))
        out["rewards"] = {
            label: self.reward_slot(i).config() for i, label in enumerate(self.reward_labels)
        }
        return out
