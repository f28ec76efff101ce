"""Xplique-style calls of the global sensitivity analysis methods (Sobol, HSIC).

Written for sobol_tf (no xplique import): Xplique's positional order and names, its
estimator call ``estimator(masks, outputs, nb_design)``, its sampler names and a
user-written Xplique-style estimator or sampler, each checked against ground truth.
"""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import HsicAttributionMethod, SobolAttributionMethod
from sobol_tf.attributions import estimators, hsic_estimators, samplers
from sobol_tf.errors import InvalidArgumentError

from tests.conftest import CellModel, RegionModel, analytic_indices, naive_hsic

ONES = np.ones((2, 2, 2, 1), np.float32)  # one pixel per cell: maps are not resized
TOP_LEFT = RegionModel((0, 1), (0, 1))


def linear_design_outputs(weights, nb_design, seed):
    """[f(A), f(B), f(C_1)..f(C_d)] of f(x) = w.x with Gaussian A, B: exact ST_i = w_i^2 / |w|^2."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(nb_design, len(weights)))
    b = rng.normal(size=(nb_design, len(weights)))
    design = samplers.replicate(a.astype(np.float32), b.astype(np.float32))
    return design, design.astype(np.float64) @ np.asarray(weights)


# -- item 1: positional order -------------------------------------------------------------
def jansen_of_one_column(masks, nb_design, column):
    """Jansen's total index of a model that returns mask value ``column`` (flattened cells),
    computed from the design itself: the value the explainer must give that cell."""
    flat = np.asarray(masks).reshape(len(masks), -1).astype(np.float64)
    a, b = flat[:nb_design, column], flat[nb_design:2 * nb_design, column]
    return ((a - b) ** 2).sum() / (2 * nb_design * a.var(ddof=1))


def test_sobol_takes_xpliques_positional_order():
    jansen = estimators.JansenEstimator()
    sampler = samplers.ScipySobolSequenceRS()
    explainer = SobolAttributionMethod(TOP_LEFT, 2, 16, sampler, jansen,
                                       "inpainting", 7, "regression")
    assert (explainer.grid_size, explainer.nb_design, explainer.batch_size) == (2, 16, 7)
    assert explainer.sampler is sampler and explainer.estimator is jansen
    assert explainer.operator.name == "regression"
    maps = explainer(ONES, np.array([[1.0, 0.0]] * 2)).numpy()
    # only the top-left cell is read: it carries the whole variance
    np.testing.assert_allclose(maps[:, 0, 0, 0], jansen_of_one_column(explainer.masks, 16, 0),
                               rtol=1e-5)
    maps[:, 0, 0] = 0.0
    np.testing.assert_allclose(maps, 0.0, atol=1e-4)


def test_hsic_takes_xpliques_positional_order():
    estimator = hsic_estimators.BinaryEstimator()
    sampler = None  # the default design
    explainer = HsicAttributionMethod(TOP_LEFT, 2, 32, sampler, estimator,
                                      "inpainting", 5, 3, "regression")
    assert (explainer.grid_size, explainer.nb_design, explainer.batch_size) == (2, 32, 5)
    assert explainer.estimator is estimator and explainer.estimator.batch_size == 3
    assert explainer.operator.name == "regression"
    maps = explainer(ONES, np.array([[1.0, 0.0]] * 2)).numpy()
    assert maps[:, 0, 0].min() > 0.1
    maps[:, 0, 0] = 0.0
    np.testing.assert_allclose(maps, 0.0, atol=1e-6)


def test_extras_stay_keyword_only():
    with pytest.raises(TypeError):
        SobolAttributionMethod(TOP_LEFT, 2, 16, None, None, "inpainting",
                               8, None, 1)  # nb_channels is keyword-only, as in Xplique


# -- item 2: nb_channels and .masks ------------------------------------------------------
@pytest.mark.parametrize("method, rows", [(SobolAttributionMethod, 8 * (2 * 2 * 1 + 2)),
                                          (HsicAttributionMethod, 8)])
def test_masks_attribute_has_xpliques_layout(method, rows):
    """Xplique's layout, by value: Sobol's rows are [A, B, C_1..C_d] with C_i equal to A
    but for column i, taken from B (cells row-major); HSIC's are nb_design binary masks
    in which every cell is kept sometimes, removed sometimes, and no two cells have
    equal or complementary masks. And they are the masks the explainer perturbs with: a
    model returning cell (0, 0) of its input gets the index computed from them."""
    explainer = method(TOP_LEFT, 2, 8)
    masks = np.asarray(explainer.masks)
    assert masks.shape == (rows, 2, 2, 1)
    flat = masks.reshape(len(masks), -1).astype(np.float64)
    if method is SobolAttributionMethod:
        a, b, c = flat[:8], flat[8:16], flat[16:].reshape(4, 8, 4)
        assert ((flat >= 0) & (flat <= 1)).all() and (a != b).any(axis=0).all()
        for cell in range(4):
            expected = a.copy()
            expected[:, cell] = b[:, cell]
            np.testing.assert_array_equal(c[cell], expected)
        maps = explainer(ONES, np.array([[1.0, 0.0]] * 2)).numpy()
        np.testing.assert_allclose(maps[:, 0, 0, 0], jansen_of_one_column(masks, 8, 0),
                                   rtol=1e-5)
    else:
        assert set(np.unique(flat)) == {0.0, 1.0}
        assert (flat.min(axis=0) == 0).all() and (flat.max(axis=0) == 1).all()
        signs = 2 * flat - 1
        products = np.abs(signs.T @ signs) / len(flat)   # 1 for equal / complementary
        np.fill_diagonal(products, 0.0)
        assert products.max() < 1
        scores = flat[:, 0]      # what the model reading cell (0, 0) returns on ONES
        maps = explainer(ONES, np.array([[1.0, 0.0]] * 2)).numpy()
        expected = naive_hsic(flat, scores, lambda x, y: 0.5 - (x - y) ** 2)[0]
        np.testing.assert_allclose(maps[:, 0, 0, 0], expected, rtol=1e-4)


def test_sobol_nb_channels_gives_one_index_per_cell_and_channel():
    """The model reads channel 1 of the top-left cell only: with masks per channel, only
    that (cell, channel) gets a total index (1), the others 0."""
    def model(x):
        score = x[:, 0, 0, 1]
        return tf.stack([score, -score], axis=-1)

    explainer = SobolAttributionMethod(model, 2, 16, nb_channels=3)
    assert tuple(explainer.masks.shape) == (16 * (2 * 2 * 3 + 2), 2, 2, 3)
    maps = explainer(np.ones((1, 2, 2, 3), np.float32), [0]).numpy()
    assert maps.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(maps[0, 0, 0, 1], jansen_of_one_column(explainer.masks, 16, 1),
                               rtol=1e-5)   # cell (0, 0), channel 1 is column 1 (HWC)
    maps[0, 0, 0, 1] = 0.0
    np.testing.assert_allclose(maps, 0.0, atol=1e-4)


def test_nb_channels_must_match_the_inputs():
    explainer = SobolAttributionMethod(TOP_LEFT, 2, 8, nb_channels=2)
    with pytest.raises(InvalidArgumentError, match="nb_channels"):
        explainer(np.ones((1, 2, 2, 3), np.float32), [0])


# -- item 2: estimators called the Xplique way --------------------------------------------
XPLIQUE_NAMES = ["JansenEstimator", "HommaEstimator", "JanonEstimator", "GlenEstimator",
                 "SaltelliEstimator"]


@pytest.mark.parametrize("name", XPLIQUE_NAMES)
def test_estimators_take_xpliques_call(name):
    weights = np.array([1.0, 2.0, 0.5, 3.0])
    design, outputs = linear_design_outputs(weights, 4096, seed=0)
    estimator = getattr(estimators, name)()
    masks = tf.ones((1, 2, 2, 1))
    xplique_style = estimator(masks, outputs, 4096)
    assert tuple(xplique_style.shape) == (2, 2, 1)
    ours = estimator(outputs[None], 4096)
    np.testing.assert_allclose(np.ravel(xplique_style), np.ravel(ours), rtol=1e-6)
    np.testing.assert_allclose(np.ravel(xplique_style), weights ** 2 / np.sum(weights ** 2),
                               atol=0.05)
    # keywords work too, and the design itself as "masks" (Xplique's Ishigami test does so)
    by_keyword = estimator(masks=design, outputs=outputs, nb_design=4096)
    np.testing.assert_allclose(np.ravel(by_keyword), np.ravel(ours), rtol=1e-6)


def test_xplique_call_checks_masks_against_outputs():
    _, outputs = linear_design_outputs([1.0, 2.0, 3.0, 4.0], 8, seed=0)
    with pytest.raises(InvalidArgumentError, match="masks"):
        estimators.JansenEstimator()(tf.ones((1, 3, 3, 1)), outputs, 8)


class XpliqueStyleJansen:
    """What an Xplique user writes: one input's outputs, returns masks.shape[1:]."""

    def __init__(self):
        self.calls = 0

    def __call__(self, masks, outputs, nb_design):
        self.calls += 1
        outputs = np.asarray(outputs, np.float64)
        dimension = int(np.prod(masks.shape[1:]))
        a = outputs[:nb_design]
        c = outputs[2 * nb_design:].reshape(dimension, nb_design)
        total = ((a - c) ** 2).sum(axis=1) / (2 * nb_design * a.var(ddof=1))
        return tf.reshape(tf.constant(total, tf.float32), masks.shape[1:])


