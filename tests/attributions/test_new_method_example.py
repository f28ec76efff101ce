"""The worked example of docs/adding-a-method.md: a black-box method written in about
40 lines on BlackBoxExplainer, checked against its known answer and scored through
every metric of the project.

CellOcclusion sets one grid cell at a time to 0; a cell's attribution is the drop of
the score. For a linear model f(x) = sum(w * x) that drop is exactly the sum of w * x
over the cell, so the map is known in closed form. The code of the class below is the
code of the page (tests/attributions/test_new_method_example.py keeps them equal).
"""
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf import metrics
from sobol_tf.errors import InvalidArgumentError, SobolTFWarning

# --8<-- [start:method]
import numpy as np
import tensorflow as tf

from sobol_tf.attributions import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError


class CellOcclusion(BlackBoxExplainer):
    """Occlusion of one grid cell at a time: a cell's attribution is the drop of the
    score when the cell is set to 0.

    Args:
        model: a Keras model or a callable on a batch of images (B, H, W, C).
        grid_size: cells per side (H and W multiples of it).
        batch_size: perturbed inputs per forward pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
    """

    resize_method = "nearest"     # the maps are constant on each cell
    _needs_base_scores = True     # the estimator reads the clean scores

    def __init__(self, model, grid_size=4, batch_size=64, operator=None, *, verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 1:
            raise InvalidArgumentError(
                f"grid_size must be an integer >= 1, got {grid_size!r}.")
        self.grid_size = grid_size

    def _masks(self, height, width, channels):
        """One mask per cell: 1 everywhere but 0 on that cell, (cells, g, g, 1); the
        engine upsamples them to the input (nearest) and perturbs x * mask."""
        cells = self.grid_size ** 2
        keep = 1.0 - np.eye(cells, dtype=np.float32)
        return tf.constant(keep.reshape(cells, self.grid_size, self.grid_size, 1))

    def _estimate(self, scores, masks, base_scores):
        """Scores (N, cells) of the perturbed inputs -> maps (N, g, g, 1)."""
        drops = base_scores[:, None] - scores
        return tf.reshape(drops, (-1, self.grid_size, self.grid_size, 1))
# --8<-- [end:method]


SIZE, GRID, CHANNELS = 8, 4, 3
WEIGHTS = np.random.default_rng(0).normal(size=(SIZE, SIZE, CHANNELS)).astype(np.float32)


def linear_model():
    """f(x) = [sum(w * x), -sum(w * x)], as a Keras model (the randomization metrics
    re-draw its weights)."""
    model = keras.Sequential([keras.Input((SIZE, SIZE, CHANNELS)), keras.layers.Flatten(),
                              keras.layers.Dense(2, use_bias=False)])
    flat = WEIGHTS.reshape(-1)
    model.layers[-1].set_weights([np.stack([flat, -flat], axis=1)])
    return model


def hand_computed(x):
    """Each pixel gets the sum of w * x over its cell (channels included)."""
    side = SIZE // GRID
    cells = (x * WEIGHTS).sum(-1).reshape(len(x), GRID, side, GRID, side).sum((2, 4))
    return np.repeat(np.repeat(cells, side, axis=1), side, axis=2)[..., None]


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(1).uniform(size=(6, SIZE, SIZE, CHANNELS)).astype(np.float32)
    return linear_model(), x, np.array([0, 1, 0, 1, 0, 1])


def test_the_page_shows_this_code():
    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "adding-a-method.md"
    shown = re.search(r"```python\n(.*?)```", page.read_text(), re.S).group(1)
    here = pathlib.Path(__file__).read_text()
    code = re.search(r"# --8<-- \[start:method\]\n(.*?)# --8<-- \[end:method\]", here,
                     re.S).group(1)
    assert shown.strip() == code.strip()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 45     # "about 40 lines"


def test_the_map_is_the_drop_of_each_cell(data):
    model, x, y = data
    maps = CellOcclusion(model, GRID)(x, y).numpy()
    signs = np.where(y == 0, 1.0, -1.0)[:, None, None, None]   # output 1 is -f
    np.testing.assert_allclose(maps, signs * hand_computed(x), rtol=1e-4, atol=1e-5)


def test_bad_grid_size_is_refused():
    with pytest.raises(InvalidArgumentError, match="grid_size must be an integer >= 1, got 0"):
        CellOcclusion(linear_model(), 0)


def test_it_is_scored_through_every_metric(data):
    """Every metric that takes explanations or an explainer scores the new method; where
    the right value is known it is checked: for a linear model and a grid aligned with
    the method's cells, MuFidelity's correlation is 1; deleting (inserting) the pixels
    of the map in its order lowers (raises) the score faster than in the reverse order."""
    model, x, y = data
    explainer = CellOcclusion(model, GRID)
    maps = explainer(x, y)
    reverse = -maps
    for metric_class, better in ((metrics.Deletion, np.less), (metrics.Insertion, np.greater)):
        metric = metric_class(model, x, y, steps=16)
        assert better(metric(maps), metric(reverse)), metric_class.__name__
    mufidelity = metrics.MuFidelity(model, x, y, grid_size=GRID, nb_samples=30, seed=0)
    assert mufidelity(maps) == pytest.approx(1.0, abs=1e-4)
    for metric_class in (metrics.AverageDropMetric, metrics.AverageGainMetric,
                         metrics.AverageIncreaseMetric):
        value = metric_class(model, x, y, activation="softmax")(maps)
        assert np.isfinite(value) and 0.0 <= value <= 1.0 + 1e-6, metric_class.__name__
    for metric_class in (metrics.Complexity, metrics.Sparseness):
        assert np.isfinite(metric_class()(maps))
    # the map is linear in x: a neighbour x + m moves it by the map of m, whatever x
    stability = metrics.AverageStability(model, x, y, nb_samples=3, seed=0)
    moves = hand_computed(stability.noisy_masks).reshape(3, -1)
    assert stability(explainer) == pytest.approx(np.linalg.norm(moves, axis=1).mean(),
                                                 rel=1e-4)
    # the other output is -f: its map is -map, whose ranks are reversed
    random_logit = metrics.RandomLogitMetric(model, x, y, similarity="spearman")
    assert random_logit(explainer) == pytest.approx(-1.0, abs=1e-6)
    # new weights, a new map: no longer the same ranks
    randomized = metrics.ModelRandomizationMetric(
        model, x, y, metrics.ProgressiveLayerRandomization(1), similarity="spearman")
    assert abs(randomized(explainer)) < 0.9
    with pytest.warns(SobolTFWarning, match="ReCo is 0.0"):   # two equal models
        mege, reco = metrics.MeGe(None, x, y, k_splits=2, models=[model, model])(
            CellOcclusion, {"grid_size": GRID})
    assert mege == pytest.approx(1.0) and np.isfinite(reco)   # the same model twice
