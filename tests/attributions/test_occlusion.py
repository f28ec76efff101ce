"""Occlusion against the hand-computed drop of a linear model, and localisation."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

from tests.conftest import RegionModel

WEIGHTS = np.random.default_rng(3).normal(size=(7, 9, 2)).astype(np.float32)


def linear(x):
    f = tf.reduce_sum(x * WEIGHTS, axis=[1, 2, 3]) + 1.5
    return tf.stack([f, -f], axis=-1)


def hand_computed(image, sign, patch, stride, value):
    """Sum over the patches covering each pixel of f(x) - f(occluded x), by loops."""
    expected = np.zeros(image.shape[:2])
    for top in range(0, image.shape[0] - patch[0] + 1, stride[0]):
        for left in range(0, image.shape[1] - patch[1] + 1, stride[1]):
            window = (slice(top, top + patch[0]), slice(left, left + patch[1]))
            drop = sign * np.sum(WEIGHTS[window] * (image[window] - value))
            expected[window] += drop
    return expected


@pytest.mark.parametrize("patch, stride, value", [
    ((3, 3), (3, 3), 0.0),     # no overlap, an uncovered margin
    ((3, 3), (1, 2), 0.5),     # overlapping patches add up
    ((2, 4), (2, 3), -1.0),    # rectangular patches
])
def test_linear_model_maps_equal_the_hand_computed_drop(patch, stride, value):
    x = np.random.default_rng(0).uniform(size=(2, 7, 9, 2)).astype(np.float32)
    explainer = Occlusion(linear, patch_size=patch, patch_stride=stride,
                          occlusion_value=value, batch_size=7)
    maps = explainer(x, [0, 1]).numpy()
    assert maps.shape == (2, 7, 9, 1)
    for row, sign in enumerate((1, -1)):
        np.testing.assert_allclose(maps[row, ..., 0],
                                   hand_computed(x[row], sign, patch, stride, value),
                                   atol=1e-4)


def test_uncovered_margin_is_zero_and_int_sizes_mean_squares():
    x = np.ones((1, 7, 9, 2), np.float32)
    maps = Occlusion(linear, patch_size=3, patch_stride=3)(x, [0]).numpy()[0, ..., 0]
    np.testing.assert_array_equal(maps[6:, :], 0.0)
    assert np.all(maps[:6, :] != 0.0)
    np.testing.assert_allclose(maps, hand_computed(x[0], 1, (3, 3), (3, 3), 0.0), atol=1e-4)


def test_region_model_is_found_and_nothing_else():
    model = RegionModel(rows=(4, 8), cols=(0, 4))
    x = np.random.default_rng(0).uniform(0.5, 1, size=(2, 8, 8, 3)).astype(np.float32)
    maps = Occlusion(model, patch_size=2, patch_stride=2)(x, [0, 0]).numpy()[..., 0]
    assert np.all(maps[:, 4:, :4] > 0)
    maps[:, 4:, :4] = 0.0
    np.testing.assert_allclose(maps, 0.0, atol=1e-6)


def test_masks_are_cached_per_input_size():
    explainer = Occlusion(linear, patch_size=2, patch_stride=2)
    assert explainer._masks(4, 4, 1) is explainer._masks(4, 4, 1)
    assert explainer._masks(4, 4, 1).shape == (4, 4, 4, 1)
    assert explainer._masks(6, 4, 1).shape == (6, 6, 4, 1)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"patch_size": 0}, InvalidArgumentError, "patch_size must be an integer >= 1, got 0"),
    ({"patch_stride": (1, 2, 3)}, InvalidArgumentError, r"patch_stride must be an int or a pair"),
    ({"patch_size": 2.5}, InvalidTypeError, "patch_size"),
    ({"occlusion_value": None}, InvalidTypeError, "occlusion_value must be a number"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Occlusion(linear, **kwargs)


def test_patch_larger_than_input():
    with pytest.raises(InvalidArgumentError, match=r"patch_size=\(8, 2\) for inputs of 7x9"):
        Occlusion(linear, patch_size=(8, 2))(np.ones((1, 7, 9, 2), np.float32), [0])
