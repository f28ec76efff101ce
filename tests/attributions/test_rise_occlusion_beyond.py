"""Rise and Occlusion beyond images: tabular rows (N, F), time series (N, T, C) and token
ids (N, L), against closed forms of models whose answer is known."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion, Rise
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

RNG = np.random.default_rng(13)
A = RNG.normal(size=6).astype(np.float32)                 # tabular weights
W = RNG.normal(size=(10, 3)).astype(np.float32)           # time-series weights (T, C)


def tabular_linear(x):
    f = tf.reduce_sum(x * A, axis=-1) + 0.5
    return tf.stack([f, -f], axis=-1)


def series_linear(x):
    f = tf.reduce_sum(x * W, axis=[1, 2]) - 1.0
    return tf.stack([f, -f], axis=-1)


COUNTED, MASK, PAD = 7, 0, 1


def count_tokens(ids):
    """The number of COUNTED tokens (ids (B, L) int32), and (second output) of pads."""
    assert ids.dtype == tf.int32
    counted = tf.reduce_sum(tf.cast(tf.equal(ids, COUNTED), tf.float32), axis=-1)
    pads = tf.reduce_sum(tf.cast(tf.equal(ids, PAD), tf.float32), axis=-1)
    return tf.stack([counted + pads, pads], axis=-1)


TOKENS = np.array([[7, 3, 7, 4, 5, 1, 1],
                   [2, 7, 9, 1, 1, 1, 1]], np.int32)


# -- Occlusion ------------------------------------------------------------------------
def test_occlusion_tabular_gives_a_i_times_x_i_minus_baseline_i():
    x = RNG.uniform(size=(3, 6)).astype(np.float32)
    reference = RNG.normal(2.0, 1.0, size=(50, 6)).astype(np.float32)
    baseline = reference.mean(axis=0)
    kept = baseline.copy()
    maps = Occlusion(tabular_linear, 4, None, 1, 1, baseline)(x, [0, 1, 0]).numpy()
    assert maps.shape == (3, 6)
    signs = np.array([1, -1, 1])[:, None]
    np.testing.assert_allclose(maps, signs * A * (x - baseline), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(baseline, kept)           # the caller's array is untouched


def test_occlusion_tabular_windows_sum_and_uncovered_features_get_zero():
    """patch 2, stride 2 over 6 features... and over 5: the last feature is in no window."""
    x = RNG.uniform(size=(2, 6)).astype(np.float32)
    maps = Occlusion(tabular_linear, patch_size=2, patch_stride=2, occlusion_value=0.5)(
        x, [0, 0]).numpy()
    drops = (A * (x - 0.5)).reshape(2, 3, 2).sum(axis=-1)
    np.testing.assert_allclose(maps, np.repeat(drops, 2, axis=1), rtol=1e-5, atol=1e-5)

    def five(x):
        return tabular_linear(tf.concat([x, tf.zeros_like(x[:, :1])], axis=-1))
    maps = Occlusion(five, patch_size=2, patch_stride=2)(x[:, :5], [0, 0]).numpy()
    np.testing.assert_allclose(maps[:, :4], np.repeat((A * x)[:, :4].reshape(2, 2, 2).sum(-1),
                                                      2, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(maps[:, 4], 0.0)


@pytest.mark.parametrize("patch, stride", [((2, 3), (2, 3)), ((3, 1), (2, 1)), (2, 2)])
def test_occlusion_time_series_gives_the_exact_per_window_sums(patch, stride):
    """Patches are (steps, channels) rectangles as in Xplique (an int p: p x p); the map is
    the sum of the drops of the patches covering each (step, channel)."""
    x = RNG.uniform(size=(2, 10, 3)).astype(np.float32)
    value = RNG.normal(size=(10, 3)).astype(np.float32)
    maps = Occlusion(series_linear, patch_size=patch, patch_stride=stride,
                     occlusion_value=value)(x, [0, 1]).numpy()
    assert maps.shape == (2, 10, 3)
    patch = patch if isinstance(patch, tuple) else (patch, patch)
    stride = stride if isinstance(stride, tuple) else (stride, stride)
    for row, sign in enumerate((1, -1)):
        expected = np.zeros((10, 3))
        for t in range(0, 10 - patch[0] + 1, stride[0]):
            for c in range(0, 3 - patch[1] + 1, stride[1]):
                window = (slice(t, t + patch[0]), slice(c, c + patch[1]))
                expected[window] += sign * np.sum(W[window] * (x[row][window] - value[window]))
        np.testing.assert_allclose(maps[row], expected, rtol=1e-4, atol=1e-4)


def test_occlusion_tokens_drops_one_per_counted_token_and_zero_at_pads():
    maps = Occlusion(count_tokens, patch_size=1, patch_stride=1, mask_token=MASK,
                     pad_token=PAD)(TOKENS, [0, 0]).numpy()
    assert maps.shape == (2, 7)
    np.testing.assert_array_equal(maps, (TOKENS == COUNTED).astype(np.float32))


def test_occlusion_token_windows_never_replace_pads():
    """Windows of 2 tokens: the window (7, pad) drops by 1 (the pad, which the model
    counts too, is kept), and the pad's own map is 0."""
    ids = np.array([[3, 7, 7, 1]], np.int32)
    maps = Occlusion(count_tokens, patch_size=2, patch_stride=1, mask_token=MASK,
                     pad_token=PAD)(ids, [0]).numpy()
    # windows (3,7): 1, (7,7): 2, (7,pad): 1 -> positions 0: 1, 1: 1+2, 2: 2+1, 3 (pad): 0
    np.testing.assert_array_equal(maps, [[1.0, 3.0, 3.0, 0.0]])


