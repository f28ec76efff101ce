"""Attribution methods: explainers sharing ``explain(inputs, targets)``."""
from sobol_tf.attributions.base import BlackBoxExplainer, Explainer
from sobol_tf.attributions.sobol import SobolAttributionMethod, SobolIndices
from sobol_tf.attributions.extremal import ExtremalPerturbation
from sobol_tf.attributions import estimators, extremal_masks, perturbations, samplers

__all__ = [
    "Explainer",
    "BlackBoxExplainer",
    "SobolAttributionMethod",
    "SobolIndices",
    "ExtremalPerturbation",
    "estimators",
    "extremal_masks",
    "perturbations",
    "samplers",
]
