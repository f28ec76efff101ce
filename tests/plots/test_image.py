"""plot_attributions draws one panel per explanation, heatmap over image."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.plots import plot_attributions


def visible_axes(figure):
    return [axis for axis in figure.axes if axis.get_visible()]


def test_one_panel_per_explanation_in_a_grid():
    maps = np.random.default_rng(0).normal(size=(5, 6, 6, 1))
    figure = plot_attributions(maps, cols=2, titles=list("abcde"))
    assert len(figure.axes) == 6                       # a 3 x 2 grid, the last one hidden
    axes = visible_axes(figure)
    assert len(axes) == 5
    assert [axis.get_title() for axis in axes] == list("abcde")
    for axis, expected in zip(axes, maps):
        (image,) = axis.get_images()
        data = np.asarray(image.get_array())
        assert data.shape == (6, 6)
        assert data.min() == pytest.approx(0) and data.max() == pytest.approx(1)
        # the brightest pixel of the heatmap is the largest attribution
        assert np.unravel_index(data.argmax(), data.shape) == \
            np.unravel_index(expected[..., 0].argmax(), (6, 6))


def test_heatmaps_over_images_are_resized_to_them():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(2, 8, 8, 3))
    maps = tf.constant(rng.normal(size=(2, 4, 4)), tf.float32)
    figure = plot_attributions(maps, images, alpha=0.3)
    axes = visible_axes(figure)
    assert len(axes) == 2
    for axis, image in zip(axes, images):
        background, heatmap = axis.get_images()
        assert np.asarray(background.get_array()).shape == (8, 8, 3)
        assert np.asarray(heatmap.get_array()).shape == (8, 8)
        assert heatmap.get_alpha() == 0.3


def test_grayscale_images_and_absolute_values():
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(1, 5, 5, 1))
    maps = -np.abs(rng.normal(size=(1, 5, 5, 3)))
    maps[0, 2, 3] = -10.0                              # the largest |attribution|
    figure = plot_attributions(maps, images, absolute_value=True, clip_percentile=0)
    background, heatmap = figure.axes[0].get_images()
    assert background.get_cmap().name == "gray"
    data = np.asarray(heatmap.get_array())
    assert np.unravel_index(data.argmax(), data.shape) == (2, 3)


def test_constant_map_is_drawn_flat():
    figure = plot_attributions(np.ones((1, 4, 4)))
    np.testing.assert_array_equal(np.asarray(figure.axes[0].get_images()[0].get_array()), 0)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="shape"):
        plot_attributions(np.zeros((2, 4)))
    with pytest.raises(InvalidArgumentError, match="images has 1 items"):
        plot_attributions(np.zeros((2, 4, 4)), np.zeros((1, 4, 4, 3)))
    with pytest.raises(InvalidArgumentError, match="titles has 1 items"):
        plot_attributions(np.zeros((2, 4, 4)), titles=["a"])
