"""Fidelity (faithfulness) metrics: Deletion, Insertion and MuFidelity.

Each one perturbs the inputs according to an explanation, or at random, and asks the
model whether the features the explanation calls important matter to its score.
Perturbed inputs are built inside the compiled step from (input, perturbation) indices,
several inputs sharing a forward batch, so memory is bounded by ``batch_size``.
"""
import numbers
from collections import namedtuple

import numpy as np
import tensorflow as tf

from sobol_tf._utils import (check_choice, check_grid_fits, check_positive_int,
                             check_probability, check_seed)
from sobol_tf._utils.scoring import gather_rows
from sobol_tf._utils.validation import check_memory
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.base import ExplanationMetric
from sobol_tf.metrics.correlations import spearman_rows

CAUSAL_MODES = ("deletion", "insertion")

#: the most memory MuFidelity's subsets and score drops may take (see
#: :func:`mufidelity_bytes`); larger ``nb_samples`` are refused in the constructor.
MAX_BYTES = 1 << 30


def mufidelity_bytes(nb_samples, nb_cells, nb_inputs):
    """Bytes MuFidelity holds: its subsets, ``nb_samples`` x ``nb_cells`` drawn in float64
    and kept in float32 (12 bytes each), and its score drops, ``nb_inputs`` x
    ``nb_samples`` float64 (8 bytes each)."""
    return nb_samples * (12 * nb_cells + 8 * nb_inputs)

CausalCurves = namedtuple("CausalCurves", ["counts", "scores", "areas"])
CausalCurves.__doc__ = """Per-input Deletion or Insertion curves.

Attributes:
    counts: int64 numpy (K,), the number of features perturbed at each step.
    scores: float64 numpy (N, K), the score of each input at each step.
    areas: float64 numpy (N,), the area under each input's curve (trapezoid rule on a
        [0, 1] axis); their mean is what ``evaluate`` returns.
"""


def curve_area(scores):
    """Area under curves sampled at equally spaced points of [0, 1], trapezoid rule.

    Args:
        scores: array (..., K), K >= 2 points per curve.

    Returns:
        numpy (...): a constant curve of value v has area v.
    """
    scores = np.asarray(scores, np.float64)
    return np.mean((scores[..., :-1] + scores[..., 1:]) / 2.0, axis=-1)


