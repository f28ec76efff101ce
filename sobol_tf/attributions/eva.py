"""EVA: explanations from verified perturbation analysis (Fel et al., CVPR 2023)."""
from __future__ import annotations

from typing import Any, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from sobol_tf import operators as operators_module
from sobol_tf._utils import check_grid_fits, check_positive_int, check_real, check_seed
from sobol_tf.attributions.base import Explainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.verification import METHODS, bounds_function
from sobol_tf.verification.split import split_model


class Eva(Explainer):
    """EVA: the drop of the verified adversarial overlap when a cell is left unperturbed.

    The perturbation set B is the L-infinity ball of radius ``epsilon`` around the input.
    Its *adversarial overlap* AO(x, B) is a verified upper bound (IBP or CROWN, see
    :mod:`sobol_tf.verification`) of max over x' in B, c != y of f_c(x') - f_y(x'): how
    far the box can push another class over the target y. A cell u's importance is
    AO(x, B) - AO(x, B_u), where B_u is B with the cell u fixed at its value: one verified
    pass per cell plus one, batched, nothing sampled. The margins f_c - f_y are bounded
    as such (a linear specification folded into the last linear layers), not from
    separate output bounds.

    Cells: a ``grid_size`` x ``grid_size`` grid of pixel blocks (all channels of a block
    together) for images, maps (N, H, W, 1) constant on each cell; one feature for
    tabular rows (N, F), maps (N, F).

    Hybrid bounds (``hybrid_layer``): for models too large to verify whole, the box at
    ``hybrid_layer``'s output is estimated from ``nb_samples`` uniform perturbations of
    each box (per-value min and max of the activations), and only the layers after it
    are verified. These bounds are **no longer guaranteed**: sampling can miss extreme
    activations, so the overlap may be underestimated (the paper's scaling strategy).

    Where we differ from the paper: the default ``epsilon`` (0.01, for inputs in
    [0, 1]) is our choice, not the paper's (its values per dataset could not be checked
    for this version): on the cluttered-digits benchmark the maps improve as epsilon
    falls from 0.1 to 0.01 (IBP's bounds tighten) and stay level below it
    (benchmarks/results/eva.md). Boxes are not clipped to a valid input range. The
    overlap is computed on the model's outputs as they are (logits, or probabilities if
    the model ends with a softmax: then bounded as a whole vector, looser).

    Ref. T. Fel, M. Ducoffe, D. Vigouroux, R. Cadène, M. Capelle, C. Nicodème,
    T. Serre. Don't Lie to Me! Robust and Efficient Explainability with Verified
    Perturbation Analysis. CVPR 2023. https://arxiv.org/abs/2202.07728

    Args:
        model: a Keras 3 Sequential or functional classifier whose layers
            :mod:`sobol_tf.verification` bounds (those after ``hybrid_layer`` with hybrid
            bounds).
        epsilon: radius of the L-infinity ball, > 0; in the units of the inputs.
        grid_size: cells per side of the image grid (ignored for tabular rows).
        batch_size: boxes bounded per pass (each input needs cells + 1 boxes; the boxes
            of several inputs share a pass); None: all in one pass.
        operator: None or 'classification' (the only task EVA's overlap is defined for).
        bounds: 'ibp' or 'crown' (tighter for chains of Dense/Conv/ReLU, slower).
        hybrid_layer: (keyword-only) a layer name or index: empirical bounds up to its
            output, verified bounds after it. None (default): verified end to end.
        nb_samples: (keyword-only) perturbations sampled per box for hybrid bounds.
        seed: (keyword-only) seed of those samples.
        verbose: (keyword-only) unused; accepted as by every explainer.
        strategy: (keyword-only) accepted as by every explainer; the bounds run on the
            default device (the boxes of one input are one batch).

    Raises:
        InvalidArgumentError: ``epsilon`` <= 0, ``grid_size`` or ``nb_samples`` < 1, an
            unknown ``bounds``, an operator other than classification, a layer the
            verification cannot bound (named), a ``hybrid_layer`` that is not in the
            model or cannot split it; at explain time a grid larger than the images.
        InvalidTypeError: a model that is not a Keras model.

    Example:
        >>> maps = Eva(model, epsilon=0.05, grid_size=8)(images, labels)   # (N, H, W, 1)
        >>> maps = Eva(model, 0.05, bounds="crown")(rows, labels)          # (N, F)
    """

    input_kinds = ("image", "tabular")
    resize_method = "nearest"

    def __init__(self, model: Any, epsilon: float = 0.01, grid_size: int = 8,
                 batch_size: Optional[int] = 64, operator: Any = None, bounds: str = "ibp",
                 *, hybrid_layer: Optional[Union[str, int]] = None, nb_samples: int = 128,
                 seed: Optional[int] = None, verbose: bool = False,
                 strategy: Any = None) -> None:
        if not isinstance(model, keras.Model):
            raise InvalidTypeError(
                "Eva needs a Keras 3 Sequential or functional model (its layers are "
                f"bounded one by one), got {type(model).__name__}.")
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        if self.operator is not operators_module.get(None):
            raise InvalidArgumentError(
                f"Eva explains classifiers (operator None or 'classification'), got "
                f"operator={operator!r}: its adversarial overlap compares the target "
                "class with the other classes.")
        self.epsilon = check_real("epsilon", epsilon, finite=True)
        if self.epsilon <= 0:
            raise InvalidArgumentError(f"epsilon must be > 0, got {epsilon!r}.")
        self.grid_size = check_positive_int("grid_size", grid_size)
        if not isinstance(bounds, str) or bounds.lower() not in METHODS:
            raise InvalidArgumentError(
                f"bounds must be one of {list(METHODS)}, got {bounds!r}.")
        self.bounds = bounds.lower()
        self.hybrid_layer = hybrid_layer
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        self.seed = check_seed(seed)
        if hybrid_layer is None:
            self._head, verified = None, model
        else:
            self._head, verified = split_model(model, hybrid_layer)
        self._margins = bounds_function(verified, self.bounds, True)

    # -- cells --------------------------------------------------------------------------
    def _cell_ids(self, height, width):
        """The cell of every engine pixel, (H, W) ints, and the number of cells: one
        per feature for tabular rows, a grid_size x grid_size grid for images."""
        if self._layout is not None and self._layout.kind == "tabular":
            return np.arange(width)[None, :], width
        check_grid_fits(self.grid_size, height, width)
        rows = np.arange(height) * self.grid_size // height
        cols = np.arange(width) * self.grid_size // width
        return rows[:, None] * self.grid_size + cols[None, :], self.grid_size ** 2

    # -- the method ---------------------------------------------------------------------
    def _explain(self, model, images, targets):
        number, height, width, _ = images.shape
        ids, count = self._cell_ids(height, width)
        # masks (cells + 1, H, W, 1): 1 where the box perturbs; box 0 perturbs everything
        free = np.ones((count + 1, height, width, 1), np.float32)
        for cell in range(count):
            free[cell + 1, ..., 0][ids == cell] = 0.0
        free = tf.constant(free)
        classes = targets.shape[-1]
        labels = tf.argmax(targets, axis=-1, output_type=tf.int32)
        # rows e_c - e_y for c != y of each input: (N, K - 1, K)
        eye = tf.eye(classes)
        others = tf.argsort(tf.cast(tf.equal(tf.range(classes)[None], labels[:, None]),
                                    tf.int32), axis=1, stable=True)[:, :classes - 1]
        specs = tf.gather(eye, others) - tf.gather(eye, labels)[:, None, :]
        # the flat list of (input, box) pairs, cut into batches of batch_size boxes
        pairs = number * (count + 1)
        per_pass = pairs if self.batch_size is None else self.batch_size
        input_ids = tf.range(pairs) // (count + 1)
        box_ids = tf.range(pairs) % (count + 1)
        rng = np.random.default_rng(self.seed)
        overlaps = []
        for begin in range(0, pairs, per_pass):
            inputs = tf.gather(images, input_ids[begin:begin + per_pass])
            masks = tf.gather(free, box_ids[begin:begin + per_pass])
            lower = self._layout.from_engine_inputs(inputs - self.epsilon * masks)
            upper = self._layout.from_engine_inputs(inputs + self.epsilon * masks)
            if self._head is not None:
                lower, upper = self._empirical_box(lower, upper, rng)
            _, high = self._margins(lower, upper,
                                    tf.gather(specs, input_ids[begin:begin + per_pass]))
            overlaps.append(tf.reduce_max(high, axis=-1))
        overlaps = tf.reshape(tf.concat(overlaps, 0), (number, count + 1))
        drops = overlaps[:, :1] - overlaps[:, 1:]               # (N, cells)
        maps = tf.gather(drops, tf.constant(ids.reshape(-1)), axis=1)
        return tf.reshape(maps, (number, height, width, 1))

    def _empirical_box(self, lower, upper, rng):
        """Per-value min and max of ``hybrid_layer``'s activations on ``nb_samples``
        uniform points of each box (not guaranteed: samples can miss the extremes)."""
        boxes = lower.shape[0]
        shape = (self.nb_samples,) + tuple(lower.shape)
        t = tf.constant(rng.uniform(size=shape).astype(np.float32))
        points = lower[None] + t * (upper - lower)[None]
        flat = tf.reshape(points, (-1,) + tuple(lower.shape[1:]))
        size = flat.shape[0] if self.batch_size is None else self.batch_size
        activations = tf.concat([self._head(flat[i:i + size], training=False)
                                 for i in range(0, flat.shape[0], size)], 0)
        activations = tf.reshape(activations, (self.nb_samples, boxes)
                                 + tuple(activations.shape[1:]))
        return tf.reduce_min(activations, 0), tf.reduce_max(activations, 0)
