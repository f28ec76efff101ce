"""Issue 23: each black-box method file says only its masks, its estimator and its
arguments, in at most METHOD_LINES lines of code (docstrings, comments and blank lines
not counted); the shared plumbing lives in base.py, designs.py and
surrogate_explainer.py.

Run as a script to print the counts: ``python tests/attributions/test_method_size.py``.
"""
from __future__ import annotations

import ast
import io
import pathlib
import sys
import tokenize

import pytest

ATTRIBUTIONS = pathlib.Path(__file__).resolve().parents[2] / "sobol_tf" / "attributions"
METHODS = ("sobol", "hsic", "rise", "occlusion", "lime", "kernel_shap")
METHOD_LINES = 120

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
           tokenize.DEDENT, tokenize.ENDMARKER}


def code_lines(source: str) -> int:
    """Lines of ``source`` holding code: docstrings (of the module, classes and
    functions), comments and blank lines not counted; a statement over several lines
    counts each of them."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in SKIPPED:
            lines.update(line for line in range(token.start[0], token.end[0] + 1)
                         if line not in docstrings)
    return len(lines)


def test_the_count_skips_docstrings_comments_and_blank_lines():
    source = '''"""Module
docstring."""
import os  # a comment

# a comment line


class A:
    """Class docstring."""

    def f(self, x,
          y):
        """Function
        docstring."""
        text = """not a
        docstring"""
        return (x +
                y)
'''
    # import, class, def (2 lines), text (2 lines), return (2 lines)
    assert code_lines(source) == 8


@pytest.mark.parametrize("name", METHODS)
def test_each_black_box_method_file_is_thin(name):
    count = code_lines((ATTRIBUTIONS / f"{name}.py").read_text())
    assert count <= METHOD_LINES, f"{name}.py holds {count} lines of code"


if __name__ == "__main__":
    for path in sys.argv[1:] or [ATTRIBUTIONS / f"{name}.py" for name in METHODS]:
        print(f"{code_lines(pathlib.Path(path).read_text()):5d} {path}")
