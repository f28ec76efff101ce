"""Cost and tightness of sobol_tf.verification's IBP and CROWN bounds.

Random (untrained, seeded) models: a ReLU MLP and a small ReLU convnet (chains, so
CROWN applies end to end), boxes of radius EPSILON around uniform inputs. For each:
the mean width of the output bounds, the mean width of the margin bounds (rows
e_c - e_0, as EVA asks), the share of sampled outputs' spread the bounds leave (the
tightest sound bound would be near 1), and seconds per box (after a warm-up call).

Writes <out>/verification.md. Usage: python benchmarks/bench_verification.py [--out DIR]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import numpy as np  # noqa: E402

from common import machine, markdown_table, print_table  # noqa: E402

EPSILON = 0.02
NB_BOXES = 64
NB_POINTS = 2000
REPEATS = 3


def models():
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((64,)), layers.Dense(128, "relu"),
                            layers.Dense(128, "relu"), layers.Dense(10)])
    convnet = keras.Sequential([
        keras.Input((16, 16, 1)), layers.Conv2D(8, 3, activation="relu"),
        layers.Conv2D(8, 3, strides=2, activation="relu"), layers.Flatten(),
        layers.Dense(32, "relu"), layers.Dense(10)])
    return {"MLP 64-128-128-10": mlp, "convnet conv8-conv8/2-dense32-10": convnet}


def timed(function):
    function()
    start = time.perf_counter()
    for _ in range(REPEATS):
        result = function()
    return result, (time.perf_counter() - start) / REPEATS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    from sobol_tf.verification import output_bounds
    rng = np.random.default_rng(0)
    spec = np.eye(10, dtype=np.float32)[1:] - np.eye(10, dtype=np.float32)[:1]
    header = ["model", "method", "output width", "margin width", "width / sampled spread",
              "ms per box", "ms per box (margins)"]
    rows = []
    for name, model in models().items():
        shape = (NB_BOXES,) + tuple(model.inputs[0].shape[1:])
        x = rng.uniform(size=shape).astype(np.float32)
        lower, upper = x - EPSILON, x + EPSILON
        points = lower[:4, None] + rng.uniform(size=(4, NB_POINTS) + shape[1:]).astype(
            np.float32) * (upper - lower)[:4, None]
        outputs = np.asarray(model(points.reshape((-1,) + shape[1:]))).reshape(4, NB_POINTS, -1)
        spread = (outputs.max(1) - outputs.min(1)).mean()
        for method in ("ibp", "crown"):
            (low, high), seconds = timed(lambda: output_bounds(model, lower, upper, method))
            (m_low, m_high), m_seconds = timed(
                lambda: output_bounds(model, lower, upper, method, spec=spec))
            rows.append([name, method, f"{(high - low).mean():.4f}",
                         f"{(m_high - m_low).mean():.4f}",
                         f"{(high - low)[:4].mean() / spread:.2f}",
                         f"{1000 * seconds / NB_BOXES:.3f}",
                         f"{1000 * m_seconds / NB_BOXES:.3f}"])
    print_table("IBP and CROWN", header, rows)
    lines = [f"Machine: {machine()}. `python benchmarks/bench_verification.py`.", "",
             f"Random seeded models, {NB_BOXES} boxes of radius {EPSILON} around uniform "
             "inputs, all in one batch. Widths: mean of upper - lower over boxes and "
             "outputs; margins: the 9 rows e_c - e_0 (EVA's specification). Width / "
             f"sampled spread: the output width over the spread of {NB_POINTS} sampled "
             "outputs on the first 4 boxes (>= 1 always; 1 would be exact). Seconds: "
             f"mean of {REPEATS} calls after a warm-up (tracing excluded), a 2-core CPU "
             "shared with other jobs.", ""]
    lines += markdown_table(header, rows)
    with open(os.path.join(args.out, "verification.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
