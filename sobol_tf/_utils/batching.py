"""The batching loop shared by explainers and metrics.

A step ``step(indices, *arguments) -> (B, ...)`` is compiled (:class:`CompiledStep`)
alone and together with a loop over its batches: one call of the compiled loop runs a
whole chunk of batches inside TensorFlow, so no Python runs between two forward passes.
The items themselves (perturbed inputs) are built inside the step, on the device, so
that memory is bounded by ``batch_size`` whatever the number of items.
What the steps return is checked by :mod:`sobol_tf._utils.checks` (one row per item,
finite values), which also words the errors.

Why a graph loop rather than a Python loop over a ``tf.data`` pipeline of indices:
measured on a 2-core CPU (small convnet on 32x32 inputs, 132 batches of 256, about 12 ms
each), the same forward passes took about 9% longer called once per batch from Python
than looped inside one tf.function, and iterating a ``tf.data`` pipeline inside the
graph took about 3% longer than a ``tf.while_loop`` over index ranges
(``benchmarks/bench_speed.py`` prints both references).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, TypeVar
import logging
import time

import tensorflow as tf

from sobol_tf._utils.checks import (MODEL_CONTRACT, batch_result, cause_line, check_finite,
                                    describe_structure, library_error, one_output)
from sobol_tf.errors import (InvalidArgumentError, InvalidTypeError, ModelCallError,
                             SobolTFError, warn)

#: a function whose name is set by :func:`quiet_retracing`; a chunk's result.
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


#: run_batches sizes its chunks of batches so that one compiled call lasts about this
#: long (seconds): long enough that the per-call cost vanishes, short enough for the
#: progress bar to move and for Ctrl-C to be heard.
CHUNK_SECONDS = 0.5

#: jobs of at least this many batches run in the compiled loop (worth its compilation).
LOOP_MIN_BATCHES = 16

_NAME = "sobol_tf_batch"


class _RetracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about our steps:
    every explainer, metric and input shape compiles steps of its own, once each."""

    def filter(self, record):
        message = record.getMessage()
        return not (_NAME in message and "retracing" in message)


tf.get_logger().addFilter(_RetracingFilter())


def quiet_retracing(function: F, label: str) -> F:
    """Name ``function`` ``sobol_tf_batch_<label>`` so that :class:`_RetracingFilter`
    drops TensorFlow's retracing warning about it: for functions that are compiled anew
    by every explainer, metric or call (maco, optimize), once each."""
    function.__qualname__ = function.__name__ = f"{_NAME}_{label}"
    return function


class ModelMode:
    """How the steps of one model run, shared by every step of an explainer or metric.

    Attributes:
        eager: run the steps eagerly, batch by batch (set when the model could not be
            traced by TensorFlow, or by the user).
        warned: the warning saying so was emitted (once per explainer or metric).
    """

    def __init__(self, eager: bool = False) -> None:
        self.eager = bool(eager)
        self.warned = False


class RunsEagerly:
    """The ``run_eagerly`` switch of an object (an explainer, a metric) whose steps share
    the :class:`ModelMode` ``self._mode``."""

    _mode: ModelMode

    @property
    def run_eagerly(self) -> bool:
        """Whether the model runs eagerly, batch by batch, instead of compiled.

        Set automatically (with one SobolTFWarning) when TensorFlow cannot trace the
        model; set it to True yourself to skip the tracing attempt (e.g. to debug a
        model with print or pdb). Gradient methods and ExtremalPerturbation still need a
        model made of differentiable TensorFlow operations.
        """
        return self._mode.eager

    @run_eagerly.setter
    def run_eagerly(self, value: bool) -> None:
        self._mode.eager = bool(value)
        self._mode.warned = self._mode.warned or bool(value)


def check_strategy(value: Any) -> Optional[tf.distribute.Strategy]:
    """``value`` as a ``tf.distribute.Strategy`` or None.

    Raises:
        InvalidTypeError: anything else (a name such as 'mirrored', a device count).
    """
    if value is None or isinstance(value, tf.distribute.Strategy):
        return value
    raise InvalidTypeError(
        "strategy must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()) "
        f"or None, got {value!r} ({type(value).__name__}).")