class CausalFidelity(ExplanationMetric):
    """Deletion or Insertion curve of explanations (Petsiuk et al., RISE, BMVC 2018).

    A feature is a pixel of an image (all its channels move together), a column of
    tabular rows (N, F), a (time step, channel) cell of a time series (N, T, C) (as
    Xplique, whose rank-3 inputs have T x C features), or a token of token ids (N, L)
    (word deletion, as the Sobol paper's text experiment: removed tokens become the
    mask token ``baseline_mode``). Features are ranked by decreasing attribution
    (channels of an image explanation averaged, sign kept; one value per time step,
    (N, T, 1) or (N, T), is shared by the step's channels; ties in the order of the
    flattened feature index, a stable sort). At ``steps + 1`` counts
    ``floor(k * M / steps)``, k = 0..steps, with M = floor(features *
    max_percentage_perturbed), the top features are set to the baseline ('deletion',
    starting from the input) or revealed on the baseline ('insertion', starting from the
    baseline). The mean score over inputs at each step forms the curve and the score is
    its area by the trapezoid rule, the steps equally spaced on [0, 1] (as Xplique: a
    constant curve of value v scores v).

    Padded texts (``pad_token``): padded positions are never perturbed (they keep the
    pad id in every state, insertion's start included) and are not features. Each input
    runs over its own real tokens: an input of n real tokens perturbs
    ``floor(k * M_n / steps)`` of them at step k, M_n = floor(n *
    max_percentage_perturbed), the same share of its own text at each step whatever its
    length; ``steps`` is clamped by the longest input's M, and the counts reported
    (``counts``, the keys of ``detailed_evaluate``) are the longest input's (every
    input's are in ``counts_per_input``).

    Args:
        model, inputs, targets, batch_size, operator, activation, verbose, strategy: see
            :class:`~sobol_tf.metrics.base.ExplanationMetric`.
        causal_mode: 'deletion' or 'insertion'.
        baseline_mode: what perturbed features become: a number (default 0.0), an
            array broadcastable to the inputs, or a callable on all the inputs returning
            one baseline per input (e.g. a blur). For token ids: the mask token id, an
            integer (required: the default 0.0 is refused, as is any float).
        steps: number of intervals between the start and the end state (default 10);
            -1: one step per feature. More steps than M features are clamped to M.
        max_percentage_perturbed: share of the features perturbed at the last step, in
            (0, 1] (default 1.0).
        pad_token: keyword-only, for token ids: the id of padding, never perturbed and
            not counted as a feature; None (default): no padding.

    Attributes:
        nb_features: features per input (H * W, F, T * C or L; padded positions
            included).
        counts: int64 numpy (steps + 1,), features perturbed at each step (the longest
            input's with padded texts).
        counts_per_input: int64 numpy (N, steps + 1), each input's counts (equal to
            ``counts`` for every input without padding).

    Raises:
        InvalidArgumentError: ``steps`` not -1 or >= 1, ``max_percentage_perturbed``
            outside (0, 1] or so small that no feature is perturbed, a bad baseline,
            a ``pad_token`` with inputs that are not token ids, plus the checks of the
            base.
        InvalidTypeError: a ``baseline_mode`` or ``pad_token`` that is not an integer
            with token ids.

    Arguments keep Xplique's positional order (code written for Xplique runs
    unchanged); ``pad_token`` and ``verbose`` are keyword-only. Differences from
    Xplique: ties are broken in a documented, stable order; counts are computed with
    integer arithmetic; ``steps`` larger than the number of features is clamped
    (Xplique would repeat counts and lose them as dictionary keys); time-series
    explanations of one value per step are shared by the step's channels (Xplique
    would misread them); token ids and padding are ours (Xplique has no text metric).
    """

    def __init__(self, model, inputs, targets=None, batch_size=64, causal_mode="deletion",
                 baseline_mode=0.0, steps=10, max_percentage_perturbed=1.0, operator=None,
                 activation=None, *, pad_token=None, verbose=False, strategy=None):
        self.pad_token = pad_token
        super().__init__(model, inputs, targets, batch_size=batch_size, operator=operator,
                         activation=activation, verbose=verbose, strategy=strategy)
        self.causal_mode = check_choice("causal_mode", causal_mode, CAUSAL_MODES)
        self.baseline_mode = baseline_mode
        self._baseline_values = self._baselines(baseline_mode)
        self.max_percentage_perturbed = check_probability(
            "max_percentage_perturbed", max_percentage_perturbed, open_low=True)
        _, height, width, _ = self.inputs.shape
        self.nb_features = int(height * width * self._feature_channels)
        pads = self._pads(self.inputs)
        real = np.full(self.inputs.shape[0], self.nb_features, np.int64) if pads is None \
            else self.nb_features - tf.reduce_sum(tf.cast(pads, tf.int64), [1, 2, 3]).numpy()
        per_input = np.floor(real * self.max_percentage_perturbed).astype(np.int64)
        self.max_nb_perturbed = int(per_input.max(initial=0))
        if self.max_nb_perturbed < 1:
            longest = int(real.max(initial=0))
            raise InvalidArgumentError(
                f"max_percentage_perturbed={max_percentage_perturbed} perturbs no feature "
                f"of the {longest} of the longest input; use at least "
                f"{1 / max(longest, 1):.3g}."
            )
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise InvalidTypeError(
                f"steps must be an integer >= 1 or -1 (every feature), got {steps!r}.")
        if steps != -1 and steps < 1:
            raise InvalidArgumentError(
                f"steps must be an integer >= 1 or -1 (every feature), got {steps}.")
        self.steps = self.max_nb_perturbed if steps == -1 else min(int(steps),
                                                                   self.max_nb_perturbed)
        ticks = np.arange(self.steps + 1, dtype=np.int64)
        self.counts = ticks * self.max_nb_perturbed // self.steps
        self.counts_per_input = ticks[None, :] * per_input[:, None] // self.steps

    def evaluate(self, explanations):
        """Area under the mean Deletion/Insertion curve.

        Args:
            explanations: one attribution map per input: (N, H, W), (N, H, W, 1) or
                (N, H, W, C) for images; (N, F) for tabular rows; (N, L) for token ids;
                (N, T, C), (N, T, 1) or (N, T) for time series; numpy or tf.Tensor.

        Returns:
            float: Deletion, lower is better; Insertion, higher is better.

        Raises:
            InvalidArgumentError: explanations that do not match the inputs, NaN or inf.
        """
        return float(np.mean(self.curves(explanations).areas))

    def detailed_evaluate(self, explanations):
        """The mean curve: {number of features perturbed: mean score over inputs}.

        Args and Raises: as :meth:`evaluate`.

        Returns:
            dict of ``steps + 1`` int -> float, ordered by count (with padded texts,
            the longest input's counts: see the class).
        """
        curves = self.curves(explanations)
        return {int(count): float(score)
                for count, score in zip(curves.counts, curves.scores.mean(axis=0))}

    def curves(self, explanations):
        """Every input's curve, for plots and statistics (e.g. paired tests).

        Args and Raises: as :meth:`evaluate`.

        Returns:
            :class:`CausalCurves` (counts (K,), scores (N, K), areas (N,)).
        """
        maps = self._explanation_maps(explanations)             # (N, H, W, k)
        nb_inputs = int(self.inputs.shape[0])
        deletion = self.causal_mode == "deletion"
        flat = tf.reshape(maps, (nb_inputs, -1))
        pads = self._pads(self.inputs)
        if pads is not None:  # padded positions last, then never flipped (deletion) or
            pads = tf.reshape(pads, (nb_inputs, -1))  # always flipped (insertion): they
            flat = tf.where(pads, -np.inf, flat)      # keep their pad id in every state
        order = tf.argsort(-flat, axis=1, stable=True)
        ranks = tf.argsort(order, axis=1, stable=True)  # the inverse permutation
        if pads is not None:
            ranks = tf.where(pads, self.nb_features if deletion else -1, ranks)
        counts = tf.constant(self.counts_per_input, tf.int32)
        feature_shape = tuple(maps.shape[1:])

        def build(input_ids, step_ids, images, baselines, ranks, counts):
            count = tf.gather_nd(counts, tf.stack([input_ids, step_ids], axis=1))
            flip = tf.reshape(tf.gather(ranks, input_ids) < count[:, None],
                              (-1,) + feature_shape)
            clean = tf.gather(images, input_ids)
            baseline = gather_rows(baselines, input_ids)
            return tf.where(flip, baseline, clean) if deletion else \
                tf.where(flip, clean, baseline)

        nb_steps = len(self.counts)
        scores = self._scorer.perturbed_scores(
            self._model_view, self.causal_mode, build, self.inputs, self.targets, nb_steps,
            extras=(self._baseline_values, ranks, counts),
            what=f"{nb_steps} steps of {nb_inputs} input(s)")
        scores = scores.numpy().astype(np.float64)
        return CausalCurves(counts=self.counts.copy(), scores=scores, areas=curve_area(scores))


