"""Loading a user's rule from ``module:factory``, importable from the working directory."""

from __future__ import annotations

import importlib
import os
import re
import sys

from td_jax.harness.errors import BenchError
from td_jax.harness.suites import RuleSpec

LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def load_rule(spec: str) -> RuleSpec:
    """Parses ``module:factory`` (optionally ``label=module:factory``) into a RuleSpec.

    The module is imported with the current directory on ``sys.path``; ``factory`` is
    called with no arguments when the suite runs and must return a ``td_jax.UpdateRule``.

    Raises:
      BenchError: malformed spec or label (labels: letters, digits, ``_ . -``, not starting
        with ``.`` or ``-``, since they name files), module not importable, or factory
        missing / not callable.
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
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any import failure is the user's to fix
        raise BenchError(
            f"--rule {spec!r}: cannot import module {module_name!r}: {type(err).__name__}: {err}"
        ) from err
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise BenchError(f"--rule {spec!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise BenchError(f"--rule {spec!r}: {attr!r} is not callable")
    label = label or attr
    if not LABEL.fullmatch(label):
        raise BenchError(
            f"--rule {spec!r}: label {label!r} may hold only letters, digits and _ . - "
            "(not first: . or -), since it names the unit files"
        )
    return RuleSpec(label, factory)
