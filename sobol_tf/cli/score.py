"""``sobol-tf score``: Deletion, Insertion and MuFidelity of saved maps, per image."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Sequence, Tuple

import numpy as np

from sobol_tf.cli import files
from sobol_tf.cli.common import (EXIT_FILE_ERROR, EXIT_USAGE, UsageProblem, failure_reason,
                                 grid_fits, in_batches_or_alone, load_images, predicted_classes,
                                 prepare, report, target_problem, with_channel_axis)
from sobol_tf.cli.parser import SCALES

METRIC_NAMES = ("deletion", "insertion", "mufidelity")


def score_group(model: Any, inputs: np.ndarray, maps: np.ndarray, targets: np.ndarray,
                args: argparse.Namespace, spec: files.ModelInput) -> np.ndarray:
    """Per-image (deletion, insertion, mufidelity) of one batch of equal-size images."""
    from sobol_tf.metrics import Deletion, Insertion, MuFidelity  # imports TensorFlow

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


def format_table(rows: Sequence[Tuple[Any, ...]]) -> str:
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


def run_score(args: argparse.Namespace) -> int:
    """``sobol-tf score``: returns the exit status."""
    status, paths, model, spec = prepare(args)
    if status is not None:
        return status
    try:
        saved_maps, saved_targets = files.load_maps(args.maps)
    except files.FileProblem as problem:
        report(problem)
        return EXIT_FILE_ERROR
    if not grid_fits("--mu-grid-size", args.mu_grid_size, spec):
        return EXIT_USAGE

    loaded, failed = load_images(paths, spec, SCALES[args.scale])
    usable = []
    for path, display, inputs in loaded:
        name = os.path.basename(path)
        explanation = saved_maps.get(name)
        if explanation is None:
            report(f"{path}: no map named {name!r} in {args.maps}")
        elif explanation.shape != inputs.shape[:2]:
            report(f"{path}: its map in {args.maps} has shape {explanation.shape}, but the "
                    f"image is {inputs.shape[:2]} at the model's input size")
        elif not np.all(np.isfinite(explanation)):
            report(f"{path}: its map in {args.maps} holds NaN or infinite values")
        elif args.mu_grid_size > min(inputs.shape[:2]):
            report(f"{path}: --mu-grid-size {args.mu_grid_size} exceeds the image's size "
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
        report(f"{usable[index][0]}: cannot score: {reason}")
        failed += 1

    rows = []
    for group in files.group_by_shape(usable):
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
