"""Explainers and metrics under a tf.distribute strategy (issue 16, item 1).

Several devices on this CPU-only machine are logical CPU devices, which TensorFlow must
be told about before it initialises its devices; the test process has initialised them
long before (conftest imports TensorFlow and other tests run models). So the comparisons
over two devices run in ONE child process (``sys.executable`` on the script below, once
per test session, module-scoped fixture): it configures two logical CPUs, computes every
map with MirroredStrategy and on one device, and prints the results as JSON. That leaves
the devices of the test process (and of every other test) untouched, which a global
device configuration in conftest would not. The checks of arguments run in this process.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion, SobolAttributionMethod
from sobol_tf.errors import InvalidTypeError
from sobol_tf.metrics import Deletion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from sobol_tf.attributions import Occlusion, Rise, Saliency, SobolAttributionMethod
    from sobol_tf.metrics import Deletion, MuFidelity

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    seen = set()  # devices the model's inputs were on, while traced

    def model(x):  # a function of tf ops: outputs (B, 3)
        seen.add(x.device)
        means = tf.reduce_mean(x, axis=(1, 2))                 # (B, 3)
        return tf.stack([means[:, 0] * 2 + means[:, 1] ** 2,
                         tf.sin(3 * means[:, 2]) + means[:, 0],
                         means[:, 1] * means[:, 2]], axis=-1)

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 1, 2])
    explainers = {
        # batch sizes that leave a short last batch and one of fewer items than replicas
        "sobol": lambda: SobolAttributionMethod(model, grid_size=2, nb_design=4,
                                                batch_size=7),
        "rise": lambda: Rise(model, batch_size=5, nb_samples=20, grid_size=3, seed=1),
        "occlusion": lambda: Occlusion(model, batch_size=3, patch_size=4, patch_stride=2),
        "saliency": lambda: Saliency(model, batch_size=2),
    }
    results, devices_seen = {}, {}
    for name, build in explainers.items():
        one = build().explain(x, y).numpy()
        seen.clear()
        with strategy.scope():
            explainer = build()
        assert explainer.strategy is strategy
        many = explainer.explain(x, y).numpy()
        devices_seen[name] = sorted(seen)
        results[name] = float(np.max(np.abs(one - many)))
    # given as an argument (every class's keyword), outside any scope
    one = explainers["sobol"]().explain(x, y).numpy()
    seen.clear()
    explainer = SobolAttributionMethod(model, grid_size=2, nb_design=4, batch_size=7,
                                       strategy=strategy)
    assert explainer.strategy is strategy
    many = explainer.explain(x, y).numpy()
    devices_seen["argument"] = sorted(seen)
    results["argument"] = float(np.max(np.abs(one - many)))
    # a Keras model built under the scope (mirrored weights), XLA-compiled steps
    def convnet():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    plain = convnet()
    with strategy.scope():
        mirrored = convnet()
        explainer = SobolAttributionMethod(mirrored, grid_size=2, nb_design=4, batch_size=7,
                                           jit_compile=True)
    one = SobolAttributionMethod(plain, grid_size=2, nb_design=4, batch_size=7)
    results["keras_jit"] = float(np.max(np.abs(one.explain(x, y).numpy()
                                               - explainer.explain(x, y).numpy())))
    with strategy.scope():  # weights on one device: XLA cannot read them from the other
        explainer = SobolAttributionMethod(plain, grid_size=2, nb_design=4, jit_compile=True)
    try:
        explainer.explain(x, y)
        results["jit_error"] = "no error"
    except Exception as exc:
        results["jit_error"] = f"{type(exc).__name__}: {str(exc)[:400]}"
    maps = rng.normal(size=(3, 8, 8)).astype(np.float32)
    for name, build in {
        "deletion": lambda: Deletion(model, x, y, batch_size=4, steps=5),
        "mufidelity": lambda: MuFidelity(model, x, y, batch_size=6, grid_size=2,
                                         nb_samples=9, seed=0),
    }.items():
        one = build()(maps)
        seen.clear()
        with strategy.scope():
            metric = build()
        many = metric(maps)
        devices_seen[name] = sorted(seen)
        results[name] = abs(one - many)
    one = Deletion(model, x, y, batch_size=4, steps=5)(maps)
    seen.clear()
    metric = Deletion(model, x, y, batch_size=4, steps=5, strategy=strategy)
    assert metric.strategy is strategy
    many = metric(maps)
    devices_seen["metric_argument"] = sorted(seen)
    results["metric_argument"] = abs(one - many)
    print("RESULT" + json.dumps({"differences": results, "devices": devices_seen,
                                 "replicas": strategy.num_replicas_in_sync}))
""")


