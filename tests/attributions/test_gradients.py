"""Gradient baselines against closed forms: linear models, completeness, Grad-CAM by hand."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from sobol_tf.attributions import (DeconvNet, GradCAM, GradientInput, GuidedBackprop,
                                   IntegratedGradients, Saliency, SmoothGrad, SquareGrad,
                                   VarGrad)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

from tests.conftest import RegionModel, tiny_convnet

SHAPE = (5, 6, 3)


def linear_keras(seed=0):
    """Flatten + Dense(2) with known weights W (90, 2) and bias."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(int(np.prod(SHAPE)), 2)).astype(np.float32)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(2, name="logits")])
    model.layers[-1].set_weights([weights, np.array([0.3, -0.2], np.float32)])
    return model, weights.reshape(SHAPE + (2,))


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).uniform(size=(3,) + SHAPE).astype(np.float32)


def test_saliency_of_a_linear_model_is_the_max_abs_weight_per_pixel(x):
    model, weights = linear_keras()
    maps = Saliency(model, batch_size=2)(x, [0, 1, 1]).numpy()
    for row, label in enumerate([0, 1, 1]):
        np.testing.assert_allclose(maps[row, ..., 0], np.abs(weights[..., label]).max(-1),
                                   rtol=1e-5)


@pytest.mark.parametrize("baseline_value", [0.0, 0.2])
def test_integrated_gradients_of_a_linear_model_is_exact(x, baseline_value):
    model, weights = linear_keras()
    maps = IntegratedGradients(model, steps=3, baseline_value=baseline_value)(x, [1, 0, 1])
    for row, label in enumerate([1, 0, 1]):
        expected = ((x[row] - baseline_value) * weights[..., label]).mean(-1)  # Xplique's
        np.testing.assert_allclose(maps.numpy()[row, ..., 0], expected, rtol=1e-4, atol=1e-5)


def test_integrated_gradients_completeness_improves_with_steps():
    """sum(map) = f(x) - f(baseline), up to the trapezoid rule's error (order 1/steps^2)."""
    model = tiny_convnet((8, 8, 3), 3, seed=2)
    images = np.random.default_rng(2).uniform(0, 4, size=(4, 8, 8, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0])
    baseline = 0.5
    differences = (model(images).numpy() - model(np.full_like(images, baseline)).numpy())
    differences = differences[np.arange(4), labels]
    errors = []
    for steps in (4, 64):
        maps = IntegratedGradients(model, steps=steps, baseline_value=baseline, batch_size=48,
                                   reducer="sum")(images, labels).numpy()
        errors.append(np.abs(maps.sum(axis=(1, 2, 3)) - differences).max())
    assert errors[1] < 1e-3 * max(1.0, np.abs(differences).max()), (errors, differences)
    assert errors[1] < errors[0]


def test_smoothgrad_of_a_linear_model_is_the_channel_mean_of_the_weights(x):
    model, weights = linear_keras()
    maps = SmoothGrad(model, nb_samples=6, noise=0.5, seed=0, batch_size=4)(x, [0, 0, 1])
    for row, label in enumerate([0, 0, 1]):
        np.testing.assert_allclose(maps.numpy()[row, ..., 0], weights[..., label].mean(-1),
                                   rtol=1e-4, atol=1e-5)


def test_smoothgrad_averages_the_gradient_of_a_quadratic_over_the_noise(x):
    """f = sum x^2: the gradient at x + eps is 2 (x + eps); its mean over many noise draws
    tends to 2 x, and with noise=0 it is exactly 2 x."""
    def quadratic(inputs):
        f = tf.reduce_sum(tf.square(inputs), axis=[1, 2, 3])
        return tf.stack([f, -f], axis=-1)

    expected = 2 * x.sum(-1)
    exact = SmoothGrad(quadratic, nb_samples=3, noise=0.0, seed=0, reducer="sum")(
        x, [0, 0, 0]).numpy()
    np.testing.assert_allclose(exact[..., 0], expected, rtol=1e-5)
    smoothed = SmoothGrad(quadratic, nb_samples=400, noise=0.1, seed=0, batch_size=256,
                          reducer="sum")(
        x, [0, 0, 0]).numpy()[..., 0]
    # 2 * sum over 3 channels of the mean of 400 N(0, 0.1^2): sd 2 * 0.1 * sqrt(3 / 400)
    assert np.abs(smoothed - expected).max() < 5 * 2 * 0.1 * np.sqrt(3 / 400)
    assert np.abs(smoothed - expected).max() > 0  # the noise was applied
    other_seed = SmoothGrad(quadratic, nb_samples=400, noise=0.1, seed=1, batch_size=256,
                            reducer="sum")(
        x, [0, 0, 0]).numpy()[..., 0]
    assert not np.allclose(other_seed, smoothed)


@pytest.mark.parametrize("method", [Saliency, IntegratedGradients, SmoothGrad, GradientInput,
                                    SquareGrad])