# -- Rise -----------------------------------------------------------------------------
def one_feature(x):
    return tf.stack([3.0 * x[:, 2], -x[:, 2]], axis=-1)


def test_rise_tabular_equals_the_estimator_on_its_binary_masks_and_peaks_on_the_feature():
    x = RNG.uniform(1.0, 2.0, size=(2, 6)).astype(np.float32)
    baseline = np.full(6, 0.25, np.float32)
    explainer = Rise(one_feature, nb_samples=300, seed=0, baseline=baseline, batch_size=64)
    maps = explainer(x, [0, 0]).numpy()
    assert maps.shape == (2, 6)
    masks = explainer._masks(1, 6, 1).numpy()[:, 0, :, 0].astype(np.float64)   # (P, F)
    assert set(np.unique(masks)) == {0.0, 1.0}            # one decision per feature
    for row in range(2):
        perturbed = baseline + masks * (x[row] - baseline)
        scores = 3.0 * perturbed[:, 2]
        expected = scores @ masks / (masks.sum(axis=0) + Rise.EPSILON)
        np.testing.assert_allclose(maps[row], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(maps[row, 2], 3.0 * x[row, 2], rtol=1e-4)
        others = np.delete(maps[row], 2)
        assert maps[row, 2] > others.max() + 0.5 * (x[row, 2] - 0.25)


def window_model(x):
    """Depends on steps 4..5 of channel 1 of a (T=8, C=2) series."""
    f = tf.reduce_sum(x[:, 4:6, 1], axis=-1)
    return tf.stack([f, -f], axis=-1)


def test_rise_time_series_steps_peak_in_the_window_of_the_right_channel():
    x = np.ones((1, 8, 2), np.float32)
    explainer = Rise(window_model, nb_samples=400, grid_size=None, seed=0, batch_size=200)
    maps = explainer(x, [0]).numpy()[0]
    assert maps.shape == (8, 2)
    # grid_size=None: a cell per step and channel, binary: exact in the window
    masks = explainer._masks(1, 8, 2).numpy()[:, 0].astype(np.float64)         # (P, 8, 2)
    scores = masks[:, 4:6, 1].sum(axis=-1)
    expected = np.tensordot(scores, masks, axes=1) / (masks.sum(axis=0) + Rise.EPSILON)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    inside = np.zeros((8, 2), bool)
    inside[4:6, 1] = True
    assert maps[inside].min() > maps[~inside].max() + 0.3    # 1.5 vs about 1.0


def test_rise_time_series_windows_are_smoothed_along_time_per_channel():
    """grid_size g: masks are (P, g, C) grids upsampled bilinearly along time and shifted
    (Xplique's rule); the maps equal the estimator on those masks and peak in the window."""
    x = np.ones((2, 8, 2), np.float32)
    explainer = Rise(window_model, nb_samples=500, grid_size=4, seed=1, batch_size=250)
    maps = explainer(x, [0, 0]).numpy()
    grids = explainer._masks(1, 8, 2)
    assert grids.shape == (500, 1, 4, 2)
    masks = explainer._upsample(grids, tf.range(500, dtype=tf.int64), 1, 8).numpy()[:, 0]
    assert masks.shape == (500, 8, 2) and masks.min() >= 0 and masks.max() <= 1
    assert np.any((masks > 0) & (masks < 1))               # smoothed, not binary
    assert not np.allclose(masks[:, :, 0], masks[:, :, 1])  # each channel its own mask
    scores = masks[:, 4:6, 1].sum(axis=-1)
    expected = np.tensordot(scores, masks, axes=1) / (masks.sum(axis=0) + Rise.EPSILON)
    np.testing.assert_allclose(maps[0], expected, rtol=1e-4, atol=1e-4)
    assert np.argmax(maps[0, :, 1]) in (4, 5)
    assert maps[0, 4:6, 1].mean() > maps[0, :, 0].max() + 0.1


def test_rise_tokens_one_decision_per_token_and_zero_at_pads():
    ids = np.array([[3, 7, 4, 5, 1, 1]], np.int32)
    explainer = Rise(count_tokens, nb_samples=400, seed=0, mask_token=MASK, pad_token=PAD)
    maps = explainer(ids, np.array([[1.0, -1.0]])).numpy()[0]   # counted tokens only
    assert maps.shape == (6,)
    np.testing.assert_allclose(maps[1], 1.0, rtol=1e-3)          # kept <=> counted
    np.testing.assert_array_equal(maps[4:], 0.0)
    assert maps[1] > np.max(maps[[0, 2, 3]]) + 0.3               # others about 1/2
    masks = explainer._masks(1, 6, 1).numpy()
    assert set(np.unique(masks)) == {0.0, 1.0}


# -- bad inputs -----------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: Rise(count_tokens, nb_samples=4),
    lambda: Occlusion(count_tokens, patch_size=1),
])
def test_tokens_without_mask_token_are_refused(make):
    with pytest.raises(InvalidArgumentError, match="mask_token="):
        make()(TOKENS, [0, 0])


