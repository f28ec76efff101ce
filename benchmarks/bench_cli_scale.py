"""``sobol-tf explain`` on a folder of many small images: images/s of 1 process on 1
device, 1 process on 2 logical CPU devices (``--devices 2``), 2 worker processes
(TF_CONFIG) of 1 device each, and the cost of a resume that finds every map finished.

    PYTHONPATH=. python benchmarks/bench_cli_scale.py [--images 1000] [--out results.md]

Each run is a fresh process (TensorFlow start-up and model loading included, reported
apart as "start-up": the time of a rerun that finds nothing to do minus its skip work is
close to it). Maps only (--no-overlays): the overlays (matplotlib) cost about as much as
the explanation of these tiny images and are the same work per image either way.
Every run goes through a small wrapper (``sys.executable -c LAUNCH``) that sets up the
logical CPU devices before TensorFlow starts (2 for the ``--devices 2`` row, none else)
and then calls ``sobol_tf.cli.main``, as ``sobol-tf`` does.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPTIONS = ["--grid-size", "4", "--nb-design", "16", "--seed", "0", "--quiet",
           "--no-overlays", "--shard-size", "32"]

#: run as ``python -c LAUNCH NB_LOGICAL_CPUS ARG...``: set up the logical CPU devices
#: (none for 1), then run the command line in this process
LAUNCH = """
import sys
count = int(sys.argv[1])
if count > 1:
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)
from sobol_tf import cli
sys.exit(cli.main(sys.argv[2:]))
"""


def make_job(folder, nb_images):
    """A saved 16x16 RGB convnet and ``nb_images`` 16x16 PNGs in 10 sub-folders."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(folder / "model.keras")
    rng = np.random.default_rng(0)
    for k in range(nb_images):
        path = folder / "images" / f"class{k % 10}" / f"{k:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tf.io.write_file(str(path), tf.io.encode_png(
            rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)))
    return folder / "model.keras", folder / "images"


def run(model, images, out, workers=1, devices=1):
    """Wall time of ``workers`` processes explaining the folder into ``out``, each on
    ``devices`` logical CPU devices (``--devices``)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-c", LAUNCH, str(devices), "explain", str(model),
               str(images), "--out", str(out), "--devices", str(devices), *OPTIONS]
    start = time.perf_counter()
    processes = []
    for index in range(workers):
        if workers > 1:
            env = dict(env, TF_CONFIG=json.dumps({
                "cluster": {"worker": [f"localhost:{3000 + k}" for k in range(workers)]},
                "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in processes]
    assert codes == [0] * workers, codes
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "cli_scale.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = pathlib.Path(temporary)
        model, images = make_job(folder, args.images)
        rows = []
        one = run(model, images, folder / "one")
        rows.append(("1 process, 1 device", one))
        devices = run(model, images, folder / "devices", devices=2)
        rows.append(("1 process, 2 logical CPU devices (--devices 2)", devices))
        two = run(model, images, folder / "two", workers=2)
        rows.append(("2 workers (TF_CONFIG), 1 device each", two))
        import numpy as np
        reference = np.load(folder / "one" / "maps.npz")
        differences = {}
        for name, other in (("devices", "--devices 2"), ("two", "2 workers")):
            maps = np.load(folder / name / "maps.npz")
            assert list(maps["files"]) == list(reference["files"])
            differences[other] = max(float(np.max(np.abs(maps[n] - reference[n])))
                                     for n in reference["files"])
        resume = run(model, images, folder / "one")        # everything finished
        one_image = folder / "single"
        (one_image / "x").mkdir(parents=True)
        first = next(images.glob("class0/*.png"))
        (one_image / "x" / first.name).write_bytes(first.read_bytes())
        startup = run(model, one_image, folder / "startup")
        sys.path.insert(0, str(ROOT))
        from sobol_tf.cli import jobs as files  # WORK_FOLDER, finished_names, assemble_maps
        work = folder / "one" / files.WORK_FOLDER
        start = time.perf_counter()
        finished = files.finished_names(str(work))
        skip = time.perf_counter() - start
        start = time.perf_counter()
        files.assemble_maps(str(folder / "one" / "again.npz"), sorted(finished), str(work))
        assemble = time.perf_counter() - start
    cpus = os.cpu_count()
    lines = [
        "# sobol-tf explain at scale (benchmarks/bench_cli_scale.py)",
        "",
        f"{args.images} PNGs of 16x16 in 10 sub-folders, a 16x16 convnet (Conv2D 8, "
        "pooling, Dense 10); --grid-size 4 --nb-design 16 (288 forward passes per image), "
        f"--shard-size 32, --no-overlays. CPU only, {cpus} cores; each row is one fresh "
        "run (wall time, TensorFlow start-up included). The 2 logical CPU devices share "
        "the same cores and thread pools (tf.distribute.MirroredStrategy, each forward "
        "batch split in two).",
        "",
        "| run | wall time (s) | images/s | images/s after start-up |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {seconds:.1f} | {args.images / seconds:.1f} | "
              f"{args.images / max(seconds - startup, 1e-9):.1f} |" for name, seconds in rows]
    lines += [
        f"| rerun, all {args.images} maps finished (resume) | {resume:.1f} | - | - |",
        f"| start-up alone (one image) | {startup:.1f} | - | - |",
        "",
        f"Resume, measured in-process on the finished folder: reading the names of the "
        f"{len(finished)} finished maps in their shards takes {skip * 1000:.0f} ms, and "
        f"assembling maps.npz from the shards {assemble * 1000:.0f} ms; the rest of a "
        "rerun's wall time is TensorFlow's start-up and loading the model (the two wall "
        "times above vary by several seconds with the load of the cores).",
        "",
        "Largest difference from the 1-device maps: " + "; ".join(
            f"{name} {value:.1e}" for name, value in differences.items()) + ".",
    ]
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
