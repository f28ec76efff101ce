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
def test_blur_matrix_is_scipy_gaussian_filter_with_zero_padding(size, sigma):
    """TorchRay's blur pads with zeros: scipy's 'constant' mode with cval 0; the kernel
    radius ceil(4 sigma) equals scipy's int(4 sigma + 0.5) for these sigmas. (5, 10.0):
    a kernel wider than the signal."""
    x = np.random.default_rng(0).uniform(size=(size, 3))
    expected = gaussian_filter1d(x, sigma, axis=0, mode="constant", cval=0.0, truncate=4.0)
    np.testing.assert_allclose(gaussian_blur_matrix(size, sigma) @ x, expected, atol=1e-6)


def _inside_mass(size, sigma):
    """Mass of the normalised Gaussian kernel (radius ceil(4 sigma)) that falls inside
    [0, size) from each position: what a constant signal of 1 becomes."""
    half = math.ceil(4 * sigma)
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    return np.array([kernel[(i + offsets >= 0) & (i + offsets < size)].sum()
                     for i in range(size)])


@pytest.mark.parametrize("size, sigma", [(32, 20.0 * 32 / 224), (64, 20.0 * 64 / 224)])
def test_fully_blurred_constant_and_ramp_fade_to_zero_at_the_border(size, sigma):
    """Closed forms of the strongest level of the pyramid, zero padding: a constant c
    becomes c a(i) a(j), a the kernel mass inside the image; a ramp x(i, j) = i becomes
    sum_o k(o) (i + o) over the taps inside, times a(j). The border mean of the blurred
    constant c is then well below c, where mirrored borders kept c."""
    mass = _inside_mass(size, sigma)
    constant = np.full((1, size, size, 1), 0.8, np.float32)
    blurred = perturbation_pyramid(tf.constant(constant), 8, sigma).numpy()[0, :, :, 0, 0]
    np.testing.assert_allclose(blurred, 0.8 * np.outer(mass, mass), atol=1e-5)
    border = np.concatenate([blurred[0], blurred[-1], blurred[1:-1, 0], blurred[1:-1, -1]])
    expected_border = 0.8 * np.concatenate([mass[0] * mass, mass[-1] * mass,
                                            mass[1:-1] * mass[0], mass[1:-1] * mass[-1]])
    assert border.mean() == pytest.approx(expected_border.mean(), abs=1e-5)
    assert border.mean() < 0.8 * 0.95
    centre = slice(size // 2 - 2, size // 2 + 2)
    np.testing.assert_allclose(blurred[centre, centre], 0.8, atol=1e-4)

    half = math.ceil(4 * sigma)
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    ramp_1d = np.array([sum(k * (i + o) for k, o in zip(kernel, offsets) if 0 <= i + o < size)
                        for i in range(size)])
    ramp = np.broadcast_to(np.arange(size, dtype=np.float32)[:, None], (size, size))
    blurred = perturbation_pyramid(tf.constant(ramp[None, :, :, None].copy()), 8,
                                   sigma).numpy()[0, :, :, 0, 0]
    np.testing.assert_allclose(blurred, np.outer(ramp_1d, mass), rtol=1e-4, atol=1e-3)


def test_blur_of_sigma_zero_is_the_identity():
    np.testing.assert_array_equal(gaussian_blur_matrix(6, 0.0), np.eye(6))


def test_pyramid_goes_from_the_strongest_blur_to_the_image():
    images = np.random.default_rng(1).uniform(size=(2, 9, 11, 3)).astype(np.float32)
    pyramid = np.moveaxis(perturbation_pyramid(tf.constant(images), 5, 3.0).numpy(), 3, 1)
    assert pyramid.shape == (2, 5, 9, 11, 3)
    np.testing.assert_allclose(pyramid[:, -1], images, atol=1e-6)
    for level, sigma in enumerate([3.0, 2.25, 1.5, 0.75]):
        expected = gaussian_filter(images, (0, sigma, sigma, 0), mode="constant", cval=0.0,
                                   truncate=4.0)
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


@pytest.mark.parametrize("height, width, step, sigma, at, margin", [
    (11, 9, 3, 4.0, (2, 1), 0),
    (16, 16, 2, 2.0, (0, 7), 0),
    (8, 12, 4, 2.5, (1, 2), 0),
    (16, 16, 2, 2.0, (0, 7), 2),     # a border parameter spills into the margin
    (11, 9, 3, 4.0, (3, 2), 4),      # the last row and column, a margin wider than step
    (12, 12, 1, 3.0, (0, 0), 3),     # a corner, step 1
])
def test_one_parameter_gives_the_smooth_max_of_one_bump(height, width, step, sigma, at,
                                                        margin):
    """With one parameter at 1 and the others at 0, each pixel's smooth max is over one
    value v = bump(distance) and K - 1 zeros: v e^(c v) / (e^(c v) + K - 1), when the
    parameter lies in the pixel's window (|index - round(coord / step)| <= r), else 0;
    on the image and on the margin (pixel coordinates -margin .. size + margin - 1)."""
    generator = SmoothMaskGenerator(height, width, step=step, sigma=sigma, margin=margin)
    grid_h, grid_w = generator.grid_shape
    assert (grid_h, grid_w) == (math.ceil(height / step), math.ceil(width / step))
    assert generator.full_shape == (height + 2 * margin, width + 2 * margin)
    params = np.zeros((1, grid_h, grid_w), np.float32)
    params[0, at[0], at[1]] = 1.0
    full = generator.full(params).numpy()[0]
    mask = generator(params).numpy()[0]

    radius = 1 + math.ceil(sigma / step)
    nb_neighbours = (2 * radius + 1) ** 2
    expected = np.zeros(generator.full_shape)
    for y in range(-margin, height + margin):
        for x in range(-margin, width + margin):
            in_window = (abs(at[0] - round(y / step)) <= radius
                         and abs(at[1] - round(x / step)) <= radius)
            if in_window:
                v = bump(math.hypot(y - step * at[0], x - step * at[1]), sigma)
                e = math.exp(SMOOTH_MAX_COLDNESS * v)
                expected[y + margin, x + margin] = v * e / (e + nb_neighbours - 1)
    np.testing.assert_allclose(full, expected, atol=1e-5)
    np.testing.assert_allclose(mask, expected[margin:margin + height, margin:margin + width],
                               atol=1e-6)
    assert mask[step * at[0], step * at[1]] == pytest.approx(1.0, abs=1e-6)
    if margin and at[0] == 0:
        assert full[:margin].max() > 0.5  # the bump reaches outside the image


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


def test_area_loss_counts_the_margin_against_the_image_area():
    """Masks of 4 x 4 pixels standing for a 2 x 2 image plus a margin of 1 (P = 4):
    area 1/2 asks for round(2) ones among the 16 values and the sum is divided by P.
    Two high values inside (1, 0.9) and zeros elsewhere cost 0.1**2 / 4; two more in the
    margin (0.8, 0.7) rank below them, among the zeros of the reference, and add
    (0.8**2 + 0.7**2) / 4: the margin counts as area."""
    inside = np.zeros((1, 4, 4), np.float32)
    inside[0, 1, 1:3] = [1.0, 0.9]
    spilled = inside.copy()
    spilled[0, 0, 1:3] = [0.8, 0.7]
    losses = area_loss(tf.constant(np.concatenate([inside, spilled])), tf.constant([0.5, 0.5]),
                       image_pixels=4).numpy()
    np.testing.assert_allclose(losses, [0.01 / 4, (0.01 + 0.64 + 0.49) / 4], rtol=1e-5)
    # without image_pixels the areas are fractions of all 16 values: 8 ones, so the 12
    # tied zeros share the 4 ones left (reference 1/3 each)
    np.testing.assert_allclose(area_loss(tf.constant(spilled), tf.constant([0.5])).numpy(),
                               [(12 / 9 + 0.01 + 0.04 + 0.09) / 16], rtol=1e-5)
