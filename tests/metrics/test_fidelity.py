"""Deletion, Insertion and MuFidelity against answers known in closed form."""
import inspect

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics import CausalCurves, Deletion, Insertion, MuFidelity
from sobol_tf.metrics.fidelity import curve_area, spearman_rows

from tests.conftest import tiny_convnet


class LinearModel:
    """f(x) = sum(w * x) over pixels and channels; output (B, 2) = [f, -f]."""

    def __init__(self, weights):
        self.weights = tf.constant(np.asarray(weights, np.float32))

    def __call__(self, x):
        f = tf.reduce_sum(tf.cast(x, tf.float32) * self.weights, axis=[1, 2, 3])
        return tf.stack([f, -f], axis=-1)


class CountingModel(LinearModel):
    """A LinearModel that records its number of calls and its largest batch."""

    def __init__(self, weights):
        super().__init__(weights)
        self.calls = tf.Variable(0, dtype=tf.int32)
        self.largest = tf.Variable(0, dtype=tf.int32)

    def __call__(self, x):
        self.calls.assign_add(1)
        self.largest.assign(tf.maximum(self.largest, tf.shape(x)[0]))
        return super().__call__(x)


# -- a 2x2 image, by hand ------------------------------------------------------------------
W22 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[..., None]
X22 = np.ones((1, 2, 2, 1), np.float32)
E22 = np.array([[[0.1, 0.4], [0.3, 0.2]]])   # order: w=2, w=3, w=4, w=1
ZERO = np.array([0])


def test_deletion_curve_by_hand():
    metric = Deletion(LinearModel(W22), X22, ZERO, steps=4)
    assert metric.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 8, 2: 5, 3: 1, 4: 0})
    assert metric.evaluate(E22) == pytest.approx((9 + 6.5 + 3 + 0.5) / 4)
    assert metric(E22) == metric.evaluate(E22)


def test_insertion_curve_by_hand():
    metric = Insertion(LinearModel(W22), X22, ZERO, steps=4)
    assert metric.detailed_evaluate(E22) == pytest.approx({0: 0, 1: 2, 2: 5, 3: 9, 4: 10})
    assert metric(E22) == pytest.approx((1 + 3.5 + 7 + 9.5) / 4)


def test_steps_and_max_percentage_by_hand():
    model = LinearModel(W22)
    assert Deletion(model, X22, ZERO, steps=2).detailed_evaluate(E22) == pytest.approx(
        {0: 10, 2: 5, 4: 0})
    half = Deletion(model, X22, ZERO, steps=2, max_percentage_perturbed=0.5)
    assert half.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 8, 2: 5})
    # floor(k * 3 / 2): counts 0, 1, 3 when 3 features of 4 may be perturbed
    three = Deletion(model, X22, ZERO, steps=2, max_percentage_perturbed=0.75)
    assert list(three.detailed_evaluate(E22)) == [0, 1, 3]
    # more steps than features: one step per feature
    many = Deletion(model, X22, ZERO, steps=50)
    assert many.steps == 4 and list(many.detailed_evaluate(E22)) == [0, 1, 2, 3, 4]
    assert Deletion(model, X22, ZERO, steps=-1).steps == 4


def test_ties_follow_the_pixel_order():
    metric = Deletion(LinearModel(W22), X22, ZERO, steps=4)
    flat = np.zeros((1, 2, 2))
    assert metric.detailed_evaluate(flat) == pytest.approx({0: 10, 1: 9, 2: 7, 3: 4, 4: 0})


def test_constant_baseline_and_callable_baseline_by_hand():
    model = LinearModel(W22)
    half = Deletion(model, X22, ZERO, steps=4, baseline_mode=0.5)
    assert half.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 9, 2: 7.5, 3: 5.5, 4: 5})
    per_pixel = Deletion(model, X22, ZERO, steps=4,
                         baseline_mode=lambda x: x * np.array([[0, 1], [1, 1]])[..., None])
    # only the w=1 pixel goes to 0, the others keep their value
    assert per_pixel.detailed_evaluate(E22) == pytest.approx({0: 10, 1: 10, 2: 10, 3: 10, 4: 9})


