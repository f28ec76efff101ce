"""The batching loop shared by explainers and metrics.

A compiled ``step(indices, *arguments)`` is called on every batch of item indices; the
items themselves (perturbed inputs) are built inside the step, on the device, so that
memory is bounded by ``batch_size`` whatever the number of items.
"""
import tensorflow as tf

from sobol_tf.errors import InvalidTypeError, ModelCallError, SobolTFError


def _pipeline_options():
    """tf.data options for the index pipeline: one private thread, no autotuning.

    Measured on a 2-core CPU: with tf.data's defaults, one explain() call in two stalled
    for about half of its run (autotuning threads competing with the model's own), so the
    tiny index pipeline keeps to one thread of its own.
    """
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return options


_PIPELINE_OPTIONS = _pipeline_options()


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


def run_batches(step, nb_items, arguments, *, batch_size, verbose, title, what):
    """Call ``step(indices, *arguments)`` on every batch of item indices, in order.

    Indices are batched and prefetched by a tf.data pipeline; results are collected
    once and stacked. Model errors are re-raised as ModelCallError naming ``what``.

    Args:
        step: callable (usually a tf.function) of int64 indices (B,) and ``arguments``,
            returning a tensor (B, ...).
        nb_items: number of items, indexed 0 .. nb_items - 1.
        arguments: tuple of tensors passed to every call of ``step``.
        batch_size: items per call.
        verbose: show a progress bar when there is more than one batch.
        title: printed above the progress bar (who is working).
        what: what is evaluated, for the progress bar and error messages.

    Returns:
        tf.Tensor of the stacked per-item results, (nb_items, ...).

    Raises:
        ModelCallError: ``step`` raised something other than a SobolTFError.
    """
    batches = tf.data.Dataset.range(nb_items).batch(batch_size).prefetch(2).with_options(
        _PIPELINE_OPTIONS)
    nb_batches = -(-nb_items // batch_size)
    progress = progbar(nb_batches, verbose and nb_batches > 1, f"{title}: {what}")
    results = []
    number = 0
    try:
        if isinstance(step, tf.types.experimental.PolymorphicFunction) and step.input_signature:
            # a concrete function skips tf.function's argument matching at every call
            step = step.get_concrete_function()
        for number, indices in enumerate(batches):
            results.append(step(indices, *arguments))
            if progress is not None:
                progress.update(number + 1)
    except SobolTFError:
        raise
    except Exception as exc:
        first = number * batch_size
        last = min(first + batch_size, nb_items) - 1
        raise ModelCallError(
            f"the model raised while evaluating {what} (items {first} to {last} of "
            f"{nb_items}, batch_size={batch_size}): {type(exc).__name__}: {exc}"
        ) from exc
    return tf.concat(results, axis=0) if len(results) > 1 else results[0]
