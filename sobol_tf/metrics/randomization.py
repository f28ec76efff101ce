"""Sanity checks of Adebayo et al. (2018): does an explanation depend on the model and on
the class it explains?

- :class:`ModelRandomizationMetric` re-initialises layers of a *copy* of the model (a
  :class:`ModelRandomizationStrategy`, by default :class:`ProgressiveLayerRandomization`
  of the top 25% of the layers that hold weights), builds the same explainer on that
  copy and compares its maps with the maps of the trained model.
- :class:`RandomLogitMetric` compares the maps of the target class with the maps of
  another class, drawn at random (seeded) among the others.

Both return the mean similarity over the inputs: low is good (the explanation reacts);
a similarity near 1 means the method fails the check. Names, arguments and defaults are
Xplique's (2.0); the similarity is Spearman's rank correlation or SSIM, as Xplique's.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt and Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018, https://arxiv.org/abs/1810.03292
"""

from __future__ import annotations

from typing import Any, List, Union
import copy
import inspect
import numbers
from abc import ABC, abstractmethod

import keras
import numpy as np
import tensorflow as tf
ArrayLike = Any  # numpy arrays, tensors, nested lists

from sobol_tf._utils import check_choice
from sobol_tf._utils.data import to_numpy
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn
from sobol_tf.metrics.base import ExplainerMetric, TensorLike
from sobol_tf.metrics.correlations import spearman_rows

#: the similarities the metrics compare maps with.
SIMILARITIES = ("spearman", "ssim")

#: SSIM's constants, as tf.image.ssim's and Xplique's: Gaussian window of size
#: min(11, H, W) (made odd) and width 1.5, K1 = 0.01, K2 = 0.03.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# -- similarities ---------------------------------------------------------------------
def ssim_maps(a: TensorLike, b: TensorLike) -> tf.Tensor:
    """SSIM between maps ``a`` and ``b`` (N, H, W, C) -> (N,), pair by pair.

    The dynamic range L of a pair is max - min over both maps (SSIM's constants are
    (K1 L)^2 and (K2 L)^2); a pair of constant maps (L = 0) gives 1; the Gaussian window
    is min(11, H, W) wide (made odd). The same definition as Xplique's ``ssim``.
    """
    return ssim(a, b, batched=True).numpy()


def ssim(a: ArrayLike, b: ArrayLike, batched: bool = False, win_size: int = SSIM_FILTER_SIZE,
         filter_sigma: float = SSIM_FILTER_SIGMA, k1: float = SSIM_K1,
         k2: float = SSIM_K2) -> tf.Tensor:
    """Xplique's ``ssim``: SSIM of two images (H, W, C) -> scalar, or pair by pair of two
    batches (B, H, W, C) -> (B,) with ``batched=True``.

    The dynamic range L of a pair is max - min over both images; a pair of constant
    images (L = 0) gives 1; the Gaussian window (``win_size``, width ``filter_sigma``) is
    at most min(H, W) wide, made odd.

    Returns:
        float32 tf.Tensor, in [-1, 1].
    """
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    if not batched:
        a, b = a[None], b[None]
    axes = [1, 2, 3]
    low = tf.minimum(tf.reduce_min(a, axes), tf.reduce_min(b, axes))
    high = tf.maximum(tf.reduce_max(a, axes), tf.reduce_max(b, axes))
    spread = high - low
    # SSIM is unchanged when both maps and L are scaled together: scale each pair to L=1
    scale = tf.where(spread > 0, spread, 1.0)[:, None, None, None]
    size = min(int(win_size), int(a.shape[1]), int(a.shape[2]))
    size = max(size - (size % 2 == 0), 1)
    values = tf.image.ssim(a / scale, b / scale, max_val=1.0, filter_size=size,
                           filter_sigma=filter_sigma, k1=k1, k2=k2)
    values = tf.where(spread > 0, values, 1.0)
    return values if batched else values[0]


