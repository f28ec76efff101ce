"""Metrics beyond images: time series (N, T, C) and token ids (N, L), against curves and
scores computed by hand."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics import (AverageDropMetric, AverageGainMetric, AverageIncreaseMetric,
                              Deletion, Insertion, MuFidelity)

ZERO = np.array([0])


def linear_series(weights):
    """f(x) = sum_t,c w[t, c] x[t, c] on (B, T, C) series; outputs (B, 2) = [f, -f]."""
    weights = tf.constant(np.asarray(weights, np.float32))

    def model(x):
        f = tf.reduce_sum(x * weights, axis=[1, 2])
        return tf.stack([f, -f], axis=-1)
    return model


def counting(ids):
    """[number of 7s, number of 0s] of each text (B, L) of int32 ids; fails on floats."""
    ids = tf.convert_to_tensor(ids)
    tf.debugging.assert_type(ids, tf.int32)
    sevens = tf.reduce_sum(tf.cast(tf.equal(ids, 7), tf.float32), axis=1)
    zeros = tf.reduce_sum(tf.cast(tf.equal(ids, 0), tf.float32), axis=1)
    return tf.stack([sevens, zeros], axis=-1)


# -- time series: a feature is a (time step, channel) cell --------------------------------
W_TS = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)   # (T=2, C=2)
X_TS = np.ones((1, 2, 2), np.float32)
E_TS = np.array([[[0.1, 0.4], [0.3, 0.2]]])             # order: w=2, w=3, w=4, w=1


def test_deletion_time_series_cells_by_hand():
    metric = Deletion(linear_series(W_TS), X_TS, ZERO, steps=4)
    assert metric.nb_features == 4
    assert metric.detailed_evaluate(E_TS) == pytest.approx({0: 10, 1: 8, 2: 5, 3: 1, 4: 0})
    assert metric(E_TS) == pytest.approx((9 + 6.5 + 3 + 0.5) / 4)


def test_insertion_time_series_cells_by_hand():
    metric = Insertion(linear_series(W_TS), X_TS, ZERO, batch_size=2, steps=-1)
    assert metric.detailed_evaluate(E_TS) == pytest.approx({0: 0, 1: 2, 2: 5, 3: 9, 4: 10})
    assert metric(E_TS) == pytest.approx((1 + 3.5 + 7 + 9.5) / 4)


def test_deletion_time_series_one_attribution_per_step():
    # (N, T, 1): every channel of a step shares its attribution (ties: channel order)
    metric = Deletion(linear_series(W_TS), X_TS, ZERO, steps=4, baseline_mode=0.5)
    curve = metric.detailed_evaluate(np.array([[[0.1], [0.9]]]))
    # step 1 first (w=3 then w=4), then step 0 (w=1, w=2); each removal costs w / 2
    assert curve == pytest.approx({0: 10, 1: 8.5, 2: 6.5, 3: 6, 4: 5})


def test_deletion_time_series_several_inputs():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 3)).astype(np.float32)
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)
    explanations = rng.normal(size=(3, 5, 3)).astype(np.float32)
    curves = Deletion(linear_series(weights), x, np.zeros(3, int), batch_size=4,
                      steps=-1).curves(explanations)
    for i in range(3):
        order = np.argsort(-explanations[i].ravel(), kind="stable")
        contributions = (weights * x[i]).ravel()[order]
        expected = contributions.sum() - np.concatenate([[0], np.cumsum(contributions)])
        np.testing.assert_allclose(curves.scores[i], expected, rtol=1e-5, atol=1e-5)


def test_mufidelity_time_series_exact_attributions_score_one():
    rng = np.random.default_rng(1)
    weights = np.stack([np.ones(6), -np.ones(6)], axis=1).astype(np.float32)  # (6, 2)
    first = rng.uniform(0.5, 1.5, size=(3, 6))
    x = np.stack([first, first + 0.125], axis=-1).astype(np.float32)
    exact = weights * (x - 0.25)   # attributions of a linear model for baseline 0.25
    for grid_size in (None, 3):
        metric = MuFidelity(linear_series(weights), x, np.zeros(3, int), batch_size=16,
                            grid_size=grid_size, baseline_mode=0.25, nb_samples=20, seed=0)
        assert metric(exact) == pytest.approx(1.0)
    # channels are features of their own: swapping them turns the ranking upside down
    assert metric(exact[..., ::-1]) < -0.5


def test_mufidelity_time_series_masks_each_channel():
    metric = MuFidelity(linear_series(np.ones((6, 2))), np.ones((1, 6, 2), np.float32),
                        ZERO, grid_size=3, nb_samples=50, seed=0)
    assert metric._keep.shape == (50, 1, 3, 2)
    keep = metric._keep.numpy()
    assert np.any(keep[..., 0] != keep[..., 1])   # channels are drawn independently
    with pytest.raises(InvalidArgumentError, match="grid_size"):
        MuFidelity(linear_series(np.ones((6, 2))), np.ones((1, 6, 2), np.float32), ZERO,
                   grid_size=7)


def test_average_metrics_time_series_by_hand():
    model = linear_series(W_TS)
    explanations = np.array([[[0.0, 1.0], [-2.0, 4.0]]])   # masks 0, 1/4, 1/2, 1
    # masked score 0 * 1 + 2 / 4 + 3 / 2 + 4 = 6 of a clean 10
    assert AverageDropMetric(model, X_TS, ZERO)(explanations) == pytest.approx(0.4)
    assert AverageIncreaseMetric(model, X_TS, ZERO)(explanations) == 0.0
    assert AverageGainMetric(model, X_TS, ZERO)(explanations) == 0.0
    # one attribution per step (N, T, 1): masks 0 then 1 over both channels -> 7
    drop = AverageDropMetric(model, X_TS, ZERO)
    assert drop(np.array([[[1.0], [3.0]]])) == pytest.approx(0.3)
    assert drop.detailed_evaluate(X_TS, ZERO, explanations) == pytest.approx([0.4])
    gain = AverageGainMetric(linear_series(-W_TS / 20), X_TS, ZERO)  # base -0.5, after -0.3
    assert gain(explanations) == pytest.approx(0.2 / 1.5)


# -- tokens: word deletion, padded positions never perturbed ------------------------------
TEXTS = np.array([[7, 3, 7, 0, 0], [7, 7, 7, 2, 0]])   # pad_token 0: 3 and 4 real tokens
E_TEXTS = np.array([[0.9, 0.5, 0.8, 5.0, 5.0],          # pads: large, must be ignored
                    [0.1, 0.3, 0.2, 0.9, 7.0]])


def test_deletion_tokens_by_hand():
    metric = Deletion(counting, TEXTS, np.zeros(2, int), baseline_mode=1, steps=-1,
                      pad_token=0)
    curves = metric.curves(E_TEXTS)
    # input 0: 3 real tokens, floor(k * 3 / 4) of them at step k: 0, 0, 1, 2, 3 removed
    # (by rank: 7, 7, 3); input 1: 4 real tokens removed one per step (2, 7, 7, 7)
    np.testing.assert_allclose(curves.scores, [[2, 2, 1, 0, 0], [3, 3, 2, 1, 0]])
    np.testing.assert_allclose(curves.counts, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(metric.counts_per_input, [[0, 0, 1, 2, 3], [0, 1, 2, 3, 4]])
    assert metric(E_TEXTS) == pytest.approx((1.0 + 1.875) / 2)
    # pads are never replaced: the count of pad ids stays as it is at every step
    pads = Deletion(counting, TEXTS, np.ones(2, int), baseline_mode=1, steps=-1,
                    pad_token=0).curves(E_TEXTS)
    np.testing.assert_allclose(pads.scores, [[2] * 5, [1] * 5])


def test_insertion_tokens_by_hand():
    metric = Insertion(counting, TEXTS, np.zeros(2, int), baseline_mode=1, steps=-1,
                       pad_token=0)
    np.testing.assert_allclose(metric.curves(E_TEXTS).scores,
                               [[0, 0, 1, 2, 2], [0, 0, 1, 2, 3]])


def test_deletion_tokens_without_pads_counts_every_position():
    metric = Deletion(counting, TEXTS, np.zeros(2, int), baseline_mode=1, steps=-1)
    assert metric.nb_features == 5
    # the 0s are ordinary tokens now: input 0 loses its 0s first, then 7, 7, 3
    scores = metric.curves(E_TEXTS).scores
    np.testing.assert_allclose(scores[0], [2, 2, 2, 1, 0, 0])


def test_mufidelity_tokens_with_pads():
    rng = np.random.default_rng(2)
    texts = rng.choice([3, 7], size=(4, 8))
    texts[:, 6:] = 0
    texts[0, 4:] = 0
    exact = (texts == 7).astype(np.float32)    # removing a 7 costs 1
    exact[texts == 0] = 9.0                      # pads: never perturbed, so ignored
    metric = MuFidelity(counting, texts, np.zeros(4, int), baseline_mode=1, nb_samples=30,
                        seed=0, pad_token=0)
    assert metric(exact) == pytest.approx(1.0)


def test_average_drop_tokens_with_pads():
    texts = np.array([[7, 7, 7, 0]])
    explanations = np.array([[0.9, 0.1, 0.6, 100.0]])  # masks 1, 0, 0.625 (pad ignored)
    metric = AverageDropMetric(counting, texts, ZERO, mask_token=1, pad_token=0)
    assert metric(explanations) == pytest.approx(1 / 3)   # one 7 of 3 masked (M < 0.5)


# -- bad inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("inputs, bad", [
    (np.ones((2, 4), np.float32), np.ones((2, 5))),            # tabular
    (np.ones((2, 4), np.float32), np.ones((2, 4, 1))),
    (np.ones((2, 5, 3), np.float32), np.ones((2, 4, 3))),      # time series
    (np.ones((2, 5, 3), np.float32), np.ones((2, 5, 2))),
    (np.ones((2, 5, 3), np.float32), np.ones((2, 15))),
    (np.ones((2, 4, 4, 3), np.float32), np.ones((2, 4, 4, 2))),  # images
    (np.ones((2, 4, 4, 3), np.float32), np.ones((2, 16))),
])
def test_explanations_of_the_wrong_shape(inputs, bad):
    def model(x):
        return tf.reshape(tf.reduce_sum(tf.reshape(x, (tf.shape(x)[0], -1)), 1), (-1, 1))
    for metric in (Deletion(model, inputs, np.ones((2, 1))),
                   MuFidelity(model, inputs, np.ones((2, 1)), grid_size=None,
                              nb_samples=2),
                   AverageDropMetric(model, inputs, np.ones((2, 1)))):
        with pytest.raises(InvalidArgumentError, match="explanations has shape"):
            metric(bad)


def test_token_explanations_of_the_wrong_shape():
    metric = Deletion(counting, TEXTS, np.zeros(2, int), baseline_mode=1)
    for bad in (np.ones((2, 4)), np.ones((2, 5, 1)), np.ones((3, 5))):
        with pytest.raises(InvalidArgumentError, match="explanations has shape"):
            metric(bad)


@pytest.mark.parametrize("metric", [Deletion, Insertion, MuFidelity])
@pytest.mark.parametrize("baseline", [0.0, 1.5, np.float32(1.0), np.ones(5), lambda x: x])
def test_token_baseline_must_be_a_token_id(metric, baseline):
    with pytest.raises(InvalidTypeError, match="baseline_mode.*token id"):
        metric(counting, TEXTS, np.zeros(2, int), baseline_mode=baseline)


def test_token_baseline_out_of_range():
    with pytest.raises(InvalidArgumentError, match="baseline_mode"):
        Deletion(counting, TEXTS, np.zeros(2, int), baseline_mode=-1)


def test_average_on_tokens_needs_mask_token():
    with pytest.raises(InvalidArgumentError, match="mask_token"):
        AverageDropMetric(counting, TEXTS, np.zeros(2, int))
    with pytest.raises(InvalidTypeError, match="mask_token"):
        AverageDropMetric(counting, TEXTS, np.zeros(2, int), mask_token=1.5)


def test_pad_token_only_for_tokens():
    with pytest.raises(InvalidArgumentError, match="pad_token"):
        Deletion(linear_series(W_TS), X_TS, ZERO, pad_token=0)


def test_token_arguments_for_token_ids_only():
    with pytest.raises(InvalidArgumentError, match="mask_token"):
        AverageDropMetric(linear_series(W_TS), X_TS, ZERO, mask_token=1)
    with pytest.raises(InvalidTypeError, match="pad_token"):
        Deletion(counting, TEXTS, np.zeros(2, int), baseline_mode=1, pad_token=0.0)
