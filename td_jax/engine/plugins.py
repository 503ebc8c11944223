"""Loading a user's rule from ``module:factory``, importable from the working directory."""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from td_jax.code_digests import rule_digest
from td_jax.engine.errors import BenchError
from td_jax.engine.specs import RuleSpec

LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def load_rule(spec: str) -> RuleSpec:
    """Parses ``module:factory`` (optionally ``label=module:factory``) into a RuleSpec.

    The module is imported with the current directory on ``sys.path``; ``factory`` is
    called with no arguments when the suite runs and must return a ``td_jax.UpdateRule``
    (a SystemExit or KeyboardInterrupt it raises is reported as its error). The digest of
    its code (``code_digests.rule_digest``), which keys its saved units, is taken here.

    Raises:
      BenchError: malformed spec or label (labels: letters, digits, ``_ . -``, not starting
        with ``.`` or ``-``, since they name files), module not importable, or factory
        missing / not callable; a module that exits (sys.exit) while it is imported.
    """
    label, _, target = spec.rpartition("=")
    module_name, sep, attr = target.partition(":")
    if (
        not sep
        or not module_name
        or not attr
        or not all(part.isidentifier() for part in [*module_name.split("."), *attr.split(".")])
    ):
        raise BenchError(
            f"--rule must look like module:factory (e.g. my_rules:make_rule), got {spec!r}"
        )
    factory = import_factory(module_name, attr, f"--rule {spec!r}")
    label = label or attr
    if not LABEL.fullmatch(label):
        raise BenchError(
            f"--rule {spec!r}: label {label!r} may hold only letters, digits and _ . - "
            "(not first: . or -), since it names the unit files"
        )
    factory = _no_exit(factory)
    rule_digest(factory)  # its code's digest, taken now: a later edit of the file is not it
    return RuleSpec(label, factory, plugin=f"{label}={target}")


def factory_of(target: str, where: str, folder: Path | None = None) -> Callable[..., Any]:
    """The factory ``module:factory`` names in a study file (``where`` says where, for
    errors): imported as ``import_factory`` does, its code digest taken now. A user's
    factory is guarded as ``load_rule``'s (its SystemExit is an error); td_jax's own (e.g.
    ``td_jax.approx.learner:make``) is returned as it is.

    Raises:
      BenchError: a malformed target, or what ``import_factory`` raises.
    """
    module_name, sep, attr = target.partition(":")
    parts = [*module_name.split("."), *attr.split(".")]
    if not sep or not all(part.isidentifier() for part in parts):
        raise BenchError(f"{where} must be a rule name or module:factory, got {target!r}")
    factory = import_factory(module_name, attr, where, folder)
    if module_name != "td_jax" and not module_name.startswith("td_jax."):
        factory = _no_exit(factory)
    rule_digest(factory)
    return factory


def import_factory(module_name: str, attr: str, where: str, folder: Path | None = None) -> Any:
    """``module_name.attr``: the module imported with the working directory (and
    ``folder``, e.g. a study file's, first) on ``sys.path``.

    Raises:
      BenchError: "``where``: ..." for a module that cannot be imported (or exits while it
        is), an attribute it lacks, or one that is not callable.
    """
    factory = import_module(module_name, where, folder)
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise BenchError(f"{where}: module {module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise BenchError(f"{where}: {attr!r} is not callable")
    return factory


def import_module(module_name: str, where: str, folder: Path | None = None) -> Any:
    """The module ``module_name``, imported with ``folder`` (e.g. a study file's) first and
    then the working directory on ``sys.path`` (a module imported before is not imported
    again: Python's cache).

    Raises:
      BenchError: "``where``: cannot import module ...", one line: a module that cannot be
        imported, raises, or exits (sys.exit) while it is imported.
    """
    for path in (os.getcwd(), *([str(folder)] if folder is not None else [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # noqa: BLE001 - the user's
        # to fix, sys.exit() at import included: it must not end the bench as a success
        text = _exit_text(err) if isinstance(err, SystemExit) else err
        raise BenchError(
            f"{where}: cannot import module {module_name!r}: "
            + " ".join(f"{type(err).__name__}: {text}".split())
        ) from err


def _exit_text(err: SystemExit) -> str:
    return f"sys.exit({err.code!r}) ends the program; a plug-in must not exit"


class _FactoryExit(Exception):
    """A plug-in factory's SystemExit or KeyboardInterrupt as an ordinary error, so that the
    engine reports it as the factory's failure (one line, exit 2), not as the bench's end.
    Its subclasses carry the name of the exception they stand for, which the report names.
    """


_AS_ERROR = {
    SystemExit: type("SystemExit", (_FactoryExit,), {}),
    KeyboardInterrupt: type("KeyboardInterrupt", (_FactoryExit,), {}),
}


def _no_exit(factory: Callable[..., Any]) -> Callable[..., Any]:
    """``factory``, with SystemExit and KeyboardInterrupt raised inside it turned into
    errors the engine reports (``functools.wraps``: its name, and through ``__wrapped__``
    its code digest, are the factory's)."""

    @functools.wraps(factory)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return factory(*args, **kwargs)
        except SystemExit as err:
            raise _AS_ERROR[SystemExit](_exit_text(err)).with_traceback(err.__traceback__) from None
        except KeyboardInterrupt as err:
            raise _AS_ERROR[KeyboardInterrupt](
                "a factory must return a td_jax.UpdateRule, not interrupt the program"
            ).with_traceback(err.__traceback__) from None

    return call
