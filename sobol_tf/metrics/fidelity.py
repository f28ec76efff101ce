"""Fidelity (faithfulness) metrics: Deletion and Insertion (:mod:`sobol_tf.metrics.causal`,
re-exported here) and MuFidelity.

Each one perturbs the inputs according to an explanation, or at random, and asks the
model whether the features the explanation calls important matter to its score.
Perturbed inputs go through the engine's one path, masks -> perturbation -> scores
(:meth:`~sobol_tf._utils.scoring.Scorer.masked_scores`), built inside the compiled step
from (input, perturbation) indices, several inputs sharing a forward batch, so memory is
bounded by ``batch_size``.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import (check_grid_fits, check_positive_int, check_probability,
                             check_seed)
from sobol_tf._utils.scoring import upsample_masks
from sobol_tf._utils.validation import check_memory
from sobol_tf.attributions.perturbations import Replacement
from sobol_tf.errors import InvalidArgumentError
from sobol_tf.metrics.base import Activation, BaselineMode, ExplanationMetric
from sobol_tf.metrics.causal import (CAUSAL_MODES, CausalCurves, CausalFidelity, Deletion,
                                     Insertion, curve_area)
from sobol_tf.metrics.correlations import spearman_rows

__all__ = ["CAUSAL_MODES", "MAX_BYTES", "CausalCurves", "CausalFidelity", "Deletion",
           "Insertion", "MuFidelity", "curve_area", "mufidelity_bytes", "spearman_rows"]

#: the most memory MuFidelity's subsets and score drops may take (see
#: :func:`mufidelity_bytes`); larger ``nb_samples`` are refused in the constructor.
MAX_BYTES = 1 << 30


def mufidelity_bytes(nb_samples: int, nb_cells: int, nb_inputs: int) -> int:
    """Bytes MuFidelity holds: its subsets, ``nb_samples`` x ``nb_cells`` drawn in float64
    and kept in float32 (12 bytes each), and its score drops, ``nb_inputs`` x
    ``nb_samples`` float64 (8 bytes each)."""
    return nb_samples * (12 * nb_cells + 8 * nb_inputs)


class MuFidelity(ExplanationMetric):
    """MuFidelity: do the attributions of random subsets predict the score's drop?

    For each input, ``nb_samples`` random subsets of grid cells are set to the baseline
    (each cell with probability ``subset_percent``); the score is the Spearman rank
    correlation, over the subsets, between the drop of the model's score and the sum of
    the attributions over the subset, averaged over inputs (higher is better; a
    faithful explanation of an additive model scores 1).

    Ref. U. Bhatt, A. Weller, J. M. F. Moura. Evaluating and Aggregating Feature-based
    Model Explanations. IJCAI 2020. https://arxiv.org/abs/2005.00631 (Def. 3)

    Args:
        model, inputs, targets, batch_size, operator, activation, verbose, strategy: see
            :class:`~sobol_tf.metrics.base.ExplanationMetric`.
        grid_size: cells per side of the subsets' grid (default 9, as Xplique), cell
            masks upsampled to the input by nearest neighbour; None: pixel-wise subsets
            (one cell per pixel, H x W cells, the paper's definition). Time series
            (N, T, C): the time axis cut into ``grid_size`` windows, each channel drawn
            on its own (grid_size x C cells, as Xplique); None: a cell per (step,
            channel). Ignored for tabular rows (N, F) and token ids (N, L): one cell per
            feature / token (as Xplique for tabular rows).
        subset_percent: probability that a cell is set to the baseline, in (0, 1)
            (default 0.2).
        baseline_mode: a number (default 0.0), an array broadcastable to the inputs, or
            a callable on all the inputs returning one baseline per input. For token
            ids: the mask token id, an integer (required: the default 0.0 is refused).
        nb_samples: number of random subsets, >= 2 (default 200); the subsets and the
            drops may take at most :data:`MAX_BYTES` (1 GiB, :func:`mufidelity_bytes`:
            nb_samples * (12 * cells + 8 * N) bytes).
        seed: seed of the subsets; the same seed gives the same score. None, an integer
            >= 0 or a numpy Generator (one integer is drawn from it).
        pad_token: keyword-only, for token ids: the id of padding; padded positions are
            never perturbed and their attributions are ignored. None (default): no
            padding.

    Raises:
        InvalidArgumentError: ``grid_size`` larger than the inputs (than T for time
            series), ``subset_percent``
            outside (0, 1), ``nb_samples`` < 2, subsets and drops over
            :data:`MAX_BYTES` (the message gives the forward passes, the memory and the
            largest nb_samples that fits), a bad baseline, a negative ``seed``, plus the
            base's checks.
        InvalidTypeError: a ``seed`` that is not None, an integer or a numpy Generator; a
            ``baseline_mode`` or ``pad_token`` that is not an integer with token ids.

    Differences from Xplique: the subsets are drawn once per metric (from ``seed``) and
    shared by every input and every call of ``evaluate``, so that explanations compared
    with one metric object are compared on the same subsets, and the model's scores on
    them are computed once and reused; Spearman correlations are computed from
    float64 ranks of float32 scores; ``grid_size`` larger than the input raises instead
    of being resized away (for time series too); a constant drop (or a constant map)
    gives 0, as in Xplique (Spearman's rho is undefined there: the library's one
    convention, :mod:`sobol_tf.metrics.correlations`); token ids and padding are ours.

    Example:
        >>> metric = MuFidelity(model, images, labels, grid_size=8, seed=0)
        >>> score = metric(explanations)   # float in [-1, 1], higher is better
    """

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, grid_size: Optional[int] = 9,
                 subset_percent: float = 0.2, baseline_mode: BaselineMode = 0.0,
                 nb_samples: int = 200, operator: Any = None, activation: Activation = None,
                 *, seed: Any = None, pad_token: Optional[int] = None, verbose: bool = False,
                 strategy: Optional[tf.distribute.Strategy] = None) -> None:
        self.pad_token = pad_token
        super().__init__(model, inputs, targets, batch_size=batch_size, operator=operator,
                         activation=activation, verbose=verbose, strategy=strategy)
        _, height, width, channels = self.inputs.shape
        kind = self._layout.kind
        if kind in ("tabular", "tokens"):  # one cell per feature, as Xplique
            grid_size = None
        if grid_size is not None:
            grid_size = check_positive_int("grid_size", grid_size)
        if kind == "time_series":  # windows of time, each channel on its own
            if grid_size is not None and grid_size > width:
                raise InvalidArgumentError(
                    f"grid_size must not exceed the series' length, got grid_size="
                    f"{grid_size} for time series of {width} steps; use grid_size <= "
                    f"{width}, or None for a cell per step and channel.")
            cells = (1, width if grid_size is None else grid_size, channels)
        elif grid_size is None:
            cells = (height, width, 1)
        else:
            check_grid_fits(grid_size, height, width, " or None for pixel-wise subsets")
            cells = (grid_size, grid_size, 1)
        self.grid_size = grid_size
        self.subset_percent = check_probability("subset_percent", subset_percent,
                                                open_low=True, open_high=True)
        self.nb_samples = check_positive_int("nb_samples", nb_samples, minimum=2)
        self._check_size(cells, self.inputs.shape[0])
        self.baseline_mode = baseline_mode
        self.seed = check_seed(seed)
        self._baseline_values = self._baselines(baseline_mode)
        draws = np.random.default_rng(self.seed).uniform(size=(self.nb_samples,) + cells)
        #: (S, gh, gw, k) float32: 1 keeps a cell, 0 sets it to the baseline (k = C
        #: for time series, whose channels are drawn independently, else 1).
        self._keep = tf.constant(draws >= self.subset_percent, tf.float32)
        nb_cells = int(np.prod(cells))
        cell_ids = tf.reshape(tf.range(nb_cells, dtype=tf.float32), (1,) + cells)
        #: (H * W * k,) int32: the cell of each feature, upsampled exactly as the masks.
        self._cell_of_pixel = tf.reshape(tf.cast(
            upsample_masks(cell_ids, height, width), tf.int32), (-1,))
        #: a cell is kept or set to the baseline; padding is never replaced.
        self._perturbation = Replacement(self.pad_token if self._pads(self.inputs)
                                         is not None else None)
        self._drops: Optional[np.ndarray] = None

    def _check_size(self, cells, nb_inputs):
        """Refuse subsets and drops over :data:`MAX_BYTES`, before drawing anything."""
        nb_cells = int(np.prod(cells))
        largest = MAX_BYTES // mufidelity_bytes(1, nb_cells, nb_inputs)
        grid = ("pixel-wise subsets (grid_size=None)" if self.grid_size is None
                else f"grid_size={self.grid_size}")
        lower = (f"nb_samples (nb_samples <= {largest} at {grid} with {nb_inputs} inputs)"
                 if largest >= 2 else f"nb_samples (none fits at {grid})")
        if self.grid_size is None or self.grid_size > 1:
            lower += ", grid_size, or the number of inputs per metric"
        else:
            lower += " or the number of inputs per metric"
        check_memory(f"nb_samples={self.nb_samples} with {grid} ({nb_cells} cells) and "
                     f"{nb_inputs} inputs",
                     f"{nb_inputs * self.nb_samples} forward passes",
                     f"subsets ({self.nb_samples} x {nb_cells}, drawn in float64) and score "
                     f"drops ({nb_inputs} x {self.nb_samples} float64)",
                     mufidelity_bytes(self.nb_samples, nb_cells, nb_inputs), MAX_BYTES,
                     "sobol_tf.metrics.fidelity.MAX_BYTES", lower)

    def evaluate(self, explanations: ArrayLike) -> float:
        """Mean over inputs of the Spearman correlation between drops and attributions.

        Args:
            explanations: one attribution map per input: (N, H, W), (N, H, W, 1) or
                (N, H, W, C) for images; (N, F) for tabular rows; (N, L) for token ids;
                (N, T, C), (N, T, 1) or (N, T) for time series.

        Returns:
            float in [-1, 1], higher is better.

        Raises:
            InvalidArgumentError: explanations that do not match the inputs, NaN or inf.
        """
        return float(np.mean(self.detailed_evaluate(explanations)))

    def detailed_evaluate(self, explanations: ArrayLike) -> np.ndarray:
        """Every input's correlation, (N,) float64 numpy (for statistics).

        Args and Raises: as :meth:`evaluate`.
        """
        maps = self._explanation_maps(explanations)                     # (N, H, W, k)
        pads = self._pads(self.inputs)
        if pads is not None:  # never perturbed: their attributions take no part
            maps = tf.where(pads, 0.0, maps)
        nb_inputs = maps.shape[0]
        nb_cells = int(np.prod(self._keep.shape[1:]))
        flat = tf.transpose(tf.reshape(maps, (nb_inputs, -1)))             # (H*W*k, N)
        per_cell = tf.math.unsorted_segment_sum(flat, self._cell_of_pixel, nb_cells)
        removed = 1.0 - tf.reshape(self._keep, (self.nb_samples, nb_cells))  # (S, G)
        subset_attributions = tf.transpose(tf.matmul(removed, per_cell))    # (N, S)
        return spearman_rows(self._score_drops(), subset_attributions.numpy())

    def _score_drops(self) -> np.ndarray:
        """Drops of the score, clean minus perturbed, (N, S); computed once."""
        if self._drops is not None:
            return self._drops
        _, height, width, _ = self.inputs.shape

        def kept(input_ids, sample_ids, keep):
            """The sample's cells (1 kept, 0 set to the baseline) at the input size."""
            return upsample_masks(tf.gather(keep, sample_ids), height, width)

        nb_inputs = int(self.inputs.shape[0])
        scores = self._scorer.masked_scores(
            self._model_view, "mufidelity", self._perturbation, self.inputs, self.targets,
            self._baseline_values, self.nb_samples, kept, extras=(self._keep,),
            what=f"{self.nb_samples} subsets of {nb_inputs} input(s)")
        scores = scores.numpy().astype(np.float64)
        clean = self._clean_scores().numpy().astype(np.float64)
        self._drops = clean[:, None] - scores
        return self._drops
