"""Sanity checks of Adebayo et al. (2018): ProgressiveLayerRandomization,
ModelRandomizationMetric and RandomLogitMetric, against hand-computed values."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Saliency
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics import (
    ModelRandomizationMetric,
    ModelRandomizationStrategy,
    ProgressiveLayerRandomization,
    RandomLogitMetric,
)
from sobol_tf.metrics.randomization import spearman_rows, ssim_maps


def dense_stack():
    """Input (4,) -> d1 (3) -> d2 (3) -> d3 (2), with a weightless layer between."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(3, name="d1"),
        keras.layers.Activation("relu", name="act"),
        keras.layers.Dense(3, name="d2"),
        keras.layers.Dense(2, name="d3"),
    ])


def weights_of(model):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers}


def changed(before, after):
    return sorted(name for name in before
                  if any(not np.array_equal(b, a) for b, a in zip(before[name], after[name])))


def linear_model(kernel):
    """A Dense model without bias on rows (F,): outputs x @ kernel."""
    kernel = np.asarray(kernel, np.float32)
    model = keras.Sequential([keras.Input((kernel.shape[0],)),
                              keras.layers.Dense(kernel.shape[1], use_bias=False)])
    model.layers[0].set_weights([kernel])
    return model


def hand_spearman(a, b):
    """1 - 6 sum d^2 / (n (n^2 - 1)), for vectors without ties."""
    rank_a, rank_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    n = len(a)
    return 1 - 6 * np.sum((rank_a - rank_b) ** 2) / (n * (n ** 2 - 1))


class InputOnly:
    """A fake explainer: maps are the inputs, whatever the model and the targets."""

    def __init__(self, model=None):
        self.model = model
        self.calls = 0

    def explain(self, inputs, targets=None):
        self.calls += 1
        return np.asarray(inputs)


# -- ProgressiveLayerRandomization -----------------------------------------------------
@pytest.mark.parametrize("stop_layer, reverse, expected", [
    ("d1", True, ["d2", "d3"]),        # from the top, down to d1 (kept)
    ("act", True, ["d2", "d3"]),       # a weightless layer stops the cascade too
    ("d3", False, ["d1", "d2"]),       # from the input, up to d3 (kept)
    (1, True, ["d3"]),
    (2, False, ["d1", "d2"]),
    (0, True, []),
    (10, True, ["d1", "d2", "d3"]),
    (0.5, True, ["d3"]),               # int(0.5 * 3) = 1 layer
    (1.0, False, ["d1", "d2", "d3"]),
])
def test_progressive_randomization_redraws_exactly_the_layers_up_to_stop_layer(
        stop_layer, reverse, expected):
    model = dense_stack()
    before = weights_of(model)
    strategy = ProgressiveLayerRandomization(stop_layer, reverse, seed=3)
    assert sorted(layer.name for layer in strategy.layers_to_randomize(model)) == expected
    assert strategy.randomize(model) is model       # in place, as Xplique
    after = weights_of(model)
    assert changed(before, after) == expected
    for name in expected:                            # U[0, 1) draws, kernels and biases
        for weight in after[name]:
            assert weight.min() >= 0 and weight.max() < 1
    again = dense_stack()
    ProgressiveLayerRandomization(stop_layer, reverse, seed=3).randomize(again)
    for name in after:                               # same seed, same weights
        for a, b in zip(after[name], weights_of(again)[name]):
            np.testing.assert_array_equal(a, b)


def test_progressive_randomization_bad_arguments():
    for bad in ({"not": "allowed"}, True, None, [1]):
        with pytest.raises(InvalidTypeError, match="stop_layer"):
            ProgressiveLayerRandomization(bad)
    for bad in (1.5, -0.1, float("nan"), -1):
        with pytest.raises(InvalidArgumentError, match="stop_layer"):
            ProgressiveLayerRandomization(bad)
    with pytest.raises(InvalidArgumentError, match="'nope' not found.*d1"):
        ProgressiveLayerRandomization("nope").randomize(dense_stack())
    with pytest.raises(InvalidTypeError, match="Keras model"):
        ProgressiveLayerRandomization(1).randomize(lambda x: x)


