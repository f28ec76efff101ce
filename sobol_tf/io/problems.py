"""Files that cannot be used: :class:`FileProblem` and the one line that says why.

The file layer's one exception (the command line prints ``str(problem)`` as its one line
about a file) and :func:`one_line`, which keeps from an exception's message (and its
chained causes) the first line that says what went wrong. No TensorFlow.
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional, Union

#: a file or folder: a str or an os.PathLike (pathlib.Path, ...)
PathLike = Union[str, "os.PathLike[str]"]


class FileProblem(Exception):
    """A file the command cannot use; ``str()`` is the one line printed about it."""

    def __init__(self, path: Any, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.reason = path, message


#: lines of TensorFlow's and Keras' messages that say where an error happened, not what
WHERE_LINES = re.compile(r'^(Graph execution error:?|Exception encountered when calling .*|'
                         r'Detected at node .*|File ".*|Arguments received by .*|\u2022 .*|'
                         r'\[\[.*)$')
#: terminal colour codes (Keras writes some) and TensorFlow's graph-node descriptions
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
NODE_DESCRIPTIONS = re.compile(r" for '\{\{node [^']*'")


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message that says what went wrong.

    Lines that only say where (TensorFlow's "Graph execution error:" and its traceback,
    Keras' "Exception encountered when calling ...", "Arguments received by ...") are
    skipped, and the exception's chained causes are read when its own message has no
    other line; colour codes and graph-node descriptions are removed. The exception's
    type name when nothing is left.
    """
    seen = set()
    current: Optional[BaseException] = exc
    last = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for line in ANSI_CODES.sub("", str(current)).splitlines():
            line = NODE_DESCRIPTIONS.sub("", line).strip()
            if line and not WHERE_LINES.match(line):
                return line
        last = current
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return type(last).__name__
