"""Estimators of Sobol sensitivity indices from a replicated design's outputs.

Every estimator reads the scores of the replicated design [A, B, C_1..C_d] (see
:mod:`sobol_tf.attributions.samplers`), vectorised over inputs and dimensions: scores
(N, nb_design * (d + 2)) -> indices (N, d). :meth:`SobolEstimator.__call__` splits and
reshapes; a subclass implements only its formula for the total-order index, with
``a`` (N, 1, n), ``b`` (N, 1, n) and ``c`` (N, d, n), in float64.

The formulas, and the variance conventions (sample variance of the A outputs, except
where stated), are those of the Sobol attribution method's reference implementation,
so that indices match it. When the outputs do not vary (a constant model), every
index is 0 rather than NaN.
"""
from abc import ABC, abstractmethod

import tensorflow as tf

from sobol_tf._utils import lookup
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: relative variance under which the outputs count as constant.
DEGENERATE_VARIANCE = 1e-10


def _mean(x, keepdims=False):
    return tf.reduce_mean(x, axis=-1, keepdims=keepdims)


def _sample_variance(x):
    n = tf.cast(tf.shape(x)[-1], x.dtype)
    return tf.reduce_sum(tf.square(x - _mean(x, True)), axis=-1) / tf.maximum(n - 1.0, 1.0)


def _safe_ratio(numerator, variance, reference):
    """numerator / variance, or 0 where the variance is negligible against ``reference``."""
    degenerate = variance <= DEGENERATE_VARIANCE * (reference + 1e-300)
    return tf.where(degenerate, tf.zeros_like(numerator),
                    numerator / tf.where(degenerate, tf.ones_like(variance), variance))


class SobolEstimator(ABC):
    """Base of the estimators: ``estimator(scores, nb_design)`` -> total-order indices.

    Args of ``__call__`` and ``first_order``:
        scores: (N, nb_design * (d + 2)) or (nb_design * (d + 2),) outputs of the
            replicated design, in the order [A, B, C_1..C_d].
        nb_design: the number of rows of A.

    Returns:
        float32 tf.Tensor (N, d) (or (d,) for 1-D scores).
    """

    def __call__(self, scores, nb_design):
        a, b, c, squeeze = self._split(scores, nb_design)
        return self._finish(self._total(a, b, c), squeeze)

    def first_order(self, scores, nb_design):
        """First-order indices S_i (Saltelli et al., 2010): E[f(B) (f(C_i) - f(A))] / V.

        V is the variance of the A and B outputs pooled. Shared by every estimator.
        """
        a, b, c, squeeze = self._split(scores, nb_design)
        ab = tf.concat([a, b], axis=-1)
        variance = tf.math.reduce_variance(ab, axis=-1)
        numerator = _mean(b * (c - a))
        return self._finish(_safe_ratio(numerator, variance, _mean(tf.square(ab))), squeeze)

    @abstractmethod
    def _total(self, a, b, c):
        """Total-order indices (N, d) from a, b (N, 1, n) and c (N, d, n)."""

    @staticmethod
    def _split(scores, nb_design):
        scores = tf.cast(tf.convert_to_tensor(scores), tf.float64)
        squeeze = scores.shape.rank == 1
        if squeeze:
            scores = scores[None]
        if scores.shape.rank != 2:
            raise InvalidArgumentError(
                f"scores must have shape (N, nb_design * (d + 2)), got {scores.shape}."
            )
        if not isinstance(nb_design, int) or nb_design < 2:
            raise InvalidTypeError(f"nb_design must be an integer >= 2, got {nb_design!r}.")
        total = scores.shape[1]
        if total % nb_design or total // nb_design < 3:
            raise InvalidArgumentError(
                f"scores has {total} columns, not nb_design * (d + 2) with nb_design="
                f"{nb_design} and d >= 1."
            )
        dimension = total // nb_design - 2
        a = scores[:, None, :nb_design]
        b = scores[:, None, nb_design:2 * nb_design]
        c = tf.reshape(scores[:, 2 * nb_design:], (-1, dimension, nb_design))
        return a, b, c, squeeze

    @staticmethod
    def _finish(indices, squeeze):
        indices = tf.cast(indices, tf.float32)
        return indices[0] if squeeze else indices

    def __repr__(self):
        return f"{type(self).__name__}()"


