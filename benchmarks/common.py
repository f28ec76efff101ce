"""Shared helpers of the benchmarks: timing, models, tables."""
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def median_time(function, repeats, warmup=1):
    """Median wall time of ``function()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def side_by_side(functions, repeats, warmup=1):
    """Median times of several functions, run interleaved so that load hits all alike."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def small_convnet(input_shape=(32, 32, 3), nb_classes=10, seed=0):
    """The small convnet of case (a)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(nb_classes, activation="softmax"),
    ])


def mobilenet(input_size, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3),
                                          weights=None, classes=1000)


def images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def forward_time_function(model, nb_forwards, input_shape, batch_size):
    """A function running ``nb_forwards`` forward passes at ``batch_size`` on an in-memory
    tensor, through tf.function(lambda x: model(x, training=False))."""
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False))
    batch = tf.constant(np.random.default_rng(1).uniform(
        size=(batch_size,) + tuple(input_shape)).astype(np.float32))
    sizes = [batch_size] * (nb_forwards // batch_size)
    if nb_forwards % batch_size:
        sizes.append(nb_forwards % batch_size)
    slices = [batch[:size] for size in sizes]

    def run():
        outputs = [forward(piece) for piece in slices]
        return [output.numpy() for output in outputs]

    return run


def forward_loop_function(model, nb_forwards, input_shape, batch_size):
    """The same forward passes as :func:`forward_time_function`, looped inside one
    tf.function (a tf.while_loop over the batches): no Python between two batches.

    A stricter reference than the issue's: the model's cost with no dispatch at all.
    """
    import tensorflow as tf

    batch = tf.constant(np.random.default_rng(1).uniform(
        size=(batch_size,) + tuple(input_shape)).astype(np.float32))

    @tf.function
    def loop():
        def body(first, total):
            size = tf.minimum(batch_size, nb_forwards - first)
            outputs = model(batch[:size], training=False)
            return first + batch_size, total + tf.reduce_sum(outputs)

        return tf.while_loop(lambda first, _: first < nb_forwards, body,
                             (tf.constant(0), tf.constant(0.0)), parallel_iterations=1)[1]

    return lambda: loop().numpy()


def print_table(title, header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join("-" * width for width in widths)
    print(f"\n{title}")
    print("  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


def machine():
    import platform

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"{'GPU: ' + ', '.join(g.name for g in gpus) if gpus else 'no GPU'}, "
            f"TensorFlow {tf.__version__}")


def xplique_available():
    try:
        import xplique  # noqa: F401
    except Exception:  # an optional peer: any import failure means "not there"
        return False
    return True


def markdown_table(header, rows):
    """Lines of a markdown table: the first column left-aligned, the others right-aligned."""
    return (["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
            + ["| " + " | ".join(row) + " |" for row in rows])
