"""Metrics that score explanations for faithfulness, as Xplique's.

    from sobol_tf.metrics import Deletion, Insertion, MuFidelity, AverageDropMetric
    score = Deletion(model, inputs, targets, batch_size=64, steps=10)(explanations)

Any explanation can be scored: maps from sobol_tf or plain arrays from elsewhere,
(N, H, W), (N, H, W, 1) or (N, H, W, C).
"""
from sobol_tf.metrics.average import (
    AverageDropMetric,
    AverageGainMetric,
    AverageIncreaseMetric,
    BaseAverageXMetric,
)
from sobol_tf.metrics.base import ExplanationMetric
from sobol_tf.metrics.fidelity import (
    CausalCurves,
    CausalFidelity,
    Deletion,
    Insertion,
    MuFidelity,
)

__all__ = [
    "AverageDropMetric",
    "AverageGainMetric",
    "AverageIncreaseMetric",
    "BaseAverageXMetric",
    "CausalCurves",
    "CausalFidelity",
    "Deletion",
    "ExplanationMetric",
    "Insertion",
    "MuFidelity",
]
