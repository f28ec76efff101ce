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

The package's modules: :mod:`~sobol_tf.cli.parser` (the options, argparse only),
:mod:`~sobol_tf.cli.common` (what both commands share), :mod:`~sobol_tf.cli.explain`,
:mod:`~sobol_tf.cli.score`, :mod:`~sobol_tf.cli.files` (model, images, output folder)
and :mod:`~sobol_tf.cli.jobs` (job.json, locks, workers); the file formats are
:mod:`sobol_tf.io`'s.
"""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence

from sobol_tf._progress import Progress  # noqa: F401 (cli.Progress, as before)
# the command line's modules; none imports TensorFlow at import (``--help`` stays fast)
from sobol_tf.cli import files, jobs  # noqa: F401
from sobol_tf.cli.common import (  # noqa: F401 (the names of the former cli module)
    EXIT_FILE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageProblem,
    device_strategy,
    failure_reason,
    in_batches_or_alone,
    load_images,
    predicted_classes,
    report,
    target_problem,
    with_channel_axis,
)
from sobol_tf.cli.explain import (  # noqa: F401
    OVERLAY_SUFFIX,
    explainer_outputs,
    image_stream,
    run_explain,
    save_overlay,
)
from sobol_tf.cli.jobs import file_digest, job_settings, worker_of  # noqa: F401
from sobol_tf.cli.parser import (  # noqa: F401 (the option names, re-exported)
    ESTIMATOR_NAMES,
    PERTURBATION_NAMES,
    PROGRAM,
    SAMPLER_NAMES,
    SCALES,
    build_parser,
)
from sobol_tf.cli.score import METRIC_NAMES, format_table, run_score, score_group  # noqa: F401

def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``sobol-tf`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser(__doc__.splitlines()[0], run_explain, run_score).parse_args(argv)
    try:
        return args.run(args)
    except UsageProblem as problem:  # an option found wrong while running
        report(problem)
        return EXIT_USAGE
    except KeyboardInterrupt:
        report("interrupted")
        return EXIT_INTERRUPTED
