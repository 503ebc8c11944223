"""Build a component from a name or ``{"name": ..., **params}``: features, models, optimizers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def from_spec(
    kind: str, spec: Any, registry: Mapping[str, Callable[..., Any]], *args: Any, allowed: str
) -> Any:
    """``registry[name](*args, **params)`` for ``spec`` = ``name`` or ``{"name": name, **params}``.

    Args:
      kind: what is built ("features", "approximator", "optimizer"), for messages.
      spec: the name or mapping.
      registry: name -> factory.
      *args: positional arguments before ``params`` (e.g. a model's output count).
      allowed: the accepted forms, for the message when ``spec`` is neither.

    Raises:
      ValueError: naming the bad spec, an unknown name (with the available ones) or the
        parameters the factory rejected.
    """
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and "name" in spec:
        params = dict(spec)
        name = params.pop("name")
    else:
        raise ValueError(f"{kind} must be {allowed}, got {spec!r}")
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; available: {', '.join(registry)}")
    try:
        return registry[name](*args, **params)
    except TypeError as err:
        raise ValueError(f"{kind} {name!r}: bad parameters {sorted(params)}: {err}") from err
