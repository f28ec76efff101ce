"""What every metric shares: input forms, batching, activation, errors."""
import inspect

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, ModelCallError
from sobol_tf.metrics import Deletion, Insertion, MuFidelity

from tests.metrics.models import CountingModel


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


def test_rank3_inputs_are_time_series_whose_cells_are_features():
    """(N, T, C) inputs are time series (as Xplique): each (step, channel) cell is a
    feature, as a pixel of one channel of a T x C image; one attribution per step,
    (N, T, 1), is shared by the step's channels."""
    rng = np.random.default_rng(6)
    weights = rng.normal(size=(5, 5)).astype(np.float32)
    model = lambda batch: tf.reduce_sum(batch * weights, axis=[1, 2])[:, None]
    x = rng.uniform(size=(2, 5, 5)).astype(np.float32)
    metric = Deletion(model, x, np.zeros(2, int), steps=-1)
    assert metric.nb_features == 25
    exact = weights * x
    as_image = Deletion(lambda b: model(b[..., 0]), x[..., None], np.zeros(2, int),
                        steps=-1)
    assert metric(exact) == pytest.approx(as_image(exact))
    per_step = exact.mean(axis=-1, keepdims=True)
    assert metric(per_step) == pytest.approx(as_image(np.repeat(per_step, 5, axis=-1)))


def test_memory_is_bounded_by_batch_size_and_inputs_share_batches(linear_case):
    _, x, weights = linear_case
    model = CountingModel(weights)
    metric = Deletion(model, x, np.zeros(4, int), steps=10, batch_size=6)
    model.calls.assign(0)
    metric(np.random.default_rng(7).normal(size=x.shape[:3]))
    # 4 inputs x 11 steps = 44 perturbed inputs in full batches of 6 (the last one of 2)
    assert int(model.largest.numpy()) == 6
    assert int(model.calls.numpy()) == -(-44 // 6)


def test_mufidelity_memory_is_bounded_by_batch_size(linear_case):
    _, x, weights = linear_case
    model = CountingModel(weights)
    metric = MuFidelity(model, x, np.zeros(4, int), grid_size=3, nb_samples=10, batch_size=7)
    model.calls.assign(0)
    metric(np.random.default_rng(7).normal(size=x.shape[:3]))
    # 40 perturbed inputs in batches of 7, then the 4 clean ones
    assert int(model.largest.numpy()) == 7
    assert int(model.calls.numpy()) == -(-40 // 7) + 1
    model.calls.assign(0)
    metric(np.random.default_rng(8).normal(size=x.shape[:3]))   # scores are reused
    assert int(model.calls.numpy()) == 0


def test_progress_bar(convnet_case, capsys):
    model, x, labels, explanations = convnet_case
    Deletion(model, x, labels, steps=4, batch_size=4, verbose=True)(explanations)
    MuFidelity(model, x, labels, grid_size=2, nb_samples=4, batch_size=4,
               verbose=True)(explanations)
    out = capsys.readouterr().out
    assert "Deletion: 5 steps of 3 input(s)" in out
    assert "MuFidelity: 4 subsets of 3 input(s)" in out


def test_model_errors_say_what_was_evaluated(linear_case):
    model, x, _ = linear_case

    def fragile(batch):  # fails on batches of more than 4 inputs
        with tf.control_dependencies([tf.debugging.assert_less(
                tf.shape(batch)[0], 5, message="batch too big")]):
            return model(batch)

    with pytest.raises(ModelCallError,
                       match=r"(?s)3 steps of 4 input\(s\) \(items 0 to 4 of 12.*too big"):
        Deletion(fragile, x, np.zeros(4, int), batch_size=5, steps=2)(np.zeros(x.shape[:3]))


# -- arguments ---------------------------------------------------------------------------------
def test_defaults_match_xplique():
    defaults = lambda cls: {name: p.default for name, p in
                            inspect.signature(cls.__init__).parameters.items()
                            if p.default is not inspect.Parameter.empty}
    for cls in (Deletion, Insertion):
        assert defaults(cls) == {"targets": None, "batch_size": 64, "baseline_mode": 0.0,
                                 "steps": 10, "max_percentage_perturbed": 1.0,
                                 "operator": None, "activation": None, "pad_token": None,
                                 "verbose": False, "strategy": None}
    assert defaults(MuFidelity) == {"targets": None, "batch_size": 64, "grid_size": 9,
                                    "subset_percent": 0.2, "baseline_mode": 0.0,
                                    "nb_samples": 200, "operator": None, "activation": None,
                                    "seed": None, "pad_token": None, "verbose": False,
                                    "strategy": None}


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
