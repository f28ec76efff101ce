"""What every explanation metric shares.

:class:`ExplanationMetric` owns the API boundary of a metric, as the explainers' base
owns theirs: inputs and targets are normalised once, in ``__init__`` (numpy, tensors or
a tf.data.Dataset; one-hot rows or class ids), the model is wrapped with the optional
``activation``, the operator says which scalar is scored, and explanations are checked
against the inputs. The model seen through the operator on the inputs' layout is one
:class:`~sobol_tf._utils.engine.ModelEngine`, the object explainers build too; scoring
runs on its :class:`~sobol_tf._utils.scoring.Scorer`: a metric gives the masks of the
k-th perturbation of input i and a perturbation
(:class:`~sobol_tf.attributions.perturbations.Perturbation`), and the engine builds the
perturbed batch on the device, from indices (:meth:`Scorer.masked_scores
<sobol_tf._utils.scoring.Scorer.masked_scores>`, the explainers' path), so memory is
bounded by ``batch_size`` whatever the number of perturbations. Inputs of every kind (images, tabular rows, time
series, token ids) are seen by the engine as images (:mod:`sobol_tf._utils.layouts`).
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Union

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf import operators as operators_module
from sobol_tf._utils import check_positive_int, to_numpy
from sobol_tf._utils.batching import RunsEagerly, RunsOnStrategy, current_strategy
from sobol_tf._utils.engine import ModelEngine
from sobol_tf._utils.layouts import MAX_TOKEN_ID
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: an array given by the caller: numpy, a tf.Tensor or nested lists of numbers.
TensorLike = Any
#: what ``activation`` may be: None, a name or a callable on the outputs.
Activation = Union[None, str, Callable[[Any], Any]]
#: what ``baseline_mode`` may be: a number, an array or a callable on the inputs.
BaselineMode = Union[float, ArrayLike, Callable[[Any], Any]]

#: activations applied to the model's outputs before the operator, as in Xplique.
ACTIVATIONS = {"softmax": tf.nn.softmax, "sigmoid": tf.nn.sigmoid}

#: ranks of ``inputs`` the metrics accept: tabular rows (N, F) of floats or token ids
#: (N, L) of integers, time series (N, T, C), images (N, H, W, C) (the rule of
#: :mod:`sobol_tf._utils.layouts`, whose engine layout the metrics work in).
INPUT_RANKS = (2, 3, 4)


def check_token_id(name: str, value: Any, what: str = "a token id") -> int:
    """``value`` as an int token id in [0, MAX_TOKEN_ID).

    Raises:
        InvalidTypeError: not an integer (a float, even 1.0, an array, a callable).
        InvalidArgumentError: negative, or too large to be held exactly in float32.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(
            f"{name} must be {what}, an integer, for inputs of token ids (integer (N, L)), "
            f"got {value!r} ({type(value).__name__}).")
    if not 0 <= int(value) < MAX_TOKEN_ID:
        raise InvalidArgumentError(
            f"{name} must be {what} in [0, {MAX_TOKEN_ID}), got {value}.")
    return int(value)


def get_activation(identifier: Activation) -> Optional[Callable[[Any], Any]]:
    """Resolve ``activation``: None, 'softmax', 'sigmoid' or a callable on the outputs.

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither None, a string nor a callable.
    """
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() not in ACTIVATIONS:
            raise InvalidArgumentError(
                f"activation must be None, one of {sorted(ACTIVATIONS)} or a callable on "
                f"the model's outputs, got {identifier!r}."
            )
        return ACTIVATIONS[identifier.lower()]
    raise InvalidTypeError(
        f"activation must be None, 'softmax', 'sigmoid' or a callable, got "
        f"{type(identifier).__name__}."
    )


def declared_output_width(model: Any) -> Optional[int]:
    """The number of outputs (all axes but the batch's) a Keras model declares, or None
    (no ``output_shape``, several outputs, or an unknown size)."""
    try:
        shape = getattr(model, "output_shape", None)
    except Exception:  # noqa: BLE001 - a property that cannot answer declares nothing
        return None
    if (isinstance(shape, tuple) and len(shape) >= 2
            and all(isinstance(d, int) and d > 0 for d in shape[1:])):
        return int(np.prod(shape[1:]))
    return None


