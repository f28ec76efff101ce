"""Base classes of every explainer.

:class:`Explainer` owns the API boundary shared by all methods: checking and
normalising inputs and targets, the operator, running the model on clean inputs, and
the output layout. :class:`BlackBoxExplainer` adds the perturbation engine shared by
every mask-based method (Sobol, RISE, Occlusion, HSIC): a method says only which masks
it draws, how a mask perturbs an input, and how scores become a map.
"""
from __future__ import annotations

from typing import Any, Iterator

from abc import ABC, abstractmethod

import keras
import numpy as np
import tensorflow as tf

from sobol_tf import operators as operators_module
from sobol_tf._utils import (check_choice, check_positive_int, check_seed,
                             prepare_inputs_targets)
from sobol_tf._utils.batching import RunsEagerly, RunsOnStrategy, current_strategy
from sobol_tf._utils.data import model_input_shape
from sobol_tf._utils.engine import ModelEngine
from sobol_tf._utils.layouts import check_kind, layout_of
from sobol_tf._utils.scoring import gather_rows, upsample_masks
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: Upsampled masks are kept in memory, computed once per input size, when they take at
#: most this many bytes; bigger ones are upsampled batch by batch on the device so that
#: memory stays bounded by ``batch_size`` (see README, "Memory").
MASK_CACHE_BYTES = 256 * 2**20

#: masks are upsampled this many at a time outside the batches (the cache, estimators
#: that read every mask at the input size): bounds the transient memory.
MASK_CHUNK = 256

#: built-in (elementwise) perturbations run XLA-compiled, fused with their gathers.
XLA_PERTURBATION = True
XLA_RESIZE_METHODS = ("nearest", "bilinear")

#: mixed-precision options: the Keras dtype policy the model is rebuilt under.
MIXED_PRECISION_POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def _mixed_precision_clone(model, name):
    """A copy of a Keras model whose layers compute in a mixed dtype policy."""
    policy = MIXED_PRECISION_POLICIES[name]

    def clone_layer(layer):
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


