"""Random transformations applied to the images at each optimisation step, so that the
features found survive small shifts, zooms and blurs (Olah et al., Distill 2017).

Each factory returns a function images (N, H, W, C) -> images; :func:`compose_transformations`
chains them. They draw from TensorFlow's global random state.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Tuple

import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils.validation import check_positive_int
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def _check_range(name, values, minimum):
    if (not isinstance(values, (tuple, list)) or len(values) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values)):
        raise InvalidTypeError(f"{name} must be a pair of numbers (low, high), got {values!r}.")
    low, high = float(values[0]), float(values[1])
    if not minimum <= low <= high:
        raise InvalidArgumentError(
            f"{name} must be (low, high) with {minimum} <= low <= high, got {tuple(values)}.")
    return low, high


def random_blur(sigma_range: Tuple[float, float] = (1.0, 2.0),
                kernel_size: int = 10) -> Callable[[Any], Any]:
    """Gaussian blur of a random sigma in ``sigma_range`` (floored at 0.1), one sigma
    per call, on a ``kernel_size`` x ``kernel_size`` kernel, every channel alike."""
    low, high = _check_range("sigma_range", sigma_range, 0.0)
    low, high = max(low, 0.1), max(high, 0.1)
    kernel_size = check_positive_int("kernel_size", kernel_size)
    offsets = np.arange(kernel_size, dtype=np.float32) - (kernel_size - 1) / 2.0
    squared = tf.constant(offsets[:, None] ** 2 + offsets[None, :] ** 2)

    def blur(images):
        sigma = tf.random.uniform([], low, high)
        kernel = tf.exp(-0.5 * squared / sigma ** 2)
        kernel = kernel / tf.reduce_sum(kernel)
        kernel = tf.tile(kernel[:, :, None, None], [1, 1, images.shape[-1], 1])
        return tf.nn.depthwise_conv2d(images, tf.cast(kernel, images.dtype),
                                      strides=[1, 1, 1, 1], padding="SAME")

    return blur


#: Xplique's name for the blur of one-channel images (ours handles any channel count).
random_blur_grayscale = random_blur


def random_jitter(delta: int = 6) -> Callable[[Any], Any]:
    """Random crop losing ``delta`` pixels in height and width (a shift of up to
    ``delta`` pixels), the same for the whole batch."""
    delta = check_positive_int("delta", delta, minimum=0)

    def jitter(images):
        shape = tf.shape(images)
        return tf.image.random_crop(images, (shape[0], shape[1] - delta, shape[2] - delta,
                                             shape[3]))

    return jitter


def random_scale(scale_range: Tuple[float, float] = (0.95, 1.05)) -> Callable[[Any], Any]:
    """Resize by a random factor in ``scale_range`` (aspect ratio kept)."""
    low, high = _check_range("scale_range", scale_range, 1e-3)

    def scale(images):
        factor = tf.random.uniform([], low, high)
        size = tf.cast(tf.cast(tf.shape(images)[1:3], tf.float32) * factor, tf.int32)
        return tf.image.resize(images, tf.maximum(size, 1))

    return scale


def random_flip(horizontal: bool = True, vertical: bool = False) -> Callable[[Any], Any]:
    """Random left-right (``horizontal``) and up-down (``vertical``) flips."""

    def flip(images):
        if horizontal:
            images = tf.image.random_flip_left_right(images)
        if vertical:
            images = tf.image.random_flip_up_down(images)
        return images

    return flip


def pad(size: int = 6, pad_value: float = 0.0) -> Callable[[Any], Any]:
    """Pad ``size`` pixels of ``pad_value`` on each side."""
    size = check_positive_int("size", size, minimum=0)
    widths = [[0, 0], [size, size], [size, size], [0, 0]]

    def pad_func(images):
        return tf.pad(images, widths, constant_values=tf.cast(pad_value, images.dtype))

    return pad_func


def compose_transformations(transformations: Sequence[Callable[[Any], Any]]
                            ) -> Callable[[Any], Any]:
    """The transformations applied one after the other, in order."""
    transformations = list(transformations)
    for function in transformations:
        if not callable(function):
            raise InvalidTypeError(
                f"transformations must be callables images -> images, got "
                f"{type(function).__name__}.")

    def composed(images):
        for function in transformations:
            images = function(images)
        return images

    return composed


def generate_standard_transformations(size: int, channels: int = 3) -> Callable[[Any], Any]:
    """Xplique's robust set for images of side ``size``: pad 4u, jitters (2u, 2u, 4u,
    4u, 4u), scale in [0.92, 0.96], blur (sigma 1 to 1.1), jitters (u, u), flip, with
    u = size // 16 (any channel count)."""
    del channels  # every transformation handles any channel count
    unit = int(size) // 16
    return compose_transformations([
        pad(unit * 4, 0.0),
        *[random_jitter(unit * k) for k in (2, 2, 4, 4, 4)],
        random_scale((0.92, 0.96)),
        random_blur(sigma_range=(1.0, 1.1)),
        random_jitter(unit), random_jitter(unit),
        random_flip(),
    ])
