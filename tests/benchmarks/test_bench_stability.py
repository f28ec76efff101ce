"""The stability benchmark's folds, learning algorithm and scoring helpers, on hand-made
maps whose MeGe / ReCo / distances are known."""
import numpy as np
import pytest

from bench_stability import (RandomMaps, Recorder, FoldTrainer, bootstrap_se, fold_sets,
                             mege_reco, pair_table, spearman_distances)


def test_folds_are_contiguous_and_mege_inputs_take_the_first_of_each():
    images = np.arange(24, dtype=np.float32).reshape(24, 1, 1, 1)
    labels = np.arange(24) % 10
    folds, (inputs, targets) = fold_sets(images, labels, 4, 2)
    assert [fold[0][:, 0, 0, 0].tolist() for fold in folds] == [
        [0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17],
        [18, 19, 20, 21, 22, 23]]
    assert inputs[:, 0, 0, 0].tolist() == [0, 1, 6, 7, 12, 13, 18, 19]
    assert targets.tolist() == [0, 1, 6, 7, 2, 3, 8, 9]
    with pytest.raises(ValueError, match="per_fold=7"):
        fold_sets(images, labels, 4, 7)


def test_the_learning_algorithm_trains_on_the_whole_of_the_other_folds(monkeypatch):
    import bench_stability

    images = np.random.default_rng(0).uniform(size=(16, 4, 4, 1)).astype(np.float32)
    labels = np.arange(16) % 10
    folds, (inputs, targets) = fold_sets(images, labels, 4, 1)
    trainer = FoldTrainer(folds, 1, None, epochs=1, seed=0)
    # MeGe's split 2 left out: x_test is fold 2's explained canvas, x_train the others'
    assert trainer.left_out(inputs[2:3]) == 2
    with pytest.raises(RuntimeError, match="none of the folds"):
        trainer.left_out(inputs[:2])
    seen = {}

    class Model:
        def compile(self, *args, **kwargs):
            pass

        def fit(self, x, y, **kwargs):
            seen["x"], seen["y"] = x, y

        def evaluate(self, *args, **kwargs):
            return 0.0, 0.5

    monkeypatch.setattr(bench_stability, "build_model", lambda seed: Model())
    trainer.test_set = type("Test", (), dict(images=None, labels=None))
    keep = [0, 1, 3]
    trainer(inputs[keep], targets[keep], inputs[2:3], targets[2:3])
    np.testing.assert_array_equal(seen["x"], np.concatenate([images[:8], images[12:]]))
    np.testing.assert_array_equal(seen["y"], np.concatenate([labels[:8], labels[12:]]))
    assert trainer.records[0]["left_out"] == 2 and trainer.records[0]["nb_train"] == 12
    with pytest.raises(RuntimeError, match="x_train"):
        trainer(inputs[[0, 2, 1]], targets[keep], inputs[3:4], targets[3:4])


def test_spearman_distance_closed_forms():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    a = rng.uniform(size=(3, 5, 5, 1))
    b = np.stack([a[0] * 3 + 1,                 # same ranks: distance 0
                  -a[1],                         # reversed ranks: |rho| = 1, distance 0
                  rng.uniform(size=(5, 5, 1))])
    distances = spearman_distances(a, b)
    assert distances[:2] == pytest.approx([0.0, 0.0], abs=1e-7)
    rho = spearmanr(a[2].ravel(), b[2].ravel())[0]
    assert distances[2] == pytest.approx(np.sqrt(1 - abs(rho)))
    # ties (a map with a flat region) ranked as scipy ranks them; channels averaged
    c = np.zeros((1, 4, 4, 2))
    c[0, 0, :2] = [[1, 3], [2, 2]]
    d = rng.uniform(size=(1, 4, 4, 2))
    rho = spearmanr(c[0].mean(-1).ravel(), d[0].mean(-1).ravel())[0]
    assert spearman_distances(c, d)[0] == pytest.approx(np.sqrt(1 - abs(rho)))
    # a constant map has no rank correlation: NaN, dropped by pair_table
    with np.errstate(all="ignore"):
        assert np.isnan(spearman_distances(np.ones((1, 4, 4, 1)), d[..., :1])[0])


def test_mege_and_reco_closed_forms():
    # agreeing pairs at 0.1, 0.3; disagreeing at 0.5, 0.7: a threshold separates them
    distances = np.array([0.1, 0.3, 0.5, 0.7])
    same = np.array([1, 1, 0, 0])
    mege, reco = mege_reco(distances, same)
    assert mege == pytest.approx(1 / 1.2)
    assert reco == pytest.approx(1.0)
    # interleaved: the best threshold (0.5) keeps both agreeing below, one of two above
    mege, reco = mege_reco(np.array([0.1, 0.4, 0.3, 0.7]), same)
    assert mege == pytest.approx(1 / 1.25) and reco == pytest.approx(0.5)
    # reversed: no threshold does better than chance
    assert mege_reco(np.array([0.6, 0.7, 0.1, 0.2]), same)[1] == 0.0
    # no disagreement: ReCo 0 (nothing to separate)
    assert mege_reco(np.array([0.2, 0.4]), np.array([1, 1])) == (pytest.approx(1 / 1.3), 0.0)


