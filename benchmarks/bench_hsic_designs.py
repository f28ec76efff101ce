"""HSIC's binary designs (issue 26, item 4): map error against forward passes.

HSIC costs nb_design forward passes per input; its map error at a given nb_design
depends on the binary design. For each model of bench_passes (the same trained models
and inputs, from its cache), six inputs are explained with HSIC (binary estimator, the
library's defaults otherwise) on these designs:

- the default sampler (scipy's unscrambled Sobol sequence thresholded at 1/2; where it
  cannot tell two cells apart, the fallback design: before this study a random balanced
  binary design, now a regular two-level fraction where one exists);
- a regular two-level fraction (designs.fractional_factorial_design: balanced,
  pairwise orthogonal columns, resolution IV where d <= nb_design / 2);
- a random balanced binary design (designs.balanced_binary_design: the former fallback);
- scrambled Sobol, i.i.d. (monte_carlo) and Latin hypercube points thresholded at 1/2.

Map error = 1 - Pearson r on the cells against a reference: the mean of four HSIC maps
of 4096 i.i.d. binary masks each (seeds REFERENCE_SEEDS); a fifth such map against it
gives the reference's own noise (the floor column). Randomised designs over seeds 0-2:
mean over inputs x seeds, the worst seed's mean; a design the explainer refuses (two
cells it cannot tell apart) is left blank.

Writes benchmarks/results/hsic_designs.md and hsic_designs.png.
Usage: nice -n 10 python benchmarks/bench_hsic_designs.py [--out DIR] [--only NAME ...]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import bench_passes  # noqa: E402  (its models, inputs and cache)

SEEDS = (0, 1, 2)
REFERENCE_NB_DESIGN = 4096
REFERENCE_SEEDS = (1000, 1001, 1002, 1003)
FLOOR_SEED = 1004
BATCH_SIZE = 512
#: nb_design per case: images have d = 64 cells, the tabular MLP 10, the series 16
NB_DESIGNS = {"tabular": (16, 32, 64, 128), "series": (16, 32, 64, 128)}
IMAGE_NB_DESIGNS = (64, 128, 256, 512)


def candidates():
    """(label, sampler factory of a seed or None, seeds); a factory's sampler is given
    to HsicAttributionMethod (no seed argument then)."""
    from sobol_tf.attributions.designs import (balanced_binary_design,
                                               fractional_factorial_design)

    def fraction(seed):
        return lambda d, n: fractional_factorial_design(n, d, seed)

    def balanced(seed):
        return lambda d, n: balanced_binary_design(n, d, seed)

    return [
        ("default (Sobol; fallback: fraction)", None, (None,)),
        ("regular fraction", fraction, SEEDS),
        ("random balanced (the former fallback)", balanced, SEEDS),
        ("scrambled Sobol", "sobol", SEEDS),
        ("i.i.d. (monte_carlo)", "monte_carlo", SEEDS),
        ("Latin hypercube", "lhs", SEEDS),
    ]


def cell_maps(model, x, y, options, nb_design, sampler, seed):
    """HSIC cell maps (N, d), through the explainer's own path (its private
    ``_explain``: benchmark use only); None where the design is refused."""
    from sobol_tf.attributions import HsicAttributionMethod
    from sobol_tf.errors import InvalidArgumentError

    keywords = dict(seed=seed) if sampler is None or isinstance(sampler, str) else {}
    if callable(sampler) and not isinstance(sampler, str):
        sampler = sampler(seed)
    if sampler is None and seed is None:
        keywords = {}
    explainer = HsicAttributionMethod(model, nb_design=nb_design, sampler=sampler,
                                      batch_size=BATCH_SIZE, **keywords, **options)
    try:
        view, images, prepared = explainer._prepare(x, y)
        maps = explainer._explain(view, images, prepared)
    except InvalidArgumentError as error:
        print(f"  nb_design={nb_design}, seed {seed}: refused ({str(error)[:90]})")
        return None
    return np.asarray(maps, np.float64).reshape(len(x), -1)


def run_case(title, key, builder):
    start = time.perf_counter()
    model, x, y, options, accuracy = builder()
    references = [cell_maps(model, x, y, options, REFERENCE_NB_DESIGN, "monte_carlo", s)
                  for s in REFERENCE_SEEDS]
    reference = np.mean(references, axis=0)
    floor = bench_passes.pearson_error(
        cell_maps(model, x, y, options, REFERENCE_NB_DESIGN, "monte_carlo", FLOOR_SEED),
        reference).mean()
    rows, curves = [], {}
    for label, sampler, seeds in candidates():
        for nb_design in NB_DESIGNS.get(key, IMAGE_NB_DESIGNS):
            per_seed = []
            for seed in seeds:
                maps = cell_maps(model, x, y, options, nb_design, sampler, seed)
                if maps is not None:
                    per_seed.append(bench_passes.pearson_error(maps, reference).mean())
            if not per_seed:
                rows.append(dict(label=label, n=nb_design, mean=None))
                continue
            rows.append(dict(label=label, n=nb_design, mean=float(np.mean(per_seed)),
                             worst=float(np.max(per_seed)), seeds=len(per_seed)))
            curves.setdefault(label, []).append((nb_design, np.mean(per_seed),
                                                 min(per_seed), max(per_seed)))
    seconds = time.perf_counter() - start
    d = reference.shape[1]
    print(f"{title}: d={d}, {seconds:.0f} s")
    return dict(title=title, key=key, d=d, rows=rows, curves=curves, floor=floor,
                accuracy=accuracy, seconds=seconds)


def write_markdown(path, results, total_seconds):
    from common import machine

    lines = [
        "# HSIC's binary designs (issue 26)", "",
        "Generated by `benchmarks/bench_hsic_designs.py`. Map error = 1 - Pearson r on the "
        "cells against the mean of four HSIC maps of 4096 i.i.d. binary masks; HSIC costs "
        "nb_design forward passes per input. 6 inputs per model (those of "
        "bench_passes); randomised designs over seeds 0-2 (mean, and the worst seed's "
        "mean); blank: the design cannot tell two cells apart (refused).", "",
        f"Machine: {machine()}; total {total_seconds:.0f} s.", "",
    ]
    for result in results:
        lines += [f"## {result['title']}", "",
                  f"d = {result['d']} cells. Reference noise (a fifth 4096-mask map "
                  f"against the reference): 1 - r = {result['floor']:.4f}.", "",
                  "| design | nb_design (= passes) | 1 - r (mean) | worst seed | seeds |",
                  "|---|---:|---:|---:|---:|"]
        for row in result["rows"]:
            if row["mean"] is None:
                lines.append(f"| {row['label']} | {row['n']} | | | |")
            else:
                lines.append(f"| {row['label']} | {row['n']} | {row['mean']:.4f} | "
                             f"{row['worst']:.4f} | {row['seeds']} |")
        lines.append("")
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


def plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.0 * len(results), 3.8),
                                squeeze=False)
    for axis, result in zip(axes[0], results):
        for label, points in result["curves"].items():
            passes, means, lows, highs = (np.maximum(np.array(v), 1e-5)
                                          for v in zip(*sorted(points)))
            main = label.startswith(("default", "regular", "random"))
            line, = axis.plot(passes, means, marker="o", ms=3, label=label,
                              lw=2.2 if main else 1.0, alpha=1.0 if main else 0.6)
            if np.any(highs > lows):
                axis.fill_between(passes, lows, highs, color=line.get_color(), alpha=0.15)
        axis.axhline(max(result["floor"], 1e-5), color="k", lw=0.8, ls=":")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("nb_design = forward passes per input")
        axis.set_title(result["title"], fontsize=8)
    axes[0][0].set_ylabel("1 - Pearson r (band: seeds; dotted: reference noise)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--only", nargs="*",
                        choices=[k for k, _ in bench_passes.CASES.values()])
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    results = [run_case(title, key, builder)
               for title, (key, builder) in bench_passes.CASES.items()
               if not args.only or key in args.only]
    total = time.perf_counter() - start
    write_markdown(os.path.join(args.out, "hsic_designs.md"), results, total)
    plot(os.path.join(args.out, "hsic_designs.png"), results)
    print(open(os.path.join(args.out, "hsic_designs.md")).read())


if __name__ == "__main__":
    main()