def batched_spearman(a: ArrayLike, b: ArrayLike) -> tf.Tensor:
    """Xplique's ``batched_spearman``: Spearman's rank correlation of the rows of ``a``
    and ``b`` (B, F) -> float32 tf.Tensor (B,), ties ranked by their average; see
    :func:`spearman_rows` for constant rows."""
    return tf.constant(spearman_rows(np.asarray(a), np.asarray(b)))


# -- model randomization strategies ---------------------------------------------------
class ModelRandomizationStrategy(ABC):
    """How :class:`ModelRandomizationMetric` randomizes its copy of the model.

    A subclass implements ``randomize(model) -> model``: it may change ``model`` in
    place (the metric gives it a copy, never the user's model) and returns the
    randomized model.
    """

    @abstractmethod
    def randomize(self, model: keras.Model) -> keras.Model:
        """Randomize ``model``'s parameters; return the randomized model."""


class ProgressiveLayerRandomization(ModelRandomizationStrategy):
    """Cascading randomization (Adebayo et al., 2018): re-draw the weights of the layers
    that hold weights, from the output down (``reverse=True``) or from the input up
    (``reverse=False``), until ``stop_layer``.

    Args:
        stop_layer: where the cascade stops, the layer itself kept:
            - str: the name of a layer of the model; every layer holding weights before
              it in the traversal order is randomized, it and the rest are kept. (A layer
              without weights may be named too, ours only: Xplique refuses it.)
            - int >= 0: the number of layers holding weights to randomize (more than the
              model has: all of them).
            - float in [0, 1]: the fraction of them, int(fraction * count), but at least
              one layer for a fraction > 0 (with a SobolTFWarning when rounding down
              gives none; Xplique then re-draws no layer and every explainer scores 1).
        reverse: True (default): from the output layer down; False: from the input up.
        seed: (keyword-only, ours) seed of the new weights; None: fresh random weights
            at each call (ModelRandomizationMetric then uses its own ``seed``).

    New weights are drawn from U[0, 1), every weight of a randomized layer (kernels and
    biases alike, as Xplique; the paper re-initialises with the layer's initializers:
    write a :class:`ModelRandomizationStrategy` to do so).

    Raises:
        InvalidTypeError: ``stop_layer`` not a str, an int or a float (a bool is
            refused); ``randomize`` of a model that is not a Keras model.
        InvalidArgumentError: a float outside [0, 1], a negative int; ``randomize`` of a
            model without a layer named ``stop_layer`` (the message lists them).

    Example:
        >>> strategy = ProgressiveLayerRandomization("conv1")  # conv1 and below kept
        >>> [layer.name for layer in strategy.layers_to_randomize(model)]
        ['dense', 'conv2']
    """

    def __init__(self, stop_layer: Union[str, int, float], reverse: bool = True, *,
                 seed: Any = None) -> None:
        if isinstance(stop_layer, bool) or not isinstance(
                stop_layer, (str, numbers.Integral, numbers.Real)):
            raise InvalidTypeError(
                "stop_layer must be a layer name (str), a number of layers (int) or a "
                f"fraction of them (float in [0, 1]), got {stop_layer!r} "
                f"({type(stop_layer).__name__}).")
        if isinstance(stop_layer, numbers.Integral):
            if stop_layer < 0:
                raise InvalidArgumentError(
                    "stop_layer as an int is the number of layers to randomize, >= 0, got "
                    f"{stop_layer}.")
            stop_layer = int(stop_layer)
        elif isinstance(stop_layer, numbers.Real):
            if not 0.0 <= stop_layer <= 1.0:  # NaN too
                raise InvalidArgumentError(
                    "stop_layer as a float is the fraction of layers to randomize, in "
                    f"[0, 1], got {stop_layer}.")
            stop_layer = float(stop_layer)
        self.stop_layer = stop_layer
        self.reverse = bool(reverse)
        self.seed = seed

    def layers_to_randomize(self, model: keras.Model) -> List[Any]:
        """The layers :meth:`randomize` re-draws, in traversal order.

        Raises:
            InvalidTypeError: ``model`` is not a Keras model.
            InvalidArgumentError: ``stop_layer`` names no layer of ``model``.
        """
        if not isinstance(model, keras.Model):
            raise InvalidTypeError(
                "ProgressiveLayerRandomization randomizes the layers of a Keras model "
                f"(functional or Sequential), got a {type(model).__name__}; write a "
                "ModelRandomizationStrategy for other models.")
        layers = model.layers[::-1] if self.reverse else list(model.layers)
        if isinstance(self.stop_layer, str):
            names = [layer.name for layer in layers]
            if self.stop_layer not in names:
                raise InvalidArgumentError(
                    f"stop_layer {self.stop_layer!r} not found in the model; its layers "
                    f"are {[layer.name for layer in model.layers]}.")
            layers = layers[:names.index(self.stop_layer)]
            return [layer for layer in layers if layer.weights]
        layers = [layer for layer in layers if layer.weights]
        count = (self.stop_layer if isinstance(self.stop_layer, int)
                 else int(len(layers) * self.stop_layer))
        if count == 0 and isinstance(self.stop_layer, float) and self.stop_layer > 0 \
                and layers:
            # Xplique rounds down to no layer (every explainer then scores 1): re-draw one
            warn(f"ProgressiveLayerRandomization(stop_layer={self.stop_layer}) rounds down "
                 f"to no layer of the {len(layers)} with weights; re-drawing one, "
                 f"{layers[0].name!r}. Give a number of layers (an int) to choose.")
            count = 1
        return layers[:count]

    def randomize(self, model: keras.Model) -> keras.Model:
        """Re-draw the weights of :meth:`layers_to_randomize` in place; return ``model``
        (as Xplique's: the model given is changed; ModelRandomizationMetric gives it a
        copy)."""
        return self._randomize(model, self.seed)

    def _randomize(self, model, seed):
        generator = np.random.default_rng(seed)
        for layer in self.layers_to_randomize(model):
            layer.set_weights([
                generator.uniform(size=np.shape(weight)).astype(np.asarray(weight).dtype)
                for weight in layer.get_weights()])
        return model


