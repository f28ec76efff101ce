"""Rise against hand-computed estimates, mask construction and localisation."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Rise, base
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, ModelCallError

from tests.conftest import RegionModel

WEIGHTS = np.random.default_rng(5).normal(size=(6, 6, 2)).astype(np.float32)


def linear(x):
    f = tf.reduce_sum(x * WEIGHTS, axis=[1, 2, 3])
    return tf.stack([f, -f], axis=-1)


@pytest.mark.parametrize("mask_value", [0.0, 0.3])
def test_maps_equal_the_score_weighted_mean_of_the_masks(mask_value):
    """map(u) = sum_p s_p M_p(u) / (sum_p M_p(u) + eps), s_p the score of x*M_p + (1-M_p)*v,
    computed by hand from the explainer's own masks."""
    x = np.random.default_rng(0).uniform(size=(2, 6, 6, 2)).astype(np.float32)
    explainer = Rise(linear, nb_samples=50, grid_size=3, mask_value=mask_value, seed=0,
                     batch_size=16)
    maps = explainer(x, [0, 1]).numpy()
    masks = explainer._input_size_masks(6, 6).numpy().astype(np.float64)
    for row, (image, sign) in enumerate(zip(x, (1, -1))):
        perturbed = image * masks + (1 - masks) * mask_value                # (P, 6, 6, 2)
        scores = sign * (perturbed * WEIGHTS).sum(axis=(1, 2, 3))
        expected = np.tensordot(scores, masks, axes=1) / (masks.sum(axis=0) + Rise.EPSILON)
        np.testing.assert_allclose(maps[row], expected, rtol=1e-4, atol=1e-4)


def test_masks_are_shifted_crops_of_bilinearly_upsampled_binary_grids():
    """Each mask is the H x W crop, at its own shift, of one of the 2**4 binary 2x2 grids
    upsampled bilinearly to int(H * (1 + 1/2)) = 12."""
    explainer = Rise(linear, nb_samples=40, grid_size=2, seed=1)
    masks = explainer._input_size_masks(8, 8).numpy()[..., 0]
    assert masks.shape == (40, 8, 8) and masks.min() >= 0 and masks.max() <= 1
    grids = np.array(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 2, 2, 1)
    upsampled = tf.image.resize(grids, (12, 12), method="bilinear").numpy()[..., 0]
    shifts = []
    for mask in masks:
        found = [(dy, dx) for grid in upsampled for dy in range(5) for dx in range(5)
                 if np.allclose(grid[dy:dy + 8, dx:dx + 8], mask, atol=1e-6)]
        assert found, "a mask is not a crop of an upsampled binary grid"
        shifts.append(found[0])
    assert len(set(shifts)) > 5  # every mask draws its own shift


def test_preservation_probability_is_the_mean_of_the_masks():
    masks = Rise(linear, nb_samples=2000, grid_size=4, preservation_probability=0.3,
                 seed=0)._input_size_masks(16, 16).numpy()
    assert abs(masks.mean() - 0.3) < 0.02


def test_constant_model_gives_its_value_everywhere():
    def constant(x):
        return tf.fill((tf.shape(x)[0], 2), 0.7)

    maps = Rise(constant, nb_samples=200, grid_size=3, seed=0)(
        np.ones((1, 8, 8, 1), np.float32), [0]).numpy()
    np.testing.assert_allclose(maps, 0.7, atol=1e-3)


def test_region_model_is_found():
    model = RegionModel(rows=(4, 8), cols=(0, 4))
    x = np.random.default_rng(0).uniform(0.5, 1, size=(2, 8, 8, 3)).astype(np.float32)
    maps = Rise(model, nb_samples=1000, grid_size=4, seed=0, batch_size=500)(x, [0, 0]).numpy()
    inside = np.zeros((8, 8), bool)
    inside[4:, :4] = True
    for row in maps[..., 0]:
        assert inside.ravel()[np.argmax(row)]
        assert row[inside].mean() > row[~inside].mean() + 0.05