# -- similarities ------------------------------------------------------------------------
def test_spearman_rows_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 12))
    b = rng.normal(size=(3, 12))
    expected = [hand_spearman(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman_rows(a, b), expected, atol=1e-6)
    np.testing.assert_allclose(spearman_rows(a, -a), -1, atol=1e-6)
    np.testing.assert_allclose(spearman_rows(a, 2 * a + 5), 1, atol=1e-6)
    # ties take their average rank: ranks (2, 0.5, 0.5) against (0, 1, 2)
    ties = spearman_rows([[3.0, 1.0, 1.0]], [[0.0, 1.0, 2.0]])
    np.testing.assert_allclose(ties, [-np.sqrt(3) / 2], atol=1e-6)
    # constant maps: rho is undefined (0 / 0): 0 by the library's one convention, both
    # constant or one constant (sobol_tf.metrics.correlations)
    np.testing.assert_allclose(spearman_rows(np.zeros((1, 5)), np.ones((1, 5))), [0])
    np.testing.assert_allclose(spearman_rows(np.zeros((1, 5)), a[:1, :5]), [0])


def test_randomization_and_mufidelity_share_one_spearman():
    from sobol_tf.metrics import correlations, fidelity, randomization
    assert randomization.spearman_rows is correlations.spearman_rows
    assert fidelity.spearman_rows is correlations.spearman_rows


def test_constant_maps_score_zero_in_the_randomization_metric():
    # a fake explainer whose maps are constant before and after the randomization: the
    # similarity is undefined and scored 0 (the convention of sobol_tf.metrics.correlations)
    model = linear_model(np.eye(4)[:, :2])
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)

    def constant(inputs, targets):
        return np.full(np.shape(inputs), 2.0, np.float32)

    metric = RandomLogitMetric(model, x, np.array([0, 1, 0]), similarity="spearman", seed=0)
    np.testing.assert_array_equal(metric.detailed_evaluate(constant), [0.0, 0.0, 0.0])


def test_ssim_of_a_one_pixel_window_is_its_luminance_term():
    """Maps of one row: the window is 1 pixel wide, the variances vanish and SSIM is
    the mean of (2ab + c1) / (a^2 + b^2 + c1), c1 = (0.01 L)^2, L = max - min of both."""
    rng = np.random.default_rng(1)
    a = rng.uniform(size=(2, 1, 6, 1)).astype(np.float32)
    b = rng.uniform(-1, 1, size=(2, 1, 6, 1)).astype(np.float32)
    expected = []
    for x, y in zip(a, b):
        c1 = (0.01 * (max(x.max(), y.max()) - min(x.min(), y.min()))) ** 2
        expected.append(np.mean((2 * x * y + c1) / (x ** 2 + y ** 2 + c1)))
    np.testing.assert_allclose(ssim_maps(a, b), expected, rtol=1e-4)
    np.testing.assert_allclose(ssim_maps(a, a), 1, atol=1e-5)
    np.testing.assert_allclose(ssim_maps(np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 8, 1))), 1)
    assert ssim_maps(a[:, :, ::-1], a)[0] < 0.9


# -- RandomLogitMetric -------------------------------------------------------------------
def test_random_classes_are_other_classes_uniform_and_seeded():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    x = np.zeros((400, 3), np.float32)
    labels = np.arange(400) % 5
    metric = RandomLogitMetric(model, x, labels, seed=7)
    assert np.all(metric.random_classes != labels)
    counts = np.bincount(metric.random_classes[labels == 0], minlength=5)
    assert counts[0] == 0 and counts[1:].min() > 5  # 80 draws among classes 1..4
    np.testing.assert_array_equal(RandomLogitMetric(model, x, labels, seed=7).random_classes,
                                  metric.random_classes)
    assert not np.array_equal(RandomLogitMetric(model, x, labels, seed=8).random_classes,
                              metric.random_classes)


