"""Xplique's HSIC kernels (``xplique.attributions.global_sensitivity_analysis.kernels``):
pairwise kernel matrices of samples, named by :class:`Kernel`.

Each kernel takes ``X`` and ``Y`` that broadcast against each other, typically a column
``x`` (n, 1) and its transpose (1, n), and returns the (n, n) matrix k(x_i, x_j). The HSIC
estimators of :mod:`sobol_tf.attributions.hsic_estimators` compute the same kernels,
vectorised over cells and inputs; these functions are the kernels one at a time, for
users and for Xplique code.

Gretton, Bousquet, Smola and Schölkopf, "Measuring Statistical Dependence with
Hilbert-Schmidt Norms", ALT 2005; Novello, Fel and Vigouroux, "Making Sense of
Dependence: Efficient Black-box Explanations Using Dependence Measure", NeurIPS 2022.
"""
from __future__ import annotations

from enum import Enum

import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError


def rbf(X: tf.Tensor, Y: tf.Tensor, width: tf.Tensor | float) -> tf.Tensor:
    """Gaussian (RBF) kernel exp(-(x - y)^2 / (2 width^2)).

    Args:
        X: samples, e.g. (n, 1).
        Y: samples broadcasting against ``X``, e.g. (1, n).
        width: the kernel's width (a positive scalar).

    Returns:
        float32 tensor of the broadcast shape, e.g. (n, n), values in (0, 1].

    Example:
        >>> x = tf.constant([[0.0], [1.0]])
        >>> rbf(x, tf.transpose(x), width=1.0)   # [[1, e^-0.5], [e^-0.5, 1]]
    """
    X, Y = tf.cast(X, tf.float32), tf.cast(Y, tf.float32)
    width = tf.cast(width, tf.float32)
    return tf.exp(-tf.square(X - Y) / (2.0 * tf.square(width)))


def binary(X: tf.Tensor, Y: tf.Tensor) -> tf.Tensor:
    """Centred Dirac kernel of binary samples: 1/2 when x = y, -1/2 otherwise
    (0.5 - (x - y)^2 for x, y in {0, 1}).

    Args:
        X: binary samples, e.g. (n, 1).
        Y: binary samples broadcasting against ``X``, e.g. (1, n).

    Returns:
        float32 tensor of the broadcast shape.
    """
    X, Y = tf.cast(X, tf.float32), tf.cast(Y, tf.float32)
    return 0.5 - tf.square(X - Y)


def sobolev(X: tf.Tensor, Y: tf.Tensor) -> tf.Tensor:
    """Sobolev kernel of order 1 on [0, 1] without its constant term, as Xplique:
    B1(x) B1(y) + B2(|x - y|) / 2, with the Bernoulli polynomials B1(t) = t - 1/2 and
    B2(t) = t^2 - t + 1/6.

    Args:
        X: samples in [0, 1], e.g. (n, 1).
        Y: samples broadcasting against ``X``, e.g. (1, n).

    Returns:
        float32 tensor of the broadcast shape.
    """
    X, Y = tf.cast(X, tf.float32), tf.cast(Y, tf.float32)
    distance = tf.abs(X - Y)
    bernoulli_2 = tf.square(distance) - distance + 1.0 / 6.0
    return (tf.abs(X) - 0.5) * (tf.abs(Y) - 0.5) + bernoulli_2 / 2.0


_KERNELS = {"rbf": rbf, "binary": binary, "sobolev": sobolev}


class Kernel(Enum):
    """The HSIC kernels by name, Xplique's ``Kernel``: ``Kernel.from_string('rbf')``.

    A member is callable as its kernel: ``Kernel.RBF(X, Y, width=w)``,
    ``Kernel.BINARY(X, Y)``, ``Kernel.SOBOLEV(X, Y)``. Unlike Xplique (whose member
    values are the functions), the values are the names (``Kernel.RBF.value == 'rbf'``).
    """

    RBF = "rbf"
    BINARY = "binary"
    SOBOLEV = "sobolev"

    @staticmethod
    def from_string(kernel_function: str) -> "Kernel":
        """The kernel named ``kernel_function``: 'rbf', 'binary' or 'sobolev'.

        Raises:
            InvalidArgumentError: another name (Xplique: AssertionError).
        """
        for kernel in Kernel:
            if kernel_function == kernel.value:
                return kernel
        raise InvalidArgumentError(
            f"kernel_function must be one of {[k.value for k in Kernel]}, got "
            f"{kernel_function!r}.")

    def __call__(self, X: tf.Tensor, Y: tf.Tensor, *args, **kwargs) -> tf.Tensor:
        """The kernel matrix k(X, Y) (see :func:`rbf`, :func:`binary`, :func:`sobolev`)."""
        return _KERNELS[self.value](X, Y, *args, **kwargs)  # type: ignore[operator]


__all__ = ["Kernel", "rbf", "binary", "sobolev"]