class Deletion(CausalFidelity):
    """Deletion: the score as the most important features are removed (lower is better).

    The most important features according to the explanation (pixels, tabular columns,
    (time step, channel) cells, tokens: see :class:`CausalFidelity`) are set to the
    baseline, a growing share at each step; a faithful explanation makes the score fall
    fast, so the area under the curve is small. On token ids this is the word deletion
    of the Sobol paper's text experiment: tokens are replaced by the mask token
    ``baseline_mode`` by decreasing attribution, padding never touched.

    Ref. V. Petsiuk, A. Das, K. Saenko. RISE: Randomized Input Sampling for Explanation
    of Black-box Models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Args:
        model, inputs, targets, batch_size, baseline_mode, steps,
        max_percentage_perturbed, operator, activation, verbose, strategy: see
            :class:`CausalFidelity` (defaults as Xplique: batch_size=64,
            baseline_mode=0.0, steps=10, max_percentage_perturbed=1.0).
        pad_token: keyword-only, for token ids: the id of padding (see
            :class:`CausalFidelity`).

    Example:
        >>> metric = Deletion(model, images, labels, batch_size=64, steps=10)
        >>> score = metric(explanations)                 # float, lower is better
        >>> curve = metric.detailed_evaluate(explanations)  # {pixels removed: score}
    """

    def __init__(self, model, inputs, targets=None, batch_size=64, baseline_mode=0.0,
                 steps=10, max_percentage_perturbed=1.0, operator=None, activation=None, *,
                 pad_token=None, verbose=False, strategy=None):
        super().__init__(model, inputs, targets, batch_size=batch_size,
                         causal_mode="deletion", baseline_mode=baseline_mode, steps=steps,
                         max_percentage_perturbed=max_percentage_perturbed,
                         operator=operator, activation=activation, pad_token=pad_token,
                         verbose=verbose, strategy=strategy)


