"""Interval bound propagation (IBP), layer by layer, for Keras 3 models.

Each rule maps boxes [lower, upper] of a layer's inputs to a box holding every output
the layer can give on them. Nothing is sampled: a rule is sound for every point of its
input box (up to float32 rounding), so the composed bounds hold for the whole model.

Ref. S. Gowal et al. On the Effectiveness of Interval Bound Propagation for Training
Verifiably Robust Models. 2018. https://arxiv.org/abs/1810.12715
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError

Box = "tuple[tf.Tensor, tf.Tensor]"

#: activations increasing on the whole real line: the box of f([l, u]) is [f(l), f(u)].
INCREASING_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "elu", "selu",
    "softplus", "softsign", "hard_sigmoid", "exponential", "hard_tanh", "log_sigmoid",
    "celu", "sparse_plus", "squareplus", "tanh_shrink",
})

#: activations decreasing then increasing, with a single minimum (searched on a grid
#: of the interval below, then lowered by a margin so that the bound stays sound).
DIP_ACTIVATIONS = frozenset({"silu", "swish", "gelu", "mish", "hard_silu", "hard_swish"})
DIP_SEARCH = (-4.0, 0.0, 400001)
DIP_MARGIN = 1e-5

#: layers that move or select values without changing them, or pool them with positive
#: weights: increasing in every input, so f(lower) and f(upper) bound f on the box.
INCREASING_LAYERS = (
    "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Identity",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
    "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "ReLU", "LeakyReLU", "ELU",
    "Add", "Average", "Maximum", "Minimum", "Concatenate",
)

#: elementwise affine layers (at inference): f(lower), f(upper) bound f, in some order.
ELEMENTWISE_AFFINE_LAYERS = ("BatchNormalization", "Rescaling", "Normalization")

#: convolutions and dense layers: affine maps followed by their activation.
AFFINE_LAYERS = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D",
                 "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")

SUPPORTED_LAYERS = tuple(sorted(set(INCREASING_LAYERS + ELEMENTWISE_AFFINE_LAYERS
                                    + AFFINE_LAYERS + ("Activation", "Softmax",
                                                       "Subtract", "Multiply", "PReLU",
                                                       "InputLayer"))))


def unsupported(layer: Any, why: str = "") -> InvalidArgumentError:
    """The error for a layer no rule bounds."""
    return InvalidArgumentError(
        f"sobol_tf.verification cannot bound layer {layer.name!r} of class "
        f"{type(layer).__name__}{why}. Supported layers: {', '.join(SUPPORTED_LAYERS)}, "
        "with the activations " + ", ".join(sorted(INCREASING_ACTIVATIONS | DIP_ACTIVATIONS
                                                   | {"softmax", "log_softmax"}))
        + ". Use Eva's hybrid_layer (empirical bounds up to a later layer) to skip it.")


# -- activations ----------------------------------------------------------------------
def _dip_minimum(function: Callable) -> tuple[float, float]:
    """(where, value - DIP_MARGIN) of the minimum of ``function`` on DIP_SEARCH's grid."""
    grid = np.linspace(*DIP_SEARCH).astype(np.float32)
    with tf.init_scope():   # once, eagerly, even when first met inside a tf.function
        values = np.asarray(function(tf.constant(grid)))
    return float(grid[int(np.argmin(values))]), float(values.min()) - DIP_MARGIN


_DIP_CACHE: dict = {}


def activation_bounds(function: Callable, lower: Any, upper: Any,
                      layer: Any = None) -> tuple[Any, Any]:
    """Bounds of ``function(x)`` for x in [lower, upper] (elementwise, or softmax on the
    last axis)."""
    name = getattr(function, "__name__", type(function).__name__)
    if name in INCREASING_ACTIVATIONS:
        return function(lower), function(upper)
    if name in DIP_ACTIVATIONS:
        if name not in _DIP_CACHE:
            _DIP_CACHE[name] = _dip_minimum(function)
        where, value = _DIP_CACHE[name]
        low, high = function(lower), function(upper)
        inside = (lower <= where) & (upper >= where)
        return tf.where(inside, tf.minimum(value, tf.minimum(low, high)),
                        tf.minimum(low, high)), tf.maximum(low, high)
    if name in ("softmax", "log_softmax"):
        return softmax_bounds(lower, upper, log=name == "log_softmax")
    if layer is None:
        raise InvalidArgumentError(f"sobol_tf.verification cannot bound activation {name!r}.")
    raise unsupported(layer, f" (activation {name!r})")


