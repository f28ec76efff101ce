"""Targets for ``operator='object detection'`` (and its 'box ...' variants): boxes
(x1, y1, x2, y2, detection probability, K class scores), with x1 < x2 and y1 < y2.

numpy only (arrays or tensors in, float32 numpy arrays out). The conversions keep any
column after the 4 coordinates as it is, and broadcast over leading axes, so they apply
to (nb_boxes, 4 + ...) as well as (N, nb_boxes, 4 + ...). The names follow Xplique's
box manager (``box_cxcywh_to_xyxy``, ``normalize_boxes`` ...); sizes are (width, height).
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from sobol_tf.errors import InvalidArgumentError

#: as the operator's (sobol_tf.operators.EPSILON): empty boxes have IoU 0, not NaN
EPSILON = 1e-4


def _boxes(boxes, name="boxes"):
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.ndim == 0 or boxes.shape[-1] < 4:
        raise InvalidArgumentError(
            f"{name} must have at least 4 columns (box coordinates) on the last axis, got "
            f"shape {boxes.shape}.")
    return boxes


def box_iou(boxes_a: Any, boxes_b: Any) -> Any:
    """IoU of (x1, y1, x2, y2) boxes (..., 4+), broadcast over the leading axes: the
    score the detection operators match boxes with. Disjoint boxes score 0.

    Returns:
        float32 array (...,).
    """
    a, b = _boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b")
    width = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    height = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return intersection / (area_a + area_b - intersection + EPSILON)


def format_objects(predictions: Any) -> Any:
    """Split boxes (..., 4 + 1 + K) into coordinates (..., 4), detection probabilities
    (..., 1) and class scores (..., K).

    Raises:
        InvalidArgumentError: fewer than 5 columns.
    """
    predictions = _boxes(predictions, "predictions")
    if predictions.shape[-1] < 5:
        raise InvalidArgumentError(
            "predictions must be boxes (..., 4 + 1 + nb_classes), got shape "
            f"{predictions.shape}.")
    return predictions[..., :4], predictions[..., 4:5], predictions[..., 5:]


def format_box_targets(boxes: Any, scores: Any, probas: Any) -> Any:
    """Targets for the detection operators: ``[boxes, scores, probas]`` side by side.

    Args:
        boxes: (..., 4) coordinates (x1, y1, x2, y2) (convert other formats first).
        scores: (...,) or (..., 1) detection probabilities.
        probas: (..., K) class scores (soft or one-hot).

    Returns:
        float32 (..., 4 + 1 + K): e.g. (nb_boxes, 4 + 1 + K) for one image's boxes to
        explain one by one (with the image repeated nb_boxes times), or stacked into
        (N, nb_boxes, 4 + 1 + K) to explain several boxes of each input together.

    Raises:
        InvalidArgumentError: shapes that do not line up.
    """
    boxes = _boxes(boxes)
    scores = np.asarray(scores, np.float32)
    probas = np.asarray(probas, np.float32)
    if scores.shape == boxes.shape[:-1]:
        scores = scores[..., None]
    if boxes.shape[-1] != 4 or scores.shape != boxes.shape[:-1] + (1,) or (
            probas.shape[:-1] != boxes.shape[:-1]):
        raise InvalidArgumentError(
            f"boxes (..., 4), scores (...,) and probas (..., K) must line up, got shapes "
            f"{boxes.shape}, {np.shape(scores)} and {probas.shape}.")
    return np.concatenate([boxes, scores, probas], axis=-1)


def _with_coordinates(boxes, coordinates):
    return np.concatenate([np.stack(coordinates, axis=-1), boxes[..., 4:]], axis=-1)


def box_cxcywh_to_xyxy(boxes: Any) -> Any:
    """(centre x, centre y, width, height, ...) -> (x1, y1, x2, y2, ...)."""
    boxes = _boxes(boxes)
    x, y, w, h = (boxes[..., i] for i in range(4))
    return _with_coordinates(boxes, (x - w / 2, y - h / 2, x + w / 2, y + h / 2))


def box_xywh_to_xyxy(boxes: Any) -> Any:
    """(x1, y1, width, height, ...) -> (x1, y1, x2, y2, ...)."""
    boxes = _boxes(boxes)
    x, y, w, h = (boxes[..., i] for i in range(4))
    return _with_coordinates(boxes, (x, y, x + w, y + h))


def box_xyxy_to_cxcywh(boxes: Any) -> Any:
    """(x1, y1, x2, y2, ...) -> (centre x, centre y, width, height, ...)."""
    boxes = _boxes(boxes)
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _with_coordinates(boxes, ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))


def box_xyxy_to_xywh(boxes: Any) -> Any:
    """(x1, y1, x2, y2, ...) -> (x1, y1, width, height, ...)."""
    boxes = _boxes(boxes)
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return _with_coordinates(boxes, (x1, y1, x2 - x1, y2 - y1))


def _scale(boxes, image_size, name):
    size = np.asarray(image_size, np.float32).reshape(-1)
    if size.size != 2 or np.any(size <= 0):
        raise InvalidArgumentError(
            f"{name} must be (width, height) > 0, got {image_size!r}.")
    return np.concatenate([np.tile(size, 2), np.ones(boxes.shape[-1] - 4, np.float32)])


def normalize_boxes(raw_boxes: Any, image_source_size: Tuple[int, int]) -> Any:
    """Pixel coordinates -> coordinates in [0, 1]: x / width, y / height.

    Args:
        raw_boxes: (..., 4+) boxes in pixels; columns after the 4th are kept.
        image_source_size: (width, height) of the image.

    Raises:
        InvalidArgumentError: a size that is not two positive numbers.
    """
    boxes = _boxes(raw_boxes, "raw_boxes")
    return boxes / _scale(boxes, image_source_size, "image_source_size")


def denormalize_boxes(boxes: Any, size: Tuple[int, int]) -> Any:
    """Coordinates in [0, 1] -> pixels: x * width, y * height; ``size`` is (width,
    height). The inverse of :func:`normalize_boxes`."""
    boxes = _boxes(boxes)
    return boxes * _scale(boxes, size, "size")
