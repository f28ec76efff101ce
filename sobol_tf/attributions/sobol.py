"""Sobol attribution method (Fel et al., NeurIPS 2021)."""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from sobol_tf import operators as operators_module
from sobol_tf._utils import check_positive_int, check_power_of_two
from sobol_tf._utils.validation import check_memory
from sobol_tf.attributions import estimators as estimators_module
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions.designs import (TOKEN_FALLBACK_DRAWS, DesignExplainer,
                                           check_replicated, untied_decisions)
from sobol_tf.attributions.refinement import RefinementMixin, check_refine
from sobol_tf.errors import InvalidArgumentError

__all__ = ["SobolAttributionMethod", "SobolIndices", "MAX_DESIGN_BYTES", "design_bytes",
           "TOKEN_FALLBACK_DRAWS", "EFFICIENT_SETTINGS"]

#: the largest replicated design (float32 masks, nb_design * (d + 2) x d) an explainer
#: accepts; larger ones are refused in the constructor (per_channel: at explain time).
MAX_DESIGN_BYTES = 1 << 30


def design_bytes(nb_design: int, dimension: int) -> int:
    """Bytes of the float32 replicated design of ``nb_design`` points in ``dimension``."""
    return 4 * nb_design * (dimension + 2) * dimension


#: constructor arguments with the lowest map error per forward pass measured (issue 26,
#: benchmarks/results/passes.md): the estimator skips the B rows (nb_design * (d + 1)
#: passes: 1,040 per input at grid_size=8, nb_design=16) and normalises each cell's
#: Jansen sum by its realised steps; the design is the Owen-scrambled Sobol sequence
#: (seed 0), spent in two stages (``refine=True``: a survey, then the rest of the
#: passes where the map is uncertain). Not the default: the maps differ from the
#: paper's (same limit, another estimate), and at nb_design=16 they are still short of
#: today's nb_design=32 on two of the five models measured (see the benchmark);
#: ``SobolAttributionMethod(model, nb_design=16, **EFFICIENT_SETTINGS)``.
EFFICIENT_SETTINGS = dict(estimator="jansen_normalised", sampler="scrambled_sobol", refine=True)


SobolIndices = namedtuple("SobolIndices", ["total", "first"])
SobolIndices.__doc__ = """Sobol indices resized to the input, each (N, H, W, k) float32.

Attributes:
    total: total-order indices (what explain() returns).
    first: first-order indices (Saltelli et al., 2010).
"""


