"""optimize (Fourier-parametrised ascent), its regularisers and transformations."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.features_visualizations import (
    Objective, l1_reg, l2_reg, l_inf_reg, optimize, pad, random_blur, random_flip,
    random_jitter, random_scale, total_variation_reg)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, name="logits"),
    ])


def test_optimize_raises_each_objective(model):
    objective = Objective.neuron(model, "logits", [0, 2])
    images, names = optimize(objective, nb_steps=10, custom_shape=(16, 16), save_every=5,
                             seed=0)
    assert names == ["Neuron#logits_0", "Neuron#logits_2"]
    assert len(images) == 2 and images[-1].shape == (2, 16, 16, 3)
    assert images[-1].min() >= 0 and images[-1].max() <= 1
    logits = model(tf.image.resize(images[-1], (8, 8))).numpy()
    randoms = model(np.random.default_rng(0).uniform(0, 1, (64, 8, 8, 3))).numpy()
    for row, neuron in enumerate([0, 2]):  # image i raises its neuron above random
        assert logits[row, neuron] > randoms[:, neuron].max()


def test_regularizers_closed_forms():
    image = np.zeros((1, 2, 2, 1), np.float32)
    image[0, :, :, 0] = [[1.0, -3.0], [0.0, 2.0]]
    image = tf.constant(image)
    assert float(l1_reg(2.0)(image)[0]) == pytest.approx(2 * 6 / 4)
    assert float(l2_reg(1.0)(image)[0]) == pytest.approx(np.sqrt(14 / 4))
    assert float(l_inf_reg(0.5)(image)[0]) == pytest.approx(1.5)
    # |1-(-3)| + |0-2| (horizontal) + |1-0| + |-3-2| (vertical)
    assert float(total_variation_reg(1.0)(image)[0]) == pytest.approx(4 + 2 + 1 + 5)


def test_transformations():
    images = tf.reshape(tf.range(2 * 6 * 6 * 3, dtype=tf.float32), (2, 6, 6, 3))
    assert pad(2, 7.0)(images).shape == (2, 10, 10, 3)
    assert float(pad(2, 7.0)(images)[0, 0, 0, 0]) == 7.0
    assert random_jitter(2)(images).shape == (2, 4, 4, 3)
    assert 5 <= random_scale((0.9, 1.0))(images).shape[1] <= 6
    flipped = random_flip(horizontal=True)(images).numpy()
    assert all(np.array_equal(f, i) or np.array_equal(f, i[:, ::-1]) for f, i in
               zip(flipped, images.numpy()))
    constant = tf.ones((1, 8, 8, 5))  # a blur keeps a constant image away from the edges
    np.testing.assert_allclose(random_blur((1.0, 1.0), 3)(constant)[0, 2:-2, 2:-2], 1.0,
                               rtol=1e-5)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(nb_steps=0), InvalidArgumentError, "nb_steps"),
    (dict(values_range=(1, 0)), InvalidArgumentError, "values_range"),
    (dict(warmup_steps=-1), InvalidArgumentError, "warmup_steps"),
    (dict(warmup_steps=2.5), InvalidArgumentError, "warmup_steps"),
    (dict(transformations="strong"), InvalidArgumentError, "transformations"),
    (dict(image_normalizer="tanh"), InvalidArgumentError, "image_normalizer"),
    (dict(save_every=0), InvalidArgumentError, "save_every"),
    (dict(regularizers=[1.0]), InvalidTypeError, "regularizers"),
])
def test_bad_input(model, kwargs, error, words):
    with pytest.raises(error, match=words):
        optimize(Objective.channel(model, "conv", 0), **(dict(nb_steps=1) | kwargs))


def dead_relu_model():
    """A ReLU dead on every image in [0, 1]: its pre-activation is sum(pixels) - 100 < 0."""
    model = keras.Sequential([
        keras.Input((4, 4, 3)),
        keras.layers.Conv2D(1, 1, activation="relu", name="dead",
                            kernel_initializer="ones",
                            bias_initializer=keras.initializers.Constant(-100.0)),
    ])
    return model


@pytest.mark.parametrize("use_fft", [False, True])
def test_warmup_steps_open_the_relus_before_the_ascent(use_fft):
    """Xplique's warm-up: steps on a copy whose ReLUs pass every gradient back. Through a
    dead ReLU the ascent cannot move (zero gradient); after a warm-up it has moved the
    image towards brighter pixels (the channel's pre-activation grows with every pixel)."""
    model = dead_relu_model()
    objective = Objective.channel(model, "dead", 0)
    common = dict(nb_steps=1, use_fft=use_fft, transformations=None, custom_shape=None,
                  seed=0)
    still, _ = optimize(objective, **common)
    again, _ = optimize(objective, **common, warmup_steps=0)
    warmed, _ = optimize(objective, **common, warmup_steps=5)
    np.testing.assert_array_equal(still[-1], again[-1])        # False and 0: no warm-up
    start = optimize(objective, **(common | dict(nb_steps=1)))[0][-1]
    np.testing.assert_array_equal(still[-1], start)             # dead ReLU: nothing moves
    assert warmed[-1].mean() > still[-1].mean() + 1e-3           # the warm-up moved it
    # the caller's model keeps its ordinary ReLU gradient
    with tf.GradientTape() as tape:
        images = tf.Variable(tf.zeros((1, 4, 4, 3)))
        value = tf.reduce_sum(model(images))
    assert float(tf.reduce_sum(tf.abs(tape.gradient(value, images)))) == 0.0