def with_activation(model: Callable[..., Any], activation: Optional[Callable[[Any], Any]]
                    ) -> Callable[..., Any]:
    """``model`` followed by ``activation`` (to each output of a model with several);
    ``model`` itself when ``activation`` is None."""
    if activation is None:
        return model

    def activated(x):
        return tf.nest.map_structure(lambda output: activation(tf.cast(output, tf.float32)),
                                     model(x))

    return activated


def broadcast_one_output(targets: Optional[np.ndarray], outputs: Optional[np.ndarray],
                         operator: Any) -> Optional[np.ndarray]:
    """Targets of width K > 1 for a model of one output, read as Xplique reads them.

    A built-in operator scores sum(outputs * row); Xplique broadcasts a (B, 1) output
    against (B, K) rows, which scores output * sum(row) whatever class the row picks.
    The same scores come from the row sums as width-1 targets, which is what this
    returns (with one SobolTFWarning, since a row picking a class the model does not
    have is then scored as its one output). Anything else is returned unchanged.
    """
    if targets is None or outputs is None or not operator.builtin:
        return targets
    targets = np.asarray(targets)
    nb_outputs = int(np.prod(np.shape(outputs)[1:]))
    if targets.ndim != 2 or targets.shape[1] == 1 or nb_outputs != 1:
        return targets
    warn(
        f"the model has 1 output but targets has width {targets.shape[1]}: as Xplique, "
        "that output is scored for every target row, times the sum of the row, whatever "
        "class the row picks (for a one-output sigmoid classifier, class 0 is then scored "
        "as p, not 1 - p). Give targets of shape (N, 1) to say so, or a model with one "
        "output per class.")
    return targets.sum(axis=1, keepdims=True)


