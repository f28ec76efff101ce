"""Metric values of one fixed set of calls, as JSON on stdout, to compare two checkouts.

Run from the root of each checkout (the cwd's sobol_tf is imported):
    python benchmarks/compare_metrics.py > values.json
then compare the two files (max absolute difference per value).
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.getcwd())

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import sobol_tf  # noqa: E402
from sobol_tf.attributions import Saliency  # noqa: E402
from sobol_tf.metrics import (AverageDropMetric, AverageGainMetric,  # noqa: E402
                              AverageIncreaseMetric, AverageStability, Deletion, Insertion,
                              MuFidelity, RandomLogitMetric)


def values():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    out = {}
    images = rng.uniform(size=(4, 8, 8, 3)).astype(np.float32)
    convnet = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                                keras.layers.Flatten(), keras.layers.Dense(3)])
    labels = np.array([0, 1, 2, 1])
    maps = rng.normal(size=(4, 8, 8)).astype(np.float32)
    for name, cls in (("deletion", Deletion), ("insertion", Insertion)):
        metric = cls(convnet, images, labels, batch_size=7, baseline_mode=0.3, steps=6)
        out[name] = metric.curves(maps).scores.ravel().tolist()
    out["mufidelity"] = MuFidelity(convnet, images, labels, batch_size=9, grid_size=4,
                                   nb_samples=30, seed=1).detailed_evaluate(maps).tolist()
    out["mufidelity_pixels"] = MuFidelity(convnet, images, labels, grid_size=None,
                                          nb_samples=20, seed=2,
                                          baseline_mode=0.5).detailed_evaluate(maps).tolist()
    for name, cls in (("drop", AverageDropMetric), ("increase", AverageIncreaseMetric),
                      ("gain", AverageGainMetric)):
        metric = cls(convnet, images, labels, batch_size=3, activation="softmax")
        out[name] = metric.detailed_evaluate(maps).tolist()
        out[name + "_other"] = metric.detailed_evaluate(images[:2], labels[:2],
                                                        maps[:2]).tolist()
    # tabular
    rows = rng.normal(size=(5, 6)).astype(np.float32)
    dense = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    attributions = rng.normal(size=(5, 6)).astype(np.float32)
    out["deletion_tabular"] = Deletion(dense, rows, np.array([0, 1, 0, 1, 0]),
                                       steps=-1).curves(attributions).scores.ravel().tolist()
    out["mufidelity_tabular"] = MuFidelity(dense, rows, np.array([0, 1, 0, 1, 0]),
                                           nb_samples=25,
                                           seed=3).detailed_evaluate(attributions).tolist()
    # tokens with padding
    tokens = rng.integers(2, 20, size=(3, 7))
    tokens[0, 5:] = 0
    tokens[2, 3:] = 0
    embed = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(20, 3),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    token_maps = rng.normal(size=(3, 7)).astype(np.float32)
    out["insertion_tokens"] = Insertion(embed, tokens, np.array([0, 1, 1]), baseline_mode=1,
                                        steps=4, pad_token=0).curves(
        token_maps).scores.ravel().tolist()
    out["mufidelity_tokens"] = MuFidelity(embed, tokens, np.array([0, 1, 1]),
                                          baseline_mode=1, nb_samples=20, seed=4,
                                          pad_token=0).detailed_evaluate(token_maps).tolist()
    out["drop_tokens"] = AverageDropMetric(embed, tokens, np.array([0, 1, 1]), mask_token=1,
                                           pad_token=0, activation="softmax"
                                           ).detailed_evaluate(token_maps).tolist()
    # time series
    series = rng.normal(size=(3, 10, 2)).astype(np.float32)
    recurrent = keras.Sequential([keras.Input((10, 2)), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
    out["mufidelity_series"] = MuFidelity(recurrent, series, np.array([0, 1, 0]),
                                          grid_size=5, nb_samples=20, seed=5).detailed_evaluate(
        rng.normal(size=(3, 10, 2))).tolist()
    out["deletion_series"] = Deletion(recurrent, series, np.array([0, 1, 0]), steps=5).curves(
        rng.normal(size=(3, 10))).scores.ravel().tolist()
    # explainer metrics
    out["stability"] = [AverageStability(convnet, images, labels, batch_size=5, nb_samples=3,
                                         seed=0).evaluate(Saliency(convnet))]
    out["random_logit"] = RandomLogitMetric(dense, rows, np.array([0, 1, 0, 1, 0]),
                                            similarity="spearman").detailed_evaluate(
        Saliency(dense)).tolist()
    # explainers' maps (the same perturbation path as the metrics)
    from sobol_tf.attributions import (HsicAttributionMethod, Occlusion, Rise,
                                       SobolAttributionMethod)
    out["sobol"] = SobolAttributionMethod(convnet, grid_size=4, nb_design=8, batch_size=13
                                          )(images, labels).numpy().ravel().tolist()
    out["rise"] = Rise(convnet, nb_samples=40, grid_size=3, batch_size=16, seed=0
                       )(images, labels).numpy().ravel().tolist()
    out["occlusion"] = Occlusion(convnet, patch_size=3, patch_stride=2, batch_size=5
                                 )(images, labels).numpy().ravel().tolist()
    out["hsic"] = HsicAttributionMethod(convnet, grid_size=4, nb_design=24, batch_size=10,
                                        )(images, labels).numpy().ravel().tolist()
    out["sobol_tabular"] = SobolAttributionMethod(dense, nb_design=8)(
        rows, np.array([0, 1, 0, 1, 0])).numpy().ravel().tolist()
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3:  # compare two JSON files
        first, second = (json.load(open(path)) for path in sys.argv[1:])
        for key in first:
            a, b = np.asarray(first[key]), np.asarray(second[key])
            print(f"{key:22s} max |diff| = {np.max(np.abs(a - b)):.3g}")
    else:
        print(json.dumps(values()))
