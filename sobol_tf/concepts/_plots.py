"""Plots of CRAFT's concepts (Xplique's method names); matplotlib is imported lazily."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import colorsys
import enum
import math

import numpy as np

from sobol_tf.errors import InvalidArgumentError

#: the first concept colours (r, g, b in 0-255), then matplotlib's tab10 palette.
BASE_COLORS = ((54, 197, 240), (210, 40, 95), (236, 178, 46), (15, 157, 88), (84, 25, 85),
               (55, 35, 235))

#: the largest opacity of a concept's heatmap.
MAX_ALPHA = 0.85


class DisplayImportancesOrder(enum.Enum):
    """Order of the concepts in the plots: GLOBAL (importance on the whole fit set) or
    LOCAL (importance on one image). (Defined here, below :mod:`sobol_tf.concepts.craft`,
    which re-exports it: the plots read it and craft builds on the plots.)"""

    GLOBAL = 0
    LOCAL = 1


def _pyplot():
    import matplotlib.pyplot as plt  # noqa: PLC0415 (optional, heavy)
    return plt


def _alpha_cmap(color):
    """A colormap from transparent to opaque ``color`` (an (r, g, b) or a cmap name).

    An (r, g, b) goes from itself to its fully saturated version (same hue and
    lightness), as Xplique's."""
    plt = _pyplot()
    from matplotlib.colors import LinearSegmentedColormap, ListedColormap  # noqa: PLC0415

    if isinstance(color, str):
        base = plt.get_cmap(color)
    else:
        rgb = np.asarray(color, dtype=np.float64)
        if np.any(rgb > 1.0):
            rgb = rgb / 255.0
        hue, lightness, _ = colorsys.rgb_to_hls(*rgb)
        saturated = np.clip(colorsys.hls_to_rgb(hue, lightness, 1.0), 0, 1)
        base = LinearSegmentedColormap.from_list("", [rgb, saturated])
    table = base(np.arange(256))
    table[:, -1] = np.linspace(0.0, MAX_ALPHA, 256)
    return ListedColormap(table)


def concept_cmaps(colors: Optional[Sequence[Any]], needed: int) -> List[Any]:
    """One colormap per concept rank: ``colors`` (None: the default palette) as
    :func:`_alpha_cmap`; InvalidArgumentError when there are fewer than ``needed``."""
    if colors is None:
        colors = list(BASE_COLORS) + list(_pyplot().get_cmap("tab10").colors)
        while len(colors) < needed:  # more concepts than colours: cycle
            colors = colors + colors
    cmaps = [_alpha_cmap(color) for color in colors]
    if len(cmaps) < needed:
        raise InvalidArgumentError(
            f"{len(cmaps)} colours for {needed} concepts: give at least one per concept.")
    return cmaps


def _show(image, **kwargs):
    """imshow of ``image`` rescaled to [0, 1], without axes (one channel in gray unless
    a ``cmap`` is given, 2 channels shown as red and green, more than 4 as their
    mean)."""
    plt = _pyplot()
    image = np.array(image, dtype=np.float32)
    image = image - image.min()
    if image.max() > 0:
        image = image / image.max()
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] == 2:  # two channels: red and green
        image = np.concatenate([image, np.zeros_like(image[..., :1])], axis=-1)
    elif image.ndim == 3 and image.shape[-1] > 4:  # many channels: their mean
        image = image.mean(axis=-1)
    if image.ndim == 2:
        kwargs.setdefault("cmap", "gray")
    plt.imshow(image, **kwargs)
    plt.axis("off")


def _clip_percentile(heatmap, percentile):
    low, high = np.percentile(heatmap, [percentile, 100 - percentile])
    return np.clip(heatmap, low, high)


