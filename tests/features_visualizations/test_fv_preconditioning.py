"""Fourier and MACO parametrisations: the stored colour matrix, the default spectrum."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.features_visualizations import (
    fft_image, fft_to_rgb, get_fft_scale, maco_image_parametrization, power_law_spectrum)
from sobol_tf.features_visualizations.preconditioning import COLOR_CORRELATION


def test_color_correlation_is_the_sample_images_pca():
    datasets = pytest.importorskip("sklearn.datasets")
    pixels = np.concatenate([image.reshape(-1, 3) for image in
                             datasets.load_sample_images().images]) / 255.0
    variances, vectors = np.linalg.eigh(np.cov(pixels.T))
    order = np.argsort(variances)[::-1]
    vectors = vectors[:, order] * np.sign(vectors[:, order].sum(0))
    matrix = (vectors * np.sqrt(variances[order])).T
    np.testing.assert_allclose(COLOR_CORRELATION, matrix / np.linalg.norm(matrix, axis=0).max(),
                               atol=1e-5)


def test_power_law_spectrum():
    magnitude = power_law_spectrum((8, 6, 2))
    assert magnitude.shape == (2, 8, 4)
    assert magnitude[0, 0, 1] == pytest.approx(6.0)  # f = 1/6 cycle per pixel
    assert magnitude[1, 2, 0] == pytest.approx(4.0)  # f = 2/8
    assert magnitude[0, 0, 0] == pytest.approx(8.0)  # f = 0 floored at 1/max(H, W)


def test_fft_buffer_round_trip():
    shape = (2, 8, 7, 3)
    buffer = fft_image(shape, std=1.0, seed=0)
    assert buffer.shape == (2, 2, 3, 8, 4)
    images = fft_to_rgb(shape, buffer, tf.ones((8, 4), tf.complex64))
    assert images.shape == shape  # odd width kept
    spectrum = tf.signal.rfft2d(tf.transpose(images * 4.0, (0, 3, 1, 2)))
    np.testing.assert_allclose(tf.math.real(spectrum)[..., 1:3], buffer[0][..., 1:3],
                               atol=1e-4)
    assert get_fft_scale(7, 8).shape == (8, 4)


def test_maco_image_keeps_the_range():
    magnitude = tf.constant(power_law_spectrum((8, 8, 3)))
    phase = tf.random.stateless_normal((3, 8, 5), (1, 2))
    image = maco_image_parametrization(magnitude, phase, (-2.0, 2.0)).numpy()
    assert image.shape == (8, 8, 3) and image.min() > -2 and image.max() < 2
