"""SobolAttributionMethod end to end, against closed-form indices."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from sobol_tf.attributions import SobolAttributionMethod, base, estimators
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

from tests.conftest import CellModel, RegionModel, analytic_indices

WEIGHTS = np.array([3.0, 0.0, 1.0, 0.5, 0.0, 2.0, 0.0, 1.0, 0.25, 0.0, 0.0, 1.5, 0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("name", sorted(estimators.ESTIMATORS))
def test_indices_converge_to_closed_form(name):
    """Grid of 4x4 cells on a 4x4 image of ones: the maps are the cells' indices."""
    interaction = (0, 5, 6.0)
    model = CellModel(WEIGHTS, 4, interaction)
    first, total = analytic_indices(WEIGHTS, interaction)
    x = np.ones((1, 4, 4, 2), np.float32)
    worst = []
    for nb_design in (32, 1024):
        explainer = SobolAttributionMethod(model, grid_size=4, nb_design=nb_design,
                                           estimator=name, batch_size=4096, seed=0)
        indices = explainer.explain_indices(x, [0])
        st = indices.total.numpy()[0, ..., 0].ravel()
        s = indices.first.numpy()[0, ..., 0].ravel()
        worst.append(max(np.abs(st - total).max(), np.abs(s - first).max()))
    assert worst[1] < 0.03, worst
    assert worst[1] < worst[0]


def test_default_unscrambled_design_converges_too():
    model = CellModel(WEIGHTS, 4)
    _, total = analytic_indices(WEIGHTS)
    maps = SobolAttributionMethod(model, grid_size=4, nb_design=1024, batch_size=4096)(
        np.ones((1, 4, 4, 1), np.float32), [0]).numpy()[0, ..., 0].ravel()
    np.testing.assert_allclose(maps, total, atol=0.03)


def test_maps_are_cell_indices_resized_bicubically():
    model = CellModel(WEIGHTS, 4)
    x = np.ones((2, 8, 8, 3), np.float32)
    explainer = SobolAttributionMethod(model, grid_size=4, nb_design=512, batch_size=4096)
    maps = explainer(x, [0, 1]).numpy()
    _, total = analytic_indices(WEIGHTS)
    expected = tf.image.resize(total.reshape(1, 4, 4, 1), (8, 8), method="bicubic").numpy()[0]
    assert maps.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(maps[0], expected, atol=0.05)
    # the second target is -f: same variance decomposition
    np.testing.assert_allclose(maps[1], maps[0], atol=1e-4)


def test_region_model_is_found():
    model = RegionModel(rows=(4, 8), cols=(0, 4))
    x = np.random.default_rng(0).uniform(0.5, 1, size=(2, 8, 8, 3)).astype(np.float32)
    maps = SobolAttributionMethod(model, grid_size=2, nb_design=32)(x, [0, 0]).numpy()
    cells = maps[:, ::4, ::4, 0]  # one pixel per cell; bicubic keeps the order
    assert np.all(np.argmax(cells.reshape(2, -1), axis=1) == 2)


def test_per_channel_masks_attribute_each_channel():
    def model(x):  # reads only channel 1
        score = tf.reduce_mean(x[..., 1], axis=[1, 2])
        return tf.stack([score, score], axis=-1)

    x = np.ones((1, 4, 4, 3), np.float32)
    explainer = SobolAttributionMethod(model, grid_size=2, nb_design=64, per_channel=True)
    maps = explainer(x, [0]).numpy()
    assert maps.shape == (1, 4, 4, 3)
    assert np.abs(maps[..., [0, 2]]).max() < 1e-6
    assert maps[..., 1].min() > 0.1


def test_keras_model_grayscale_inputs_and_operators():
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    explainer = SobolAttributionMethod(model, grid_size=2, nb_design=8)
    maps = explainer(x, [1, 0])
    assert maps.shape == (2, 8, 8, 1)
    regression = SobolAttributionMethod(model, grid_size=2, nb_design=8, operator="regression")
    np.testing.assert_allclose(regression(x, np.eye(2)[[1, 0]]), maps, atol=1e-5)

    def second_output(model, inputs, targets):
        return model(inputs)[:, 1]

    custom = SobolAttributionMethod(model, grid_size=2, nb_design=8, operator=second_output)
    np.testing.assert_allclose(custom(x, [1, 1]), custom(x, [0, 0]), atol=1e-6)
    np.testing.assert_allclose(custom(x, [1, 1])[0], maps[0], atol=1e-5)


def test_default_targets_are_the_predicted_classes(convnet, images):
    explainer = SobolAttributionMethod(convnet, grid_size=2, nb_design=8)
    predicted = np.argmax(convnet(images).numpy(), axis=1)
    np.testing.assert_allclose(explainer(images), explainer(images, predicted), atol=1e-6)


