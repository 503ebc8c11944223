"""Session settings shared by every test module."""

from __future__ import annotations

import os

# Every program the tests compile goes to the persistent XLA cache, however fast it
# compiled: the tests' CLI subprocesses (and the other xdist worker) then load it instead of
# compiling it again (td_jax.runner.compile_cache; the default skips programs under 0.5 s).
os.environ.setdefault("TD_JAX_CACHE_MIN_COMPILE_SECONDS", "0")

# The test files, costliest first (worker-seconds of `pytest --durations=0 -n 2`, measured
# 2026-12-07 with the shared programs; refresh when a file's cost changes a lot). `make test`
# runs xdist's loadfile with --no-loadscope-reorder, which hands files to the two workers in
# collection order, so the long files start first and the short ones fill in at the end
# (longest processing time first); xdist's own order (by number of tests) started the
# costliest file late. Files not listed come after, in pytest's order. Only the order
# changes, never what runs.
COSTLIEST_FIRST = (
    "test_harness.py", "test_runner.py", "test_deep.py", "test_control.py",
    "test_control_suite.py", "test_approx.py", "test_throughput.py", "test_unit_staleness.py",
    "test_compile_cache.py", "test_study_files.py", "test_atlas.py", "test_reproductions.py",
    "test_multihost.py", "test_envs.py", "test_imputation.py", "test_properties.py",
    "test_metrics.py", "test_protocol.py", "test_analysis.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
