"""Grad-CAM, Grad-CAM++ and FEM against closed forms: models whose feature maps and dense
weights are set by hand, so that the right map is known."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import FEM, GradCAM, GradCAMPP
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: dense weights (3 feature maps, 2 classes): class 0 has mixed signs, class 1 too
HEAD = np.array([[1.0, -0.5], [-2.0, 1.0], [0.5, 0.25]], np.float32)
#: 1x1 convolution (2 input channels -> 3 feature maps)
KERNEL = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]], np.float32)


def linear_cam_model(extra=None):
    """inputs (4, 4, 2) -> 1x1 conv 'features' (KERNEL, no bias) [-> extra] -> global
    average -> Dense 'head' (HEAD, no bias). The score of class c is
    sum_k HEAD[k, c] mean(A_k), so d score / d A_k = HEAD[k, c] / 16 everywhere."""
    inputs = keras.Input((4, 4, 2))
    features = keras.layers.Conv2D(3, 1, use_bias=False, name="features",
                                   kernel_initializer=keras.initializers.Constant(
                                       KERNEL.reshape(1, 1, 2, 3)))(inputs)
    if extra is not None:
        features = extra(features)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, use_bias=False, name="head",
                                 kernel_initializer=keras.initializers.Constant(HEAD))(pooled)
    return keras.Model(inputs, outputs)


def inputs(n=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 4, 4, 2)).astype(np.float32)


def features_of(x):
    return np.einsum("nhwi,ik->nhwk", x, KERNEL)


def test_gradcam_closed_form_with_mixed_signs():
    x, labels = inputs(), np.array([0, 1, 0])
    maps = GradCAM(linear_cam_model())(x, labels).numpy()[..., 0]
    weights = HEAD[:, labels].T / 16.0                                   # (n, 3)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", features_of(x), weights), 0.0)
    assert expected.max() > 0 and expected.min() == 0.0
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_gradcampp_closed_form():
    """With a constant gradient g_k = HEAD[k, c] / 16 the Grad-CAM++ weight of map k is
    relu(g_k) g_k^2 / (2 g_k^2 + g_k^3 mean(A_k)) = relu(g_k) / (2 + g_k mean(A_k))."""
    x, labels = inputs(), np.array([0, 1, 1])
    x = np.abs(x)             # positive feature means keep the denominators away from 0
    maps = GradCAMPP(linear_cam_model())(x, labels).numpy()[..., 0]
    features = features_of(x)
    gradients = HEAD[:, labels].T / 16.0                                 # (n, 3)
    means = features.mean(axis=(1, 2))                                   # (n, 3)
    weights = np.maximum(gradients, 0.0) / (2.0 + gradients * means)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", features, weights), 0.0)
    assert expected.max() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)
    # not Grad-CAM: the weights differ (negative gradients drop out entirely)
    assert not np.allclose(maps, GradCAM(linear_cam_model())(x, labels).numpy()[..., 0])


def test_gradcampp_weights_on_a_hand_made_gradient():
    """Position-dependent gradients: alpha = g^2 / (2 g^2 + g^3 mean(A)), the weight is the
    spatial mean of alpha relu(g); a zero denominator (g = 0) gives a zero alpha."""
    features = np.zeros((1, 2, 2, 2), np.float32)
    features[0, :, :, 0] = [[2.0, 0.0], [0.0, 2.0]]     # mean 1
    features[0, :, :, 1] = [[4.0, 4.0], [0.0, 0.0]]     # mean 2
    gradients = np.zeros((1, 2, 2, 2), np.float32)
    gradients[0, :, :, 0] = [[1.0, 2.0], [0.0, -1.0]]
    gradients[0, :, :, 1] = [[0.5, 0.0], [0.0, 0.0]]
    weights = GradCAMPP._compute_weights(gradients, features).numpy()
    first = (1.0 / (2 + 1.0) * 1.0 + 4.0 / (8 + 8.0) * 2.0) / 4.0      # g=1, g=2; 0 and -1 drop
    second = (0.25 / (0.5 + 0.125 * 2.0) * 0.5) / 4.0
    np.testing.assert_allclose(weights.reshape(-1), [first, second], rtol=1e-6)
    cam = GradCAMPP._apply_weights(weights, features).numpy()
    np.testing.assert_allclose(cam, np.maximum((features * weights).sum(-1), 0), rtol=1e-6)


def fem_reference(features, k):
    """FEM by hand: channel k's mask is A_k >= mean_k + k std_k (population std), the map
    sums the masks weighted by the channel means."""
    means = features.mean(axis=(1, 2), keepdims=True)
    stds = features.std(axis=(1, 2), keepdims=True)
    return ((features >= means + k * stds) * means).sum(-1)


def test_fem_threshold_on_a_hand_made_feature_map():
    """One hot pixel of 4 in a 4x4 map: mean 1/4, std sqrt(1 - 1/16); with k = 2 only the
    hot pixel passes and gets the mean; with k = -1 every pixel passes."""
    identity = keras.Sequential([
        keras.Input((4, 4, 1)),
        keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = np.zeros((2, 4, 4, 1), np.float32)
    x[0, 1, 2, 0] = 4.0
    x[1] = 2.0 * np.eye(4, dtype=np.float32)[..., None]
    maps = FEM(identity)(x).numpy()[..., 0]
    expected0 = np.zeros((4, 4), np.float32)
    expected0[1, 2] = 0.25
    np.testing.assert_allclose(maps[0], expected0, atol=1e-7)
    # the diagonal of 2: mean 1/2, std sqrt(1 - 1/4) = 0.866; 0.5 + 2 * 0.866 > 2 > 0.5 + 0.866
    np.testing.assert_array_equal(maps[1], 0.0)
    np.testing.assert_allclose(FEM(identity, k=1.0)(x).numpy()[1, ..., 0], 0.5 * np.eye(4),
                               atol=1e-7)
    np.testing.assert_allclose(FEM(identity, k=-1.0)(x).numpy()[0, ..., 0],
                               np.full((4, 4), 0.25), atol=1e-7)


def test_fem_closed_form_several_channels_and_batches():
    x = inputs(n=5)
    model = linear_cam_model()
    expected = fem_reference(features_of(x), 1.0)
    for batch_size in (None, 1, 2, 32):
        maps = FEM(model, batch_size=batch_size, k=1.0)(x).numpy()[..., 0]
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    # targets are not used: a class-agnostic map
    np.testing.assert_allclose(FEM(model, k=1.0)(x, np.arange(5) % 2).numpy()[..., 0],
                               expected, rtol=1e-5, atol=1e-6)


def pooled_model():
    """conv 'conv' (1x1, ones) -> average pooling 2 -> conv 'pooled' (1x1, ones) -> GAP ->
    Dense [1, -1]: the last feature map is the 2x2 average pooling of the input."""
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="conv",
                                   kernel_initializer="ones")(inputs)
    features = keras.layers.AveragePooling2D(2)(features)
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="pooled",
                                   kernel_initializer="ones")(features)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, use_bias=False, kernel_initializer=keras.initializers.Constant(
        [[1.0, -1.0]]))(pooled)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP, FEM])
def test_small_maps_are_resized_bicubically_as_xplique(method):
    x = np.random.default_rng(1).uniform(0.1, 1, size=(2, 4, 4, 1)).astype(np.float32)
    explainer = method(pooled_model())
    assert explainer.conv_layer.name == "pooled"
    small = tf.nn.avg_pool2d(x, 2, 2, "VALID").numpy()                # (2, 2, 2, 1)
    if method is GradCAM:
        small = small / 4.0                                           # weight 1 / 4
    elif method is GradCAMPP:
        small = small / (2.0 + small.mean(axis=(1, 2), keepdims=True) / 4.0) / 4.0
    else:
        small = fem_reference(small, 2.0)[..., None]
    expected = tf.image.resize(small, (4, 4), method="bicubic").numpy()
    np.testing.assert_allclose(explainer(x, [0, 0]).numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP])
def test_batches_hold_several_inputs_and_do_not_change_the_maps(method):
    x, labels = inputs(n=5), np.array([0, 1, 0, 1, 1])
    model = linear_cam_model()
    reference = method(model, batch_size=1)(x, labels).numpy()
    for batch_size in (None, 2):
        np.testing.assert_allclose(method(model, batch_size=batch_size)(x, labels), reference,
                                   rtol=1e-6, atol=1e-7)


# -- item 7: Grad-CAM on a named layer that is not a convolution ---------------------------
def bn_layer():
    layer = keras.layers.BatchNormalization(name="bn", epsilon=0.0)
    layer.build((None, 4, 4, 3))
    layer.set_weights([np.array([2.0, 1.0, 0.5], np.float32),       # gamma
                       np.array([0.1, -0.2, 0.3], np.float32),      # beta
                       np.array([0.5, 0.0, -0.5], np.float32),      # moving mean
                       np.array([4.0, 1.0, 0.25], np.float32)])     # moving variance
    return layer


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP])
def test_cam_on_a_batch_normalization_layer(method):
    """The cam of a named BatchNormalization layer uses its output A' = gamma (A - mu) /
    sigma + beta (inference mode), with the same gradient HEAD[k, c] / 16."""
    x, labels = np.abs(inputs()), np.array([1, 1, 0])
    model = linear_cam_model(bn_layer())
    layer = model.get_layer("bn")
    gamma, beta, mean, variance = (w.numpy() for w in layer.weights)
    features = gamma * (features_of(x) - mean) / np.sqrt(variance) + beta
    gradients = HEAD[:, labels].T / 16.0
    if method is GradCAMPP:
        gradients = np.maximum(gradients, 0) / (2.0 + gradients * features.mean(axis=(1, 2)))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", features, gradients), 0.0)
    explainer = method(model, conv_layer="bn")
    assert explainer.conv_layer is layer
    np.testing.assert_allclose(explainer(x, labels).numpy()[..., 0], expected, rtol=1e-5,
                               atol=1e-6)


def test_gradcam_on_an_activation_layer_after_the_conv():
    x, labels = inputs(), np.array([0, 1, 0])
    model = linear_cam_model(keras.layers.Activation("relu", name="act"))
    maps = GradCAM(model, conv_layer="act")(x, labels).numpy()[..., 0]
    features = np.maximum(features_of(x), 0.0)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", features, HEAD[:, labels].T / 16.0), 0)
    assert expected.max() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def flat_model():
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1, name="conv"),
                             keras.layers.Flatten(name="flatten"), keras.layers.Dense(2)])


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP, FEM])
def test_a_layer_without_feature_maps_is_taken_but_explain_refuses_it(method):
    """As Xplique, any layer of the model can be named (the explainer keeps it as
    conv_layer); a layer whose outputs are not 4-D feature maps (B, h, w, k) cannot give
    a map, and explain says so instead of failing inside TensorFlow."""
    model = flat_model()
    explainer = method(model, conv_layer="flatten")
    assert explainer.conv_layer is model.get_layer("flatten")
    with pytest.raises(InvalidArgumentError,
                       match=r"conv_layer.*'flatten'.*\(None, 32\).*4-D feature maps"):
        explainer(np.zeros((2, 4, 4, 1), np.float32), [0, 1])


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(2, 1)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.pool(self.conv(x)))


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP, FEM])
def test_errors(method):
    with pytest.raises(InvalidTypeError, match=f"{method.__name__} needs a Keras"):
        method(lambda x: x)
    with pytest.raises(InvalidArgumentError, match="conv_layer must name a layer.*'nope'"):
        method(linear_cam_model(), conv_layer="nope")
    with pytest.raises(InvalidArgumentError, match="conv_layer must be a layer index"):
        method(linear_cam_model(), conv_layer=12)
    dense_only = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="has none"):
        method(dense_only)
    subclassed = Subclassed()
    subclassed(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(InvalidTypeError, match="functional or Sequential.*subclassed"):
        method(subclassed)


@pytest.mark.parametrize("k, error", [("2", InvalidTypeError), (True, InvalidTypeError),
                                      (float("nan"), InvalidArgumentError),
                                      (float("inf"), InvalidArgumentError)])
def test_fem_k_is_a_finite_number(k, error):
    with pytest.raises(error, match="k must be"):
        FEM(linear_cam_model(), k=k)


def test_fem_and_gradcampp_on_grayscale_inputs_and_datasets():
    """Grayscale images (N, H, W, 1), and a dataset of (input, target) pairs whose
    targets FEM ignores; (N, H, W) is a time series, which CAM methods refuse."""
    model = keras.Sequential([
        keras.Input((4, 4, 1)),
        keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, use_bias=False,
                           kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]))])
    x = np.random.default_rng(2).uniform(0.1, 1, size=(3, 4, 4, 1)).astype(np.float32)
    expected = fem_reference(x, 2.0)[..., None]
    with pytest.raises(InvalidArgumentError, match=r"time series.*x\[\.\.\., None\]"):
        FEM(model)(x[..., 0])
    np.testing.assert_allclose(FEM(model)(x), expected, atol=1e-7)
    pairs = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 5])))
    np.testing.assert_allclose(FEM(model, 2)(pairs), expected, atol=1e-7)
    x = x[..., 0]
    plus = x / (2.0 + x.mean(axis=(1, 2), keepdims=True) / 16.0) / 16.0   # g = 1 / 16
    np.testing.assert_allclose(GradCAMPP(model)(x[..., None], [0, 0, 0]).numpy()[..., 0],
                               plus, rtol=1e-5)
    np.testing.assert_array_equal(GradCAMPP(model)(x[..., None], [1, 1, 1]), 0.0)   # g < 0: no weight
