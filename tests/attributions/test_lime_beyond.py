"""Lime and KernelShap beyond images, against closed forms: time series (N, T, C) (one
interpretable feature per (step, channel) by default, as Xplique; windows with grid_size),
token ids (N, L) (one feature per token, mask_token, pad_token) and tabular rows with one
reference value per feature."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import KernelShap, Lime
from sobol_tf.attributions.surrogates import WeightedLinearRegression
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning

T, C = 6, 3
TS_WEIGHTS = np.random.default_rng(20).normal(size=(T, C)).astype(np.float32)
TAB_WEIGHTS = np.random.default_rng(21).normal(size=(5,)).astype(np.float32)


def series_linear(x):
    """(N, T, C) -> (N, 2): f = sum(a * x) + 0.5 and -f."""
    f = tf.reduce_sum(x * TS_WEIGHTS, axis=[1, 2]) + 0.5
    return tf.stack([f, -f], axis=-1)


def tabular_linear(x):
    f = tf.reduce_sum(x * TAB_WEIGHTS, axis=1) - 0.2
    return tf.stack([f, 3 * f], axis=-1)


def count_sevens(ids):
    """Token ids (N, L) int -> (N, 1): how many tokens are 7."""
    return tf.reduce_sum(tf.cast(tf.equal(ids, 7), tf.float32), axis=1, keepdims=True)


def series(n=2, seed=22):
    return np.random.default_rng(seed).normal(size=(n, T, C)).astype(np.float32)


# -- time series -----------------------------------------------------------------------
@pytest.mark.parametrize("ref_value, ref", [
    (None, 0.0),                                          # 0 by default, 3 channels or not
    (0.4, 0.4),
    (np.array([0.1, -0.2, 0.3]), np.array([0.1, -0.2, 0.3])),              # one per channel
    (np.arange(T * C).reshape(T, C) / 10.0, np.arange(T * C).reshape(T, C) / 10.0),  # per cell
])
def test_kernel_shap_on_a_linear_time_series_gives_each_cells_shapley_value(ref_value, ref):
    """One interpretable feature per (step, channel): phi_tc = a_tc (x_tc - ref_tc)."""
    x = series()
    maps = KernelShap(series_linear, ref_value=ref_value, nb_samples=300, seed=0)(
        x, [0, 1]).numpy()
    assert maps.shape == (2, T, C)
    expected = TS_WEIGHTS * (x - ref) * np.array([1, -1])[:, None, None]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-4)


def test_lime_with_least_squares_recovers_the_weights_of_a_linear_time_series_model():
    """f(ref + z (x - ref)) is linear in z: the fit's coefficients are a_tc (x_tc - ref),
    so inputs at ref + 1 give back the weights a."""
    ref = 0.25
    x = np.full((1, T, C), ref + 1.0, np.float32)
    maps = Lime(series_linear, interpretable_model=WeightedLinearRegression(0.0),
                ref_value=ref, nb_samples=120, kernel_width=3.0, seed=1)(x, [0]).numpy()
    np.testing.assert_allclose(maps[0], TS_WEIGHTS, rtol=1e-4, atol=1e-4)


def test_grid_size_cuts_each_channel_into_windows_along_time():
    """grid_size=3 on T=6: windows of 2 steps per channel, 9 features; each cell shows its
    window's sum of a (x - ref) in its channel."""
    x = series(1, seed=23)
    maps = KernelShap(series_linear, nb_samples=200, grid_size=3, seed=2)(x, [0]).numpy()
    contributions = (TS_WEIGHTS * x[0]).reshape(3, 2, C).sum(axis=1)      # (windows, C)
    np.testing.assert_allclose(maps[0], np.repeat(contributions, 2, axis=0),
                               rtol=1e-4, atol=1e-4)


def test_map_to_interpret_space_gets_one_series_and_returns_ids_of_its_shape():
    seen = []

    def by_channel(series_input):
        seen.append(tuple(series_input.shape))
        return tf.broadcast_to(tf.range(C), (T, C))        # one feature per channel

    x = series(2, seed=24)
    maps = KernelShap(series_linear, map_to_interpret_space=by_channel, nb_samples=40,
                      seed=3)(x, [0, 0]).numpy()
    assert seen == [(T, C), (T, C)]
    per_channel = (TS_WEIGHTS * x).sum(axis=1)                              # (N, C)
    np.testing.assert_allclose(maps, np.repeat(per_channel[:, None], T, axis=1),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(InvalidArgumentError, match=rf"shape \({T}, {C}\)"):
        KernelShap(series_linear, map_to_interpret_space=lambda s: tf.range(T),
                   nb_samples=10)(x, [0, 0])


def test_a_custom_kernel_gets_one_series_and_its_perturbed_copies():
    calls = []

    def kernel(original, samples, perturbed):
        calls.append((np.array(original), np.array(samples), np.array(perturbed)))
        return np.ones(len(samples))

    x = series(1, seed=27)
    ref = np.array([0.1, -0.2, 0.3])
    Lime(series_linear, similarity_kernel=kernel, ref_value=ref, nb_samples=20, seed=8)(
        x, [0])
    original, samples, perturbed = calls[0]
    assert original.shape == (T, C) and samples.shape == (20, T * C)
    np.testing.assert_allclose(
        perturbed, ref + samples.reshape(20, T, C) * (x[0] - ref), rtol=1e-6, atol=1e-6)


# -- tabular: one reference value per feature ------------------------------------------
def test_tabular_ref_value_holds_one_value_per_feature():
    x = np.random.default_rng(25).normal(size=(3, 5)).astype(np.float32)
    means = np.random.default_rng(26).normal(size=5)        # e.g. a reference set's means
    maps = KernelShap(tabular_linear, ref_value=means, nb_samples=100, seed=4)(
        x, [0, 1, 0]).numpy()
    expected = TAB_WEIGHTS * (x - means) * np.array([1, 3, 1])[:, None]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make, x, ref_value, message", [
    (Lime, np.ones((1, 5), np.float32), np.zeros(3),
     r"ref_value must be one number or one per feature \(5\), got 3 values"),
    (KernelShap, np.ones((1, T, C), np.float32), np.zeros(4),
     rf"ref_value must be one number, one per channel \({C}\) or one per cell \({T}, {C}\)"),
    (KernelShap, np.ones((1, T, C), np.float32), np.zeros((C, T)),
     rf"one per cell \({T}, {C}\), got shape \({C}, {T}\)"),
])
def test_a_ref_value_of_the_wrong_length_is_refused(make, x, ref_value, message):
    model = tabular_linear if x.ndim == 2 else series_linear
    with pytest.raises(InvalidArgumentError, match=message):
        make(model, ref_value=ref_value, nb_samples=10)(x, [0])


