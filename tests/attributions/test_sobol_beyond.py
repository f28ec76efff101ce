"""Sobol and HSIC beyond images: tabular rows (N, F), time series (N, T, C) and token ids
(N, L), against closed forms.

Sobol perturbs an input x towards a baseline b with masks m: x' = b + m (x - b). For an
additive model f(x) = sum_i a_i x_i the perturbed score is const + sum_i a_i (x_i - b_i) m_i,
so the total index of feature i is (a_i (x_i - b_i))^2 / sum_j (a_j (x_j - b_j))^2 (masks
independent, of equal variance), and exactly 0 where a_i (x_i - b_i) == 0: the scores of
A and C_i are then computed from equal numbers.
"""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import HsicAttributionMethod, SobolAttributionMethod
from sobol_tf.attributions.perturbations import Inpainting
from sobol_tf.errors import InvalidArgumentError

A = np.array([4.0, 0.0, 2.0, 0.0, 1.0, 0.0], np.float32)
X = np.array([[1.0, 5.0, 1.0, 2.0, 1.0, 3.0],
              [2.0, 1.0, 1.0, 1.0, 2.0, 1.0]], np.float32)
USED = A != 0


def linear(x):
    return tf.reduce_sum(x * A, axis=1, keepdims=True)


def expected_total(x, baseline=0.0):
    contributions = (A * (x - baseline)) ** 2
    return contributions / contributions.sum(axis=-1, keepdims=True)


# -- tabular ----------------------------------------------------------------------------
def test_sobol_tabular_unused_features_get_exactly_zero_and_used_ones_their_share():
    explainer = SobolAttributionMethod(linear, nb_design=32)
    maps = explainer(X, [0, 0]).numpy()
    assert maps.shape == (2, 6)
    np.testing.assert_array_equal(maps[:, ~USED], 0.0)
    assert np.all(maps[:, USED] > 0)
    # the order of the closed form (shares 16:4:1 and 16:4:4 ... ties kept apart below)
    assert list(np.argsort(-maps[0])[:3]) == [0, 2, 4]
    precise = SobolAttributionMethod(linear, nb_design=1024, batch_size=None)(X, [0, 0])
    np.testing.assert_allclose(precise.numpy(), expected_total(X), atol=0.03)


@pytest.mark.parametrize("nb_design", [64, 500])
def test_hsic_tabular_unused_features_get_next_to_nothing(nb_design):
    """HSIC has no exact 0 for an unused feature (its estimate of the dependence is
    sampling noise; 0 exactly with the 64-point binary Sobol design, about 3% of the
    smallest used one with the 500-point fallback design): a clear margin, and the order
    of |a_i x_i|."""
    maps = HsicAttributionMethod(linear, nb_design=nb_design)(X, [0, 0]).numpy()
    assert maps.shape == (2, 6)
    assert np.abs(maps[:, ~USED]).max() < 0.1 * maps[:, USED].min()
    assert list(np.argsort(-maps[0])[:3]) == [0, 2, 4]


def test_sobol_tabular_baseline_of_feature_means():
    means = np.array([1.0, 0.0, 3.0, 0.0, 0.0, 0.0], np.float32)  # x_0 == mean_0
    x = X[:1].copy()
    before = means.copy()
    maps = SobolAttributionMethod(linear, nb_design=1024, batch_size=None,
                                  baseline=means)(x, [0]).numpy()
    np.testing.assert_array_equal(means, before)  # the caller's array is not modified
    assert maps[0, 0] == 0.0  # a_0 != 0 but x_0 equals its baseline
    np.testing.assert_array_equal(maps[0, ~USED], 0.0)
    np.testing.assert_allclose(maps, expected_total(x, means), atol=0.03)
    # the same through Inpainting(baseline)
    again = SobolAttributionMethod(linear, nb_design=1024, batch_size=None,
                                   perturbation_function=Inpainting(means))(x, [0])
    np.testing.assert_array_equal(again.numpy(), maps)


