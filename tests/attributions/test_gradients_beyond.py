"""Gradient methods beyond images: tabular rows (N, F) -> maps (N, F), time series
(N, T, C) -> maps (N, T, C) (the channel reducer is for images only, as Xplique), token
ids (N, L) refused with the embeddings recipe. Every expected value is a closed form."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import (DeconvNet, GradientInput, GuidedBackprop,
                                   IntegratedGradients, Saliency, SmoothGrad, SquareGrad,
                                   VarGrad)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

GRADIENT_METHODS = (Saliency, GradientInput, IntegratedGradients, SmoothGrad, SquareGrad,
                    VarGrad, GuidedBackprop, DeconvNet)

F, T, C = 5, 6, 2


class Linear:
    """f(x) = [sum(A0 * x), sum(A1 * x)] + bias for inputs of any shape (N, ...)."""

    def __init__(self, shape, seed=0):
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(size=(2,) + shape).astype(np.float32)
        self.axes = tuple(range(1, len(shape) + 1))

    def __call__(self, x):
        outputs = [tf.reduce_sum(x * w, axis=self.axes) for w in self.weights]
        return tf.stack(outputs, axis=-1) + tf.constant([0.5, -0.5])

    def gradient(self, labels):
        return self.weights[np.asarray(labels)]


def data(shape, n=3, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)


LABELS = [0, 1, 1]
SHAPES = {"tabular": (F,), "time_series": (T, C)}


# -- 1. maps in the inputs' layout, exact on linear models ----------------------------
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_saliency_gradient_input_integrated_gradients_are_exact(kind):
    shape = SHAPES[kind]
    model, x = Linear(shape), data(shape)
    before = x.copy()
    weights = model.gradient(LABELS)
    saliency = Saliency(model)(x, LABELS).numpy()
    gradient_input = GradientInput(model)(x, LABELS).numpy()
    integrated = IntegratedGradients(model, steps=3, baseline_value=0.3)(x, LABELS).numpy()
    for maps in (saliency, gradient_input, integrated):
        assert maps.shape == x.shape            # (N, F) or (N, T, C): channels kept
    np.testing.assert_allclose(saliency, np.abs(weights), rtol=1e-5)
    np.testing.assert_allclose(gradient_input, weights * x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(integrated, weights * (x - 0.3), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_integrated_gradients_take_one_baseline_value_per_feature(kind):
    """Tabular users explain from the feature means of a reference set, not from 0."""
    shape = SHAPES[kind]
    model, x = Linear(shape), data(shape)
    baseline = data(shape, n=20, seed=7).mean(axis=0)
    kept = baseline.copy()
    maps = IntegratedGradients(model, steps=2, baseline_value=baseline)(x, LABELS).numpy()
    np.testing.assert_allclose(maps, model.gradient(LABELS) * (x - baseline), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(baseline, kept)
    # completeness, per input: the map sums to f(x) - f(baseline)
    scores = model(x).numpy()[range(3), LABELS] - model(baseline[None]).numpy()[0, LABELS]
    np.testing.assert_allclose(maps.reshape(3, -1).sum(-1), scores, rtol=1e-4)


def test_integrated_gradients_baseline_of_another_shape_is_refused():
    model = Linear((F,))
    explainer = IntegratedGradients(model, baseline_value=np.zeros(F + 1, np.float32))
    with pytest.raises(InvalidArgumentError, match=r"baseline_value.*\(5,\).*\(6,\)"):
        explainer(data((F,)), LABELS)
    with pytest.raises(InvalidArgumentError, match="baseline_value"):
        IntegratedGradients(model, baseline_value=np.array([0.0, np.nan]))
    with pytest.raises(InvalidTypeError, match="baseline_value"):
        IntegratedGradients(model, baseline_value=np.array(["a", "b"]))


@pytest.mark.parametrize("reducer", ["max", "mean", "min", "sum", None])
@pytest.mark.parametrize("method", [Saliency, GradientInput])
def test_reducer_keeps_the_channels_of_a_time_series(method, reducer):
    """Xplique applies ``reducer`` to images only: a time series keeps (N, T, C)."""
    model, x = Linear((T, C)), data((T, C))
    maps = method(model, reducer=reducer)(x, LABELS).numpy()
    expected = model.gradient(LABELS) * (1.0 if method is Saliency else x)
    np.testing.assert_allclose(maps, np.abs(expected) if method is Saliency else expected,
                               rtol=1e-5, atol=1e-6)


def test_images_still_reduce_their_channels():
    model, x = Linear((4, 4, 3)), data((4, 4, 3))
    maps = Saliency(model)(x, LABELS).numpy()
    np.testing.assert_allclose(maps[..., 0], np.abs(model.gradient(LABELS)).max(-1),
                               rtol=1e-5)


# -- gradient statistics: noise on every layout ---------------------------------------
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_gradient_statistics_with_no_noise_are_the_gradient(kind):
    shape = SHAPES[kind]
    model, x = Linear(shape), data(shape)
    weights = model.gradient(LABELS)
    smooth = SmoothGrad(model, nb_samples=3, noise=0.0, seed=0)(x, LABELS).numpy()
    assert smooth.shape == x.shape
    np.testing.assert_allclose(smooth, weights, rtol=1e-5)
    np.testing.assert_allclose(np.abs(smooth), Saliency(model)(x, LABELS).numpy(), rtol=1e-5)
    square = SquareGrad(model, nb_samples=3, noise=0.0, seed=0)(x, LABELS).numpy()
    np.testing.assert_allclose(square, weights ** 2, rtol=1e-5)
    variance = VarGrad(model, nb_samples=3, noise=0.0, seed=0)(x, LABELS).numpy()
    np.testing.assert_allclose(variance, np.zeros_like(x), atol=1e-6)


def test_gradient_statistics_of_a_quadratic_time_series_model():
    """f = sum c x^2: the gradient at x + eps is 2c(x + eps), so SmoothGrad ~ 2cx,
    SquareGrad ~ 4c^2 (x^2 + s^2), VarGrad ~ 4c^2 s^2 in every (step, channel) cell."""
    coefficients = np.linspace(0.5, 2.0, T * C).reshape(T, C).astype(np.float32)

    def model(x):
        return tf.reduce_sum(coefficients * x ** 2, axis=(1, 2))[:, None]

    x, noise, samples = data((T, C), n=2), 0.3, 600
    options = dict(operator="regression", batch_size=None, nb_samples=samples, noise=noise)
    targets = np.ones((2, 1), np.float32)
    smooth = SmoothGrad(model, seed=0, **options)(x, targets).numpy()
    square = SquareGrad(model, seed=0, **options)(x, targets).numpy()
    variance = VarGrad(model, seed=0, **options)(x, targets).numpy()
    spread = 2 * coefficients * noise / np.sqrt(samples)     # std of SmoothGrad's mean
    assert (np.abs(smooth - 2 * coefficients * x) < 4.5 * spread).all()
    np.testing.assert_allclose(square, 4 * coefficients ** 2 * (x ** 2 + noise ** 2),
                               rtol=0.3)
    np.testing.assert_allclose(variance, np.broadcast_to(
        4 * coefficients ** 2 * noise ** 2, x.shape), rtol=0.3)


# -- Guided Backpropagation and DeconvNet on a Dense ReLU network ---------------------
def relu_network(shape, seed=0):
    """Flatten -> Dense(6, relu) -> Dense(2) with known weights."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    w1 = rng.normal(size=(size, 6)).astype(np.float32)
    b1 = rng.normal(size=6).astype(np.float32) * 0.1
    w2 = rng.normal(size=(6, 2)).astype(np.float32)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(6, activation="relu"), keras.layers.Dense(2)])
    model.layers[1].set_weights([w1, b1])
    model.layers[2].set_weights([w2, np.zeros(2, np.float32)])
    return model, w1, b1, w2


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_guided_backprop_and_deconvnet_by_hand(kind):
    shape = SHAPES[kind]
    model, w1, b1, w2 = relu_network(shape)
    x = data(shape, n=4, seed=3)
    labels = [0, 1, 0, 1]
    flat = x.reshape(len(x), -1)
    active = (flat @ w1 + b1) > 0                       # (N, 6)
    upstream = w2[:, labels].T                          # (N, 6): d score / d hidden
    plain = (upstream * active) @ w1.T
    guided = (np.maximum(upstream, 0) * active) @ w1.T
    deconv = np.maximum(upstream, 0) @ w1.T
    assert active.any() and not active.all() and (upstream < 0).any()  # the rules differ
    maps = GuidedBackprop(model)(x, labels).numpy()
    assert maps.shape == x.shape
    np.testing.assert_allclose(maps.reshape(len(x), -1), guided, rtol=1e-4, atol=1e-5)
    maps = DeconvNet(model)(x, labels).numpy()
    np.testing.assert_allclose(maps.reshape(len(x), -1), deconv, rtol=1e-4, atol=1e-5)
    maps = Saliency(model)(x, labels).numpy()
    np.testing.assert_allclose(maps.reshape(len(x), -1), np.abs(plain), rtol=1e-4, atol=1e-5)


