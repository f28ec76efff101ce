"""Code written for Xplique's metrics runs unchanged: names, order and defaults."""
import inspect

import numpy as np
import pytest

from sobol_tf.metrics import (AverageDropMetric, AverageGainMetric, AverageIncreaseMetric,
                              BaseAverageXMetric, CausalFidelity, Deletion,
                              ExplanationMetric, Insertion, MuFidelity)

from tests.metrics.models import LinearModel

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


def hand_deletion_curve(weights, x, maps, baseline, counts):
    """The mean Deletion curve of a linear model, by hand: at each count, the top pixels
    (by the map, ties in flat order) of each input hold the baseline."""
    scores = []
    for image, attribution in zip(x, maps):
        order = np.argsort(-attribution.ravel(), kind="stable")
        row = []
        for count in counts:
            removed = np.zeros(attribution.size, bool)
            removed[order[:count]] = True
            removed = removed.reshape(attribution.shape)[..., None]
            row.append(float(np.sum(weights * np.where(removed, baseline, image))))
        scores.append(row)
    return np.mean(scores, axis=0)


def test_positional_arguments_land_where_xplique_puts_them():
    # a linear model, whose curves are known: each positional argument must change the
    # result exactly as its keyword would (batch_size, baseline_mode, steps, ...)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 4, 3)).astype(np.float32)
    x = rng.uniform(size=(3, 4, 4, 3)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 0, 0]]
    maps = rng.normal(size=(3, 4, 4)).astype(np.float32)
    model = LinearModel(weights)
    # Deletion(model, inputs, targets, batch_size, baseline_mode, steps, max_percentage)
    curve = Deletion(model, x, labels, 2, 0.5, 4, 0.5).detailed_evaluate(maps)
    counts = [0, 2, 4, 6, 8]                    # 4 steps over half of the 16 pixels
    assert list(curve) == counts
    np.testing.assert_allclose(list(curve.values()),
                               hand_deletion_curve(weights, x, maps, 0.5, counts), rtol=1e-5)
    # Insertion(model, inputs, targets, batch_size, baseline_mode, steps): the last state
    # is the input itself, the first the baseline
    curve = Insertion(model, x, labels, 3, 0.25, 2).detailed_evaluate(maps)
    assert list(curve) == [0, 8, 16]
    np.testing.assert_allclose(curve[16], np.mean(np.sum(weights * x, axis=(1, 2, 3))),
                               rtol=1e-5)
    np.testing.assert_allclose(curve[0], np.sum(weights * 0.25), rtol=1e-5)
    # MuFidelity(model, inputs, targets, batch_size, grid_size, subset_percent,
    # baseline_mode, nb_samples): positional values are those the metric holds, and a
    # faithful map of the linear model (w * (x - baseline) summed over channels) scores 1
    metric = MuFidelity(model, x, labels, 16, 2, 0.3, 0.5, 20, seed=0)
    assert (metric.batch_size, metric.grid_size, metric.subset_percent, metric.baseline_mode,
            metric.nb_samples) == (16, 2, 0.3, 0.5, 20)
    faithful = np.sum(weights * (x - 0.5), axis=-1)
    assert metric(faithful) == pytest.approx(1.0, abs=1e-6)
    assert metric(-faithful) == pytest.approx(-1.0, abs=1e-6)
