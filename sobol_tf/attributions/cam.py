"""Class activation maps beyond Grad-CAM: Grad-CAM++ and FEM.

Both read the feature maps of one layer (a convolution by default) of a Keras functional
or Sequential model, as :class:`~sobol_tf.attributions.gradients.GradCAM` does, inside
the compiled step of :class:`~sobol_tf.attributions.whitebox.WhiteBoxExplainer`: several
inputs share each forward (and backward) pass; maps are resized to the input bicubically.
"""
from __future__ import annotations

from typing import Any


import tensorflow as tf

from sobol_tf._utils import check_real
from sobol_tf.attributions.gradients import GradCAM
from sobol_tf.attributions.whitebox import WhiteBoxExplainer

#: added to Grad-CAM++'s denominators that are exactly 0 (their numerators are 0 too).
GRADCAMPP_EPSILON = 1e-4


class GradCAMPP(GradCAM):
    """Grad-CAM++: Grad-CAM whose map weights count only the positive gradients, each
    scaled by a per-position coefficient.

    With g = d score / d A_k at each position and mean(A_k) the spatial mean of the
    feature map, alpha = g^2 / (2 g^2 + g^3 mean(A_k)); the weight of map k is the
    spatial mean of alpha relu(g), and cam = relu(sum_k w_k A_k), resized to the input
    bicubically. These are Xplique's formulas: where the paper sums A_k over positions
    in alpha's denominator and sums alpha relu(g) for the weight, Xplique (and we) take
    spatial means, so the maps equal Xplique's, not the paper's. A denominator equal to
    0 is replaced by :data:`GRADCAMPP_EPSILON` (its numerator is 0 as well).

    Ref. A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian. Grad-CAM++:
    Improved Visual Explanations for Deep Convolutional Networks. WACV 2018.
    https://arxiv.org/abs/1710.11063

    Args:
        model: a Keras functional or Sequential model.
        output_layer: None (the model's output) or the name / index of the layer whose
            output is explained (e.g. -2: the logits before a softmax layer).
        batch_size: inputs per forward/backward pass; 32 as Xplique; None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets), as
            :class:`~sobol_tf.attributions.gradients.GradCAM`.
        conv_layer: name or index of the layer whose feature maps are weighted, as
            :class:`~sobol_tf.attributions.gradients.GradCAM` (any layer; ``explain``
            needs 4-D outputs); None: the last layer with ``filters`` and 4-D outputs.
        verbose: keyword only; show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        As :class:`~sobol_tf.attributions.gradients.GradCAM`.

    Example:
        >>> maps = GradCAMPP(model, -2)(images, labels)          # (N, H, W, 1)
    """

    @staticmethod
    def _compute_weights(feature_maps_gradients, feature_maps):
        """Weights (B, 1, 1, k): the spatial mean of alpha relu(g), alpha as above."""
        gradients = tf.cast(feature_maps_gradients, tf.float32)
        means = tf.reduce_mean(tf.cast(feature_maps, tf.float32), axis=(1, 2), keepdims=True)
        squares = tf.square(gradients)
        denominators = squares * (2.0 + gradients * means)
        denominators = tf.where(tf.equal(denominators, 0.0), GRADCAMPP_EPSILON, denominators)
        alphas = squares / denominators
        return tf.reduce_mean(alphas * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)


