"""HsicAttributionMethod against closed forms and the naive Gram-matrix estimator."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import HsicAttributionMethod
from sobol_tf.attributions.hsic import hsic_binary_rbf
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning

from tests.conftest import RegionModel, naive_hsic


def binary_kernel(x, y):
    """Xplique's kernel on binary cells: 1/2 - (x - x')^2 (the 1 + is naive_hsic's)."""
    return 0.5 - (x - y) ** 2


def test_estimator_equals_the_naive_gram_matrix_formula():
    rng = np.random.default_rng(0)
    design = (rng.random((40, 6)) < 0.5).astype(np.float64)
    scores = np.stack([design @ rng.normal(size=6) + 0.3 * rng.normal(size=40),
                       np.sin(3 * design[:, 0]) + design[:, 4] * design[:, 5]])
    centred = (design - design.mean(axis=0)).astype(np.float32)
    fast = hsic_binary_rbf(tf.constant(scores, tf.float32), tf.constant(centred)).numpy()
    for row, expected in zip(fast, (naive_hsic(design, s, binary_kernel) for s in scores)):
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-5)


def test_closed_form_for_a_model_reading_one_cell():
    """Score = the kept fraction of cell 1. With the balanced, pairwise orthogonal binary
    Sobol design (32 points, 4 cells), more than half of the pairs differ by 1, so the
    bandwidth is 1 and HSIC_1 = n (1 - exp(-1/2)) / 4, while the other cells get exactly 0."""
    explainer = HsicAttributionMethod(RegionModel(rows=(0, 1), cols=(1, 2)), grid_size=2,
                                      nb_design=32)
    design = explainer._masks(2, 2, 1).numpy().reshape(32, 4)
    centred = design - design.mean(axis=0)
    np.testing.assert_array_equal(design.mean(axis=0), 0.5)       # preconditions of the
    np.testing.assert_array_equal(centred.T @ centred, 8 * np.eye(4))  # closed form
    maps = explainer(np.ones((2, 2, 2, 3), np.float32), [0, 0]).numpy()
    expected = np.zeros((2, 2))
    expected[0, 1] = 32 * (1 - np.exp(-0.5)) / 4
    for row in maps:
        np.testing.assert_allclose(row[..., 0], expected, atol=1e-5)


def test_region_model_is_found():
    model = RegionModel(rows=(4, 8), cols=(0, 4))
    x = np.random.default_rng(0).uniform(0.5, 1, size=(2, 8, 8, 3)).astype(np.float32)
    explainer = HsicAttributionMethod(model, grid_size=2, nb_design=64, sampler="lhs", seed=1)
    maps = explainer(x, [0, 0]).numpy()[..., 0]
    cells = maps[:, ::4, ::4].reshape(2, -1)  # one pixel per cell; bicubic keeps the order
    assert np.all(np.argmax(cells, axis=1) == 2)
    outside = np.ones((8, 8), bool)
    outside[4:, :4] = False
    assert maps[:, ~outside].mean() > 3 * np.abs(maps[:, outside]).mean()


def test_constant_model_gives_zero():
    def constant(x):
        return tf.ones((tf.shape(x)[0], 2))

    maps = HsicAttributionMethod(constant, grid_size=2, nb_design=32)(
        np.ones((1, 4, 4, 1), np.float32), [0]).numpy()
    np.testing.assert_array_equal(maps, 0.0)


def test_seeded_samplers_are_reproducible_and_differ_by_seed(convnet, images):
    def run(seed):
        return HsicAttributionMethod(convnet, grid_size=2, nb_design=32, sampler="lhs",
                                     seed=seed)(images, [0, 1, 2]).numpy()

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))


def test_blurring_and_custom_sampler(convnet, images):
    blurred = HsicAttributionMethod(convnet, grid_size=2, nb_design=32,
                                    perturbation_function="blurring")(images, [0, 1, 2])
    inpainted = HsicAttributionMethod(convnet, grid_size=2, nb_design=32)(images, [0, 1, 2])
    assert not np.allclose(blurred, inpainted)

    def sampler(dimension, nb_design):
        return np.random.default_rng(0).random((nb_design, dimension))

    maps = HsicAttributionMethod(convnet, grid_size=2, nb_design=32, sampler=sampler)(
        images, [0, 1, 2])
    assert maps.shape == (3, 8, 8, 1)


def test_designs_whose_cells_cannot_be_told_apart_are_refused(convnet, images):
    explainer = HsicAttributionMethod(convnet, grid_size=8, nb_design=16,  # drawn lazily
                                      sampler="sobol")  # a chosen sampler: no fallback
    with pytest.raises(InvalidArgumentError, match="cannot be told apart.*sampler='lhs'"):
        explainer(images, [0, 1, 2])
    with pytest.raises(InvalidArgumentError, match="all or none"):
        HsicAttributionMethod(convnet, grid_size=2, nb_design=8,
                              sampler=lambda d, n: np.full((n, d), 0.7))(images, [0, 1, 2])
    with pytest.raises(InvalidArgumentError, match=r"shape \(8, 3\), expected \(8, 4\)"):
        HsicAttributionMethod(convnet, grid_size=2, nb_design=8,
                              sampler=lambda d, n: np.zeros((n, 3)))(images, [0, 1, 2])
    with pytest.raises(InvalidArgumentError, match=r"outside \[0, 1\]"):
        HsicAttributionMethod(convnet, grid_size=2, nb_design=8,
                              sampler=lambda d, n: np.full((n, d), -1.0))(images, [0, 1, 2])


