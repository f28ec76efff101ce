"""Stability benchmark of attribution methods on cluttered digits (`make bench-quality`).

The thesis' second axis after fidelity: how stable is an explanation? On the cluttered
digits of benchmarks/bench_quality.py (same data, same convnet, same method settings),
every method is scored with

- MeGe and ReCo (Fel, Vigouroux et al., WACV 2022; ``sobol_tf.metrics.MeGe``): the
  training set is cut into k = 4 folds and model i is trained on every fold but i; the
  explanations that two models give of the same canvas, one of them having never seen
  it, are compared with the Spearman-rank distance. MeGe = 1 / (1 + mean distance when
  both models predict the right class) (higher: explanations generalise across models);
  ReCo = max over thresholds of TPR + TNR - 1 separating those distances from the ones
  where the models disagree (higher: explanations are consistent).
- AverageStability (Bhatt et al., 2020; ``sobol_tf.metrics.AverageStability``): the mean
  L2 distance between the map of an input and the maps of noisy copies of it (lower is
  better). It is not scale free (maps of different methods have different units), so the
  table also gives it relative to the norm of the input's own map.
- Complexity (entropy of |map|, lower: more concentrated) and Sparseness (Gini index of
  |map|, higher: sparser) (``sobol_tf.metrics.Complexity`` / ``Sparseness``).

Every explanation is computed once and shared: the maps each of the k models gives of
the explained canvases (MeGe's inputs) are recorded while MeGe evaluates the method, and
reused by Complexity, Sparseness and as AverageStability's maps of the unperturbed
inputs. Every number is computed in the run; nothing is read from elsewhere.

Writes <out>/stability.md (next to quality.md).
Usage: python benchmarks/bench_stability.py [--quick] [--seed 0] [--out DIR]
"""
import argparse
import inspect
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the benchmark measures the sobol_tf next to it, not whichever one is installed
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import numpy as np  # noqa: E402

from bench_quality import (BATCH_SIZE, CANVAS, available_methods, build_model,  # noqa: E402
                           cluttered_sets, describe, mean_se)
from common import machine, markdown_table, print_table  # noqa: E402

#: k of MeGe: models trained on k - 1 of k folds.
K_SPLITS = 4
#: nb_train: canvases cut into K_SPLITS folds (each model trains on 3/4 of them);
#: per_fold: canvases of each fold explained (MeGe's inputs: K_SPLITS * per_fold);
#: nb_samples, radius: AverageStability's noisy copies of each canvas of fold 0,
#: explained with model 0 (which never saw them).
FULL = dict(nb_train=6000, nb_test=1000, epochs=6, per_fold=10, nb_samples=10, radius=0.1)
QUICK = dict(nb_train=2000, nb_test=200, epochs=4, per_fold=2, nb_samples=3, radius=0.1)
#: bootstrap resamples of the explained canvases for the standard errors of MeGe, ReCo.
NB_BOOTSTRAP = 500
RANDOM = "Random map (reference)"


def fold_sets(images, labels, k, per_fold):
    """Cut ``images`` into ``k`` contiguous folds; (folds, explained): fold j's images and
    labels, and the first ``per_fold`` canvases of every fold, fold after fold (MeGe's
    inputs: MeGe cuts its inputs into k contiguous splits, so split j is fold j's)."""
    size = len(images) // k
    if per_fold > size:
        raise ValueError(f"per_fold={per_fold} is more than a fold holds ({size}).")
    folds = [(images[j * size:(j + 1) * size], labels[j * size:(j + 1) * size])
             for j in range(k)]
    explained = (np.concatenate([fold[0][:per_fold] for fold in folds]),
                 np.concatenate([fold[1][:per_fold] for fold in folds]))
    return folds, explained


