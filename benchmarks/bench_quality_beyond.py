"""Ground-truth benchmark beyond images: tabular data, time series, text (`make bench-quality`).

Every model has a known answer (benchmarks/beyond_data.py):
- Tabular: Friedman #1 (five used features, five unused; Sobol indices in closed form)
  and an MLP trained on make_classification(shuffle=False) (informative features first).
  Scores: share of |attribution| on the informative features, the largest |attribution|
  on an unused feature relative to the map's largest (0 when unused features get 0), and
  for Friedman the Spearman correlation of |attribution| with the closed-form total
  Sobol indices.
- Time series: noise where a planted motif (known window and channel) sets the class,
  with a class-independent decoy as strong elsewhere; a Conv1D classifier. Scores: share
  of positive attribution in the motif's cells, pointing game.
- Text: token ids padded with 0 where planted sentiment words set the class; an
  Embedding + Conv1D classifier (gradient methods explain it from its embeddings).
  Scores: pointing game on the planted words, word-deletion AUC (our Deletion metric on
  tokens, deleted words become the mask token).

Every method explains the first N correctly classified held-out inputs; mean ± standard
error over them; seconds per input of one explain() call after a warm-up on two inputs.
A method the library cannot run on a layout is listed with its error. Writes
<out>/quality_beyond.md.
Usage: python benchmarks/bench_quality_beyond.py [--quick] [--seed 0] [--nb-inputs N]
       [--only friedman tabular series text] [--xplique] [--out DIR]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the benchmark measures the sobol_tf next to it, not whichever one is installed
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import numpy as np  # noqa: E402

import beyond_data as data  # noqa: E402
from bench_quality import mean_se  # noqa: E402
from common import machine, markdown_table, print_table  # noqa: E402

FULL = dict(nb_train=6000, nb_test=1000, nb_inputs=50, epochs=1.0)
QUICK = dict(nb_train=3000, nb_test=500, nb_inputs=8, epochs=0.5)
#: training epochs of each model at the full setting (QUICK scales them).
EPOCHS = dict(tabular=30, series=12, text=10)
BATCH_SIZE = 256
SERIES = dict(length=64, nb_channels=2, width=12, amplitude=3.0, noise=1.0)
TEXT = dict(max_length=24, min_length=8, max_planted=2)
#: word deletion: every word of each sentence, by decreasing attribution, in 12 steps
#: (each a twelfth of the sentence's own words: the metric counts per input with
#: pad_token); a random order then also reaches the planted words.
WORD_DELETION = dict(steps=12, max_percentage_perturbed=1.0)
RANDOM = "Random map (reference)"
GRADIENT_METHODS = ("Saliency", "IntegratedGradients")


# -- scores -------------------------------------------------------------------------------
def _flat(values, n):
    return np.asarray(values, np.float64).reshape(n, -1)


def share_on(maps, informative):
    """Share of each map's |attribution| on the informative features (0 for a zero map).

    Args: maps (N, F); informative bool (F,) or (N, F). Returns float64 (N,)."""
    magnitude = np.abs(np.asarray(maps, np.float64))
    total = magnitude.sum(axis=1)
    on = (magnitude * np.broadcast_to(informative, magnitude.shape)).sum(axis=1)
    return np.where(total > 0, on / np.where(total > 0, total, 1.0), 0.0)


def max_on_unused(maps, informative):
    """Largest |attribution| on an unused feature / largest |attribution| (0 for a zero
    map): 0 when the unused features get nothing, 1 when one of them gets the most.

    Args: maps (N, F); informative bool (F,). Returns float64 (N,)."""
    magnitude = np.abs(np.asarray(maps, np.float64))
    largest = magnitude.max(axis=1)
    unused = magnitude[:, ~np.asarray(informative, bool)].max(axis=1)
    return np.where(largest > 0, unused / np.where(largest > 0, largest, 1.0), 0.0)


def rank_correlation(maps, reference):
    """Spearman correlation of each map's |attribution| with ``reference`` (F,) (ties
    averaged); a constant map scores 0. Returns float64 (N,)."""
    from scipy.stats import rankdata

    magnitude = np.abs(np.asarray(maps, np.float64))
    ranks = rankdata(magnitude, axis=1)
    target = rankdata(reference)
    ranks = ranks - ranks.mean(axis=1, keepdims=True)
    target = target - target.mean()
    norms = np.linalg.norm(ranks, axis=1) * np.linalg.norm(target)
    return np.where(norms > 0, ranks @ target / np.where(norms > 0, norms, 1.0), 0.0)


def pointing_game(maps, masks, valid=None):
    """Whether each map's maximum (over its valid cells) falls on the ground-truth cells;
    ties shared (the chance of a hit when ties are broken at random).

    Args: maps and masks (N, ...) of one shape; valid: bool (N, ...) cells that count
    (default all; for text, the non-pad tokens). Returns float64 (N,) in [0, 1]."""
    n = len(maps)
    maps, masks = _flat(maps, n), _flat(masks, n) > 0
    valid = np.ones_like(masks) if valid is None else _flat(valid, n) > 0
    maps = np.where(valid, maps, -np.inf)
    at_max = (maps == maps.max(axis=1, keepdims=True)) & valid
    return (at_max & masks).sum(axis=1) / at_max.sum(axis=1)


def share_in_mask(maps, masks):
    """Share of each map's positive attribution on the ground-truth cells (0 when the map
    has no positive attribution). Returns float64 (N,) in [0, 1]."""
    n = len(maps)
    positive = np.maximum(_flat(maps, n), 0.0)
    total = positive.sum(axis=1)
    inside = (positive * (_flat(masks, n) > 0)).sum(axis=1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


# -- methods ------------------------------------------------------------------------------
def tabular_methods(seed, baseline):
    """name -> (class name in sobol_tf.attributions, settings); ``baseline``: one value
    per feature (the reference set's mean), the value a removed feature takes."""
    baseline = np.asarray(baseline, np.float32)
    return {
        "Sobol": ("SobolAttributionMethod", dict(nb_design=64, baseline=baseline)),
        "RISE": ("Rise", dict(nb_samples=2000, baseline=baseline, seed=seed)),
        "Occlusion": ("Occlusion", dict(patch_size=1, patch_stride=1,
                                        occlusion_value=baseline)),
        "HSIC": ("HsicAttributionMethod", dict(nb_design=500, baseline=baseline)),
        "Lime": ("Lime", dict(nb_samples=500, ref_value=baseline, seed=seed)),
        "KernelShap": ("KernelShap", dict(nb_samples=500, ref_value=baseline, seed=seed)),
        "Saliency": ("Saliency", dict()),
        "IntegratedGradients": ("IntegratedGradients", dict(steps=50,
                                                            baseline_value=baseline)),
    }


def series_methods(seed, windows=16):
    """Cells: the 64 steps cut into ``windows`` windows of 4, per channel (the motif
    spans 12 steps); the noise's mean, 0, is every method's baseline."""
    return {
        "Sobol": ("SobolAttributionMethod", dict(grid_size=windows, nb_design=32)),
        "RISE": ("Rise", dict(nb_samples=2000, grid_size=windows, seed=seed)),
        # Xplique's (time, channels) patch: 4 steps of one channel
        "Occlusion": ("Occlusion", dict(patch_size=(4, 1), patch_stride=(2, 1))),
        "HSIC": ("HsicAttributionMethod", dict(grid_size=windows, nb_design=500)),
        "Lime": ("Lime", dict(nb_samples=500, grid_size=windows, seed=seed)),
        "KernelShap": ("KernelShap", dict(nb_samples=500, grid_size=windows, seed=seed)),
        # reducer None: one value per (step, channel), the motif lies in one channel
        "Saliency": ("Saliency", dict(reducer=None)),
        "IntegratedGradients": ("IntegratedGradients", dict(steps=50, reducer=None)),
    }


def text_methods(seed):
    """One cell per token; deleted tokens become MASK_ID, PAD_ID positions are not cells.
    Saliency / IntegratedGradients explain the model's head from the embeddings."""
    tokens = dict(mask_token=data.MASK_ID, pad_token=data.PAD_ID)
    return {
        "Sobol": ("SobolAttributionMethod", dict(nb_design=32, perturbation_function="tokens",
                                                 **tokens)),
        "RISE": ("Rise", dict(nb_samples=2000, seed=seed, **tokens)),
        "Occlusion": ("Occlusion", dict(patch_size=1, patch_stride=1, **tokens)),
        "HSIC": ("HsicAttributionMethod", dict(nb_design=500, perturbation_function="tokens",
                                               **tokens)),
        "Lime": ("Lime", dict(nb_samples=500, seed=seed, **tokens)),
        "KernelShap": ("KernelShap", dict(nb_samples=500, seed=seed, **tokens)),
        "Saliency": ("Saliency", dict()),
        "IntegratedGradients": ("IntegratedGradients", dict(steps=50)),
    }


def xplique_methods(modality, baseline=0.0):
    """Xplique 2.0.2's runs of the methods it offers on tabular data and time series
    (RISE, Occlusion, Lime, KernelShap; Sobol and HSIC are "not yet" there), with our
    settings where it has them: one number as RISE's / Occlusion's value (the mean of
    ours), Lime and KernelShap on Xplique's default interpretable features (one per
    feature; one per (step, channel) for a time series)."""
    value = float(np.mean(baseline))
    reference = np.array([value], np.float32)    # Xplique: one number on tabular data
    if modality == "tabular":
        patches = dict(patch_size=1, patch_stride=1)
        grid = {}
    else:
        patches = dict(patch_size=(4, 1), patch_stride=(2, 1))
        grid = dict(grid_size=16)
    return {
        "Xplique RISE": ("Rise", dict(nb_samples=2000, mask_value=value, **grid)),
        "Xplique Occlusion": ("Occlusion", dict(occlusion_value=value, **patches)),
        "Xplique Lime": ("Lime", dict(nb_samples=500, ref_value=reference)),
        "Xplique KernelShap": ("KernelShap", dict(nb_samples=500, ref_value=reference)),
    }


def run_methods(methods, model, inputs, targets, operator=None, prepare=None,
                module=None):
    """Explain ``inputs`` with every method of ``module`` (default sobol_tf.attributions)
    for one-hot ``targets``; ({name: maps}, {name: s / input}, {name: error}).
    ``prepare(explainer_class, settings)`` may return (explainer, inputs, to_maps) to
    explain another model/input (the text model's head on embeddings)."""
    if module is None:
        from sobol_tf import attributions as module
    maps, seconds, errors = {}, {}, {}
    for name, (class_name, settings) in methods.items():
        try:
            explainer_class = getattr(module, class_name)
            extra = {} if operator is None else dict(operator=operator)
            if prepare is not None and name in GRADIENT_METHODS:
                explainer, explained, to_maps = prepare(explainer_class, settings)
            else:
                explainer = explainer_class(model, batch_size=BATCH_SIZE, **extra, **settings)
                explained, to_maps = inputs, None
            explainer.explain(explained[:2], targets[:2])
            start = time.perf_counter()
            result = np.asarray(explainer.explain(explained, targets), np.float64)
            seconds[name] = (time.perf_counter() - start) / len(inputs)
            result = to_maps(result) if to_maps is not None else result
            maps[name] = as_cells(result, inputs.shape)
        except Exception as error:  # reported in the table, the others still run
            if os.environ.get("BEYOND_TRACEBACK"):
                import traceback

                traceback.print_exc()
            errors[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        status = (f"{seconds[name]:.4f} s per input" if name in maps
                  else f"FAILED {errors[name]}")
        print(f"  {name}: {status}", flush=True)
    return maps, seconds, errors


def run_all(methods, model, inputs, targets, xplique=None, baseline=0.0, **options):
    """:func:`run_methods` on our methods, then (``xplique``: 'tabular' or 'time series')
    on Xplique's, imported from the path; their names in one list, ours first."""
    maps, seconds, errors = run_methods(methods, model, inputs, targets, **options)
    names = list(methods)
    if xplique:
        from xplique import attributions as xplique_attributions

        others = xplique_methods(xplique, baseline)
        print("  Xplique 2.0.2:")
        results = run_methods(others, model, inputs, targets, module=xplique_attributions,
                              operator=options.get("operator"))
        for mine, theirs in zip((maps, seconds, errors), results):
            mine.update(theirs)
        names += list(others)
    return names, maps, seconds, errors


def one_hot(labels, nb_classes=2):
    return np.eye(nb_classes, dtype=np.float32)[labels]


def as_cells(maps, shape):
    """Maps in the input's shape (a trailing axis of 1 dropped), or a ValueError."""
    if maps.shape != tuple(shape) and maps.shape[-1:] == (1,):
        maps = maps[..., 0]
    if maps.shape != tuple(shape):
        raise ValueError(f"maps of shape {maps.shape}, expected {tuple(shape)}")
    return maps


def table_rows(names, scores, seconds, errors):
    rows = []
    for name in names:
        if name in errors:
            rows.append([name, f"fails: {errors[name][:110]}"])
            continue
        cells = [f"{mean:.3f} ± {se:.3f}" for mean, se in (mean_se(s) for s in scores[name])]
        rows.append([name] + cells + [f"{seconds[name]:.4f}" if name in seconds else "-"])
    return rows


def correctly_classified(model, inputs, labels, count):
    predicted = np.argmax(np.asarray(model.predict(inputs, batch_size=512, verbose=0)), axis=1)
    return np.flatnonzero(predicted == labels)[:count]


# -- one section per modality -------------------------------------------------------------
def friedman_section(sizes, seed, xplique=False):
    n = sizes["nb_inputs"]
    inputs = data.friedman1_inputs(n, seed=seed + 1)
    total = data.friedman1_indices()["total"]
    informative = data.FRIEDMAN_INFORMATIVE
    methods = tabular_methods(seed, np.full(data.FRIEDMAN_FEATURES, 0.5, np.float32))
    print("Friedman #1:")
    names, maps, seconds, errors = run_all(
        methods, data.friedman1_tf, inputs, np.ones((n, 1), np.float32),
        xplique=xplique and "tabular", baseline=0.5, operator="regression")
    maps[RANDOM] = np.random.default_rng(seed).uniform(size=inputs.shape)
    scores = {name: [share_on(m, informative), max_on_unused(m, informative),
                     rank_correlation(m, total)] for name, m in maps.items()}
    header = ["method", "share on used ↑", "max on unused ↓", "rank corr. total indices ↑",
              "s / input ↓"]
    notes = [
        f"Friedman #1 (noise-free, TensorFlow function) on N = {n} points drawn from "
        "U(0, 1)^10; features 1-5 used, 6-10 unused. Closed-form total Sobol indices: "
        + ", ".join(f"{t:.3f}" for t in total[:5]) + ", 0 x 5 (first-order: "
        + ", ".join(f"{s:.3f}" for s in data.friedman1_indices()["first_order"][:5])
        + "). Removed features take 0.5 (the inputs' mean; IntegratedGradients starts "
        "there). Operator 'regression'.",
    ]
    return "Tabular: Friedman #1", header, table_rows(names + [RANDOM], scores,
                                                      seconds, errors), notes


def tabular_section(sizes, seed, xplique=False):
    dataset = data.make_tabular(sizes["nb_train"] + sizes["nb_test"], seed=seed)
    train, test = data.split(dataset, sizes["nb_test"] / len(dataset.labels))
    model = data.tabular_mlp(train.features.shape[1], seed)
    epochs = max(1, round(EPOCHS["tabular"] * sizes["epochs"]))
    accuracy = data.fit_classifier(model, train.features, train.labels, test.features,
                                   test.labels, epochs, seed)
    chosen = correctly_classified(model, test.features, test.labels, sizes["nb_inputs"])
    inputs, labels = test.features[chosen], test.labels[chosen]
    baseline = train.features.mean(axis=0)
    methods = tabular_methods(seed, baseline)
    print(f"make_classification MLP (test accuracy {accuracy:.3f}):")
    names, maps, seconds, errors = run_all(methods, model, inputs, one_hot(labels),
                                           xplique=xplique and "tabular", baseline=baseline)
    maps[RANDOM] = np.random.default_rng(seed).uniform(size=inputs.shape)
    informative = dataset.informative
    scores = {name: [share_on(m, informative), max_on_unused(m, informative)]
              for name, m in maps.items()}
    header = ["method", "share on informative ↑", "max on noise ↓", "s / input ↓"]
    notes = [
        f"make_classification(n_features=10, n_informative={informative.sum()}, "
        "n_redundant=0, shuffle=False): features 1-4 informative, 5-10 noise; MLP 32-32, "
        f"{epochs} epochs on {len(train.labels)} rows, test accuracy **{accuracy:.1%}**; "
        f"N = {len(chosen)} correctly classified test rows, for their label. Removed "
        "features take the training mean (IntegratedGradients starts there).",
    ]
    return "Tabular: MLP on make_classification", header, table_rows(
        names + [RANDOM], scores, seconds, errors), notes


def series_section(sizes, seed, xplique=False):
    dataset = data.make_series(sizes["nb_train"] + sizes["nb_test"], seed=seed, **SERIES)
    train, test = data.split(dataset, sizes["nb_test"] / len(dataset.labels))
    model = data.series_convnet(SERIES["length"], SERIES["nb_channels"], seed)
    epochs = max(1, round(EPOCHS["series"] * sizes["epochs"]))
    accuracy = data.fit_classifier(model, train.signals, train.labels, test.signals,
                                   test.labels, epochs, seed)
    chosen = correctly_classified(model, test.signals, test.labels, sizes["nb_inputs"])
    inputs, labels = test.signals[chosen], test.labels[chosen]
    windows = test.window_masks()[chosen]
    methods = series_methods(seed)
    print(f"motif time series (test accuracy {accuracy:.3f}):")
    names, maps, seconds, errors = run_all(methods, model, inputs, one_hot(labels),
                                           xplique=xplique and "time series")
    maps[RANDOM] = np.random.default_rng(seed).uniform(size=inputs.shape)
    scores = {name: [share_in_mask(m, windows), pointing_game(m, windows)]
              for name, m in maps.items()}
    header = ["method", "share in motif window ↑", "pointing game ↑", "s / input ↓"]
    share = SERIES["width"] / (SERIES["length"] * SERIES["nb_channels"])
    notes = [
        f"Series (T={SERIES['length']}, C={SERIES['nb_channels']}) of N(0, "
        f"{SERIES['noise']}) noise; the class (a bump or one sine period, amplitude "
        f"{SERIES['amplitude']}, {SERIES['width']} steps) is planted at a random step of a "
        f"random channel: the window is {share:.1%} of the cells (a random map's share); a "
        "decoy as strong (+-amplitude alternating, in both classes) sits elsewhere. "
        f"Conv1D 16-16 + global max pooling, {epochs} epochs on {len(train.labels)} series, "
        f"test accuracy **{accuracy:.1%}**; N = {len(chosen)} correctly classified test "
        "series, for their label. Removed cells take 0 (the noise's mean). Saliency / "
        "IntegratedGradients with reducer=None (a value per step and channel).",
    ]
    return "Time series: planted motif", header, table_rows(names + [RANDOM], scores,
                                                            seconds, errors), notes


def text_section(sizes, seed, xplique=False):
    from sobol_tf.metrics import Deletion

    dataset = data.make_text(sizes["nb_train"] + sizes["nb_test"], seed=seed, **TEXT)
    train, test = data.split(dataset, sizes["nb_test"] / len(dataset.labels))
    text = data.text_model(TEXT["max_length"], seed)
    epochs = max(1, round(EPOCHS["text"] * sizes["epochs"]))
    accuracy = data.fit_classifier(text.model, train.tokens, train.labels, test.tokens,
                                   test.labels, epochs, seed)
    chosen = correctly_classified(text.model, test.tokens, test.labels, sizes["nb_inputs"])
    inputs, labels = test.tokens[chosen], test.labels[chosen]
    planted, valid = test.planted[chosen], inputs != data.PAD_ID

    def on_embeddings(explainer_class, settings):
        """A gradient method on the model's head, fed the embeddings (N, L, D); its maps
        summed over the embedding axis (N, L), pads set to 0."""
        embedded = np.asarray(text.embedder(inputs), np.float32)
        explainer = explainer_class(text.head, batch_size=BATCH_SIZE, reducer=None,
                                    **settings)

        def to_maps(maps):
            if maps.ndim == 4 and maps.shape[-1] == 1:
                maps = maps[..., 0]
            if maps.ndim == 3 and maps.shape[-1] == embedded.shape[-1]:
                maps = maps.sum(axis=-1)
            return np.where(valid, as_cells(maps, inputs.shape), 0.0)

        return explainer, embedded, to_maps

    methods = text_methods(seed)
    print(f"planted-sentiment text (test accuracy {accuracy:.3f}):")
    names, maps, seconds, errors = run_all(methods, text.model, inputs, one_hot(labels),
                                           prepare=on_embeddings)
    maps[RANDOM] = np.where(valid, np.random.default_rng(seed).uniform(size=inputs.shape), 0)
    on_pads = [name for name, attribution in maps.items()
               if np.any(attribution[~valid] != 0)]
    if on_pads:
        print(f"  non-zero attribution on pad positions: {', '.join(on_pads)}")
    scores = {}
    try:
        deletion = Deletion(text.model, inputs, labels, batch_size=BATCH_SIZE,
                            baseline_mode=data.MASK_ID, activation="softmax",
                            pad_token=data.PAD_ID, **WORD_DELETION)
    except Exception as error:
        deletion = None
        print(f"  Deletion on tokens FAILED {type(error).__name__}: {error}")
    for name, attribution in maps.items():
        row = [pointing_game(attribution, planted, valid)]
        if deletion is not None:
            try:
                row.append(deletion.curves(attribution.astype(np.float32)).areas)
            except Exception as error:
                print(f"  Deletion of {name} FAILED {type(error).__name__}: {error}")
                row.append(np.full(len(inputs), np.nan))
        else:
            row.append(np.full(len(inputs), np.nan))
        scores[name] = row
    header = ["method", "pointing game ↑", "word deletion AUC ↓", "s / input ↓"]
    lengths = test.lengths[chosen]
    notes = [
        f"Sentences of {TEXT['min_length']}-{TEXT['max_length']} tokens (padded with id "
        f"{data.PAD_ID} to {TEXT['max_length']}) of {len(data.NEUTRAL_WORDS)} neutral words "
        f"drawn uniformly (distractors: as frequent in both classes), with 1-"
        f"{TEXT['max_planted']} planted sentiment words of the class ({len(data.POSITIVE_WORDS)}"
        f" positive, {len(data.NEGATIVE_WORDS)} negative; {planted.sum() / valid.sum():.1%} "
        f"of the explained tokens; mean length {lengths.mean():.1f}). Embedding 16 + Conv1D "
        f"32 (width 3) + global max pooling, {epochs} epochs on {len(train.labels)} "
        f"sentences, test accuracy **{accuracy:.1%}**; N = {len(chosen)} correctly "
        "classified test sentences, for their label.",
        "Non-zero attribution on pad positions (a defect): "
        + (", ".join(on_pads) if on_pads else "none") + ".",
        f"Black-box methods replace tokens by the mask token (id {data.MASK_ID}); pads "
        "are never cells. Saliency / IntegratedGradients: the gradient w.r.t. the "
        "embeddings of the model's head, summed over the embedding axis (IG from the zero "
        "embedding). Pointing game over the non-pad tokens. Word deletion: our Deletion "
        f"metric on the token ids, words set to the mask token by decreasing attribution, "
        f"up to {WORD_DELETION['max_percentage_perturbed']:.0%} of the words in "
        f"{WORD_DELETION['steps']} steps (each a share of the sentence's own words); area "
        "under the softmax probability of the label.",
    ]
    return "Text: planted sentiment words", header, table_rows(names + [RANDOM],
                                                               scores, seconds, errors), notes


SECTIONS = dict(friedman=friedman_section, tabular=tabular_section, series=series_section,
                text=text_section)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: smaller training sets, fewer epochs, 8 inputs")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, models, methods")
    parser.add_argument("--nb-inputs", type=int, help="inputs explained (default 50; 8 quick)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these only")
    parser.add_argument("--xplique", action="store_true",
                        help="add Xplique's RISE, Occlusion, Lime, KernelShap on tabular "
                             "data and time series (needs xplique importable)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; "
                                      "outputs/quality-quick with --quick)")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.nb_inputs:
        sizes["nb_inputs"] = args.nb_inputs
    out = args.out or ("outputs/quality-quick" if args.quick else
                       os.path.join(HERE, "results"))
    os.makedirs(out, exist_ok=True)
    run_start = time.perf_counter()
    print(f"machine: {machine()}")
    sections = []
    for key in args.only or SECTIONS:
        title, header, rows, notes = SECTIONS[key](sizes, args.seed, args.xplique)
        print_table(f"{title} (mean ± standard error)", header, rows)
        sections.append((title, header, rows, notes))
    total_seconds = time.perf_counter() - run_start
    write_markdown(os.path.join(out, "quality_beyond.md"), sections, args.seed,
                   total_seconds)
    print(f"\nwrote {out}/quality_beyond.md (run took {total_seconds:.0f} s)")


def write_markdown(path, sections, seed, total_seconds):
    lines = [f"Machine: {machine()}. Seed {seed}; whole run {total_seconds:.0f} s.", ""]
    for title, header, rows, notes in sections:
        lines += [f"### {title}", ""] + notes + [""]
        lines += markdown_table(header, [row + [""] * (len(header) - len(row))
                                         for row in rows])
        lines.append("")
    lines += [
        "Mean ± standard error over the N inputs. Methods explain the logit of the label "
        "(Friedman: the function's value); s / input: one explain() call on the N inputs "
        f"/ N after a warm-up call, batch_size {BATCH_SIZE}, on a CPU shared with other "
        "jobs. Random map: uniform noise, seeded (pads 0 for text).",
    ]
    if any(row[0].startswith("Xplique") for _, _, rows, _ in sections for row in rows):
        lines.append(
            "Xplique rows: Xplique 2.0.2 (--xplique), same models, inputs and sample "
            "counts; one number as the removed value (Xplique takes no per-feature "
            "reference); Lime / KernelShap on its default interpretable features (one per "
            "feature; one per (step, channel) for series); Occlusion patches of 4 steps x 1 "
            "channel, stride 2 on series.")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
