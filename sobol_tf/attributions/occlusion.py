"""Occlusion sensitivity (Zeiler & Fergus, ECCV 2014)."""
from __future__ import annotations

from typing import Any

import itertools

import numpy as np
import tensorflow as tf

from sobol_tf.attributions._modalities import ModalityMixin, check_pair
from sobol_tf.attributions.perturbations import check_baseline
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError


class Occlusion(ModalityMixin, BlackBoxExplainer):
    """Occlusion: the drop of the score when a sliding patch is set to a constant.

    A ``patch_size`` patch slides over the input with ``patch_stride`` steps, from the
    start, over every position where it fits entirely (anchors 0, s, 2s, ... <= size -
    patch, as in Xplique); each occluded copy sets the patch to ``occlusion_value``. The
    map at a feature is the sum, over the patches that cover it, of score(x) -
    score(occluded x): Xplique's semantics (it adds the drops of overlapping patches;
    Captum averages them instead). With ``patch_stride >= patch_size`` patches do not
    overlap and each feature gets its patch's drop. Features no patch covers (a margin
    when (size - patch) is not a multiple of the stride) get 0. Costs one forward pass
    per patch position, plus the clean input.

    What a patch is, per kind of input (the rank rule of README, "Beyond images"):

    - images (N, H, W, C): ``patch_size`` rows x cols pixels, all channels; maps
      (N, H, W, 1).
    - tabular rows (N, F) of floats: ``patch_size`` consecutive features (an int, as in
      Xplique; ``patch_size=1, patch_stride=1``: one feature at a time); maps (N, F).
    - time series (N, T, C): as in Xplique, a rectangle of ``patch_size`` = (steps,
      channels) of the (T, C) plane, an int p meaning p steps x p channels (so
      ``(p, 1)`` occludes a window of p steps of one channel at a time, ``(p, C)`` the
      window on every channel); maps (N, T, C).
    - token ids (N, L) of integers: ``patch_size`` consecutive tokens (an int), replaced
      by ``mask_token``; positions holding ``pad_token`` are never replaced and get 0 in
      the maps (N, L).

    The occlusion masks are kept at full resolution, once per input size
    (patches * H * W * 4 bytes; a channel axis more for time series).

    Ref. M. D. Zeiler, R. Fergus. Visualizing and Understanding Convolutional Networks.
    ECCV 2014. https://arxiv.org/abs/1311.2901

    Args:
        model: a Keras model or a callable on a batch tensor (called on inputs in the
            caller's layout; int32 ids (B, L) for token ids).
        batch_size: occluded inputs per forward pass; 32 as Xplique. None: every occluded
            input of every input in one pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        patch_size: side of the patch, or (rows, cols) (images; (steps, channels) for
            time series); one int for tabular rows and token ids; 3 as Xplique.
        patch_stride: step between patches, in the same form as ``patch_size``; 3 as
            Xplique.
        occlusion_value: value of the occluded features: a number (0 as Xplique), or one
            value per feature, an array of one input's shape ((F,) for tabular rows,
            e.g. the feature mean of a reference set; (T, C) for time series; (H, W, C)
            for images). Unused for token ids (leave it at 0).
        mask_token: (keyword-only) for token ids (integer inputs (N, L)), the id that
            replaces an occluded token; required for them, refused for float inputs.
        pad_token: (keyword-only) the id of padding in token ids, never occluded, 0 in the
            maps; None: no padding.
        verbose: show a progress bar (keyword-only).
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches; see :class:`~sobol_tf.attributions.Explainer`.

    The positional order is Xplique's: ``Occlusion(model, batch_size, operator,
    patch_size, patch_stride, occlusion_value)``.

    Raises:
        InvalidArgumentError: a ``patch_size`` or ``patch_stride`` < 1, an
            ``occlusion_value`` with NaN or inf; at explain time: a patch larger than the
            inputs (for time series, an int p needs p channels: the message names
            ``(p, 1)``), a tuple ``patch_size`` / ``patch_stride`` for tabular rows or
            token ids, an ``occlusion_value`` array of another shape than one input's,
            token ids without ``mask_token`` (or with a non-zero ``occlusion_value``),
            ``mask_token`` with float inputs.
        InvalidTypeError: an ``occlusion_value`` that is neither a number nor an array of
            numbers, a ``mask_token`` / ``pad_token`` that is not an integer.

    Example:
        >>> maps = Occlusion(model, patch_size=8, patch_stride=4)(images, labels)
        >>> maps = Occlusion(model, 32, None, 1, 1, reference.mean(axis=0))(rows, labels)
        >>> maps = Occlusion(text_model, patch_size=1, patch_stride=1, mask_token=103,
        ...                  pad_token=0)(ids, labels)          # (N, L)
    """

    _needs_base_scores = True
    value_name = "occlusion_value"

    def __init__(self, model: Any, batch_size: int | None = 32, operator: Any = None,
                 patch_size: Any = 3, patch_stride: Any = 3, occlusion_value: Any = 0.0, *,
                 mask_token: int | None = None, pad_token: int | None = None,
                 verbose: bool = False, strategy: Any = None) -> None:
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.patch_size = check_pair("patch_size", patch_size)
        self.patch_stride = check_pair("patch_stride", patch_stride)
        # as given: an int is one length along a tabular row or a text, a pair is not
        self._given = {"patch_size": patch_size, "patch_stride": patch_stride}
        self.occlusion_value = check_baseline(occlusion_value, "occlusion_value")
        self._init_tokens(mask_token, pad_token)
        self._mask_cache: dict = {}

    def _length(self, name):
        """``patch_size`` or ``patch_stride`` along a tabular row or a text: one int."""
        value = self._given[name]
        if isinstance(value, (tuple, list)):
            raise InvalidArgumentError(
                f"{name} must be one int for {self._layout.description} (the number of "
                f"consecutive {'tokens' if self._layout.kind == 'tokens' else 'features'}), "
                f"got {tuple(value)!r}.")
        return getattr(self, name)[0]

    def _check_inputs(self, images):
        kind = self._kind()
        _, height, width, channels = images.shape
        if kind == "image":
            if self.patch_size[0] > height or self.patch_size[1] > width:
                raise InvalidArgumentError(
                    f"patch_size must fit in the inputs, got patch_size={self.patch_size} "
                    f"for inputs of {height}x{width}; use a patch of at most "
                    f"{height}x{width}.")
        elif kind == "time_series":
            steps, across = self.patch_size
            if steps > width or across > channels:
                hint = ""
                if not isinstance(self._given["patch_size"], (tuple, list)):
                    hint = (f" (an int p is p steps x p channels, as in Xplique; "
                            f"patch_size=({min(steps, width)}, 1) occludes "
                            f"{min(steps, width)} steps of one channel at a time, "
                            f"patch_size=({min(steps, width)}, {channels}) of every channel)")
                raise InvalidArgumentError(
                    f"patch_size must fit in the time series, got patch_size="
                    f"{self._given['patch_size']!r} = {self.patch_size} (steps, channels) "
                    f"for series of {width} steps and {channels} channel(s){hint}; use at "
                    f"most ({width}, {channels}).")
        else:
            length = self._length("patch_size")
            self._length("patch_stride")
            if length > width:
                raise InvalidArgumentError(
                    f"patch_size must fit in the inputs, got patch_size={length} for "
                    f"{self._layout.description} of {width} "
                    f"{'tokens' if kind == 'tokens' else 'features'}; use at most {width}.")

    def _masks(self, height, width, channels):
        """Keep-masks (P, H, W, k): 0 on the patch, 1 elsewhere, one per patch position;
        k = 1, or the channels of a time series (its patches span (steps, channels))."""
        kind = self._kind()
        key = (kind, height, width, channels if kind == "time_series" else 1)
        if key not in self._mask_cache:
            if kind == "image":
                size, stride = self.patch_size, self.patch_stride
                shape, axes = (height, width, 1), (0, 1)
            elif kind == "time_series":   # (steps, channels) on the (W, C) axes
                size, stride = self.patch_size, self.patch_stride
                shape, axes = (1, width, channels), (1, 2)
            else:
                size, stride = (self._length("patch_size"),), (self._length("patch_stride"),)
                shape, axes = (1, width, 1), (1,)
            anchors = [range(0, shape[axis] - length + 1, step)
                       for axis, length, step in zip(axes, size, stride)]
            corners = list(itertools.product(*anchors))
            masks = np.ones((len(corners),) + shape, np.float32)
            for number, corner in enumerate(corners):
                window = [slice(None)] * 3
                for axis, start, length in zip(axes, corner, size):
                    window[axis] = slice(start, start + length)
                masks[(number, *window)] = 0.0
            self._mask_cache[key] = tf.constant(masks)
        return self._mask_cache[key]

    def _estimate(self, scores, masks, base_scores):
        drops = base_scores[:, None] - scores
        return tf.einsum("np,phwk->nhwk", drops, 1.0 - masks)
