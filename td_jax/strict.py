"""Strict reading of public numeric arguments, shared by every input check.

A number is a Python or NumPy real (or a 0-d array of a numeric dtype); booleans, strings,
``None`` and containers are not numbers, and a float is not an integer, even when whole
(``num_steps=10.0``). Each reader returns ``None`` for a value it refuses, so the caller
raises its own message naming the argument, the value given and what is allowed.

The checks built on them are the one vocabulary of every public entry point (no other
module re-wraps them; domain checks such as an environment's table size or a network's
memory are built on them): rewards, environments and MDP files, rules and their
hyperparameters, ``td_jax.run``, control and the deep agents' configurations. Numbers:
``check_finite``, ``check_positive``, ``check_greater``, ``check_probability``,
``check_unit_interval``, ``check_int``, ``check_size``, ``check_bool``, ``check_seed``;
sequences: ``check_vector``, ``check_simplex``, ``check_taus``, ``check_rates``,
``check_step_sizes``; names: ``check_mode``, ``check_known_name``, ``check_known_kwargs``;
contracts: ``check_implements`` (``td_jax.protocols``) and ``check_kernel``. Each raises a
ValueError in one line, "owner: name must be allowed, got value". ``check_memory`` refuses
a request (an MDP, a rule's tables, a network) whose estimated memory exceeds
``memory_ceiling()``, half of physical memory.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import numpy as np

from td_jax.types import MODES

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


# -- checks: each raises one ValueError naming the owner, the argument, the value and what is
# allowed ("gaussian: std must be > 0, got -1.0"); the reward, rule, env, control and deep
# checks are these, so a value is read the same way wherever a user can type it.

SEED_LIMIT = 2**32  # seeds and seed indices are folded into PRNG keys as uint32


def fail(owner: str | None, name: str, value: Any, allowed: str) -> NoReturn:
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}{name} must be {allowed}, got {value!r}")


def check_finite(owner: str | None, name: str, value: Any) -> float:
    """A real number (not a bool or a string), finite and within float32's range."""
    x = real(value)
    if x is None or not np.isfinite(x):
        fail(owner, name, value, "a finite number")
    if abs(x) > F32_MAX:
        fail(owner, name, value, f"a finite number within float32 range (|x| <= {F32_MAX:.4g})")
    return x


def check_positive(owner: str | None, name: str, value: Any) -> float:
    """A finite number > 0 (within float32's range)."""
    x = check_finite(owner, name, value)
    if not x > 0:
        fail(owner, name, x, "> 0")
    return x


def check_int(
    owner: str | None, name: str, value: Any, minimum: int, maximum: int | None = None,
    why: str = "",
) -> int:  # fmt: skip
    """An integer (not a bool, not a float, even a whole one) in [minimum, maximum]."""
    x = integer(value)
    if x is None or x < minimum:
        fail(owner, name, value, f"an integer >= {minimum}")
    if maximum is not None and x > maximum:
        fail(owner, name, value, f"an integer <= {maximum}{why}")
    return x


def check_bool(owner: str | None, name: str, value: Any) -> bool:
    """True or False (a Python or NumPy bool; not 0, 1 or a string)."""
    if not isinstance(value, bool | np.bool_):
        fail(owner, name, value, "True or False")
    return bool(value)


def check_mode(owner: str | None, value: Any) -> str:
    """One of ``td_jax.types.MODES``: "online" or "synchronous" (exactly; not "Online")."""
    if not isinstance(value, str) or value not in MODES:
        fail(owner, "mode", value, f"one of {MODES}")
    return value


def check_seed(owner: str | None, name: str, value: Any) -> int:
    """A base seed: an integer in [0, 2**32) (PRNG keys take it as uint32)."""
    return check_int(owner, name, value, 0, SEED_LIMIT - 1, " (keys fold it in as uint32)")


F32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32