class SobolAttributionMethod(RefinementMixin, DesignExplainer):
    """Sobol attribution method: total-order Sobol indices of grid cells.

    The image is cut into ``grid_size`` x ``grid_size`` cells, each cell's intensity is
    modulated by a random mask value drawn from a quasi-Monte Carlo replicated design, and
    the total-order Sobol index of each cell (the share of the score's variance that
    involves that cell, interactions included) is its attribution. Costs
    ``nb_design * (d + 2)`` forward passes per input, d = grid_size**2 (times the number
    of channels with ``per_channel=True``); ``nb_design * (d + 1)`` with an estimator
    that skips the B rows. :meth:`nb_forward_passes` counts them for given inputs;
    :data:`EFFICIENT_SETTINGS` gives the lowest map error per pass we measured
    (benchmarks/results/passes.md).

    Beyond images (see :mod:`sobol_tf._utils.layouts` for the rank rule), the cells are:

    - tabular rows (N, F) of floats: one cell per feature (``grid_size`` ignored), d = F;
      maps (N, F). Masked features move towards ``baseline`` (0 by default; pass the
      feature means of a reference set where 0 is not a neutral value).
    - time series (N, T, C): the time axis cut into ``grid_size`` windows, one mask value
      per window and channel (d = grid_size * C; ``grid_size=None``: a cell per step,
      d = T * C), masks upsampled along time by nearest; maps (N, T, C), resized by
      nearest too, so every step of a window holds that window's index.
    - token ids (N, L) of integers, with ``perturbation_function='tokens'`` and
      ``mask_token``: one cell per position, d = L; maps (N, L). A token is kept where
      its mask value is >= 0.5 and replaced by ``mask_token`` elsewhere, so each token is
      kept or masked with probability 1/2 and its index is that of this binary decision.
      Positions holding ``pad_token`` are never changed and get 0. Why not the paper's
      text perturbation: the paper reports word deletion on IMDB, but neither its text
      nor its public code (github.com/fel-thomas/Sobol-Attribution-Method: image
      perturbations only) that we could consult says how text was perturbed; replacing
      a token by a mask id is what the word-deletion metric itself does, needs no access
      to the model's embeddings, and gives the model only real token ids (a continuous
      mask would need scaled embeddings, which no tokenizer produces). Thresholded at
      1/2, a low-discrepancy design can give A and B the same decisions for a position
      (the unscrambled Sobol sequence does at nb_design=32 for 10 tokens), whose index
      would then be 0 whatever the model does: the default sampler then falls back to
      Latin hypercube designs (seed :data:`~sobol_tf.attributions.samplers.FALLBACK_SEED`
      or ``seed``); a sampler you choose is refused.

    Ref. T. Fel, R. Cadène, M. Chalvidal, M. Cord, D. Vigouroux, T. Serre. Look at the
    Variance! Efficient Black-box Explanations with Sobol-based Sensitivity Analysis.
    NeurIPS 2021. https://arxiv.org/abs/2111.04138

    The positional order is Xplique's (model, grid_size, nb_design, sampler, estimator,
    perturbation_function, batch_size, operator); the other arguments are keyword-only.

    Args:
        model: a Keras model or a callable on a batch tensor (of the inputs' layout:
            int32 ids for token ids).
        grid_size: cells per side for images; 8 as in the reference. Windows along time
            for time series (at most T; None: a cell per step; None is refused for
            images); ignored for tabular rows and token ids (a cell per feature / token).
        nb_design: points of each of A and B; a power of two >= 2; 32 as in the
            reference. The replicated design (``nb_design * (d + 2) * d`` float32 mask
            values) must fit in :data:`MAX_DESIGN_BYTES` (1 GiB).
        sampler: 'sobol' (default: the unscrambled sequence of the reference, or, where
            that would give A and B the same column for some cell (small nb_design), the
            Owen-scrambled sequence of seed
            :data:`~sobol_tf.attributions.samplers.FALLBACK_SEED`; scrambled with
            ``seed`` when it is set; Xplique's default is TFSobolSequenceRS),
            'scrambled_sobol' (Owen-scrambled, seed 0 unless ``seed``), 'halton',
            'lhs', 'monte_carlo', or a callable ``(dimension, nb_design) -> design``
            (numpy array or tf.Tensor) such as
            :class:`~sobol_tf.attributions.samplers.SobolSequence` or Xplique's names
            ``ScipySobolSequenceRS``, ``TFSobolSequenceRS``, ``HaltonSequenceRS``,
            ``LatinHypercubeRS`` (and ``MonteCarloRS``). A sampler you choose that gives a
            cell the same column in A and B (its index would be 0 whatever the model does)
            is refused, where Xplique would return that 0. The design is drawn at the
            first explain or first read of :attr:`masks` (once per set of cells: rows,
            columns and mask channels) and kept.
        estimator: 'jansen' (default), 'homma', 'janon', 'glen', 'saltelli'; or one
            that skips the B rows (nb_design * (d + 1) passes, see
            :data:`EFFICIENT_SETTINGS` and :meth:`nb_forward_passes`): 'jansen_total'
            (Jansen's values), 'jansen_normalised' (each cell's sum normalised by its
            realised steps), 'jansen_cv' (the steps as a control variate); a
            :class:`~sobol_tf.attributions.estimators.SobolEstimator` (vectorised over
            the inputs), or an Xplique-style callable ``estimator(masks, outputs,
            nb_design)`` (called once per input with its (P,) outputs and the masks
            (P, grid, grid, nb_channels); returns one index per cell), which includes a
            SobolEstimator subclass that overrides ``__call__``.
        perturbation_function: 'inpainting' (default), 'blurring', 'amplitude', 'tokens'
            (token ids; needs ``mask_token``), a
            :class:`~sobol_tf.attributions.perturbations.Perturbation` (e.g.
            ``Inpainting(baseline)``, ``TokenMasking(mask_token, pad_token)``), or a
            callable ``f(inputs, masks) -> perturbed`` on batches.
        batch_size: perturbed inputs per forward pass (bounds memory); 256 as Xplique;
            None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        nb_channels: mask channels (keyword-only, as Xplique): d = grid_size**2 *
            nb_channels; must be 1 or the inputs' channels; the maps then have
            nb_channels channels.
        per_channel: one mask value per cell and channel of the inputs, whatever their
            channels (d = grid_size**2 * C, known at explain); the maps then have C
            channels. Not with ``nb_channels`` > 1. (Time series always have one mask
            per channel.)
        seed: seed of the sampler when it is given by name: None, an integer >= 0 or a
            numpy Generator (one integer is drawn from it). With a sampler object, give
            the seed to the object: both together are refused.
        mask_token: with ``perturbation_function='tokens'`` (required then): the token id
            (an integer >= 0) that replaces a masked token, e.g. the tokenizer's [MASK] or
            [UNK] id.
        pad_token: with 'tokens': the id of padding (those positions are never perturbed
            and get 0); None (default): no padding.
        baseline: with 'inpainting': what a masked value becomes, a number (0 by
            default) or an array of one input's shape in the inputs' layout (e.g. the
            feature means (F,) of a reference set, a (T, C) series) or one value per
            channel (C,).
        verbose: show a progress bar.
        jit_compile, mixed_precision, strategy: see
            :class:`~sobol_tf.attributions.Explainer`.
        refine: a two-stage design for :meth:`explain`, with an estimator that skips
            B ('jansen_normalised' or 'jansen_total'): a survey of nb_design / 4 base
            points steps every cell, then the rest of the ``nb_design * (d + 1)`` passes
            go to the cells in proportion to the square root of their survey index,
            per input (:mod:`sobol_tf.attributions.refinement`). The same passes, about
            half the map error on image convnets (benchmarks/results/passes.md); the
            same limit as the one-stage design. Each input gets its own refinement
            design; the inputs still share the batches. Not for token ids;
            :meth:`explain_indices` evaluates the one-stage design.

    Raises:
        InvalidArgumentError: in the constructor: ``nb_design`` < 2 or not a power of
            two, ``grid_size`` < 1, ``nb_channels`` < 1 or > 1 with ``per_channel=True``,
            an unknown sampler, estimator or perturbation name, a
            negative ``seed`` or one given with a sampler object, a
            design over :data:`MAX_DESIGN_BYTES` or over the sampler's dimensions
            (scipy's Sobol sequence: 2d <= 21201, so grid_size <= 102); the message gives
            the forward passes, the memory and the largest grid_size / nb_design that
            fit. At the first explain: a sampler's design of the wrong shape, with
            values outside [0, 1], not replicated, or tying a cell (see above); with
            ``per_channel=True``, a design over the limits once the channels are known;
            ``nb_channels`` other than 1 or the inputs' channels; ``grid_size=None`` with
            images, ``grid_size`` > T with time series; the design for the inputs' cells
            over the limits (the message names features, windows or tokens); token ids
            without ``perturbation_function='tokens'`` (the message says to pass
            ``perturbation_function='tokens', mask_token=ID``) or 'tokens' with inputs
            that are not token ids; a design tying the keep / mask decisions of a token
            (see above); a ``baseline`` array of another shape. In the constructor also:
            'tokens' without ``mask_token``; ``mask_token`` / ``pad_token`` with another
            perturbation; ``baseline`` with a perturbation other than 'inpainting', NaN
            or infinite; ``refine=True`` with another estimator (at explain: with
            token ids, or a sampler tying a cell in the survey).
        InvalidTypeError: a ``mask_token`` / ``pad_token`` that is not an integer, a
            ``baseline`` that is neither a number nor an array of numbers, a
            ``refine`` that is not a bool.

    Example:
        >>> explainer = SobolAttributionMethod(model, grid_size=8, nb_design=32)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
        >>> SobolAttributionMethod(tabular_model, baseline=x_train.mean(0))(rows, labels)
        >>> SobolAttributionMethod(series_model, grid_size=4)(series, labels)   # (N, T, C)
        >>> SobolAttributionMethod(text_model, perturbation_function='tokens',
        ...                        mask_token=1, pad_token=0)(ids, labels)      # (N, L)
    """

    tokens_apart = True
    draws_per_cell = 2

    def __init__(self, model: Callable, grid_size: int | None = 8, nb_design: int = 32,
                 sampler: Any = None, estimator: Any = None,
                 perturbation_function: Any = "inpainting", batch_size: int | None = 256,
                 operator: Any = None, *, nb_channels: int = 1, per_channel: bool = False,
                 seed: Any = None, mask_token: int | None = None,
                 pad_token: int | None = None, baseline: Any = None, verbose: bool = False,
                 jit_compile: bool = False, mixed_precision: str | None = None,
                 strategy: Any = None, refine: bool = False) -> None:
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         jit_compile=jit_compile, mixed_precision=mixed_precision,
                         strategy=strategy)
        self._init_design(grid_size, nb_channels, seed, perturbation_function, mask_token,
                          pad_token, baseline)
        self._default_sampler = sampler is None
        self.sampler = samplers_module.get(sampler, seed=self.seed)
        self.per_channel = bool(per_channel)
        if self.per_channel and self.nb_channels != 1:
            raise InvalidArgumentError(
                f"per_channel=True with nb_channels={self.nb_channels}: give one of them "
                "(per_channel=True takes the number of channels from the inputs)."
            )
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        if self.grid_size is not None:
            self._check_size(nb_design, self._image_cells())
        self.nb_design = check_power_of_two(
            "nb_design", nb_design, minimum=2,
            maximum=self._largest_nb_design(self.grid_size ** 2 if self.grid_size else 1))
        self.estimator = estimators_module.get(estimator)
        self._vectorised = estimators_module.is_vectorised(self.estimator)
        self.refine = check_refine(refine, self.estimator)

    def explain_indices(self, inputs: Any, targets: Any = None) -> SobolIndices:
        """Total- and first-order indices from the same forward passes.

        Evaluates the whole design [A, B, C_1..C_d] (first order needs B), whatever the
        estimator and ``refine``. First order: the reference formula (Saltelli et al.,
        2010), or, with an estimator that reads the design (e.g.
        :data:`EFFICIENT_SETTINGS`'), the same formula with the cells' linear effects
        as a control variate
        (:func:`~sobol_tf.attributions.estimators.first_order_with_linear_cv`: the same
        limit, about half the map error at nb_design 16-32).

        Args and Raises: as :meth:`explain`.

        Returns:
            :class:`SobolIndices` (total, first), each in the inputs' layout as
            :meth:`explain` returns it ((N, H, W, k), (N, F), (N, T, C) or (N, L)).
        """
        model, images, targets = self._prepare(inputs, targets)
        masks = self._masks(*images.shape[1:])
        scores = self._perturbed_scores(model, images, targets, masks)
        size = images.shape[1], images.shape[2]
        first = self._cells(estimators_module.first_order_of(
            self.estimator, scores, self.nb_design, masks), masks)
        total = self._estimate(scores, masks, None)
        layout = self._layout
        return SobolIndices(total=layout.from_engine(self._to_input_size(total, *size)),
                            first=layout.from_engine(self._to_input_size(first, *size)))

    def _evaluated(self, masks: tf.Tensor) -> tf.Tensor:
        """The rows of the design the estimator reads (all, or [A, C_1..C_d]); the same
        tensor for the same design, so that its upsampling is cached."""
        if getattr(self, "_rows", (None,))[0] is not masks:
            self._rows = (masks, estimators_module.rows_read(self.estimator, masks, self.nb_design))
        return self._rows[1]

    # -- the method's own parts -------------------------------------------------------
    @property
    def masks(self) -> tf.Tensor:
        """The replicated design as Xplique lays it out: (nb_design * (d + 2), rows,
        columns, mask channels) float32, rows [A, B, C_1..C_d]: (grid_size, grid_size,
        nb_channels) for images. Drawn on first use (here or at the first explain) and
        kept, one per set of cells. After an explain, the design of the last explained
        inputs (e.g. (1, F, 1) for tabular rows, (1, grid_size, C) for time series).

        Raises:
            InvalidArgumentError: before any explain, with ``per_channel=True`` or
                ``grid_size=None`` (the cells depend on the inputs).
        """
        return self._current_masks(
            "per_channel=True: their channels" if self.per_channel
            else "grid_size=None: a cell per time step" if self.grid_size is None else "")

    def _fits(self, nb_design: int, dimension: int) -> bool:
        return design_bytes(nb_design, dimension) <= MAX_DESIGN_BYTES

    def _check_budget(self, what: str, cells: tuple, kind: str, nb_design: int) -> None:
        dimension = int(np.prod(cells))
        largest_nb = self._largest_nb_design(dimension)
        at = f" at grid_size={self.grid_size}" if kind == "image" else ""
        lower_nb = f"nb_design <= {largest_nb}{at}" if largest_nb else f"no nb_design >= 2 fits{at}"
        check_memory(what, f"nb_design * (d + 2) = {nb_design * (dimension + 2)} forward "
                     "passes per input", "float32 masks for the replicated design",
                     design_bytes(nb_design, dimension), MAX_DESIGN_BYTES,
                     "sobol_tf.attributions.sobol.MAX_DESIGN_BYTES",
                     f"{'grid_size' if kind == 'image' else 'the cells'} "
                     f"({self._fewer_cells(kind, nb_design, cells[2])}) or nb_design ({lower_nb})")

    def _largest_nb_design(self, dimension: int) -> int:
        """The largest power of two >= 2 whose design fits in MAX_DESIGN_BYTES, or 0."""
        largest = MAX_DESIGN_BYTES // design_bytes(1, dimension)
        return 1 << (largest.bit_length() - 1) if largest >= 2 else 0

    def _draw_cells(self, cells: tuple, layout: Any) -> tuple:
        """The replicated design of ``cells``, checked; for token ids, with untied keep /
        mask decisions (see the class docstring)."""
        dimension = int(np.prod(cells))
        design = self._draw(dimension)
        if layout is not None and layout.kind == "tokens":
            design = untied_decisions(design, lambda sampler: self._draw(dimension, sampler),
                                      self.nb_design, self.seed, self._default_sampler,
                                      self.sampler)
        return (tf.reshape(tf.constant(design, tf.float32), (-1,) + tuple(cells)),)

    def _draw(self, dimension: int, sampler: Any = None, nb_design: int = 0) -> np.ndarray:
        sampler, nb_design = sampler or self.sampler, nb_design or self.nb_design
        design = sampler(dimension, nb_design)
        if not isinstance(sampler, samplers_module.ReplicatedSampler):
            design = check_replicated(design, nb_design, dimension)
        return np.asarray(design)

    def _estimate(self, scores: tf.Tensor, masks: tf.Tensor,
                  base_scores: tf.Tensor | None) -> tf.Tensor:
        if isinstance(self.estimator, estimators_module.TotalOrderEstimator):
            return self._cells(self.estimator.of_rows(scores, self.nb_design, masks), masks)
        if not self._vectorised:  # an Xplique-style estimator: one input at a time
            return self._per_input(scores, masks)
        return self._cells(self.estimator(scores, self.nb_design), masks)

    @staticmethod
    def _cells(indices: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
        return tf.reshape(indices, (-1,) + tuple(masks.shape[1:]))