class Explainer(RunsEagerly, RunsOnStrategy, ABC):
    """Common base of every explainer.

    Args:
        model: a Keras 3 model, a tf.keras model, or any callable mapping a float32 batch
            (B, ...) to outputs (B, K) (or (B,)); with an ``operator`` that picks one,
            outputs of any structure (list, tuple, dict). A model TensorFlow cannot trace
            (numpy code, ``model.predict_proba`` of a scikit-learn model) runs eagerly,
            slower, with one :class:`~sobol_tf.errors.SobolTFWarning`. An object that is
            not callable but has ``predict_proba`` (a scikit-learn classifier) is run
            through that method, as in Xplique.
        batch_size: number of inputs (clean or perturbed) per forward pass. Bounds memory.
            None: everything in one pass (as Xplique's ``batch_size=None``; memory then
            grows with the job).
        operator: the scalar explained per input: None or 'classification' (the output of
            the target class), 'regression', another of Xplique's tasks ('semantic
            segmentation', 'object detection', ... or a :class:`sobol_tf.tasks.Tasks`
            member; see README, "Operators and tasks"), or a callable
            g(model, inputs, targets) returning (batch,) scores.
        verbose: show a progress bar during long work.
        jit_compile: XLA-compile the steps that call the model (off by default: the first
            call compiles for a while; a gain mostly on GPUs).
        mixed_precision: None (default), 'float16' or 'bfloat16': run a copy of a Keras
            model under that mixed dtype policy (faster on recent GPUs; scores then differ
            from float32 by the half-precision rounding, so it is off by default).
        strategy: a ``tf.distribute.Strategy`` whose replicas (devices) share every
            forward batch (``strategy.run`` on one slice of the batch per replica, inside
            the compiled step), e.g. ``tf.distribute.MirroredStrategy()`` over the GPUs;
            the maps equal those of one device up to float rounding. None (default): the
            strategy of the enclosing ``strategy.scope()`` when the explainer is built,
            else one device. Gradient methods split their batches too (each replica
            takes the gradients of its slice). A model that runs eagerly runs on one
            device. Build a Keras model under the same scope to mirror its weights on
            every device (else every replica reads them from where they are; with
            ``jit_compile`` it must be, since XLA cannot read weights on another device). Not in
            Xplique. Subclasses accept it from this base class (or set
            ``explainer.strategy`` after construction).

    Attributes:
        inference_function: the resolved operator, g(model, inputs, targets) -> (B,)
            scores (Xplique's attribute of that name).
        batch_inference_function: f(model, inputs, targets, batch_size=None) -> (N,)
            scores of the operator on every input, batch by batch (Xplique's attribute);
            targets are rows (N, K), e.g. one-hot rows.

    Raises:
        InvalidTypeError: ``model`` is not callable, ``batch_size`` not an integer,
            ``mixed_precision`` with a model that is not a Keras model, ``strategy``
            neither None nor a ``tf.distribute.Strategy``.
        InvalidArgumentError: ``batch_size`` < 1, an unknown operator name.
    """

    #: the kinds of inputs a method explains (see :mod:`sobol_tf._utils.layouts`):
    #: 'image' (N, H, W, C), 'tabular' (N, F), 'time_series' (N, T, C), 'tokens' (N, L).
    input_kinds: tuple[str, ...] = ("image", "tabular", "time_series")

    def __new__(cls, *args, **kwargs):
        # the arguments the explainer is built with, so that the same explainer can be
        # built again on another model (ModelRandomizationMetric): a model cannot simply
        # be swapped, since steps, model views and derived models are built from it.
        explainer = super().__new__(cls)
        explainer._init_arguments = (args, dict(kwargs))
        return explainer

    @property
    def model(self) -> Any:
        """The model explained, set when the explainer is built."""
        return self.__dict__["_model"]

    @model.setter
    def model(self, value: Any) -> None:
        if "_model" in self.__dict__:
            raise InvalidArgumentError(
                f"{type(self).__name__}.model cannot be replaced: its compiled steps, model "
                "views and derived models were built from the first model and would keep "
                "explaining it. Build a new explainer on the other model, e.g. "
                "type(explainer)(new_model, ...) with the same arguments.")
        self.__dict__["_model"] = value

    def _set_model_in_constructor(self, model):
        """Replace the model from a subclass's constructor, before anything is built from
        it (e.g. GuidedBackprop's copy with its ReLU gradients overridden)."""
        self.__dict__["_model"] = self._engine.model = model

    def __init__(self, model: Any, *, batch_size: int | None = 64, operator: Any = None,
                 verbose: bool = False, jit_compile: bool = False,
                 mixed_precision: Any = None, strategy: Any = None) -> None:
        self.strategy = current_strategy() if strategy is None else strategy
        # int or None; typed Any because subclasses (Lime, the surrogate explainers) read
        # it as an int after putting their own default in place of None
        self.batch_size: Any = (None if batch_size is None
                           else check_positive_int("batch_size", batch_size))
        self.operator = operators_module.get(operator)
        #: the model seen through the operator, shared with the metrics
        #: (:class:`~sobol_tf._utils.engine.ModelEngine`).
        self._engine = ModelEngine(self, model, self.operator,
                                   eager_fallback=not self.needs_gradients)
        self.model = model = self._engine.model
        self.inference_function = self._engine.inference_function
        self.batch_inference_function = self._engine.batch_inference_function
        self.verbose = bool(verbose)
        self.jit_compile = bool(jit_compile)
        if mixed_precision is not None:
            mixed_precision = check_choice("mixed_precision", mixed_precision,
                                           MIXED_PRECISION_POLICIES)
            if not isinstance(model, keras.Model):
                raise InvalidTypeError(
                    "mixed_precision needs a Keras model (it rebuilds the model under a "
                    f"mixed dtype policy), got {type(model).__name__}."
                )
        self.mixed_precision = mixed_precision
        self._views: dict[Any, Any] = {}
        self._scorer = self._engine.scorer
        self._mode = self._engine.mode
        #: the :class:`~sobol_tf._utils.layouts.Layout` of the inputs of the current
        #: (or last) explain() call.
        self._layout: Any = None

    # -- public API -------------------------------------------------------------------
    def explain(self, inputs: Any, targets: Any = None) -> tf.Tensor:
        """Explain the model's score on each input.

        Args:
            inputs: a numpy array or tf.Tensor, or a tf.data.Dataset of (input, target)
                pairs, batched or not: images (N, H, W, C) (grayscale: (N, H, W, 1)),
                tabular rows (N, F) of floats, time series (N, T, C), or token ids (N, L)
                of integers for the methods that mask tokens (see README, "Beyond
                images": rank 3 is a time series, as in Xplique).
            targets: one-hot (or score-weight) rows (N, K) or class ids (N,); None to
                explain the predicted class (or when the dataset carries the targets).

        Returns:
            float32 tf.Tensor of attribution maps in the inputs' layout: (N, H, W, 1) for
            images ((N, H, W, C) when the method attributes each channel separately),
            (N, F) for tabular rows, (N, T, C) for time series ((N, T, 1) when the
            method attributes the channels of a step together), (N, L) for tokens.

        Raises:
            InvalidArgumentError: empty inputs, NaN or inf in inputs or targets, a kind of
                inputs the method cannot handle, one input without its batch axis, targets whose
                length or width does not match, targets None or class ids with a model of
                several outputs, an infinite tf.data.Dataset.
            InvalidTypeError: a built-in operator with a model of several outputs, a
                dataset of dicts, inputs that are not real numbers.
            ModelCallError: the model raised (the message says on what), returned another
                number of rows than inputs, or NaN / infinite scores (the message counts
                them and names the inputs).

        Warns:
            SobolTFWarning: an all-zero target row with a built-in operator (that map is
                all zeros); a model that runs eagerly.
        """
        model, images, targets = self._prepare(inputs, targets)
        maps = self._explain(model, images, targets)
        return self._layout.from_engine(
            self._to_input_size(maps, images.shape[1], images.shape[2]))

    def __call__(self, inputs: Any, targets: Any = None) -> tf.Tensor:
        """Alias of :meth:`explain`."""
        return self.explain(inputs, targets)

    def explain_dataset(self, data: Any, targets: Any = None,
                        **options: Any) -> Iterator[Any]:
        """Explain ``data`` (a tf.data.Dataset, an array or an iterable of batches) batch
        of inputs by batch of inputs: a generator of maps in constant memory. See
        :func:`sobol_tf.streaming.explain_dataset` (``options``: batch_size, prefetch,
        verbose)."""
        from sobol_tf.streaming import explain_dataset
        return explain_dataset(self, data, targets, **options)

    def _prepare(self, inputs, targets):
        """Check and normalise the arguments of explain(); set ``self._layout``.

        Returns:
            (model, images, targets): the model as called on engine batches
            (B, H, W, C), float32 inputs in the engine layout (N, H, W, C) (see
            :mod:`sobol_tf._utils.layouts`) and float32 targets (N, K).
        """
        model, images, targets = self._prepare_inputs(inputs, targets)
        outputs = None
        if operators_module.needs_outputs(targets, self.operator):
            outputs = self._predict(model, images)
        targets = operators_module.prepare_targets(targets, outputs, self.operator)
        return model, images, targets

    def _prepare_inputs(self, inputs, targets):
        """The checks of :meth:`_prepare` before the targets': returns (model, images,
        raw targets as given (numpy or None)) and sets ``self._layout``."""
        data = prepare_inputs_targets(
            inputs, targets, declared_shape=model_input_shape(self.model),
            allowed_ranks=(2, 3, 4), require_targets=False,
        )
        layout = layout_of(data.inputs, integer=data.integer, pad_token=self._pad_token())
        self._check_layout(layout)
        self._layout = layout
        images = layout.to_engine(data.inputs)
        self._check_inputs(images)
        return self._model_view(layout), images, data.targets

    def _pad_token(self):
        """The id of padding in token inputs (None: no padding)."""
        return getattr(self, "pad_token", None)

    def _check_layout(self, layout):
        """Raise InvalidArgumentError when the method cannot explain inputs of ``layout``."""
        hint = ""
        if layout.kind == "tokens" and "tokens" not in self.input_kinds:
            hint = (": integer inputs (N, L) are token ids, which this method cannot "
                    "perturb; give float32 inputs for tabular rows")
        elif layout.kind == "time_series" and "image" in self.input_kinds:
            hint = (" (rank-3 inputs are time series, as in Xplique; give grayscale "
                    "images with their channel axis, (N, H, W, 1): x[..., None])")
        check_kind(layout, self.input_kinds, type(self).__name__, hint)

    # -- what a method provides -------------------------------------------------------
    def _check_inputs(self, images):
        """Raise InvalidArgumentError when a method cannot explain ``images`` (N, H, W, C),
        in the engine layout (``self._layout`` says what they are)."""

    @abstractmethod
    def _explain(self, model, images, targets):
        """Return maps (N, h, w, k) for images (N, H, W, C) and targets (N, K)."""

    #: how maps smaller than an image are resized to it (tf.image.resize method); maps
    #: of the other kinds are resized by nearest neighbour, so that every step of a
    #: time-series window holds that window's value (masks are upsampled so too).
    resize_method = "bicubic"

    # -- shared machinery -------------------------------------------------------------
    def _model_view(self, layout):
        """The model as the engine calls it: on (B, H, W, C) batches of ``layout``'s
        engine layout (built once per kind and shape)."""
        key = (layout.kind, layout.shape)
        if key not in self._views:
            model = self.model
            if self.mixed_precision is not None:
                model = self._views.setdefault(
                    "mixed", _mixed_precision_clone(model, self.mixed_precision))
            self._views[key] = layout.wrap_model(model)
        return self._views[key]

    #: the method needs TensorFlow's gradients of the model: a model TensorFlow cannot
    #: trace is refused instead of being run eagerly (see README, "Inputs, targets and
    #: models: the rules").
    needs_gradients = False

    def _compiled(self, model, key, python_function, input_signature):
        """``python_function`` compiled with its batch loop, once per ``key`` and model view
        (:meth:`Scorer.compiled <sobol_tf._utils.scoring.Scorer.compiled>`).

        Steps that call the model are XLA-compiled when ``jit_compile`` is set. Every
        step shares the explainer's :class:`~sobol_tf._utils.batching.ModelMode`: once
        the model could not be traced, every step runs eagerly.
        """
        return self._scorer.compiled(model, key, python_function, input_signature)

    def _run_batches(self, step, nb_items, arguments, what, **options):
        """Run a step compiled by :meth:`_compiled` on every batch of item indices.

        Batches run in order, in chunks of one compiled call; results are collected
        once, stacked and checked for NaN or infinite values. Model errors are re-raised
        as ModelCallError naming ``what``.

        Returns:
            tf.Tensor of the stacked per-item results, (nb_items, ...).
        """
        return self._scorer.run(step, nb_items, arguments, what, **options)

    def _predict(self, model, images):
        """The model's outputs on the clean images, (N, K) as numpy."""
        return self._scorer.outputs(model, images)

    def _scores(self, model, images, targets):
        """The operator's scores on the clean images, (N,) float32 tensor."""
        return self._scorer.scores(model, images, targets)

    def _to_input_size(self, maps, height, width):
        maps = tf.convert_to_tensor(maps, tf.float32)
        if maps.shape[1] != height or maps.shape[2] != width:
            image = self._layout is None or self._layout.kind == "image"
            maps = tf.image.resize(maps, (height, width),
                                   method=self.resize_method if image else "nearest")
        return maps