class CraftPlots:
    """The plots of :class:`~sobol_tf.concepts.CraftTf` (they need :meth:`fit` and the
    global :meth:`estimate_importance`)."""

    # what the class that mixes these plots in provides (CraftTf; declared for mypy)
    sensitivity: Any
    concept_attribution_maps: Callable[..., Any]
    estimate_importance: Callable[..., Any]

    def _check_sensitivity(self):
        self.check_if_fitted()
        if self.sensitivity is None:
            raise InvalidArgumentError(
                "the plots colour concepts by their global importance: call "
                "estimate_importance() (with inputs=None) first.")
        return self.sensitivity

    def _rank_cmaps(self, concept_ids):
        """The colormap of each concept id: the colour of its global rank."""
        sensitivity = self._check_sensitivity()
        ranks = np.argsort(sensitivity.most_important_concepts)
        return [sensitivity.cmaps[ranks[c]] for c in concept_ids]

    def _best_crops(self, concept_id, nb_crops):
        order = np.argsort(self.factorization.crops_u[:, concept_id])[::-1][:nb_crops]
        return self.factorization.crops[order]

    def plot_concepts_importances(self, importances: Optional[Any] = None,
                                  display_importance_order: Optional[
                                      DisplayImportancesOrder] = None,
                                  nb_most_important_concepts: Optional[int] = None,
                                  verbose: bool = False) -> None:
        """Bar chart of the concepts' importances.

        Args:
            importances: local importances (from estimate_importance(inputs)); None:
                the global ones.
            display_importance_order: DisplayImportancesOrder.GLOBAL (default) or LOCAL,
                for the title.
            nb_most_important_concepts: None: every concept, in id order; else the n
                most important, by decreasing importance.
            verbose: print each concept's importance.
        """
        plt = _pyplot()
        sensitivity = self._check_sensitivity()
        importances = sensitivity.importances if importances is None else np.asarray(
            importances)
        if nb_most_important_concepts is None:
            shown = np.arange(len(importances))
        else:
            shown = np.argsort(importances)[::-1][:nb_most_important_concepts]
        colors = [cmap(1.0) for cmap in self._rank_cmaps(shown)]
        plt.bar(range(len(shown)), importances[shown], color=colors)
        plt.xticks(range(len(shown)), labels=[str(c) for c in shown])
        local = display_importance_order == DisplayImportancesOrder.LOCAL
        plt.title(f"{'Local' if local else 'Global'} Concept Importance")
        if verbose:
            for concept in shown:
                print(f"Concept {concept} has an importance value of "
                      f"{importances[concept]:.2f}")

    def plot_concepts_crops(self, nb_crops: int = 10,
                            nb_most_important_concepts: Optional[int] = None,
                            verbose: bool = False) -> None:
        """The ``nb_crops`` crops of highest coefficient of each concept (the most
        important first; only the ``nb_most_important_concepts`` first when given)."""
        plt = _pyplot()
        sensitivity = self._check_sensitivity()
        concepts = sensitivity.most_important_concepts[:nb_most_important_concepts]
        rows = math.ceil(nb_crops / 5)
        for concept in concepts:
            if verbose:
                print(f"Concept {concept} has an importance value of "
                      f"{sensitivity.importances[concept]:.2f}")
            plt.figure(figsize=(7, 1.25 * rows))
            for i, crop in enumerate(self._best_crops(concept, nb_crops)):
                plt.subplot(rows, 5, i + 1)
                _show(crop)
            plt.show()

    def plot_concept_attribution_legend(self, nb_most_important_concepts: int = 6,
                                        border_width: int = 5) -> None:
        """The best crop of each of the most important concepts, framed in its colour
        (a frame of ``border_width`` pixels, at most an eighth of the crop's side so
        that small crops stay visible)."""
        plt = _pyplot()
        concepts = self._check_sensitivity().most_important_concepts[
            :nb_most_important_concepts]
        for i, (concept, cmap) in enumerate(zip(concepts, self._rank_cmaps(concepts))):
            plt.subplot(1, len(concepts), i + 1)
            crop = self._best_crops(concept, 1)[0]
            frame = np.zeros(crop.shape[:2])
            width = max(1, min(int(border_width), min(crop.shape[:2]) // 8))
            frame[:width], frame[-width:] = 1.0, 1.0
            frame[:, :width], frame[:, -width:] = 1.0, 1.0
            _show(crop)
            _show(frame, cmap=cmap)
            plt.title(f"{concept}", color=cmap(1.0))
        plt.show()

    def plot_concept_attribution_map(self, image: Any, most_important_concepts: Any,
                                     nb_most_important_concepts: int = 5,
                                     filter_percentile: float = 90,
                                     clip_percentile: Optional[float] = 10,
                                     alpha: float = 0.65, **plot_kwargs: Any) -> None:
        """One image with the heatmaps of the given concepts over it.

        Each concept's coefficients (:meth:`concept_attribution_maps`) are kept where
        they exceed their ``filter_percentile``-th percentile, clipped between their
        ``clip_percentile`` and ``100 - clip_percentile`` percentiles (None or 0: no
        clipping), and drawn in the concept's colour with opacity ``alpha``.
        """
        image = np.asarray(image)
        concepts = np.asarray(most_important_concepts)[:nb_most_important_concepts]
        cmaps = self._rank_cmaps(concepts)
        maps = self.concept_attribution_maps(image)[0]
        _show(image, **plot_kwargs)
        for concept, cmap in reversed(list(zip(concepts, cmaps))):
            heatmap = maps[:, :, concept]
            heatmap = heatmap * (heatmap > np.percentile(heatmap, filter_percentile))
            if clip_percentile:
                heatmap = _clip_percentile(heatmap, clip_percentile)
            _show(heatmap, cmap=cmap, alpha=alpha, **plot_kwargs)

    def plot_concept_attribution_maps(self, images: Any, importances: Optional[Any] = None,
                                      nb_most_important_concepts: int = 5,
                                      filter_percentile: float = 90,
                                      clip_percentile: Optional[float] = 10.0,
                                      alpha: float = 0.65, cols: int = 5,
                                      img_size: float = 2.0, **plot_kwargs: Any) -> None:
        """The legend, then :meth:`plot_concept_attribution_map` of every image, ``cols``
        per row, for the global (or the given local) most important concepts."""
        plt = _pyplot()
        self.plot_concept_attribution_legend(nb_most_important_concepts)
        images = np.asarray(images)
        images = images[None] if images.ndim == 3 else images
        order = (self._check_sensitivity().most_important_concepts if importances is None
                 else np.argsort(np.asarray(importances))[::-1])
        rows = math.ceil(len(images) / cols)
        height, width = images.shape[1:3]
        plt.figure(figsize=(cols * img_size, rows * img_size * height / width))
        for i, image in enumerate(images):
            plt.subplot(rows, cols, i + 1)
            self.plot_concept_attribution_map(image, order, nb_most_important_concepts,
                                              filter_percentile, clip_percentile, alpha,
                                              **plot_kwargs)

    def plot_image_concepts(self, img: Any,
                            display_importance_order: Optional[DisplayImportancesOrder] = None,
                            nb_most_important_concepts: int = 5,
                            filter_percentile: float = 90,
                            clip_percentile: Optional[float] = 10, alpha: float = 0.65,
                            filepath: Optional[str] = None, **plot_kwargs: Any) -> None:
        """One figure: the image's concept map, the best crops of each concept and the
        importances (global, or the image's own with DisplayImportancesOrder.LOCAL).
        Saved to ``filepath`` when given, else shown."""
        from matplotlib import gridspec  # noqa: PLC0415
        plt = _pyplot()
        sensitivity = self._check_sensitivity()
        local = display_importance_order == DisplayImportancesOrder.LOCAL
        importances = self.estimate_importance(img) if local else sensitivity.importances
        concepts = np.argsort(importances)[::-1][:nb_most_important_concepts]
        figure = plt.figure(figsize=(18, 7))
        rows = math.ceil(len(concepts) / 2)
        grid = figure.add_gridspec(rows, 4, hspace=0.4, width_ratios=[0.2, 0.4, 0.2, 0.4])
        figure.add_subplot(grid[:, 1])
        self.plot_concept_attribution_map(img, concepts, nb_most_important_concepts,
                                          filter_percentile, clip_percentile, alpha,
                                          **plot_kwargs)
        for i, (concept, cmap) in enumerate(zip(concepts, self._rank_cmaps(concepts))):
            cell = grid[i % rows, 0 if i < rows else 2]
            frame = figure.add_subplot(cell)
            frame.set_title(f"{concept}", color=cmap(1.0))
            frame.axis("off")
            inner = gridspec.GridSpecFromSubplotSpec(2, 3, subplot_spec=cell)
            for j, crop in enumerate(self._best_crops(concept, 6)):
                figure.add_subplot(inner[j // 3, j % 3])
                _show(crop)
        side = gridspec.GridSpecFromSubplotSpec(3, 2, width_ratios=[0.1, 0.9],
                                                height_ratios=[0.15, 0.6, 0.15],
                                                subplot_spec=grid[:, 3])
        figure.add_subplot(side[1, 1])
        self.plot_concepts_importances(importances, display_importance_order,
                                       nb_most_important_concepts)
        if filepath is not None:
            plt.savefig(filepath)
        else:
            plt.show()
