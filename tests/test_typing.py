"""Static typing: mypy finds no error in ``sobol_tf/``, the package ships ``py.typed``,
and the public functions are annotated.

mypy rather than pyright: it installs with pip alone (pyright needs Node.js), so the
check runs wherever the tests run. Its configuration is the ``[mypy]`` section of
setup.cfg (lenient where TensorFlow has no stubs: those imports are ``Any``).
"""
from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sobol_tf"
#: the share of public callables with complete annotations required
MIN_ANNOTATED = 0.90


def public_callables(path: Path) -> Iterator[Tuple[str, bool]]:
    """(qualified name, completely annotated) of each public function, public method and
    public class ``__init__`` of a module: every parameter but self/cls annotated
    (``*args``/``**kwargs`` included) and a return annotation (``__init__``: none
    needed). Names starting with ``_`` (other than ``__init__``/``__call__``), and
    functions nested in functions, are not public."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def complete(node: ast.AST, method: bool) -> bool:
        args = node.args
        params = args.posonlyargs + args.args + args.kwonlyargs
        if method and params and params[0].arg in ("self", "cls") and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod"
                for d in node.decorator_list):
            params = params[1:]
        params = params + [a for a in (args.vararg, args.kwarg) if a is not None]
        if any(p.annotation is None for p in params):
            return False
        return node.returns is not None or node.name == "__init__"

    def visit(body: List[ast.stmt], prefix: str, in_class: bool) -> Iterator[Tuple[str, bool]]:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from visit(node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                public = not node.name.startswith("_") or node.name in ("__init__",
                                                                        "__call__")
                if public:
                    yield f"{prefix}{node.name}", complete(node, in_class)

    yield from visit(tree.body, "", False)


def annotation_share(root: Path = PACKAGE) -> Tuple[float, List[str]]:
    """(share of public callables completely annotated, the names of the others) over
    the modules of ``root`` (private modules ``_name.py`` included: their public
    functions are the engine's API)."""
    done, missing = 0, []
    for path in sorted(root.rglob("*.py")):
        for name, ok in public_callables(path):
            if ok:
                done += 1
            else:
                missing.append(f"{path.relative_to(root.parent)}:{name}")
    total = done + len(missing)
    return (done / total if total else 1.0), missing


def test_annotation_share_counts_what_it_should(tmp_path):
    """The measure on a module whose answer is known: 2 of 5 public callables complete."""
    module = tmp_path / "pkg" / "m.py"
    module.parent.mkdir()
    module.write_text(
        "def full(a: int, *rest: int, **kw: str) -> int: ...\n"
        "def no_return(a: int): ...\n"
        "def no_arg(a) -> None: ...\n"
        "def _private(a): ...\n"
        "class Thing:\n"
        "    def __init__(self, size: int): ...\n"
        "    def method(self, x): ...\n"
        "    def _hidden(self, x): ...\n"
        "    class _Inner:\n"
        "        def f(self): ...\n")
    share, missing = annotation_share(tmp_path / "pkg")
    assert share == pytest.approx(2 / 5)
    assert missing == ["pkg/m.py:no_return", "pkg/m.py:no_arg", "pkg/m.py:Thing.method"]


def test_public_functions_are_annotated():
    share, missing = annotation_share()
    print(f"annotated: {share:.1%}; missing: {len(missing)}")
    assert share >= MIN_ANNOTATED, (
        f"{share:.1%} of public functions/methods have complete annotations, under "
        f"{MIN_ANNOTATED:.0%}; not annotated:\n" + "\n".join(missing))


def test_py_typed_is_shipped():
    assert (PACKAGE / "py.typed").is_file()
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "py.typed" in config["options.package_data"]["sobol_tf"]
    assert "mypy" in config["options.extras_require"]["dev"]


def test_mypy_finds_no_error():
    pytest.importorskip("mypy")
    # a cache outside the repository (nothing to ignore in git), kept between runs: a
    # warm run takes a few seconds
    cache = os.environ.get("MYPY_CACHE_DIR",
                           os.path.join(tempfile.gettempdir(), "sobol_tf_mypy_cache"))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg"),
         "--cache-dir", cache, "sobol_tf"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
