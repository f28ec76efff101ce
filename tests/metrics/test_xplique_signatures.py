"""Code written for Xplique's metrics runs unchanged: names, order and defaults."""
import inspect

import numpy as np
import pytest

from sobol_tf.metrics import (AverageDropMetric, AverageGainMetric, AverageIncreaseMetric,
                              BaseAverageXMetric, CausalFidelity, Deletion,
                              ExplanationMetric, Insertion, MuFidelity)

from tests.conftest import tiny_convnet

AVERAGE = [("batch_size", 64), ("operator", None), ("activation", None)]

XPLIQUE_SIGNATURES = {  # xplique 2.0.2, xplique/metrics/fidelity.py and base.py
    ExplanationMetric: AVERAGE,
    CausalFidelity: [("batch_size", 64), ("causal_mode", "deletion"), ("baseline_mode", 0.0),
                     ("steps", 10), ("max_percentage_perturbed", 1.0), ("operator", None),
                     ("activation", None)],
    BaseAverageXMetric: AVERAGE,
    AverageDropMetric: AVERAGE,
    AverageIncreaseMetric: AVERAGE,
    AverageGainMetric: AVERAGE,
    Deletion: [("batch_size", 64), ("baseline_mode", 0.0), ("steps", 10),
               ("max_percentage_perturbed", 1.0), ("operator", None), ("activation", None)],
    Insertion: [("batch_size", 64), ("baseline_mode", 0.0), ("steps", 10),
                ("max_percentage_perturbed", 1.0), ("operator", None), ("activation", None)],
    MuFidelity: [("batch_size", 64), ("grid_size", 9), ("subset_percent", 0.2),
                 ("baseline_mode", 0.0), ("nb_samples", 200), ("operator", None),
                 ("activation", None)],
}


@pytest.mark.parametrize("metric", list(XPLIQUE_SIGNATURES), ids=lambda m: m.__name__)
def test_positional_order_and_defaults_match_xplique(metric):
    parameters = list(inspect.signature(metric.__init__).parameters.values())[1:]
    assert [p.name for p in parameters[:3]] == ["model", "inputs", "targets"]
    positional = [(p.name, p.default) for p in parameters[3:]
                  if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == XPLIQUE_SIGNATURES[metric]


def test_positional_call_equals_keyword_call():
    model = tiny_convnet((8, 8, 3), 3)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2]]
    maps = np.random.default_rng(1).normal(size=(3, 8, 8)).astype(np.float32)
    assert Deletion(model, x, labels, 2, 0.0, 4)(maps) == pytest.approx(
        Deletion(model, x, labels, batch_size=2, steps=4)(maps), abs=1e-6)
    assert MuFidelity(model, x, labels, 16, 4, 0.3, 0.0, 20, seed=0)(maps) == pytest.approx(
        MuFidelity(model, x, labels, batch_size=16, grid_size=4, subset_percent=0.3,
                   nb_samples=20, seed=0)(maps), abs=1e-6)
