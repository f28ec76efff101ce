"""MuFidelity against models whose answer is known."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.metrics import MuFidelity
from sobol_tf.metrics.fidelity import spearman_rows

from tests.metrics.models import LinearModel


@pytest.mark.parametrize("grid_size", [None, 3, 4])
def test_mufidelity_faithful_explanation_of_an_additive_model_scores_one(grid_size):
    rng = np.random.default_rng(8)
    weights = rng.normal(size=(8, 8, 3)).astype(np.float32)
    x = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    baseline = 0.25
    metric = MuFidelity(LinearModel(weights), x, np.zeros(3, int), grid_size=grid_size,
                        nb_samples=60, baseline_mode=baseline, seed=0)
    faithful = weights * (x - baseline)           # the drop is the subset's attribution sum
    assert metric(faithful) > 0.999
    assert metric(-faithful) < -0.999


def test_mufidelity_random_explanation_scores_near_zero():
    rng = np.random.default_rng(8)
    weights = rng.normal(size=(8, 8, 1)).astype(np.float32)
    x = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
    metric = MuFidelity(LinearModel(weights), x, np.zeros(3, int), grid_size=None,
                        nb_samples=100, seed=0)
    # one correlation has a spread of about 1/8 over 64 pixels; 30 of them average to ~0.02
    random = [metric(rng.normal(size=x.shape)) for _ in range(10)]
    assert abs(np.mean(random)) < 0.1
    assert metric(weights * x) > 0.999


def test_mufidelity_constant_model_scores_zero():
    constant = lambda batch: tf.ones((tf.shape(batch)[0], 2))
    x = np.random.default_rng(9).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    metric = MuFidelity(constant, x, np.zeros(2, int), grid_size=3, nb_samples=10, seed=0)
    score = metric(np.random.default_rng(10).normal(size=(2, 6, 6)))
    assert score == 0.0
    np.testing.assert_array_equal(metric.detailed_evaluate(np.ones((2, 6, 6))), [0.0, 0.0])


def test_mufidelity_is_reproducible_with_a_seed(convnet_case):
    model, x, labels, explanations = convnet_case
    kwargs = dict(grid_size=4, nb_samples=16)
    first = MuFidelity(model, x, labels, seed=3, **kwargs)(explanations)
    assert MuFidelity(model, x, labels, seed=3, **kwargs)(explanations) == first
    assert MuFidelity(model, x, labels, seed=4, **kwargs)(explanations) != first


def test_mufidelity_subsets_remove_the_right_share_of_cells():
    mean_model = lambda batch: tf.reduce_mean(batch, axis=[1, 2, 3])[:, None]
    x = np.ones((2, 8, 8, 1), np.float32)
    metric = MuFidelity(mean_model, x, np.zeros(2, int), grid_size=4, nb_samples=400,
                        subset_percent=0.3, seed=0)
    drops = metric._score_drops()            # the share of pixels set to 0
    assert drops.shape == (2, 400)
    np.testing.assert_allclose(drops[0], drops[1])            # same subsets for every input
    assert np.all(np.isclose(drops[0] * 16, np.round(drops[0] * 16), atol=1e-4))  # whole cells
    assert abs(drops.mean() - 0.3) < 0.02


def test_spearman_matches_scipy_and_gives_zero_on_constants():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(11)
    a = rng.integers(0, 5, size=(6, 30)).astype(float)       # many ties
    b = rng.normal(size=(6, 30))
    expected = [spearmanr(a[i], b[i])[0] for i in range(6)]
    np.testing.assert_allclose(spearman_rows(a, b), expected, atol=1e-12)
    assert spearman_rows(np.ones((1, 5)), rng.normal(size=(1, 5)))[0] == 0.0


def test_mufidelity_constant_rows_and_ties_follow_the_one_spearman_convention():
    from scipy.stats import spearmanr

    from sobol_tf.metrics import correlations

    assert spearman_rows is correlations.spearman_rows
    rng = np.random.default_rng(12)
    weights = rng.normal(size=(4, 4, 1)).astype(np.float32)
    x = rng.uniform(size=(2, 4, 4, 1)).astype(np.float32)
    metric = MuFidelity(LinearModel(weights), x, np.zeros(2, int), grid_size=None,
                        nb_samples=40, seed=3)
    removed = 1.0 - metric._keep.numpy().reshape(40, 16)          # (S, pixels)
    drops = removed @ (weights * x).reshape(2, 16).T              # (S, N), by hand
    # a map of one important pixel: its subset sums take two values (ties everywhere)
    one_pixel = np.zeros_like(x)
    one_pixel[:, 1, 2, 0] = 1.0
    expected = [spearmanr(drops[:, i], removed[:, 6])[0] for i in range(2)]
    np.testing.assert_allclose(metric.detailed_evaluate(one_pixel), expected, atol=1e-5)
    # a constant map: every subset sum ties, rho is undefined, scored 0
    np.testing.assert_array_equal(metric.detailed_evaluate(np.zeros_like(x)), [0.0, 0.0])


@pytest.mark.parametrize("kwargs, lower", [
    ({"nb_samples": 10 ** 9, "grid_size": 4}, "nb_samples <= "),
    ({"nb_samples": 2 * 10 ** 7, "grid_size": None}, "nb_samples <= "),
])
def test_sizes_over_max_bytes_are_refused_in_the_constructor(kwargs, lower):
    """Subsets (nb_samples x cells) and drops (N x nb_samples) over fidelity.MAX_BYTES are
    refused before any drawing, naming the forward passes, the memory and what to lower."""
    from sobol_tf.metrics import fidelity
    x = np.zeros((2, 8, 8, 1), np.float32)
    model = LinearModel(np.ones((8, 8, 1), np.float32))
    with pytest.raises(fidelity.InvalidArgumentError, match="forward passes") as caught:
        MuFidelity(model, x, np.zeros(2, int), **kwargs)
    message = str(caught.value)
    assert "GiB" in message and "MAX_BYTES" in message and lower in message, message
    suggested = int(message.split("nb_samples <= ")[1].split()[0].rstrip(",)"))
    cells = 64 if kwargs["grid_size"] is None else kwargs["grid_size"] ** 2
    assert fidelity.mufidelity_bytes(suggested, cells, 2) <= fidelity.MAX_BYTES
    assert fidelity.mufidelity_bytes(suggested + 1, cells, 2) > fidelity.MAX_BYTES
