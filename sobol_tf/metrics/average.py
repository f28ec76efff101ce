"""Average Drop, Average Increase and Average Gain: the score of inputs masked softly by
their explanation, compared with the score of the clean inputs.

Each input x is multiplied by a mask M built from its explanation: |phi| (channels of
an image averaged; a time series keeps one value per (step, channel), or shares one per
step among its channels), min-max normalised per input to [0, 1] (M = (m - min) / (max -
min + 1e-8)), so the most important feature is kept whole and the least important one
removed. Token ids cannot be scaled: a token is kept where M >= 0.5 and replaced by
``mask_token`` elsewhere (padding, ``pad_token``, is always kept and left out of the
min and max). The masked inputs are built on the device by the scoring engine shared
with the explainers, several inputs per forward batch. Names, arguments and formulas
are Xplique's (2.0); tokens are ours.
"""

from __future__ import annotations

from typing import Any, Optional
from abc import abstractmethod

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import to_numpy
from sobol_tf._utils.layouts import DESCRIPTIONS
from sobol_tf.attributions.perturbations import Perturbation, Replacement
from sobol_tf.errors import InvalidArgumentError
from sobol_tf.metrics.base import Activation, ExplanationMetric, TensorLike, check_token_id

#: added to the denominators (of the masks' normalisation, of the Drop and the Gain), as
#: in Xplique, so that a constant map or a score of 0 (Drop) or 1 (Gain) divides safely.
EPSILON = 1e-8


