"""sobol_tf: black-box attribution methods for Keras/TensorFlow models.

    from sobol_tf.attributions import SobolAttributionMethod
    maps = SobolAttributionMethod(model, grid_size=8, nb_design=32)(images, labels)

``import sobol_tf`` is cheap: it does not import TensorFlow. The subpackages and the
explainers listed in ``__all__`` are imported on first use (PEP 562), so
``sobol_tf.metrics``, ``from sobol_tf import SobolAttributionMethod`` and ``dir(sobol_tf)``
work as if they had been imported here.
"""
from __future__ import annotations

import importlib
from typing import Any, List

__version__ = "0.1.0"

#: subpackages and modules reachable as attributes, imported on first use
_SUBMODULES = ("attributions", "commons", "concepts", "errors", "features_visualizations",
               "io", "metrics", "operators", "plots", "streaming", "tasks", "utils_functions",
               "verification")
#: public names of sobol_tf.attributions re-exported here
_EXPLAINERS = (
    "SobolAttributionMethod",
    "Rise",
    "Occlusion",
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
    "Lime",
    "KernelShap",
    "ExtremalPerturbation",
)

__all__ = ["attributions", "errors", "metrics", "operators", "tasks", "utils_functions", "Tasks",
           *_EXPLAINERS, "__version__"]


def __getattr__(name: str) -> Any:
    """Import a subpackage or an explainer when it is first asked for."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Tasks":  # sobol_tf.tasks does not import TensorFlow
        return importlib.import_module(f"{__name__}.tasks").Tasks
    if name in _EXPLAINERS:
        value = getattr(importlib.import_module(f"{__name__}.attributions"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
