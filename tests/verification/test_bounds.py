"""Soundness of sobol_tf.verification: sampled points of every box stay within the
bounds, for small random models of every supported layer type; CROWN is never looser
than IBP; exact bounds where they are known in closed form."""
import numpy as np
import pytest

import keras
from keras import layers

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.verification import output_bounds, softmax_bounds

TOLERANCE = 1e-4
POINTS = 2000


def _image_model(*middle, shape=(8, 8, 3), head=True):
    parts = [keras.Input(shape), *middle]
    if head:
        parts += [layers.Flatten(), layers.Dense(5)]
    return keras.Sequential(parts)


def _functional_residual():
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = layers.Conv2D(4, 1)(inputs)
    added = layers.Add()([a, b])
    joined = layers.Concatenate()([added, layers.Subtract()([a, b])])
    product = layers.Multiply()([joined, joined])
    pooled = layers.GlobalAveragePooling2D()(product)
    maxed = layers.GlobalMaxPooling2D()(joined)
    merged = layers.Average()([pooled, maxed])
    return keras.Model(inputs, layers.Dense(5)(merged))


def _normalised():
    norm = layers.Normalization(mean=[0.1, 0.5, -0.2], variance=[0.5, 2.0, 1.5])
    return _image_model(layers.Rescaling(-2.0, 1.0), norm,
                        layers.Conv2D(4, 3, activation="tanh"),
                        layers.BatchNormalization(), layers.Activation("sigmoid"))


def _with_batchnorm_stats():
    model = _image_model(layers.Conv2D(4, 3), layers.BatchNormalization(),
                         layers.ReLU())
    bn = model.layers[1]
    rng = np.random.default_rng(1)
    bn.set_weights([rng.normal(size=4).astype("float32"),        # gamma, some negative
                    rng.normal(size=4).astype("float32"),
                    rng.normal(size=4).astype("float32"),
                    rng.uniform(0.5, 2, size=4).astype("float32")])
    return model


def _prelu():
    model = keras.Sequential([keras.Input((6,)), layers.Dense(12), layers.PReLU(),
                              layers.Dense(4)])
    alpha = np.random.default_rng(2).uniform(-1, 1, size=12).astype("float32")
    model.layers[1].set_weights([alpha])   # negative slopes too: not monotone
    return model


