"""EVA: closed forms on linear models, a model whose answer is known, arguments."""
import numpy as np
import pytest

import keras
from keras import layers

from sobol_tf.attributions import Eva
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def _linear(features, classes, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)), layers.Dense(classes)])


def _expected_linear(model, x, label, epsilon):
    """AO(B) - AO(B_u) in closed form: the margin of c over y on the box is
    d_c . x + b_c - b_y + eps * |d_c|_1 (minus the fixed features' share)."""
    weights, bias = model.get_weights()
    d = weights - weights[:, [label]]                 # (F, K): w_c - w_y
    base = x @ d + bias - bias[label]
    others = [c for c in range(weights.shape[1]) if c != label]
    full = np.max((base + epsilon * np.abs(d).sum(0))[others])
    maps = []
    for u in range(x.shape[0]):
        kept = np.abs(d).sum(0) - np.abs(d[u])
        maps.append(full - np.max((base + epsilon * kept)[others]))
    return np.array(maps)


@pytest.mark.parametrize("bounds", ["ibp", "crown"])
def test_closed_form_on_a_linear_model(bounds):
    model = _linear(6, 4)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    labels = np.array([0, 2, 3])
    maps = np.asarray(Eva(model, 0.2, bounds=bounds, batch_size=4)(x, labels))
    assert maps.shape == (3, 6)
    for i in range(3):
        np.testing.assert_allclose(maps[i], _expected_linear(model, x[i], labels[i], 0.2),
                                   rtol=1e-4, atol=1e-5)


def test_two_classes_give_eps_times_weight_gap():
    model = _linear(5, 2, seed=3)
    weights, _ = model.get_weights()
    x = np.random.default_rng(1).normal(size=(1, 5)).astype("float32")
    maps = np.asarray(Eva(model, 0.5)(x, np.array([1])))
    np.testing.assert_allclose(maps[0], 0.5 * np.abs(weights[:, 0] - weights[:, 1]),
                               rtol=1e-5, atol=1e-6)


def test_image_grid_finds_the_cell_the_model_reads():
    """A convnet whose class-1 logit reads only the top-left quarter: with a 2x2 grid,
    that cell alone carries importance; the other cells exactly 0."""
    inputs = keras.Input((8, 8, 1))
    crop = layers.Cropping2D(((0, 4), (0, 4)))(inputs)
    conv = layers.Conv2D(2, 3, activation="relu")(crop)
    pooled = layers.GlobalAveragePooling2D()(conv)
    logits = layers.Dense(2)(pooled)
    model = keras.Model(inputs, logits)
    x = np.random.default_rng(2).uniform(size=(2, 8, 8, 1)).astype("float32")
    maps = np.asarray(Eva(model, 0.1, grid_size=2)(x, np.array([1, 0])))
    assert maps.shape == (2, 8, 8, 1)
    assert np.all(maps[:, :4, :4] > 0)
    np.testing.assert_array_equal(maps[:, 4:], 0.0)
    np.testing.assert_array_equal(maps[:, :4, 4:], 0.0)
    # constant on each cell
    assert np.allclose(maps[:, :4, :4], maps[:, :1, :1])


def test_batch_size_does_not_change_the_maps():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(3)])
    x = np.random.default_rng(3).uniform(size=(2, 6, 6, 2)).astype("float32")
    one = np.asarray(Eva(model, 0.05, grid_size=3, batch_size=None)(x, np.array([0, 1])))
    other = np.asarray(Eva(model, 0.05, grid_size=3, batch_size=4)(x, np.array([0, 1])))
    np.testing.assert_allclose(one, other, rtol=1e-5, atol=1e-6)


def test_hybrid_bounds_approach_the_verified_ones():
    """Hybrid at a diagonal Dense layer: its exact box is [W l, W u] per value, which
    the per-value extremes of many samples approach from inside; the maps then approach
    the verified maps; the same seed gives the same maps."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="first"),
                              layers.Dense(3)])
    model.layers[0].set_weights([np.diag([0.5, 2.0, 1.0, 3.0]).astype("float32"),
                                 np.zeros(4, "float32")])
    x = np.random.default_rng(4).normal(size=(2, 4)).astype("float32")
    verified = np.asarray(Eva(model, 0.1)(x, np.array([0, 1])))
    explainer = Eva(model, 0.1, hybrid_layer="first", nb_samples=4000, seed=0)
    hybrid = np.asarray(explainer(x, np.array([0, 1])))
    assert hybrid.shape == verified.shape
    np.testing.assert_allclose(hybrid, verified, rtol=0.02, atol=1e-3)
    again = np.asarray(Eva(model, 0.1, hybrid_layer="first", nb_samples=4000,
                           seed=0)(x, np.array([0, 1])))
    np.testing.assert_array_equal(hybrid, again)


def test_arguments_are_checked():
    model = _linear(4, 3)
    with pytest.raises(InvalidArgumentError, match="epsilon"):
        Eva(model, 0.0)
    with pytest.raises(InvalidArgumentError, match="bounds"):
        Eva(model, bounds="lp")
    with pytest.raises(InvalidArgumentError, match="classification"):
        Eva(model, operator="regression")
    with pytest.raises(InvalidTypeError, match="Keras"):
        Eva(lambda x: x)
    with pytest.raises(InvalidArgumentError, match="'nope' is not a layer"):
        Eva(model, hybrid_layer="nope")
    unsupported = keras.Sequential([keras.Input((4,)), layers.LayerNormalization(name="ln"),
                                    layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="'ln' of class LayerNormalization"):
        Eva(unsupported)
    image_model = keras.Sequential([keras.Input((4, 4, 1)), layers.Flatten(),
                                    layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="grid_size"):
        Eva(image_model, grid_size=8)(np.zeros((1, 4, 4, 1), np.float32), np.array([0]))


def test_functional_model_with_a_branch():
    """A residual block: IBP and hybrid bounds work through it; CROWN refuses it."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((6, 6, 2))
    first = layers.Conv2D(3, 3, activation="relu", name="c1")(inputs)
    second = layers.Conv2D(3, 3, padding="same", activation="relu")(first)
    outputs = layers.Dense(3)(layers.Flatten()(layers.Add()([first, second])))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(5).uniform(size=(2, 6, 6, 2)).astype("float32")
    maps = np.asarray(Eva(model, 0.01, 3)(x, np.array([0, 1])))
    assert maps.shape == (2, 6, 6, 1) and np.all(np.isfinite(maps))
    hybrid = np.asarray(Eva(model, 0.01, 3, hybrid_layer="c1", nb_samples=32,
                            seed=0)(x, np.array([0, 1])))
    assert hybrid.shape == maps.shape
    with pytest.raises(InvalidArgumentError, match="bounds='ibp'"):
        Eva(model, 0.01, 3, bounds="crown")
