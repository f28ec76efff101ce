"""Two-stage Sobol designs: the second half of the passes goes to the cells that matter.

With ``SobolAttributionMethod(..., refine=fraction)`` the forward passes of an estimator
that skips B, ``nb_design * (d + 1)`` per input, are spent in two stages:

1. **Survey**: a radial design of ``n1 = nb_design // 2`` base points A_j, each with its d
   one-cell steps C_ij (cell i's value taken from B_j): ``n1 * (d + 1)`` passes, from
   which every cell gets a first total-order estimate.
2. **Refinement**, per input: the ``k = round(fraction * d)`` cells with the largest
   first estimates get ``m = (nb_design - n1) * (d + 1) // (k + 1)`` more base points of
   the same sequence (points n1 .. n1 + m - 1), each with steps in those k cells only:
   ``m * (k + 1)`` passes.

Each cell's index then pools all its steps (n1 for most cells, n1 + m for the k chosen):
Jansen's sum over its pairs, normalised by its realised squared steps for
'jansen_normalised', over the variance of every score of the input (each row is a
uniform draw). The total-order index is an expectation over the pairs of a cell, so the
estimate converges to the same indices as the one-stage design; what changes is where the
passes go. The error of a map's correlation with the converged map comes from the cells
with large indices, whose Jansen terms vary most (heavy tails of squared differences);
giving them about four times the pairs at the same total cost roughly halved the error on
the image models of ``benchmarks/bench_passes.py`` (see benchmarks/results/passes.md).
The chosen cells depend on the input: the refinement design differs per input, so those
passes run one input at a time.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import tensorflow as tf

from sobol_tf.attributions import estimators as estimators_module
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions.designs import check_replicated
from sobol_tf.errors import InvalidArgumentError

#: the estimators a two-stage design can pool (their per-cell sums add over pairs).
REFINABLE = (estimators_module.JansenTotalEstimator,
             estimators_module.NormalisedJansenEstimator)


def check_refine(refine: Any, estimator: Any) -> float | None:
    """``refine`` checked: None, or a fraction of the cells in (0, 1) with an estimator
    of :data:`REFINABLE`.

    Raises:
        InvalidArgumentError: a value out of (0, 1), or another estimator.
        InvalidTypeError: not a number.
    """
    if refine is None:
        return None
    if isinstance(refine, bool) or not isinstance(refine, (int, float, np.floating)):
        from sobol_tf.errors import InvalidTypeError
        raise InvalidTypeError(f"refine must be None or a number in (0, 1), got "
                               f"{type(refine).__name__} {refine!r}.")
    if not 0.0 < float(refine) < 1.0:
        raise InvalidArgumentError(
            f"refine must be a fraction of the cells in (0, 1) (e.g. 0.25), got {refine!r}.")
    if not isinstance(estimator, REFINABLE):
        raise InvalidArgumentError(
            f"refine={refine!r} needs estimator='jansen_normalised' or 'jansen_total' (a "
            f"two-stage design pools each cell's Jansen terms), got {estimator!r}.")
    return float(refine)


def plan(nb_design: int, dimension: int, fraction: float) -> Tuple[int, int, int]:
    """(n1, k, m): survey points, refined cells and refinement points of a two-stage
    design; n1 * (d + 1) + m * (k + 1) <= nb_design * (d + 1)."""
    n1 = max(2, nb_design // 2)
    k = int(min(dimension, max(1, round(fraction * dimension))))
    m = (nb_design - n1) * (dimension + 1) // (k + 1)
    return n1, k, m


def passes(nb_design: int, dimension: int, fraction: float) -> int:
    """Forward passes per input of a two-stage design."""
    n1, k, m = plan(nb_design, dimension, fraction)
    return n1 * (dimension + 1) + m * (k + 1)


def _radial(a: np.ndarray, b: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Rows [A, C_c1, .., C_ck] (n * (k + 1), d): C_c is A with cell c's column from B."""
    rows = [a]
    for cell in cells:
        stepped = a.copy()
        stepped[:, cell] = b[:, cell]
        rows.append(stepped)
    return np.concatenate(rows)


