"""The contract every explainer keeps, run over every explainer of the library.

To add a method, add a factory ``(model, batch_size) -> explainer`` to EXPLAINERS, with
settings small enough for a CPU and a seed for anything random.
"""
import numpy as np
import pytest
import tensorflow as tf

import keras

from sobol_tf.attributions import (
    DeconvNet,
    ExtremalPerturbation,
    GradCAM,
    GradCAMPP,
    GradientInput,
    GuidedBackprop,
    HsicAttributionMethod,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    Rise,
    Saliency,
    SmoothGrad,
    SobolAttributionMethod,
    SquareGrad,
    VarGrad,
)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, ModelCallError, SobolTFError

from tests.conftest import tiny_convnet

EXPLAINERS = {
    "sobol": lambda model, batch_size: SobolAttributionMethod(
        model, grid_size=2, nb_design=8, batch_size=batch_size),
    "sobol_scrambled_blur": lambda model, batch_size: SobolAttributionMethod(
        model, grid_size=4, nb_design=8, batch_size=batch_size, seed=3,
        perturbation_function="blurring"),
    "rise": lambda model, batch_size: Rise(
        model, nb_samples=64, grid_size=3, seed=0, batch_size=batch_size),
    "occlusion_overlapping": lambda model, batch_size: Occlusion(
        model, patch_size=3, patch_stride=2, occlusion_value=0.5, batch_size=batch_size),
    "hsic_lhs": lambda model, batch_size: HsicAttributionMethod(
        model, grid_size=2, nb_design=32, sampler="lhs", seed=0, batch_size=batch_size),
    "saliency": lambda model, batch_size: Saliency(model, batch_size=batch_size),
    "integrated_gradients": lambda model, batch_size: IntegratedGradients(
        model, steps=8, batch_size=batch_size),
    "smoothgrad": lambda model, batch_size: SmoothGrad(
        model, nb_samples=8, seed=0, batch_size=batch_size),
    "gradcam": lambda model, batch_size: GradCAM(model, batch_size=batch_size),
    "gradcampp": lambda model, batch_size: GradCAMPP(model, batch_size=batch_size),
    "lime": lambda model, batch_size: Lime(
        model, batch_size=batch_size, nb_samples=16, grid_size=2, kernel_width=5.0, seed=0),
    "kernel_shap": lambda model, batch_size: KernelShap(
        model, batch_size=batch_size, nb_samples=16, grid_size=2, seed=0),
    "gradient_input": lambda model, batch_size: GradientInput(model, batch_size=batch_size),
    "squaregrad": lambda model, batch_size: SquareGrad(
        model, nb_samples=4, seed=0, batch_size=batch_size),
    "vargrad_sum": lambda model, batch_size: VarGrad(
        model, nb_samples=4, seed=0, batch_size=batch_size, reducer="sum"),
    "guided_backprop": lambda model, batch_size: GuidedBackprop(model, batch_size=batch_size),
    "deconvnet": lambda model, batch_size: DeconvNet(model, batch_size=batch_size),
    "extremal_dual_jitter": lambda model, batch_size: ExtremalPerturbation(
        model, areas=(0.1, 0.3), variant="dual", steps=8, learning_rate=0.1, mask_step=2,
        mask_sigma=2.0, max_blur=3.0, jitter=True, seed=0, batch_size=batch_size),
}

#: methods that read a layer of a Keras model and so refuse a plain callable: the
#: "model that raises" check uses a Keras model whose layer raises at call time instead.
NEEDS_KERAS_MODEL = {"gradcam", "gradcampp", "guided_backprop", "deconvnet"}

#: per-method tolerance for batch-size invariance (float32 sums in other orders).
ATOL = 1e-4

N, H, W, C, K = 3, 8, 8, 3, 3


@pytest.fixture(scope="module")
def model():
    return tiny_convnet((H, W, C), K)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(N, H, W, C)).astype(np.float32)
    labels = np.array([0, 2, 1])
    return x, labels


@pytest.fixture(scope="module", params=sorted(EXPLAINERS))
def reference(request, model, data):
    name = request.param
    x, labels = data
    maps = EXPLAINERS[name](model, 5).explain(x, labels)
    return name, np.asarray(maps)


def test_output_shape_and_finite(reference):
    _, maps = reference
    assert maps.shape[:3] == (N, H, W)
    assert maps.shape[3] in (1, C)
    assert np.all(np.isfinite(maps))
    assert np.abs(maps).max() > 0


def test_input_forms_agree(reference, model, data):
    name, expected = reference
    x, labels = data
    one_hot = np.eye(K, dtype=np.float32)[labels]
    explainer = EXPLAINERS[name](model, 5)
    results = {
        "tensor": explainer.explain(tf.constant(x), tf.constant(labels)),
        "one-hot": explainer.explain(x, one_hot),
        "call": explainer(x, labels),
        "dataset pairs": explainer.explain(tf.data.Dataset.from_tensor_slices((x, one_hot))),
        "batched dataset": explainer.explain(
            tf.data.Dataset.from_tensor_slices((x, labels)).batch(2)),
    }
    for form, maps in results.items():
        np.testing.assert_allclose(np.asarray(maps), expected, atol=ATOL, err_msg=form)


