"""Every suite by name: the one place that lists them (bsuite's ``sweep.py``).

The comparison suites are files, ``benchmarks/<name>.toml`` (read and checked by
``studies.suite_files``; shipped inside the package too), and ``get_suite`` also takes the
path of a user's own study file. The reproductions that have code of their own (one module
per paper in ``reproductions``) and the deep agents' suites (``deep.suites``) are imported
here by name, so there is no registration by import side effect. This module sits with the
command line, above every study: nothing in the core, the engine or the studies imports it.
"""

from __future__ import annotations

from pathlib import Path

from td_jax.engine.control_specs import ControlSuite
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import CustomSuite, Suite
from td_jax.studies import suite_files

Runnable = Suite | ControlSuite | CustomSuite

FILES = suite_files.builtin_files()  # name -> benchmarks/<name>.toml


class _Suites(dict):
    """Every built-in suite by name, each built from its file when first asked for (a
    study of 10^4 tasks takes a minute to check; listing the suites reads no file's tasks).
    Tests may put a suite in it (``monkeypatch.setitem``)."""

    def __missing__(self, name: str) -> Runnable:
        if name not in FILES:
            raise KeyError(name)
        suite = suite_files.load(FILES[name])
        self[name] = suite
        return suite

    def __contains__(self, name: object) -> bool:
        return name in FILES or dict.__contains__(self, name)

    def names(self) -> list[str]:
        return sorted({*FILES, *dict.keys(self)})


SUITES = _Suites()


def is_file(name: str) -> bool:
    """Whether ``name`` is the path of a study file rather than a suite's name."""
    return name.endswith(suite_files.SUFFIX) or "/" in name


def get_suite(name: str) -> Runnable:
    """The suite ``name``, or the suite of the study file at that path (``*.toml``);
    BenchError lists the available ones."""
    if is_file(name):
        return suite_files.load(Path(name))
    if name not in SUITES:
        raise BenchError(
            f"unknown suite {name!r}; available suites: {', '.join(available())}, or the "
            "path of a study file (*.toml)"
        )
    return SUITES[name]


def suite_file(name: str) -> Path | None:
    """The file suite ``name`` (a name or a path) is read from; None for a suite with code
    of its own."""
    return Path(name) if is_file(name) else FILES.get(name)


def available() -> list[str]:
    return SUITES.names()


def _header(name: str) -> dict:
    """A built-in file's top-level keys (its name, description and track), read without
    building its tasks; a suite put in ``SUITES`` by hand answers from itself."""
    if dict.__contains__(SUITES, name) or name not in FILES:
        suite = SUITES[name]
        track = "control" if isinstance(suite, ControlSuite) else "prediction"
        track = track if isinstance(suite, Suite | ControlSuite) else "module"
        return {"description": suite.description, "track": track}
    return suite_files.parse(FILES[name])


def comparison_suites() -> list[str]:
    """Suites run by the sample-complexity protocol (they take plug-in rules): the
    prediction suites, the control suites and the prediction suites a module generates
    from its settings (``track = "generated"``: the device atlas)."""
    tracks = ("prediction", "control", "generated")
    return [n for n in available() if _header(n).get("track", "prediction") in tracks]


def describe() -> dict[str, str]:
    """One line per suite; a file suite's names its file."""
    return {
        name: " ".join(str(_header(name).get("description", "")).split())
        + (f" [benchmarks/{FILES[name].name}]" if name in FILES else "")
        for name in available()
    }
