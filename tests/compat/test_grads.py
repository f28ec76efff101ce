"""Xplique-style calls of the gradient methods: positional order, batch_size=None, reducer.

Written for sobol_tf (no xplique import): each call is made the way an Xplique user
writes it, and the maps are checked against closed forms on models built so that the
right answer is known.
"""
import contextlib

import numpy as np
import pytest
import tensorflow as tf
import keras

from sobol_tf.attributions import (DeconvNet, GradientInput, GuidedBackprop,
                                   IntegratedGradients, Saliency, SmoothGrad, SquareGrad,
                                   VarGrad)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning

SHAPE = (4, 5, 3)
LABELS = [0, 1, 1]
REDUCE = {"mean": np.mean, "min": np.min, "max": np.max, "sum": np.sum}


def linear_model(seed=0):
    """Flatten + Dense(2, name 'logits') + Softmax, known weights W (4, 5, 3, 2), bias."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=SHAPE + (2,)).astype(np.float32)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(2, name="logits"), keras.layers.Softmax()])
    model.get_layer("logits").set_weights([weights.reshape(-1, 2),
                                           np.array([0.3, -0.2], np.float32)])
    return model, weights


@pytest.fixture(scope="module")
def linear():
    return linear_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).uniform(-1, 1, size=(3,) + SHAPE).astype(np.float32)


def per_label(weights):
    return np.stack([weights[..., label] for label in LABELS])     # (3, 4, 5, 3)


def reduced(values, reducer):
    return values if reducer is None else REDUCE[reducer](values, axis=-1, keepdims=True)


# -- item 1: Xplique's positional order, batch_size=None ---------------------------------

@pytest.mark.parametrize("batch_size", [None, 2])
def test_positional_order_model_output_layer_batch_size_operator_reducer(linear, x,
                                                                         batch_size):
    model, weights = linear
    w = per_label(weights)
    saliency = Saliency(model, "logits", batch_size, None, "sum")(x, LABELS).numpy()
    np.testing.assert_allclose(saliency, np.abs(w).sum(-1, keepdims=True), rtol=1e-5)
    # IntegratedGradients(model, output_layer, batch_size, operator, reducer, steps,
    # baseline_value): exact on the logits of a linear model
    ig = IntegratedGradients(model, "logits", batch_size, None, "max", 3, 0.25)(
        x, LABELS).numpy()
    np.testing.assert_allclose(ig, ((x - 0.25) * w).max(-1, keepdims=True), rtol=1e-4,
                               atol=1e-6)
    # SmoothGrad(model, output_layer, batch_size, operator, reducer, nb_samples, noise)
    smooth = SmoothGrad(model, -2, batch_size, "classification", "min", 4, 0.3)
    assert (smooth.nb_samples, smooth.noise, smooth.batch_size) == (4, 0.3, batch_size)
    np.testing.assert_allclose(smooth(x, LABELS).numpy(), w.min(-1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method, defaults", [
    (Saliency, {"batch_size": 32, "reducer": "max"}),
    (IntegratedGradients, {"batch_size": 32, "reducer": "mean", "steps": 50,
                           "baseline_value": 0.0}),
    (SmoothGrad, {"batch_size": 32, "reducer": "mean", "nb_samples": 50, "noise": 0.2}),
    (SquareGrad, {"batch_size": 32, "reducer": "mean", "nb_samples": 50, "noise": 0.2}),
    (VarGrad, {"batch_size": 32, "reducer": "mean", "nb_samples": 50, "noise": 0.2}),
    (GradientInput, {"batch_size": 64, "reducer": "mean"}),
    (GuidedBackprop, {"batch_size": 32, "reducer": "mean"}),
    (DeconvNet, {"batch_size": 32, "reducer": "mean"}),
])
def test_xplique_defaults(linear, method, defaults):
    guided = method in (GuidedBackprop, DeconvNet)       # the linear model has no ReLU
    with pytest.warns(SobolTFWarning) if guided else contextlib.nullcontext():
        explainer = method(linear[0])
    assert explainer.output_layer is None and explainer.operator.name == "classification"
    for name, value in defaults.items():
        assert getattr(explainer, name) == value, name


@pytest.mark.parametrize("call", [
    lambda m: Saliency(m, None, 2, None, "max", True),                 # verbose
    lambda m: SmoothGrad(m, None, 2, None, "mean", 4, 0.1, 0),         # seed
    lambda m: GradientInput(m, None, 2, None, "mean", True),
])
def test_our_extras_are_keyword_only(linear, call):
    with pytest.raises(TypeError):
        call(linear[0])


# -- item 5: reducer ---------------------------------------------------------------------

REDUCERS = ["mean", "min", "max", "sum", None]


@pytest.mark.parametrize("reducer", REDUCERS)
def test_reducer_on_a_linear_model(linear, x, reducer):
    """Gradient of the logit = W: each method's per-channel map, then Xplique's reducer
    over the channels (None keeps them)."""
    model, weights = linear
    w = per_label(weights)
    expected = {
        Saliency: np.abs(w),                          # the magnitude, then the reducer
        IntegratedGradients: x * w,                   # sign kept
        SmoothGrad: w,
        GradientInput: x * w,
        SquareGrad: w ** 2,
        GuidedBackprop: w,                            # no ReLU: the plain gradient
        DeconvNet: w,
    }
    extras = {IntegratedGradients: {"steps": 2}, SmoothGrad: {"nb_samples": 3, "seed": 0},
              SquareGrad: {"nb_samples": 3, "seed": 0}}
    # every method's per-channel map with None; the reducers (one code path, applied after
    # each method's statistic) on the methods whose statistic is not the identity
    methods = expected if reducer is None else (Saliency, SquareGrad, GradientInput)
    for method in methods:
        values = expected[method]
        guided = method in (GuidedBackprop, DeconvNet)
        with pytest.warns(SobolTFWarning) if guided else contextlib.nullcontext():
            explainer = method(model, output_layer="logits", reducer=reducer,
                               **extras.get(method, {}))
        maps = explainer(x, LABELS).numpy()
        want = reduced(values, reducer)
        assert maps.shape == want.shape, method.__name__
        np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-5, err_msg=method.__name__)


def test_integrated_gradients_default_is_the_channel_mean_sum_keeps_completeness(x):
    """Xplique's default reduces IG with the mean over channels (3x smaller than the sum
    on RGB); reducer='sum' gives a map whose total is f(x) - f(baseline)."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(3, 2, activation="tanh"),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    mean_maps = IntegratedGradients(model, steps=64)(x, LABELS).numpy()
    sum_maps = IntegratedGradients(model, None, 32, None, "sum", 64)(x, LABELS).numpy()
    np.testing.assert_allclose(sum_maps, 3 * mean_maps, rtol=1e-4, atol=1e-6)
    outputs = model(x).numpy() - model(np.zeros_like(x)).numpy()
    np.testing.assert_allclose(sum_maps.sum(axis=(1, 2, 3)),
                               outputs[np.arange(3), LABELS], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("reducer, error", [("median", InvalidArgumentError),
                                            ("MEAN ", InvalidArgumentError),
                                            (1, InvalidTypeError), (np.mean, InvalidTypeError)])
def test_bad_reducer(linear, reducer, error):
    with pytest.raises(error, match="reducer"):
        Saliency(linear[0], None, 32, None, reducer)


# -- item 8: new white-box methods -------------------------------------------------------

def test_gradient_input_of_a_linear_model_is_w_times_x(linear, x):
    model, weights = linear
    maps = GradientInput(model, "logits", None, None, None)(x, LABELS).numpy()
    np.testing.assert_allclose(maps, x * per_label(weights), rtol=1e-5, atol=1e-7)


def quadratic(inputs):
    f = tf.reduce_sum(tf.square(inputs), axis=[1, 2, 3])
    return tf.stack([f, -f], axis=-1)


def test_square_grad_and_var_grad_of_a_linear_model(linear, x):
    """Constant gradient W: SquareGrad is W^2, VarGrad is 0, whatever the noise."""
    model, weights = linear
    w = per_label(weights)
    square = SquareGrad(model, "logits", 4, None, None, 5, 0.7, seed=0)(x, LABELS).numpy()
    np.testing.assert_allclose(square, w ** 2, rtol=1e-4)
    variance = VarGrad(model, "logits", 4, None, "max", 5, 0.7, seed=0)(x, LABELS).numpy()
    assert np.abs(variance).max() < 1e-5 * (w ** 2).max()


def test_square_grad_and_var_grad_of_a_quadratic():
    """f = sum x^2, gradient 2 (x + eps) with eps ~ N(0, s^2): E[g^2] = 4 x^2 + 4 s^2 and
    Var(g) = 4 s^2 (an unbiased estimate over nb_samples draws)."""
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 4, 4, 2)).astype(np.float32)
    noise, samples = 0.5, 2000
    square = SquareGrad(quadratic, None, 512, None, None, samples, noise, seed=0)(
        x, [0, 0]).numpy()
    # sd of the mean of 4 (x + eps)^2 over n draws <= 4 sqrt(4 x^2 s^2 + 2 s^4) / sqrt(n)
    bound = 5 * 4 * np.sqrt(4 * x ** 2 * noise ** 2 + 2 * noise ** 4) / np.sqrt(samples)
    assert np.all(np.abs(square - (4 * x ** 2 + 4 * noise ** 2)) < bound)
    variance = VarGrad(quadratic, None, 512, None, None, samples, noise, seed=0)(
        x, [0, 0]).numpy()
    # sd of a sample variance of a normal law: sigma^2 sqrt(2 / (n - 1)), sigma = 2 s
    assert np.all(np.abs(variance - 4 * noise ** 2) < 5 * 4 * noise ** 2 * np.sqrt(2 / samples))
    # the default reducer: mean over the channels
    default = VarGrad(quadratic, nb_samples=samples, noise=noise, seed=0, batch_size=512)(
        x, [0, 0]).numpy()
    np.testing.assert_allclose(default, variance.mean(-1, keepdims=True), rtol=1e-5)