class TwoStage:
    """The two-stage design of one explainer and set of cells (see the module)."""

    def __init__(self, explainer: Any, cells: tuple) -> None:
        self.cells = tuple(cells)
        self.dimension = int(np.prod(cells))
        self.n1, self.k, self.m = plan(explainer.nb_design, self.dimension, explainer.refine)
        size = 1 << int(np.ceil(np.log2(self.n1 + self.m)))
        sampler = explainer.sampler
        design = sampler(self.dimension, size)
        if not isinstance(sampler, samplers_module.ReplicatedSampler):
            design = check_replicated(design, size, self.dimension)
        design = np.asarray(design, np.float64).reshape(-1, self.dimension)
        self.a, self.b = design[:size], design[size:2 * size]
        survey_steps = self.a[:self.n1] - self.b[:self.n1]
        tied = np.flatnonzero(np.all(survey_steps == 0, axis=0))
        if tied.size:
            raise InvalidArgumentError(
                f"refine: the sampler's first {self.n1} points give A and B the same "
                f"column for cell(s) {tied.tolist()[:10]}: their indices would be 0 "
                "whatever the model does; use sampler='scrambled_sobol'.")
        self.survey = self._masks(_radial(self.a[:self.n1], self.b[:self.n1],
                                          np.arange(self.dimension)))

    def _masks(self, rows: np.ndarray) -> tf.Tensor:
        return tf.reshape(tf.constant(rows, tf.float32), (-1,) + self.cells)

    def indices(self, explainer: Any, model: Any, images: tf.Tensor,
                targets: tf.Tensor) -> tf.Tensor:
        """Total indices (N, *cells) float32 of the inputs from the two stages."""
        n1, k, m, d = self.n1, self.k, self.m, self.dimension
        survey = explainer._perturbed_scores(model, images, targets, self.survey).numpy()
        survey = survey.astype(np.float64)
        normalise = isinstance(explainer.estimator, estimators_module.NormalisedJansenEstimator)
        a, b = self.a[n1:n1 + m], self.b[n1:n1 + m]
        maps = []
        for row, scores in enumerate(survey):
            squares = np.square(scores[None, :n1] - scores[n1:].reshape(d, n1))
            steps = np.square(self.a[:n1] - self.b[:n1]).T            # (d, n1)
            sums, weights = squares.sum(-1), (steps.sum(-1) if normalise
                                              else np.full(d, n1 / 6.0))
            chosen = np.argsort(-(sums / weights), kind="stable")[:k]
            masks = self._masks(_radial(a, b, chosen))
            more = explainer._perturbed_scores(model, images[row:row + 1],
                                               targets[row:row + 1], masks).numpy()[0]
            more = more.astype(np.float64)
            squares = np.square(more[None, :m] - more[m:].reshape(k, m))
            sums[chosen] += squares.sum(-1)
            weights[chosen] += (np.square(a - b)[:, chosen].sum(0) if normalise
                                else m / 6.0)
            everything = np.concatenate([scores, more])
            variance = everything.var(ddof=1)
            if np.all(estimators_module.constant_scores(everything[None]).numpy()):
                maps.append(np.zeros(d))
                continue
            # each cell: (mean squared difference / 2) / (its mean squared step / (1/6))
            maps.append(sums / weights / 12.0 / variance)
        return tf.reshape(tf.constant(np.array(maps), tf.float32), (-1,) + self.cells)


class RefinementMixin:
    """``refine``: the two-stage design of :mod:`sobol_tf.attributions.refinement` for
    :meth:`explain` (``explain_indices`` evaluates the one-stage design)."""

    refine: float | None = None

    def _two_stage(self, cells: tuple) -> TwoStage:
        stages = self.__dict__.setdefault("_two_stages", {})
        if cells not in stages:
            stages[cells] = TwoStage(self, cells)
        return stages[cells]

    def _explain(self, model: Any, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        if self.refine is None:
            return super()._explain(model, images, targets)  # type: ignore[misc]
        cells = tuple(self._cells_of(self._layout, images.shape[-1]))  # type: ignore[attr-defined]
        if self._layout.kind == "tokens":  # type: ignore[attr-defined]
            raise InvalidArgumentError(
                "refine is not available for token ids (their keep / mask decisions "
                "are thresholded steps); use refine=None.")
        self._masks(*images.shape[1:])  # type: ignore[attr-defined]  # checks the cells
        return self._two_stage(cells).indices(self, model, images, targets)

    def _passes_per_input(self, masks: tf.Tensor) -> int:
        if self.refine is None:
            return super()._passes_per_input(masks)  # type: ignore[misc]
        dimension = int(np.prod(masks.shape[1:]))
        return passes(self.nb_design, dimension, self.refine)  # type: ignore[attr-defined]
