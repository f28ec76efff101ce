"""Command line: explain a saved Keras model's predictions on image files, score maps.

    sobol-tf explain MODEL.keras IMAGE... --out DIR [--target K] [--grid-size 8] ...
    sobol-tf score MODEL.keras IMAGE... --maps DIR/maps.npz [--json]

(or ``python -m sobol_tf ...``). Images (PNG, JPEG, GIF, BMP) are converted to the
model's channels as Keras' ``load_img`` does: alpha is dropped (not composited),
grayscale is repeated into RGB, RGB becomes grayscale by ITU-R 601-2 luma
(0.299 R + 0.587 G + 0.114 B). They are resized to the model's input size with bilinear
interpolation (antialiased when shrinking), and scaled to [0, 1] floats (``--scale
255``: raw 0..255 values). Models that expect other preprocessing should include it as a
layer.

Folders are read recursively (files ending in .png, .jpg, .jpeg, .gif, .bmp, any case;
hidden ones and the output folder left out), sorted by their path in the folder.

``explain`` writes ``<stem>_sobol.png`` (the map over the image) per image and
``maps.npz``: one (H, W) float32 map per image, under the image's file name, at the
model's input resolution; ``files`` (the names, in order) and ``targets`` (the class ids
explained). The files stream through :func:`sobol_tf.streaming.image_files_dataset`'s
decoder and :func:`sobol_tf.streaming.explain_dataset` (never all in memory; the next
images are decoded in tf.data's threads while the model runs), ``--shard-size`` images
per batch; a model of free input size gets each image at its own size, grouped by size
(a group is explained when it holds ``--shard-size`` images, the rest at the end). Each
finished batch is written at once as a shard in ``DIR/.sobol-tf/shards``
(:class:`sobol_tf.streaming.MapWriter`: ``shard-*.npz`` + ``index.jsonl``), and
maps.npz is assembled from the shards at the end (and on Ctrl-C, exit 130). A rerun
with the same options resumes: finished maps are kept, not recomputed (the options the
maps depend on and the model's sha256 are recorded in ``DIR/.sobol-tf/job.json``; other
options are refused with exit 2 unless ``--overwrite``; ``--devices`` is not recorded:
it does not change the maps, so a rerun may use other devices). A lock file per worker
(``DIR/.sobol-tf/lock-<index>``, an exclusive ``flock`` that the system frees when its
run dies; the file holds the pid) refuses a second run into the same folder.

Workers: with TensorFlow's ``TF_CONFIG`` (``{"cluster": {"worker": [...]}, "task":
{"type": "worker", "index": i}}``), each process explains file k of the sorted list when
k % nb_workers == i, into the same (shared) output folder; the last worker to finish
assembles maps.npz.

Devices: ``--devices N`` (or ``all``) spreads each forward batch over the first N GPUs,
or over the logical CPU devices of a machine without GPUs, with
``tf.distribute.MirroredStrategy``: the model is loaded under the strategy's scope (its
weights mirrored on each device) and the explainer given ``strategy=``; the maps equal
one device's to float error. More devices than found exits with 2, naming those found.
Default 1: one device, no strategy. It combines with TF_CONFIG workers (each worker
uses its own devices).

``score`` reads maps.npz back and
prints each image's Deletion (lower is better), Insertion and MuFidelity (higher is
better) scores and their means, as a table or JSON.

The output folder, the model file and the options are checked before any computing.
A file that cannot be used (unreadable, not an image, too small for the model, or one
the model fails on) gets one line on stderr naming it, the others are still processed,
and the exit status is then 1; bad options or an unusable output folder exit with 2.

``--help`` and argument errors do not import TensorFlow; the commands import it with
its start-up log lines silenced (see :mod:`sobol_tf._quiet`).
"""
import json
import os
import sys

import numpy as np

from sobol_tf._cli_parser import (  # noqa: F401 (the option names, re-exported)
    ESTIMATOR_NAMES,
    PERTURBATION_NAMES,
    PROGRAM,
    SAMPLER_NAMES,
    SCALES,
    build_parser,
)
from sobol_tf._quiet import import_tensorflow_quietly
from sobol_tf._progress import Progress  # noqa: F401 (cli.Progress, as before)

