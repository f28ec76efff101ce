"""Complexity, Sparseness and AverageStability against closed forms."""
import inspect
import math

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Saliency
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning
from sobol_tf.metrics import AverageStability, BaseComplexityMetric, Complexity, Sparseness
from tests.metrics.models import LinearModel


# -- Complexity and Sparseness --------------------------------------------------------
def one_hot_and_uniform(n=12):
    one_hot = np.zeros(n, np.float32)
    one_hot[5] = -3.0  # the sign does not matter
    return np.stack([one_hot, np.full(n, 0.7, np.float32)])


def test_closed_forms_one_hot_and_uniform():
    maps = one_hot_and_uniform(12)
    assert Complexity().detailed_evaluate(maps) == pytest.approx([0.0, math.log(12)],
                                                                 abs=1e-12)
    # the Gini index of one non-zero feature among n is 1 - 1/n (-> 1 as n grows)
    assert Sparseness().detailed_evaluate(maps) == pytest.approx([1 - 1 / 12, 0.0],
                                                                 abs=1e-12)


def test_hand_computed_entropy_and_gini():
    maps = np.array([[4.0, -1.0, 3.0, 2.0]])  # p = (.4, .1, .3, .2)
    p = np.array([0.4, 0.1, 0.3, 0.2])
    assert Complexity()(maps) == pytest.approx(-np.sum(p * np.log(p)), abs=1e-12)
    # sorted p = .1 .2 .3 .4: 2 * (.1 + .4 + .9 + 1.6) / 4 - 5 / 4 = 0.25
    assert Sparseness()(maps) == pytest.approx(0.25, abs=1e-12)


def test_channels_of_image_maps_are_averaged_after_absolute_values():
    # 2x2 map, 2 channels: |.| averaged over channels gives (1, 0, 0, 0) -> one-hot
    maps = np.zeros((1, 2, 2, 2), np.float32)
    maps[0, 0, 0] = (1.0, -3.0)
    assert Complexity()(maps) == pytest.approx(0.0, abs=1e-12)
    assert Sparseness()(maps) == pytest.approx(1 - 1 / 4, abs=1e-12)
    # an (N, T, C) time-series map keeps every (step, channel) cell as a feature
    series = np.zeros((1, 3, 2), np.float32)
    series[0, 1, 0] = 2.0
    assert Sparseness()(series) == pytest.approx(1 - 1 / 6, abs=1e-12)


def test_scale_invariant_even_for_tiny_maps():
    maps = np.random.default_rng(0).normal(size=(3, 5, 5))
    for metric in (Complexity(), Sparseness()):
        reference = metric.detailed_evaluate(maps)
        assert metric.detailed_evaluate(maps * 1e-12) == pytest.approx(reference, rel=1e-9)


def test_evaluate_is_the_mean_of_the_chunks_whatever_the_batch_size():
    maps = np.random.default_rng(1).uniform(size=(7, 4, 4, 3)).astype(np.float32)
    for metric_class in (Complexity, Sparseness):
        expected = float(np.mean(metric_class().detailed_evaluate(maps)))
        for batch_size in (1, 3, None):
            assert metric_class(batch_size)(maps) == pytest.approx(expected, abs=1e-12)
        assert metric_class()(maps, batch_size=2) == pytest.approx(expected, abs=1e-12)


def test_user_subclass_as_in_xplique():
    class Total(BaseComplexityMetric):
        def detailed_evaluate(self, explanations):
            return np.sum(explanations.numpy().reshape(len(explanations), -1), axis=1)

    maps = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert Total(batch_size=1)(maps) == pytest.approx(np.mean([66.0, 210.0]))


def test_all_zero_maps_are_uniform_with_a_warning():
    maps = np.zeros((2, 3, 3), np.float32)
    with pytest.warns(SobolTFWarning, match="2 explanation map"):
        assert Complexity()(maps) == pytest.approx(math.log(9), abs=1e-12)
    with pytest.warns(SobolTFWarning):
        assert Sparseness()(maps) == pytest.approx(0.0, abs=1e-12)


