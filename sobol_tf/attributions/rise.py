"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018)."""
import math
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_probability, check_seed
from sobol_tf._utils.validation import check_memory
from sobol_tf.attributions._modalities import ModalityMixin
from sobol_tf.attributions.perturbations import check_baseline
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: masks are upsampled and shifted this many at a time outside the batches (the cache,
#: the estimate): bounds the transient memory to MASK_CHUNK full-size masks.
MASK_CHUNK = 256

#: the most memory Rise's grids may take (see :func:`rise_bytes`); larger
#: ``nb_samples`` x ``grid_size`` are refused in the constructor.
MAX_BYTES = 1 << 30


def rise_bytes(nb_samples, grid_size):
    """Bytes Rise holds per input size for its grids, whatever the image size.

    ``grid_size``: an int g (g x g cells) or a pair (rows, cols). Per mask: the grid drawn
    in float64 (8 bytes a cell), kept as bool then float32 (5 bytes a cell) and its two
    int64 shifts (16). The scores, 4 bytes per mask and input, come on top.
    """
    rows, cols = _grid_pair(grid_size)
    return nb_samples * (13 * rows * cols + 16)


def _grid_pair(grid_size):
    """``grid_size`` (an int g or a tuple (rows, cols) of ints >= 1) as (rows, cols);
    None stays None (a cell per step of a time series)."""
    if grid_size is None:
        return None
    if isinstance(grid_size, tuple):
        if len(grid_size) != 2:
            raise InvalidArgumentError(
                f"grid_size must be an int or a tuple (rows, cols) of two ints, got "
                f"{grid_size!r}.")
        return tuple(check_positive_int("grid_size", size) for size in grid_size)
    size = check_positive_int("grid_size", grid_size)
    return size, size



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

    def __init__(self, model, batch_size=32, operator=None, nb_samples=4000, grid_size=7,
                 preservation_probability=0.5, mask_value=0.0, *, baseline=None,
                 mask_token=None, pad_token=None, seed=None, verbose=False, strategy=None):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        self._grid = _grid_pair(grid_size)
        self.grid_size = grid_size if grid_size is None or isinstance(grid_size, tuple) \
            else self._grid[0]
        if self._grid is not None:
            self._check_size()
        self.preservation_probability = check_probability(
            "preservation_probability", preservation_probability, open_low=True)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real):
            raise InvalidTypeError(f"mask_value must be a number, got {mask_value!r}.")
        self.mask_value = float(mask_value)
        self.baseline = None if baseline is None else check_baseline(baseline, "baseline")
        if self.baseline is not None and self.mask_value != 0.0:
            raise InvalidArgumentError(
                f"pass either mask_value (a number) or baseline (a number or one value per "
                f"feature), not both: got mask_value={self.mask_value} and a baseline.")
        self._init_tokens(mask_token, pad_token)
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)
        self._mask_cache = {}
        self._active = None

    def _value_argument(self):
        if self.baseline is not None:
            return "baseline", self.baseline
        return "mask_value", self.mask_value

    def _check_size(self):
        """Refuse grids over :data:`MAX_BYTES`, before drawing anything."""
        nb_samples, grid = self.nb_samples, self.grid_size
        largest_nb = MAX_BYTES // rise_bytes(1, grid)
        largest_cells = max(0, MAX_BYTES // nb_samples - 16) // 13
        lower = [f"nb_samples (nb_samples <= {largest_nb} at grid_size={grid})"
                 if largest_nb else f"nb_samples (none fits at grid_size={grid})"]
        if not largest_cells:
            lower.append(f"grid_size (none fits at nb_samples={nb_samples})")
        elif isinstance(grid, tuple):
            lower.append(f"grid_size (rows x cols <= {largest_cells} at "
                         f"nb_samples={nb_samples})")
        else:
            lower.append(f"grid_size (grid_size <= {math.isqrt(largest_cells)} at "
                         f"nb_samples={nb_samples})")
        rows, cols = self._grid
        check_memory(f"nb_samples={nb_samples} and grid_size={grid}",
                     f"{nb_samples} forward passes per input",
                     f"random grids ({nb_samples} x {rows} x {cols}, drawn in float64)",
                     rise_bytes(nb_samples, grid), MAX_BYTES,
                     "sobol_tf.attributions.rise.MAX_BYTES", " or ".join(lower))

    def _kind(self):
        return "image" if self._layout is None else self._layout.kind

    def _check_inputs(self, images):
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
            cells = rows * cols * depth
            check_memory(f"nb_samples={self.nb_samples} on {self._layout.description}",
                         f"{self.nb_samples} forward passes per input",
                         f"random grids ({self.nb_samples} x {cells} cells)",
                         self.nb_samples * (13 * cells + 16), MAX_BYTES,
                         "sobol_tf.attributions.rise.MAX_BYTES",
                         f"nb_samples (nb_samples <= {MAX_BYTES // (13 * cells + 16)})")

    def _plan(self, height, width, channels):
        """(rows, cols, mask channels, smooth) of the grids for inputs of the current
        kind: smooth grids are upsampled bilinearly and shifted, the others are already
        at the input size (one binary decision per cell)."""
        kind = self._kind()
        if kind == "image":
            return self._grid + (1, True)
        if kind == "time_series":
            if self._grid is None:
                return 1, width, channels, False
            return 1, self._grid[0], channels, True
        return 1, width, 1, False

    def _masks(self, height, width, channels):
        """The binary grids (P, rows, cols, k) of this input size and kind; their
        shifts are kept beside them for :meth:`_upsample`."""
        kind = self._kind()
        key = (kind, height, width) + ((channels,) if kind == "time_series" else ())
        if key not in self._mask_cache:
            self._mask_cache[key] = self._draw_grids(key, *self._plan(height, width, channels))
        self._active = key
        return self._mask_cache[key][0]

    def _draw_grids(self, key, rows, cols, depth, smooth):
        """Random binary grids float32 (P, rows, cols, k) and, for smooth grids, shifts
        int64 (P,) of rows and columns (None otherwise)."""
        kind, height, width = key[:3]
        entropy = [self._entropy, height, width]
        if kind != "image":
            entropy += [depth, KIND_CODES[kind]]
        rng = np.random.default_rng(entropy)
        grids = rng.random((self.nb_samples, rows, cols, depth)) < self.preservation_probability
        grids = tf.constant(grids, tf.float32)
        if not smooth:
            return grids, None, None
        up_height, up_width = self._upsampled_size(key)
        shift_rows = rng.integers(0, up_height - height + 1, self.nb_samples)
        shift_cols = rng.integers(0, up_width - width + 1, self.nb_samples)
        return grids, tf.constant(shift_rows, tf.int64), tf.constant(shift_cols, tf.int64)

    def _upsampled_size(self, key):
        kind, height, width = key[:3]
        rows, cols = self._grid
        if kind != "image":   # along time only
            return height, max(width, int(width * (1.0 + 1.0 / rows)))
        return (max(height, int(height * (1.0 + 1.0 / rows))),
                max(width, int(width * (1.0 + 1.0 / cols))))

    def _upsample(self, masks, mask_ids, height, width):
        """Shifted crops (B, H, W, k) of the grids ``masks`` upsampled bilinearly (grids
        that are not smooth are returned as they are)."""
        _, shift_rows, shift_cols = self._mask_cache[self._active]
        if shift_rows is None:
            return masks
        if masks.shape[0] is not None and masks.shape[0] > MASK_CHUNK:  # outside a batch
            return tf.concat([self._upsample(masks[start:start + MASK_CHUNK],
                                             mask_ids[start:start + MASK_CHUNK], height, width)
                              for start in range(0, masks.shape[0], MASK_CHUNK)], axis=0)
        upsampled = tf.image.resize(masks, self._upsampled_size(self._active),
                                    method="bilinear")
        rows = tf.gather(shift_rows, mask_ids)[:, None] + tf.range(height, dtype=tf.int64)
        cols = tf.gather(shift_cols, mask_ids)[:, None] + tf.range(width, dtype=tf.int64)
        cropped = tf.gather(upsampled, rows, axis=1, batch_dims=1)
        return tf.gather(cropped, cols, axis=2, batch_dims=1)

    def _input_size_masks(self, height, width):
        """All the masks of images of this size, (P, H, W, 1) float32 (for small sizes)."""
        grids = self._masks(height, width, 1)
        return self._upsample(grids, tf.range(self.nb_samples, dtype=tf.int64), height, width)

    def _estimate(self, scores, masks, base_scores):
        self._active = key = next(key for key, (grids, _, _) in self._mask_cache.items()
                                  if grids is masks)
        height, width = key[1:3]
        full, upsampled = self._cached_masks(masks, height, width)
        if upsampled:
            weighted = tf.einsum("np,phwk->nhwk", scores, full)
            return weighted / (tf.reduce_sum(full, axis=0) + self.EPSILON)
        weighted = tf.zeros((scores.shape[0], height, width, masks.shape[3]))
        total = tf.zeros((height, width, masks.shape[3]))
        for start in range(0, masks.shape[0], MASK_CHUNK):  # bounded: MASK_CHUNK masks
            ids = tf.range(start, min(start + MASK_CHUNK, masks.shape[0]), dtype=tf.int64)
            chunk = self._upsample(tf.gather(masks, ids), ids, height, width)
            weighted += tf.einsum("np,phwk->nhwk", tf.gather(scores, ids, axis=1), chunk)
            total += tf.reduce_sum(chunk, axis=0)
        return weighted / (total + self.EPSILON)