def test_masks_upsampled_per_batch_when_too_big_to_cache(monkeypatch, convnet, images):
    explainer = SobolAttributionMethod(convnet, grid_size=4, nb_design=8, batch_size=7)
    cached = explainer(images, [0, 1, 2]).numpy()
    monkeypatch.setattr(base, "MASK_CACHE_BYTES", 0)
    streamed = SobolAttributionMethod(convnet, grid_size=4, nb_design=8, batch_size=7)(
        images, [0, 1, 2]).numpy()
    np.testing.assert_allclose(streamed, cached, atol=1e-6)


def test_blurring_and_amplitude_run_and_differ(convnet, images):
    maps = {name: SobolAttributionMethod(convnet, grid_size=2, nb_design=8,
                                         perturbation_function=name)(images, [0, 1, 2]).numpy()
            for name in ("inpainting", "blurring", "amplitude")}
    assert not np.allclose(maps["inpainting"], maps["blurring"])
    assert not np.allclose(maps["inpainting"], maps["amplitude"])


def test_progress_bar(capsys, convnet, images):
    SobolAttributionMethod(convnet, grid_size=2, nb_design=8, batch_size=4, verbose=True)(
        images, [0, 1, 2])
    out = capsys.readouterr().out
    assert "SobolAttributionMethod" in out and "batch" in out


@pytest.mark.parametrize("kwargs, message", [
    ({"nb_design": 30}, "nb_design must be a power of two, got 30; try 32"),
    ({"nb_design": 0}, "nb_design must be an integer >= 2, got 0"),
    ({"grid_size": 0}, "grid_size must be an integer >= 1, got 0"),
    ({"sampler": "qmc"}, "sampler must be one of"),
    ({"estimator": "sobol"}, "estimator must be one of"),
    ({"perturbation_function": "noise"}, "perturbation_function must be one of"),
    ({"batch_size": -1}, "batch_size must be an integer >= 1, got -1"),
    ({"operator": "ranking"}, "operator must be one of"),
])
def test_bad_arguments(kwargs, message, convnet):
    with pytest.raises(InvalidArgumentError, match=message):
        SobolAttributionMethod(convnet, **kwargs)


def test_bad_types_and_grid_larger_than_input(convnet, images):
    with pytest.raises(InvalidTypeError, match="nb_design"):
        SobolAttributionMethod(convnet, nb_design=32.0)
    with pytest.raises(InvalidTypeError, match="model"):
        SobolAttributionMethod("model.keras")
    with pytest.raises(InvalidArgumentError, match="grid_size=9 for inputs of 8x8"):
        SobolAttributionMethod(convnet, grid_size=9)(images, [0, 1, 2])


DISTINCT = np.arange(1.0, 17.0)  # a model that uses every cell of a 4x4 grid


@pytest.mark.parametrize("nb_design", [2, 4, 8, 16])
def test_small_default_designs_give_every_used_cell_a_nonzero_index(nb_design):
    model = CellModel(DISTINCT, 4)
    indices = SobolAttributionMethod(model, grid_size=4, nb_design=nb_design,
                                     batch_size=1024).explain_indices(
        np.ones((1, 4, 4, 1), np.float32), [0])
    assert np.all(indices.total.numpy() > 0.0), indices.total.numpy()[0, ..., 0]
    assert np.all(np.isfinite(indices.first.numpy()))


@pytest.mark.parametrize("grid_size, nb_design", [(4, 32), (8, 32), (4, 64)])
def test_default_design_is_the_reference_where_it_has_no_tie(grid_size, nb_design):
    from scipy.stats import qmc
    d = grid_size ** 2
    explainer = SobolAttributionMethod(CellModel(np.ones(d), grid_size), grid_size=grid_size,
                                       nb_design=nb_design)
    design = explainer._masks(grid_size, grid_size, 1).numpy().reshape(-1, d)
    ab = qmc.Sobol(2 * d, scramble=False).random_base2(int(np.log2(nb_design)))
    np.testing.assert_array_equal(design[:nb_design], ab[:, :d].astype(np.float32))
    np.testing.assert_array_equal(design[nb_design:2 * nb_design], ab[:, d:].astype(np.float32))


def test_explicit_sampler_that_ties_cells_is_refused_naming_them():
    from sobol_tf.attributions.samplers import SobolSequence
    explainer = SobolAttributionMethod(CellModel(DISTINCT, 4), grid_size=4, nb_design=8,
                                       sampler=SobolSequence())
    with pytest.raises(InvalidArgumentError, match=r"nb_design=8.*\[0, 5, 6\].*nb_design=16"):
        explainer(np.ones((1, 4, 4, 1), np.float32), [0])

    def tied(dimension, nb_design):  # a callable whose C_2 equals A
        design = SobolSequence(scramble=True, seed=0)(dimension, nb_design)
        design[nb_design:2 * nb_design, 2] = design[:nb_design, 2]
        design[2 * nb_design:].reshape(dimension, nb_design, dimension)[2, :, 2] = \
            design[:nb_design, 2]
        return design

    with pytest.raises(InvalidArgumentError, match=r"\[2\]"):
        SobolAttributionMethod(CellModel(DISTINCT, 4), grid_size=4, nb_design=8,
                               sampler=tied)(np.ones((1, 4, 4, 1), np.float32), [0])