def softmax_bounds(lower: Any, upper: Any, axis: int = -1,
                   log: bool = False) -> tuple[Any, Any]:
    """Sound bounds of softmax (or log-softmax) on a box, as a whole vector.

    softmax_i increases with x_i and decreases with every other x_j, so its least value
    on the box is reached at (x_i = l_i, x_j = u_j) and its largest at (u_i, l_j).
    """
    if axis not in (-1, len(lower.shape) - 1):
        lower, upper = tf.experimental.numpy.moveaxis(lower, axis, -1), \
            tf.experimental.numpy.moveaxis(upper, axis, -1)
    size = lower.shape[-1]
    eye = tf.eye(size, dtype=lower.dtype, batch_shape=None) > 0

    def corner(own, others):  # (..., K, K): row i holds own_i at i, others_j elsewhere
        return tf.where(eye, own[..., None, :], others[..., None, :])

    function = tf.nn.log_softmax if log else tf.nn.softmax
    low = tf.linalg.diag_part(function(corner(lower, upper)))
    high = tf.linalg.diag_part(function(corner(upper, lower)))
    if axis not in (-1, len(lower.shape) - 1):
        low = tf.experimental.numpy.moveaxis(low, -1, axis)
        high = tf.experimental.numpy.moveaxis(high, -1, axis)
    return low, high


# -- affine layers --------------------------------------------------------------------
def _add_bias(layer, outputs, bias):
    if bias is None:
        return outputs
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        bias = tf.reshape(bias, (-1,) + (1,) * (len(outputs.shape) - 2))
    return outputs + bias


def affine_parts(layer: Any) -> list[tuple[Callable, object]]:
    """The linear maps (without bias) and biases of a Dense / convolution layer, in order
    (two for a separable convolution): [(linear(x, absolute=False), bias or None)]."""
    kind = type(layer).__name__
    bias = layer.bias if getattr(layer, "use_bias", False) else None
    if kind == "Dense":
        kernel = layer.kernel

        def dense(x, absolute=False):
            return tf.tensordot(x, tf.abs(kernel) if absolute else kernel, axes=1)
        return [(dense, bias)]
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        if getattr(layer, "padding", "") == "causal":
            raise unsupported(layer, " (causal padding)")
        kernel = layer.kernel

        def conv(x, absolute=False):
            return layer.convolution_op(x, tf.abs(kernel) if absolute else kernel)
        return [(conv, bias)]
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"):
        depthwise = (layer.kernel if kind.startswith("Depthwise")
                     else layer.depthwise_kernel)

        def depth(x, absolute=False):
            return keras.ops.depthwise_conv(
                x, tf.abs(depthwise) if absolute else depthwise, strides=layer.strides,
                padding=layer.padding, data_format=layer.data_format,
                dilation_rate=layer.dilation_rate)
        if kind.startswith("Depthwise"):
            return [(depth, bias)]
        pointwise = layer.pointwise_kernel

        def point(x, absolute=False):
            return keras.ops.conv(x, tf.abs(pointwise) if absolute else pointwise,
                                  strides=1, padding="valid", data_format=layer.data_format)
        return [(depth, None), (point, bias)]
    raise unsupported(layer)


def affine_bounds(layer: Any, lower: Any, upper: Any) -> tuple[Any, Any]:
    """IBP through a Dense / convolution layer, before its activation: centre and radius
    (W c + b, |W| r)."""
    for linear, bias in affine_parts(layer):
        centre, radius = (lower + upper) / 2, (upper - lower) / 2
        centre = _add_bias(layer, linear(centre), bias)
        radius = linear(radius, absolute=True)
        lower, upper = centre - radius, centre + radius
    return lower, upper


