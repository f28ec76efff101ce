"""Shared fixtures: tiny models whose right answer is known, and small images."""
from sobol_tf._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()  # no absl/oneDNN start-up lines in each xdist worker

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def tiny_convnet(input_shape=(8, 8, 3), nb_classes=3, seed=0):
    """A small, untrained Keras convnet with softmax outputs."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(nb_classes, activation="softmax"),
    ])


def cell_means(x, grid_size):
    """Mean of each grid cell over pixels and channels: (B, H, W, C) -> (B, grid**2)."""
    size = x.shape[1] // grid_size
    cells = tf.nn.avg_pool2d(x, size, size, "VALID")
    return tf.reshape(tf.reduce_mean(cells, axis=-1), (-1, grid_size * grid_size))


class CountingModel:
    """A callable model that counts the rows it is called on (in a tf.Variable, so the
    count is right inside compiled steps too)."""

    def __init__(self, model):
        self.model = model
        self.rows = tf.Variable(0, dtype=tf.int64)

    def __call__(self, x):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return self.model(x)


class CellModel:
    """f(x) = sum_i w_i m_i + gamma * m_p * m_q of the grid-cell means m_i.

    Output (B, 2): [f, -f]. On an input of ones perturbed by inpainting with masks
    M ~ U(0, 1) per cell, m_i = M_i, so Sobol indices have a closed form (see
    :func:`analytic_indices`).
    """

    def __init__(self, weights, grid_size, interaction=None):
        self.weights = tf.constant(np.asarray(weights, np.float32))
        self.grid_size = grid_size
        self.interaction = interaction  # (p, q, gamma)

    def __call__(self, x):
        means = cell_means(tf.cast(x, tf.float32), self.grid_size)
        f = tf.reduce_sum(means * self.weights, axis=-1)
        if self.interaction is not None:
            p, q, gamma = self.interaction
            f = f + gamma * means[:, p] * means[:, q]
        return tf.stack([f, -f], axis=-1)


def analytic_indices(weights, interaction=None):
    """Exact (first, total) Sobol indices of CellModel with independent U(0, 1) masks.

    With M = 1/2 + u, u centred of variance 1/12:
    f = const + sum_i (w_i + gamma/2 [i in {p, q}]) u_i + gamma u_p u_q, so
    V_i = (w_i + ...)^2 / 12, V_pq = gamma^2 / 144, S_i = V_i / V, ST_i = S_i + V_pq / V
    for i in {p, q}.
    """
    linear = np.asarray(weights, np.float64).copy()
    interaction_variance = 0.0
    if interaction is not None:
        p, q, gamma = interaction
        linear[p] += gamma / 2
        linear[q] += gamma / 2
        interaction_variance = gamma ** 2 / 144
    partial = linear ** 2 / 12
    total_variance = partial.sum() + interaction_variance
    first = partial / total_variance
    total = first.copy()
    if interaction is not None:
        total[[p, q]] += interaction_variance / total_variance
    return first, total


def naive_hsic(masks, scores, kernel):
    """trace(H K H H L H) / n with full matrices, K = 1 + kernel(x, x') per cell, L the RBF
    of the scores with the median pairwise distance as width."""
    n = len(scores)
    centring = np.eye(n) - np.ones((n, n)) / n
    distances = np.abs(scores[:, None] - scores[None, :])
    width = np.median(distances[np.triu_indices(n, 1)])
    gram_out = np.exp(-distances ** 2 / (2 * width ** 2))
    result = []
    for cell in masks.T:
        gram_in = 1.0 + kernel(cell[:, None], cell[None, :])
        result.append(np.trace(centring @ gram_in @ centring @ centring @ gram_out @ centring) / n)
    return np.array(result)


class RegionModel:
    """Reads only one region: output (B, 2) = [mean of region, 0]."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols

    def __call__(self, x):
        region = x[:, self.rows[0]:self.rows[1], self.cols[0]:self.cols[1], :]
        score = tf.reduce_mean(region, axis=[1, 2, 3])
        return tf.stack([score, tf.zeros_like(score)], axis=-1)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, size=(3, 8, 8, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def convnet():
    return tiny_convnet()
