"""plot_attributions: per input, the plain input, the map over it, and a colour bar."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.plots import plot_attributions


def labelled(figure, prefix):
    """The axes whose label starts with prefix ('input', 'map', 'colorbar'), in order."""
    return [axis for axis in figure.axes if axis.get_label().startswith(prefix)]


def bar_label(axis):
    return axis.get_xlabel() or axis.get_ylabel()


def scaled(array):
    """Min-max scaling to [0, 1], computed by hand."""
    array = np.asarray(array, np.float64)
    return (array - array.min()) / (array.max() - array.min())


def test_each_input_gets_a_plain_panel_then_its_map_over_it():
    rng = np.random.default_rng(0)
    images = rng.uniform(2.0, 5.0, size=(3, 6, 6, 1)).astype(np.float32)
    maps = rng.normal(size=(3, 6, 6)).astype(np.float32)
    figure = plot_attributions(maps, images, clip_percentile=0, cols=2, titles=list("abc"))
    inputs, panels = labelled(figure, "input"), labelled(figure, "map")
    assert [axis.get_label() for axis in inputs] == ["input 0", "input 1", "input 2"]
    assert [axis.get_label() for axis in panels] == ["map 0", "map 1", "map 2"]
    assert figure.axes[:3] == panels                  # figure.axes[:N] stay the map panels
    assert [axis.get_title() for axis in inputs] == list("abc")
    for axis, image in zip(inputs, images):
        (plain,) = axis.get_images()
        assert plain.get_cmap().name == "gray"        # grayscale shown in gray
        np.testing.assert_allclose(plain.get_array(), scaled(image[..., 0]), atol=1e-6)
    for axis, image, attribution in zip(panels, images, maps):
        background, heatmap = axis.get_images()
        np.testing.assert_allclose(background.get_array(), scaled(image[..., 0]), atol=1e-6)
        np.testing.assert_allclose(heatmap.get_array(), scaled(attribution), atol=1e-6)
        assert heatmap.norm.vmin == 0 and heatmap.norm.vmax == 1
        # each input panel sits just left of its map panel, on the same row
        left, right = axis.get_position(), inputs[panels.index(axis)].get_position()
        assert right.x1 <= left.x0 and right.y0 == pytest.approx(left.y0)


def test_low_attributions_are_transparent_so_the_input_shows_through():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(1, 5, 5, 1))
    maps = rng.normal(size=(1, 5, 5))
    figure = plot_attributions(maps, images, alpha=0.8, clip_percentile=0)
    _, heatmap = labelled(figure, "map")[0].get_images()
    opacity = np.broadcast_to(heatmap.get_alpha(), (5, 5))
    np.testing.assert_allclose(opacity, 0.8 * scaled(maps[0]), atol=1e-6)


def test_a_labelled_colour_bar_says_what_bright_means():
    maps = np.random.default_rng(2).uniform(size=(2, 4, 4))
    figure = plot_attributions(maps, np.ones((2, 4, 4, 1)))
    (colorbar,) = labelled(figure, "colorbar")
    label = bar_label(colorbar)
    assert "normalised" in label and "0 = lowest" in label and "1 = highest" in label
    assert "percentile" in label
    ticks = [text.get_text() for text in colorbar.get_xticklabels()]
    assert ticks[0].startswith("0") and ticks[-1].startswith("1")
    assert "see-through" in label                 # over images, low values are
    figure = plot_attributions(maps)                  # alone, they are opaque
    assert "see-through" not in bar_label(labelled(figure, "colorbar")[0])
    assert not labelled(plot_attributions(maps, colorbar=False), "colorbar")


def test_colorbar_label_can_be_chosen():
    figure = plot_attributions(np.ones((1, 4, 4)), colorbar_label="my scale")
    assert bar_label(labelled(figure, "colorbar")[0]) == "my scale"


def test_show_inputs_false_gives_one_panel_per_input():
    rng = np.random.default_rng(3)
    images = rng.uniform(size=(5, 6, 6, 3))
    figure = plot_attributions(rng.normal(size=(5, 6, 6)), images, show_inputs=False,
                               cols=2, titles=list("abcde"))
    assert not labelled(figure, "input")
    panels = labelled(figure, "map")
    assert len(panels) == 5 and [axis.get_title() for axis in panels] == list("abcde")
    hidden = [axis for axis in figure.axes if not axis.get_visible()]
    assert len(hidden) == 1                           # a 3 x 2 grid, the last cell hidden
    assert len(labelled(figure, "colorbar")) == 1


def test_maps_alone_are_opaque_panels():
    maps = np.random.default_rng(4).normal(size=(5, 6, 6, 1))
    figure = plot_attributions(maps, cols=2, titles=list("abcde"), clip_percentile=0)
    panels = labelled(figure, "map")
    assert [axis.get_title() for axis in panels] == list("abcde")
    for axis, expected in zip(panels, maps):
        (heatmap,) = axis.get_images()
        np.testing.assert_allclose(heatmap.get_array(), scaled(expected[..., 0]), atol=1e-6)
        assert heatmap.get_alpha() is None


def test_rgb_inputs_in_colour_and_in_gray_under_the_map():
    images = np.random.default_rng(5).uniform(-1, 1, size=(1, 8, 8, 3)).astype(np.float32)
    maps = tf.constant(np.random.default_rng(6).normal(size=(1, 4, 4)), tf.float32)
    figure = plot_attributions(maps, images)
    (plain,) = labelled(figure, "input")[0].get_images()
    np.testing.assert_allclose(plain.get_array(), scaled(images[0]), atol=1e-6)
    background, heatmap = labelled(figure, "map")[0].get_images()
    assert np.asarray(background.get_array()).shape == (8, 8)
    assert background.get_cmap().name == "gray"
    assert np.asarray(heatmap.get_array()).shape == (8, 8)     # resized to the image


def test_diverging_maps_are_centred_on_zero():
    maps = np.array([[[-1.0, 0.0], [0.5, 3.0]]])
    figure = plot_attributions(maps, np.ones((1, 2, 2)), diverging=True, clip_percentile=0,
                               alpha=1.0)
    _, heatmap = labelled(figure, "map")[0].get_images()
    assert heatmap.norm.vmin == -heatmap.norm.vmax == -1
    np.testing.assert_allclose(heatmap.get_array(), maps[0] / 3.0)
    np.testing.assert_allclose(np.broadcast_to(heatmap.get_alpha(), (2, 2)),
                               np.abs(maps[0]) / 3.0)           # zero is transparent
    (colorbar,) = labelled(figure, "colorbar")
    assert "positive" in bar_label(colorbar) and "negative" in bar_label(colorbar)
    with pytest.raises(InvalidArgumentError, match="absolute_value"):
        plot_attributions(maps, diverging=True, absolute_value=True)


def test_absolute_values_and_channel_means():
    rng = np.random.default_rng(7)
    maps = -np.abs(rng.normal(size=(1, 5, 5, 3)))
    maps[0, 2, 3] = -10.0                              # the largest |attribution|
    figure = plot_attributions(maps, rng.uniform(size=(1, 5, 5, 1)), absolute_value=True,
                               clip_percentile=0)
    _, heatmap = labelled(figure, "map")[0].get_images()
    data = np.asarray(heatmap.get_array())
    np.testing.assert_allclose(data, scaled(np.abs(maps[0].mean(axis=-1))), atol=1e-6)


def test_constant_map_is_drawn_flat():
    figure = plot_attributions(np.ones((1, 4, 4)))
    np.testing.assert_array_equal(labelled(figure, "map")[0].get_images()[0].get_array(), 0)


def test_figure_title():
    figure = plot_attributions(np.ones((1, 4, 4)), title="what the map is")
    assert figure._suptitle.get_text() == "what the map is"


def test_the_command_line_overlay_call_still_draws():
    """sobol_tf.cli.save_overlay's call: one image, cols=1, img_size=4."""
    display = np.random.default_rng(8).uniform(size=(16, 16, 3))
    figure = plot_attributions(np.ones((16, 16))[None] * np.arange(16), display[None],
                               cols=1, img_size=4.0, titles=["cat.png: class 3"])
    assert len(labelled(figure, "input")) == len(labelled(figure, "map")) == 1
    assert labelled(figure, "input")[0].get_title() == "cat.png: class 3"
    assert len(labelled(figure, "colorbar")) == 1


