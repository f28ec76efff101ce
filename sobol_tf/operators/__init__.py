"""Operators: the scalar explained for each input.

An operator is ``g(model, inputs, targets) -> scores`` of shape (batch,), as in Xplique.
The built-in ones are Xplique's tasks (:class:`sobol_tf.tasks.Tasks`), named by a member
of ``Tasks`` or its string:

- 'classification' and 'regression' take the model's output (flattened to (batch, K))
  and its inner product with the target row, so a one-hot target picks one class and a
  weight vector picks a direction in a regression output. They differ in how 1-D targets
  are read: class ids for 'classification' (and for a callable), one output per input
  for 'regression'.
- 'semantic segmentation': targets are masks shaped like the model's outputs (N, H, W,
  C), non-zero on the zone and class explained; the score is the mean of ``outputs *
  targets`` over the mask's non-zero entries.
- 'object detection' (DRise, Petsiuk et al. 2021) and its variants 'object detection
  box position', 'box proba', 'box class': the model returns boxes (batch, nb_boxes,
  4 + 1 + K), (x1, y1, x2, y2, detection probability, K class scores), before any NMS;
  targets are boxes (N, 4 + 1 + K) or (N, nb_boxes, 4 + 1 + K). Each target box is
  matched with its best predicted box: IoU x probability x cosine similarity of the
  class scores (the variants leave out the probability, the classes or both); the score
  is the mean over the target boxes. All-zero box rows are padding (neither a target
  nor a prediction); with no box on either side, the score is 0.

The built-in operators read one output: a model returning a list, tuple or dict needs a
callable operator that picks one (the model's outputs reach it untouched). Because they
weigh the outputs by the target row, an all-zero row scores 0 whatever the input: a
:class:`~sobol_tf.errors.SobolTFWarning` names those inputs. NaN or infinite targets
are refused.
"""
from __future__ import annotations

import enum
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from sobol_tf._utils.checks import format_ids, one_output
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn
from sobol_tf.operators.detection import (  # noqa: F401 (sobol_tf.operators' names)
    EPSILON,
    OBJECT_DETECTION,
    OBJECT_DETECTION_BOX_CLASS,
    OBJECT_DETECTION_BOX_POSITION,
    OBJECT_DETECTION_BOX_PROBA,
    box_iou,
    detection_variant,
    object_detection_operator,
)

#: the names of the built-in operators (with the four OBJECT_DETECTION... names of
#: :mod:`sobol_tf.operators.detection`), in the order of :class:`sobol_tf.tasks.Tasks`,
#: whose members' values they are (this package does not import ``tasks``, which sits
#: above it and calls it)
CLASSIFICATION = "classification"
REGRESSION = "regression"
SEMANTIC_SEGMENTATION = "semantic segmentation"


def _flat_outputs(model, inputs, name):
    """The model's outputs on ``inputs`` as float32 (B, K); one output only."""
    return one_output(model(inputs), inputs, name)


def classification_operator(model: Any, inputs: Any, targets: Any) -> Any:
    """Score of the target class: sum(model(inputs) * one_hot_targets, -1)."""
    return tf.reduce_sum(_flat_outputs(model, inputs, "classification") * targets, axis=-1)


def regression_operator(model: Any, inputs: Any, targets: Any) -> Any:
    """Projection of the output on the target direction: sum(model(inputs) * targets, -1).

    Xplique's ``Tasks.REGRESSION`` (its predictions operator), not its deprecated
    ``regression_operator`` (a mean absolute error, whose gradients are zeros).
    """
    return tf.reduce_sum(_flat_outputs(model, inputs, "regression") * targets, axis=-1)


#: Xplique's name of the classification operator.
predictions_operator = classification_operator


def semantic_segmentation_operator(model: Any, inputs: Any, targets: Any) -> Any:
    """Mean of ``model(inputs) * targets`` over the non-zero entries of ``targets``.

    Args:
        model: maps inputs (B, H, W, C_in) to per-pixel class scores (B, H, W, C) (a
            softmax output: the scores should be positive).
        inputs: (B, H, W, C_in).
        targets: masks (B, H, W, C) shaped like the outputs: non-zero on the zone and
            class explained (1, or -1 on an outer border, see
            :func:`sobol_tf.utils_functions.segmentation.get_in_out_border`).

    Returns:
        (B,) float32 scores.
    """
    outputs = _flat_outputs(model, inputs, SEMANTIC_SEGMENTATION)
    masks = tf.reshape(tf.cast(targets, tf.float32), (tf.shape(targets)[0], -1))
    counts = tf.reduce_sum(tf.cast(tf.not_equal(masks, 0), tf.float32), axis=-1)
    return tf.reduce_sum(outputs * masks, axis=-1) / counts


