"""``sobol-tf explain``: explain a folder of images shard by shard, resumably, over
workers and devices; write the overlays and ``maps.npz``."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from sobol_tf._progress import Progress
from sobol_tf._quiet import import_tensorflow_quietly
from sobol_tf.cli import files, jobs
from sobol_tf.cli.common import (EXIT_FILE_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UsageProblem,
                                 device_strategy, failure_reason, grid_fits, prepare, report,
                                 target_problem, with_channel_axis)
from sobol_tf.cli.parser import SCALES
from sobol_tf.errors import SobolTFError
from sobol_tf.io.shards import MapWriter

OVERLAY_SUFFIX = "_sobol.png"


def explainer_outputs(explainer: Any, inputs: np.ndarray) -> np.ndarray:
    """The model's outputs (N, K) on ``inputs`` (N, H, W, C) through the explainer's
    compiled engine: its batch size and its devices. Under a MirroredStrategy, Keras'
    ``model.predict`` would build a distributed dataset per call (about 0.4 s per shard
    on CPU, more than the shard's explanation); the engine's step is traced once."""
    import tensorflow as tf  # noqa: PLC0415 (heavy: not for --help)

    outputs = explainer._predict(explainer.model, tf.convert_to_tensor(inputs, tf.float32))
    return np.asarray(outputs).reshape(len(inputs), -1)


def save_overlay(path: str, display: np.ndarray, heatmap: np.ndarray, title: str) -> None:
    """One heatmap over its image, drawn by sobol_tf.plots.plot_attributions."""
    import matplotlib  # optional and heavy: only when an overlay is drawn

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional and heavy, as above

    from sobol_tf.plots import plot_attributions  # imports TensorFlow: not for --help

    figure = plot_attributions(heatmap[None], display[None], cols=1, img_size=4.0,
                               titles=[title])
    try:
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


def run_explain(args: argparse.Namespace) -> int:
    """``sobol-tf explain``: returns the exit status."""
    index, nb_workers = jobs.worker_of(os.environ)
    if args.overwrite and nb_workers > 1:
        raise UsageProblem("--overwrite with several workers (TF_CONFIG) would let one "
                           "discard another's maps; empty --out once, then start them")
    import_tensorflow_quietly()
    strategy = device_strategy(args.devices)
    status, paths, model, spec = prepare(args, OVERLAY_SUFFIX, strategy)
    if status is not None:
        return status
    # TensorFlow and the explainers: imported by the command, not by --help
    from sobol_tf.attributions import SobolAttributionMethod

    if not grid_fits("--grid-size", args.grid_size, spec):
        return EXIT_USAGE
    try:
        explainer = SobolAttributionMethod(
            with_channel_axis(model, spec), grid_size=args.grid_size, nb_design=args.nb_design,
            sampler=args.sampler, estimator=args.estimator,
            perturbation_function=args.perturbation, batch_size=args.batch_size,
            seed=args.seed, verbose=False, strategy=strategy,
            refine=bool(getattr(args, "refine", False)))
    except (SobolTFError, ValueError, TypeError) as exc:  # an option the method refuses
        report(files.one_line(exc))
        return EXIT_USAGE

    work = os.path.join(args.out, jobs.WORK_FOLDER)
    lock = os.path.join(work, f"lock-{index}")
    try:
        os.makedirs(work, exist_ok=True)
        jobs.acquire_lock(lock)
    except OSError as exc:
        report(f"{work}: cannot write the job's state: {exc.strerror or exc}")
        return EXIT_USAGE
    except files.FileProblem as problem:
        report(problem)
        return EXIT_USAGE
    try:
        return _explain_share(args, paths, model, spec, explainer, work, index, nb_workers)
    finally:
        jobs.release_lock(lock)


def _explain_share(args, paths, model, spec, explainer, work, index, nb_workers):
    """Explain this worker's share of ``paths`` (file k goes to worker k % nb_workers)
    that is not finished yet, shard by shard; assemble maps.npz when all are done."""
    names = [os.path.basename(p) for p in paths]
    maps_path = os.path.join(args.out, files.MAPS_FILE)
    try:
        jobs.check_job(work, jobs.job_settings(args), overwrite=args.overwrite)
        if args.overwrite and os.path.isfile(maps_path):
            os.remove(maps_path)
        finished = jobs.finished_names(work)
        share = [k for k in range(index, len(paths), nb_workers) if names[k] not in finished]
        if spec.height and spec.width:  # shards + maps.npz, float32 maps
            files.check_free_space(args.out, 2 * len(share) * (4 * spec.height * spec.width
                                                               + 512))
    except files.FileProblem as problem:
        report(problem)
        return EXIT_USAGE
    except OSError as exc:
        report(f"{work}: cannot use the job's state: {exc.strerror or exc}")
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
        kept = len(jobs.finished_names(work))
        if nb_workers == 1 and kept:
            saved = jobs.assemble_maps(maps_path, names, work)
            report(f"interrupted; {maps_path} holds the {saved} map(s) finished; rerun "
                    "the same command to resume")
        else:
            report(f"interrupted; {kept} finished map(s) are kept in {work}; rerun the "
                    "same command to resume" if kept else
                    "interrupted before any map was finished")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a shard could not be written
        report(f"{work}: cannot write the maps: {exc.strerror or exc}")
        return EXIT_FILE_ERROR
    try:
        _finish(args, names, work, index, nb_workers, maps_path)
    except OSError as exc:
        report(f"{maps_path}: cannot write the maps: {exc.strerror or exc}")
        return EXIT_FILE_ERROR
    except files.FileProblem as problem:
        report(problem)
        return EXIT_FILE_ERROR
    return EXIT_FILE_ERROR if failed else 0


def image_stream(paths: Sequence[str], spec: files.ModelInput, scale: float,
                 shard_size: int) -> Tuple[Any, Optional[int]]:
    """The images of ``paths`` as the model takes them, a tf.data pipeline (decoded by
    :func:`sobol_tf.streaming.image_files_dataset`'s decoder in tf.data's threads, read
    ahead while the model runs), and the ``batch_size`` to give ``explain_dataset``.

    A model of fixed input size gets the files in order, ``shard_size`` per batch. A
    model of free height, width or channels gets each image at its own size, grouped
    by shape (tf.data's ``group_by_window``): a group is explained when it holds
    ``shard_size`` images, the rest at the end of the stream (in order of shape); at
    most ``shard_size`` images per distinct shape are held.
    """
    import tensorflow as tf  # noqa: PLC0415 (heavy: not for --help)

    from sobol_tf.io.datasets import files_dataset  # imports TensorFlow

    size = (spec.height, spec.width)
    dataset = files_dataset(paths, size, spec.channels, scale)
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
    from sobol_tf.streaming import explain_dataset  # imports TensorFlow: not for --help

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
    with MapWriter(jobs.shards_folder(work)) as writer:
        for batch in stream:
            for _, path, message in batch.errors:
                report(f"{path}: {message}")
            failed += len(batch.errors)
            if batch.maps is not None:
                writer.write(batch._replace(maps=batch.maps[..., 0]))
                if not args.no_overlays:
                    failed += _save_overlays(args, explainer, spec, scale, batch)
            progress.update(batch.stop - batch.start)
    return failed


def _save_overlays(args, explainer, spec, scale, batch):
    """``<stem>_sobol.png`` of each map of ``batch``; returns the number of failures."""
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
            report(f"{overlay}: cannot write the overlay: {files.one_line(exc)}")
            failed += 1
    return failed


def _finish(args, names, work, index, nb_workers, maps_path):
    """Mark this worker's share done; the last worker to finish (all marks present,
    checked under a lock) assembles maps.npz from every shard."""
    marks = [os.path.join(work, f"done-{k}-of-{nb_workers}") for k in range(nb_workers)]
    open(marks[index], "w").close()
    lock = os.path.join(work, "assemble.lock")
    jobs.acquire_lock(lock, wait=600.0)
    try:
        if not all(os.path.exists(mark) for mark in marks):
            if not args.quiet:
                print(f"worker {index} of {nb_workers} done; the last worker to finish "
                      f"writes {maps_path}")
            return
        saved = jobs.assemble_maps(maps_path, names, work)
        for mark in marks:
            os.remove(mark)
    finally:
        jobs.release_lock(lock)
    if saved and not args.quiet:
        print(f"wrote {maps_path} ({saved} map(s))")
