"""Objective: values on a layer that copies the input (so each value is known by hand),
composition, combinations, and bad input."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.features_visualizations import Objective


def identity_model():
    """(4, 4, 2) -> layer "copy" (a 1x1 conv with the identity kernel: its output is the
    input) -> layer "scaled" (2x the copy, 1x1 conv)."""
    inputs = keras.Input((4, 4, 2))
    copy = keras.layers.Conv2D(2, 1, use_bias=False, name="copy")
    scaled = keras.layers.Conv2D(2, 1, use_bias=False, name="scaled")
    outputs = scaled(copy(inputs))
    model = keras.Model(inputs, outputs)
    copy.set_weights([np.eye(2, dtype=np.float32)[None, None]])
    scaled.set_weights([2 * np.eye(2, dtype=np.float32)[None, None]])
    return model


def values(objective, images):
    model, function, names, input_shape = objective.compile()
    return function(model(tf.constant(images))).numpy(), names, input_shape


@pytest.fixture(scope="module")
def model():
    return identity_model()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype(np.float32)


def test_each_objective_has_its_closed_form(model, image):
    x = image[0]
    got, _, _ = values(Objective.channel(model, "copy", 1), image)
    np.testing.assert_allclose(got, [x[..., 1].mean()], rtol=1e-5)
    got, _, _ = values(Objective.neuron(model, "copy", 11), image)  # row-major flat index
    np.testing.assert_allclose(got, [x.reshape(-1)[11]], rtol=1e-5)
    got, _, _ = values(Objective.layer(model, "copy"), image)  # magnitude: mean of squares
    np.testing.assert_allclose(got, [(x ** 2).mean()], rtol=1e-5)
    got, _, _ = values(Objective.layer(model, "copy", reducer="mean"), image)
    np.testing.assert_allclose(got, [x.mean()], rtol=1e-5)
    direction = np.random.default_rng(1).normal(size=(4, 4, 2)).astype(np.float32)
    dot = (x * direction).sum()
    cosine = dot / np.linalg.norm(x) / np.linalg.norm(direction)
    got, _, _ = values(Objective.direction(model, "copy", direction, cossim_pow=3.0), image)
    np.testing.assert_allclose(got, [dot * max(cosine, 0.1) ** 3], rtol=1e-4)


def test_a_direction_of_one_channel_vector_is_repeated_at_every_position(model, image):
    """A vector of the layer's channel count (e.g. a CRAFT concept of a conv layer, the
    bank's row W[k]) is the same direction at every spatial position: the objective equals
    the one of the vector tiled to the layer's shape (Xplique broadcasts it too)."""
    vector = np.array([0.3, 1.2], np.float32)
    tiled = np.broadcast_to(vector, (4, 4, 2))
    got, _, _ = values(Objective.direction(model, "copy", vector), image)
    want, _, _ = values(Objective.direction(model, "copy", tiled), image)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    got, _, _ = values(Objective.direction(model, "copy", [vector, tiled]),
                       np.repeat(image, 2, axis=0))
    np.testing.assert_allclose(got, [want[0], want[0]], rtol=1e-5)


def test_composition_is_the_weighted_sum(model, image):
    x = image[0]
    objective = (2.0 * Objective.channel(model, "copy", 0)
                 + Objective.neuron(model, "scaled", 5, multiplier=3.0)
                 - Objective.layer(model, -1, reducer="mean") * 0.5)
    got, names, _ = values(objective, image)
    expected = 2 * x[..., 0].mean() + 3 * 2 * x.reshape(-1)[5] - 0.5 * 2 * x.mean()
    np.testing.assert_allclose(got, [expected], rtol=1e-5)
    assert names == ["Channel#copy_0 & Neuron#scaled_5 & Layer#scaled"]


def test_combinations_in_product_order(model):
    objective = Objective.channel(model, "copy", [0, 1]) + Objective.neuron(model, "copy",
                                                                            [0, 1, 2])
    images = np.random.default_rng(2).normal(size=(6, 4, 4, 2)).astype(np.float32)
    got, names, input_shape = values(objective, images)
    assert input_shape == (6, 4, 4, 2)
    assert names[1] == "Channel#copy_0 & Neuron#copy_1"
    assert names[3] == "Channel#copy_1 & Neuron#copy_0"
    expected = [images[i, ..., c].mean() + images[i].reshape(-1)[n]
                for i, (c, n) in enumerate([(c, n) for c in (0, 1) for n in (0, 1, 2)])]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_operators_leave_their_operands_alone(model):
    a, b = Objective.channel(model, "copy", 0), Objective.channel(model, "copy", 1)
    _ = a - b
    _ = 3 * a
    assert a.multipliers == [1.0] and b.multipliers == [1.0]


@pytest.mark.parametrize("build, error, words", [
    (lambda m: Objective.channel(m, "nope", 0), InvalidArgumentError, "'nope'"),
    (lambda m: Objective.channel(m, 7, 0), InvalidArgumentError, "layer"),
    (lambda m: Objective.neuron(m, "copy", 32), InvalidArgumentError, "neurons_ids"),
    (lambda m: Objective.neuron(m, "copy", 1.5), InvalidTypeError, "neurons_ids"),
    (lambda m: Objective.channel(m, "copy", [0, 2]), InvalidArgumentError, "channel_ids"),
    (lambda m: Objective.channel(m, "copy", []), InvalidArgumentError, "channel_ids"),
    (lambda m: Objective.direction(m, "copy", np.ones(3)), InvalidArgumentError, "vectors"),
    (lambda m: Objective.layer(m, "copy", reducer="max"), InvalidArgumentError, "reducer"),
    (lambda m: Objective.layer(m, "copy", multiplier="2"), InvalidTypeError, "multiplier"),
    (lambda m: Objective.channel(m, "copy", 0) * Objective.channel(m, "copy", 1),
     InvalidTypeError, "number"),
    (lambda m: Objective.channel(m, "copy", 0) + 1.0, InvalidTypeError, "Objective"),
    (lambda m: Objective.channel(lambda x: x, "copy", 0), InvalidTypeError, "Keras model"),
])
def test_bad_input(model, build, error, words):
    with pytest.raises(error, match=words):
        build(model)


def test_direction_masks_hold_the_vectors_as_given(model):
    """objective.masks[0][i] is the i-th direction itself (Xplique's test_direction), in
    its own float precision; compile casts it to float32."""
    rng = np.random.default_rng(3)
    vector = rng.random((4, 4, 2))                       # float64
    objective = Objective.direction(model, "copy", vector)
    assert objective.masks[0][0].dtype == np.float64
    np.testing.assert_array_equal(objective.masks[0][0], vector)
    vector[0, 0, 0] = 5.0                                # a copy: the caller's array is free
    assert objective.masks[0][0][0, 0, 0] != 5.0
    second = rng.random((4, 4, 2))
    both = Objective.direction(model, "copy", [objective.masks[0][0], second])
    np.testing.assert_array_equal(both.masks[0][1], second)
