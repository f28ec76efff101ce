"""Extremal channel masks: a model whose score reads known channels."""
import numpy as np
import pytest

import keras
from keras import layers

from sobol_tf.attributions import ExtremalPerturbation
from sobol_tf.errors import InvalidArgumentError

CHANNELS = 8
READ = (1, 4)


def _model():
    """A 1x1 convolution copies the 3 input channels into 8 positive channels (each a
    different mix); class 1 reads channels 1 and 4 only, class 0 channel 6 only."""
    inputs = keras.Input((6, 6, 3))
    features = layers.Conv2D(CHANNELS, 1, activation="relu", name="features")(inputs)
    pooled = layers.GlobalAveragePooling2D()(features)
    logits = layers.Dense(2, use_bias=False)(pooled)
    model = keras.Model(inputs, logits)
    rng = np.random.default_rng(0)
    model.get_layer("features").set_weights([
        rng.uniform(0.2, 1.0, size=(1, 1, 3, CHANNELS)).astype("float32"),
        np.zeros(CHANNELS, "float32")])
    head = np.zeros((CHANNELS, 2), "float32")
    head[6, 0] = 1.0
    head[READ[0], 1], head[READ[1], 1] = 1.0, 2.0
    model.layers[-1].set_weights([head])
    return model


def _inputs(n=3):
    return np.random.default_rng(1).uniform(0.5, 1.0, size=(n, 6, 6, 3)).astype("float32")


@pytest.mark.parametrize("variant", ["preserve", "delete", "dual"])
def test_the_channels_read_are_found(variant):
    explainer = ExtremalPerturbation(_model(), areas=2 / CHANNELS, variant=variant,
                                     steps=150, learning_rate=0.1, batch_size=4)
    masks = np.asarray(explainer.explain_channels(_inputs(), np.array([1, 1, 1]),
                                                  layer="features"))
    assert masks.shape == (3, CHANNELS)
    assert masks.min() >= 0 and masks.max() <= 1
    for row in masks:
        assert set(np.argsort(row)[-2:]) == set(READ), row


def test_several_areas_and_targets():
    explainer = ExtremalPerturbation(_model(), areas=(1 / CHANNELS, 2 / CHANNELS),
                                     steps=150, learning_rate=0.1)
    masks = np.asarray(explainer.explain_channels(_inputs(2), np.array([0, 1]),
                                                  layer="features"))
    assert masks.shape == (2, 2, CHANNELS)
    assert np.argmax(masks[0, 0]) == 6          # class 0 reads channel 6
    assert np.argmax(masks[1, 0]) == READ[1]    # one channel: the heavier of 1 and 4
    assert set(np.argsort(masks[1, 1])[-2:]) == set(READ)


def test_layer_errors():
    model = _model()
    explainer = ExtremalPerturbation(model, steps=2)
    with pytest.raises(InvalidArgumentError, match="'nope' is not a layer"):
        explainer.explain_channels(_inputs(1), np.array([0]), layer="nope")
    with pytest.raises(InvalidArgumentError, match="last layer"):
        explainer.explain_channels(_inputs(1), np.array([0]), layer=model.layers[-1].name)
    with pytest.raises(InvalidArgumentError, match="layer=NAME"):
        explainer.explain_channels(_inputs(1), np.array([0]))
    inputs = keras.Input((6, 6, 3))
    a = layers.Conv2D(4, 1, name="a")(inputs)
    b = layers.Conv2D(4, 1, name="b")(a)
    skip = layers.Add()([layers.Conv2D(4, 1)(inputs), b])
    branched = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(skip)))
    with pytest.raises(InvalidArgumentError, match="cannot be split at layer 'a'"):
        ExtremalPerturbation(branched, steps=2).explain_channels(
            _inputs(1), np.array([0]), layer="a")
