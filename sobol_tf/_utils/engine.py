"""A model seen through an operator on a layout: the one object explainers, metrics and
MeGe build from their ``model`` and ``operator`` arguments.

:class:`ModelEngine` holds what both families used to build each in its own constructor:
the checked model, the resolved operator (Xplique's ``inference_function``), the
:class:`~sobol_tf._utils.scoring.Scorer` with its compiled steps and its
:class:`~sobol_tf._utils.batching.ModelMode`, Xplique's ``batch_inference_function``,
and the model views (the model called on engine batches (B, H, W, C) of a layout, one
per kind and shape). :meth:`ModelEngine.prepare` applies the shared input rules
(:func:`~sobol_tf._utils.data.prepare_inputs_targets`, then the layout of
:mod:`sobol_tf._utils.layouts`). Which targets an operator reads stays with the operator
(:mod:`sobol_tf.operators`, a layer above this one): the owner turns the raw targets
:meth:`ModelEngine.prepare` returns into rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from sobol_tf._utils.batching import CompiledStep, ModelMode, run_batches, scores_step
from sobol_tf._utils.data import check_model, model_input_shape, prepare_inputs_targets, to_numpy
from sobol_tf._utils.layouts import Layout, layout_of
from sobol_tf._utils.scoring import Scorer
from sobol_tf._utils.validation import check_positive_int
from sobol_tf.errors import InvalidArgumentError

#: f(model, inputs, targets, batch_size=None) -> (N,) scores: Xplique's
#: ``batch_inference_function``.
BatchInference = Callable[..., tf.Tensor]


#: one batch_inference_function per built-in operator, so that every explainer and
#: metric holds the same object (Xplique's ``batch_predictions`` is one function).
_BUILTIN_FUNCTIONS: dict = {}


def batch_inference(operator: Callable[..., Any]) -> BatchInference:
    """Xplique's ``batch_inference_function`` for ``operator``, on the library's loop.

    Args:
        operator: g(model, inputs, targets) -> (B,) scores (a resolved operator).

    Returns:
        f(model, inputs, targets, batch_size=None) -> float32 tf.Tensor (N,): the
        operator's score of each input, ``batch_size`` inputs per forward pass (None:
        all at once); a model TensorFlow cannot trace runs eagerly (one SobolTFWarning).
        ``targets`` are rows (N, K) as the operator reads them (one-hot rows for
        classification), as in Xplique.

    Example:
        >>> scores = batch_inference(operator)(model, inputs, one_hot, 32)
    """

    def batch_inference_function(model: Any, inputs: Any, targets: Any,
                                 batch_size: Optional[int] = None) -> tf.Tensor:
        model = check_model(model)
        inputs = tf.constant(to_numpy(inputs, "inputs").astype(np.float32))
        targets = tf.constant(to_numpy(targets, "targets").astype(np.float32))
        nb_inputs = int(inputs.shape[0])
        if targets.shape[0] != nb_inputs:
            raise InvalidArgumentError(
                f"targets has {targets.shape[0]} rows but inputs has {nb_inputs}; give one "
                "target row per input.")
        batch_size = nb_inputs if batch_size is None else check_positive_int(
            "batch_size", batch_size)
        signature = [tf.TensorSpec([None], tf.int64)] + [
            tf.TensorSpec([None] + a.shape[1:].as_list(), tf.float32) for a in (inputs, targets)]
        step = CompiledStep(scores_step(model, operator), signature, mode=ModelMode(),
                            eager_first=isinstance(model, keras.Model))
        return run_batches(step, nb_inputs, (inputs, targets), batch_size=batch_size,
                           verbose=False, title="batch_inference_function",
                           what="the inputs", one_score=True)

    if getattr(operator, "builtin", False):
        return _BUILTIN_FUNCTIONS.setdefault(getattr(operator, "name"), batch_inference_function)
    return batch_inference_function


@dataclass(frozen=True)
class PreparedInputs:
    """Inputs after the shared input rules.

    Attributes:
        layout: what the inputs are (:class:`~sobol_tf._utils.layouts.Layout`).
        images: float32 tf.Tensor (N, H, W, C), the inputs in the engine layout.
        targets: the targets as given, numpy, or None (the operator's rules make rows
            of them).
        inputs_shape: the inputs' shape as the caller gave them.
    """

    layout: Layout
    images: tf.Tensor
    targets: Optional[np.ndarray]
    inputs_shape: Tuple[int, ...]


class ModelEngine:
    """A model seen through an operator, on the layouts of the inputs it is given.

    Args:
        owner: the explainer or metric the engine works for (its ``batch_size``,
            ``verbose``, ``jit_compile`` and ``strategy`` are read at each run, see
            :class:`~sobol_tf._utils.scoring.Scorer`).
        model: a Keras model or a callable on batches (checked by
            :func:`~sobol_tf._utils.data.check_model`: an object with ``predict_proba``
            is called through it).
        operator: the resolved operator, g(model, inputs, targets) -> (B,) scores.
        transform: keyword-only; applied once to the checked model, e.g. an activation
            on its outputs (the metrics'); the result is :attr:`model`.
        eager_first: keyword-only; run a step's first one-batch job eagerly.
        eager_fallback: keyword-only; whether steps may run eagerly when the model
            cannot be traced (not for methods that need gradients).

    Attributes:
        checked_model: the model as given, checked.
        model: the model the views call (``transform(checked_model)``).
        operator: the operator (Xplique's ``inference_function``).
        scorer: the :class:`~sobol_tf._utils.scoring.Scorer` of every step.
        mode: the :class:`~sobol_tf._utils.batching.ModelMode` shared by every step.
        batch_inference_function: Xplique's attribute (:func:`batch_inference`).

    Raises:
        InvalidTypeError: ``model`` is not callable.

    Example:
        >>> engine = ModelEngine(metric, model, operators.get(None))
        >>> prepared = engine.prepare(inputs, targets, allowed_ranks=(2, 3, 4))
        >>> scores = engine.scorer.scores(engine.view(prepared.layout), prepared.images, rows)
    """

    def __init__(self, owner: Any, model: Any, operator: Callable[..., Any], *,
                 transform: Optional[Callable[[Any], Any]] = None,
                 eager_first: bool = False, eager_fallback: bool = True) -> None:
        self.checked_model = check_model(model)
        self.model = self.checked_model if transform is None else transform(
            self.checked_model)
        self.operator = operator
        self.scorer = Scorer(owner, operator, eager_first=eager_first,
                             eager_fallback=eager_fallback)
        self.mode = self.scorer.mode
        self.batch_inference_function = batch_inference(operator)
        self._views: Dict[Hashable, Any] = {}

    @property
    def inference_function(self) -> Callable[..., Any]:
        """The operator (Xplique's name)."""
        return self.operator

    def declared_input_shape(self) -> Optional[Tuple[Optional[int], ...]]:
        """The input shape the checked model declares (with its batch axis), or None."""
        return model_input_shape(self.checked_model)

    def prepare(self, inputs: Any, targets: Any = None, *,
                allowed_ranks: Sequence[int] = (2, 3, 4),
                pad_token: Optional[int] = None) -> PreparedInputs:
        """The shared input rules: check and normalise ``inputs`` and ``targets``
        (:func:`~sobol_tf._utils.data.prepare_inputs_targets`, against the shape the
        model declares), then see the inputs in the engine layout.

        Args:
            inputs: numpy, tf.Tensor or a tf.data.Dataset of (input, target) pairs.
            targets: as given, or None.
            allowed_ranks: ranks of ``inputs`` accepted.
            pad_token: the id of padding in token ids (None: no padding).

        Returns:
            :class:`PreparedInputs`.

        Raises:
            InvalidArgumentError, InvalidTypeError: what
                :func:`~sobol_tf._utils.data.prepare_inputs_targets` raises.
        """
        data = prepare_inputs_targets(inputs, targets,
                                      declared_shape=self.declared_input_shape(),
                                      allowed_ranks=tuple(allowed_ranks),
                                      require_targets=False)
        layout = layout_of(data.inputs, integer=data.integer, pad_token=pad_token)
        return PreparedInputs(layout=layout, images=layout.to_engine(data.inputs),
                              targets=data.targets, inputs_shape=tuple(data.inputs.shape))

    def view(self, layout: Layout, model: Any = None) -> Any:
        """The model as the engine calls it: on (B, H, W, C) batches of ``layout``'s
        engine layout, built once per kind and shape (and per ``model`` when another
        version of the model is given, e.g. a mixed-precision copy).

        Args:
            layout: the inputs' :class:`~sobol_tf._utils.layouts.Layout`.
            model: the model to view; None: :attr:`model`.

        Returns:
            a callable on engine batches.
        """
        model = self.model if model is None else model
        key = (id(model), layout.kind, layout.shape)
        if key not in self._views:
            self._views[key] = layout.wrap_model(model)
        return self._views[key]
