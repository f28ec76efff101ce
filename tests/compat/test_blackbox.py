"""Xplique-style calls of the black-box explainers: Xplique's positional order and names.

Each test calls our classes the way Xplique code does (arguments by position, in
Xplique's order) and checks that every argument lands where Xplique puts it, and that
the result is right on a model whose answer is known.
"""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion, Rise

WEIGHTS = np.random.default_rng(0).normal(size=(6, 6, 1)).astype(np.float32)


def linear(x):
    f = tf.reduce_sum(x * WEIGHTS, axis=[1, 2, 3])
    return tf.stack([f, -f], axis=-1)


def test_rise_positional_order_is_xpliques():
    """Rise(model, batch_size, operator, nb_samples, grid_size, preservation_probability,
    mask_value): each argument, given by position, does what Xplique's does. The map is
    computed by hand from the explainer's own masks (nb_samples of them, grids of
    grid_size x grid_size cells kept with probability preservation_probability, masked
    values moving to mask_value), the scores are the regression operator's (output 0
    weighted by the target row) and no forward pass holds more than batch_size inputs."""
    batches = []

    def recording(x):
        batches.append(x.shape[0])
        return linear(x)

    explainer = Rise(recording, 7, "regression", 30, 3, 0.25, 0.5, seed=0)
    explainer.run_eagerly = True  # the recording model sees every batch
    x = np.random.default_rng(1).uniform(size=(1, 6, 6, 1)).astype(np.float32)
    maps = explainer(x, np.array([[1.0, 0.0]], np.float32)).numpy()[0, ..., 0]
    grids = explainer._masks(6, 6, 1).numpy()
    assert grids.shape == (30, 3, 3, 1)                       # nb_samples grids of 3 x 3
    assert set(np.unique(grids)) <= {0.0, 1.0} and 0.1 < grids.mean() < 0.4   # p = 0.25
    masks = explainer._input_size_masks(6, 6).numpy()
    perturbed = x * masks + (1 - masks) * 0.5                 # towards mask_value 0.5
    scores = (perturbed * WEIGHTS).sum(axis=(1, 2, 3))        # output 0: the regression
    expected = np.einsum("p,phw->hw", scores, masks[..., 0]) / (masks[..., 0].sum(0)
                                                                + Rise.EPSILON)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    assert max(batches) == 7 and sum(batches) >= 30           # batch_size 7


def test_rise_extras_stay_keyword_only():
    with pytest.raises(TypeError):
        Rise(linear, 7, None, 30, 3, 0.25, 0.5, 0)  # seed is keyword-only


def test_occlusion_positional_order_is_xpliques():
    """Occlusion(model, batch_size, operator, patch_size, patch_stride, occlusion_value):
    the map is the hand-computed drop of a linear model."""
    x = np.random.default_rng(1).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    explainer = Occlusion(linear, 5, None, 2, 2, 0.25)
    assert explainer.batch_size == 5 and explainer.operator.name == "classification"
    assert explainer.patch_size == (2, 2) and explainer.patch_stride == (2, 2)
    assert explainer.occlusion_value == 0.25
    maps = explainer(x, np.array([[1.0, 0.0], [0.0, 1.0]])).numpy()[..., 0]
    expected = (x[..., 0] - 0.25) * WEIGHTS[..., 0]      # non-overlapping 2x2 patches
    expected = expected.reshape(2, 3, 2, 3, 2).sum(axis=(2, 4))
    expected = np.repeat(np.repeat(expected, 2, axis=1), 2, axis=2) * np.array([1, -1])[:, None, None]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_occlusion_extras_stay_keyword_only():
    with pytest.raises(TypeError):
        Occlusion(linear, 5, None, 2, 2, 0.0, True)  # verbose is keyword-only


def test_rise_takes_a_tuple_grid_size_as_xplique():
    """grid_size=(rows, cols): each mask is a crop of a (rows x cols) binary grid upsampled
    to (int(H(1 + 1/rows)), int(W(1 + 1/cols))); with rows=1 every mask is constant along
    the columns' complement, i.e. each row of a mask is a resized 1 x cols grid."""
    explainer = Rise(linear, 32, None, 64, (1, 3), seed=0)
    masks = explainer._input_size_masks(6, 6).numpy()[..., 0]
    assert masks.shape == (64, 6, 6)
    # one cell along the rows: every row of a mask is the same
    np.testing.assert_allclose(masks, np.broadcast_to(masks[:, :1], masks.shape), atol=1e-6)
    # three cells along the columns: the masks vary along the columns
    assert np.ptp(masks, axis=2).max() > 0.5
    maps = explainer(np.ones((1, 6, 6, 1), np.float32), [0])
    assert maps.shape == (1, 6, 6, 1)


