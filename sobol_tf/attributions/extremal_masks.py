"""Smooth masks and perturbation pyramids of extremal perturbations (pure TensorFlow).

Two building blocks of :class:`~sobol_tf.attributions.ExtremalPerturbation` (Fong,
Patrick & Vedaldi, ICCV 2019), usable on their own:

- :class:`SmoothMaskGenerator` turns a low-resolution grid of parameters in [0, 1], one
  every ``step`` pixels, into a smooth mask: each pixel takes the smooth max, over the
  parameters near it, of the parameter times a bump kernel of the distance. A mask is
  then never sharper than the kernel, whatever the parameters.
- :func:`area_loss`: the ranking loss that gives a mask its area.
- :func:`gaussian_blur_matrix`, :func:`perturbation_pyramid` and :func:`apply_pyramid`:
  an input blurred at ``num_levels`` strengths (padded with zeros, as TorchRay); a mask
  value of 1 picks the input, 0 the strongest blur, and values in between interpolate
  linearly between adjacent levels.

Everything is written with batched TF ops (gathers, einsums) so that it runs inside one
compiled optimisation loop.
"""
import math

import numpy as np
import tensorflow as tf

#: momentum of the gradient descent: the step follows an exponential moving average of
#: the gradients, v <- MOMENTUM * v + (1 - MOMENTUM) * g (TorchRay's SGD with momentum
#: and dampening 0.9).
MOMENTUM = 0.9

#: where the mask parameters start. 1 as TorchRay, but 0.75 for 'delete': from 1 the
#: input starts fully blurred, where the blur levels barely differ and the score gives
#: the mask little slope (on a model reading one region, the masks ended on the image
#: border); from 0 the smooth max leaves holes between the parameters that rise first.
INITIAL_PARAMETERS = {"preserve": 1.0, "delete": 0.75, "dual": 1.0}


#: the area loss is multiplied by (parameters in the grid) / AREA_REFERENCE_CELLS.
AREA_REFERENCE_CELLS = 32 * 32

#: with ``normalize_scores``, scores are divided by at least this (scores of zero).
SCORE_SCALE_FLOOR = 1e-6

#: "coldness" of the smooth max: smax(v) = sum_k v_k softmax(COLDNESS * v)_k.
SMOOTH_MAX_COLDNESS = 20.0

#: the Gaussian blur kernel is truncated at this many standard deviations.
BLUR_TRUNCATE = 4.0


def bump(distance, sigma):
    """Flat-topped bump kernel: 1 within ``sigma / 2``, then Gaussian decay.

    k(d) = exp(-2 * max(d / sigma - 1/2, 0)**2), the kernel of TorchRay's mask generator.
    """
    excess = np.maximum(np.asarray(distance, np.float64) / sigma - 0.5, 0.0)
    return np.exp(-2.0 * excess ** 2)


