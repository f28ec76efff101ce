"""Deletion / Insertion curves of several methods on one axis (matplotlib imported lazily)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.fidelity import CausalCurves, curve_area


def _mean_curve(name, curve):
    """(counts, mean scores, per-input scores or None) of one method's curve."""
    if isinstance(curve, CausalCurves):
        return (np.asarray(curve.counts), np.asarray(curve.scores).mean(axis=0),
                np.asarray(curve.scores))
    if isinstance(curve, dict):
        if len(curve) < 2:
            raise InvalidArgumentError(
                f"the curve of {name!r} has {len(curve)} point(s); a curve needs at least 2.")
        counts, scores = zip(*sorted(curve.items()))
        return np.asarray(counts), np.asarray(scores, np.float64), None
    raise InvalidTypeError(
        f"curves[{name!r}] must be a dict {{features perturbed: score}} (detailed_evaluate) "
        f"or a CausalCurves (curves()), got {type(curve).__name__}."
    )


def plot_metric_curves(curves: Any, *, ax: Any = None, title: Optional[str] = None,
                       band: bool = True, xlabel: str = "features perturbed",
                       ylabel: str = "score",
                       figsize: Tuple[float, float] = (5.0, 3.5)) -> Any:
    """Plot the Deletion or Insertion curves of several methods on one axis.

    Each method's curve is a line over the number of features perturbed, labelled
    with its area (the metric's score: trapezoid rule, steps equally spaced on [0, 1]).

    Args:
        curves: dict method name -> the method's curve, either a dict
            {features perturbed: mean score} (``detailed_evaluate``) or a
            :class:`~sobol_tf.metrics.CausalCurves` (``curves()``), whose mean is drawn.
        ax: a matplotlib Axes to draw on; None: a new figure.
        title: the axis title.
        band: for CausalCurves, shade the mean ± one standard deviation over inputs.
        xlabel, ylabel: axis labels.
        figsize: size in inches of a new figure.

    Returns:
        The matplotlib Figure holding the axis.

    Raises:
        InvalidArgumentError: no curves, a curve of fewer than 2 points.
        InvalidTypeError: a curve that is neither a dict nor a CausalCurves.

    Example:
        >>> curves = {"Sobol": deletion.detailed_evaluate(sobol_maps),
        ...           "random": deletion.detailed_evaluate(random_maps)}
        >>> figure = plot_metric_curves(curves, title="Deletion")
    """
    import matplotlib.pyplot as plt  # optional and heavy: `import sobol_tf` stays light

    if not isinstance(curves, dict) or not curves:
        raise InvalidArgumentError(
            "curves must be a non-empty dict of method name -> curve, got "
            f"{curves!r:.80}."
        )
    prepared = {name: _mean_curve(name, curve) for name, curve in curves.items()}
    if ax is None:
        figure, ax = plt.subplots(figsize=figsize)
    else:
        figure = ax.figure
    for name, (counts, mean, per_input) in prepared.items():
        line, = ax.plot(counts, mean, marker="o", markersize=3,
                        label=f"{name} (area {curve_area(mean):.3f})")
        if band and per_input is not None and len(per_input) > 1:
            spread = per_input.std(axis=0)
            ax.fill_between(counts, mean - spread, mean + spread, color=line.get_color(),
                            alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure
