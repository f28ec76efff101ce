"""Two-stage Sobol designs (``refine``): closed forms, the pass count, the gain at equal
passes, and the refusals."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import SobolAttributionMethod
from sobol_tf.attributions import refinement
from sobol_tf.attributions.sobol import EFFICIENT_SETTINGS
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

from tests.conftest import CellModel, CountingModel, analytic_indices

WEIGHTS = np.array([3.0, 0.0, 1.0, 0.5, 0.0, 2.0, 0.0, 1.0, 0.25, 0.0, 0.0, 1.5, 0.0, 0.0,
                    1.0, 0.0])
INTERACTION = (0, 5, 6.0)
ONES = np.ones((1, 4, 4, 1), np.float32)


def explainer_of(model, nb_design, refine=True, seed=0, **options):
    options = {**EFFICIENT_SETTINGS, "batch_size": 4096, **options, "refine": refine}
    return SobolAttributionMethod(model, grid_size=4, nb_design=nb_design, seed=seed,
                                  **options)


def test_allocation_spends_the_budget_about_in_proportion():
    rng = np.random.default_rng(0)
    for d in (1, 3, 10, 64):
        for budget in (2, 7, 100, 777):
            weights = rng.random(d) ** 3
            steps = refinement.allocate(weights, budget, cap=10 ** 6)
            used = steps.sum() + steps.max()
            assert used <= budget and (used >= budget - 1 or d == 1 and used >= budget - 2)
            if budget >= 100 and d > 1:  # more weight, more steps (within rounding)
                order = np.argsort(weights)
                assert np.all(np.diff(steps[order]) >= -1)
    capped = refinement.allocate(np.array([100.0, 1.0, 1.0]), 60, cap=5)
    assert capped.max() == 5 and capped.sum() + capped.max() <= 60
    assert not refinement.allocate(np.zeros(4), 50, cap=9).any()


def test_closed_form_with_an_interaction():
    """Exact total indices of CellModel (additive + one product) at nb_design 512."""
    total = analytic_indices(WEIGHTS, INTERACTION)[1]
    for estimator in ("jansen_normalised", "jansen_total"):
        st = explainer_of(CellModel(WEIGHTS, 4, INTERACTION), 512,
                          estimator=estimator)(ONES, [0]).numpy()[0, ..., 0].ravel()
        np.testing.assert_allclose(st, total, atol=0.02)


def test_an_additive_model_is_exact_up_to_the_variance():
    """f = sum_i w_i m_i: every cell's Jansen term is w_i^2 (a_i - b_i)^2, so the
    normalised sums are w_i^2 exactly, at any nb_design: the map is w^2 / V."""
    st = explainer_of(CellModel(WEIGHTS, 4), 8)(ONES, [0]).numpy()[0, ..., 0].ravel()
    np.testing.assert_allclose(st / st.sum(), WEIGHTS ** 2 / np.sum(WEIGHTS ** 2),
                               atol=1e-6)


@pytest.mark.parametrize("targets", [[0], None], ids=["given", "predicted"])
def test_nb_forward_passes_is_what_the_model_sees(targets):
    counting = CountingModel(CellModel(WEIGHTS, 4, INTERACTION))
    x = np.concatenate([ONES, 0.5 * ONES])
    targets = None if targets is None else [0, 0]
    explainer = explainer_of(counting, 16)
    expected = explainer.nb_forward_passes(x, targets)
    one_stage = explainer_of(counting, 16, refine=False).nb_forward_passes(x, targets)
    clean = one_stage - 2 * 16 * 17  # the clean inputs, when the operator needs them
    assert expected == 2 * refinement.passes(16, 16) + clean == one_stage
    explainer(x, targets)
    assert counting.rows.numpy() == expected


def test_more_exact_than_one_stage_at_equal_passes():
    """Few cells matter and interact: over 8 designs, the two-stage maps are closer to
    the exact indices than the one-stage ones with the same estimator and passes."""
    weights = np.zeros(16)
    weights[[0, 5, 6, 10]] = [3.0, 2.0, 1.0, 0.5]
    model = CellModel(weights, 4, (0, 5, 8.0))
    total = analytic_indices(weights, (0, 5, 8.0))[1]

    def error(refine):
        maps = [explainer_of(model, 8, refine=refine, seed=seed)(ONES, [0]).numpy().ravel()
                for seed in range(8)]
        return np.mean([np.abs(m - total).max() for m in maps])

    assert error(True) < 0.8 * error(False), (error(True), error(False))


def test_refusals():
    model = CellModel(WEIGHTS, 4)
    for bad in (0.25, "yes", None, 1):
        with pytest.raises(InvalidTypeError, match="refine"):
            explainer_of(model, 16, refine=bad)
    with pytest.raises(InvalidArgumentError, match="jansen_normalised"):
        SobolAttributionMethod(model, grid_size=4, nb_design=16, refine=True)
    ids = np.array([[3, 4, 5, 6]], np.int32)
    text = SobolAttributionMethod(lambda x: tf.one_hot(x[:, 0] % 2, 2), nb_design=16,
                                  perturbation_function="tokens", mask_token=0,
                                  **EFFICIENT_SETTINGS)
    with pytest.raises(InvalidArgumentError, match="token"):
        text(ids, [0])


@pytest.mark.parametrize("batch_size", [7, 4096])
def test_each_input_is_refined_with_its_own_design(batch_size, monkeypatch):
    """The inputs' refinements share the batches, each with its own masks: explained
    together (batches straddling inputs, or all in one) or one at a time, the maps are
    the same, and they differ between inputs whose important cells differ."""
    model = CellModel(WEIGHTS, 4, INTERACTION)
    half = ONES.copy()
    half[:, :2] = 0.0  # the first two rows of cells: no signal, index 0
    x = np.concatenate([ONES, half, 0.5 * ONES])
    explainer = explainer_of(model, 16, batch_size=batch_size)
    together = explainer(x, [0, 0, 0]).numpy()
    alone = np.concatenate([explainer(x[k:k + 1], [0]).numpy() for k in range(3)])
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-7)
    monkeypatch.setattr(refinement, "GROUP_BYTES", 1)  # groups of one input
    np.testing.assert_allclose(explainer(x, [0, 0, 0]).numpy(), alone, rtol=1e-6, atol=1e-7)
    assert np.all(together[1, :2] == 0) and together[0, :2].sum() > 0.5


def test_the_callers_inputs_are_not_modified():
    x = ONES.copy()
    explainer_of(CellModel(WEIGHTS, 4), 8)(x, [0])
    np.testing.assert_array_equal(x, ONES)


# -- first order with the linear effects as a control variate (explain_indices) ---------
def first_order_errors(weights, interaction, nb_design, seeds=range(6)):
    from sobol_tf.attributions import estimators, samplers
    model = CellModel(weights, 4, interaction)
    exact = analytic_indices(weights, interaction)[0]
    errors = {"reference": [], "cv": []}
    for seed in seeds:
        explainer = SobolAttributionMethod(model, grid_size=4, nb_design=nb_design,
                                           seed=seed, batch_size=4096, **EFFICIENT_SETTINGS)
        first = explainer.explain_indices(ONES, [0]).first.numpy()[0, ..., 0].ravel()
        errors["cv"].append(np.abs(first - exact).max())
        reference = SobolAttributionMethod(model, grid_size=4, nb_design=nb_design,
                                           sampler=samplers.ScrambledSobolSequence(seed=seed),
                                           batch_size=4096)
        first = reference.explain_indices(ONES, [0]).first.numpy()[0, ..., 0].ravel()
        errors["reference"].append(np.abs(first - exact).max())
    return {k: float(np.mean(v)) for k, v in errors.items()}


def test_first_order_control_variate_converges_to_the_closed_form():
    from sobol_tf.attributions import estimators
    first = analytic_indices(WEIGHTS, INTERACTION)[0]
    explainer = explainer_of(CellModel(WEIGHTS, 4, INTERACTION), 1024, refine=False)
    got = explainer.explain_indices(ONES, [0]).first.numpy()[0, ..., 0].ravel()
    np.testing.assert_allclose(got, first, atol=0.02)
    assert estimators.first_order_of(estimators.get("jansen"), np.ones((1, 8 * 18)), 8,
                                     None).shape == (1, 16)  # the reference: no design


def test_first_order_control_variate_beats_the_reference_formula_at_16():
    errors = first_order_errors(WEIGHTS, INTERACTION, 16)
    assert errors["cv"] < 0.5 * errors["reference"], errors  # about 4x here


def test_first_order_control_variate_is_affine_invariant_per_input():
    from sobol_tf.attributions import estimators, samplers
    design = samplers.ScrambledSobolSequence(seed=3)(16, 16).astype(np.float64)
    f = design @ WEIGHTS + 6.0 * design[:, 0] * design[:, 5]
    both = estimators.first_order_with_linear_cv(np.stack([f, -3.0 * f + 7.0]), 16, design)
    np.testing.assert_allclose(both[0], both[1], rtol=1e-5, atol=1e-6)
    flat = estimators.first_order_with_linear_cv(np.full((1, 16 * 18), 2.5), 16, design)
    assert not np.any(flat.numpy())  # a constant score: every index 0
    with pytest.raises(InvalidArgumentError, match="design"):
        estimators.first_order_with_linear_cv(f[None], 16, design[:, :15])


@pytest.mark.parametrize("nb_design", [2, 4])
def test_the_smallest_designs(nb_design):
    """nb_design=2: the survey spends the whole budget (no refinement rows)."""
    counting = CountingModel(CellModel(WEIGHTS, 4))
    explainer = explainer_of(counting, nb_design)
    expected = explainer.nb_forward_passes(ONES, [0])
    st = explainer(ONES, [0]).numpy().ravel()
    assert counting.rows.numpy() == expected
    np.testing.assert_allclose(st / st.sum(), WEIGHTS ** 2 / np.sum(WEIGHTS ** 2),
                               atol=1e-6)  # additive: exact at any budget
