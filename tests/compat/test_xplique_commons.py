"""Xplique's ``xplique.commons`` names and the behaviours its own test suite checks
(issue 27): each against a closed form or a model built so that the answer is known."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf import commons
from sobol_tf.attributions import GradientInput, Occlusion, Rise, Saliency
from sobol_tf.attributions.kernels import Kernel
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.randomization import (ProgressiveLayerRandomization, batched_spearman,
                                            ssim, ssim_maps)


def linear_model(features=4, classes=3, seed=0):
    """Dense without activation: the gradient of class k is the k-th kernel column."""
    model = tf.keras.Sequential([tf.keras.layers.Input((features,)),
                                 tf.keras.layers.Dense(classes, name="dense")])
    rng = np.random.default_rng(seed)
    model.layers[0].set_weights([rng.normal(size=(features, classes)).astype(np.float32),
                                 np.zeros(classes, np.float32)])
    return model


# -- operators ------------------------------------------------------------------------
def test_default_inference_functions_are_the_commons_objects():
    model = linear_model()
    for explainer in (Saliency(model), GradientInput(model), Rise(model, nb_samples=4),
                      Occlusion(model, patch_size=1, patch_stride=1)):
        assert explainer.inference_function is commons.predictions_operator
        assert explainer.batch_inference_function is commons.batch_predictions
    assert commons.get_operator(None) is commons.predictions_operator
    assert commons.get_operator("classification") is commons.predictions_operator
    assert commons.get_operator(commons.Tasks.CLASSIFICATION) is commons.predictions_operator


def test_batch_predictions_scores_are_the_target_logits():
    model = linear_model()
    inputs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    targets = tf.one_hot([0, 1, 2, 0, 1], 3).numpy()
    expected = np.sum((inputs @ model.layers[0].get_weights()[0]) * targets, axis=-1)
    scores = commons.batch_predictions(model, inputs, targets, 2).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_check_operator():
    assert commons.check_operator(lambda model, inputs, targets: inputs)
    assert commons.check_operator(commons.Tasks.OBJECT_DETECTION)
    assert commons.check_operator("semantic segmentation")
    for task in commons.Tasks:
        assert commons.check_operator(task.value)
    with pytest.raises(commons.InvalidOperatorException, match="three arguments"):
        commons.check_operator(lambda model, inputs: inputs)
    with pytest.raises(commons.InvalidOperatorException, match="callable"):
        commons.check_operator([1, 2, 3])
    assert issubclass(commons.InvalidOperatorException, InvalidTypeError)
    with pytest.raises(InvalidArgumentError, match="operator must be one of"):
        commons.check_operator("random")


def test_predictions_one_hot_callable_on_a_numpy_model():
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)

    def model(array):                       # numpy in, numpy out
        assert isinstance(array, np.ndarray)
        return array @ weights

    inputs = np.ones((2, 4), np.float32)
    targets = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    scores = commons.predictions_one_hot_callable(model, inputs, targets).numpy()
    np.testing.assert_allclose(scores, [weights[:, 0].sum(), weights[:, 2].sum()])


# -- data conversion ------------------------------------------------------------------
def test_sanitizers_and_decorator():
    inputs = np.arange(6, dtype=np.int64).reshape(3, 2)
    targets = np.eye(3)[[0, 1, 2]]
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(2)
    tensors = commons.tensor_sanitize(dataset, None)
    np.testing.assert_array_equal(tensors[0].numpy(), inputs)
    np.testing.assert_array_equal(tensors[1].numpy(), targets)
    assert tensors[0].dtype == tf.float32
    arrays = commons.numpy_sanitize(inputs, targets)
    assert isinstance(arrays[0], np.ndarray) and arrays[0].dtype == np.float32
    assert inputs.dtype == np.int64          # the caller's array is left as it was

    class Explainer:
        @commons.sanitize_input_output
        def explain(self, inputs, targets, verbose=False):
            return inputs, targets, verbose

    out = Explainer().explain(inputs, targets, verbose=True)
    assert isinstance(out[0], tf.Tensor) and isinstance(out[1], tf.Tensor) and out[2]


# -- watch_layer ----------------------------------------------------------------------
def test_watch_layer_gradient_is_the_dense_kernel_row():
    inputs = tf.keras.layers.Input((4, 4, 1))
    conv = tf.keras.layers.Conv2D(2, 3, name="conv")
    flat = tf.keras.layers.Flatten()(conv(inputs))
    dense = tf.keras.layers.Dense(3, name="dense")
    model = tf.keras.Model(inputs, dense(flat))
    images = tf.random.uniform((2, 4, 4, 1), seed=0)
    targets = tf.one_hot([0, 2], 3)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        watched = commons.watch_layer(conv, tape)
        scores = tf.reduce_sum(model(images) * targets, axis=-1)
        features = conv.result
    gradients = tape.gradient(scores, features).numpy()
    kernel = dense.get_weights()[0]                        # (8, 3)
    expected = np.stack([kernel[:, 0], kernel[:, 2]]).reshape(2, 2, 2, 2)
    assert watched is conv
    np.testing.assert_allclose(gradients, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="already watched"):
        commons.watch_layer(conv, tape)
    commons.end_watch_layer(conv)
    assert not hasattr(conv, "result") and not hasattr(conv.call, "__wrapped__")
    model(images)
    assert not hasattr(conv, "result")
    with pytest.raises(InvalidArgumentError, match="not watched"):
        commons.end_watch_layer(conv)


# -- HSIC kernels ---------------------------------------------------------------------
def test_kernels_closed_forms():
    x = tf.constant([[0.0], [0.25], [1.0]])
    xt = tf.transpose(x)
    d = np.abs(x.numpy() - xt.numpy())
    np.testing.assert_allclose(Kernel.from_string("rbf")(x, xt, width=0.5).numpy(),
                               np.exp(-d ** 2 / 0.5), rtol=1e-6)
    b = tf.constant([[0.0], [1.0]])
    np.testing.assert_allclose(Kernel.BINARY(b, tf.transpose(b)).numpy(),
                               [[0.5, -0.5], [-0.5, 0.5]])
    sob = (x.numpy() - 0.5) * (xt.numpy() - 0.5) + (d ** 2 - d + 1 / 6) / 2
    np.testing.assert_allclose(Kernel.from_string("sobolev")(x, xt).numpy(), sob, atol=1e-6)
    assert commons.Kernel is Kernel
    with pytest.raises(InvalidArgumentError, match="'rbf', 'binary', 'sobolev'"):
        Kernel.from_string("laplace")


# -- ssim and Spearman ----------------------------------------------------------------
def test_batched_spearman_against_hand_ranks():
    a = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 1.0, 2.0, 2.0]])
    b = np.array([[4.0, 3.0, 2.0, 1.0], [30.0, 10.0, 20.0, 20.0]])
    np.testing.assert_allclose(batched_spearman(a, b).numpy(), [-1.0, 1.0], atol=1e-6)
    # ranks (1, 2, 3) vs (1, 3, 2): 1 - 6 * 2 / (3 * 8) = 0.5
    np.testing.assert_allclose(batched_spearman([[1.0, 2.0, 3.0]], [[1.0, 3.0, 2.0]]),
                               [0.5], atol=1e-6)
    assert commons.batched_spearman is batched_spearman


def test_ssim_scalar_batched_and_maps_agree():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
    b = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
    batched = ssim(a, b, batched=True).numpy()
    np.testing.assert_allclose(batched, [float(ssim(a[i], b[i])) for i in range(3)], rtol=1e-6)
    np.testing.assert_allclose(batched, ssim_maps(a, b), rtol=1e-6)
    assert float(ssim(a[0], a[0])) == pytest.approx(1.0)
    assert float(ssim(np.zeros((5, 5, 1)), np.zeros((5, 5, 1)))) == 1.0  # L = 0
    assert np.all(batched < 1.0)


# -- white-box gradient attributes ----------------------------------------------------
def test_whitebox_gradient_and_batch_gradient():
    model = linear_model()
    kernel = model.layers[0].get_weights()[0]
    inputs = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    labels = [0, 1, 2, 2, 1]
    targets = tf.one_hot(labels, 3)
    explainer = Saliency(model)
    np.testing.assert_allclose(explainer.gradient(model, inputs, targets).numpy(),
                               kernel.T[labels], rtol=1e-6)
    np.testing.assert_allclose(explainer.batch_gradient(model, inputs, targets, 2).numpy(),
                               kernel.T[labels], rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        explainer.batch_gradient(model, inputs, targets, 0)


# -- ProgressiveLayerRandomization ----------------------------------------------------
def test_fraction_rounding_down_to_no_layer_redraws_one_with_a_warning():
    model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(3, name="a"),
                                 tf.keras.layers.Dense(3, name="b"),
                                 tf.keras.layers.Dense(2, name="c")])
    with pytest.warns(Warning, match="re-drawing one, 'c'"):
        layers = ProgressiveLayerRandomization(0.25).layers_to_randomize(model)
    assert [layer.name for layer in layers] == ["c"]
    with pytest.warns(Warning, match="'a'"):
        layers = ProgressiveLayerRandomization(0.25, reverse=False).layers_to_randomize(model)
    assert [layer.name for layer in layers] == ["a"]
    assert ProgressiveLayerRandomization(0.0).layers_to_randomize(model) == []
    assert len(ProgressiveLayerRandomization(0.7).layers_to_randomize(model)) == 2


# -- randomization metrics on one vector per input ------------------------------------
def test_randomization_metrics_compare_vectors_by_spearman():
    """Explanations (N, K), as Xplique's fake explainers return: the model's logits. With
    a strategy that changes nothing the similarity is exactly 1; re-drawing the last layer
    changes the logits' ranking, so it drops below 1."""
    from sobol_tf.metrics import ModelRandomizationMetric, RandomLogitMetric
    from sobol_tf.metrics.randomization import ModelRandomizationStrategy

    class Identity(ModelRandomizationStrategy):
        def randomize(self, model):
            return model

    class Logits:
        def __init__(self, model):
            self.model = model

        def explain(self, inputs, targets):
            return self.model(tf.convert_to_tensor(inputs, tf.float32))

    model = tf.keras.Sequential([tf.keras.layers.Input((4, 4, 1)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(6, name="logits")])
    images = np.random.default_rng(0).normal(size=(5, 4, 4, 1)).astype(np.float32)
    targets = tf.one_hot([0, 1, 2, 3, 4], 6)
    same = ModelRandomizationMetric(model, images, targets, Identity())
    assert same.evaluate(Logits(model)) == pytest.approx(1.0)
    redrawn = ModelRandomizationMetric(model, images, targets,
                                       ProgressiveLayerRandomization(1))
    scores = redrawn.detailed_evaluate(Logits(model))
    assert scores.shape == (5,) and np.all(scores < 1.0)
    with pytest.raises(InvalidArgumentError, match="similarity='spearman'"):
        RandomLogitMetric(model, images, targets).evaluate(Logits(model))
    assert RandomLogitMetric(model, images, targets, similarity="spearman").evaluate(
        Logits(model)) == pytest.approx(1.0)     # the logits ignore the target class
    with pytest.raises(InvalidArgumentError):    # a wrong number of rows is still refused
        same.evaluate(lambda inputs, targets: np.zeros((4, 6)))


# -- AverageStability: worse as the radius grows --------------------------------------
def test_average_stability_grows_with_the_radius():
    """Xplique's test_noise_radius checks that the mean of the noise grows with the
    radius: true of its one-sided noise [0, r] (mean r / 2), not of our centred noise
    (mean 0). What it stands for holds: the noise's mean size |m| is r / 2, and the score
    of an explainer that moves with its input grows strictly with the radius. With the
    explainer g(x) = x (per pixel, one channel) and the L2 distance, the score is the mean
    L2 norm of the noise itself: E||m|| ~ r sqrt(d / 3) for d pixels."""
    from sobol_tf.metrics import AverageStability

    model = tf.keras.Sequential([tf.keras.layers.Input((6, 6, 1)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(2)])
    images = np.random.default_rng(0).uniform(size=(3, 6, 6, 1)).astype(np.float32)

    def identity(inputs, targets):
        return np.asarray(inputs)[..., 0]

    scores, sizes = [], []
    for radius in (1e-3, 1e-2, 1e-1, 1.0, 10.0):
        metric = AverageStability(model, images, np.array([0, 1, 0]), radius=radius,
                                  nb_samples=200, seed=0)
        sizes.append(np.mean(np.abs(metric.noisy_masks)))
        scores.append(metric.evaluate(identity))
        assert abs(np.mean(metric.noisy_masks)) < 0.05 * radius          # centred
        assert sizes[-1] == pytest.approx(radius / 2, rel=0.02)
        assert scores[-1] == pytest.approx(radius * np.sqrt(36 / 3), rel=0.05)
    assert all(a < b for a, b in zip(scores, scores[1:]))
    assert all(a < b for a, b in zip(sizes, sizes[1:]))
