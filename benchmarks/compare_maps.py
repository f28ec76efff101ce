"""Maps of the six black-box methods on fixed seeds, saved to compare two checkouts.

Run from a checkout's root (its ``sobol_tf`` is imported from the current directory)::

    cd /work/main && python /path/to/compare_maps.py save /tmp/before.npz
    cd /work/wt && python benchmarks/compare_maps.py save /tmp/after.npz
    python benchmarks/compare_maps.py diff /tmp/before.npz /tmp/after.npz

``diff`` prints the largest absolute difference per call and fails when one exceeds
float32 rounding (1e-5 relative to the map's scale).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _calls():
    import keras
    import numpy as np
    import tensorflow as tf

    from sobol_tf.attributions import (HsicAttributionMethod, KernelShap, Lime, Occlusion,
                                       Rise, SobolAttributionMethod)
    from sobol_tf.attributions import base as base_module
    from sobol_tf.attributions import samplers

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    rows = rng.normal(size=(3, 6)).astype(np.float32)
    series = rng.normal(size=(3, 10, 2)).astype(np.float32)
    ids = np.array([[5, 3, 7, 2, 9, 0, 0], [1, 4, 4, 8, 6, 3, 2], [7, 7, 2, 0, 0, 0, 0]],
                   np.int32)
    w_img = rng.normal(size=(8, 8, 3)).astype(np.float32)
    w_row = rng.normal(size=(6,)).astype(np.float32)
    w_ts = rng.normal(size=(10, 2)).astype(np.float32)
    table = rng.normal(size=(10,)).astype(np.float32)

    def head(f):
        return tf.stack([f, tf.tanh(f), f * f], axis=-1)

    def image_model(x):
        x = tf.cast(x, tf.float32)
        return head(tf.reduce_sum(x * w_img, axis=[1, 2, 3])
                    + tf.reduce_sum(x[:, :4, :4] * x[:, 4:, 4:], axis=[1, 2, 3]))

    def row_model(x):
        return head(tf.reduce_sum(x * w_row, 1) + x[:, 0] * x[:, 1])

    def ts_model(x):
        return head(tf.reduce_sum(x * w_ts, [1, 2]) + tf.reduce_sum(x[:, :5, 0] * x[:, 5:, 1], 1))

    def token_model(x):
        values = tf.gather(table, tf.cast(x, tf.int32))
        return head(tf.reduce_sum(values, 1) + values[:, 0] * values[:, 1])

    keras.utils.set_random_seed(0)
    convnet = keras.Sequential([keras.Input((8, 8, 3)),
                                keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                                keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(3, activation="softmax")])
    y_img, y_row, y_ts, y_tok = [0, 1, 2], [1, 0, 2], [2, 1, 0], [0, 0, 1]
    tok = dict(mask_token=1, pad_token=0)

    def kernel(original, samples, perturbed):  # a custom similarity: the engine path
        d = tf.reduce_sum(tf.reshape((tf.cast(perturbed, tf.float32)
                                      - tf.cast(original, tf.float32)[None]) ** 2,
                                     (tf.shape(perturbed)[0], -1)), 1)
        return tf.exp(-d / 50.0)

    def token_kernel(original, samples, perturbed):
        same = tf.cast(tf.equal(perturbed, original[None]), tf.float32)
        return tf.reduce_mean(same, 1) + tf.reduce_mean(tf.cast(samples, tf.float32), 1)

    calls = {
        "sobol_image": lambda: SobolAttributionMethod(image_model, 4, 16)(images, y_img),
        "sobol_convnet": lambda: SobolAttributionMethod(convnet, 4, 16, batch_size=50)(images, y_img),
        "sobol_seed_perchannel": lambda: SobolAttributionMethod(
            image_model, 2, 8, per_channel=True, seed=3)(images, y_img),
        "sobol_nb_channels_homma": lambda: SobolAttributionMethod(
            image_model, 2, 8, None, "homma", nb_channels=3)(images, y_img),
        "sobol_lhs_blur": lambda: SobolAttributionMethod(
            image_model, 2, 8, "lhs", None, "blurring", seed=1)(images, y_img),
        "sobol_tabular": lambda: SobolAttributionMethod(row_model, baseline=0.3)(rows, y_row),
        "sobol_series": lambda: SobolAttributionMethod(ts_model, 3, 16)(series, y_ts),
        "sobol_tokens": lambda: SobolAttributionMethod(
            token_model, perturbation_function="tokens", **tok)(ids, y_tok),
        "sobol_first": lambda: SobolAttributionMethod(image_model, 4, 16).explain_indices(
            images, y_img).first,
        "sobol_xplique_estimator": lambda: SobolAttributionMethod(
            image_model, 2, 16, samplers.ScipySobolSequenceRS(),
            lambda masks, outputs, nb: np.full(masks.shape[1:], float(np.var(outputs))))(
            images, y_img),
        "hsic_image": lambda: HsicAttributionMethod(image_model, 4, 64)(images, y_img),
        "hsic_fallback": lambda: HsicAttributionMethod(image_model, 8, 64)(images, y_img),
        "hsic_rbf_lhs": lambda: HsicAttributionMethod(image_model, 2, 32, "lhs", "rbf",
                                                      seed=2)(images, y_img),
        "hsic_sobolev_binary": lambda: HsicAttributionMethod(
            image_model, 2, 32, samplers.TFSobolSequence(binary=True), "sobolev")(images, y_img),
        "hsic_tabular": lambda: HsicAttributionMethod(row_model, nb_design=64)(rows, y_row),
        "hsic_series": lambda: HsicAttributionMethod(ts_model, 3, 64)(series, y_ts),
        "hsic_tokens": lambda: HsicAttributionMethod(
            token_model, nb_design=64, perturbation_function="tokens", **tok)(ids, y_tok),
        "rise_image": lambda: Rise(image_model, 16, None, 40, 3, seed=1)(images, y_img),
        "rise_image_tuple": lambda: Rise(image_model, 16, None, 40, (2, 3), 0.7, 0.2,
                                         seed=1)(images, y_img),
        "rise_tabular": lambda: Rise(row_model, nb_samples=40, seed=1,
                                     baseline=np.ones(6, np.float32))(rows, y_row),
        "rise_series": lambda: Rise(ts_model, nb_samples=40, grid_size=3, seed=1)(series, y_ts),
        "rise_series_none": lambda: Rise(ts_model, nb_samples=40, grid_size=None,
                                         seed=1)(series, y_ts),
        "rise_tokens": lambda: Rise(token_model, nb_samples=40, seed=1, **tok)(ids, y_tok),
        "occlusion_image": lambda: Occlusion(image_model, 16, None, 3, 2, 0.5)(images, y_img),
        "occlusion_tabular": lambda: Occlusion(row_model, patch_size=2, patch_stride=1)(rows, y_row),
        "occlusion_series": lambda: Occlusion(ts_model, patch_size=(3, 1), patch_stride=(2, 1))(series, y_ts),
        "occlusion_tokens": lambda: Occlusion(token_model, patch_size=1, patch_stride=1,
                                              **tok)(ids, y_tok),
        "lime_image": lambda: Lime(image_model, nb_samples=60, seed=0, grid_size=4)(images, y_img),
        "lime_image_cosine": lambda: Lime(image_model, 16, None, None, None, None, None, 0.2,
                                          60, "cosine", 1.0, 0.7, seed=0)(images, y_img),
        "lime_image_kernel": lambda: Lime(image_model, 16, similarity_kernel=kernel,
                                          nb_samples=60, seed=0)(images, y_img),
        "lime_mapping": lambda: Lime(image_model, nb_samples=60, seed=0,
                                     map_to_interpret_space=lambda x: tf.cast(
                                         x[..., 0] > 0.5, tf.int32))(images, y_img),
        "lime_pertub": lambda: Lime(row_model, nb_samples=60, pertub_func=lambda f, n:
                                    np.random.default_rng(5).uniform(size=(n, f)))(rows, y_row),
        "lime_tabular": lambda: Lime(row_model, nb_samples=60, seed=0,
                                     ref_value=np.arange(6.0))(rows, y_row),
        "lime_tabular_kernel": lambda: Lime(row_model, 7, similarity_kernel=kernel,
                                            nb_samples=60, seed=0)(rows, y_row),
        "lime_series": lambda: Lime(ts_model, nb_samples=60, seed=0)(series, y_ts),
        "lime_series_grid_kernel": lambda: Lime(ts_model, nb_samples=60, seed=0, grid_size=3,
                                                similarity_kernel=kernel,
                                                ref_value=[0.1, 0.2])(series, y_ts),
        "lime_tokens": lambda: Lime(token_model, nb_samples=60, seed=0, **tok)(ids, y_tok),
        "lime_tokens_kernel": lambda: Lime(token_model, 8, similarity_kernel=token_kernel,
                                           nb_samples=60, seed=0, **tok)(ids, y_tok),
        "kernelshap_image": lambda: KernelShap(image_model, nb_samples=80, seed=0,
                                               grid_size=3)(images, y_img),
        "kernelshap_tabular": lambda: KernelShap(row_model, nb_samples=80, seed=0)(rows, y_row),
        "kernelshap_series": lambda: KernelShap(ts_model, nb_samples=80, seed=0)(series, y_ts),
        "kernelshap_tokens": lambda: KernelShap(token_model, nb_samples=80, seed=0, **tok)(ids, y_tok),
    }

    def rise_uncached():
        old = base_module.MASK_CACHE_BYTES
        base_module.MASK_CACHE_BYTES = 0   # the masks upsampled batch by batch
        try:
            return Rise(image_model, 8, None, 300, 3, seed=1)(images, y_img)
        finally:
            base_module.MASK_CACHE_BYTES = old

    calls["rise_uncached"] = rise_uncached
    return calls


def save(path: str) -> None:
    import numpy as np
    import sobol_tf
    print("sobol_tf from", sobol_tf.__file__)
    results = {name: np.asarray(call()) for name, call in _calls().items()}
    np.savez(path, **results)
    print(f"{len(results)} maps saved to {path}")


def diff(before: str, after: str) -> int:
    import numpy as np
    a, b = np.load(before), np.load(after)
    worst = 0.0
    for name in a.files:
        if name not in b.files:
            print(f"{name:28s} MISSING")
            worst = np.inf
            continue
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if x.shape != y.shape:
            print(f"{name:28s} shape {x.shape} != {y.shape}")
            worst = np.inf
            continue
        scale = max(np.abs(x).max(), 1e-30)
        delta = float(np.abs(x - y).max())
        worst = max(worst, delta / scale)
        print(f"{name:28s} shape {str(x.shape):16s} max|diff| {delta:.3e}  relative {delta / scale:.3e}")
    print(f"largest relative difference: {worst:.3e}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    if sys.argv[1] == "save":
        save(sys.argv[2])
    else:
        sys.exit(diff(sys.argv[2], sys.argv[3]))