def test_region_model_gradients_live_in_the_region(method):
    model = RegionModel(rows=(4, 8), cols=(0, 4))
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    maps = method(model)(x, [0, 0]).numpy()[..., 0]
    assert np.all(np.abs(maps[:, 4:, :4]) > 0)
    maps[:, 4:, :4] = 0.0
    np.testing.assert_array_equal(maps, 0.0)


def cam_model(pool=False):
    """conv (1x1, identity) [-> average pooling 2 -> conv 'pooled' (1x1, identity)]
    -> global average -> Dense(2) with weights [1, -1]: Grad-CAM has a closed form."""
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="conv",
                                   kernel_initializer="ones")(inputs)
    if pool:
        features = keras.layers.AveragePooling2D(2)(features)
        features = keras.layers.Conv2D(1, 1, use_bias=False, name="pooled",
                                       kernel_initializer="ones")(features)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, use_bias=False, name="head",
                                 kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]))(
        pooled)
    return keras.Model(inputs, outputs)


def test_gradcam_closed_form():
    """A = x, score = +-mean(A): the weight is +-1/16 and the cam relu(+-x / 16)."""
    x = np.random.default_rng(0).uniform(0.1, 1, size=(2, 4, 4, 1)).astype(np.float32)
    maps = GradCAM(cam_model())(x, [0, 1]).numpy()
    np.testing.assert_allclose(maps[0], x[0] / 16, rtol=1e-5)
    np.testing.assert_array_equal(maps[1], 0.0)


def test_gradcam_picks_the_last_conv_layer_and_resizes_bicubically():
    x = np.random.default_rng(0).uniform(0.1, 1, size=(2, 4, 4, 1)).astype(np.float32)
    model = cam_model(pool=True)
    explainer = GradCAM(model)
    assert explainer.conv_layer.name == "pooled"
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")                       # (2, 2, 2, 1)
    expected = tf.image.resize(pooled / 4, (4, 4), method="bicubic").numpy()   # as Xplique
    np.testing.assert_allclose(explainer(x, [0, 0]).numpy(), expected, rtol=1e-5)
    first = GradCAM(model, conv_layer="conv")(x, [0, 0]).numpy()       # A = x, 16 positions
    np.testing.assert_allclose(first, x / 16, rtol=1e-5)
    np.testing.assert_allclose(GradCAM(model, conv_layer=1)(x, [0, 0]), first, rtol=1e-6)


