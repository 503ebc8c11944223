"""What every reproduction suite shares: its directory guard, resumable runs, manifest, figures.

A reproduction writes ``results/<suite>/``. Each ``td_jax.run`` call it makes is a *unit*
saved atomically under ``<out>/.units/<unit>.npz`` with a hash of everything that
determines it, so a rerun (after Ctrl-C or a finished run) reuses it instead of
recomputing. The markers are those of ``td_jax.harness.bench.run_suite``
(``manifest.json`` and ``.units/suite.json`` naming the suite), so neither kind of suite
ever writes into a directory that holds the other's results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import td_jax  # noqa: E402
from td_jax.harness.bench import BenchError, environment_info, write_atomic  # noqa: E402
from td_jax.runner import RunResult  # noqa: E402

UNITS = ".units"


def guard(out: Path, suite: str) -> None:
    """Refuses ``out`` if it holds another suite's results; then claims it for ``suite``."""
    for marker in (out / "manifest.json", out / UNITS / "suite.json"):
        if marker.exists():
            try:
                found = json.loads(marker.read_text()).get("suite")
            except (OSError, json.JSONDecodeError, AttributeError):
                found = None
            if found != suite:
                raise BenchError(
                    f"output directory {out} holds results of suite {found!r}, not "
                    f"{suite!r}; choose another --out"
                )
    (out / UNITS).mkdir(parents=True, exist_ok=True)
    write_atomic(out / UNITS / "suite.json", json.dumps({"suite": suite}))
    for stale in (out / UNITS).glob("*.tmp"):
        stale.unlink()  # a save interrupted by kill -9; its unit is recomputed


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able description (plus the td_jax version)."""
    text = json.dumps({"obj": obj, "td_jax": td_jax.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Units:
    """Resumable ``td_jax.run`` calls: ``units.get(name, key, compute)``.

    With ``out=None`` nothing is cached (tests and in-memory use).
    """

    def __init__(self, out: Path | None, log: Callable[[str], None]):
        self.out, self.log = out, log
        self.computed, self.reused, self.seconds = 0, 0, 0.0

    def get(self, name: str, key: Any, compute: Callable[[], RunResult]) -> RunResult:
        tag = digest(key)
        path = None if self.out is None else self.out / UNITS / f"{name}.npz"
        if path is not None and path.exists():
            try:
                result = RunResult.load(path)
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                result = None
            if result is not None and result.info.get("unit_hash") == tag:
                self.reused += 1
                return result
        t0 = time.perf_counter()
        self.log(f"  running {name} ...")
        result = compute()
        elapsed = time.perf_counter() - t0
        result.info.update(unit_hash=tag, unit_seconds=elapsed)
        self.seconds += elapsed
        self.computed += 1
        if path is not None:
            result.save(path)
        return result


def logger(quiet: bool) -> Callable[[str], None]:
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=list))


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path.name


def write_text(path: Path, text: str) -> str:
    write_atomic(path, text)
    return path.name


def save_figure(fig, path: Path, dpi: int = 90) -> str:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path.name


def write_manifest(
    out: Path,
    suite: str,
    config: Any,
    seeds: dict[str, Any],
    units: Units,
    start: float,
    files: list[str],
    headline: dict[str, Any],
) -> dict[str, Any]:
    """Writes ``manifest.json``: suite, configuration, seeds, headline numbers, versions,
    device, git commit and wall time; returns it."""
    manifest = {
        "suite": suite,
        "configuration": config_dict(config),
        "seeds": seeds,
        "headline": headline,
        "files": sorted(files),
        **environment_info(),
        "wall_seconds": time.perf_counter() - start,
        "compute_seconds": units.seconds,
        "units_computed": units.computed,
        "units_reused": units.reused,
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=_jsonable))
    return manifest


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table (no tabulate dependency)."""
    cols = list(frame.columns)

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)
