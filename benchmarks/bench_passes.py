"""Sobol from fewer forward passes (issue 26): map error against passes per input.

For each model, six inputs are explained with the paper's settings at nb_design=1024
(unscrambled Sobol design, Jansen's estimator): the reference map. Then each candidate
(a design and an estimator) is run at nb_design 8, 16, 32 and 64 and scored by its map
error, 1 - Pearson r against the reference (per input, on the cells; also against a
second, independent reference: scrambled Sobol of seed INDEPENDENT_SEED, Jansen,
nb_design=1024, since the paper's reference shares its first points with the
unscrambled candidates' designs, which flatters them), and by Deletion
and Insertion (sobol_tf.metrics, at nb_design 16 and 32). Passes per input are
nb_design * (d + 2), or nb_design * (d + 1) for the estimators that skip B.

Forward passes are shared: a design's scores are computed once at nb_design=64 (for
the unscrambled Sobol design: read from the reference's first 64 points) and the
smaller designs are its prefixes (the first 2^k points of a Sobol sequence, scrambled or
not, are the design of 2^k points; checked), on which every estimator is evaluated.
Randomised designs (scrambled Sobol, Latin hypercube) are drawn with 3 seeds: the
table gives the mean over inputs and seeds, the spread is the standard deviation over
(inputs x seeds) and the worst seed's mean.

Models: (1) a small convnet trained on scikit-learn's digits (upsampled to 32x32);
(2) the cluttered-digits convnet of bench_quality (48x48, quick training);
(3) MobileNetV2 (alpha 0.35, 64x64, random weights); (4) an MLP on make_classification
(10 features); (5) a Conv1D on the planted-motif series (64 steps, 2 channels, 8
windows). Scores are cached in outputs/passes_cache (delete it to recompute).

Writes benchmarks/results/passes.md and passes.png.
Usage: nice -n 10 python benchmarks/bench_passes.py [--out DIR] [--only NAME ...]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

NB_INPUTS = 6
REFERENCE_NB_DESIGN = 1024
NB_DESIGNS = (8, 16, 32, 64)
SEEDS = (0, 1, 2)
#: seed of the second reference (Owen-scrambled Sobol, Jansen, nb_design 1024): the
#: paper's reference shares its first points with the unscrambled candidates' designs,
#: which flatters them; this one shares none.
INDEPENDENT_SEED = 1000
#: the costly cases (MobileNetV2 on 2 shared CPU cores) run without the independent
#: reference and the Latin hypercube designs (not competitive on the other models).
LIGHT_CASES = ("mobilenet",)
METRIC_NB_DESIGNS = (16, 32)
BATCH_SIZE = 512
CACHE = os.path.join(ROOT, "outputs", "passes_cache")

#: designs: name -> (label, sampler factory of a seed, randomised?)
DESIGNS = {
    "sobol": "unscrambled Sobol (today's default)",
    "tf_sobol": "TF Sobol (Xplique's default)",
    "scrambled": "Owen-scrambled Sobol",
    "lhs": "Latin hypercube",
}
#: candidates: (label, design, estimator name)
CANDIDATES = [
    ("today's default: sobol + jansen", "sobol", "jansen"),
    ("Xplique's default: TF sobol + jansen", "tf_sobol", "jansen"),
    ("sobol + jansen_total (no B)", "sobol", "jansen_total"),
    ("sobol + jansen_normalised", "sobol", "jansen_normalised"),
    ("sobol + jansen_cv", "sobol", "jansen_cv"),
    ("scrambled + jansen_total (no B)", "scrambled", "jansen_total"),
    ("scrambled + jansen_normalised (one stage)", "scrambled", "jansen_normalised"),
    ("scrambled + jansen_cv", "scrambled", "jansen_cv"),
    ("lhs + jansen_normalised", "lhs", "jansen_normalised"),
]
#: first order (explain_indices, which evaluates B): label, design, linear control variate
FIRST_ORDER = [
    ("reference formula, unscrambled Sobol (today's default)", "sobol", False),
    ("reference formula, scrambled Sobol", "scrambled", False),
    ("linear control variate, scrambled Sobol (EFFICIENT)", "scrambled", True),
]
#: two-stage designs (``refine=True``): run through the explainer itself (the
#: refinement design depends on each input's survey, so it cannot be read from the
#: shared scores); label -> the explainer's settings.
REFINED = [
    ("two-stage: scrambled + jansen_normalised + refine (EFFICIENT)",
     dict(estimator="jansen_normalised", sampler="scrambled_sobol", refine=True)),
]


def sampler_of(design, seed):
    from sobol_tf.attributions import samplers

    if design == "sobol":
        return samplers.SobolSequence(scramble="auto")
    if design == "tf_sobol":
        return samplers.TFSobolSequenceRS()
    if design == "scrambled":
        return samplers.ScrambledSobolSequence(seed=seed)
    return samplers.LatinHypercube(seed=seed)


# -- models -----------------------------------------------------------------------------
def _cached_model(name, build, fit):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"{name}.weights.h5")
    model = build()
    if os.path.exists(path):
        model.load_weights(path)
        accuracy_path = path + ".accuracy"
        return model, (float(open(accuracy_path).read()) if os.path.exists(accuracy_path)
                       else None)
    accuracy = fit(model)
    model.save_weights(path)
    with open(path + ".accuracy", "w") as handle:
        handle.write(repr(accuracy))
    return model, accuracy


def _correct(model, x, y, n):
    predicted = np.argmax(model.predict(x, batch_size=512, verbose=0), axis=1)
    chosen = np.flatnonzero(predicted == y)[:n]
    return x[chosen], y[chosen]


def digits_case():
    import keras
    from sklearn.datasets import load_digits

    import beyond_data as data

    digits = load_digits()
    images = np.repeat(np.repeat(digits.images / 16.0, 4, 1), 4, 2)[..., None]
    images = images.astype(np.float32)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1400], order[1400:]

    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential([
            keras.Input((32, 32, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ])

    model, accuracy = _cached_model("digits", build, lambda m: data.fit_classifier(
        m, images[train], labels[train], images[test], labels[test], 8, 0))
    x, y = _correct(model, images[test], labels[test], NB_INPUTS)
    return model, x, y, dict(grid_size=8), accuracy


def cluttered_case():
    import bench_quality as quality

    train_set, test_set = quality.cluttered_sets(2000, 400, 0)

    def fit(model):
        import keras
        model.compile(keras.optimizers.Adam(2e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(train_set.images, train_set.labels, epochs=4, batch_size=64, verbose=0)
        return float(model.evaluate(test_set.images, test_set.labels, verbose=0)[1])

    model, accuracy = _cached_model("cluttered", lambda: quality.build_model(0), fit)
    x, y = _correct(model, test_set.images, test_set.labels, NB_INPUTS)
    return model, x, y, dict(grid_size=8), accuracy


def mobilenet_case():
    import keras

    keras.utils.set_random_seed(0)
    # logits: with random weights the softmax is ~1/1000 for every class, constant to
    # float32 resolution under any mask (every index 0)
    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35,
                                           weights=None, classes=1000,
                                           classifier_activation=None)
    x = np.random.default_rng(0).uniform(0, 1, (NB_INPUTS, 64, 64, 3)).astype(np.float32)
    y = np.argmax(model.predict(x, verbose=0), axis=1)
    return model, x, y, dict(grid_size=8), None


def tabular_case():
    import beyond_data as data

    dataset = data.make_tabular(1200, seed=0)
    train, test = data.split(dataset, 0.25)
    model, accuracy = _cached_model(
        "tabular", lambda: data.tabular_mlp(train.features.shape[1], 0),
        lambda m: data.fit_classifier(m, train.features, train.labels, test.features,
                                      test.labels, 20, 0))
    x, y = _correct(model, test.features, test.labels, NB_INPUTS)
    return model, x, y, dict(), accuracy


def series_case():
    import beyond_data as data

    dataset = data.make_series(1200, seed=0)
    train, test = data.split(dataset, 0.25)
    model, accuracy = _cached_model(
        "series", lambda: data.series_convnet(64, 2, 0),
        lambda m: data.fit_classifier(m, train.signals, train.labels, test.signals,
                                      test.labels, 10, 0))
    x, y = _correct(model, test.signals, test.labels, NB_INPUTS)
    return model, x, y, dict(grid_size=8), accuracy


CASES = {
    "digits convnet (32x32, grid 8)": ("digits", digits_case),
    "cluttered digits convnet (48x48, grid 8)": ("cluttered", cluttered_case),
    "MobileNetV2 a=0.35 random, logits (64x64, grid 8)": ("mobilenet", mobilenet_case),
    "tabular MLP (10 features)": ("tabular", tabular_case),
    "time-series Conv1D (8 windows x 2 channels)": ("series", series_case),
}


# -- scores -----------------------------------------------------------------------------
def design_scores(explainer, inputs, targets, design):
    """Scores (N, P) of the inputs under every row of ``design`` (P, d), through the
    library's engine (the explainer's private scoring step: benchmark use only)."""
    import tensorflow as tf

    model, images, prepared = explainer._prepare(inputs, targets)
    cells = explainer._cells_of(explainer._layout, images.shape[-1])
    masks = tf.reshape(tf.constant(design, tf.float32), (-1,) + tuple(cells))
    return explainer._perturbed_scores(model, images, prepared, masks).numpy().astype(
        np.float64), int(np.prod(cells))


def sub_design(full, n_full, n, d):
    """Rows of the replicated design (or score columns) of the first ``n`` points."""
    blocks = np.split(np.arange(n_full * (d + 2)), d + 2)
    rows = np.concatenate([block[:n] for block in blocks])
    return full[rows] if full.ndim == 2 and full.shape[0] == n_full * (d + 2) else full[:, rows]


def cached(name, compute):
    path = os.path.join(CACHE, name + ".npz")
    if os.path.exists(path):
        stored = np.load(path)
        return stored["scores"], stored["design"]
    scores, design = compute()
    np.savez(path, scores=scores, design=design)
    return scores, design


def refined_indices(model, x, y, options, nb_design, settings, seed):
    """Cell indices (N, d) of a two-stage explainer (``refine=True`` in ``settings``),
    through the explainer's own per-batch path (its private ``_explain``: benchmark use
    only)."""
    from sobol_tf.attributions import SobolAttributionMethod

    explainer = SobolAttributionMethod(model, nb_design=nb_design, batch_size=BATCH_SIZE,
                                       seed=seed, **settings, **options)
    view, images, prepared = explainer._prepare(x, y)
    indices = explainer._explain(view, images, prepared)
    return np.asarray(indices, np.float64).reshape(len(x), -1)


def pearson_error(maps, reference):
    return np.array([1.0 - np.corrcoef(m.ravel(), r.ravel())[0, 1]
                     for m, r in zip(maps, reference)])


def to_input_maps(explainer, indices, inputs):
    """Cell indices (N, d) as maps in the inputs' layout (the explainer's resizing)."""
    import tensorflow as tf

    images = explainer._layout.to_engine(inputs)
    cells = explainer._cells_of(explainer._layout, images.shape[-1])
    maps = tf.reshape(tf.constant(indices, tf.float32), (-1,) + tuple(cells))
    maps = explainer._to_input_size(maps, images.shape[1], images.shape[2])
    return np.asarray(explainer._layout.from_engine(maps))


def run_case(title, key, builder):
    from sobol_tf.attributions import SobolAttributionMethod
    from sobol_tf.attributions import estimators, refinement
    from sobol_tf.metrics import Deletion, Insertion

    start = time.perf_counter()
    model, x, y, options, accuracy = builder()
    explainer = SobolAttributionMethod(model, nb_design=REFERENCE_NB_DESIGN,
                                       batch_size=BATCH_SIZE, **options)
    top = max(NB_DESIGNS)

    def reference_scores():
        design = np.asarray(explainer.sampler(_dimension(explainer, x),
                                              REFERENCE_NB_DESIGN))
        return design_scores(explainer, x, y, design)[0], design

    ref_scores, ref_design = cached(f"{key}_reference", reference_scores)
    d = ref_design.shape[1]
    reference = estimators.JansenEstimator()(ref_scores, REFERENCE_NB_DESIGN).numpy()

    def independent_scores():
        design = np.asarray(sampler_of("scrambled", INDEPENDENT_SEED)(d, REFERENCE_NB_DESIGN))
        return design_scores(explainer, x, y, design)[0], design

    if key in LIGHT_CASES and not os.path.exists(os.path.join(CACHE,
                                                              f"{key}_independent.npz")):
        independent, floor = None, float("nan")
    else:
        independent = estimators.JansenEstimator()(
            cached(f"{key}_independent", independent_scores)[0], REFERENCE_NB_DESIGN).numpy()
        floor = pearson_error(independent, reference).mean()

    full = {}  # (design, seed) -> (scores at nb_design=top, design)
    full[("sobol", 0)] = (sub_design(ref_scores, REFERENCE_NB_DESIGN, top, d),
                          sub_design(ref_design, REFERENCE_NB_DESIGN, top, d))
    for design_name in ("tf_sobol", "scrambled") + (() if key in LIGHT_CASES else ("lhs",)):
        seeds = (0,) if design_name == "tf_sobol" else SEEDS
        for seed in seeds:
            def compute(design_name=design_name, seed=seed):
                design = np.asarray(sampler_of(design_name, seed)(d, top))
                return design_scores(explainer, x, y, design)[0], design
            full[(design_name, seed)] = cached(f"{key}_{design_name}_{seed}", compute)

    rows, curves, metric_maps = [], {}, {}

    def record(label, n, passes, maps):
        """A table row and a curve point from the cell maps of each seed's design."""
        if not maps:
            return
        errors = [pearson_error(m, reference) for m in maps]
        per_seed = [e.mean() for e in errors]
        errors = np.concatenate(errors)
        independent_mean = (np.concatenate([pearson_error(m, independent) for m in maps]).mean()
                            if independent is not None else float("nan"))
        if n in METRIC_NB_DESIGNS:
            metric_maps.setdefault((label, n), []).extend(maps)
        rows.append(dict(label=label, n=n, passes=passes, mean=errors.mean(),
                         sd=errors.std(), worst=max(per_seed), seeds=len(per_seed),
                         independent=independent_mean))
        curves.setdefault(label, []).append((passes, errors.mean(), min(per_seed),
                                             max(per_seed)))
    for label, design_name, estimator_name in CANDIDATES:
        estimator = estimators.get(estimator_name)
        skips_b = not estimators.reads_b(estimator)
        for n in NB_DESIGNS:
            maps = []
            for (name, seed), (scores, design) in full.items():
                if name != design_name:
                    continue
                sub_scores = sub_design(scores, top, n, d)
                sub = sub_design(design, top, n, d)
                if design_name != "lhs":  # the sampler's own design: a prefix of one
                    try:
                        own = np.asarray(sampler_of(design_name, seed)(d, n), np.float32)
                    except ValueError as error:  # a tied design, refused
                        print(f"  {design_name} seed {seed}, nb_design={n}: {error}"[:160])
                        continue
                    found = [(sub_design(s2, top, n, d), sub_design(d2, top, n, d))
                             for s2, d2 in full.values()
                             if np.array_equal(sub_design(d2, top, n, d).astype(np.float32),
                                               own)]
                    if not found:
                        print(f"  {design_name} seed {seed}, nb_design={n}: not a prefix "
                              "of a computed design; skipped")
                        continue
                    sub_scores, sub = found[0]
                elif n != top:  # a Latin hypercube's prefix is no Latin hypercube
                    continue
                maps.append((estimator(sub_scores, n, design=sub)
                             if getattr(estimator, "reads_design", False)
                             else estimator(sub_scores, n)).numpy())
            record(label, n, n * (d + (1 if skips_b else 2)), maps)

    for label, settings in REFINED:
        for n in NB_DESIGNS[:-1] if key in LIGHT_CASES else NB_DESIGNS:
            maps = [cached(f"{key}_refine_sqrt_{n}_{seed}", lambda n=n, seed=seed:
                           (refined_indices(model, x, y, options, n, settings, seed),
                            np.zeros(0)))[0] for seed in SEEDS]
            record(label, n, refinement.passes(n, d), maps)

    # first order (explain_indices): the reference formula against the linear control
    # variate of the design-reading estimators, on the same scores
    first_reference = estimators.JansenEstimator().first_order(ref_scores,
                                                               REFERENCE_NB_DESIGN).numpy()
    first_rows = []
    for label, design_name, with_cv in FIRST_ORDER:
        for n in METRIC_NB_DESIGNS:
            errors = []
            for (name, seed), (scores, design) in full.items():
                if name != design_name:
                    continue
                sub_scores, sub = sub_design(scores, top, n, d), sub_design(design, top, n, d)
                first = (estimators.first_order_with_linear_cv(sub_scores, n, sub) if with_cv
                         else estimators.JansenEstimator().first_order(sub_scores, n))
                errors.append(pearson_error(first.numpy(), first_reference))
            errors = np.concatenate(errors)
            first_rows.append(dict(label=label, n=n, passes=n * (d + 2), mean=errors.mean(),
                                   sd=errors.std()))

    # Deletion / Insertion at nb_design 16 and 32 (seed-averaged scores)
    metrics = {}
    try:
        common = dict(batch_size=BATCH_SIZE, steps=10, max_percentage_perturbed=0.5,
                      baseline_mode=0.0)
        deletion = Deletion(model, x, y, **common)
        insertion = Insertion(model, x, y, **common)
        explainer._prepare_inputs(x, y)
        # per input (N,): the areas of its curves, averaged over the seeds' maps
        metrics["reference (nb_design 1024)"] = tuple(
            metric.curves(to_input_maps(explainer, reference, x)).areas
            for metric in (deletion, insertion))
        for (label, n), all_indices in metric_maps.items():
            values = [[metric.curves(to_input_maps(explainer, indices, x)).areas
                       for metric in (deletion, insertion)] for indices in all_indices]
            metrics[(label, n)] = tuple(np.mean(values, axis=0))  # (2, N)
    except Exception as error:  # noqa: BLE001 (reported in the table)
        print(f"  Deletion/Insertion failed on {title}: {error}")
    seconds = time.perf_counter() - start
    print(f"{title}: d={d}, {seconds:.0f} s" + (
        f", test accuracy {accuracy:.3f}" if accuracy is not None else ""))
    # how hard the map is to estimate: its spread over the cells (sd / mean; a flat map
    # needs small errors) and the sum of its total indices (> 1: interactions)
    hardness = dict(spread=float(np.mean(reference.std(1) / reference.mean(1))),
                    total=float(np.mean(reference.sum(1))))
    return dict(title=title, d=d, rows=rows, curves=curves, metrics=metrics,
                accuracy=accuracy, seconds=seconds, floor=floor, first_rows=first_rows,
                hardness=hardness)


