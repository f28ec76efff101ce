"""Concept-based explanations: CRAFT (Fel et al., CVPR 2023), with Sobol concept
importance computed by :mod:`sobol_tf.attributions`' samplers and estimators.

Needs scikit-learn (``pip install scikit-learn`` or ``pip install 'sobol_tf[concepts]'``),
imported when a factorisation is first fitted.
"""
from sobol_tf.concepts.craft import (CraftTf, DisplayImportancesOrder, Factorization,
                                     NotFittedError, Sensitivity)
from sobol_tf.concepts.craft_manager import CraftManagerTf

__all__ = [
    "CraftTf",
    "CraftManagerTf",
    "DisplayImportancesOrder",
    "Factorization",
    "NotFittedError",
    "Sensitivity",
]
