"""Strict reading of public numeric arguments, shared by every input check.

A number is a Python or NumPy real (or a 0-d array of a numeric dtype); booleans, strings,
``None`` and containers are not numbers, and a float is not an integer, even when whole
(``num_steps=10.0``). Each reader returns ``None`` for a value it refuses, so the caller
raises its own message naming the argument, the value given and what is allowed.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)  # the largest finite float32 (learners' precision)


def _numeric_array(value: Any, kinds: str) -> np.ndarray | None:
    """``value`` as an array if it is one (numpy or jax) of a dtype kind in ``kinds``."""
    if not (hasattr(value, "dtype") and hasattr(value, "shape")):
        return None
    arr = np.asarray(value)
    return arr if arr.dtype.kind in kinds else None


def real(value: Any) -> float | None:
    """``float(value)`` for a real scalar, else None (bools, strings, None, arrays of size > 1)."""
    if isinstance(value, bool | np.bool_):
        return None
    arr = _numeric_array(value, "iuf")
    if arr is not None:
        return float(arr) if arr.ndim == 0 else None
    return float(value) if isinstance(value, numbers.Real) else None


def integer(value: Any) -> int | None:
    """``int(value)`` for an integer scalar (not a bool, not a float), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    arr = _numeric_array(value, "iu")
    if arr is not None:
        return int(arr) if arr.ndim == 0 else None
    return int(value) if isinstance(value, numbers.Integral) else None


def _vector(value: Any, kinds: str, read) -> list | None:
    if value is None or isinstance(value, str | bytes | Mapping | set | frozenset):
        return None
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        arr = _numeric_array(value, kinds)
        return arr.tolist() if arr is not None and arr.ndim == 1 else None
    try:
        items = list(value)
    except TypeError:  # a scalar: not a sequence
        return None
    out = [read(x) for x in items]
    return None if any(x is None for x in out) else out


def reals(value: Any) -> np.ndarray | None:
    """f64[n] for a 1-D sequence or array of real numbers (n may be 0), else None."""
    out = _vector(value, "iuf", real)
    return None if out is None else np.asarray(out, np.float64).reshape(-1)


def integers(value: Any) -> np.ndarray | None:
    """i64[n] for a 1-D sequence or array of integers (n may be 0), else None."""
    out = _vector(value, "iu", integer)
    if out is None or any(abs(x) >= 2**63 for x in out):
        return None
    return np.asarray(out, np.int64).reshape(-1)
