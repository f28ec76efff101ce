"""Deletion and Insertion against curves known in closed form."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.metrics import CausalCurves, Deletion, Insertion
from sobol_tf.metrics.fidelity import curve_area

from tests.metrics.models import LinearModel


# -- a 2x2 image, by hand ------------------------------------------------------------------
W22 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[..., None]
X22 = np.ones((1, 2, 2, 1), np.float32)
E22 = np.array([[[0.1, 0.4], [0.3, 0.2]]])   # order: w=2, w=3, w=4, w=1
ZERO = np.array([0])


def test_deletion_curve_by_hand():
    metric = Deletion(LinearModel(W22), X22, ZERO, steps=4)
    assert metric.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 8, 2: 5, 3: 1, 4: 0})
    assert metric.evaluate(E22) == pytest.approx((9 + 6.5 + 3 + 0.5) / 4)
    assert metric(E22) == metric.evaluate(E22)


def test_insertion_curve_by_hand():
    metric = Insertion(LinearModel(W22), X22, ZERO, steps=4)
    assert metric.detailed_evaluate(E22) == pytest.approx({0: 0, 1: 2, 2: 5, 3: 9, 4: 10})
    assert metric(E22) == pytest.approx((1 + 3.5 + 7 + 9.5) / 4)


def test_steps_and_max_percentage_by_hand():
    model = LinearModel(W22)
    assert Deletion(model, X22, ZERO, steps=2).detailed_evaluate(E22) == pytest.approx(
        {0: 10, 2: 5, 4: 0})
    half = Deletion(model, X22, ZERO, steps=2, max_percentage_perturbed=0.5)
    assert half.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 8, 2: 5})
    # floor(k * 3 / 2): counts 0, 1, 3 when 3 features of 4 may be perturbed
    three = Deletion(model, X22, ZERO, steps=2, max_percentage_perturbed=0.75)
    assert list(three.detailed_evaluate(E22)) == [0, 1, 3]
    # more steps than features: one step per feature
    many = Deletion(model, X22, ZERO, steps=50)
    assert many.steps == 4 and list(many.detailed_evaluate(E22)) == [0, 1, 2, 3, 4]
    assert Deletion(model, X22, ZERO, steps=-1).steps == 4


def test_ties_follow_the_pixel_order():
    metric = Deletion(LinearModel(W22), X22, ZERO, steps=4)
    flat = np.zeros((1, 2, 2))
    assert metric.detailed_evaluate(flat) == pytest.approx({0: 10, 1: 9, 2: 7, 3: 4, 4: 0})


def test_constant_baseline_and_callable_baseline_by_hand():
    model = LinearModel(W22)
    half = Deletion(model, X22, ZERO, steps=4, baseline_mode=0.5)
    assert half.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 9, 2: 7.5, 3: 5.5, 4: 5})
    per_pixel = Deletion(model, X22, ZERO, steps=4,
                         baseline_mode=lambda x: x * np.array([[0, 1], [1, 1]])[..., None])
    # only the w=1 pixel goes to 0, the others keep their value
    assert per_pixel.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 10, 2: 10, 3: 10, 4: 9})


def test_constant_curve_scores_its_value():
    constant = lambda x: tf.ones((tf.shape(x)[0], 2)) * 0.7
    score = Deletion(constant, X22, ZERO, steps=3)(E22)
    assert score == pytest.approx(0.7)
    assert curve_area(np.full((2, 5), 3.0)) == pytest.approx([3.0, 3.0])


# -- a linear model: the exact ranking is optimal ----------------------------------------------
@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_exact_ranking_is_the_best_and_inverted_the_worst(linear_case, baseline):
    model, x, weights = linear_case
    contributions = np.sum(weights * (x - baseline), axis=-1)     # (N, H, W)
    targets = np.zeros(len(x), int)
    deletion = Deletion(model, x, targets, steps=-1, baseline_mode=baseline, batch_size=50)
    insertion = Insertion(model, x, targets, steps=-1, baseline_mode=baseline, batch_size=50)

    # closed form: f(x) minus the sum of the k largest contributions, f(baseline) plus it
    f = np.sum(weights * x, axis=(1, 2, 3))
    f_baseline = baseline * weights.sum()
    top = np.concatenate([np.zeros((4, 1)), np.cumsum(
        -np.sort(-contributions.reshape(4, -1), axis=1), axis=1)], axis=1)
    curves = deletion.curves(contributions)
    np.testing.assert_allclose(curves.scores, f[:, None] - top, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(insertion.curves(contributions).scores,
                               f_baseline + top,
                               rtol=1e-4, atol=1e-4)

    best_deletion, worst_deletion = deletion(contributions), deletion(-contributions)
    best_insertion, worst_insertion = insertion(contributions), insertion(-contributions)
    rng = np.random.default_rng(1)
    for _ in range(5):
        random = rng.normal(size=contributions.shape)
        assert best_deletion < deletion(random) < worst_deletion
        assert worst_insertion < insertion(random) < best_insertion


def test_channels_are_averaged_with_their_sign(linear_case):
    model, x, weights = linear_case
    metric = Deletion(model, x, np.zeros(4, int), steps=6)
    rng = np.random.default_rng(2)
    per_channel = rng.normal(size=x.shape)
    expected = metric(per_channel.mean(axis=-1))
    assert metric(per_channel) == pytest.approx(expected)
    assert metric(per_channel.mean(axis=-1, keepdims=True)) == pytest.approx(expected)
    assert metric(np.abs(per_channel)) != pytest.approx(expected)


def test_per_input_curves_agree_with_the_mean(linear_case):
    model, x, _ = linear_case
    metric = Insertion(model, x, np.zeros(4, int), steps=5)
    explanations = np.random.default_rng(3).normal(size=x.shape[:3])
    curves = metric.curves(explanations)
    assert isinstance(curves, CausalCurves)
    assert curves.scores.shape == (4, 6) and curves.areas.shape == (4,)
    assert list(metric.detailed_evaluate(explanations).values()) == pytest.approx(
        curves.scores.mean(axis=0))
    assert metric(explanations) == pytest.approx(curves.areas.mean())
    # Xplique's formula on the mean curve gives the same score
    means = curves.scores.mean(axis=0)
    assert metric(explanations) == pytest.approx(np.mean(means[:-1] + means[1:]) * 0.5)


# -- a convnet: the batched engine equals the definition -----------------------------------
def box_blur(x):
    return tf.nn.avg_pool2d(tf.convert_to_tensor(x), 3, 1, "SAME")


def reference_curve(model, x, labels, explanations, counts, baseline, deletion):
    """The definition, one step at a time, in numpy."""
    n, h, w, c = x.shape
    order = np.argsort(-explanations.reshape(n, -1), axis=1, kind="stable")
    curve = []
    for count in counts:
        start, end = (x, baseline) if deletion else (baseline, x)
        batch = start.reshape(n, h * w, c).copy()
        for i in range(n):
            batch[i, order[i, :count]] = end.reshape(n, h * w, c)[i, order[i, :count]]
        outputs = np.asarray(model(batch.reshape(x.shape)))
        curve.append(outputs[np.arange(n), labels])
    return np.stack(curve, axis=1)


@pytest.mark.parametrize("metric_class", [Deletion, Insertion])
def test_batched_curves_equal_the_definition(convnet_case, metric_class):
    model, x, labels, explanations = convnet_case
    metric = metric_class(model, x, labels, steps=7, baseline_mode=box_blur, batch_size=5)
    expected = reference_curve(model, x, labels, explanations, metric.counts,
                               np.asarray(box_blur(x)), metric_class is Deletion)
    np.testing.assert_allclose(metric.curves(explanations).scores, expected, atol=1e-5)