@pytest.mark.parametrize("shape", [(3, 6, 6, 1), (3, 8), (3, 5, 2)])
def test_random_logit_of_an_explainer_ignoring_the_target_is_one(shape):
    x = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    model = keras.Sequential([keras.Input(shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    explainer = InputOnly(model)
    metric = RandomLogitMetric(model, x, np.array([0, 1, 2]))
    assert metric.similarity == ("ssim" if len(shape) == 4 else "spearman")
    assert metric.evaluate(explainer) == pytest.approx(1.0, abs=1e-6)
    assert explainer.calls == 2   # the target's maps and the other class's, once each


def test_random_logit_of_saliency_on_orthogonal_classes_tabular():
    """Saliency of x @ W is |W[:, c]|: w0 = (1, 2, 3, 4) and w1 = (4, -3, 2, -1) are
    orthogonal, |w1| ranks the features in the reverse order of |w0|: rho = -1; with two
    classes the other class is the one not targeted."""
    model = linear_model(np.array([[1, 4], [2, -3], [3, 2], [4, -1]]))
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    metric = RandomLogitMetric(model, x, np.array([0, 1, 0, 1]))
    np.testing.assert_array_equal(metric.random_classes, [1, 0, 1, 0])
    assert metric.evaluate(Saliency(model)) == pytest.approx(-1.0, abs=1e-6)
    # another pair: |w1| = (3, 1, 2, 2.75) against (1, 2, 3, 4): rho = 1 - 6 * 12 / 60
    model = linear_model(np.array([[1, 3], [2, 1], [3, 2], [4, -2.75]]))
    assert model.layers[0].kernel.numpy()[:, 0] @ model.layers[0].kernel.numpy()[:, 1] == 0
    expected = hand_spearman([1, 2, 3, 4], [3, 1, 2, 2.75])
    assert expected == pytest.approx(-0.2)
    assert RandomLogitMetric(model, x, np.zeros(4, int)).evaluate(Saliency(model)) == \
        pytest.approx(expected, abs=1e-6)


def test_random_logit_of_saliency_on_orthogonal_classes_images():
    """One-row grayscale images (1, 4, 1): SSIM has a 1-pixel window, its luminance term
    on |w0| = (1, 2, 3, 4) and |w1| = (4, 3, 2, 1)."""
    kernel = np.array([[1, 4], [2, -3], [3, 2], [4, -1]], np.float32)
    model = keras.Sequential([keras.Input((1, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, use_bias=False)])
    model.layers[-1].set_weights([kernel])
    a, b = np.abs(kernel[:, 0]), np.abs(kernel[:, 1])
    c1 = (0.01 * 3) ** 2
    expected = np.mean((2 * a * b + c1) / (a ** 2 + b ** 2 + c1))
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 1)).astype(np.float32)
    metric = RandomLogitMetric(model, x, np.array([0, 1]))
    assert metric.evaluate(Saliency(model)) == pytest.approx(expected, rel=1e-4)
    spearman = RandomLogitMetric(model, x, np.array([0, 1]), similarity="spearman")
    assert spearman.evaluate(Saliency(model)) == pytest.approx(-1.0, abs=1e-6)


def test_random_logit_bad_arguments():
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(InvalidArgumentError, match="2 classes"):
        RandomLogitMetric(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]),
                          x, np.ones((2, 1)))
    model = linear_model(np.ones((4, 2)))
    with pytest.raises(InvalidArgumentError, match="ssim"):
        RandomLogitMetric(model, x, np.array([0, 1]), similarity="ssim")
    with pytest.raises(InvalidArgumentError, match="similarity"):
        RandomLogitMetric(model, x, np.array([0, 1]), similarity="pearson")
    with pytest.raises(InvalidTypeError, match="explainer"):
        RandomLogitMetric(model, x, np.array([0, 1])).evaluate(42)