# -- metrics --------------------------------------------------------------------------
def _explain_function(explainer):
    """``explainer(inputs, targets)`` as a function: its ``explain`` method (Xplique's
    interface) or the object itself when it is a callable."""
    function = getattr(explainer, "explain", None)
    if callable(function):
        return function
    if callable(explainer):
        return explainer
    raise InvalidTypeError(
        "explainer must be an explainer (with an explain(inputs, targets) method) or a "
        f"callable explainer(inputs, targets) -> maps, got {type(explainer).__name__}.")


class BaseRandomizationMetric(ExplainerMetric, ABC):
    """Base of the sanity checks: the maps of ``explainer`` on the metric's inputs and
    targets, compared with its maps in a perturbed setting (another class, a randomized
    model), input by input.

    Args:
        model: the model explained (a Keras model for ModelRandomizationMetric's layer
            randomization), or any callable on a batch.
        inputs: images (N, H, W, C), tabular rows (N, F), time series (N, T, C) (rules of
            :class:`~sobol_tf.metrics.ExplanationMetric`).
        targets: one-hot rows (N, K) or class ids (N,); None: the predicted class (ours:
            Xplique 2.0.2 tries ``model.predict``).
        batch_size: inputs per forward pass of the metric's own model calls (the
            predicted class when targets is None); the explainer batches by its own.
        activation: None, 'softmax' or 'sigmoid' on the model's outputs (used only for
            the predicted class, as in Xplique).
        seed: seed of the random draws (the other class, the new weights).
        similarity: (keyword-only, ours) 'spearman' (rank correlation of the maps,
            flattened) or 'ssim' (images only); None: the metric's default.
        verbose: (keyword-only) progress bar.
        strategy: (keyword-only) see :class:`~sobol_tf.metrics.ExplanationMetric`; it runs
            the metric's own model calls only: the explainer runs on its own strategy
            (ModelRandomizationMetric's rebuilt explainer keeps the explainer's).

    ``evaluate(explainer)`` -> float, the mean similarity over the inputs; the
    explainer is any object with ``explain(inputs, targets)`` (Xplique's interface) or a
    callable ``explainer(inputs, targets)``, returning one map per input (or one vector
    per input, (N, K), compared by Spearman: ours and Xplique's). Maps of images
    are compared channel-averaged, one value per pixel (Xplique's SSIM keeps the
    channels of multi-channel maps).
    """

    #: the similarity used when ``similarity`` is None, for images.
    default_similarity = "spearman"

    def __init__(self, model, inputs, targets, batch_size=64, activation=None, seed=42, *,
                 similarity=None, verbose=False, strategy=None):
        super().__init__(model, inputs, targets, batch_size=batch_size,
                         activation=activation, verbose=verbose, strategy=strategy)
        self.seed = seed
        image = self._layout.kind == "image"
        if similarity is None:
            similarity = self.default_similarity if image else "spearman"
        similarity = check_choice("similarity", similarity, SIMILARITIES)
        if similarity == "ssim" and not image:
            raise InvalidArgumentError(
                f"similarity='ssim' compares images; these inputs are "
                f"{self._layout.kind.replace('_', ' ')}: use similarity='spearman'.")
        self.similarity = similarity

    def _explanation_maps(self, explanations: Any, *, absolute: bool = False,
                          nb_inputs: int | None = None) -> tf.Tensor:
        """The checked maps, as :class:`~sobol_tf.metrics.ExplanationMetric`'s; also one
        vector per input (N, K) of any length K (a concept method's or a test's fake
        explainer, as Xplique accepts), compared by Spearman as (N, 1, K, 1)."""
        try:
            return super()._explanation_maps(explanations, absolute=absolute,
                                             nb_inputs=nb_inputs)
        except InvalidArgumentError:
            vectors = np.array(to_numpy(explanations, "explanations"), np.float32)
            nb_inputs = self.inputs.shape[0] if nb_inputs is None else nb_inputs
            if vectors.ndim != 2 or vectors.shape[0] != nb_inputs \
                    or not np.isfinite(vectors).all():
                raise
            if self.similarity != "spearman":
                raise InvalidArgumentError(
                    f"explanations of shape {vectors.shape} (one vector per input) cannot "
                    f"be compared by {self.similarity!r}; build the metric with "
                    "similarity='spearman'.") from None
            return tf.constant((np.abs(vectors) if absolute else vectors)[:, None, :, None])

    def evaluate(self, explainer: Any) -> float:
        """The mean similarity of ``explainer``'s maps with its perturbed maps (low: the
        explanation passes the check). Each set of maps is computed once.

        Raises:
            InvalidTypeError: ``explainer`` neither has ``explain`` nor is callable.
            InvalidArgumentError: maps of the wrong shape, NaN or inf.
        """
        return float(np.mean(self.detailed_evaluate(explainer)))

    def detailed_evaluate(self, explainer: Any) -> np.ndarray:
        """The similarity of each input, (N,) float32 numpy (ours)."""
        clean = self._explanations(_explain_function(explainer))
        perturbed = self._perturbed_explanations(explainer)
        if self.similarity == "ssim":
            return ssim_maps(clean, perturbed)
        count = int(clean.shape[0])
        return spearman_rows(tf.reshape(clean, (count, -1)).numpy(),
                             tf.reshape(perturbed, (count, -1)).numpy()).astype(np.float32)

    @abstractmethod
    def _perturbed_explanations(self, explainer):
        """The maps of the perturbed setting, as :meth:`_explanations` returns them."""


