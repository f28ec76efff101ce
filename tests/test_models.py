"""What the engine does with every kind of model: several outputs, models TensorFlow
cannot trace (run eagerly), models returning non-finite values or the wrong shape."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import (IntegratedGradients, Occlusion, Rise, Saliency,
                                   SobolAttributionMethod)
from sobol_tf.errors import (InvalidArgumentError, InvalidTypeError, ModelCallError,
                             SobolTFWarning)
from sobol_tf.metrics import Deletion, MuFidelity

N, H, W, C, K = 2, 8, 8, 3, 3

EXPLAINERS = {
    "sobol": lambda model, **kw: SobolAttributionMethod(model, grid_size=2, nb_design=32,
                                                        batch_size=64, **kw),
    "rise": lambda model, **kw: Rise(model, nb_samples=32, grid_size=3, seed=0,
                                     batch_size=16, **kw),
    "occlusion": lambda model, **kw: Occlusion(model, patch_size=4, patch_stride=4, **kw),
}
METRICS = {
    "deletion": lambda model, x, y, **kw: Deletion(model, x, y, steps=4, **kw),
    "mufidelity": lambda model, x, y, **kw: MuFidelity(model, x, y, grid_size=4,
                                                       nb_samples=16, seed=0, **kw),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(N, H, W, C)).astype(np.float32)
    weights = rng.normal(size=(H, W, C, K)).astype(np.float32)
    explanations = rng.normal(size=(N, H, W)).astype(np.float32)
    return x, np.array([0, 2]), weights, explanations


def tf_model(weights):
    """Linear scores (B, K) of the pixels, in TensorFlow."""
    return lambda x: tf.einsum("bhwc,hwck->bk", x, weights)


# -- several outputs (issue 11, item 7) ----------------------------------------------------
@pytest.fixture(scope="module")
def two_heads(data):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((H, W, C))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    head0 = keras.layers.Dense(2, name="head0")(pooled)
    head1 = keras.layers.Dense(K, activation="softmax", name="head1")(pooled)
    model = keras.Model(inputs, [head0, head1])
    single = keras.Model(inputs, head1)
    return model, single


def pick_head1(model, inputs, targets):
    return tf.reduce_sum(model(inputs)[1] * targets, axis=-1)


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_an_operator_picks_one_output_of_a_two_head_model(name, two_heads, data):
    model, single = two_heads
    x, labels, _, _ = data
    one_hot = np.eye(K, dtype=np.float32)[labels]
    maps = EXPLAINERS[name](model, operator=pick_head1).explain(x, one_hot)
    expected = EXPLAINERS[name](single).explain(x, labels)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(expected), atol=1e-5)
    assert np.abs(np.asarray(expected)).max() > 0


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_score_one_output_of_a_two_head_model(name, two_heads, data):
    model, single = two_heads
    x, labels, _, explanations = data
    one_hot = np.eye(K, dtype=np.float32)[labels]
    score = METRICS[name](model, x, one_hot, operator=pick_head1)(explanations)
    expected = METRICS[name](single, x, labels)(explanations)
    assert score == pytest.approx(expected, abs=1e-5)


def test_dict_outputs_reach_the_operator(data):
    x, labels, weights, _ = data
    linear = tf_model(weights)
    model = lambda inputs: {"aux": tf.zeros((tf.shape(inputs)[0], 1)), "main": linear(inputs)}
    operator = lambda m, inputs, targets: tf.reduce_sum(m(inputs)["main"] * targets, -1)
    one_hot = np.eye(K, dtype=np.float32)[labels]
    maps = EXPLAINERS["occlusion"](model, operator=operator).explain(x, one_hot)
    expected = EXPLAINERS["occlusion"](linear).explain(x, labels)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(expected), atol=1e-5)


def test_built_in_operators_name_the_output_structure(two_heads, data):
    model, _ = two_heads
    x, labels, _, explanations = data
    for make in (lambda: EXPLAINERS["occlusion"](model).explain(x, labels),
                 lambda: Deletion(model, x, labels)):
        with pytest.raises(InvalidTypeError, match=r"(?s)a list of 2 tensors.*operator="):
            make()
    dict_model = lambda inputs: {"a": inputs[:, 0, 0, :], "b": inputs[:, 1, 1, :]}
    with pytest.raises(InvalidTypeError, match=r"a dict with keys \['a', 'b'\]") as info:
        EXPLAINERS["occlusion"](dict_model, operator="regression").explain(
            x, np.ones((N, C), np.float32))
    # the suggested operator indexes the dict by one of its keys, not by a position
    assert "model(x)['a']" in str(info.value) and "model(x)[1]" not in str(info.value)
    with pytest.raises(InvalidTypeError, match=r"model\(x\)\[1\]"):
        EXPLAINERS["occlusion"](model).explain(x, labels)


def test_several_outputs_need_target_rows_with_an_operator(two_heads, data):
    model, _ = two_heads
    x, labels, _, explanations = data
    for targets in (None, labels):
        with pytest.raises(InvalidArgumentError, match=r"(?s)several outputs.*\(N, K\)"):
            EXPLAINERS["occlusion"](model, operator=pick_head1).explain(x, targets)
        with pytest.raises(InvalidArgumentError, match=r"(?s)several outputs.*\(N, K\)"):
            Deletion(model, x, targets, operator=pick_head1)


# -- models TensorFlow cannot trace (issue 11, item 8) --------------------------------------
class ProbaClassifier:
    """A scikit-learn-like classifier: predict_proba works on numpy arrays only."""

    def __init__(self, weights):
        self.weights = weights

    def predict_proba(self, x):
        x = np.asarray(x, np.float64)
        return np.einsum("bhwc,hwck->bk", x, self.weights)


class ShapeReadingModule(tf.Module):
    """Reads the batch size as a Python int: fails when traced with an unknown batch."""

    def __init__(self, weights):
        super().__init__()
        self.weights = tf.constant(weights)

    def __call__(self, x):
        rows = int(x.shape[0])
        return tf.reshape(tf.einsum("bhwc,hwck->bk", x, self.weights), (rows, K))


def numpy_function(weights):
    return lambda x: np.einsum("bhwc,hwck->bk", np.asarray(x), weights)


UNTRACEABLE = {
    "numpy function": numpy_function,
    "predict_proba": lambda weights: ProbaClassifier(weights).predict_proba,
    "tf.Module reading int(x.shape[0])": ShapeReadingModule,
}


def run_counting_warnings(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    ours = [w for w in caught if issubclass(w.category, SobolTFWarning)]
    return result, ours


@pytest.mark.parametrize("kind", sorted(UNTRACEABLE))
@pytest.mark.parametrize("name", ["sobol", "occlusion"])
def test_untraceable_models_run_eagerly(kind, name, data):
    x, labels, weights, _ = data
    expected = EXPLAINERS[name](tf_model(weights)).explain(x, labels)
    maps, caught = run_counting_warnings(
        lambda: EXPLAINERS[name](UNTRACEABLE[kind](weights)).explain(x, labels))
    np.testing.assert_allclose(np.asarray(maps), np.asarray(expected), atol=1e-5)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "eagerly" in str(caught[0].message)


@pytest.mark.parametrize("kind", sorted(UNTRACEABLE))
def test_untraceable_models_are_scored_eagerly(kind, data):
    x, labels, weights, explanations = data
    expected = METRICS["deletion"](tf_model(weights), x, labels)(explanations)
    score, caught = run_counting_warnings(
        lambda: METRICS["deletion"](UNTRACEABLE[kind](weights), x, labels)(explanations))
    assert score == pytest.approx(expected, abs=1e-5)
    assert len(caught) == 1, [str(w.message) for w in caught]


def test_a_model_failing_eagerly_too_gives_the_real_cause(data):
    x, labels, weights, _ = data

    def broken(inputs):
        array = np.asarray(inputs)
        raise KeyError("the real cause")

    with pytest.raises(ModelCallError, match=r"(?s)the real cause.*\(B, K\)"):
        EXPLAINERS["occlusion"](broken).explain(x, labels)


def test_gradient_methods_refuse_untraceable_models(data):
    x, labels, weights, _ = data
    with pytest.raises(ModelCallError, match="TensorFlow"):
        Saliency(numpy_function(weights)).explain(x, labels)


# -- non-finite scores (issue 11, item 4) ---------------------------------------------------
def overflowing(weights):
    """Finite on the clean inputs, +inf when a pixel of the first row is exactly 0."""
    linear = tf_model(weights)

    def model(x):
        zeros = tf.reduce_any(tf.equal(x[:, 0, :, :], 0.0), axis=[1, 2])
        return linear(x) + tf.where(zeros, np.inf, 0.0)[:, None]

    return model


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_non_finite_perturbed_scores_raise(name, data):
    x, labels, weights, _ = data
    with pytest.raises(ModelCallError, match=r"(?s)non-finite.*\+inf.*perturb"):
        EXPLAINERS[name](overflowing(weights)).explain(x, labels)


def test_non_finite_scores_on_clean_inputs_are_counted(data):
    x, labels, weights, explanations = data
    nan_on_second = lambda inputs: tf_model(weights)(inputs) * tf.where(
        inputs[:, 0, 0, 0] == x[1, 0, 0, 0], np.nan, 1.0)[:, None]
    with pytest.raises(ModelCallError, match=r"(?s)3 of 6 .*NaN.*input 1\b.*clean inputs"):
        EXPLAINERS["occlusion"](nan_on_second).explain(x, labels)
    with pytest.raises(ModelCallError, match="NaN"):
        Deletion(nan_on_second, x, labels)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_raise_on_non_finite_scores(name, data):
    x, labels, weights, explanations = data
    with pytest.raises(ModelCallError, match=r"(?s)non-finite.*\+inf"):
        METRICS[name](overflowing(weights), x, labels)(explanations)


def test_non_finite_gradients_raise(data):
    x, labels, weights, _ = data
    sqrt_model = lambda inputs: tf_model(weights)(tf.sqrt(inputs - inputs))
    with pytest.raises(ModelCallError, match=r"(?s)non-finite.*gradients"):
        Saliency(sqrt_model).explain(x, labels)
    with pytest.raises(ModelCallError, match=r"non-finite"):
        IntegratedGradients(sqrt_model, steps=4).explain(x, labels)


# -- outputs of the wrong shape ----------------------------------------------------------
BATCH_MISMATCH = r"1 rows? of outputs for a batch of 2 inputs|another number of inputs"


def test_a_model_returning_another_batch_size_is_refused(data):
    x, labels, weights, explanations = data
    first_only = lambda inputs: tf_model(weights)(inputs)[:1]
    with pytest.raises(ModelCallError, match=BATCH_MISMATCH):
        EXPLAINERS["occlusion"](first_only).explain(x, labels)
    with pytest.raises(ModelCallError, match=BATCH_MISMATCH):
        Deletion(first_only, x, labels)


def test_run_eagerly_can_be_asked_for(data):
    x, labels, weights, explanations = data
    model = tf_model(weights)
    expected = EXPLAINERS["occlusion"](model).explain(x, labels)
    explainer = EXPLAINERS["occlusion"](model)
    explainer.run_eagerly = True
    maps, caught = run_counting_warnings(lambda: explainer.explain(x, labels))
    np.testing.assert_allclose(np.asarray(maps), np.asarray(expected), atol=1e-5)
    assert explainer.run_eagerly and not caught
    traced = []
    spy = lambda inputs: traced.append(tf.executing_eagerly()) or model(inputs)
    explainer = EXPLAINERS["occlusion"](spy)
    explainer.run_eagerly = True
    explainer.explain(x, labels)
    assert traced and all(traced)


def test_an_operator_returning_a_row_per_input_is_refused(data):
    """g(model, inputs, targets) must reduce to one score per input (B,)."""
    x, labels, weights, explanations = data
    forgot_to_reduce = lambda model, inputs, targets: model(inputs) * targets
    one_hot = np.eye(K, dtype=np.float32)[labels]
    for make in (lambda: EXPLAINERS["occlusion"](tf_model(weights),
                                                 operator=forgot_to_reduce).explain(x, one_hot),
                 lambda: METRICS["deletion"](tf_model(weights), x, one_hot,
                                             operator=forgot_to_reduce)(explanations),
                 lambda: METRICS["mufidelity"](tf_model(weights), x, one_hot,
                                               operator=forgot_to_reduce)(explanations)):
        with pytest.raises(ModelCallError, match=r"scores of shape \(\d+, 3\).*one score"):
            make()