OVERLAY_SUFFIX = "_sobol.png"
METRIC_NAMES = ("deletion", "insertion", "mufidelity")
EXIT_FILE_ERROR = 1
EXIT_USAGE = 2
#: the shell's status for a run stopped by Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130


class UsageProblem(Exception):
    """An option that cannot work, found while running: exit with EXIT_USAGE."""


def _grid_fits(flag, grid_size, spec):
    """False (after reporting) when ``grid_size`` exceeds the model's input size."""
    smallest = min(spec.height or grid_size, spec.width or grid_size)
    if grid_size > smallest:
        _report(f"{flag} {grid_size} exceeds the model's input size "
                f"{spec.height}x{spec.width}; use at most {smallest}")
        return False
    return True


def _report(message):
    """One line on stderr; undecodable bytes of file names shown as escapes."""
    line = f"{PROGRAM}: error: {message}"
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)


def load_images(paths, spec, scale):
    """Load every image; report and skip the ones that fail.

    Returns:
        (loaded, nb_failed): loaded is a list of (path, display image, model input).
    """
    from sobol_tf._utils.files import FileProblem, load_image

    loaded, failed = [], 0
    for path in paths:
        try:
            loaded.append((path,) + load_image(path, spec, scale))
        except FileProblem as problem:
            _report(problem)
            failed += 1
    return loaded, failed


def target_problem(target, nb_outputs):
    """The error line when ``--target`` is not a class id of the model, else None."""
    if target is None or nb_outputs is None or 0 <= target < nb_outputs:
        return None
    return (f"--target {target} is out of range: the model has {nb_outputs} outputs, "
            f"so use 0 to {nb_outputs - 1}")


def predicted_classes(model, inputs, batch_size):
    """Class ids of the highest output, and the outputs, on a batch of inputs."""
    outputs = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    outputs = outputs.reshape(len(outputs), -1)
    return outputs.argmax(axis=1), outputs


def explainer_outputs(explainer, inputs):
    """The model's outputs (N, K) on ``inputs`` (N, H, W, C) through the explainer's
    compiled engine: its batch size and its devices. Under a MirroredStrategy, Keras'
    ``model.predict`` would build a distributed dataset per call (about 0.4 s per shard
    on CPU, more than the shard's explanation); the engine's step is traced once."""
    import tensorflow as tf

    outputs = explainer._predict(explainer.model, tf.convert_to_tensor(inputs, tf.float32))
    return np.asarray(outputs).reshape(len(inputs), -1)


def failure_reason(model, spec, inputs, exc):
    """One line saying why an image failed: for a model of free input size that cannot
    take the image's size, "the image (H x W) is too small for the model: <Keras' shape
    check>" (found by Keras' shape inference, which runs nothing); else the most
    informative line of ``exc`` and its causes."""
    import keras

    from sobol_tf._utils.files import one_line

    if (spec.height is None or spec.width is None) and isinstance(model, keras.Model):
        try:
            model.compute_output_spec(keras.KerasTensor((1,) + tuple(inputs.shape)))
        except Exception as shape_exc:  # the model's layers refuse this size
            why = one_line(shape_exc).replace("`", "")
            size = f"{inputs.shape[0]} x {inputs.shape[1]}"
            if "negative" in why.lower() or "too small" in why.lower():
                return f"the image ({size}) is too small for the model: {why}"
            return f"the model cannot take an image of {size}: {why}"
    return one_line(exc)


