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


# -- Estimators that skip the B column (issue 26) -----------------------------------------
from typing import Any  # noqa: E402 (this section is appended; see issue 26)

#: the expected squared step E[(a_i - b_i)^2] of a mask value between A and B drawn
#: independently and uniformly in [0, 1].
EXPECTED_SQUARED_STEP = 1.0 / 6.0


class TotalOrderEstimator(SobolEstimator):
    """Base of the total-order estimators that never read f(B): N(d + 1) passes.

    Jansen's total-order formula compares f(A) with f(C_i) only, so the B rows of the
    design need not be evaluated. These estimators take the scores of the design without
    its B rows, [A, C_1..C_d] (N, nb_design * (d + 1)), and, where :attr:`reads_design`
    is True, the design's A and B mask values (see :meth:`estimate`), from which they
    know each cell's realised steps a_ij - b_ij exactly.

    :class:`~sobol_tf.attributions.SobolAttributionMethod` then evaluates nb_design *
    (d + 1) perturbations per input instead of nb_design * (d + 2) (its
    :meth:`~sobol_tf.attributions.SobolAttributionMethod.nb_forward_passes` says so);
    ``explain_indices`` still evaluates B, which the first-order indices need, and
    passes these estimators the scores without it.

    Called directly as ``estimator(scores, nb_design)`` with scores in the full layout
    [A, B, C_1..C_d], the B columns are dropped first, so they can be compared with the
    other estimators on the same scores; with ``design=`` (the replicated design,
    (nb_design * (d + 2), d) or (P, *cells)) they are given their steps.

    Attributes:
        reads_b: False: the B rows are not evaluated for these estimators.
        reads_design: whether :meth:`estimate` needs the design's A and B.
    """

    reads_b = False
    reads_design = False

    def __call__(self, *args: Any, design: Any = None, **kwargs: Any) -> tf.Tensor:
        """``estimator(scores, nb_design, design=None)`` on full [A, B, C_1..C_d]
        scores, or Xplique's ``estimator(masks, outputs, nb_design)`` (the masks are then
        the design); see :class:`SobolEstimator`."""
        masks, scores, nb_design = _call_arguments(type(self).__name__, args, kwargs)
        if masks is not None:
            design = masks
        scores = tf.cast(tf.convert_to_tensor(scores), tf.float64)
        squeeze = scores.shape.rank == 1
        if squeeze:
            scores = scores[None]
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        if scores.shape.rank != 2 or scores.shape[1] % nb_design \
                or scores.shape[1] // nb_design < 3:
            raise InvalidArgumentError(
                f"scores must have shape (N, nb_design * (d + 2)) with nb_design="
                f"{nb_design} and d >= 1 (the full design [A, B, C_1..C_d]; use "
                f"estimate() for scores without B), got {scores.shape}.")
        scores = tf.concat([scores[:, :nb_design], scores[:, 2 * nb_design:]], axis=1)
        indices = self.estimate(scores, nb_design, design)
        indices = indices[0] if squeeze else indices
        return indices if masks is None else _to_cells(indices, masks, squeeze)

    def of_rows(self, scores: Any, nb_design: int, design: Any) -> tf.Tensor:
        """Total indices from the rows that were evaluated: ``scores`` (N, P) over every
        row of ``design`` (explain_indices, B included) or over [A, C_1..C_d] (explain,
        see :func:`rows_read`)."""
        if scores.shape[1] == design.shape[0]:
            return self(scores, nb_design, design=design)
        return self.estimate(scores, nb_design, design)

    def estimate(self, scores: Any, nb_design: int, design: Any = None) -> tf.Tensor:
        """Total-order indices from the scores of [A, C_1..C_d], without B.

        Args:
            scores: (N, nb_design * (d + 1)) scores of [A, C_1..C_d] per input.
            nb_design: rows of A, an integer >= 2.
            design: the replicated design [A, B, C_1..C_d] the scores come from, as an
                array (nb_design * (d + 2), d) or (P, *cells) (only its A and B rows are
                read), for the estimators that read it (:attr:`reads_design`; the
                explainer always passes it). Without it their steps are unknown and they
                give Jansen's sums unnormalised (with the pooled variance): the same
                limit, without the correction.

        Returns:
            float32 (N, d) indices; 0 for an input whose scores are constant.

        Raises:
            InvalidArgumentError: scores not of that layout; a design missing or of
                another d.
        """
        scores = tf.cast(tf.convert_to_tensor(scores), tf.float64)
        if scores.shape.rank != 2:
            raise InvalidArgumentError(
                f"scores must have shape (N, nb_design * (d + 1)), got {scores.shape}.")
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        total = scores.shape[1]
        if total % nb_design or total // nb_design < 2:
            raise InvalidArgumentError(
                f"scores has {total} columns, not nb_design * (d + 1) with nb_design="
                f"{nb_design} and d >= 1 (the design without its B rows).")
        dimension = total // nb_design - 1
        steps = None
        if self.reads_design:
            steps = self._steps(design, nb_design, dimension)
        constant = constant_scores(scores)[:, None]
        floor = tf.square(scores_tolerance(scores))[:, None]
        scores = scores - _mean(scores, True)
        pooled = _mean(tf.square(scores))[:, None]
        a = scores[:, None, :nb_design]
        c = tf.reshape(scores[:, nb_design:], (-1, dimension, nb_design))
        numerator, variance = self._total_ac(a, c, steps)
        return self._finish(self._ratio(numerator, variance, (constant, floor, pooled)),
                            False)

    @staticmethod
    def _steps(design: Any, nb_design: int, dimension: int) -> tf.Tensor | None:
        """(d, nb_design) float64: a_ij - b_ij of the design's A and B rows; None when
        ``design`` is None (the steps are unknown)."""
        if design is None:
            return None
        design = np.asarray(design, np.float64)
        design = design.reshape(design.shape[0], -1)
        if design.shape[1] != dimension or design.shape[0] < 2 * nb_design:
            raise InvalidArgumentError(
                f"design of shape {design.shape} does not match the scores (d = "
                f"{dimension} cells, nb_design = {nb_design}: at least "
                f"{2 * nb_design} rows [A, B, ...]).")
        return tf.constant((design[:nb_design] - design[nb_design:2 * nb_design]).T)

    def _total_ac(self, a, c, steps):
        """(numerator, variance) from centred a (N, 1, n), c (N, d, n) and the steps
        (d, n) (None unless :attr:`reads_design`)."""
        raise NotImplementedError

    def _jansen_sums(self, a, c):
        return tf.reduce_sum(tf.square(a - c), axis=-1)


