"""Attribution methods: explainers sharing ``explain(inputs, targets)``."""
from sobol_tf.attributions.base import BlackBoxExplainer, Explainer
from sobol_tf.attributions.whitebox import WhiteBoxExplainer
from sobol_tf.attributions.sobol import SobolAttributionMethod, SobolIndices
from sobol_tf.attributions.rise import Rise
from sobol_tf.attributions.occlusion import Occlusion
from sobol_tf.attributions.lime import Lime
from sobol_tf.attributions.kernel_shap import KernelShap
from sobol_tf.attributions.hsic import HsicAttributionMethod
from sobol_tf.attributions.gradients import GradCAM, IntegratedGradients, Saliency
from sobol_tf.attributions.cam import FEM, GradCAMPP
from sobol_tf.attributions.gradients import GradientInput
from sobol_tf.attributions.gradient_statistics import SmoothGrad, SquareGrad, VarGrad
from sobol_tf.attributions.guided import DeconvNet, GuidedBackprop
from sobol_tf.attributions.extremal import ExtremalPerturbation
from sobol_tf.attributions.eva import Eva
from sobol_tf.attributions import (estimators, extremal_masks, global_sensitivity_analysis,
                                   hsic_estimators, perturbations, samplers)

__all__ = [
    "Explainer",
    "BlackBoxExplainer",
    "WhiteBoxExplainer",
    "SobolAttributionMethod",
    "SobolIndices",
    "Rise",
    "Occlusion",
    "Lime",
    "KernelShap",
    "HsicAttributionMethod",
    "Saliency",
    "IntegratedGradients",
    "SmoothGrad",
    "GradCAM",
    "GradCAMPP",
    "FEM",
    "GradientInput",
    "SquareGrad",
    "VarGrad",
    "GuidedBackprop",
    "DeconvNet",
    "ExtremalPerturbation",
    "Eva",
    "estimators",
    "global_sensitivity_analysis",
    "hsic_estimators",
    "extremal_masks",
    "perturbations",
    "samplers",
]