def test_lime_positional_order_is_xpliques():
    """Lime(model, batch_size, operator, interpretable_model, similarity_kernel,
    pertub_func, map_to_interpret_space, ref_value, nb_samples, distance_mode,
    kernel_width, prob)."""
    from sobol_tf.attributions import Lime
    from sobol_tf.attributions.surrogates import WeightedLinearRegression

    surrogate = WeightedLinearRegression(0.0)

    def kernel(x, z, p):
        return tf.ones(len(z))

    def pertub(nb_features, nb_samples):
        return np.random.default_rng(0).integers(0, 2, (nb_samples, nb_features))

    def mapping(image):
        return tf.reshape(tf.range(36), (6, 6)) // 9        # 4 bands of rows

    explainer = Lime(linear, 11, "classification", surrogate, kernel, pertub, mapping,
                     np.array([0.25]), 40, "cosine", 3.0, 0.3)
    assert explainer.batch_size == 11 and explainer.operator.name == "classification"
    assert explainer.interpretable_model is surrogate
    assert explainer.similarity_kernel is kernel and explainer.pertub_func is pertub
    assert explainer.map_to_interpret_space is mapping
    assert explainer.ref_value.tolist() == [0.25] and explainer.nb_samples == 40
    assert explainer.distance_mode == "cosine" and explainer.kernel_width == 3.0
    assert explainer.prob == 0.3
    x = np.random.default_rng(2).uniform(size=(1, 6, 6, 1)).astype(np.float32)
    maps = explainer(x, [0]).numpy()[0, :, :, 0]
    ids = np.arange(36).reshape(6, 6) // 9
    values = WEIGHTS[..., 0] * (x[0, ..., 0] - 0.25)        # a linear model: exact
    np.testing.assert_allclose(maps, np.bincount(ids.ravel(), values.ravel())[ids],
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError):
        Lime(linear, 11, None, None, None, None, None, None, 40, "cosine", 3.0, 0.3, 8)


def test_kernel_shap_positional_order_is_xpliques():
    """KernelShap(model, batch_size, operator, map_to_interpret_space, nb_samples,
    ref_value): Shapley values of a linear model are w (x - ref) per feature."""
    from sobol_tf.attributions import KernelShap

    def mapping(image):
        return tf.reshape(tf.range(36), (6, 6)) % 3          # 3 features: columns mod 3

    explainer = KernelShap(linear, 9, None, mapping, 50, np.array([0.5]))
    assert explainer.batch_size == 9 and explainer.nb_samples == 50
    assert explainer.map_to_interpret_space is mapping and explainer.ref_value.tolist() == [0.5]
    x = np.random.default_rng(3).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    maps = explainer(x, [1, 0]).numpy()[..., 0]
    ids = np.arange(36).reshape(6, 6) % 3
    for image, sign, found in zip(x[..., 0], (-1, 1), maps):
        values = sign * WEIGHTS[..., 0] * (image - 0.5)
        np.testing.assert_allclose(found, np.bincount(ids.ravel(), values.ravel())[ids],
                                   rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError):
        KernelShap(linear, 9, None, mapping, 50, None, 4)    # grid_size is keyword-only


def test_kernel_shap_explains_tabular_rows_with_xpliques_defaults():
    """Xplique's defaults on tabular rows: one feature per column, ref 0."""
    from sobol_tf.attributions import KernelShap
    weights = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 3.0]], np.float32)

    def scores(rows):
        return tf.matmul(rows, weights)

    rows = np.array([[1.0, 2.0, 3.0]], np.float32)
    maps = KernelShap(scores, nb_samples=30, seed=0)(rows, [1]).numpy()
    np.testing.assert_allclose(maps, [[-1.0, 0.0, 9.0]], atol=1e-4)