class JansenTotalEstimator(TotalOrderEstimator):
    """Jansen (1999) without the B column: the same formula as :class:`JansenEstimator`,
    ST_i = sum_j (f(A_j) - f(C_ij))^2 / (2 n Var[f(A)]), read from [A, C_1..C_d]:
    nb_design * (d + 1) passes. Equal to Jansen's indices on the same design (to
    float rounding). Name: 'jansen_total'.
    """

    def _total_ac(self, a, c, steps):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        return self._jansen_sums(a, c) / (2.0 * n), _sample_variance(a)


def _pooled_variance(a: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Variance of every score of [A, C_1..C_d] (each row is a uniform draw), (N, 1)."""
    everything = tf.concat([a[:, 0], tf.reshape(c, (tf.shape(c)[0], -1))], axis=-1)
    return _sample_variance(everything)[:, None]


class NormalisedJansenEstimator(TotalOrderEstimator):
    """Jansen's total-order sums, each normalised by its cell's realised steps.

    ST_i = [sum_j (f(A_j) - f(C_ij))^2 / (2 n V)] * (n / 6) / sum_j (a_ij - b_ij)^2:
    a cell whose design happened to move it little (small realised steps) would get a
    small Jansen sum whatever its importance; dividing by its realised mean squared step
    over its expectation 1/6 removes that (exactly so where the score is linear in the
    cell's mask value: a ratio estimator, i.e. a control variate on the steps in the
    spirit of Kucherenko et al. 2015). V is the variance of all the [A, C_1..C_d] scores.
    Skips B (nb_design * (d + 1) passes); reads the design. Converges to the same total
    indices as Jansen's (the realised mean squared step tends to 1/6). With token ids
    (masks thresholded at 1/2) the steps that matter are the flipped decisions, which
    the continuous steps only approximate: the limit is the same, the correction weaker.
    Name: 'jansen_normalised'.

    Ref. S. Kucherenko, B. Delpuech, B. Iooss, S. Tarantola, Application of the control
    variate technique to estimation of total sensitivity indices, Reliability
    Engineering & System Safety 134 (2015).
    """

    reads_design = True

    def _total_ac(self, a, c, steps):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        sums = self._jansen_sums(a, c) / (2.0 * n)
        if steps is not None:
            realised = tf.reduce_mean(tf.square(steps), axis=-1)[None]  # (1, d)
            sums = sums * (EXPECTED_SQUARED_STEP / tf.maximum(realised, 1e-12))
        return sums, _pooled_variance(a, c)


class ControlVariateJansenEstimator(TotalOrderEstimator):
    """Jansen's total-order sums with the steps' linear part as a control variate.

    Per cell, the change of score f(A_j) - f(C_ij) is regressed on the realised step
    x_j = a_ij - b_ij (through the origin, slope g_i); its sum of squares splits exactly
    into the residual's plus g_i^2 sum_j x_j^2, and that second part is replaced by its
    expectation g_i^2 n / 6: ST_i = [sum_j (Delta_j - g_i x_j)^2 + g_i^2 n / 6] / (2 n V),
    V the variance of all the [A, C_1..C_d] scores (Kucherenko et al. 2015). Skips B,
    reads the design. Name: 'jansen_cv'.

    Ref. S. Kucherenko, B. Delpuech, B. Iooss, S. Tarantola, Application of the control
    variate technique to estimation of total sensitivity indices, Reliability
    Engineering & System Safety 134 (2015).
    """

    reads_design = True

    def _total_ac(self, a, c, steps):
        n = tf.cast(tf.shape(a)[-1], a.dtype)
        delta = a - c  # (N, d, n)
        if steps is None:
            return self._jansen_sums(a, c) / (2.0 * n), _pooled_variance(a, c)
        x = steps[None]  # (1, d, n)
        slope = tf.reduce_sum(delta * x, -1) / tf.maximum(tf.reduce_sum(x * x, -1), 1e-12)
        residual = tf.reduce_sum(tf.square(delta - slope[..., None] * x), -1)
        total = residual + tf.square(slope) * n * EXPECTED_SQUARED_STEP
        return total / (2.0 * n), _pooled_variance(a, c)


ESTIMATORS.update({
    "jansen_total": JansenTotalEstimator,
    "jansen_normalised": NormalisedJansenEstimator,
    "jansen_cv": ControlVariateJansenEstimator,
})


def first_order_with_linear_cv(scores: Any, nb_design: int, design: Any) -> tf.Tensor:
    """First-order indices with the cells' linear effects as a control variate.

    The reference formula (:meth:`SobolEstimator.first_order`) averages f(B) (f(C_i) -
    f(A)); f(B) carries every other cell's effect, which is zero-mean noise for cell i
    and dominates at small nb_design. Each cell's linear effect g_k is read from the
    design's own one-cell steps (slope of f(C_k) - f(A) on b_k - a_k, through the
    origin) and sum_{k != i} g_k (b_k - 1/2) is subtracted from f(B) before the product:
    its expectation against f(C_i) - f(A) is 0 (those two do not depend on b_k), so the
    limit is the same first-order index, with much of the noise removed where the model
    is near additive (about half the map error at nb_design 16-32 on the models of
    benchmarks/bench_passes.py). V gets the same control variate: V = Var[f - h] +
    sum_k g_k^2 / 12, h = sum_k g_k (x_k - 1/2) on every row of the design, so its linear
    part is known rather than sampled (the numerator no longer moves with f(B)^2 as the
    reference's A-and-B variance does, and that variance's own noise would otherwise
    dominate the indices' error).

    Args:
        scores: (N, nb_design * (d + 2)) scores of the full design [A, B, C_1..C_d].
        nb_design: rows of A.
        design: the replicated design (nb_design * (d + 2), d) or (P, *cells).

    Returns:
        float32 (N, d) first-order indices.

    Raises:
        InvalidArgumentError: scores or design not of that layout.
    """
    a, b, c, squeeze, context = SobolEstimator._split(scores, nb_design)
    dimension = c.shape[1]
    design = np.asarray(design, np.float64)
    design = design.reshape(design.shape[0], -1)
    if design.shape[1] != dimension or design.shape[0] < 2 * nb_design:
        raise InvalidArgumentError(
            f"design of shape {design.shape} does not match the scores (d = {dimension} "
            f"cells, nb_design = {nb_design}).")
    rows_a, rows_b = design[:nb_design], design[nb_design:2 * nb_design]
    steps = tf.constant((rows_b - rows_a).T[None])                   # (1, d, n)
    centred_b = tf.constant((rows_b - 0.5).T[None])                   # (1, d, n)
    delta = c - a                                                     # (N, d, n)
    slopes = tf.reduce_sum(delta * steps, -1) / tf.maximum(
        tf.reduce_sum(steps * steps, -1), 1e-12)                      # (N, d)
    linear = tf.reduce_sum(slopes[..., None] * centred_b, axis=1, keepdims=True)
    others = linear - slopes[..., None] * centred_b                   # (N, d, n)
    # V = Var[f - h] + Var[h] for h = sum_k g_k (x_k - 1/2) on every row of the design,
    # Var[h] = sum_k g_k^2 / 12 exactly: the linear part of V is then known, not sampled
    rows = tf.constant(design[:nb_design * (dimension + 2)] - 0.5)   # (P, d) [A, B, C..]
    scores = tf.concat([a[:, 0], b[:, 0], tf.reshape(c, (tf.shape(c)[0], -1))], axis=-1)
    residual = scores - tf.matmul(slopes, rows, transpose_b=True)
    variance = (tf.math.reduce_variance(residual, axis=-1, keepdims=True)
                + tf.reduce_sum(tf.square(slopes), -1, keepdims=True) / 12.0)
    numerator = _mean((b - others) * delta)
    return SobolEstimator._finish(SobolEstimator._ratio(numerator, variance, context),
                                  squeeze)


def first_order_of(estimator: Any, scores: Any, nb_design: int, design: Any) -> tf.Tensor:
    """The first-order indices ``explain_indices`` gives with ``estimator``: the
    reference formula, or, for the estimators that read the design
    (:attr:`TotalOrderEstimator.reads_design`, e.g. EFFICIENT_SETTINGS'),
    :func:`first_order_with_linear_cv`."""
    if getattr(estimator, "reads_design", False):
        return first_order_with_linear_cv(scores, nb_design, design)
    return JansenEstimator().first_order(scores, nb_design)


def reads_b(estimator: Any) -> bool:
    """Whether ``estimator`` needs the scores of the design's B rows (every estimator
    but a :class:`TotalOrderEstimator`)."""
    return getattr(estimator, "reads_b", True)


def rows_read(estimator: Any, design: tf.Tensor, nb_design: int) -> tf.Tensor:
    """The rows of a replicated design [A, B, C_1..C_d] (nb_design * (d + 2), ...) that
    ``estimator`` reads: all of them, or [A, C_1..C_d] for an estimator that skips B
    (:func:`reads_b` False)."""
    if reads_b(estimator):
        return design
    return tf.concat([design[:nb_design], design[2 * nb_design:]], 0)
