"""The import graph of ``sobol_tf/``, built from the source: no cycle, no import up a layer.

The graph is read with :mod:`ast` from every ``.py`` file of the package: module-level
imports and imports inside functions alike, relative imports resolved against the
importing module, and ``from pkg import name`` resolved to the submodule ``pkg.name``
when that submodule exists (else to ``pkg``). Only edges between modules of the package
count. Importing a subpackage's module runs the subpackage's ``__init__``, so an edge
``a -> pkg.sub.mod`` also means ``a -> pkg.sub`` -- except from inside ``pkg.sub`` itself,
where Python has already started that ``__init__``; the root package's ``__init__`` (which
every import runs) is not counted that way, only where it is imported by name.

:data:`LAYERS` is the ONE definition of the layers (docs/architecture.md mirrors it): a
module may import modules of its own layer or of a lower one, never of a higher one; and
the graph has no cycle between modules, whatever their layers. A module does not
import another package's private names (``from sobol_tf._utils.data import _x`` outside
``_utils``): :func:`private_imports`.
"""
from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "sobol_tf"

#: The layers, lowest first. A module belongs to the layer of the longest prefix listed
#: (``sobol_tf.cli.jobs`` -> ``sobol_tf.cli``); ``"sobol_tf"`` is the package's
#: ``__init__`` alone, so a new top-level module fails the test until it is given a
#: layer here. Keep docs/architecture.md in step.
LAYERS: Dict[str, int] = {
    # 0 -- foundations: no sobol_tf import but each other; no TensorFlow
    "sobol_tf.errors": 0,
    "sobol_tf._quiet": 0,
    "sobol_tf._progress": 0,
    # 1 -- TF-free helpers and file formats
    "sobol_tf.utils_functions": 1,
    "sobol_tf.io": 1,
    # 2 -- the private engine: data, layouts, validation, batching, scoring
    "sobol_tf._utils": 2,
    # 3 -- what scalar is explained
    "sobol_tf.operators": 3,
    "sobol_tf.tasks": 4,
    # 5 -- datasets of any size, batch by batch (explainers call it; it calls them back
    #      through the explainer object it is given)
    "sobol_tf.streaming": 5,
    # 6 -- methods
    "sobol_tf.verification": 6,
    "sobol_tf.attributions": 6,
    # 7 -- what is built on methods
    "sobol_tf.metrics": 7,
    "sobol_tf.concepts": 7,
    "sobol_tf.features_visualizations": 7,
    # 8 -- presentation, and Xplique's ``xplique.commons`` names over methods and metrics
    "sobol_tf.plots": 8,
    "sobol_tf.commons": 8,
    # 9 -- the command line
    "sobol_tf.cli": 9,
    "sobol_tf._cli_parser": 9,
    "sobol_tf.__main__": 9,
    # 10 -- the package's face: lazy attributes over everything
    "sobol_tf": 10,
}


