"""Estimators against closed-form indices, on exact model evaluations of a design."""
import numpy as np
import pytest

from sobol_tf.attributions import estimators, samplers
from sobol_tf.errors import InvalidArgumentError

from tests.conftest import analytic_indices

NAMES = sorted(estimators.ESTIMATORS)


def evaluate(design, weights, interaction=None):
    """The CellModel formula evaluated directly on mask values."""
    f = design @ np.asarray(weights, np.float64)
    if interaction is not None:
        p, q, gamma = interaction
        f = f + gamma * design[:, p] * design[:, q]
    return f


def errors(name, weights, interaction, nb_design, sampler):
    design = sampler(len(weights), nb_design).astype(np.float64)
    scores = evaluate(design, weights, interaction)
    estimator = estimators.get(name)
    first, total = analytic_indices(weights, interaction)
    total_error = np.abs(estimator(scores, nb_design).numpy() - total).max()
    first_error = np.abs(estimator.first_order(scores, nb_design).numpy() - first).max()
    return total_error, first_error


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("interaction", [None, (0, 1, 6.0)], ids=["additive", "interaction"])
def test_converges_to_analytic_indices(name, interaction):
    weights = [1.0, 2.0, 0.5, 0.0]
    sampler = samplers.SobolSequence(scramble=True, seed=0)
    coarse = errors(name, weights, interaction, 64, sampler)
    fine = errors(name, weights, interaction, 4096, sampler)
    assert fine[0] < 0.02, fine
    assert fine[1] < 0.02, fine
    assert fine[0] < coarse[0]


def test_interaction_separates_first_and_total_order():
    weights, interaction = [-2.0, -2.0, 1.0], (0, 1, 8.0)
    first, total = analytic_indices(weights, interaction)
    design = samplers.SobolSequence(scramble=True, seed=1)(3, 4096).astype(np.float64)
    scores = evaluate(design, weights, interaction)
    estimator = estimators.JansenEstimator()
    st = estimator(scores, 4096).numpy()
    s = estimator.first_order(scores, 4096).numpy()
    assert total[0] - first[0] > 0.3  # the model really has an interaction
    np.testing.assert_allclose(st, total, atol=0.02)
    np.testing.assert_allclose(s, first, atol=0.02)
    assert st[0] - s[0] > 0.3 and abs(st[2] - s[2]) < 0.02


def test_vectorised_over_inputs_matches_one_by_one():
    design = samplers.SobolSequence()(4, 32).astype(np.float64)
    scores = np.stack([evaluate(design, [1, 2, 3, 4]), evaluate(design, [4, 0, 1, 1], (0, 3, 2.0))])
    for name in NAMES:
        both = estimators.get(name)(scores, 32).numpy()
        for row in range(2):
            np.testing.assert_allclose(both[row], estimators.get(name)(scores[row], 32).numpy(),
                                       rtol=1e-6)


def test_jansen_matches_its_formula_by_hand():
    rng = np.random.default_rng(0)
    n, d = 8, 3
    scores = rng.normal(size=n * (d + 2))
    a, c = scores[:n], scores[2 * n:].reshape(d, n)
    expected = [np.sum((a - c[i]) ** 2) / (2 * n * np.var(a, ddof=1)) for i in range(d)]
    np.testing.assert_allclose(estimators.JansenEstimator()(scores, n).numpy(), expected,
                               rtol=1e-5)


def test_saltelli_and_homma_agree():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 16 * 6))
    np.testing.assert_allclose(estimators.SaltelliEstimator()(scores, 16).numpy(),
                               estimators.HommaEstimator()(scores, 16).numpy())


@pytest.mark.parametrize("name", NAMES)
def test_constant_outputs_give_zero_not_nan(name):
    scores = np.full((2, 8 * 5), 3.0)
    estimator = estimators.get(name)
    np.testing.assert_array_equal(estimator(scores, 8).numpy(), 0.0)
    np.testing.assert_array_equal(estimator.first_order(scores, 8).numpy(), 0.0)


def test_bad_layout_and_names():
    with pytest.raises(InvalidArgumentError, match="columns"):
        estimators.JansenEstimator()(np.zeros((1, 30)), 8)
    with pytest.raises(InvalidArgumentError, match="'sobol'"):
        estimators.get("sobol")