# -- token ids ---------------------------------------------------------------------------
TOKENS = np.array([[7, 3, 7, 5, 0, 0],       # 0 pads the end
                   [2, 7, 9, 9, 7, 7]], np.int32)


def test_kernel_shap_on_token_counts_gives_one_per_counted_token_and_zero_at_pads():
    """score = number of 7s: switching a 7 off (to mask_token 1) costs exactly 1, so each 7
    has Shapley value 1, every other token 0; pads are not features and get 0."""
    maps = KernelShap(count_sevens, nb_samples=200, seed=5, mask_token=1, pad_token=0)(
        TOKENS, [0, 0]).numpy()
    assert maps.shape == TOKENS.shape
    np.testing.assert_allclose(maps, (TOKENS == 7).astype(np.float32), atol=1e-5)
    # mask_token 7: switching a 7 off changes nothing (0), switching another token off
    # makes it a 7 (-1); pads still 0
    maps = KernelShap(count_sevens, nb_samples=100, seed=5, mask_token=7, pad_token=0)(
        TOKENS, [0, 0]).numpy()
    np.testing.assert_allclose(maps, -((TOKENS != 7) & (TOKENS != 0)).astype(np.float32), atol=1e-5)


def test_a_token_mapping_groups_tokens_and_ignores_pads():
    """Words of 1, 2 and 3 tokens: each word's value is its number of 7s (position 3 of
    the first text is in a word with two pads: those are no part of it); pads stay 0."""
    seen = []

    def words(ids):
        seen.append((ids.dtype, tuple(ids.shape)))
        return tf.constant([0, 1, 1, 2, 2, 2])

    maps = KernelShap(count_sevens, map_to_interpret_space=words, nb_samples=60, seed=9,
                      mask_token=1, pad_token=0)(TOKENS, [0, 0]).numpy()
    assert seen == [(tf.int32, (6,))] * 2
    np.testing.assert_allclose(maps, [[1, 1, 1, 0, 0, 0], [0, 1, 1, 2, 2, 2]], atol=1e-5)


def test_token_perturbations_use_mask_token_and_never_touch_pads():
    """The model sees int32 ids; switched-off tokens are mask_token; pads stay 0; the
    kernel gets one text (L,) and its perturbed copies (B, L) as int ids."""
    seen, kernel_calls = [], []

    def model(ids):
        seen.append(ids.numpy())
        return count_sevens(ids)

    def kernel(original, samples, perturbed):
        kernel_calls.append((np.array(original), np.array(samples), np.array(perturbed)))
        return np.ones(len(samples))

    explainer = Lime(model, nb_samples=16, similarity_kernel=kernel, seed=6, mask_token=1,
                     pad_token=0)
    with pytest.warns(SobolTFWarning, match="eagerly"):       # model.numpy(): not traceable
        explainer(TOKENS[:1], [0])
    batches = np.concatenate([batch for batch in seen if batch.shape[0] > 1])
    assert batches.dtype == np.int32
    assert np.all(batches[:, 4:] == 0)                                     # pads untouched
    assert np.all((batches[:, :4] == TOKENS[0, :4]) | (batches[:, :4] == 1))
    original, samples, perturbed = kernel_calls[0]
    assert original.tolist() == TOKENS[0].tolist() and samples.shape[1] == 4  # 4 features
    assert np.array_equal(perturbed[:, :4], np.where(samples == 1, TOKENS[0, :4], 1))
    assert np.all(perturbed[:, 4:] == 0)


def test_lime_on_tokens_points_at_the_counted_tokens():
    maps = Lime(count_sevens, nb_samples=100, seed=7, mask_token=1, pad_token=0)(
        TOKENS, [0, 0]).numpy()
    assert maps.shape == TOKENS.shape
    assert np.all(maps[TOKENS == 7] > 0.5) and np.all(np.abs(maps[TOKENS != 7]) < 0.1)
    assert np.all(maps[0, 4:] == 0)


def test_tokens_need_a_mask_token_and_take_no_ref_value():
    with pytest.raises(InvalidArgumentError, match="mask_token"):
        KernelShap(count_sevens, nb_samples=10)(TOKENS, [0, 0])
    with pytest.raises(InvalidArgumentError, match="ref_value.* meaningless for token ids"):
        Lime(count_sevens, ref_value=0.0, nb_samples=10, mask_token=1)(TOKENS, [0, 0])
    with pytest.raises(InvalidTypeError, match="mask_token must be a token id"):
        Lime(count_sevens, mask_token=1.5)
    with pytest.raises(InvalidArgumentError, match="pad_token=0 is for token ids"):
        Lime(tabular_linear, pad_token=0, nb_samples=10)(np.ones((1, 5), np.float32), [0])
