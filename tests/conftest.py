"""Session settings shared by every test module."""

from __future__ import annotations

import os

# Every program the tests compile goes to the persistent XLA cache, however fast it
# compiled: the tests' CLI subprocesses (and the other xdist worker) then load it instead of
# compiling it again (td_jax.runner.compile_cache; the default skips programs under 0.5 s).
os.environ.setdefault("TD_JAX_CACHE_MIN_COMPILE_SECONDS", "0")
