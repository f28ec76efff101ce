"""plot_metric_curves draws every method's curve on one axis."""
import numpy as np
import pytest

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics import CausalCurves, Deletion
from sobol_tf.plots import plot_metric_curves


def test_one_line_per_method_with_its_area():
    curves = {"exact": {0: 1.0, 5: 0.5, 10: 0.0}, "random": {10: 0.5, 0: 1.0, 5: 0.75}}
    figure = plot_metric_curves(curves, title="Deletion")
    (axis,) = figure.axes
    assert axis.get_title() == "Deletion"
    assert axis.get_xlabel() == "features perturbed"
    lines = axis.get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 5, 10])
    np.testing.assert_array_equal(lines[0].get_ydata(), [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(lines[1].get_ydata(), [1.0, 0.75, 0.5])  # sorted by count
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert labels == ["exact (area 0.500)", "random (area 0.750)"]


def test_per_input_curves_show_their_mean_and_spread():
    scores = np.array([[1.0, 0.2, 0.0], [1.0, 0.6, 0.2]])
    curves = CausalCurves(counts=np.array([0, 2, 4]), scores=scores, areas=None)
    figure = plot_metric_curves({"method": curves})
    axis = figure.axes[0]
    np.testing.assert_allclose(axis.get_lines()[0].get_ydata(), [1.0, 0.4, 0.1])
    assert len(axis.collections) == 1                       # the ± std band
    plot_metric_curves({"method": curves}, ax=axis, band=False)
    assert len(axis.get_lines()) == 2 and len(axis.collections) == 1


def test_draws_on_a_given_axis_with_a_metric():
    import matplotlib.pyplot as plt
    import tensorflow as tf

    model = lambda x: tf.reduce_sum(x, axis=[1, 2, 3])[:, None]
    x = np.random.default_rng(0).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    metric = Deletion(model, x, np.zeros(2, int), steps=4)
    figure, (left, right) = plt.subplots(1, 2)
    returned = plot_metric_curves({"x": metric.detailed_evaluate(x[..., 0]),
                                   "-x": metric.detailed_evaluate(-x[..., 0])}, ax=right)
    assert returned is figure
    assert len(right.get_lines()) == 2 and not left.get_lines()
    exact, inverted = right.get_lines()
    assert np.all(exact.get_ydata() <= inverted.get_ydata())


def test_bad_curves():
    with pytest.raises(InvalidArgumentError, match="non-empty dict"):
        plot_metric_curves({})
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        plot_metric_curves({"a": {0: 1.0}})
    with pytest.raises(InvalidTypeError, match=r"curves\['a'\]"):
        plot_metric_curves({"a": [1.0, 0.5]})
