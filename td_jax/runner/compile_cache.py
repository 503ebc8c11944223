"""Compile once, call many: compiled programs reused in-process, and XLA's persistent cache.

``td_jax.run`` builds one program per (rule, task structure, static configuration) and
compiles it for the shapes of its arguments. The compiled executable is kept here, keyed by
everything that changes what XLA would compile: the ``ProgramConfig`` (the rule object, the
checkpoints, the mode, the metrics...), the values of the task leaves the program bakes in
as constants, the structure, shapes and dtypes of its arguments, their shardings and the
backend. A second identical ``run`` call therefore neither traces nor compiles; the same
rule means the same ``UpdateRule`` object, which ``td_jax.rules.make`` returns for the same
name and hyperparameters.

Across processes, XLA's persistent compilation cache is enabled on the first ``run`` under
``$TD_JAX_CACHE_DIR`` (default ``~/.cache/td_jax/xla``, or under ``$XDG_CACHE_HOME``); set
``TD_JAX_CACHE_DIR=`` (empty) to turn it off. A cache directory the user configured in jax
already is left alone. Programs that compiled in under ``$TD_JAX_CACHE_MIN_COMPILE_SECONDS``
(default 0.5) are not written to it (the test suite sets 0: its subprocesses then load every
program the tests compiled).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from td_jax.memo import SharedLRU

MAX_PROGRAMS = 32  # compiled executables kept (least recently used dropped first)
ENV_VAR = "TD_JAX_CACHE_DIR"
MIN_COMPILE_ENV = "TD_JAX_CACHE_MIN_COMPILE_SECONDS"
MIN_COMPILE_SECONDS = 0.5

_lock = threading.Lock()  # the persistent cache's one-time setup
_programs = SharedLRU(MAX_PROGRAMS)  # compiled executables, shared by threads
_persistent = {"checked": False, "dir": None}


def default_cache_dir() -> str:
    """``$TD_JAX_CACHE_DIR`` if set (empty: off), else the user's cache directory."""
    if ENV_VAR in os.environ:
        return os.environ[ENV_VAR]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "td_jax" / "xla")


def min_compile_seconds() -> float:
    """``$TD_JAX_CACHE_MIN_COMPILE_SECONDS`` (a number >= 0), else 0.5; ValueError naming
    the variable and its value otherwise."""
    raw = os.environ.get(MIN_COMPILE_ENV, "")
    if not raw:
        return MIN_COMPILE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"${MIN_COMPILE_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def enable_persistent_cache(path: str | None = None) -> str | None:
    """Turns on XLA's persistent compilation cache (once per process); returns its directory.

    ``path`` None: ``default_cache_dir()``. An empty path, or a cache directory already set
    in ``jax.config`` by the user, leaves jax's setting as it is.
    """
    with _lock:
        if _persistent["checked"] and path is None:
            return _persistent["dir"]
        _persistent["checked"] = True
        current = jax.config.jax_compilation_cache_dir
        if current:
            _persistent["dir"] = current
            return current
        path = default_cache_dir() if path is None else path
        if not path:
            return None
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds())
        _persistent["dir"] = path
        return path


def _leaf_signature(x: Any) -> tuple:
    if isinstance(x, jax.Array | np.ndarray):
        sharding = getattr(x, "sharding", None)
        return (tuple(x.shape), str(x.dtype), repr(sharding) if sharding is not None else "")
    return ("py", type(x).__name__, repr(x))


def _constants_digest(shared: tuple) -> tuple:
    """A hashable digest of the constant task leaves (values, not just shapes)."""
    out = []
    for leaf in shared:
        if leaf is None:
            out.append(None)
            continue
        a = np.asarray(leaf)
        out.append((a.shape, str(a.dtype), hashlib.blake2b(a.tobytes(), digest_size=16).digest()))
    return tuple(out)


def program_key(config: Any, shared: tuple, args: tuple) -> tuple:
    """Everything that determines the compiled program (see the module docstring)."""
    leaves, treedef = jax.tree.flatten(args)
    return (
        config,
        _constants_digest(shared),
        str(treedef),
        tuple(_leaf_signature(x) for x in leaves),
        jax.default_backend(),
        tuple(str(d) for d in jax.devices()),
    )


def get_compiled(key: tuple, compile_fn: Callable[[], Any]) -> tuple[Any, bool]:
    """The compiled program for ``key``: (program, True) from the cache, else
    ``(compile_fn(), False)``, which is then kept."""
    compiled = _programs.get(key)
    if compiled is not None:
        return compiled, True
    compiled = compile_fn()
    _programs.put(key, compiled)
    return compiled, False


def stats() -> dict[str, int]:
    """``{"hits", "compiles", "size"}`` of this process's program cache."""
    return {"hits": _programs.hits, "compiles": _programs.puts, "size": len(_programs)}


def clear() -> None:
    """Drops every cached program (the persistent cache on disk is untouched)."""
    _programs.clear()