def test_var_grad_needs_two_samples(linear):
    with pytest.raises(InvalidArgumentError, match="nb_samples must be an integer >= 2"):
        VarGrad(linear[0], nb_samples=1)


def relu_net(style):
    """x (2, 2, 2) -> Flatten -> Dense(3) -> ReLU -> Dense(2): the ReLU written as an
    activation, a ReLU layer, an Activation layer, or inside a nested model."""
    rng = np.random.default_rng(5)
    hidden = rng.normal(size=(8, 3)).astype(np.float32)
    bias = np.array([0.2, -0.1, 0.05], np.float32)
    head = rng.normal(size=(3, 2)).astype(np.float32)
    head[:, 0] = [1.5, -2.0, 0.7]       # a negative weight: guided/deconv differ from grad
    inputs = keras.Input((2, 2, 2))
    flat = keras.layers.Flatten()(inputs)
    if style == "activation":
        dense = keras.layers.Dense(3, activation="relu", name="hidden")
        features = dense(flat)
    else:
        dense = keras.layers.Dense(3, name="hidden")
        relu = (keras.layers.ReLU() if style in ("layer", "nested")
                else keras.layers.Activation("relu"))
        features = relu(dense(flat))
    if style == "nested":
        inner = keras.Model(inputs, features, name="backbone")
        outer_inputs = keras.Input((2, 2, 2))
        out = keras.layers.Dense(2, name="head")(inner(outer_inputs))
        model = keras.Model(outer_inputs, out)
    else:
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(features))
    model.get_layer("head").set_weights([head, np.zeros(2, np.float32)])
    (inner if style == "nested" else model).get_layer("hidden").set_weights([hidden, bias])
    return model, hidden, bias, head


