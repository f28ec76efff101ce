"""Sobol from fewer forward passes (issue 26): the estimators that skip B, the scrambled
sampler by name, EFFICIENT_SETTINGS and the pass count."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import SobolAttributionMethod, estimators, samplers
from sobol_tf.attributions.sobol import EFFICIENT_SETTINGS
from sobol_tf.errors import InvalidArgumentError

from tests.conftest import CellModel, CountingModel, analytic_indices

NEW = ("jansen_total", "jansen_normalised", "jansen_cv")
WEIGHTS = np.array([3.0, 0.0, 1.0, 0.5, 0.0, 2.0, 0.0, 1.0, 0.25, 0.0, 0.0, 1.5, 0.0, 0.0,
                    1.0, 0.0])


def evaluate(design, weights, interaction=None):
    f = design @ np.asarray(weights, np.float64)
    if interaction is not None:
        p, q, gamma = interaction
        f = f + gamma * design[:, p] * design[:, q]
    return f


def ishigami(design, a=7.0, b=0.1):
    x = -np.pi + 2 * np.pi * design
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


ISHIGAMI_TOTAL = np.array([0.5576, 0.4424, 0.2437])


def total_error(name, scores_of, exact, dimension, nb_design, seed=0):
    design = samplers.SobolSequence(scramble=True, seed=seed)(dimension, nb_design)
    design = design.astype(np.float64)
    estimator = estimators.get(name)
    indices = estimator(scores_of(design), nb_design, design=design).numpy()
    return np.abs(indices - exact).max()


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("case", ["interaction", "ishigami"])
def test_new_estimators_converge_to_the_exact_total_indices(name, case):
    if case == "ishigami":
        scores_of, exact, dimension = ishigami, ISHIGAMI_TOTAL, 3
    else:
        interaction = (0, 1, 6.0)
        weights = [1.0, 2.0, 0.5, 0.0]
        scores_of = lambda design: evaluate(design, weights, interaction)  # noqa: E731
        exact, dimension = analytic_indices(weights, interaction)[1], 4
    coarse = np.mean([total_error(name, scores_of, exact, dimension, 32, seed)
                      for seed in range(4)])
    fine = total_error(name, scores_of, exact, dimension, 2 ** 13)
    assert fine < 0.02, fine
    assert fine < coarse / 2, (coarse, fine)


@pytest.mark.parametrize("name", ["jansen_normalised", "jansen_cv"])
def test_step_corrected_estimators_are_exact_on_a_linear_model_at_nb_design_8(name):
    """f linear in the masks: each cell's change of score is w_i (a_i - b_i), so once its
    realised steps are accounted for the indices are w_i^2 / sum w^2 up to the variance
    estimate, a common factor: exactly proportional to w_i^2 at any nb_design."""
    weights = np.array([3.0, 1.0, 0.5, 2.0, 0.0, 1.5])
    design = samplers.ScrambledSobolSequence(seed=3)(6, 8).astype(np.float64)
    indices = estimators.get(name)(evaluate(design, weights), 8, design=design).numpy()
    np.testing.assert_allclose(indices / indices[0], weights ** 2 / 9.0, atol=1e-5)
    plain = estimators.get("jansen_total")(evaluate(design, weights), 8).numpy()
    assert np.abs(plain / plain[0] - weights ** 2 / 9.0).max() > 0.05  # Jansen's is not


def test_jansen_total_equals_jansen_on_the_same_design():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 16 * 7))
    np.testing.assert_allclose(estimators.get("jansen_total")(scores, 16).numpy(),
                               estimators.get("jansen")(scores, 16).numpy(), rtol=1e-5)


def test_estimate_reads_scores_without_b_and_xplique_call_gives_cells():
    design = samplers.ScrambledSobolSequence()(4, 16).astype(np.float64)
    scores = evaluate(design, [1.0, 2.0, 0.5, 0.0], (0, 1, 3.0))
    estimator = estimators.get("jansen_normalised")
    full = estimator(scores, 16, design=design).numpy()
    without_b = np.concatenate([scores[:16], scores[32:]])[None]
    np.testing.assert_allclose(estimator.estimate(without_b, 16, design).numpy()[0], full,
                               rtol=1e-6)
    masks = design.reshape(-1, 2, 2, 1)
    cells = estimator(masks, scores, 16).numpy()  # Xplique's call: the masks are the design
    assert cells.shape == (2, 2, 1)
    np.testing.assert_allclose(cells.ravel(), full, rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="does not match"):
        estimator.estimate(without_b, 16, design[:, :3])
    with pytest.raises(InvalidArgumentError, match="d \\+ 1"):
        estimator.estimate(np.zeros((1, 16)), 16, design)
    assert not estimators.reads_b(estimator) and estimators.reads_b(estimators.get("homma"))


def test_scrambled_sampler_by_name_is_reproducible():
    default = samplers.get("scrambled_sobol")(5, 16)
    np.testing.assert_array_equal(default, samplers.get("scrambled_sobol", seed=0)(5, 16))
    assert not np.array_equal(default, samplers.get("scrambled_sobol", seed=1)(5, 16))
    assert not np.array_equal(default, samplers.get("sobol")(5, 16))


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16, 16, 1)),
                             keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])


@pytest.mark.parametrize("settings", [{}, EFFICIENT_SETTINGS], ids=["default", "efficient"])
@pytest.mark.parametrize("targets", [None, [0, 2]], ids=["predicted", "given"])
def test_nb_forward_passes_is_what_the_model_sees(tiny_model, settings, targets):
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype(np.float32)
    counting = CountingModel(tiny_model)
    explainer = SobolAttributionMethod(counting, grid_size=4, nb_design=8, batch_size=50,
                                       **settings)
    expected = explainer.nb_forward_passes(x, targets)
    assert counting.rows.numpy() == 0
    cells = 16 + (2 if not settings else 1)
    assert expected in (2 * 8 * cells, 2 * (8 * cells + 1))
    explainer(x, targets)
    assert counting.rows.numpy() == expected


def test_efficient_settings_skip_b_and_explain_indices_agrees(tiny_model):
    """One stage (refine=False): explain's maps are explain_indices' total ones; the
    first order of the design-reading estimators (linear control variate) estimates the
    same indices as the reference formula on the same design."""
    x = np.random.default_rng(1).random((2, 16, 16, 1)).astype(np.float32)
    explainer = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=16,
                                       **{**EFFICIENT_SETTINGS, "refine": False})
    assert explainer.masks.shape[0] == 16 * 18  # Xplique's layout, B included
    maps = explainer(x, [0, 1]).numpy()
    indices = explainer.explain_indices(x, [0, 1])
    np.testing.assert_allclose(indices.total.numpy(), maps, rtol=1e-4, atol=1e-6)
    reference = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=1024,
                                       estimator="jansen", sampler="scrambled_sobol",
                                       batch_size=4096)
    first = reference.explain_indices(x, [0, 1]).first.numpy()
    formula = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=16,
                                     estimator="jansen", sampler="scrambled_sobol")
    formula = formula.explain_indices(x, [0, 1]).first.numpy()  # same design, reference formula
    for got, plain, want in zip(indices.first.numpy(), formula, first):
        r_cv = np.corrcoef(got.ravel(), want.ravel())[0, 1]
        r_plain = np.corrcoef(plain.ravel(), want.ravel())[0, 1]
        assert r_cv > 0.8 and 1 - r_cv < 1 - r_plain, (r_cv, r_plain)
    refined = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=16,
                                     **EFFICIENT_SETTINGS)
    np.testing.assert_allclose(refined.explain_indices(x, [0, 1]).total.numpy(), maps,
                               rtol=1e-4, atol=1e-6)  # explain_indices: one stage


def test_efficient_map_is_close_to_the_reference_on_a_small_model(tiny_model):
    x = np.random.default_rng(2).random((3, 16, 16, 1)).astype(np.float32)
    targets = [0, 1, 2]
    reference = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=1024,
                                       batch_size=4096)(x, targets).numpy()
    efficient = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=16,
                                       **EFFICIENT_SETTINGS)(x, targets).numpy()
    default = SobolAttributionMethod(tiny_model, grid_size=4, nb_design=16)(
        x, targets).numpy()

    def error(maps):
        return np.mean([1 - np.corrcoef(m.ravel(), r.ravel())[0, 1]
                        for m, r in zip(maps, reference)])

    assert error(efficient) < 0.01, error(efficient)
    assert error(efficient) < error(default), (error(efficient), error(default))


def test_closed_form_through_the_explainer():
    """CellModel: exact total indices at nb_design 1024, the B rows never evaluated."""
    interaction = (0, 5, 6.0)
    model = CellModel(WEIGHTS, 4, interaction)
    total = analytic_indices(WEIGHTS, interaction)[1]
    x = np.ones((1, 4, 4, 1), np.float32)
    for name in ("jansen_normalised", "jansen_cv"):
        explainer = SobolAttributionMethod(model, grid_size=4, nb_design=1024,
                                           estimator=name, sampler="scrambled_sobol",
                                           batch_size=4096)
        assert explainer.nb_forward_passes(x, [0]) == 1024 * 17 + 1  # + the clean input
        st = explainer(x, [0]).numpy()[0, ..., 0].ravel()
        np.testing.assert_allclose(st, total, atol=0.02)


def test_reference_settings_still_evaluate_b():
    explainer = SobolAttributionMethod(lambda x: x[:, 0, 0], grid_size=8, nb_design=32,
                                       estimator="jansen", sampler="sobol")
    x = np.zeros((1, 8, 8, 1), np.float32)
    assert explainer.nb_forward_passes(x, np.ones((1, 8))) == 32 * 66 + 1


@pytest.mark.parametrize("targets", [None, [0, 2]], ids=["predicted", "given"])
def test_hsic_nb_forward_passes_is_what_the_model_sees(tiny_model, targets):
    from sobol_tf.attributions import HsicAttributionMethod
    x = np.random.default_rng(2).random((2, 16, 16, 1)).astype(np.float32)
    counting = CountingModel(tiny_model)
    explainer = HsicAttributionMethod(counting, grid_size=4, nb_design=24, batch_size=50)
    expected = explainer.nb_forward_passes(x, targets)
    assert counting.rows.numpy() == 0
    # one row per mask and input, plus the clean inputs when the operator needs the
    # outputs (the predicted class, or the output width for class ids)
    assert expected in (2 * 24, 2 * 25)
    explainer(x, targets)
    assert counting.rows.numpy() == expected
