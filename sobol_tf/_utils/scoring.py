"""The scoring engine shared by explainers and metrics.

Every black-box explainer and every metric asks the same thing of a model: its outputs
and scores on the clean inputs, and its scores on perturbed inputs, where the k-th
perturbation of input i is built on the device from indices, several inputs sharing a
forward batch. :class:`Scorer` does that once for all of them: it keeps the compiled
steps (one per model view and shapes, on :class:`~sobol_tf._utils.batching.CompiledStep`
and :func:`~sobol_tf._utils.batching.run_batches`), the model's mode (compiled or eager)
and the batch size; a caller supplies only ``build(input_ids, perturbation_ids, inputs,
*extras)``, the perturbed batch.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from sobol_tf._utils.batching import (CompiledStep, ModelMode, outputs_step, run_batches,
                                      scores_step)


def signature_of(arguments: Sequence[tf.Tensor]) -> List[tf.TensorSpec]:
    """TensorSpecs of ``(indices, *arguments)``: the first axis of every argument of rank
    >= 1 may vary between calls (scalars stay scalars)."""
    return [tf.TensorSpec([None], tf.int64)] + [
        tf.TensorSpec([None] + a.shape[1:].as_list() if a.shape.rank else [], a.dtype)
        for a in arguments]


def shapes_key(arguments: Sequence[tf.Tensor]) -> Tuple[Tuple[Any, str], ...]:
    """What a compiled step depends on besides its name: the arguments' trailing shapes
    and dtypes."""
    return tuple((tuple(a.shape[1:]) if a.shape.rank else (), a.dtype.name)
                 for a in arguments)


class Scorer:
    """Scores of a model under an operator, clean or perturbed, batch by batch.

    Args:
        owner: the explainer or metric the scorer works for; its current
            ``batch_size`` (items per forward pass, None: everything in one pass),
            ``verbose``, ``jit_compile`` and ``strategy`` (if it has them) are read at each
            run, so that setting them on the owner takes effect; its class name titles progress bars.
        operator: the resolved operator g(model, inputs, targets) -> (B,) scores.
        eager_first: run a step's first one-batch job eagerly (see
            :class:`~sobol_tf._utils.batching.CompiledStep`).
        eager_fallback: whether steps may run eagerly when the model cannot be traced.

    Attributes:
        mode: the :class:`~sobol_tf._utils.batching.ModelMode` shared by every step.
    """

    def __init__(self, owner: Any, operator: Any, *, eager_first: bool = False,
                 eager_fallback: bool = True) -> None:
        self.owner = owner
        self.operator = operator
        self.eager_first = eager_first
        self.eager_fallback = eager_fallback
        self.mode = ModelMode()
        self._functions: Dict[Any, CompiledStep] = {}

    def compiled(self, model: Any, key: Sequence[Hashable], python_step: Callable[..., Any],
                 input_signature: Sequence[tf.TensorSpec]) -> CompiledStep:
        """``python_step`` compiled with its batch loop, once per ``key`` and model.

        ``key`` must name everything the step's closure depends on besides the model,
        the owner's strategy and the arguments' shapes: a later call with an equal key
        reuses the first step. Under a strategy, each batch is split over its replicas
        (:func:`~sobol_tf._utils.batching.distributed`).
        """
        strategy = getattr(self.owner, "strategy", None)
        key = (id(model), id(strategy)) + tuple(key)
        if key not in self._functions:
            self._functions[key] = CompiledStep(
                python_step, input_signature, mode=self.mode,
                jit_compile=bool(getattr(self.owner, "jit_compile", False)),
                eager_fallback=self.eager_fallback, eager_first=self.eager_first,
                strategy=strategy)
        return self._functions[key]

    def run(self, function: CompiledStep, nb_items: int, arguments: Sequence[Any], what: str,
            **options: Any) -> tf.Tensor:
        """Run a step of :meth:`compiled` over every batch of ``nb_items`` item indices
        (``options``: those of :func:`~sobol_tf._utils.batching.run_batches`)."""
        return run_batches(function, nb_items, arguments,
                           batch_size=self.owner.batch_size or max(nb_items, 1),
                           verbose=bool(self.owner.verbose), title=type(self.owner).__name__,
                           what=what, **options)

    def run_step(self, model: Any, name: Hashable, python_step: Callable[..., Any],
                 nb_items: int, arguments: Sequence[Any], what: str, **options: Any
                 ) -> tf.Tensor:
        """Compile ``python_step(indices, *arguments)`` once per name and shapes, run it."""
        arguments = tuple(tf.convert_to_tensor(a) for a in arguments)
        function = self.compiled(model, (name,) + shapes_key(arguments), python_step,
                                 signature_of(arguments))
        return self.run(function, nb_items, arguments, what, **options)

    # -- clean inputs -----------------------------------------------------------------
    def outputs(self, model: Any, inputs: tf.Tensor) -> np.ndarray:
        """The model's outputs on the clean inputs, (N, K) numpy."""
        step = outputs_step(model, self.operator.name, self.operator.builtin)
        return self.run_step(model, "predict", step, inputs.shape[0], (inputs,),
                             "the clean inputs", values="outputs of the model").numpy()

    def scores(self, model: Any, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The operator's scores on the clean inputs, (N,) float32 tensor."""
        return self.run_step(model, "scores", scores_step(model, self.operator),
                             inputs.shape[0], (inputs, targets), "the clean inputs",
                             one_score=True)

    # -- perturbed inputs -------------------------------------------------------------
    def perturbed_scores(self, model: Any, name: Hashable, build: Callable[..., tf.Tensor],
                         inputs: tf.Tensor, targets: tf.Tensor, nb_perturbations: int,
                         extras: Sequence[tf.Tensor] = (), what: Optional[str] = None
                         ) -> tf.Tensor:
        """Scores (N, P) of every input under each of its ``P`` perturbations.

        Items are the flat (input, perturbation) pairs, item ``i * P + k`` the k-th
        perturbation of input i, cut into full batches (several inputs share a batch
        when one input's perturbations do not fill it).

        Args:
            model: the model as the steps call it (engine layout).
            name: the step's name (one compiled step per name, model and shapes).
            build: ``build(input_ids, perturbation_ids, inputs, *extras)`` -> the perturbed
                batch (B, ...), traced inside the compiled step; ids are int64 (B,).
            inputs: (N, ...) float32 tensor.
            targets: (N, K) float32 tensor.
            nb_perturbations: P, perturbations per input.
            extras: further tensors ``build`` reads (masks, baselines, ranks, ...).
            what: what is evaluated, for progress bars and errors.

        Returns:
            float32 tf.Tensor (N, P).
        """
        nb_inputs = int(inputs.shape[0])
        operator = self.operator
        per_input = tf.constant(nb_perturbations, tf.int64)

        def step(indices, per_input, inputs, targets, *extras):
            input_ids = indices // per_input
            perturbed = build(input_ids, indices % per_input, inputs, *extras)
            return operator(model, perturbed, tf.gather(targets, input_ids))

        what = what or f"{nb_perturbations} perturbations of {nb_inputs} input(s)"
        scores = self.run_step(model, name, step, nb_inputs * nb_perturbations,
                               (per_input, inputs, targets) + tuple(extras), what,
                               items_per_input=nb_perturbations, one_score=True)
        return tf.reshape(scores, (nb_inputs, nb_perturbations))

    def masked_scores(self, model: Any, name: Hashable, perturbation: Any, inputs: tf.Tensor,
                      targets: tf.Tensor, baselines: tf.Tensor, nb_perturbations: int,
                      masks_of: Callable[..., tf.Tensor], extras: Sequence[tf.Tensor] = (),
                      what: Optional[str] = None, *, broadcast_one_input: bool = False,
                      jit_compile: bool = False) -> tf.Tensor:
        """Scores (N, P) of every input perturbed by each of its ``P`` masks: the path
        masks -> perturbation -> scores shared by the explainers and the metrics.

        Args:
            model, name, inputs, targets, nb_perturbations, what: as
                :meth:`perturbed_scores`.
            perturbation: an object with ``apply(inputs, masks, baselines)`` (a
                :class:`~sobol_tf.attributions.perturbations.Perturbation`).
            baselines: (1, H, W, C) or (N, H, W, C) float32, what a masked-out value
                becomes (one row for every input, or one per input).
            masks_of: ``masks_of(input_ids, perturbation_ids, *extras)`` -> masks
                (B, H, W, k) of the batch, traced inside the compiled step.
            extras: further tensors ``masks_of`` reads.
            broadcast_one_input: keyword-only; the perturbation is elementwise with
                broadcasting: a batch of one input's masks perturbs that input broadcast
                (1, H, W, C) instead of a gathered copy per mask.
            jit_compile: keyword-only; XLA-compile the batch's masks and perturbation
                (fused with their gathers; the model stays out of XLA).

        Returns:
            float32 tf.Tensor (N, P).
        """
        apply = perturbation.apply

        def build(input_ids, perturbation_ids, inputs, baselines, *extras):
            masks = masks_of(input_ids, perturbation_ids, *extras)

            def several_inputs():
                return apply(tf.gather(inputs, input_ids), masks,
                             gather_rows(baselines, input_ids))

            if not broadcast_one_input:
                return several_inputs()

            def one_input():  # the usual batch: broadcast one input over its masks
                return apply(tf.gather(inputs, input_ids[:1]), masks,
                             gather_rows(baselines, input_ids[:1]))

            return tf.cond(input_ids[0] == input_ids[-1], one_input, several_inputs)

        if jit_compile:
            build = tf.function(build, jit_compile=True)
        key = (name, id(perturbation), broadcast_one_input, jit_compile)
        return self.perturbed_scores(model, key, build, inputs, targets, nb_perturbations,
                                     (baselines,) + tuple(extras), what)


def upsample_masks(masks: tf.Tensor, height: int, width: int, method: str = "nearest"
                   ) -> tf.Tensor:
    """Masks (B, h, w, k) at the input size (B, H, W, k): resized with ``method`` (a
    tf.image.resize method), kept as they are when already (H, W). The one upsampling of
    the explainers' masks and of the metrics' subsets."""
    if masks.shape[1] == height and masks.shape[2] == width:
        return masks
    return tf.image.resize(masks, (height, width), method=method)


def gather_rows(tensor: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    """Rows ``ids`` of ``tensor``, or its one row for every id when it has one row (a
    baseline shared by every input)."""
    last = tf.shape(tensor, out_type=tf.int64)[0] - 1
    return tf.gather(tensor, tf.minimum(ids, last))