class SmoothMaskGenerator:
    """Smooth masks (B, H, W) from parameter grids (B, h, w), h = ceil(H / step).

    Parameter (i, j) sits at pixel (i * step, j * step). Pixel u takes
    ``smax_k bump(|u - u_k|, sigma) * p_k`` over the (2r + 1)**2 parameters k of the
    window around its nearest lattice point, r = 1 + ceil(sigma / step); parameters
    outside the grid count as 0. The result is clipped to [0, 1].

    With a ``margin``, :meth:`full` also computes the mask on a band of ``margin``
    pixels around the image (pixels -margin .. H + margin - 1, same rule), where the
    bumps of the parameters near the border spill over (TorchRay's mask generator keeps
    such a margin of ``sigma`` pixels; the area loss counts it, so that a mask on the
    border pays for the part of its bumps that falls outside the image).

    Args:
        height, width: mask size in pixels.
        step: spacing of the parameter lattice in pixels (TorchRay's ``step``, 7).
        sigma: width of the bump kernel in pixels (TorchRay's ``sigma``, 21).
        margin: width in pixels of the band around the image of :meth:`full`, 0.

    Attributes:
        grid_shape: (h, w) of the parameter grids.
        full_shape: (H + 2 margin, W + 2 margin), the shape of :meth:`full`'s masks.
        radius: r, the window is (2r + 1) x (2r + 1) parameters.
        weights: float32 (H + 2 margin, W + 2 margin, K) bump kernel between each pixel
            and its neighbour k.

    Example:
        >>> generator = SmoothMaskGenerator(16, 16, step=4, sigma=6.0)
        >>> masks = generator(tf.ones((2,) + generator.grid_shape))   # (2, 16, 16)
    """

    def __init__(self, height, width, *, step, sigma, margin=0):
        self.height, self.width = int(height), int(width)
        self.step, self.sigma = int(step), float(sigma)
        self.margin = int(margin)
        self.grid_shape = (math.ceil(self.height / self.step), math.ceil(self.width / self.step))
        self.radius = 1 + math.ceil(self.sigma / self.step)
        self.full_shape = (self.height + 2 * self.margin, self.width + 2 * self.margin)
        offsets = np.arange(-self.radius, self.radius + 1)
        # pixels of the canvas in image coordinates, -margin .. size + margin - 1, and the
        # nearest lattice point of each (outside the grid near the borders)
        ys = np.arange(self.full_shape[0]) - self.margin
        xs = np.arange(self.full_shape[1]) - self.margin
        rows = np.rint(ys / self.step).astype(np.int64)
        cols = np.rint(xs / self.step).astype(np.int64)
        dy, dx = ys - self.step * rows, xs - self.step * cols
        distance = np.hypot(dy[:, None, None, None] - self.step * offsets[:, None],
                            dx[None, :, None, None] - self.step * offsets)
        self.weights = tf.constant(
            bump(distance, self.sigma).reshape(self.full_shape + (-1,)), tf.float32)
        # the grid is padded with zeros so that every window of every lattice point used
        # lies inside it; the lattice points are then renumbered from 0
        grid_h, grid_w = self.grid_shape
        self._pads = [(max(0, self.radius - rows[0]), max(0, rows[-1] + self.radius - grid_h + 1)),
                      (max(0, self.radius - cols[0]), max(0, cols[-1] + self.radius - grid_w + 1))]
        padded_w = grid_w + sum(self._pads[1])
        lattice_rows = np.arange(rows[0], rows[-1] + 1) + self._pads[0][0]
        lattice_cols = np.arange(cols[0], cols[-1] + 1) + self._pads[1][0]
        neighbours = ((lattice_rows[:, None, None, None] + offsets[:, None]) * padded_w
                      + lattice_cols[None, :, None, None] + offsets)
        self._neighbours = tf.constant(
            neighbours.reshape(lattice_rows.size, lattice_cols.size, -1), tf.int32)
        self._rows = tf.constant(rows - rows[0], tf.int32)
        self._cols = tf.constant(cols - cols[0], tf.int32)

    def __call__(self, params):
        """Masks (B, H, W) in [0, 1] from parameters (B, h, w): the image part of
        :meth:`full`."""
        masks = self.full(params)
        margin = self.margin
        return masks[:, margin:margin + self.height, margin:margin + self.width]

    def full(self, params):
        """Masks (B, H + 2 margin, W + 2 margin) in [0, 1] from parameters (B, h, w):
        the masks on the image and on a band of ``margin`` pixels around it."""
        params = tf.convert_to_tensor(params, tf.float32)
        padded = tf.pad(params, [[0, 0]] + self._pads)
        padded = tf.reshape(padded, (tf.shape(params)[0], -1))
        windows = tf.gather(padded, self._neighbours, axis=1)  # (B, rows, cols, K)
        values = tf.gather(tf.gather(windows, self._rows, axis=1), self._cols, axis=2)
        return tf.clip_by_value(smooth_max(values * self.weights), 0.0, 1.0)


def smooth_max(values, coldness=SMOOTH_MAX_COLDNESS):
    """Smooth maximum over the last axis: sum_k v_k softmax(coldness * v)_k."""
    return tf.reduce_sum(values * tf.nn.softmax(coldness * values, axis=-1), axis=-1)


def area_loss(masks, areas, *, image_pixels=None):
    """Ranking loss of the area: how far masks are from having area ``areas``.

    The squared distance between the sorted mask values and the sorted reference mask
    of the area, zeros then n = round(a P) ones, P = ``image_pixels``, as in the paper:
    written per pixel, (m_p - r_p)**2 with r_p the reference at the rank of m_p, so that
    pixels that tie (a smooth mask started at 1, parameters clipped to 0) share the mean
    reference of the ranks they span instead of being split by their index; the
    reference is a constant of the gradient. Without ties this is exactly the sorted
    formulation. The sum is divided by P.

    Args:
        masks: (B, H, W) float32.
        areas: (B,) target areas in (0, 1].
        image_pixels: P, the number of pixels the areas are fractions of; None (default)
            for all H W pixels of the masks (then the loss is the mean squared
            distance). A smaller P for masks computed with a margin around the image
            (:meth:`SmoothMaskGenerator.full`): the reference still holds round(a P)
            ones, so a mask that spills into the margin keeps less of the image.

    Returns:
        (B,) float32 losses.
    """
    flat = tf.reshape(masks, (tf.shape(masks)[0], -1))
    nb_pixels = tf.shape(flat)[1]
    pixels = tf.cast(nb_pixels, tf.float32) if image_pixels is None else float(image_pixels)
    nb_ones = tf.minimum(tf.cast(tf.round(areas * pixels), tf.int32), nb_pixels)
    # v: the value at the first rank of the ones. Values above v all rank among the ones,
    # values below among the zeros; the values equal to v share what ones remain.
    first_one = tf.minimum(nb_pixels - nb_ones, nb_pixels - 1)
    boundary = tf.gather(tf.sort(flat, axis=1), first_one[:, None], batch_dims=1)
    above = flat > boundary
    tied = tf.equal(flat, boundary)
    nb_above = tf.reduce_sum(tf.cast(above, tf.int32), axis=1, keepdims=True)
    nb_tied = tf.reduce_sum(tf.cast(tied, tf.int32), axis=1, keepdims=True)
    shared = tf.cast(nb_ones[:, None] - nb_above, tf.float32) / tf.cast(nb_tied, tf.float32)
    reference = tf.where(above, 1.0, tf.where(tied, shared, 0.0))
    return tf.reduce_sum(tf.square(flat - tf.stop_gradient(reference)), axis=1) / pixels