def current_strategy() -> Optional[tf.distribute.Strategy]:
    """The strategy of the enclosing ``strategy.scope()``, or None outside any scope."""
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


class RunsOnStrategy:
    """The ``strategy`` of an object (an explainer, a metric) whose steps run on a
    :class:`~sobol_tf._utils.scoring.Scorer`; held in ``self._strategy``."""

    @property
    def strategy(self) -> Optional[tf.distribute.Strategy]:
        """The ``tf.distribute.Strategy`` whose replicas share each forward batch, or None
        (one device, TensorFlow's placement).

        Set from the ``strategy=`` argument, else from the enclosing
        ``strategy.scope()`` when the object is built; may be set later (steps are then
        compiled again for the new strategy). Each batch of ``batch_size`` items is cut
        into one contiguous slice per replica, run with ``strategy.run`` inside the
        compiled step, and the slices are concatenated in order, so results equal those
        on one device up to float rounding. A model that runs eagerly (it could not be
        traced) runs on one device.
        """
        return self.__dict__.get("_strategy")

    @strategy.setter
    def strategy(self, value: Optional[tf.distribute.Strategy]) -> None:
        self.__dict__["_strategy"] = check_strategy(value)


def distributed(step: Callable[..., Any],
                strategy: tf.distribute.Strategy) -> Callable[..., Any]:
    """``step(indices, *arguments)`` with each batch split over the replicas of
    ``strategy``: replica r computes the items ``r * B // R .. (r + 1) * B // R - 1`` of
    the batch (B items, R replicas) and the slices are concatenated in replica order.

    A replica left without items (B < R) computes the batch's last item, whose result
    it drops, so that no step ever sees an empty batch.
    """
    replicas = strategy.num_replicas_in_sync

    def replica_step(indices, *arguments):
        context = tf.distribute.get_replica_context()
        replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
        size = tf.shape(indices, out_type=tf.int64)[0]
        start, stop = replica * size // replicas, (replica + 1) * size // replicas
        first = tf.minimum(start, size - 1)
        return step(indices[first:tf.maximum(stop, first + 1)], *arguments)[:stop - start]

    def step_on_replicas(indices, *arguments):
        results = strategy.experimental_local_results(
            strategy.run(replica_step, args=(indices,) + tuple(arguments)))
        if len(results) != replicas:
            raise InvalidArgumentError(
                f"the strategy {type(strategy).__name__} has {replicas} replicas in sync "
                f"but {len(results)} on this worker; only single-worker strategies "
                "(MirroredStrategy, OneDeviceStrategy) can share forward batches.")
        return results[0] if replicas == 1 else tf.concat(results, axis=0)

    step_on_replicas.__qualname__ = step_on_replicas.__name__ = step.__name__
    return step_on_replicas


