"""EVA against Sobol at equal map quality, and Extremal channels against random channels.

On the cluttered digits and convnet of benchmarks/bench_quality.py (same data, same
training, same seed):

1. EVA (verified bounds, IBP) at a few radii epsilon, and Sobol at a ladder of
   nb_design, scored on the first N correctly classified test canvases with Deletion,
   Insertion (softmax of the label, as bench_quality), the pointing game and the share of
   positive attribution in the digit's box, with seconds per input (one explain() call
   after a warm-up). The speed comparison reads the cheapest Sobol whose Insertion and
   share in the box both reach EVA's.
2. Extremal channels (``ExtremalPerturbation.explain_channels``, 'preserve') of the last
   convolution's 64 channels at areas 0.1 and 0.25: the label's logit when only the
   chosen channels are kept (the others zeroed), against RANDOM_SETS random channel
   sets of the same size per image.

Writes <out>/eva.md and <out>/extremal_channels.md.
Usage: python benchmarks/bench_eva.py [--quick] [--seed 0] [--nb-images 30] [--out DIR]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import numpy as np  # noqa: E402

from bench_quality import (BATCH_SIZE, CAUSAL, FULL, QUICK, cluttered_sets,  # noqa: E402
                           explain_timed, mean_se, train)
from common import machine, markdown_table, print_table  # noqa: E402
from localisation import pointing_game, share_in_box  # noqa: E402

EPSILONS = (0.002, 0.01, 0.05, 0.1)
SOBOL_DESIGNS = (2, 4, 8, 16, 32)
GRID_SIZE = 8
CHANNEL_AREAS = (0.1, 0.25)
CHANNEL_SETTINGS = dict(steps=200, learning_rate=0.1)
RANDOM_SETS = 50
#: the seconds of the table: median of this many explain() calls per method, the methods
#: taking turns (the CPU is shared: single timings of one method varied several-fold).
TIMING_ROUNDS = 3


def score_maps(model, images, labels, boxes, maps):
    from sobol_tf.metrics import Deletion, Insertion
    common = dict(batch_size=BATCH_SIZE, activation="softmax", **CAUSAL)
    deletion = Deletion(model, images, labels, **common).curves(maps).areas
    insertion = Insertion(model, images, labels, **common).curves(maps).areas
    return [mean_se(deletion), mean_se(insertion), mean_se(pointing_game(maps, boxes)),
            mean_se(share_in_box(maps, boxes))]


def eva_against_sobol(model, images, labels, boxes, seed):
    from sobol_tf.attributions import Eva, SobolAttributionMethod
    explainers = {f"EVA (IBP), epsilon={epsilon}": Eva(model, epsilon, GRID_SIZE,
                                                       batch_size=BATCH_SIZE)
                  for epsilon in EPSILONS}
    explainers.update({f"Sobol, nb_design={nb_design}": SobolAttributionMethod(
        model, grid_size=GRID_SIZE, nb_design=nb_design, batch_size=BATCH_SIZE)
        for nb_design in SOBOL_DESIGNS})
    scores, seconds = {}, {name: [] for name in explainers}
    for name, explainer in explainers.items():
        maps, _ = explain_timed(explainer, images, labels)   # warm-up included
        scores[name] = score_maps(model, images, labels, boxes, maps)
        print(name, scores[name])
    for _ in range(TIMING_ROUNDS):
        for name, explainer in explainers.items():
            start = time.perf_counter()
            explainer.explain(images, labels)
            seconds[name].append((time.perf_counter() - start) / len(images))
    return [(name, scores[name], float(np.median(seconds[name]))) for name in explainers]


def channels_against_random(model, images, labels, seed):
    import tensorflow as tf

    from sobol_tf.attributions import ExtremalPerturbation
    from sobol_tf.verification.split import split_model
    layer = [one for one in model.layers if type(one).__name__ == "Conv2D"][-1].name
    head, tail = split_model(model, layer)
    activations = head(images)
    channels = activations.shape[-1]
    rng = np.random.default_rng(seed)
    explainer = ExtremalPerturbation(model, areas=CHANNEL_AREAS, batch_size=32,
                                     **CHANNEL_SETTINGS)
    start = time.perf_counter()
    masks = np.asarray(explainer.explain_channels(images, labels, layer=layer))
    seconds = (time.perf_counter() - start) / len(images)

    def kept_logits(keep):   # keep (N, C) in {0, 1}
        outputs = tail(activations * tf.constant(keep, tf.float32)[:, None, None, :])
        return np.asarray(outputs)[np.arange(len(labels)), labels]

    full = kept_logits(np.ones((len(images), channels)))
    results = []
    for index, area in enumerate(CHANNEL_AREAS):
        count = int(round(area * channels))
        top = np.argsort(-masks[:, index], axis=1)[:, :count]
        keep = np.zeros((len(images), channels))
        np.put_along_axis(keep, top, 1.0, axis=1)
        chosen = kept_logits(keep)
        randoms = []
        for _ in range(RANDOM_SETS):
            keep = np.zeros((len(images), channels))
            picks = np.argsort(rng.random((len(images), channels)), axis=1)[:, :count]
            np.put_along_axis(keep, picks, 1.0, axis=1)
            randoms.append(kept_logits(keep))
        randoms = np.stack(randoms, 1)                    # (N, RANDOM_SETS)
        beats_mean = chosen > randoms.mean(1)
        beats_all = chosen > randoms.max(1)
        rank = (randoms < chosen[:, None]).mean(1)        # share of random sets beaten
        results.append(dict(area=area, count=count, chosen=mean_se(chosen),
                            random=mean_se(randoms.mean(1)), full=mean_se(full),
                            beats_mean=beats_mean.mean(), beats_all=beats_all.mean(),
                            rank=mean_se(rank)))
        print(results[-1])
    return layer, channels, results, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb-images", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    sizes["nb_images"] = args.nb_images or (6 if args.quick else 30)
    out = args.out or ("outputs/eva-quick" if args.quick else os.path.join(HERE, "results"))
    os.makedirs(out, exist_ok=True)
    run_start = time.perf_counter()
    train_set, test_set = cluttered_sets(sizes["nb_train"], sizes["nb_test"], args.seed)
    model, accuracy = train(train_set, test_set, sizes["epochs"], args.seed)
    predicted = np.argmax(model.predict(test_set.images, batch_size=512, verbose=0), axis=1)
    chosen = np.flatnonzero(predicted == test_set.labels)[:sizes["nb_images"]]
    images, labels, boxes = (test_set.images[chosen], test_set.labels[chosen],
                             test_set.boxes[chosen])
    print(f"test accuracy {accuracy:.4f}; explaining {len(chosen)} canvases")

    rows = eva_against_sobol(model, images, labels, boxes, args.seed)
    header = ["method", "Deletion ↓", "Insertion ↑", "pointing game ↑", "share in box ↑",
              "s / input ↓"]
    table = [[name] + [f"{m:.3f} ± {s:.3f}" for m, s in scores] + [f"{seconds:.4f}"]
             for name, scores, seconds in rows]
    print_table("EVA against Sobol", header, table)
    comparison = []
    sobols = rows[len(EPSILONS):]
    for name, scores, seconds in rows[:len(EPSILONS)]:
        match = [(other, other_scores, other_seconds)
                 for other, other_scores, other_seconds in sobols
                 if other_scores[1][0] >= scores[1][0] and other_scores[3][0] >= scores[3][0]]
        if not match:
            comparison.append(f"- {name}: no Sobol setting of the ladder reaches both its "
                              "Insertion and its share in the box.")
            continue
        other, other_scores, other_seconds = match[0]
        cheapest = other == sobols[0][0]
        comparison.append(
            f"- {name}: the cheapest Sobol reaching (or passing) both its Insertion and "
            f"its share in the box is {other} ({other_seconds:.4f} s per input; Insertion "
            f"{other_scores[1][0]:.3f} vs {scores[1][0]:.3f}, share in box "
            f"{other_scores[3][0]:.3f} vs {scores[3][0]:.3f}): EVA takes "
            f"{seconds / other_seconds:.2f}x its time"
            + (" (the ladder's cheapest Sobol already passes EVA, so equal quality would "
               "cost Sobol less than this)." if cheapest else "."))
    layer, channels, results, channel_seconds = channels_against_random(
        model, images, labels, args.seed)
    total = time.perf_counter() - run_start
    lines = [f"Machine: {machine()}. Seed {args.seed}; whole run {total:.0f} s. "
             f"`python benchmarks/bench_eva.py{' --quick' if args.quick else ''}`.", "",
             f"Data and model: bench_quality's cluttered 48x48 digits and convnet "
             f"({len(train_set.images)} training canvases, {sizes['epochs']} epochs, test "
             f"accuracy {accuracy:.1%}); the first N = {len(chosen)} correctly classified "
             "test canvases, for their label.", ""]
    lines += markdown_table(header, table)
    lines += ["", "Mean ± standard error over the N canvases. Deletion / Insertion as in "
              "quality.md (softmax of the label; top 25% of the pixels, set to / revealed "
              f"on 0). Both methods use a {GRID_SIZE}x{GRID_SIZE} grid and batch_size "
              f"{BATCH_SIZE}; EVA needs 65 bounded boxes per canvas (IBP costs about two "
              "forward passes each), Sobol nb_design * (64 + 2) forward passes. Seconds: "
              f"median over {TIMING_ROUNDS} explain() calls on the N canvases / N, the "
              "methods taking turns, after a warm-up, on a 2-core CPU shared with other "
              "jobs (ratios are more telling than values).",
              "", "Speed at equal map quality:"] + comparison + [
              "", "CROWN gives EVA the same bounds as IBP on this model: every ReLU "
              "convolution is followed by a max pooling, which CROWN bounds by IBP "
              "(restarting its backward walk there), so CROWN composes only the last Dense "
              "layer backwards, which IBP's folded margins already do (EVA maps with "
              "bounds='crown' equal those of 'ibp' on 3 canvases: largest difference 0)."]
    with open(os.path.join(out, "eva.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")

    channel_header = ["area (channels)", "kept logit: Extremal", "kept logit: random sets",
                      "all channels", "images Extremal > mean random",
                      "images Extremal > every random set", "share of random sets beaten"]
    channel_rows = [[f"{r['area']} ({r['count']} of {channels})",
                     f"{r['chosen'][0]:.2f} ± {r['chosen'][1]:.2f}",
                     f"{r['random'][0]:.2f} ± {r['random'][1]:.2f}",
                     f"{r['full'][0]:.2f} ± {r['full'][1]:.2f}",
                     f"{r['beats_mean']:.0%}", f"{r['beats_all']:.0%}",
                     f"{r['rank'][0]:.3f} ± {r['rank'][1]:.3f}"] for r in results]
    print_table("Extremal channels against random channels", channel_header, channel_rows)
    lines = [f"Machine: {machine()}. Seed {args.seed}. Same model and canvases as eva.md "
             f"(N = {len(chosen)}).", "",
             f"`ExtremalPerturbation(model, areas={CHANNEL_AREAS}, "
             + ", ".join(f"{k}={v}" for k, v in CHANNEL_SETTINGS.items())
             + f").explain_channels(images, labels, layer={layer!r})` (the last "
             f"convolution, {channels} channels; 'preserve'; {channel_seconds:.3f} s per "
             "canvas for both areas). For each area, the top round(area x C) channels of "
             "the mask are kept and the others zeroed; the label's logit is compared with "
             f"that of {RANDOM_SETS} random sets of as many channels per canvas.", ""]
    lines += markdown_table(channel_header, channel_rows)
    lines += ["", "Mean ± standard error over the canvases."]
    with open(os.path.join(out, "extremal_channels.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {out}/eva.md and {out}/extremal_channels.md ({total:.0f} s)")


if __name__ == "__main__":
    main()
