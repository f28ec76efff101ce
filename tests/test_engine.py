"""The engine object and the one perturbation path shared by explainers and metrics
(sobol_tf._utils.engine, sobol_tf._utils.scoring, sobol_tf._utils.batching.map_chunks)."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf import operators
from sobol_tf._utils.batching import map_chunks
from sobol_tf._utils.engine import ModelEngine, batch_inference
from sobol_tf._utils.scoring import Scorer, upsample_masks
from sobol_tf.attributions import Occlusion
from sobol_tf.attributions.perturbations import Perturbation, Replacement
from sobol_tf.metrics import AverageDropMetric, Deletion, Insertion, MuFidelity


def summed(x):
    """Outputs (B, 2): the sum of the inputs and minus it."""
    total = tf.reduce_sum(tf.reshape(x, (tf.shape(x)[0], -1)), axis=1)
    return tf.stack([total, -total], axis=1)


class Owner:
    batch_size = 3
    verbose = False


def test_the_engine_prepares_inputs_and_views_the_model_on_their_layout():
    engine = ModelEngine(Owner(), summed, operators.get(None),
                         transform=lambda model: (lambda x: 2.0 * model(x)))
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    prepared = engine.prepare(rows, np.array([0, 1, 0]))
    assert prepared.layout.kind == "tabular"
    assert prepared.images.shape == (3, 1, 4, 1)                 # the engine layout
    np.testing.assert_array_equal(prepared.images.numpy().reshape(3, 4), rows)
    view = engine.view(prepared.layout)
    assert engine.view(prepared.layout) is view                   # built once per layout
    # the view runs the transformed model on engine batches: 2 * sum of each row
    np.testing.assert_allclose(view(prepared.images).numpy()[:, 0], 2 * rows.sum(axis=1))
    targets = tf.constant(np.eye(2)[[0, 1, 0]], tf.float32)
    np.testing.assert_allclose(engine.scorer.scores(view, prepared.images, targets).numpy(),
                               2 * rows.sum(axis=1) * [1, -1, 1])
    assert engine.inference_function is engine.operator


def test_explainers_and_metrics_build_the_same_engine():
    x = np.random.default_rng(0).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    explainer = Occlusion(summed, patch_size=2, patch_stride=2)
    metric = Deletion(summed, x, np.array([0, 1]))
    for owner in (explainer, metric):
        assert isinstance(owner._engine, ModelEngine)
        assert owner._scorer is owner._engine.scorer
        assert owner._mode is owner._engine.mode
        assert owner.inference_function is owner.operator


def test_batch_inference_scores_every_input_in_chunks():
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    rows = np.eye(2)[[0, 1, 1, 0, 1]]
    scores = batch_inference(operators.get(None))(summed, x, rows, 2).numpy()
    np.testing.assert_allclose(scores, x.sum(axis=1) * np.where(rows[:, 0] > 0, 1, -1),
                               rtol=1e-6)


def test_masked_scores_follow_masks_perturbation_scores_in_closed_form():
    rng = np.random.default_rng(2)
    images = tf.constant(rng.uniform(size=(2, 2, 2, 1)), tf.float32)
    targets = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    masks = tf.constant(rng.integers(0, 2, size=(3, 2, 2, 1)), tf.float32)
    scorer = Scorer(Owner(), operators.get(None))
    baseline = tf.fill((1, 2, 2, 1), 5.0)

    def masks_of(input_ids, mask_ids, masks):
        return tf.gather(masks, mask_ids)

    for perturbation in (Replacement(), Perturbation()):
        got = scorer.masked_scores(summed, "test", perturbation, images, targets, baseline, 3,
                                   masks_of, extras=(masks,)).numpy()
        m = masks.numpy()[None]                                       # (1, P, 2, 2, 1)
        x = images.numpy()[:, None]                                   # (N, 1, 2, 2, 1)
        expected = (m * x + (1 - m) * 5.0).sum(axis=(2, 3, 4))        # (N, P)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_replacement_keeps_values_exactly_and_never_replaces_padding():
    inputs = tf.constant([[0.1, 7.0, 0.3, 7.0]])
    masks = tf.constant([[1.0, 0.0, 0.0, 0.7]])
    out = Replacement().apply(inputs, masks, tf.fill((1, 4), -1.0)).numpy()
    np.testing.assert_array_equal(out, np.array([[0.1, -1.0, -1.0, 7.0]], np.float32))
    padded = Replacement(pad_token=7).apply(inputs, masks, tf.fill((1, 4), -1.0)).numpy()
    np.testing.assert_array_equal(padded, np.array([[0.1, 7.0, -1.0, 7.0]], np.float32))


def test_upsample_masks_is_nearest_neighbour_and_the_identity_at_size():
    masks = tf.constant(np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1))
    assert upsample_masks(masks, 2, 2) is masks
    expected = np.repeat(np.repeat(masks.numpy(), 3, axis=1), 3, axis=2)
    np.testing.assert_array_equal(upsample_masks(masks, 6, 6).numpy(), expected)


@pytest.mark.parametrize("nb_items, batch_size, chunks", [
    (7, 3, [(0, 3), (3, 6), (6, 7)]), (6, 3, [(0, 3), (3, 6)]), (5, None, [(0, 5)]),
    (0, 4, [])])
def test_map_chunks_covers_every_item_once_in_order(nb_items, batch_size, chunks):
    assert map_chunks(lambda first, stop: (first, stop), nb_items, batch_size) == chunks


def test_the_fidelity_and_average_metrics_perturb_through_the_engine(monkeypatch):
    calls = []
    original = Scorer.masked_scores

    def spy(self, model, name, perturbation, *args, **kwargs):
        calls.append((name, type(perturbation).__name__))
        return original(self, model, name, perturbation, *args, **kwargs)

    monkeypatch.setattr(Scorer, "masked_scores", spy)
    x = np.random.default_rng(3).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    maps = np.random.default_rng(4).normal(size=(2, 4, 4))
    labels = np.array([0, 1])
    Deletion(summed, x, labels, steps=2)(maps)
    Insertion(summed, x, labels, steps=2)(maps)
    MuFidelity(summed, x, labels, grid_size=2, nb_samples=4, seed=0)(maps)
    AverageDropMetric(summed, x, labels)(maps)
    Occlusion(summed, patch_size=2, patch_stride=2)(x, labels)
    assert calls == [("deletion", "Replacement"), ("insertion", "Replacement"),
                     ("mufidelity", "Replacement"), ("average", "Perturbation"),
                     (("perturbed", True), "Inpainting")]


@pytest.mark.parametrize("broadcast, jit", [(False, False), (True, False), (True, True)])
def test_masked_scores_broadcast_and_xla_options_give_the_same_scores(broadcast, jit):
    # batches that hold one input (broadcast) and several (gathered): equal scores
    rng = np.random.default_rng(5)
    images = tf.constant(rng.uniform(size=(3, 4, 4, 2)), tf.float32)
    targets = tf.constant(np.eye(2)[[0, 1, 0]], tf.float32)
    masks = tf.constant(rng.uniform(size=(5, 4, 4, 1)), tf.float32)
    owner = Owner()
    owner.batch_size = 4                                  # 15 items: mixed batches

    def masks_of(input_ids, mask_ids, masks):
        return tf.gather(masks, mask_ids)

    got = Scorer(owner, operators.get(None)).masked_scores(
        summed, "options", Perturbation(), images, targets, tf.zeros((1, 4, 4, 2)), 5,
        masks_of, extras=(masks,), broadcast_one_input=broadcast, jit_compile=jit).numpy()
    expected = np.einsum("nhwc,phwk->np", images.numpy(), masks.numpy())
    expected *= np.array([1, -1, 1])[:, None]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
