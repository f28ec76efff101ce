"""Complexity of explanations: how spread out a map is, from the map alone.

    from sobol_tf.metrics import Complexity, Sparseness
    entropy = Complexity()(maps)      # low: concentrated maps
    gini = Sparseness()(maps)         # high: concentrated maps

Both read a map as a distribution over its features: absolute values (averaged over the
channels of (N, H, W, C) maps, as Xplique does), divided by their sum. Neither calls a
model. Maps of every kind are accepted: images (N, H, W) / (N, H, W, C), tabular rows and
token maps (N, F), time series (N, T, C) (every (step, channel) cell is a feature).
"""

from __future__ import annotations

from typing import Optional
from abc import ABC, abstractmethod

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import check_positive_int, to_numpy
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn


def _check_maps(explanations):
    """``explanations`` as a numpy array (N, ...) of finite numbers; raise otherwise."""
    maps = to_numpy(explanations, "explanations")
    if not (np.issubdtype(maps.dtype, np.number) or maps.dtype == np.bool_):
        raise InvalidTypeError(f"explanations must hold numbers, got dtype {maps.dtype}.")
    if maps.ndim < 2 or maps.shape[0] == 0 or maps[0].size == 0:
        raise InvalidArgumentError(
            f"explanations must be a batch of maps (N, ...) with N >= 1 and at least one "
            f"value per map, e.g. (N, H, W), (N, H, W, C) or (N, F); got shape {maps.shape}.")
    if not np.all(np.isfinite(maps)):
        raise InvalidArgumentError(
            f"explanations contain {int(np.sum(~np.isfinite(maps)))} NaN or infinite "
            "value(s).")
    return maps


def feature_distributions(explanations: ArrayLike) -> np.ndarray:
    """Each map as a distribution over its features, float64 (N, n), rows summing to 1.

    |map|, averaged over the last axis of 4-D maps (N, H, W, C), flattened, divided by
    its sum. An all-zero map (no feature matters more than another) is read as the
    uniform distribution, the limit of the maps c * ones as c -> 0 (both metrics are
    scale invariant), with one SobolTFWarning giving the count.

    Raises:
        InvalidTypeError: explanations that do not hold numbers.
        InvalidArgumentError: fewer than 2 axes, no map or empty maps, NaN or inf.
    """
    maps = np.abs(_check_maps(explanations).astype(np.float64))
    if maps.ndim == 4:
        maps = maps.mean(axis=-1)
    maps = maps.reshape(maps.shape[0], -1)
    totals = maps.sum(axis=1, keepdims=True)
    zero = totals[:, 0] == 0
    if zero.any():
        warn(f"{int(zero.sum())} explanation map(s) are all zero: scored as uniform maps "
             "(the limit of c * ones as c -> 0; maximal complexity, sparseness 0).")
        maps[zero] = 1.0
        totals[zero] = maps.shape[1]
    return maps / totals


class BaseComplexityMetric(ABC):
    """Base of the metrics that score explanation maps alone (Xplique's
    ``BaseComplexityMetric``): ``evaluate(explanations) -> float`` is the mean of
    :meth:`detailed_evaluate` (one score per map) over chunks of ``batch_size`` maps.

    Args:
        batch_size: maps scored per chunk (bounds memory); 32 as Xplique; None: all at
            once.

    Raises:
        InvalidTypeError, InvalidArgumentError: ``batch_size`` not None nor an integer
            >= 1.
    """

    def __init__(self, batch_size: Optional[int] = 32) -> None:
        self.batch_size = None if batch_size is None else check_positive_int(
            "batch_size", batch_size)

    @abstractmethod
    def detailed_evaluate(self, explanations: ArrayLike) -> np.ndarray:
        """One score per map of ``explanations`` (a tf.Tensor or array (B, ...)):
        numpy (B,)."""

    def evaluate(self, explanations: ArrayLike, batch_size: Optional[int] = None) -> float:
        """The mean score of ``explanations`` (N, ...): a float.

        Args:
            explanations: numpy array, tf.Tensor or nested list (N, ...), N >= 1.
            batch_size: maps per chunk for this call; None: the metric's ``batch_size``.

        Raises:
            InvalidTypeError: explanations that do not hold numbers.
            InvalidArgumentError: fewer than 2 axes, no map, NaN or inf; a bad
                ``batch_size``.
        """
        maps = _check_maps(explanations)
        size = self.batch_size if batch_size is None else check_positive_int(
            "batch_size", batch_size)
        size = len(maps) if size is None else size
        scores = [np.asarray(self.detailed_evaluate(tf.constant(maps[first:first + size])),
                             np.float64).reshape(-1)
                  for first in range(0, len(maps), size)]
        return float(np.mean(np.concatenate(scores)))

    def __call__(self, explanations: ArrayLike, batch_size: Optional[int] = None) -> float:
        """Alias of :meth:`evaluate` (Xplique's ``__call__`` takes ``batch_size`` too, and
        ignores it; here it is used)."""
        return self.evaluate(explanations, batch_size)


