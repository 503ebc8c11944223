"""Hyperparameter checks shared by the rule factories.

Every check raises ``ValueError`` naming the rule, the parameter, the value given and
what is allowed, so a bad sweep configuration fails before anything compiles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from td_jax import strict


def _fail(rule: str, name: str, value: object, allowed: str) -> None:
    strict.fail(rule, name, value, allowed)


# The statistics a learner keeps per state (atoms, quantiles, expectiles, cells): an update
# compares them pairwise, [K, K] float32 temporaries and a few copies, so K is checked
# against ``strict.memory_ceiling()`` before a rule allocates its levels or its support.
SIZES = ("num_atoms", "num_quantiles", "num_expectiles", "num_cells")
PAIRWISE_BYTES = 16  # per (k, k') pair of one update: 4 float32 [K, K] temporaries


def check_int(rule: str, name: str, value: object, minimum: int) -> int:
    x = strict.check_int(rule, name, value, minimum)
    if name in SIZES:
        strict.check_memory(rule, f"{name}={x:,} (one update's pairwise [K, K] temporaries)",
                            PAIRWISE_BYTES * float(x) * x)  # fmt: skip
    return x


def check_unit_interval(rule: str, name: str, value: float, *, closed: bool) -> float:
    x = strict.real(value)
    ok = x is not None and (0.0 <= x <= 1.0 if closed else 0.0 < x < 1.0)
    if not ok:
        _fail(rule, name, value, "in [0, 1]" if closed else "in the open interval (0, 1)")
    return x


def check_finite(rule: str, name: str, value: float) -> float:
    return strict.check_finite(rule, name, value)


def _levels(rule: str, name: str, values: object, allowed: str) -> np.ndarray:
    arr = strict.reals(values)
    if arr is None or arr.size < 1:
        _fail(
            rule,
            name,
            values if arr is None else list(arr),
            f"a non-empty 1-D sequence of {allowed}",
        )
    return arr


def check_taus(rule: str, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = _levels(rule, "taus", taus, "levels in (0, 1)")
    bad = arr[~((arr > 0.0) & (arr < 1.0))]
    if bad.size:
        _fail(rule, "taus", float(bad[0]), "levels in the open interval (0, 1)")
    return arr


def check_rates(rule: str, name: str, rates: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = _levels(rule, name, rates, "non-negative rates")
    bad = arr[~(np.isfinite(arr) & (arr >= 0.0) & (arr <= strict.F32_MAX))]
    if bad.size:
        _fail(rule, name, float(bad[0]), "non-negative and finite")
    return arr


def midpoint_taus(m: int) -> np.ndarray:
    """The quantile levels tau_i = (2i - 1) / (2m), i = 1..m (Dabney et al. 2018)."""
    return (2.0 * np.arange(1, m + 1) - 1.0) / (2.0 * m)