class FoldTrainer:
    """MeGe's ``learning_algorithm``: called with (x_train, y_train, x_test, y_test), the
    explained canvases of k - 1 folds and of the one left out, it trains the convnet of
    bench_quality on the *whole* of those k - 1 folds (their explained canvases and the
    rest), so the model never saw any canvas of the fold left out and saw every other.

    Records, per model, the fold left out, the training seconds and the accuracy on the
    held-out test canvases.
    """

    def __init__(self, folds, explained_per_fold, test_set, epochs, seed):
        self.folds, self.per_fold = folds, explained_per_fold
        self.test_set, self.epochs, self.seed = test_set, epochs, seed
        self.records = []

    def left_out(self, x_test):
        for j, (images, _) in enumerate(self.folds):
            if len(x_test) == self.per_fold and np.array_equal(images[:self.per_fold], x_test):
                return j
        raise RuntimeError("x_test is none of the folds' explained canvases: MeGe's "
                           "splits are not the folds this benchmark cut.")

    def __call__(self, x_train, y_train, x_test, y_test):
        import keras

        left = self.left_out(np.asarray(x_test))
        kept = [j for j in range(len(self.folds)) if j != left]
        expected = np.concatenate([self.folds[j][0][:self.per_fold] for j in kept])
        if not np.array_equal(np.asarray(x_train), expected):
            raise RuntimeError("x_train is not the explained canvases of the other folds.")
        images = np.concatenate([self.folds[j][0] for j in kept])
        labels = np.concatenate([self.folds[j][1] for j in kept])
        start = time.perf_counter()
        model = build_model(self.seed + left)
        batch = 64
        schedule = keras.optimizers.schedules.CosineDecay(
            2e-3, decay_steps=self.epochs * -(-len(images) // batch))
        model.compile(keras.optimizers.Adam(schedule),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(images, labels, epochs=self.epochs, batch_size=batch, verbose=0)
        _, accuracy = model.evaluate(self.test_set.images, self.test_set.labels,
                                     batch_size=512, verbose=0)
        seconds = time.perf_counter() - start
        self.records.append(dict(left_out=left, seconds=seconds, accuracy=accuracy,
                                 nb_train=len(images)))
        print(f"  model {len(self.records)}/{len(self.folds)} (fold {left} left out): "
              f"{len(images)} canvases, {self.epochs} epochs, {seconds:.0f} s, test "
              f"accuracy {accuracy:.3f}", flush=True)
        return model


class RandomMaps:
    """The reference: uniform noise maps, the same shape as the inputs' (N, H, W, 1)."""

    instances = 0

    def __init__(self, model=None, seed=0, **_):
        # one stream per instance: the maps of two models are independent
        self.rng = np.random.default_rng([seed, RandomMaps.instances])
        RandomMaps.instances += 1

    def __call__(self, inputs, targets=None):
        return self.rng.uniform(size=np.shape(inputs)[:3] + (1,)).astype(np.float32)

    explain = __call__


class Recorder:
    """An ``explainer_class`` for MeGe that builds the real explainer and records the maps
    it returns for each model (keyed by the model object), with the seconds spent; the
    explainer of each model is kept for reuse."""

    def __init__(self, explainer_class):
        self.explainer_class = explainer_class
        self.maps, self.explainers, self.seconds = {}, {}, 0.0

    def __call__(self, model, **params):
        explainer = self.explainer_class(model, **params)
        self.explainers[id(model)] = explainer
        return Recorded(explainer, self, id(model))

    def maps_of(self, models):
        """(k, N, ...) maps: each model's (concatenated over its calls)."""
        return np.stack([np.concatenate(self.maps[id(model)]) for model in models])


class Recorded:
    """An explainer whose maps (and seconds) go to a :class:`Recorder`."""

    def __init__(self, explainer, recorder, key):
        self.explainer, self.recorder, self.key = explainer, recorder, key

    def __call__(self, inputs, targets=None):
        start = time.perf_counter()
        maps = np.asarray(self.explainer(inputs, targets))
        self.recorder.seconds += time.perf_counter() - start
        self.recorder.maps.setdefault(self.key, []).append(maps)
        return maps

    explain = __call__

def spearman_distances(maps_a, maps_b):
    """sqrt(1 - |Spearman's rho|) between paired maps (N, ...) (channels averaged, ties
    ranked by their mean rank); NaN where a map is constant."""
    from scipy.stats import rankdata

    def flat(maps):
        maps = np.nan_to_num(np.asarray(maps, np.float64))
        if maps.ndim == 4:
            maps = maps.mean(axis=-1)
        return maps.reshape(len(maps), -1)

    ranks_a = rankdata(flat(maps_a), axis=1)
    ranks_b = rankdata(flat(maps_b), axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ranks_a * ranks_b).sum(1) / np.sqrt((ranks_a ** 2).sum(1) * (ranks_b ** 2).sum(1))
    return np.sqrt(1.0 - np.abs(rho))


def pair_table(maps, predictions, labels, per_fold):
    """Every (input n, model pair i < j) MeGe compares: one of the two models never saw
    input n (its fold is i or j) and at least one predicts its label. Rows of
    (n, distance, same prediction); pairs whose distance is NaN (a constant map) dropped,
    as MeGe drops them."""
    k, n_inputs = predictions.shape
    rows = []
    for i in range(k):
        for j in range(i + 1, k):
            distances = spearman_distances(maps[i], maps[j])
            for n in range(n_inputs):
                if n // per_fold not in (i, j):
                    continue
                if labels[n] not in (predictions[i, n], predictions[j, n]):
                    continue
                if np.isnan(distances[n]):
                    continue
                rows.append((n, distances[n], predictions[i, n] == predictions[j, n]))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def mege_reco(distances, same):
    """MeGe = 1 / (1 + mean distance of agreeing pairs); ReCo = sup over thresholds g of
    TPR + TNR - 1, TPR the share of agreeing pairs closer than g, TNR the share of
    disagreeing pairs farther than g (the paper's definition: the supremum over every
    real g, reached just above one of the distances). 0 when one of the sets is empty."""
    same = same.astype(bool)
    s_eq, s_ne = distances[same], distances[~same]
    mege = 1.0 / (1.0 + s_eq.mean()) if len(s_eq) else np.nan
    if not len(s_eq) or not len(s_ne):
        return mege, 0.0
    reco = 0.0
    for gamma in np.unique(distances):       # g just above gamma
        tpr = np.mean(s_eq <= gamma)
        tnr = np.mean(s_ne > gamma)
        reco = max(reco, tpr + tnr - 1.0)
    return mege, reco


def check_pairs(mege, pairs):
    """The pairs recomputed here must be MeGe's own (its ``last_distances``, when it
    exposes them): the same distances, both right / one right, as multisets."""
    distances = getattr(mege, "last_distances", None)
    if distances is None:
        return
    for key, same in (("equal", 1), ("different", 0)):
        mine = np.sort(pairs[pairs[:, 2] == same, 1])
        theirs = np.sort(np.asarray(distances[key], np.float64))
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, atol=1e-9):
            raise RuntimeError(f"the {key} pairs recomputed for the standard errors "
                               f"({len(mine)}) are not MeGe's ({len(theirs)}).")


def bootstrap_se(pairs, nb_inputs, seed, nb_resamples=NB_BOOTSTRAP):
    """Standard errors of (MeGe, ReCo): the explained canvases resampled with replacement
    (each with all its model pairs), the two recomputed, their standard deviation."""
    rng = np.random.default_rng(seed)
    by_input = [pairs[pairs[:, 0] == n] for n in range(nb_inputs)]
    values = []
    for _ in range(nb_resamples):
        chosen = rng.integers(0, nb_inputs, nb_inputs)
        sample = np.concatenate([by_input[n] for n in chosen])
        if len(sample):
            values.append(mege_reco(sample[:, 1], sample[:, 2]))
    values = np.array(values, np.float64)
    return tuple(np.nanstd(values, axis=0, ddof=1)) if len(values) > 1 else (0.0, 0.0)


def accepts(callable_, name):
    try:
        return name in inspect.signature(callable_).parameters
    except (TypeError, ValueError):
        return False


def complexity_scores(metric, maps):
    """Per-map scores of a Complexity / Sparseness metric: its detailed_evaluate when it
    has one, else evaluate() map by map (the mean of one map is its score)."""
    if hasattr(metric, "detailed_evaluate"):
        return np.asarray(metric.detailed_evaluate(maps), np.float64)
    return np.array([metric.evaluate(maps[i:i + 1]) for i in range(len(maps))])


class RecordingL2:
    """AverageStability's ``distance``: the L2 distance of its 'l2' (over all the values of
    the two maps), recorded pair by pair. The metric calls a callable distance on each
    (noisy map, clean map) pair, neighbour k of input n at call n * nb_samples + k; the
    clean map of each call is checked against the base map of that input, so a change of
    that order is caught rather than silently misattributed."""

    def __init__(self, base, nb_samples):
        self.base = np.asarray(base, np.float32)
        self.nb_samples = nb_samples
        self.values = []

    def __call__(self, noisy_map, clean_map):
        owner = len(self.values) // self.nb_samples
        expected = self.base[owner].reshape(np.shape(clean_map))
        if not np.array_equal(np.asarray(clean_map, np.float32), expected):
            raise RuntimeError("AverageStability called its distance in another order than "
                               "input after input: per-input values unknown.")
        value = float(np.sqrt(np.sum((np.asarray(noisy_map, np.float64)
                                      - np.asarray(clean_map, np.float64)) ** 2)))
        self.values.append(value)
        return value

    def per_input(self):
        return np.asarray(self.values).reshape(-1, self.nb_samples).mean(axis=1)


def stability_scores(metric_class, explainer, base, model, inputs, targets, **options):
    """Per-input AverageStability (mean L2 distance over its noisy copies) and the
    metric's score (their mean), from one evaluate() with the recorded L2 distance;
    ``base``: the maps of ``inputs`` already computed."""
    recording = RecordingL2(base, options["nb_samples"])
    metric = metric_class(model, inputs, targets, distance=recording, **options)
    score = float(metric.evaluate(explainer, base_explanations=base))
    values = recording.per_input()
    if len(values) != len(inputs) or not np.isclose(score, values.mean(), rtol=1e-6,
                                                    atol=1e-12):
        raise RuntimeError(f"AverageStability {score} is not the mean of the "
                           f"{len(values)} recorded per-input distances.")
    return values, score


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small training set, 4 epochs, 2 canvases per fold")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, models, methods")
    parser.add_argument("--per-fold", type=int, help="canvases explained per fold")
    parser.add_argument("--nb-samples", type=int, help="AverageStability's noisy copies")
    parser.add_argument("--epochs", type=int, help="training epochs of each model")
    parser.add_argument("--methods", help="comma-separated names of methods to run "
                                          "(default: all of bench_quality's)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; "
                                      "outputs/quality-quick with --quick)")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("per_fold", "nb_samples", "epochs"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    out = args.out or ("outputs/quality-quick" if args.quick else
                       os.path.join(HERE, "results"))
    os.makedirs(out, exist_ok=True)
    run_start = time.perf_counter()

    from sobol_tf.metrics import AverageStability, Complexity, MeGe, Sparseness

    train_set, test_set = cluttered_sets(sizes["nb_train"], sizes["nb_test"], args.seed)
    folds, (inputs, labels) = fold_sets(train_set.images, train_set.labels, K_SPLITS,
                                        sizes["per_fold"])
    targets = np.eye(10, dtype=np.float32)[labels]
    print(f"machine: {machine()}")
    print(f"training {K_SPLITS} models, each on {K_SPLITS - 1} of {K_SPLITS} folds of "
          f"{len(train_set.images)} canvases", flush=True)
    trainer = FoldTrainer(folds, sizes["per_fold"], test_set, sizes["epochs"], args.seed)
    start = time.perf_counter()
    # no seed for MeGe: it would shuffle the inputs before cutting its splits, which must
    # stay the folds (each model's seed is set by the trainer)
    mege = MeGe(trainer, inputs, targets, batch_size=BATCH_SIZE, k_splits=K_SPLITS)
    train_seconds = time.perf_counter() - start
    models = list(mege.models)
    predictions = np.stack([np.argmax(model.predict(inputs, batch_size=BATCH_SIZE, verbose=0),
                                      axis=-1) for model in models])
    # AverageStability: fold 0's explained canvases, model 0 (it never saw them)
    stable_inputs, stable_targets = inputs[:sizes["per_fold"]], targets[:sizes["per_fold"]]
    stability_options = dict(batch_size=BATCH_SIZE, radius=sizes["radius"],
                             nb_samples=sizes["nb_samples"])
    if accepts(AverageStability, "seed"):
        stability_options["seed"] = args.seed
    complexity, sparseness = Complexity(), Sparseness()

    methods, missing = available_methods(args.seed)
    if missing:
        print(f"not exported by sobol_tf.attributions, skipped: {', '.join(missing)}")
    methods.append((RANDOM, RandomMaps, dict(seed=args.seed)))
    if args.methods:
        wanted = {name.strip() for name in args.methods.split(",")}
        methods = [method for method in methods if method[0] in wanted]
    results, rows = {}, []
    for name, explainer_class, settings in methods:
        params = dict(settings) if explainer_class is RandomMaps else dict(
            settings, batch_size=BATCH_SIZE)
        recorder = Recorder(explainer_class)
        start = time.perf_counter()
        mege_value, reco_value = mege.evaluate(recorder, params)
        maps = recorder.maps_of(models)                          # (k, N, H, W, 1)
        pairs = pair_table(maps, predictions, labels, sizes["per_fold"])
        mine = mege_reco(pairs[:, 1], pairs[:, 2])
        check_pairs(mege, pairs)
        mege_se, reco_se = bootstrap_se(pairs, len(inputs), args.seed)
        mege_seconds = time.perf_counter() - start

        start = time.perf_counter()
        explainer = recorder.explainers[id(models[0])]    # its graphs are built
        base = maps[0][:sizes["per_fold"]]
        distances, stability_value = stability_scores(
            AverageStability, explainer, base, models[0], stable_inputs, stable_targets,
            **stability_options)
        stability_seconds = time.perf_counter() - start
        norms = np.sqrt((np.asarray(base, np.float64) ** 2).reshape(len(base), -1).sum(1))

        flat_maps = maps.reshape((-1,) + maps.shape[2:])
        per_input = lambda scores: scores.reshape(len(models), -1).mean(axis=0)  # noqa: E731
        complexity_values = per_input(complexity_scores(complexity, flat_maps))
        sparseness_values = per_input(complexity_scores(sparseness, flat_maps))
        results[name] = dict(
            mege=(float(mege_value), mege_se), reco=(float(reco_value), reco_se),
            mine=mine, nb_pairs=(int(pairs[:, 2].sum()), int(len(pairs) - pairs[:, 2].sum())),
            stability=mean_se(distances),
            relative=mean_se(distances / np.maximum(norms, 1e-12)),
            complexity=mean_se(complexity_values), sparseness=mean_se(sparseness_values),
            seconds=(recorder.seconds, mege_seconds, stability_seconds))
        rows.append(table_row(name, results[name]))
        print(f"  {name}: MeGe {mege_value:.3f} (recomputed {mine[0]:.3f}), ReCo "
              f"{reco_value:.3f} (recomputed {mine[1]:.3f}), AverageStability "
              f"{stability_value:.4g}; {mege_seconds:.0f} s + {stability_seconds:.0f} s",
              flush=True)

    header = HEADER
    print_table(f"Stability benchmark, k={K_SPLITS}, N={len(inputs)} (mean ± standard error)",
                header, rows)
    total_seconds = time.perf_counter() - run_start
    write_markdown(os.path.join(out, "stability.md"), header, rows, methods, results,
                   trainer.records, train_set, test_set, sizes, args.seed, total_seconds,
                   train_seconds)
    print(f"\nwrote {out}/stability.md (run took {total_seconds:.0f} s)")
    return results


HEADER = ["method", "MeGe ↑", "ReCo ↑", "AvgStability ↓", "AvgStability / ‖φ‖ ↓",
          "Complexity ↓", "Sparseness ↑", "s: k×N maps", "s: MeGe", "s: AvgStab"]


def cell(value, digits=3):
    mean, se = value
    if se is None:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {se:.2g}"


def table_row(name, result):
    relative = result["relative"]
    return [name, cell(result["mege"]), cell(result["reco"]), cell(result["stability"]),
            cell(relative) if relative is not None else "-", cell(result["complexity"]),
            cell(result["sparseness"])] + [f"{s:.1f}" for s in result["seconds"]]


def write_markdown(path, header, rows, methods, results, records, train_set, test_set,
                   sizes, seed, total_seconds, train_seconds):
    per_fold, nb_inputs = sizes["per_fold"], K_SPLITS * sizes["per_fold"]
    accuracies = ", ".join(f"{record['accuracy']:.1%}" for record in records)
    pairs = {name: result["nb_pairs"] for name, result in results.items()}
    lines = [
        f"Machine: {machine()}. Seed {seed}; whole run {total_seconds:.0f} s (training "
        f"the {K_SPLITS} models {train_seconds:.0f} s).",
        "",
        f"Data and model: those of quality.md (cluttered {CANVAS}x{CANVAS} digits, the "
        f"small convnet). {len(train_set.images)} training canvases cut into "
        f"k = {K_SPLITS} folds; model i trained on the {K_SPLITS - 1} other folds "
        f"({records[0]['nb_train'] if records else '?'} canvases) for {sizes['epochs']} "
        f"epochs (Adam, cosine decay), by MeGe's learning_algorithm; test accuracies "
        f"{accuracies} on {len(test_set.images)} held-out canvases. Explained: the first "
        f"{per_fold} canvases of each fold (N = {nb_inputs}), for their label.",
        "",
    ]
    lines += markdown_table(header, rows)
    lines += [
        "",
        "- MeGe, ReCo: `MeGe(learning_algorithm, inputs, targets, batch_size="
        f"{BATCH_SIZE}, k_splits={K_SPLITS})`, `evaluate(method, settings)`. ± : bootstrap "
        f"standard error ({NB_BOOTSTRAP} resamples of the N canvases, each with all its "
        "model pairs; the Spearman distances recomputed by this script from the same maps, "
        "which give the class' values). Pairs compared (both right / one right): "
        + ", ".join(f"{name} {eq}/{ne}" for name, (eq, ne) in pairs.items()) + ".",
        f"- AverageStability: `AverageStability(model_0, fold 0's {per_fold} canvases, "
        f"labels, radius={sizes['radius']}, distance='l2', nb_samples={sizes['nb_samples']})`"
        ", model 0 never saw them; its maps of the canvases themselves are those recorded "
        "for MeGe. ± over the canvases. AvgStability / ‖φ‖: each canvas' mean distance "
        "divided by the L2 norm of its own map (scale free: maps of different methods "
        "have different units, so only this column compares methods).",
        "- Complexity, Sparseness: on the k × N maps recorded for MeGe, averaged over the "
        "k models per canvas; ± over the N canvases.",
        "- Seconds: s: k×N maps, the explanations MeGe asked for (graphs built on first "
        "call included); s: MeGe, those plus the distances and bootstrap; s: AvgStab, the "
        f"noisy copies' maps and distances. Batch size {BATCH_SIZE}, a CPU shared with "
        "other jobs.",
        "- Settings (bench_quality's): " + "; ".join(
            f"{name}: {describe(options)}" for name, _, options in methods) + ".",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
