"""Digests of the code that computes a result: td_jax's own source, a plug-in rule's and
the registered reward families' (``td_jax.rewards.register``) that its tasks use.

A saved unit is reused only by the code that made it (docs/SCIENCE.md section 7.11). Its key
holds ``code_digest(rule)``: the digest of td_jax's source (every ``.py`` file of the
package, uncommitted edits included, so a git checkout needs nothing else) and, for a
plug-in rule (a factory rather than a registry name), the digest of the factory's code and
of the source files of its module and of the user modules that module reaches (a kernel
imported from a sibling file counts). A registered reward family's digest
(``family_digest``: its sampler's and cdf's code and their user modules' source, by the same
walk) is taken when it is registered; a unit whose tasks use registered families also holds
theirs (``{"rewards": {name: digest}}``, absent where there are none, so built-in tasks keep
their keys). All are taken once per process, close to when the code was imported, so a file
edited while a run goes on cannot lend its digest to the old code.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent  # td_jax/
MAX_MODULES = 500  # a bound on the walk over a plug-in's imports


def tree_digest(root: Path) -> str:
    """sha256 (16 hex digits) of every ``.py`` file under ``root``: relative paths and
    contents, in sorted order (``__pycache__`` and modification times play no part)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


@functools.cache
def source_digest() -> str:
    """The digest of td_jax's source (``tree_digest`` of the package), once per process."""
    return tree_digest(PACKAGE)


_RULE_DIGESTS: dict[Any, str] = {}  # by factory: taken once per process


def rule_digest(rule: str | Callable[..., Any] | None) -> str | None:
    """The digest of a plug-in rule's code, or None for a registry name (a built-in rule,
    covered by ``source_digest``) or no rule.

    It covers the factory's qualified name and code (its source where ``inspect`` finds it,
    else its code objects' bytecode and constants) and the source of its module and of the
    user modules that module reaches: those outside the Python installation, its
    environment and td_jax, or in the factory's own top-level package.
    """
    if rule is None or isinstance(rule, str):
        return None
    try:
        return _RULE_DIGESTS[rule]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: digested on each call
        return _rule_digest(rule)
    return _RULE_DIGESTS.setdefault(rule, _rule_digest(rule))


def family_digest(name: str, sampler: Callable[..., Any], cdf: Callable[..., Any]) -> str:
    """The digest of a registered reward family's code: its name, and its sampler's and
    cdf's as ``rule_digest`` takes a factory's (their code and their user modules' source).
    """
    h = hashlib.sha256(b"reward family\0" + name.encode() + b"\0")
    for fn in (sampler, cdf):
        h.update(_rule_digest(fn).encode() + b"\0")
    return h.hexdigest()[:16]


def code_digest(
    rule: str | Callable[..., Any] | None = None, rewards: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{"td_jax": source_digest(), "plugin": rule_digest(rule)}``, and ``"rewards"``, the
    registered families' ``{name: digest}`` (``td_jax.rewards.registry.digests``) where
    there are any: what a unit records."""
    out: dict[str, Any] = {"td_jax": source_digest(), "plugin": rule_digest(rule)}
    if rewards:
        out["rewards"] = dict(sorted(rewards.items()))
    return out


def plugin_name(rule: Callable[..., Any]) -> str:
    """``module:qualname`` of a plug-in factory (as ``RuleSpec.config`` names it)."""
    fn = _unwrap(rule)
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"


def describe_change(saved: Any, current: dict[str, Any]) -> str:
    """What differs between a unit's recorded digests and the current code, in words."""
    if not isinstance(saved, dict):
        return "it was saved without a code digest (by an older td_jax)"
    what = []
    if saved.get("td_jax") != current["td_jax"]:
        what.append(f"td_jax source {saved.get('td_jax')} -> {current['td_jax']}")
    if saved.get("plugin") != current["plugin"]:
        what.append(f"plug-in code {saved.get('plugin')} -> {current['plugin']}")
    old, new = saved.get("rewards") or {}, current.get("rewards") or {}
    for name in sorted({*old, *new}):
        if old.get(name) != new.get(name):
            what.append(f"registered reward {name} code {old.get(name)} -> {new.get(name)}")
    return "its code digest changed (" + "; ".join(what or ["unknown"]) + ")"


def _unwrap(rule: Any) -> Any:
    """The function behind decorators (``functools.wraps``), partials and bound methods;
    a callable instance stands for its class."""
    while True:
        rule = inspect.unwrap(rule)
        if isinstance(rule, functools.partial):
            rule = rule.func
        elif isinstance(rule, types.MethodType):
            rule = rule.__func__
        else:
            break
    if not isinstance(rule, types.FunctionType | type) and callable(rule):
        rule = type(rule)
    return rule


def _rule_digest(rule: Callable[..., Any]) -> str:
    fn = _unwrap(rule)
    h = hashlib.sha256(plugin_name(fn).encode() + b"\0")
    h.update(_code_text(fn))
    for name, path in _user_sources(fn):
        h.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _code_text(fn: Any) -> bytes:
    """The factory's source, or (no source to be found) its compiled code."""
    try:
        return inspect.getsource(fn).encode()
    except Exception:  # noqa: BLE001 - no source (OSError, TypeError, ...): the bytecode
        code = getattr(fn, "__code__", None)
        return b"" if code is None else _code_bytes(code)


def _code_bytes(code: types.CodeType) -> bytes:
    """Bytecode, names and constants of ``code`` and of the code nested in it (the repr of
    a code object holds its address, and a frozenset's order its hash seed: neither used).
    """
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            parts.append(_code_bytes(const))
        elif isinstance(const, frozenset):
            parts.append(repr(sorted(map(repr, const))).encode())
        else:
            parts.append(repr(const).encode())
    return b"\0".join(parts)


def _user_sources(fn: Any) -> list[tuple[str, Path]]:
    """(module name, source file) of the factory's module and of every user module it
    reaches through module globals and closures, sorted by name."""
    home = getattr(fn, "__module__", None) or ""
    start = [sys.modules.get(home)]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            start.append(sys.modules.get(getattr(cell.cell_contents, "__module__", None) or ""))
        except ValueError:  # an empty cell
            continue
    found: dict[str, Path] = {}
    todo = [m for m in start if m is not None]
    while todo and len(found) < MAX_MODULES:
        module = todo.pop()
        path = _source_file(module)
        if module.__name__ in found or path is None:
            continue
        if module.__name__ != home and not _is_user(module.__name__, path, home):
            continue
        found[module.__name__] = path
        todo += [m for m in map(_module_of, list(vars(module).values())) if m is not None]
    return sorted(found.items())


def _module_of(value: Any) -> types.ModuleType | None:
    if isinstance(value, types.ModuleType):
        return value
    if isinstance(value, types.FunctionType | type):
        return sys.modules.get(value.__module__ or "")
    return None


def _source_file(module: types.ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if not file or not str(file).endswith(".py"):
        return None
    path = Path(file).resolve()
    return path if path.is_file() else None


@functools.cache
def _library_roots() -> tuple[Path, ...]:
    """Where installed code lives: the interpreter's, the environment's and td_jax's."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(Path(r).resolve() for r in roots) + (PACKAGE,)


def _is_user(name: str, path: Path, home: str) -> bool:
    """A module of the plug-in: in the factory's top-level package, or installed nowhere."""
    if name.partition(".")[0] == home.partition(".")[0]:
        return not path.is_relative_to(PACKAGE)
    return not any(path.is_relative_to(root) for root in _library_roots())
