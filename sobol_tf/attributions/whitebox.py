"""Base of the gradient (white-box) explainers: Saliency, Integrated Gradients,
SmoothGrad, Gradient x Input, SquareGrad, VarGrad, Guided Backpropagation, DeconvNet,
Grad-CAM. Shares the API boundary of :class:`Explainer`."""
from abc import abstractmethod
from typing import Callable

import keras
import tensorflow as tf

from sobol_tf.attributions.base import Explainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: how to explain a model of token ids with a gradient method (in its error message).
EMBEDDINGS_RECIPE = """\
    embedding = model.get_layer("embedding")       # the Embedding layer
    rest = keras.Model(embedding.output, model.outputs)   # functional or Sequential
    embedded = embedding(ids)                      # (N, L, D) float32
    maps = {name}(rest)(embedded, targets)         # (N, L, D): a time series
    token_maps = tf.reduce_sum(tf.abs(maps), axis=-1)   # (N, L)"""


def find_layer(model, identifier, argument="output_layer"):
    """The layer of a Keras model named ``identifier`` (str) or at index ``identifier`` (int).

    Raises:
        InvalidTypeError: ``model`` is not a Keras model, ``identifier`` neither str nor int.
        InvalidArgumentError: no such layer; the message lists the model's layers.
    """
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            f"{argument} needs a Keras model (functional or Sequential) to pick a layer "
            f"from, got a {type(model).__name__}."
        )
    names = [layer.name for layer in model.layers]
    if isinstance(identifier, str):
        if identifier not in names:
            raise InvalidArgumentError(
                f"{argument} must name a layer of the model, got {identifier!r}; the "
                f"layers are {names}."
            )
        return model.get_layer(identifier)
    if isinstance(identifier, bool) or not isinstance(identifier, int):
        raise InvalidTypeError(
            f"{argument} must be a layer name (str) or index (int), got {identifier!r}."
        )
    if not -len(names) <= identifier < len(names):
        raise InvalidArgumentError(
            f"{argument} must be a layer index in [{-len(names)}, {len(names)}), got "
            f"{identifier}; the layers are {names}."
        )
    return model.layers[identifier]


#: Xplique's channel reducers: name -> the reduction over the last axis of (N, H, W, C).
REDUCERS = {"mean": tf.reduce_mean, "min": tf.reduce_min, "max": tf.reduce_max,
            "sum": tf.reduce_sum}


def check_reducer(reducer):
    """``reducer`` as one of :data:`REDUCERS`' names, or None.

    Raises:
        InvalidTypeError: neither None nor a string.
        InvalidArgumentError: a string that is not one of the names.
    """
    if reducer is None:
        return None
    if not isinstance(reducer, str):
        raise InvalidTypeError(
            f"reducer must be None or one of {sorted(REDUCERS)}, got {reducer!r} of type "
            f"{type(reducer).__name__}."
        )
    if reducer not in REDUCERS:
        raise InvalidArgumentError(
            f"reducer must be None or one of {sorted(REDUCERS)}, got {reducer!r}."
        )
    return reducer