class JansenEstimator(SobolEstimator):
    """Jansen (1999): ST_i = sum_j (f(A_j) - f(C_ij))^2 / (2 n Var[f(A)]). The default.

    Ref. M. Jansen, Analysis of variance designs for model output, Computer Physics
    Communications 117 (1999).
    """

    def _total(self, a, b, c):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        variance = _sample_variance(a)
        numerator = tf.reduce_sum(tf.square(a - c), axis=-1) / (2.0 * n)
        return _safe_ratio(numerator, variance, _mean(tf.square(a)))


class HommaEstimator(SobolEstimator):
    """Homma & Saltelli (1996): ST_i = (V - mean(f(A) f(C_i)) + f0^2) / V.

    Ref. T. Homma, A. Saltelli, Importance measures in global sensitivity analysis of
    nonlinear models, Reliability Engineering & System Safety 52 (1996).
    """

    def _total(self, a, b, c):
        f0 = _mean(a)
        variance = _sample_variance(a)
        numerator = variance - _mean(a * c) + tf.square(f0)
        return _safe_ratio(numerator, variance, _mean(tf.square(a)))


class JanonEstimator(SobolEstimator):
    """Janon et al. (2014): mean and variance pooled over f(A) and f(C_i).

    ST_i = 1 - (mean(f(A) f(C_i)) - f0_i^2) / V_i, with f0_i the mean of f(A) and f(C_i)
    and V_i their pooled second moment minus f0_i^2.

    Ref. A. Janon et al., Asymptotic normality and efficiency of two Sobol index
    estimators, ESAIM: Probability and Statistics 18 (2014).
    """

    def _total(self, a, b, c):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        f0 = (_mean(a) + _mean(c)) / 2.0
        variance = tf.reduce_sum(tf.square(a) + tf.square(c), axis=-1) / (2.0 * (n - 1.0)) \
            - tf.square(f0)
        numerator = variance - (_mean(a * c) - tf.square(f0))
        # the reference's variance mixes 1/(n-1) and 1/n, so it is not 0 for constant
        # outputs; decide degeneracy on the plain pooled variance instead
        reference = _mean(tf.square(a))
        spread = (reference + _mean(tf.square(c))) / 2.0 - tf.square(f0)
        return tf.where(spread <= DEGENERATE_VARIANCE * (reference + 1e-300),
                        tf.zeros_like(numerator), _safe_ratio(numerator, variance, reference))


class GlenEstimator(SobolEstimator):
    """Glen & Isaacs (2012): ST_i = 1 - corr(f(A), f(C_i)).

    The covariance uses n - 1, the standard deviations n, as in the reference.

    Ref. G. Glen, K. Isaacs, Estimating Sobol sensitivity indices using correlations,
    Environmental Modelling & Software 37 (2012).
    """

    def _total(self, a, b, c):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        covariance = tf.reduce_sum((a - _mean(a, True)) * (c - _mean(c, True)), axis=-1) \
            / (n - 1.0)
        scale = tf.sqrt(tf.math.reduce_variance(a, axis=-1) * tf.math.reduce_variance(c, axis=-1))
        return _safe_ratio(scale - covariance, scale, _mean(tf.square(a)))


class SaltelliEstimator(HommaEstimator):
    """Saltelli et al. (2008): ST_i = 1 - (mean(f(A) f(C_i)) - f0^2) / V.

    Algebraically the same estimate as :class:`HommaEstimator` (and computed by it); kept
    under its own name because the reference implementation and Xplique offer both.

    Ref. A. Saltelli et al., Global Sensitivity Analysis. The Primer, Wiley (2008).
    """


ESTIMATORS = {
    "jansen": JansenEstimator,
    "homma": HommaEstimator,
    "janon": JanonEstimator,
    "glen": GlenEstimator,
    "saltelli": SaltelliEstimator,
}


def get(identifier):
    """Resolve an estimator from None (Jansen), a name or a SobolEstimator.

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither None, a string nor a SobolEstimator.
    """
    if identifier is None:
        return JansenEstimator()
    if isinstance(identifier, str):
        return lookup("estimator", identifier, ESTIMATORS, "a SobolEstimator")()
    if isinstance(identifier, SobolEstimator):
        return identifier
    raise InvalidTypeError(
        f"estimator must be a name or a SobolEstimator instance, got "
        f"{type(identifier).__name__}."
    )
