"""Lime and KernelShap against closed forms: Shapley values and weights of linear models,
hand-computed similarities and perturbed scores, the Shapley sampling distribution."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import KernelShap, Lime
from sobol_tf.attributions.kernel_shap import shapley_coalitions
from sobol_tf.attributions.surrogates import ExponentialKernel, WeightedLinearRegression, grid_mapping
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning

TAB_WEIGHTS = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
IMG_WEIGHTS = np.random.default_rng(1).normal(size=(8, 8, 3)).astype(np.float32)


def tabular(x):
    return tf.matmul(x, TAB_WEIGHTS) + 0.3


def image_linear(x):
    f = tf.reduce_sum(x * IMG_WEIGHTS, axis=[1, 2, 3]) - 1.0
    return tf.stack([f, 2 * f], axis=-1)


def cell_sums(values, grid_size):
    """Each pixel gets the sum of ``values`` (H, W) over its grid cell."""
    ids = grid_mapping(values.shape[0], values.shape[1], grid_size)
    totals = np.bincount(ids.ravel(), values.ravel())
    return totals[ids]


class Recorder:
    """An interpretable model that records what it is fitted on (and fits exactly)."""

    def __init__(self):
        self.calls = []

    def fit(self, X, y, sample_weight=None):
        self.calls.append((np.array(X), np.array(y), np.array(sample_weight)))
        self.coef_ = WeightedLinearRegression(0.0).fit(X, y, sample_weight).coef_

    def predict(self, X):  # pragma: no cover - Xplique's interface
        return X @ self.coef_


def test_kernel_shap_on_a_linear_tabular_model_gives_the_exact_shapley_values():
    """phi_j = w_j (x_j - ref) for f(x) = w . x + b."""
    x = np.random.default_rng(2).normal(size=(3, 5)).astype(np.float32)
    targets = np.array([0, 1, 0])
    maps = KernelShap(tabular, ref_value=0.2, nb_samples=64, seed=0)(x, targets).numpy()
    expected = TAB_WEIGHTS[:, targets].T * (x - 0.2)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-4)


def test_kernel_shap_on_a_linear_image_model_gives_each_superpixels_shapley_value():
    """Grid superpixels of 2x2 pixels: each pixel shows its cell's sum of w (x - ref),
    ref = 0.5 per channel by default for RGB (operator 'classification', target 1: 2f)."""
    x = np.random.default_rng(3).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    maps = KernelShap(image_linear, 32, None, None, 200, grid_size=4, seed=1)(x, [1, 1]).numpy()
    assert maps.shape == (2, 8, 8, 1)
    for image, found in zip(x, maps[..., 0]):
        expected = cell_sums(2 * (IMG_WEIGHTS * (image - 0.5)).sum(axis=-1), 4)
        np.testing.assert_allclose(found, expected, rtol=1e-3, atol=1e-3)


def test_lime_with_least_squares_recovers_a_linear_models_weights():
    x = np.random.default_rng(4).normal(size=(2, 5)).astype(np.float32)
    maps = Lime(tabular, None, None, WeightedLinearRegression(0.0), nb_samples=40,
                ref_value=np.array([-1.0]), seed=0)(x, [1, 0]).numpy()
    np.testing.assert_allclose(maps, TAB_WEIGHTS[:, [1, 0]].T * (x + 1.0), rtol=1e-4,
                               atol=1e-4)


def test_default_ridge_is_scikit_learns_ridge_alpha_2():
    linear_model = pytest.importorskip("sklearn.linear_model")
    x = np.random.default_rng(5).uniform(size=(3, 8, 8, 3)).astype(np.float32)
    settings = dict(nb_samples=60, grid_size=4, kernel_width=3.0, seed=2)
    ours = Lime(image_linear, **settings)(x, [0, 1, 0]).numpy()
    theirs = Lime(image_linear, interpretable_model=linear_model.Ridge(alpha=2),
                  **settings)(x, [0, 1, 0]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert np.ptp(ours) > 0.1


@pytest.mark.parametrize("mode", ["euclidean", "cosine"])
def test_samples_scores_and_similarities_match_a_hand_computation(mode):
    """Each fit gets the samples z, the model's score on ref + z[id] (x - ref), and the
    weights exp(-D(x, x')^2 / width^2), all recomputed here from z."""
    x = np.random.default_rng(6).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    recorder = Recorder()
    ref = np.array([0.1, 0.2, 0.3])
    Lime(image_linear, 7, None, recorder, None, None, None, ref, 30, mode, 2.0,
         grid_size=2, seed=3)(x, [0, 1])
    ids = grid_mapping(8, 8, 2)
    for image, sign, (samples, scores, weights) in zip(x, (1, 2), recorder.calls):
        assert samples.shape == (30, 4) and set(np.unique(samples)) <= {0.0, 1.0}
        keep = samples[:, ids][..., None]                              # (P, 8, 8, 1)
        perturbed = ref + keep * (image - ref)
        np.testing.assert_allclose(scores, sign * ((perturbed * IMG_WEIGHTS).sum(axis=(1, 2, 3))
                                                   - 1.0), rtol=1e-4, atol=1e-4)
        flat, origin = perturbed.reshape(30, -1), image.reshape(-1)
        if mode == "euclidean":
            distance = np.linalg.norm(flat - origin, axis=1)
        else:
            distance = 1 - flat @ origin / (np.linalg.norm(flat, axis=1) * np.linalg.norm(origin))
        np.testing.assert_allclose(weights, np.exp(-distance ** 2 / 4.0), rtol=1e-5, atol=1e-7)


def test_a_custom_kernel_is_called_as_xplique_calls_it():
    """A kernel that is not built in gets (input, int32 samples, perturbed inputs) and gives
    the weights: here the built-in one called through that signature, so the maps agree."""
    x = np.random.default_rng(7).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    seen = []

    def kernel(original, samples, perturbed):
        seen.append((original.shape, samples.dtype, perturbed.shape))
        return ExponentialKernel("euclidean", 3.0)(original, samples, perturbed)

    settings = dict(nb_samples=50, grid_size=4, seed=4, batch_size=20)
    custom = Lime(image_linear, similarity_kernel=kernel, **settings)(x, [0, 0]).numpy()
    built_in = Lime(image_linear, kernel_width=3.0, **settings)(x, [0, 0]).numpy()
    np.testing.assert_allclose(custom, built_in, rtol=1e-4, atol=1e-6)
    assert seen[0] == ((8, 8, 3), tf.int32, (20, 8, 8, 3)) and len(seen) == 6


def test_per_input_mappings_of_different_sizes():
    """A custom segmentation per input (3 then 4 features): inputs share forward batches
    yet each is fitted on its own features; KernelShap gives each segment's sum."""
    x = np.random.default_rng(8).uniform(size=(2, 8, 8, 3)).astype(np.float32)

    def halves_or_thirds(image):
        columns = np.arange(8)[None, :].repeat(8, 0)
        parts = 3 if float(tf.reduce_mean(image)) == float(np.mean(x[0])) else 4
        return tf.constant(columns * parts // 8)

    maps = KernelShap(image_linear, 16, None, halves_or_thirds, 100, 0.0,
                      seed=0)(x, [0, 0]).numpy()[..., 0]
    for image, parts, found in zip(x, (3, 4), maps):
        ids = np.arange(8)[None, :].repeat(8, 0) * parts // 8
        values = (IMG_WEIGHTS * image).sum(axis=-1)
        totals = np.bincount(ids.ravel(), values.ravel())
        np.testing.assert_allclose(found, totals[ids], rtol=1e-4, atol=1e-4)


def test_shapley_coalitions_follow_the_shapley_kernel():
    """k kept features with P(k) proportional to 1 / (k (F - k)), k in 1..F-1, and given k
    every feature equally likely."""
    samples = shapley_coalitions(5, 40000, np.random.default_rng(0))
    sizes = samples.sum(axis=1).astype(int)
    expected = np.array([1 / (k * (5 - k)) for k in range(1, 5)])
    frequencies = np.bincount(sizes, minlength=6)[1:5] / len(sizes)
    np.testing.assert_allclose(frequencies, expected / expected.sum(), atol=0.01)
    assert sizes.min() == 1 and sizes.max() == 4
    np.testing.assert_allclose(samples.mean(axis=0), samples.mean(), atol=0.01)


def test_seed_reproduces_and_batch_size_none_is_nb_samples():
    x = np.random.default_rng(9).uniform(size=(1, 8, 8, 1)).astype(np.float32)

    def model(images):
        return tf.reduce_sum(images ** 2, axis=[1, 2]) * tf.constant([[1.0, 0.0]])

    first = Lime(model, nb_samples=20, seed=5, kernel_width=2.0)
    assert first.batch_size == 20
    again = Lime(model, nb_samples=20, seed=5, kernel_width=2.0)(x, [0]).numpy()
    np.testing.assert_array_equal(first(x, [0]).numpy(), again)
    other = Lime(model, nb_samples=20, seed=6, kernel_width=2.0)(x, [0]).numpy()
    assert not np.array_equal(other, again)


def test_grayscale_rank3_inputs_and_a_custom_pertub_func():
    """Grayscale (N, H, W, 1) inputs: the mapping gets (H, W, 1); pertub_func(F, P)
    gives the samples."""
    x = np.random.default_rng(10).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    w = IMG_WEIGHTS[:6, :6, :1]

    def model(images):
        f = tf.reduce_sum(images * w, axis=[1, 2, 3])
        return tf.stack([f, -f], axis=-1)

    shapes = []

    def mapping(image):
        shapes.append(tuple(image.shape))
        return tf.reshape(tf.range(36), (6, 6)) // 6        # one feature per row

    def all_but_one(nb_features, nb_samples):   # every feature off once, and none off
        switched_off = np.vstack([np.eye(nb_features), np.zeros(nb_features)])
        return 1 - switched_off[np.arange(nb_samples) % (nb_features + 1)]

    maps = Lime(model, None, None, WeightedLinearRegression(0.0), None, all_but_one,
                mapping, None, 14)(x, [0, 1]).numpy()
    assert shapes == [(6, 6, 1), (6, 6, 1)] and maps.shape == (2, 6, 6, 1)
    rows = (w * x)[..., 0].sum(axis=2)                                # each row's contribution
    expected = np.repeat(rows[:, :, None], 6, axis=2) * np.array([1, -1])[:, None, None]
    np.testing.assert_allclose(maps[..., 0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"interpretable_model": object()}, InvalidTypeError, "interpretable_model must have a fit"),
    ({"distance_mode": "manhattan"}, InvalidArgumentError, "distance_mode must be one of"),
    ({"kernel_width": 0.0}, InvalidArgumentError, "kernel_width must be a finite number > 0"),
    ({"prob": 1.5}, InvalidArgumentError, r"prob must lie in \[0, 1\]"),
    ({"nb_samples": 0}, InvalidArgumentError, "nb_samples must be an integer >= 1"),
    ({"similarity_kernel": 3}, InvalidTypeError, "similarity_kernel must be None or a callable"),
    ({"ref_value": "grey"}, InvalidTypeError, "ref_value must be a number"),
])
def test_bad_arguments_are_refused_in_the_constructor(kwargs, error, message):
    with pytest.raises(error, match=message):
        Lime(tabular, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"ref_value": np.zeros(2)}, r"ref_value must be one number or one per channel \(3\)"),
    ({"pertub_func": lambda f, p: np.ones((p, f + 1))}, r"must return an array of shape"),
    ({"pertub_func": lambda f, p: 2 * np.ones((p, f))}, r"values in \[0, 1\]"),
    ({"map_to_interpret_space": lambda x: tf.zeros((4, 4), tf.int32)}, r"shape \(8, 8\)"),
    ({"map_to_interpret_space": lambda x: -tf.ones((8, 8), tf.int32)}, r"ids >= 0"),
    ({"similarity_kernel": lambda x, z, p: -tf.ones(len(z))}, "finite weights >= 0"),
])
def test_bad_callables_and_references_are_refused_at_explain_time(kwargs, message):
    x = np.ones((1, 8, 8, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match=message):
        Lime(image_linear, nb_samples=10, **kwargs)(x, [0])


def test_kernel_shap_refuses_a_single_feature_and_lime_warns_on_zero_similarities():
    x = np.ones((1, 8, 8, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="at least 2 interpretable features"):
        KernelShap(image_linear, map_to_interpret_space=lambda i: tf.zeros((8, 8), tf.int32),
                   nb_samples=10)(x, [0])
    far = np.full((1, 8, 8, 3), 100.0, np.float32)
    with pytest.warns(SobolTFWarning, match="similarities of input 0 are 0"):
        Lime(image_linear, nb_samples=10, kernel_width=1e-3, seed=0)(far, [0])