def test_user_written_xplique_estimator_works_in_the_explainer():
    weights = [0.0, 1.0, 2.0, 3.0]
    model = CellModel(weights, 2)
    estimator = XpliqueStyleJansen()
    explainer = SobolAttributionMethod(model, 2, 256, estimator=estimator)
    images = np.ones((3, 2, 2, 1), np.float32)
    maps = explainer(images, [0, 0, 0]).numpy()
    assert estimator.calls == 3
    reference = SobolAttributionMethod(model, 2, 256)(images, [0, 0, 0]).numpy()
    np.testing.assert_allclose(maps, reference, rtol=1e-4, atol=1e-5)
    _, total = analytic_indices(weights)
    np.testing.assert_allclose(maps[0, ..., 0].ravel(), total, atol=0.05)


def test_subclass_overriding_call_the_xplique_way_is_used_as_such():
    class Constant(estimators.SobolEstimator):
        def __call__(self, masks, outputs, nb_design):
            return tf.fill(masks.shape[1:], float(np.asarray(outputs).shape[0]))

    explainer = SobolAttributionMethod(TOP_LEFT, 2, 8, estimator=Constant())
    maps = explainer(ONES, [0, 0]).numpy()
    np.testing.assert_allclose(maps, 8 * (4 + 2))   # called once per input, 1-D outputs