def test_maps_are_not_modified():
    maps = np.array([[-1.0, 2.0, 0.0]])
    Complexity()(maps), Sparseness()(maps)
    np.testing.assert_array_equal(maps, [[-1.0, 2.0, 0.0]])


@pytest.mark.parametrize("bad, error, match", [
    (np.ones(4), InvalidArgumentError, "batch of maps"),
    (np.ones((0, 4)), InvalidArgumentError, "batch of maps"),
    (np.array([[1.0, np.nan]]), InvalidArgumentError, "NaN"),
    (np.array([["a", "b"]]), InvalidTypeError, "numbers"),
])
def test_bad_explanations(bad, error, match):
    with pytest.raises(error, match=match):
        Complexity()(bad)
    with pytest.raises(error, match=match):
        Sparseness().detailed_evaluate(bad)


def test_bad_batch_size():
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        Complexity(0)
    with pytest.raises(InvalidTypeError, match="batch_size"):
        Sparseness(2.5)


# -- AverageStability -----------------------------------------------------------------
RNG = np.random.default_rng(7)
ROWS = RNG.uniform(0.5, 1.0, size=(5, 6)).astype(np.float32)      # tabular (N, F)
SERIES = RNG.uniform(0.5, 1.0, size=(3, 5, 2)).astype(np.float32)  # time series (N, T, C)
IMAGES = RNG.uniform(0.5, 1.0, size=(2, 4, 4, 3)).astype(np.float32)
COEFFICIENTS = RNG.uniform(0.5, 2.0, size=6).astype(np.float32)


def linear_rows(x):
    return tf.stack([tf.reduce_sum(x * COEFFICIENTS, axis=1), tf.reduce_sum(x, axis=1)], -1)


def quadratic_rows(x):
    """f(x) = 0.5 * sum_j a_j x_j^2: gradient a * x, so Saliency = a * x for x > 0."""
    f = 0.5 * tf.reduce_sum(COEFFICIENTS * x * x, axis=1)
    return tf.stack([f, -f], axis=-1)


def linear_series(x):
    f = tf.reduce_sum(x * np.arange(1, 11, dtype=np.float32).reshape(5, 2), axis=[1, 2])
    return tf.stack([f, -f], axis=-1)


def identity_explainer(inputs, targets):
    return np.asarray(inputs)


@pytest.mark.parametrize("model, x", [
    (LinearModel(RNG.normal(size=(4, 4, 3))), IMAGES),
    (linear_rows, ROWS),
    (linear_series, SERIES),
], ids=["images", "tabular", "time_series"])
def test_saliency_of_a_linear_model_is_perfectly_stable(model, x):
    metric = AverageStability(model, x, np.zeros(len(x), int), nb_samples=4, seed=0)
    assert metric.evaluate(Saliency(model)) == 0.0


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_saliency_of_a_quadratic_model_equals_the_hand_computed_value(distance):
    metric = AverageStability(quadratic_rows, ROWS, np.zeros(len(ROWS), int), 7, 0.1,
                              distance, 6, seed=3)
    # Saliency(x + m) - Saliency(x) = a * m for every input (x + m > 0), so
    # D = ||a * m_k|| whatever the input: the score is the mean over the 6 draws.
    moves = COEFFICIENTS.astype(np.float64) * metric.noisy_masks.astype(np.float64)
    norms = (np.sqrt(np.sum(moves ** 2, axis=1)) if distance == "l2"
             else np.sum(np.abs(moves), axis=1))
    assert metric(Saliency(quadratic_rows)) == pytest.approx(norms.mean(), rel=1e-5)


