"""Xplique-style metric code runs on sobol_tf: broadcast of a one-output model, the
inference functions, the Average metrics, and models that are plain Python callables.

Every expected value is computed by hand (numpy) from a model built so that the answer
is known; nothing here imports xplique.
"""
import inspect
import warnings

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, SobolTFWarning
from sobol_tf.metrics import (AverageDropMetric, AverageGainMetric, AverageIncreaseMetric,
                              Deletion, Insertion, MuFidelity)

EPS = 1e-8


def mean_model(x):
    """One output per input: the mean of its pixels, (B, 1)."""
    return tf.reduce_mean(tf.reshape(tf.cast(x, tf.float32), (tf.shape(x)[0], -1)),
                          axis=1, keepdims=True)


def deletion_by_hand(x, explanations, counts, insertion=False):
    """Area of the mean curve of mean_model when the top pixels (by explanation) are set
    to 0 (deletion) or revealed on 0 (insertion)."""
    flat_x = x.reshape(len(x), -1).astype(np.float64)
    order = np.argsort(-explanations.reshape(len(x), -1), axis=1, kind="stable")
    curve = []
    for count in counts:
        keep = np.zeros_like(flat_x, dtype=bool)
        np.put_along_axis(keep, order[:, :count], True, axis=1)
        kept = np.where(keep, flat_x, 0.0) if insertion else np.where(keep, 0.0, flat_x)
        curve.append(kept.mean(axis=1).mean())
    curve = np.array(curve)
    return float(np.mean((curve[:-1] + curve[1:]) / 2))


@pytest.fixture(scope="module")
def gray():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(4, 4, 5, 1)).astype(np.float32)
    explanations = rng.normal(size=(4, 4, 5)).astype(np.float32)
    return x, explanations


# -- item 4: one-output model, two-wide one-hot targets (Xplique broadcasts) ----------

@pytest.mark.parametrize("metric_class", [Deletion, Insertion])
def test_one_output_model_is_scored_for_every_one_hot_target(gray, metric_class):
    x, explanations = gray
    one_hot = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]  # class 1 does not exist
    with pytest.warns(SobolTFWarning, match="1 output"):
        metric = metric_class(mean_model, x, one_hot, 3, 0.0, -1)
    expected = deletion_by_hand(x, explanations, range(21),
                                insertion=metric_class is Insertion)
    assert metric(explanations) == pytest.approx(expected, abs=1e-6)
    # the same as width-1 targets: the one output, whatever the row picks
    assert metric(explanations) == pytest.approx(
        metric_class(mean_model, x, np.ones((4, 1)), steps=-1)(explanations), abs=1e-7)