class CompiledStep:
    """A step ``step(indices, *arguments)`` compiled two ways, each on first use.

    - ``step``: the step alone, called once per batch from Python (short jobs);
    - ``loop(start, stop, batch_size, *arguments)``: the step inside a ``tf.while_loop``
      over the batches of items ``start .. stop - 1`` (long jobs).

    Both return float32 results stacked over the items. The loop costs one more
    compilation (about 25-45 ms for a small model on a 2-core CPU) and saves the
    Python call of every batch (about 1 ms each on a small convnet, see the module's
    docstring). When the step cannot be traced (a model that is not made of TensorFlow
    operations), :func:`run_batches` calls ``python_step`` eagerly instead.

    Args:
        python_step: a function of int64 item indices (B,) and tensors ``arguments``,
            returning one tensor (B, ...).
        input_signature: TensorSpecs of ``(indices, *arguments)``.
        jit_compile: XLA-compile the step (the loop around it stays a TF graph).
        mode: the :class:`ModelMode` shared by the steps of one model (a new one if None).
        eager_fallback: whether the step may run eagerly when it cannot be traced
            (False for steps that need TensorFlow's gradients of the model).
        eager_first: run the first job eagerly when it is a single batch, and trace the
            step only if it is used again (a one-shot job, e.g. a metric built to be
            evaluated once, then skips the trace, which costs more than one eager batch
            of a small model). Not under a ``strategy``: the job is then compiled, so
            that it runs on the replicas.
        strategy: a ``tf.distribute.Strategy`` whose replicas share each batch of the
            compiled step and loop (:func:`distributed`); None: one device. The eager
            path (``python_step``) always runs on one device.
    """

    def __init__(self, python_step: Callable[..., Any], input_signature: Sequence[tf.TensorSpec],
                 *, jit_compile: bool = False, mode: Optional[ModelMode] = None,
                 eager_fallback: bool = True, eager_first: bool = False,
                 strategy: Optional[tf.distribute.Strategy] = None) -> None:
        def several(structure):
            return ModelCallError(f"the operator returned {structure}; it must return one "
                                  "score per input, shape (B,).")

        def step(indices, *arguments):
            return batch_result(python_step(indices, *arguments), indices,
                                "the model (or the operator)", several)

        quiet_retracing(step, "step")
        self.python_step = step
        self._signature = list(input_signature)
        self._jit_compile = jit_compile
        self.mode = mode if mode is not None else ModelMode()
        self.eager_fallback = eager_fallback
        self.eager_first = eager_first
        self.strategy = strategy
        self.runs = 0
        self._step = self._loop = None

    @property
    def step(self) -> Any:
        if self._step is None:
            step = self.python_step
            if self.strategy is not None:  # XLA per replica; strategy.run stays a graph
                step = distributed(tf.function(step, jit_compile=self._jit_compile)
                                   if self._jit_compile else step, self.strategy)
            self._step = tf.function(step, input_signature=self._signature,
                                     jit_compile=self._jit_compile and self.strategy is None
                                     ).get_concrete_function()
        return self._step

    @property
    def loop(self) -> Any:
        if self._loop is None:
            self._loop = self._compile_loop()
        return self._loop

    def _compile_loop(self):
        step = self.python_step
        if self._jit_compile:  # an XLA cluster of its own; else traced inline in the body
            step = tf.function(step, jit_compile=True)
        if self.strategy is not None:
            step = distributed(step, self.strategy)

        def loop(start, stop, batch_size, *arguments):
            nb_batches = (stop - start + batch_size - 1) // batch_size
            results = tf.TensorArray(tf.float32, size=tf.cast(nb_batches, tf.int32),
                                     infer_shape=False)

            def body(number, results):
                first = start + number * batch_size
                indices = tf.range(first, tf.minimum(first + batch_size, stop))
                return number + 1, results.write(tf.cast(number, tf.int32),
                                                 step(indices, *arguments))

            # one batch in flight at a time: memory stays bounded by batch_size
            _, results = tf.while_loop(lambda number, _: number < nb_batches, body,
                                       (tf.constant(0, tf.int64), results),
                                       parallel_iterations=1)
            return results.concat()

        quiet_retracing(loop, "loop")
        scalar = tf.TensorSpec([], tf.int64)
        compiled = tf.function(loop, input_signature=[scalar] * 3 + self._signature[1:])
        concrete = compiled.get_concrete_function()  # traced now: errors come out here

        def call(start, stop, batch_size, *arguments):
            return concrete(*(tf.constant(v, tf.int64) for v in (start, stop, batch_size)),
                            *arguments)

        return call


def outputs_step(model: Callable[..., Any], operator_name: str = "classification",
                 builtin: bool = True) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """A step ``(indices, images) -> outputs (B, K) float32`` of ``model`` on clean inputs.

    Used only to read the number of outputs and the predicted class (targets). A model
    with several outputs (list, tuple, dict) has neither: the error says what to pass.
    """

    def step(indices, images):
        outputs = model(tf.gather(images, indices))
        if not builtin and isinstance(outputs, (list, tuple, dict)):
            raise InvalidArgumentError(
                f"the model returned {describe_structure(outputs)}: with several outputs, "
                "targets cannot be None or class ids (there is no single output to take "
                "the predicted class or the number of classes from); give targets as rows "
                "(N, K) that your operator reads, e.g. one-hot rows of the output it picks."
            )
        return one_output(outputs, indices, operator_name)

    return step


