"""Sobol attribution method (Fel et al., NeurIPS 2021)."""
from collections import namedtuple

import tensorflow as tf

from sobol_tf._utils import check_grid_fits, check_positive_int, check_power_of_two
from sobol_tf.attributions import estimators as estimators_module
from sobol_tf.attributions import perturbations as perturbations_module
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError

SobolIndices = namedtuple("SobolIndices", ["total", "first"])
SobolIndices.__doc__ = """Sobol indices resized to the input, each (N, H, W, k) float32.

Attributes:
    total: total-order indices (what explain() returns).
    first: first-order indices (Saltelli et al., 2010).
"""


class SobolAttributionMethod(BlackBoxExplainer):
    """Sobol attribution method: total-order Sobol indices of grid cells.

    The image is cut into ``grid_size`` x ``grid_size`` cells, each cell's intensity is
    modulated by a random mask value drawn from a quasi-Monte Carlo replicated design, and
    the total-order Sobol index of each cell (the share of the score's variance that
    involves that cell, interactions included) is its attribution. Costs
    ``nb_design * (d + 2)`` forward passes per input, d = grid_size**2 (times the number
    of channels with ``per_channel=True``).

    Ref. T. Fel, R. Cadène, M. Chalvidal, M. Cord, D. Vigouroux, T. Serre. Look at the
    Variance! Efficient Black-box Explanations with Sobol-based Sensitivity Analysis.
    NeurIPS 2021. https://arxiv.org/abs/2111.04138

    Args:
        model: a Keras model or a callable on a batch tensor.
        grid_size: cells per side; 8 as in the reference.
        nb_design: points of each of A and B; a power of two; 32 as in the reference.
        sampler: 'sobol' (default: the unscrambled sequence of the reference, scrambled
            when ``seed`` is set), 'halton', 'lhs', 'monte_carlo', or a callable
            ``(dimension, nb_design) -> design`` such as
            :class:`~sobol_tf.attributions.samplers.SobolSequence`.
        estimator: 'jansen' (default), 'homma', 'janon', 'glen', 'saltelli', or a
            :class:`~sobol_tf.attributions.estimators.SobolEstimator`.
        perturbation_function: 'inpainting' (default), 'blurring', 'amplitude', a
            :class:`~sobol_tf.attributions.perturbations.Perturbation`, or a callable
            ``f(inputs, masks) -> perturbed`` on batches.
        per_channel: one mask value per cell and channel (d = grid_size**2 * C); the
            maps then have C channels.
        batch_size: perturbed inputs per forward pass (bounds memory); 256 as Xplique.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        seed: seed of the sampler when it is given by name.
        verbose: show a progress bar.
        jit_compile, mixed_precision: see :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidArgumentError: ``nb_design`` not a power of two, ``grid_size`` < 1, an
            unknown sampler, estimator or perturbation name.

    Example:
        >>> explainer = SobolAttributionMethod(model, grid_size=8, nb_design=32)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
    """

    upsampling = "nearest"
    resize_method = "bicubic"

    def __init__(self, model, *, grid_size=8, nb_design=32, sampler=None, estimator=None,
                 perturbation_function="inpainting", per_channel=False, batch_size=256,
                 operator=None, seed=None, verbose=False, jit_compile=False,
                 mixed_precision=None):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         jit_compile=jit_compile, mixed_precision=mixed_precision)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.nb_design = check_power_of_two("nb_design", nb_design)
        self.sampler = samplers_module.get(sampler, seed=seed)
        self.estimator = estimators_module.get(estimator)
        self.perturbation_function = perturbations_module.get(perturbation_function)
        self.per_channel = bool(per_channel)
        self._perturb_broadcasts = self.perturbation_function.broadcasts
        self._designs = {}
        if not self.per_channel:
            self._design(1)

    def explain_indices(self, inputs, targets=None):
        """Total- and first-order indices from the same forward passes.

        Args and Raises: as :meth:`explain`.

        Returns:
            :class:`SobolIndices` (total, first), each (N, H, W, k) float32.
        """
        model, images, targets = self._prepare(inputs, targets)
        masks = self._masks(*images.shape[1:])
        scores = self._perturbed_scores(model, images, targets, masks)
        size = images.shape[1], images.shape[2]
        first = self._cells(self.estimator.first_order(scores, self.nb_design), masks)
        total = self._cells(self.estimator(scores, self.nb_design), masks)
        return SobolIndices(total=self._to_input_size(total, *size),
                            first=self._to_input_size(first, *size))

    # -- the method's own parts -------------------------------------------------------
    def _design(self, channels):
        """The replicated design for ``channels`` mask channels, drawn once."""
        if channels not in self._designs:
            dimension = self.grid_size ** 2 * channels
            design = self.sampler(dimension, self.nb_design)
            expected = (self.nb_design * (dimension + 2), dimension)
            if tuple(design.shape) != expected:
                raise InvalidArgumentError(
                    f"sampler returned a design of shape {tuple(design.shape)}, expected "
                    f"{expected} (nb_design * (d + 2) rows [A, B, C_1..C_d], d columns)."
                )
            self._designs[channels] = tf.reshape(
                tf.constant(design, tf.float32),
                (-1, self.grid_size, self.grid_size, channels))
        return self._designs[channels]

    def _check_inputs(self, images):
        check_grid_fits(self.grid_size, images.shape[1], images.shape[2])

    def _masks(self, height, width, channels):
        return self._design(channels if self.per_channel else 1)

    def _baselines(self, images):
        return self.perturbation_function.baselines(images)

    def _perturb(self, inputs, masks, baselines):
        return self.perturbation_function.apply(inputs, masks, baselines)

    def _estimate(self, scores, masks, base_scores):
        return self._cells(self.estimator(scores, self.nb_design), masks)

    @staticmethod
    def _cells(indices, masks):
        return tf.reshape(indices, (-1,) + tuple(masks.shape[1:]))