def _layout_and_channels(explainer, x):
    explainer._prepare_inputs(x, None)
    images = explainer._layout.to_engine(x)
    return explainer._layout, images.shape[-1]


def _dimension(explainer, x):
    return int(np.prod(explainer._cells_of(*_layout_and_channels(explainer, x))))


# -- report -----------------------------------------------------------------------------
def write_markdown(path, results, total_seconds):
    from common import machine

    from sobol_tf.attributions.sobol import EFFICIENT_SETTINGS

    lines = [
        "# Sobol from fewer forward passes (issue 26)", "",
        "Generated by `benchmarks/bench_passes.py`. Map error = 1 - Pearson r between a "
        f"map and the reference map (the paper's settings at nb_design="
        f"{REFERENCE_NB_DESIGN}: unscrambled Sobol, Jansen), per input on the cells, "
        f"over {NB_INPUTS} inputs; randomised designs over seeds {list(SEEDS)} "
        "(mean over inputs x seeds, sd over inputs x seeds, worst = the worst seed's "
        "mean over inputs). Passes = forward passes per input: nb_design * (d + 2), or "
        "nb_design * (d + 1) for the estimators that skip B. Deletion (lower is better) / "
        "Insertion (higher is better): sobol_tf.metrics, 10 steps to 50% of the "
        "features set to 0, mean over inputs (and seeds).", "",
        f"Machine: {machine()}; total {total_seconds:.0f} s.", "",
        f"EFFICIENT_SETTINGS = {EFFICIENT_SETTINGS}. The unscrambled candidates share "
        "their points with the paper's reference (its first nb_design points): the column "
        "'vs independent ref.' compares with a reference drawn from scrambled Sobol of "
        f"seed {INDEPENDENT_SEED} instead. Where the unscrambled sequence ties a cell of A "
        "and B (small nb_design), today's default falls back to scrambled seed 0: those "
        "rows use that design. Cases run without the independent reference and the Latin "
        f"hypercube designs (CPU budget): {', '.join(LIGHT_CASES)}. ",
        "Goal: 1 - r <= 0.01 at nb_design 16 (<= 1,056 passes at grid 8).", "",
        "The two-stage rows (`refine=True`, sobol_tf.attributions.refinement) are run "
        "through the explainer itself, per seed (its refinement design depends on each "
        "input's survey): a survey of nb_design / 4 base points, then the rest of the "
        "nb_design * (d + 1) passes shared among the cells in proportion to the square "
        "root of their survey index. Their passes per input are the budget, "
        "nb_design * (d + 1).", "",
    ]
    summary = [label for label, _, _ in CANDIDATES] + [label for label, _ in REFINED]
    lines += ["## Summary: 1 - r at nb_design 16 (paper's reference / independent one)", "",
              "| candidate | " + " | ".join(r["title"] for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    for label in summary:
        cells = []
        for result in results:
            row = [r for r in result["rows"] if r["label"] == label and r["n"] == 16]
            cells.append(f"{row[0]['mean']:.4f} / {row[0]['independent']:.4f}" if row
                         else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for result in results:
        row = [r for r in result["rows"] if r["label"] == CANDIDATES[0][0] and r["n"] == 32]
        cells.append(f"{row[0]['mean']:.4f} / {row[0]['independent']:.4f}" if row else "")
    lines += [f"| today's default at nb_design 32 | " + " | ".join(cells) + " |", ""]
    lines += ["How hard each map is: its spread over the cells (sd / mean of the reference "
              "map; a flat map needs small errors for the same r) and the sum of its total "
              "indices (1 for an additive model; the excess is interactions, whose Jansen "
              "terms vary most).", "",
              "| | " + " | ".join(r["title"] for r in results) + " |",
              "|---|" + "---:|" * len(results),
              "| spread of the reference map | " + " | ".join(
                  f"{r['hardness']['spread']:.2f}" for r in results) + " |",
              "| sum of the total indices | " + " | ".join(
                  f"{r['hardness']['total']:.2f}" for r in results) + " |", ""]
    default_32 = (CANDIDATES[0][0], 32)
    lines += ["## Deletion / Insertion against today's default at nb_design 32", "",
              "Paired over the inputs: mean of (candidate - today's default at nb_design 32) "
              f"over the {NB_INPUTS} inputs +- its standard error (seeds averaged per "
              "input first). Deletion: negative is better; Insertion: positive is better. "
              "A difference within about two standard errors is not one.", "",
              "| candidate | metric | " + " | ".join(r["title"] for r in results) + " |",
              "|---|---|" + "---:|" * len(results)]
    compared = [(f"{REFINED[0][0]}, nb_design 16", (REFINED[0][0], 16)),
                ("today's default at nb_design 16", (CANDIDATES[0][0], 16)),
                (f"reference (nb_design {REFERENCE_NB_DESIGN})",
                 "reference (nb_design 1024)")]
    for label, key in compared:
        for which, name in enumerate(("Deletion", "Insertion")):
            cells = []
            for result in results:
                base, other = result["metrics"].get(default_32), result["metrics"].get(key)
                if base is None or other is None:
                    cells.append("")
                    continue
                difference = np.asarray(other[which]) - np.asarray(base[which])
                error = difference.std(ddof=1) / np.sqrt(len(difference))
                cells.append(f"{difference.mean():+.3g} +- {error:.2g}")
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["## First order (explain_indices): 1 - r against the first-order map at "
              f"nb_design {REFERENCE_NB_DESIGN}", "",
              "Same scores as above (explain_indices evaluates B: nb_design * (d + 2) "
              "passes); mean over inputs (and seeds).", "",
              "| first order | nb_design | " + " | ".join(r["title"] for r in results) + " |",
              "|---|---:|" + "---:|" * len(results)]
    for label, _, _ in FIRST_ORDER:
        for n in METRIC_NB_DESIGNS:
            cells = []
            for result in results:
                row = [r for r in result["first_rows"] if r["label"] == label and r["n"] == n]
                cells.append(f"{row[0]['mean']:.4f}" if row else "")
            lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    lines.append("")
    for result in results:
        lines += [f"## {result['title']}", "",
                  f"d = {result['d']} cells" + (
                      f"; test accuracy {result['accuracy']:.3f}"
                      if result["accuracy"] is not None else "") + ".", "",
                  f"1 - r between the two references (paper's, independent): "
                  f"{result['floor']:.4f}.", "",
                  "| candidate | nb_design | passes / input | 1 - r (mean) | sd | worst seed "
                  "| seeds | 1 - r vs independent ref. | Deletion | Insertion |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in result["rows"]:
            metric = result["metrics"].get((row["label"], row["n"]))
            cells = (f"{np.mean(metric[0]):.4g} | {np.mean(metric[1]):.4g}" if metric
                     else " | ")
            lines.append(
                f"| {row['label']} | {row['n']} | {row['passes']} | {row['mean']:.4f} | "
                f"{row['sd']:.4f} | {row['worst']:.4f} | {row['seeds']} | "
                f"{row['independent']:.4f} | {cells} |")
        reference = result["metrics"].get("reference (nb_design 1024)")
        if reference:
            lines.append(f"| reference (nb_design {REFERENCE_NB_DESIGN}) | "
                         f"{REFERENCE_NB_DESIGN} | | 0 | | | | | {np.mean(reference[0]):.4g} | "
                         f"{np.mean(reference[1]):.4g} |")
        lines.append("")
    with open(path, "w") as handle:
        handle.write("\n".join(lines))


def plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4),
                                squeeze=False)
    for axis, result in zip(axes[0], results):
        for label, points in result["curves"].items():
            points = sorted(p for p in points if np.all(np.isfinite(p)))
            if not points:
                continue
            passes, means, lows, highs = (np.maximum(np.array(v), 1e-5) for v in zip(*points))
            main = "EFFICIENT" in label or label == CANDIDATES[0][0]
            line, = axis.plot(passes, means, marker="o", ms=3, label=label,
                              lw=2.4 if main else 1.0, alpha=1.0 if main else 0.6)
            if np.any(highs > lows):
                axis.fill_between(passes, lows, highs, color=line.get_color(), alpha=0.15)
        axis.axhline(0.01, color="k", lw=0.8, ls=":")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("forward passes per input")
        axis.set_title(result["title"], fontsize=8)
    axes[0][0].set_ylabel("1 - Pearson r vs nb_design 1024 (band: seeds)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    figure.tight_layout(rect=(0, 0.14, 1, 1))
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--only", nargs="*", choices=[k for k, _ in CASES.values()])
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(CACHE, exist_ok=True)
    start = time.perf_counter()
    results = [run_case(title, key, builder) for title, (key, builder) in CASES.items()
               if not args.only or key in args.only]
    total = time.perf_counter() - start
    write_markdown(os.path.join(args.out, "passes.md"), results, total)
    plot(os.path.join(args.out, "passes.png"), results)
    print(open(os.path.join(args.out, "passes.md")).read())


if __name__ == "__main__":
    main()