def gaussian_blur_matrix(size, sigma):
    """(size, size) matrix M so that M @ x blurs x along one axis with a Gaussian.

    The kernel has standard deviation ``sigma``, is truncated at
    :data:`BLUR_TRUNCATE` * sigma and normalised to sum to 1 over its full support; the
    signal is padded with zeros, as TorchRay's blur (``imsmooth``): taps that fall
    outside the signal are dropped, so near the borders the rows sum to less than 1 and
    the blur fades towards 0 (a constant c becomes c times the kernel mass inside the
    signal). ``sigma`` = 0 gives the identity.
    """
    if sigma <= 0:
        return np.eye(size, dtype=np.float32)
    half = math.ceil(BLUR_TRUNCATE * sigma)
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    sources = np.arange(size)[:, None] + offsets
    inside = (sources >= 0) & (sources < size)
    rows = np.broadcast_to(np.arange(size)[:, None], sources.shape)
    matrix = np.zeros((size, size), np.float64)
    np.add.at(matrix, (rows[inside], sources[inside]),
              np.broadcast_to(kernel, sources.shape)[inside])
    return matrix.astype(np.float32)


def pyramid_sigmas(num_levels, max_blur):
    """Blur of each level: max_blur * (1 - l / (L - 1)), l = 0..L-1 (the last is 0)."""
    return [max_blur * (1.0 - level / (num_levels - 1)) for level in range(num_levels)]


def perturbation_pyramid(images, num_levels, max_blur):
    """Images blurred at ``num_levels`` strengths: (B, H, W, C) -> (B, H, W, L, C).

    Level 0 has the strongest blur (standard deviation ``max_blur`` pixels), level L - 1
    is the image itself (see :func:`pyramid_sigmas`); the blurs pad the image with
    zeros (see :func:`gaussian_blur_matrix`). The levels sit next to the channels so
    that :func:`apply_pyramid` is an elementwise blend. Separable: one matrix per axis.
    """
    height, width = images.shape[1], images.shape[2]
    sigmas = pyramid_sigmas(num_levels, max_blur)
    along_h = tf.constant(np.stack([gaussian_blur_matrix(height, s) for s in sigmas]))
    along_w = tf.constant(np.stack([gaussian_blur_matrix(width, s) for s in sigmas]))
    blurred = tf.einsum("lij,bjwc->bilwc", along_h, images)
    return tf.einsum("lkw,bilwc->biklc", along_w, blurred)


def apply_pyramid(pyramid, masks):
    """Perturbed images (B, H, W, C) from a pyramid (B, H, W, L, C) and masks (B, H, W).

    A mask value m reads level m * (L - 1), interpolating linearly between the two
    levels around it: 1 keeps the image, 0 takes the strongest blur. The bracketing pair
    of levels is chosen so that the gradient is never zero at the ends or at exact
    levels (at m = 0 and m = 1 it is the one-sided slope).
    """
    num_levels = pyramid.shape[3]
    position = masks * (num_levels - 1)
    lower = tf.stop_gradient(tf.clip_by_value(tf.floor(position), 0.0, num_levels - 2.0))
    upper_weight = (position - lower)[..., None]
    lower_ids = tf.cast(lower, tf.int32)
    weights = (tf.one_hot(lower_ids, num_levels) * (1.0 - upper_weight)
               + tf.one_hot(lower_ids + 1, num_levels) * upper_weight)
    return tf.reduce_sum(weights[..., None] * pyramid, axis=3)
