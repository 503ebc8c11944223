"""Resources of ``td_jax.run``: micro-batch and chunk sizes, compiler options, host <-> device
transfers and the progress display.

The micro-batch (learners vectorised together, the compiled unit) depends only on the
backend and the rule's state size, never on free memory or load, so a run's results do not
depend on the machine's state; chunks (micro-batches dispatched together) are sized from
free memory and do not change results either.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import psutil

# Learners vectorised per micro-batch, by backend: enough to fill the vector units / GPU.
TARGET_LEARNERS = {"cpu": 8192, "gpu": 1 << 20, "tpu": 1 << 20}
# Updates per loop iteration (``program.unrolled_loop``). On CPU a loop iteration costs
# little next to an update of thousands of learners; on accelerators each iteration is a
# launch (about 50 us at 1M learners on an H200, more than the update's memory traffic).
UNROLL = {"cpu": 1, "gpu": 8, "tpu": 8}
# On CPU a micro-batch holds about CPU_MICRO_BATCH_BYTES of learner state, within
# [MIN_CPU_LEARNERS, MAX_CPU_LEARNERS] learners (measured, td_jax/throughput/benchmark.py: CTD
# runs 1.5x faster than at 8,192 learners, and TD's tiny states fill up to 65,536
# learners, whose work then outweighs each step's fixed cost: TD(lambda) 1.4x faster).
CPU_MICRO_BATCH_BYTES, MIN_CPU_LEARNERS, MAX_CPU_LEARNERS = 6 << 20, 1 << 10, 1 << 16
# XLA options per backend. On CPU, XLA's YNNPACK fusions take over reductions such as
# QTD's count of targets below each quantile, and then cannot fuse with the comparison
# that feeds them, so the m x m comparison matrix is written to memory every step (3-4x
# slower, td_jax/throughput/benchmark.py). Results stay deterministic either way.
# Copy insertion by region analysis: XLA's default copies every loop-carried buffer that
# the body reads after it starts writing the next value (the learners' tables, the carried
# sample), each a kernel launch per update; region analysis proves most of those reads
# come first and drops the copies (td_lambda's loop body: 20 copies -> 11, 10% faster at
# 1,000 learners). Copies move bytes, not values: results are bit-identical.
COMPILER_OPTIONS: dict[str, dict[str, str | bool]] = {
    "cpu": {
        "xla_cpu_experimental_ynn_fusion_type": "",
        "xla_cpu_copy_insertion_use_region_analysis": True,
    }
}


def memory_budget(fraction: float) -> int:
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(fraction * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    return int(fraction * psutil.virtual_memory().available)


def bytes_per_learner(state, num_states: int, num_atoms: int, truth_atoms: int, dist: bool):
    state_bytes = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state))
    stat = max(num_atoms, 1)
    # Carry, update temporaries (pairwise K x K comparisons) and metric temporaries.
    update = 4 * num_states * stat + 4 * stat * stat * 4
    metric = 4 * num_states * (stat + truth_atoms) * 8 if dist else 4 * num_states * 4
    return 3 * state_bytes + update + metric


def compile_lowered(lowered):
    """Compiles with the backend's tuned options (``COMPILER_OPTIONS``), or without them
    where this XLA build does not know an option."""
    options = COMPILER_OPTIONS.get(jax.default_backend())
    if options:
        try:
            return lowered.compile(compiler_options=dict(options))
        except Exception as err:  # noqa: BLE001 - an unknown option: compile plainly
            if "compile option" not in str(err):
                raise
    return lowered.compile()


def target_learners(state) -> int:
    """Learners per micro-batch: a function of the backend and the rule's state size only."""
    backend = jax.default_backend()
    if backend != "cpu":
        return TARGET_LEARNERS.get(backend, 8192)
    state_bytes = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state))
    by_size = CPU_MICRO_BATCH_BYTES // max(state_bytes, 1)
    return int(np.clip(by_size, MIN_CPU_LEARNERS, MAX_CPU_LEARNERS))


def put(x: np.ndarray, sharding) -> jax.Array:
    if sharding is None:
        return jnp.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def fetch(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


class _Callback:
    """Adapts a user callable ``progress(done, total)`` to the progress-bar protocol."""

    def __init__(self, fn, total: int):
        self.fn, self.total, self.done, self.task_ids = fn, total, 0, [0]
        fn(0, total)

    def advance(self, _task) -> None:
        self.done += 1
        self.fn(self.done, self.total)

    def stop(self) -> None:
        pass


def progress_bar(enabled, total: int):
    if callable(enabled):
        return _Callback(enabled, total)
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    bar.add_task("td_jax.run", total=total)
    return bar


def default_unroll() -> int:
    """Updates per loop iteration on this backend (``UNROLL``)."""
    return UNROLL.get(jax.default_backend(), 1)