# -- item 2: Xplique's sampler names ------------------------------------------------------
@pytest.mark.parametrize("name", ["ScipySobolSequenceRS", "TFSobolSequenceRS",
                                  "HaltonSequenceRS", "LatinHypercubeRS", "MonteCarloRS"])
def test_replicated_sampler_names(name):
    design = np.asarray(getattr(samplers, name)()(3, 16))
    assert design.shape == (16 * 5, 3)
    a, b, c = design[:16], design[16:32], design[32:].reshape(3, 16, 3)
    for i in range(3):
        expected = a.copy()
        expected[:, i] = b[:, i]
        np.testing.assert_array_equal(c[i], expected)


def test_scipy_sobol_rs_is_the_unscrambled_sequence():
    from scipy.stats import qmc
    ab = qmc.Sobol(6, scramble=False).random(8).astype(np.float32)
    design = samplers.ScipySobolSequenceRS()(3, 8)
    np.testing.assert_array_equal(design[:8], ab[:, :3])
    np.testing.assert_array_equal(design[8:16], ab[:, 3:])


def test_tf_sobol_rs_is_tensorflows_sequence():
    ab = tf.math.sobol_sample(6, 8, dtype=tf.float32).numpy()
    design = np.asarray(samplers.TFSobolSequenceRS()(3, 8))
    np.testing.assert_array_equal(design[:8], ab[:, :3])
    np.testing.assert_array_equal(design[8:16], ab[:, 3:])


def test_user_written_xplique_sampler_works():
    """A sampler(dimension, nb_design) returning a tf.Tensor, as Xplique's TF samplers."""
    def sampler(dimension, nb_design):
        return tf.constant(samplers.SobolSequence(scramble=True, seed=0)(dimension, nb_design))

    weights = [0.0, 1.0, 2.0, 3.0]
    maps = SobolAttributionMethod(CellModel(weights, 2), 2, 256, sampler)(
        np.ones((1, 2, 2, 1), np.float32), [0]).numpy()
    np.testing.assert_allclose(maps[0, ..., 0].ravel(), analytic_indices(weights)[1],
                               atol=0.05)


@pytest.mark.parametrize("name", ["TFSobolSequence", "ScipySobolSequence",
                                  "HaltonSequence", "LatinHypercube"])
def test_hsic_sampler_names_with_binary(name):
    from sobol_tf.attributions import global_sensitivity_analysis as gsa
    points = np.asarray(getattr(gsa, name)(binary=True)(5, 16))
    assert points.shape == (16, 5)
    assert set(np.unique(points)) <= {0.0, 1.0}
    continuous = np.asarray(getattr(gsa, name)()(5, 16))
    assert ((continuous >= 0) & (continuous <= 1)).all() and len(np.unique(continuous)) > 2


# -- item 6: HSIC's default design, estimators and estimator_batch_size -------------------
@pytest.mark.parametrize("grid_size, nb_design", [(8, 64), (8, 100), (8, 128), (4, 16),
                                                  (4, 32)])
