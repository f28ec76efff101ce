"""ExtremalPerturbation end to end: mask areas, a model whose answer is known, seeds."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import ExtremalPerturbation
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, ModelCallError

from tests.conftest import RegionModel, tiny_convnet

SIZE = 16
#: settings for 16 x 16 images: a parameter every 2 pixels, short runs.
SMALL = dict(steps=100, learning_rate=0.1, mask_step=2, mask_sigma=2.0, max_blur=4.0)
#: shorter runs, for the tests of exact properties (sums, seeds, scale, batching).
SHORT = dict(SMALL, steps=30)

#: the region RegionModel reads (not aligned with the parameter grid), and three
#: identical bright patches elsewhere that it ignores.
ROWS, COLS = (9, 13), (3, 7)
DISTRACTORS = [(1, 1), (1, 10), (10, 11)]


def patches_image(nb=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.2, size=(nb, SIZE, SIZE, 3)).astype(np.float32)
    for r, c in [(ROWS[0], COLS[0])] + DISTRACTORS:
        x[:, r:r + 4, c:c + 4] += 0.8
    return x


def region_mask():
    inside = np.zeros((SIZE, SIZE), bool)
    inside[ROWS[0]:ROWS[1], COLS[0]:COLS[1]] = True
    return inside


@pytest.fixture(scope="module")
def region_model():
    return RegionModel(rows=ROWS, cols=COLS)


@pytest.mark.parametrize("variant", ["preserve", "delete", "dual"])
@pytest.mark.parametrize("perturbation", ["blur", "fade"])
def test_mask_areas_match_their_targets(variant, perturbation):
    """The area of a mask is its mean; the ranking loss also drives masks towards 0 and 1,
    so the fraction of pixels above 1/2 matches too."""
    model = tiny_convnet((SIZE, SIZE, 3), 3)
    x = np.random.default_rng(1).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    areas = (0.05, 0.2, 0.5)
    explainer = ExtremalPerturbation(model, areas=areas, variant=variant,
                                     perturbation=perturbation, **SMALL)
    masks = explainer.explain_masks(x, [0, 2]).numpy()
    assert masks.shape == (2, 3, SIZE, SIZE, 1)
    assert masks.min() >= 0 and masks.max() <= 1
    np.testing.assert_allclose(masks.mean(axis=(2, 3, 4)), [areas] * 2, atol=0.03)
    np.testing.assert_allclose((masks > 0.5).mean(axis=(2, 3, 4)), [areas] * 2, atol=0.05)


@pytest.mark.parametrize("variant, perturbation", [
    ("preserve", "blur"), ("preserve", "fade"), ("delete", "blur"), ("dual", "blur")])
def test_smallest_mask_concentrates_on_the_region_the_model_reads(region_model, variant,
                                                                  perturbation):
    """The model reads one 4 x 4 patch among four identical ones: keeping it keeps the
    score, blurring it drops the score; the other patches do not matter. The smallest
    mask has the region's area; with a parameter every 2 pixels it can only be placed to
    within a pixel, hence the region grown by one pixel for the share of mass."""
    x = patches_image()
    inside = region_mask()
    near = np.zeros_like(inside)
    near[ROWS[0] - 1:ROWS[1] + 1, COLS[0] - 1:COLS[1] + 1] = True
    explainer = ExtremalPerturbation(region_model, areas=(inside.mean(), 0.3),
                                     variant=variant, perturbation=perturbation, **SMALL)
    masks = explainer.explain_masks(x, [0, 0]).numpy()[..., 0]
    for smallest, largest in zip(masks[:, 0], masks[:, 1]):
        assert inside.ravel()[np.argmax(smallest)]  # the pointing game
        assert smallest[inside].mean() > 5 * smallest[~inside].mean()
        assert smallest[near].sum() > 0.7 * smallest.sum()
        assert largest[inside].mean() > 0.6  # a larger mask still covers the region


def test_explain_sums_the_masks_of_all_areas(region_model):
    x = patches_image(nb=1)
    explainer = ExtremalPerturbation(region_model, areas=(0.1, 0.3), **SHORT)
    masks = explainer.explain_masks(x, [0]).numpy()
    maps = explainer.explain(x, [0]).numpy()
    assert maps.shape == (1, SIZE, SIZE, 1)
    np.testing.assert_allclose(maps, masks.sum(axis=1), atol=1e-6)


def test_pairs_are_optimised_independently_of_their_batch(region_model):
    """The loss is a sum over (input, area) pairs and each pair has its own parameters,
    so batching pairs together changes nothing, over a whole run."""
    x = patches_image(nb=3)
    masks = [ExtremalPerturbation(region_model, areas=(0.05, 0.2), variant="dual",
                                  batch_size=batch_size, **SHORT).explain_masks(x, [0, 0, 1])
             for batch_size in (1, 4)]
    np.testing.assert_allclose(masks[0].numpy(), masks[1].numpy(), atol=1e-5)


def test_same_seed_same_masks_other_seed_other_masks(region_model):
    x = patches_image(nb=1)

    def masks(seed):
        explainer = ExtremalPerturbation(region_model, areas=(0.1,), jitter=True, seed=seed,
                                         **SHORT)
        return explainer.explain_masks(x, [0]).numpy()

    first = masks(3)
    np.testing.assert_array_equal(masks(3), first)
    assert np.abs(masks(4) - first).max() > 1e-3  # the seed is used


def test_normalized_scores_make_the_masks_independent_of_the_output_scale(region_model):
    """Scaling the outputs by a power of two scales every score exactly, so normalised
    rewards and hence the masks are bitwise identical; raw scores change the balance."""
    x = patches_image(nb=1)

    def scaled(x):
        return 64.0 * region_model(x)

    settings = dict(areas=(0.1,), variant="dual", **SHORT)
    base = ExtremalPerturbation(region_model, **settings).explain_masks(x, [0]).numpy()
    same = ExtremalPerturbation(scaled, **settings).explain_masks(x, [0]).numpy()
    np.testing.assert_array_equal(same, base)
    raw = dict(settings, normalize_scores=False)
    raw_base = ExtremalPerturbation(region_model, **raw).explain_masks(x, [0]).numpy()
    raw_scaled = ExtremalPerturbation(scaled, **raw).explain_masks(x, [0]).numpy()
    assert np.abs(raw_scaled - raw_base).max() > 0.1


def test_grayscale_inputs_give_single_channel_masks(region_model):
    x = patches_image(nb=2)[..., :1]
    maps = ExtremalPerturbation(lambda v: region_model(tf.tile(v, [1, 1, 1, 3])),
                                areas=(0.1,), **SHORT).explain(x, [0, 0])
    assert maps.shape == (2, SIZE, SIZE, 1)
    with pytest.raises(InvalidArgumentError, match=r"time series.*\(N, H, W, 1\)"):
        ExtremalPerturbation(region_model, **SHORT).explain(x[..., 0], [0, 0])


@pytest.mark.parametrize("argument, value, exception", [
    ("areas", 0.0, InvalidArgumentError),
    ("areas", (0.1, 1.5), InvalidArgumentError),
    ("areas", (), InvalidArgumentError),
    ("areas", "large", InvalidTypeError),
    ("areas", (0.1, None), InvalidTypeError),
    ("variant", "keep", InvalidArgumentError),
    ("perturbation", "noise", InvalidArgumentError),
    ("steps", 0, InvalidArgumentError),
    ("steps", 2.5, InvalidTypeError),
    ("learning_rate", 0.0, InvalidArgumentError),
    ("learning_rate", float("nan"), InvalidArgumentError),
    ("mask_step", 0, InvalidArgumentError),
    ("mask_sigma", -1.0, InvalidArgumentError),
    ("num_levels", 1, InvalidArgumentError),
    ("max_blur", 0, InvalidArgumentError),
    ("area_weight", -3.0, InvalidArgumentError),
    ("area_weight_growth", "fast", InvalidTypeError),
    ("batch_size", 0, InvalidArgumentError),
    ("seed", "x", InvalidTypeError),
])
def test_bad_arguments_raise_naming_the_argument(region_model, argument, value, exception):
    with pytest.raises(exception, match=argument) as info:
        ExtremalPerturbation(region_model, **{argument: value})
    if isinstance(value, str):
        assert repr(value) in str(info.value) or value in str(info.value)


def test_a_model_tensorflow_cannot_trace_is_refused(region_model):
    """The masks are optimised by TensorFlow's gradients of the model: a numpy model has
    none, so it is refused (as by the gradient methods) instead of run eagerly."""
    x = patches_image(nb=1)

    def numpy_model(inputs):
        return np.asarray(region_model(np.asarray(inputs)))

    explainer = ExtremalPerturbation(numpy_model, areas=(0.1,), **dict(SHORT, steps=2))
    with pytest.raises(ModelCallError, match="(?s)could not be traced.*gradients"):
        explainer.explain(x, [0])
