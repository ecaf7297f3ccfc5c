"""The data and metrics layers import only downward: data never imports metrics, the engine, the
API or the front ends; metrics may import data but never the engine, the API or the front ends.
Imports inside functions count too: a lazy import is still a dependency."""

import ast
import sys
from pathlib import Path

import pytest

import ganzoo

ROOT = Path(ganzoo.__file__).parent
ABOVE_DATA = ("ganzoo.metrics", "ganzoo.engine", "ganzoo.api", "ganzoo.cli", "ganzoo.reporting", "ganzoo.bench")
ABOVE_METRICS = ABOVE_DATA[1:]


def ganzoo_imports(path: Path) -> set[str]:
    """Every ganzoo module a file imports, anywhere in it."""
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return {name for name in found if name == "ganzoo" or name.startswith("ganzoo.")}


def offending(layer: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        hits = sorted(name for name in ganzoo_imports(path) if name.startswith(forbidden))
        if hits:
            bad[str(path.relative_to(ROOT.parent))] = hits
    return bad


@pytest.mark.parametrize(("layer", "forbidden"), [("data", ABOVE_DATA), ("metrics", ABOVE_METRICS)])
def test_layer_imports_nothing_above_it(layer, forbidden):
    assert offending(layer, forbidden) == {}


def test_the_walk_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    fake_root = tmp_path / "ganzoo"
    (fake_root / "data").mkdir(parents=True)
    (fake_root / "data" / "x.py").write_text(
        "def f():\n    from ganzoo.metrics import fid\n\nfrom ..engine import trainer\nfrom . import imageset\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert offending("data", ABOVE_DATA) == {
        "ganzoo/data/x.py": ["ganzoo.engine", "ganzoo.engine.trainer", "ganzoo.metrics", "ganzoo.metrics.fid"]
    }
