"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_probability, check_real
from sobol_tf._utils.validation import check_memory
from sobol_tf.attributions._modalities import ModalityMixin, check_pair
from sobol_tf.attributions.base import MASK_CHUNK, BlackBoxExplainer  # noqa: F401
from sobol_tf.errors import InvalidArgumentError

#: the most memory Rise's grids may take (see :func:`rise_bytes`); larger
#: ``nb_samples`` x ``grid_size`` are refused in the constructor.
MAX_BYTES = 1 << 30


def rise_bytes(nb_samples: int, grid_size: int | tuple) -> int:
    """Bytes Rise holds per input size for its grids, whatever the image size.

    ``grid_size``: an int g (g x g cells) or a pair (rows, cols). Per mask: the grid drawn
    in float64 (8 bytes a cell), kept as bool then float32 (5 bytes a cell) and its two
    int64 shifts (16). The scores, 4 bytes per mask and input, come on top.
    """
    rows, cols = check_pair("grid_size", grid_size, (tuple,))
    return nb_samples * (13 * rows * cols + 16)


#: seeds the masks of each kind apart (images keep the seeds they always had).
KIND_CODES = {"tabular": 1, "time_series": 2, "tokens": 3}


class Rise(ModalityMixin, BlackBoxExplainer):
    """RISE: the score-weighted average of random smooth masks.

    On images, ``nb_samples`` binary grids of ``grid_size`` x ``grid_size`` cells (or
    rows x cols for a tuple ``grid_size=(rows, cols)``; each cell kept with probability
    ``preservation_probability``) are upsampled bilinearly to
    ``int(H * (1 + 1 / rows))`` x ``int(W * (1 + 1 / cols))`` and cropped to
    H x W at a random shift, giving smooth masks M in [0, 1]. The input is perturbed as
    ``x * M + (1 - M) * mask_value`` and the map is, at every pixel u,

        map(u) = sum_p score_p M_p(u) / (sum_p M_p(u) + EPSILON),

    the normalisation of Xplique (the paper divides by nb_samples * p instead; both
    estimate E[score | u kept]). Costs ``nb_samples`` forward passes per input.

    Beyond images (the rank rule of README, "Beyond images"; maps in the inputs' layout):

    - tabular rows (N, F) of floats: one binary decision per feature (``grid_size`` is
      ignored), no upsampling, as in Xplique: there is no neighbourhood between
      features to smooth over. Maps (N, F).
    - time series (N, T, C): Xplique's rule: grids of ``grid_size`` windows along time,
      one grid per channel ((P, g, C); a tuple ``grid_size`` is (g, C) as in Xplique),
      upsampled bilinearly along time to ``int(T * (1 + 1 / g))`` steps and cropped to
      T at a random shift per mask: neighbouring steps are correlated like neighbouring
      pixels, and the smoothing and shifts keep the window borders out of the maps.
      ``grid_size=None``: one binary decision per step and channel. Maps (N, T, C).
    - token ids (N, L) of integers: one binary decision per token (``grid_size`` is
      ignored; no smoothing: a token is either there or replaced, and a fraction of a
      token means nothing); a dropped token is replaced by ``mask_token``; positions
      holding ``pad_token`` are never replaced and get 0. Maps (N, L).

    Masked-out values move towards ``mask_value`` (a number, Xplique's argument) or,
    keyword-only, ``baseline``: one value per feature, e.g. the feature mean of a
    reference set for tabular rows, where 0 is often far from the data.

    Deviations from Xplique: every mask gets its own random shift, as in the paper
    (Xplique's ``tf.image.random_crop`` shifts a whole batch of masks by the same
    offset); the grids and shifts are drawn from ``seed`` once per input size and kept;
    the full-size masks (``nb_samples * H * W * 4`` bytes, 800 MB for 4000 masks of
    224 x 224) are kept too when they fit in
    :data:`~sobol_tf.attributions.base.MASK_CACHE_BYTES` (256 MiB), and otherwise
    upsampled and cropped batch by batch on the device (and again, MASK_CHUNK at a time,
    for the estimate), so memory does not grow with ``nb_samples * H * W``. Images are
    rank 4, (N, H, W, C) (grayscale: (N, H, W, 1)); rank 3 is a time series.

    Ref. V. Petsiuk, A. Das, K. Saenko. RISE: Randomized Input Sampling for Explanation
    of Black-box Models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Args:
        model: a Keras model or a callable on a batch tensor (called on inputs in the
            caller's layout; int32 ids (B, L) for token ids).
        batch_size: perturbed inputs per forward pass; 32 as Xplique. None: every
            perturbed input of every input in one pass (Xplique: the nb_samples of one
            input per pass).
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        nb_samples: number of random masks; 4000 as Xplique.
        grid_size: cells per side of the low-resolution grids, an int, or a tuple
            (rows, cols) of ints as Xplique; 7 as Xplique. Time series: windows along
            time (a tuple: (windows, channels)), None for one cell per step. Ignored for
            tabular rows and token ids.
        preservation_probability: probability that a cell is kept, in (0, 1]; 0.5.
        mask_value: the number masked-out values move towards; 0.
        baseline: (keyword-only) instead of ``mask_value``: a number or one value per
            feature, an array of one input's shape ((F,), (T, C) or (H, W, C)); None
            (default): ``mask_value``.
        mask_token: (keyword-only) for token ids (integer inputs (N, L)), the id that
            replaces a dropped token; required for them, refused for float inputs.
        pad_token: (keyword-only) the id of padding in token ids, never replaced, 0 in
            the maps; None: no padding.
        seed: (keyword-only) seed of the masks (None: drawn once per explainer); an
            integer >= 0 or a numpy Generator (one integer is drawn from it).
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches; see :class:`~sobol_tf.attributions.Explainer`.

    The positional order is Xplique's: ``Rise(model, batch_size, operator, nb_samples,
    grid_size, preservation_probability, mask_value)``.

    Raises:
        InvalidArgumentError: ``nb_samples`` or ``grid_size`` < 1, a tuple ``grid_size``
            that is not a pair, grids over
            :data:`MAX_BYTES` (1 GiB; :func:`rise_bytes`: about 13 * nb_samples *
            grid_size^2 bytes; the message gives the forward passes, the memory and
            the largest nb_samples / grid_size that fit), a
            ``preservation_probability`` outside (0, 1], ``seed`` < 0, both
            ``baseline`` and a non-zero ``mask_value``, a ``baseline`` with NaN or inf;
            at explain time: ``grid_size=None`` with images, a tuple ``grid_size``
            whose second entry is not the series' channels, a ``baseline`` array of
            another shape than one input's, token ids without ``mask_token`` (or with a
            baseline), ``mask_token`` with float inputs.
        InvalidTypeError: a ``grid_size`` that is not an int or a tuple of ints, a
            ``mask_value`` that is not a number, a ``baseline`` that is neither a number
            nor an array of numbers, a ``seed`` that is not None, an integer or a numpy
            Generator, a ``mask_token`` / ``pad_token`` that is not an integer.

    Example:
        >>> explainer = Rise(model, nb_samples=2000, grid_size=7, seed=0)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
        >>> maps = Rise(model, nb_samples=500, baseline=reference.mean(axis=0))(rows, labels)
        >>> maps = Rise(text_model, nb_samples=500, mask_token=103, pad_token=0)(ids, labels)
    """

    #: added to the denominator: a pixel never kept gets 0 (its numerator is 0 too).
    EPSILON = 1e-4

    #: the grids are upsampled bilinearly (then cropped, see :meth:`_upsample`).
    upsampling = "bilinear"
    value_name = "mask_value"

    def __init__(self, model: Callable, batch_size: int | None = 32, operator: Any = None,
                 nb_samples: int = 4000, grid_size: int | tuple | None = 7,
                 preservation_probability: float = 0.5, mask_value: float = 0.0, *,
                 baseline: Any = None, mask_token: int | None = None,
                 pad_token: int | None = None, seed: Any = None, verbose: bool = False,
                 strategy: Any = None) -> None:
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        grid: Any = None if grid_size is None else check_pair("grid_size", grid_size, (tuple,))
        self._grid = grid
        self.grid_size = grid_size if grid_size is None or isinstance(grid_size, tuple) \
            else grid[0]
        self._check_size()
        self.preservation_probability = check_probability(
            "preservation_probability", preservation_probability, open_low=True)
        self._init_value(check_real("mask_value", mask_value), baseline, mask_token, pad_token)
        self._init_seed(seed)

    def _check_size(self, cells: int | None = None) -> None:
        """Refuse grids over :data:`MAX_BYTES` (:func:`rise_bytes`), before drawing
        anything: those of ``grid_size`` (``cells`` None, in the constructor), or of
        ``cells`` cells per mask for the inputs of a call that are not images."""
        nb_samples, grid = self.nb_samples, self.grid_size
        if cells is None and grid is None:
            return  # a cell per step of a time series: checked at explain time
        rows, cols = self._grid if cells is None else (1, cells)
        largest_nb = MAX_BYTES // rise_bytes(1, (rows, cols))
        if cells is not None:
            what, held = (f"nb_samples={nb_samples} on {self._layout.description}",
                          f"random grids ({nb_samples} x {cells} cells)")
            lower = f"nb_samples (nb_samples <= {largest_nb})"
        else:
            what, held = (f"nb_samples={nb_samples} and grid_size={grid}",
                          f"random grids ({nb_samples} x {rows} x {cols}, drawn in float64)")
            largest = max(0, MAX_BYTES // nb_samples - 16) // 13   # cells per mask
            at = f" at nb_samples={nb_samples})"
            lower = (f"nb_samples (nb_samples <= {largest_nb} at grid_size={grid})"
                     if largest_nb else f"nb_samples (none fits at grid_size={grid})") + (
                " or grid_size (" + ("none fits" if not largest else f"rows x cols <= {largest}"
                                     if isinstance(grid, tuple)
                                     else f"grid_size <= {math.isqrt(largest)}") + at)
        check_memory(what, f"{nb_samples} forward passes per input", held,
                     rise_bytes(nb_samples, (rows, cols)), MAX_BYTES,
                     "sobol_tf.attributions.rise.MAX_BYTES", lower)

    def _check_inputs(self, images: tf.Tensor) -> None:
        kind, channels = self._kind(), images.shape[3]
        if kind == "image" and self._grid is None:
            raise InvalidArgumentError(
                "grid_size=None (a cell per step) is for time series (N, T, C); images need "
                "grid_size=g (g x g cells) or (rows, cols).")
        if kind == "time_series" and isinstance(self.grid_size, tuple) \
                and self._grid[1] != channels:
            raise InvalidArgumentError(
                f"grid_size={self.grid_size} on time series is (windows, channels), as in "
                f"Xplique: its second entry must be the series' {channels} channel(s); use "
                f"grid_size=({self._grid[0]}, {channels}) or grid_size={self._grid[0]}.")
        if kind != "image":
            rows, cols, depth, _ = self._plan(images.shape[1], images.shape[2], channels)
            self._check_size(rows * cols * depth)

    def _plan(self, height: int, width: int, channels: int) -> tuple:
        """(rows, cols, mask channels, upsampled size) of the grids for inputs of the
        current kind: smooth grids are upsampled bilinearly to that size and shifted;
        the others (upsampled size None) are already at the input size (one binary
        decision per cell)."""
        kind = self._kind()
        if kind in ("tabular", "tokens") or self._grid is None:
            return 1, width, channels if kind == "time_series" else 1, None
        rows, cols = self._grid
        if kind == "time_series":   # along time only
            return 1, rows, channels, (height, max(width, int(width * (1.0 + 1.0 / rows))))
        return rows, cols, 1, (max(height, int(height * (1.0 + 1.0 / rows))),
                               max(width, int(width * (1.0 + 1.0 / cols))))

    def _masks(self, height: int, width: int, channels: int) -> tf.Tensor:
        """The binary grids (P, rows, cols, k) of this input size and kind, drawn once;
        their shifts are kept beside them for :meth:`_upsample`."""
        kind = self._kind()
        key = (kind, height, width) + ((channels,) if kind == "time_series" else ())
        return self._kept(key, lambda: self._draw_grids(key, *self._plan(height, width,
                                                                         channels)))[0]

    def _draw_grids(self, key: tuple, rows: int, cols: int, depth: int,
                    size: tuple | None) -> tuple:
        """Random binary grids float32 (P, rows, cols, k) and, for smooth grids, shifts
        int64 (P,) of rows and columns within the upsampled ``size`` (else None)."""
        kind, height, width = key[:3]
        entropy = [self._entropy, height, width]
        if kind != "image":
            entropy += [depth, KIND_CODES[kind]]
        rng = np.random.default_rng(entropy)
        grids = rng.random((self.nb_samples, rows, cols, depth)) < self.preservation_probability
        grids = tf.constant(grids, tf.float32)
        if size is None:
            return grids, None, None, None
        shift_rows = rng.integers(0, size[0] - height + 1, self.nb_samples)
        shift_cols = rng.integers(0, size[1] - width + 1, self.nb_samples)
        return (grids, tf.constant(shift_rows, tf.int64), tf.constant(shift_cols, tf.int64),
                size)

    def _upsample(self, masks: tf.Tensor, mask_ids: tf.Tensor, height: int,
                  width: int) -> tf.Tensor:
        """Shifted crops (B, H, W, k) of the grids ``masks`` upsampled bilinearly (grids
        that are not smooth are returned as they are)."""
        _, shift_rows, shift_cols, size = self._mask_cache[self._active]
        if size is None:
            return masks
        upsampled = tf.image.resize(masks, size, method="bilinear")
        rows = tf.gather(shift_rows, mask_ids)[:, None] + tf.range(height, dtype=tf.int64)
        cols = tf.gather(shift_cols, mask_ids)[:, None] + tf.range(width, dtype=tf.int64)
        cropped = tf.gather(upsampled, rows, axis=1, batch_dims=1)
        return tf.gather(cropped, cols, axis=2, batch_dims=1)

    def _estimate(self, scores: tf.Tensor, masks: tf.Tensor,
                  base_scores: tf.Tensor | None) -> tf.Tensor:
        height, width = self._active[1:3]
        weighted, total = self._weighted_masks(scores, masks, height, width)
        return weighted / (total + self.EPSILON)