#: how a built-in operator reads its targets: rows (N,) or (N, K), masks like the
#: outputs, boxes (N, 4 + 1 + K) or (N, nb_boxes, 4 + 1 + K).
ROWS, MASKS, BOXES = "rows", "masks", "boxes"


class Operator:
    """A resolved operator.

    Attributes:
        name: a task's name ('classification', 'object detection', ...) or the
            callable's name.
        fn: g(model, inputs, targets) -> (batch,) scores.
        builtin: True for the library's operators (targets checked against the output).
        ids_as_classes: 1-D integer targets are class ids, one-hot encoded.
        targets_kind: for a built-in operator, how it reads targets: :data:`ROWS`,
            :data:`MASKS` or :data:`BOXES`; None for a callable (any shape passes).
    """

    def __init__(self, name: str, fn: Callable[[Any, Any, Any], Any], builtin: bool,
                 ids_as_classes: bool, targets_kind: Optional[str] = None) -> None:
        self.name = name
        self.fn = fn
        self.builtin = builtin
        self.ids_as_classes = ids_as_classes
        self.targets_kind = targets_kind if builtin else None

    def __call__(self, model: Any, inputs: Any, targets: Any) -> Any:
        return self.fn(model, inputs, targets)

    def __repr__(self):
        return f"Operator({self.name!r})"


_FUNCTIONS = {
    CLASSIFICATION: (classification_operator, ROWS),
    REGRESSION: (regression_operator, ROWS),
    SEMANTIC_SEGMENTATION: (semantic_segmentation_operator, MASKS),
    OBJECT_DETECTION: (object_detection_operator, BOXES),
    OBJECT_DETECTION_BOX_POSITION: (detection_variant(False, False), BOXES),
    OBJECT_DETECTION_BOX_PROBA: (detection_variant(True, False), BOXES),
    OBJECT_DETECTION_BOX_CLASS: (detection_variant(False, True), BOXES),
}

#: the built-in operators, by task name
OPERATORS = {
    name: Operator(name, function, True, name == CLASSIFICATION, kind)
    for name, (function, kind) in _FUNCTIONS.items()
}


def get(identifier: Any) -> Operator:
    """Resolve an operator from None (classification), a :class:`~sobol_tf.tasks.Tasks`
    member, a task name ('semantic segmentation', ...) or a callable g(model, inputs,
    targets). Xplique's ``get_operator`` (an alias).

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: none of these.
    """
    if identifier is None:
        return OPERATORS[CLASSIFICATION]
    if isinstance(identifier, Operator):
        return identifier
    if isinstance(identifier, enum.Enum) and identifier.value in OPERATORS:
        return OPERATORS[identifier.value]  # a sobol_tf.Tasks member (its value: the name)
    if isinstance(identifier, str):
        if identifier.lower() in OPERATORS:
            return OPERATORS[identifier.lower()]
        raise InvalidArgumentError(
            f"operator must be one of {list(OPERATORS)} (or a callable g(model, inputs, "
            f"targets)), got {identifier!r}.")
    if callable(identifier):
        name = getattr(identifier, "__name__", type(identifier).__name__)
        return Operator(name, identifier, False, True)
    raise InvalidTypeError(
        f"operator must be None, a sobol_tf.Tasks member, one of {sorted(OPERATORS)} or a "
        f"callable g(model, inputs, targets), got {type(identifier).__name__}."
    )


#: Xplique's name of :func:`get`.
get_operator = get


def needs_outputs(targets: Any, operator: Operator) -> bool:
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


