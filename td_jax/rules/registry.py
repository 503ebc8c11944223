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
# Rules already built, by (name, hyperparameters): ``make`` returns the same object for the
# same arguments, so that the runner's compiled-program cache recognises the rule.
_MADE: dict[tuple, UpdateRule] = {}
MAX_MADE = 256


def _frozen(value: object) -> object:
    """A hashable form of a hyperparameter value (lists and dicts recursively); raises
    TypeError for values that have none."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return ("array", str(value.dtype), _frozen(value.tolist()))
    hash(value)
    return (type(value).__name__, value)


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
    for key in [k for k in _MADE if k[0] == name]:  # rules built by the replaced factory
        del _MADE[key]
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

    Tabular rules only: a rule's parametric form is ``td_jax.approx.make`` (a layer above
    this one: approx imports rules, never the reverse), e.g.
    ``td_jax.approx.make("qtd", approximator="mlp", features="position", optimizer="adam")``.

    The same name and hyperparameters give the same ``UpdateRule`` object (rules are pure
    functions, so sharing one is safe), which lets ``td_jax.run`` reuse its compiled program.

    Raises:
      ValueError: for an unknown name (the message lists the available ones) or a bad
        hyperparameter (the message names it, the value given and what is allowed).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown rule {name!r}; available rules: {', '.join(available())}")
    parametric = sorted(k for k in ("approximator", "features", "optimizer") if k in hparams)
    if parametric:
        raise ValueError(
            f"{name}: rules.make builds tabular rules; {parametric} ask for a parametric one: "
            f"td_jax.approx.make({name!r}, approximator=..., features=..., optimizer=...)"
        )
    try:
        key = (name, _frozen(hparams))
    except TypeError:  # a hyperparameter with no hashable form: build afresh
        key = None
    if key is not None and key in _MADE:
        return _MADE[key]
    try:
        rule = _REGISTRY[name].factory(**hparams)
    except TypeError as err:  # unknown keyword: say which rule rejected it
        raise ValueError(f"{name}: bad hyperparameters {sorted(hparams)}: {err}") from err
    if key is not None:
        if len(_MADE) >= MAX_MADE:
            _MADE.pop(next(iter(_MADE)))
        _MADE[key] = rule
    return rule
