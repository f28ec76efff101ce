"""Exceptions raised by sobol_tf.

Every exception derives from :class:`SobolTFError`, and also from the built-in class
a caller would catch without knowing this library (``ValueError``, ``TypeError`` or
``RuntimeError``).
"""
import os
import sys
import warnings
from typing import Any


class SobolTFError(Exception):
    """Base class of every exception raised by sobol_tf."""


class InvalidArgumentError(SobolTFError, ValueError):
    """An argument has the right type but a value that is not allowed."""


class InvalidTypeError(SobolTFError, TypeError):
    """An argument has a type that is not allowed."""


class ModelCallError(SobolTFError, RuntimeError):
    """The model (or the operator) raised while scoring inputs.

    The message says what was being evaluated; the model's own exception is chained
    as ``__cause__``.
    """


class NotFittedError(SobolTFError, ValueError, AttributeError):
    """A method that needs a fitted state (e.g. CRAFT's concept bank) was called before
    ``fit`` (a ValueError and an AttributeError, as scikit-learn's ``NotFittedError``)."""


class SobolTFWarning(UserWarning):
    """A result that is computed but deserves a word: e.g. an all-zero target row (its
    map is all zeros), a model TensorFlow cannot trace (it runs eagerly, slower).

    Silence it with ``warnings.filterwarnings("ignore", category=SobolTFWarning)``.
    """


def warn(message: str) -> None:
    """Emit ``message`` as a :class:`SobolTFWarning` pointing at the caller's line (the
    first frame outside this package), not at the library's internals."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: Any = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, SobolTFWarning, stacklevel=level)
