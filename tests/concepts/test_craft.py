"""CRAFT (sobol_tf.concepts): concepts known by construction, importances equal to our
Sobol estimator applied by hand, seeds, Xplique's shapes, and bad input."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("sklearn")

from sobol_tf.attributions import estimators, samplers  # noqa: E402
from sobol_tf.concepts import CraftManagerTf, CraftTf, NotFittedError  # noqa: E402
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning  # noqa: E402

SIZE, PATCH, POOL = 16, 8, 4


def planted_images(n=6, seed=0):
    """Images (n, 16, 16, 2): pattern A, a 4x4 block in channel 0, and pattern B, a 4x4
    block in channel 1, each at a random place (pattern A twice as bright in odd images)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIZE, SIZE, 2), np.float32)
    for i in range(n):
        for channel, brightness in ((0, 1.0 + i % 2), (1, 1.0)):
            row, col = rng.integers(0, SIZE - 4, size=2)
            images[i, row:row + 4, col:col + 4, channel] = brightness
    return images


def g(images):
    """Latent model: channels 0-1 respond to pattern A, channels 2-3 to pattern B."""
    pooled = tf.nn.relu(tf.nn.avg_pool2d(images, POOL, POOL, "VALID"))
    return tf.concat([pooled[..., :1], 2.0 * pooled[..., :1], pooled[..., 1:], pooled[..., 1:]],
                     axis=-1)


def h(activations):
    """Logit model: class 0 reads only pattern A's channels, class 1 only pattern B's."""
    class_a = tf.reduce_mean(tf.tanh(activations[..., 0] + activations[..., 1]), axis=(1, 2))
    class_b = tf.reduce_mean(tf.tanh(activations[..., 2] + activations[..., 3]), axis=(1, 2))
    return tf.stack([class_a, class_b], axis=-1)


def fitted(number_of_concepts=2, class_id=0, **options):
    craft = CraftTf(g, h, number_of_concepts, 16, PATCH, **options)
    craft.fit(planted_images(), class_id)
    return craft


def concept_of_pattern_a(bank):
    share_a = bank[:, :2].sum(axis=1) / bank.sum(axis=1)
    return int(np.argmax(share_a)), share_a


def test_the_concept_of_the_driving_pattern_is_the_most_important():
    craft = fitted(seed=0)
    concept_a, share_a = concept_of_pattern_a(craft.factorization.concept_bank_w)
    assert share_a[concept_a] > 0.9 and share_a[1 - concept_a] < 0.15  # near pure
    importances = craft.estimate_importance(nb_design=16)
    assert int(np.argmax(importances)) == concept_a
    assert importances[concept_a] > 0.5 and importances[1 - concept_a] < 0.05
    np.testing.assert_array_equal(craft.sensitivity.importances, importances)
    assert list(craft.sensitivity.most_important_concepts) == [concept_a, 1 - concept_a]


def test_removing_the_most_important_concept_lowers_the_logit_more():
    craft = fitted(number_of_concepts=3, seed=0)
    importances = craft.estimate_importance(nb_design=16)
    most, least = int(np.argmax(importances)), int(np.argmin(importances))
    coefficients = craft.transform(planted_images())
    bank = craft.factorization.concept_bank_w

    def logit(u):
        return h(tf.constant(u @ bank))[:, 0].numpy().mean()

    full = logit(coefficients)
    drops = {}
    for concept in (most, least):
        without = coefficients.copy()
        without[..., concept] = 0.0
        drops[concept] = full - logit(without)
    assert drops[most] > drops[least] + 0.1
    assert drops[most] > 0.2 * full


def test_importances_equal_our_sobol_estimator_applied_by_hand():
    nb_design, class_id = 8, 1
    craft = fitted(number_of_concepts=3, class_id=class_id, seed=0)  # default sampler:
    # Xplique's HaltonSequenceRS, the unscrambled Halton sequence
    images = planted_images()[:3]
    importances = craft.estimate_importance(images, nb_design=nb_design)
    masks = samplers.HaltonSequence(scramble=False)(3, nb_design)
    coefficients = craft.transform(images)
    bank = craft.factorization.concept_bank_w
    per_image = []
    for u in coefficients:  # (h, w, R)
        perturbed = (u[None] * masks[:, None, None, :]) @ bank
        scores = h(tf.constant(perturbed, tf.float32))[:, class_id].numpy()
        per_image.append(estimators.JansenEstimator()(scores, nb_design).numpy())
    np.testing.assert_allclose(importances, np.mean(per_image, axis=0), rtol=1e-4,
                               atol=1e-6)


def test_an_estimator_by_name_and_local_importances_of_one_image():
    craft = fitted(seed=0, estimator="homma")
    image = planted_images()[1]
    local = craft.estimate_importance(image, nb_design=8)
    assert local.shape == (2,) and craft.sensitivity is None  # local: not stored
    concept_a, _ = concept_of_pattern_a(craft.factorization.concept_bank_w)
    assert int(np.argmax(local)) == concept_a


