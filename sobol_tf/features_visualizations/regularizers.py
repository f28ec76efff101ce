"""Image regularisers: each factory returns f(images (N, H, W, C)) -> (N,) penalties,
subtracted from the objective by :func:`optimize`."""
from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf


def l1_reg(factor: float = 1.0) -> Callable[[Any], Any]:
    """``factor`` x mean |pixel| of each image."""
    def reg(images):
        return factor * tf.reduce_mean(tf.abs(images), (1, 2, 3))
    return reg


def l2_reg(factor: float = 1.0) -> Callable[[Any], Any]:
    """``factor`` x root mean square of each image's pixels."""
    def reg(images):
        return factor * tf.sqrt(tf.reduce_mean(images ** 2, (1, 2, 3)))
    return reg


def l_inf_reg(factor: float = 1.0) -> Callable[[Any], Any]:
    """``factor`` x max |pixel| of each image."""
    def l_inf(images):
        return factor * tf.reduce_max(tf.abs(images), (1, 2, 3))
    return l_inf


def total_variation_reg(factor: float = 1.0) -> Callable[[Any], Any]:
    """``factor`` x total variation (sum of absolute differences of neighbouring pixels)
    of each image."""
    def tv_reg(images):
        return factor * tf.image.total_variation(images)
    return tv_reg