def test_pair_table_keeps_the_pairs_mege_compares():
    # k = 3 models, 3 inputs (one per fold); maps equal across models but for model 2
    rng = np.random.default_rng(2)
    base = rng.uniform(size=(3, 4, 4, 1))
    maps = np.stack([base, base, -base[:, ::-1]])
    labels = np.array([5, 6, 7])
    predictions = np.array([[5, 6, 7],
                            [5, 0, 0],
                            [1, 1, 1]])
    rows = pair_table(maps, predictions, labels, per_fold=1)
    # input 0 (fold 0): pairs (0,1) and (0,2); input 1: (0,1) and (1,2); input 2: (0,2), (1,2)
    # (1,2) on input 1 and 2: neither model right -> dropped
    assert rows[:, 0].tolist() == [0, 1, 0, 2]
    assert rows[:, 2].tolist() == [1, 0, 0, 0]
    assert rows[0, 1] == pytest.approx(0.0, abs=1e-7)


def test_bootstrap_se_is_zero_when_every_input_gives_the_same_pairs():
    pairs = np.array([[n, d, s] for n in range(5) for d, s in [(0.2, 1), (0.6, 0)]], float)
    assert bootstrap_se(pairs, 5, seed=0, nb_resamples=20) == pytest.approx((0.0, 0.0))
    spread = np.array([[n, 0.1 * n, 1] for n in range(5)] + [[0, 0.9, 0]], float)
    mege_se, _ = bootstrap_se(spread, 5, seed=0, nb_resamples=50)
    assert mege_se > 0


def test_recorder_records_each_models_maps_and_random_maps_have_the_inputs_shape():
    calls = []

    class Explainer:
        def __init__(self, model, scale=1.0):
            self.model, self.scale = model, scale

        def __call__(self, inputs, targets=None):
            calls.append(len(inputs))
            return np.asarray(inputs) * self.model * self.scale

    recorder = Recorder(Explainer)
    models = [2.0, 3.0]
    x = np.ones((4, 3, 3, 1), np.float32)
    for model in models:
        recorder(model, scale=2.0)(x[:2])
        recorder(model, scale=2.0).explain(x[2:])
    maps = recorder.maps_of(models)
    assert maps.shape == (2, 4, 3, 3, 1) and calls == [2, 2, 2, 2]
    np.testing.assert_array_equal(maps[:, :, 0, 0, 0], [[4.0] * 4, [6.0] * 4])
    random_maps = RandomMaps(None, seed=0)(np.zeros((2, 5, 5, 3)))
    assert random_maps.shape == (2, 5, 5, 1) and 0 <= random_maps.min() < random_maps.max() <= 1


def test_the_full_and_quick_settings_cut_valid_folds():
    from bench_stability import FULL, K_SPLITS, QUICK

    for sizes in (FULL, QUICK):
        assert sizes["nb_train"] % K_SPLITS == 0
        images = np.zeros((sizes["nb_train"], 1, 1, 1), np.float32)
        folds, (inputs, _) = fold_sets(images, np.zeros(len(images), int), K_SPLITS,
                                       sizes["per_fold"])
        assert len(inputs) == K_SPLITS * sizes["per_fold"]
        assert sizes["nb_samples"] >= 2 and 0 < sizes["radius"] <= 1


def test_recorded_per_input_stability_is_the_metrics_l2_score():
    import keras

    from bench_stability import stability_scores
    from sobol_tf.attributions import Saliency
    from sobol_tf.metrics import AverageStability

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])
    inputs = np.random.default_rng(3).uniform(size=(4, 6, 6, 1)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    explainer = Saliency(model)
    base = np.asarray(explainer(inputs, targets))
    options = dict(batch_size=5, radius=0.2, nb_samples=3, seed=4)
    values, score = stability_scores(AverageStability, explainer, base, model, inputs,
                                     targets, **options)
    reference = AverageStability(model, inputs, targets, distance="l2", **options)
    assert values.shape == (4,) and np.all(values > 0)
    assert score == pytest.approx(reference.evaluate(explainer), rel=1e-5)
    # per input: the mean over its own noisy copies
    noisy = inputs[1] + reference.noisy_masks
    maps = np.asarray(explainer(noisy, np.repeat(targets[1:2], 3, axis=0)))
    expected = np.sqrt(((maps - base[1]) ** 2).reshape(3, -1).sum(1)).mean()
    assert values[1] == pytest.approx(expected, rel=1e-5)
