"""Study files of suites with code of their own: ``track = "reproduction"`` (a paper's
module in ``td_jax.reproductions``) or ``track = "deep"`` (``td_jax.deep.suites``).

Such a file names its code, ``module = "td_jax.reproductions.dabney2020"``, and holds the
settings that code runs in ``[settings]``: the fields of the module's ``SETTINGS`` dataclass
(its ``Config``, or ``DeepSuite``), every one checked against the field's type (an unknown or
missing key, a wrong type: one line naming the file and the key, exit 2, as
``suite_files``'s keys). The module builds its suite from them with ``suite(name,
description, settings)`` and reads its own file through ``settings(name)``, so the file is
the one place its configuration is written (``suite_files.settings``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from td_jax import strict
from td_jax.engine.plugins import import_module
from td_jax.studies import suite_schema as schema

TRACKS = ("reproduction", "deep", "generated")
HEADER = {"name": schema.text, "description": schema.text, "track": schema.choice(*TRACKS),
          "module": schema.text, "imports": schema.modules, "settings": schema.table}  # fmt: skip
REQUIRED = ("name", "description", "track", "module", "settings")


def build(raw: Mapping[str, Any], folder: Path | None = None) -> Any:
    """The suite of a parsed reproduction or deep study file: its module imported (from
    ``folder`` first, as a plug-in's) and given the checked settings."""
    module, settings = read(raw, folder)
    return module.suite(raw["name"], raw["description"], settings)


def read(raw: Mapping[str, Any], folder: Path | None = None) -> tuple[Any, Any]:
    """(the module the file names, its ``SETTINGS`` dataclass read from ``[settings]``)."""
    got = schema.read_table("", raw, HEADER, REQUIRED)
    name = schema.modules("module", [got["module"]])[0]
    module = import_module(name, "module", folder)
    cls = getattr(module, "SETTINGS", None)
    if not dataclasses.is_dataclass(cls) or not callable(getattr(module, "suite", None)):
        strict.fail(None, "module", name, "a module with SETTINGS (a dataclass) and suite()")
    given = dict(got["settings"])
    if "name" in _fields(cls):  # a DeepSuite: its name and description are the file's
        given |= {"name": got["name"], "description": got["description"]}
    return module, dataclass_of("settings", given, cls)


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def dataclass_of(key: str, value: Any, cls: type) -> Any:
    """``cls`` from the TOML table ``value`` at ``key``: every field without a default
    required, each value read by its type (``convert``)."""
    fields = _fields(cls)
    required = tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    readers = {name: (lambda k, v, h=hint: convert(k, v, h)) for name, hint in fields.items()}
    got = schema.read_table(key, value, readers, required)
    try:
        return cls(**got)
    except (ValueError, TypeError) as err:
        raise ValueError(f"[{key}]: {str(err).splitlines()[0]}") from None


def convert(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` holds it: a dataclass from a table, a tuple from an
    array (each item by the tuple's item type), a dict from a table, int, float (a whole
    TOML integer read as a float), bool and str checked; ``Any`` kept as TOML gives it,
    its arrays as tuples."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return dataclass_of(key, value, hint)
    if origin is tuple:
        item = args[0]
        if not isinstance(value, list):
            strict.fail(None, key, value, "an array")
        return tuple(convert(f"{key}[{i}]", x, item) for i, x in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        item = args[1] if args else Any
        return {k: convert(f"{key}.{k}", v, item) for k, v in schema.table(key, value).items()}
    if hint is bool:
        return strict.check_bool(None, key, value)
    if hint is int:
        return strict.check_int(None, key, value, 0)
    if hint is float:
        return strict.check_finite(None, key, value)
    if hint is str:
        return schema.text(key, value)
    return frozen(value)


def frozen(value: Any) -> Any:
    """A value as the suites hold it: arrays as tuples (``standardize = [1.0, 1.0]`` is
    ``(1.0, 1.0)``), tables as dicts."""
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    if isinstance(value, Mapping):
        return {k: frozen(v) for k, v in value.items()}
    return value
