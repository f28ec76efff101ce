"""HSIC estimators (Novello, Fel & Vigouroux, NeurIPS 2022), Xplique's names.

HSIC between cell i's mask values x (n designs) and the scores y is estimated by
``trace(H K_i H H L H) / n`` (H the centring matrix, K_i = 1 + k(x, x') the input
Gram matrix, L the output Gram matrix). Since H L H has zero row and column sums, the
constant of K_i and every term of k that depends on only one of x, x' cancel, so

    HSIC_i = sum_jk k(x_j, x_k) Lc_jk / n,        Lc = H L H,

and each estimator's kernel splits into a part computed as a quadratic form
(``x^T Lc x``, for all the cells at once) and, for non-binary masks only, a pairwise
part computed in chunks of ``batch_size`` cells. On binary masks every kernel reduces
to a multiple of ``x^T Lc x`` (binary: 2, RBF: 2 (1 - exp(-2)), Sobolev: 1), so no
(n, n) matrix per cell is ever built.

Output kernel: an RBF of the scores whose width is the median of the pairwise distances
|y_j - y_k| (j < k): the paper's median heuristic (Xplique takes the median of the scores
themselves, which is 0 or negative for scores <= 0). When more than half of the pairs tie
(median 0) the mean distance is used; scores constant to float32 resolution (as for the
Sobol estimators) give 0.
"""
from __future__ import annotations

from typing import Any

import math

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int
from sobol_tf._utils.validation import resolve
from sobol_tf.attributions.estimators import constant_scores
from sobol_tf.attributions.kernels import rbf
from sobol_tf.errors import InvalidArgumentError

#: Xplique's default ``batch_size`` of the estimators (cells per chunk): all at once.
DEFAULT_BATCH_SIZE = 100000

#: the most float32 values of one chunk of pairwise kernels (cells x n x n) held at once.
MAX_PAIRWISE_VALUES = 1 << 24

OUTPUT_KERNELS = ("rbf",)