def gradient_function(operator: Callable) -> Callable:
    """Xplique's ``gradient`` of an operator: g'(model, inputs, targets) -> the gradients
    of the operator's scores with respect to ``inputs`` (same shape as ``inputs``;
    ``targets`` as the operator reads them, e.g. one-hot rows for classification)."""

    def gradient(model, inputs, targets):
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        targets = tf.convert_to_tensor(targets, tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            scores = operator(model, inputs, targets)
        return tape.gradient(scores, inputs)

    return gradient


def batch_gradient_function(gradient: Callable) -> Callable:
    """Xplique's ``batch_gradient``: ``gradient`` on ``batch_size`` inputs at a time,
    f(model, inputs, targets, batch_size=None) -> gradients shaped like ``inputs``
    (None: one batch)."""

    def batch_gradient(model, inputs, targets, batch_size=None):
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        targets = tf.convert_to_tensor(targets, tf.float32)
        count = int(inputs.shape[0])
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise InvalidArgumentError(
                f"batch_size must be None or an integer >= 1, got {batch_size!r}.")
        step = count if batch_size is None else batch_size
        return tf.concat([gradient(model, inputs[start:start + step], targets[start:start + step])
                          for start in range(0, max(count, 1), step)], axis=0)

    return batch_gradient


class WhiteBoxExplainer(Explainer):
    """Base of the gradient methods (Saliency, Integrated Gradients, SmoothGrad, ...).

    Gradients of the operator's score with respect to the inputs are taken with
    ``tf.GradientTape`` inside one compiled step per batch of inputs. A method that
    averages over several evaluations per input (the points of Integrated Gradients'
    path, SmoothGrad's noisy copies) sets ``nb_evaluations``; the step then runs the
    (input, evaluation) pairs of its inputs through the model in chunks of ``batch_size``,
    so that every forward/backward pass holds ``batch_size`` evaluations (several inputs
    share a pass when one input's evaluations do not fill it) and memory stays bounded
    by ``batch_size``.

    The positional order is Xplique's: ``model, output_layer, batch_size, operator,
    reducer``; our extras are keyword-only.

    A subclass implements:

    - ``_attribute(model, inputs, targets, evaluations, *extras)`` -> per-evaluation
      contributions: (B, H, W, C * moments) when ``nb_evaluations > 1`` (they are summed
      per input; ``moments`` is the class attribute ``moments``, e.g. 2 for the gradient
      and its square), any per-input shape when it is 1;

    and may override ``_statistic(sums)`` (the per-channel map (B, H, W, C) from the
    summed contributions, e.g. the absolute value for Saliency; default: the sums),
    ``_reduce(sums)`` (default: ``_statistic`` then the channel ``reducer``; used for
    images, while tabular rows and time series get ``_statistic`` alone) and
    ``_extras(images)`` (tensors the step needs, e.g. SmoothGrad's noise).

    Args:
        model: a Keras model, or (except for ``output_layer`` and the methods that
            rewrite the model) any callable mapping a batch tensor to outputs with
            differentiable TensorFlow ops.
        output_layer: None (the model's output) or the name / index of the layer whose
            output is explained, e.g. the logits before a softmax (needs a Keras model).
        batch_size: gradient evaluations per forward/backward pass (bounds memory); None:
            everything in one pass. 64 as Xplique's base class (each method states its own).
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: how the channels of an image become one map: 'mean' (default, as
            Xplique), 'min', 'max', 'sum', or None to keep the channels (maps
            (N, H, W, C)). Applied after the method's own statistic (e.g. after the
            absolute value of Saliency). Images only, as Xplique: tabular rows (N, F)
            give maps (N, F) and time series (N, T, C) maps (N, T, C), whatever the
            reducer.
        verbose: show a progress bar.
        strategy: a ``tf.distribute.Strategy`` whose replicas share the forward batches
            (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Attributes:
        gradient: Xplique's ``gradient``, g'(model, inputs, targets) -> the gradients of
            the operator's scores with respect to the inputs (targets as the operator
            reads them: one-hot rows for classification).
        batch_gradient: the same, f(model, inputs, targets, batch_size=None), on
            ``batch_size`` inputs at a time.

    Raises:
        InvalidTypeError: ``output_layer`` given with a model that is not a Keras model;
            a ``reducer`` that is neither None nor a string.
        InvalidArgumentError: no such ``output_layer``; an unknown ``reducer`` name.

    Inputs: images (N, H, W, C), tabular rows (N, F) and time series (N, T, C) (the
    gradient with respect to each feature, or each (step, channel) cell). Token ids
    (integer (N, L)) are refused with InvalidArgumentError: there is no gradient through
    integer ids; explain the model from its embeddings instead (split it into the
    embedding layer and the rest, explain the rest on the embeddings (N, L, D) as a
    time series, sum the maps over D)::

        embedding = model.get_layer("embedding")       # the Embedding layer
        rest = keras.Model(embedding.output, model.outputs)
        embedded = embedding(ids)                      # (N, L, D) float32
        maps = Saliency(rest)(embedded, targets)       # (N, L, D): a time series
        token_maps = tf.reduce_sum(tf.abs(maps), axis=-1)   # (N, L)

    ``explain`` raises ModelCallError for a model TensorFlow cannot trace (gradients need
    TensorFlow operations; the black-box methods would run it eagerly) and for NaN or
    infinite gradients (e.g. tf.sqrt or tf.math.log at 0 in the model).
    """

    def _check_layout(self, layout):
        """Refuse token ids with the way to explain such a model (its embeddings)."""
        if layout.kind == "tokens":
            name = type(self).__name__
            shape = (None,) + layout.shape
            if "time_series" not in self.input_kinds:
                raise InvalidArgumentError(
                    f"{name} explains images (N, H, W, C); got token ids (integer inputs "
                    f"(N, L)) of shape {shape}, and there is no gradient through integer "
                    "ids. Explain a text model with Saliency, IntegratedGradients, ... on "
                    "its embeddings, or with a black-box method that masks tokens "
                    "(mask_token=...).")
            raise InvalidArgumentError(
                f"{name} cannot explain token ids (integer inputs (N, L)) of shape {shape}: "
                "there is no gradient through integer ids. Explain the model from its "
                "embeddings instead: split it into the embedding layer and the rest, "
                "explain the rest on the embedded inputs (N, L, D) as a time series, and "
                "sum the maps over D, e.g.\n" + EMBEDDINGS_RECIPE.format(name=name)
                + "\n(the signed tf.reduce_sum(maps, axis=-1) of GradientInput or "
                "IntegratedGradients is each token's contribution); or use a black-box "
                "method that masks tokens (mask_token=...).")
        super()._check_layout(layout)

    #: gradient evaluations averaged per input (1: one gradient per input).
    nb_evaluations = 1

    #: quantities stacked along the channels by ``_attribute`` when nb_evaluations > 1.
    moments = 1

    #: gradients need a model TensorFlow can trace and differentiate: no eager fallback.
    needs_gradients = True

    def __init__(self, model, output_layer=None, batch_size=64, operator=None,
                 reducer="mean", *, verbose=False, strategy=None):
        if output_layer is not None:
            layer = find_layer(model, output_layer)
            model = keras.Model(model.inputs, layer.output)
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.output_layer = output_layer
        self.reducer = check_reducer(reducer)
        self.gradient = gradient_function(self.operator)
        self.batch_gradient = batch_gradient_function(self.gradient)

    @abstractmethod
    def _attribute(self, model, inputs, targets, evaluations, *extras):
        """Contributions of a batch of evaluations; ``evaluations`` (B,) int64 in
        [0, nb_evaluations)."""

    def _statistic(self, sums):
        """The per-channel map (B, H, W, C) from the contributions summed per input."""
        return sums

    def _reduce(self, sums):
        """Maps (B, h, w, 1) (or (B, H, W, C) with reducer None) from the sums."""
        maps = self._statistic(sums)
        if self.reducer is None:
            return maps
        return REDUCERS[self.reducer](maps, axis=-1, keepdims=True)

    def _extras(self, images):
        """Extra float32 tensors passed to ``_attribute`` (drawn once per explain call)."""
        return ()

    def _gradients(self, model, inputs, targets):
        """Gradients (B, H, W, C) of the operator's scores with respect to ``inputs``.

        A model whose score does not depend on its input through differentiable
        operations has zero gradients, with a SobolTFWarning (e.g. an Embedding layer
        given float ids: a cast to integers has no gradient).
        """
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            scores = self.operator(model, inputs, targets)
        gradients = tape.gradient(scores, inputs)
        if gradients is None:   # known when the step is traced: warn once per trace
            warn(f"{type(self).__name__}: the score has no gradient with respect to the "
                 "inputs (the model ignores them, or reads them through an operation "
                 "without a gradient, e.g. an Embedding layer or a cast to integers), so "
                 "the maps are zeros. For a text model, explain it from its embeddings "
                 "(see the WhiteBoxExplainer docstring) or give integer token ids to a "
                 "black-box method with mask_token=...")
            return tf.zeros_like(inputs)
        return gradients

    def _explain(self, model, images, targets):
        extras = tuple(tf.convert_to_tensor(extra, tf.float32) for extra in self._extras(images))
        nb_evaluations = self.nb_evaluations
        chunk = self.batch_size or images.shape[0] * nb_evaluations
        attribute, moments = self._attribute, self.moments
        # the channel reducer is for images (as Xplique): tabular rows have one channel
        # in the engine, and a time series keeps its channels (N, T, C)
        kind = self._layout.kind if self._layout is not None else "image"
        reduce = self._reduce if kind == "image" else self._statistic

        def step(indices, images, targets, *extras):
            inputs, labels = tf.gather(images, indices), tf.gather(targets, indices)
            if nb_evaluations == 1:
                return reduce(attribute(model, inputs, labels, tf.zeros_like(indices), *extras))
            count = tf.shape(indices, out_type=tf.int64)[0]
            total = count * nb_evaluations
            sums = tf.concat([tf.zeros_like(inputs)] * moments, axis=-1)
            starts = tf.range(tf.constant(0, tf.int64), total, tf.constant(chunk, tf.int64))
            for start in starts:
                items = tf.range(start, tf.minimum(start + chunk, total))
                owners = items // nb_evaluations
                contributions = attribute(model, tf.gather(inputs, owners),
                                          tf.gather(labels, owners),
                                          items % nb_evaluations, *extras)
                sums += tf.math.unsorted_segment_sum(contributions, owners, count)
            return reduce(sums)

        def spec(tensor):
            return tf.TensorSpec([None] + tensor.shape[1:].as_list(), tf.float32)

        signature = [tf.TensorSpec([None], tf.int64), spec(images), spec(targets)]
        signature += [tf.TensorSpec(extra.shape, tf.float32) for extra in extras]
        key = ("gradients", kind, tuple(images.shape[1:]), tuple(targets.shape[1:]),
               tuple(tuple(extra.shape) for extra in extras))
        function = self._compiled(model, key, step, signature)
        what = f"the gradients of {images.shape[0]} input(s)"
        if nb_evaluations > 1:
            what += f" at {nb_evaluations} points each"
        return self._run_batches(function, images.shape[0], (images, targets) + extras, what,
                                 values="gradient attributions")
