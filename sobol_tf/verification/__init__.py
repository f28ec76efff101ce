"""Verified output bounds of Keras models over boxes of inputs (used by EVA).

:func:`output_bounds` bounds what a Keras 3 Sequential or functional model can output
for every input of a box [lower, upper]: nothing is sampled, so the bounds hold for
every point of the box (up to float32 rounding). Two methods:

- ``'ibp'``: interval bound propagation, layer by layer (see
  :mod:`sobol_tf.verification.intervals` for the layers and activations it bounds);
- ``'crown'``: CROWN's backward linear relaxation for chains of Dense / convolution /
  affine layers and ReLUs (other layers of the chain are bounded by IBP), intersected
  with IBP's bounds, so never looser (see :mod:`sobol_tf.verification.crown`).

This is our own code: decomon 0.2.1, the Keras library for it, does not run under
NumPy 2 and Keras >= 3.1 (issue 25).
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Optional, Union

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.verification import crown as _crown
from sobol_tf.verification import intervals as _intervals
from sobol_tf.verification.intervals import SUPPORTED_LAYERS, softmax_bounds

#: the bounding methods of :func:`output_bounds`.
METHODS = ("ibp", "crown")

__all__ = ["output_bounds", "METHODS", "SUPPORTED_LAYERS", "softmax_bounds"]


def _check_box(lower, upper):
    try:
        lower = np.asarray(lower, np.float32)
        upper = np.asarray(upper, np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidTypeError(
            f"lower and upper must be arrays of real numbers, got {type(lower).__name__} "
            f"and {type(upper).__name__}.") from error
    if lower.shape != upper.shape:
        raise InvalidArgumentError(
            f"lower and upper must have the same shape, got {lower.shape} and "
            f"{upper.shape}.")
    if lower.ndim < 2:
        raise InvalidArgumentError(
            f"lower and upper must be batches (B, ...) of boxes, got shape {lower.shape}; "
            "add the batch axis (x[None]).")
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise InvalidArgumentError("lower and upper must be finite (no NaN or inf).")
    if np.any(lower > upper):
        count = int(np.sum(lower > upper))
        raise InvalidArgumentError(
            f"lower must be <= upper everywhere, got {count} value(s) with lower > upper.")
    return lower, upper


def output_bounds(model: Any, lower: Any, upper: Any, method: str = "ibp", *,
                  spec: Optional[Union[np.ndarray, tf.Tensor]] = None,
                  batch_size: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Verified bounds of a Keras model's outputs on boxes of inputs.

    Args:
        model: a Keras 3 Sequential or functional model (one input, one output; layers
            listed in :data:`SUPPORTED_LAYERS`). Nested Sequential/functional models are
            walked too.
        lower: lower corners of the boxes, (B, ...) shaped like a batch of the model's
            inputs.
        upper: upper corners, same shape, ``upper >= lower``.
        method: 'ibp' (interval bound propagation) or 'crown' (backward linear
            relaxation of chains of affine layers and ReLUs, never looser than 'ibp').
        spec: (keyword-only) optional linear specification, (S, K) or (B, S, K) rows
            over the K outputs: the bounds are then those of ``spec @ outputs``, (B, S),
            tighter than combining the output bounds (e.g. rows e_c - e_y bound the
            margins of class c over class y). With 'ibp', a chain's trailing affine
            layers are composed with it (the usual IBP with a folded specification).
        batch_size: (keyword-only) boxes per pass; None: all at once.

    Returns:
        (lower_outputs, upper_outputs): float32 arrays shaped like the model's outputs
        on the batch (B, K), or (B, S) with ``spec``; every output of every input in
        box b lies between them.

    Raises:
        InvalidArgumentError: a layer no rule bounds (the message names it and its
            class), lower > upper, shapes that differ, NaN or inf, an unknown method,
            'crown' with a model that is not a chain, a model that is not a
            Sequential/functional Keras model.
        InvalidTypeError: boxes that are not arrays of numbers.

    Example:
        >>> low, high = output_bounds(model, x - 0.1, x + 0.1)
        >>> margins = output_bounds(model, x - 0.1, x + 0.1, 'crown', spec=rows)[1]
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise InvalidArgumentError(f"method must be one of {list(METHODS)}, got {method!r}.")
    method = method.lower()
    if batch_size is not None and (isinstance(batch_size, bool)
                                   or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise InvalidArgumentError(
            f"batch_size must be None or an integer >= 1, got {batch_size!r}.")
    lower, upper = _check_box(lower, upper)
    if spec is not None:
        spec = tf.convert_to_tensor(spec, tf.float32)
        if len(spec.shape) not in (2, 3):
            raise InvalidArgumentError(
                f"spec must be (S, K) or (B, S, K) rows over the outputs, got shape "
                f"{tuple(spec.shape)}.")
        if len(spec.shape) == 3 and spec.shape[0] != lower.shape[0]:
            raise InvalidArgumentError(
                f"spec (B, S, K) must have one set of rows per box, got {spec.shape[0]} "
                f"for {lower.shape[0]} boxes.")
    cached = _FUNCTIONS.setdefault(model, {})
    key = (method, spec is not None)
    if key not in cached:
        cached[key] = bounds_function(model, method, spec is not None)
    function = cached[key]
    size = lower.shape[0] if batch_size is None else int(batch_size)
    lows, highs = [], []
    for begin in range(0, lower.shape[0], size):
        part = slice(begin, begin + size)
        arguments = [tf.constant(lower[part]), tf.constant(upper[part])]
        if spec is not None:
            arguments.append(spec[part] if len(spec.shape) == 3 else spec)
        low, high = function(*arguments)
        lows.append(np.asarray(low))
        highs.append(np.asarray(high))
    return np.concatenate(lows), np.concatenate(highs)


#: the compiled bounds of each model, per (method, with spec), reused across calls.
_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def bounds_function(model: Any, method: str, with_spec: bool) -> Callable[..., Any]:
    """A compiled f(lower, upper[, spec]) -> (low, high) for ``model`` (raises at once
    on a layer no rule bounds)."""
    steps = None
    if method == "crown" or with_spec:
        try:
            steps = _crown.chain_steps(model)
        except InvalidArgumentError:
            if method == "crown":
                raise
    if steps is None:
        _intervals.graph_steps(model)   # refuses a model that is not a graph now
        for layer, _, _ in _intervals.graph_steps(model)[0]:
            _check_layer(layer)

        def bounds(lower, upper, spec=None):
            low, high = _intervals.model_bounds(model, [lower], [upper])
            if spec is None:
                return low, high
            spec = tf.broadcast_to(spec, (tf.shape(low)[0],) + tuple(spec.shape[-2:]))
            centre, radius = (low + high) / 2, (high - low) / 2
            return (tf.einsum("bsk,bk->bs", spec, centre)
                    - tf.einsum("bsk,bk->bs", tf.abs(spec), radius),
                    tf.einsum("bsk,bk->bs", spec, centre)
                    + tf.einsum("bsk,bk->bs", tf.abs(spec), radius))
    else:
        for layer, _, _ in _intervals.graph_steps(model)[0]:
            _check_layer(layer)

        def bounds(lower, upper, spec=None):
            return _crown.chain_bounds(steps, lower, upper, spec, crown=method == "crown")
    return tf.function(bounds)   # static shapes: one trace per batch size


def _check_layer(layer):
    """Raise the clear error now for a layer (or a nested model's layer) no rule bounds."""
    import keras
    if isinstance(layer, keras.Model):
        for inner, _, _ in _intervals.graph_steps(layer)[0]:
            _check_layer(inner)
        return
    kind = type(layer).__name__
    if kind not in SUPPORTED_LAYERS:
        raise _intervals.unsupported(layer)
    activation = getattr(layer, "activation", None)
    if activation is not None and kind != "PReLU":
        name = getattr(activation, "__name__", "")
        if name not in (_intervals.INCREASING_ACTIVATIONS | _intervals.DIP_ACTIVATIONS
                        | {"softmax", "log_softmax"}):
            raise _intervals.unsupported(layer, f" (activation {name!r})")
