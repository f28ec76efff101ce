"""Shared fixtures of the metric tests: a linear model and a tiny convnet."""
import numpy as np
import pytest

from tests.conftest import tiny_convnet
from tests.metrics.models import LinearModel


@pytest.fixture(scope="module")
def linear_case():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 6, 3)).astype(np.float32)
    x = rng.uniform(size=(4, 6, 6, 3)).astype(np.float32)
    return LinearModel(weights), x, weights


@pytest.fixture(scope="module")
def convnet_case():
    model = tiny_convnet((8, 8, 3), 3)
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    labels = np.array([0, 2, 1])
    explanations = rng.normal(size=(3, 8, 8)).astype(np.float32)
    return model, x, labels, explanations