class FEM(WhiteBoxExplainer):
    """FEM (Feature Explanation Method): where each feature map is unusually high,
    weighted by the map's mean. No gradients, no class: the map does not depend on the
    targets.

    For each feature map A_k of ``conv_layer``, with mean m_k and standard deviation s_k
    over positions (population standard deviation), the mask is 1 where
    A_k >= m_k + k s_k and 0 elsewhere; the map is sum_k m_k mask_k (no ReLU), resized
    to the input bicubically, as Xplique.

    Ref. K. H. Ahmed Fuad, P.-E. Martin, R. Giot, R. Bourqui, J. Benois-Pineau,
    A. Zemmari. Features Understanding in 3D CNNs for Actions Recognition in Video.
    IPTA 2020. https://doi.org/10.1109/IPTA50016.2020.9286629

    Args:
        model: a Keras functional or Sequential model.
        batch_size: inputs per forward pass; 32 as Xplique; None: all at once.
        conv_layer: name or index of the layer whose feature maps are thresholded (any
            layer, as Xplique; ``explain`` needs 4-D outputs); None: the last layer with
            ``filters`` and 4-D outputs.
        k: the threshold in standard deviations above the mean (any finite number);
            2.0 as Xplique.
        verbose: keyword only; show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica computes the maps of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidTypeError: ``model`` is not a Keras model, or a subclassed one; ``k`` is
            not a number; ``conv_layer`` neither a name nor an index.
        InvalidArgumentError: ``k`` is not finite; no such ``conv_layer``, or
            ``conv_layer=None`` and no layer with ``filters`` and 4-D outputs. ``explain``
            raises it when the ``conv_layer``'s outputs are not 4-D.

    Example:
        >>> maps = FEM(model, k=2.0)(images)          # (N, H, W, 1); targets are ignored
    """

    input_kinds = ("image",)

    def __init__(self, model: Any, batch_size: int | None = 32, conv_layer: Any = None,
                 k: float = 2.0, *, verbose: bool = False, strategy: Any = None) -> None:
        import keras  # light: tensorflow already imported it

        layer = GradCAM._find_conv_layer(model, conv_layer, type(self).__name__)
        super().__init__(model, batch_size=batch_size, verbose=verbose, strategy=strategy)
        self.conv_layer = layer
        self.k = check_real("k", k, finite=True)
        self._features = keras.Model(model.inputs, layer.output)

    def explain(self, inputs: Any, targets: Any = None) -> tf.Tensor:
        """FEM maps of ``inputs``.

        Args:
            inputs: images (N, H, W, C) (grayscale: (N, H, W, 1)) as a numpy array or tf.Tensor, or a
                tf.data.Dataset of them (its targets, if any, are ignored).
            targets: ignored (FEM is class-agnostic), accepted for the common API.

        Returns:
            float32 tf.Tensor (N, H, W, 1).

        Raises:
            InvalidArgumentError: as :meth:`Explainer.explain` for the inputs; a
                ``conv_layer`` whose outputs are not 4-D.
        """
        return super().explain(inputs, None)

    def _prepare(self, inputs, targets):
        model, images, _ = self._prepare_inputs(inputs, None)
        # the step's targets: one unused column
        return model, images, tf.zeros((images.shape[0], 1))

    def _check_inputs(self, images):
        GradCAM._check_feature_maps(self.conv_layer, type(self).__name__)

    @staticmethod
    def _compute_weights(feature_maps, k):
        """The maps' spatial means (B, 1, 1, k) and the masks A >= mean + k std (0 / 1)."""
        features = tf.cast(feature_maps, tf.float32)
        axes = list(range(1, len(features.shape) - 1))
        means = tf.reduce_mean(features, axis=axes, keepdims=True)
        stds = tf.math.reduce_std(features, axis=axes, keepdims=True)
        masks = tf.cast(features >= means + tf.cast(k, tf.float32) * stds, tf.float32)
        return means, masks

    @staticmethod
    def _apply_weights(weights, binary_masks):
        """The maps (B, h, w): the masks summed over the feature maps with their weights."""
        return tf.reduce_sum(tf.cast(binary_masks, tf.float32) * weights, axis=-1)

    def _attribute(self, model, inputs, targets, evaluations):
        # the engine passes the model, or a view squeezing a channel added to (N, H, W) inputs
        features = self._features(inputs if model is self.model else inputs[..., 0])
        means, masks = self._compute_weights(features, self.k)
        return self._apply_weights(means, masks)[..., None]

    def _reduce(self, sums):
        return sums
