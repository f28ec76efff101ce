"""HSIC attribution method (Novello, Fel & Vigouroux, NeurIPS 2022)."""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int
from sobol_tf.attributions import hsic_estimators
from sobol_tf.attributions.hsic_estimators import hsic_binary_rbf
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions.designs import (FALLBACK_DRAWS, DesignExplainer,
                                           balanced_binary_design, fallback_binary_design,
                                           largest_fitting,
                                           max_dimension_of, twin_cells, untold_cells)
from sobol_tf.errors import InvalidArgumentError

__all__ = ["HsicAttributionMethod", "hsic_binary_rbf", "twin_cells",
           "balanced_binary_design", "estimator_bytes", "max_dimension_of", "MAX_BYTES",
           "ESTIMATOR_INPUTS", "FALLBACK_SEED", "FALLBACK_DRAWS"]

#: inputs whose (nb_design, nb_design) Gram matrices the estimator computes at once (at
#: most; fewer when that would pass MAX_BYTES).
ESTIMATOR_INPUTS = 8

#: the largest binary design (nb_design x grid_size**2 float32 masks), and the largest
#: estimator memory for one input (about 4 nb_design**2 + nb_design * d floats), that an
#: explainer accepts; larger ones are refused in the constructor.
MAX_BYTES = 1 << 30

#: seed of the fallback design of the default sampler (see HsicAttributionMethod).
FALLBACK_SEED = 0

def estimator_bytes(nb_design: int, dimension: int) -> int:
    """Bytes the HSIC estimator holds for one input: distances, pairs, Gram, projection."""
    return 4 * (4 * nb_design ** 2 + nb_design * dimension)


