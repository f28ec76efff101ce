"""A griffe extension for the API reference: read the docstrings as the project writes
them (Google style, as Sphinx' napoleon reads it), without editing the source.

* ``Example:`` heads an examples section (griffe knows only ``Examples:``), so ``>>>``
  lines render as code, not as Markdown quotes.
* Sphinx roles (``:class:`Deletion```, ``:func:`...```, ``:mod:`...```) render as code.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.M)
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


class ProjectDocstrings(griffe.Extension):
    """Rewrite each docstring once, when griffe has read it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        text = _EXAMPLE.sub(r"\1Examples:", docstring.value)
        docstring.value = _ROLE.sub(r"`\1`", text)
