"""Imports point one way (issue 24, item 3; STYLE 20): core (rules, rewards, envs, runner,
control, approx) <- engine (engine, with engine/scoring) <- studies (studies, reproductions,
deep, throughput) <- CLI. Read from the source (every import statement, lazy ones inside functions
included), not from what happens to be loaded."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from td_jax import approx, rules

PACKAGE = Path(__file__).resolve().parents[1] / "td_jax"
LAYERS = {
    # The package's namespace (td_jax/__init__.py: ``import td_jax``) re-exports the core.
    "core": {"td_jax", "rules", "rewards", "envs", "runner", "control", "approx", "types",
             "fusion", "strict", "protocols", "analysis", "code_digests", "memo"},
    "engine": {"engine"},
    "studies": {"studies", "reproductions", "deep", "throughput"},
    "cli": {"cli", "__main__", "catalog"},
}  # fmt: skip
RANK = {folder: i for i, (_, folders) in enumerate(LAYERS.items()) for folder in folders}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the td_jax modules it imports (``from a import b`` counts as importing
    ``a.b`` where that is a module, else ``a``)."""

    def resolve(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else ""

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{module}: a relative import (use td_jax.…)")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("td_jax"):
                names = [resolve(f"{node.module}.{a.name}") or resolve(node.module)
                         for a in node.names]  # fmt: skip
            elif isinstance(node, ast.Import):
                names = [resolve(a.name) for a in node.names if a.name.startswith("td_jax")]
            else:
                continue
            graph[module] |= {n for n in names if n and n != module}
    return graph


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "td_jax"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_every_folder_has_a_layer():
    folders = {_folder(m) for m in _modules()}
    assert folders <= set(RANK), sorted(folders - set(RANK))


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if RANK[_folder(target)] > RANK[_folder(module)]
    )


def test_no_import_points_up_a_layer():
    assert not _upward(_imports(_modules())), _upward(_imports(_modules()))


# Running, inside the engine: scoring (engine/scoring) reads what these produced, never them.
RUNNING = {f"td_jax.engine.{m}" for m in ("driver", "search", "prediction", "control", "units")}


def _scoring_runs(graph: dict[str, set[str]]) -> list[str]:
    scoring = {m: ts for m, ts in graph.items() if m.startswith("td_jax.engine.scoring")}
    return sorted(f"{m} -> {target}" for m, ts in scoring.items() for target in ts & RUNNING)


def test_scoring_never_imports_the_running_engine():
    """Scoring apart from running (STYLE 19): a finished run is re-scored from what it saved
    (``td-jax report``), so no scoring module imports the driver, the tuning loop or a
    track."""
    graph = _imports(_modules())
    assert not _scoring_runs(graph), _scoring_runs(graph)
    graph["td_jax.engine.scoring.report"].add("td_jax.engine.search")
    assert _scoring_runs(graph) == ["td_jax.engine.scoring.report -> td_jax.engine.search"]


def test_no_import_cycle_between_folders_or_modules():
    graph = _imports(_modules())
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        folders[_folder(module)] |= {_folder(t) for t in targets} - {_folder(module)}
    # The package's own namespace (td_jax/__init__.py) re-exports the core; a module that
    # imports it sits above it, so it is a node like any other.
    assert not _cycles(folders), _cycles(folders)
    assert not _cycles(graph), _cycles(graph)


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The checks can fail: a graph with a loop, and the real one with a core module made
    to import the engine."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    graph = _imports(_modules())
    assert not _upward(graph) and not _cycles(graph)
    graph["td_jax.rules.registry"].add("td_jax.engine.driver")
    assert _upward(graph) == ["td_jax.rules.registry -> td_jax.engine.driver"]
    assert _cycles(graph)  # the engine imports the registry: a cycle too


def test_the_tabular_registry_points_parametric_requests_up_to_approx():
    """rules sits below approx: ``rules.make`` builds tabular rules and names
    ``td_jax.approx.make`` for a parametric one, instead of importing it."""
    with pytest.raises(
        ValueError, match=r"qtd: rules.make builds tabular rules; \['approximator'\]"
    ):
        rules.make("qtd", approximator="mlp")
    assert approx.make("qtd", approximator="linear").distributional


MAX_FUNCTION_LINES = 80


def _long_functions(limit: int) -> list[str]:
    """Functions (methods and nested ones too) longer than ``limit`` lines, their
    docstrings excluded."""
    out = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = node.body[0]
            doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and (
                isinstance(first.value.value, str))  # fmt: skip
            lines = node.end_lineno - node.lineno + 1
            lines -= (first.end_lineno - first.lineno + 1) if doc else 0
            if lines > limit:
                out.append(f"{module}.{node.name}: {lines} lines")
    return out


def test_no_function_is_over_80_lines():
    assert not _long_functions(MAX_FUNCTION_LINES), _long_functions(MAX_FUNCTION_LINES)
    assert _long_functions(40)  # the count sees long functions (this one's limit would)


def test_one_vocabulary_of_modes():
    """Every place that takes a mode reads it from td_jax.types.MODES, with one message."""
    import td_jax
    from td_jax import control, envs
    from td_jax.engine.control_specs import MDPSpec
    from td_jax.runner import program
    from td_jax.types import MODES

    assert control.MODES is MODES and set(program.MODE_STEPS) == set(MODES)
    tail = "mode must be one of ('online', 'synchronous'), got 'sync'"
    rule = td_jax.rules.make("td")
    with pytest.raises(ValueError, match=re.escape(tail)) as err:
        td_jax.run([rule], [envs.make("chain", num_states=3)], [0.1], 1, 10, mode="sync")
    assert str(err.value) == tail
    with pytest.raises(ValueError) as err:
        control.run_control(rule, envs.make_mdp("risky_safe"), [0.1], 1, 10, mode="sync")
    assert str(err.value) == f"run_control: {tail}"
    with pytest.raises(ValueError) as err:
        MDPSpec("t", "risky_safe", mode="sync")
    assert str(err.value) == f"task 't': {tail}"
