"""White-box baselines: Saliency, Gradient x Input, Integrated Gradients and Grad-CAM
(SmoothGrad, SquareGrad and VarGrad: gradient_statistics; Guided Backpropagation and
DeconvNet: guided; Grad-CAM++ and FEM: cam).

Each is a :class:`~sobol_tf.attributions.whitebox.WhiteBoxExplainer`: the same
``explain(inputs, targets)``, operators, batching and output layouts (images
(N, H, W, 1), tabular rows (N, F), time series (N, T, C); token ids are refused, see
:class:`~sobol_tf.attributions.whitebox.WhiteBoxExplainer`) as the black-box methods,
with gradients taken by ``tf.GradientTape``. The positional order of the arguments is
Xplique's (model, output_layer, batch_size, operator, reducer, then the method's own),
and so are the defaults; our extras (``seed``, ``verbose``) are keyword-only.
``reducer`` turns the channels of an image into one map, after the method's own
per-channel statistic; each docstring states both.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_real
from sobol_tf.attributions.gradient_statistics import SmoothGrad  # noqa: F401 (its old home)
from sobol_tf.attributions.whitebox import WhiteBoxExplainer, find_layer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def check_baseline_value(value: Any) -> Any:
    """Integrated Gradients' ``baseline_value``: a float, or a float32 copy of an array
    of finite real numbers (its shape is checked against the inputs by explain()).

    Raises:
        InvalidTypeError: neither a real number nor an array of real numbers.
        InvalidArgumentError: an array with NaN or infinite values.
    """
    if isinstance(value, (np.ndarray, tf.Tensor, list, tuple)):
        array = np.array(value)
        if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
            raise InvalidTypeError(
                f"baseline_value must be a number or an array of real numbers, got an "
                f"array of dtype {array.dtype}.")
        if not np.isfinite(array).all():
            raise InvalidArgumentError(
                f"baseline_value must hold finite numbers, got "
                f"{int((~np.isfinite(array)).sum())} NaN or infinite value(s) in an array "
                f"of shape {array.shape}.")
        return array.astype(np.float32)
    return check_real("baseline_value", value)


class Saliency(WhiteBoxExplainer):
    """Saliency: the magnitude of the gradient of the score, reduced over the channels.

    map[h, w] = reducer_c |d score / d x[h, w, c]|; the default reducer 'max' is the
    paper's (and Xplique's) max over the channels. The absolute value is taken before
    the reducer, as Xplique does.

    Ref. K. Simonyan, A. Vedaldi, A. Zisserman. Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps. ICLR Workshop 2014.
    https://arxiv.org/abs/1312.6034

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: None (the model's output) or the name / index of the layer whose
            output is explained (e.g. the logits); needs a Keras model.
        batch_size: inputs per forward/backward pass; 32 as Xplique; None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'max' (default, as Xplique), 'mean', 'min', 'sum', or None to keep the
            channels (maps (N, H, W, C)). Images only, as Xplique: tabular rows (N, F)
            and time series (N, T, C) get maps of their own shape, whatever the reducer.
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidArgumentError: ``batch_size`` < 1, an unknown ``reducer`` or
            ``output_layer``.
        InvalidTypeError: ``output_layer`` with a model that is not a Keras model.

    Example:
        >>> maps = Saliency(model)(images, labels)          # (N, H, W, 1)
        >>> maps = Saliency(model)(rows, labels)            # tabular (N, F) -> (N, F)
        >>> maps = Saliency(model)(series, labels)          # (N, T, C) -> (N, T, C)
    """

    def __init__(self, model: Any, output_layer: Any = None, batch_size: int | None = 32,
                 operator: Any = None, reducer: str | None = "max", *,
                 verbose: bool = False, strategy: Any = None) -> None:
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose,
                         strategy=strategy)

    def _attribute(self, model, inputs, targets, evaluations):
        return self._gradients(model, inputs, targets)

    def _statistic(self, sums):
        return tf.abs(sums)


class GradientInput(WhiteBoxExplainer):
    """Gradient x Input: the gradient of the score times the input, element-wise.

    map[h, w] = reducer_c x[h, w, c] * d score / d x[h, w, c] (sign kept). For a linear
    score w . x + b it is exactly w * x.

    Ref. A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje. Not Just a Black Box:
    Learning Important Features Through Propagating Activation Differences. 2016.
    https://arxiv.org/abs/1605.01713

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: as :class:`Saliency`.
        batch_size: inputs per forward/backward pass; 64 as Xplique; None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum', or None to keep the
            channels. Images only, as Xplique: tabular rows (N, F) and time series
            (N, T, C) get maps of their own shape, whatever the reducer.
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises: as :class:`Saliency`.

    Example:
        >>> maps = GradientInput(model)(images, labels)     # (N, H, W, 1)
    """

    def _attribute(self, model, inputs, targets, evaluations):
        return inputs * self._gradients(model, inputs, targets)


class IntegratedGradients(WhiteBoxExplainer):
    """Integrated Gradients: (x - x0) times the gradient averaged along the path x0 -> x.

    The path integral is approximated with the trapezoidal rule on ``steps`` points
    ``x0 + a (x - x0)``, a = 0, 1/(steps-1), ..., 1, as in Xplique; the baseline x0 is
    ``baseline_value``: a constant (as Xplique) or one value per feature. The
    per-channel attributions (sign kept) of an image are reduced over the channels with
    ``reducer``: the default 'mean' is Xplique's; with 'sum' the map keeps completeness:
    sum(map) ~= f(x) - f(x0). Tabular rows (N, F) and time series (N, T, C) keep every
    feature's attribution (maps of the inputs' shape, as Xplique), so their maps sum to
    f(x) - f(x0).

    Ref. M. Sundararajan, A. Taly, Q. Yan. Axiomatic Attribution for Deep Networks.
    ICML 2017. https://arxiv.org/abs/1703.01365

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: as :class:`Saliency`.
        batch_size: path points per forward/backward pass; 32 as Xplique; None: all the
            points of all the inputs in one pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum' (completeness), or
            None to keep the channels. Images only, as Xplique: tabular rows (N, F) and
            time series (N, T, C) get maps of their own shape, whatever the reducer.
        steps: points on the path, ends included (>= 2); 50 as Xplique.
        baseline_value: the baseline x0: a number (0 by default, as Xplique), or (ours)
            an array that broadcasts to one input's shape without the batch axis, e.g.
            the feature means of a reference set for tabular rows, ``(F,)``
            (``x_ref.mean(axis=0)``: 0 is often not "no information" for a feature),
            ``(T, C)`` or ``(C,)`` for time series, ``(H, W, C)`` for images. The array
            is copied.
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidArgumentError: ``steps`` < 2, an unknown ``reducer``, a
            ``baseline_value`` array with NaN or infinite values; ``explain`` raises it
            when the array does not broadcast to one input's shape.
        InvalidTypeError: ``baseline_value`` neither a number nor an array of numbers.

    Example:
        >>> maps = IntegratedGradients(model, steps=50)(images, labels)   # (N, H, W, 1)
        >>> explainer = IntegratedGradients(model, baseline_value=x_ref.mean(axis=0))
        >>> maps = explainer(rows, labels)     # tabular (N, F): a_i (x_i - mean_i) if linear
    """

    def __init__(self, model: Any, output_layer: Any = None, batch_size: int | None = 32,
                 operator: Any = None, reducer: str | None = "mean", steps: int = 50,
                 baseline_value: Any = 0.0, *, verbose: bool = False,
                 strategy: Any = None) -> None:
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose,
                         strategy=strategy)
        self.steps = check_positive_int("steps", steps, minimum=2)
        self.baseline_value = check_baseline_value(baseline_value)
        self.nb_evaluations = self.steps

    def _extras(self, images):
        """The baseline array in the engine layout (1, H, W, C); none for a number."""
        if isinstance(self.baseline_value, float):
            return ()
        layout = self._layout
        try:
            shape = np.broadcast_shapes(self.baseline_value.shape, layout.shape)
        except ValueError:
            shape = None
        if shape != layout.shape:
            raise InvalidArgumentError(
                f"baseline_value must be a number or an array that broadcasts to one "
                f"input's shape {layout.shape} ({layout.description} without the batch "
                f"axis), got an array of shape {self.baseline_value.shape}.")
        baseline = np.broadcast_to(self.baseline_value, layout.shape)[None]
        return (layout.to_engine(baseline),)

    def _attribute(self, model, inputs, targets, evaluations, *baseline):
        last = float(self.steps - 1)
        position = tf.cast(evaluations, tf.float32)
        alphas = tf.reshape(position / last, (-1, 1, 1, 1))
        ends = tf.logical_or(tf.equal(evaluations, 0), tf.equal(evaluations, self.steps - 1))
        weights = tf.reshape(tf.where(ends, 0.5, 1.0) / last, (-1, 1, 1, 1))
        baseline = baseline[0] if baseline else self.baseline_value
        difference = inputs - baseline
        gradients = self._gradients(model, baseline + alphas * difference, targets)
        return weights * gradients * difference


class GradCAM(WhiteBoxExplainer):
    """Grad-CAM: feature maps of a conv layer weighted by their mean gradient, then ReLU.

    cam = relu(sum_k a_k A_k) with A_k the k-th feature map of ``conv_layer`` and
    a_k = mean over positions of d score / d A_k; the cam (h', w') is resized to the
    input with bicubic interpolation, as Xplique (so a resized map can dip slightly
    below 0 near sharp edges). Several inputs share each forward/backward pass.

    Ref. R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra.
    Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization.
    ICCV 2017. https://arxiv.org/abs/1610.02391

    Args:
        model: a Keras functional or Sequential model (Grad-CAM reads a layer's output
            through the model's graph; a subclassed model is refused).
        output_layer: as :class:`Saliency` (e.g. -2: the logits before a softmax layer).
            Xplique 2.0.2's GradCAM and GradCAMPP ignore it (they explain the model's
            output whatever ``output_layer`` says); we explain that layer's output.
        batch_size: inputs per forward/backward pass; 32 as Xplique; None: all at once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets)
            (the operator is given a model that returns the outputs already computed,
            with the model's output structure: a tensor, or the list, tuple or dict of a
            model with several outputs, as ``model(x)`` returns them).
        conv_layer: name or index (in ``model.layers``, also when ``output_layer`` is
            given) of the layer whose feature maps are weighted: any layer, as Xplique
            (a convolution, or e.g. the Activation or BatchNormalization after it), but
            ``explain`` needs its outputs to be 4-D feature maps (B, h, w, k). None: the
            last layer with ``filters`` and 4-D outputs (Xplique takes the last layer
            with ``filters``, whatever its rank).
        verbose: keyword only; show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidTypeError: ``model`` is not a Keras model, or a subclassed one;
            ``conv_layer`` neither a name nor an index.
        InvalidArgumentError: no such ``conv_layer``, or ``conv_layer=None`` and no layer
            with ``filters`` and 4-D outputs in the model. ``explain`` raises it when the
            ``conv_layer``'s outputs are not 4-D (e.g. a Flatten layer).

    Example:
        >>> maps = GradCAM(model, -2, conv_layer="block5_conv3")(images, labels)
    """

    input_kinds = ("image",)

    def __init__(self, model: Any, output_layer: Any = None, batch_size: int | None = 32,
                 operator: Any = None, conv_layer: Any = None, *, verbose: bool = False,
                 strategy: Any = None) -> None:
        import keras  # light: tensorflow already imported it

        layer = self._find_conv_layer(model, conv_layer, type(self).__name__)
        super().__init__(model, output_layer=output_layer, batch_size=batch_size,
                         operator=operator, verbose=verbose, strategy=strategy)
        self.conv_layer = layer
        # the operator sees the model's whole output structure (list, tuple, dict), as
        # model(x) returns it, so that an operator picking one head gets that head
        try:
            structure = self.model.output
        except AttributeError:      # a Sequential model: one output
            structure = self.model.outputs
        self._cam_model = keras.Model(self.model.inputs, [layer.output, structure])

    @staticmethod
    def _find_conv_layer(model, conv_layer, name):
        """The layer of ``model`` named or indexed by ``conv_layer``, or (None) its last
        layer with ``filters`` and 4-D outputs; refuses what has no graph to read it from.
        ``name``: the explainer's, for the messages (FEM shares this lookup)."""
        import keras  # light: tensorflow already imported it

        if not isinstance(model, keras.Model):
            raise InvalidTypeError(
                f"{name} needs a Keras functional or Sequential model (it reads a "
                f"convolutional layer's output), got a {type(model).__name__}; use a "
                "black-box method (e.g. SobolAttributionMethod) for other callables."
            )
        try:
            model.inputs
        except AttributeError:
            raise InvalidTypeError(
                f"{name} needs a Keras functional or Sequential model (it reads a layer's "
                f"output through the model's graph); this {type(model).__name__} has no "
                "symbolic inputs: a subclassed model (rebuild it with the functional API, "
                "or use a black-box method, e.g. SobolAttributionMethod) or a Sequential "
                "model without keras.Input (add one as its first layer)."
            ) from None
        if conv_layer is not None:
            return find_layer(model, conv_layer, argument="conv_layer")
        for layer in model.layers[::-1]:
            if hasattr(layer, "filters") and len(layer.output.shape) == 4:
                return layer
        raise InvalidArgumentError(
            "conv_layer=None looks for the last convolutional layer (one with filters and "
            "4-D outputs), but the model has none; name a layer with 4-D outputs "
            "(B, h, w, k) as conv_layer."
        )

    def _check_inputs(self, images):
        self._check_feature_maps(self.conv_layer, type(self).__name__)

    @staticmethod
    def _check_feature_maps(layer, name):
        """Refuse a ``conv_layer`` whose outputs are not 4-D (explain time, as Xplique
        accepts any layer when it is built)."""
        shape = tuple(layer.output.shape)
        if len(shape) != 4:
            raise InvalidArgumentError(
                f"conv_layer {layer.name!r} has outputs of shape {shape}: "
                f"{name} needs 4-D feature maps (B, h, w, k) to make a map; "
                "name a convolutional layer (or a layer after one that keeps its 4-D "
                "outputs, e.g. an Activation) as conv_layer."
            )

    @staticmethod
    def _compute_weights(feature_maps_gradients, feature_maps):
        """Weights (B, 1, 1, k) of the feature maps: the mean gradient of each map."""
        gradients = tf.cast(feature_maps_gradients, tf.float32)
        return tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)

    @staticmethod
    def _apply_weights(weights, feature_maps):
        """The cams (B, h, w): relu of the feature maps (B, h, w, k) summed with their
        ``weights`` (B, 1, 1, k)."""
        features = tf.cast(feature_maps, tf.float32)
        return tf.nn.relu(tf.reduce_sum(tf.cast(weights, tf.float32) * features, axis=-1))

    def _attribute(self, model, inputs, targets, evaluations):
        # the engine passes the model, or a view squeezing a channel added to (N, H, W) inputs
        model_inputs = inputs if model is self.model else inputs[..., 0]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(model_inputs)
            features, outputs = self._cam_model(model_inputs)
            if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
                outputs = outputs[0]    # as Keras' model(x) unpacks a single output
            scores = self.operator(lambda _: outputs, inputs, targets)
        gradients = tape.gradient(scores, features,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return self._apply_weights(self._compute_weights(gradients, features), features)[..., None]

    def _reduce(self, sums):
        return sums