class RandomLogitMetric(BaseRandomizationMetric):
    """Random-logit sanity check (Adebayo et al., 2018): the maps of each input's target
    class against the maps of a class drawn uniformly among the K - 1 others.

    Args, as Xplique's: model, inputs, targets, batch_size=64, activation=None, seed=42;
    keyword-only ``similarity`` (default: 'ssim' for images, as Xplique; 'spearman' for
    the other kinds, where Xplique's SSIM does not apply), ``verbose`` and ``strategy``. See
    :class:`BaseRandomizationMetric`.

    The target class of a row is its argmax; the other classes are drawn once, when the
    metric is built (``self.random_classes``, (N,) ints), so every explainer evaluated
    is compared on the same classes.

    Raises:
        InvalidArgumentError: targets of fewer than 2 classes; the errors of
            :class:`~sobol_tf.metrics.ExplanationMetric`.
    """

    default_similarity = "ssim"

    def __init__(self, model, inputs, targets, batch_size=64, activation=None, seed=42, *,
                 similarity=None, verbose=False, strategy=None):
        super().__init__(model, inputs, targets, batch_size, activation, seed,
                         similarity=similarity, verbose=verbose, strategy=strategy)
        count, classes = self.targets.shape
        if classes < 2:
            raise InvalidArgumentError(
                f"RandomLogitMetric needs targets of 2 classes or more (a model of 2 "
                f"outputs or more) to draw another class; targets have width {classes}.")
        true = np.argmax(self.targets.numpy(), axis=1)
        draws = np.random.default_rng(seed).integers(0, classes - 1, size=count)
        #: the class each input is also explained for, never its target class.
        self.random_classes = draws + (draws >= true)
        self._random_targets = tf.one_hot(self.random_classes, classes, dtype=tf.float32)

    def _perturbed_explanations(self, explainer):
        return self._explanations(_explain_function(explainer),
                                  targets=self._random_targets)