class BlackBoxExplainer(Explainer):
    """Base of the perturbation (mask-based) methods.

    The engine perturbs every input with every mask and scores the results: masks are
    drawn by the method, upsampled once per input size (:data:`MASK_CACHE_BYTES`),
    applied on the device inside the compiled step, and the flat list of
    (input, mask) pairs is cut into full batches, so that several inputs share a
    forward batch when one input's perturbations do not fill it.

    A subclass implements:

    - ``_masks(height, width, channels)`` -> (P, h, w, k) masks in [0, 1];
    - ``_estimate(scores, masks, base_scores)`` -> maps (N, h', w', k') from the scores
      (N, P) of every (input, mask) pair;

    and says how a mask perturbs an input with one object, ``self.perturbation``, a
    :class:`~sobol_tf.attributions.perturbations.Perturbation` (``baselines(images)``:
    what a masked-out value becomes; ``apply(inputs, masks, baselines)``; default:
    ``inputs * masks + (1 - masks) * 0``); and may override ``upsampling`` (the
    tf.image.resize method for masks) or, for masks that are more than a resize of what
    ``_masks`` draws, ``_upsample``. The scores come from the
    :class:`~sobol_tf._utils.scoring.Scorer` shared with the metrics.
    """

    #: how low-resolution masks become input-size masks (tf.image.resize method).
    upsampling = "nearest"

    _mask_cache: dict   # the masks of each key (see _kept), for methods that keep several
    _active: Any = None

    input_kinds: tuple[str, ...] = ("image",)

    @abstractmethod
    def _masks(self, height, width, channels):
        """Return masks (P, h, w, k) as a float32 tensor; k is 1 or ``channels``."""

    @abstractmethod
    def _estimate(self, scores, masks, base_scores):
        """Return maps (N, h', w', k') from scores (N, P), masks (P, h, w, k), base (N,)."""

    @property
    def perturbation(self) -> Any:
        """How a mask perturbs an input: a
        :class:`~sobol_tf.attributions.perturbations.Perturbation` (default: towards 0)."""
        perturbation = self.__dict__.get("_perturbation")
        if perturbation is None:
            from sobol_tf.attributions.perturbations import Perturbation
            perturbation = self.__dict__["_perturbation"] = Perturbation()
        return perturbation

    @perturbation.setter
    def perturbation(self, value: Any) -> None:
        self.__dict__["_perturbation"] = value

    def _towards(self, value):
        """An :class:`~sobol_tf.attributions.perturbations.Inpainting` towards ``value``,
        the same object while ``value`` is unchanged (its compiled steps are reused)."""
        cached = self.__dict__.get("_inpainting")
        if cached is None or cached[0] != value:
            from sobol_tf.attributions.perturbations import Inpainting
            cached = self.__dict__["_inpainting"] = (value, Inpainting(value))
        return cached[1]

    def _explain(self, model, images, targets):
        _, height, width, channels = images.shape
        perturbed = self._engine_inputs(images)
        masks = tf.convert_to_tensor(self._masks(height, width, channels), tf.float32)
        scores = self._perturbed_scores(model, perturbed, targets, self._evaluated(masks))
        base_scores = self._scores(model, images, targets) if self._needs_base_scores else None
        return self._estimate(scores, masks, base_scores)

    def _evaluated(self, masks):
        """The masks the model is run on: all of them by default; a method whose
        estimator reads only some rows (e.g. Sobol's estimators that skip B) returns
        those, and still gets every mask in :meth:`_estimate`."""
        return masks

    def _engine_inputs(self, images):
        """What the perturbation perturbs: the images (N, H, W, C) by default; a method
        may carry more per input (e.g. the surrogate methods' feature ids as extra
        channels), drawn before :meth:`_masks`."""
        return images

    #: set True by methods whose estimator needs the scores of the clean inputs.
    _needs_base_scores = False

    @property
    def _perturb_broadcasts(self):
        """The perturbation is elementwise with broadcasting, so a batch of one input's
        masks can perturb that input broadcast (1, H, W, C) instead of a gathered copy
        per mask."""
        return self.perturbation.broadcasts

    def _upsample(self, masks, mask_ids, height, width):
        """Masks as drawn (B, h, w, k), those of ids ``mask_ids`` (B,) int64, at the input
        size (B, H, W, k): resized with ``upsampling``, kept as they are when already
        (H, W). Runs inside the compiled step (batch by batch) or once on all the masks."""
        return upsample_masks(masks, height, width, self.upsampling)

    def _cached_masks(self, masks, height, width, keep=True):
        """``(masks, True)``: the masks at (H, W) when they fit in MASK_CACHE_BYTES; else
        ``(masks, False)``: the masks as drawn, to be upsampled batch by batch.

        The last upsampled set is kept for the next call with the same masks and size
        (one entry, so the cache stays within MASK_CACHE_BYTES); ``keep=False``: masks
        used once, upsampled without replacing that entry.
        """
        if masks.shape[0] * height * width * masks.shape[3] * 4 > MASK_CACHE_BYTES:
            return masks, False
        cached = getattr(self, "_upsampled", None)
        if cached is None or cached[0] is not masks or cached[1] != (height, width):
            upsampled = tf.concat([chunk for _, chunk in self._mask_chunks(masks, height, width)],
                                  axis=0)
            if not keep:
                return upsampled, True
            self._upsampled = cached = (masks, (height, width), upsampled)
        return cached[2], True

    def _weighted_masks(self, scores, masks, height, width):
        """``(sum_p scores[n, p] M_p, sum_p M_p)`` over the masks M_p at the input size:
        (N, H, W, k) and (H, W, k), from the cached masks when they fit, else through
        :meth:`_mask_chunks` (an estimator reading every mask at the input size)."""
        full, upsampled = self._cached_masks(masks, height, width)
        chunks = [(None, full)] if upsampled else self._mask_chunks(masks, height, width)
        weighted, total = 0.0, 0.0
        for ids, chunk in chunks:
            chunk_scores = scores if ids is None else tf.gather(scores, ids, axis=1)
            weighted += tf.einsum("np,phwk->nhwk", chunk_scores, chunk)
            total += tf.reduce_sum(chunk, axis=0)
        return weighted, total

    def _kept(self, key, draw):
        """The masks (or masks and what comes with them) of ``key``, drawn once by
        ``draw()`` and kept; ``key`` becomes the active one (``self._active``)."""
        cache = self.__dict__.setdefault("_mask_cache", {})
        if key not in cache:
            cache[key] = draw()
        self._active = key
        return cache[key]

    def _init_seed(self, seed):
        """Set ``seed`` (checked) and the entropy the method's random masks are drawn
        from: the seed, or fresh entropy drawn once per explainer when it is None."""
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)

    def _input_size_masks(self, height, width, channels=1):
        """All the masks of inputs of this size at that size, (P, H, W, k) float32 (for
        small sizes: the masks are not kept)."""
        masks = tf.convert_to_tensor(self._masks(height, width, channels), tf.float32)
        return tf.concat([chunk for _, chunk in self._mask_chunks(masks, height, width)], 0)

    def _mask_chunks(self, masks, height, width):
        """The engine's chunk loop over masks outside the batches: (ids (B,) int64, the
        masks of those ids at the input size (B, H, W, k)), :data:`MASK_CHUNK` masks at a
        time, so that the transient memory holds at most MASK_CHUNK full-size masks."""
        for start in range(0, masks.shape[0], MASK_CHUNK):
            ids = tf.range(start, min(start + MASK_CHUNK, masks.shape[0]), dtype=tf.int64)
            yield ids, self._upsample(tf.gather(masks, ids), ids, height, width)

    def _perturbed_scores(self, model, images, targets, masks, per_input=False):
        """Scores (N, P) of every input perturbed by every mask, on the engine's one path
        masks -> perturbation -> scores (:meth:`Scorer.masked_scores
        <sobol_tf._utils.scoring.Scorer.masked_scores>`, shared with the metrics).

        ``per_input=True``: each input has its own P masks, ``masks`` (N * P, h, w, k)
        with input n's in rows n * P .. n * P + P - 1 (all the inputs still share the
        batches: a design that depends on each input costs no call per input)."""
        height, width = images.shape[1], images.shape[2]
        nb_masks = masks.shape[0] // images.shape[0] if per_input else masks.shape[0]
        masks, upsampled = self._cached_masks(masks, height, width, keep=not per_input)
        perturbation = self.perturbation
        baselines = tf.convert_to_tensor(perturbation.baselines(images), tf.float32)
        upsample = self._upsample
        per_input_masks = tf.constant(nb_masks if per_input else 0, tf.int64)

        def masks_of(input_ids, mask_ids, masks, per_input_masks):
            mask_ids = mask_ids + input_ids * per_input_masks  # rows of the masks tensor
            batch_masks = tf.gather(masks, mask_ids)
            return batch_masks if upsampled else upsample(batch_masks, mask_ids, height, width)

        # XLA fuses the gathers and the perturbation's elementwise operations into one
        # pass over the batch (2-3x faster than TF's separate kernels on a CPU); the model
        # itself stays out of XLA unless jit_compile is set.
        broadcasts = perturbation.broadcasts
        fused = XLA_PERTURBATION and broadcasts and (
            upsampled or masks.shape[1:3] == (height, width)
            or self.upsampling in XLA_RESIZE_METHODS)
        return self._scorer.masked_scores(
            model, ("perturbed", upsampled), perturbation, images, targets, baselines,
            nb_masks, masks_of, extras=(masks, per_input_masks),
            what=f"{nb_masks} perturbations of {images.shape[0]} input(s)"
                 + (" (each input its own)" if per_input else ""),
            broadcast_one_input=broadcasts, jit_compile=fused)