class Complexity(BaseComplexityMetric):
    """Complexity: the Shannon entropy of each map read as a distribution (Bhatt et al.).

    p = |map| / sum |map| (channels of (N, H, W, C) maps averaged first, as Xplique);
    complexity = -sum_i p_i log p_i (natural log, 0 log 0 = 0). It is 0 for a map with one
    non-zero feature and log(n) for a uniform map of n features; lower is simpler.

    Ref. U. Bhatt, A. Weller, J. M. F. Moura. Evaluating and Aggregating Feature-based
    Model Explanations. IJCAI 2020. https://arxiv.org/abs/2005.00631

    Args:
        batch_size: maps per chunk; 32 as Xplique; None: all at once.

    Differences from Xplique: computed exactly in float64 (Xplique adds 1e-8 to the sum
    and inside the log, in float32, which biases the entropy by about n * 1e-8 and breaks
    the scale invariance of maps whose sum is near 1e-8); an all-zero map is scored as
    uniform, log(n), with a SobolTFWarning (Xplique: 0, the score of the sparsest map).

    Example:
        >>> Complexity()(np.eye(4)[None])            # one-hot rows of a (1, 4, 4) map
        1.386...                                     # log(4): 4 equal pixels
    """

    def detailed_evaluate(self, explanations: ArrayLike) -> np.ndarray:
        """The entropy of each map: numpy float64 (B,).

        Raises:
            InvalidTypeError, InvalidArgumentError: as :meth:`evaluate`.
        """
        p = feature_distributions(explanations)
        logs = np.log(np.where(p > 0, p, 1.0))
        return -np.sum(p * logs, axis=1)


class Sparseness(BaseComplexityMetric):
    """Sparseness: the Gini index of each map read as a distribution (Chalasani et al.).

    With p = |map| / sum |map| (channels of (N, H, W, C) maps averaged first, as Xplique)
    sorted increasingly, p_(1) <= ... <= p_(n):
    gini = 2 * sum_i i * p_(i) / n - (n + 1) / n. It is 0 for a uniform map and
    1 - 1/n, its largest value, for a map with one non-zero feature; higher is sparser.

    Ref. P. Chalasani, J. Chen, A. R. Chowdhury, X. Wu, S. Jha. Concise Explanations of
    Neural Networks using Adversarial Training. ICML 2020.
    https://proceedings.mlr.press/v119/chalasani20a.html

    Args:
        batch_size: maps per chunk; 32 as Xplique; None: all at once.

    Differences from Xplique: computed exactly in float64 (Xplique adds 1e-8 to sums);
    an all-zero map is scored as uniform, 0, with a SobolTFWarning (Xplique returns
    -(n + 1) / n, outside [0, 1]).

    Example:
        >>> Sparseness()(np.array([[1., 2., 3., 4.]]))
        0.25
    """

    def detailed_evaluate(self, explanations: ArrayLike) -> np.ndarray:
        """The Gini index of each map: numpy float64 (B,).

        Raises:
            InvalidTypeError, InvalidArgumentError: as :meth:`evaluate`.
        """
        p = np.sort(feature_distributions(explanations), axis=1)
        n = p.shape[1]
        ranks = np.arange(1, n + 1, dtype=np.float64)
        return 2.0 * (p @ ranks) / n - (n + 1.0) / n
