"""The benchmark beyond images: its data is what it claims, its scores score what they say."""
import numpy as np
import pytest

import beyond_data as data
from bench_quality_beyond import (max_on_unused, pointing_game, rank_correlation,
                                  share_in_mask, share_on)


# -- Friedman #1 --------------------------------------------------------------------------
def test_friedman_indices_closed_form_properties():
    indices = data.friedman1_indices()
    first, total = indices["first_order"], indices["total"]
    assert first.sum() <= 1.0 and total.sum() >= 1.0        # interaction x1 x2 only
    np.testing.assert_array_equal(first[5:], 0.0)
    np.testing.assert_array_equal(total[5:], 0.0)
    np.testing.assert_allclose(first[2:5], total[2:5])        # additive terms
    assert first[0] == first[1] and total[0] == total[1] > first[0]
    # first-order plus the one interaction term add up to 1
    assert first.sum() + (total[0] - first[0]) == pytest.approx(1.0, abs=1e-12)
    x = data.friedman1_inputs(400_000, seed=3)
    assert np.var(data.friedman1_numpy(x)) == pytest.approx(indices["variance"], rel=5e-3)


def test_friedman_indices_match_a_monte_carlo_estimate():
    """Saltelli's first-order and Jansen's total estimators, 200,000 pairs of points."""
    indices = data.friedman1_indices()
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(2, 200_000, 10))
    fa, fb = data.friedman1_numpy(a), data.friedman1_numpy(b)
    variance = np.var(np.concatenate([fa, fb]))
    for j in range(10):
        mixed = a.copy()
        mixed[:, j] = b[:, j]
        fm = data.friedman1_numpy(mixed)
        assert np.mean(fb * (fm - fa)) / variance == pytest.approx(
            indices["first_order"][j], abs=0.01)
        assert 0.5 * np.mean((fa - fm) ** 2) / variance == pytest.approx(
            indices["total"][j], abs=0.005)


def test_friedman_tensorflow_function_matches_numpy_and_ignores_noise_features():
    x = data.friedman1_inputs(64, seed=1)
    np.testing.assert_allclose(np.asarray(data.friedman1_tf(x))[:, 0],
                               data.friedman1_numpy(x), rtol=1e-5)
    shuffled = x.copy()
    shuffled[:, 5:] = np.random.default_rng(2).uniform(size=(64, 5))
    np.testing.assert_array_equal(np.asarray(data.friedman1_tf(shuffled)),
                                  np.asarray(data.friedman1_tf(x)))


# -- make_classification ------------------------------------------------------------------
def test_tabular_informative_features_come_first_and_noise_carries_nothing():
    table = data.make_tabular(3000, seed=0)
    assert table.informative.tolist() == [True] * 4 + [False] * 6
    assert 0.4 < table.labels.mean() < 0.6 and table.labels[:50].std() > 0  # rows shuffled
    from sklearn.linear_model import LogisticRegression

    def accuracy(columns):
        model = LogisticRegression().fit(table.features[:2000, columns], table.labels[:2000])
        return model.score(table.features[2000:, columns], table.labels[2000:])

    assert accuracy(slice(0, 4)) > 0.75
    assert accuracy(slice(4, 10)) < 0.6


# -- time series --------------------------------------------------------------------------
def test_series_motif_is_inside_its_window_and_sets_the_class():
    series = data.make_series(200, seed=0, noise=0.0)       # motif and decoy, no noise
    windows, decoys = series.window_masks(), series.window_masks(decoy=True)
    assert windows.sum(axis=(1, 2)).tolist() == [series.width] * 200
    assert not np.any(windows & decoys)                      # the decoy never overlaps
    assert np.all(series.signals[~(windows | decoys)] == 0)
    shapes, pulse = data.motifs(series.width, 3.0), data.decoy(series.width, 3.0)
    for i in range(200):
        start, channel = series.starts[i], series.channels[i]
        np.testing.assert_allclose(series.signals[i, start:start + series.width, channel],
                                   shapes[series.labels[i]], atol=1e-6)
        np.testing.assert_allclose(series.signals[i][decoys[i]], pulse, atol=1e-6)
    assert set(series.channels) == {0, 1} and series.starts.max() <= 64 - series.width
    assert 0.4 < series.labels.mean() < 0.6
    # the decoy's place says nothing of the class
    for label in (0, 1):
        assert 20 < series.decoy_starts[series.labels == label].mean() < 32
    noisy = data.make_series(200, seed=0)
    np.testing.assert_array_equal(noisy.starts, series.starts)   # same draws, plus noise
    assert 0.8 < np.std(noisy.signals[~(noisy.window_masks() | noisy.window_masks(True))]) < 1.2


