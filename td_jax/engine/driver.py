"""The one suite driver: every track (prediction, control, the deep agents) runs through it.

A *track* says what its units are and how its report is written (``Track``); the driver
does what every suite shares:
- it makes the units and checks them before anything compiles (a refused input writes
  nothing);
- it guards the results directory against a second writer or another suite;
- it runs the units ``workers`` at a time, with a progress bar on a terminal and one log
  line per unit (elapsed time, ETA);
- it starts the track's bias floors beside the units;
- it writes the report, and the suite's extra reports (``Suite.reports``: the atlas), into
  a staging directory and swaps it in whole, with the manifest last.

Every unit's runs are cached under ``<out>/.units/`` as soon as each finishes, so an
interrupted bench resumes on rerun, and ``td-jax report DIR`` (``store.score_only``)
re-scores a finished directory through this same path without computing a unit.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from td_jax.engine import control, prediction, search, store
from td_jax.engine import tasks as task_lib
from td_jax.engine.control_specs import ControlSuite
from td_jax.engine.specs import Suite

POLL_SECONDS = 0.2  # how often the main thread wakes while units run (signal handling)


class Floors(NamedTuple):
    """Floors started beside the units: ``finish()`` waits for them and returns the table
    {(rule label, task label): floors or None}; ``cancel()`` stops them (a failed run)."""

    finish: Callable[[], dict]
    cancel: Callable[[], None] = lambda: None


def no_floors(units: list, out: Path) -> Floors:
    """A track without bias floors."""
    return Floors(dict)


class Track(NamedTuple):
    """What a kind of suite gives the driver (optax-style: a record of functions).

    Attributes:
      prepare: ``(suite) -> {task label: task}``, each task with its exact truth.
      make_units: ``(suite, tasks) -> [unit]``; a unit has ``name``, ``spec`` (or None)
        and ``cache`` (its ``store.Units``, set when it runs), and may have ``cancel``, a
        ``threading.Event`` the driver sets when another unit fails (``run_unit`` passes
        it to its ``store.Units``, which then stops at the next run).
      run_unit: ``(unit, suite, out) -> None``: tunes and evaluates one unit.
      write: ``(suite, stage, units, tasks, floors, out) -> manifest``: the report, into
        the staging directory ``stage``.
      describe: ``(unit) -> str``: the detail of a unit's log line.
      floors: ``(units, out) -> Floors``, started once the units are queued.
      preflight: ``(units, suite) -> None``: checks before anything compiles.
      workers: units run at once (None: the caller's ``workers``).
      floors_first: start the floors before the units are queued (a child process that
        runs beside them) rather than once they are (work in the main thread).
    """

    prepare: Callable[[Any], dict]
    make_units: Callable[[Any, dict], list]
    run_unit: Callable[[Any, Any, Path], None]
    write: Callable[..., dict]
    describe: Callable[[Any], str]
    floors: Callable[[list, Path], Floors] = no_floors
    preflight: Callable[[list, Any], None] = lambda units, suite: None
    workers: int | None = None
    floors_first: bool = False


def tuned_unit_line(unit: Any) -> str:
    """The log detail of a unit of the tuning loop (prediction and control)."""
    return (
        f"{sum(len(v) for v in unit.tuning.values())} (task, configuration) runs, "
        f"{unit.rounds} extension(s), {unit.refinements} refinement round(s), "
        f"{unit.cache.computed} run(s) computed, {unit.cache.reused} reused"
    )


PREDICTION = Track(
    prepare=task_lib.prepare_tasks,
    make_units=prediction.make_units,
    run_unit=search.tune_and_evaluate,
    write=prediction.write_report,
    describe=tuned_unit_line,
    floors=lambda units, out: Floors(*prediction.start_floors(units, out)),
    preflight=lambda units, suite: prediction.preflight(units, suite.mode),
    floors_first=True,
)
CONTROL = Track(
    prepare=control.prepare_tasks,
    make_units=control.make_units,
    run_unit=search.tune_and_evaluate,
    write=control.write_report,
    describe=tuned_unit_line,
    floors=lambda units, out: Floors(*control.start_floors(units, out)),
)


def track_of(suite: Any) -> Track:
    """The track that runs ``suite`` (a ``Suite`` or a ``ControlSuite``)."""
    if isinstance(suite, Suite):
        return PREDICTION
    if isinstance(suite, ControlSuite):
        return CONTROL
    raise TypeError(f"no track runs a {type(suite).__name__}; expected a Suite or ControlSuite")


def _check_compares(suite: Any) -> None:
    """Refuses a suite whose rules are all baselines: it would make no comparison, and its
    verdict, tables and plots would be empty (checked here, after ``--rule`` plug-ins are
    added, so that a study file holding only its baseline runs with one)."""
    labels = [r.label for r in getattr(suite, "rules", ())]
    baselines = {getattr(suite, "baseline", None), *getattr(suite, "baselines", {}).values()}
    if labels and all(label in baselines for label in labels):
        raise store.BenchError(
            f"suite {suite.name}: every rule is a baseline ({', '.join(labels)}), so nothing is "
            "compared; add a rule to [[rules]] or give one with --rule"
        )


def run_suite(
    suite: Any,
    out: Path,
    *,
    quiet: bool = False,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    track: Track | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) ``suite`` into ``out`` and writes every report. Returns the manifest.

    Args:
      suite: what to run (a ``Suite``, a ``ControlSuite``, or what ``track`` takes).
      out: the results directory (created; refused if it holds another suite's results).
      quiet: no progress bar or log lines.
      workers: units run concurrently (compilation overlaps with computation).
      log: where log lines go (default: stderr unless quiet).
      track: the track (default: ``track_of(suite)``).
      source: the study file the suite was read from, ``{"path", "sha256"}``: recorded in
        the manifest as ``suite_file``.
    """
    track = track or track_of(suite)
    _check_compares(suite)
    log = log or store.logger(quiet)
    out = Path(out)
    start = time.perf_counter()
    tasks = track.prepare(suite)
    units = track.make_units(suite, tasks)
    if hasattr(suite, "rules"):
        suite = resolved(suite, units)  # the manifest says what each rule was tuned on
    track.preflight(units, suite)
    store.guard(out, suite.name)  # after every check: a refused input writes nothing
    floors = _run_units(track, units, suite, out, log, start, quiet, track.workers or workers)
    return _publish(track, suite, out, units, tasks, floors, log, start, source)


def resolved(suite: Any, units: list) -> Any:
    """``suite`` with each rule's spec as its units resolved it (``RuleSpec.resolved``: the
    step unit and grid scale its facts gave); a rule with no unit keeps its own."""
    by_label = {u.spec.label: u.spec for u in units}
    return dataclasses.replace(suite, rules=tuple(by_label.get(r.label, r) for r in suite.rules))


def _progress_bar(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    bar.start()
    return bar


def _run_units(track: Track, units: list, suite: Any, out: Path, log, start: float,
               quiet: bool, workers: int) -> dict:  # fmt: skip
    """Runs every unit, ``workers`` at a time, one log line per unit, with the floors
    beside them; returns the floors' table."""
    bar = _progress_bar(quiet)
    overall = bar.add_task(f"suite {suite.name}", total=len(units)) if bar else None
    done = {"n": 0, "lock": threading.Lock()}

    def work(unit: Any) -> Any:
        t0 = time.perf_counter()
        track.run_unit(unit, suite, out)
        with done["lock"]:
            done["n"] += 1
            n, elapsed = done["n"], time.perf_counter() - start
        eta = elapsed / n * (len(units) - n)
        log(f"  [{n}/{len(units)}] {unit.name}: {time.perf_counter() - t0:.1f} s, "
            f"{track.describe(unit)}; elapsed {elapsed:.0f} s, ETA {eta:.0f} s")  # fmt: skip
        return unit

    floors = track.floors(units, out) if track.floors_first else None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(work, unit) for unit in units}
        floors = floors or track.floors(units, out)  # beside the units (here, in this thread)
        while pending:
            # A timed wait: the main thread returns to the interpreter every POLL_SECONDS, so
            # a Ctrl-C that the OS delivered to another thread (XLA's, a worker's) is acted
            # on at once, not when the unit the main thread waits on happens to finish.
            done_now, pending = concurrent.futures.wait(
                pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done_now:
                future.result()  # a failed unit raises here
                if bar is not None:
                    bar.advance(overall)
    except BaseException as err:
        # A failed unit (or Ctrl-C): queued units are cancelled and those in flight stop
        # at their next run (``store.Cancelled``); finished runs are on disk. After a
        # failure the driver waits for them, so no unit outlives the run that started it
        # (a second run in the same process never meets one); after Ctrl-C the CLI ends
        # the process without waiting.
        for unit in units:
            if getattr(unit, "cancel", None) is not None:
                unit.cancel.set()
        pool.shutdown(wait=isinstance(err, Exception), cancel_futures=True)
        if floors is not None:
            floors.cancel()
        raise
    finally:
        if bar is not None:
            bar.stop()
    pool.shutdown(wait=True)
    return floors.finish()


def _atlas(suite: Any, stage: Path, manifest: dict[str, Any]) -> list[str]:
    from td_jax.engine.scoring import atlas  # matplotlib and scipy: only where asked for

    return atlas.write(suite, stage, manifest)


# A suite's extra reports (``Suite.reports``, names from ``specs.REPORTS``): each is
# ``(suite, stage, manifest) -> [file names]``, called once the standard report is staged.
REPORT_WRITERS: dict[str, Callable[[Any, Path, dict], list[str]]] = {"atlas": _atlas}


def write_reports(suite: Any, stage: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Writes the suite's extra reports into ``stage`` (published with the rest, and
    rewritten by ``td-jax report DIR``); the manifest with ``reports``: name -> files.
    A report that raises never stops the standard report's publication: one line on
    stderr, and ``reports``: name -> {"error": "..."} in the manifest."""
    names = getattr(suite, "reports", ())
    if not names:
        return manifest
    done: dict[str, Any] = {}
    for name in names:
        try:
            done[name] = REPORT_WRITERS[name](suite, stage, manifest)
        except Exception as err:  # noqa: BLE001 - an extra report must not block the rest
            error = f"{type(err).__name__}: {err}".splitlines()[0]
            print(f"td-jax: warning: the {name} report failed ({error}); the standard "
                  "report is published without it", file=sys.stderr)  # fmt: skip
            done[name] = {"error": error}
    return {**manifest, "reports": done}


def _publish(track: Track, suite: Any, out: Path, units: list, tasks: dict, floors: dict,
             log, start: float, source: Mapping[str, str] | None = None,
             ) -> dict[str, Any]:  # fmt: skip
    """Writes the report (staged, then published as a set) and returns the manifest."""
    stage = store.staging_dir(out)
    manifest = track.write(suite, stage, units, tasks, floors, out)
    manifest = write_reports(suite, stage, manifest)
    if source is not None:
        manifest = {**manifest, "suite_file": dict(source)}
    total = store.Units(out, log)
    total.seconds = sum(u.cache.seconds for u in units)
    total.computed = sum(u.cache.computed for u in units)
    total.reused = sum(u.cache.reused for u in units)
    manifest = store.write_manifest(stage, manifest, total, start)
    store.publish(stage, out)
    for d in manifest.get("diverged_cells", []):  # loud, even when quiet
        print(f"td-jax: warning: rule {d['rule']} diverged on task {d['task']} ({d['diverged']} "
              f"of {d['seeds']} evaluation seeds); its cells say so", file=sys.stderr)  # fmt: skip
    return manifest
