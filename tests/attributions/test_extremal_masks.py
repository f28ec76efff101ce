"""Smooth masks and blur pyramids of extremal perturbations, against their definitions."""
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from sobol_tf.attributions.extremal_masks import (
    SMOOTH_MAX_COLDNESS,
    SmoothMaskGenerator,
    apply_pyramid,
    area_loss,
    bump,
    gaussian_blur_matrix,
    perturbation_pyramid,
)


@pytest.mark.parametrize("size, sigma", [(7, 1.5), (20, 2.0), (9, 0.7), (5, 10.0), (1, 3.0)])
def test_blur_matrix_is_scipy_gaussian_filter_with_mirrored_borders(size, sigma):
    """scipy's 'mirror' mode is reflect-101; the kernel radius ceil(4 sigma) equals
    scipy's int(4 sigma + 0.5) for these sigmas. (5, 10.0): a kernel wider than the
    signal, reflected several times."""
    x = np.random.default_rng(0).uniform(size=(size, 3))
    expected = gaussian_filter1d(x, sigma, axis=0, mode="mirror", truncate=4.0)
    np.testing.assert_allclose(gaussian_blur_matrix(size, sigma) @ x, expected, atol=1e-6)
    np.testing.assert_allclose(gaussian_blur_matrix(size, sigma).sum(axis=1), 1.0, atol=1e-6)


def test_blur_of_sigma_zero_is_the_identity():
    np.testing.assert_array_equal(gaussian_blur_matrix(6, 0.0), np.eye(6))


def test_pyramid_goes_from_the_strongest_blur_to_the_image():
    images = np.random.default_rng(1).uniform(size=(2, 9, 11, 3)).astype(np.float32)
    pyramid = np.moveaxis(perturbation_pyramid(tf.constant(images), 5, 3.0).numpy(), 3, 1)
    assert pyramid.shape == (2, 5, 9, 11, 3)
    np.testing.assert_allclose(pyramid[:, -1], images, atol=1e-6)
    for level, sigma in enumerate([3.0, 2.25, 1.5, 0.75]):
        expected = gaussian_filter(images, (0, sigma, sigma, 0), mode="mirror", truncate=4.0)
        np.testing.assert_allclose(pyramid[:, level], expected, atol=1e-5, err_msg=str(level))


def test_mask_values_pick_and_interpolate_levels():
    rng = np.random.default_rng(2)
    levels = rng.uniform(size=(1, 3, 2, 2, 1)).astype(np.float32)
    pyramid = tf.constant(np.moveaxis(levels, 1, 3))  # (B, H, W, L, C)
    masks = tf.constant([[[1.0, 0.0], [0.5, 0.25]]])  # levels 2, 0, 1 and halfway 0-1
    out = apply_pyramid(pyramid, masks).numpy()[0, ..., 0]
    p = levels[0, ..., 0]
    expected = [[p[2, 0, 0], p[0, 0, 1]], [p[1, 1, 0], 0.5 * p[0, 1, 1] + 0.5 * p[1, 1, 1]]]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_pyramid_slope_is_one_sided_at_the_ends():
    """At m = 1 and m = 0 the gradient is (L - 1) times the last / first level step."""
    pyramid = tf.constant(np.array([0.0, 1.0, 3.0], np.float32).reshape(1, 1, 1, 3, 1))
    for value, slope in [(1.0, 2 * (3.0 - 1.0)), (0.0, 2 * (1.0 - 0.0))]:
        masks = tf.fill((1, 1, 1), value)
        with tf.GradientTape() as tape:
            tape.watch(masks)
            out = apply_pyramid(pyramid, masks)
        assert tape.gradient(out, masks).numpy().item() == pytest.approx(slope)