def in_batches_or_alone(indices, work, failed):
    """Run ``work(indices)``; if it raises, run ``work([i])`` for each index alone, so
    that one image the model cannot take loses only itself.

    Args:
        indices: a group of images (one batch).
        work: function of a list of indices, returning a result.
        failed: called as ``failed(index, exception)`` for each image that fails alone.

    Returns:
        a list of (indices, result) for the work that succeeded.

    Raises:
        UsageProblem: raised by ``work``, at once (an option, not an image, is wrong).
    """
    try:
        return [(indices, work(indices))]
    except UsageProblem:
        raise
    except Exception as exc:  # any error of the model or the method on this batch
        if len(indices) == 1:
            failed(indices[0], exc)
            return []
    done = []
    for index in indices:
        try:
            done.append(([index], work([index])))
        except UsageProblem:
            raise
        except Exception as exc:
            failed(index, exc)
    return done


def save_overlay(path, display, heatmap, title):
    """One heatmap over its image, drawn by sobol_tf.plots.plot_attributions."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sobol_tf.plots import plot_attributions

    figure = plot_attributions(heatmap[None], display[None], cols=1, img_size=4.0,
                               titles=[title])
    try:
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


# -- commands ------------------------------------------------------------------------
def device_strategy(devices):
    """The ``tf.distribute.MirroredStrategy`` of ``--devices``, or None for one device.

    Over the first ``devices`` GPUs (all of them for ``"all"``), or, on a machine without
    GPUs, over the logical CPU devices (``tf.config.set_logical_device_configuration``,
    made before TensorFlow initialises). One device (``1``, or ``"all"`` of one): None,
    TensorFlow's default placement, as without the option.

    Raises:
        UsageProblem: more devices asked for than found (the message names those found).
    """
    if devices == 1:
        return None
    import tensorflow as tf

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    wanted = len(found) if devices == "all" else devices
    if wanted > len(found):
        names = ", ".join(d.name.split("device:")[-1] for d in found)
        raise UsageProblem(f"--devices {devices}: this machine has {len(found)} device(s) "
                           f"to use ({names}); use 1 to {len(found)} or 'all' (several "
                           "CPU devices exist only when set up as logical devices before "
                           "TensorFlow starts)")
    if wanted == 1:
        return None
    return tf.distribute.MirroredStrategy([d.name for d in found[:wanted]])


def _prepare(args, overlay_suffix=None, strategy=None):
    """Import TensorFlow quietly, list the images, check the output folder and the model
    (loaded under ``strategy.scope()`` when given: its weights mirrored on each device).

    Returns:
        (status, paths, model, spec): status is None when all is well, else the exit
        status (the problem was reported).
    """
    import_tensorflow_quietly()
    from sobol_tf._utils.files import (FileProblem, check_names, check_output_folder,
                                       list_images, load_model)

    out = getattr(args, "out", None)
    try:
        paths = check_names(list_images(args.images, exclude=out), overlay_suffix)
        if out is not None:
            check_output_folder(out)
    except FileProblem as problem:
        _report(problem)
        return EXIT_USAGE, None, None, None
    try:
        if strategy is None:
            model, spec = load_model(args.model)
        else:
            with strategy.scope():
                model, spec = load_model(args.model)
    except FileProblem as problem:
        _report(problem)
        return EXIT_FILE_ERROR, None, None, None
    problem = target_problem(args.target, spec.nb_outputs)
    if problem:
        _report(problem)
        return EXIT_USAGE, None, None, None
    return None, paths, model, spec


def worker_of(environ):
    """(index, number of workers) of this process from ``TF_CONFIG``, TensorFlow's
    convention: ``{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}``;
    a ``chief`` counts as worker 0 (before the ``worker`` list). (0, 1) without TF_CONFIG.
    Only the number of addresses is used: the workers share the output folder.

    Raises:
        UsageProblem: TF_CONFIG is not such a JSON object.
    """
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0, 1
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        chiefs, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
        kind, index = task.get("type"), task.get("index", 0)
    except (ValueError, AttributeError, TypeError) as exc:
        raise UsageProblem(f"TF_CONFIG is not a JSON object with 'cluster' and 'task': "
                           f"{exc}") from None
    members = {"chief": chiefs, "worker": workers}
    if kind not in members:
        raise UsageProblem(f"TF_CONFIG task type {kind!r}: 'explain' runs as a 'worker' "
                           "(or 'chief') of a cluster with a 'worker' list")
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(members[kind]):
        raise UsageProblem(f"TF_CONFIG task index {index!r}: the cluster has "
                           f"{len(members[kind])} {kind}(s), so use 0 to "
                           f"{len(members[kind]) - 1}")
    return (index if kind == "chief" else len(chiefs) + index), len(chiefs) + len(workers)


def file_digest(path):
    """sha256 of a file (the model: maps of another model are not resumed)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_settings(args):
    """What the maps depend on, recorded in DIR/.sobol-tf/job.json to resume safely
    (not ``--devices``, ``--batch-size`` nor ``--shard-size``: the maps do not depend on
    them beyond float error, so a rerun may change them)."""
    return {"model_sha256": file_digest(args.model), "target": args.target,
            "grid_size": args.grid_size, "nb_design": args.nb_design,
            "sampler": args.sampler, "estimator": args.estimator,
            "perturbation": args.perturbation, "seed": args.seed, "scale": args.scale}


