"""Grad-CAM, Grad-CAM++ and FEM called as Xplique users call them: positional order
(model, output_layer, batch_size, operator, conv_layer) and (model, batch_size,
conv_layer, k), Xplique's defaults, batch_size=None, any layer accepted as conv_layer,
the weight functions Xplique's tests call. Checked against closed forms."""
import inspect

import keras
import numpy as np
import pytest

from sobol_tf.attributions import FEM, GradCAM, GradCAMPP
from sobol_tf.attributions.gradients import GradCAM as GradCAMFromGradients

HEAD = np.array([[1.0, -0.5], [-2.0, 1.0], [0.5, 0.25]], np.float32)


def xplique_style_model():
    """Sequential: 1x1 conv 'features' (identity on 3 channels) -> GAP -> Dense 'logits'
    (HEAD) -> softmax, as Xplique's tests build them (explain with output_layer=-2)."""
    return keras.Sequential([
        keras.Input((4, 4, 3)),
        keras.layers.Conv2D(3, 1, use_bias=False, name="features",
                            kernel_initializer=keras.initializers.Constant(
                                np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3))),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, use_bias=False, name="logits",
                           kernel_initializer=keras.initializers.Constant(HEAD)),
        keras.layers.Activation("softmax", name="softmax")])


def data(n=4):
    x = np.random.default_rng(0).uniform(0, 1, size=(n, 4, 4, 3)).astype(np.float32)
    return x, np.eye(2, dtype=np.float32)[np.arange(n) % 2]


def gradcam_of_the_logits(x, onehot):
    weights = onehot @ HEAD.T / 16.0                                     # (n, 3)
    return np.maximum(np.einsum("nhwk,nk->nhw", x, weights), 0.0)[..., None]


def test_gradcam_positional_order_as_xplique():
    x, onehot = data()
    model = xplique_style_model()
    expected = gradcam_of_the_logits(x, onehot)
    assert expected.max() > 0
    np.testing.assert_allclose(GradCAM(model, -2)(x, onehot), expected, rtol=1e-5, atol=1e-7)
    explainer = GradCAM(model, "logits", 3, "classification", "features")
    assert (explainer.batch_size, explainer.conv_layer.name) == (3, "features")
    np.testing.assert_allclose(explainer(x, onehot), expected, rtol=1e-5, atol=1e-7)
    # without output_layer, the softmax is explained: not the logits' map
    assert not np.allclose(GradCAM(model)(x, onehot), expected, atol=1e-4)


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP])
def test_signature_and_defaults_as_xplique(method):
    parameters = inspect.signature(method).parameters
    positional = [name for name, p in parameters.items()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["model", "output_layer", "batch_size", "operator", "conv_layer"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in parameters.items()
               if name not in positional)
    explainer = method(xplique_style_model())
    assert (explainer.batch_size, explainer.output_layer, explainer.conv_layer.name) == (
        32, None, "features")
    with pytest.raises(TypeError):
        method(xplique_style_model(), None, 32, None, None, True)   # verbose: keyword only


def test_fem_signature_and_defaults_as_xplique():
    parameters = inspect.signature(FEM).parameters
    positional = [name for name, p in parameters.items()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["model", "batch_size", "conv_layer", "k"]
    explainer = FEM(xplique_style_model())
    assert (explainer.batch_size, explainer.k, explainer.conv_layer.name) == (32, 2.0,
                                                                              "features")
    x, onehot = data()
    explainer = FEM(xplique_style_model(), None, "features", 0.5)
    assert (explainer.batch_size, explainer.k) == (None, 0.5)
    means = x.mean(axis=(1, 2), keepdims=True)
    expected = ((x >= means + 0.5 * x.std(axis=(1, 2), keepdims=True)) * means).sum(-1)
    np.testing.assert_allclose(explainer(x, onehot).numpy()[..., 0], expected, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(explainer.explain(x).numpy()[..., 0], expected, rtol=1e-5,
                               atol=1e-7)


def test_gradcampp_positional_order_as_xplique():
    x, onehot = data()
    model = xplique_style_model()
    gradients = onehot @ HEAD.T / 16.0
    weights = np.maximum(gradients, 0) / (2.0 + gradients * x.mean(axis=(1, 2)))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", x, weights), 0.0)[..., None]
    np.testing.assert_allclose(GradCAMPP(model, -2, 1, None, 0)(x, onehot), expected,
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", [GradCAM, GradCAMPP, FEM])
def test_conv_layer_by_index_name_default_and_any_layer_as_xplique(method):
    """As Xplique's tests: the default is the last convolution, an index counts the
    model's own layers (also when output_layer is given), and any layer can be named."""
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 2, name="conv2d"),
        keras.layers.Conv2D(4, 2, name="conv2d_1"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(name="flatten"), keras.layers.Dense(3),
        keras.layers.Activation("softmax")])
    assert method(model).conv_layer is model.get_layer("conv2d_1")
    assert method(model, conv_layer=0).conv_layer is model.get_layer("conv2d")
    assert method(model, conv_layer="flatten").conv_layer is model.get_layer("flatten")
    if method is not FEM:
        assert method(model, -2, conv_layer=0).conv_layer is model.get_layer("conv2d")


def test_weight_functions_as_xplique_tests_call_them():
    """Xplique's tests call the static weight functions on (1, h, w, k) arrays."""
    features = np.zeros((1, 2, 2, 2))
    features[0, :, :, 0] = [[1.0, 1.0], [0.0, 0.0]]
    features[0, :, :, 1] = [[3.0, 0.0], [1.0, 0.0]]
    gradients = np.zeros((1, 2, 2, 2))
    gradients[0, :, :, 0] = [[1.0, 3.0], [0.0, 0.0]]
    gradients[0, :, :, 1] = [[-1.0, 0.0], [0.0, -1.0]]
    weights = GradCAM._compute_weights(gradients, features)
    np.testing.assert_allclose(np.reshape(weights, -1), [1.0, -0.5])
    np.testing.assert_allclose(GradCAM._apply_weights(weights, features),
                               [[[0.0, 1.0], [0.0, 0.0]]])        # relu(A_0 - A_1 / 2)
    means, masks = FEM._compute_weights(features, 1.0)
    np.testing.assert_allclose(np.reshape(means, -1), [0.5, 1.0])
    np.testing.assert_array_equal(masks[0, ..., 0], [[1, 1], [0, 0]])   # 1 >= 0.5 + 0.5
    np.testing.assert_array_equal(masks[0, ..., 1], [[1, 0], [0, 0]])   # 3 >= 1 + sqrt(1.5)
    np.testing.assert_allclose(FEM._apply_weights(means, masks), [[[1.5, 0.5], [0, 0]]])


def test_gradcam_still_imports_from_gradients():
    assert GradCAMFromGradients is GradCAM
    assert issubclass(GradCAMPP, GradCAM)