def centred_output_gram(scores: Any) -> tf.Tensor:
    """H L H for each row of ``scores`` (B, n): L the RBF Gram matrix of the scores with
    the median pairwise distance as width (see the module's docstring), (B, n, n)."""
    nb_design = tf.shape(scores)[1]
    distances = tf.abs(scores[:, :, None] - scores[:, None, :])           # (B, n, n)
    upper = tf.linalg.band_part(tf.ones((nb_design, nb_design)), 0, -1) - tf.eye(nb_design)
    pairs = tf.transpose(tf.boolean_mask(tf.transpose(distances, (1, 2, 0)), upper > 0))
    pairs = tf.sort(pairs, axis=-1)                                         # (B, n(n-1)/2)
    count = tf.shape(pairs)[1]
    median = 0.5 * (pairs[:, (count - 1) // 2] + pairs[:, count // 2])
    width = tf.where(median > 0, median, tf.reduce_mean(pairs, axis=-1))
    width = tf.where(width > 0, width, tf.ones_like(width))[:, None, None]
    gram = rbf(scores[:, :, None], scores[:, None, :], width)  # the public kernel
    gram = gram - tf.reduce_mean(gram, axis=1, keepdims=True)
    return gram - tf.reduce_mean(gram, axis=2, keepdims=True)


def _quadratic(x, lc):
    """x^T Lc x for every cell: x (n, d), lc (B, n, n) -> (B, d)."""
    return tf.einsum("jd,bjk,kd->bd", x, lc, x)


class HsicEstimator:
    """Base of the HSIC estimators.

    ``estimator(masks, outputs, nb_design)`` (Xplique's call): masks (nb_design, *cells)
    (e.g. (n, grid, grid, channels)), outputs (nb_design,) -> float32 indices of shape
    ``cells``; outputs (N, nb_design) -> (N, *cells).
    :class:`~sobol_tf.attributions.HsicAttributionMethod` calls :meth:`indices` instead,
    compiled, on batches of inputs.

    Args:
        output_kernel: the kernel of the scores; only 'rbf' (as Xplique).

    Attributes:
        batch_size: cells whose pairwise kernels are computed together (non-binary masks
            only), :data:`DEFAULT_BATCH_SIZE` unless :meth:`set_batch_size` changes it;
            also capped so that a chunk holds at most :data:`MAX_PAIRWISE_VALUES` values.

    Raises:
        InvalidArgumentError: another ``output_kernel``.
    """

    #: coefficient c of the binary-mask reduction HSIC = c x^T Lc x / n.
    binary_coefficient = 2.0

    def __init__(self, output_kernel: str = "rbf") -> None:
        if output_kernel not in OUTPUT_KERNELS:
            raise InvalidArgumentError(
                f"output_kernel must be one of {list(OUTPUT_KERNELS)}, got {output_kernel!r}."
            )
        self.output_kernel = output_kernel
        self.batch_size = DEFAULT_BATCH_SIZE

    def set_batch_size(self, batch_size: int | None = None) -> None:
        """Set :attr:`batch_size` (Xplique's ``estimator_batch_size``); None keeps it.

        Raises:
            InvalidTypeError, InvalidArgumentError: not None nor an integer >= 1.
        """
        if batch_size is not None:
            self.batch_size = check_positive_int("estimator_batch_size", batch_size)

    def indices(self, scores: Any, masks: Any, binary: bool) -> tf.Tensor:
        """HSIC of every cell for a batch of inputs (TensorFlow ops, traceable).

        Args:
            scores: float32 (B, n) scores of each input on the n designs.
            masks: float32 (n, d) mask values of the cells.
            binary: whether every mask value is 0 or 1 (a Python bool): then only the
                quadratic form is computed.

        Returns:
            float32 (B, d); 0 for the inputs whose scores are constant.
        """
        scores = tf.convert_to_tensor(scores, tf.float32)
        masks = tf.convert_to_tensor(masks, tf.float32)
        lc = centred_output_gram(scores)
        if binary:
            total = self.binary_coefficient * _quadratic(masks, lc)
        else:
            total = self._separable(masks, lc)
            if self._has_pairwise:
                total = total + self._pairwise_sums(masks, lc)
        nb_design = tf.cast(tf.shape(scores)[1], tf.float32)
        return tf.where(constant_scores(scores)[:, None], tf.zeros_like(total),
                        total / nb_design)

    def __call__(self, masks: Any, outputs: Any, nb_design: int) -> tf.Tensor:
        cells = tuple(int(size) for size in masks.shape[1:])
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        flat = tf.reshape(tf.cast(tf.convert_to_tensor(masks), tf.float32), (-1, math.prod(cells)))
        outputs = tf.cast(tf.convert_to_tensor(outputs), tf.float32)
        squeeze = outputs.shape.rank == 1
        outputs = tf.reshape(outputs, (-1, nb_design))
        if flat.shape[0] != nb_design:
            raise InvalidArgumentError(
                f"masks has {flat.shape[0]} designs, outputs and nb_design {nb_design}; pass "
                "the masks the outputs were computed on."
            )
        binary = bool(np.all((flat.numpy() == 0) | (flat.numpy() == 1)))
        result = self.indices(outputs, flat, binary)
        return tf.reshape(result, cells if squeeze else (-1,) + cells)

    # -- what an estimator provides ----------------------------------------------------
    _has_pairwise = False

    def _separable(self, x, lc):
        """The quadratic-form part of sum_jk k(x_j, x_k) Lc_jk, (B, d)."""
        return self.binary_coefficient * _quadratic(x, lc)

    def _pairwise_kernel(self, delta):
        """The part of k that is a function of x - x' only (non-binary masks)."""
        raise NotImplementedError

    def _pairwise_sums(self, x, lc):
        """sum_jk g(x_j - x_k) Lc_jk for every cell, ``chunk`` cells at a time, (B, d)."""
        nb_design, dimension = x.shape
        chunk = max(1, min(self.batch_size, dimension,
                           MAX_PAIRWISE_VALUES // max(1, nb_design ** 2)))
        nb_chunks = -(-dimension // chunk)
        columns = tf.pad(tf.transpose(x), [[0, nb_chunks * chunk - dimension], [0, 0]])
        columns = tf.reshape(columns, (nb_chunks, chunk, nb_design))

        def one_chunk(cells):                                     # (chunk, n)
            kernel = self._pairwise_kernel(cells[:, :, None] - cells[:, None, :])
            return tf.einsum("cjk,bjk->bc", kernel, lc)

        sums = tf.map_fn(one_chunk, columns, fn_output_signature=tf.float32)  # (chunks, B, c)
        sums = tf.reshape(tf.transpose(sums, (1, 0, 2)), (tf.shape(lc)[0], -1))
        return sums[:, :dimension]

    def __repr__(self):
        return f"{type(self).__name__}(output_kernel={self.output_kernel!r})"


class BinaryEstimator(HsicEstimator):
    """The binary (Dirac) kernel of the paper on the masks, k(x, x') = 1/2 - (x - x')^2:
    HSIC = 2 x^T Lc x / n for any mask values. Xplique's and our default."""


class RbfEstimator(HsicEstimator):
    """An RBF kernel of width 1/2 on the masks, k(x, x') = exp(-2 (x - x')^2) (as Xplique).

    On binary masks this is (1 - exp(-2)) times :class:`BinaryEstimator`.
    """

    binary_coefficient = 2.0 * (1.0 - math.exp(-2.0))
    _has_pairwise = True

    def _separable(self, x, lc):
        return tf.zeros((tf.shape(lc)[0], tf.shape(x)[1]), tf.float32)

    def _pairwise_kernel(self, delta):
        return tf.exp(-2.0 * tf.square(delta))


class SobolevEstimator(HsicEstimator):
    """Xplique's Sobolev kernel on the masks (values in [0, 1]):
    k(x, x') = B2(|x - x'|) / 2 + (|x| - 1/2)(|x'| - 1/2), B2(t) = t^2 - t + 1/6.

    On binary masks this is half of :class:`BinaryEstimator`.
    """

    binary_coefficient = 1.0
    _has_pairwise = True

    def _separable(self, x, lc):
        shifted = tf.abs(x) - 0.5
        return _quadratic(shifted, lc) - _quadratic(x, lc)

    def _pairwise_kernel(self, delta):
        return -0.5 * tf.abs(delta)


ESTIMATORS = {"binary": BinaryEstimator, "rbf": RbfEstimator, "sobolev": SobolevEstimator}


def get(identifier: Any) -> Any:
    """Resolve an HSIC estimator from None (binary), a name, an HsicEstimator or a
    callable ``(masks, outputs, nb_design) -> indices`` (Xplique's call, one input).

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither None, a string nor a callable.
    """
    return resolve("estimator", identifier, BinaryEstimator, ESTIMATORS,
                   "an HsicEstimator or a callable (masks, outputs, nb_design) -> indices")


_DEFAULT_ESTIMATOR = BinaryEstimator()


def hsic_binary_rbf(scores: tf.Tensor, centred_masks: tf.Tensor) -> tf.Tensor:
    """HSIC between each binary cell mask and the score, for a batch of inputs.

    :class:`~sobol_tf.attributions.hsic_estimators.BinaryEstimator` on binary masks:
    with the kernel of the binary masks k(x, x') = 1 + (1/2 - (x - x')^2) and the RBF
    kernel on the scores (width: the median pairwise distance), the estimator
    trace(H K H H L H) / n of Xplique equals (2 / n) (H x)^T L (H x) for binary x.

    Args:
        scores: float32 (B, n), the scores of each input on the n designs.
        centred_masks: float32 (n, d), the binary designs minus their column means.

    Returns:
        float32 (B, d) HSIC indices.
    """
    return _DEFAULT_ESTIMATOR.indices(scores, centred_masks, binary=True)