def run_explain(args):
    """``sobol-tf explain``: returns the exit status."""
    index, nb_workers = worker_of(os.environ)
    if args.overwrite and nb_workers > 1:
        raise UsageProblem("--overwrite with several workers (TF_CONFIG) would let one "
                           "discard another's maps; empty --out once, then start them")
    import_tensorflow_quietly()
    strategy = device_strategy(args.devices)
    status, paths, model, spec = _prepare(args, OVERLAY_SUFFIX, strategy)
    if status is not None:
        return status
    from sobol_tf._utils import files
    from sobol_tf.attributions import SobolAttributionMethod
    from sobol_tf.errors import SobolTFError

    if not _grid_fits("--grid-size", args.grid_size, spec):
        return EXIT_USAGE
    try:
        explainer = SobolAttributionMethod(
            with_channel_axis(model, spec), grid_size=args.grid_size, nb_design=args.nb_design,
            sampler=args.sampler, estimator=args.estimator,
            perturbation_function=args.perturbation, batch_size=args.batch_size,
            seed=args.seed, verbose=False, strategy=strategy)
    except (SobolTFError, ValueError, TypeError) as exc:  # an option the method refuses
        _report(files.one_line(exc))
        return EXIT_USAGE

    work = os.path.join(args.out, files.WORK_FOLDER)
    lock = os.path.join(work, f"lock-{index}")
    try:
        os.makedirs(work, exist_ok=True)
        files.acquire_lock(lock)
    except OSError as exc:
        _report(f"{work}: cannot write the job's state: {exc.strerror or exc}")
        return EXIT_USAGE
    except files.FileProblem as problem:
        _report(problem)
        return EXIT_USAGE
    try:
        return _explain_share(args, paths, model, spec, explainer, work, index, nb_workers)
    finally:
        files.release_lock(lock)


