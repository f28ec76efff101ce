"""Rise and Occlusion on tabular rows and time series, called as Xplique's own tests call
them (tests/attributions/test_common.py::test_data_types_shapes and
test_tabular_data.py: ``Occlusion(model)``, ``Occlusion(model, patch_size=1,
patch_stride=1)``, ``Occlusion(model, bs, patch_size=1, patch_stride=1)`` with batch
sizes None / 1 / 32, ``Rise(model, nb_samples=2)``, on numpy, tf.Tensor and
tf.data.Dataset inputs), checked against the drops computed by calling the model."""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion, Rise


def regression_model(features_shape, outputs):
    """Xplique's generate_regression_model: Flatten, Dense(4, relu) x 2, Dense(outputs)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input(features_shape), keras.layers.Flatten(),
        keras.layers.Dense(4, activation="relu"), keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(outputs)])


def data(shape, nb_labels, samples):
    rng = np.random.default_rng(0)
    x = rng.random((samples,) + shape).astype(np.float32)
    y = np.eye(nb_labels, dtype=np.float32)[rng.integers(0, nb_labels, samples)]
    return x, y


def occlusion_by_hand(model, x, y, size, stride, value=0.0):
    """Sum over the patches covering each feature of score(x) - score(occluded x)."""
    score = lambda inputs: np.sum(model(inputs).numpy() * y, axis=-1)   # noqa: E731
    base = score(x)
    expected = np.zeros(x.shape)
    anchors = [range(0, n - s + 1, st) for n, s, st in zip(x.shape[1:], size, stride)]
    for corner in itertools.product(*anchors):
        window = (slice(None),) + tuple(slice(a, a + s) for a, s in zip(corner, size))
        occluded = x.copy()
        occluded[window] = value
        expected[window] += (base - score(occluded)).reshape((-1,) + (1,) * (x.ndim - 1))
    return expected


@pytest.mark.parametrize("shape, size", [((20,), (3,)), ((20, 10), (3, 3))])
def test_data_types_shapes(shape, size):
    """Xplique: Occlusion(model) and Rise(model, nb_samples=2) give maps of the inputs'
    shape on tabular (20,) and time series (20, 10); Occlusion's default 3 x 3 patch on
    a series spans 3 steps x 3 channels, as in Xplique."""
    x, y = data(shape, 5, 4)
    model = regression_model(shape, 5)
    maps = Occlusion(model)(x, y).numpy()
    assert maps.shape == x.shape
    np.testing.assert_allclose(maps, occlusion_by_hand(model, x, y, size, size),
                               rtol=1e-4, atol=1e-5)
    maps = Rise(model, nb_samples=2)(x, y)
    assert maps.shape == x.shape


@pytest.mark.parametrize("batch_size", [None, 1, 32])
def test_tabular_data_and_batch_sizes(batch_size):
    """Xplique: Occlusion(model, bs, patch_size=1, patch_stride=1) on numpy, tf and a
    dataset of (input, target) pairs, (N, F) maps: each feature's drop."""
    x, y = data((10,), 1, 6)
    model = regression_model((10,), 1)
    expected = occlusion_by_hand(model, x, y, (1,), (1,))
    explainer = Occlusion(model, batch_size, patch_size=1, patch_stride=1)
    for inputs, targets in [(x, y), (tf.constant(x), tf.constant(y)),
                            (tf.data.Dataset.from_tensor_slices((x, y)), None)]:
        maps = explainer.explain(inputs, targets)
        assert isinstance(maps, tf.Tensor) and maps.shape == (6, 10)
        np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_rise_time_series_tuple_grid_is_windows_by_channels():
    """Xplique's grid_size=(g, C) on a series of C channels equals grid_size=g."""
    x, y = data((12, 3), 2, 2)
    model = regression_model((12, 3), 2)
    pair = Rise(model, 8, None, 20, (4, 3), seed=0)(x, y).numpy()
    single = Rise(model, 8, None, 20, 4, seed=0)(x, y).numpy()
    np.testing.assert_array_equal(pair, single)
