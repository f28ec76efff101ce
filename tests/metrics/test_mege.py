"""MeGe and ReCo (Fel, Vigouroux et al., WACV 2022) against hand-computed values."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

from sobol_tf.attributions import Saliency
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning
from sobol_tf.metrics import MeGe
from sobol_tf.metrics.representativity import reco_score, spearman_distances

from tests.metrics.models import CountingModel


# -- a case by hand: 3 models, 6 inputs, fixed predictions and maps ---------------------
class TableModel:
    """Predicts, for input n (its feature 0 holds n), the class ``predictions[n]``."""

    def __init__(self, ident, predictions):
        self.ident = ident
        self.table = tf.one_hot(predictions, 2)

    def __call__(self, x):
        return tf.gather(self.table, tf.cast(x[:, 0], tf.int32))


class MapsExplainer:
    """Returns the maps given for its model (``maps[model.ident][n]`` for input n)."""

    built = 0

    def __init__(self, model, maps):
        MapsExplainer.built += 1
        self.maps = np.asarray(maps[model.ident], np.float32)

    def __call__(self, inputs, targets):
        return self.maps[np.asarray(inputs)[:, 0].astype(int)]


B, P1, P2, P3, P5 = [1, 2, 3, 4], [2, 1, 3, 4], [2, 1, 4, 3], [3, 1, 2, 4], [4, 3, 2, 1]
# Spearman correlation with B: P1 0.8, P2 0.6, P3 0.4, P5 -1 (distance 0: sign ignored)
D1, D2, D3 = np.sqrt(0.2), np.sqrt(0.4), np.sqrt(0.6)
X6 = np.column_stack([np.arange(6), np.ones((6, 3))]).astype(np.float32)
Y6 = np.zeros(6, int)  # every input is of class 0; a prediction 1 is wrong
# splits (3): {0, 1}, {2, 3}, {4, 5}; model i was not trained on split i
PREDICTIONS = [[0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 0, 1], [0, 1, 1, 1, 0, 0]]
MAPS = [  # MAPS[model][input]: the unseen model explains with B
    [B, B, P5, P1, P1, P3],
    [P1, P3, B, B, P1, P2],
    [P2, B, P2, P1, B, B],
]
# counted pairs: (unseen model, each other model) -> distance, both right or one right
EQUAL = [D1, D2, 0.0, D1, D1]   # n0 (0,1) (0,2), n2 (1,0), n4 (2,0) (2,1)
DIFFERENT = [D3, D2, D3, D2]    # n1 (0,1), n2 (1,2), n5 (2,0) (2,1)


def table_models():
    return [TableModel(i, p) for i, p in enumerate(PREDICTIONS)]


def test_hand_computed_mege_and_reco():
    metric = MeGe(None, X6, Y6, k_splits=3, models=table_models())
    mege, reco = metric.evaluate(MapsExplainer, {"maps": MAPS})
    assert mege == pytest.approx(1 / (1 + np.mean(EQUAL)))           # 0.7169...
    # thresholds 0, D1, D2, D3: TPR + TNR - 1 = 0.2, 0.8, 0.5, 0.0
    assert reco == pytest.approx(0.8)
    assert sorted(metric.last_distances["equal"]) == pytest.approx(sorted(EQUAL))
    assert sorted(metric.last_distances["different"]) == pytest.approx(sorted(DIFFERENT))


def test_learning_algorithm_gives_the_same_numbers_as_models():
    calls = []

    def learning_algorithm(x_train, y_train, x_test, y_test):
        calls.append((x_train[:, 0].tolist(), y_train.tolist(), x_test[:, 0].tolist(),
                      y_test.tolist()))
        held_out = int(x_test[0, 0]) // 2
        return TableModel(held_out, PREDICTIONS[held_out])

    metric = MeGe(learning_algorithm, X6, Y6, 64, 3)  # Xplique's positional order
    assert [c[2] for c in calls] == [[0, 1], [2, 3], [4, 5]]
    assert [c[0] for c in calls] == [[2, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 3]]
    assert all(c[1] == [0, 0, 0, 0] and c[3] == [0, 0] for c in calls)
    first = metric.evaluate(MapsExplainer, {"maps": MAPS})
    assert first == pytest.approx((1 / (1 + np.mean(EQUAL)), 0.8))
    # a second explainer: no new training, the same models
    assert metric.evaluate(MapsExplainer, {"maps": MAPS}) == first and len(calls) == 3


def test_reco_by_hand_and_edge_cases():
    # perfectly separated sets: 1; the same values in both: 0
    assert reco_score(np.array([0.1, 0.2]), np.array([0.5, 0.9])) == pytest.approx(1.0)
    assert reco_score(np.array([0.3, 0.5]), np.array([0.3, 0.5])) == pytest.approx(0.0)
    # a tie across the sets is not a separation (thresholds 0.1, 0.4: 0.5, 0.5)
    assert reco_score(np.array([0.1, 0.4]), np.array([0.4, 0.8])) == pytest.approx(0.5)
    assert reco_score(np.array([0.1]), np.array([])) == 0.0
    assert reco_score(np.array([]), np.array([0.1])) == 0.0


def test_spearman_distance_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 30))
    b = rng.normal(size=(7, 30))
    a[1, :10] = 0.0        # ties
    b[2] = np.round(b[2])  # ties
    b[3] = -a[3] * 2 + 1   # a perfect negative correlation: distance 0
    got = spearman_distances(a, b)
    expected = [np.sqrt(1 - abs(spearmanr(x, y)[0])) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, expected, atol=1e-7)
    assert got[3] == pytest.approx(0.0, abs=1e-7)
    # a constant map has no ranking: NaN (the pair is then left out, with a warning)
    flat = spearman_distances(np.ones((1, 5)), rng.normal(size=(1, 5)))
    assert np.isnan(flat[0])


# -- identical models: MeGe 1, ReCo 0 (no disagreement) ---------------------------------
class MeanDifference:
    """A 'trained' linear classifier: w = mean(x | class 0) - mean(x | class 1),
    outputs [f, -f] with f = sum(w * x); the same data always gives the same model."""

    def __init__(self, weights):
        self.weights = tf.constant(np.asarray(weights, np.float32))

    def __call__(self, x):
        f = tf.reduce_sum(tf.reshape(tf.cast(x, tf.float32) * self.weights,
                                     (tf.shape(x)[0], -1)), axis=1)
        return tf.stack([f, -f], axis=-1)


def mean_difference(x_train, y_train, x_test, y_test):
    labels = np.asarray(y_train).reshape(len(y_train), -1).argmax(-1) \
        if np.ndim(y_train) == 2 else np.asarray(y_train)
    x_train = np.asarray(x_train, np.float32)
    return MeanDifference(x_train[labels == 0].mean(0) - x_train[labels == 1].mean(0))


def two_classes(shape, nb_inputs=8, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    labels = np.arange(nb_inputs) % 2
    x = rng.normal(size=(nb_inputs,) + shape).astype(np.float32)
    x += np.where(labels == 0, shift, -shift).reshape((-1,) + (1,) * len(shape))
    return x, np.eye(2)[labels]


@pytest.mark.parametrize("shape", [(8, 8, 1), (6,)], ids=["images", "tabular"])
def test_identical_models_give_mege_one_and_reco_zero(shape):
    x, y = two_classes(shape)
    model = MeanDifference(np.random.default_rng(1).normal(size=shape))
    metric = MeGe(lambda *_: model, x, y, k_splits=4)
    with pytest.warns(SobolTFWarning, match="ReCo"):
        mege, reco = metric.evaluate(Saliency)
    assert mege == pytest.approx(1.0) and reco == 0.0
    assert len(metric.last_distances["different"]) == 0


@pytest.mark.filterwarnings("ignore:ReCo is 0.0")
def test_no_pair_of_right_answers_gives_nan_mege():
    wrong = [TableModel(i, [1] * 6) for i in range(3)]
    metric = MeGe(None, X6, Y6, k_splits=3, models=wrong)
    with pytest.warns(SobolTFWarning, match="MeGe"):
        mege, reco = metric.evaluate(MapsExplainer, {"maps": MAPS})
    assert np.isnan(mege) and reco == 0.0


# -- every kind of input, against a reference with scipy ---------------------------------
class GradientInput:
    """w * x for a MeanDifference model (its gradient times the input)."""

    def __init__(self, model):
        self.weights = model.weights.numpy()

    def __call__(self, inputs, targets):
        return np.asarray(inputs, np.float32) * self.weights


def reference(models, explainer, x, labels, splits):
    maps = [explainer(m)(x, None).reshape(len(x), -1) for m in models]
    preds = [np.asarray(m(tf.constant(x))).argmax(-1) for m in models]
    equal, different = [], []
    for s, ids in enumerate(splits):
        for j in range(len(models)):
            for n in ids if j != s else []:
                d = np.sqrt(1 - abs(spearmanr(maps[s][n], maps[j][n])[0]))
                right = (preds[s][n] == labels[n], preds[j][n] == labels[n])
                (equal if all(right) else different if any(right) else []).append(d)
    return 1 / (1 + np.mean(equal)), equal, different


@pytest.mark.parametrize("shape", [(4, 4, 2), (5,), (6, 2)],
                         ids=["images", "tabular", "time_series"])
def test_every_kind_matches_a_reference(shape):
    x, y = two_classes(shape, nb_inputs=12, seed=3, shift=0.3)  # some wrong answers
    metric = MeGe(mean_difference, x, y, batch_size=5, k_splits=3)
    mege, reco = metric.evaluate(lambda model: _ChannelMean(GradientInput(model)))
    splits = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)]
    expected, equal, different = reference(
        metric.models, lambda m: _ChannelMean(GradientInput(m)), x, y.argmax(-1), splits)
    assert mege == pytest.approx(expected)
    assert reco == pytest.approx(reco_score(np.array(equal), np.array(different)))
    assert len(metric.last_distances["equal"]) == len(equal)
    assert len(different) > 0 and len(metric.last_distances["different"]) == len(different)


class _ChannelMean:
    """Image maps averaged over channels (as the metric reads (N, H, W, C) maps)."""

    def __init__(self, explainer):
        self.explainer = explainer

    def __call__(self, inputs, targets):
        maps = self.explainer(inputs, targets)
        return maps.mean(-1) if maps.ndim == 4 else maps


def test_token_ids():
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 10, size=(8, 5))
    labels = ((ids >= 5).sum(axis=1) >= 3).astype(int)   # the majority of the tokens

    class Lookup:
        def __init__(self, table):
            self.table = tf.constant(table, tf.float32)

        def __call__(self, tokens):
            return tf.reduce_sum(tf.gather(self.table, tf.cast(tokens, tf.int32)), axis=1)

    def learning_algorithm(x_train, y_train, x_test, y_test):
        assert np.issubdtype(x_train.dtype, np.integer)
        table = np.zeros((10, 2))
        table[5:, 1] = table[:5, 0] = 1.0 + x_train.shape[0]
        return Lookup(table)

    class TokenScores:
        def __init__(self, model):
            self.table = model.table.numpy()

        def __call__(self, tokens, targets):
            return self.table[np.asarray(tokens), 1] + np.arange(5) * 0.1

    metric = MeGe(learning_algorithm, ids, labels, k_splits=2)
    with pytest.warns(SobolTFWarning, match="ReCo is 0.0"):
        mege, reco = metric.evaluate(TokenScores)
    assert reco == 0.0 and len(metric.last_distances["equal"]) == 8
    # every model votes with the tokens, right on every input, with the same maps: MeGe 1
    assert mege == pytest.approx(1.0)


# -- cost: train once, predict once, explain each (model, input) once -------------------
@pytest.mark.filterwarnings("ignore:ReCo is 0.0")
def test_models_predictions_and_explanations_are_computed_once():
    x, y = two_classes((4,), nb_inputs=8)
    trained = []

    def learning_algorithm(x_train, y_train, x_test, y_test):
        trained.append(len(x_train))
        return CountingModel(np.ones((1, 4, 1), np.float32))  # LinearModel: (B,1,4,1)

    class Counting:
        calls = []

        def __init__(self, model):
            self.model = model

        def __call__(self, inputs, targets):
            Counting.calls.append(len(inputs))
            return np.asarray(inputs)

    metric = MeGe(learning_algorithm, x[:, None, :, None], y, k_splits=4)
    assert trained == [6, 6, 6, 6]
    metric.evaluate(Counting)
    metric.evaluate(Counting)
    assert trained == [6, 6, 6, 6]
    assert Counting.calls == [8] * 8   # each model explains all 8 inputs once per call
    # one prediction pass per model (one batch of 8), not one per evaluate
    assert [int(m.calls.numpy()) for m in metric.models] == [1, 1, 1, 1]


# -- splits and seed ---------------------------------------------------------------------
def held_out_recorder():
    held_out = []

    def learning_algorithm(x_train, y_train, x_test, y_test):
        held_out.append(sorted(x_test[:, 0].astype(int).tolist()))
        assert not set(held_out[-1]) & set(x_train[:, 0].astype(int).tolist())
        return TableModel(0, [0] * 10)

    return held_out, learning_algorithm


def test_uneven_splits_and_seed():
    x = np.column_stack([np.arange(10), np.zeros(10)]).astype(np.float32)
    y = np.zeros(10, int)
    held_out, algorithm = held_out_recorder()
    metric = MeGe(algorithm, x, y, k_splits=4)
    assert held_out == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [s.tolist() for s in metric.splits] == held_out
    first, algorithm = held_out_recorder()
    MeGe(algorithm, x, y, k_splits=4, seed=3)
    again, algorithm = held_out_recorder()
    MeGe(algorithm, x, y, k_splits=4, seed=3)
    other, algorithm = held_out_recorder()
    MeGe(algorithm, x, y, k_splits=4, seed=4)
    assert first == again != other and first != held_out
    assert sorted(sum(first, [])) == list(range(10))
    assert sorted(map(len, first)) == [2, 2, 3, 3]


def test_models_with_their_own_splits():
    splits = [[4, 5], [0, 1], [2, 3]]   # model i was not trained on splits[i]
    order = [2, 0, 1]                   # TableModel k of the hand case held out {2k, 2k+1}
    models = [table_models()[k] for k in order]
    metric = MeGe(None, X6, Y6, k_splits=3, models=models, splits=splits)
    assert metric.evaluate(MapsExplainer, {"maps": MAPS}) == pytest.approx(
        (1 / (1 + np.mean(EQUAL)), 0.8))


def test_verbose_shows_training_progress(capsys):
    _, algorithm = held_out_recorder()
    x = np.column_stack([np.arange(10), np.zeros(10)]).astype(np.float32)
    MeGe(algorithm, x, np.zeros(10, int), k_splits=2, verbose=True)
    assert "MeGe" in capsys.readouterr().out


# -- bad arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"k_splits": 1}, InvalidArgumentError, "k_splits"),
    ({"k_splits": 2.0}, InvalidTypeError, "k_splits"),
    ({"k_splits": 7}, InvalidArgumentError, "k_splits=7.*6 inputs"),
    ({"learning_algorithm": "fit"}, InvalidTypeError, "learning_algorithm"),
    ({"learning_algorithm": lambda *a: "not a model"}, InvalidTypeError,
     "learning_algorithm returned"),
    ({"models": table_models()[:2]}, InvalidArgumentError, "models"),
    ({"models": [1, 2, 3]}, InvalidTypeError, "models"),
    ({"models": table_models(), "splits": [[0, 1], [2, 3], [3, 4, 5]]},
     InvalidArgumentError, "splits"),
    ({"models": table_models(), "splits": [[0, 1, 2, 3, 4, 5], [], []]},
     InvalidArgumentError, "splits"),
    ({"targets": None}, InvalidArgumentError, "targets"),
    ({"batch_size": 0}, InvalidArgumentError, "batch_size"),
    ({"seed": -1}, InvalidArgumentError, "seed"),
])
def test_bad_arguments(kwargs, error, match):
    arguments = {"learning_algorithm": lambda *a: TableModel(0, [0] * 6), "inputs": X6,
                 "targets": Y6, "k_splits": 3}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        MeGe(**arguments)


def test_bad_evaluate_arguments():
    metric = MeGe(None, X6, Y6, k_splits=3, models=table_models())
    with pytest.raises(InvalidTypeError, match="explainer_params"):
        metric.evaluate(MapsExplainer, [MAPS])
    with pytest.raises(InvalidTypeError, match="explainer_class"):
        metric.evaluate("Saliency")
    with pytest.raises(InvalidArgumentError, match="explanations"):
        metric.evaluate(MapsExplainer, {"maps": [m[:, :2] for m in np.array(MAPS)]})


@pytest.mark.filterwarnings("ignore:the target row")
def test_one_output_models_are_refused():
    models = [lambda x: tf.ones((tf.shape(x)[0], 1))] * 3
    metric = MeGe(None, X6, np.zeros((6, 1)), k_splits=3, models=models)
    with pytest.raises(InvalidArgumentError, match="one output"):
        metric.evaluate(MapsExplainer, {"maps": MAPS})


def test_xplique_signature():
    import inspect

    parameters = inspect.signature(MeGe).parameters
    positional = [(p.name, p.default) for p in parameters.values()
                  if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [("learning_algorithm", inspect.Parameter.empty),
                          ("inputs", inspect.Parameter.empty), ("targets", None),
                          ("batch_size", 64), ("k_splits", 4)]
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
               for name in ("models", "splits", "seed", "verbose"))
    assert list(inspect.signature(MeGe.evaluate).parameters) == [
        "self", "explainer_class", "explainer_params"]


def test_seed_makes_training_reproducible():
    draws = []

    def learning_algorithm(x_train, y_train, x_test, y_test):
        draws.append(float(np.random.rand()))   # a learning algorithm's own randomness
        return TableModel(0, [0] * 6)

    MeGe(learning_algorithm, X6, Y6, k_splits=3, seed=7)
    MeGe(learning_algorithm, X6, Y6, k_splits=3, seed=7)
    assert draws[:3] == draws[3:] and len(set(draws[:3])) == 3
