"""The options of ``sobol-tf`` and their checks, made while parsing.

Imports nothing but argparse, so that ``--help`` and argument errors need no TensorFlow
(:mod:`sobol_tf.cli` imports TensorFlow only to run a command).
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, Optional, Union

PROGRAM = "sobol-tf"
#: what ``--scale`` multiplies [0, 1] pixels by
SCALES = {"1": 1.0, "255": 255.0}
#: the names of samplers.SAMPLERS, estimators.ESTIMATORS and perturbations.PERTURBATIONS
#: (a test keeps them equal), here so that --help needs no TensorFlow
SAMPLER_NAMES = ("halton", "latin_hypercube", "lhs", "mc", "monte_carlo", "scrambled_sobol",
                 "sobol")
ESTIMATOR_NAMES = ("glen", "homma", "janon", "jansen", "jansen_cv", "jansen_normalised",
                   "jansen_total", "saltelli")
PERTURBATION_NAMES = ("amplitude", "blurring", "inpainting")


def int_at_least(minimum: int, also: Optional[int] = None) -> Callable[[str], Any]:
    """An argparse type: an integer >= ``minimum`` (or equal to ``also``), checked while
    parsing, before TensorFlow is imported."""
    allowed = f"an integer >= {minimum}" + (f" or {also}" if also is not None else "")

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if value < minimum and value != also:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def device_count(text: str) -> Union[int, str]:
    """argparse type of ``--devices``: an integer >= 1, or ``all`` (returned as "all")."""
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 or 'all', got {value}")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def _add_common(parser):
    parser.add_argument("model", metavar="MODEL", help="a saved Keras model (.keras, .h5)")
    parser.add_argument("images", metavar="IMAGE", nargs="+",
                        help="PNG, JPEG, GIF or BMP files, or folders of them (read "
                             "recursively, sorted), resized to the model's input")
    parser.add_argument("--scale", choices=sorted(SCALES), default="1",
                        help="pixel range the model expects: 1 for [0, 1] (default), "
                             "255 for raw 0..255 values")
    parser.add_argument("--batch-size", type=int_at_least(1), default=256,
                        help="inputs per forward pass (bounds memory; default 256)")


def build_parser(description: str, run_explain: Callable[[argparse.Namespace], int],
                 run_score: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The argparse parser of ``sobol-tf``; ``args.run(args)`` runs the command given
    (``run_explain`` or ``run_score``, functions of the parsed arguments)."""
    parser = argparse.ArgumentParser(prog=PROGRAM, description=description)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    explain = commands.add_parser(
        "explain", help="Sobol attribution maps of a model's predictions",
        description="Explain each image's predicted class (or --target) with the Sobol "
                    "attribution method; write <stem>_sobol.png per image and maps.npz.")
    _add_common(explain)
    explain.add_argument("--out", required=True, metavar="DIR",
                         help="folder for the overlays and maps.npz (created if needed)")
    explain.add_argument("--target", type=int, default=None, metavar="K",
                         help="class id to explain for every image (default: predicted)")
    explain.add_argument("--grid-size", type=int_at_least(1), default=8,
                         help="cells per side (8)")
    explain.add_argument("--nb-design", type=int_at_least(2), default=32,
                         help="design size, a power of two (32); cost: "
                              "nb_design * (grid_size**2 + 2) forward passes per image "
                              "(grid_size**2 + 1 with an estimator that skips B)")
    explain.add_argument("--sampler", default="sobol", choices=SAMPLER_NAMES,
                         help="how mask values are drawn (sobol)")
    explain.add_argument("--estimator", default="jansen",
                         choices=ESTIMATOR_NAMES,
                         help="estimator of the total-order indices (jansen)")
    explain.add_argument("--refine", action="store_true",
                         help="spend the passes in two stages (a survey, then the cells "
                              "that matter; about half the map error on image convnets); "
                              "needs --estimator jansen_normalised (or jansen_total), "
                              "best with --sampler scrambled_sobol")
    explain.add_argument("--perturbation", default="inpainting",
                         choices=PERTURBATION_NAMES,
                         help="what a masked-out cell becomes (inpainting)")
    explain.add_argument("--seed", type=int_at_least(0), default=None,
                         help="seed of the sampler (scrambles the Sobol sequence)")
    explain.add_argument("--quiet", action="store_true",
                         help="no progress bar, only errors")
    explain.add_argument("--shard-size", type=int_at_least(1), default=32, metavar="N",
                         help="images explained and saved together (32); each "
                              "finished shard is kept, so a rerun resumes after it")
    explain.add_argument("--devices", type=device_count, default=1, metavar="N|all",
                         help="spread the forward passes over the first N GPUs (or all), "
                              "or over the logical CPU devices on a machine without GPUs, "
                              "with tf.distribute.MirroredStrategy (1: one device, no "
                              "strategy); the maps are the same, so a rerun may change it")
    explain.add_argument("--overwrite", action="store_true",
                         help="discard the maps of an earlier run with other options in "
                              "--out instead of refusing to mix them")
    explain.add_argument("--no-overlays", action="store_true",
                         help="write maps.npz only, no <stem>_sobol.png")
    explain.set_defaults(run=run_explain)

    score = commands.add_parser(
        "score", help="Deletion, Insertion and MuFidelity of saved maps",
        description="Score the maps saved by 'explain' (matched to the images by file "
                    "name) with Deletion (lower is better), Insertion and MuFidelity "
                    "(higher is better); one row per image and their mean.")
    _add_common(score)
    score.add_argument("--maps", required=True, metavar="MAPS.npz",
                       help="the maps.npz written by 'explain'")
    score.add_argument("--target", type=int, default=None, metavar="K",
                       help="class id to score for every image (default: the class in "
                            "maps.npz, else the predicted one)")
    score.add_argument("--steps", type=int_at_least(1, also=-1), default=10,
                       help="Deletion/Insertion steps (10)")
    score.add_argument("--baseline", type=float, default=0.0,
                       help="value of removed pixels, in the model's input range (0.0)")
    score.add_argument("--mu-grid-size", type=int_at_least(1), default=9,
                       help="MuFidelity's grid of cells per side (9)")
    score.add_argument("--nb-samples", type=int_at_least(2), default=200,
                       help="MuFidelity's random subsets, at least 2 (200)")
    score.add_argument("--subset-percent", type=open_fraction, default=0.2,
                       help="MuFidelity's probability that a cell is removed (0.2)")
    score.add_argument("--seed", type=int_at_least(0), default=0,
                       help="seed of MuFidelity's subsets (0)")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.set_defaults(run=run_score)
    return parser