class Insertion(CausalFidelity):
    """Insertion: the score as the most important features are revealed (higher is better).

    Starting from the baseline (for token ids: every real token replaced by the mask
    token ``baseline_mode``, padding kept), the most important features according to
    the explanation are given back their value, a growing share at each step; a faithful explanation
    makes the score rise fast, so the area under the curve is large.

    Ref. V. Petsiuk, A. Das, K. Saenko. RISE: Randomized Input Sampling for Explanation
    of Black-box Models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Args:
        model, inputs, targets, batch_size, baseline_mode, steps,
        max_percentage_perturbed, operator, activation, verbose, strategy: see
            :class:`CausalFidelity` (defaults as Xplique).
        pad_token: keyword-only, for token ids: the id of padding (see
            :class:`CausalFidelity`).

    Example:
        >>> score = Insertion(model, images, labels, baseline_mode=blur)(explanations)
    """

    def __init__(self, model, inputs, targets=None, batch_size=64, baseline_mode=0.0,
                 steps=10, max_percentage_perturbed=1.0, operator=None, activation=None, *,
                 pad_token=None, verbose=False, strategy=None):
        super().__init__(model, inputs, targets, batch_size=batch_size,
                         causal_mode="insertion", baseline_mode=baseline_mode, steps=steps,
                         max_percentage_perturbed=max_percentage_perturbed,
                         operator=operator, activation=activation, pad_token=pad_token,
                         verbose=verbose, strategy=strategy)


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
    of being resized away (for time series too); a constant drop gives 0, as in
    Xplique; token ids and padding are ours.

    Example:
        >>> metric = MuFidelity(model, images, labels, grid_size=8, seed=0)
        >>> score = metric(explanations)   # float in [-1, 1], higher is better
    """

    def __init__(self, model, inputs, targets=None, batch_size=64, grid_size=9,
                 subset_percent=0.2, baseline_mode=0.0, nb_samples=200, operator=None,
                 activation=None, *, seed=None, pad_token=None, verbose=False,
                 strategy=None):
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
            self._upsample(cell_ids, height, width), tf.int32), (-1,))
        self._drops = None

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

    @staticmethod
    def _upsample(masks, height, width):
        if masks.shape[1] == height and masks.shape[2] == width:
            return masks
        return tf.image.resize(masks, (height, width), method="nearest")

    def evaluate(self, explanations):
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

    def detailed_evaluate(self, explanations):
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

    def _score_drops(self):
        """Drops of the score, clean minus perturbed, (N, S); computed once."""
        if self._drops is not None:
            return self._drops
        _, height, width, _ = self.inputs.shape
        upsample, pad_token = self._upsample, self.pad_token
        padded = self._pads(self.inputs) is not None

        def build(input_ids, sample_ids, images, baselines, keep):
            clean = tf.gather(images, input_ids)
            masks = upsample(tf.gather(keep, sample_ids), height, width) > 0.5
            if padded:  # padded positions are never perturbed
                masks = tf.logical_or(masks, tf.equal(clean, float(pad_token)))
            return tf.where(masks, clean, gather_rows(baselines, input_ids))

        nb_inputs = int(self.inputs.shape[0])
        scores = self._scorer.perturbed_scores(
            self._model_view, "mufidelity", build, self.inputs, self.targets,
            self.nb_samples, extras=(self._baseline_values, self._keep),
            what=f"{self.nb_samples} subsets of {nb_inputs} input(s)")
        scores = scores.numpy().astype(np.float64)
        clean = self._clean_scores().numpy().astype(np.float64)
        self._drops = clean[:, None] - scores
        return self._drops
