"""CROWN: backward linear relaxation for chains of affine layers and ReLUs.

A linear function of the outputs, ``spec @ f(x)``, is bounded by walking the chain
backwards: an affine layer is composed exactly (its transposed map is the gradient of
its linear part, so every affine Keras layer is handled by one rule), a ReLU whose input
lies in [l, u] is replaced by the two lines that enclose it on [l, u] (Zhang et al.
2018, the adaptive lower slope), and the result is a linear function of the input
maximised (minimised) in closed form on the input box. Pre-activation bounds come from
CROWN itself while a layer is small (:data:`CROWN_INTERMEDIATE_MAX` values or fewer),
else from IBP; a layer with no linear rule (max pooling, sigmoid...) is bounded by IBP
and the backward walk restarts after it. The result is intersected with IBP's, so it is
never looser.

Ref. H. Zhang, T.-W. Weng, P.-Y. Chen, C.-J. Hsieh, L. Daniel. Efficient Neural Network
Robustness Certification with General Activation Functions. NeurIPS 2018.
https://arxiv.org/abs/1811.00866
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.verification import intervals

#: pre-activation bounds are computed by CROWN (one backward walk with one row per
#: value) when a layer has at most this many values; IBP's otherwise.
CROWN_INTERMEDIATE_MAX = 512

#: layers that are affine at inference, composed exactly by the backward walk.
LINEAR_LAYERS = (
    "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Identity", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "BatchNormalization", "Rescaling", "Normalization",
)


class _Step:
    """One step of the chain: 'affine' (function), 'relu', or 'other' (IBP only)."""

    def __init__(self, kind, function=None, ibp=None):
        self.kind, self.function, self.ibp = kind, function, ibp


def _activation_steps(function, layer):
    name = getattr(function, "__name__", "")
    if name == "linear":
        return []
    if name == "relu":
        return [_Step("relu")]
    return [_Step("other", ibp=lambda lo, hi: intervals.activation_bounds(function, lo, hi,
                                                                          layer))]


def _layer_steps(layer):
    kind = type(layer).__name__
    if kind == "InputLayer":
        return []
    if isinstance(layer, keras.Sequential):
        return [step for inner in layer.layers for step in _layer_steps(inner)]
    if kind in intervals.AFFINE_LAYERS:
        parts = intervals.affine_parts(layer)

        def affine(x):
            for linear, bias in parts:
                x = intervals._add_bias(layer, linear(x), bias)
            return x
        return ([_Step("affine", affine,
                       lambda lo, hi: intervals.affine_bounds(layer, lo, hi))]
                + _activation_steps(layer.activation, layer))
    if kind == "Activation":
        return _activation_steps(layer.activation, layer)
    if kind == "ReLU" and layer.max_value is None and not layer.negative_slope \
            and not layer.threshold:
        return [_Step("relu")]
    if kind in LINEAR_LAYERS:
        return [_Step("affine", lambda x: layer(x, training=False),
                      lambda lo, hi: intervals.layer_bounds(layer, [lo], [hi]))]
    return [_Step("other", ibp=lambda lo, hi: intervals.layer_bounds(layer, [lo], [hi]))]


def chain_steps(model: Any) -> list[_Step]:
    """The steps of a model that is a chain (one input, one output, no branch)."""
    steps, inputs, outputs = intervals.graph_steps(model)
    current = inputs
    for layer, keys, results in steps:
        if keys != current or len(results) != 1 or len(inputs) != 1:
            raise InvalidArgumentError(
                "method='crown' needs a model that is a chain of layers (one input, one "
                f"output, no branch); layer {layer.name!r} ({type(layer).__name__}) "
                "reads or gives several tensors. Use method='ibp' (Eva: bounds='ibp') for "
                "this model.")
        current = results
    return [step for layer, _, _ in steps for step in _layer_steps(layer)]


def _backward(steps, boxes, end, start, spec):
    """Bounds of ``spec`` (B, S, *shape of step end's output) @ output of step end-1,
    from the box at the input of step ``start``, by the backward walk."""
    batch, rows = spec.shape[0], spec.shape[1]
    upper_map, lower_map = spec, spec
    upper_constant = tf.zeros((batch, rows), spec.dtype)
    lower_constant = tf.zeros((batch, rows), spec.dtype)
    for index in range(end - 1, start - 1, -1):
        step = steps[index]
        in_low, in_high = boxes[index]
        if step.kind == "relu":
            low, high = in_low[:, None], in_high[:, None]
            unstable = (low < 0) & (high > 0)
            width = tf.where(unstable, high - low, tf.ones_like(high))
            upper_slope = tf.where(low >= 0, 1.0, tf.where(unstable, high / width, 0.0))
            upper_offset = tf.where(unstable, -low * high / width, 0.0)
            lower_slope = tf.where(low >= 0, 1.0,
                                   tf.where(unstable & (high > -low), 1.0, 0.0))
            axes = list(range(2, len(upper_map.shape)))
            upper_constant += tf.reduce_sum(tf.nn.relu(upper_map) * upper_offset, axes)
            lower_constant -= tf.reduce_sum(tf.nn.relu(-lower_map) * upper_offset, axes)
            upper_map = (tf.nn.relu(upper_map) * upper_slope
                         - tf.nn.relu(-upper_map) * lower_slope)
            lower_map = (tf.nn.relu(lower_map) * lower_slope
                         - tf.nn.relu(-lower_map) * upper_slope)
        else:   # affine: constant += <map, f(0)>, map <- map composed with f's linear part
            shape = tuple(in_low.shape[1:])
            maps = tf.concat([upper_map, lower_map], 0)
            out_shape = tuple(maps.shape[2:])
            flat = tf.reshape(maps, (-1,) + out_shape)
            zeros = tf.zeros((flat.shape[0],) + shape, spec.dtype)
            with tf.GradientTape() as tape:
                tape.watch(zeros)
                outputs = step.function(zeros)
            transposed = tape.gradient(outputs, zeros, output_gradients=flat)
            at_zero = step.function(tf.zeros((1,) + shape, spec.dtype))
            offsets = tf.reduce_sum(
                tf.reshape(maps * at_zero[:, None], (2 * batch, rows, -1)), -1)
            upper_constant += offsets[:batch]
            lower_constant += offsets[batch:]
            transposed = tf.reshape(transposed, (2 * batch, rows) + shape)
            upper_map, lower_map = transposed[:batch], transposed[batch:]
    low, high = boxes[start]
    centre = tf.reshape((low + high) / 2, (batch, 1, -1))
    radius = tf.reshape((high - low) / 2, (batch, 1, -1))
    upper_map = tf.reshape(upper_map, (batch, rows, -1))
    lower_map = tf.reshape(lower_map, (batch, rows, -1))
    upper = (tf.reduce_sum(upper_map * centre + tf.abs(upper_map) * radius, -1)
             + upper_constant)
    lower = (tf.reduce_sum(lower_map * centre - tf.abs(lower_map) * radius, -1)
             + lower_constant)
    return lower, upper


def _identity_spec(batch, shape, dtype):
    size = 1
    for dim in shape:
        size *= dim
    eye = tf.eye(size, dtype=dtype)
    return tf.broadcast_to(tf.reshape(eye, (1, size) + tuple(shape)),
                           (batch, size) + tuple(shape))


def chain_bounds(steps: Sequence[_Step], lower: Any, upper: Any, spec: Any = None, *,
                 crown: bool = True) -> tuple[Any, Any]:
    """Bounds of ``spec @ f(x)`` (B, S), or of f(x) itself when ``spec`` is None, on the
    box [lower, upper] (B, ...). With ``crown=False`` only the trailing affine steps are
    composed backwards (IBP with the specification folded into the last linear layers)."""
    boxes = [(lower, upper)]
    start = 0
    for index, step in enumerate(steps):
        low, high = boxes[-1]
        if step.kind == "affine":
            out = step.ibp(low, high)
        elif step.kind == "relu":
            if crown and index > start:
                size = 1
                for dim in low.shape[1:]:
                    size *= dim
                if size <= CROWN_INTERMEDIATE_MAX:
                    spec_here = _identity_spec(low.shape[0], low.shape[1:], low.dtype)
                    tight_low, tight_high = _backward(steps, boxes, index, start, spec_here)
                    low = tf.maximum(low, tf.reshape(tight_low, tf.shape(low)))
                    high = tf.minimum(high, tf.reshape(tight_high, tf.shape(high)))
                    boxes[-1] = (low, high)
            out = (tf.nn.relu(low), tf.nn.relu(high))
        else:
            out = step.ibp(low, high)
            start = index + 1
        boxes.append(out)
    if not crown:   # fold only the trailing affine steps
        if spec is None:
            return boxes[-1]
        start = len(steps)
        while start > 0 and steps[start - 1].kind == "affine":
            start -= 1
    low, high = boxes[-1]
    batch, shape = low.shape[0], tuple(low.shape[1:])
    if spec is None:
        if start == len(steps):
            return low, high
        spec_rows = _identity_spec(batch, shape, low.dtype)
    else:
        spec_rows = tf.broadcast_to(tf.reshape(spec, (-1, spec.shape[-2]) + shape),
                                    (batch, spec.shape[-2]) + shape)
    if start == len(steps):
        flat_spec = tf.reshape(spec_rows, (batch, spec_rows.shape[1], -1))
        centre = tf.reshape((low + high) / 2, (batch, 1, -1))
        radius = tf.reshape((high - low) / 2, (batch, 1, -1))
        return (tf.reduce_sum(flat_spec * centre - tf.abs(flat_spec) * radius, -1),
                tf.reduce_sum(flat_spec * centre + tf.abs(flat_spec) * radius, -1))
    backward_low, backward_high = _backward(steps, boxes, len(steps), start, spec_rows)
    # never looser than interval arithmetic on the output box (IBP)
    flat_spec = tf.reshape(spec_rows, (batch, spec_rows.shape[1], -1))
    centre = tf.reshape((low + high) / 2, (batch, 1, -1))
    radius = tf.reshape((high - low) / 2, (batch, 1, -1))
    ibp_low = tf.reduce_sum(flat_spec * centre - tf.abs(flat_spec) * radius, -1)
    ibp_high = tf.reduce_sum(flat_spec * centre + tf.abs(flat_spec) * radius, -1)
    backward_low, backward_high = (tf.maximum(backward_low, ibp_low),
                                   tf.minimum(backward_high, ibp_high))
    if spec is None:
        return (tf.reshape(backward_low, (batch,) + shape),
                tf.reshape(backward_high, (batch,) + shape))
    return backward_low, backward_high
