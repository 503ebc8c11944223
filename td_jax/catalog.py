"""Every suite by name: the one place that lists them (bsuite's ``sweep.py``).

Suites are data defined in their own modules (``studies.prediction_suites`` for the
headline study, ``studies.control_suites``, ``studies.approx_suites`` for function
approximation, one module per paper in ``reproductions``); this module imports each by
name, so there is no registration by import side effect. It sits with the command line,
above every study: nothing in the core, the engine or the studies imports it.
"""

from __future__ import annotations

from td_jax.deep import suites as deep_suites
from td_jax.engine.control_specs import ControlSuite
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import CustomSuite, Suite
from td_jax.reproductions import dabney2020, lyle2019, rainbow2021, rowland2023
from td_jax.studies.approx_suites import approx_quick_suite, approx_suite
from td_jax.studies.control_suites import control_quick_suite, control_suite
from td_jax.studies.prediction_suites import default_suite, quick_suite

Runnable = Suite | ControlSuite | CustomSuite


def _table() -> dict[str, Runnable]:
    suites = [
        default_suite(),
        quick_suite(),
        approx_suite(),
        approx_quick_suite(),
        dabney2020.SUITE,
        rowland2023.SUITE,
        lyle2019.SUITE,
        rainbow2021.SUITE,
        control_suite(),
        control_quick_suite(),
        deep_suites.DEEP_CONTROL,
        deep_suites.DEEP_CONTROL_QUICK,
    ]
    return {s.name: s for s in suites}


SUITES = _table()


def get_suite(name: str) -> Runnable:
    """The suite ``name``; ValueError lists the available ones."""
    if name not in SUITES:
        raise BenchError(f"unknown suite {name!r}; available suites: {', '.join(available())}")
    return SUITES[name]


def available() -> list[str]:
    return sorted(SUITES)


def comparison_suites() -> list[str]:
    """Suites run by the sample-complexity protocol (they take plug-in rules): the
    prediction suites and the control suites."""
    return sorted(n for n, s in SUITES.items() if isinstance(s, Suite | ControlSuite))


def describe() -> dict[str, str]:
    return {name: SUITES[name].description for name in available()}