def _explain_share(args, paths, model, spec, explainer, work, index, nb_workers):
    """Explain this worker's share of ``paths`` (file k goes to worker k % nb_workers)
    that is not finished yet, shard by shard; assemble maps.npz when all are done."""
    from sobol_tf._utils import files

    names = [os.path.basename(p) for p in paths]
    maps_path = os.path.join(args.out, files.MAPS_FILE)
    try:
        files.check_job(work, job_settings(args), overwrite=args.overwrite)
        if args.overwrite and os.path.isfile(maps_path):
            os.remove(maps_path)
        finished = files.finished_names(work)
        share = [k for k in range(index, len(paths), nb_workers) if names[k] not in finished]
        if spec.height and spec.width:  # shards + maps.npz, float32 maps
            files.check_free_space(args.out, 2 * len(share) * (4 * spec.height * spec.width
                                                               + 512))
    except files.FileProblem as problem:
        _report(problem)
        return EXIT_USAGE
    except OSError as exc:
        _report(f"{work}: cannot use the job's state: {exc.strerror or exc}")
        return EXIT_USAGE

    who = f" (worker {index} of {nb_workers})" if nb_workers > 1 else ""
    if explainer.strategy is not None:
        who += f" on {explainer.strategy.num_replicas_in_sync} devices"
    skipped = len(range(index, len(paths), nb_workers)) - len(share)
    progress = Progress(len(share), f"SobolAttributionMethod{who}: {len(share)} image(s) "
                        f"to explain" + (f", {skipped} already done" if skipped else ""),
                        unit="images", quiet=args.quiet)
    failed = 0
    try:
        if share:
            failed += _explain_stream(args, [paths[k] for k in share], model, spec,
                                      explainer, work, progress)
    except KeyboardInterrupt:
        progress.close()
        kept = len(files.finished_names(work))
        if nb_workers == 1 and kept:
            saved = files.assemble_maps(maps_path, names, work)
            _report(f"interrupted; {maps_path} holds the {saved} map(s) finished; rerun "
                    "the same command to resume")
        else:
            _report(f"interrupted; {kept} finished map(s) are kept in {work}; rerun the "
                    "same command to resume" if kept else
                    "interrupted before any map was finished")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a shard could not be written
        _report(f"{work}: cannot write the maps: {exc.strerror or exc}")
        return EXIT_FILE_ERROR
    try:
        _finish(args, names, work, index, nb_workers, maps_path)
    except OSError as exc:
        _report(f"{maps_path}: cannot write the maps: {exc.strerror or exc}")
        return EXIT_FILE_ERROR
    except files.FileProblem as problem:
        _report(problem)
        return EXIT_FILE_ERROR
    return EXIT_FILE_ERROR if failed else 0


def image_stream(paths, spec, scale, shard_size):
    """The images of ``paths`` as the model takes them, a tf.data pipeline (decoded by
    :func:`sobol_tf.streaming.image_files_dataset`'s decoder in tf.data's threads, read
    ahead while the model runs), and the ``batch_size`` to give ``explain_dataset``.

    A model of fixed input size gets the files in order, ``shard_size`` per batch. A
    model of free height, width or channels gets each image at its own size, grouped
    by shape (tf.data's ``group_by_window``): a group is explained when it holds
    ``shard_size`` images, the rest at the end of the stream (in order of shape); at
    most ``shard_size`` images per distinct shape are held.
    """
    import tensorflow as tf
    from sobol_tf import streaming

    size = (spec.height, spec.width)
    dataset = streaming._files_dataset(paths, size, spec.channels, scale)
    if spec.height and spec.width and spec.channels:
        return dataset, shard_size

    def shape_key(element):
        shape = tf.cast(tf.shape(element["inputs"]), tf.int64)
        return (shape[0] * (1 << 21) + shape[1]) * 8 + shape[2]

    grouped = dataset.group_by_window(shape_key, lambda _, group: group.batch(shard_size),
                                      window_size=shard_size)
    return grouped, None


def _explain_stream(args, paths, model, spec, explainer, work, progress):
    """Explain ``paths`` through :func:`sobol_tf.streaming.explain_dataset`, write each
    finished batch as a shard (:class:`sobol_tf.streaming.MapWriter`) and its overlays,
    report each file that fails; returns the number of failures."""
    from sobol_tf._utils import files
    from sobol_tf.streaming import MapWriter, explain_dataset

    scale = SCALES[args.scale]
    dataset, batch_size = image_stream(paths, spec, scale, args.shard_size)

    def targets(inputs):  # the class explained: --target, else the predicted one
        outputs = explainer_outputs(explainer, inputs)
        predicted = outputs.argmax(axis=1)
        problem = target_problem(args.target, outputs.shape[1])
        if problem:
            raise UsageProblem(problem)
        return predicted if args.target is None else np.full(len(inputs), args.target)

    def reason(one_input, exc):
        if isinstance(exc, UsageProblem):  # an option, not an image, is wrong
            raise exc
        return "cannot explain: " + failure_reason(
            model, spec, one_input[..., 0] if spec.squeeze else one_input, exc)

    failed = 0
    stream = explain_dataset(explainer, dataset, targets, batch_size=batch_size,
                             on_error=reason)
    with MapWriter(files.shards_folder(work)) as writer:
        for batch in stream:
            for _, path, message in batch.errors:
                _report(f"{path}: {message}")
            failed += len(batch.errors)
            if batch.maps is not None:
                writer.write(batch._replace(maps=batch.maps[..., 0]))
                if not args.no_overlays:
                    failed += _save_overlays(args, explainer, spec, scale, batch)
            progress.update(batch.stop - batch.start)
    return failed