def test_complementary_cells_are_found_among_many():
    from sobol_tf.attributions.hsic import twin_cells
    rng = np.random.default_rng(0)
    design = (rng.random((64, 300)) < 0.5).astype(np.float32)
    assert twin_cells(design) is None
    design[:, 250] = 1.0 - design[:, 17]
    assert twin_cells(design) == (17, 250)
    design[:, 250] = design[:, 3]
    assert twin_cells(design) == (3, 250)


def test_constructor_does_not_draw_and_is_cheap():
    import time
    import tracemalloc
    calls = []

    def sampler(dimension, nb_design):
        calls.append(dimension)
        return np.random.default_rng(0).random((nb_design, dimension))

    tracemalloc.start()
    start = time.perf_counter()
    HsicAttributionMethod(lambda x: x, grid_size=64, nb_design=500)
    HsicAttributionMethod(lambda x: x, grid_size=8, nb_design=8000, sampler=sampler)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert calls == []
    assert elapsed < 2.0 and peak < 100 * 2 ** 20, (elapsed, peak)


@pytest.mark.parametrize("kwargs, patterns", [
    ({"grid_size": 1000}, ["grid_size=1000", "21201", "grid_size <= 145"]),
    ({"nb_design": 10 ** 6}, ["nb_design=1000000", "1000000 forward passes",
                              "GiB", "nb_design <= 8"]),
    ({"grid_size": 145, "nb_design": 20000}, ["grid_size=145", r"1\.6 GiB",
                                             "nb_design <= "]),
])
def test_designs_that_cannot_work_are_refused_quickly(kwargs, patterns):
    import re
    import time
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as info:
        HsicAttributionMethod(lambda x: x, **kwargs)
    assert time.perf_counter() - start < 2.0
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"grid_size": 0}, InvalidArgumentError, "grid_size must be an integer >= 1, got 0"),
    ({"nb_design": 1}, InvalidArgumentError, "nb_design must be an integer >= 2, got 1"),
    ({"nb_design": 32.0}, InvalidTypeError, "nb_design"),
    ({"sampler": "qmc"}, InvalidArgumentError, "sampler must be one of"),
    ({"perturbation_function": "noise"}, InvalidArgumentError, "perturbation_function"),
])
def test_bad_arguments(kwargs, error, message, convnet):
    with pytest.raises(error, match=message):
        HsicAttributionMethod(convnet, **kwargs)


def test_grid_larger_than_input(convnet, images):
    # (the 8x8 convnet also warns that it declared another size)
    with pytest.raises(InvalidArgumentError, match="grid_size=8 for inputs of 4x4"), \
            pytest.warns(SobolTFWarning, match="declares its input shape"):
        HsicAttributionMethod(convnet, grid_size=8, nb_design=512)(images[:, :4, :4], [0] * 3)


def test_float32_rounding_noise_counts_as_constant_and_small_variations_do_not():
    rng = np.random.default_rng(0)
    design = (rng.random((64, 4)) < 0.5).astype(np.float32)
    centred = tf.constant(design - design.mean(axis=0))
    noise = np.float32(1000.0) + rng.integers(-1, 2, 64).astype(np.float32) \
        * np.spacing(np.float32(1000.0))
    signal = np.float32(20.0) + np.float32(1e-4) * design[:, 2]
    indices = hsic_binary_rbf(tf.constant(np.stack([noise, signal])), centred).numpy()
    np.testing.assert_array_equal(indices[0], 0.0)
    assert indices[1, 2] > 10 * np.abs(indices[1, [0, 1, 3]]).max()


def test_the_fallback_is_a_regular_fraction_and_beats_a_random_design():
    """At grid_size=8 and nb_design=128 the thresholded Sobol design cannot tell some
    cells apart: the default falls back to the regular fraction of FALLBACK_SEED, whose
    maps of a model with known weights (and one interaction) are closer to the converged
    HSIC map than a random balanced design's, over 4 seeds each."""
    from sobol_tf.attributions.designs import (balanced_binary_design,
                                               fractional_factorial_design)
    from sobol_tf.attributions.hsic import FALLBACK_SEED
    from tests.conftest import CellModel

    weights = np.random.default_rng(0).gamma(0.5, 1.0, 64)
    model = CellModel(weights, 8, (3, 40, 4.0))
    ones = np.ones((1, 8, 8, 1), np.float32)
    default = HsicAttributionMethod(model, grid_size=8, nb_design=128)
    default(ones, [0])
    np.testing.assert_array_equal(
        default.masks.numpy().reshape(128, 64),
        fractional_factorial_design(128, 64, FALLBACK_SEED))
    odd = HsicAttributionMethod(model, grid_size=8, nb_design=100)  # no regular fraction
    odd(ones, [0])
    np.testing.assert_array_equal(odd.masks.numpy().reshape(100, 64),
                                  balanced_binary_design(100, 64, FALLBACK_SEED))

    def hsic_map(nb_design, sampler, **options):
        explainer = HsicAttributionMethod(model, grid_size=8, nb_design=nb_design,
                                          sampler=sampler, **options)
        return explainer(ones, [0]).numpy().ravel()

    reference = np.mean([hsic_map(4096, "monte_carlo", seed=s) for s in (10, 11)], axis=0)

    def error(design):
        maps = [hsic_map(128, lambda d, n, s=s: design(n, d, s)) for s in range(4)]
        return np.mean([1 - np.corrcoef(m, reference)[0, 1] for m in maps])

    fraction, balanced = error(fractional_factorial_design), error(balanced_binary_design)
    assert fraction < 0.5 * balanced, (fraction, balanced)