def check_step_sizes(owner: str | None, value: Any) -> np.ndarray:
    """f64[A] step sizes: a non-empty 1-D sequence of numbers, each finite, > 0 and within
    float32's normal range (the learners' precision), so none becomes 0, inf or NaN."""
    alphas = reals(value)
    prefix = f"{owner}: " if owner else ""
    if alphas is None or alphas.size == 0:
        raise ValueError(
            f"{prefix}step_sizes must be a non-empty 1-D sequence of numbers, got {value!r}"
        )
    bad = alphas[~(np.isfinite(alphas) & (alphas > 0))]
    if bad.size:
        raise ValueError(f"{prefix}step sizes must be finite and > 0, got {float(bad[0])!r}")
    bad = alphas[(alphas < F32_TINY) | (alphas > F32_MAX)]
    if bad.size:
        raise ValueError(
            f"{prefix}step sizes must lie in float32's normal range [{F32_TINY:.4g}, "
            f"{F32_MAX:.4g}] (the learners' precision), got {float(bad[0])!r}"
        )
    return alphas


# -- resource guards: what a request would allocate, estimated before allocating it.

MEMORY_SHARE = 0.5  # of physical memory, the most one estimated request may need
FALLBACK_MEMORY = 16 << 30  # physical memory assumed where os.sysconf cannot tell