def test_seed_reproduces_masks_per_size_and_differs_across_seeds():
    first = Rise(linear, nb_samples=20, seed=7)
    again = Rise(linear, nb_samples=20, seed=7)
    np.testing.assert_array_equal(first._input_size_masks(8, 8), again._input_size_masks(8, 8))
    assert first._input_size_masks(6, 6).shape == (20, 6, 6, 1)
    assert first._masks(8, 8, 1) is first._masks(8, 8, 1)  # drawn once per size
    other = Rise(linear, nb_samples=20, seed=8)
    assert not np.allclose(first._input_size_masks(8, 8), other._input_size_masks(8, 8))
    unseeded = Rise(linear, nb_samples=20)
    np.testing.assert_array_equal(unseeded._input_size_masks(8, 8),
                                  unseeded._input_size_masks(8, 8))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"nb_samples": 0}, InvalidArgumentError, "nb_samples must be an integer >= 1, got 0"),
    ({"grid_size": 0}, InvalidArgumentError, "grid_size must be an integer >= 1, got 0"),
    ({"preservation_probability": 0.0}, InvalidArgumentError,
     r"preservation_probability must lie in \(0, 1\]"),
    ({"preservation_probability": 1.5}, InvalidArgumentError, "preservation_probability"),
    ({"mask_value": "zero"}, InvalidTypeError, "mask_value must be a number"),
    ({"seed": -1}, InvalidArgumentError, "seed must be None, an integer >= 0 .*, got -1"),
    ({"batch_size": 0}, InvalidArgumentError, "batch_size"),
    ({"grid_size": (3,)}, InvalidArgumentError, r"a pair \(rows, cols\) of ints, got \(3,\)"),
    ({"grid_size": (3, 0)}, InvalidArgumentError, "grid_size must be an integer >= 1"),
    ({"grid_size": (3, 2.5)}, InvalidTypeError, "grid_size must be an integer"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Rise(linear, **kwargs)


def held_bytes(value):
    """Bytes of the arrays and tensors an object holds (through dicts, lists, tuples)."""
    if isinstance(value, (tf.Tensor, np.ndarray)):
        return int(np.prod(value.shape)) * value.dtype.size
    if isinstance(value, dict):
        return sum(held_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(held_bytes(item) for item in value)
    return 0


def test_masks_over_the_cache_are_not_held_at_full_resolution():
    """4096 masks of 300 x 300 would take 1.47 GB: RISE keeps the grids and shifts, and
    upsamples batch by batch (the model here answers on the clean input, then stops the
    run at the first perturbed batch)."""
    calls = []

    def stop(x):
        calls.append(1)
        if len(calls) > 1:
            raise KeyError("first batch")
        return tf.zeros((tf.shape(x)[0], 2))

    explainer = Rise(stop, nb_samples=4096, grid_size=7, seed=0)
    assert 4096 * 300 * 300 * 4 > 2**30
    with pytest.raises(ModelCallError, match="first batch"):
        explainer(np.zeros((1, 300, 300, 1), np.float32), np.array([[1.0, 0.0]]))
    assert held_bytes(vars(explainer)) < base.MASK_CACHE_BYTES / 8


@pytest.mark.parametrize("nb_samples", [40, 300])
def test_masks_upsampled_batch_by_batch_give_the_same_maps(monkeypatch, nb_samples):
    """Over the cache (here: any size), masks are built per batch and, for the estimate,
    MASK_CHUNK at a time (300 > MASK_CHUNK): the maps do not change."""
    x = np.random.default_rng(0).uniform(size=(2, 6, 6, 2)).astype(np.float32)
    settings = dict(nb_samples=nb_samples, grid_size=3, seed=0, batch_size=16)
    cached = Rise(linear, **settings)(x, [0, 1]).numpy()
    monkeypatch.setattr(base, "MASK_CACHE_BYTES", 0)
    streamed = Rise(linear, **settings)
    np.testing.assert_allclose(streamed(x, [0, 1]).numpy(), cached, rtol=1e-5, atol=1e-5)
    assert streamed._upsample.__func__ is Rise._upsample


@pytest.mark.parametrize("kwargs, lower", [
    ({"nb_samples": 10 ** 9}, "nb_samples <= "),
    ({"grid_size": 10 ** 5}, "grid_size <= "),
])
def test_sizes_over_max_bytes_are_refused_in_the_constructor(kwargs, lower):
    """Grids nb_samples x grid_size^2 over rise.MAX_BYTES are refused before any drawing,
    naming the forward passes, the memory and what to lower; the suggestion fits."""
    from sobol_tf.attributions import rise
    with pytest.raises(InvalidArgumentError, match="forward passes") as caught:
        Rise(linear, **kwargs)
    message = str(caught.value)
    assert "GiB" in message and "MAX_BYTES" in message and lower in message, message
    name = next(iter(kwargs))
    suggested = int(message.split(f"{name} <= ")[1].split()[0].rstrip(",)"))
    Rise(linear, **{name: suggested})                   # the suggestion is accepted
    with pytest.raises(InvalidArgumentError, match="MAX_BYTES"):
        Rise(linear, **{name: suggested + 1})
    assert rise.rise_bytes(**{"nb_samples": 4000, "grid_size": 7, name: suggested}) \
        <= rise.MAX_BYTES


def test_square_tuple_grid_gives_the_int_grids_maps():
    """grid_size=(3, 3) draws the same grids and shifts as grid_size=3."""
    x = np.random.default_rng(2).uniform(size=(1, 6, 6, 2)).astype(np.float32)
    square = Rise(linear, nb_samples=40, grid_size=3, seed=4)(x, [0]).numpy()
    pair = Rise(linear, nb_samples=40, grid_size=(3, 3), seed=4)(x, [0]).numpy()
    np.testing.assert_array_equal(pair, square)


def test_tuple_grid_over_max_bytes_names_the_cells_that_fit():
    from sobol_tf.attributions import rise
    with pytest.raises(InvalidArgumentError, match=r"rows x cols <= \d+") as caught:
        Rise(linear, nb_samples=4000, grid_size=(10 ** 3, 10 ** 3))
    cells = int(str(caught.value).split("rows x cols <= ")[1].split()[0])
    assert rise.rise_bytes(4000, (1, cells)) <= rise.MAX_BYTES < rise.rise_bytes(4000, (1, cells + 1))
