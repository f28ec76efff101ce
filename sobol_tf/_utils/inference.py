"""Former home of :func:`batch_inference`, now in :mod:`sobol_tf._utils.engine` (kept so
that older imports still work)."""
from sobol_tf._utils.engine import batch_inference

__all__ = ["batch_inference"]