@pytest.fixture(scope="module")
def two_devices():
    """What the child process measured: max |maps on 2 devices - maps on 1| per method,
    and the devices the model was traced on under the strategy."""
    environment = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=environment, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT"):])


@pytest.mark.parametrize("name", ["sobol", "rise", "occlusion", "saliency", "argument",
                                  "deletion", "mufidelity", "metric_argument"])
def test_same_results_on_two_devices(two_devices, name):
    assert two_devices["replicas"] == 2
    assert two_devices["differences"][name] < 1e-5
    # the forward batches really ran on both devices
    assert [device[-5:] for device in two_devices["devices"][name]] == ["CPU:0", "CPU:1"], \
        two_devices["devices"][name]


def test_keras_model_built_under_the_scope_with_xla(two_devices):
    assert two_devices["differences"]["keras_jit"] < 1e-5


def test_xla_with_weights_on_one_device_says_how_to_fix(two_devices):
    error = two_devices["differences"]["jit_error"]
    assert error.startswith("ModelCallError") and "strategy.scope()" in error, error


def tiny_model(x):
    return tf.stack([tf.reduce_mean(x, axis=(1, 2, 3)), -tf.reduce_mean(x, axis=(1, 2, 3))],
                    axis=-1)


def test_one_device_strategy_in_process_same_maps():
    """A MirroredStrategy of the one CPU of this process: the path runs here, same maps."""
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    one = SobolAttributionMethod(tiny_model, grid_size=2, nb_design=4, batch_size=5)
    with strategy.scope():
        many = SobolAttributionMethod(tiny_model, grid_size=2, nb_design=4, batch_size=5)
    assert many.strategy is strategy and one.strategy is None
    np.testing.assert_allclose(many.explain(x, [0, 1]), one.explain(x, [0, 1]), atol=1e-6)


def test_strategy_set_after_construction():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    explainer = Occlusion(tiny_model, patch_size=4, patch_stride=4)
    explainer.strategy = strategy
    assert explainer.strategy is strategy
    explainer.strategy = None
    assert explainer.strategy is None


@pytest.mark.parametrize("value", ["mirrored", 2, object()])
def test_bad_strategy_type(value):
    from sobol_tf.attributions.base import Explainer
    from sobol_tf.metrics.base import ExplanationMetric

    class Plain(Explainer):
        def _explain(self, model, images, targets):
            return images

    with pytest.raises(InvalidTypeError, match="strategy"):
        Plain(tiny_model, strategy=value)
    with pytest.raises(InvalidTypeError, match="strategy"):
        Occlusion(tiny_model).strategy = value

    class Metric(ExplanationMetric):
        def evaluate(self, explanations):
            return 0.0

    x = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(InvalidTypeError, match="strategy"):
        Metric(tiny_model, x, [0, 1], strategy=value)
    with pytest.raises(InvalidTypeError, match="strategy"):
        Deletion(tiny_model, x, [0, 1]).strategy = value


def test_a_one_batch_job_of_a_keras_model_runs_on_the_strategy():
    """Metrics (and CRAFT) run the first one-batch job of a Keras model eagerly, which
    skips a trace; under a strategy that job must still go through ``strategy.run``."""
    import keras

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    strategies = []

    class Spy(keras.layers.Layer):
        def call(self, x):
            strategies.append(tf.distribute.get_strategy())
            return x

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((8, 8, 1)), Spy(), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    maps = np.random.default_rng(1).normal(size=(2, 8, 8)).astype(np.float32)
    plain = Deletion(model, x, [0, 1], batch_size=64, steps=2)(maps)
    strategies.clear()
    score = Deletion(model, x, [0, 1], batch_size=64, steps=2, strategy=strategy)(maps)
    assert strategies and all(s is strategy for s in strategies)
    assert abs(score - plain) < 1e-6