def scores_step(model: Callable[..., Any], operator: Callable[..., Any]
                ) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """A step ``(indices, images, targets) -> (B,) scores`` of the operator on clean inputs."""

    def step(indices, images, targets):
        return operator(model, tf.gather(images, indices), tf.gather(targets, indices))

    return step


def progbar(total: int, verbose: bool, title: str) -> Any:
    """A keras Progbar of ``total`` batches after printing ``title``; None when quiet."""
    if not verbose:
        return None
    import keras  # light: tensorflow already imported it

    print(title)
    return keras.utils.Progbar(total, unit_name="batch")


def map_chunks(function: Callable[[int, int], T], nb_items: int, batch_size: Optional[int], *,
               verbose: bool = False, title: str = "") -> List[T]:
    """``function(first, stop)`` on consecutive chunks [first, stop) of ``nb_items`` items,
    ``batch_size`` items each (None: one chunk), in order: the loop for Python callables
    the compiled steps cannot hold (an explainer called on batches of inputs).

    Args:
        function: called once per chunk with the chunk's first and past-the-end indices.
        nb_items: the number of items.
        batch_size: items per chunk (None: all of them).
        verbose: show a progress bar over the chunks (when there are several).
        title: the progress bar's title.

    Returns:
        list of the results, one per chunk.
    """
    step = max(nb_items, 1) if batch_size is None else batch_size
    progress = progbar(-(-nb_items // step), verbose and nb_items > step, title)
    results = []
    for first in range(0, nb_items, step):
        results.append(function(first, min(first + step, nb_items)))
        if progress is not None:
            progress.add(1)
    return results


def _run_eagerly(compiled, nb_items, arguments, batch_size, progress, what, trace_error):
    """Call the step's Python function batch by batch, without tf.function."""
    results = []
    for first in range(0, nb_items, batch_size):
        stop = min(first + batch_size, nb_items)
        try:
            results.append(compiled.python_step(tf.range(first, stop, dtype=tf.int64),
                                                *arguments))
        except SobolTFError:
            raise
        except Exception as exc:
            traced = "" if trace_error is None else (
                f" (TensorFlow could not trace it either: {cause_line(trace_error)})")
            raise ModelCallError(
                f"the model raised while evaluating {what} eagerly (items {first} to "
                f"{stop - 1} of {nb_items}, batch_size={batch_size}): "
                f"{type(exc).__name__}: {str(exc)[:2000]}"
                f"{traced}. {MODEL_CONTRACT}"
            ) from exc
        if trace_error is not None and not compiled.mode.warned:
            compiled.mode.warned = True
            warn(
                "the model could not be traced by TensorFlow "
                f"({cause_line(trace_error)}); it runs eagerly, batch by batch, which is "
                "slower. Write it with TensorFlow operations (or Keras layers) to run it "
                "compiled.")
        if progress is not None:
            progress.update(-(-stop // batch_size))
    return results


def run_batches(compiled: "CompiledStep", nb_items: int, arguments: Sequence[Any], *,
                batch_size: int, verbose: bool, title: str, what: str,
                values: str = "scores", items_per_input: int = 1,
                one_score: bool = False) -> tf.Tensor:
    """Run a compiled step over every batch of item indices, in order.

    A job of fewer than :data:`LOOP_MIN_BATCHES` batches calls the step once per batch;
    a longer one runs in chunks, each one call of the compiled loop, a chunk holding one
    batch at first and doubling while a call lasts less than :data:`CHUNK_SECONDS`.
    Results are collected once and stacked, then checked: NaN or infinite values raise
    (:func:`check_finite`). Model errors are re-raised as ModelCallError naming ``what``.

    A step TensorFlow cannot trace because of the model (a numpy function, a model
    reading ``int(x.shape[0])``, one returning numpy arrays) runs eagerly instead,
    batch by batch, with one :class:`~sobol_tf.errors.SobolTFWarning` per
    :class:`ModelMode` (that is, per explainer or metric); every later step of the same
    mode runs eagerly at once. A step made with ``eager_fallback=False`` raises instead.

    Args:
        compiled: a :class:`CompiledStep`.
        nb_items: number of items, indexed 0 .. nb_items - 1.
        arguments: tuple of tensors passed to every call of the step.
        batch_size: items per call of the step.
        verbose: show a progress bar when there is more than one batch.
        title: printed above the progress bar (who is working).
        what: what is evaluated, for the progress bar and error messages.
        values: what the results are, for the non-finite error ("scores").
        items_per_input: items of one input, to name the inputs in that error.
        one_score: each item gives one score (an operator's output): results (B,) or
            (B, 1) are returned flat, (nb_items,); any other shape raises.

    Returns:
        tf.Tensor of the stacked per-item results, (nb_items, ...).

    Raises:
        ModelCallError: the step raised something other than a SobolTFError (also
            eagerly), returned another number of rows than items, or non-finite values.
    """
    nb_batches = -(-nb_items // batch_size)
    progress = progbar(nb_batches, verbose and nb_batches > 1, f"{title}: {what}")
    in_loop = nb_batches >= LOOP_MIN_BATCHES
    results = []
    first, stop, chunk = 0, 0, 1
    trace_error = None
    runner: Any = None
    eager_once = (compiled.eager_first and compiled.strategy is None  # eager: one device
                  and compiled.runs == 0 and nb_batches == 1)
    compiled.runs += 1
    if not compiled.mode.eager and not eager_once:
        try:
            runner = compiled.loop if in_loop else compiled.step  # traced here
        except SobolTFError:
            raise
        except Exception as exc:
            ours = library_error(exc)
            if ours is not None:  # raised while tracing, wrapped by autograph
                raise ours from None
            if not compiled.eager_fallback:
                raise ModelCallError(
                    f"the model could not be traced by TensorFlow while evaluating {what}. "
                    "This method takes gradients with TensorFlow: the model must be made "
                    "of differentiable TensorFlow operations (a Keras model or a function "
                    f"of tf ops). The error: {type(exc).__name__}: {exc}"
                ) from exc
            trace_error = exc
            compiled.mode.eager = True
    if compiled.mode.eager or eager_once:
        results = _run_eagerly(compiled, nb_items, arguments, batch_size, progress, what,
                               trace_error)
    else:
        try:
            while first < nb_items:
                stop = min(first + chunk * batch_size, nb_items)
                started = time.perf_counter()
                if in_loop:
                    results.append(runner(first, stop, batch_size, *arguments))
                    if time.perf_counter() - started < CHUNK_SECONDS / 2:
                        chunk *= 2
                else:
                    results.append(runner(tf.range(first, stop, dtype=tf.int64), *arguments))
                first = stop
                if progress is not None:
                    progress.update(-(-first // batch_size))
        except SobolTFError:
            raise
        except Exception as exc:
            ours = library_error(exc)
            if ours is not None:
                raise ours from None
            hint = ""
            if compiled.strategy is not None and "on_a_different_device" in str(exc):
                hint = (" With jit_compile under a strategy, XLA cannot read weights held "
                        "on another device: build the model under strategy.scope() (its "
                        "weights are then mirrored on every replica), or leave "
                        "jit_compile off.")
            raise ModelCallError(
                f"the model raised while evaluating {what} (items {first} to {stop - 1} of "
                f"{nb_items}, batch_size={batch_size}):{hint} {type(exc).__name__}: {exc}"
            ) from exc
    result = tf.concat(results, axis=0) if len(results) > 1 else results[0]
    if result.shape[0] != nb_items:
        raise ModelCallError(
            f"the model (or the operator) returned {result.shape[0]} rows of results for "
            f"{nb_items} items while evaluating {what}; it must map a batch (B, ...) to "
            "outputs (B, K) or scores (B,)."
        )
    if one_score:
        if tuple(result.shape[1:]) not in ((), (1,)):
            raise ModelCallError(
                f"the operator returned scores of shape {tuple(result.shape)} while "
                f"evaluating {what}; it must return one score per input, shape (B,) "
                "(reduce over the outputs, e.g. tf.reduce_sum(model(x) * t, axis=-1))."
            )
        result = tf.reshape(result, (-1,))
    check_finite(result, what=what, values=values, items_per_input=items_per_input)
    return result
