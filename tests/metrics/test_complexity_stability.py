"""Complexity, Sparseness and AverageStability against closed forms."""
import math
import warnings

import numpy as np
import pytest

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, SobolTFWarning
from sobol_tf.metrics import BaseComplexityMetric, Complexity, Sparseness


# -- Complexity and Sparseness --------------------------------------------------------
def one_hot_and_uniform(n=12):
    one_hot = np.zeros(n, np.float32)
    one_hot[5] = -3.0  # the sign does not matter
    return np.stack([one_hot, np.full(n, 0.7, np.float32)])


def test_closed_forms_one_hot_and_uniform():
    maps = one_hot_and_uniform(12)
    assert Complexity().detailed_evaluate(maps) == pytest.approx([0.0, math.log(12)],
                                                                 abs=1e-12)
    # the Gini index of one non-zero feature among n is 1 - 1/n (-> 1 as n grows)
    assert Sparseness().detailed_evaluate(maps) == pytest.approx([1 - 1 / 12, 0.0],
                                                                 abs=1e-12)


def test_hand_computed_entropy_and_gini():
    maps = np.array([[4.0, -1.0, 3.0, 2.0]])  # p = (.4, .1, .3, .2)
    p = np.array([0.4, 0.1, 0.3, 0.2])
    assert Complexity()(maps) == pytest.approx(-np.sum(p * np.log(p)), abs=1e-12)
    # sorted p = .1 .2 .3 .4: 2 * (.1 + .4 + .9 + 1.6) / 4 - 5 / 4 = 0.25
    assert Sparseness()(maps) == pytest.approx(0.25, abs=1e-12)


def test_channels_of_image_maps_are_averaged_after_absolute_values():
    # 2x2 map, 2 channels: |.| averaged over channels gives (1, 0, 0, 0) -> one-hot
    maps = np.zeros((1, 2, 2, 2), np.float32)
    maps[0, 0, 0] = (1.0, -3.0)
    assert Complexity()(maps) == pytest.approx(0.0, abs=1e-12)
    assert Sparseness()(maps) == pytest.approx(1 - 1 / 4, abs=1e-12)
    # an (N, T, C) time-series map keeps every (step, channel) cell as a feature
    series = np.zeros((1, 3, 2), np.float32)
    series[0, 1, 0] = 2.0
    assert Sparseness()(series) == pytest.approx(1 - 1 / 6, abs=1e-12)


def test_scale_invariant_even_for_tiny_maps():
    maps = np.random.default_rng(0).normal(size=(3, 5, 5))
    for metric in (Complexity(), Sparseness()):
        reference = metric.detailed_evaluate(maps)
        assert metric.detailed_evaluate(maps * 1e-12) == pytest.approx(reference, rel=1e-9)


def test_evaluate_is_the_mean_of_the_chunks_whatever_the_batch_size():
    maps = np.random.default_rng(1).uniform(size=(7, 4, 4, 3)).astype(np.float32)
    for metric_class in (Complexity, Sparseness):
        expected = float(np.mean(metric_class().detailed_evaluate(maps)))
        for batch_size in (1, 3, None):
            assert metric_class(batch_size)(maps) == pytest.approx(expected, abs=1e-12)
        assert metric_class()(maps, batch_size=2) == pytest.approx(expected, abs=1e-12)


def test_user_subclass_as_in_xplique():
    class Total(BaseComplexityMetric):
        def detailed_evaluate(self, explanations):
            return np.sum(explanations.numpy().reshape(len(explanations), -1), axis=1)

    maps = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert Total(batch_size=1)(maps) == pytest.approx(np.mean([66.0, 210.0]))


def test_all_zero_maps_are_uniform_with_a_warning():
    maps = np.zeros((2, 3, 3), np.float32)
    with pytest.warns(SobolTFWarning, match="2 explanation map"):
        assert Complexity()(maps) == pytest.approx(math.log(9), abs=1e-12)
    with pytest.warns(SobolTFWarning):
        assert Sparseness()(maps) == pytest.approx(0.0, abs=1e-12)


def test_maps_are_not_modified():
    maps = np.array([[-1.0, 2.0, 0.0]])
    Complexity()(maps), Sparseness()(maps)
    np.testing.assert_array_equal(maps, [[-1.0, 2.0, 0.0]])


@pytest.mark.parametrize("bad, error, match", [
    (np.ones(4), InvalidArgumentError, "batch of maps"),
    (np.ones((0, 4)), InvalidArgumentError, "batch of maps"),
    (np.array([[1.0, np.nan]]), InvalidArgumentError, "NaN"),
    (np.array([["a", "b"]]), InvalidTypeError, "numbers"),
])
def test_bad_explanations(bad, error, match):
    with pytest.raises(error, match=match):
        Complexity()(bad)
    with pytest.raises(error, match=match):
        Sparseness().detailed_evaluate(bad)


def test_bad_batch_size():
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        Complexity(0)
    with pytest.raises(InvalidTypeError, match="batch_size"):
        Sparseness(2.5)