# -- one layer ------------------------------------------------------------------------
def layer_bounds(layer: Any, lowers: Sequence, uppers: Sequence) -> tuple[Any, Any]:
    """Bounds of a layer's output(s) from the boxes of its inputs (one per input)."""
    kind = type(layer).__name__
    single = len(lowers) == 1
    lower, upper = (lowers[0], uppers[0]) if single else (list(lowers), list(uppers))
    if kind == "InputLayer":
        return lower, upper
    if isinstance(layer, keras.Model):
        return model_bounds(layer, lowers, uppers)
    if kind in AFFINE_LAYERS:
        lower, upper = affine_bounds(layer, lower, upper)
        return activation_bounds(layer.activation, lower, upper, layer)
    if kind == "Activation":
        return activation_bounds(layer.activation, lower, upper, layer)
    if kind == "Softmax":
        return softmax_bounds(lower, upper, axis=layer.axis if isinstance(layer.axis, int)
                              else -1)
    if kind in ("ReLU", "LeakyReLU") and getattr(layer, "negative_slope", 0.0) < 0:
        raise unsupported(layer, " (negative slope: not monotone)")
    if kind in INCREASING_LAYERS:
        return layer(lower, training=False), layer(upper, training=False)
    if kind in ELEMENTWISE_AFFINE_LAYERS:
        first, second = layer(lower, training=False), layer(upper, training=False)
        return tf.minimum(first, second), tf.maximum(first, second)
    if kind == "Subtract":
        return lowers[0] - uppers[1], uppers[0] - lowers[1]
    if kind == "Multiply":
        low, high = lowers[0], uppers[0]
        for other_low, other_high in zip(lowers[1:], uppers[1:]):
            products = [low * other_low, low * other_high, high * other_low,
                        high * other_high]
            low = tf.reduce_min(tf.stack(products), 0)
            high = tf.reduce_max(tf.stack(products), 0)
        return low, high
    if kind == "PReLU":   # kinked at 0: extremes among f(l), f(u) and f(0) = 0
        first, second = layer(lowers[0]), layer(uppers[0])
        zero = tf.zeros_like(first)
        inside = (lowers[0] <= 0) & (uppers[0] >= 0)
        low, high = tf.minimum(first, second), tf.maximum(first, second)
        return (tf.where(inside, tf.minimum(low, zero), low),
                tf.where(inside, tf.maximum(high, zero), high))
    raise unsupported(layer)


# -- the graph ------------------------------------------------------------------------
def graph_steps(model: Any) -> tuple[list, list, list]:
    """(steps, input keys, output keys) of a Keras model: steps are (layer, input keys,
    output keys) in an order where every input is computed before it is read."""
    if isinstance(model, keras.Sequential):
        steps = [(layer, [index], [index + 1]) for index, layer in enumerate(model.layers)]
        return steps, [0], [len(steps)]
    if not hasattr(model, "_nodes_by_depth") or not hasattr(model, "inputs"):
        raise InvalidArgumentError(
            f"sobol_tf.verification needs a Keras Sequential or functional model, got "
            f"{type(model).__name__} (a subclassed model has no graph of layers to walk); "
            "rebuild it with keras.Sequential([...]) or keras.Model(inputs, outputs).")
    steps = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            operation = node.operation
            if not isinstance(operation, keras.layers.Layer):
                raise InvalidArgumentError(
                    f"sobol_tf.verification cannot bound the operation "
                    f"{type(operation).__name__} ({getattr(operation, 'name', '?')!r}) of "
                    "the model: only Keras layers are bounded; write it as a layer (e.g. "
                    "keras.layers.Add() instead of x + y).")
            steps.append((operation, [id(t) for t in node.input_tensors],
                          [id(t) for t in node.outputs]))
    return steps, [id(t) for t in model.inputs], [id(t) for t in model.outputs]


def model_bounds(model: Any, lowers: Sequence, uppers: Sequence) -> tuple[Any, Any]:
    """IBP through a Keras model from the boxes of its inputs; bounds of its output (a
    pair of tensors; lists for a model of several outputs)."""
    steps, inputs, outputs = graph_steps(model)
    boxes = dict(zip(inputs, zip(lowers, uppers)))
    for layer, keys, results in steps:
        low, high = layer_bounds(layer, [boxes[k][0] for k in keys],
                                 [boxes[k][1] for k in keys])
        if len(results) == 1:
            boxes[results[0]] = (low, high)
        else:
            for key, one_low, one_high in zip(results, low, high):
                boxes[key] = (one_low, one_high)
    if len(outputs) == 1:
        return boxes[outputs[0]]
    return [boxes[k][0] for k in outputs], [boxes[k][1] for k in outputs]
