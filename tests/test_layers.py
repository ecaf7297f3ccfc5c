"""The core's import graph: no cycles, and no layer imports one above it.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import is
still a dependency, only a later one. Importing ``a.b.c`` also runs ``a/__init__`` and
``a/b/__init__``, so those are edges too (except from a module to its own packages, whose import is
already under way when it runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ganzoo"

# What each part of the core may not import (directly or through anything it imports).
FORBIDDEN = {
    "ganzoo.plugin": ("ganzoo.engine", "ganzoo.data", "ganzoo.metrics", "ganzoo.api", "ganzoo.registry"),
    "ganzoo.data": ("ganzoo.engine", "ganzoo.metrics", "ganzoo.api", "ganzoo.reporting", "ganzoo.cli"),
    "ganzoo.metrics": ("ganzoo.engine", "ganzoo.api", "ganzoo.reporting", "ganzoo.cli"),
    "ganzoo.config": ("ganzoo.engine", "ganzoo.data", "ganzoo.plugin"),
    "ganzoo.engine": ("ganzoo.api", "ganzoo.cli", "ganzoo.reporting", "ganzoo.bench"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Modules of ganzoo that ``path`` imports, with their parent packages."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    # A submodule runs inside its own packages' import: those are not dependencies.
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {m for m in found if m in modules and m != name and m not in own_packages}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imports_of(path, name, set(paths)) for name, path in paths.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_is_read(graph):
    assert {"ganzoo.plugin.contract", "ganzoo.engine.trainer", "ganzoo.api", "ganzoo.data.catalog"} <= set(graph)
    assert "ganzoo.plugin.contract" in reachable(graph, "ganzoo.engine.trainer")


def test_no_import_cycles(graph):
    # The package ganzoo itself is every module's ancestor; it imports nothing, so it cannot close a cycle.
    cycles = sorted(name for name in graph if name != "ganzoo" and name in reachable(graph, name))
    assert not cycles, f"modules on an import cycle: {cycles}"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_upward(graph, layer):
    members = [name for name in graph if name == layer or name.startswith(layer + ".")]
    for name in members:
        bad = sorted(m for m in reachable(graph, name) if m.startswith(FORBIDDEN[layer]))
        assert not bad, f"{name} reaches {bad}, above its layer"


def test_a_cycle_would_be_found():
    """The check itself: a two-module cycle is reported."""
    toy = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert sorted(n for n in toy if n in reachable(toy, n)) == ["a", "b"]