def test_constant_curve_scores_its_value():
    constant = lambda x: tf.ones((tf.shape(x)[0], 2)) * 0.7
    score = Deletion(constant, X22, ZERO, steps=3)(E22)
    assert score == pytest.approx(0.7)
    assert curve_area(np.full((2, 5), 3.0)) == pytest.approx([3.0, 3.0])


# -- a linear model: the exact ranking is optimal ----------------------------------------------
@pytest.fixture(scope="module")
def linear_case():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 6, 3)).astype(np.float32)
    x = rng.uniform(size=(4, 6, 6, 3)).astype(np.float32)
    return LinearModel(weights), x, weights


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_exact_ranking_is_the_best_and_inverted_the_worst(linear_case, baseline):
    model, x, weights = linear_case
    contributions = np.sum(weights * (x - baseline), axis=-1)     # (N, H, W)
    targets = np.zeros(len(x), int)
    deletion = Deletion(model, x, targets, steps=-1, baseline_mode=baseline, batch_size=50)
    insertion = Insertion(model, x, targets, steps=-1, baseline_mode=baseline, batch_size=50)

    # closed form: f(x) minus the sum of the k largest contributions, f(baseline) plus it
    f = np.sum(weights * x, axis=(1, 2, 3))
    f_baseline = baseline * weights.sum()
    top = np.concatenate([np.zeros((4, 1)), np.cumsum(
        -np.sort(-contributions.reshape(4, -1), axis=1), axis=1)], axis=1)
    curves = deletion.curves(contributions)
    np.testing.assert_allclose(curves.scores, f[:, None] - top, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(insertion.curves(contributions).scores,
                               f_baseline + top,
                               rtol=1e-4, atol=1e-4)

    best_deletion, worst_deletion = deletion(contributions), deletion(-contributions)
    best_insertion, worst_insertion = insertion(contributions), insertion(-contributions)
    rng = np.random.default_rng(1)
    for _ in range(5):
        random = rng.normal(size=contributions.shape)
        assert best_deletion < deletion(random) < worst_deletion
        assert worst_insertion < insertion(random) < best_insertion


def test_channels_are_averaged_with_their_sign(linear_case):
    model, x, weights = linear_case
    metric = Deletion(model, x, np.zeros(4, int), steps=6)
    rng = np.random.default_rng(2)
    per_channel = rng.normal(size=x.shape)
    expected = metric(per_channel.mean(axis=-1))
    assert metric(per_channel) == pytest.approx(expected)
    assert metric(per_channel.mean(axis=-1, keepdims=True)) == pytest.approx(expected)
    assert metric(np.abs(per_channel)) != pytest.approx(expected)


def test_per_input_curves_agree_with_the_mean(linear_case):
    model, x, _ = linear_case
    metric = Insertion(model, x, np.zeros(4, int), steps=5)
    explanations = np.random.default_rng(3).normal(size=x.shape[:3])
    curves = metric.curves(explanations)
    assert isinstance(curves, CausalCurves)
    assert curves.scores.shape == (4, 6) and curves.areas.shape == (4,)
    assert list(metric.detailed_evaluate(explanations).values()) == pytest.approx(
        curves.scores.mean(axis=0))
    assert metric(explanations) == pytest.approx(curves.areas.mean())
    # Xplique's formula on the mean curve gives the same score
    means = curves.scores.mean(axis=0)
    assert metric(explanations) == pytest.approx(np.mean(means[:-1] + means[1:]) * 0.5)


# -- a convnet: the batched engine equals the definition -----------------------------------
def box_blur(x):
    return tf.nn.avg_pool2d(tf.convert_to_tensor(x), 3, 1, "SAME")


def reference_curve(model, x, labels, explanations, counts, baseline, deletion):
    """The definition, one step at a time, in numpy."""
    n, h, w, c = x.shape
    order = np.argsort(-explanations.reshape(n, -1), axis=1, kind="stable")
    curve = []
    for count in counts:
        start, end = (x, baseline) if deletion else (baseline, x)
        batch = start.reshape(n, h * w, c).copy()
        for i in range(n):
            batch[i, order[i, :count]] = end.reshape(n, h * w, c)[i, order[i, :count]]
        outputs = np.asarray(model(batch.reshape(x.shape)))
        curve.append(outputs[np.arange(n), labels])
    return np.stack(curve, axis=1)


@pytest.fixture(scope="module")
def convnet_case():
    model = tiny_convnet((8, 8, 3), 3)
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    labels = np.array([0, 2, 1])
    explanations = rng.normal(size=(3, 8, 8)).astype(np.float32)
    return model, x, labels, explanations


@pytest.mark.parametrize("metric_class", [Deletion, Insertion])
def test_batched_curves_equal_the_definition(convnet_case, metric_class):
    model, x, labels, explanations = convnet_case
    metric = metric_class(model, x, labels, steps=7, baseline_mode=box_blur, batch_size=5)
    expected = reference_curve(model, x, labels, explanations, metric.counts,
                               np.asarray(box_blur(x)), metric_class is Deletion)
    np.testing.assert_allclose(metric.curves(explanations).scores, expected, atol=1e-5)


def test_batch_size_does_not_change_any_score(convnet_case):
    model, x, labels, explanations = convnet_case
    for metric_class, kwargs in ((Deletion, {"steps": 9}), (Insertion, {"steps": -1}),
                                 (MuFidelity, {"grid_size": 4, "nb_samples": 20, "seed": 0})):
        scores = [metric_class(model, x, labels, batch_size=size, **kwargs)(explanations)
                  for size in (1, 7, 64, None)]
        np.testing.assert_allclose(scores, scores[0], atol=1e-6, err_msg=metric_class.__name__)


def test_input_forms_agree(convnet_case):
    model, x, labels, explanations = convnet_case
    one_hot = np.eye(3, dtype=np.float32)[labels]
    expected = Deletion(model, x, labels, steps=4)(explanations)
    forms = {
        "tensors": Deletion(model, tf.constant(x), tf.constant(labels), steps=4),
        "one-hot": Deletion(model, x, one_hot, steps=4),
        "dataset": Deletion(model, tf.data.Dataset.from_tensor_slices((x, one_hot)), steps=4),
        "batched dataset": Deletion(
            model, tf.data.Dataset.from_tensor_slices((x, labels)).batch(2), steps=4),
    }
    for form, metric in forms.items():
        assert metric(tf.constant(explanations)) == pytest.approx(expected, abs=1e-6), form
    predicted = np.asarray(model(x)).argmax(1)
    assert Deletion(model, x, steps=4)(explanations) == pytest.approx(
        Deletion(model, x, predicted, steps=4)(explanations))


def test_activation_is_applied_before_the_operator(convnet_case):
    _, x, labels, explanations = convnet_case
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(8, 8, 3)).astype(np.float32)
    logits = lambda batch: tf.stack([tf.reduce_sum(batch * weights, axis=[1, 2, 3]),
                                     tf.reduce_sum(batch, axis=[1, 2, 3]) * 0.1,
                                     tf.zeros(tf.shape(batch)[0])], axis=-1)
    probabilities = lambda batch: tf.nn.softmax(logits(batch))
    for name, function in (("softmax", probabilities),
                           ("sigmoid", lambda batch: tf.sigmoid(logits(batch)))):
        expected = Insertion(function, x, labels, steps=5)(explanations)
        assert Insertion(logits, x, labels, steps=5, activation=name)(explanations) == \
            pytest.approx(expected, abs=1e-6)
    with pytest.raises(InvalidArgumentError, match="activation"):
        Deletion(logits, x, labels, activation="relu")


