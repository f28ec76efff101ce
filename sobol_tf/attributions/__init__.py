"""Attribution methods: explainers sharing ``explain(inputs, targets)``."""
from sobol_tf.attributions.base import BlackBoxExplainer, Explainer
from sobol_tf.attributions.sobol import SobolAttributionMethod, SobolIndices
from sobol_tf.attributions import estimators, perturbations, samplers

__all__ = [
    "Explainer",
    "BlackBoxExplainer",
    "SobolAttributionMethod",
    "SobolIndices",
    "estimators",
    "perturbations",
    "samplers",
]
