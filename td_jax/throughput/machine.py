"""The machine a throughput report ran on: its description, and its measured peaks.

``describe`` records the CPU model and vector-ISA flags (``td_jax.engine.store.cpu_info``),
cores, memory, jax's devices and library versions, so that a difference between machines'
numbers can be traced. ``measure_peaks`` measures what the roofline of ``roofline`` needs:
memory bandwidth (a STREAM copy and triad over arrays far larger than the last-level cache,
one thread per core the process may use) and float32 peak arithmetic (a matmul in jax).
Pinned to one core (``worker``'s ``cpus``), the same functions give one core's peaks.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 1 << 15  # elements per numpy call: the triad's temporary stays in L1/L2
ARRAY_MIB, MAX_ARRAY_MIB, QUICK_ARRAY_MIB = 256, 1024, 8
MATMUL_N, QUICK_MATMUL_N, REPEATS, QUICK_REPEATS = 2048, 256, 5, 2


def describe() -> dict[str, Any]:
    """CPU (model, vector ISA), cores, memory, jax devices, library versions, git commit."""
    import jax
    import psutil

    from td_jax.engine.store import cpu_info, git_commit

    versions = {}
    for lib in ("jax", "jaxlib", "numpy", "rlax", "td_jax"):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    cpu = cpu_info()
    return {
        "cpu": cpu["model"],
        "vector_isa": cpu["vector_isa"],
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git": git_commit(),
    }


def commit_text(info: dict[str, Any]) -> str:
    """The report's sentence naming the commit ``describe`` recorded ("" where none was)."""
    git = info.get("git") or {}
    if not git.get("commit"):
        return ""
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    return f" Code: td_jax at commit {git['commit'][:12]}{dirty}."


def isa_text(info: dict[str, Any]) -> str:
    """The CPU's vector-ISA flags as recorded (``td_jax.engine.store.cpu_info``)."""
    if "vector_isa" not in info:
        return "not recorded"
    return ", ".join(info["vector_isa"]) or "none of those td_jax records"


def last_level_cache_bytes() -> int:
    """The largest CPU cache of core 0 (sysfs), or 0 where the system does not say."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip().upper()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes, default=0)


def _chunks(n: int):
    for i in range(0, n, CHUNK):
        yield i, min(i + CHUNK, n)


def _triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, tmp: np.ndarray) -> None:
    for i, j in _chunks(a.size):
        t = tmp[: j - i]
        np.multiply(c[i:j], np.float32(3.0), out=t)
        np.add(t, b[i:j], out=a[i:j])


def _copy(a: np.ndarray, b: np.ndarray, tmp: np.ndarray) -> None:
    del tmp
    for i, j in _chunks(a.size):
        np.copyto(a[i:j], b[i:j])


def memory_bandwidth(threads: int, array_mib: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` copy and triad bandwidth, GB/s, with ``threads`` threads.

    Bytes moved as STREAM counts them: copy 8 per element, triad 12 (no write-allocate).
    """
    n = array_mib * 2**20 // 4
    a, b, c = (np.ones(n, np.float32) for _ in range(3))  # touched: pages are mapped
    bounds = np.linspace(0, n, threads + 1).astype(int)
    parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    tmps = [np.empty(CHUNK, np.float32) for _ in parts]
    out = {}
    with ThreadPoolExecutor(threads) as pool:
        for name, kernel, bytes_per in (("copy", _copy, 8), ("triad", _triad, 12)):
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                arrays = (a, b) if name == "copy" else (a, b, c)
                jobs = [
                    pool.submit(kernel, *(x[p] for x in arrays), t)
                    for p, t in zip(parts, tmps, strict=True)
                ]
                for job in jobs:
                    job.result()
                best = min(best, time.perf_counter() - t0)
            out[f"{name}_gbs"] = bytes_per * n / best / 1e9
    return out


def matmul_gflops(n: int, repeats: int) -> float:
    """Best-of-``repeats`` float32 matmul rate in jax, GFLOP/s (2 n^3 flops per product)."""
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    product = jax.jit(lambda u, v: u @ v)
    product(x, x).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        product(x, x).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure_peaks(quick: bool = False) -> dict[str, Any]:
    """Bandwidth and peak on the cores this process may run on (``sched_getaffinity``)."""
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if quick:
        mib, n, repeats = QUICK_ARRAY_MIB, QUICK_MATMUL_N, QUICK_REPEATS
    else:
        mib = int(np.clip(2 * last_level_cache_bytes() / 2**20, ARRAY_MIB, MAX_ARRAY_MIB))
        n, repeats = MATMUL_N, REPEATS
    return {
        "threads": threads,
        "array_mib": mib,
        "matmul_n": n,
        **memory_bandwidth(threads, mib, repeats),
        "peak_gflops": matmul_gflops(n, repeats),
        "quick": quick,
    }
