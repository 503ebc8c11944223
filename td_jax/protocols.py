"""Typed contracts for what users implement (optax's ``base.py`` style): an MRP, an MDP and
a per-state kernel.

``td_jax.run`` takes any MRP that implements ``MRPLike``, ``td_jax.control`` MDPs that
implement ``MDPLike`` (the built-in ``td_jax.envs.MDP``), and ``rules.tabular_rule`` a
``Kernel``. ``strict.check_implements`` checks an object against one of them before
anything is traced, and its error names the contract, the members missing and what each
is for, so a plug-in's type error says which contract it broke.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from td_jax.types import Array, PRNGKey, Transition


@runtime_checkable
class MRPLike(Protocol):
    """A policy-evaluation task that ``td_jax.run`` can stream and score exactly.

    Members:
      num_states: the number of states S (static).
      reset(key) -> int32[]: a start state.
      step(key, s) -> Transition: one transition from state ``s`` (jittable).
      true_values() -> f64[S]: the exact values.
      true_distribution_table(...) -> per-state return distributions as atoms, the
        ground truth of the distribution metrics.
    """

    num_states: int

    def reset(self, key: PRNGKey) -> Array: ...

    def step(self, key: PRNGKey, s: Array) -> Transition: ...

    def true_values(self) -> np.ndarray: ...

    def true_distribution_table(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class MDPLike(Protocol):
    """A control task: ``td_jax.control`` learners act in it, scored against its exact Q*.

    Members:
      num_states, num_actions: S and A (static).
      reset(key) -> int32[]: a start state.
      step(key, s, a) -> Transition: one transition from ``s`` taking ``a`` (jittable).
      optimal_q() -> f64[S, A]: the exact Q*.
      value_gap(policy) -> f64[S]: V*(s) - V^pi(s) of a deterministic policy.
    """

    num_states: int
    num_actions: int

    def reset(self, key: PRNGKey) -> Array: ...

    def step(self, key: PRNGKey, s: Array, a: Array) -> Transition: ...

    def optimal_q(self) -> np.ndarray: ...

    def value_gap(self, policy: Any) -> np.ndarray: ...


class Kernel(Protocol):
    """A rule's update of one state's statistics, ``rules.tabular_rule``'s input:
    ``(stat_s f32[K], r_t f32[], discount_t f32[], stat_next f32[K], step_size f32[], key)
    -> f32[K]``, the new statistics of the state the transition leaves."""

    def __call__(
        self, stat_s: Array, r_t: Array, discount_t: Array, stat_next: Array,
        step_size: Array, key: PRNGKey,
    ) -> Array: ...  # fmt: skip


KERNEL_ARGS = ("stat_s", "r_t", "discount_t", "stat_next", "step_size", "key")


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` (attributes and methods) that ``obj`` lacks."""
    names = [n for n in dir(protocol) if not n.startswith("_")]
    names += list(getattr(protocol, "__annotations__", {}))
    return sorted({n for n in names if not hasattr(obj, n)})