# -- ModelRandomizationMetric ------------------------------------------------------------
def test_model_randomization_of_an_explainer_ignoring_the_model_is_one():
    model = dense_stack()
    before = weights_of(model)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    explainer = InputOnly(model)
    metric = ModelRandomizationMetric(model, x, None,
                                      ProgressiveLayerRandomization(1.0))
    assert metric.evaluate(explainer) == pytest.approx(1.0, abs=1e-6)
    # the clean maps come from the explainer, the randomized ones from a copy of it
    assert explainer.model is model and explainer.calls == 1
    assert changed(before, weights_of(model)) == []


def test_model_randomization_of_saliency_on_a_linear_model_tabular():
    """Saliency of x @ W for class c is |W[:, c]|; after re-drawing the only layer with
    U[0, 1) (seed 42, the metric's), it is W_new[:, c]: the score of input i is
    Spearman(|W[:, c_i]|, W_new[:, c_i])."""
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(9, 3)).astype(np.float32)
    model = linear_model(kernel)
    x = rng.normal(size=(4, 9)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])
    explainer = Saliency(model)
    explainer(x, labels)     # steps compiled for the trained model must not be reused
    metric = ModelRandomizationMetric(model, x, labels, ProgressiveLayerRandomization(1))
    new_kernel = np.random.default_rng(42).uniform(size=kernel.shape).astype(np.float32)
    expected = np.mean([hand_spearman(np.abs(kernel[:, c]), new_kernel[:, c])
                        for c in labels])
    assert metric.evaluate(explainer) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)  # untouched
    assert explainer.model is model
    np.testing.assert_allclose(explainer(x, labels), np.abs(kernel[:, labels].T), atol=1e-6)
    # the default strategy (top 25% of 1 layer: none, rounded up to one) re-draws it
    with pytest.warns(Warning, match="re-drawing one"):
        ModelRandomizationMetric(model, x, labels)


def test_model_randomization_on_images_keeps_the_users_model_and_explainer():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)),
                              keras.layers.Conv2D(2, 3, padding="same", activation="relu",
                                                  name="conv"),
                              keras.layers.Flatten(),
                              keras.layers.Dense(3, name="logits"),
                              keras.layers.Softmax(name="probabilities")])
    before = weights_of(model)
    x = np.random.default_rng(0).uniform(size=(3, 6, 6, 1)).astype(np.float32)
    explainer = Saliency(model, "logits", 2)
    metric = ModelRandomizationMetric(model, x, np.array([0, 1, 2]),
                                      ProgressiveLayerRandomization("conv"))
    copy = metric.randomize_copy(model)
    assert changed(before, weights_of(copy)) == ["logits"]
    score = metric.evaluate(explainer)
    assert -1 <= score < 0.9
    assert changed(before, weights_of(model)) == []
    assert explainer.model.layers[-1].name == "logits"  # its own output_layer view
    assert metric.evaluate(explainer) == pytest.approx(score, abs=1e-6)  # seeded


def test_model_randomization_rebuilds_the_same_explainer():
    from sobol_tf.metrics.randomization import _rebinding
    model = dense_stack()
    explainer = Saliency(model, None, 7, reducer="mean")
    original, rebuild = _rebinding(explainer)
    assert original is model
    other = dense_stack()
    rebuilt = rebuild(other)
    assert type(rebuilt) is Saliency and rebuilt is not explainer
    assert rebuilt.model is other and explainer.model is model
    assert rebuilt.batch_size == 7


def test_model_randomization_with_a_custom_strategy():
    class Negate(ModelRandomizationStrategy):
        def randomize(self, model):
            model.layers[0].set_weights([-w for w in model.layers[0].get_weights()])
            return model

    kernel = np.arange(1, 13, dtype=np.float32).reshape(6, 2)
    model = linear_model(kernel)
    x = np.ones((2, 6), np.float32)
    # |-W| = |W|: Saliency cannot see the change
    assert ModelRandomizationMetric(model, x, np.array([0, 1]), Negate()).evaluate(
        Saliency(model)) == pytest.approx(1.0, abs=1e-6)


