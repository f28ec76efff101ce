"""Two-stage Sobol designs: the second part of the passes goes where the map is uncertain.

With ``SobolAttributionMethod(..., refine=True)`` the forward passes of an estimator that
skips B, ``nb_design * (d + 1)`` per input, are spent in two stages:

1. **Survey**: a radial design of ``n1 = max(2, nb_design // 4)`` base points A_j, each
   with its d one-cell steps C_ij (cell i's value taken from B_j): ``n1 * (d + 1)``
   passes, from which every cell gets a first total-order estimate T_i.
2. **Refinement**, per input: the remaining passes are shared among the cells in
   proportion to sqrt(T_i): cell i gets e_i more steps, on the next base points of the
   same sequence (points n1 .. n1 + max e - 1; each base point is evaluated once and
   stepped in the cells that still need steps), with sum(e) + max(e) passes; e_i is at
   most :data:`MAX_EXTRA` * nb_design.

Each cell's index then pools all its steps: Jansen's sum over its pairs, normalised by
its realised squared steps for 'jansen_normalised', over the variance of every score of
the input (each row is a uniform draw). The total-order index is an expectation over the
pairs of a cell, so the estimate converges to the same indices as the one-stage design;
what changes is where the passes go. The error of a map (its correlation with the
converged map) comes from the cells with large indices, whose Jansen terms vary most
(squared differences have heavy tails); Neyman's allocation would give each cell steps in
proportion to the spread of its terms, about proportional to its index, and the square
root hedges against the survey's own noise. Measured on the models of
``benchmarks/bench_passes.py``, this allocation (a survey of nb_design / 4) beat giving
the top quarter of the cells all the extra steps, and the proportional (power 1) or
three-stage variants were within the noise (benchmarks/results/passes.md). The
refinement design depends on the input: each input gets its own masks, and the inputs
still share the batches (one call to the engine for all of them).
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np
import tensorflow as tf

from sobol_tf.attributions import estimators as estimators_module
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: the estimators a two-stage design can pool (their per-cell sums add over pairs).
REFINABLE = (estimators_module.JansenTotalEstimator,
             estimators_module.NormalisedJansenEstimator)


def check_refine(refine: Any, estimator: Any) -> bool:
    """``refine`` checked: a bool; True needs an estimator of :data:`REFINABLE`.

    Raises:
        InvalidTypeError: not a bool.
        InvalidArgumentError: True with another estimator.
    """
    if not isinstance(refine, (bool, np.bool_)):
        raise InvalidTypeError(f"refine must be True or False, got "
                               f"{type(refine).__name__} {refine!r}.")
    if refine and not isinstance(estimator, REFINABLE):
        raise InvalidArgumentError(
            "refine=True needs estimator='jansen_normalised' or 'jansen_total' (a "
            f"two-stage design pools each cell's Jansen terms), got {estimator!r}.")
    return bool(refine)


#: a cell gets at most MAX_EXTRA * nb_design refinement steps (bounds the design drawn).
MAX_EXTRA = 3
#: the refinement masks (each input its own, at the cells' size) of the inputs scored
#: together: at most this many bytes.
GROUP_BYTES = 64 * 2**20


def survey_points(nb_design: int) -> int:
    """Base points of the survey, n1 = max(2, nb_design // 4)."""
    return max(2, nb_design // 4)


def allocate(weights: np.ndarray, passes: int, cap: int) -> np.ndarray:
    """Integer extra steps e (d,) about proportional to ``weights`` (>= 0), each at most
    ``cap``, with sum(e) + max(e) <= ``passes`` (the refinement's forward passes: one per
    step plus one per base point)."""
    weights = np.maximum(np.asarray(weights, np.float64), 0.0)
    if passes < 2 or not np.any(weights > 0):
        return np.zeros(weights.shape, np.int64)
    weights = weights / weights.sum()

    def extra(scale: float) -> np.ndarray:
        return np.minimum(np.floor(scale * weights), cap).astype(np.int64)

    low, high = 0.0, float(passes) * 2.0 / weights.max()
    for _ in range(64):  # the largest scale within the budget (bisection)
        middle = 0.5 * (low + high)
        steps = extra(middle)
        low, high = (middle, high) if steps.sum() + steps.max() <= passes else (low, middle)
    steps = extra(low)
    left = passes - int(steps.sum() + steps.max())
    for cell in np.argsort(-(low * weights - steps), kind="stable"):
        if left <= 0:  # a step more where it does not add a base point (1 pass each)
            break
        if steps[cell] < min(steps.max(), cap):
            steps[cell] += 1
            left -= 1
    return steps


def passes(nb_design: int, dimension: int) -> int:
    """Forward passes per input of a two-stage design: nb_design * (d + 1), as the
    one-stage design without B (the refinement spends what the survey leaves; a few
    rows fewer only where a cell reaches its cap of MAX_EXTRA * nb_design steps)."""
    return nb_design * (dimension + 1)


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
        self.dimension = d = int(np.prod(cells))
        nb_design = explainer.nb_design
        self.n1 = survey_points(nb_design)
        self.left = passes(nb_design, d) - self.n1 * (d + 1)
        self.cap = MAX_EXTRA * nb_design
        size = 1 << int(np.ceil(np.log2(self.n1 + self.cap + 1)))
        if not explainer._fits(size, d):
            raise InvalidArgumentError(
                f"refine=True draws a design of {size} points for its {d} cells "
                f"(nb_design={nb_design}): over the memory limit; use fewer cells or a "
                "smaller nb_design, or refine=False.")
        design = np.asarray(explainer._draw(d, nb_design=size), np.float64).reshape(-1, d)
        self.a, self.b = design[:size], design[size:2 * size]
        self.squared_steps = np.square(self.a - self.b).T  # (d, size)
        tied = np.flatnonzero(np.all(self.squared_steps[:, :self.n1] == 0, axis=1))
        if tied.size:
            raise InvalidArgumentError(
                f"refine=True: the sampler's first {self.n1} points give A and B the same "
                f"column for cell(s) {tied.tolist()[:10]}: their indices would be 0 "
                "whatever the model does; use sampler='scrambled_sobol'.")
        self.survey = self._masks(_radial(self.a[:self.n1], self.b[:self.n1],
                                          np.arange(d)))

    def _masks(self, rows: np.ndarray) -> tf.Tensor:
        return tf.reshape(tf.constant(rows, tf.float32), (-1,) + self.cells)

    def _refinement(self, steps: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
        """Rows of the refinement for extra steps (d,): its base points (the next
        points of the sequence) then, per cell with steps, those points stepped in that
        cell; and the row numbers (within these rows) of each cell's steps."""
        first, bases = self.n1, int(steps.max()) + max(
            0, self.left - int(steps.sum() + steps.max()))  # unspent rows: more bases
        a, b = self.a[first:first + bases], self.b[first:first + bases]
        rows, where = [a], []
        count = len(a)  # the design's end (past a cap) bounds the unspent bases
        for cell, extra in enumerate(steps):
            stepped = a[:extra].copy()
            stepped[:, cell] = b[:extra, cell]
            rows.append(stepped)
            where.append(np.arange(count, count + extra))
            count += extra
        return np.concatenate(rows), where

    def indices(self, explainer: Any, model: Any, images: tf.Tensor,
                targets: tf.Tensor) -> tf.Tensor:
        """Total indices (N, *cells) float32 of the inputs from the two stages."""
        n1, d = self.n1, self.dimension
        survey = explainer._perturbed_scores(model, images, targets, self.survey).numpy()
        survey = survey.astype(np.float64)
        normalise = isinstance(explainer.estimator, estimators_module.NormalisedJansenEstimator)
        plans = []  # per input: (Jansen sums, their weights, refinement rows, step rows)
        for scores in survey:
            sums = np.square(scores[None, :n1] - scores[n1:].reshape(d, n1)).sum(-1)
            weights = (self.squared_steps[:, :n1].sum(-1) if normalise
                       else np.full(d, n1 / 6.0))
            steps = allocate(np.sqrt(np.maximum(sums / weights, 0.0)), self.left, self.cap)
            plans.append((sums, weights) + self._refinement(steps))
        # the inputs' refinements share the engine's batches (each input its own masks),
        # GROUP_BYTES of masks at a time; the rows of an input whose design ran out (a
        # capped cell) are padded with its first row, not read
        length = max(len(rows) for _, _, rows, _ in plans)
        more = np.zeros((len(plans), length))  # nb_design=2: the survey is everything
        group = max(1, GROUP_BYTES // max(1, length * d * 4))
        for start in range(0, len(plans) if length else 0, group):
            rows = np.concatenate([
                np.concatenate([rows, np.repeat(rows[:1], length - len(rows), 0)])
                for _, _, rows, _ in plans[start:start + group]])
            more[start:start + group] = explainer._perturbed_scores(
                model, images[start:start + group], targets[start:start + group],
                self._masks(rows), per_input=True).numpy()
        maps = []
        for (sums, weights, rows, where), scores, extra in zip(plans, survey,
                                                               more.astype(np.float64)):
            extra = extra[:len(rows)]  # the padding is not read
            for cell, at in enumerate(where):
                if at.size:
                    bases = at - at[0]  # the base points this cell was stepped from
                    sums[cell] += np.square(extra[bases] - extra[at]).sum()
                    weights[cell] += (self.squared_steps[cell, n1:n1 + at.size].sum()
                                      if normalise else at.size / 6.0)
            everything = np.concatenate([scores, extra])
            if np.all(estimators_module.constant_scores(everything[None]).numpy()):
                maps.append(np.zeros(d))
                continue
            # each cell: (mean squared difference / 2) / (its mean squared step / (1/6))
            maps.append(sums / weights / 12.0 / everything.var(ddof=1))
        return tf.reshape(tf.constant(np.array(maps), tf.float32), (-1,) + self.cells)


class RefinementMixin:
    """``refine=True``: the two-stage design of :mod:`sobol_tf.attributions.refinement` for
    :meth:`explain` (``explain_indices`` evaluates the one-stage design)."""

    refine: bool = False

    def _two_stage(self, cells: tuple) -> TwoStage:
        stages = self.__dict__.setdefault("_two_stages", {})
        if cells not in stages:
            stages[cells] = TwoStage(self, cells)
        return stages[cells]

    def _explain(self, model: Any, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        if not self.refine:
            return super()._explain(model, images, targets)  # type: ignore[misc]
        cells = tuple(self._cells_of(self._layout, images.shape[-1]))  # type: ignore[attr-defined]
        if self._layout.kind == "tokens":  # type: ignore[attr-defined]
            raise InvalidArgumentError(
                "refine is not available for token ids (their keep / mask decisions "
                "are thresholded steps); use refine=False.")
        self._masks(*images.shape[1:])  # type: ignore[attr-defined]  # checks the cells
        return self._two_stage(cells).indices(self, model, images, targets)

    def _passes_per_input(self, masks: tf.Tensor) -> int:
        if not self.refine:
            return super()._passes_per_input(masks)  # type: ignore[misc]
        return passes(self.nb_design, int(np.prod(masks.shape[1:])))  # type: ignore[attr-defined]