ISHIGAMI_FIRST = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_TOTAL = np.array([0.5576, 0.4424, 0.2437])


def ishigami(design, a=7.0, b=0.1):
    x = -np.pi + 2 * np.pi * design
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


@pytest.fixture(scope="module")
def ishigami_scores():
    design = samplers.SobolSequence(scramble=True, seed=0)(3, 2 ** 12).astype(np.float64)
    return ishigami(design)


@pytest.mark.parametrize("name", NAMES)
def test_ishigami_indices_are_analytic_and_shift_invariant(name, ishigami_scores):
    estimator = estimators.get(name)
    n = 2 ** 12
    total = estimator(ishigami_scores, n).numpy()
    first = estimator.first_order(ishigami_scores, n).numpy()
    np.testing.assert_allclose(total, ISHIGAMI_TOTAL, atol=0.03)
    np.testing.assert_allclose(first, ISHIGAMI_FIRST, atol=0.03)
    for shifted in (ishigami_scores + 100.0, ishigami_scores * 1.0 + 1e4):
        np.testing.assert_allclose(estimator(shifted, n).numpy(), total, atol=1e-6)
        np.testing.assert_allclose(estimator.first_order(shifted, n).numpy(), first, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_float32_shift_changes_indices_by_rounding_only(name, ishigami_scores):
    estimator = estimators.get(name)
    n = 2 ** 12
    base = ishigami_scores.astype(np.float32)
    shifted = (ishigami_scores + 100.0).astype(np.float32)
    np.testing.assert_allclose(estimator(shifted, n).numpy(), estimator(base, n).numpy(),
                               atol=1e-4)
    np.testing.assert_allclose(estimator.first_order(shifted, n).numpy(),
                               estimator.first_order(base, n).numpy(), atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_small_variation_on_a_large_constant_is_resolved(name):
    n, d = 64, 4
    design = samplers.SobolSequence(scramble=True, seed=0)(d, n)
    scores = np.float32(20.0) + np.float32(1e-4) * design[:, 0]  # float32, as a model gives
    estimator = estimators.get(name)
    total = estimator(scores, n).numpy()
    assert total[0] > 0.8, total
    np.testing.assert_allclose(total[1:], 0.0, atol=0.05)
    first = estimator.first_order(scores, n).numpy()
    assert first[0] > 0.8, first


@pytest.mark.parametrize("name", NAMES)
def test_float32_rounding_noise_on_a_constant_counts_as_constant(name):
    n, d = 16, 3
    rng = np.random.default_rng(0)
    scores = np.float32(1000.0) + rng.integers(-1, 2, n * (d + 2)).astype(np.float32) \
        * np.spacing(np.float32(1000.0))
    estimator = estimators.get(name)
    np.testing.assert_array_equal(estimator(scores, n).numpy(), 0.0)
    np.testing.assert_array_equal(estimator.first_order(scores, n).numpy(), 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_constant_a_outputs_with_varying_others_stay_finite(name):
    n, d = 8, 2
    scores = np.zeros(n * (d + 2))
    scores[n:2 * n] = np.arange(n)          # B varies, A and C_1 constant
    scores[3 * n:] = np.arange(n)[::-1]     # C_2 varies
    estimator = estimators.get(name)
    assert np.all(np.isfinite(estimator(scores, n).numpy()))
    assert np.all(np.isfinite(estimator.first_order(scores, n).numpy()))


def test_nb_design_errors_have_the_right_type():
    from sobol_tf.errors import InvalidTypeError
    scores = np.arange(8 * 5, dtype=np.float64)
    with pytest.raises(InvalidArgumentError, match="nb_design must be an integer >= 2, got 1"):
        estimators.JansenEstimator()(scores, 1)
    with pytest.raises(InvalidTypeError, match="nb_design"):
        estimators.JansenEstimator()(scores, 8.0)
    np.testing.assert_array_equal(estimators.JansenEstimator()(scores, np.int64(8)).numpy(),
                                  estimators.JansenEstimator()(scores, 8).numpy())
