"""The pieces of LIME and Kernel SHAP that are not the explainer: the default mapping of
an image to interpretable features (a grid), the weighted linear fit, the similarity
kernel. Written in numpy / TensorFlow so that scikit-learn stays optional.
"""
from __future__ import annotations

from typing import Any

import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_choice, check_real
from sobol_tf.errors import InvalidArgumentError

#: superpixels per side of the default image mapping (a regular grid, see
#: :func:`grid_mapping`).
DEFAULT_GRID_SIZE = 8

#: eigenvalues of the Gram matrix below this fraction of the largest count as 0 in the
#: least-squares fit (directions the samples do not determine get no coefficient).
RANK_TOLERANCE = 1e-10

#: the L2 norm below which a vector counts as zero in the cosine distance (as Keras'
#: l2_normalize).
NORM_EPSILON = 1e-12


def grid_mapping(height: int, width: int, grid_size: int = DEFAULT_GRID_SIZE) -> np.ndarray:
    """Ids (height, width) int32 of a regular grid of superpixels, row-major from 0.

    ``min(grid_size, height)`` bands of rows times ``min(grid_size, width)`` bands of
    columns, of sizes differing by at most one pixel; pixel (r, c) belongs to band
    ``r * rows // height`` (and likewise for columns).
    """
    rows, cols = min(grid_size, height), min(grid_size, width)
    row_ids = np.arange(height) * rows // height
    col_ids = np.arange(width) * cols // width
    return (row_ids[:, None] * cols + col_ids[None, :]).astype(np.int32)


class WeightedLinearRegression:
    """Weighted least squares with an intercept and an optional ridge penalty, in numpy.

    Minimises ``sum_p w_p (y_p - b - z_p . beta)^2 + alpha ||beta||^2`` (the intercept b is
    not penalised): the fit of scikit-learn's ``Ridge(alpha)`` (``alpha > 0``) and
    ``LinearRegression()`` (``alpha = 0``, the minimum-norm solution when the samples do not
    determine it), without needing scikit-learn, and fitted for every input at once.

    Args:
        alpha: the ridge penalty, >= 0.

    Attributes (after :meth:`fit`):
        coef_: (F,) the coefficients; intercept_: the intercept.
    """

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = check_real("alpha", alpha, minimum=0.0, finite=True)

    def __repr__(self):
        return f"WeightedLinearRegression(alpha={self.alpha})"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> WeightedLinearRegression:
        """Fit on samples X (P, F), targets y (P,), weights (P,) (None: all 1)."""
        X = np.asarray(X, np.float64)
        weights = np.ones(len(X)) if sample_weight is None else sample_weight
        coef, intercept = self.fit_many(X[None], np.asarray(y, np.float64)[None],
                                        np.asarray(weights, np.float64)[None])
        self.coef_, self.intercept_ = coef[0], intercept[0]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, np.float64) @ self.coef_ + self.intercept_

    def fit_many(self, samples: np.ndarray, scores: np.ndarray,
                 weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (N, F) and intercepts (N,) of N fits at once: samples (N or 1, P,
        F), scores (N, P), weights (N, P) >= 0 with a positive sum per row."""
        total = weights.sum(axis=1, keepdims=True)
        mean_z = np.einsum("np,npf->nf", weights, np.broadcast_to(
            samples, (len(scores),) + samples.shape[1:])) / total
        mean_y = (weights * scores).sum(axis=1) / weights.sum(axis=1)
        centred = samples - mean_z[:, None, :]                     # (N, P, F)
        root = np.sqrt(weights)[:, :, None]
        design = root * centred
        target = root[..., 0] * (scores - mean_y[:, None])
        gram = np.einsum("npf,npg->nfg", design, design)              # (N, F, F)
        moment = np.einsum("npf,np->nf", design, target)
        if self.alpha > 0:
            coef = np.linalg.solve(gram + self.alpha * np.eye(samples.shape[2]),
                                   moment[..., None])[..., 0]
        else:  # the minimum-norm solution: the pseudo-inverse of the Gram matrix
            values, vectors = np.linalg.eigh(gram)
            kept = values > RANK_TOLERANCE * values.max(axis=1, keepdims=True)
            inverse = np.where(kept, 1.0 / np.where(kept, values, 1.0), 0.0)
            coef = np.einsum("nfk,nk,ngk,ng->nf", vectors, inverse, vectors, moment)
        return coef, mean_y - np.einsum("nf,nf->n", mean_z, coef)


class ExponentialKernel:
    """LIME's similarity ``exp(-D(x, x')^2 / kernel_width^2)`` of an input x and a
    perturbed copy x', D the Euclidean distance or the cosine distance ``1 - cos(x, x')``.

    Callable as Xplique's kernels, ``kernel(original_input, interpret_samples,
    perturbed_samples)`` -> (P,); :class:`Lime` computes the same values in closed form
    from per-feature sums (:meth:`from_sums`), without building the perturbed inputs.
    """

    def __init__(self, distance_mode: str = "euclidean",
                 kernel_width: float = 45.0) -> None:
        self.distance_mode = check_choice("distance_mode", distance_mode,
                                          ("euclidean", "cosine"))
        if (isinstance(kernel_width, bool) or not isinstance(kernel_width, numbers.Real)
                or not kernel_width > 0 or not np.isfinite(kernel_width)):
            raise InvalidArgumentError(
                f"kernel_width must be a finite number > 0, got {kernel_width!r}.")
        self.kernel_width: float = float(kernel_width)

    def __call__(self, original_input: Any, interpret_samples: Any,
                 perturbed_samples: Any) -> tf.Tensor:
        x = tf.reshape(tf.cast(original_input, tf.float64), (1, -1))
        pert = tf.reshape(tf.cast(perturbed_samples, tf.float64),
                          (tf.shape(perturbed_samples)[0], -1))
        if self.distance_mode == "euclidean":
            distances = tf.reduce_sum((pert - x) ** 2, axis=1)
        else:
            cosine = tf.reduce_sum(tf.math.l2_normalize(x, axis=1, epsilon=NORM_EPSILON)
                                   * tf.math.l2_normalize(pert, axis=1, epsilon=NORM_EPSILON),
                                   axis=1)
            distances = (1.0 - cosine) ** 2
        return tf.cast(tf.exp(-distances / self.kernel_width ** 2), tf.float32)

    def from_sums(self, samples: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """Similarities (P,) from samples (P, F) and the per-feature sums of one input:
        ``sums`` (4, F) of x^2, x * ref, ref^2 and (x - ref)^2 over each feature's values.
        Exact for samples in [0, 1]: x' = ref + z (x - ref) feature by feature."""
        xx, xr, rr, dd = sums
        if self.distance_mode == "euclidean":
            distances = (1.0 - samples) ** 2 @ dd
        else:
            dot = xr.sum() + samples @ (xx - xr)
            norm_p = rr.sum() + samples @ (2 * (xr - rr)) + samples ** 2 @ (xx - 2 * xr + rr)
            norms = (np.sqrt(np.maximum(xx.sum(), NORM_EPSILON))
                     * np.sqrt(np.maximum(norm_p, NORM_EPSILON)))
            distances = (1.0 - dot / norms) ** 2
        return np.exp(-distances / self.kernel_width ** 2)