def test_sobol_explain_indices_in_the_callers_layout():
    indices = SobolAttributionMethod(linear, nb_design=32).explain_indices(X, [0, 0])
    assert indices.total.shape == (2, 6) and indices.first.shape == (2, 6)
    np.testing.assert_array_equal(indices.total.numpy()[:, ~USED], 0.0)
    np.testing.assert_array_equal(indices.first.numpy()[:, ~USED], 0.0)


def test_one_explainer_explains_several_layouts_with_a_design_per_number_of_cells():
    def model(x):  # rows (B, F) or images (B, H, W, C)
        flat = tf.reshape(x, (tf.shape(x)[0], -1))
        return tf.reduce_sum(flat[:, :4] * A[:4], axis=1, keepdims=True)

    explainer = SobolAttributionMethod(model, grid_size=2, nb_design=16)
    first = explainer(X, [0, 0]).numpy()
    assert explainer.masks.shape == (16 * 8, 1, 6, 1)
    assert explainer(np.ones((1, 4, 4, 1), np.float32), [0]).shape == (1, 4, 4, 1)
    assert explainer.masks.shape == (16 * 6, 2, 2, 1)
    assert explainer(X[:, :4], [0, 0]).shape == (2, 4)
    np.testing.assert_array_equal(explainer(X, [0, 0]).numpy(), first)


# -- time series ------------------------------------------------------------------------
def window_model(x):
    """Depends only on channel 1 in steps 8-15 of (B, 16, 2) series."""
    return tf.reduce_sum(x[:, 8:16, 1] ** 2, axis=1, keepdims=True)


SERIES = np.random.default_rng(0).uniform(0.5, 1.5, size=(2, 16, 2)).astype(np.float32)


@pytest.mark.parametrize("method", ["sobol", "hsic"])
def test_time_series_windows_outside_the_motif_get_zero(method):
    if method == "sobol":
        explainer = SobolAttributionMethod(window_model, grid_size=4, nb_design=32)
    else:
        explainer = HsicAttributionMethod(window_model, grid_size=4, nb_design=64)
    maps = explainer(SERIES, [0, 0]).numpy()
    assert maps.shape == (2, 16, 2)
    inside = np.zeros((16, 2), bool)
    inside[8:16, 1] = True
    assert np.all(maps[:, inside] > 0)
    # windows of 4 steps: one value per window (nearest, not bicubic)
    windows = maps.reshape(2, 4, 4, 2)
    np.testing.assert_array_equal(windows, np.repeat(windows[:, :, :1], 4, axis=2))
    if method == "sobol":
        np.testing.assert_array_equal(maps[:, ~inside], 0.0)
    else:
        assert np.abs(maps[:, ~inside]).max() < 0.2 * maps[:, inside].min()


def test_time_series_grid_size_none_is_a_cell_per_step():
    maps = SobolAttributionMethod(window_model, grid_size=None, nb_design=32)(
        SERIES, [0, 0]).numpy()
    assert maps.shape == (2, 16, 2)
    inside = np.zeros((16, 2), bool)
    inside[8:16, 1] = True
    np.testing.assert_array_equal(maps[:, ~inside], 0.0)
    assert np.all(maps[:, inside] > 0)
    # steps of equal contribution x_t^2: the larger x_t^2, the larger the index
    contributions = SERIES[:, 8:16, 1] ** 2
    assert np.corrcoef(contributions.ravel() ** 2, maps[:, 8:16, 1].ravel())[0, 1] > 0.8


def test_time_series_grid_larger_than_the_series_is_refused():
    with pytest.raises(InvalidArgumentError, match=r"grid_size=32.*16 time steps.*None"):
        SobolAttributionMethod(window_model, grid_size=32, nb_design=8)(SERIES, [0, 0])
    with pytest.raises(InvalidArgumentError, match=r"grid_size=32.*16 time steps"):
        HsicAttributionMethod(window_model, grid_size=32, nb_design=8)(SERIES, [0, 0])