def test_grayscale_inputs_without_channel_axis():
    rng = np.random.default_rng(6)
    weights = rng.normal(size=(5, 5)).astype(np.float32)
    model = lambda batch: tf.reduce_sum(batch * weights, axis=[1, 2])[:, None]
    x = rng.uniform(size=(2, 5, 5)).astype(np.float32)
    metric = Deletion(model, x, np.zeros(2, int), steps=-1)
    exact = weights * x
    expected = Deletion(LinearModel(weights[..., None]), x[..., None], np.zeros(2, int),
                        steps=-1)(exact)
    assert metric(exact) == pytest.approx(expected)
    assert metric(exact[..., None]) == pytest.approx(expected)


def test_memory_is_bounded_by_batch_size_and_inputs_share_batches(linear_case):
    _, x, weights = linear_case
    model = CountingModel(weights)
    metric = Deletion(model, x, np.zeros(4, int), steps=10, batch_size=6)
    model.calls.assign(0)
    metric(np.random.default_rng(7).normal(size=x.shape[:3]))
    # 4 inputs x 11 steps = 44 perturbed inputs in full batches of 6 (the last one of 2)
    assert int(model.largest.numpy()) == 6
    assert int(model.calls.numpy()) == -(-44 // 6)


def test_progress_bar(convnet_case, capsys):
    model, x, labels, explanations = convnet_case
    Deletion(model, x, labels, steps=4, batch_size=4, verbose=True)(explanations)
    assert "Deletion: 5 steps of 3 input(s)" in capsys.readouterr().out


# -- MuFidelity ---------------------------------------------------------------------------------
@pytest.mark.parametrize("grid_size", [None, 3, 4])
def test_mufidelity_faithful_explanation_of_an_additive_model_scores_one(grid_size):
    rng = np.random.default_rng(8)
    weights = rng.normal(size=(8, 8, 3)).astype(np.float32)
    x = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
    baseline = 0.25
    metric = MuFidelity(LinearModel(weights), x, np.zeros(3, int), grid_size=grid_size,
                        nb_samples=60, baseline_mode=baseline, seed=0)
    faithful = weights * (x - baseline)           # the drop is the subset's attribution sum
    assert metric(faithful) > 0.999
    assert metric(-faithful) < -0.999


def test_mufidelity_random_explanation_scores_near_zero():
    rng = np.random.default_rng(8)
    weights = rng.normal(size=(8, 8, 1)).astype(np.float32)
    x = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
    metric = MuFidelity(LinearModel(weights), x, np.zeros(3, int), grid_size=None,
                        nb_samples=100, seed=0)
    # one correlation has a spread of about 1/8 over 64 pixels; 30 of them average to ~0.02
    random = [metric(rng.normal(size=x.shape)) for _ in range(10)]
    assert abs(np.mean(random)) < 0.1
    assert metric(weights * x) > 0.999


def test_mufidelity_constant_model_scores_zero():
    constant = lambda batch: tf.ones((tf.shape(batch)[0], 2))
    x = np.random.default_rng(9).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    metric = MuFidelity(constant, x, np.zeros(2, int), grid_size=3, nb_samples=10, seed=0)
    score = metric(np.random.default_rng(10).normal(size=(2, 6, 6)))
    assert score == 0.0
    np.testing.assert_array_equal(metric.detailed_evaluate(np.ones((2, 6, 6))), [0.0, 0.0])


def test_mufidelity_is_reproducible_with_a_seed(convnet_case):
    model, x, labels, explanations = convnet_case
    kwargs = dict(grid_size=4, nb_samples=16)
    first = MuFidelity(model, x, labels, seed=3, **kwargs)(explanations)
    assert MuFidelity(model, x, labels, seed=3, **kwargs)(explanations) == first
    assert MuFidelity(model, x, labels, seed=4, **kwargs)(explanations) != first


def test_mufidelity_subsets_remove_the_right_share_of_cells():
    mean_model = lambda batch: tf.reduce_mean(batch, axis=[1, 2, 3])[:, None]
    x = np.ones((2, 8, 8, 1), np.float32)
    metric = MuFidelity(mean_model, x, np.zeros(2, int), grid_size=4, nb_samples=400,
                        subset_percent=0.3, seed=0)
    drops = metric._score_drops()            # the share of pixels set to 0
    assert drops.shape == (2, 400)
    np.testing.assert_allclose(drops[0], drops[1])            # same subsets for every input
    assert np.all(np.isclose(drops[0] * 16, np.round(drops[0] * 16), atol=1e-4))  # whole cells
    assert abs(drops.mean() - 0.3) < 0.02


def test_spearman_matches_scipy_and_gives_zero_on_constants():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(11)
    a = rng.integers(0, 5, size=(6, 30)).astype(float)       # many ties
    b = rng.normal(size=(6, 30))
    expected = [spearmanr(a[i], b[i])[0] for i in range(6)]
    np.testing.assert_allclose(spearman_rows(a, b), expected, atol=1e-12)
    assert spearman_rows(np.ones((1, 5)), rng.normal(size=(1, 5)))[0] == 0.0


# -- arguments ---------------------------------------------------------------------------------
def test_defaults_match_xplique():
    defaults = lambda cls: {name: p.default for name, p in
                            inspect.signature(cls.__init__).parameters.items()
                            if p.default is not inspect.Parameter.empty}
    for cls in (Deletion, Insertion):
        assert defaults(cls) == {"targets": None, "batch_size": 64, "baseline_mode": 0.0,
                                 "steps": 10, "max_percentage_perturbed": 1.0,
                                 "operator": None, "activation": None, "verbose": False}
    assert defaults(MuFidelity) == {"targets": None, "batch_size": 64, "grid_size": 9,
                                    "subset_percent": 0.2, "baseline_mode": 0.0,
                                    "nb_samples": 200, "operator": None, "activation": None,
                                    "seed": None, "verbose": False}


def test_explanations_that_do_not_match_the_inputs(linear_case):
    model, x, _ = linear_case
    targets = np.zeros(4, int)
    for metric in (Deletion(model, x, targets), MuFidelity(model, x, targets, grid_size=3)):
        for bad in (np.zeros((3, 6, 6)), np.zeros((4, 5, 6)), np.zeros((4, 6, 6, 2)),
                    np.zeros((4, 36))):
            with pytest.raises(ValueError, match=r"explanations has shape .* inputs has shape "
                                                 r"\(4, 6, 6, 3\)"):
                metric(bad)
        nan = np.zeros((4, 6, 6))
        nan[0, 0, 0] = np.nan
        with pytest.raises(InvalidArgumentError, match="NaN"):
            metric(nan)


def test_bad_arguments(linear_case):
    model, x, _ = linear_case
    targets = np.zeros(4, int)
    cases = [
        (Deletion, {"steps": 0}, InvalidArgumentError, "steps"),
        (Deletion, {"steps": -2}, InvalidArgumentError, "steps"),
        (Deletion, {"steps": 2.5}, InvalidTypeError, "steps"),
        (Deletion, {"max_percentage_perturbed": 0.0}, InvalidArgumentError, "max_percentage"),
        (Insertion, {"max_percentage_perturbed": 1.5}, InvalidArgumentError, "max_percentage"),
        (Insertion, {"max_percentage_perturbed": 0.01}, InvalidArgumentError, "no feature"),
        (Deletion, {"batch_size": 0}, InvalidArgumentError, "batch_size"),
        (Deletion, {"baseline_mode": "blur"}, InvalidTypeError, "baseline_mode"),
        (Deletion, {"baseline_mode": lambda v: v[:, :3]}, InvalidArgumentError,
         r"baseline_mode\(inputs\) returned shape \(4, 3, 6, 3\)"),
        (Deletion, {"baseline_mode": np.nan}, InvalidArgumentError, "finite"),
        (Deletion, {"operator": "ranking"}, InvalidArgumentError, "operator"),
        (MuFidelity, {"grid_size": 7}, InvalidArgumentError, "grid_size=7"),
        (MuFidelity, {"grid_size": 3, "subset_percent": 1.0}, InvalidArgumentError, "subset_percent"),
        (MuFidelity, {"grid_size": 3, "nb_samples": 1}, InvalidArgumentError, "nb_samples"),
    ]
    for cls, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            cls(model, x, targets, **kwargs)
    with pytest.raises(InvalidArgumentError, match="targets has 3 rows"):
        Deletion(model, x, np.zeros(3, int))
    with pytest.raises(TypeError, match="model"):
        Deletion("model", x, targets)


def test_the_callers_arrays_are_not_modified(linear_case):
    model, x, weights = linear_case
    x_copy = x.copy()
    explanations = np.random.default_rng(12).normal(size=x.shape)
    e_copy = explanations.copy()
    Deletion(model, x, np.zeros(4, int), steps=3)(explanations)
    MuFidelity(model, x, np.zeros(4, int), grid_size=3, nb_samples=8)(explanations)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(explanations, e_copy)
