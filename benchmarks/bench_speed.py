"""Speed and memory of explain() against the model's own forward passes (`make bench`).

Overhead ratio = wall time of explain() on N inputs / wall time of the same number of
forward passes of the same model at the same batch_size through
tf.function(lambda x: model(x, training=False)) on a tensor already in memory; both
measured side by side (interleaved) in this process after a warm-up, median of repeats.
The column "vs graph loop" divides by a stricter reference: the same forward passes
looped inside one tf.function, with no Python between batches (what explain() does).

Cases: (a) small convnet, 32x32x3, N=16; (b) MobileNetV2 (weights=None), 96x96x3, N=2;
(c) grid_size 4, 8, 12 on (a); (d) peak RSS against nb_design (subprocesses); extra rows
for the engine options (jit_compile, mixed precision, masks upsampled per batch); and,
(l) Lime and KernelShap; when xplique is importable, Xplique's SobolAttributionMethod,
metrics, Lime and KernelShap on the same model and inputs.
Usage: python benchmarks/bench_speed.py [--quick] [--cases abcdomlD] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sobol_tf next to this benchmark

from common import (forward_loop_function, forward_time_function, images, machine,  # noqa: E402
                    mobilenet, print_table, side_by_side, small_convnet, xplique_available)

GRID, NB_DESIGN, BATCH = 8, 32, 256


def overhead_row(label, model, x, labels, repeats, grid_size=GRID, nb_design=NB_DESIGN,
                 with_xplique=False, **options):
    """Time explain() and the matching forward passes; return a table row."""
    import numpy as np

    from sobol_tf.attributions import SobolAttributionMethod

    explainer = SobolAttributionMethod(model, grid_size=grid_size, nb_design=nb_design,
                                       batch_size=BATCH, **options)
    nb_forwards = explainer.nb_forward_passes(x, labels)  # nb_design * (d + 2) per input
    functions = {
        "explain": lambda: explainer.explain(x, labels).numpy(),
        "forward": forward_time_function(model, nb_forwards, x.shape[1:], BATCH),
        "graph loop": forward_loop_function(model, nb_forwards, x.shape[1:], BATCH),
    }
    if with_xplique:
        from xplique.attributions import SobolAttributionMethod as XpliqueSobol

        peer = XpliqueSobol(model, grid_size=grid_size, nb_design=nb_design, batch_size=BATCH)
        one_hot = np.eye(model.output_shape[-1], dtype=np.float32)[labels]
        functions["xplique"] = lambda: np.asarray(peer.explain(x, one_hot))
    times = side_by_side(functions, repeats)
    row = [label, len(x), grid_size, nb_forwards, f"{times['forward']:.2f}",
           f"{times['explain']:.2f}", f"{times['explain'] / times['forward']:.3f}",
           f"{times['explain'] / times['graph loop']:.3f}"]
    if with_xplique:
        row += [f"{times['xplique']:.2f}", f"{times['xplique'] / times['forward']:.2f}",
                f"{times['xplique'] / times['explain']:.2f}x"]
    elif "xplique" in functions or with_xplique is None:
        row += ["-", "-", "-"]
    return row


def versus_row(label, nb_inputs, functions, repeats):
    """[label, N, ours s(, xplique s, speed-up)] from ``functions`` ('ours', optionally
    'xplique') timed side by side."""
    times = side_by_side(functions, repeats)
    row = [label, nb_inputs, f"{times['ours']:.2f}"]
    if "xplique" in times:
        row += [f"{times['xplique']:.2f}", f"{times['xplique'] / times['ours']:.2f}x"]
    return row


def metric_rows(model, x, labels, repeats, with_xplique):
    """Deletion, Insertion, MuFidelity and the Average metrics: ours against Xplique's on
    the same inputs. The Average metrics take two forward passes per input, so they run
    on the inputs repeated 8 times (N = 8 x len(x)) to time more than the set-up."""
    import numpy as np

    from sobol_tf import metrics

    one_hot = np.eye(model.output_shape[-1], dtype=np.float32)[labels]
    many = (np.concatenate([x] * 8), np.concatenate([one_hot] * 8))
    settings = {
        "Deletion (steps=32)": ("Deletion", {"steps": 32}, (x, one_hot)),
        "Insertion (steps=32)": ("Insertion", {"steps": 32}, (x, one_hot)),
        "MuFidelity (200 subsets)": ("MuFidelity", {"grid_size": 9, "nb_samples": 200},
                                     (x, one_hot)),
        "AverageDropMetric": ("AverageDropMetric", {}, many),
        "AverageIncreaseMetric": ("AverageIncreaseMetric", {}, many),
        "AverageGainMetric": ("AverageGainMetric", {}, many),
        "AverageDropMetric, 4 maps on one object": ("AverageDropMetric", {}, many),
    }
    rows = []
    for label, (name, kwargs, (inputs, targets)) in settings.items():
        nb_maps = 4 if "4 maps" in label else 1
        maps = np.random.default_rng(2).normal(size=(nb_maps,) + inputs.shape[:3]).astype(
            np.float32)

        def run(metric_class, inputs=inputs, targets=targets, kwargs=kwargs, maps=maps):
            metric = metric_class(model, inputs, targets, batch_size=BATCH, **kwargs)
            return [metric(explanations) for explanations in maps]

        functions = {"ours": lambda run=run, name=name: run(getattr(metrics, name))}
        if with_xplique:
            import xplique.metrics

            functions["xplique"] = lambda run=run, name=name: run(
                getattr(xplique.metrics, name))
        rows.append(versus_row(label, len(inputs), functions, repeats))
    return rows


def lime_shap_rows(model, x, labels, repeats, with_xplique):
    """Lime and KernelShap (Xplique's defaults: 150 samples, batch 150; 800 samples,
    batch 64): ours against Xplique's on the same model, inputs and superpixels (a grid of
    8 x 8 cells, the same mapping function given to both)."""
    import numpy as np
    import tensorflow as tf

    from sobol_tf import attributions
    from sobol_tf.attributions.surrogates import grid_mapping

    cells = tf.constant(grid_mapping(x.shape[1], x.shape[2], 8))

    def mapping(image):  # one input -> (H, W) superpixel ids, for both libraries
        return cells

    one_hot = np.eye(model.output_shape[-1], dtype=np.float32)[labels]
    settings = {
        "Lime (150 samples, batch 150)": ("Lime", {"batch_size": 150, "nb_samples": 150}),
        "KernelShap (800 samples, batch 64)": ("KernelShap",
                                               {"batch_size": 64, "nb_samples": 800}),
    }
    rows = []
    for label, (name, kwargs) in settings.items():
        ours = getattr(attributions, name)(model, map_to_interpret_space=mapping, seed=0,
                                           **kwargs)
        functions = {"ours": lambda: ours(x, one_hot).numpy()}
        if with_xplique:
            import xplique.attributions

            peer = getattr(xplique.attributions, name)(model, map_to_interpret_space=mapping,
                                                       **kwargs)
            functions["xplique"] = lambda: np.asarray(peer.explain(x, one_hot))
        rows.append(versus_row(label, len(x), functions, repeats))
    return rows


def peak_rss(size, nb_design, nb_inputs, model_name):
    """Peak RSS (MiB) of a fresh process explaining ``nb_inputs`` images."""
    code = f"""
