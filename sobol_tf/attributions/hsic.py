"""HSIC attribution method (Novello, Fel & Vigouroux, NeurIPS 2022)."""
import math
import warnings

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_grid_fits, check_positive_int, check_seed
from sobol_tf.attributions import perturbations as perturbations_module
from sobol_tf.attributions.estimators import constant_scores
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError

#: inputs whose (nb_design, nb_design) Gram matrices the estimator computes at once (at
#: most; fewer when that would pass MAX_BYTES).
ESTIMATOR_INPUTS = 8

#: the largest binary design (nb_design x grid_size**2 float32 masks), and the largest
#: estimator memory for one input (about 4 nb_design**2 + nb_design * d floats), that an
#: explainer accepts; larger ones are refused in the constructor.
MAX_BYTES = 1 << 30



def estimator_bytes(nb_design, dimension):
    """Bytes the HSIC estimator holds for one input: distances, pairs, Gram, projection."""
    return 4 * (4 * nb_design ** 2 + nb_design * dimension)


def twin_cells(design):
    """The first pair (i, j), i < j, of columns of a binary design that are equal or
    complementary, or None. Exact, in O(nb_design * d) (columns hashed as bytes).
    """
    canonical = design != design[:1]            # flip each column so that its row 0 is 0
    packed = np.packbits(canonical, axis=0).T   # (d, ceil(n / 8)) one byte string per column
    seen = {}
    for column, key in enumerate(map(bytes, packed)):
        if key in seen:
            return seen[key], column
        seen[key] = column
    return None


