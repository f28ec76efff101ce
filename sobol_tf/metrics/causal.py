"""Deletion and Insertion (Petsiuk et al., RISE, BMVC 2018): the score of inputs whose
most important features, by the explanation, are removed from the input or revealed on
a baseline, step by step.

The perturbed inputs go through the engine's one path, masks -> perturbation -> scores
(:meth:`~sobol_tf._utils.scoring.Scorer.masked_scores`): at each step a feature is kept
or set to the baseline (a :class:`~sobol_tf.attributions.perturbations.Replacement`),
built inside the compiled step from (input, step) indices, several inputs sharing a
forward batch, so memory is bounded by ``batch_size``.
"""
from __future__ import annotations

import numbers
from collections import namedtuple
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import check_choice, check_probability
from sobol_tf.attributions.perturbations import Replacement
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.base import Activation, BaselineMode, ExplanationMetric

CAUSAL_MODES = ("deletion", "insertion")
CausalCurves = namedtuple("CausalCurves", ["counts", "scores", "areas"])
CausalCurves.__doc__ = """Per-input Deletion or Insertion curves.

Attributes:
    counts: int64 numpy (K,), the number of features perturbed at each step.
    scores: float64 numpy (N, K), the score of each input at each step.
    areas: float64 numpy (N,), the area under each input's curve (trapezoid rule on a
        [0, 1] axis); their mean is what ``evaluate`` returns.
"""


def curve_area(scores: ArrayLike) -> np.ndarray:
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

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, causal_mode: str = "deletion",
                 baseline_mode: BaselineMode = 0.0, steps: int = 10,
                 max_percentage_perturbed: float = 1.0, operator: Any = None,
                 activation: Activation = None, *, pad_token: Optional[int] = None,
                 verbose: bool = False, strategy: Optional[tf.distribute.Strategy] = None,
                 ) -> None:
        self.pad_token = pad_token
        super().__init__(model, inputs, targets, batch_size=batch_size, operator=operator,
                         activation=activation, verbose=verbose, strategy=strategy)
        self.causal_mode = check_choice("causal_mode", causal_mode, CAUSAL_MODES)
        self.baseline_mode = baseline_mode
        self._baseline_values = self._baselines(baseline_mode)
        #: features kept or set to the baseline (padding is handled by the ranks).
        self._perturbation = Replacement()
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
        self.counts: np.ndarray = ticks * self.max_nb_perturbed // self.steps
        self.counts_per_input: np.ndarray = ticks[None, :] * per_input[:, None] // self.steps

    def evaluate(self, explanations: ArrayLike) -> float:
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

    def detailed_evaluate(self, explanations: ArrayLike) -> Dict[int, float]:
        """The mean curve: {number of features perturbed: mean score over inputs}.

        Args and Raises: as :meth:`evaluate`.

        Returns:
            dict of ``steps + 1`` int -> float, ordered by count (with padded texts,
            the longest input's counts: see the class).
        """
        curves = self.curves(explanations)
        return {int(count): float(score)
                for count, score in zip(curves.counts, curves.scores.mean(axis=0))}

    def curves(self, explanations: ArrayLike) -> CausalCurves:
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

        def kept(input_ids, step_ids, ranks, counts):
            """1 where a feature keeps the input's value at that step, else 0."""
            count = tf.gather_nd(counts, tf.stack([input_ids, step_ids], axis=1))
            flip = tf.reshape(tf.gather(ranks, input_ids) < count[:, None],
                              (-1,) + feature_shape)
            return tf.cast(tf.logical_not(flip) if deletion else flip, tf.float32)

        nb_steps = len(self.counts)
        scores = self._scorer.masked_scores(
            self._model_view, self.causal_mode, self._perturbation, self.inputs,
            self.targets, self._baseline_values, nb_steps, kept, extras=(ranks, counts),
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

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, baseline_mode: BaselineMode = 0.0,
                 steps: int = 10, max_percentage_perturbed: float = 1.0, operator: Any = None,
                 activation: Activation = None, *, pad_token: Optional[int] = None,
                 verbose: bool = False, strategy: Optional[tf.distribute.Strategy] = None,
                 ) -> None:
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

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, baseline_mode: BaselineMode = 0.0,
                 steps: int = 10, max_percentage_perturbed: float = 1.0, operator: Any = None,
                 activation: Activation = None, *, pad_token: Optional[int] = None,
                 verbose: bool = False, strategy: Optional[tf.distribute.Strategy] = None,
                 ) -> None:
        super().__init__(model, inputs, targets, batch_size=batch_size,
                         causal_mode="insertion", baseline_mode=baseline_mode, steps=steps,
                         max_percentage_perturbed=max_percentage_perturbed,
                         operator=operator, activation=activation, pad_token=pad_token,
                         verbose=verbose, strategy=strategy)
