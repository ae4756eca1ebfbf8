"""The package's shape: layers with no way back up, no import circles, loose modules counted."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "modelport"

# Every top-level module and package of modelport, placed in the layer order. A module may import
# its own unit and any unit of a lower layer; within one layer only the pairs below are allowed.
LAYERS: dict[str, int] = {
    "modelport._version": 0,
    "modelport.core": 0,
    "modelport.workers": 1,
    "modelport": 1,  # the root's __init__: the public facade over core and workers
    "modelport.config": 2,
    "modelport.integrations": 2,
    "modelport.server": 2,
    "modelport.ray": 3,
    "modelport.cli": 3,
}
SAME_LAYER = {
    ("modelport", "modelport.workers"),  # the root re-exports the worker API
    ("modelport.server", "modelport.config"),  # the admin API checks entries against the file's schema
    ("modelport.cli", "modelport.ray"),  # --backend ray
}
MAX_LOOSE = {"modelport.workers": 8, "modelport.server": 10}


@dataclass(frozen=True)
class Edge:
    """One import: who, of whom, where."""

    source: str
    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[Edge]:
    """Every modelport import of one module, at any depth (functions and TYPE_CHECKING included).

    ``import pkg`` and ``from pkg import name`` depend on ``pkg/__init__``; ``from pkg import
    submodule`` depends on the submodule alone; a module never depends on its own parent packages.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.append(sub if sub in known else module)
        for target in targets:
            if target.split(".")[0] != "modelport" or target == name or name.startswith(target + "."):
                continue
            yield Edge(name, target, node.lineno)


def _graph() -> list[Edge]:
    known = _modules()
    return [edge for name, path in sorted(known.items()) for edge in _imports(name, path, known)]


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_top_level_module_has_a_place_in_the_layer_order() -> None:
    units = {_unit(name) for name in _modules()}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_goes_up_the_layers() -> None:
    wrong: set[str] = set()
    for edge in _graph():
        source, target = _unit(edge.source), _unit(edge.target)
        if source == target or LAYERS[target] < LAYERS[source] or (source, target) in SAME_LAYER:
            continue
        wrong.add(f"{edge.source}:{edge.line} imports {edge.target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_the_walk_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    # The walk must find what a module-level scan would miss, or the circle test could not fail.
    edges = [
        Edge("a", "b", 1),
        Edge("b", "c", 1),
        Edge("c", "a", 1),
        Edge("c", "d", 1),
    ]
    assert _cycles(edges) == [["a", "b", "c"]]
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from modelport.server import state\n"
        "def f():\n    import modelport.ray.app\n"
        "from modelport.workers import base, ChatWorker\n"
    )
    known = {"modelport.server.state": source, "modelport.workers.base": source}
    found = {e.target for e in _imports("modelport.core.mod", source, known)}
    assert found == {"modelport.server.state", "modelport.ray.app", "modelport.workers.base", "modelport.workers"}


@pytest.mark.parametrize("package", sorted(MAX_LOOSE))
def test_loose_modules_stay_few(package: str) -> None:
    folder = ROOT.parent / package.replace(".", "/")
    loose = sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE[package], f"{package} has {len(loose)} loose modules: {loose}"


def test_every_package_says_what_lives_there() -> None:
    silent = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("__init__.py")
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert not silent


def test_no_two_module_names_differ_by_one_letter() -> None:
    names = sorted({p.stem for p in ROOT.rglob("*.py") if p.stem != "__init__"})
    close = [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if len(a) != len(b) and (a.startswith(b) or b.startswith(a)) and abs(len(a) - len(b)) == 1
    ]
    assert not close