def test_grid_size_none_is_refused_for_images():
    explainer = SobolAttributionMethod(window_model, grid_size=None, nb_design=8)
    with pytest.raises(InvalidArgumentError, match="grid_size=None.*images"):
        explainer(np.ones((1, 4, 4, 1), np.float32), [0])


# -- tokens -----------------------------------------------------------------------------
def count_sevens(ids):
    return tf.reduce_sum(tf.cast(tf.equal(ids, 7), tf.float32), axis=1, keepdims=True)


TOKENS = np.array([[3, 7, 5, 7, 9, 7, 2, 0, 0, 0],
                   [7, 4, 4, 8, 6, 5, 3, 7, 2, 0]], np.int32)


@pytest.mark.parametrize("method", ["sobol", "hsic"])
def test_tokens_only_positions_of_the_read_token_count_and_pads_get_zero(method):
    cls, nb_design = ((SobolAttributionMethod, 32) if method == "sobol"
                      else (HsicAttributionMethod, 64))
    explainer = cls(count_sevens, nb_design=nb_design, perturbation_function="tokens",
                    mask_token=1, pad_token=0)
    maps = explainer(TOKENS, [0, 0]).numpy()
    assert maps.shape == (2, 10)
    sevens = TOKENS == 7
    assert np.all(maps[sevens] > 0)
    np.testing.assert_array_equal(maps[TOKENS == 0], 0.0)
    if method == "sobol":
        np.testing.assert_array_equal(maps[~sevens], 0.0)
        # an additive count of independent keep / mask decisions: every 7 of a text has
        # the same share, 1 / (number of 7s)
        precise = cls(count_sevens, nb_design=512, perturbation_function="tokens",
                      mask_token=1, pad_token=0, batch_size=None)(TOKENS, [0, 0]).numpy()
        for row in range(2):
            np.testing.assert_allclose(precise[row][sevens[row]], 1 / sevens[row].sum(),
                                       atol=0.1)
    else:
        assert np.abs(maps[~sevens]).max() < 0.2 * maps[sevens].min()


def test_tokens_pads_are_never_perturbed():
    seen = []

    def model(ids):
        seen.append(ids.numpy())
        return count_sevens(ids)

    explainer = SobolAttributionMethod(model, nb_design=8, perturbation_function="tokens",
                                       mask_token=1, pad_token=0)
    explainer.run_eagerly = True if hasattr(explainer, "run_eagerly") else None
    tf.config.run_functions_eagerly(True)
    try:
        explainer(TOKENS[:1], [0])
    finally:
        tf.config.run_functions_eagerly(False)
    perturbed = np.concatenate([s for s in seen if s.shape[1] == 10])
    assert perturbed.dtype == np.int32
    np.testing.assert_array_equal(perturbed[:, 7:], 0)            # pads kept
    assert set(np.unique(perturbed[:, :7])) <= {1, 2, 3, 5, 7, 9}  # kept or mask_token
    assert (perturbed[:, :7] == 1).any()


def test_default_design_gives_every_token_its_own_decision_in_a_and_b():
    """Thresholded at 1/2, the unscrambled Sobol design of nb_design=32 ties A and B for
    one of 10 cells: that token's index would be 0 whatever the model; the default
    sampler falls back to a design without such ties."""
    ids = np.full((1, 10), 7, np.int32)
    maps = SobolAttributionMethod(count_sevens, nb_design=32, perturbation_function="tokens",
                                  mask_token=1)(ids, [0]).numpy()
    assert np.all(maps > 0), maps


def test_tokens_with_a_chosen_sampler_that_ties_a_token_are_refused():
    explainer = SobolAttributionMethod(count_sevens, nb_design=32, sampler="sobol",
                                       perturbation_function="tokens", mask_token=1)
    with pytest.raises(InvalidArgumentError, match="token"):
        explainer(np.full((1, 10), 7, np.int32), [0])


