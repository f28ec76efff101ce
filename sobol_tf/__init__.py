"""sobol_tf: black-box attribution methods for Keras/TensorFlow models.

    from sobol_tf.attributions import SobolAttributionMethod
    maps = SobolAttributionMethod(model, grid_size=8, nb_design=32)(images, labels)
"""
__version__ = "0.1.0"

from sobol_tf import errors, operators
from sobol_tf import attributions, metrics
from sobol_tf.attributions import (
    ExtremalPerturbation,
    GradCAM,
    HsicAttributionMethod,
    IntegratedGradients,
    Occlusion,
    Rise,
    Saliency,
    SmoothGrad,
    SobolAttributionMethod,
)

__all__ = [
    "attributions",
    "errors",
    "metrics",
    "operators",
    "SobolAttributionMethod",
    "Rise",
    "Occlusion",
    "HsicAttributionMethod",
    "Saliency",
    "IntegratedGradients",
    "SmoothGrad",
    "GradCAM",
    "ExtremalPerturbation",
    "__version__",
]
