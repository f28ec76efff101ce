"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018)."""
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_probability, check_seed
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidTypeError

#: masks are upsampled and shifted this many at a time (bounds the transient memory).
MASK_CHUNK = 256


class Rise(BlackBoxExplainer):
    """RISE: the score-weighted average of random smooth masks.

    ``nb_samples`` binary grids of ``grid_size`` x ``grid_size`` cells (each cell kept with
    probability ``preservation_probability``) are upsampled bilinearly to
    ``int(H * (1 + 1 / grid_size))`` x ``int(W * (1 + 1 / grid_size))`` and cropped to
    H x W at a random shift, giving smooth masks M in [0, 1]. The input is perturbed as
    ``x * M + (1 - M) * mask_value`` and the map is, at every pixel u,

        map(u) = sum_p score_p M_p(u) / (sum_p M_p(u) + EPSILON),

    the normalisation of Xplique (the paper divides by nb_samples * p instead; both
    estimate E[score | u kept]). Costs ``nb_samples`` forward passes per input.

    Deviations from Xplique: every mask gets its own random shift, as in the paper
    (Xplique's ``tf.image.random_crop`` shifts a whole batch of masks by the same
    offset); the masks are drawn from ``seed`` once per input size and kept, at full
    resolution, which takes ``nb_samples * H * W * 4`` bytes (800 MB for 4000 masks of
    224 x 224: lower ``nb_samples`` for large inputs);
    ``grid_size`` is an int (Xplique also takes a tuple).

    Ref. V. Petsiuk, A. Das, K. Saenko. RISE: Randomized Input Sampling for Explanation
    of Black-box Models. BMVC 2018. https://arxiv.org/abs/1806.07421

    Args:
        model: a Keras model or a callable on a batch tensor.
        batch_size: perturbed inputs per forward pass; 32 as Xplique.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        nb_samples: number of random masks; 4000 as Xplique.
        grid_size: cells per side of the low-resolution grids; 7 as Xplique.
        preservation_probability: probability that a cell is kept, in (0, 1]; 0.5.
        mask_value: the value masked-out pixels move towards; 0.
        seed: seed of the masks (None: drawn once per explainer); an integer >= 0 or a
            numpy Generator (one integer is drawn from it).
        verbose: show a progress bar.

    Raises:
        InvalidArgumentError: ``nb_samples`` or ``grid_size`` < 1, a
            ``preservation_probability`` outside (0, 1], ``seed`` < 0.
        InvalidTypeError: a ``mask_value`` that is not a number, a ``seed`` that is not
            None, an integer or a numpy Generator.

    Example:
        >>> explainer = Rise(model, nb_samples=2000, grid_size=7, seed=0)
        >>> maps = explainer(images, labels)          # (N, H, W, 1)
    """

    #: added to the denominator: a pixel never kept gets 0 (its numerator is 0 too).
    EPSILON = 1e-4

    def __init__(self, model, *, batch_size=32, operator=None, nb_samples=4000, grid_size=7,
                 preservation_probability=0.5, mask_value=0.0, seed=None, verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.preservation_probability = check_probability(
            "preservation_probability", preservation_probability, open_low=True)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real):
            raise InvalidTypeError(f"mask_value must be a number, got {mask_value!r}.")
        self.mask_value = float(mask_value)
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)
        self._mask_cache = {}

    def _masks(self, height, width, channels):
        if (height, width) not in self._mask_cache:
            self._mask_cache[(height, width)] = tf.constant(self._draw_masks(height, width))
        return self._mask_cache[(height, width)]

    def _draw_masks(self, height, width):
        """Shifted crops of upsampled random binary grids: float32 (P, H, W, 1)."""
        rng = np.random.default_rng([self._entropy, height, width])
        size = self.grid_size
        grids = rng.random((self.nb_samples, size, size, 1)) < self.preservation_probability
        up_height = max(height, int(height * (1.0 + 1.0 / size)))
        up_width = max(width, int(width * (1.0 + 1.0 / size)))
        shift_rows = rng.integers(0, up_height - height + 1, self.nb_samples)
        shift_cols = rng.integers(0, up_width - width + 1, self.nb_samples)
        masks = np.empty((self.nb_samples, height, width, 1), np.float32)
        for start in range(0, self.nb_samples, MASK_CHUNK):
            chunk = slice(start, start + MASK_CHUNK)
            upsampled = tf.image.resize(grids[chunk].astype(np.float32),
                                        (up_height, up_width), method="bilinear")
            rows = shift_rows[chunk, None] + np.arange(height)
            cols = shift_cols[chunk, None] + np.arange(width)
            cropped = tf.gather(upsampled, rows, axis=1, batch_dims=1)
            masks[chunk] = tf.gather(cropped, cols, axis=2, batch_dims=1).numpy()
        return masks

    def _baselines(self, images):
        return tf.fill((1,) + tuple(images.shape[1:]), self.mask_value)

    def _estimate(self, scores, masks, base_scores):
        weighted = tf.einsum("np,phwk->nhwk", scores, masks)
        return weighted / (tf.reduce_sum(masks, axis=0) + self.EPSILON)
