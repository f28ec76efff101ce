"""The one progress line of long runs: items done, items/s and time left.

No TensorFlow here (it lives outside ``sobol_tf._utils``, whose package imports it):
``sobol-tf`` imports it before TensorFlow. (The bars of the batches
inside one ``explain`` call are keras' Progbar, see :func:`sobol_tf._utils.batching.progbar`.)
"""
from __future__ import annotations

import sys
import time
from typing import Optional


class Progress:
    """One progress line on stdout: items done (of the total when known), items/s and
    the time left; rewritten in place on a terminal, one line per update otherwise.
    Shown by :func:`explain_dataset` (``verbose=True``) and ``sobol-tf explain``.

    Args:
        total: the number of items, or None when unknown (no time left then).
        title: a line printed first, or None.
        unit: what is counted ("inputs", "images").
        quiet: print nothing.
    """

    def __init__(self, total: Optional[int], title: Optional[str] = None, *,
                 unit: str = "inputs", quiet: bool = False) -> None:
        self.clock = time.monotonic
        self.total, self.done, self.unit, self.quiet = total, 0, unit, quiet
        self.start = self.clock()
        self.tty = sys.stdout.isatty()
        if title and not quiet:
            print(title, flush=True)

    def update(self, count: int) -> None:
        """Count ``count`` more items done and print the line."""
        self.done += count
        if self.quiet:
            return
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        line = f"{self.done}/{self.total} {self.unit}" if self.total is not None else \
            f"{self.done} {self.unit}"
        line += f"  {rate:.2f} {self.unit}/s"
        if self.total is not None:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            shown = "?" if left == float("inf") else \
                f"{int(left) // 3600}:{int(left) % 3600 // 60:02d}:{int(left) % 60:02d}"
            line += f"  {shown} left"
        last = self.total is not None and self.done >= self.total
        print(("\r" if self.tty else "") + line, end="\n" if last or not self.tty else "",
              flush=True)

    def close(self) -> None:
        """End the line on a terminal (after an interruption or an unknown total)."""
        if self.tty and not self.quiet and not (self.total is not None
                                                and self.done >= self.total):
            print(flush=True)
