"""The rule registry: ``make``, ``available``, ``register`` and ``describe``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from td_jax.types import UpdateRule

RuleFactory = Callable[..., UpdateRule]


class _Entry(NamedTuple):
    factory: RuleFactory
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str, factory: RuleFactory, description: str | None = None, *, overwrite: bool = False
) -> None:
    """Adds a rule factory under ``name`` so that ``make(name, **hparams)`` builds it.

    Args:
      name: the registry key, e.g. ``"my_td"``.
      factory: a callable taking keyword hyperparameters and returning an ``UpdateRule``.
      description: a one-line description for ``td-jax list`` (defaults to the first line
        of the factory's docstring).
      overwrite: replace an existing entry instead of raising.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"rule name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"rule factory for {name!r} must be callable, got {factory!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"rule {name!r} is already registered; pass overwrite=True to replace it")
    if description is None:
        doc = (factory.__doc__ or "").strip().splitlines()
        description = doc[0] if doc else name
    _REGISTRY[name] = _Entry(factory, description)


def available() -> list[str]:
    """Names of every registered rule, sorted."""
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line description}`` for every registered rule."""
    return {name: _REGISTRY[name].description for name in available()}


def make(name: str, **hparams: object) -> UpdateRule:
    """Builds the rule registered as ``name`` with the given hyperparameters.

    With ``approximator=``, ``features=`` or ``optimizer=`` it builds the rule's parametric
    form instead (``td_jax.approx.make``: td, td_lambda, qtd, ctd, edrl), e.g.
    ``make("qtd", approximator="mlp", features="position", optimizer="adam")``.

    Raises:
      ValueError: for an unknown name (the message lists the available ones) or a bad
        hyperparameter (the message names it, the value given and what is allowed).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown rule {name!r}; available rules: {', '.join(available())}")
    if any(k in hparams for k in ("approximator", "features", "optimizer")):
        from td_jax import approx  # parametric form of the rule (linear / MLP learners)

        return approx.make(name, **hparams)
    try:
        return _REGISTRY[name].factory(**hparams)
    except TypeError as err:  # unknown keyword: say which rule rejected it
        raise ValueError(f"{name}: bad hyperparameters {sorted(hparams)}: {err}") from err