class HsicAttributionMethod(DesignExplainer):
    """HSIC attribution method: dependence between each grid cell's presence and the score.

    The image is cut into ``grid_size`` x ``grid_size`` cells; ``nb_design`` masks (by
    default binary: each cell kept or removed) are drawn, the input is perturbed by each
    mask, and the attribution of a cell is the Hilbert-Schmidt Independence Criterion
    between that cell's mask and the score (see
    :mod:`~sobol_tf.attributions.hsic_estimators`). Costs ``nb_design`` forward passes per
    input (against ``nb_design * (d + 2)`` for Sobol). The estimator runs compiled, on
    batches of inputs, on the device.

    Deviations from Xplique: the output kernel's width is the median of the pairwise
    distances of the scores (the paper's median heuristic; Xplique takes the median of
    the scores themselves, which fails for scores <= 0); the default design is scipy's
    unscrambled Sobol sequence thresholded at 1/2 (Xplique: TensorFlow's; with ``seed``:
    the scrambled one), and where it
    gives two cells equal or complementary masks, or a cell a constant one (a binary
    Sobol design does when nb_design is small for the number of cells: its cells' bits
    are linear functions of the point's index, e.g. at grid_size=8 with nb_design 64,
    100 or 128), a design of seed :data:`FALLBACK_SEED` (or ``seed``) without such
    cells: a regular two-level fraction
    (:func:`~sobol_tf.attributions.designs.fallback_binary_design`: balanced,
    pairwise orthogonal columns; resolution IV where there are at most nb_design / 2
    cells) where nb_design is a power of two larger than the number of cells, else a
    random balanced binary design. At grid_size=8 with nb_design 128, the fraction's
    maps have 0.3 to 0.7 times the random design's error
    (benchmarks/results/hsic_designs.md). A sampler you choose that gives binary masks
    with such cells is refused (Xplique would give those cells equal indices whatever
    the model reads).

    Beyond images, the cells are those of
    :class:`~sobol_tf.attributions.SobolAttributionMethod`: a feature of tabular rows
    (N, F) (maps (N, F); masked features move towards ``baseline``), ``grid_size``
    windows per channel of time series (N, T, C) (``grid_size=None``: a cell per step;
    maps (N, T, C), constant over each window), a position of token ids (N, L) with
    ``perturbation_function='tokens'`` and ``mask_token`` (a token kept where its mask
    is >= 0.5, replaced by ``mask_token`` elsewhere; the default binary design gives
    that decision directly; ``pad_token`` positions never change and get 0; maps
    (N, L)). HSIC has no exact 0 for a feature the model does not read: its index is an
    estimate of a dependence, at the level of the sampling noise.

    Ref. P. Novello, T. Fel, D. Vigouroux. Making Sense of Dependence: Efficient
    Black-box Explanations Using Dependence Measure. NeurIPS 2022.
    https://arxiv.org/abs/2206.06219

    The positional order is Xplique's (model, grid_size, nb_design, sampler, estimator,
    perturbation_function, batch_size, estimator_batch_size, operator); the other
    arguments are keyword-only.

    Args:
        model: a Keras model or a callable on a batch tensor (of the inputs' layout:
            int32 ids for token ids).
        grid_size: cells per side for images; 8 as Xplique. Windows along time for time
            series (at most T; None: a cell per step; None is refused for images);
            ignored for tabular rows and token ids.
        nb_design: number of masks; 500 as Xplique.
        sampler: None (the default design, above), 'sobol' (without ``seed``: the
            unscrambled sequence, no fallback; scrambled with it), 'halton', 'lhs' or
            'monte_carlo' (points thresholded at 1/2), a
            :class:`~sobol_tf.attributions.samplers.ReplicatedSampler` (its ``sample``,
            thresholded), an Xplique-style
            :class:`~sobol_tf.attributions.samplers.Sampler` (``binary`` attribute: its
            points are used as returned, e.g. ``TFSobolSequence(binary=True)``), or a
            callable ``(dimension, nb_design) -> points`` (nb_design, dimension) in
            [0, 1] (thresholded at 1/2).
        estimator: None / 'binary' (:class:`BinaryEstimator`, with output_kernel 'rbf'),
            'rbf', 'sobolev', an :class:`~sobol_tf.attributions.hsic_estimators.HsicEstimator`
            or an Xplique-style callable ``(masks, outputs, nb_design) -> indices`` (then
            called once per input). BinaryEstimator needs binary masks.
        perturbation_function: 'inpainting' (default), 'blurring', 'amplitude', 'tokens'
            (token ids; needs ``mask_token``), a Perturbation (e.g. ``Inpainting(baseline)``,
            ``TokenMasking(mask_token, pad_token)``) or a callable ``f(inputs, masks) ->
            perturbed`` on batches.
        batch_size: perturbed inputs per forward pass; 256 as Xplique; None: all at once.
        estimator_batch_size: cells whose pairwise kernels the estimator holds at once
            (``estimator.set_batch_size``; only non-binary masks with RbfEstimator or
            SobolevEstimator build them); None keeps the estimator's (all the cells).
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        nb_channels: mask channels (keyword-only, as Xplique): d = grid_size**2 *
            nb_channels; must be 1 or the inputs' channels; the maps then have
            nb_channels channels.
        seed: seed of the sampler when it is given by name (and of the fallback design):
            None, an integer >= 0 or a numpy Generator (one integer is drawn from it).
            With a sampler object, give the seed to the object: both together are refused.
        mask_token: with ``perturbation_function='tokens'`` (required then): the token id
            that replaces a masked token.
        pad_token: with 'tokens': the id of padding (never perturbed, attribution 0);
            None (default): no padding.
        baseline: with 'inpainting': a number (0 by default), an array of one input's
            shape in the inputs' layout (e.g. feature means (F,)) or one value per
            channel (C,).
        verbose: show a progress bar.
        strategy: a ``tf.distribute.Strategy`` whose replicas share the forward batches
            (the HSIC estimates run on one device); see
            :class:`~sobol_tf.attributions.Explainer`.

    The design is drawn at the first explain (or first read of :attr:`masks`) and kept;
    the constructor only checks sizes: the sampler's dimensions (scipy's Sobol sequence:
    grid_size <= 145), and :data:`MAX_BYTES` (1 GiB) for both the design
    (``nb_design * d`` float32) and the estimator's memory for one input (about
    ``4 * nb_design**2 + nb_design * d`` floats, so nb_design <= 8184 at grid_size=8).

    Raises:
        InvalidArgumentError: in the constructor: ``grid_size`` < 1, ``nb_design`` < 2,
            ``nb_channels`` < 1, an unknown sampler, estimator or perturbation name, a
            negative ``seed`` or one given with a sampler object, BinaryEstimator with an
            Xplique-style sampler whose ``binary`` is False, a design over the sampler's
            dimensions or over MAX_BYTES (the message gives the forward passes, the
            memory and the largest nb_design that fits). At the first explain: a design
            of the wrong shape, with values outside [0, 1], binary with cells that cannot
            be told apart, or non-binary with BinaryEstimator; a grid larger than the
            inputs; ``nb_channels`` other than 1 or the inputs' channels; ``grid_size=None``
            with images, ``grid_size`` > T with time series; a design for the inputs'
            cells over the limits (the message names features, windows or tokens); token
            ids without ``perturbation_function='tokens'`` (the message says to pass
            ``perturbation_function='tokens', mask_token=ID``), 'tokens' with other
            inputs; a ``baseline`` array of another shape. In the constructor also:
            'tokens' without ``mask_token``, ``mask_token`` / ``pad_token`` with another
            perturbation, ``baseline`` with a perturbation other than 'inpainting', NaN or
            infinite.
        InvalidTypeError: ``estimator_batch_size`` not None nor an integer >= 1; a
            ``mask_token`` / ``pad_token`` that is not an integer; a ``baseline`` that is
            neither a number nor an array of numbers.

    Example:
        >>> explainer = HsicAttributionMethod(model, grid_size=8, nb_design=500)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
    """

    def __init__(self, model: Callable, grid_size: int | None = 8, nb_design: int = 500,
                 sampler: Any = None, estimator: Any = None,
                 perturbation_function: Any = "inpainting", batch_size: int | None = 256,
                 estimator_batch_size: int | None = None, operator: Any = None, *,
                 nb_channels: int = 1, seed: Any = None, mask_token: int | None = None,
                 pad_token: int | None = None, baseline: Any = None, verbose: bool = False,
                 strategy: Any = None) -> None:
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self._init_design(grid_size, nb_channels, seed, perturbation_function, mask_token,
                          pad_token, baseline)
        self.nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        self._fallback = sampler is None
        self.sampler = samplers_module.get(sampler, seed=self.seed)
        if self._fallback and self.seed is None:
            # scrambling cannot untie a binary Sobol design (see above): no 'auto' here
            self.sampler = samplers_module.SobolSequence(scramble=False)
        self.estimator = hsic_estimators.get(estimator)
        if isinstance(self.estimator, hsic_estimators.HsicEstimator):
            self.estimator.set_batch_size(estimator_batch_size)
        elif estimator_batch_size is not None:
            check_positive_int("estimator_batch_size", estimator_batch_size)
        if (isinstance(self.estimator, hsic_estimators.BinaryEstimator)
                and getattr(self.sampler, "binary", True) is False):
            raise InvalidArgumentError(
                f"BinaryEstimator needs binary masks, but the sampler {self.sampler!r} has "
                "binary=False; give it binary=True, or use RbfEstimator or SobolevEstimator."
            )
        if self.grid_size is not None:
            self._check_size(self.nb_design, self._image_cells())

    @property
    def masks(self) -> tf.Tensor:
        """The design as Xplique lays it out: (nb_design, grid_size, grid_size,
        nb_channels) float32 for images, drawn on first use (here or at the first
        explain) and kept, one per set of cells; after an explain, the design of the last
        explained inputs ((nb_design, 1, F, 1) for tabular rows, (nb_design, 1, grid_size,
        C) for time series, (nb_design, 1, L, 1) for token ids).

        Raises:
            InvalidArgumentError: with grid_size=None before any explain.
        """
        return self._current_masks(
            "grid_size=None: a cell per time step" if self.grid_size is None else "")

    def _fits(self, nb_design: int, dimension: int) -> bool:
        return (4 * nb_design * dimension <= MAX_BYTES
                and estimator_bytes(nb_design, dimension) <= MAX_BYTES)

    def _check_budget(self, what: str, cells: tuple, kind: str, nb_design: int) -> None:
        dimension = int(np.prod(cells))
        design, estimator = 4 * nb_design * dimension, estimator_bytes(nb_design, dimension)
        if design > MAX_BYTES or estimator > MAX_BYTES:
            largest = largest_fitting(lambda n: self._fits(n, dimension),
                                      MAX_BYTES // (4 * dimension))
            lower = (f"nb_design <= {largest}" if largest >= 2 else "a smaller grid_size"
                     if kind == "image" else self._fewer_cells(kind, nb_design, cells[2]))
            raise InvalidArgumentError(
                f"{what} need {nb_design} forward passes per input, a binary design of "
                f"{design / 2 ** 30:.1f} GiB of float32 masks and {estimator / 2 ** 30:.1f} "
                "GiB per input for the estimator's (nb_design, nb_design) matrices, over the "
                f"{MAX_BYTES / 2 ** 30:.1f} GiB of sobol_tf.attributions.hsic.MAX_BYTES; "
                f"use {lower}.")

    def _draw_cells(self, cells: tuple, layout: Any) -> tuple:
        """(masks (nb_design, rows, columns, channels), binary) of ``cells``: binary masks
        checked so that every cell is told apart (the default sampler falls back
        instead, see above)."""
        dimension = int(np.prod(cells))
        xplique_style = hasattr(self.sampler, "binary") and not hasattr(self.sampler, "sample")
        draw = getattr(self.sampler, "sample", self.sampler)
        with warnings.catch_warnings():  # balance matters little once thresholded
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol")
            points = samplers_module.check_design(
                draw(dimension, self.nb_design), (self.nb_design, dimension),
                "sampler (points: nb_design rows, one column per cell)")
        design = (points.astype(np.float32) if xplique_style
                  else (points >= 0.5).astype(np.float32))
        binary = bool(np.all((design == 0) | (design == 1)))
        if not binary and isinstance(self.estimator, hsic_estimators.BinaryEstimator):
            raise InvalidArgumentError(
                f"BinaryEstimator needs binary masks, but the sampler {self.sampler!r} "
                "returned values other than 0 and 1; use a binary sampler, or "
                "RbfEstimator or SobolevEstimator.")
        problem = untold_cells(design, self.nb_design) if binary else ""
        if problem and self._fallback:
            design = fallback_binary_design(
                self.nb_design, dimension, FALLBACK_SEED if self.seed is None else self.seed)
        elif problem:
            raise InvalidArgumentError(problem)
        return tf.constant(design.reshape((-1,) + tuple(cells))), binary

    def _estimate(self, scores: tf.Tensor, masks: tf.Tensor,
                  base_scores: tf.Tensor | None) -> tf.Tensor:
        if not isinstance(self.estimator, hsic_estimators.HsicEstimator):
            return self._per_input(scores, masks)  # an Xplique-style estimator
        flat = tf.reshape(masks, (masks.shape[0], -1))
        binary = self._current[1]
        if binary:
            flat = flat - tf.reduce_mean(flat, axis=0, keepdims=True)  # better rounding
        parallel = max(1, min(ESTIMATOR_INPUTS,
                              MAX_BYTES // estimator_bytes(*flat.shape)))
        estimator = self.estimator

        def step(indices, scores, flat):
            # one input at a time inside the step: memory O(nb_design**2) per input in flight
            return tf.map_fn(lambda row: estimator.indices(row[None], flat, binary)[0],
                             tf.gather(scores, indices), parallel_iterations=parallel)

        signature = [tf.TensorSpec([None], tf.int64),
                     tf.TensorSpec([None, scores.shape[1]], tf.float32),
                     tf.TensorSpec(flat.shape, tf.float32)]
        key = ("hsic", tuple(flat.shape), id(estimator), binary, estimator.batch_size)
        function = self._compiled(self.model, key, step, signature)
        indices = self._run_batches(function, scores.shape[0], (scores, flat),
                                    "the HSIC estimator")
        return tf.reshape(indices, (-1,) + tuple(masks.shape[1:]))
