"""Cost of the eager path: models TensorFlow cannot trace (`make bench`).

A numpy function, a scikit-learn ``predict_proba`` or a ``tf.Module`` reading
``int(x.shape[0])`` cannot run inside a compiled batch loop; sobol_tf then runs them
eagerly, batch by batch (one SobolTFWarning). This benchmark measures what that path adds
to the model's own cost.

Overhead ratio = wall time of explain() (or of the metric) on N inputs / wall time of the
model itself called on the same number of inputs, at the same batch size, on numpy
arrays already in memory (the least any method must spend). Both are measured side by
side (interleaved) in this process after a warm-up, median of repeats. When xplique is
importable, Xplique's method runs on the same model and inputs (its column: seconds and
its ratio to ours).

Models, on 8x8 grayscale handwritten digits (scikit-learn's, shipped in its package):
- "logistic": scikit-learn LogisticRegression.predict_proba on the flattened image
  (very cheap: the overhead ratio is an upper bound of the engine's cost);
- "numpy MLP": a numpy two-hidden-layer (512, 512) ReLU net with softmax;
- "tf.Module": the same MLP in TensorFlow, reading int(x.shape[0]) (eager TensorFlow).

Usage: python benchmarks/bench_eager.py [--quick] [--json FILE]
"""
import argparse
import json
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sobol_tf next to this benchmark

from common import machine, print_table, side_by_side, xplique_available  # noqa: E402

import numpy as np  # noqa: E402

BATCH = 256


def digits(nb_inputs):
    """Training images (N, 8, 8, 1) in [0, 1], labels, and N inputs to explain."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    return images, data.target, images[-nb_inputs:], data.target[-nb_inputs:]


def models(images, labels):
    """The three untraceable models, each mapping a (B, 8, 8, 1) batch to (B, 10)."""
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    flat = images.reshape(len(images), -1)
    logistic = LogisticRegression(max_iter=500).fit(flat, labels)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 1 / np.sqrt(n), (n, m)).astype(np.float32)
               for n, m in [(64, 512), (512, 512), (512, 10)]]

    def numpy_mlp(x):
        hidden = np.asarray(x, np.float32).reshape(len(x), -1)
        for weight in weights[:-1]:
            hidden = np.maximum(hidden @ weight, 0.0)
        logits = hidden @ weights[-1]
        logits = np.exp(logits - logits.max(axis=1, keepdims=True))
        return logits / logits.sum(axis=1, keepdims=True)

    class ShapeReadingMLP(tf.Module):
        def __call__(self, x):
            hidden = tf.reshape(x, (int(x.shape[0]), -1))
            for weight in weights[:-1]:
                hidden = tf.nn.relu(hidden @ weight)
            return tf.nn.softmax(hidden @ weights[-1])

    return {
        "logistic": lambda x: logistic.predict_proba(np.asarray(x).reshape(len(x), -1)),
        "numpy MLP": numpy_mlp,
        "tf.Module": ShapeReadingMLP(),
    }


def model_only(model, nb_calls, batch):
    """The model alone on ``nb_calls`` inputs in batches of ``batch`` (numpy in memory)."""
    inputs = np.random.default_rng(1).uniform(size=(batch, 8, 8, 1)).astype(np.float32)
    sizes = [batch] * (nb_calls // batch) + ([nb_calls % batch] if nb_calls % batch else [])

    def run():
        return [np.asarray(model(inputs[:size])) for size in sizes]

    return run


def methods(x, labels):
    """(name, run, model calls per input): ``run(library, model)`` builds the method of
    ``library`` ('sobol_tf' or 'xplique') on ``model`` and returns the function timed."""
    import importlib

    one_hot = np.eye(10, dtype=np.float32)[labels]
    explanations = np.random.default_rng(2).uniform(size=x.shape[:3]).astype(np.float32)
    builds = {
        "Sobol grid 4, nb_design 32": (lambda a, model: a.SobolAttributionMethod(
            model, grid_size=4, nb_design=32, batch_size=BATCH), 32 * 18),
        "Rise 512 masks": (lambda a, model: a.Rise(
            model, batch_size=BATCH, nb_samples=512, grid_size=4), 512),
        "Occlusion 2x2 stride 1": (lambda a, model: a.Occlusion(
            model, batch_size=BATCH, patch_size=2, patch_stride=1), 49),
    }

    def explainer(build):
        def run(library, model):
            method = build(importlib.import_module(f"{library}.attributions"), model)
            return lambda: np.asarray(method.explain(x, one_hot))
        return run

    def deletion(library, model):
        metric = importlib.import_module(f"{library}.metrics").Deletion
        return lambda: metric(model, x, one_hot, batch_size=BATCH, steps=10)(explanations)

    return ([(name, explainer(build), calls) for name, (build, calls) in builds.items()]
            + [("Deletion 10 steps", deletion, 11)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=4, 2 repeats")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    nb_inputs, repeats = (4, 2) if args.quick else (8, 3)
    images, labels, x, y = digits(nb_inputs)
    print(f"Machine: {machine()}")
    print(f"N={nb_inputs} digits 8x8x1, batch_size={BATCH}, median of {repeats} runs")
    header = ["model", "method", "model calls", "model s", "ours s", "overhead"]
    with_peer = xplique_available()
    if with_peer:
        header += ["xplique s", "ours vs xplique"]
    rows = []
    for model_name, model in models(images, labels).items():
        for name, run, calls in methods(x, y):
            nb_calls = nb_inputs * calls
            functions = {"model": model_only(model, nb_calls, BATCH),
                         "ours": run("sobol_tf", model)}
            if with_peer:
                functions["xplique"] = run("xplique", model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the one eager-path warning per object
                times = side_by_side(functions, repeats)
            row = [model_name, name, nb_calls, f"{times['model']:.3f}",
                   f"{times['ours']:.3f}", f"{times['ours'] / times['model']:.2f}"]
            if with_peer:
                row += ([f"{times['xplique']:.3f}", f"{times['xplique'] / times['ours']:.2f}x"]
                        if "xplique" in times else ["-", "-"])
            rows.append(row)
            print("  ".join(map(str, row)), flush=True)
    print_table("Eager path: explain() against the untraceable model's own cost", header,
                rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
