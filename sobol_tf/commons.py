"""Xplique's ``xplique.commons`` names, in one place, for code written for Xplique.

Most of these are ours under another name, re-exported here:

- the operators: ``predictions_operator`` is the classification operator that the
  explainers and metrics use (``explainer.inference_function is predictions_operator``
  for the default operator), ``regression_operator``, ``semantic_segmentation_operator``,
  ``object_detection_operator`` (the functions of :mod:`sobol_tf.operators`), ``Tasks``;
  ``get_operator`` is :func:`sobol_tf.operators.get`, and :func:`check_operator` checks
  what it accepts;
- ``batch_predictions`` is the explainers' default ``batch_inference_function``;
- ``find_layer`` (:mod:`sobol_tf.attributions.whitebox`), ``Kernel``
  (:mod:`sobol_tf.attributions.kernels`), ``ssim`` and ``batched_spearman``
  (:mod:`sobol_tf.metrics.randomization`).

Ours here: :func:`predictions_one_hot_callable` and ``batch_predictions_one_hot_callable``
(the scores of a model that is not TensorFlow: scikit-learn, numpy callables),
:func:`tensor_sanitize` / :func:`numpy_sanitize` / :func:`sanitize_input_output`, and
:func:`watch_layer` / :func:`end_watch_layer` (a layer's output on a gradient tape).

Differences from Xplique: bad operators raise :class:`InvalidOperatorException`, a
:class:`~sobol_tf.errors.InvalidTypeError` (Xplique: its own Exception, or an
AssertionError for an unknown task name, which here raises
:class:`~sobol_tf.errors.InvalidArgumentError`); ``get_operator`` returns the resolved
operator (callable as g(model, inputs, targets)) rather than always the bare function;
``Tasks.REGRESSION`` is our regression operator (1-D targets: one weight per input), not
Xplique's alias of the classification operator.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from sobol_tf import operators as _operators
from sobol_tf._utils.inference import batch_inference as _batch_inference
from sobol_tf.attributions.kernels import Kernel
from sobol_tf.attributions.whitebox import find_layer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.randomization import batched_spearman, ssim
from sobol_tf.tasks import Tasks

#: the classification operator (Xplique's ``predictions_operator``): the object that
#: explainers and metrics hold as ``inference_function`` for ``operator=None``.
predictions_operator = _operators.get(None)
regression_operator = _operators.regression_operator
semantic_segmentation_operator = _operators.semantic_segmentation_operator
object_detection_operator = _operators.object_detection_operator
get_operator = _operators.get

#: the explainers' default ``batch_inference_function``: f(model, inputs, targets,
#: batch_size=None) -> (N,) scores of :data:`predictions_operator`.
batch_predictions = _batch_inference(predictions_operator)


class InvalidOperatorException(InvalidTypeError):
    """An operator that is not g(model, inputs, targets) (Xplique's exception name)."""


def check_operator(operator: Any) -> bool:
    """Check that ``operator`` is an operator: a :class:`~sobol_tf.tasks.Tasks` member, a
    task name, or a callable taking at least three positional arguments (model, inputs,
    targets). A ``tf.function`` is checked through its Python function.

    Args:
        operator: the operator to check.

    Returns:
        True.

    Raises:
        InvalidOperatorException: ``operator`` is not callable, or takes fewer than three
            positional arguments.
        InvalidArgumentError: a string that names no task.

    Example:
        >>> check_operator(lambda model, inputs, targets: model(inputs)[:, 0])
        True
    """
    if isinstance(operator, (Tasks, _operators.Operator)):
        return True
    if isinstance(operator, str):
        Tasks.from_string(operator)
        return True
    operator = getattr(operator, "python_function", operator)  # a tf.function
    if not callable(operator):
        raise InvalidOperatorException(
            f"operator must be callable as g(model, inputs, targets), got "
            f"{type(operator).__name__} {operator!r}.")
    try:
        parameters = inspect.signature(operator).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return True
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    if len(positional) < 3 and not variadic:
        raise InvalidOperatorException(
            f"operator must take three arguments (model, inputs, targets), got "
            f"{getattr(operator, '__name__', operator)!r} taking {len(positional)}.")
    return True


def predictions_one_hot_callable(model: Callable, inputs: Any, targets: Any) -> tf.Tensor:
    """Scores of a model that is not TensorFlow (Xplique's operator of such models): the
    model's probabilities (``predict_proba`` when it has one, else ``model(inputs)`` on
    numpy inputs) weighted by the one-hot (or weight) rows ``targets``.

    Args:
        model: a scikit-learn estimator with ``predict_proba`` or a callable on numpy
            arrays returning (N, K).
        inputs: (N, ...) inputs.
        targets: (N, K) one-hot or weight rows.

    Returns:
        float32 tf.Tensor (N,): sum_k outputs[n, k] targets[n, k].
    """
    array = np.asarray(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
    predict = getattr(model, "predict_proba", model)
    outputs = np.asarray(predict(array), np.float32).reshape(array.shape[0], -1)
    rows = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets, np.float32)
    return tf.constant(np.sum(outputs * rows.reshape(outputs.shape[0], -1), axis=-1))


#: f(model, inputs, targets, batch_size=None) -> (N,) scores of
#: :func:`predictions_one_hot_callable`, ``batch_size`` inputs per call.
batch_predictions_one_hot_callable = _batch_inference(predictions_one_hot_callable)


def tensor_sanitize(inputs: Union[tf.data.Dataset, tf.Tensor, np.ndarray, list],
                    targets: Optional[Union[tf.Tensor, np.ndarray, list]]
                    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """``inputs`` and ``targets`` as float32 tensors; a ``tf.data.Dataset`` of (input,
    target) pairs (batched or not) is unpacked into both. The caller's arrays are not
    modified.

    Returns:
        (inputs, targets) as float32 tf.Tensor (targets None stays None).
    """
    if isinstance(inputs, tf.data.Dataset):
        if len(inputs.element_spec) != 2:
            raise InvalidArgumentError(
                "inputs as a tf.data.Dataset must yield (input, target) pairs, got "
                f"elements {inputs.element_spec}.")
        pairs = list(inputs.unbatch() if _is_batched(inputs) else inputs)
        inputs = tf.stack([pair[0] for pair in pairs])
        targets = tf.stack([pair[1] for pair in pairs])
    inputs = tf.cast(inputs, tf.float32)
    return inputs, None if targets is None else tf.cast(targets, tf.float32)


def numpy_sanitize(inputs: Union[tf.data.Dataset, tf.Tensor, np.ndarray, list],
                   targets: Optional[Union[tf.Tensor, np.ndarray, list]]
                   ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """As :func:`tensor_sanitize`, as float32 numpy arrays."""
    inputs, targets = tensor_sanitize(inputs, targets)
    return inputs.numpy(), None if targets is None else targets.numpy()


def _is_batched(dataset: tf.data.Dataset) -> bool:
    spec = dataset.element_spec[0]
    return spec.shape.rank is not None and spec.shape.rank > 0 and spec.shape[0] is None


def sanitize_input_output(explanation_method: Callable) -> Callable:
    """Decorate ``explain(self, inputs, targets, *args, **kwargs)`` so that it receives
    ``inputs`` and ``targets`` as float32 tensors (see :func:`tensor_sanitize`); the other
    arguments are passed on unchanged.

    Example:
        >>> class Mine:
        ...     @sanitize_input_output
        ...     def explain(self, inputs, targets):
        ...         return inputs
    """

    @functools.wraps(explanation_method)
    def sanitized(self, inputs, targets=None, *args, **kwargs):
        inputs, targets = tensor_sanitize(inputs, targets)
        return explanation_method(self, inputs, targets, *args, **kwargs)

    return sanitized


def watch_layer(layer: Any, tape: tf.GradientTape) -> Any:
    """Make ``layer``'s output watched by ``tape`` and kept as ``layer.result`` at each
    call, until :func:`end_watch_layer`, so that gradients with respect to an
    intermediate layer can be taken::

        with tf.GradientTape() as tape:
            watch_layer(layer, tape)
            scores = operator(model, inputs, targets)
        gradients = tape.gradient(scores, layer.result)
        end_watch_layer(layer)

    Args:
        layer: a Keras layer (of a model called eagerly, or traced inside the tape).
        tape: the tape that will take the gradients.

    Returns:
        ``layer`` (its ``call`` wrapped).

    Raises:
        InvalidArgumentError: ``layer`` is already watched (Xplique: AssertionError).
        InvalidTypeError: ``layer`` has no ``call`` method.
    """
    if hasattr(layer, "result"):
        raise InvalidArgumentError(
            f"layer {getattr(layer, 'name', layer)!r} is already watched; call "
            "end_watch_layer(layer) first.")
    if not callable(getattr(layer, "call", None)):
        raise InvalidTypeError(
            f"layer must be a Keras layer with a call method, got {type(layer).__name__}.")
    original = layer.call

    @functools.wraps(original)
    def watched(*args, **kwargs):
        layer.result = original(*args, **kwargs)
        tape.watch(layer.result)
        return layer.result

    layer.call = watched
    return layer


def end_watch_layer(layer: Any) -> Any:
    """Undo :func:`watch_layer`: restore the layer's own ``call`` and drop ``result``.

    Raises:
        InvalidArgumentError: ``layer`` is not watched.
    """
    wrapped = getattr(layer.__dict__.get("call"), "__wrapped__", None)
    if wrapped is None:
        raise InvalidArgumentError(
            f"layer {getattr(layer, 'name', layer)!r} is not watched (see watch_layer).")
    del layer.call   # the instance attribute: the class's bound method is back
    if hasattr(layer, "result"):
        del layer.result
    return layer


__all__ = [
    "Tasks", "predictions_operator", "regression_operator",
    "semantic_segmentation_operator", "object_detection_operator", "get_operator",
    "check_operator", "InvalidOperatorException", "batch_predictions",
    "predictions_one_hot_callable", "batch_predictions_one_hot_callable",
    "tensor_sanitize", "numpy_sanitize", "sanitize_input_output", "watch_layer",
    "end_watch_layer", "find_layer", "Kernel", "ssim", "batched_spearman",
]
