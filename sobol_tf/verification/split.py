"""Splitting a Keras model at a named layer: f = tail(head(x)), through the functional
API (used by EVA's hybrid bounds and by Extremal channel attribution)."""
from __future__ import annotations

from typing import Any, Union

import keras

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def find_layer(model: Any, layer: Union[str, int]) -> Any:
    """The layer of ``model`` named ``layer`` (or at index ``layer``)."""
    if isinstance(layer, bool) or not isinstance(layer, (str, int)):
        raise InvalidTypeError(
            f"layer must be a layer name (str) or index (int), got {type(layer).__name__}.")
    names = [one.name for one in model.layers]
    if isinstance(layer, int):
        if not -len(names) <= layer < len(names):
            raise InvalidArgumentError(
                f"layer index {layer} is out of range for a model of {len(names)} layers.")
        return model.layers[layer]
    if layer not in names:
        raise InvalidArgumentError(
            f"layer {layer!r} is not a layer of the model; its layers are {names}.")
    return model.get_layer(layer)


def split_model(model: Any, layer: Union[str, int]) -> tuple[keras.Model, keras.Model]:
    """(head, tail) with ``model(x) == tail(head(x))`` and ``head(x)`` the output of
    ``layer``.

    Raises:
        InvalidTypeError: ``model`` is not a Keras model.
        InvalidArgumentError: no such layer; the last layer; a model that cannot be cut
            there (a subclassed model, a layer used twice, or a branch that jumps over
            the layer); the message says how to fix it.
    """
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            f"splitting a model at a layer needs a Keras model, got {type(model).__name__}.")
    target = find_layer(model, layer)
    fix = ("Rebuild the model with keras.Sequential([...]) or keras.Model(inputs, "
           "outputs) so that every path from the input to the output goes through "
           f"layer {target.name!r}, or name another layer.")
    if target is model.layers[-1]:
        raise InvalidArgumentError(
            f"layer {target.name!r} is the model's last layer: there is nothing after it "
            "to split off; name an earlier layer.")
    if isinstance(model, keras.Sequential):
        index = model.layers.index(target)
        shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
        if shape is None:
            raise InvalidArgumentError(
                "the Sequential model has no Input: build it with keras.Input(shape) "
                "first (or call it once).")
        head = keras.Sequential([keras.Input(shape)] + model.layers[:index + 1])
        tail = keras.Sequential([keras.Input(tuple(head.outputs[0].shape[1:]))]
                                + model.layers[index + 1:])
        return head, tail
    if not hasattr(model, "_nodes_by_depth"):
        raise InvalidArgumentError(
            f"a subclassed model ({type(model).__name__}) cannot be split at a layer. "
            + fix)
    try:
        output = target.output
        head = keras.Model(model.inputs, output)
        outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
        tail = keras.Model(output, outputs)
    except (ValueError, AttributeError) as error:
        raise InvalidArgumentError(
            f"the model cannot be split at layer {target.name!r} ({error}). " + fix
        ) from error
    return head, tail
