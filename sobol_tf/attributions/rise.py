"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018)."""
import math
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_probability, check_seed
from sobol_tf._utils.validation import check_memory
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
    """``grid_size`` (an int g or a tuple (rows, cols) of ints >= 1) as (rows, cols)."""
    if isinstance(grid_size, tuple):
        if len(grid_size) != 2:
            raise InvalidArgumentError(
                f"grid_size must be an int or a tuple (rows, cols) of two ints, got "
                f"{grid_size!r}.")
        return tuple(check_positive_int("grid_size", size) for size in grid_size)
    size = check_positive_int("grid_size", grid_size)
    return size, size


class Rise(BlackBoxExplainer):
    """RISE: the score-weighted average of random smooth masks.

    ``nb_samples`` binary grids of ``grid_size`` x ``grid_size`` cells (or rows x cols for
    a tuple ``grid_size=(rows, cols)``; each cell kept with probability
    ``preservation_probability``) are upsampled bilinearly to
    ``int(H * (1 + 1 / rows))`` x ``int(W * (1 + 1 / cols))`` and cropped to
    H x W at a random shift, giving smooth masks M in [0, 1]. The input is perturbed as
    ``x * M + (1 - M) * mask_value`` and the map is, at every pixel u,

        map(u) = sum_p score_p M_p(u) / (sum_p M_p(u) + EPSILON),

    the normalisation of Xplique (the paper divides by nb_samples * p instead; both
    estimate E[score | u kept]). Costs ``nb_samples`` forward passes per input.

    Deviations from Xplique: every mask gets its own random shift, as in the paper
    (Xplique's ``tf.image.random_crop`` shifts a whole batch of masks by the same
    offset); the grids and shifts are drawn from ``seed`` once per input size and kept;
    the full-size masks (``nb_samples * H * W * 4`` bytes, 800 MB for 4000 masks of
    224 x 224) are kept too when they fit in
    :data:`~sobol_tf.attributions.base.MASK_CACHE_BYTES` (256 MiB), and otherwise
    upsampled and cropped batch by batch on the device (and again, MASK_CHUNK at a time,
    for the estimate), so memory does not grow with ``nb_samples * H * W``. Inputs are
    images (N, H, W, C) or (N, H, W) (grayscale; Xplique reads rank 3 as time series).

    Ref. V. Petsiuk, A. Das, K. Saenko. RISE: Randomized Input Sampling for Explanation
    of Black-box Models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Args:
        model: a Keras model or a callable on a batch tensor.
        batch_size: perturbed inputs per forward pass; 32 as Xplique. None: every
            perturbed input of every image in one pass (Xplique: the nb_samples of one
            image per pass).
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        nb_samples: number of random masks; 4000 as Xplique.
        grid_size: cells per side of the low-resolution grids, an int, or a tuple
            (rows, cols) of ints as Xplique; 7 as Xplique.
        preservation_probability: probability that a cell is kept, in (0, 1]; 0.5.
        mask_value: the value masked-out pixels move towards; 0.
        seed: (keyword-only) seed of the masks (None: drawn once per explainer); an integer >= 0 or a
            numpy Generator (one integer is drawn from it).
        verbose: (keyword-only) show a progress bar.

    The positional order is Xplique's: ``Rise(model, batch_size, operator, nb_samples,
    grid_size, preservation_probability, mask_value)``.

    Raises:
        InvalidArgumentError: ``nb_samples`` or ``grid_size`` < 1, a tuple ``grid_size``
            that is not a pair, grids over
            :data:`MAX_BYTES` (1 GiB; :func:`rise_bytes`: about 13 * nb_samples *
            grid_size^2 bytes; the message gives the forward passes, the memory and
            the largest nb_samples / grid_size that fit), a
            ``preservation_probability`` outside (0, 1], ``seed`` < 0.
        InvalidTypeError: a ``grid_size`` that is not an int or a tuple of ints, a
            ``mask_value`` that is not a number, a ``seed`` that is not
            None, an integer or a numpy Generator.

    Example:
        >>> explainer = Rise(model, nb_samples=2000, grid_size=7, seed=0)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
    """

    #: added to the denominator: a pixel never kept gets 0 (its numerator is 0 too).
    EPSILON = 1e-4

    #: the grids are upsampled bilinearly (then cropped, see :meth:`_upsample`).
    upsampling = "bilinear"

    def __init__(self, model, batch_size=32, operator=None, nb_samples=4000, grid_size=7,
                 preservation_probability=0.5, mask_value=0.0, *, seed=None, verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        self._grid = _grid_pair(grid_size)
        self.grid_size = grid_size if isinstance(grid_size, tuple) else self._grid[0]
        self._check_size()
        self.preservation_probability = check_probability(
            "preservation_probability", preservation_probability, open_low=True)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real):
            raise InvalidTypeError(f"mask_value must be a number, got {mask_value!r}.")
        self.mask_value = float(mask_value)
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)
        self._mask_cache = {}

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

    def _masks(self, height, width, channels):
        """The binary grids (P, rows, cols, 1) of this input size; their shifts
        are kept beside them for :meth:`_upsample`."""
        if (height, width) not in self._mask_cache:
            self._mask_cache[(height, width)] = self._draw_grids(height, width)
        return self._mask_cache[(height, width)][0]

    def _draw_grids(self, height, width):
        """Random binary grids float32 (P, g, g, 1) and shifts int64 (P,) of rows, columns."""
        rng = np.random.default_rng([self._entropy, height, width])
        rows, cols = self._grid
        grids = rng.random((self.nb_samples, rows, cols, 1)) < self.preservation_probability
        up_height, up_width = self._upsampled_size(height, width)
        shift_rows = rng.integers(0, up_height - height + 1, self.nb_samples)
        shift_cols = rng.integers(0, up_width - width + 1, self.nb_samples)
        return (tf.constant(grids, tf.float32), tf.constant(shift_rows, tf.int64),
                tf.constant(shift_cols, tf.int64))

    def _upsampled_size(self, height, width):
        rows, cols = self._grid
        return (max(height, int(height * (1.0 + 1.0 / rows))),
                max(width, int(width * (1.0 + 1.0 / cols))))

    def _upsample(self, masks, mask_ids, height, width):
        """Shifted crops (B, H, W, 1) of the grids ``masks`` upsampled bilinearly."""
        if masks.shape[0] is not None and masks.shape[0] > MASK_CHUNK:  # outside a batch
            return tf.concat([self._upsample(masks[start:start + MASK_CHUNK],
                                             mask_ids[start:start + MASK_CHUNK], height, width)
                              for start in range(0, masks.shape[0], MASK_CHUNK)], axis=0)
        _, shift_rows, shift_cols = self._mask_cache[(height, width)]
        upsampled = tf.image.resize(masks, self._upsampled_size(height, width),
                                    method="bilinear")
        rows = tf.gather(shift_rows, mask_ids)[:, None] + tf.range(height, dtype=tf.int64)
        cols = tf.gather(shift_cols, mask_ids)[:, None] + tf.range(width, dtype=tf.int64)
        cropped = tf.gather(upsampled, rows, axis=1, batch_dims=1)
        return tf.gather(cropped, cols, axis=2, batch_dims=1)

    def _input_size_masks(self, height, width):
        """All the masks at the input size, (P, H, W, 1) float32 (for small sizes)."""
        grids = self._masks(height, width, 1)
        return self._upsample(grids, tf.range(self.nb_samples, dtype=tf.int64), height, width)

    @property
    def perturbation(self):
        """Masked-out pixels move towards ``mask_value``."""
        return self._towards(self.mask_value)

    def _estimate(self, scores, masks, base_scores):
        height, width = next(size for size, (grids, _, _) in self._mask_cache.items()
                             if grids is masks)
        full, upsampled = self._cached_masks(masks, height, width)
        if upsampled:
            weighted = tf.einsum("np,phwk->nhwk", scores, full)
            return weighted / (tf.reduce_sum(full, axis=0) + self.EPSILON)
        weighted = tf.zeros((scores.shape[0], height, width, 1))
        total = tf.zeros((height, width, 1))
        for start in range(0, masks.shape[0], MASK_CHUNK):  # bounded: MASK_CHUNK masks
            ids = tf.range(start, min(start + MASK_CHUNK, masks.shape[0]), dtype=tf.int64)
            chunk = self._upsample(tf.gather(masks, ids), ids, height, width)
            weighted += tf.einsum("np,phwk->nhwk", tf.gather(scores, ids, axis=1), chunk)
            total += tf.reduce_sum(chunk, axis=0)
        return weighted / (total + self.EPSILON)