def one_feature_network(shape, position, seed=0):
    """Flatten -> Dense(4, relu) -> Dense(2) that reads only the input value at
    ``position`` (an index of one input, in its own layout): the other rows of the first
    kernel are 0, and the read weights and the biases are positive, so every unit is
    active on inputs >= 0 and the gradient of either output is positive there."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    w1 = np.zeros((size, 4), np.float32)
    w1[np.ravel_multi_index(position, shape)] = rng.uniform(0.5, 1.5, size=4)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    model.layers[1].set_weights([w1, np.ones(4, np.float32)])
    model.layers[2].set_weights([rng.uniform(0.5, 1.5, size=(4, 2)).astype(np.float32),
                                 np.zeros(2, np.float32)])
    return model


@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("kind, position", [("tabular", (3,)), ("time_series", (4, 1))])
def test_every_gradient_method_keeps_the_layout(method, kind, position):
    """The model reads one value of each input only: every method's map, in the inputs'
    layout, is exactly 0 everywhere else (a transposed or flattened-the-wrong-way layout
    would move it), and, but for VarGrad (the gradient is constant on this region, so
    its variance is 0), not 0 there."""
    shape = SHAPES[kind]
    model = one_feature_network(shape, position)
    x = np.abs(data(shape, n=2))
    options = {"nb_samples": 4} if method in (SmoothGrad, SquareGrad, VarGrad) else {}
    maps = method(model, **options)(x, [0, 1]).numpy()
    assert maps.shape == x.shape and np.isfinite(maps).all()
    at = (slice(None),) + position
    others = maps.copy()
    others[at] = 0.0
    np.testing.assert_array_equal(others, 0.0)
    if method is not VarGrad:
        assert np.all(np.abs(maps[at]) > 1e-3), maps[at]


# -- 2. token ids: refused, with the embeddings recipe --------------------------------
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_token_ids_are_refused_with_the_recipe(method):
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(10, 3),
                              keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(2, activation="relu")])
    ids = np.array([[1, 2, 3, 4], [5, 6, 0, 9]], np.int32)
    explainer = method(model)
    with pytest.raises(InvalidArgumentError) as error:
        explainer(ids, [0, 1])
    message = str(error.value)
    assert method.__name__ in message and "(None, 4)" in message
    assert "token ids" in message and "embedding" in message.lower()
    assert "(N, L, D)" in message and "reduce_sum" in message


def test_the_embeddings_recipe_matches_the_gradient_by_hand():
    """Split the model into its Embedding and the rest, explain the rest on the
    embeddings (N, L, D) as a time series, sum over D: per token, by hand."""
    keras.utils.set_random_seed(0)
    length, dim = 5, 3
    model = keras.Sequential([keras.Input((length,), dtype="int32"),
                              keras.layers.Embedding(12, dim, name="embedding"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    ids = np.array([[1, 2, 3, 4, 5], [7, 7, 0, 11, 2]], np.int32)
    labels = [1, 0]

    # the recipe of the error message and of WhiteBoxExplainer's docstring
    embedding = model.get_layer("embedding")
    rest = keras.Model(embedding.output, model.outputs)
    embedded = embedding(ids)                                   # (N, L, D)
    np.testing.assert_allclose(rest(embedded), model(ids), rtol=1e-6)

    saliency = Saliency(rest)(embedded, labels)
    gradient_input = GradientInput(rest)(embedded, labels)
    assert saliency.shape == gradient_input.shape == (2, length, dim)
    token_saliency = tf.reduce_sum(tf.abs(saliency), axis=-1).numpy()          # (N, L)
    token_contribution = tf.reduce_sum(gradient_input, axis=-1).numpy()       # (N, L)

    # by hand: score = w . mean_l E[id_l] + b, so d score / d E[id_l] = w / L
    table = embedding.get_weights()[0]
    w = model.layers[-1].get_weights()[0][:, labels].T                  # (N, D)
    np.testing.assert_allclose(token_saliency, np.repeat(
        np.abs(w).sum(-1, keepdims=True) / length, length, axis=1), rtol=1e-5)
    expected = np.einsum("nld,nd->nl", table[ids], w) / length
    np.testing.assert_allclose(token_contribution, expected, rtol=1e-5, atol=1e-7)


def test_float_ids_to_an_embedding_model_warn_instead_of_silent_zeros():
    """Float (N, L) rows are tabular: an Embedding casts them to integers, which has no
    gradient, so the maps are zeros; the user is told why."""
    from sobol_tf.errors import SobolTFWarning

    model = keras.Sequential([keras.Input((4,)), keras.layers.Embedding(10, 3),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    ids = np.array([[1, 2, 3, 4], [5, 6, 0, 9]], np.float32)
    with pytest.warns(SobolTFWarning, match="no gradient.*Embedding"):
        maps = Saliency(model)(ids, [0, 1])
    np.testing.assert_array_equal(maps.numpy(), np.zeros((2, 4)))


def test_grad_cam_refuses_token_ids_without_speaking_of_masks():
    from sobol_tf.attributions import GradCAM

    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(10, 2),
                              keras.layers.Reshape((2, 2, 2)), keras.layers.Conv2D(2, 1),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="GradCAM explains images.*token ids") as error:
        GradCAM(model)(np.array([[1, 2, 3, 4]], np.int32), [0])
    assert "no gradient through integer ids" in str(error.value)
    assert "cannot perturb" not in str(error.value)
