"""Guided Backpropagation and DeconvNet: the gradient with another rule at every ReLU.

Both run on a copy of the Keras model whose ReLUs compute the same outputs but pass
gradients back by the method's rule (``tf.custom_gradient``); the caller's model is left
as it is. A ReLU is recognised as a layer whose ``activation`` is ReLU (Dense(...,
activation='relu'), Conv2D, Activation('relu'), ...) or a ``keras.layers.ReLU`` layer
(its max_value, threshold and negative_slope are kept), also inside nested functional or
Sequential models. A ReLU written any other way (tf.nn.relu in a Lambda layer or in a
subclassed layer's call) keeps its ordinary gradient. Lambda layers are shared with the
caller's model (a Python function cannot be rebuilt from a config); every other layer is
rebuilt from its config with the caller's weights.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from sobol_tf.attributions.whitebox import WhiteBoxExplainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

_RELU_FUNCTIONS = (keras.activations.relu, tf.nn.relu, keras.ops.relu)


def _is_relu(function):
    return any(function is relu for relu in _RELU_FUNCTIONS)


def _with_backward_rule(forward, rule):
    """``forward`` (an elementwise ReLU) whose gradient is ``rule(upstream, slope)``,
    with ``slope`` the ReLU's own derivative at the input (None for a rule that does not
    read it: ``rule.uses_slope`` False)."""

    @tf.custom_gradient
    def relu(inputs):
        if not getattr(rule, "uses_slope", True):
            return forward(inputs), lambda upstream: rule(upstream, None)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            outputs = forward(inputs)
        slope = tape.gradient(outputs, inputs)

        def backward(upstream):
            return rule(upstream, slope)

        return outputs, backward

    return relu


class _RuleReLU(keras.layers.Layer):
    """A ``keras.layers.ReLU`` (same parameters, same outputs) with a backward rule."""

    def __init__(self, relu_layer, rule, **kwargs):
        super().__init__(name=relu_layer.name, **kwargs)
        self._relu = relu_layer
        self._function = _with_backward_rule(relu_layer, rule)

    def call(self, inputs):
        return self._function(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def _has_graph(model):
    """A functional or Sequential Keras model: one ``keras.models.clone_model`` rebuilds."""
    if isinstance(model, keras.Sequential):
        return True
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - another Keras layout
        return type(model).__name__ == "Functional"
    return isinstance(model, Functional)


def override_relu_gradients(model: Any, rule: Any, method: str) -> Any:
    """A copy of ``model`` whose ReLUs pass gradients back by ``rule(upstream, slope)``.

    Returns:
        (copy, count): the copy, with the caller's weights, and the number of ReLUs
        rewritten.

    Raises:
        InvalidTypeError: ``model`` is not a functional or Sequential Keras model.
        InvalidArgumentError: a layer that cannot be rebuilt from its config.
    """
    if not isinstance(model, keras.Model) or not _has_graph(model):
        raise InvalidTypeError(
            f"{method} needs a Keras functional or Sequential model (it rebuilds the "
            f"model with another gradient at each ReLU), got a {type(model).__name__}; "
            "rebuild a subclassed model with keras.Model(inputs, outputs), or use "
            "Saliency or a black-box method."
        )
    count = 0

    def clone_layer(layer):
        nonlocal count
        if isinstance(layer, keras.layers.ReLU):
            count += 1
            return _RuleReLU(keras.layers.ReLU.from_config(layer.get_config()), rule)
        if isinstance(layer, keras.layers.Lambda):
            # a Python function cannot be rebuilt from a config (Keras refuses to
            # deserialise it): the copy calls the same weightless layer
            return layer
        try:
            copy = layer.__class__.from_config(layer.get_config())
        except Exception as error:
            raise InvalidArgumentError(
                f"{method} rebuilds the model layer by layer, but layer {layer.name!r} "
                f"({type(layer).__name__}) could not be rebuilt from its config: {error}. "
                "Give the layer a get_config() that its __init__ accepts."
            ) from error
        if _is_relu(getattr(copy, "activation", None)):
            count += 1
            copy.activation = _with_backward_rule(copy.activation, rule)
        return copy

    copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    copy.set_weights(model.get_weights())
    return copy, count


def _guided_rule(upstream, slope):
    return tf.nn.relu(upstream) * slope


def _deconv_rule(upstream, slope):
    return tf.nn.relu(upstream)


_deconv_rule.uses_slope = False  # type: ignore[attr-defined]


class _ReLURuleExplainer(WhiteBoxExplainer):
    """The gradient of a copy of the model whose ReLUs follow ``rule``."""

    @staticmethod
    def rule(upstream, slope):
        raise NotImplementedError

    def __init__(self, model, output_layer=None, batch_size=32, operator=None,
                 reducer="mean", *, verbose=False, strategy=None):
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose,
                         strategy=strategy)
        name = type(self).__name__
        model, count = override_relu_gradients(self.model, type(self).rule, name)
        self._set_model_in_constructor(model)
        if count == 0:
            warn(f"{name}: the model has no ReLU written as a layer's activation or a "
                 "keras.layers.ReLU layer, so its maps are the plain gradients.")

    def _attribute(self, model, inputs, targets, evaluations):
        return self._gradients(model, inputs, targets)


class GuidedBackprop(_ReLURuleExplainer):
    """Guided Backpropagation: the gradient, where each ReLU passes back only the
    positive part of the incoming gradient, and only where its input was active.

    At a ReLU with input z and incoming gradient g: relu(g) * relu'(z) (the ReLU's own
    slope: 1 for z > 0, and for a ``keras.layers.ReLU`` with ``max_value`` or
    ``threshold``, 0 where it is flat). The map is then reduced over the channels (sign
    kept; default 'mean', as Xplique).

    Ref. J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller. Striving for
    Simplicity: The All Convolutional Net. ICLR Workshop 2015.
    https://arxiv.org/abs/1412.6806

    Args:
        model: a Keras functional or Sequential model (it is copied with its ReLUs
            rewritten; see the module's docstring for which ReLUs are recognised).
        output_layer: None or the name / index of the layer explained (e.g. the logits).
        batch_size: inputs per forward/backward pass; 32 as Xplique; None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum', or None to keep the
            channels. Images only, as Xplique: tabular rows (N, F) and time series
            (N, T, C) get maps of their own shape, whatever the reducer.
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidTypeError: ``model`` is not a functional or Sequential Keras model (a
            subclassed model cannot be rebuilt layer by layer).
        InvalidArgumentError: an unknown ``reducer`` or ``output_layer``; a layer of the
            model that cannot be rebuilt from its config (a custom layer without a
            matching get_config).

    Warns:
        SobolTFWarning: the model has no ReLU we recognise (the maps are the gradients).

    Example:
        >>> maps = GuidedBackprop(model, output_layer="logits")(images, labels)
    """

    rule = staticmethod(_guided_rule)


class DeconvNet(_ReLURuleExplainer):
    """DeconvNet: the gradient, where each ReLU passes back the positive part of the
    incoming gradient, whatever its input.

    At a ReLU with incoming gradient g: relu(g). The map is then reduced over the
    channels (sign kept; default 'mean', as Xplique).

    Ref. M. D. Zeiler, R. Fergus. Visualizing and Understanding Convolutional Networks.
    ECCV 2014. https://arxiv.org/abs/1311.2901

    Args, Raises, Warns: as :class:`GuidedBackprop`.

    Example:
        >>> maps = DeconvNet(model, output_layer="logits")(images, labels)
    """

    rule = staticmethod(_deconv_rule)