class ExplanationMetric(RunsEagerly, RunsOnStrategy, ABC):
    """Base of the metrics that score explanations of fixed inputs.

    Args:
        model: a Keras model or any callable mapping a float32 batch (B, ...) to outputs
            (B, K); outputs of any structure with an ``operator`` that picks one; a model
            TensorFlow cannot trace runs eagerly (one SobolTFWarning), as for explainers.
        inputs: by the rank rule of :mod:`sobol_tf._utils.layouts`: images
            (N, H, W, C) (grayscale (N, H, W, 1)), time series (N, T, C), tabular rows
            (N, F) of floats, or token ids (N, L) of integers (the model then gets int32
            ids); as numpy, tf.Tensor, or a tf.data.Dataset of (input, target) pairs,
            batched or not. A metric that takes a keyword-only ``pad_token`` (the id of
            padding in token ids) sets ``self.pad_token`` before calling this
            constructor, which checks it (an integer, token ids only).
        targets: one-hot rows (N, K) or class ids (N,); None: the predicted class (or the
            targets the dataset carries). Rows of width K > 1 for a model of one output
            are broadcast as Xplique does, with a SobolTFWarning: each input is scored
            as that output times the sum of its row (its one output for one-hot rows,
            whatever class the row picks). Width-1 rows for a model of several outputs
            are refused (Xplique would score the row times the sum of the outputs).
        batch_size: inputs per forward pass; bounds memory. None: everything in one pass
            (as Xplique).
        operator: None / 'classification', 'regression', another of Xplique's tasks (a
            :class:`sobol_tf.tasks.Tasks` member or its name), or g(model, inputs, targets).
        activation: None, 'softmax' or 'sigmoid', applied to the model's outputs before
            the operator (e.g. to score probabilities of a model that outputs logits); to
            each output of a model with several.
        verbose: show a progress bar.
        strategy: a ``tf.distribute.Strategy`` whose replicas (devices) share every
            forward batch, as for explainers (see
            :class:`~sobol_tf.attributions.base.Explainer`); scores equal those of one
            device up to float rounding. None (default): the strategy of the enclosing
            ``strategy.scope()`` when the metric is built, else one device. Not in
            Xplique.

    Attributes:
        model: the model as scored: ``activation`` applied to its outputs (as Xplique).
        inputs: float32 tf.Tensor (N, H, W, C), the engine layout: images as given,
            time series (N, 1, T, C), tabular rows and token ids (N, 1, F, 1) (token ids
            held exactly as floats).
        targets: float32 tf.Tensor (N, K).
        inference_function: the resolved operator, g(model, inputs, targets) -> (B,)
            scores (as Xplique's attribute of that name).
        batch_inference_function: f(model, inputs, targets, batch_size=None) -> (N,)
            scores, the operator over batches on the library's loop (models that cannot
            be traced run eagerly), as Xplique's attribute of that name; e.g.
            ``metric.batch_inference_function(metric.model, x, y, 32)``.

    Raises:
        InvalidTypeError: ``model`` not callable, arguments of the wrong type, a built-in
            operator with a model of several outputs, ``strategy`` neither None nor a
            ``tf.distribute.Strategy``.
        InvalidArgumentError: bad shapes or values (the message says which and why), one
            input without its batch axis, NaN or infinite targets.
        ModelCallError: the model raised on the clean inputs or gave NaN / infinite
            outputs (scoring raises it too, with the count of non-finite scores). The
            constructor calls the model only when it needs its outputs: targets None,
            a model that declares no output shape (Keras models do), or inputs of
            another shape than the model declares.

    Warns:
        SobolTFWarning: all-zero target rows with a built-in operator; a model that runs
            eagerly.
    """

    #: the id of padding in token ids (set by the metrics that take ``pad_token``).
    pad_token: Optional[int] = None

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, operator: Any = None,
                 activation: Activation = None, *,
                 verbose: bool = False, strategy: Optional[tf.distribute.Strategy] = None,
                 ) -> None:
        self.strategy = current_strategy() if strategy is None else strategy
        self.batch_size = None if batch_size is None else check_positive_int(
            "batch_size", batch_size)
        self.operator = operators_module.get(operator)
        self.activation = activation
        activate = get_activation(activation)
        #: the model seen through the operator (:class:`~sobol_tf._utils.engine.ModelEngine`).
        #: A Keras model runs a one-batch job eagerly the first time (cheaper than a
        #: trace); other callables are traced first, so an untraceable one is reported
        #: (the eager-path warning) when the metric is built.
        self._engine = engine = ModelEngine(
            self, model, self.operator, transform=lambda m: with_activation(m, activate),
            eager_first=isinstance(model, keras.Model))
        self.model = engine.model
        self.verbose = bool(verbose)
        self._scorer = engine.scorer
        self._mode = engine.mode
        self.inference_function = engine.inference_function
        self.batch_inference_function = engine.batch_inference_function

        pad_token = getattr(self, "pad_token", None)
        if pad_token is not None:
            pad_token = check_token_id("pad_token", pad_token, "the id of padding")
        prepared = engine.prepare(inputs, targets, allowed_ranks=INPUT_RANKS,
                                  pad_token=pad_token)
        if pad_token is not None:
            self.pad_token = pad_token
        #: what the inputs are (:class:`sobol_tf._utils.layouts.Layout`).
        self._layout = prepared.layout
        self.inputs = prepared.images
        self._model_view = engine.view(self._layout)
        outputs = None
        if operators_module.needs_outputs(prepared.targets, self.operator):
            # the targets' check needs only the width, when the model declares it and the
            # inputs are of the shape it declares (else the model is tried at once)
            declared = engine.declared_input_shape()
            fits = declared is not None and all(
                d is None or d == n for d, n in zip(declared[1:], prepared.inputs_shape[1:]))
            width = declared_output_width(engine.checked_model) \
                if prepared.targets is not None and fits else None
            outputs = self._predict() if width is None else np.zeros((1, width), np.float32)
        targets = broadcast_one_output(prepared.targets, outputs, self.operator)
        self.targets = operators_module.prepare_targets(targets, outputs, self.operator)

    # -- public API -------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, explanations: ArrayLike) -> float:
        """Score ``explanations`` (one map per input); returns a float."""

    def __call__(self, explanations: ArrayLike) -> float:
        """Alias of :meth:`evaluate`."""
        return self.evaluate(explanations)

    # -- shared machinery -------------------------------------------------------------
    def _to_images(self, inputs):
        """Inputs in the caller's layout as the engine's (N, H, W, C)."""
        return self._layout.to_engine(inputs)

    def _from_images(self, images):
        """The inverse of :meth:`_to_images`."""
        return self._layout.from_engine_inputs(images)

    @property
    def _input_shape(self):
        """The inputs' shape as the caller gave it."""
        return (self.inputs.shape[0],) + self._layout.shape

    def _predict(self):
        """The model's outputs (after the activation) on the clean inputs, (N, K) numpy."""
        return self._scorer.outputs(self._model_view, self.inputs)

    def _clean_scores(self):
        """The operator's scores on the clean inputs, (N,) float32 tensor."""
        return self._scorer.scores(self._model_view, self.inputs, self.targets)

    def _baselines(self, baseline_mode):
        """Resolve ``baseline_mode`` into baselines (1, H, W, C) or (N, H, W, C).

        For token ids (integer (N, L) inputs) it must be an integer: the mask token id
        that removed tokens become. Otherwise a number is a constant baseline; a callable is called once on all the inputs (in
        the caller's layout) and must return one baseline per input (e.g. a blur); an
        array must broadcast to the inputs' shape.

        Raises:
            InvalidTypeError: not a number, an array or a callable; for token ids, not an
                integer.
            InvalidArgumentError: a shape that does not broadcast, NaN or inf; a token id
                outside [0, 2**24).
        """
        shape = self._input_shape
        if self._layout.kind == "tokens":
            token = check_token_id("baseline_mode", baseline_mode,
                                   "the mask token id (what removed tokens become)")
            return tf.fill((1,) + tuple(self.inputs.shape[1:]), float(token))
        if isinstance(baseline_mode, numbers.Real) and not isinstance(baseline_mode, bool):
            if not np.isfinite(baseline_mode):
                raise InvalidArgumentError(
                    f"baseline_mode must be finite, got {baseline_mode!r}.")
            return tf.fill((1,) + tuple(self.inputs.shape[1:]), float(baseline_mode))
        if callable(baseline_mode):
            value = baseline_mode(self._from_images(self.inputs))
            source = "baseline_mode(inputs) returned"
        elif isinstance(baseline_mode, (np.ndarray, list, tuple)) or tf.is_tensor(baseline_mode):
            value = baseline_mode
            source = "baseline_mode has"
        else:
            raise InvalidTypeError(
                "baseline_mode must be a number, an array broadcastable to the inputs or a "
                f"callable on the inputs, got {type(baseline_mode).__name__}."
            )
        value = to_numpy(value, "baseline_mode").astype(np.float32)
        try:
            value = np.broadcast_to(value, shape)
        except ValueError:
            raise InvalidArgumentError(
                f"{source} shape {value.shape}, which does not broadcast to the inputs' "
                f"shape {shape}; give one baseline per input or per pixel."
            ) from None
        if not np.all(np.isfinite(value)):
            raise InvalidArgumentError(f"{source} NaN or infinite values.")
        return tf.reshape(tf.constant(value), self.inputs.shape)

    def _explanation_maps(self, explanations, *, absolute=False, nb_inputs=None):
        """Check ``explanations`` against the inputs; return float32 maps (N, H, W, k)
        in the engine layout, one value per feature the metrics perturb.

        ============  ==============================  ==========================
        inputs        explanations accepted           maps returned
        ============  ==============================  ==========================
        images        (N, H, W), (N, H, W, 1),        (N, H, W, 1): a feature is a
                      (N, H, W, C)                    pixel, channels averaged
        tabular       (N, F)                          (N, 1, F, 1)
        tokens        (N, L)                          (N, 1, L, 1)
        time series   (N, T, C), (N, T, 1), (N, T)    (N, 1, T, C): a feature is a
                                                      (step, channel) cell; one
                                                      value per step is shared by
                                                      its channels
        ============  ==============================  ==========================

        Channels of image explanations are averaged: sign kept, or of the absolute
        values when ``absolute`` (which takes absolute values in every case).
        ``nb_inputs``: the number of maps expected (default: one per input of the metric).

        Raises:
            InvalidArgumentError: a shape that does not match the inputs, NaN or inf.
            InvalidTypeError: explanations that do not hold numbers.
        """
        maps = to_numpy(explanations, "explanations")
        _, height, width, channels = self.inputs.shape
        nb_inputs = self.inputs.shape[0] if nb_inputs is None else nb_inputs
        kind = self._layout.kind
        if kind in ("tabular", "tokens"):  # one attribution per feature / token
            valid = maps.shape == (nb_inputs, width)
            allowed = f"({nb_inputs}, {width})"
        elif kind == "time_series":
            valid = (maps.ndim in (2, 3) and maps.shape[:2] == (nb_inputs, width)
                     and (maps.ndim == 2 or maps.shape[2] in (1, channels)))
            allowed = (f"({nb_inputs}, {width}, {channels}) (one attribution per step and "
                       f"channel), ({nb_inputs}, {width}, 1) or ({nb_inputs}, {width}) (one "
                       "per step, shared by its channels)")
        else:
            valid = (maps.ndim in (3, 4) and maps.shape[:3] == (nb_inputs, height, width)
                     and (maps.ndim == 3 or maps.shape[3] in (1, channels)))
            allowed = f"({nb_inputs}, {height}, {width}) or ({nb_inputs}, {height}, {width}, 1)"
            if channels > 1:
                allowed += f" or ({nb_inputs}, {height}, {width}, {channels})"
        if not valid:
            raise InvalidArgumentError(
                f"explanations has shape {maps.shape} but inputs has shape "
                f"{(nb_inputs,) + self._input_shape[1:]}; give one map per input: {allowed}."
            )
        if not np.issubdtype(maps.dtype, np.number) and maps.dtype != np.bool_:
            raise InvalidTypeError(f"explanations must hold numbers, got dtype {maps.dtype}.")
        maps = maps.astype(np.float32)
        if not np.all(np.isfinite(maps)):
            raise InvalidArgumentError(
                f"explanations contain {int(np.sum(~np.isfinite(maps)))} NaN or infinite "
                "value(s); a ranking of the features needs finite attributions."
            )
        if absolute:
            maps = np.abs(maps)
        if kind == "time_series":
            maps = maps.reshape(nb_inputs, 1, width, -1)
            return tf.constant(np.broadcast_to(maps, (nb_inputs, 1, width, channels)))
        if kind in ("tabular", "tokens"):
            return tf.constant(maps[:, None, :, None])
        if maps.ndim == 4:
            maps = maps.mean(axis=-1)
        return tf.constant(maps[..., None])

    @property
    def _feature_channels(self):
        """Channels of a feature in the engine layout: C for time series (a feature is
        a (step, channel) cell), 1 otherwise (a pixel moves with all its channels)."""
        return int(self.inputs.shape[-1]) if self._layout.kind == "time_series" else 1

    def _pads(self, images):
        """Padded positions of token ids ``images`` in the engine layout (bool, the
        images' shape), or None (no ``pad_token``, or inputs that are not tokens)."""
        pad_token = getattr(self, "pad_token", None)
        if pad_token is None or self._layout.kind != "tokens":
            return None
        return tf.equal(images, float(pad_token))


class ExplainerMetric(ExplanationMetric):
    """Base of the metrics that score an explainer rather than fixed explanations
    (Xplique's ``ExplainerMetric``): ``evaluate(explainer) -> float`` calls the explainer
    on the metric's inputs (and on inputs or models it derives from them).

    Args, Attributes and Raises: as :class:`ExplanationMetric`.
    """

    @abstractmethod
    def evaluate(self, explainer: Any) -> float:  # type: ignore[override]
        """Score ``explainer`` (any callable ``explainer(inputs, targets) -> maps``)."""

    def __call__(self, explainer: Any) -> float:  # type: ignore[override]
        """Alias of :meth:`evaluate`."""
        return self.evaluate(explainer)

    def _explanations(self, explainer, inputs=None, targets=None):
        """``explainer`` called on ``inputs`` (engine layout; default: the metric's) and
        ``targets`` (default: the metric's), its maps checked and returned as the engine's
        (N, H, W) float32 maps (:meth:`_explanation_maps`)."""
        inputs = self.inputs if inputs is None else inputs
        targets = self.targets if targets is None else targets
        maps = explainer(self._from_images(inputs), targets)
        return self._explanation_maps(maps, nb_inputs=int(inputs.shape[0]))
