"""Metrics that score explanations for faithfulness, as Xplique's.

    from sobol_tf.metrics import Deletion, Insertion, MuFidelity, AverageDropMetric
    score = Deletion(model, inputs, targets, batch_size=64, steps=10)(explanations)

Any explanation can be scored: maps from sobol_tf or plain arrays from elsewhere,
(N, H, W), (N, H, W, 1) or (N, H, W, C) for images (N, H, W, C), (N, F) for tabular rows
(N, F), (N, T, C) or (N, T, 1) for time series (N, T, C), (N, L) for token ids (N, L) of
integers (``baseline_mode`` is then the mask token id; keyword-only ``pad_token``). The
model may be any Python callable on a batch (a numpy function, a scikit-learn
``predict_proba``): one TensorFlow cannot trace runs eagerly, batch by batch.

Beyond fidelity: ``Complexity`` and ``Sparseness`` score maps alone (entropy, Gini);
``AverageStability(model, inputs, targets).evaluate(explainer)`` scores an explainer by
how far its maps move under noise in an L-infinity ball; the sanity checks
``RandomLogitMetric`` and ``ModelRandomizationMetric`` (with
``ProgressiveLayerRandomization``) say whether maps depend on the class and on the model;
``MeGe(learning_algorithm, inputs, targets).evaluate(explainer_class, params)`` gives
MeGe and ReCo, the algorithmic stability of the explanations across retrained models.
"""
from sobol_tf.metrics.average import (
    AverageDropMetric,
    AverageGainMetric,
    AverageIncreaseMetric,
    BaseAverageXMetric,
)
from sobol_tf.metrics.base import ExplainerMetric, ExplanationMetric
from sobol_tf.metrics.complexity import BaseComplexityMetric, Complexity, Sparseness
from sobol_tf.metrics.fidelity import (
    CausalCurves,
    CausalFidelity,
    Deletion,
    Insertion,
    MuFidelity,
)
from sobol_tf.metrics.randomization import (
    BaseRandomizationMetric,
    ModelRandomizationMetric,
    ModelRandomizationStrategy,
    ProgressiveLayerRandomization,
    RandomLogitMetric,
)
from sobol_tf.metrics.stability import AverageStability
from sobol_tf.metrics.representativity import MeGe

__all__ = [
    "AverageDropMetric",
    "AverageGainMetric",
    "AverageIncreaseMetric",
    "AverageStability",
    "BaseAverageXMetric",
    "BaseComplexityMetric",
    "BaseRandomizationMetric",
    "CausalCurves",
    "CausalFidelity",
    "Complexity",
    "Deletion",
    "ExplainerMetric",
    "ExplanationMetric",
    "Insertion",
    "MeGe",
    "ModelRandomizationMetric",
    "ModelRandomizationStrategy",
    "MuFidelity",
    "ProgressiveLayerRandomization",
    "RandomLogitMetric",
    "Sparseness",
]