def test_the_same_seed_gives_the_same_concepts_and_importances():
    results = []
    for _ in range(2):
        craft = CraftTf(g, h, 3, 16, PATCH, sampler="monte_carlo", seed=7)
        crops, crops_u, bank = craft.fit(planted_images(), 0)
        results.append((crops, crops_u, bank, craft.estimate_importance(nb_design=8)))
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)
    other = CraftTf(g, h, 3, 16, PATCH, sampler="monte_carlo", seed=8)
    other.fit(planted_images(), 0)
    assert not np.array_equal(other.estimate_importance(nb_design=8), results[0][3])


def test_fit_and_transform_shapes_and_values_as_xplique_documents():
    images = planted_images()
    craft = CraftTf(g, h, number_of_concepts=3, batch_size=None, patch_size=PATCH, seed=0)
    crops, crops_u, bank = craft.fit(images, class_id=0)
    stride = int(0.8 * PATCH)
    positions = (SIZE - PATCH) // stride + 1
    assert crops.shape == (len(images) * positions ** 2, PATCH, PATCH, 2)
    np.testing.assert_array_equal(crops[1], images[0, :PATCH, stride:stride + PATCH])
    assert crops_u.shape == (len(crops), 3) and bank.shape == (3, 4)
    assert crops_u.min() >= 0 and bank.min() >= 0
    # U W reconstructs the crops' activations, averaged over space, of the resized crops
    resized = tf.image.resize(crops, (SIZE, SIZE), method="bicubic")
    activations = tf.reduce_mean(g(resized), axis=(1, 2)).numpy()
    error = np.linalg.norm(crops_u @ bank - activations) / np.linalg.norm(activations)
    assert error < 0.1  # the NMF's regularisation and its 200 iterations
    coefficients = craft.transform(images)
    assert coefficients.shape == (len(images), SIZE // POOL, SIZE // POOL, 3)
    assert craft.transform(images[0]).shape == (1, SIZE // POOL, SIZE // POOL, 3)
    np.testing.assert_allclose(craft.transform(None, activations=g(images).numpy()),
                               coefficients, rtol=1e-5, atol=1e-6)
    maps = craft.concept_attribution_maps(images[:2])
    assert maps.shape == (2, SIZE, SIZE, 3)
    # the pattern-A concept lights up where pattern A was planted
    concept_a, _ = concept_of_pattern_a(bank)
    on_a = images[0, ..., 0] > 0
    assert maps[0, ..., concept_a][on_a].mean() > 3 * maps[0, ..., concept_a][~on_a].mean()


def test_activations_without_spatial_axes_give_one_row_per_image():
    def pooled_g(images):
        return tf.reduce_mean(g(images), axis=(1, 2))

    def dense_h(activations):
        return tf.stack([activations[:, 0] + activations[:, 1], activations[:, 2]], axis=-1)

    craft = CraftTf(pooled_g, dense_h, 2, 16, PATCH, seed=0)
    craft.fit(planted_images(), 0)
    assert craft.transform(planted_images()).shape == (6, 2)
    concept_a, _ = concept_of_pattern_a(craft.factorization.concept_bank_w)
    assert int(np.argmax(craft.estimate_importance(nb_design=8))) == concept_a


def test_keras_models_and_the_manager_fit_each_class_on_its_predicted_inputs():
    latent = tf.keras.Sequential([tf.keras.Input((SIZE, SIZE, 2)), tf.keras.layers.Lambda(g)])
    logits = tf.keras.Sequential([tf.keras.Input((SIZE // POOL, SIZE // POOL, 4)),
                                  tf.keras.layers.Lambda(h)])
    images = planted_images(8)
    images[::2, ..., 1] *= 3.0  # even images: pattern B brighter -> predicted class 1
    labels = np.arange(8) % 2
    manager = CraftManagerTf(latent, logits, images, labels, None, 2, 16, PATCH, seed=0)
    assert sorted(manager.craft_instances) == [0, 1]
    predictions = manager.compute_predictions()
    np.testing.assert_array_equal(predictions, 1 - labels)
    manager.fit(nb_samples_per_class=3)
    for class_id, craft in manager.craft_instances.items():
        np.testing.assert_array_equal(craft.factorization.inputs,
                                      images[predictions == class_id][:3])
        assert craft.factorization.class_id == class_id
    manager.estimate_importance(nb_design=8)
    for class_id, craft in manager.craft_instances.items():
        concept_a, _ = concept_of_pattern_a(craft.factorization.concept_bank_w)
        top = int(np.argmax(craft.sensitivity.importances))
        assert top == (concept_a if class_id == 0 else 1 - concept_a)


def test_a_logit_model_tensorflow_cannot_trace_runs_eagerly_warning_once():
    """Both models run on the CRAFT's one engine: h written in numpy cannot be traced,
    so its steps run eagerly (one warning), g's later steps too (one mode per CRAFT),
    and the importances are those of the same h traced."""
    def numpy_h(activations):
        return tf.constant(h(tf.constant(activations.numpy())).numpy())

    reference = fitted(number_of_concepts=3, seed=0).estimate_importance(nb_design=16)
    craft = CraftTf(g, numpy_h, 3, 16, PATCH, seed=0)
    craft.fit(planted_images(), 0)
    with pytest.warns(SobolTFWarning, match="could not be traced") as record:
        importances = craft.estimate_importance(nb_design=16)  # 30 batches: traced first
    assert sum(issubclass(w.category, SobolTFWarning) for w in record) == 1
    np.testing.assert_allclose(importances, reference, rtol=1e-5, atol=1e-7)
    assert craft.scorer.mode.eager
    with warnings.catch_warnings():
        warnings.simplefilter("error", SobolTFWarning)
        craft.estimate_importance(nb_design=16)  # eager at once: no second warning
        craft.latent_to_logit_model = h  # a new engine: compiled again, no warning
        np.testing.assert_array_equal(craft.estimate_importance(nb_design=16), reference)
    assert not craft.scorer.mode.eager and craft.latent_to_logit_model is h
    with pytest.raises(InvalidTypeError, match="latent_to_logit_model"):
        craft.latent_to_logit_model = "not a model"


def test_the_plots_draw_from_the_fitted_concepts(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    craft = fitted(seed=0)
    with pytest.raises(InvalidArgumentError, match="estimate_importance"):
        craft.plot_concepts_importances()
    craft.estimate_importance(nb_design=8)
    craft.plot_concepts_importances(nb_most_important_concepts=2)
    craft.plot_concepts_crops(nb_crops=3)
    craft.plot_concept_attribution_maps(planted_images()[:2], nb_most_important_concepts=2)
    path = tmp_path / "concepts.png"
    craft.plot_image_concepts(planted_images()[0], nb_most_important_concepts=2,
                              filepath=str(path))
    plt.close("all")
    assert path.stat().st_size > 1000


def test_bad_input_raises_our_errors():
    with pytest.raises(InvalidTypeError, match="input_to_latent_model"):
        CraftTf("not a model", h)
    with pytest.raises(InvalidArgumentError, match="number_of_concepts"):
        CraftTf(g, h, number_of_concepts=0)
    with pytest.raises(InvalidTypeError, match="patch_size"):
        CraftTf(g, h, patch_size=8.5)
    craft = CraftTf(g, h, 2, 16, PATCH)
    with pytest.raises(NotFittedError, match="fit"):
        craft.transform(planted_images())
    with pytest.raises(ValueError):  # NotFittedError is a ValueError, as scikit-learn's
        craft.estimate_importance()
    with pytest.raises(InvalidArgumentError, match=r"\(N, H, W, C\)"):
        craft.fit(planted_images()[0])
    with pytest.raises(InvalidArgumentError, match="patch_size=32"):
        CraftTf(g, h, 2, 16, 32).fit(planted_images())
    with pytest.raises(InvalidArgumentError, match="negative activations"):
        CraftTf(lambda x: g(x) - 1.0, h, 2, 16, PATCH).fit(planted_images())
    with pytest.raises(InvalidArgumentError, match="class_id"):
        CraftTf(g, h, 2, 16, PATCH).fit(planted_images(), class_id=-1)
    images = planted_images()
    nan_images = images.copy()
    nan_images[0, 0, 0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN"):
        craft.fit(nan_images)
    late = CraftTf(g, h, 2, 16, PATCH, seed=0)
    late.fit(images, class_id=5)
    with pytest.raises(InvalidArgumentError, match="class_id=5"):
        late.estimate_importance(nb_design=4)
    with pytest.raises(InvalidTypeError, match="nb_design"):
        late.estimate_importance(nb_design=2.0)
    with pytest.raises(InvalidArgumentError, match="channels"):
        late.transform(None, activations=np.ones((2, 4, 4, 3), np.float32))
    before = images.copy()
    late.fit(images)
    np.testing.assert_array_equal(images, before)  # the caller's array is untouched
    with pytest.raises(InvalidArgumentError, match="labels"):
        CraftManagerTf(g, h, images, np.zeros(3))
    manager = CraftManagerTf(g, h, images, np.zeros(6), [0, 1], 2, 16, PATCH)
    with pytest.raises(InvalidArgumentError, match="class 1"):
        manager.fit()  # every image is predicted as class 0 (ties go to class 0)


def test_importing_the_package_imports_neither_tensorflow_sklearn_nor_matplotlib():
    code = ("import sys, sobol_tf.concepts; "
            "print([m for m in ('tensorflow', 'sklearn', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_without_scikit_learn_fit_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.decomposition", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        CraftTf(g, h, 2, 16, PATCH).fit(planted_images())
