"""The results store shared by every suite: directory guard, atomic writes, cached runs,
manifest.

A suite writes ``results/<suite>/``. Each ``td_jax.run`` call it makes is a *unit*, saved
atomically under ``<out>/.units/<unit>.npz`` with a hash of everything that determines it
and the digests of the code that computed it (``code_digests``: td_jax's source and a
plug-in rule's), so a rerun (after Ctrl-C, kill -9 or a finished run) reuses it instead of
recomputing, and a unit made by other code is recomputed, saying so.
``manifest.json`` and ``.units/suite.json`` name the suite, so no suite ever writes into a
directory that holds another's results. Every file goes through a temporary and a rename.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import td_jax  # noqa: E402
from td_jax import code_digests  # noqa: E402
from td_jax.code_digests import (  # noqa: E402, F401  (re-exported: the code keys)
    code_digest,
    rule_digest,
    source_digest,
)
from td_jax.engine.errors import BenchError  # noqa: E402, F401  (the engine's user error)
from td_jax.rewards import registry as reward_registry  # noqa: E402
from td_jax.runner import RunResult  # noqa: E402

UNITS = ".units"


@contextlib.contextmanager
def writing(path: Path, tmp: Path | None = None) -> Iterator[None]:
    """Names ``path`` in an OSError raised while writing it (a full disk's ENOSPC comes from
    ``write`` with no file name) and removes the temporary ``tmp``: the caller reports one
    line, "cannot write PATH: the errno's text", and nothing half-written is left."""
    try:
        yield
    except OSError as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        text = os.strerror(err.errno) if err.errno else str(err)
        raise OSError(err.errno, text, str(path)) from err


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path, tmp):
        tmp.write_text(text)
        os.replace(tmp, path)


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path, tmp):
        frame.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, path)
    return path.name


def write_text(path: Path, text: str) -> str:
    write_atomic(path, text)
    return path.name


def save_figure(fig, path: Path, dpi: int = 90, tight: bool = True) -> str:
    """Writes ``fig`` to ``path`` atomically and closes it (``tight``: lay it out first;
    a figure that fixed its own layout passes False)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    if tight:
        fig.tight_layout()
    try:
        with writing(path, tmp):
            fig.savefig(tmp, dpi=dpi)
            os.replace(tmp, path)
    finally:
        plt.close(fig)
    return path.name