# -- bad arguments ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SobolAttributionMethod, HsicAttributionMethod])
def test_tokens_need_a_mask_token(cls):
    with pytest.raises(InvalidArgumentError, match="mask_token"):
        cls(count_sevens, nb_design=8, perturbation_function="tokens")
    explainer = cls(count_sevens, nb_design=8)
    with pytest.raises(InvalidArgumentError,
                       match=r"perturbation_function='tokens', mask_token="):
        explainer(TOKENS, [0, 0])
    with pytest.raises(InvalidArgumentError, match="mask_token.*'tokens'"):
        cls(count_sevens, nb_design=8, mask_token=1)
    tokens = cls(count_sevens, nb_design=8, perturbation_function="tokens", mask_token=1)
    with pytest.raises(InvalidArgumentError, match="token ids"):
        tokens(X, [0, 0])


@pytest.mark.parametrize("cls", [SobolAttributionMethod, HsicAttributionMethod])
def test_bad_baselines(cls):
    with pytest.raises(InvalidArgumentError, match=r"baseline.*shape \(4,\).*\(6,\)"):
        cls(linear, nb_design=8, baseline=np.zeros(4))(X, [0, 0])
    with pytest.raises(InvalidArgumentError, match="baseline.*finite"):
        cls(linear, nb_design=8, baseline=np.array([0, np.nan, 0, 0, 0, 0]))
    with pytest.raises(InvalidArgumentError, match="baseline.*'inpainting'"):
        cls(linear, nb_design=8, baseline=1.0, perturbation_function="blurring")
    with pytest.raises(InvalidArgumentError, match="baseline.*'inpainting'"):
        cls(count_sevens, nb_design=8, baseline=1.0, perturbation_function="tokens",
            mask_token=1)


def test_per_channel_baseline_of_a_time_series():
    baseline = np.array([0.0, 1.0], np.float32)  # channel 1 moves towards 1
    series = SERIES.copy()
    series[0, 8:12, 1] = 1.0  # equal to its baseline: window 2 of channel 1 gets 0
    maps = SobolAttributionMethod(window_model, grid_size=4, nb_design=32,
                                  baseline=baseline)(series, [0, 0]).numpy()
    np.testing.assert_array_equal(maps[0, 8:12, 1], 0.0)
    assert np.all(maps[0, 12:16, 1] > 0) and np.all(maps[1, 8:16, 1] > 0)


def test_inpainting_baselines_of_arrays():
    images = tf.zeros((2, 1, 3, 2))
    np.testing.assert_array_equal(Inpainting([1.0, 2.0]).baselines(images)[0, 0],
                                  [[1, 2]] * 3)
    full = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(Inpainting(full).baselines(images)[0, 0], full)
    with pytest.raises(InvalidArgumentError, match=r"baseline.*\(4,\)"):
        Inpainting(np.zeros(4)).baselines(images)
    with pytest.raises(InvalidArgumentError, match="finite"):
        Inpainting([np.inf, 0.0])


def test_size_checks_speak_of_features_windows_and_tokens():
    wide = np.ones((1, 10601), np.float32)  # 2d > 21201: over scipy's Sobol dimensions
    with pytest.raises(InvalidArgumentError,
                       match=r"10601 features.*21201.*at most 10600 features"):
        SobolAttributionMethod(lambda x: x[:, :1], nb_design=2)(wide, [0])
    series = np.ones((1, 10601, 1), np.float32)
    with pytest.raises(InvalidArgumentError, match=r"10601 time steps.*grid_size <= 10600"):
        SobolAttributionMethod(lambda x: x[:, 0], grid_size=None, nb_design=2)(series, [0])
    long_text = np.ones((1, 21202), np.int32)
    with pytest.raises(InvalidArgumentError, match=r"21202 tokens.*at most 21201 tokens per input"):
        HsicAttributionMethod(lambda x: tf.cast(x[:, :1], tf.float32), nb_design=2,
                              perturbation_function="tokens", mask_token=0)(long_text, [0])