import os, resource, sys
sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]
from common import images, small_convnet, mobilenet
from sobol_tf.attributions import SobolAttributionMethod
model = {'mobilenet(' + str(size) + ')' if model_name == 'mobilenet' else
         'small_convnet((' + str(size) + ',' + str(size) + ',3))'}
x = images({nb_inputs}, {size})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
SobolAttributionMethod(model, grid_size={GRID}, nb_design={nb_design},
                       batch_size={BATCH})(x, [0] * {nb_inputs}).numpy()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(before, after)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    before, after = map(float, out.stdout.split()[-2:])
    return before, after


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller cases")
    parser.add_argument("--cases", default="abcdoml",
                        help="a b c d, o (options), m (metrics), l (Lime, KernelShap), "
                        "D (MobileNetV2 at 224, "
                        "nb_design=64: slow), any subset")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5
    with_xplique = xplique_available()
    print(f"machine: {machine()}; xplique: {'yes' if with_xplique else 'not importable'}")
    print(f"settings: grid_size={GRID}, nb_design={NB_DESIGN}, batch_size={BATCH}, "
          f"median of {repeats} interleaved runs after a warm-up")
    header = ["case", "N", "grid", "forwards", "forward s", "explain s", "overhead",
              "vs graph loop"]
    if with_xplique:
        header += ["xplique s", "xplique overhead", "speed-up"]
    results = {}

    if any(case in args.cases for case in "acoml"):
        convnet = small_convnet()
        x16, labels16 = images(16, 32), [i % 10 for i in range(16)]
    rows = []
    if "a" in args.cases:
        rows.append(overhead_row("(a) convnet 32x32", convnet, x16, labels16, repeats,
                                 with_xplique=with_xplique))
    if "b" in args.cases:
        net = mobilenet(96)
        rows.append(overhead_row("(b) MobileNetV2 96x96", net, images(2, 96), [1, 2],
                                 max(2, repeats - 2), with_xplique=with_xplique))
    if rows:
        print_table("Overhead of explain() over the model's forward passes", header, rows)
        results["overhead"] = rows

    if "c" in args.cases:
        rows = [overhead_row(f"(c) grid {g}", convnet, x16[:4], labels16[:4], repeats,
                             grid_size=g, with_xplique=with_xplique) for g in (4, 8, 12)]
        print_table("(c) Cost against the number of cells d = grid_size^2 (convnet, N=4)",
                    header, rows)
        results["grid"] = rows

    if "o" in args.cases:
        from sobol_tf.attributions import base
        from sobol_tf.attributions.sobol import EFFICIENT_SETTINGS

        rows = []
        for label, options in [("default", {}), ("jit_compile=True", {"jit_compile": True}),
                               ("mixed_precision='bfloat16'", {"mixed_precision": "bfloat16"}),
                               ("mixed_precision='float16'", {"mixed_precision": "float16"}),
                               ("EFFICIENT_SETTINGS (two stages, d + 1)", EFFICIENT_SETTINGS)]:
            rows.append(overhead_row(label, convnet, x16[:4], labels16[:4], repeats,
                                     **options)[:8])
        cache = base.MASK_CACHE_BYTES
        base.MASK_CACHE_BYTES = 0
        rows.append(overhead_row("masks upsampled per batch", convnet, x16[:4], labels16[:4],
                                 repeats)[:8])
        base.MASK_CACHE_BYTES = cache
        print_table("Engine options (convnet 32x32, N=4; the forward column is the plain "
                    "float32 model)", header[:8], rows)
        results["options"] = rows

    if "m" in args.cases:
        header_m = ["metric (constructor + evaluate)", "N", "ours s"]
        if with_xplique:
            header_m += ["xplique s", "speed-up"]
        rows = metric_rows(convnet, x16, labels16, repeats, with_xplique)
        print_table("Metrics on the convnet of (a), batch_size=256", header_m, rows)
        results["metrics"] = rows

    if "l" in args.cases:
        header_l = ["method (explain)", "N", "ours s"]
        if with_xplique:
            header_l += ["xplique s", "speed-up"]
        nb = 4 if args.quick else 8
        rows = lime_shap_rows(convnet, x16[:nb], labels16[:nb], repeats, with_xplique)
        print_table("Lime and KernelShap on the convnet of (a), 8x8 grid superpixels",
                    header_l, rows)
        results["lime_shap"] = rows

    if "d" in args.cases:
        rows = []
        size = 224
        for nb_design in (16, 32, 64):
            for nb_inputs in (1, 4):
                before, after = peak_rss(size, nb_design, nb_inputs, "convnet")
                outputs_mib = nb_inputs * nb_design * (GRID ** 2 + 2) * 4 / 2 ** 20
                rows.append([nb_design, nb_inputs, f"{before:.0f}", f"{after:.0f}",
                             f"{after - before:.0f}", f"{outputs_mib:.2f}"])
        print_table(f"(d) Peak RSS (MiB), convnet at {size}x{size}, batch_size={BATCH}",
                    ["nb_design", "N", "RSS before", "RSS peak", "growth", "scores MiB"], rows)
        results["memory"] = rows

    if "D" in args.cases:
        before, after = peak_rss(224, 64, 1, "mobilenet")
        print_table(f"(D) MobileNetV2 at 224x224, nb_design=64, batch_size={BATCH}, N=1 "
                    f"({64 * (GRID ** 2 + 2)} forward passes)",
                    ["RSS before (MiB)", "RSS peak (MiB)", "growth (MiB)"],
                    [[f"{before:.0f}", f"{after:.0f}", f"{after - before:.0f}"]])
        results["mobilenet_224"] = [before, after]

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