def test_batch_size_invariance(reference, model, data):
    name, expected = reference
    x, labels = data
    for batch_size in (1, 64):
        maps = EXPLAINERS[name](model, batch_size).explain(x, labels)
        np.testing.assert_allclose(np.asarray(maps), expected, atol=ATOL,
                                   err_msg=f"batch_size={batch_size}")


def test_deterministic(reference, model, data):
    name, expected = reference
    x, labels = data
    again = EXPLAINERS[name](model, 5).explain(x, labels)
    np.testing.assert_allclose(np.asarray(again), expected, atol=1e-6)


def test_same_maps_given_a_strategy(reference, model, data):
    """``strategy=`` (a keyword of every explainer) reaches the engine and keeps the maps:
    a MirroredStrategy of this process's one CPU runs every batch through
    ``strategy.run`` (two devices: tests/test_distribute.py)."""
    name, expected = reference
    x, labels = data
    args, kwargs = EXPLAINERS[name](model, 5)._init_arguments
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    explainer = type(EXPLAINERS[name](model, 5))(*args, **kwargs, strategy=strategy)
    assert explainer.strategy is strategy
    np.testing.assert_allclose(np.asarray(explainer.explain(x, labels)), expected, atol=ATOL)


def test_one_input_alone_matches_its_row(reference, model, data):
    name, expected = reference
    x, labels = data
    alone = EXPLAINERS[name](model, 5).explain(x[1:2], labels[1:2])
    np.testing.assert_allclose(np.asarray(alone)[0], expected[1], atol=ATOL)


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_bad_inputs_raise_clearly_and_leave_arrays_untouched(name, model, data):
    x, labels = data
    x_copy, labels_copy = x.copy(), labels.copy()
    explainer = EXPLAINERS[name](model, 5)
    with pytest.raises(InvalidArgumentError, match="targets has 2 rows but inputs has 3"):
        explainer.explain(x, labels[:2])
    with pytest.raises(InvalidArgumentError, match="width 5"):
        explainer.explain(x, np.eye(5, dtype=np.float32)[labels])
    with pytest.raises(InvalidArgumentError, match="class ids"):
        explainer.explain(x, np.array([0, 1, 7]))
    with pytest.raises(InvalidArgumentError, match="rank"):
        explainer.explain(x.reshape(N, -1), labels)
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN"):
        explainer.explain(nan, labels)
    with pytest.raises(InvalidArgumentError, match="empty"):
        explainer.explain(x[:0], labels[:0])
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(labels, labels_copy)


class _Boom(keras.layers.Layer):
    """Identity while the model is built; raises once ``armed``."""

    armed = False

    def call(self, inputs):
        if self.armed:
            raise RuntimeError("boom")
        return inputs


def _keras_model_that_raises():
    inputs = keras.Input((H, W, C))
    features = keras.layers.Conv2D(2, 3, padding="same")(_Boom()(inputs))
    outputs = keras.layers.Dense(K)(keras.layers.GlobalAveragePooling2D()(features))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
@pytest.mark.filterwarnings("ignore:.*has no ReLU")  # the raising layer is not a ReLU
def test_model_that_raises_is_reported(name, data):
    x, labels = data

    def broken(inputs):
        raise RuntimeError("boom")

    if name in NEEDS_KERAS_MODEL:
        with pytest.raises(InvalidTypeError, match="Keras"):
            EXPLAINERS[name](broken, 5)
        model = _keras_model_that_raises()
        explainer = EXPLAINERS[name](model, 5)
        _Boom.armed = True
        try:
            with pytest.raises(ModelCallError, match="boom") as info:
                explainer.explain(x, labels)
        finally:
            _Boom.armed = False
    else:
        with pytest.raises(ModelCallError, match="boom") as info:
            EXPLAINERS[name](broken, 5).explain(x, labels)
    assert "evaluating" in str(info.value)
    assert isinstance(info.value, SobolTFError)


@pytest.mark.parametrize("name", sorted(set(EXPLAINERS) - NEEDS_KERAS_MODEL))
def test_model_with_several_outputs_is_a_type_error(name, data):
    """Raised while the compiled loop is traced: the library's own error comes out, not
    autograph's wrapper around it."""
    x, labels = data

    def two_outputs(inputs):
        pooled = tf.reduce_mean(inputs, axis=(1, 2))
        return pooled, pooled

    with pytest.raises(InvalidTypeError, match=r"(?s)a tuple of 2 tensors.*operator="):
        EXPLAINERS[name](two_outputs, 5).explain(x, labels)
