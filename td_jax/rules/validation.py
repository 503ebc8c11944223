"""Hyperparameter checks shared by the rule factories.

Every check raises ``ValueError`` naming the rule, the parameter, the value given and
what is allowed, so a bad sweep configuration fails before anything compiles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _fail(rule: str, name: str, value: object, allowed: str) -> None:
    raise ValueError(f"{rule}: {name} must be {allowed}, got {value!r}")


def check_int(rule: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        _fail(rule, name, value, f"an integer >= {minimum}")
    return int(value)


def check_unit_interval(rule: str, name: str, value: float, *, closed: bool) -> float:
    value = float(value)
    ok = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not ok or not np.isfinite(value):
        _fail(rule, name, value, "in [0, 1]" if closed else "in the open interval (0, 1)")
    return value


def check_finite(rule: str, name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value):
        _fail(rule, name, value, "a finite number")
    return value


def check_taus(rule: str, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(taus, dtype=np.float64).reshape(-1)
    if arr.size < 1:
        _fail(rule, "taus", list(arr), "a non-empty sequence of levels in (0, 1)")
    bad = arr[~((arr > 0.0) & (arr < 1.0))]
    if bad.size:
        _fail(rule, "taus", float(bad[0]), "levels in the open interval (0, 1)")
    return arr


def check_rates(rule: str, name: str, rates: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(rates, dtype=np.float64).reshape(-1)
    if arr.size < 1:
        _fail(rule, name, list(arr), "a non-empty sequence of non-negative rates")
    bad = arr[~(np.isfinite(arr) & (arr >= 0.0))]
    if bad.size:
        _fail(rule, name, float(bad[0]), "non-negative and finite")
    return arr


def midpoint_taus(m: int) -> np.ndarray:
    """The quantile levels tau_i = (2i - 1) / (2m), i = 1..m (Dabney et al. 2018)."""
    return (2.0 * np.arange(1, m + 1) - 1.0) / (2.0 * m)