def physical_memory() -> int:
    """This machine's physical memory in bytes (os.sysconf; FALLBACK_MEMORY if unknown)."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_MEMORY
    return pages * page if pages > 0 and page > 0 else FALLBACK_MEMORY


def memory_ceiling() -> int:
    """The most memory one request may be estimated to need: ``MEMORY_SHARE`` (half) of
    physical memory. A request above it cannot run beside anything else and is refused
    before it allocates (instead of a MemoryError, an abort, or swapping the machine)."""
    return int(MEMORY_SHARE * physical_memory())


def size_text(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def check_memory(owner: str | None, what: str, nbytes: float) -> None:
    """Refuses a request estimated to need more than ``memory_ceiling()`` bytes, in one
    line naming the request (``what``: its size) and the estimate."""
    ceiling = memory_ceiling()
    if nbytes > ceiling:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(
            f"{prefix}{what} needs about {size_text(nbytes)} of memory, more than the "
            f"{size_text(ceiling)} one request may use (half of this machine's "
            f"{size_text(physical_memory())}); make it smaller"
        )


def check_greater(owner: str | None, name: str, value: Any, bound: float) -> float:
    """A finite number > ``bound``."""
    x = check_finite(owner, name, value)
    if not x > bound:
        fail(owner, name, x, f"> {bound}")
    return x


def check_probability(owner: str | None, name: str, value: Any) -> float:
    """A finite number in [0, 1]."""
    x = check_finite(owner, name, value)
    if not 0.0 <= x <= 1.0:
        fail(owner, name, x, "a probability in [0, 1]")
    return x


def check_unit_interval(owner: str | None, name: str, value: Any, *, closed: bool) -> float:
    """A number in [0, 1] (``closed``) or in (0, 1)."""
    x = real(value)
    if x is None or not (0.0 <= x <= 1.0 if closed else 0.0 < x < 1.0):
        fail(owner, name, value, "in [0, 1]" if closed else "in the open interval (0, 1)")
    return x


# The statistics a learner keeps per state (atoms, quantiles, expectiles, cells): an update
# compares them pairwise, [K, K] float32 temporaries and a few copies, so K is checked
# against ``memory_ceiling()`` before a rule allocates its levels or its support.
PAIRWISE_SIZES = ("num_atoms", "num_quantiles", "num_expectiles", "num_cells")
PAIRWISE_BYTES = 16  # per (k, k') pair of one update: 4 float32 [K, K] temporaries


def check_size(owner: str | None, name: str, value: Any, minimum: int) -> int:
    """An integer >= ``minimum``; for a count of per-state statistics (``PAIRWISE_SIZES``)
    also one whose pairwise [K, K] temporaries fit in memory (``check_memory``)."""
    x = check_int(owner, name, value, minimum)
    if name in PAIRWISE_SIZES:
        check_memory(owner, f"{name}={x:,} (one update's pairwise [K, K] temporaries)",
                     PAIRWISE_BYTES * float(x) * x)  # fmt: skip
    return x


def check_vector(owner: str | None, name: str, value: Any, length: int | None = None) -> np.ndarray:
    """f64[n]: a non-empty 1-D sequence of finite numbers within float32's range (of
    ``length`` when given)."""
    arr = reals(value)
    if arr is None:
        fail(owner, name, value, "a 1-D sequence of finite numbers")
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        fail(owner, name, value, "a non-empty sequence of finite numbers")
    if np.any(np.abs(arr) > F32_MAX):
        fail(owner, name, value, f"numbers within float32 range (|x| <= {F32_MAX:.4g})")
    if length is not None and arr.size != length:
        fail(owner, name, value, f"a sequence of length {length}")
    return arr


def check_simplex(
    owner: str | None, name: str, value: Any, length: int | None = None
) -> np.ndarray:
    """Probabilities: non-negative and summing to 1 (to 1e-6); renormalised exactly."""
    arr = check_vector(owner, name, value, length)
    if np.any(arr < 0):
        fail(owner, name, arr.tolist(), "non-negative probabilities")
    if abs(arr.sum() - 1.0) > 1e-6:
        fail(owner, name, arr.tolist(), f"probabilities summing to 1 (they sum to {arr.sum():.8g})")
    return arr / arr.sum()


def _levels(owner: str | None, name: str, values: Any, allowed: str) -> np.ndarray:
    arr = reals(values)
    if arr is None or arr.size < 1:
        fail(owner, name, values if arr is None else list(arr),
             f"a non-empty 1-D sequence of {allowed}")  # fmt: skip
    return arr


def check_taus(owner: str | None, taus: Any) -> np.ndarray:
    """f64[K] levels, each in the open interval (0, 1)."""
    arr = _levels(owner, "taus", taus, "levels in (0, 1)")
    bad = arr[~((arr > 0.0) & (arr < 1.0))]
    if bad.size:
        fail(owner, "taus", float(bad[0]), "levels in the open interval (0, 1)")
    return arr


def check_rates(owner: str | None, name: str, rates: Any) -> np.ndarray:
    """f64[K] learning rates, each non-negative and finite."""
    arr = _levels(owner, name, rates, "non-negative rates")
    bad = arr[~(np.isfinite(arr) & (arr >= 0.0) & (arr <= F32_MAX))]
    if bad.size:
        fail(owner, name, float(bad[0]), "non-negative and finite")
    return arr


def check_known_kwargs(owner: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Every key of ``given`` is one of ``allowed`` (a factory's parameters)."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            names = ", ".join(allowed) if allowed else "none"
            raise ValueError(f"{owner}: unknown parameter {key!r}; allowed parameters: {names}")


def check_known_name(kind: str, name: Any, available: Iterable[str]) -> None:
    """``name`` is one of ``available`` (a registry's names)."""
    available = list(available)
    if name not in available:
        raise ValueError(f"unknown {kind} {name!r}; available: {', '.join(available)}")


def check_implements(owner: str, value: Any, protocol: type) -> Any:
    """``value`` has every member of ``protocol`` (``td_jax.protocols``: MRPLike, MDPLike);
    the error names the contract and the members missing."""
    from td_jax.protocols import missing_members

    missing = missing_members(value, protocol)
    if missing:
        raise ValueError(
            f"{owner} does not implement td_jax.protocols.{protocol.__name__} (it has no "
            f"{', '.join(repr(m) for m in missing)}); got a {type(value).__name__}. "
            f"{' '.join((protocol.__doc__ or '').split())}"
        )
    return value


def check_kernel(owner: str, kernel: Any) -> Any:
    """A callable that takes ``td_jax.protocols.Kernel``'s six positional arguments."""
    import inspect

    from td_jax.protocols import KERNEL_ARGS

    contract = f"a td_jax.protocols.Kernel, ({', '.join(KERNEL_ARGS)}) -> stat_s'"
    if not callable(kernel):
        fail(owner, "kernel", kernel, contract)
    try:
        inspect.signature(kernel).bind(*KERNEL_ARGS)
    except TypeError as err:
        raise ValueError(
            f"{owner}: kernel must be {contract}; it does not take those 6 arguments ({err})"
        ) from None
    except ValueError:  # no signature to read (a builtin): it is called as it is
        pass
    return kernel