@pytest.mark.parametrize("bad, message", [
    (lambda d, n: np.full((n * (d + 2), d), 2.0), r"outside \[0, 1\]"),
    (lambda d, n: np.full((n * (d + 2), d), np.nan), "non-finite"),
    (lambda d, n: np.zeros((n, d)), "shape"),
])
def test_callable_samplers_returning_bad_designs_are_refused(bad, message):
    with pytest.raises(InvalidArgumentError, match=message):
        SobolAttributionMethod(CellModel(DISTINCT, 4), grid_size=4, nb_design=8,
                               sampler=bad)(np.ones((1, 4, 4, 1), np.float32), [0])


def test_constructor_does_not_draw_the_design():
    calls = []

    def sampler(dimension, nb_design):
        calls.append(dimension)
        from sobol_tf.attributions.samplers import SobolSequence
        return SobolSequence(scramble=True, seed=0)(dimension, nb_design)

    explainer = SobolAttributionMethod(CellModel(DISTINCT, 4), grid_size=4, nb_design=8,
                                       sampler=sampler)
    assert calls == []
    explainer(np.ones((1, 4, 4, 1), np.float32), [0])
    explainer(np.ones((1, 4, 4, 1), np.float32), [0])
    assert calls == [16]


@pytest.mark.parametrize("kwargs, patterns", [
    ({"grid_size": 1000}, ["grid_size=1000", "21201", "grid_size <= 53"]),
    ({"grid_size": 64}, ["grid_size=64", "131136 forward passes", r"2\.0 GiB",
                         "grid_size <= 53", "nb_design <= 8 at grid_size=64"]),
    ({"nb_design": 10 ** 6}, ["nb_design=1000000", "66000000 forward passes",
                              r"15\.7 GiB", "nb_design <= 32768"]),
    ({"nb_design": 10 ** 5}, ["nb_design=100000", "nb_design <= 32768"]),
    ({"nb_design": 50000}, ["power of two.*try 32768"]),
    ({"nb_design": 1}, ["nb_design must be an integer >= 2, got 1"]),
])
def test_designs_that_cannot_work_are_refused_quickly_in_the_constructor(kwargs, patterns):
    import time
    import tracemalloc
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as info:
        SobolAttributionMethod(lambda x: x, **kwargs)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for pattern in patterns:
        assert __import__("re").search(pattern, str(info.value)), (pattern, str(info.value))
    assert elapsed < 2.0 and peak < 100 * 2 ** 20, (elapsed, peak)


def test_largest_accepted_design_is_cheap_to_construct():
    import time
    import tracemalloc
    tracemalloc.start()
    start = time.perf_counter()
    SobolAttributionMethod(lambda x: x, grid_size=53, nb_design=32)
    SobolAttributionMethod(lambda x: x, grid_size=8, nb_design=32768)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 100 * 2 ** 20, (elapsed, peak)


def test_per_channel_design_over_the_cap_is_refused_at_explain(monkeypatch):
    from sobol_tf.attributions import sobol
    monkeypatch.setattr(sobol, "MAX_DESIGN_BYTES", 32 * 18 * 16 * 4)  # 1 channel of 4x4 fits
    explainer = SobolAttributionMethod(CellModel(DISTINCT, 4), grid_size=4, nb_design=32,
                                       per_channel=True)
    with pytest.raises(InvalidArgumentError, match="per_channel.*3 channels"):
        explainer(np.ones((1, 4, 4, 3), np.float32), [0])


def test_readme_metrics_example_gives_every_centre_cell_a_nonzero_index():
    def model(x):  # the README's: class 1 is the brightness of the 8x8 centre
        centre = tf.reduce_mean(x[:, 4:12, 4:12, :], axis=[1, 2, 3])
        return tf.stack([1.0 - centre, centre], axis=-1)

    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    explainer = SobolAttributionMethod(model, grid_size=4, nb_design=8)
    model_view, inputs, targets = explainer._prepare(images, np.ones(4, int))
    masks = explainer._masks(16, 16, 3)
    cells = explainer.estimator(explainer._perturbed_scores(model_view, inputs, targets, masks),
                                8).numpy()
    centre = [5, 6, 9, 10]
    assert np.all(cells[:, centre] > 0.01), cells[:, centre]
    np.testing.assert_allclose(np.delete(cells, centre, axis=1), 0.0, atol=1e-6)
