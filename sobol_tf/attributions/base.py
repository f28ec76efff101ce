"""Base classes of every explainer.

:class:`Explainer` owns the API boundary shared by all methods: checking and
normalising inputs and targets, the operator, running the model on clean inputs, and
the output layout. :class:`BlackBoxExplainer` adds the perturbation engine shared by
every mask-based method (Sobol, RISE, Occlusion, HSIC): a method says only which masks
it draws, how a mask perturbs an input, and how scores become a map.
"""
from abc import ABC, abstractmethod

import keras
import tensorflow as tf

from sobol_tf import operators as operators_module
from sobol_tf._utils import (check_choice, check_positive_int, CompiledStep,
                             prepare_inputs_targets, run_batches)
from sobol_tf._utils.batching import ModelMode, RunsEagerly, outputs_step, scores_step
from sobol_tf._utils.data import check_model, model_input_shape
from sobol_tf._utils.inference import batch_inference
from sobol_tf.errors import InvalidTypeError

#: Upsampled masks are kept in memory, computed once per input size, when they take at
#: most this many bytes; bigger ones are upsampled batch by batch on the device so that
#: memory stays bounded by ``batch_size`` (see README, "Memory").
MASK_CACHE_BYTES = 256 * 2**20

IMAGE_RANKS = (3, 4)

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


