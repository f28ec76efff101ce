"""Streaming (sobol_tf.streaming): throughput of explain on an array vs on a stream, and
the peak memory of long streams.

1. images/s of SobolAttributionMethod on N 32x32 images of the small convnet: one
   ``explain`` on the array, ``explain_dataset`` on the array, on a tf.data pipeline
   (decode PNG files + resize, :func:`image_files_dataset`) and on a Python generator,
   interleaved (:func:`common.side_by_side`). The forward passes are the floor: a
   stream should run at ~1x the array's speed.
2. peak RSS (ru_maxrss of a fresh process) of a stream of 1,000 vs 10,000 small images
   (16x16, tf.data pipeline, Occlusion, maps written to disk with write_maps): must stay
   flat.

    python benchmarks/bench_streaming.py [--quick]

Writes benchmarks/results/streaming.md.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from common import side_by_side, small_convnet  # noqa: E402

import numpy as np  # noqa: E402


def throughput(nb_images, repeats, batch_size):
    import tensorflow as tf
    from sobol_tf.attributions import SobolAttributionMethod
    from sobol_tf.streaming import explain_dataset, image_files_dataset

    model = small_convnet()
    rng = np.random.default_rng(0)
    images = rng.random((nb_images, 32, 32, 3), dtype=np.float32)
    # PNG files of the same pixels (8 bits), decoded and resized from 40x40 in tf.data
    folder = tempfile.mkdtemp(prefix="bench-stream-")
    for i, image in enumerate(images):
        pixels = tf.image.resize(image, (40, 40))
        tf.io.write_file(os.path.join(folder, f"{i:05d}.png"),
                         tf.io.encode_png(tf.cast(pixels * 255, tf.uint8)))
    targets = np.zeros(nb_images, int)
    explainer = SobolAttributionMethod(model, grid_size=8, nb_design=16, seed=0,
                                       batch_size=256)

    def consume(stream):
        for _ in stream:
            pass

    def generator():
        for start in range(0, nb_images, batch_size):
            yield images[start:start + batch_size]

    functions = {
        "explain(array)": lambda: explainer.explain(images, targets),
        "explain_dataset(array)": lambda: consume(explain_dataset(
            explainer, images, targets, batch_size=batch_size)),
        "explain_dataset(PNG files, tf.data)": lambda: consume(explain_dataset(
            explainer, image_files_dataset(folder, 32), targets, batch_size=batch_size)),
        "explain_dataset(generator)": lambda: consume(explain_dataset(
            explainer, generator(), targets)),
    }
    times = side_by_side(functions, repeats)
    forward = nb_images * (16 * (64 + 2))  # perturbed inputs per job
    return times, forward


CHILD = r"""
import os, resource, sys, tempfile, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf, keras
sys.path.insert(0, sys.argv[2])
from sobol_tf.attributions import Occlusion
from sobol_tf.streaming import explain_dataset, write_maps
n = int(sys.argv[1])
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
data = tf.data.Dataset.range(n).map(
    lambda i: tf.random.stateless_uniform((16, 16, 3), tf.stack([i, 0])))
explainer = Occlusion(model, patch_size=8, patch_stride=8, batch_size=256)
begin = time.perf_counter()
with tempfile.TemporaryDirectory() as out:
    writer = write_maps(explain_dataset(explainer, data, np.zeros(n, int), batch_size=100), out)
elapsed = time.perf_counter() - begin
print(writer.count, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(nb_images):
    root = os.path.dirname(HERE)
    out = subprocess.run([sys.executable, "-c", CHILD, str(nb_images), root],
                         capture_output=True, text=True, check=True).stdout.split()
    count, elapsed, rss = int(out[-3]), float(out[-2]), int(out[-1])
    assert count == nb_images
    return elapsed, rss / 1024  # MiB (ru_maxrss is in KiB on Linux)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    nb_images, repeats = (32, 1) if args.quick else (64, 2)
    times, forward = throughput(nb_images, repeats, batch_size=16)
    sizes = (100, 1000) if args.quick else (1000, 10000)
    memory = {n: peak_rss(n) for n in sizes}

    lines = ["# Streaming: throughput and memory", "",
             f"Machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPU cores (shared), TensorFlow on CPU. "
             f"`python benchmarks/bench_streaming.py{' --quick' if args.quick else ''}`.", "",
             f"## Throughput: SobolAttributionMethod (grid 8, nb_design 16: {forward // nb_images} "
             f"forward passes per image), small convnet, {nb_images} images 32x32x3, "
             f"median of {repeats} interleaved runs, stream steps of 16 images", "",
             "| run | seconds | images/s | ratio to explain(array) |", "|---|---|---|---|"]
    base = times["explain(array)"]
    for name, seconds in times.items():
        lines.append(f"| {name} | {seconds:.2f} | {nb_images / seconds:.1f} | "
                     f"{base / seconds:.2f} |")
    lines += ["", "## Memory: stream of 16x16x3 images (tf.data pipeline), Occlusion, maps "
              "written with write_maps, steps of 100 images; a fresh process each", "",
              "| images | seconds | images/s | peak RSS (MiB) |", "|---|---|---|---|"]
    for n, (elapsed, rss) in memory.items():
        lines.append(f"| {n} | {elapsed:.1f} | {n / elapsed:.0f} | {rss:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        with open(os.path.join(HERE, "results", "streaming.md"), "w") as file:
            file.write(text)


if __name__ == "__main__":
    main()