@pytest.mark.parametrize("style", ["activation", "layer", "keras_activation", "nested"])
def test_guided_backprop_and_deconvnet_of_a_one_hidden_layer_relu_net(style):
    """score = v . relu(W x + b), with v the head's column of the target:
    gradient = W (v * [z > 0]); guided = W (relu(v) * [z > 0]); deconv = W relu(v)."""
    model, hidden, bias, head = relu_net(style)
    x = np.random.default_rng(6).normal(size=(4, 2, 2, 2)).astype(np.float32)
    labels = [0, 1, 0, 0]
    z = x.reshape(4, 8) @ hidden + bias
    v = head[:, labels].T                                          # (4, 3)
    active = (z > 0).astype(np.float32)
    assert active.min() == 0 and active.max() == 1 and (v < 0).any()
    expected = {
        "plain": (v * active) @ hidden.T,
        "guided": (np.maximum(v, 0) * active) @ hidden.T,
        "deconv": np.maximum(v, 0) @ hidden.T,
    }
    guided = GuidedBackprop(model, None, 3, None, None)(x, labels).numpy()
    deconv = DeconvNet(model, None, None, None, None)(x, labels).numpy()
    np.testing.assert_allclose(guided.reshape(4, 8), expected["guided"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(deconv.reshape(4, 8), expected["deconv"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected["guided"], expected["plain"])
    assert not np.allclose(expected["deconv"], expected["guided"])
    # the caller's model keeps its own gradients and outputs
    after = GradientInput(model, reducer=None)(x, labels).numpy() / x
    np.testing.assert_allclose(after.reshape(4, 8), expected["plain"], rtol=1e-4, atol=1e-5)
    # default reducer: mean over the 2 channels
    np.testing.assert_allclose(GuidedBackprop(model)(x, labels).numpy(),
                               guided.mean(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_guided_backprop_keeps_a_relu_layers_max_value_and_threshold():
    """ReLU(max_value=1, threshold=0.5): the clone computes the same outputs, and the
    guided gradient passes only where the ReLU's own slope is 1 (0.5 < z < 1)."""
    inputs = keras.Input((1, 1, 4))
    flat = keras.layers.Flatten()(inputs)
    z = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")(flat)
    out = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(
        keras.layers.ReLU(max_value=1.0, threshold=0.5)(z))
    model = keras.Model(inputs, out)
    x = np.array([0.2, 0.7, 0.9, 1.5], np.float32).reshape(1, 1, 1, 4)
    explainer = GuidedBackprop(model, reducer=None, operator="regression")
    np.testing.assert_allclose(explainer.model(x), model(x))
    maps = explainer(x, [[1.0]]).numpy().ravel()
    np.testing.assert_array_equal(maps, [0.0, 1.0, 1.0, 0.0])
    deconv = DeconvNet(model, reducer=None, operator="regression")(x, [[1.0]]).numpy().ravel()
    np.testing.assert_array_equal(deconv, [1.0, 1.0, 1.0, 1.0])


def test_guided_methods_refuse_what_they_cannot_rewrite():
    with pytest.raises(InvalidTypeError, match="GuidedBackprop needs a Keras"):
        GuidedBackprop(lambda inputs: inputs)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2, activation="relu")

        def call(self, inputs):
            return self.dense(keras.ops.reshape(inputs, (-1, 4)))

    with pytest.raises(InvalidTypeError, match="DeconvNet needs a Keras"):
        DeconvNet(Subclassed())


def test_guided_backprop_warns_when_the_model_has_no_relu(linear):
    with pytest.warns(SobolTFWarning, match="no ReLU"):
        GuidedBackprop(linear[0])


def test_guided_methods_accept_lambda_layers_and_tf_nn_relu():
    """Activation(tf.nn.relu) then Lambda(-t^2): the gradient -2 relu(x) is negative where
    the ReLU is active, so Guided Backpropagation and DeconvNet pass nothing back."""
    inputs = keras.Input((1, 1, 4))
    squared = keras.layers.Lambda(lambda t: -tf.reshape(t, (-1, 4)) ** 2)(
        keras.layers.Activation(tf.nn.relu)(inputs))
    model = keras.Model(inputs, squared)
    x = np.array([5.0, 0.0, -5.0, 10.0], np.float32).reshape(1, 1, 1, 4)
    weights = np.ones((1, 4), np.float32)          # score = sum of the outputs
    plain = GradientInput(model, reducer=None)(x, weights).numpy().ravel()
    np.testing.assert_allclose(plain, x.ravel() * -2 * np.maximum(x.ravel(), 0))
    for method in (GuidedBackprop, DeconvNet):
        np.testing.assert_array_equal(method(model, reducer=None)(x, weights).numpy(), 0.0)


def test_guided_methods_name_a_layer_they_cannot_rebuild():
    class Scale(keras.layers.Layer):        # no get_config for its argument
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def call(self, inputs):
            return inputs * self.factor

    inputs = keras.Input((2, 2, 1))
    outputs = keras.layers.Dense(2, activation="relu")(
        keras.layers.Flatten()(Scale(2.0)(inputs)))
    with pytest.raises(InvalidArgumentError, match="layer 'scale.*' \\(Scale\\) could not be"):
        GuidedBackprop(keras.Model(inputs, outputs))
