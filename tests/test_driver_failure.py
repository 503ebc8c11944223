"""A failed unit stops the others before ``run_suite`` raises (``engine.driver``).

A unit still running after its suite failed could meet a second run in the same process
(the tests', ``td-jax report`` after ``td-jax bench``) on the same unit files. The driver
sets every unit's ``cancel`` event, each unit stops at its next run (``store.Cancelled``),
and ``run_suite`` waits for them before it raises the failure.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from td_jax.engine import store
from td_jax.engine.driver import Track, run_suite


class Box:
    """A unit's saved run: ``info`` and a number."""

    def __init__(self, value: float):
        self.value, self.info = value, {}

    def save(self, path: Path) -> None:
        path.write_text(str(self.value))


class Unit:
    def __init__(self, name: str):
        self.name, self.spec = name, None
        self.cancel = threading.Event()
        self.runs, self.finished = 0, threading.Event()
        self.cache: store.Units | None = None


def slow_box(value: float) -> Box:
    time.sleep(0.01)
    return Box(value)


def failing_track(units: list[Unit], fail_after: float) -> Track:
    """``bad`` raises after ``fail_after`` s; every other unit runs 400 short runs."""

    def run_unit(unit: Unit, suite, out: Path) -> None:
        unit.cache = store.Units(None, lambda msg: None, kind=Box, cancel=unit.cancel)
        try:
            if unit.name == "bad":
                time.sleep(fail_after)
                raise RuntimeError("unit bad failed")
            for i in range(400):
                unit.cache.get(f"{unit.name}_{i}", i, lambda i=i: slow_box(i))
                unit.runs += 1
        finally:
            unit.finished.set()

    return Track(
        prepare=lambda suite: {},
        make_units=lambda suite, tasks: units,
        run_unit=run_unit,
        write=lambda *args: {},
        describe=lambda unit: "",
    )


def test_a_failed_unit_stops_the_units_in_flight_before_the_suite_raises(tmp_path):
    units = [Unit("slow"), Unit("bad")]
    suite = SimpleNamespace(name="failing")
    with pytest.raises(RuntimeError, match="unit bad failed"):
        run_suite(suite, tmp_path / "out", quiet=True, workers=2,
                  track=failing_track(units, fail_after=0.3))  # fmt: skip
    slow = units[0]
    assert slow.finished.is_set(), "a unit was still running after run_suite raised"
    assert 0 < slow.runs < 400  # it ran, and stopped early instead of running to its end
    runs = slow.runs
    time.sleep(0.1)
    assert slow.runs == runs


def test_a_cancelled_store_neither_loads_nor_computes():
    cancel = threading.Event()
    units = store.Units(None, lambda msg: None, kind=Box, cancel=cancel)
    assert units.get("a", 1, lambda: Box(1.0)).value == 1.0
    cancel.set()
    calls = []
    with pytest.raises(store.Cancelled, match="unit b: cancelled"):
        units.get("b", 2, lambda: calls.append(1) or Box(2.0))
    assert calls == [] and units.computed == 1
