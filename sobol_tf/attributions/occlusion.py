"""Occlusion sensitivity (Zeiler & Fergus, ECCV 2014)."""
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def _pair(name, value):
    """An int or a pair of ints >= 1 as a (rows, cols) tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidArgumentError(
                f"{name} must be an int or a pair (rows, cols), got {value!r}.")
        return tuple(check_positive_int(name, v) for v in value)
    size = check_positive_int(name, value)
    return size, size


class Occlusion(BlackBoxExplainer):
    """Occlusion: the drop of the score when a sliding patch is set to a constant.

    A ``patch_size`` patch slides over the image with ``patch_stride`` steps, from the
    top-left corner, over every position where it fits entirely (anchors 0, s, 2s, ...
    <= H - patch, as in Xplique); each occluded copy sets the patch (all channels) to
    ``occlusion_value``. The map at a pixel is the sum, over the patches that cover it,
    of score(x) - score(occluded x): Xplique's semantics (it adds the drops of
    overlapping patches; Captum averages them instead). With ``patch_stride >=
    patch_size`` patches do not overlap and each pixel gets its patch's drop. Pixels no
    patch covers (a margin when (H - patch) is not a multiple of the stride) get 0.
    Costs one forward pass per patch position, plus the clean input.

    The occlusion masks are kept at full resolution, once per input size
    (patches * H * W * 4 bytes).

    Ref. M. D. Zeiler, R. Fergus. Visualizing and Understanding Convolutional Networks.
    ECCV 2014. https://arxiv.org/abs/1311.2901

    Args:
        model: a Keras model or a callable on a batch tensor.
        batch_size: occluded inputs per forward pass; 32 as Xplique. None: every occluded
            input of every image in one pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        patch_size: side of the patch, or (rows, cols); 3 as Xplique.
        patch_stride: step between patches, or (rows, cols); 3 as Xplique.
        occlusion_value: value of the occluded pixels; 0 as Xplique.
        verbose: show a progress bar (keyword-only).

    The positional order is Xplique's: ``Occlusion(model, batch_size, operator,
    patch_size, patch_stride, occlusion_value)``.

    Raises:
        InvalidArgumentError: a ``patch_size`` or ``patch_stride`` < 1, or a patch larger
            than the inputs (at explain time).
        InvalidTypeError: an ``occlusion_value`` that is not a number.

    Example:
        >>> maps = Occlusion(model, patch_size=8, patch_stride=4)(images, labels)
    """

    _needs_base_scores = True

    def __init__(self, model, batch_size=32, operator=None, patch_size=3, patch_stride=3,
                 occlusion_value=0.0, *, verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
        self.patch_size = _pair("patch_size", patch_size)
        self.patch_stride = _pair("patch_stride", patch_stride)
        if isinstance(occlusion_value, bool) or not isinstance(occlusion_value, numbers.Real):
            raise InvalidTypeError(
                f"occlusion_value must be a number, got {occlusion_value!r}.")
        self.occlusion_value = float(occlusion_value)
        self._mask_cache = {}

    def _check_inputs(self, images):
        height, width = images.shape[1], images.shape[2]
        if self.patch_size[0] > height or self.patch_size[1] > width:
            raise InvalidArgumentError(
                f"patch_size must fit in the inputs, got patch_size={self.patch_size} for "
                f"inputs of {height}x{width}; use a patch of at most {height}x{width}."
            )

    def _masks(self, height, width, channels):
        """Keep-masks (P, H, W, 1): 0 on the patch, 1 elsewhere, one per patch position."""
        if (height, width) not in self._mask_cache:
            (rows, cols), (step_rows, step_cols) = self.patch_size, self.patch_stride
            tops = range(0, height - rows + 1, step_rows)
            lefts = range(0, width - cols + 1, step_cols)
            masks = np.ones((len(tops) * len(lefts), height, width, 1), np.float32)
            for number, (top, left) in enumerate((t, l) for t in tops for l in lefts):
                masks[number, top:top + rows, left:left + cols] = 0.0
            self._mask_cache[(height, width)] = tf.constant(masks)
        return self._mask_cache[(height, width)]

    @property
    def perturbation(self):
        """Occluded pixels take ``occlusion_value``."""
        return self._towards(self.occlusion_value)

    def _estimate(self, scores, masks, base_scores):
        drops = base_scores[:, None] - scores
        return tf.einsum("np,phwk->nhwk", drops, 1.0 - masks)