def _task_targets(targets, outputs, operator):
    """Checks of the targets of the segmentation and detection operators (numpy)."""
    task = operator.name
    if targets is None:
        what = ("masks (N, H, W, C) shaped like the model's outputs" if
                operator.targets_kind == MASKS else
                "boxes (N, 4 + 1 + nb_classes) or (N, nb_boxes, 4 + 1 + nb_classes)")
        raise InvalidArgumentError(f"targets is required with operator={task!r}: {what}.")
    rows = targets.reshape(len(targets), -1)
    per_input = outputs.reshape(len(outputs), -1).shape[1] if outputs is not None else None
    if operator.targets_kind == MASKS:
        if targets.ndim < 2 or (outputs is not None and (
                rows.shape[1] != per_input
                or (np.ndim(outputs) > 2 and targets.shape[1:] != np.shape(outputs)[1:]))):
            raise InvalidArgumentError(
                f"targets of operator={task!r} are masks shaped like the model's outputs "
                f"(N, H, W, C), got targets of shape {targets.shape} for outputs of shape "
                f"{np.shape(outputs)}; build them with "
                "sobol_tf.utils_functions.segmentation (e.g. get_class_zone).")
        empty = np.flatnonzero(~np.any(rows != 0, axis=1))
        if empty.size:
            raise InvalidArgumentError(
                f"the target mask of {format_ids(empty)} is all zeros: operator={task!r} "
                "averages the outputs over the mask's non-zero entries, so it needs at "
                "least one (the zone and class explained).")
        return
    if targets.ndim not in (2, 3):
        raise InvalidArgumentError(
            f"targets of operator={task!r} must have rank 2, boxes (N, 4 + 1 + "
            "nb_classes), or rank 3, (N, nb_boxes, 4 + 1 + nb_classes), got shape "
            f"{targets.shape}.")
    width = targets.shape[-1]
    if width < 5:
        raise InvalidArgumentError(
            f"targets of operator={task!r} are boxes of width 4 + 1 + nb_classes "
            "(x1, y1, x2, y2, detection probability, class scores), got width "
            f"{width} (shape {targets.shape}).")
    model_width = np.shape(outputs)[-1] if np.ndim(outputs) == 3 else per_input
    if outputs is not None and model_width % width:
        raise InvalidArgumentError(
            f"targets are boxes of width {width} but the model's outputs (shape "
            f"{np.shape(outputs)}) are not boxes of that width; operator={task!r} needs "
            "targets of the model's box format (B, nb_boxes, 4 + 1 + nb_classes).")
    empty = np.flatnonzero(~np.any(rows != 0, axis=1))
    if empty.size:
        warn(f"the target boxes of {format_ids(empty)} are all zeros: all-zero rows are "
             f"padding for operator={task!r}, so with no target box the score of that "
             "input is 0 whatever the input and its map is all zeros.")


def prepare_targets(targets: Any, outputs: Any, operator: Operator) -> Any:
    """Turn raw targets into a float32 tensor matching the model's outputs.

    Args:
        targets: numpy (N,) or (N, K), or None (explain the predicted class); for the
            segmentation operator masks (N, H, W, C) shaped like the outputs; for the
            detection operators boxes (N, 4 + 1 + K) or (N, nb_boxes, 4 + 1 + K); for a
            callable operator, any shape (rows (N, ...) passed through as given).
        outputs: the model's outputs on the clean inputs, (N, ...); may be None when
            :func:`needs_outputs` says they are not needed.
        operator: a resolved :class:`Operator`.

    Returns:
        float32 tf.Tensor (N, K) (classification, regression, class ids for a
        callable), or of the targets' shape (the other tasks, rows for a callable).

    Raises:
        InvalidArgumentError: class ids out of range or not integers, a target width that
            differs from the model's output width (classification, regression), targets
            of another rank than the operator reads, NaN or infinite targets, no targets
            for an operator that cannot take the predicted class; segmentation masks of
            another shape than the outputs or all zeros (no zone); boxes narrower than
            4 + 1 + 1 or of another width than the model's boxes.

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
    if operator.targets_kind in (MASKS, BOXES):
        _task_targets(targets, outputs, operator)
        return tf.constant(targets, dtype=tf.float32)
    if operator.builtin and targets is not None and targets.ndim not in (1, 2):
        raise InvalidArgumentError(
            f"targets of operator={operator.name!r} must be class ids of shape (N,) or "
            f"one-hot / score vectors of shape (N, K), got shape {targets.shape}; masks "
            "and boxes need operator='semantic segmentation' or 'object detection'.")
    if outputs is None:
        return tf.constant(targets, dtype=tf.float32)
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    nb_outputs = outputs.shape[1]
    if targets is None:
        if not operator.ids_as_classes:
            raise InvalidArgumentError(
                f"targets is required with operator={operator.name!r}: the rows (N, K) "
                "the operator weighs the outputs with (e.g. np.ones((N, 1)) to explain "
                "the output of a model with one output)."
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
