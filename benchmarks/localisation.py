"""Ground-truth localisation scores of attribution maps: pointing game, share in box.

Both take maps (N, H, W), (N, H, W, 1) or (N, H, W, C) (channels averaged, sign kept, as
the Deletion/Insertion metrics rank pixels) and boxes (N, 4) as (top, left, bottom,
right), bottom and right exclusive, and return one score per map, in [0, 1], higher
better. They live with the benchmark, not in ``sobol_tf.metrics``: they need boxes,
which the library's model-only metrics have no notion of.
"""
import numpy as np

from cluttered_digits import box_masks


def _as_maps(maps):
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 4:
        maps = maps.mean(axis=-1)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W) or (N, H, W, C), got {maps.shape}.")
    return maps


def pointing_game(maps, boxes):
    """Whether each map's maximum falls inside its box (Zhang et al., ECCV 2016).

    No tolerance margin around the box. When several pixels share the maximum (flat
    maps: occlusion patches, a constant map), the score is the share of them inside the
    box: the chance of a hit when ties are broken at random (a constant map scores the
    box's share of the image). Without ties the score is 1 (hit) or 0 (miss).

    Ref. J. Zhang, Z. Lin, J. Brandt, X. Shen, S. Sclaroff. Top-down Neural Attention by
    Excitation Backprop. ECCV 2016. https://arxiv.org/abs/1608.00507

    Args:
        maps: (N, H, W) or (N, H, W, C) attributions.
        boxes: (N, 4) integer boxes (top, left, bottom, right), bottom/right exclusive.

    Returns:
        float64 numpy (N,) in [0, 1].
    """
    maps = _as_maps(maps)
    inside = box_masks(boxes, *maps.shape[1:])
    at_max = maps == maps.max(axis=(1, 2), keepdims=True)
    return (at_max & inside).sum(axis=(1, 2)) / at_max.sum(axis=(1, 2))


def share_in_box(maps, boxes):
    """Share of each map's positive attribution that lies inside its box.

    sum over the box of max(map, 0) / sum over the image of max(map, 0); a map with no
    positive attribution scores 0 (it credits nothing, inside the box or out). A
    uniform map scores the box's share of the image.

    Args:
        maps: (N, H, W) or (N, H, W, C) attributions.
        boxes: (N, 4) integer boxes (top, left, bottom, right), bottom/right exclusive.

    Returns:
        float64 numpy (N,) in [0, 1].
    """
    positive = np.maximum(_as_maps(maps), 0.0)
    inside = box_masks(boxes, *positive.shape[1:])
    total = positive.sum(axis=(1, 2))
    in_box = (positive * inside).sum(axis=(1, 2))
    return np.where(total > 0, in_box / np.where(total > 0, total, 1.0), 0.0)