def normalised_masks(maps: TensorLike, ignored: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Masks in [0, 1] from maps (N, ...): |maps| min-max normalised per map.

    Args:
        maps: (N, ...) attributions.
        ignored: None, or a bool tensor of the maps' shape: positions left out of the
            min and the max (padding), whose mask is 1.

    Returns:
        float32 tf.Tensor of the maps' shape; a constant map gives a mask of zeros.
    """
    maps = tf.abs(tf.convert_to_tensor(maps, tf.float32))
    axes = list(range(1, maps.shape.rank))
    if ignored is None:
        low = tf.reduce_min(maps, axis=axes, keepdims=True)
        high = tf.reduce_max(maps, axis=axes, keepdims=True)
        return (maps - low) / (high - low + EPSILON)
    low = tf.reduce_min(tf.where(ignored, np.inf, maps), axis=axes, keepdims=True)
    high = tf.reduce_max(tf.where(ignored, -np.inf, maps), axis=axes, keepdims=True)
    low, high = tf.minimum(low, high), tf.maximum(low, high)  # only padding: 0 and 0
    low = tf.where(tf.math.is_finite(low), low, 0.0)
    high = tf.where(tf.math.is_finite(high), high, 0.0)
    return tf.where(ignored, 1.0, (maps - low) / (high - low + EPSILON))


class BaseAverageXMetric(ExplanationMetric):
    """Base of the Average metrics: clean and masked scores of every input.

    Args:
        model, inputs, targets, batch_size, operator, activation, verbose, strategy: see
            :class:`~sobol_tf.metrics.base.ExplanationMetric` (Xplique's order and
            defaults: batch_size=64, operator=None, activation=None). The formulas are
            meant for scores in [0, 1]: give ``activation='softmax'`` or ``'sigmoid'``
            for a model that outputs logits.
        mask_token: keyword-only, required for token ids (integer inputs (N, L)) and
            only for them: the id that masked tokens become (a token is kept where its
            mask is >= 0.5).
        pad_token: keyword-only, for token ids: the id of padding, always kept and left
            out of the masks' normalisation. None (default): no padding.

    Raises:
        InvalidArgumentError: token ids without ``mask_token``, a ``mask_token`` or
            ``pad_token`` with inputs that are not token ids, a negative id, plus the
            base's checks.
        InvalidTypeError: a ``mask_token`` or ``pad_token`` that is not an integer.

    Subclasses define :meth:`per_input` (base, after) -> scores. The clean scores of
    the metric's inputs are computed with the first call's masked scores (one step,
    one run) and reused by every later call.
    """

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, operator: Any = None,
                 activation: Activation = None, *, mask_token: Optional[int] = None,
                 pad_token: Optional[int] = None, verbose: bool = False,
                 strategy: Optional[tf.distribute.Strategy] = None) -> None:
        self.pad_token = pad_token
        super().__init__(model, inputs, targets, batch_size=batch_size, operator=operator,
                         activation=activation, verbose=verbose, strategy=strategy)
        if self._layout.kind == "tokens":
            if mask_token is None:
                raise InvalidArgumentError(
                    "the inputs are token ids (integer (N, L)): pass mask_token=ID, the id "
                    "that masked tokens become (e.g. the tokenizer's [MASK] or [UNK] id).")
            mask_token = check_token_id("mask_token", mask_token, "the mask token id")
        elif mask_token is not None:
            raise InvalidArgumentError(
                f"mask_token={mask_token!r} is for token ids (integer inputs (N, L)); the "
                f"inputs are {DESCRIPTIONS[self._layout.kind]}.")
        self.mask_token = mask_token
        #: inputs * M (towards 0), or for token ids a token kept where M >= 0.5 and
        #: replaced by ``mask_token`` elsewhere.
        if mask_token is None:
            self._perturbation = Perturbation()
            self._baseline_values = tf.zeros((1,) + tuple(self.inputs.shape[1:]))
        else:
            self._perturbation = Replacement()
            self._baseline_values = tf.fill((1,) + tuple(self.inputs.shape[1:]),
                                            float(mask_token))
        self._base = None

    @staticmethod
    def mask_inputs(inputs: TensorLike, explanations: TensorLike) -> tf.Tensor:
        """The inputs masked by their explanations, as the metric scores them.

        Args:
            inputs: (N, ...) array or tensor (images, time series, tabular rows).
            explanations: (N, ...) of the inputs' shape, or without their last axis
                (one attribution for all the channels / features of a position);
                (N, H, W, C) explanations are reduced to the mean of |phi| over C.

        Returns:
            float32 tf.Tensor: inputs * M, M = normalised_masks(...) broadcast over the
            last axis when the explanations lack it.
        """
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        maps = tf.abs(tf.convert_to_tensor(explanations, tf.float32))
        if maps.shape.rank == 4:
            maps = tf.reduce_mean(maps, axis=-1)
        masks = normalised_masks(maps)
        if masks.shape.rank == inputs.shape.rank - 1:
            masks = masks[..., None]
        return inputs * masks

    _perturb_with_mask = mask_inputs  # Xplique's name

    @staticmethod
    @abstractmethod
    def per_input(base: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The metric of each input from its clean and masked scores, float64 (N,)."""

    def evaluate(self, explanations: ArrayLike) -> float:  # type: ignore[override]
        """Mean over inputs of :meth:`per_input`.

        Args:
            explanations: one attribution map per input, numpy or tf.Tensor: (N, H, W),
                (N, H, W, 1) or (N, H, W, C) for images (C channels: mean of their
                absolute values); (N, F) for tabular rows; (N, L) for token ids;
                (N, T, C), (N, T, 1) or (N, T) for time series.

        Returns:
            float.

        Raises:
            InvalidArgumentError: explanations that do not match the inputs, NaN or inf.
        """
        return float(np.mean(self.detailed_evaluate(explanations)))

    def detailed_evaluate(self, inputs: ArrayLike, targets: Optional[ArrayLike] = None,
                          explanations: Optional[ArrayLike] = None) -> np.ndarray:
        """The metric of every input, float64 numpy (N,).

        Called as ``detailed_evaluate(explanations)`` for the metric's inputs, or as
        Xplique's ``detailed_evaluate(inputs, targets, explanations)`` for other inputs
        of the same shape (targets: rows of the metric's target width, or class ids).

        Raises:
            InvalidArgumentError: explanations, inputs or targets that do not match, or
                only one of ``targets`` and ``explanations`` given.
        """
        if targets is None and explanations is None:
            maps = self._explanation_maps(inputs, absolute=True)
            base, after = self._scores(self.inputs, self.targets, maps, self._base)
            self._base = base
            return self.per_input(base, after)
        if targets is None or explanations is None:
            raise InvalidArgumentError(
                "detailed_evaluate takes the explanations of the metric's inputs, or "
                "inputs, targets and explanations (Xplique's order); got "
                f"targets={'None' if targets is None else 'given'} and explanations="
                f"{'None' if explanations is None else 'given'}.")
        images, rows = self._other_inputs(inputs, targets)
        maps = self._explanation_maps(explanations, absolute=True, nb_inputs=len(images))
        return self.per_input(*self._scores(images, rows, maps, None))

    # -- internals --------------------------------------------------------------------
    def _scores(self, images, targets, maps, base):
        """Clean and masked scores, float64 numpy (N,) each, in one run of one step.

        Each input has one perturbation (its masked self) or, when ``base`` (the clean
        scores) is None, two: a mask of ones first, so that the clean scores come out of
        the same compiled step as the masked ones.
        """
        nb_inputs = int(images.shape[0])
        pads = self._pads(images)
        masks = normalised_masks(maps, pads)                          # (N, H, W, k)
        masks = masks[:, None] if base is not None else \
            tf.stack([tf.ones_like(masks), masks], axis=1)            # (N, P, H, W, k)

        def mask_of(input_ids, mask_ids, masks):
            return tf.gather_nd(masks, tf.stack([input_ids, mask_ids], axis=1))

        what = f"{nb_inputs} masked input(s)" + ("" if base is not None else " and clean")
        scores = self._scorer.masked_scores(
            self._model_view, "average", self._perturbation, images, targets,
            self._baseline_values, int(masks.shape[1]), mask_of, extras=(masks,),
            what=what).numpy().astype(np.float64)
        return (base, scores[:, 0]) if base is not None else (scores[:, 0], scores[:, 1])

    def _other_inputs(self, inputs, targets):
        """Inputs (B, H, W, C) and target rows (B, K) given to detailed_evaluate."""
        images = to_numpy(inputs, "inputs").astype(np.float32)
        if images.ndim == len(self._input_shape):
            images = self._to_images(images)
        if images.shape[1:] != tuple(self.inputs.shape[1:]) or not np.all(
                np.isfinite(images)):
            raise InvalidArgumentError(
                f"inputs has shape {images.shape}; detailed_evaluate needs finite inputs of "
                f"the metric's shape (B,) + {self._input_shape[1:]}.")
        if self._layout.kind == "tokens" and not np.all(np.round(images) == images):
            raise InvalidArgumentError(
                "inputs must hold token ids (integers), like the metric's inputs.")
        rows = to_numpy(targets, "targets").astype(np.float64)
        width = int(self.targets.shape[1])
        if rows.ndim == 1 and self.operator.ids_as_classes and np.all(np.mod(rows, 1) == 0):
            if rows.min() < 0 or rows.max() >= width:
                raise InvalidArgumentError(
                    f"targets holds class ids from {rows.min():g} to {rows.max():g}; they "
                    f"must lie in [0, {width}).")
            rows = np.eye(width)[rows.astype(np.int64)]
        rows = rows.reshape(len(rows), -1)
        if rows.shape[1] != width and width == 1 and self.operator.builtin:
            rows = rows.sum(axis=1, keepdims=True)  # a one-output model, as in __init__
        if rows.shape != (len(images), width) or not np.all(np.isfinite(rows)):
            raise InvalidArgumentError(
                f"targets has shape {rows.shape}; detailed_evaluate needs finite rows "
                f"({len(images)}, {width}) (one per input, the metric's target width) or "
                "class ids.")
        return tf.constant(images), tf.constant(rows, tf.float32)


class AverageDropMetric(BaseAverageXMetric):
    """Average Drop: the relative fall of the score when the input is masked by its
    explanation, max(0, base - after) / (base + 1e-8), averaged (lower is better).

    Ref. A. Chattopadhay, A. Sarkar, P. Howlader, V. N. Balasubramanian. Grad-CAM++:
    Generalized Gradient-Based Visual Explanations for Deep Convolutional Networks.
    WACV 2018. https://arxiv.org/abs/1710.11063

    Args: see :class:`BaseAverageXMetric` (Xplique's order: model, inputs, targets,
    batch_size=64, operator=None, activation=None).

    Example:
        >>> drop = AverageDropMetric(model, images, labels, activation="softmax")(maps)
    """

    @staticmethod
    def per_input(base: np.ndarray, after: np.ndarray) -> np.ndarray:
        return np.maximum(base - after, 0.0) / (base + EPSILON)


class AverageIncreaseMetric(BaseAverageXMetric):
    """Average Increase in Confidence: the share of inputs whose score rises when the
    input is masked by its explanation, 1[after > base], averaged (higher is better).

    Ref. Chattopadhay et al., Grad-CAM++, WACV 2018 (see :class:`AverageDropMetric`).

    Args: see :class:`BaseAverageXMetric` (Xplique's order and defaults).
    """

    @staticmethod
    def per_input(base: np.ndarray, after: np.ndarray) -> np.ndarray:
        return (after > base).astype(np.float64)


class AverageGainMetric(BaseAverageXMetric):
    """Average Gain: the rise of the score relative to its headroom when the input is
    masked by its explanation, max(0, after - base) / (1 - base + 1e-8), averaged
    (higher is better; meant for scores in [0, 1]).

    Ref. H. Zhang, F. Torres, R. Sicre, Y. Avrithis, S. Ayache. Opti-CAM: Optimizing
    saliency maps for interpretability. CVIU 2024. https://arxiv.org/abs/2301.07002

    Args: see :class:`BaseAverageXMetric` (Xplique's order and defaults).
    """

    @staticmethod
    def per_input(base: np.ndarray, after: np.ndarray) -> np.ndarray:
        return np.maximum(after - base, 0.0) / (1.0 - base + EPSILON)