class Explainer(RunsEagerly, ABC):
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

    Attributes:
        inference_function: the resolved operator, g(model, inputs, targets) -> (B,)
            scores (Xplique's attribute of that name).
        batch_inference_function: f(model, inputs, targets, batch_size=None) -> (N,)
            scores of the operator on every input, batch by batch (Xplique's attribute);
            targets are rows (N, K), e.g. one-hot rows.

    Raises:
        InvalidTypeError: ``model`` is not callable, ``batch_size`` not an integer,
            ``mixed_precision`` with a model that is not a Keras model.
        InvalidArgumentError: ``batch_size`` < 1, an unknown operator name.
    """

    #: ranks of ``inputs`` a method accepts; images are (N, H, W) or (N, H, W, C).
    input_ranks = IMAGE_RANKS

    def __init__(self, model, *, batch_size=64, operator=None, verbose=False,
                 jit_compile=False, mixed_precision=None):
        model = check_model(model)
        self.model = model
        self.batch_size = (None if batch_size is None
                           else check_positive_int("batch_size", batch_size))
        self.operator = operators_module.get(operator)
        self.inference_function = self.operator
        self.batch_inference_function = batch_inference(self.operator)
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
        self._functions = {}
        self._views = {}
        self._mode = ModelMode()

    # -- public API -------------------------------------------------------------------
    def explain(self, inputs, targets=None):
        """Explain the model's score on each input.

        Args:
            inputs: images as a numpy array or tf.Tensor (N, H, W, C) or (N, H, W), or a
                tf.data.Dataset of (input, target) pairs, batched or not.
            targets: one-hot (or score-weight) rows (N, K) or class ids (N,); None to
                explain the predicted class (or when the dataset carries the targets).

        Returns:
            float32 tf.Tensor of attribution maps, (N, H, W, 1) for images (N, H, W, C)
            when the method attributes each channel separately).

        Raises:
            InvalidArgumentError: empty inputs, NaN or inf in inputs or targets, a rank the
                method cannot handle, one input without its batch axis, targets whose
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
        return self._to_input_size(maps, images.shape[1], images.shape[2])

    def __call__(self, inputs, targets=None):
        """Alias of :meth:`explain`."""
        return self.explain(inputs, targets)

    def _prepare(self, inputs, targets):
        """Check and normalise the arguments of explain().

        Returns:
            (model, images, targets): the model as called on (B, H, W, C) batches, float32
            images (N, H, W, C) and float32 targets (N, K).
        """
        data = prepare_inputs_targets(
            inputs, targets, declared_shape=model_input_shape(self.model),
            allowed_ranks=self.input_ranks, require_targets=False,
        )
        images = data.inputs
        squeeze_channel = images.shape.rank == 3
        if squeeze_channel:
            images = images[..., None]
        self._check_inputs(images)
        model = self._model_view(squeeze_channel)
        outputs = None
        if operators_module.needs_outputs(data.targets, self.operator):
            outputs = self._predict(model, images)
        targets = operators_module.prepare_targets(data.targets, outputs, self.operator)
        return model, images, targets

    # -- what a method provides -------------------------------------------------------
    def _check_inputs(self, images):
        """Raise InvalidArgumentError when a method cannot explain ``images`` (N, H, W, C)."""

    @abstractmethod
    def _explain(self, model, images, targets):
        """Return maps (N, h, w, k) for images (N, H, W, C) and targets (N, K)."""

    #: how maps smaller than the input are resized to it (tf.image.resize method).
    resize_method = "bicubic"

    # -- shared machinery -------------------------------------------------------------
    def _model_view(self, squeeze_channel):
        """The model as the engine calls it: on (B, H, W, C) batches (built once)."""
        if squeeze_channel not in self._views:
            model = self.model
            if self.mixed_precision is not None:
                model = _mixed_precision_clone(model, self.mixed_precision)
            if squeeze_channel:
                inner = model
                model = lambda x: inner(x[..., 0])  # noqa: E731
            self._views[squeeze_channel] = model
        return self._views[squeeze_channel]

    #: the method needs TensorFlow's gradients of the model: a model TensorFlow cannot
    #: trace is refused instead of being run eagerly (see README, "Inputs, targets and
    #: models: the rules").
    needs_gradients = False

    def _compiled(self, model, key, python_function, input_signature):
        """``python_function`` compiled with its batch loop, once per ``key`` and model view.

        Steps that call the model are XLA-compiled when ``jit_compile`` is set. Every
        step shares the explainer's :class:`~sobol_tf._utils.batching.ModelMode`: once
        the model could not be traced, every step runs eagerly.
        """
        key = (id(model),) + key
        if key not in self._functions:
            self._functions[key] = CompiledStep(python_function, input_signature,
                                                 jit_compile=self.jit_compile, mode=self._mode,
                                                 eager_fallback=not self.needs_gradients)
        return self._functions[key]

    def _run_batches(self, step, nb_items, arguments, what, *, values="scores",
                     items_per_input=1, one_score=False):
        """Run a step compiled by :meth:`_compiled` on every batch of item indices.

        Batches run in order, in chunks of one compiled call; results are collected
        once, stacked and checked for NaN or infinite values. Model errors are re-raised
        as ModelCallError naming ``what``.

        Returns:
            tf.Tensor of the stacked per-item results, (nb_items, ...).
        """
        return run_batches(step, nb_items, arguments,
                           batch_size=self.batch_size or max(nb_items, 1),
                           verbose=self.verbose, title=type(self).__name__, what=what,
                           values=values, items_per_input=items_per_input,
                           one_score=one_score)

    def _predict(self, model, images):
        """The model's outputs on the clean images, (N, K) as numpy."""
        step = outputs_step(model, self.operator.name, self.operator.builtin)
        signature = [tf.TensorSpec([None], tf.int64),
                     tf.TensorSpec([None] + images.shape[1:].as_list(), tf.float32)]
        function = self._compiled(model, ("predict", tuple(images.shape[1:])), step, signature)
        return self._run_batches(function, images.shape[0], (images,), "the clean inputs",
                                 values="outputs of the model").numpy()

    def _scores(self, model, images, targets):
        """The operator's scores on the clean images, (N,) float32 tensor."""
        step = scores_step(model, self.operator)
        signature = [tf.TensorSpec([None], tf.int64),
                     tf.TensorSpec([None] + images.shape[1:].as_list(), tf.float32),
                     tf.TensorSpec([None] + targets.shape[1:].as_list(), tf.float32)]
        function = self._compiled(model, ("scores", tuple(images.shape[1:]),
                                          tuple(targets.shape[1:])), step, signature)
        return self._run_batches(function, images.shape[0], (images, targets), "the clean inputs",
                                 one_score=True)

    def _to_input_size(self, maps, height, width):
        maps = tf.convert_to_tensor(maps, tf.float32)
        if maps.shape[1] != height or maps.shape[2] != width:
            maps = tf.image.resize(maps, (height, width), method=self.resize_method)
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

    and may override ``_baselines(images)`` (what a masked-out value becomes) and
    ``_perturb(inputs, masks, baselines)`` (default: ``inputs * masks + (1 - masks) *
    baselines``), and ``upsampling`` (the tf.image.resize method for masks) or, for masks
    that are more than a resize of what ``_masks`` draws, ``_upsample``.
    """

    #: how low-resolution masks become input-size masks (tf.image.resize method).
    upsampling = "nearest"

    @abstractmethod
    def _masks(self, height, width, channels):
        """Return masks (P, h, w, k) as a float32 tensor; k is 1 or ``channels``."""

    @abstractmethod
    def _estimate(self, scores, masks, base_scores):
        """Return maps (N, h', w', k') from scores (N, P), masks (P, h, w, k), base (N,)."""

    def _baselines(self, images):
        """Values masked-out pixels take, (1, H, W, C) or (N, H, W, C). Default: zeros."""
        return tf.zeros((1,) + tuple(images.shape[1:]), tf.float32)

    def _perturb(self, inputs, masks, baselines):
        """Perturb a batch: inputs (B, H, W, C), masks (B, H, W, k), baselines like inputs.

        ``inputs * masks + (1 - masks) * baselines``, written so that only two operations
        run at the batch's full size when inputs and baselines are broadcast (1, H, W, C).
        """
        return baselines + masks * (inputs - baselines)

    def _explain(self, model, images, targets):
        _, height, width, channels = images.shape
        masks = tf.convert_to_tensor(self._masks(height, width, channels), tf.float32)
        scores = self._perturbed_scores(model, images, targets, masks)
        base_scores = self._scores(model, images, targets) if self._needs_base_scores else None
        return self._estimate(scores, masks, base_scores)

    #: set True by methods whose estimator needs the scores of the clean inputs.
    _needs_base_scores = False

    #: ``_perturb`` is elementwise with broadcasting, so a batch of one input's masks can
    #: perturb that input broadcast (1, H, W, C) instead of a gathered copy per mask.
    _perturb_broadcasts = True

    def _upsample(self, masks, mask_ids, height, width):
        """Masks as drawn (B, h, w, k), those of ids ``mask_ids`` (B,) int64, at the input
        size (B, H, W, k): resized with ``upsampling``, kept as they are when already
        (H, W). Runs inside the compiled step (batch by batch) or once on all the masks."""
        if masks.shape[1:3] == (height, width):
            return masks
        return tf.image.resize(masks, (height, width), method=self.upsampling)

    def _cached_masks(self, masks, height, width):
        """``(masks, True)``: the masks at (H, W) when they fit in MASK_CACHE_BYTES; else
        ``(masks, False)``: the masks as drawn, to be upsampled batch by batch.

        The last upsampled set is kept for the next call with the same masks and size
        (one entry, so the cache stays within MASK_CACHE_BYTES).
        """
        if masks.shape[0] * height * width * masks.shape[3] * 4 > MASK_CACHE_BYTES:
            return masks, False
        cached = getattr(self, "_upsampled", None)
        if cached is None or cached[0] is not masks or cached[1] != (height, width):
            ids = tf.range(masks.shape[0], dtype=tf.int64)
            upsampled = self._upsample(masks, ids, height, width)
            self._upsampled = cached = (masks, (height, width), upsampled)
        return cached[2], True

    def _perturbed_scores(self, model, images, targets, masks):
        """Scores (N, P) of every input perturbed by every mask."""
        nb_inputs, height, width, _ = images.shape
        nb_masks = masks.shape[0]
        masks, upsampled = self._cached_masks(masks, height, width)
        baselines = tf.convert_to_tensor(self._baselines(images), tf.float32)
        operator, upsample, perturb = self.operator, self._upsample, self._perturb
        broadcasts = self._perturb_broadcasts

        def perturb_batch(indices, images, baselines, masks):
            nb_masks = tf.shape(masks, out_type=tf.int64)[0]
            input_ids = indices // nb_masks
            mask_ids = indices % nb_masks
            batch_masks = tf.gather(masks, mask_ids)
            if not upsampled:
                batch_masks = upsample(batch_masks, mask_ids, height, width)
            last_baseline = tf.shape(baselines, out_type=tf.int64)[0] - 1
            baseline_ids = tf.minimum(input_ids, last_baseline)

            def one_input():  # the usual batch: broadcast one input over its masks
                return perturb(tf.gather(images, input_ids[:1]), batch_masks,
                               tf.gather(baselines, baseline_ids[:1]))

            def several_inputs():
                return perturb(tf.gather(images, input_ids), batch_masks,
                               tf.gather(baselines, baseline_ids))

            if broadcasts:
                return tf.cond(input_ids[0] == input_ids[-1], one_input, several_inputs)
            return several_inputs()

        # XLA fuses the gathers and the perturbation's elementwise operations into one
        # pass over the batch (2-3x faster than TF's separate kernels on a CPU); the model
        # itself stays out of XLA unless jit_compile is set.
        if XLA_PERTURBATION and broadcasts and (
                upsampled or masks.shape[1:3] == (height, width)
                or self.upsampling in XLA_RESIZE_METHODS):
            perturb_batch = tf.function(perturb_batch, jit_compile=True)

        def step(indices, images, baselines, targets, masks):
            perturbed = perturb_batch(indices, images, baselines, masks)
            input_ids = indices // tf.shape(masks, out_type=tf.int64)[0]
            return operator(model, perturbed, tf.gather(targets, input_ids))

        def spec(tensor):
            return tf.TensorSpec([None] + tensor.shape[1:].as_list(), tf.float32)

        signature = [tf.TensorSpec([None], tf.int64), spec(images), spec(baselines),
                     spec(targets), spec(masks)]
        key = ("perturbed", tuple(images.shape[1:]), tuple(baselines.shape[1:]),
               tuple(targets.shape[1:]), tuple(masks.shape[1:]))
        function = self._compiled(model, key, step, signature)
        scores = self._run_batches(function, nb_inputs * nb_masks,
                                   (images, baselines, targets, masks),
                                   f"{nb_masks} perturbations of {nb_inputs} input(s)",
                                   items_per_input=nb_masks, one_score=True)
        return tf.reshape(scores, (nb_inputs, nb_masks))
