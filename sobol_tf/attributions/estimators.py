"""Estimators of Sobol sensitivity indices from a replicated design's outputs.

Every estimator reads the scores of the replicated design [A, B, C_1..C_d] (see
:mod:`sobol_tf.attributions.samplers`), vectorised over inputs and dimensions: scores
(N, nb_design * (d + 2)) -> indices (N, d). :meth:`SobolEstimator.__call__` splits and
reshapes; a subclass implements only its formula for the total-order index, as a
numerator and a variance, with ``a`` (N, 1, n), ``b`` (N, 1, n) and ``c`` (N, d, n), in
float64.

Rules shared by every estimator (and by :meth:`SobolEstimator.first_order`):

- The scores of each input are centred first (their mean over the whole design is
  subtracted, in float64), so every index is invariant to adding a constant to the
  score. The formulas are those of the Sobol attribution method's reference
  implementation, applied to the centred scores: Jansen's and Glen's are shift
  invariant anyway (same values as the reference up to rounding); Homma's / Saltelli's,
  Janon's and the first-order formula are not, and centring makes them so.
- An input's scores count as constant when their spread (max - min over the design) is
  at most :data:`DEGENERATE_ULPS` float32 ulps of their magnitude,
  ``spread <= DEGENERATE_ULPS * eps_float32 * max|score|``: what a float32 model output
  cannot resolve. Then every index is 0 (not NaN).
- Otherwise, where an estimator's variance term is below that resolution (e.g. all the
  A outputs equal while B or C_i vary, possible with few designs), the variance of all
  the design's scores replaces it, so every index stays finite.
"""
from __future__ import annotations

from typing import Any

import inspect
from abc import ABC

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int
from sobol_tf._utils.validation import resolve
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: float32 ulps of the scores' magnitude under which their spread counts as constant.
DEGENERATE_ULPS = 4

_RESOLUTION = DEGENERATE_ULPS * float(np.finfo(np.float32).eps)


def scores_tolerance(scores: Any) -> Any:
    """Per row of ``scores`` (N, P): the spread under which they count as constant,
    :data:`DEGENERATE_ULPS` float32 ulps of their largest magnitude, (N,)."""
    return _RESOLUTION * tf.reduce_max(tf.abs(scores), axis=1)


def constant_scores(scores: Any) -> Any:
    """Per row of ``scores`` (N, P): whether they are constant to float32 resolution
    (max - min within :func:`scores_tolerance`), (N,) bool. Shared by every estimator
    of this module and by HSIC."""
    spread = tf.reduce_max(scores, axis=1) - tf.reduce_min(scores, axis=1)
    return spread <= scores_tolerance(scores)


def _mean(x, keepdims=False):
    return tf.reduce_mean(x, axis=-1, keepdims=keepdims)


def _sample_variance(x):
    n = tf.cast(tf.shape(x)[-1], x.dtype)
    return tf.reduce_sum(tf.square(x - _mean(x, True)), axis=-1) / tf.maximum(n - 1.0, 1.0)


_OUR_CALL = inspect.Signature([
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for name in ("scores", "nb_design")])
_XPLIQUE_CALL = inspect.Signature([
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for name in ("masks", "outputs", "nb_design")])


def _call_arguments(who, args, kwargs):
    """(masks or None, scores, nb_design) of either call of a SobolEstimator."""
    xplique = len(args) + len(kwargs) == 3 or "masks" in kwargs or "outputs" in kwargs
    signature = _XPLIQUE_CALL if xplique else _OUR_CALL
    try:
        bound = signature.bind(*args, **kwargs).arguments
    except TypeError as error:
        raise InvalidTypeError(
            f"{who} is called as estimator(scores, nb_design) or, as Xplique, "
            f"estimator(masks, outputs, nb_design); got {len(args)} positional argument(s) "
            f"and keywords {sorted(kwargs)} ({error})."
        ) from None
    if xplique:
        return bound["masks"], bound["outputs"], bound["nb_design"]
    return None, bound["scores"], bound["nb_design"]


def _to_cells(indices, masks, squeeze):
    """Indices (N, d) or (d,) reshaped to ``masks.shape[1:]`` (Xplique's layout)."""
    cells = tuple(int(size) for size in masks.shape[1:])
    dimension = int(np.prod(cells))
    if dimension != indices.shape[-1]:
        raise InvalidArgumentError(
            f"masks of shape {tuple(masks.shape)} give d = {dimension} cells, but the "
            f"outputs hold nb_design * (d + 2) values for d = {indices.shape[-1]}; pass "
            "the masks the outputs were computed on."
        )
    return tf.reshape(indices, cells if squeeze else (-1,) + cells)


def is_vectorised(estimator: Any) -> bool:
    """Whether ``estimator`` takes our vectorised call on all the inputs at once: a
    :class:`SobolEstimator` that keeps its ``__call__``. Any other callable (an
    Xplique-style estimator, or a subclass overriding ``__call__``) is called as
    ``estimator(masks, outputs, nb_design)`` once per input."""
    return (isinstance(estimator, SobolEstimator)
            and type(estimator).__call__ is SobolEstimator.__call__)


