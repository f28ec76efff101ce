"""Plots of explanations and metric curves. Imports matplotlib only when called."""
from sobol_tf.plots.curves import plot_metric_curves
from sobol_tf.plots.image import plot_attributions

__all__ = ["plot_attributions", "plot_metric_curves"]