@pytest.mark.parametrize("make", [
    lambda: Rise(tabular_linear, nb_samples=4, mask_token=0),
    lambda: Occlusion(tabular_linear, patch_size=1, mask_token=0),
])
def test_mask_token_with_float_inputs_is_refused(make):
    with pytest.raises(InvalidArgumentError, match="mask_token"):
        make()(np.ones((1, 6), np.float32), [0])


def test_patch_longer_than_the_series_is_refused():
    with pytest.raises(InvalidArgumentError, match="patch_size"):
        Occlusion(series_linear, patch_size=(11, 1))(np.ones((1, 10, 3), np.float32), [0])
    with pytest.raises(InvalidArgumentError, match=r"patch_size=\(4, 1\)"):   # 4 x 4 > C
        Occlusion(series_linear, patch_size=4)(np.ones((1, 10, 3), np.float32), [0])
    with pytest.raises(InvalidArgumentError, match="patch_size"):
        Occlusion(tabular_linear, patch_size=7)(np.ones((1, 6), np.float32), [0])
    with pytest.raises(InvalidArgumentError, match="one int"):
        Occlusion(tabular_linear, patch_size=(1, 2))(np.ones((1, 6), np.float32), [0])


@pytest.mark.parametrize("make", [
    lambda value: Occlusion(tabular_linear, patch_size=1, occlusion_value=value),
    lambda value: Rise(tabular_linear, nb_samples=4, baseline=value),
])
def test_value_arrays_of_the_wrong_shape_are_refused(make):
    with pytest.raises(InvalidArgumentError, match=r"\(5,\)"):
        make(np.zeros(5, np.float32))(np.ones((1, 6), np.float32), [0])
    with pytest.raises(InvalidArgumentError, match="finite"):
        make(np.array([0.0, np.nan, 0, 0, 0, 0]))
    with pytest.raises(InvalidTypeError):
        make("mean")


def test_rise_baseline_and_mask_value_conflict_and_grid_checks():
    with pytest.raises(InvalidArgumentError, match="baseline"):
        Rise(tabular_linear, 4, None, 4, 7, 0.5, 0.3, baseline=np.zeros(6))
    with pytest.raises(InvalidArgumentError, match="grid_size"):   # Xplique: (g, C)
        Rise(series_linear, nb_samples=4, grid_size=(3, 2))(np.ones((1, 10, 3), np.float32),
                                                             [0])
    with pytest.raises(InvalidArgumentError, match="grid_size=None"):
        Rise(series_linear, nb_samples=4, grid_size=None)(np.ones((1, 4, 4, 1), np.float32),
                                                          [0])


def test_value_arrays_work_on_images_too():
    """occlusion_value / baseline of one image's shape: per-pixel values."""
    weights = RNG.normal(size=(4, 4, 2)).astype(np.float32)

    def image_linear(x):
        f = tf.reduce_sum(x * weights, axis=[1, 2, 3])
        return tf.stack([f, -f], axis=-1)

    x = RNG.uniform(size=(1, 4, 4, 2)).astype(np.float32)
    value = RNG.normal(size=(4, 4, 2)).astype(np.float32)
    maps = Occlusion(image_linear, patch_size=2, patch_stride=2, occlusion_value=value)(
        x, [0]).numpy()[0, ..., 0]
    drops = (weights * (x[0] - value)).sum(-1).reshape(2, 2, 2, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(maps, np.kron(drops, np.ones((2, 2))), rtol=1e-4, atol=1e-4)
    constant = Rise(image_linear, nb_samples=30, grid_size=2, seed=0,
                    baseline=np.full((4, 4, 2), 0.3))(x, [0]).numpy()
    number = Rise(image_linear, nb_samples=30, grid_size=2, seed=0, mask_value=0.3)(
        x, [0]).numpy()
    np.testing.assert_allclose(constant, number, rtol=1e-5, atol=1e-6)
