"""Exceptions raised by sobol_tf.

Every exception derives from :class:`SobolTFError`, and also from the built-in class
a caller would catch without knowing this library (``ValueError``, ``TypeError`` or
``RuntimeError``).
"""


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