def hsic_binary_rbf(scores, centred_masks):
    """HSIC between each binary cell mask and the score, for a batch of inputs.

    With the kernel of the binary masks k(x, x') = 1 + (1/2 - (x - x')^2) (1.5 when the
    cell is kept or dropped in both designs, 0.5 otherwise) and the RBF kernel on the
    scores L = exp(-(y - y')^2 / (2 s^2)), s the median of the pairwise distances
    |y_j - y_k| (j < k), the estimator trace(H K H H L H) / n of Xplique equals
    (2 / n) (H x)^T L (H x) for binary x, which is what is computed, for all the cells
    at once (H is the centring matrix; the constant part of K cancels on H L H).

    When more than half of the pairs tie (median 0), s is the mean pairwise distance;
    when the scores are constant to float32 resolution (spread at most
    ``estimators.DEGENERATE_ULPS`` ulps of their magnitude, as for the Sobol
    estimators), every index is 0.

    Args:
        scores: float32 (B, n), the scores of each input on the n designs.
        centred_masks: float32 (n, d), the binary designs minus their column means.

    Returns:
        float32 (B, d) HSIC indices.
    """
    nb_design = tf.shape(scores)[1]
    distances = tf.abs(scores[:, :, None] - scores[:, None, :])           # (B, n, n)
    upper = tf.linalg.band_part(tf.ones((nb_design, nb_design)), 0, -1) \
        - tf.eye(nb_design)
    pairs = tf.transpose(tf.boolean_mask(tf.transpose(distances, (1, 2, 0)), upper > 0))
    pairs = tf.sort(pairs, axis=-1)                                         # (B, n(n-1)/2)
    count = tf.shape(pairs)[1]
    median = 0.5 * (pairs[:, (count - 1) // 2] + pairs[:, count // 2])
    width = tf.where(median > 0, median, tf.reduce_mean(pairs, axis=-1))
    width = tf.where(width > 0, width, tf.ones_like(width))[:, None, None]
    gram = tf.exp(-tf.square(distances) / (2.0 * tf.square(width)))        # (B, n, n)
    projected = tf.einsum("bjk,kd->bjd", gram, centred_masks)
    indices = tf.einsum("bjd,jd->bd", projected, centred_masks)
    return tf.where(constant_scores(scores)[:, None], tf.zeros_like(indices),
                    2.0 * indices / tf.cast(nb_design, tf.float32))


class HsicAttributionMethod(BlackBoxExplainer):
    """HSIC attribution method: dependence between each grid cell's presence and the score.

    The image is cut into ``grid_size`` x ``grid_size`` cells; ``nb_design`` binary masks
    (each cell kept or removed) are drawn from a quasi-Monte Carlo design thresholded at
    1/2, the input is perturbed by each mask, and the attribution of a cell is the
    Hilbert-Schmidt Independence Criterion between that cell's mask and the score
    (see :func:`hsic_binary_rbf`). Costs ``nb_design`` forward passes per input (against
    ``nb_design * (d + 2)`` for Sobol).

    Deviations from Xplique: the RBF bandwidth is the median of the pairwise distances
    of the scores (the median heuristic of the paper; Xplique takes the median of the
    scores themselves, which fails for scores <= 0); the sampler is resolved as for
    :class:`SobolAttributionMethod` (scipy's unscrambled Sobol sequence by default;
    Xplique uses TensorFlow's); only the binary-kernel estimator of the paper is
    provided, so there is no ``estimator`` argument; designs where two cells get equal
    or complementary masks (or a cell a constant one) are refused, since such cells
    cannot be told apart: low-discrepancy sequences give them when ``nb_design`` is
    small for the number of cells (then use ``sampler='lhs'``, the paper's choice).

    Ref. P. Novello, T. Fel, D. Vigouroux. Making Sense of Dependence: Efficient
    Black-box Explanations Using Dependence Measure. NeurIPS 2022.
    https://arxiv.org/abs/2206.06219

    Args:
        model: a Keras model or a callable on a batch tensor.
        grid_size: cells per side; 8 as Xplique.
        nb_design: number of binary masks; 500 as Xplique.
        sampler: 'sobol' (default: unscrambled, scrambled when ``seed`` is set),
            'halton', 'lhs', 'monte_carlo', a
            :class:`~sobol_tf.attributions.samplers.ReplicatedSampler`, or a callable
            ``(dimension, nb_design) -> points`` (nb_design, dimension) in [0, 1].
        perturbation_function: 'inpainting' (default), 'blurring', 'amplitude', a
            Perturbation or a callable ``f(inputs, masks) -> perturbed`` on batches.
        batch_size: perturbed inputs per forward pass; 256 as Xplique. (The estimator
            holds about 4 * nb_design**2 floats per input, ESTIMATOR_INPUTS at a time.)
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        seed: seed of the sampler when it is given by name: None, an integer >= 0 or a
            numpy Generator (one integer is drawn from it). With a sampler object, give
            the seed to the object: both together are refused.
        verbose: show a progress bar.

    The design is drawn at the first explain and kept; the constructor only checks
    sizes: the sampler's dimensions (scipy's Sobol sequence: grid_size <= 145), and
    :data:`MAX_BYTES` (1 GiB) for both the binary design (``nb_design * d`` float32) and
    the estimator's memory for one input (about ``4 * nb_design**2 + nb_design * d``
    floats, so nb_design <= 8184 at grid_size=8).

    Raises:
        InvalidArgumentError: in the constructor: ``grid_size`` < 1, ``nb_design`` < 2,
            an unknown sampler or perturbation name, a negative ``seed`` or one given
            with a sampler object, a design over the sampler's
            dimensions or over MAX_BYTES (the message gives the forward passes, the
            memory and the largest nb_design that fits). At the first explain: a design
            of the wrong shape, with values outside [0, 1], or with cells that cannot be
            told apart; a grid larger than the inputs.

    Example:
        >>> explainer = HsicAttributionMethod(model, grid_size=8, nb_design=500)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
    """

    upsampling = "nearest"
    resize_method = "bicubic"

    def __init__(self, model, *, grid_size=8, nb_design=500, sampler=None,
                 perturbation_function="inpainting", batch_size=256, operator=None,
                 seed=None, verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        self.seed = check_seed(seed)
        self.sampler = samplers_module.get(sampler, seed=self.seed)
        self.perturbation_function = perturbations_module.get(perturbation_function)
        self._check_size()
        self._design = None  # drawn at the first explain

    def _check_size(self):
        """Refuse designs over the sampler's dimensions or MAX_BYTES, before any drawing."""
        dimension = self.grid_size ** 2
        what = f"grid_size={self.grid_size} and nb_design={self.nb_design} (d={dimension} cells)"
        max_dimension = getattr(self.sampler, "max_dimension", None)
        if max_dimension is not None and dimension > max_dimension:
            raise InvalidArgumentError(
                f"{what}: the sampler {type(self.sampler).__name__} supports at most "
                f"{max_dimension} dimensions; use grid_size <= {math.isqrt(max_dimension)} "
                "or a sampler without that limit ('halton', 'lhs', 'monte_carlo')."
            )
        design = 4 * self.nb_design * dimension
        estimator = estimator_bytes(self.nb_design, dimension)
        if design > MAX_BYTES or estimator > MAX_BYTES:
            # the largest n with 16 n^2 + 4 n d <= MAX_BYTES and 4 n d <= MAX_BYTES
            largest = min(MAX_BYTES // (4 * dimension),
                          math.isqrt(dimension ** 2 + 4 * MAX_BYTES) // 8)
            while estimator_bytes(largest + 1, dimension) <= MAX_BYTES \
                    and 4 * (largest + 1) * dimension <= MAX_BYTES:
                largest += 1
            while largest > 1 and estimator_bytes(largest, dimension) > MAX_BYTES:
                largest -= 1
            lower = (f"nb_design <= {largest}" if largest >= 2
                     else "a smaller grid_size")
            raise InvalidArgumentError(
                f"{what} need {self.nb_design} forward passes per input, a binary design of "
                f"{design / 2 ** 30:.1f} GiB of float32 masks and {estimator / 2 ** 30:.1f} "
                "GiB per input for the estimator's (nb_design, nb_design) matrices, over the "
                f"{MAX_BYTES / 2 ** 30:.1f} GiB of sobol_tf.attributions.hsic.MAX_BYTES; "
                f"use {lower}."
            )

    def _draw_design(self):
        """Binary masks (nb_design, grid, grid, 1), checked so that every cell is told apart."""
        dimension = self.grid_size ** 2
        draw = getattr(self.sampler, "sample", self.sampler)
        with warnings.catch_warnings():  # balance matters little once thresholded
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol")
            points = samplers_module.check_design(
                draw(dimension, self.nb_design), (self.nb_design, dimension),
                "sampler (points: nb_design rows, grid_size**2 columns)")
        design = (points >= 0.5).astype(np.float32)
        del points
        constant = np.flatnonzero(np.all(design == design[:1], axis=0))
        if constant.size:
            raise InvalidArgumentError(
                f"the binary design keeps cell {constant[0]} in all or none of the "
                f"{self.nb_design} masks, so its HSIC is always 0; use a larger nb_design "
                "or sampler='lhs'."
            )
        twins = twin_cells(design)
        if twins is not None:
            first, second = twins
            raise InvalidArgumentError(
                f"the binary design gives cells {first} and {second} equal or "
                f"complementary masks over the {self.nb_design} designs, so they cannot be "
                f"told apart; use a larger nb_design (got {self.nb_design} for "
                f"{dimension} cells) or sampler='lhs'."
            )
        return tf.constant(design.reshape(-1, self.grid_size, self.grid_size, 1))

    def _check_inputs(self, images):
        check_grid_fits(self.grid_size, images.shape[1], images.shape[2])

    def _masks(self, height, width, channels):
        if self._design is None:
            self._design = self._draw_design()
        return self._design

    def _baselines(self, images):
        return self.perturbation_function.baselines(images)

    def _perturb(self, inputs, masks, baselines):
        return self.perturbation_function.apply(inputs, masks, baselines)

    def _estimate(self, scores, masks, base_scores):
        flat = tf.reshape(masks, (masks.shape[0], -1))
        centred = flat - tf.reduce_mean(flat, axis=0, keepdims=True)
        parallel = max(1, min(ESTIMATOR_INPUTS,
                              MAX_BYTES // estimator_bytes(*flat.shape)))

        def step(indices, scores, centred):
            # one input at a time inside the step: memory O(nb_design**2) per input in flight
            return tf.map_fn(lambda row: hsic_binary_rbf(row[None], centred)[0],
                             tf.gather(scores, indices), parallel_iterations=parallel)

        signature = [tf.TensorSpec([None], tf.int64),
                     tf.TensorSpec([None, scores.shape[1]], tf.float32),
                     tf.TensorSpec(centred.shape, tf.float32)]
        function = self._compiled(self.model, ("hsic", tuple(centred.shape)), step, signature)
        indices = self._run_batches(function, scores.shape[0], (scores, centred),
                                    "the HSIC estimator")
        return tf.reshape(indices, (-1,) + tuple(masks.shape[1:]))