class SobolEstimator(ABC):
    """Base of the estimators: total-order indices from a replicated design's outputs.

    Two calls, told apart by their number of arguments (2 or 3), so both are exact:

    - ours, vectorised over inputs: ``estimator(scores, nb_design)``, scores
      (N, nb_design * (d + 2)) or (nb_design * (d + 2),) -> float32 (N, d) or (d,);
    - Xplique's: ``estimator(masks, outputs, nb_design)``, masks of shape
      (P, *cells) (only ``masks.shape[1:]`` is read: d = prod(cells)), outputs (P,) ->
      float32 ``cells`` (e.g. (grid, grid, channels)); outputs (N, P) -> (N, *cells).

    Keywords follow the same names (``scores``/``nb_design`` or
    ``masks``/``outputs``/``nb_design``). The scores are in the order [A, B, C_1..C_d];
    ``nb_design`` is the number of rows of A, an integer >= 2.

    Returns:
        float32 tf.Tensor: 0 for an input whose scores are constant to float32
        resolution (see the module's docstring).

    Raises:
        InvalidArgumentError: scores not of that layout; masks whose d disagrees with
            the outputs.
        InvalidTypeError: ``nb_design`` not an integer >= 2; neither 2 nor 3 arguments.

    A subclass implements ``_total`` (its formula, vectorised). An Xplique-style subclass
    may instead override ``__call__(self, masks, outputs, nb_design)`` on one input's
    outputs: :class:`~sobol_tf.attributions.SobolAttributionMethod` then calls it once
    per input (see :func:`is_vectorised`).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        masks, scores, nb_design = _call_arguments(type(self).__name__, args, kwargs)
        a, b, c, squeeze, context = self._split(scores, nb_design)
        ratio = self._ratio(*self._total(a, b, c), context)  # type: ignore[call-arg]
        indices = self._finish(ratio, squeeze)
        return indices if masks is None else _to_cells(indices, masks, squeeze)

    def first_order(self, scores: Any, nb_design: int) -> tf.Tensor:
        """First-order indices S_i (Saltelli et al., 2010): E[f(B) (f(C_i) - f(A))] / V.

        V is the variance of the A and B outputs pooled; the scores are centred first.
        Shared by every estimator.
        """
        a, b, c, squeeze, context = self._split(scores, nb_design)
        variance = tf.math.reduce_variance(tf.concat([a, b], axis=-1), axis=-1)
        return self._finish(self._ratio(_mean(b * (c - a)), variance, context), squeeze)

    def _total(self, a, b, c):
        """(numerator, variance) of the total-order indices, from centred a, b, c.

        Both broadcast to (N, d); the index is numerator / variance.
        """
        raise NotImplementedError(
            f"{type(self).__name__} implements neither _total(a, b, c) nor __call__."
        )

    @staticmethod
    def _ratio(numerator, variance, context):
        """numerator / variance, with the rules of the module's docstring."""
        constant, floor, pooled = context
        variance = tf.where(variance <= floor, pooled, variance)
        variance = tf.where(constant, tf.ones_like(variance), variance)
        return tf.where(constant, tf.zeros_like(numerator), numerator / variance)

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
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        total = scores.shape[1]
        if total % nb_design or total // nb_design < 3:
            raise InvalidArgumentError(
                f"scores has {total} columns, not nb_design * (d + 2) with nb_design="
                f"{nb_design} and d >= 1."
            )
        dimension = total // nb_design - 2
        # constant to float32 resolution, decided on the raw scores
        constant = constant_scores(scores)[:, None]
        floor = tf.square(scores_tolerance(scores))[:, None]
        scores = scores - _mean(scores, True)
        pooled = _mean(tf.square(scores))[:, None]
        a = scores[:, None, :nb_design]
        b = scores[:, None, nb_design:2 * nb_design]
        c = tf.reshape(scores[:, 2 * nb_design:], (-1, dimension, nb_design))
        return a, b, c, squeeze, (constant, floor, pooled)

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
        return tf.reduce_sum(tf.square(a - c), axis=-1) / (2.0 * n), variance


class HommaEstimator(SobolEstimator):
    """Homma & Saltelli (1996): ST_i = (V - mean(f(A) f(C_i)) + f0^2) / V.

    Not shift invariant as written: it is applied to the centred scores (see the module's
    docstring), which gives the reference's value on scores of mean 0.

    Ref. T. Homma, A. Saltelli, Importance measures in global sensitivity analysis of
    nonlinear models, Reliability Engineering & System Safety 52 (1996).
    """

    def _total(self, a, b, c):
        f0 = _mean(a)
        variance = _sample_variance(a)
        return variance - _mean(a * c) + tf.square(f0), variance


class JanonEstimator(SobolEstimator):
    """Janon et al. (2014): mean and variance pooled over f(A) and f(C_i).

    ST_i = 1 - (mean(f(A) f(C_i)) - f0_i^2) / V_i, with f0_i the mean of f(A) and f(C_i)
    and V_i their pooled second moment minus f0_i^2 (the reference's: 1/(n - 1) for the
    second moment, 1/n for the mean). Not shift invariant as written: it is applied to the
    centred scores (see the module's docstring).

    Ref. A. Janon et al., Asymptotic normality and efficiency of two Sobol index
    estimators, ESAIM: Probability and Statistics 18 (2014).
    """

    def _total(self, a, b, c):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        f0 = (_mean(a) + _mean(c)) / 2.0
        variance = tf.reduce_sum(tf.square(a) + tf.square(c), axis=-1) / (2.0 * (n - 1.0)) \
            - tf.square(f0)
        return variance - (_mean(a * c) - tf.square(f0)), variance


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
        return scale - covariance, scale


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


def get(identifier: Any) -> Any:
    """Resolve an estimator from None (Jansen), a name, a SobolEstimator or a callable.

    A callable that is not a :class:`SobolEstimator` is taken as Xplique-style,
    ``estimator(masks, outputs, nb_design)`` on one input (see :func:`is_vectorised`).

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither None, a string nor a callable.
    """
    return resolve("estimator", identifier, JansenEstimator, ESTIMATORS,
                   "a SobolEstimator or a callable (masks, outputs, nb_design) -> indices")