def test_one_output_model_weighs_soft_rows_by_their_sum(gray):
    x, explanations = gray
    rows = np.array([[0.5, 1.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    with pytest.warns(SobolTFWarning):
        score = Deletion(mean_model, x, rows, steps=2)(explanations)
    flat = x.reshape(4, -1).astype(np.float64)
    order = np.argsort(-explanations.reshape(4, -1), axis=1, kind="stable")
    curve = []
    for count in (0, 10, 20):
        kept = flat.copy()
        np.put_along_axis(kept, order[:, :count], 0.0, axis=1)
        curve.append(np.mean(kept.mean(axis=1) * rows.sum(axis=1)))
    assert score == pytest.approx(np.mean((np.array(curve[:-1]) + curve[1:]) / 2), abs=1e-6)


def test_mufidelity_one_output_model_with_one_hot_targets(gray):
    x, _ = gray
    one_hot = np.eye(2, dtype=np.float32)[[1, 0, 1, 0]]
    with pytest.warns(SobolTFWarning):
        metric = MuFidelity(lambda b: tf.reduce_sum(b, axis=(1, 2)), x, one_hot, None,
                            None, 0.3, 0.0, 30, seed=0)
    # f = sum of pixels and phi = x: the drop is exactly the attribution of the subset
    assert metric(x[..., 0]) == pytest.approx(1.0)
    assert metric(-x[..., 0]) == pytest.approx(-1.0)


def test_several_outputs_with_one_wide_targets_is_refused(gray):
    # Xplique would score t * sum(outputs): for softmax outputs, t whatever the input.
    x, _ = gray
    two = lambda b: tf.concat([mean_model(b), -mean_model(b)], axis=1)
    with pytest.raises(InvalidArgumentError, match="width 1.*2 outputs"):
        Deletion(two, x, np.ones((4, 1), np.float32))


# -- item 4: inference_function / batch_inference_function ---------------------------

def test_inference_functions_score_the_target_with_the_activation(gray):
    x, _ = gray
    weights = np.linspace(-1, 1, 20 * 3).reshape(20, 3).astype(np.float32)
    logits = lambda b: tf.reshape(b, (tf.shape(b)[0], -1)) @ weights
    labels = np.eye(3, dtype=np.float32)[[2, 0, 1, 2]]
    metric = Deletion(logits, x, labels, 3, activation="softmax")
    probabilities = tf.nn.softmax(x.reshape(4, -1) @ weights).numpy()
    expected = probabilities[np.arange(4), [2, 0, 1, 2]]
    np.testing.assert_allclose(metric.inference_function(metric.model, x, labels), expected,
                               rtol=1e-6)
    for batch_size in (None, 1, 3):
        scores = metric.batch_inference_function(metric.model, x, labels, batch_size)
        np.testing.assert_allclose(scores, expected, rtol=1e-6)
    # the raw model, without the activation: the logit of the target
    np.testing.assert_allclose(
        metric.batch_inference_function(logits, x, labels, 2),
        (x.reshape(4, -1) @ weights)[np.arange(4), [2, 0, 1, 2]], rtol=1e-5, atol=1e-6)


def test_batch_inference_function_runs_a_numpy_model_eagerly(gray):
    x, _ = gray
    numpy_model = lambda b: np.asarray(b).reshape(len(b), -1).mean(axis=1, keepdims=True) * [
        1.0, 2.0]
    metric = Insertion(mean_model, x, np.ones((4, 1)))
    with pytest.warns(SobolTFWarning, match="eagerly"):
        scores = metric.batch_inference_function(numpy_model, x, np.eye(2)[[1, 1, 0, 0]], 2)
    means = x.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(scores, means * [2, 2, 1, 1], rtol=1e-6)


# -- item 4: AverageDrop / AverageIncrease / AverageGain -------------------------------

XPLIQUE_AVERAGE_ORDER = [("model", inspect.Parameter.empty),
                         ("inputs", inspect.Parameter.empty), ("targets", None),
                         ("batch_size", 64), ("operator", None), ("activation", None)]


@pytest.mark.parametrize("metric_class", [AverageDropMetric, AverageIncreaseMetric,
                                          AverageGainMetric])
def test_average_metrics_take_xplique_order_and_defaults(metric_class):
    parameters = list(inspect.signature(metric_class.__init__).parameters.values())[1:]
    positional = [(p.name, p.default) for p in parameters
                  if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == XPLIQUE_AVERAGE_ORDER


def masks_by_hand(explanations):
    """|phi|, averaged over channels, min-max normalised per input (eps 1e-8)."""
    masks = np.abs(explanations.astype(np.float64))
    if masks.ndim == 4:
        masks = masks.mean(axis=-1)
    low = masks.min(axis=(1, 2), keepdims=True)
    high = masks.max(axis=(1, 2), keepdims=True)
    return (masks - low) / (high - low + EPS)


def sigmoid_weighted_model(weights):
    """p(x) = sigmoid(sum(w * x)): one probability per input, (B, 1)."""
    def model(x):
        return tf.sigmoid(tf.reduce_sum(tf.cast(x, tf.float32) * weights, axis=[1, 2, 3]))[
            :, None]
    return model


@pytest.fixture(scope="module")
def average_case():
    rng = np.random.default_rng(4)  # scores 0.45 to 0.95; 2 of the 6 rise when masked
    x = rng.uniform(0.0, 1.0, size=(6, 4, 4, 3)).astype(np.float32)
    weights = rng.normal(size=(4, 4, 3)).astype(np.float32)
    explanations = rng.normal(size=(6, 4, 4, 3)).astype(np.float32)
    model = sigmoid_weighted_model(weights)
    logit = lambda batch: np.sum(batch.astype(np.float64) * weights, axis=(1, 2, 3))
    base = 1 / (1 + np.exp(-logit(x)))
    after = 1 / (1 + np.exp(-logit(x * masks_by_hand(explanations)[..., None])))
    return model, x, explanations, base, after


def test_average_drop_increase_gain_by_hand(average_case):
    model, x, explanations, base, after = average_case
    targets = np.ones((6, 1), np.float32)
    drop = np.maximum(base - after, 0) / (base + EPS)
    increase = (after > base).astype(np.float64)
    gain = np.maximum(after - base, 0) / (1 - base + EPS)
    assert 0 < increase.mean() < 1  # the case has drops and increases
    assert AverageGainMetric(model, x, targets, None)(explanations) == pytest.approx(
        gain.mean(), abs=1e-5)  # everything in one pass
    for metric_class, expected in ((AverageDropMetric, drop),
                                   (AverageIncreaseMetric, increase),
                                   (AverageGainMetric, gain)):
        metric = metric_class(model, x, targets, 4)
        assert metric(explanations) == pytest.approx(expected.mean(), abs=1e-5)
        np.testing.assert_allclose(metric.detailed_evaluate(explanations), expected,
                                   atol=1e-5)
        # Xplique's detailed_evaluate(inputs, targets, explanations) on a batch
        np.testing.assert_allclose(
            metric.detailed_evaluate(x[:2], targets[:2], explanations[:2]), expected[:2],
            atol=1e-5)


def test_average_metrics_sign_of_explanations_does_not_matter(average_case):
    model, x, explanations, _, _ = average_case
    for metric_class in (AverageDropMetric, AverageGainMetric):
        metric = metric_class(model, x, np.ones((6, 1)))
        assert metric(-explanations) == pytest.approx(metric(explanations), abs=1e-7)


def test_average_drop_of_a_perfect_explanation_is_zero():
    # f = sum of the pixels in the top-left quadrant; phi = 1 there, 0 elsewhere: the
    # mask keeps the quadrant whole, so the score does not drop (AD = 0, no increase).
    x = np.random.default_rng(5).uniform(0.5, 1.0, size=(3, 4, 4, 1)).astype(np.float32)
    model = lambda b: tf.reduce_sum(b[:, :2, :2, :], axis=(1, 2))
    phi = np.zeros((3, 4, 4), np.float32)
    phi[:, :2, :2] = 1.0
    assert AverageDropMetric(model, x, np.ones((3, 1)))(phi) == pytest.approx(0.0, abs=1e-6)
    assert AverageIncreaseMetric(model, x, np.ones((3, 1)))(phi) == 0.0
    # the opposite map masks the quadrant out: AD = 1 for every input
    assert AverageDropMetric(model, x, np.ones((3, 1)))(1 - phi) == pytest.approx(1.0, abs=1e-6)


def test_average_metrics_constant_operator_give_zero(average_case):
    _, x, explanations, _, _ = average_case
    constant = lambda model, inputs, targets: tf.ones(tf.shape(inputs)[0])
    for metric_class in (AverageDropMetric, AverageIncreaseMetric, AverageGainMetric):
        metric = metric_class(mean_model, x, np.ones((6, 1)), 3, constant)
        assert metric(explanations) == pytest.approx(0.0, abs=1e-6)


def test_average_metrics_refuse_mismatched_explanations(average_case):
    model, x, _, _, _ = average_case
    with pytest.raises(InvalidArgumentError, match="explanations"):
        AverageDropMetric(model, x, np.ones((6, 1)))(np.ones((5, 4, 4)))


# -- item 3: any Python callable mapping a batch array to scores ---------------------

def linear_weights(shape, nb_classes, seed=7):
    return np.random.default_rng(seed).normal(size=(int(np.prod(shape)), nb_classes))


def test_numpy_function_model_runs_eagerly_with_exact_scores(gray):
    x, explanations = gray
    weights = linear_weights((4, 5), 2)
    calls = []

    def numpy_model(batch):  # numpy only: TensorFlow cannot trace it
        batch = np.asarray(batch, np.float64)
        calls.append(len(batch))
        return batch.reshape(len(batch), -1) @ weights

    labels = np.array([0, 1, 1, 0])
    with pytest.warns(SobolTFWarning, match="eagerly"):
        metric = Deletion(numpy_model, x, labels, 5, 0.0, -1)
        score = metric(explanations)
    flat = x.reshape(4, -1).astype(np.float64)
    order = np.argsort(-explanations.reshape(4, -1), axis=1, kind="stable")
    chosen = weights[:, labels].T
    curve = []
    for count in range(21):
        kept = flat.copy()
        np.put_along_axis(kept, order[:, :count], 0.0, axis=1)
        curve.append(np.mean(np.sum(kept * chosen, axis=1)))
    assert score == pytest.approx(np.mean((np.array(curve[:-1]) + curve[1:]) / 2), abs=1e-5)
    assert max(calls) <= 5  # batch by batch, never more than batch_size


def test_scikit_learn_predict_proba_on_flattened_inputs(gray):
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, _ = gray
    rng = np.random.default_rng(8)
    train = rng.uniform(size=(40, 20))
    classifier = sklearn.LogisticRegression().fit(train, (train[:, 0] > 0.5).astype(int))
    model = lambda batch: classifier.predict_proba(np.asarray(batch).reshape(len(batch), -1))
    labels = np.array([1, 0, 1, 1])
    phi = rng.normal(size=(4, 4, 5)).astype(np.float32)
    with pytest.warns(SobolTFWarning, match="eagerly"):
        metric = AverageDropMetric(model, x, labels, 3)
        score = metric(phi)
    base = classifier.predict_proba(x.reshape(4, -1))[np.arange(4), labels]
    masked = x[..., 0] * masks_by_hand(phi)
    after = classifier.predict_proba(masked.reshape(4, -1))[np.arange(4), labels]
    expected = np.maximum(base - after, 0) / (base + EPS)
    assert score == pytest.approx(expected.mean(), abs=1e-5)


class ShapeReadingModule(tf.Module):
    """A tf.Module that reads the batch size as a Python int (not traceable)."""

    def __init__(self, weights):
        super().__init__()
        self.weights = tf.constant(weights, tf.float32)

    def __call__(self, x):
        return tf.reshape(x, (int(x.shape[0]), -1)) @ self.weights


def test_tf_module_reading_the_batch_size_runs_mufidelity(gray):
    x, _ = gray
    # a linear model and phi = w * x: the drop equals the subset's attribution exactly
    weights = linear_weights((4, 5), 1, seed=9)
    with pytest.warns(SobolTFWarning, match="eagerly"):
        metric = MuFidelity(ShapeReadingModule(weights), x, np.ones((4, 1)), 7, None, 0.3,
                            0.0, 25, seed=1)
    phi = x[..., 0] * weights[:, 0].reshape(4, 5)
    assert metric(phi) == pytest.approx(1.0)
    assert metric(-phi) == pytest.approx(-1.0)


def test_tf_module_runs_every_average_metric(gray):
    x, _ = gray
    weights = np.abs(linear_weights((4, 5), 1, seed=10))
    module = ShapeReadingModule(weights)
    phi = np.random.default_rng(11).normal(size=(4, 4, 5))
    base = x.reshape(4, -1) @ weights[:, 0]
    after = (x[..., 0] * masks_by_hand(phi)).reshape(4, -1) @ weights[:, 0]
    assert np.all(after <= base)  # positive weights, mask in [0, 1]: only drops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SobolTFWarning)
        drop = AverageDropMetric(module, x, np.ones((4, 1)), 2)(phi)
        increase = AverageIncreaseMetric(module, x, np.ones((4, 1)), 2)(phi)
    assert drop == pytest.approx(np.mean((base - after) / base), abs=1e-5)
    assert increase == 0.0


# -- tabular inputs (N, F), as Xplique's metrics take them ----------------------------

def test_tabular_inputs_every_metric_by_hand():
    rng = np.random.default_rng(12)
    x = rng.uniform(0.1, 1.0, size=(5, 6)).astype(np.float32)
    weights = rng.uniform(0.5, 1.5, size=(6, 2)).astype(np.float32)
    model = lambda rows: tf.cast(rows, tf.float32) @ weights  # a Dense layer, no bias
    labels = np.array([0, 1, 1, 0, 1])
    phi = rng.normal(size=(5, 6)).astype(np.float32)
    chosen = weights[:, labels].T.astype(np.float64)
    # Deletion, one feature per step
    order = np.argsort(-phi, axis=1, kind="stable")
    curve = []
    for count in range(7):
        kept = x.astype(np.float64).copy()
        np.put_along_axis(kept, order[:, :count], 0.0, axis=1)
        curve.append(np.mean(np.sum(kept * chosen, axis=1)))
    expected = np.mean((np.array(curve[:-1]) + curve[1:]) / 2)
    assert Deletion(model, x, labels, 4, 0.0, -1)(phi) == pytest.approx(expected, abs=1e-5)
    # MuFidelity: linear model and phi = w * x, whatever grid_size (ignored, as Xplique)
    exact = x * chosen
    assert MuFidelity(model, x, labels, 16, 9, 0.3, 0.0, 20, seed=0)(exact) == \
        pytest.approx(1.0)
    # Average Drop: positive weights and a mask in [0, 1] only drop the score
    masks = np.abs(phi) - np.abs(phi).min(1, keepdims=True)
    masks /= masks.max(1, keepdims=True) + EPS
    base = np.sum(x * chosen, axis=1)
    after = np.sum(x * masks * chosen, axis=1)
    assert AverageDropMetric(model, x, labels)(phi) == pytest.approx(
        np.mean((base - after) / base), abs=1e-5)
    with pytest.raises(InvalidArgumentError, match=r"\(5, 6\)"):
        Deletion(model, x, labels)(phi[:, :, None])


def test_mask_inputs_by_hand():
    rng = np.random.default_rng(13)
    x = rng.uniform(size=(2, 3, 3, 2)).astype(np.float32)
    phi = rng.normal(size=(2, 3, 3, 2)).astype(np.float32)
    expected = x * masks_by_hand(phi)[..., None]
    np.testing.assert_allclose(AverageDropMetric.mask_inputs(x, phi), expected, atol=1e-6)
    np.testing.assert_allclose(AverageDropMetric._perturb_with_mask(x, -phi), expected,
                               atol=1e-6)  # Xplique's name; the sign does not matter
    series = rng.uniform(size=(2, 5, 3)).astype(np.float32)  # (N, T, features)
    per_step = np.abs(rng.normal(size=(2, 5)))
    low, high = per_step.min(1, keepdims=True), per_step.max(1, keepdims=True)
    np.testing.assert_allclose(AverageGainMetric.mask_inputs(series, per_step),
                               series * ((per_step - low) / (high - low + EPS))[..., None],
                               atol=1e-6)


def test_keras_model_targets_checked_against_its_declared_width(gray):
    import keras

    x, explanations = gray
    keras.utils.set_random_seed(0)
    dense = keras.Sequential([keras.Input((4, 5, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    with pytest.raises(InvalidArgumentError, match="width 2 but the model has 3"):
        Deletion(dense, x, np.eye(2)[[0, 1, 0, 1]])
    one = keras.Sequential([keras.Input((4, 5, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(1)])
    with pytest.warns(SobolTFWarning, match="1 output"):
        metric = Insertion(one, x, np.eye(2)[[0, 1, 0, 1]], steps=4)
    assert metric(explanations) == pytest.approx(
        Insertion(one, x, np.ones((4, 1)), steps=4)(explanations), abs=1e-7)
