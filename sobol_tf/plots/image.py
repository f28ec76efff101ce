"""Attribution maps beside and over their images, with a colour bar (matplotlib imported
lazily)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import textwrap

import numpy as np
import tensorflow as tf

from sobol_tf._utils import to_numpy
from sobol_tf.io.images import LUMA_WEIGHTS
from sobol_tf.errors import InvalidArgumentError

DEFAULT_CMAP = "jet"
DEFAULT_DIVERGING_CMAP = "RdBu_r"
PAIR_GAP = 0.15        # width of the gap between (input, map) pairs, in panels
COLORBAR_INCHES = 5.0  # length of the colour bar when the figure is wider
BACKGROUND_BRIGHTNESS = 0.7  # the input under a map is dimmed so that colours stand out
CAPTION_POINTS = 8     # font size of the colour bar's caption
CAPTION_CHAR_INCHES = 0.6 * CAPTION_POINTS / 72   # a generous width of one character
CAPTION_LINE_INCHES = 1.25 * CAPTION_POINTS / 72  # the height of one caption line


def _wrap_caption(label, width_inches):
    """The caption's lines wrapped to fit ``width_inches`` (its own line breaks kept)."""
    chars = max(12, int(width_inches / CAPTION_CHAR_INCHES))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if line.strip() else line
                     for line in str(label).split("\n"))


def _normalise_heatmap(heatmap, clip_percentile, absolute_value, diverging):
    """(H, W, C) -> (H, W): channels averaged (sign kept), optionally |.|, clipped to the
    [p, 100 - p] percentiles, then scaled to [0, 1] (min-max) or, diverging, divided by
    the largest |value| so that 0 stays 0 and the map lies in [-1, 1]."""
    heatmap = heatmap.mean(axis=-1)
    if absolute_value:
        heatmap = np.abs(heatmap)
    if clip_percentile:
        low, high = np.percentile(heatmap, [clip_percentile, 100 - clip_percentile])
        heatmap = np.clip(heatmap, low, high)
    if diverging:
        scale = np.abs(heatmap).max()
        return heatmap / scale if scale > 0 else np.zeros_like(heatmap)
    spread = heatmap.max() - heatmap.min()
    return (heatmap - heatmap.min()) / spread if spread > 0 else np.zeros_like(heatmap)


def _displayable(image):
    """(H, W[, C]) -> (H, W) or (H, W, 3) min-max scaled to [0, 1] (alpha channel dropped)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3:
        image = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
    spread = image.max() - image.min()
    return (image - image.min()) / spread if spread > 0 else np.zeros_like(image)


def _default_label(clip_percentile, diverging, overlaid):
    """What the colour bar's numbers are: how each map was scaled, what the ends mean."""
    clipped = (f" after clipping to its {clip_percentile:g}-{100 - clip_percentile:g} "
               "percentiles" if clip_percentile else "")
    if diverging:
        return (f"attribution / largest |attribution| of its map{clipped}\n"
                "positive: supports the explained score, negative: goes against it"
                + ("; 0 is see-through" if overlaid else ""))
    return (f"attribution, normalised per map{clipped}\n0 = lowest, 1 = highest"
            + (" (low values see-through over the input)" if overlaid else ""))


def _check_arguments(maps, images, titles, alpha, clip_percentile, absolute_value,
                     diverging, cols, img_size):
    if maps.ndim != 4:
        raise InvalidArgumentError(
            f"explanations must have shape (N, H, W) or (N, H, W, C), got {maps.shape}."
        )
    if maps.shape[0] == 0:
        raise InvalidArgumentError(
            f"explanations holds no map (shape {maps.shape}): give at least one map to plot."
        )
    finite = np.isfinite(maps)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=(1, 2, 3)))
        raise InvalidArgumentError(
            f"explanations contain {np.size(finite) - np.count_nonzero(finite)} non-finite "
            f"values (NaN or inf) in map(s) {bad.tolist()}: they cannot be scaled for "
            "display; look at what produced them, or replace them (np.nan_to_num)."
        )
    if images is not None:
        if len(images) != len(maps):
            raise InvalidArgumentError(
                f"images has {len(images)} items but explanations has {len(maps)}: "
                "give one image per explanation (or images=None)."
            )
        if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3, 4))):
            raise InvalidArgumentError(
                "images must have shape (N, H, W) or (N, H, W, C) with C in 1 (grayscale), "
                f"3 (RGB) or 4 (RGBA), got {images.shape}."
            )
    if titles is not None and len(titles) != len(maps):
        raise InvalidArgumentError(
            f"titles has {len(titles)} items, expected {len(maps)} (one per explanation)."
        )
    if not 0 <= alpha <= 1:
        raise InvalidArgumentError(f"alpha must be in [0, 1], got {alpha!r}.")
    if clip_percentile is not None and not 0 <= clip_percentile < 50:
        raise InvalidArgumentError(
            f"clip_percentile must be in [0, 50) (0 or None: no clipping), got "
            f"{clip_percentile!r}."
        )
    if diverging and absolute_value:
        raise InvalidArgumentError(
            "diverging=True shows the sign of the attributions, absolute_value=True removes "
            "it: choose one."
        )
    if int(cols) < 1 or img_size <= 0:
        raise InvalidArgumentError(
            f"cols must be >= 1 and img_size > 0, got cols={cols!r}, img_size={img_size!r}."
        )


