"""The batching loop shared by explainers and metrics.

A step ``step(indices, *arguments) -> (B, ...)`` is compiled (:class:`CompiledStep`)
alone and together with a loop over its batches: one call of the compiled loop runs a
whole chunk of batches inside TensorFlow, so no Python runs between two forward passes.
The items themselves (perturbed inputs) are built inside the step, on the device, so
that memory is bounded by ``batch_size`` whatever the number of items.

Why a graph loop rather than a Python loop over a ``tf.data`` pipeline of indices:
measured on a 2-core CPU (small convnet on 32x32 inputs, 132 batches of 256, about 12 ms
each), the same forward passes took about 9% longer called once per batch from Python
than looped inside one tf.function, and iterating a ``tf.data`` pipeline inside the
graph took about 3% longer than a ``tf.while_loop`` over index ranges
(``benchmarks/bench_speed.py`` prints both references).
"""
import logging
import time

import tensorflow as tf

from sobol_tf.errors import InvalidTypeError, ModelCallError, SobolTFError

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


class CompiledStep:
    """A step ``step(indices, *arguments)`` compiled two ways, each on first use.

    - ``step``: the step alone, called once per batch from Python (short jobs);
    - ``loop(start, stop, batch_size, *arguments)``: the step inside a ``tf.while_loop``
      over the batches of items ``start .. stop - 1`` (long jobs).

    Both return float32 results stacked over the items. The loop costs one more
    compilation (about 25-45 ms for a small model on a 2-core CPU) and saves the
    Python call of every batch (about 1 ms each on a small convnet, see the module's
    docstring).

    Args:
        python_step: a function of int64 item indices (B,) and tensors ``arguments``,
            returning one tensor (B, ...).
        input_signature: TensorSpecs of ``(indices, *arguments)``.
        jit_compile: XLA-compile the step (the loop around it stays a TF graph).
    """

    def __init__(self, python_step, input_signature, *, jit_compile=False):
        def step(indices, *arguments):
            return tf.cast(python_step(indices, *arguments), tf.float32)

        step.__qualname__ = step.__name__ = f"{_NAME}_step"  # see _RetracingFilter
        self._python_step = step
        self._signature = list(input_signature)
        self._jit_compile = jit_compile
        self._step = self._loop = None

    @property
    def step(self):
        if self._step is None:
            self._step = tf.function(self._python_step, input_signature=self._signature,
                                     jit_compile=self._jit_compile).get_concrete_function()
        return self._step

    @property
    def loop(self):
        if self._loop is None:
            self._loop = self._compile_loop()
        return self._loop

    def _compile_loop(self):
        step = self._python_step
        if self._jit_compile:  # an XLA cluster of its own; else traced inline in the body
            step = tf.function(step, jit_compile=True)

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

        loop.__qualname__ = loop.__name__ = f"{_NAME}_loop"  # see _RetracingFilter
        scalar = tf.TensorSpec([], tf.int64)
        return tf.function(loop, input_signature=[scalar] * 3 + self._signature[1:])


def outputs_step(model):
    """A step ``(indices, images) -> outputs (B, K) float32`` of ``model`` on clean inputs."""

    def step(indices, images):
        outputs = model(tf.gather(images, indices))
        if isinstance(outputs, (list, tuple)):
            raise InvalidTypeError(
                "the model returned several outputs; pass operator=callable "
                "g(model, inputs, targets) that picks the one to use."
            )
        return tf.cast(tf.reshape(outputs, (tf.shape(indices)[0], -1)), tf.float32)

    return step


def scores_step(model, operator):
    """A step ``(indices, images, targets) -> (B,) scores`` of the operator on clean inputs."""

    def step(indices, images, targets):
        return operator(model, tf.gather(images, indices), tf.gather(targets, indices))

    return step


def progbar(total, verbose, title):
    """A keras Progbar of ``total`` batches after printing ``title``; None when quiet."""
    if not verbose:
        return None
    import keras  # light: tensorflow already imported it

    print(title)
    return keras.utils.Progbar(total, unit_name="batch")


def _library_error(exc):
    """The SobolTFError an exception wraps (autograph re-raises tracing errors as
    StagingError with the original as context), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SobolTFError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def run_batches(compiled, nb_items, arguments, *, batch_size, verbose, title, what):
    """Run a compiled step over every batch of item indices, in order.

    A job of fewer than :data:`LOOP_MIN_BATCHES` batches calls the step once per batch;
    a longer one runs in chunks, each one call of the compiled loop, a chunk holding one
    batch at first and doubling while a call lasts less than :data:`CHUNK_SECONDS`.
    Results are collected once and stacked. Model errors are re-raised as
    ModelCallError naming ``what``.

    Args:
        compiled: a :class:`CompiledStep`.
        nb_items: number of items, indexed 0 .. nb_items - 1.
        arguments: tuple of tensors passed to every call of the step.
        batch_size: items per call of the step.
        verbose: show a progress bar when there is more than one batch.
        title: printed above the progress bar (who is working).
        what: what is evaluated, for the progress bar and error messages.

    Returns:
        tf.Tensor of the stacked per-item results, (nb_items, ...).

    Raises:
        ModelCallError: the step raised something other than a SobolTFError.
    """
    nb_batches = -(-nb_items // batch_size)
    progress = progbar(nb_batches, verbose and nb_batches > 1, f"{title}: {what}")
    in_loop = nb_batches >= LOOP_MIN_BATCHES
    results = []
    first, chunk = 0, 1
    try:
        while first < nb_items:
            stop = min(first + chunk * batch_size, nb_items)
            started = time.perf_counter()
            if in_loop:
                results.append(compiled.loop(first, stop, batch_size, *arguments))
                if time.perf_counter() - started < CHUNK_SECONDS / 2:
                    chunk *= 2
            else:
                results.append(compiled.step(tf.range(first, stop, dtype=tf.int64),
                                             *arguments))
            first = stop
            if progress is not None:
                progress.update(-(-first // batch_size))
    except SobolTFError:
        raise
    except Exception as exc:
        ours = _library_error(exc)
        if ours is not None:  # raised while tracing, wrapped by autograph
            raise ours from None
        raise ModelCallError(
            f"the model raised while evaluating {what} (items {first} to {stop - 1} of "
            f"{nb_items}, batch_size={batch_size}): {type(exc).__name__}: {exc}"
        ) from exc
    return tf.concat(results, axis=0) if len(results) > 1 else results[0]