class Import(NamedTuple):
    """One import statement's edge: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int
    in_function: bool


def module_names(root: Path, package: str) -> Dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join([package] + parts)] = path
    return names


def _resolve_relative(module: str, is_package: bool, level: int, name: Optional[str]) -> str:
    """The absolute name of ``from <level dots><name> import ...`` inside ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _function_spans(tree: ast.AST) -> List[Tuple[int, int]]:
    """(first line, last line) of every function in ``tree``."""
    return [(node.lineno, node.end_lineno or node.lineno) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def imports_of(module: str, path: Path, known: Sequence[str], root: Path) -> Iterator[Import]:
    """Every edge from ``module`` (file ``path``) to a module of ``known``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    spans = _function_spans(tree)
    is_package = path.name == "__init__.py"
    known_set = set(known)
    shown = os.path.relpath(path, root.parent)

    def owner(name: str) -> Optional[str]:
        """The longest known module that ``name`` is or lies in."""
        while name and name not in known_set:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(tree):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(module, is_package, node.level, node.module)
                    if node.level else (node.module or ""))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in known_set else base)
        else:
            continue
        inside = any(first <= node.lineno <= last for first, last in spans)
        for target in targets:
            resolved = owner(target)
            if resolved is None:
                continue
            # importing a.b.c runs a/b/__init__ first (unless inside it); the root
            # package's __init__ is left out: every import would otherwise lead there
            parts = resolved.split(".")
            chain = [".".join(parts[:i]) for i in range(2, len(parts))] + [resolved]
            for name in chain:
                if name in known_set and name != module and not module.startswith(name + "."):
                    yield Import(module, name, shown, node.lineno, inside)


def import_graph(root: Path = PACKAGE_ROOT, package: str = "sobol_tf") -> List[Import]:
    """Every edge between modules of the package under ``root``."""
    names = module_names(root, package)
    return [edge for module, path in names.items()
            for edge in imports_of(module, path, list(names), root)]


def layer_of(module: str, layers: Dict[str, int]) -> Optional[int]:
    """The layer of the longest prefix of ``module`` listed in ``layers``; the root
    package's entry is its ``__init__`` alone (a new module must be given a layer)."""
    if module in layers:
        return layers[module]
    name = module.rpartition(".")[0]
    while "." in name:
        if name in layers:
            return layers[name]
        name = name.rpartition(".")[0]
    return None


def cycles(edges: Sequence[Import]) -> List[List[Import]]:
    """One cycle (as its edges) per strongly connected component with more than one
    module (Tarjan's algorithm)."""
    graph: Dict[str, Dict[str, Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack = set()
    components = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found = []
    for component in components:  # a shortest cycle through the component's first node
        start = min(component)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt_frontier = []
            for node in frontier:
                for nxt in sorted(graph[node]):
                    if nxt == start:
                        cycle = paths[node] + [start]
                        break
                    if nxt in component and nxt not in paths:
                        paths[nxt] = paths[node] + [nxt]
                        nxt_frontier.append(nxt)
                if cycle:
                    break
            frontier = nxt_frontier
        found.append([graph[a][b] for a, b in zip(cycle, cycle[1:])])
    return found


def _describe(edge: Import) -> str:
    where = " (inside a function)" if edge.in_function else ""
    return f"{edge.path}:{edge.line}: {edge.source} imports {edge.target}{where}"


def problems(edges: Sequence[Import], layers: Dict[str, int]) -> List[str]:
    """One message per cycle, per module without a layer, per import up a layer."""
    messages = []
    for cycle in cycles(edges):
        messages.append("import cycle " + " -> ".join([e.source for e in cycle]
                                                        + [cycle[0].source])
                        + ":\n    " + "\n    ".join(_describe(e) for e in cycle))
    modules = sorted({e.source for e in edges} | {e.target for e in edges})
    for module in modules:
        if layer_of(module, layers) is None:
            messages.append(f"{module} has no layer: add it (or its package) to LAYERS in "
                            "tests/test_import_graph.py and to docs/architecture.md")
    for edge in edges:
        low, high = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if low is not None and high is not None and high > low:
            messages.append(f"import up a layer: {_describe(edge)} -- layer {low} may not "
                            f"import layer {high} (LAYERS in tests/test_import_graph.py)")
    return messages


def _package_of(module: str) -> str:
    """The top-level subpackage (or module) of ``module``: ``sobol_tf.cli.jobs`` ->
    ``sobol_tf.cli``."""
    return ".".join(module.split(".")[:2])


def private_imports(root: Path = PACKAGE_ROOT, package: str = "sobol_tf") -> List[str]:
    """One message per ``from X import _name`` of a private name (not a module) that
    crosses packages: a sibling's internals. Inside one package (``sobol_tf.cli.*``
    among themselves, ``sobol_tf._utils.*``) private names are shared freely."""
    names = module_names(root, package)
    messages = []
    for module, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = (_resolve_relative(module, path.name == "__init__.py", node.level,
                                      node.module) if node.level else (node.module or ""))
            if base != package and not base.startswith(package + "."):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if (private and f"{base}.{alias.name}" not in names
                        and _package_of(base) != _package_of(module)):
                    shown = os.path.relpath(path, root.parent)
                    messages.append(
                        f"private name imported across packages: {shown}:{node.lineno}: "
                        f"{module} imports {alias.name} from {base} -- give it a public "
                        f"name in {base} (or move it)")
    return messages


def test_no_module_imports_another_packages_private_names():
    found = private_imports()
    assert not found, "\n" + "\n".join(found)


def test_the_private_name_rule_on_a_synthetic_package(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/_engine/__init__.py": "",
        "pkg/_engine/data.py": "def _helper(): ...\ndef helper(): ...\n",
        "pkg/_engine/other.py": "from pkg._engine.data import _helper\n",  # same package
        "pkg/user.py": ("from pkg._engine.data import helper\n"
                        "from pkg import _engine\n"           # a module, not a name
                        "from pkg._engine.data import _helper\n"),
    })
    assert private_imports(package, "pkg") == [
        "private name imported across packages: pkg/user.py:3: pkg.user imports _helper "
        "from pkg._engine.data -- give it a public name in pkg._engine.data (or move it)"]


def test_sobol_tf_has_no_cycle_and_respects_the_layers():
    edges = import_graph()
    assert len(edges) > 50  # the graph was read (the package has well over 50 imports)
    found = problems(edges, LAYERS)
    assert not found, "\n" + "\n".join(found)


def test_every_module_has_a_layer():
    missing = [name for name in module_names(PACKAGE_ROOT, "sobol_tf")
               if layer_of(name, LAYERS) is None]
    assert not missing, f"modules without a layer in LAYERS: {missing}"


# --- the checker itself, on a tiny synthetic package --------------------------------

def _write(root: Path, files: Dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "pkg"


def test_checker_finds_a_cycle_through_a_function_import_and_a_relative_import(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "import os\n\ndef f():\n    from pkg import high  # lazy\n",
        "pkg/high.py": "from .low import f\n",
    })
    edges = import_graph(package, "pkg")
    assert {(e.source, e.target, e.in_function) for e in edges} == {
        ("pkg.low", "pkg.high", True), ("pkg.high", "pkg.low", False)}
    found = problems(edges, {"pkg": 0, "pkg.low": 0, "pkg.high": 0})
    assert len(found) == 1 and found[0].startswith("import cycle")
    assert "pkg/low.py:4: pkg.low imports pkg.high (inside a function)" in found[0]
    assert "pkg/high.py:1: pkg.high imports pkg.low" in found[0]


def test_checker_finds_an_import_up_a_layer_and_resolves_submodules(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "from pkg.sub import top\n",
        "pkg/sub/__init__.py": "from . import top as _top\n",
        "pkg/sub/top.py": "from ..base import nothing_here\n",
    })
    edges = import_graph(package, "pkg")
    pairs = {(e.source, e.target) for e in edges}
    # `from pkg.sub import top` is the submodule pkg.sub.top (and runs pkg.sub's __init__)
    assert ("pkg.base", "pkg.sub.top") in pairs and ("pkg.base", "pkg.sub") in pairs
    assert ("pkg.sub", "pkg.sub.top") in pairs   # a relative import inside a package
    assert ("pkg.sub.top", "pkg.base") in pairs  # `..base` from pkg/sub/top.py
    layers = {"pkg.base": 0, "pkg.sub": 1, "pkg": 2}
    found = problems(edges, layers)
    assert any(m.startswith("import up a layer: pkg/base.py:1: pkg.base imports "
                            "pkg.sub.top") for m in found), found
    assert any(m.startswith("import cycle") for m in found), found  # base <-> sub.top


def test_checker_passes_a_clean_package_and_names_modules_without_a_layer(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "from pkg import top\n",
        "pkg/base.py": "import json\n",
        "pkg/top.py": "from pkg.base import json\nimport pkg.extra\n",
        "pkg/extra.py": "",
    })
    edges = import_graph(package, "pkg")
    assert problems(edges, {"pkg.base": 0, "pkg.top": 1, "pkg.extra": 0, "pkg": 2}) == []
    found = problems(edges, {"pkg.base": 0, "pkg.top": 1, "pkg": 2})
    assert found == ["pkg.extra has no layer: add it (or its package) to LAYERS in "
                     "tests/test_import_graph.py and to docs/architecture.md"]


if __name__ == "__main__":  # print the graph's problems without pytest
    print("\n".join(problems(import_graph(), LAYERS)) or "clean")
