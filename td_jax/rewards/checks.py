"""Parameter checks shared by reward families and environments.

Every failure is a ``ValueError`` that names the owner, the parameter, the value given and
what is allowed (chex style: "gaussian: std must be > 0, got -1.0"), raised when the
object is made, before anything is traced or compiled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from td_jax import strict


def fail(owner: str, name: str, value: Any, allowed: str) -> None:
    strict.fail(owner, name, value, allowed)


def finite(owner: str, name: str, value: Any) -> float:
    """A real number (not a bool or a string), finite and within float32's range."""
    return strict.check_finite(owner, name, value)


def positive(owner: str, name: str, value: Any) -> float:
    x = finite(owner, name, value)
    if not x > 0:
        fail(owner, name, x, "> 0")
    return x


def greater(owner: str, name: str, value: Any, bound: float) -> float:
    x = finite(owner, name, value)
    if not x > bound:
        fail(owner, name, x, f"> {bound}")
    return x


def probability(owner: str, name: str, value: Any) -> float:
    x = finite(owner, name, value)
    if not 0.0 <= x <= 1.0:
        fail(owner, name, x, "a probability in [0, 1]")
    return x


def integer(owner: str, name: str, value: Any, minimum: int) -> int:
    return strict.check_int(owner, name, value, minimum)


def boolean(owner: str, name: str, value: Any) -> bool:
    return strict.check_bool(owner, name, value)


def vector(owner: str, name: str, value: Any, length: int | None = None) -> np.ndarray:
    arr = strict.reals(value)
    if arr is None:
        fail(owner, name, value, "a 1-D sequence of finite numbers")
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        fail(owner, name, value, "a non-empty sequence of finite numbers")
    if np.any(np.abs(arr) > strict.F32_MAX):
        fail(owner, name, value, f"numbers within float32 range (|x| <= {strict.F32_MAX:.4g})")
    if length is not None and arr.size != length:
        fail(owner, name, value, f"a sequence of length {length}")
    return arr


def simplex(owner: str, name: str, value: Any, length: int | None = None) -> np.ndarray:
    """Probabilities: non-negative and summing to 1 (to 1e-6); renormalised exactly."""
    arr = vector(owner, name, value, length)
    if np.any(arr < 0):
        fail(owner, name, arr.tolist(), "non-negative probabilities")
    if abs(arr.sum() - 1.0) > 1e-6:
        fail(owner, name, arr.tolist(), f"probabilities summing to 1 (they sum to {arr.sum():.8g})")
    return arr / arr.sum()


def known_kwargs(owner: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            names = ", ".join(allowed) if allowed else "none"
            raise ValueError(f"{owner}: unknown parameter {key!r}; allowed parameters: {names}")


def known_name(kind: str, name: Any, available: Iterable[str]) -> None:
    available = list(available)
    if name not in available:
        raise ValueError(f"unknown {kind} {name!r}; available: {', '.join(available)}")