def test_saliency_of_a_quadratic_image_model_equals_numpy():
    a = RNG.uniform(0.5, 2.0, size=(4, 4, 3)).astype(np.float32)

    def quadratic_images(x):
        f = 0.5 * tf.reduce_sum(a * x * x, axis=[1, 2, 3])
        return tf.stack([f, -f], axis=-1)

    metric = AverageStability(quadratic_images, IMAGES, np.zeros(2, int), nb_samples=3,
                              seed=1)
    # Saliency: max over channels of |a * x|
    clean = np.abs(a * IMAGES).max(-1)[:, None]                                # (2, 1, 4, 4)
    noisy = np.abs(a * (IMAGES[:, None] + metric.noisy_masks[None])).max(-1)  # (2, 3, 4, 4)
    expected = np.sqrt(((noisy - clean) ** 2).sum(axis=(2, 3))).mean()
    assert metric(Saliency(quadratic_images)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("x", [ROWS, SERIES, IMAGES], ids=["tabular", "series", "images"])
def test_identity_explainer_measures_the_noise_itself(x):
    # maps = inputs: D(x + m_k, x) = ||m_k||, for each distance
    linf = lambda a, b: np.max(np.abs(a - b))  # noqa: E731
    for distance, norm in (("l2", lambda m: np.sqrt((m ** 2).sum())),
                           ("L1", lambda m: np.abs(m).sum()), (linf, lambda m: np.abs(m).max())):
        metric = AverageStability(lambda v: tf.reshape(v, (len(v), -1))[:, :2], x,
                                  np.zeros(len(x), int), 4, 0.2, distance, 5, seed=2)
        expected = np.mean([norm(m.astype(np.float64)) for m in metric.noisy_masks])
        assert metric(identity_explainer) == pytest.approx(expected, rel=1e-5)


def test_noise_fills_the_linf_ball_and_follows_the_seed():
    masks = AverageStability(linear_rows, ROWS, radius=0.3, nb_samples=2000,
                             seed=0).noisy_masks
    assert masks.shape == (2000, 6) and masks.dtype == np.float32
    assert np.abs(masks).max() <= 0.3 and masks.min() < -0.29 and masks.max() > 0.29
    assert abs(masks.mean()) < 0.01  # centred on x (Xplique's corner [0, r] has mean r/2)
    same = AverageStability(linear_rows, ROWS, radius=0.3, nb_samples=2000, seed=0)
    other = AverageStability(linear_rows, ROWS, radius=0.3, nb_samples=2000, seed=1)
    np.testing.assert_array_equal(same.noisy_masks, masks)
    assert not np.array_equal(other.noisy_masks, masks)


class Recorder:
    """An explainer that records its calls; its map is the input times the target id."""

    def __init__(self):
        self.calls = []

    def __call__(self, inputs, targets):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        self.calls.append((inputs, targets))
        return inputs * targets.argmax(axis=1)[:, None]


@pytest.mark.parametrize("batch_size, clean_calls, noisy_sizes", [
    (4, [4, 1], [4, 4, 4, 3]), (None, [5], [15]), (64, [5], [15])])
def test_clean_inputs_explained_once_noisy_ones_in_chunks(batch_size, clean_calls,
                                                          noisy_sizes):
    labels = np.array([0, 1, 1, 0, 1])
    metric = AverageStability(linear_rows, ROWS, labels, batch_size, 0.1, "l1", 3, seed=4)
    recorder = Recorder()
    score = metric(recorder)
    sizes = [len(x) for x, _ in recorder.calls]
    assert sizes == clean_calls + noisy_sizes
    # each noisy input is x_i + m_k (item j: input j // 3, draw j % 3), with y_i
    noisy = np.concatenate([x for x, _ in recorder.calls[len(clean_calls):]])
    targets = np.concatenate([y for _, y in recorder.calls[len(clean_calls):]])
    owners, draws = np.arange(15) // 3, np.arange(15) % 3
    np.testing.assert_allclose(noisy, ROWS[owners] + metric.noisy_masks[draws], atol=1e-7)
    np.testing.assert_array_equal(targets.argmax(1), labels[owners])
    # the map is x * y: the distance is |y_i| * ||m_k||_1
    expected = np.mean(labels[owners] * np.abs(metric.noisy_masks[draws]).sum(1))
    assert score == pytest.approx(expected, rel=1e-5)


def test_base_explanations_are_not_recomputed():
    labels = np.array([0, 1, 1, 0, 1])
    metric = AverageStability(linear_rows, ROWS, labels, nb_samples=2, seed=0)
    recorder = Recorder()
    base = ROWS * labels[:, None]
    assert metric.evaluate(recorder, base) == pytest.approx(metric(Recorder()), rel=1e-6)
    assert [len(x) for x, _ in recorder.calls] == [10]
    with pytest.raises(InvalidArgumentError, match="explanations has shape"):
        metric.evaluate(recorder, base[:, :3])


def test_inputs_are_not_modified():
    x = ROWS.copy()
    AverageStability(linear_rows, x, nb_samples=2, seed=0)(identity_explainer)
    np.testing.assert_array_equal(x, ROWS)


def test_token_ids_are_refused():
    ids = np.array([[1, 2, 3], [4, 5, 6]])

    def on_tokens(x):
        return tf.one_hot(x[:, 0], 2)

    with pytest.raises(InvalidArgumentError, match="token ids.*embeddings"):
        AverageStability(on_tokens, ids, np.array([0, 1]))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"radius": 0}, InvalidArgumentError, "radius must be > 0"),
    ({"radius": -0.1}, InvalidArgumentError, "radius must be > 0"),
    ({"radius": float("nan")}, InvalidArgumentError, "radius"),
    ({"radius": "0.1"}, InvalidTypeError, "radius"),
    ({"distance": "l3"}, InvalidArgumentError, r"distance must be one of \['l1', 'l2'\]"),
    ({"distance": 2}, InvalidTypeError, "distance"),
    ({"nb_samples": 0}, InvalidArgumentError, "nb_samples"),
    ({"nb_samples": 2.0}, InvalidTypeError, "nb_samples"),
    ({"batch_size": 0}, InvalidArgumentError, "batch_size"),
    ({"seed": -1}, InvalidArgumentError, "seed"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        AverageStability(linear_rows, ROWS, **kwargs)


def test_bad_maps_and_distances():
    metric = AverageStability(linear_rows, ROWS, nb_samples=2, seed=0)
    with pytest.raises(InvalidArgumentError, match="explanations has shape"):
        metric(lambda x, y: np.ones((len(x), 4)))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        metric(lambda x, y: np.full(x.shape, np.nan))
    vector = AverageStability(linear_rows, ROWS, distance=lambda a, b: a - b, nb_samples=2)
    with pytest.raises(InvalidArgumentError, match="one finite number"):
        vector(identity_explainer)


def test_positional_order_and_defaults_match_xplique():
    parameters = list(inspect.signature(AverageStability.__init__).parameters.values())[1:]
    positional = [(p.name, p.default) for p in parameters
                  if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == [("model", inspect.Parameter.empty),
                          ("inputs", inspect.Parameter.empty), ("targets", None),
                          ("batch_size", 64), ("radius", 0.1), ("distance", "l2"),
                          ("nb_samples", 20)]
    keyword_only = [p.name for p in parameters if p.kind == inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only == ["seed", "verbose", "strategy"]


def test_verbose_shows_a_progress_bar(capsys):
    metric = AverageStability(linear_rows, ROWS, None, 4, nb_samples=2, seed=0, verbose=True)
    metric(identity_explainer)
    assert "AverageStability" in capsys.readouterr().out
    AverageStability(linear_rows, ROWS, None, 4, nb_samples=2, seed=0)(identity_explainer)
    assert capsys.readouterr().out == ""