def test_model_randomization_bad_arguments():
    x = np.zeros((2, 4), np.float32)
    function = lambda batch: tf.stack([batch[:, 0], batch[:, 1]], axis=1)  # noqa: E731
    with pytest.raises(InvalidTypeError, match="Keras model"):
        ModelRandomizationMetric(function, x, np.array([0, 1]))
    with pytest.raises(InvalidArgumentError, match="'nope' not found"):
        ModelRandomizationMetric(dense_stack(), x, np.array([0, 1]),
                                 ProgressiveLayerRandomization("nope"))
    with pytest.raises(InvalidTypeError, match="randomization_strategy"):
        ModelRandomizationMetric(dense_stack(), x, np.array([0, 1]), "top")
    metric = ModelRandomizationMetric(dense_stack(), x, np.array([0, 1]),
                                      ProgressiveLayerRandomization(1))
    with pytest.raises(InvalidTypeError, match="model"):
        metric.evaluate(lambda inputs, targets: inputs)   # nothing to randomize
    with pytest.raises(InvalidTypeError, match="Keras model"):
        metric.evaluate(InputOnly(function))


def test_signatures_are_xplique_s():
    def names(cls):
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return [(p.name, p.default) for p in parameters if p.kind != p.KEYWORD_ONLY]

    empty = inspect.Parameter.empty
    base = [("model", empty), ("inputs", empty), ("targets", empty), ("batch_size", 64),
            ("activation", None), ("seed", 42)]
    assert names(RandomLogitMetric) == base
    assert names(ModelRandomizationMetric) == base[:3] + [
        ("randomization_strategy", None)] + base[3:]
    assert names(ProgressiveLayerRandomization) == [("stop_layer", empty), ("reverse", True)]


def test_a_fraction_that_rounds_to_no_layer_redraws_one_not_scored_1():
    """Xplique's default fraction 0.25 re-draws int(0.25 * 3) = 0 layers of a model with
    3 weighted layers: every explainer would score 1, silently. Ours re-draws the top one,
    with a warning; a strategy that re-draws no layer (0 layers) is refused."""
    import keras
    from sobol_tf.errors import InvalidArgumentError
    from sobol_tf.metrics import ModelRandomizationMetric

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(3),
                              keras.layers.Dense(2)])
    x = np.ones((2, 4), np.float32)
    with pytest.warns(Warning, match=r"re-drawing one, 'dense"):
        metric = ModelRandomizationMetric(model, x, np.array([0, 1]))
    with pytest.warns(Warning, match="re-drawing one"):
        redrawn = metric.randomization_strategy.layers_to_randomize(model)
    assert redrawn == [model.layers[-1]]
    with pytest.raises(InvalidArgumentError, match=r"re-draws no layer.*dense"):
        ModelRandomizationMetric(model, x, np.array([0, 1]), ProgressiveLayerRandomization(0))
    ModelRandomizationMetric(model, x, np.array([0, 1]), ProgressiveLayerRandomization(1))


def test_the_rebuilt_explainer_keeps_the_explainer_s_strategy():
    """An explainer built under ``strategy.scope()`` (no ``strategy=`` argument) is
    rebuilt on the randomized copy outside that scope: it must keep the strategy."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    used = []

    class Recording(Saliency):
        def explain(self, inputs, targets=None):
            used.append(self.strategy)
            return super().explain(inputs, targets)

    model = dense_stack()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with strategy.scope():
        explainer = Recording(model)
    metric = ModelRandomizationMetric(model, x, np.array([0, 1, 0]),
                                      ProgressiveLayerRandomization(1))
    metric.evaluate(explainer)
    assert len(used) == 2 and all(s is strategy for s in used), used