def test_hsic_default_design_works_at_common_sizes(grid_size, nb_design):
    """Every cell gets its own non-constant binary mask, so a model reading one cell gives
    that cell the largest index."""
    def model(x):
        score = x[:, 1, 2, 0]
        return tf.stack([score, -score], axis=-1)

    explainer = HsicAttributionMethod(model, grid_size, nb_design)
    flat = explainer.masks.numpy().reshape(nb_design, -1)
    assert set(np.unique(flat)) == {0.0, 1.0}
    canonical = flat != flat[:1]
    assert canonical.any(axis=0).all()                      # no constant cell
    assert len({c.tobytes() for c in canonical.T}) == grid_size ** 2   # no twin cells
    maps = explainer(np.ones((1, grid_size, grid_size, 1), np.float32), [0]).numpy()[0, ..., 0]
    assert np.unravel_index(np.argmax(maps), maps.shape) == (1, 2)


KERNELS = {
    "BinaryEstimator": lambda x, y: 0.5 - (x - y) ** 2,
    "RbfEstimator": lambda x, y: np.exp(-(x - y) ** 2 / (2 * 0.5 ** 2)),
    "SobolevEstimator": lambda x, y: ((np.abs(x - y) ** 2 - np.abs(x - y) + 1 / 6) / 2
                                      + (np.abs(x) - 0.5) * (np.abs(y) - 0.5)),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("binary", [True, False])
def test_hsic_estimators_equal_the_gram_matrix_formula(name, binary):
    rng = np.random.default_rng(1)
    masks = rng.random((30, 2, 3, 1))
    if binary:
        masks = np.round(masks)
    flat = masks.reshape(30, -1)
    scores = flat @ rng.normal(size=6) + np.sin(4 * flat[:, 2]) + 0.1 * rng.normal(size=30)
    estimator = getattr(hsic_estimators, name)()
    estimator.set_batch_size(4)                             # 6 cells: chunks of 4 and 2
    result = estimator(tf.constant(masks, tf.float32), scores, 30).numpy()
    assert result.shape == (2, 3, 1)
    np.testing.assert_allclose(result.ravel(), naive_hsic(flat, scores, KERNELS[name]),
                               rtol=2e-4, atol=2e-6)


def test_hsic_estimators_in_the_explainer_and_estimator_batch_size():
    """Continuous masks (an Xplique-style sampler with binary=False) with each non-binary
    estimator, all cells at once (None) or 3 at a time: the Gram-matrix formula's values."""
    def model(x):
        score = tf.sin(3.0 * x[:, 0, 1, 0]) + x[:, 1, 0, 0]
        return tf.stack([score, -score], axis=-1)

    images = np.ones((2, 2, 2, 1), np.float32)
    masks = samplers.LatinHypercubePoints(seed=0)(4, 40).astype(np.float64)
    for name, chunk in (("RbfEstimator", None), ("SobolevEstimator", 3)):
        explainer = HsicAttributionMethod(model, 2, 40, samplers.LatinHypercubePoints(seed=0),
                                          getattr(hsic_estimators, name)(), "inpainting", 16,
                                          chunk)
        assert explainer.estimator.batch_size == (chunk or hsic_estimators.DEFAULT_BATCH_SIZE)
        maps = explainer(images, [0, 0]).numpy()
        expected = naive_hsic(masks, np.sin(3 * masks[:, 1]) + masks[:, 2], KERNELS[name])
        for row in maps:
            np.testing.assert_allclose(row.ravel(), expected, rtol=1e-3, atol=1e-6)


def test_binary_estimator_refuses_a_continuous_sampler():
    with pytest.raises(InvalidArgumentError, match="binary"):
        HsicAttributionMethod(TOP_LEFT, 2, 8, samplers.LatinHypercubePoints(),
                              hsic_estimators.BinaryEstimator())


def test_hsic_nb_channels():
    """Masks per channel: only (cell (0, 0), channel 2) is read, so only it has an index."""
    def model(x):
        score = x[:, 0, 0, 2]
        return tf.stack([score, -score], axis=-1)

    explainer = HsicAttributionMethod(model, 2, 64, nb_channels=3)
    assert tuple(explainer.masks.shape) == (64, 2, 2, 3)
    maps = explainer(np.ones((1, 2, 2, 3), np.float32), [0]).numpy()
    assert maps.shape == (1, 2, 2, 3) and maps[0, 0, 0, 2] > 0.1
    maps[0, 0, 0, 2] = 0.0
    np.testing.assert_allclose(maps, 0.0, atol=1e-6)


def test_xpliques_perturbation_names():
    from sobol_tf.attributions import global_sensitivity_analysis as gsa
    images = np.random.default_rng(0).random((1, 4, 4, 1)).astype(np.float32)
    model = CellModel([1.0, 2.0, 3.0, 4.0], 2)
    for name in ("inpainting", "blurring", "amplitude"):
        by_object = SobolAttributionMethod(model, 2, 16, None, None, getattr(gsa, name))
        by_name = SobolAttributionMethod(model, 2, 16, None, None, name)
        np.testing.assert_array_equal(by_object(images, [0]).numpy(), by_name(images, [0]).numpy())
