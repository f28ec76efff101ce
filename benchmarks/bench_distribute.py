"""Throughput of SobolAttributionMethod.explain() on 1 device vs several under
tf.distribute.MirroredStrategy (issue 16, item 1).

Each configuration runs in its own process, since logical devices must be configured
before TensorFlow initialises them:

- ``none``: no strategy (TensorFlow's placement, one device);
- ``mirrored-1``: MirroredStrategy over one device (the cost of the strategy itself);
- ``mirrored-2``: MirroredStrategy over two logical CPU devices (``--gpu``: over every
  GPU instead, the model built under the scope).

Model: the small convnet of ``bench_speed.py`` case (a), 32x32x3, built under the
strategy's scope (mirrored weights); Sobol grid_size=8, nb_design=32, batch_size=256.
Images/s = N / median wall time of explain() over every repeat of every round, after
one warm-up call per process; the configurations take turns, round after round (order
reversed every other round), so that the load of a shared machine hits them alike.
The load average is written down with the table.
Usage: python benchmarks/bench_distribute.py [--quick] [--gpu] [--rounds R] [--markdown FILE]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sobol_tf next to this benchmark

GRID, NB_DESIGN, BATCH = 8, 32, 256

CHILD = r"""
import json, sys, time, statistics
sys.path[:0] = {paths!r}
import tensorflow as tf
configuration, nb_images, repeats, gpu = {configuration!r}, {nb_images}, {repeats}, {gpu}
if configuration == "mirrored-2" and not gpu:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
kind = "GPU" if gpu else "CPU"
devices = [d.name for d in tf.config.list_logical_devices(kind)]
if configuration == "none":
    strategy = None
else:
    strategy = tf.distribute.MirroredStrategy(devices[:1] if configuration == "mirrored-1"
                                              else devices)
from common import images, small_convnet
from sobol_tf.attributions import SobolAttributionMethod

def build():
    model = small_convnet()
    return model, SobolAttributionMethod(model, grid_size={grid}, nb_design={nb_design},
                                         batch_size={batch})
if strategy is None:
    model, explainer = build()
else:
    with strategy.scope():
        model, explainer = build()
x = images(nb_images, 32)
labels = [i % 10 for i in range(nb_images)]
explainer.explain(x[:2], labels[:2])  # warm-up: traces the steps
times = []
for _ in range(repeats):
    start = time.perf_counter()
    explainer.explain(x, labels).numpy()
    times.append(time.perf_counter() - start)
replicas = 1 if strategy is None else strategy.num_replicas_in_sync
print("RESULT" + json.dumps({{"median_s": statistics.median(times), "replicas": replicas,
                             "times": times}}))
"""


def run(configuration, nb_images, repeats, gpu):
    """Run one configuration in a fresh process; return its measurements."""
    code = CHILD.format(paths=[HERE, os.path.dirname(HERE)], configuration=configuration,
                        nb_images=nb_images, repeats=repeats, gpu=gpu, grid=GRID,
                        nb_design=NB_DESIGN, batch=BATCH)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if not gpu:
        environment["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if done.returncode or not lines:
        raise RuntimeError(f"{configuration} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def main(argv=None):
    from common import machine, print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--gpu", action="store_true", help="replicas over the GPUs")
    parser.add_argument("--rounds", type=int, default=2, help="processes per configuration")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    nb_images, repeats = (4, 2) if args.quick else (16, 2)
    forwards = nb_images * NB_DESIGN * (GRID ** 2 + 2)
    print(f"machine: {machine()}; {nb_images} images 32x32, {forwards} forward passes per "
          f"explain, batch_size={BATCH}, median of {repeats} x {args.rounds} rounds after a warm-up")
    import statistics

    configurations = ["none", "mirrored-1", "mirrored-2"]
    times = {configuration: [] for configuration in configurations}
    replicas = {}
    loads = [os.getloadavg()[0]]
    for number in range(args.rounds):
        for configuration in configurations[::-1 if number % 2 else 1]:
            result = run(configuration, nb_images, repeats, args.gpu)
            times[configuration] += result["times"]
            replicas[configuration] = result["replicas"]
            loads.append(os.getloadavg()[0])
    rows, base = [], None
    for configuration in configurations:
        median = statistics.median(times[configuration])
        speed = nb_images / median
        base = base or speed
        rows.append([configuration, replicas[configuration], f"{median:.2f}",
                     f"{speed:.2f}", f"{speed / base:.2f}"])
    load = f"1-minute load average {min(loads):.1f} to {max(loads):.1f} during the runs"
    print(load)
    header = ["configuration", "replicas", "explain s", "images/s", "vs no strategy"]
    title = ("Sobol explain() throughput over devices "
             f"({'GPUs' if args.gpu else 'logical CPU devices'})")
    print_table(title, header, rows)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(f"# {title}\n\n`python benchmarks/bench_distribute.py"
                         f"{' --quick' if args.quick else ''}{' --gpu' if args.gpu else ''}`"
                         f"\n\nMachine: {machine()}. Small convnet (bench_speed case (a)), "
                         f"{nb_images} images 32x32, grid_size={GRID}, nb_design={NB_DESIGN}"
                         f" ({forwards} forward passes), batch_size={BATCH}; median of "
                         f"{repeats} runs x {args.rounds} rounds (one process per configuration "
                         f"and round, configurations taking turns); {load}.\n\n")
            handle.write("| " + " | ".join(header) + " |\n")
            handle.write("|" + "---|" * len(header) + "\n")
            for row in rows:
                handle.write("| " + " | ".join(str(v) for v in row) + " |\n")


if __name__ == "__main__":
    main()