def _save_overlays(args, explainer, spec, scale, batch):
    """``<stem>_sobol.png`` of each map of ``batch``; returns the number of failures."""
    from sobol_tf._utils import files

    failed = 0
    loaded = [files.load_image(path, spec, scale) for path in batch.names]
    inputs = np.stack([inputs for _, inputs in loaded])
    outputs = explainer_outputs(explainer, inputs[..., None] if spec.squeeze else inputs)
    for row, path in enumerate(batch.names):
        name = os.path.basename(path)
        target = int(batch.targets[row])
        overlay = os.path.join(args.out, os.path.splitext(name)[0] + OVERLAY_SUFFIX)
        title = f"{name}: class {target} (score {outputs[row, target]:.3g})"
        try:
            save_overlay(overlay, loaded[row][0], batch.maps[row, ..., 0], title)
        except Exception as exc:  # the map is kept in maps.npz all the same
            _report(f"{overlay}: cannot write the overlay: {files.one_line(exc)}")
            failed += 1
    return failed


def _finish(args, names, work, index, nb_workers, maps_path):
    """Mark this worker's share done; the last worker to finish (all marks present,
    checked under a lock) assembles maps.npz from every shard."""
    from sobol_tf._utils import files

    marks = [os.path.join(work, f"done-{k}-of-{nb_workers}") for k in range(nb_workers)]
    open(marks[index], "w").close()
    lock = os.path.join(work, "assemble.lock")
    files.acquire_lock(lock, wait=600.0)
    try:
        if not all(os.path.exists(mark) for mark in marks):
            if not args.quiet:
                print(f"worker {index} of {nb_workers} done; the last worker to finish "
                      f"writes {maps_path}")
            return
        saved = files.assemble_maps(maps_path, names, work)
        for mark in marks:
            os.remove(mark)
    finally:
        files.release_lock(lock)
    if saved and not args.quiet:
        print(f"wrote {maps_path} ({saved} map(s))")


def with_channel_axis(model, spec):
    """The model as the library calls it: a model of grayscale images without channel
    axis (N, H, W) takes them as (N, H, W, 1) (rank 3 is a time series for the library)."""
    if not spec.squeeze:
        return model
    return lambda x: model(x[..., 0])


def score_group(model, inputs, maps, targets, args, spec):
    """Per-image (deletion, insertion, mufidelity) of one batch of equal-size images."""
    from sobol_tf.metrics import Deletion, Insertion, MuFidelity

    if spec.squeeze:
        model, inputs = with_channel_axis(model, spec), inputs[..., None]

    common = dict(batch_size=args.batch_size, baseline_mode=args.baseline)
    deletion = Deletion(model, inputs, targets, steps=args.steps, **common)
    insertion = Insertion(model, inputs, targets, steps=args.steps, **common)
    mufidelity = MuFidelity(model, inputs, targets, grid_size=args.mu_grid_size,
                            nb_samples=args.nb_samples, subset_percent=args.subset_percent,
                            seed=args.seed, **common)
    return np.stack([deletion.curves(maps).areas, insertion.curves(maps).areas,
                     mufidelity.detailed_evaluate(maps)], axis=1)


def format_table(rows):
    """rows: (file, target, deletion, insertion, mufidelity); a mean row is added."""
    scores = np.array([row[2:] for row in rows], np.float64)
    lines = [(row[0], str(row[1])) + tuple(f"{v:.4f}" for v in row[2:]) for row in rows]
    lines.append(("mean", "") + tuple(f"{v:.4f}" for v in scores.mean(axis=0)))
    header = ("file", "target") + METRIC_NAMES
    widths = [max(len(line[k]) for line in lines + [header]) for k in range(len(header))]
    text = [header] + lines
    return "\n".join("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                               for k, (cell, w) in enumerate(zip(line, widths)))
                     for line in text) + \
        "\ndeletion: lower is better; insertion and mufidelity: higher is better"


