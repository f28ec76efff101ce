"""Operators: the scalar explained for each input.

An operator is ``g(model, inputs, targets) -> scores`` of shape (batch,), as in Xplique.
The built-in ones take the model's output (flattened to (batch, K)) and its inner
product with the target row, so a one-hot target picks one class (classification) and
a weight vector picks a direction in a regression output (regression). They differ in
how 1-D targets are read: class ids for 'classification' (and for a callable), one
output per input for 'regression'.

The built-in operators read one output: a model returning a list, tuple or dict needs a
callable operator that picks one (the model's outputs reach it untouched). Because they
weigh the outputs by the target row, an all-zero row scores 0 whatever the input: a
:class:`~sobol_tf.errors.SobolTFWarning` names those inputs. NaN or infinite targets
are refused.
"""
import numpy as np
import tensorflow as tf

from sobol_tf._utils.checks import format_ids, one_output
from sobol_tf._utils.validation import lookup
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn


def _flat_outputs(model, inputs, name):
    """The model's outputs on ``inputs`` as float32 (B, K); one output only."""
    return one_output(model(inputs), inputs, name)


def classification_operator(model, inputs, targets):
    """Score of the target class: sum(model(inputs) * one_hot_targets, -1)."""
    return tf.reduce_sum(_flat_outputs(model, inputs, "classification") * targets, axis=-1)


def regression_operator(model, inputs, targets):
    """Projection of the output on the target direction: sum(model(inputs) * targets, -1)."""
    return tf.reduce_sum(_flat_outputs(model, inputs, "regression") * targets, axis=-1)


class Operator:
    """A resolved operator.

    Attributes:
        name: 'classification', 'regression' or the callable's name.
        fn: g(model, inputs, targets) -> (batch,) scores.
        builtin: True for the library's operators (targets checked against the output).
        ids_as_classes: 1-D integer targets are class ids, one-hot encoded.
    """

    def __init__(self, name, fn, builtin, ids_as_classes):
        self.name = name
        self.fn = fn
        self.builtin = builtin
        self.ids_as_classes = ids_as_classes

    def __call__(self, model, inputs, targets):
        return self.fn(model, inputs, targets)

    def __repr__(self):
        return f"Operator({self.name!r})"


OPERATORS = {
    "classification": Operator("classification", classification_operator, True, True),
    "regression": Operator("regression", regression_operator, True, False),
}


def get(identifier):
    """Resolve an operator from None, a name or a callable g(model, inputs, targets).

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither a string nor a callable.
    """
    if identifier is None:
        return OPERATORS["classification"]
    if isinstance(identifier, Operator):
        return identifier
    if isinstance(identifier, str):
        return lookup("operator", identifier, OPERATORS, "a callable g(model, inputs, targets)")
    if callable(identifier):
        name = getattr(identifier, "__name__", type(identifier).__name__)
        return Operator(name, identifier, False, True)
    raise InvalidTypeError(
        "operator must be None, 'classification', 'regression' or a callable "
        f"g(model, inputs, targets), got {type(identifier).__name__}."
    )


def needs_outputs(targets, operator):
    """Whether :func:`prepare_targets` needs the model's outputs on the clean inputs:
    always for the built-in operators (width check, predicted class), and for a callable
    only when ``targets`` is None or class ids (N,). Target rows (N, K) for a callable
    pass through as given, whatever the model's outputs (several outputs included)."""
    return operator.builtin or targets is None or np.ndim(targets) == 1


def _zero_rows_warning(targets, operator):
    zero = np.flatnonzero(~np.any(targets != 0, axis=1))
    if zero.size == 0:
        return
    warn(
        f"the target row of {format_ids(zero)} is all zeros: operator={operator.name!r} "
        "weighs the outputs by the target, so the score of that input is 0 whatever the input and "
        "its map is all zeros. For a regression output explain the output itself "
        "(target 1), not its expected value; for classification give a class id.")


def prepare_targets(targets, outputs, operator):
    """Turn raw targets into a float32 (N, K) tensor matching the model's outputs.

    Args:
        targets: numpy (N,) or (N, K), or None (explain the predicted class).
        outputs: the model's outputs on the clean inputs, (N, ...); may be None when
            :func:`needs_outputs` says they are not needed.
        operator: a resolved :class:`Operator`.

    Returns:
        float32 tf.Tensor (N, K).

    Raises:
        InvalidArgumentError: class ids out of range or not integers, a target width that
            differs from the model's output width (built-in operators), NaN or infinite
            targets.

    Warns:
        SobolTFWarning: with a built-in operator, target rows that are all zeros (their
            scores, and so their maps, are all zeros); one warning naming the inputs.
    """
    if targets is not None:
        targets = np.asarray(targets)
        finite = np.isfinite(targets.astype(np.float64))
        if not finite.all():
            rows = np.flatnonzero(~finite.reshape(len(targets), -1).all(axis=1))
            raise InvalidArgumentError(
                f"targets contain {int(finite.size - finite.sum())} NaN or infinite "
                f"value(s) (rows "
                f"{', '.join(map(str, rows[:10]))}); give finite one-hot rows, weights or "
                "class ids."
            )
    if outputs is None:
        return tf.constant(targets, dtype=tf.float32)
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    nb_outputs = outputs.shape[1]
    if targets is None:
        if not operator.ids_as_classes:
            raise InvalidArgumentError(
                f"targets is required with operator={operator.name!r}."
            )
        targets = outputs.argmax(axis=1)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        if operator.ids_as_classes:
            as_float = targets.astype(np.float64)
            if not np.all(np.mod(as_float, 1) == 0):
                raise InvalidArgumentError(
                    "targets of shape (N,) are class ids and must be integers, got "
                    f"{targets[:5]!r}...; pass one-hot rows (N, K) for soft targets."
                )
            ids = as_float.astype(np.int64)
            if ids.min() < 0 or ids.max() >= nb_outputs:
                raise InvalidArgumentError(
                    f"targets holds class ids from {ids.min()} to {ids.max()} but the "
                    f"model has {nb_outputs} outputs; ids must lie in [0, {nb_outputs})."
                )
            targets = np.eye(nb_outputs, dtype=np.float32)[ids]
        else:
            targets = targets.reshape(-1, 1)
    if operator.builtin and targets.shape[1] != nb_outputs:
        raise InvalidArgumentError(
            f"targets has width {targets.shape[1]} but the model has {nb_outputs} "
            "outputs; give one-hot rows of that width or class ids of shape (N,)."
        )
    if operator.builtin:
        _zero_rows_warning(targets, operator)
    return tf.constant(targets, dtype=tf.float32)
