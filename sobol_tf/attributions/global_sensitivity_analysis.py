"""Xplique's ``xplique.attributions.global_sensitivity_analysis`` names, in one place.

Code written for Xplique runs with this import changed: the Sobol and HSIC explainers,
their estimators, the replicated samplers (``...RS``) of Sobol and the plain samplers of
HSIC (``HaltonSequence`` and ``LatinHypercube`` here are Xplique's plain-point samplers,
:class:`~sobol_tf.attributions.samplers.HaltonPoints` and
:class:`~sobol_tf.attributions.samplers.LatinHypercubePoints`; the classes of the same
names in :mod:`sobol_tf.attributions.samplers` draw replicated designs for Sobol).
"""
from sobol_tf.attributions.estimators import (GlenEstimator, HommaEstimator,
                                              JanonEstimator, JansenEstimator,
                                              SaltelliEstimator, SobolEstimator)
from sobol_tf.attributions.hsic import HsicAttributionMethod
from sobol_tf.attributions.hsic_estimators import (BinaryEstimator, HsicEstimator,
                                                   RbfEstimator, SobolevEstimator)
from sobol_tf.attributions.samplers import (HaltonPoints as HaltonSequence,
                                            HaltonSequenceRS,
                                            LatinHypercubePoints as LatinHypercube,
                                            LatinHypercubeRS, MonteCarloRS,
                                            ReplicatedSampler, Sampler, ScipySobolSequence,
                                            ScipySobolSequenceRS, TFSobolSequence,
                                            TFSobolSequenceRS)
from sobol_tf.attributions.perturbations import Amplitude, Blurring, Inpainting
from sobol_tf.attributions.sobol import SobolAttributionMethod

ScipySampler = Sampler  # Xplique's base of its scipy samplers

#: Xplique's perturbation functions by name, as our Perturbation objects (same defaults:
#: baseline 0, blurring sigma 10, amplitude sigma 1), for ``perturbation_function=``.
inpainting = Inpainting()
blurring = Blurring()
amplitude = Amplitude()

__all__ = [
    "SobolAttributionMethod", "HsicAttributionMethod",
    "SobolEstimator", "JansenEstimator", "HommaEstimator", "JanonEstimator",
    "GlenEstimator", "SaltelliEstimator",
    "HsicEstimator", "BinaryEstimator", "RbfEstimator", "SobolevEstimator",
    "ReplicatedSampler", "ScipySobolSequenceRS", "TFSobolSequenceRS", "HaltonSequenceRS",
    "LatinHypercubeRS", "MonteCarloRS",
    "Sampler", "ScipySampler", "TFSobolSequence", "ScipySobolSequence", "HaltonSequence",
    "LatinHypercube", "inpainting", "blurring", "amplitude",
]