def config_digest(obj: Any) -> str:
    """A short stable hash of a JSON-able description (plus the td_jax version): a unit's
    configuration, its code digests kept apart so that a change of code can be named."""
    text = json.dumps({"obj": obj, "td_jax": td_jax.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able description, td_jax's version and source digest:
    the key of a cached result that td_jax's code computed."""
    return config_digest({"obj": obj, "td_jax_source": code_digests.source_digest()})


STAGING = ".report-staging"
REPORT_SUFFIXES = (".csv", ".md", ".png", ".json")


def staging_dir(out: Path) -> Path:
    """An empty directory inside ``out`` where a report is written before ``publish``."""
    staging = out / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def file_digests(directory: Path) -> dict[str, str]:
    """sha256 of every report file of ``directory`` (the manifest lists them, so a reader can
    tell a complete report from a truncated or mixed one)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and p.suffix in REPORT_SUFFIXES and p.name != "manifest.json"
    }


def publish(staging: Path, out: Path, release: bool = True) -> None:
    """Moves a complete staged report (its ``manifest.json`` written last) into ``out``.

    ``out``'s manifest goes first, so that while files move the directory reads as
    incomplete; the old report's other files go; the new manifest comes last. A kill on the
    way leaves the staged set whole, and the next ``guard`` finishes the move. ``release``
    ends the run's lock on ``out``.
    """
    if not (staging / "manifest.json").exists():
        raise RuntimeError(f"{staging} holds no complete report")
    (out / "manifest.json").unlink(missing_ok=True)
    new = {p.name for p in staging.iterdir()}
    for old in out.iterdir():
        if old.is_file() and old.suffix in REPORT_SUFFIXES and old.name not in new:
            old.unlink()
    for p in sorted(staging.iterdir()):
        if p.name != "manifest.json":
            os.replace(p, out / p.name)
    os.replace(staging / "manifest.json", out / "manifest.json")
    staging.rmdir()
    if release:
        unlock(out)  # the run is complete


def recover(out: Path) -> None:
    """Finishes a publish cut short (a staged report with its manifest), drops a staged
    report without one, and removes the temporaries a kill or a full disk left behind."""
    staging = out / STAGING
    if staging.is_dir():
        if (staging / "manifest.json").exists():
            publish(staging, out, release=False)
        else:
            shutil.rmtree(staging)
    for directory in (out, out / UNITS):
        if directory.is_dir():
            for stale in directory.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
            for stale in directory.glob("*.tmp"):
                stale.unlink(missing_ok=True)


_LOCKS: dict[str, Any] = {}  # output directories this process holds, by resolved path


def lock(out: Path) -> None:
    """An advisory lock on ``out`` for this process (released when it exits or
    ``unlock``s): a second concurrent run into the same directory is refused with the
    holder's pid. Re-entrant within a process."""
    import fcntl

    key = str(out.resolve())
    if key in _LOCKS:
        return
    path = out / UNITS / "lock"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the run's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise BenchError(
            f"output directory {out} is in use by another td-jax run (pid {holder}); wait "
            "for it to finish or choose another --out"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _LOCKS[key] = handle


def unlock(out: Path) -> None:
    """Releases ``lock(out)`` (no-op when this process does not hold it)."""
    handle = _LOCKS.pop(str(Path(out).resolve()), None)
    if handle is not None:
        handle.close()


def check_output_dir(out: str | Path) -> None:
    """The output-directory checks of ``guard`` for a command without units (``td-jax
    throughput``): ``out`` is not a file, can be created and written (a probe file is
    written and removed); each failure is a one-line BenchError."""
    if not str(out).strip():
        raise BenchError("--out is empty; give a results directory")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"output directory {out} is a file; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe.{os.getpid()}.tmp"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise BenchError(f"cannot write results to {out}: {err.strerror or err}") from None


def guard(out: Path, suite: str) -> None:
    """Refuses ``out`` if it holds another suite's results or another run holds it; then
    locks and claims it for ``suite``. Output-directory failures (a file in the way, no
    permission, a read-only or full disk) are refused in one line."""
    try:
        _guard(out, suite)
    except OSError as err:
        raise BenchError(
            f"cannot write results to {out}: {err.strerror or err}"
            + (f" ({err.filename})" if err.filename and str(err.filename) != str(out) else "")
        ) from None


def _guard(out: Path, suite: str) -> None:
    if out.exists() and not out.is_dir():
        raise BenchError(f"output directory {out} is a file; choose another --out")
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
    lock(out)
    write_atomic(out / UNITS / "suite.json", json.dumps({"suite": suite}))
    recover(out)  # a save interrupted by kill -9 is recomputed; a cut publish finished
    _RECORDS[_key(out)] = _Record()  # this run's account of stale units starts empty
    code_digests.source_digest()  # taken now, before a run gives the source time to change


@dataclasses.dataclass
class _Record:
    """What the units of one results directory met in this run (for its manifest)."""

    plugins: dict[str, str] = dataclasses.field(default_factory=dict)
    rewards: dict[str, str] = dataclasses.field(default_factory=dict)  # registered families
    stale_reused: set[str] = dataclasses.field(default_factory=set)
    stale_recomputed: set[str] = dataclasses.field(default_factory=set)


_RECORDS: dict[str, _Record] = {}  # by resolved results directory
_RECORDS_LOCK = threading.Lock()
_POLICY = {"reuse_stale": False, "score_only": False}
_SOURCE: list[dict[str, str] | None] = [None]  # the study file of the run (``suite_file``)


def _key(out: Path) -> str:
    return str(Path(out).resolve())


def _record(out: Path | None) -> _Record:
    """This run's record for ``out`` (a fresh one, not kept, for ``None``)."""
    if out is None:
        return _Record()
    with _RECORDS_LOCK:
        return _RECORDS.setdefault(_key(out), _Record())


@contextlib.contextmanager
def _policy(name: str, enabled: bool) -> Iterator[None]:
    previous = _POLICY[name]
    _POLICY[name] = bool(enabled)
    try:
        yield
    finally:
        _POLICY[name] = previous


def reuse_stale(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within this block (process-wide, worker threads included) a unit whose configuration
    matches but whose code digest differs is reused, not recomputed: ``td-jax bench
    --reuse-stale``, for a user who asks for it. The manifest says so and names the units.
    """
    return _policy("reuse_stale", enabled)


SCORE_ONLY = (
    ": td-jax report re-scores saved units only (td-jax bench computes them; --reuse-stale "
    "re-scores units of other code)"
)


def score_only(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within this block (process-wide) no unit is computed: a unit that is not saved, or
    was saved by other code (outside ``reuse_stale``), is a BenchError naming it. ``td-jax
    report``: a finished suite re-scored from its saved units by the bench's own path."""
    return _policy("score_only", enabled)


@contextlib.contextmanager
def suite_file(record: Mapping[str, str] | None) -> Iterator[None]:
    """Within this block (process-wide) every manifest written (``write_manifest``: the
    comparison suites, the reproductions and the deep suites alike) records the study file
    the suite was read from, ``{"path", "sha256"}`` (``studies.suite_files.file_record``),
    as ``suite_file``. None: nothing is recorded."""
    previous = _SOURCE[0]
    _SOURCE[0] = None if record is None else dict(record)
    try:
        yield
    finally:
        _SOURCE[0] = previous


def policy() -> dict[str, bool]:
    """The unit policies in force now (``reuse_stale``, ``score_only``), as a copy."""
    return dict(_POLICY)


def reusing_stale() -> bool:
    """Whether ``reuse_stale`` is in force."""
    return _POLICY["reuse_stale"]


def stale_reused(out: Path) -> list[str]:
    """The units of ``out`` that this run reused although their code digest differs."""
    return sorted(_record(out).stale_reused)


def warn(message: str) -> None:
    """One line on stderr, even when quiet: a unit recomputed or reused for its code."""
    print(f"td-jax: {message}", file=sys.stderr, flush=True)


class Cancelled(Exception):
    """A unit stopped before its next run because another unit of the suite failed
    (``Units.cancel``): the driver waits for it, then raises the first failure."""


class Units:
    """Resumable ``td_jax.run`` calls: ``units.get(name, key, compute, rule=...)``.

    A unit is reused when its configuration ``key`` and the digests of the code that
    computed it (``code_digest``: td_jax's source, the plug-in rule's when ``rule`` is
    a factory, and each registered reward family's that its tasks use) both match; a unit
    of other code (or saved without digests) is recomputed with one line to ``warn``
    (stderr by default), or reused inside ``reuse_stale``.
    With ``out=None`` nothing is cached (tests and in-memory use). Thread-safe for distinct
    names (each unit is its own file). ``cancel``: an event the suite driver sets when
    another unit failed; ``get`` then raises ``Cancelled`` instead of loading or computing,
    so no unit outlives the run that started it.
    """

    def __init__(
        self,
        out: Path | None,
        log: Callable[[str], None],
        kind: type = RunResult,
        warn: Callable[[str], None] = warn,
        policy: dict[str, bool] | None = None,
        cancel: threading.Event | None = None,
    ):
        self.out, self.log, self.kind, self.warn = out, log, kind, warn
        self.cancel = cancel
        self.computed, self.reused, self.seconds = 0, 0, 0.0
        # The policies in force when the run began (``policy()``, taken in the main thread
        # before any worker starts): a unit still in flight after the run failed, and the
        # policy block was left, keeps them, so report mode never computes.
        self.policy = dict(_POLICY if policy is None else policy)

    def get(
        self,
        name: str,
        key: Any,
        compute: Callable[[], Any],
        *,
        rule: str | Callable[..., Any] | None = None,
        rewards: Any = (),
    ) -> Any:
        """The cached result of ``compute`` for ``key``, computing (and saving) it if absent
        or stale. ``rule``: the rule the unit runs (a registry name or a plug-in factory),
        whose code joins the key; so does that of every registered reward family reachable
        from ``rewards`` (the unit's envs or rewards) or named in ``key`` (its tasks'
        configurations; ``td_jax.rewards.registry.reachable``). Results are of ``kind``:
        anything with ``save(path)``, a classmethod ``load(path)`` and an ``info`` dict
        (``RunResult``, ``control.ControlRuns``)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"unit {name}: cancelled, another unit of the suite failed")
        families = reward_registry.digests([rewards, key])
        tag, record = config_digest(key), _record(self.out)
        code = code_digests.code_digest(rule, families)
        if code["plugin"] is not None:
            record.plugins[code_digests.plugin_name(rule)] = code["plugin"]
        record.rewards.update(families)
        path = None if self.out is None else self.out / UNITS / f"{name}.npz"
        result = None if path is None or not path.exists() else self._load(name, path)
        if result is not None and result.info.get("unit_hash") == tag:
            saved = result.info.get("code_digests")
            if saved == code:
                self.reused += 1
                return result
            why = code_digests.describe_change(saved, code)
            if self.policy["reuse_stale"]:
                self.warn(f"warning: unit {name}: {why}; reused as asked (--reuse-stale)")
                record.stale_reused.add(name)
                self.reused += 1
                return result
            if self.policy["score_only"]:
                raise BenchError(f"unit {name}: {why} (computed by other code){SCORE_ONLY}")
            self.warn(f"unit {name}: {why}; recomputing")
            record.stale_recomputed.add(name)
        if self.policy["score_only"]:
            why = "is not saved" if result is None else "is saved for another configuration"
            raise BenchError(f"unit {name} {why} in {self.out}{SCORE_ONLY}")
        t0 = time.perf_counter()
        result = compute()
        elapsed = time.perf_counter() - t0
        result.info.update(unit_hash=tag, unit_seconds=elapsed, code_digests=code)
        self.seconds += elapsed
        self.computed += 1
        if path is not None:
            with writing(path):  # the save itself writes a temporary and renames it
                result.save(path)
        return result

    def _load(self, name: str, path: Path) -> Any:
        try:
            return self.kind.load(path)
        except Exception as err:  # noqa: BLE001 - truncated, empty, corrupt: recompute
            self.warn(f"warning: unit {name} is unreadable ({type(err).__name__}); recomputing")
            return None


def logger(quiet: bool) -> Callable[[str], None]:
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def write_manifest(out: Path, manifest: dict[str, Any], units: Units, start: float) -> dict:
    """Adds versions, device, git commit, wall time, the cache's counts, the digests of the
    code that computed the units and of the report's files to ``manifest``, writes
    ``manifest.json`` last (a directory with a manifest is complete) and returns it.

    ``code_digests``: td_jax's source and each plug-in factory's (by ``module:qualname``),
    and each registered reward family's that a unit used (``rewards``, by name; absent
    where none was);
    ``reuse_stale``: whether ``--reuse-stale`` was in force, with the units it reused
    although their code differs (``stale_units_reused``); ``stale_units_recomputed``: how
    many units were recomputed because their code changed; ``suite_file``: the study file
    of the run, within ``suite_file``."""
    record = _record(units.out)
    plugins = dict(sorted(record.plugins.items()))
    manifest = {
        **manifest,
        "file_sha256": file_digests(out),
        **environment_info(),
        "code_digests": {
            "td_jax": code_digests.source_digest(),
            "plugins": plugins,
            **({"rewards": dict(sorted(record.rewards.items()))} if record.rewards else {}),
        },
        "reuse_stale": reusing_stale(),
        "stale_units_reused": sorted(record.stale_reused),
        "stale_units_recomputed": len(record.stale_recomputed),
        "wall_seconds": time.perf_counter() - start,
        "compute_seconds": units.seconds,
        "units_computed": units.computed,
        "units_reused": units.reused,
    }
    if _SOURCE[0] is not None and "suite_file" not in manifest:
        manifest["suite_file"] = dict(_SOURCE[0])
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=_jsonable))
    return manifest


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def git_commit() -> dict[str, Any]:
    """The source's git commit and whether it has uncommitted changes outside results/
    (None and None outside a checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                # Benchmark outputs under results/ do not make the source dirty.
                ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve", "sve2")  # fmt: skip


def cpu_info() -> dict[str, Any]:
    """The CPU model and its vector-ISA flags (from /proc/cpuinfo where there is one), so
    that a difference between machines' numbers can be traced to the instructions XLA used.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and value.strip():
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {
        "model": model,
        "vector_isa": [f for f in VECTOR_FLAGS if f in flags],
        "cpu_count": os.cpu_count(),
    }


LOCK_FILE = "constraints.txt"


def lock_info() -> dict[str, Any]:
    """The committed install lock (``make lock``): its name and sha256, so a manifest says
    which pinned set produced it (None where td_jax runs outside its source checkout)."""
    path = Path(__file__).resolve().parents[2] / LOCK_FILE
    if not path.is_file():
        return {"file": None, "sha256": None}
    return {"file": LOCK_FILE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def environment_info() -> dict[str, Any]:
    """Versions, git commit and device, for manifests."""
    import importlib.metadata as md

    versions = {}
    for pkg in (
        "jax",
        "jaxlib",
        "numpy",
        "scipy",
        "pandas",
        "rlax",
        "rliable",
        "flax",
        "optax",
        "chex",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    versions["td_jax"] = td_jax.__version__
    versions["python"] = platform.python_version()
    return {
        "versions": versions,
        "lock": lock_info(),
        "git": git_commit(),
        "device": {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "cpu": cpu_info(),
        },
    }