def test_the_callers_arrays_are_not_modified():
    rng = np.random.default_rng(9)
    images = rng.uniform(size=(2, 6, 6, 1)).astype(np.float32)
    maps = rng.normal(size=(2, 6, 6, 1)).astype(np.float32)
    images_before, maps_before = images.copy(), maps.copy()
    plot_attributions(maps, images, absolute_value=True)
    plot_attributions(maps, images, diverging=True)
    np.testing.assert_array_equal(images, images_before)
    np.testing.assert_array_equal(maps, maps_before)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="shape"):
        plot_attributions(np.zeros((2, 4)))
    with pytest.raises(InvalidArgumentError, match="images has 1 items"):
        plot_attributions(np.zeros((2, 4, 4)), np.zeros((1, 4, 4, 3)))
    with pytest.raises(InvalidArgumentError, match="titles has 1 items"):
        plot_attributions(np.zeros((2, 4, 4)), titles=["a"])
    with pytest.raises(InvalidArgumentError, match="images must have shape"):
        plot_attributions(np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 2)))
    with pytest.raises(InvalidArgumentError, match="alpha"):
        plot_attributions(np.zeros((1, 4, 4)), alpha=1.5)
    with pytest.raises(InvalidArgumentError, match=r"2 non-finite values .* map\(s\) \[1\]"):
        plot_attributions(np.array([np.ones((2, 2)), [[np.nan, 1.0], [np.inf, 0.0]]]))
    with pytest.raises(InvalidArgumentError, match="clip_percentile"):
        plot_attributions(np.zeros((1, 4, 4)), clip_percentile=60)


def inside_the_figure(figure):
    """Every text of the colour bar (caption, tick labels) lies inside the figure."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    (colorbar,) = labelled(figure, "colorbar")
    texts = [colorbar.xaxis.label, colorbar.yaxis.label] + colorbar.get_xticklabels()
    for text in texts:
        if not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        assert (extent.x0 >= box.x0 - 0.5 and extent.x1 <= box.x1 + 0.5
                and extent.y0 >= box.y0 - 0.5 and extent.y1 <= box.y1 + 0.5), (
            text.get_text(), extent, box)


@pytest.mark.parametrize("diverging", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"cols": 1, "img_size": 4.0, "titles": ["a.png"]},
                                    {"show_inputs": False}, {"img_size": 1.0}],
                         ids=["one input", "cli overlay", "map alone", "small panels"])
def test_the_colour_bar_caption_fits_in_the_figure(kwargs, diverging):
    import matplotlib.pyplot as plt
    maps = np.random.default_rng(3).normal(size=(1, 16, 16))
    images = np.random.default_rng(4).uniform(size=(1, 16, 16, 3))
    figure = plot_attributions(maps, images, diverging=diverging, **kwargs)
    try:
        inside_the_figure(figure)
    finally:
        plt.close(figure)
