"""CRAFT's plots as a new user sees them: each concept drawn in its own colour (its
strongest value is that colour, saturated, never white), grayscale crops in gray, and a
legend frame that leaves small crops visible."""
import colorsys

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("sklearn")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sobol_tf.concepts import CraftTf  # noqa: E402
from sobol_tf.concepts._plots import BASE_COLORS, _alpha_cmap  # noqa: E402


def g(images):
    """Two non-negative channels per 4x4 cell: the cell's mean and its square."""
    pooled = tf.nn.avg_pool2d(images, 4, 4, "VALID")
    return tf.concat([pooled, pooled ** 2], axis=-1)


def h(activations):
    return tf.stack([tf.reduce_mean(activations[..., 0], axis=(1, 2)),
                     tf.reduce_mean(activations[..., 1], axis=(1, 2))], axis=-1)


@pytest.fixture(scope="module")
def craft():
    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 1)).astype(np.float32)
    craft = CraftTf(g, h, 2, 16, 8, seed=0)  # 8x8 crops of grayscale images
    craft.fit(images, 0)
    craft.estimate_importance(nb_design=4)
    return craft


@pytest.mark.parametrize("color", BASE_COLORS[:3])
def test_a_concept_colormap_ends_on_the_saturated_concept_colour(color):
    hue, lightness, _ = colorsys.rgb_to_hls(*np.asarray(color) / 255.0)
    red, green, blue, alpha = _alpha_cmap(color)(1.0)
    end_hue, end_lightness, end_saturation = colorsys.rgb_to_hls(red, green, blue)
    assert end_hue == pytest.approx(hue, abs=0.01)
    assert end_lightness == pytest.approx(lightness, abs=0.01)
    assert end_saturation == pytest.approx(1.0, abs=0.01)
    assert alpha == pytest.approx(0.85) and _alpha_cmap(color)(0.0)[3] == 0.0


def test_the_importance_bars_are_drawn_in_colour(craft):
    plt.figure()
    craft.plot_concepts_importances()
    bars = plt.gca().patches
    plt.close("all")
    assert len(bars) == 2
    for bar in bars:
        red, green, blue, _ = bar.get_facecolor()
        assert max(red, green, blue) - min(red, green, blue) > 0.3  # not white nor gray


def test_grayscale_crops_are_drawn_in_gray(craft, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    craft.plot_concepts_crops(nb_crops=2, nb_most_important_concepts=1)
    images = plt.gcf().axes[0].get_images()
    plt.close("all")
    assert images and images[0].get_cmap().name == "gray"


def test_the_legend_frame_leaves_a_small_crop_visible(craft, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    craft.plot_concept_attribution_legend(nb_most_important_concepts=1)  # border_width=5
    crop, frame = plt.gcf().axes[0].get_images()
    plt.close("all")
    frame = np.asarray(frame.get_array())
    assert frame.shape == (8, 8)
    assert frame[0].all() and frame[:, 0].all()  # a frame all around
    assert frame.sum() <= 8 * 8 - 6 * 6  # at most an eighth of the side: 1 pixel here
