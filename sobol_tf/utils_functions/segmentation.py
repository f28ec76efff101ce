"""Targets for ``operator='semantic segmentation'``: masks (H, W, C) shaped like one
output of the model, non-zero only on the zone and the class explained.

Each function takes the predictions (or a mask) of ONE image, (H, W, C) with C classes,
as a numpy array or a tensor, and returns a float32 numpy array (H, W, C); stack them
(``np.stack``) into targets (N, H, W, C). Zones are 8-connected (pixels touching by a
side or a corner), as in Xplique.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from sobol_tf.errors import InvalidArgumentError

#: pixels touching by a side or a corner are neighbours
_EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def _one_image(array, name):
    array = np.asarray(array)
    if array.ndim != 3:
        raise InvalidArgumentError(
            f"{name} must be the predictions of one image (H, W, C), got shape "
            f"{array.shape}; call the function once per image.")
    return array


def _class_mask(shape, class_id, zone):
    """A float32 (H, W, C) array: ``zone`` on channel ``class_id``, zeros elsewhere."""
    mask = np.zeros(shape, np.float32)
    mask[..., class_id] = zone
    return mask


def _components(zone):
    """Labels (H, W) of the 8-connected components of the boolean ``zone`` (0: outside)."""
    from scipy import ndimage  # scipy is a dependency; imported here to keep imports light

    return ndimage.label(zone, structure=_EIGHT_NEIGHBOURS)[0]


def get_class_zone(predictions: Any, class_id: int) -> Any:
    """The zone where ``class_id`` is the predicted class (argmax over the classes).

    Args:
        predictions: one image's predictions (H, W, C), e.g. softmax scores.
        class_id: the class explained, in [0, C).

    Returns:
        float32 (H, W, C): 1 on channel ``class_id`` where it is the argmax, 0 elsewhere.

    Raises:
        InvalidArgumentError: predictions not (H, W, C), ``class_id`` out of range or
            predicted nowhere (the mask would be empty).
    """
    predictions = _one_image(predictions, "predictions")
    nb_classes = predictions.shape[-1]
    if not 0 <= int(class_id) < nb_classes:
        raise InvalidArgumentError(
            f"class_id must lie in [0, {nb_classes}), got {class_id!r}.")
    zone = np.argmax(predictions, axis=-1) == int(class_id)
    if not zone.any():
        raise InvalidArgumentError(
            f"class_id {class_id} is the predicted class of no pixel; its zone is empty.")
    return _class_mask(predictions.shape, int(class_id), zone)


def get_connected_zone(predictions: Any, coordinates: Tuple[int, int]) -> Any:
    """The connected zone of the class predicted at ``coordinates``, around it.

    Args:
        predictions: one image's predictions (H, W, C).
        coordinates: (row, column) of a pixel in the zone explained.

    Returns:
        float32 (H, W, C): 1 on the channel of the class predicted at ``coordinates``,
        on the 8-connected pixels of that predicted class that reach ``coordinates``.

    Raises:
        InvalidArgumentError: predictions not (H, W, C), coordinates outside the image.
    """
    predictions = _one_image(predictions, "predictions")
    height, width = predictions.shape[:2]
    row, column = (int(c) for c in coordinates)
    if not (0 <= row < height and 0 <= column < width):
        raise InvalidArgumentError(
            f"coordinates must be (row, column) inside the image of {height}x{width}, got "
            f"{tuple(coordinates)!r}.")
    labels = np.argmax(predictions, axis=-1)
    class_id = int(labels[row, column])
    components = _components(labels == class_id)
    return _class_mask(predictions.shape, class_id, components == components[row, column])


def list_class_connected_zones(predictions: Any, class_id: int,
                               zone_minimum_size: int = 100) -> List[Any]:
    """Every connected zone of ``class_id`` larger than ``zone_minimum_size`` pixels.

    Args:
        predictions: one image's predictions (H, W, C).
        class_id: the class, in [0, C).
        zone_minimum_size: zones of this many pixels or fewer are left out (Xplique's
            default, 100).

    Returns:
        list of float32 (H, W, C) masks, as :func:`get_connected_zone`, in the order of
        their first pixel (row by row); empty when no zone is large enough.

    Raises:
        InvalidArgumentError: predictions not (H, W, C), ``class_id`` out of range.
    """
    predictions = _one_image(predictions, "predictions")
    nb_classes = predictions.shape[-1]
    if not 0 <= int(class_id) < nb_classes:
        raise InvalidArgumentError(
            f"class_id must lie in [0, {nb_classes}), got {class_id!r}.")
    components = _components(np.argmax(predictions, axis=-1) == int(class_id))
    sizes = np.bincount(components.ravel())
    return [_class_mask(predictions.shape, int(class_id), components == label)
            for label in range(1, len(sizes)) if sizes[label] > zone_minimum_size]


def get_in_out_border(class_zone_mask: Any) -> Any:
    """The border of a zone: 1 on its pixels that touch the outside, -1 on the outside
    pixels that touch it (8-neighbours; the image's edge is not a border).

    Args:
        class_zone_mask: a zone (H, W, C), non-zero on one channel (the class), e.g. from
            :func:`get_class_zone` or :func:`get_connected_zone`.

    Returns:
        float32 (H, W, C): the border on the class's channel, 0 elsewhere. Explaining it
        explains what raises the class inside the zone's edge and lowers it outside.

    Raises:
        InvalidArgumentError: a mask not (H, W, C), or all zeros.

    Differs from Xplique on degenerate zones only: a one-pixel zone (or a one-pixel
    hole) is its own border here; Xplique leaves it out.
    """
    mask = _one_image(class_zone_mask, "class_zone_mask")
    per_channel = np.sum(mask != 0, axis=(0, 1))
    if not per_channel.any():
        raise InvalidArgumentError("class_zone_mask is all zeros; give a non-empty zone.")
    class_id = int(np.argmax(per_channel))
    zone = mask[..., class_id] != 0
    padded = np.pad(zone, 1, mode="edge")  # the edge of the image is not a border
    height, width = zone.shape
    inside_neighbour = np.zeros_like(zone)
    outside_neighbour = np.zeros_like(zone)
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            if d_row or d_col:
                shifted = padded[1 + d_row:1 + d_row + height, 1 + d_col:1 + d_col + width]
                inside_neighbour |= shifted
                outside_neighbour |= ~shifted
    border = (zone & outside_neighbour).astype(np.float32) - (~zone & inside_neighbour)
    return _class_mask(mask.shape, class_id, border)


def get_common_border(border_mask_1: Any, border_mask_2: Any) -> Any:
    """The part two borders share: both borders (summed) where both are non-zero.

    Args:
        border_mask_1, border_mask_2: borders (H, W, C) from :func:`get_in_out_border`,
            of two zones (usually of two classes).

    Returns:
        float32 (H, W, C): on the pixels where both borders are non-zero (on any
        channel), ``border_mask_1 + border_mask_2``; 0 elsewhere.

    Raises:
        InvalidArgumentError: masks not (H, W, C) of one shape, or no common pixel.
    """
    first = _one_image(border_mask_1, "border_mask_1").astype(np.float32)
    second = _one_image(border_mask_2, "border_mask_2").astype(np.float32)
    if first.shape != second.shape:
        raise InvalidArgumentError(
            f"border_mask_1 and border_mask_2 must have one shape, got {first.shape} and "
            f"{second.shape}.")
    common = np.any(first != 0, axis=-1) & np.any(second != 0, axis=-1)
    if not common.any():
        raise InvalidArgumentError("the two borders have no common border pixel.")
    return (first + second) * common[..., None]