def run_score(args):
    """``sobol-tf score``: returns the exit status."""
    status, paths, model, spec = _prepare(args)
    if status is not None:
        return status
    from sobol_tf._utils.files import FileProblem, group_by_shape, load_maps

    try:
        saved_maps, saved_targets = load_maps(args.maps)
    except FileProblem as problem:
        _report(problem)
        return EXIT_FILE_ERROR
    if not _grid_fits("--mu-grid-size", args.mu_grid_size, spec):
        return EXIT_USAGE

    loaded, failed = load_images(paths, spec, SCALES[args.scale])
    usable = []
    for path, display, inputs in loaded:
        name = os.path.basename(path)
        explanation = saved_maps.get(name)
        if explanation is None:
            _report(f"{path}: no map named {name!r} in {args.maps}")
        elif explanation.shape != inputs.shape[:2]:
            _report(f"{path}: its map in {args.maps} has shape {explanation.shape}, but the "
                    f"image is {inputs.shape[:2]} at the model's input size")
        elif not np.all(np.isfinite(explanation)):
            _report(f"{path}: its map in {args.maps} holds NaN or infinite values")
        elif args.mu_grid_size > min(inputs.shape[:2]):
            _report(f"{path}: --mu-grid-size {args.mu_grid_size} exceeds the image's size "
                    f"{inputs.shape[0]}x{inputs.shape[1]}")
        else:
            usable.append((path, display, inputs))
            continue
        failed += 1

    def score(indices):
        names = [os.path.basename(usable[i][0]) for i in indices]
        inputs = np.stack([usable[i][2] for i in indices])
        predicted, outputs = predicted_classes(model, inputs, args.batch_size)
        nb_outputs = outputs.shape[1]
        problem = target_problem(args.target, nb_outputs)
        if problem:
            raise UsageProblem(problem)
        targets = [args.target if args.target is not None else saved_targets.get(name, guess)
                   for name, guess in zip(names, predicted)]
        wrong = [k for k, target in enumerate(targets) if not 0 <= target < nb_outputs]
        if wrong:
            raise ValueError(f"its class {targets[wrong[0]]} in {args.maps} is not an "
                             f"output of the model, which has {nb_outputs}")
        scores = score_group(model, inputs, np.stack([saved_maps[n] for n in names]),
                             np.array(targets), args, spec)
        return [(name, int(target)) + tuple(float(v) for v in row)
                for name, target, row in zip(names, targets, scores)]

    def cannot_score(index, exc):
        nonlocal failed
        reason = failure_reason(model, spec, usable[index][2], exc)
        _report(f"{usable[index][0]}: cannot score: {reason}")
        failed += 1

    rows = []
    for group in group_by_shape(usable):
        results = in_batches_or_alone(group, score, cannot_score)
        rows += [row for _, group_rows in results for row in group_rows]
    if rows:
        order = [os.path.basename(p) for p in paths]
        rows.sort(key=lambda row: order.index(row[0]))
        if args.json:
            means = np.mean([row[2:] for row in rows], axis=0)
            print(json.dumps({
                "images": [dict(zip(("file", "target") + METRIC_NAMES, row)) for row in rows],
                "mean": dict(zip(METRIC_NAMES, (float(v) for v in means))),
            }, indent=2))
        else:
            print(format_table(rows))
    return EXIT_FILE_ERROR if failed else 0


def main(argv=None):
    """Run ``sobol-tf`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser(__doc__.splitlines()[0], run_explain, run_score).parse_args(argv)
    try:
        return args.run(args)
    except UsageProblem as problem:  # an option found wrong while running
        _report(problem)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _report("interrupted")
        return EXIT_INTERRUPTED