def test_gradcam_localises_where_the_features_fire():
    """Grad-CAM weights feature maps globally (mean gradient), so it localises through
    the features: with an object only in one region, the cam lives there."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(2, 1, kernel_initializer="ones", use_bias=False,
                                   activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant([[1.0, -1.0], [0.5, 0.0]]))(pooled))
    x = np.zeros((2, 8, 8, 3), np.float32)
    x[:, 4:, :4] = np.random.default_rng(0).uniform(0.1, 1, size=(2, 4, 4, 3))
    maps = GradCAM(model)(x, [0, 0]).numpy()[..., 0]
    assert np.all(maps[:, 4:, :4] > 0)
    maps[:, 4:, :4] = 0.0
    np.testing.assert_array_equal(maps, 0.0)
    np.testing.assert_array_equal(GradCAM(model)(x, [1, 1]), 0.0)  # negative evidence only


def test_output_layer_explains_the_logits():
    """With output_layer='logits' IG is exact for the logits, not for the softmax."""
    _, weights = linear_keras()
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(2, name="logits"), keras.layers.Softmax()])
    model.get_layer("logits").set_weights([weights.reshape(-1, 2), np.zeros(2, np.float32)])
    x = np.random.default_rng(3).uniform(size=(2,) + SHAPE).astype(np.float32)
    maps = IntegratedGradients(model, steps=2, output_layer="logits")(x, [0, 1]).numpy()
    for row, label in enumerate([0, 1]):
        np.testing.assert_allclose(maps[row, ..., 0], (x[row] * weights[..., label]).mean(-1),
                                   rtol=1e-4, atol=1e-5)
    on_softmax = IntegratedGradients(model, steps=2)(x, [0, 1]).numpy()
    assert not np.allclose(on_softmax, maps, atol=1e-3)


def test_grayscale_inputs_with_keras_models():
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(2, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    for explainer in (Saliency(model), IntegratedGradients(model, steps=4),
                      SmoothGrad(model, nb_samples=4, seed=0), GradCAM(model),
                      GradientInput(model), SquareGrad(model, nb_samples=3, seed=0),
                      VarGrad(model, nb_samples=3, seed=0), GuidedBackprop(model),
                      DeconvNet(model)):
        maps = explainer(x, [0, 1, 0]).numpy()
        assert maps.shape == (3, 8, 8, 1) and np.all(np.isfinite(maps))
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        scores = tf.reduce_sum(model(inputs) * np.eye(2, dtype=np.float32)[[0, 1, 0]], -1)
    np.testing.assert_allclose(Saliency(model)(x, [0, 1, 0]).numpy(),
                               np.abs(tape.gradient(scores, inputs)), rtol=1e-5)


def test_gradcam_errors():
    with pytest.raises(InvalidTypeError, match="GradCAM needs a Keras"):
        GradCAM(lambda inputs: inputs)
    with pytest.raises(InvalidArgumentError, match="conv_layer must name a layer.*'nope'"):
        GradCAM(cam_model(), conv_layer="nope")
    with pytest.raises(InvalidArgumentError, match="'head'.*needs 4-D feature maps"):
        GradCAM(cam_model(), conv_layer="head")(np.ones((1, 4, 4, 1), np.float32), [0])
    with pytest.raises(InvalidArgumentError, match=r"conv_layer must be a layer index"):
        GradCAM(cam_model(), conv_layer=12)
    dense_only, _ = linear_keras()
    with pytest.raises(InvalidArgumentError, match="has none"):
        GradCAM(dense_only)


@pytest.mark.parametrize("method, kwargs, error, message", [
    (IntegratedGradients, {"steps": 1}, InvalidArgumentError, "steps must be an integer >= 2"),
    (IntegratedGradients, {"baseline_value": "black"}, InvalidTypeError, "baseline_value"),
    (SmoothGrad, {"nb_samples": 0}, InvalidArgumentError, "nb_samples must be an integer >= 1"),
    (SmoothGrad, {"noise": -0.1}, InvalidArgumentError, "noise must be >= 0.0, got -0.1"),
    (SmoothGrad, {"seed": 1.5}, InvalidTypeError, "seed"),
    (SquareGrad, {"noise": "a lot"}, InvalidTypeError, "noise must be a number"),
    (VarGrad, {"nb_samples": 1}, InvalidArgumentError, "nb_samples must be an integer >= 2"),
    (GradientInput, {"reducer": "median"}, InvalidArgumentError, "reducer must be None or one"),
    (GuidedBackprop, {"reducer": 0}, InvalidTypeError, "reducer must be None or one"),
    (Saliency, {"batch_size": 0}, InvalidArgumentError, "batch_size"),
    (Saliency, {"output_layer": "nope"}, InvalidArgumentError, "output_layer must name a layer"),
])
def test_bad_arguments(method, kwargs, error, message):
    model, _ = linear_keras()
    with pytest.raises(error, match=message):
        method(model, **kwargs)


def test_output_layer_needs_a_keras_model():
    with pytest.raises(InvalidTypeError, match="output_layer needs a Keras model"):
        Saliency(lambda inputs: inputs, output_layer=-1)


def two_head_models():
    """A two-head functional model (as a list, a tuple and a dict) and its single heads."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    features = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inp)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    head0, head1 = keras.layers.Dense(3)(pooled), keras.layers.Dense(3)(pooled)
    multi = {"list": keras.Model(inp, [head0, head1]), "tuple": keras.Model(inp, (head0, head1)),
             "dict": keras.Model(inp, {"a": head0, "b": head1})}
    return multi, [keras.Model(inp, head0), keras.Model(inp, head1)]


@pytest.mark.parametrize("structure", ["list", "tuple", "dict"])
@pytest.mark.parametrize("method", [
    lambda model, **kw: GradCAM(model, **kw),
    lambda model, **kw: Saliency(model, **kw),
    lambda model, **kw: IntegratedGradients(model, steps=3, **kw),
    lambda model, **kw: SmoothGrad(model, nb_samples=2, seed=0, **kw),
    lambda model, **kw: VarGrad(model, nb_samples=2, seed=0, **kw),
    lambda model, **kw: GuidedBackprop(model, **kw)],
    ids=["gradcam", "saliency", "ig", "smoothgrad", "vargrad", "guided"])
def test_an_operator_picking_a_head_explains_that_head(structure, method):
    """The operator's model returns the model's whole output structure, as model(x) does."""
    multi, singles = two_head_models()
    images = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    onehot = np.eye(3, dtype=np.float32)
    for head in (0, 1):
        key = ("a", "b")[head] if structure == "dict" else head

        def pick(model, inputs, targets, key=key):
            return tf.reduce_sum(model(inputs)[key] * targets, axis=-1)

        got = method(multi[structure], operator=pick)(images, onehot).numpy()
        expected = method(singles[head])(images, onehot).numpy()
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_gradcam_of_a_two_head_model_without_operator_is_refused_as_the_others():
    """Regression guard: with the full output structure handed on, Grad-CAM still asks
    for an operator that picks the head, as the other methods do."""
    multi, _ = two_head_models()
    images = np.zeros((2, 8, 8, 1), np.float32)
    for method in (GradCAM, Saliency):
        with pytest.raises(InvalidTypeError, match="picks the output"):
            method(multi["list"])(images, [0, 1])