MODELS = {
    "prelu": _prelu,
    "dense_relu": lambda: keras.Sequential([keras.Input((6,)), layers.Dense(12, "relu"),
                                            layers.Dense(12, "relu"), layers.Dense(4)]),
    "dense_gelu_silu": lambda: keras.Sequential([
        keras.Input((6,)), layers.Dense(12, "gelu"), layers.Dense(12, "silu"),
        layers.Dense(4, "softmax")]),
    "dense_elu_softplus": lambda: keras.Sequential([
        keras.Input((6,)), layers.Dense(12, "elu"), layers.Dense(12, "softplus"),
        layers.LeakyReLU(0.2), layers.Dense(4), layers.Softmax()]),
    "conv1d": lambda: keras.Sequential([
        keras.Input((16, 2)), layers.Conv1D(4, 3, activation="relu"),
        layers.ZeroPadding1D(1), layers.MaxPooling1D(2), layers.AveragePooling1D(2),
        layers.Conv1D(3, 2, strides=2, padding="same"), layers.GlobalAveragePooling1D(),
        layers.Dense(4)]),
    "conv2d_pool": lambda: _image_model(
        layers.Conv2D(4, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Conv2D(4, 3, strides=2, dilation_rate=1), layers.ReLU(),
        layers.Dropout(0.5)),
    "depthwise_separable": lambda: _image_model(
        layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
        layers.ZeroPadding2D(1), layers.SeparableConv2D(4, 3, activation="tanh"),
        layers.AveragePooling2D(2)),
    "batchnorm": _with_batchnorm_stats,
    "rescaling_normalization": _normalised,
    "reshape_global_max": lambda: _image_model(
        layers.Reshape((16, 12)), layers.Conv1D(4, 3), layers.GlobalMaxPooling1D(),
        layers.Dense(5, "softmax"), head=False),
    "functional_merges": _functional_residual,
    "nested": lambda: keras.Sequential([
        keras.Input((6,)), keras.Sequential([layers.Dense(8, "relu"), layers.Dense(8)]),
        layers.Activation("relu"), layers.Dense(3)]),
}


def _samples(rng, lower, upper):
    """POINTS points per box: half uniform, half vertices (where extremes often sit)."""
    shape = (lower.shape[0], POINTS // 2) + lower.shape[1:]
    uniform = rng.uniform(size=shape)
    vertices = rng.integers(0, 2, size=shape)
    t = np.concatenate([uniform, vertices], 1).astype("float32")
    return lower[:, None] + t * (upper - lower)[:, None]


def _check_sound(model, lower, upper, method, seed=0):
    low, high = output_bounds(model, lower, upper, method, batch_size=2)
    rng = np.random.default_rng(seed)
    points = _samples(rng, lower, upper)
    outputs = np.asarray(model(points.reshape((-1,) + lower.shape[1:]), training=False))
    outputs = outputs.reshape(points.shape[:2] + outputs.shape[1:])
    scale = TOLERANCE * (1 + np.abs(outputs).max())
    assert np.all(outputs >= low[:, None] - scale), method
    assert np.all(outputs <= high[:, None] + scale), method
    # the clean inputs' outputs are inside, and the bounds are not trivially wide
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(high))
    return low, high


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ibp_bounds_hold_on_sampled_points(name):
    keras.utils.set_random_seed(3)
    model = MODELS[name]()
    rng = np.random.default_rng(0)
    shape = (3,) + tuple(model.inputs[0].shape[1:])
    centre = rng.uniform(-1, 1, size=shape).astype("float32")
    radius = rng.uniform(0, 0.3, size=shape).astype("float32")
    _check_sound(model, centre - radius, centre + radius, "ibp")


@pytest.mark.parametrize("name", ["dense_relu", "conv1d", "conv2d_pool",
                                  "depthwise_separable", "batchnorm", "nested"])
def test_crown_sound_and_never_looser_than_ibp(name):
    keras.utils.set_random_seed(4)
    model = MODELS[name]()
    rng = np.random.default_rng(1)
    shape = (3,) + tuple(model.inputs[0].shape[1:])
    centre = rng.uniform(-1, 1, size=shape).astype("float32")
    radius = rng.uniform(0, 0.2, size=shape).astype("float32")
    crown_low, crown_high = _check_sound(model, centre - radius, centre + radius, "crown")
    ibp_low, ibp_high = output_bounds(model, centre - radius, centre + radius, "ibp")
    assert np.all(crown_low >= ibp_low - 1e-5) and np.all(crown_high <= ibp_high + 1e-5)


def test_crown_strictly_tighter_on_a_relu_mlp():
    keras.utils.set_random_seed(5)
    model = MODELS["dense_relu"]()
    x = np.random.default_rng(2).uniform(size=(4, 6)).astype("float32")
    ibp = output_bounds(model, x - 0.1, x + 0.1, "ibp")
    crown = output_bounds(model, x - 0.1, x + 0.1, "crown")
    assert (crown[1] - crown[0]).mean() < 0.8 * (ibp[1] - ibp[0]).mean()


def test_linear_model_bounds_are_exact():
    """A linear model's extremes on a box are W c +- |W| r: both methods reach them."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3)])
    weights, bias = model.get_weights()
    x = np.random.default_rng(3).normal(size=(2, 5)).astype("float32")
    radius = np.full_like(x, 0.25)
    expected_high = x @ weights + bias + radius @ np.abs(weights)
    expected_low = x @ weights + bias - radius @ np.abs(weights)
    for method in ("ibp", "crown"):
        low, high = output_bounds(model, x - radius, x + radius, method)
        np.testing.assert_allclose(high, expected_high, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(low, expected_low, rtol=1e-5, atol=1e-5)


def test_spec_on_a_linear_model_is_exact_margin():
    """Margins f_c - f_y of a linear model: max = (w_c - w_y) x + eps |w_c - w_y|_1."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    weights, bias = model.get_weights()
    x = np.random.default_rng(4).normal(size=(1, 4)).astype("float32")
    spec = np.array([[1, -1, 0], [0, -1, 1]], np.float32)
    rows = weights @ spec.T
    expected = x @ rows + bias @ spec.T + 0.1 * np.abs(rows).sum(0)
    for method in ("ibp", "crown"):
        high = output_bounds(model, x - 0.1, x + 0.1, method, spec=spec)[1]
        np.testing.assert_allclose(high, expected, rtol=1e-5, atol=1e-5)


def test_softmax_bounds_are_reached_at_corners():
    lower = np.array([[0.0, -1.0, 0.5]], np.float32)
    upper = np.array([[1.0, 0.0, 0.5]], np.float32)
    low, high = softmax_bounds(lower, upper)
    # least p_0: x_0 at its lower end, the others at their upper ends
    expected = np.exp(0.0) / (np.exp(0.0) + np.exp(0.0) + np.exp(0.5))
    np.testing.assert_allclose(np.asarray(low)[0, 0], expected, rtol=1e-6)
    expected = np.exp(1.0) / (np.exp(1.0) + np.exp(-1.0) + np.exp(0.5))
    np.testing.assert_allclose(np.asarray(high)[0, 0], expected, rtol=1e-6)


def test_unsupported_layer_is_named():
    model = keras.Sequential([keras.Input((6,)), layers.LayerNormalization(name="norm"),
                              layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="'norm' of class LayerNormalization"):
        output_bounds(model, np.zeros((1, 6)), np.ones((1, 6)))


def test_bad_boxes_and_method_are_refused():
    model = MODELS["dense_relu"]()
    with pytest.raises(InvalidArgumentError, match="lower must be <= upper"):
        output_bounds(model, np.ones((1, 6)), np.zeros((1, 6)))
    with pytest.raises(InvalidArgumentError, match="same shape"):
        output_bounds(model, np.zeros((1, 6)), np.zeros((2, 6)))
    with pytest.raises(InvalidArgumentError, match="method must be one of"):
        output_bounds(model, np.zeros((1, 6)), np.zeros((1, 6)), "lp")
    with pytest.raises(InvalidArgumentError, match="chain"):
        output_bounds(_functional_residual(), np.zeros((1, 8, 8, 3)),
                      np.zeros((1, 8, 8, 3)), "crown")


def test_point_box_gives_the_model_output():
    keras.utils.set_random_seed(8)
    model = MODELS["conv2d_pool"]()
    x = np.random.default_rng(5).uniform(size=(2, 8, 8, 3)).astype("float32")
    for method in ("ibp", "crown"):
        low, high = output_bounds(model, x, x, method)
        np.testing.assert_allclose(low, np.asarray(model(x)), atol=1e-4)
        np.testing.assert_allclose(high, np.asarray(model(x)), atol=1e-4)
