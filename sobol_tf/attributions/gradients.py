"""White-box baselines: Saliency, Gradient x Input, Integrated Gradients, SmoothGrad and
Grad-CAM (SquareGrad and VarGrad: gradient_statistics; Guided Backpropagation and
DeconvNet: guided).

Each is a :class:`~sobol_tf.attributions.whitebox.WhiteBoxExplainer`: the same
``explain(inputs, targets)``, operators, batching and output layout (N, H, W, 1) as the
black-box methods, with gradients taken by ``tf.GradientTape``. The positional order of
the arguments is Xplique's (model, output_layer, batch_size, operator, reducer, then the
method's own), and so are the defaults; our extras (``seed``, ``verbose``) are
keyword-only. ``reducer`` turns the channels of an image into one map, after the method's
own per-channel statistic; each docstring states both.
"""
import tensorflow as tf

from sobol_tf._utils import check_positive_int
from sobol_tf.attributions.gradient_statistics import GradientStatistic, check_real
from sobol_tf.attributions.whitebox import WhiteBoxExplainer, find_layer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


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
            channels (maps (N, H, W, C)).
        verbose: (keyword-only) show a progress bar.

    Raises:
        InvalidArgumentError: ``batch_size`` < 1, an unknown ``reducer`` or
            ``output_layer``.
        InvalidTypeError: ``output_layer`` with a model that is not a Keras model.

    Example:
        >>> maps = Saliency(model)(images, labels)          # (N, H, W, 1)
    """

    def __init__(self, model, output_layer=None, batch_size=32, operator=None,
                 reducer="max", *, verbose=False):
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose)

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
            channels.
        verbose: (keyword-only) show a progress bar.

    Raises: as :class:`Saliency`.

    Example:
        >>> maps = GradientInput(model)(images, labels)     # (N, H, W, 1)
    """

    def _attribute(self, model, inputs, targets, evaluations):
        return inputs * self._gradients(model, inputs, targets)


class IntegratedGradients(WhiteBoxExplainer):
    """Integrated Gradients: (x - x0) times the gradient averaged along the path x0 -> x.

    The path integral is approximated with the trapezoidal rule on ``steps`` points
    ``x0 + a (x - x0)``, a = 0, 1/(steps-1), ..., 1, as in Xplique; the baseline x0 is the
    constant ``baseline_value``. The per-channel attributions (sign kept) are reduced
    over the channels with ``reducer``: the default 'mean' is Xplique's; with 'sum' the
    map keeps completeness: sum(map) ~= f(x) - f(x0).

    Ref. M. Sundararajan, A. Taly, Q. Yan. Axiomatic Attribution for Deep Networks.
    ICML 2017. https://arxiv.org/abs/1703.01365

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: as :class:`Saliency`.
        batch_size: path points per forward/backward pass; 32 as Xplique; None: all the
            points of all the inputs in one pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum' (completeness), or
            None to keep the channels.
        steps: points on the path, ends included (>= 2); 50 as Xplique.
        baseline_value: the constant baseline x0; 0.
        verbose: (keyword-only) show a progress bar.

    Raises:
        InvalidArgumentError: ``steps`` < 2, an unknown ``reducer``.
        InvalidTypeError: ``baseline_value`` not a number.

    Example:
        >>> maps = IntegratedGradients(model, steps=50)(images, labels)   # (N, H, W, 1)
    """

    def __init__(self, model, output_layer=None, batch_size=32, operator=None,
                 reducer="mean", steps=50, baseline_value=0.0, *, verbose=False):
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose)
        self.steps = check_positive_int("steps", steps, minimum=2)
        self.baseline_value = check_real("baseline_value", baseline_value)
        self.nb_evaluations = self.steps

    def _attribute(self, model, inputs, targets, evaluations):
        last = float(self.steps - 1)
        position = tf.cast(evaluations, tf.float32)
        alphas = tf.reshape(position / last, (-1, 1, 1, 1))
        ends = tf.logical_or(tf.equal(evaluations, 0), tf.equal(evaluations, self.steps - 1))
        weights = tf.reshape(tf.where(ends, 0.5, 1.0) / last, (-1, 1, 1, 1))
        difference = inputs - self.baseline_value
        gradients = self._gradients(model, self.baseline_value + alphas * difference, targets)
        return weights * gradients * difference


