"""Heatmaps of attributions over their images (matplotlib imported lazily)."""
import numpy as np
import tensorflow as tf

from sobol_tf._utils import to_numpy
from sobol_tf.errors import InvalidArgumentError


def _normalise_heatmap(heatmap, clip_percentile, absolute_value):
    """Average channels (sign kept), optionally |.|, clip to percentiles, scale to [0, 1]."""
    if heatmap.ndim == 3:
        heatmap = heatmap.mean(axis=-1)
    if absolute_value:
        heatmap = np.abs(heatmap)
    if clip_percentile:
        low, high = np.percentile(heatmap, [clip_percentile, 100 - clip_percentile])
        heatmap = np.clip(heatmap, low, high)
    spread = heatmap.max() - heatmap.min()
    return (heatmap - heatmap.min()) / spread if spread > 0 else np.zeros_like(heatmap)


def _displayable(image):
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    spread = image.max() - image.min()
    return (image - image.min()) / spread if spread > 0 else np.zeros_like(image)


def plot_attributions(explanations, images=None, cmap="viridis", alpha=0.5,
                      clip_percentile=0.1, absolute_value=False, cols=5, img_size=2.0,
                      titles=None, **plot_kwargs):
    """Draw a grid of heatmaps, each over its image when images are given.

    Args:
        explanations: (N, H, W), (N, H, W, 1) or (N, H, W, C) maps (channels averaged).
        images: optional (N, H', W'[, C]) images under the heatmaps; maps are resized to
            the images' size.
        cmap: matplotlib colormap of the heatmaps.
        alpha: opacity of the heatmaps over the images.
        clip_percentile: clip each heatmap to [p, 100 - p] percentiles before scaling
            (0 or None: no clipping).
        absolute_value: show |attribution|.
        cols: number of columns of the grid.
        img_size: size in inches of each panel.
        titles: optional list of N panel titles.
        plot_kwargs: passed to ``imshow`` for the heatmaps.

    Returns:
        The matplotlib Figure (one axis per explanation, the others hidden).

    Raises:
        InvalidArgumentError: explanations and images of different lengths, bad rank.
    """
    import matplotlib.pyplot as plt

    maps = to_numpy(explanations, "explanations").astype(np.float32)
    if maps.ndim == 3:
        maps = maps[..., None]
    if maps.ndim != 4:
        raise InvalidArgumentError(
            f"explanations must have shape (N, H, W) or (N, H, W, C), got {maps.shape}."
        )
    if images is not None:
        images = to_numpy(images, "images")
        if len(images) != len(maps):
            raise InvalidArgumentError(
                f"images has {len(images)} items but explanations has {len(maps)}."
            )
        size = images.shape[1:3]
        if tuple(maps.shape[1:3]) != tuple(size):
            maps = tf.image.resize(maps, size, method="bilinear").numpy()
    if titles is not None and len(titles) != len(maps):
        raise InvalidArgumentError(f"titles has {len(titles)} items, expected {len(maps)}.")

    cols = max(1, min(int(cols), len(maps)))
    rows = -(-len(maps) // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(cols * img_size, rows * img_size),
                                squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index >= len(maps):
            axis.set_visible(False)
            continue
        heatmap = _normalise_heatmap(maps[index], clip_percentile, absolute_value)
        if images is not None:
            image = _displayable(images[index])
            axis.imshow(image, cmap="gray" if image.ndim == 2 else None)
            axis.imshow(heatmap, cmap=cmap, alpha=alpha, **plot_kwargs)
        else:
            axis.imshow(heatmap, cmap=cmap, **plot_kwargs)
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=8)
    figure.tight_layout()
    return figure