class ModelRandomizationMetric(BaseRandomizationMetric):
    """Model-randomization sanity check (Adebayo et al., 2018): the maps of the trained
    model against the maps of the same explainer on a copy of the model whose layers were
    randomized by ``randomization_strategy``.

    Args, as Xplique's: model, inputs, targets, randomization_strategy=None (a
    :class:`ProgressiveLayerRandomization` of the top 25% of the layers with weights),
    batch_size=64, activation=None, seed=42; keyword-only ``similarity`` (default
    'spearman', as Xplique), ``verbose`` and ``strategy``. See
    :class:`BaseRandomizationMetric`.

    The model randomized is the one the explainer explains: it is copied
    (``keras.models.clone_model`` and its weights), the strategy randomizes the copy
    (a :class:`ProgressiveLayerRandomization` without a seed of its own draws with the
    metric's ``seed``), and the explainer is rebuilt on the copy:

    - a sobol_tf explainer: a new explainer of the same class, built with the arguments
      the explainer was built with, the model replaced (its compiled steps, model views
      and derived models, e.g. ``output_layer``, belong to the model it was built on;
      changes made to its attributes after it was built are not carried over);
    - any other object with a ``model`` attribute (e.g. an Xplique explainer): a shallow
      copy whose ``model`` is the randomized copy, as Xplique swaps it (anything the
      object derived from its model when it was built is not rebuilt).

    Neither the user's model nor the user's explainer is modified. The model is
    randomized once per ``evaluate`` (Xplique re-draws it for every batch of
    ``batch_size`` inputs).

    Raises:
        InvalidTypeError: a strategy without ``randomize``; a
            :class:`ProgressiveLayerRandomization` with a model that is not a Keras model;
            at ``evaluate``, an explainer without a model to randomize (a plain function)
            or a model that cannot be copied.
        InvalidArgumentError: ``stop_layer`` naming no layer of the model; the errors of
            :class:`~sobol_tf.metrics.ExplanationMetric`.
    """

    def __init__(self, model, inputs, targets, randomization_strategy=None, batch_size=64,
                 activation=None, seed=42, *, similarity=None, verbose=False, strategy=None):
        if randomization_strategy is None:
            randomization_strategy = ProgressiveLayerRandomization(0.25)
        if not callable(getattr(randomization_strategy, "randomize", None)):
            raise InvalidTypeError(
                "randomization_strategy must be a ModelRandomizationStrategy (an object "
                f"with randomize(model) -> model), got "
                f"{type(randomization_strategy).__name__}.")
        if isinstance(randomization_strategy, ProgressiveLayerRandomization):
            # a Keras model, a layer of that name, and at least one layer to re-draw
            if not randomization_strategy.layers_to_randomize(model):
                weighted = [layer.name for layer in model.layers if layer.weights]
                raise InvalidArgumentError(
                    f"ProgressiveLayerRandomization(stop_layer={randomization_strategy.stop_layer!r}"
                    f", reverse={randomization_strategy.reverse}) re-draws no layer of this "
                    f"model (its layers with weights: {weighted}), so every explainer would "
                    "score 1; give a stop_layer that keeps fewer layers (a number of layers, "
                    "e.g. 1, or a layer name).")
        super().__init__(model, inputs, targets, batch_size, activation, seed,
                         similarity=similarity, verbose=verbose, strategy=strategy)
        self.randomization_strategy = randomization_strategy

    def _perturbed_explanations(self, explainer):
        model, rebuild = _rebinding(explainer)
        randomized = self.randomize_copy(model)
        return self._explanations(_explain_function(rebuild(randomized)))

    def randomize_copy(self, model: keras.Model) -> keras.Model:
        """A copy of the Keras ``model``, randomized by the strategy (ours: the copy
        ``evaluate`` explains, for inspection); ``model`` is left as it is.

        Raises:
            InvalidTypeError: ``model`` is not a Keras model, or cannot be cloned.
        """
        if not isinstance(model, keras.Model):
            raise InvalidTypeError(
                "ModelRandomizationMetric randomizes a copy of a Keras model (functional "
                f"or Sequential); the explainer's model is a {type(model).__name__}.")
        try:
            clone = keras.models.clone_model(model)
        except Exception as error:  # noqa: BLE001 - e.g. a subclassed model without config
            raise InvalidTypeError(
                f"ModelRandomizationMetric could not copy the model "
                f"({type(error).__name__}: {error}); give a functional or Sequential "
                "model (or a subclassed one with get_config).") from error
        clone.set_weights(model.get_weights())
        strategy = self.randomization_strategy
        if isinstance(strategy, ProgressiveLayerRandomization):
            return strategy._randomize(  # pylint: disable=protected-access
                clone, self.seed if strategy.seed is None else strategy.seed)
        randomized = strategy.randomize(clone)
        return clone if randomized is None else randomized


def _rebinding(explainer):
    """(the model ``explainer`` explains, f(model) -> the same explainer on ``model``).

    Raises:
        InvalidTypeError: no model to replace.
    """
    from sobol_tf.attributions.base import Explainer  # attributions import metrics' deps

    arguments = getattr(explainer, "_init_arguments", None)
    if isinstance(explainer, Explainer) and arguments is not None:
        cls = type(explainer)
        args, kwargs = arguments
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:
            bound = None
        if bound is not None and "model" in bound.arguments:
            def rebuild(model):
                bound.arguments["model"] = model
                rebuilt = cls(*bound.args[1:], **bound.kwargs)
                rebuilt.strategy = explainer.strategy  # also one from a scope, now left
                return rebuilt
            return bound.arguments["model"], rebuild
    if hasattr(explainer, "model"):
        def swap(model):
            clone = copy.copy(explainer)
            clone.model = model
            return clone
        return explainer.model, swap
    raise InvalidTypeError(
        "ModelRandomizationMetric explains a randomized copy of the explainer's model: "
        "give an explainer with a `model` (a sobol_tf or Xplique explainer), got a "
        f"{type(explainer).__name__} without one.")