def plot_attributions(explanations: Any, images: Any = None, cmap: Any = None,
                      alpha: float = 0.7, clip_percentile: Optional[float] = 0.1,
                      absolute_value: bool = False, cols: int = 5, img_size: float = 2.0,
                      titles: Optional[Sequence[str]] = None, *, show_inputs: bool = True,
                      colorbar: bool = True, diverging: bool = False,
                      colorbar_label: Optional[str] = None, title: Optional[str] = None,
                      **plot_kwargs: Any) -> Any:
    """Draw each input, its attribution map over it, and one colour bar for all maps.

    Each map is reduced to one channel (channels averaged, sign kept), optionally made
    absolute, clipped to its ``[clip_percentile, 100 - clip_percentile]`` percentiles and
    scaled per map: to [0, 1] by default (0 = the map's lowest value, 1 = its highest), or
    to [-1, 1] by its largest absolute value with ``diverging=True`` (0 stays 0). All maps
    therefore share one scale, shown by one colour bar.

    With images, each input gets two panels side by side: the plain input (grayscale in
    gray, RGB in colour, min-max scaled for display) with its title, then the map over the
    input in gray, dimmed to 70% so that the colours stand out. The map's opacity grows with the attribution (``alpha`` times the scaled
    value, times its absolute value when diverging), so the input shows through where the
    attribution is low and the colour is strongest where it is high. Without images (or
    with ``show_inputs=False``) each input gets one panel.

    Args:
        explanations: (N, H, W), (N, H, W, 1) or (N, H, W, C) maps (numpy or tensor).
        images: optional (N, H', W'), (N, H', W', 1), (N, H', W', 3) or (N, H', W', 4)
            images (alpha channel ignored); maps are resized (bilinear) to their size.
        cmap: matplotlib colormap of the maps; default ``"jet"`` (blue = low, red = high),
            ``"RdBu_r"`` when ``diverging`` (blue = negative, red = positive).
        alpha: opacity in [0, 1] of the highest attribution over its image.
        clip_percentile: in [0, 50); clip each map to its [p, 100 - p] percentiles before
            scaling, so a few extreme pixels do not flatten the rest (0 or None: none).
        absolute_value: show |attribution| (not with ``diverging``).
        cols: number of inputs per row.
        img_size: size in inches of each panel's longer side (panels keep the images'
            aspect ratio).
        titles: optional list of N titles, drawn over the input panels (over the maps
            when there are none).
        show_inputs: with images, draw the plain input before each map (default True).
        colorbar: draw one colour bar for all maps, labelled with what the values mean.
        diverging: keep the sign: maps divided by their largest |value|, a diverging
            colormap centred on 0 (``vmin = -1``, ``vmax = 1``).
        colorbar_label: the colour bar's label (default: says how the maps are scaled);
            its lines are wrapped to the figure's width.
        title: optional title of the whole figure (say what the maps are).
        plot_kwargs: passed to ``imshow`` for the maps (e.g. ``interpolation``).

    Returns:
        The matplotlib Figure. ``figure.axes[:N]`` are the N map panels in order; each
        axis is labelled (``axis.get_label()``): ``"map i"``, ``"input i"``, ``"colorbar"``;
        unused grid cells are hidden.

    Raises:
        InvalidArgumentError: explanations of a bad rank, with no map or with NaN/inf
            values, images or titles whose length is
            not N, images with other than 1, 3 or 4 channels, alpha outside [0, 1],
            clip_percentile outside [0, 50), ``diverging`` with ``absolute_value``,
            cols < 1 or img_size <= 0.
    """
    # matplotlib: optional and heavy, imported when a figure is drawn (`import sobol_tf`
    # stays light)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    maps = to_numpy(explanations, "explanations").astype(np.float32)   # a copy
    if maps.ndim == 3:
        maps = maps[..., None]
    if images is not None:
        images = to_numpy(images, "images")
    _check_arguments(maps, images, titles, alpha, clip_percentile, absolute_value,
                     diverging, cols, img_size)
    if images is not None and tuple(maps.shape[1:3]) != tuple(images.shape[1:3]):
        maps = tf.image.resize(maps, images.shape[1:3], method="bilinear").numpy()

    cmap = cmap or (DEFAULT_DIVERGING_CMAP if diverging else DEFAULT_CMAP)
    norm = Normalize(-1.0, 1.0) if diverging else Normalize(0.0, 1.0)
    paired = images is not None and show_inputs
    per_input = 2 if paired else 1
    count = len(maps)
    cols = min(int(cols), count)
    rows = -(-count // cols)
    # with pairs, a narrow empty column between pairs groups each input with its map
    stride = per_input + 1 if paired and cols > 1 else per_input
    ratios = ([1.0] * per_input + [PAIR_GAP] * (stride - per_input)) * cols
    ratios = ratios[:len(ratios) - (stride - per_input)]
    # panels keep the images' aspect ratio, their longer side img_size inches
    aspect = maps.shape[1] / maps.shape[2]
    panel_width, panel_height = img_size * min(1.0, 1 / aspect), img_size * min(1.0, aspect)
    width = sum(ratios) * panel_width
    title_lines = max((str(text).count("\n") + 1 for text in titles), default=0) \
        if titles is not None else 0
    caption = ""
    if colorbar:   # wrapped to the figure's width, the figure made taller for its lines
        caption = _wrap_caption(
            colorbar_label if colorbar_label is not None
            else _default_label(clip_percentile, diverging, images is not None), width - 0.2)
    extra_lines = max(0, caption.count("\n") - 1)
    figure = plt.figure(figsize=(width, rows * (panel_height + 0.1 + 0.2 * title_lines)
                                 + (0.9 + CAPTION_LINE_INCHES * extra_lines) * bool(colorbar)
                                 + 0.4 * bool(title)),
                        layout="constrained")
    grid = figure.add_gridspec(rows, len(ratios), width_ratios=ratios)
    cell = lambda index, offset: grid[index // cols, (index % cols) * stride + offset]
    # map axes first, so that figure.axes[:N] are the maps whatever the layout
    map_axes = [figure.add_subplot(cell(index, per_input - 1), label=f"map {index}")
                for index in range(count)]
    input_axes = ([figure.add_subplot(cell(index, 0), label=f"input {index}")
                   for index in range(count)] if paired else [])
    for index in range(count, rows * cols):
        for offset in range(per_input):
            figure.add_subplot(cell(index, offset), label="unused").set_visible(False)

    for index, axis in enumerate(map_axes):
        heatmap = _normalise_heatmap(maps[index], clip_percentile, absolute_value, diverging)
        if images is not None:
            image = _displayable(images[index])
            if paired:
                input_axes[index].imshow(image, cmap="gray" if image.ndim == 2 else None,
                                         vmin=0, vmax=1)
            gray = image if image.ndim == 2 else image @ np.asarray(LUMA_WEIGHTS, np.float32)
            axis.imshow(gray, cmap="gray", vmin=0, vmax=1 / BACKGROUND_BRIGHTNESS)
            opacity = alpha * (np.abs(heatmap) if diverging else heatmap)
            axis.imshow(heatmap, cmap=cmap, norm=norm, alpha=opacity, **plot_kwargs)
        else:
            axis.imshow(heatmap, cmap=cmap, norm=norm, **plot_kwargs)
    for axis in map_axes + input_axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if titles is not None:
        for index, text in enumerate(titles):
            (input_axes or map_axes)[index].set_title(str(text), fontsize=9)
    if colorbar:
        bar = figure.colorbar(ScalarMappable(norm, cmap), ax=map_axes + input_axes,
                              location="bottom", shrink=min(0.9, COLORBAR_INCHES / width),
                              aspect=25, pad=0.02)
        bar.ax.set_label("colorbar")
        if diverging:
            bar.set_ticks([-1.0, 0.0, 1.0], labels=["-1\nmost against", "0", "1\nmost for"])
        else:
            bar.set_ticks([0.0, 0.5, 1.0], labels=["0\nlowest", "0.5", "1\nhighest"])
        bar.ax.tick_params(labelsize=8)
        bar.set_label(caption, fontsize=CAPTION_POINTS)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