class SmoothGrad(GradientStatistic):
    """SmoothGrad: the gradient averaged over noisy copies of the input.

    map = reducer_c mean_s d score / d x (x + eps_s), eps_s ~ N(0, noise^2) element-wise
    (sign kept; the default reducer 'mean' averages the channels, as Xplique). See
    :class:`~sobol_tf.attributions.gradient_statistics.GradientStatistic` for the noise
    (drawn once per explain() call from ``seed``, shared by the inputs).

    Ref. D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg. SmoothGrad: removing
    noise by adding noise. 2017. https://arxiv.org/abs/1706.03825

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: as :class:`Saliency`.
        batch_size: noisy inputs per forward/backward pass; 32 as Xplique; None: all at
            once.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum', or None to keep the
            channels.
        nb_samples: noisy copies per input; 50 as Xplique.
        noise: standard deviation of the Gaussian noise; 0.2 as Xplique.
        seed: (keyword-only) seed of the noise (None: drawn once per explainer); an
            integer >= 0 or a numpy Generator (one integer is drawn from it).
        verbose: (keyword-only) show a progress bar.

    Raises:
        InvalidArgumentError: ``nb_samples`` < 1, ``noise`` < 0, ``seed`` < 0, an unknown
            ``reducer``.
        InvalidTypeError: a ``seed`` that is not None, an integer or a numpy Generator.

    Example:
        >>> maps = SmoothGrad(model, nb_samples=50, noise=0.2, seed=0)(images, labels)
    """

    def _attribute(self, model, inputs, targets, evaluations, noise):
        gradients = self._noisy_gradients(model, inputs, targets, evaluations, noise)
        return gradients / float(self.nb_samples)


class GradCAM(WhiteBoxExplainer):
    """Grad-CAM: feature maps of a conv layer weighted by their mean gradient, then ReLU.

    cam = relu(sum_k a_k A_k) with A_k the k-th feature map of ``conv_layer`` and
    a_k = mean over positions of d score / d A_k; the cam (h', w') is resized to the
    input bilinearly, as Xplique does.

    Ref. R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra.
    Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization.
    ICCV 2017. https://arxiv.org/abs/1610.02391

    Args:
        model: a Keras functional or Sequential model (Grad-CAM reads a layer's output).
        output_layer: as :class:`Saliency`.
        batch_size: inputs per forward/backward pass; 32 as Xplique.
        operator: None / 'classification', 'regression' or g(model, inputs, targets)
            (the operator is given a model that returns the outputs already computed,
            with the model's output structure: a tensor, or the list, tuple or dict of a
            model with several outputs, as ``model(x)`` returns them).
        conv_layer: name or index of the convolutional layer; None: the last layer with
            ``filters`` and a 4-D output, as Xplique.
        verbose: show a progress bar.

    Raises:
        InvalidTypeError: ``model`` is not a Keras model.
        InvalidArgumentError: no such ``conv_layer``, a ``conv_layer`` whose output is
            not 4-D, or no convolutional layer in the model.

    Example:
        >>> maps = GradCAM(model, conv_layer="block5_conv3")(images, labels)
    """

    resize_method = "bilinear"

    def __init__(self, model, *, output_layer=None, batch_size=32, operator=None,
                 conv_layer=None, verbose=False):
        import keras  # light: tensorflow already imported it

        if not isinstance(model, keras.Model):
            raise InvalidTypeError(
                "GradCAM needs a Keras functional or Sequential model (it reads a "
                f"convolutional layer's output), got a {type(model).__name__}; use a "
                "black-box method (e.g. SobolAttributionMethod) for other callables."
            )
        super().__init__(model, output_layer=output_layer, batch_size=batch_size,
                         operator=operator, verbose=verbose)
        if conv_layer is None:
            candidates = [layer for layer in self.model.layers[::-1]
                          if hasattr(layer, "filters") and len(layer.output.shape) == 4]
            if not candidates:
                raise InvalidArgumentError(
                    "conv_layer=None looks for the last convolutional layer, but the model "
                    "has none; name a layer with 4-D outputs (B, h, w, k) as conv_layer."
                )
            layer = candidates[0]
        else:
            layer = find_layer(self.model, conv_layer, argument="conv_layer")
            if len(layer.output.shape) != 4:
                raise InvalidArgumentError(
                    f"conv_layer must have 4-D outputs (B, h, w, k), got layer "
                    f"{layer.name!r} with output shape {tuple(layer.output.shape)}."
                )
        self.conv_layer = layer
        # the operator sees the model's whole output structure (list, tuple, dict), as
        # model(x) returns it, so that an operator picking one head gets that head
        try:
            structure = self.model.output
        except AttributeError:      # a Sequential model: one output
            structure = self.model.outputs
        self._cam_model = keras.Model(self.model.inputs, [layer.output, structure])

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
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))

    def _reduce(self, sums):
        return sums