# -- text ---------------------------------------------------------------------------------
def test_text_pads_planted_words_and_labels():
    text = data.make_text(300, seed=0)
    positions = np.arange(text.tokens.shape[1])[None, :]
    pads = positions >= text.lengths[:, None]
    assert np.all(text.tokens[pads] == data.PAD_ID)
    assert np.all(text.tokens[~pads] != data.PAD_ID)
    assert not np.any(text.tokens == data.MASK_ID)
    assert np.all(text.planted <= ~pads)
    assert set(text.planted.sum(axis=1)) == {1, 2}
    sentiment = np.isin(text.tokens, np.concatenate([data.POSITIVE_IDS, data.NEGATIVE_IDS]))
    np.testing.assert_array_equal(sentiment, text.planted)      # only the planted words
    for i in range(300):
        polarity = data.POSITIVE_IDS if text.labels[i] else data.NEGATIVE_IDS
        assert np.all(np.isin(text.tokens[i][text.planted[i]], polarity))
    assert text.lengths.min() >= 8 and text.lengths.max() <= 24


def test_text_model_splits_and_planted_words_decide_its_prediction():
    text = data.make_text(1200, seed=0)
    train, test = data.split(text, 0.25)
    model = data.text_model(24, seed=0)
    accuracy = data.fit_classifier(model.model, train.tokens, train.labels, test.tokens,
                                   test.labels, epochs=4, seed=0)
    assert accuracy > 0.95
    tokens = test.tokens[:100]
    np.testing.assert_allclose(np.asarray(model.model(tokens)),
                               np.asarray(model.head(model.embedder(tokens))), atol=1e-5)
    masked = np.where(test.planted[:100], data.MASK_ID, tokens)
    decided = np.argmax(np.asarray(model.model(masked)), axis=1) == test.labels[:100]
    assert decided.mean() < 0.75                     # near chance without the planted words


# -- scores -------------------------------------------------------------------------------
def test_tabular_scores_on_hand_made_maps():
    informative = np.array([True, True, False, False])
    maps = np.array([[3.0, -1.0, 0.0, 0.0], [1.0, 0.0, -2.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(share_on(maps, informative), [1.0, 0.25, 0.0])
    np.testing.assert_allclose(max_on_unused(maps, informative), [0.0, 1.0, 0.0])
    reference = np.array([0.5, 0.3, 0.0, 0.0])
    correlation = rank_correlation(np.array([[2.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0],
                                             [1.0, 1.0, 1.0, 1.0]]), reference)
    np.testing.assert_allclose(correlation[[0, 2]], [1.0, 0.0])
    assert correlation[1] < 0


def test_pointing_game_and_share_in_mask_with_ties_and_pads():
    masks = np.array([[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]], bool)
    maps = np.array([[0.1, 0.9, 0.2, -3.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(pointing_game(maps, masks), [1.0, 0.5])
    np.testing.assert_allclose(share_in_mask(maps, masks), [1.1 / 1.2, 0.5])
    # invalid cells (pads) never hold the maximum, even when the others are negative
    valid = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)
    negative = np.array([[-1.0, -0.5, -2.0, 0.0, 0.0], [5.0, -1.0, -2.0, -3.0, -4.0]])
    np.testing.assert_allclose(pointing_game(negative, masks, valid), [1.0, 1.0])
    # (N, T, C) maps against (N, T, C) windows
    windows = np.zeros((1, 4, 2), bool)
    windows[0, 1:3, 1] = True
    series_map = np.zeros((1, 4, 2))
    series_map[0, 2, 1], series_map[0, 0, 0] = 2.0, 1.0
    assert pointing_game(series_map, windows) == [1.0]
    assert share_in_mask(series_map, windows) == pytest.approx([2 / 3])


def test_the_benchmark_settings_build_every_method_on_every_modality():
    import keras

    from bench_quality_beyond import series_methods, tabular_methods, text_methods
    from sobol_tf import attributions

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for methods in (tabular_methods(0, np.zeros(10)), series_methods(0), text_methods(0)):
        assert set(methods) == {"Sobol", "RISE", "Occlusion", "HSIC", "Lime", "KernelShap",
                                "Saliency", "IntegratedGradients"}
        for class_name, settings in methods.values():
            getattr(attributions, class_name)(model, **settings)