def test_bump_is_flat_then_gaussian():
    np.testing.assert_allclose(bump([0.0, 1.0, 2.0], 4.0), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(bump([4.0, 6.0], 4.0), [np.exp(-0.5), np.exp(-2.0)])


@pytest.mark.parametrize("height, width, step, sigma, at", [
    (11, 9, 3, 4.0, (2, 1)),
    (16, 16, 2, 2.0, (0, 7)),
    (8, 12, 4, 2.5, (1, 2)),
])
def test_one_parameter_gives_the_smooth_max_of_one_bump(height, width, step, sigma, at):
    """With one parameter at 1 and the others at 0, each pixel's smooth max is over one
    value v = bump(distance) and K - 1 zeros: v e^(c v) / (e^(c v) + K - 1), when the
    parameter lies in the pixel's window (|index - round(coord / step)| <= r), else 0."""
    generator = SmoothMaskGenerator(height, width, step=step, sigma=sigma)
    grid_h, grid_w = generator.grid_shape
    assert (grid_h, grid_w) == (math.ceil(height / step), math.ceil(width / step))
    params = np.zeros((1, grid_h, grid_w), np.float32)
    params[0, at[0], at[1]] = 1.0
    mask = generator(params).numpy()[0]

    radius = 1 + math.ceil(sigma / step)
    nb_neighbours = (2 * radius + 1) ** 2
    expected = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            in_window = (abs(at[0] - round(y / step)) <= radius
                         and abs(at[1] - round(x / step)) <= radius)
            if in_window:
                v = bump(math.hypot(y - step * at[0], x - step * at[1]), sigma)
                e = math.exp(SMOOTH_MAX_COLDNESS * v)
                expected[y, x] = v * e / (e + nb_neighbours - 1)
    np.testing.assert_allclose(mask, expected, atol=1e-5)
    assert mask[step * at[0], step * at[1]] == pytest.approx(1.0, abs=1e-6)


def test_masks_are_in_unit_interval_and_differentiable():
    generator = SmoothMaskGenerator(12, 12, step=3, sigma=3.0)
    params = tf.constant(np.random.default_rng(3).uniform(size=(4,) + generator.grid_shape),
                         tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(params)
        masks = generator(params)
        total = tf.reduce_sum(masks)
    assert masks.shape == (4, 12, 12)
    assert masks.numpy().min() >= 0 and masks.numpy().max() <= 1
    gradient = tape.gradient(total, params).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).min() > 0
    ones = generator(tf.ones((1,) + generator.grid_shape)).numpy()
    assert ones[0, ::3, ::3].min() > 0.99  # a smooth max sits just below the max



def test_area_loss_is_the_sorted_distance_to_the_reference_without_ties():
    rng = np.random.default_rng(4)
    masks = rng.uniform(size=(4, 5, 4)).astype(np.float32)  # distinct values
    areas = np.array([0.01, 0.1, 0.5, 1.0], np.float32)  # 0, 2, 10 and 20 ones
    expected = []
    for mask, area in zip(masks, areas):
        reference = np.zeros(20)
        reference[20 - int(round(area * 20)):] = 1.0
        expected.append(np.mean((np.sort(mask.ravel()) - reference) ** 2))
    np.testing.assert_allclose(area_loss(tf.constant(masks), tf.constant(areas)).numpy(),
                               expected, rtol=1e-5)


def test_area_loss_treats_tied_pixels_alike():
    """Eight pixels tie at 0.5 with a target area of 1/4 (2 ones among 8): each gets the
    mean reference 2/8 of the ranks they span, so the same gradient 2 (0.5 - 1/4) / 8,
    where the sort alone would push six of them down and two up by their index."""
    masks = tf.fill((1, 2, 4), 0.5)
    with tf.GradientTape() as tape:
        tape.watch(masks)
        loss = area_loss(masks, tf.constant([0.25]))
    np.testing.assert_allclose(loss.numpy(), [0.0625], rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, masks).numpy(), 2 * 0.25 / 8, rtol=1e-6)
    # ties spanning the boundary of the reference, next to distinct values
    mixed = tf.constant([[[0.1, 0.7, 0.7, 0.7]]])
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        loss = area_loss(mixed, tf.constant([0.5]))  # ranks 1..3 tie; 2 ones of 4
    expected = [2 * 0.1 / 4] + [2 * (0.7 - 2 / 3) / 4] * 3
    np.testing.assert_allclose(tape.gradient(loss, mixed).numpy().ravel(), expected,
                               rtol=1e-5)
