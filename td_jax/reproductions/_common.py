"""What every reproduction suite shares: the results store (``td_jax.engine.store``: its
directory guard, resumable runs, atomic files, manifest) and markdown tables
(``td_jax.engine.scoring.markdown``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from td_jax.engine import store  # noqa: E402
from td_jax.engine.scoring.markdown import markdown_table  # noqa: E402, F401
from td_jax.engine.store import (  # noqa: E402, F401  (the reproductions' toolkit)
    UNITS,
    BenchError,
    Units,
    digest,
    guard,
    logger,
    save_figure,
    write_csv,
    write_text,
)


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=list))


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
    }
    return store.write_manifest(out, manifest, units, start)
