"""The batching loop shared by explainers and metrics.

A step ``step(indices, *arguments) -> (B, ...)`` is compiled together with the loop over
its batches (:func:`compile_step`): one call of the compiled loop runs a whole chunk of
batches inside TensorFlow, so no Python runs between two forward passes. The items
themselves (perturbed inputs) are built inside the step, on the device, so that memory
is bounded by ``batch_size`` whatever the number of items.

Why a graph loop rather than a Python loop over a ``tf.data`` pipeline of indices:
measured on a 2-core CPU (small convnet, 132 batches of 256), calling the compiled step
once per batch from Python cost 5-8% of the forward time, and iterating a ``tf.data``
pipeline inside the graph 3%; a ``tf.while_loop`` over index ranges costs nothing
measurable (``benchmarks/bench_speed.py``).
"""
import time

import tensorflow as tf

from sobol_tf.errors import InvalidTypeError, ModelCallError, SobolTFError

#: run_batches sizes its chunks of batches so that one compiled call lasts about this
#: long (seconds): long enough that the per-call cost vanishes, short enough for the
#: progress bar to move and for Ctrl-C to be heard.
CHUNK_SECONDS = 0.5


def compile_step(python_step, input_signature, *, jit_compile=False):
    """Compile ``python_step(indices, *arguments)`` with the loop over its batches.

    Args:
        python_step: a function of int64 item indices (B,) and tensors ``arguments``,
            returning one tensor (B, ...).
        input_signature: TensorSpecs of ``(indices, *arguments)``.
        jit_compile: XLA-compile the step (the loop around it stays a TF graph).

    Returns:
        tf.function ``loop(start, stop, batch_size, *arguments)``: the step's results
        for items ``start .. stop - 1``, taken ``batch_size`` at a time, stacked.
    """
    step = tf.function(python_step, input_signature=input_signature, jit_compile=jit_compile)
    scalar = tf.TensorSpec([], tf.int64)

    @tf.function(input_signature=[scalar, scalar, scalar] + list(input_signature[1:]))
    def loop(start, stop, batch_size, *arguments):
        nb_batches = (stop - start + batch_size - 1) // batch_size
        output = step.get_concrete_function().structured_outputs
        results = tf.TensorArray(output.dtype, size=tf.cast(nb_batches, tf.int32),
                                 infer_shape=False, element_shape=output.shape)

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

    return loop


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


def run_batches(loop, nb_items, arguments, *, batch_size, verbose, title, what):
    """Run a compiled step over every batch of item indices, in order.

    The batches run in chunks, each one call of the compiled loop; a chunk holds one
    batch at first and doubles while a call lasts less than :data:`CHUNK_SECONDS`.
    Results are collected once and stacked. Model errors are re-raised as
    ModelCallError naming ``what``.

    Args:
        loop: a step compiled by :func:`compile_step`.
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
    results = []
    first, chunk = 0, 1
    try:
        while first < nb_items:
            stop = min(first + chunk * batch_size, nb_items)
            started = time.perf_counter()
            results.append(loop(first, stop, batch_size, *arguments))
            if time.perf_counter() - started < CHUNK_SECONDS / 2:
                chunk *= 2
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
