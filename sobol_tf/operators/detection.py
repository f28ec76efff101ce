"""The object detection operators (DRise, Petsiuk et al. 2021): each target box is matched
with its best predicted box, IoU x detection probability x cosine similarity of the class
scores (the three ``box ...`` variants leave out the probability, the classes or both).
Registered in :data:`sobol_tf.operators.OPERATORS` under the names below.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from sobol_tf._utils.checks import one_output
from sobol_tf.errors import InvalidArgumentError

#: added to the denominators of the IoU and of the cosine similarity of the class scores
#: (as Xplique), so that empty boxes and all-zero class scores score 0, not NaN.
EPSILON = 1e-4
#: the names of the detection tasks (values of :class:`sobol_tf.tasks.Tasks`)
OBJECT_DETECTION = "object detection"
OBJECT_DETECTION_BOX_POSITION = "object detection box position"
OBJECT_DETECTION_BOX_PROBA = "object detection box proba"
OBJECT_DETECTION_BOX_CLASS = "object detection box class"


def box_iou(boxes_a: Any, boxes_b: Any) -> Any:
    """IoU of boxes (..., 4) as (x1, y1, x2, y2), x1 < x2 and y1 < y2, broadcast over
    the leading axes: (...,) float32 tensor. Disjoint boxes score 0."""
    left = tf.maximum(boxes_a[..., 0], boxes_b[..., 0])
    low = tf.maximum(boxes_a[..., 1], boxes_b[..., 1])
    right = tf.minimum(boxes_a[..., 2], boxes_b[..., 2])
    high = tf.minimum(boxes_a[..., 3], boxes_b[..., 3])
    intersection = tf.maximum(right - left, 0.0) * tf.maximum(high - low, 0.0)

    def area(boxes):
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])

    return intersection / (area(boxes_a) + area(boxes_b) - intersection + EPSILON)


def _box_outputs(model, inputs, width, name):
    """The model's boxes on ``inputs`` as float32 (B, nb_boxes, width)."""
    outputs = model(inputs)
    if isinstance(outputs, (list, tuple, dict)):
        one_output(outputs, tf.range(tf.shape(inputs)[0]), name)  # raises, saying why
    outputs = tf.cast(outputs, tf.float32)
    if outputs.shape.rank == 2:
        outputs = outputs[:, None, :]
    if outputs.shape.rank != 3 or (outputs.shape[-1] is not None
                                   and width is not None and outputs.shape[-1] != width):
        raise InvalidArgumentError(
            f"operator={name!r} needs a model returning boxes (B, nb_boxes, 4 + 1 + "
            f"nb_classes) of the targets' width {width}, got outputs of shape "
            f"{tuple(outputs.shape)}.")
    return outputs


def object_detection_operator(model: Any, inputs: Any, targets: Any,
                              intersection_score_fn: Callable[[Any, Any], Any] = box_iou,
                              include_detection_probability: bool = True,
                              include_classification_score: bool = True) -> Any:
    """DRise score of the target boxes (Petsiuk et al., 2021), batched over inputs.

    For each target box, every predicted box scores
    ``intersection_score_fn(target, box) * probability * cosine(target classes, box
    classes)`` (the last two factors left out when their flag is False); the target's
    score is that of its best match, and the input's score is the mean over its target
    boxes. All-zero rows (targets or predictions) are padding; an input with no target
    box or no predicted box scores 0.

    Args:
        model: maps inputs (B, H, W, C) to boxes (B, nb_boxes, 4 + 1 + K) (no NMS).
        inputs: (B, H, W, C).
        targets: (B, 4 + 1 + K), one box per input, or (B, nb_targets, 4 + 1 + K).
        intersection_score_fn: f(boxes_a, boxes_b) -> scores for coordinates (..., 4),
            broadcast over the leading axes (here (B, nb_targets, 1, 4) against (B, 1,
            nb_boxes, 4)). Default: :func:`box_iou`.
        include_detection_probability: multiply by the predicted box's probability.
        include_classification_score: multiply by the cosine similarity of the classes.

    Returns:
        (B,) float32 scores.
    """
    name = OBJECT_DETECTION
    targets = tf.cast(targets, tf.float32)
    width = targets.shape[-1]
    references = tf.reshape(targets, (tf.shape(targets)[0], -1, tf.shape(targets)[-1]))
    boxes = _box_outputs(model, inputs, width, name)
    real_references = tf.reduce_any(tf.not_equal(references, 0), axis=-1)  # (B, R)
    real_boxes = tf.reduce_any(tf.not_equal(boxes, 0), axis=-1)  # (B, P)
    pairs = tf.cast(intersection_score_fn(references[:, :, None, :4], boxes[:, None, :, :4]),
                    tf.float32)  # (B, R, P)
    if include_detection_probability:
        pairs = pairs * boxes[:, None, :, 4]
    if include_classification_score:
        reference_classes, box_classes = references[..., 5:], boxes[..., 5:]
        products = tf.einsum("brk,bpk->brp", reference_classes, box_classes)
        norms = (tf.norm(reference_classes, axis=-1)[:, :, None]
                 * tf.norm(box_classes, axis=-1)[:, None, :])
        pairs = pairs * products / (norms + EPSILON)
    lowest = tf.fill(tf.shape(pairs), tf.constant(-np.inf, tf.float32))
    best = tf.reduce_max(tf.where(real_boxes[:, None, :], pairs, lowest), axis=-1)  # (B, R)
    counted = tf.logical_and(real_references,
                             tf.reduce_any(real_boxes, axis=-1, keepdims=True))
    best = tf.where(counted, best, tf.zeros_like(best))
    nb_references = tf.reduce_sum(tf.cast(real_references, tf.float32), axis=-1)
    return tf.reduce_sum(best, axis=-1) / tf.maximum(nb_references, 1.0)


def detection_variant(include_detection_probability: bool,
                      include_classification_score: bool) -> Callable[[Any, Any, Any], Any]:
    """The detection operator with or without the probability and the class scores."""
    def operator(model, inputs, targets):
        return object_detection_operator(
            model, inputs, targets,
            include_detection_probability=include_detection_probability,
            include_classification_score=include_classification_score)

    return operator
