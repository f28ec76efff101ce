"""Operators and targets (sobol_tf.operators): non-finite targets, all-zero target rows."""
import warnings

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf import operators
from sobol_tf.attributions import Occlusion, SobolAttributionMethod
from sobol_tf.errors import InvalidArgumentError, SobolTFWarning
from sobol_tf.metrics import Deletion

N, H, W, C = 3, 8, 8, 1


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0.5, 1, size=(N, H, W, C)).astype(np.float32)


def two_outputs(x):
    return tf.stack([tf.reduce_sum(x, axis=[1, 2, 3]), tf.reduce_sum(x ** 2, axis=[1, 2, 3])],
                    -1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets_are_refused(images, bad):
    targets = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    targets[1, 1] = bad
    with pytest.raises(InvalidArgumentError, match=r"targets .*1 NaN or infinite"):
        Occlusion(two_outputs, patch_size=4, patch_stride=4).explain(images, targets)
    with pytest.raises(InvalidArgumentError, match=r"targets .*1 NaN or infinite"):
        Deletion(two_outputs, images, targets)
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        operators.prepare_targets(np.array([1.0, np.nan, 0.0]), np.ones((3, 1)),
                                  operators.get("regression"))


def caught_warnings(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, [w for w in caught if issubclass(w.category, SobolTFWarning)]


def test_zero_regression_targets_warn_once_naming_the_inputs(images):
    explainer = SobolAttributionMethod(lambda x: two_outputs(x)[:, 1], grid_size=2,
                                       nb_design=32, operator="regression")
    maps, caught = caught_warnings(lambda: explainer.explain(images, np.array([1.0, 0.0, 0.0])))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "inputs 1, 2" in message and "all zeros" in message
    maps = np.asarray(maps)
    assert np.abs(maps[0]).max() > 0 and np.all(maps[1:] == 0)


def test_zero_one_hot_rows_warn_for_classification(images):
    targets = np.array([[1, 0], [0, 0], [0, 1]], np.float32)
    _, caught = caught_warnings(
        lambda: Occlusion(two_outputs, patch_size=4, patch_stride=4).explain(images, targets))
    assert len(caught) == 1 and "input 1 " in str(caught[0].message)
    _, caught = caught_warnings(lambda: Deletion(two_outputs, images, targets))
    assert len(caught) == 1


def test_non_zero_targets_and_user_operators_do_not_warn(images):
    _, caught = caught_warnings(lambda: Occlusion(
        two_outputs, patch_size=4, patch_stride=4).explain(images, [0, 1, 1]))
    assert not caught
    operator = lambda model, x, t: model(x)[:, 0] * (1 + t[:, 0])
    _, caught = caught_warnings(lambda: Occlusion(
        two_outputs, patch_size=4, patch_stride=4, operator=operator).explain(
            images, np.zeros((N, 2), np.float32)))
    assert not caught


def test_user_operator_targets_of_any_width_pass_through(images):
    """A callable operator reads target rows of its own width (e.g. 1 weight per input)."""
    operator = lambda model, x, t: model(x)[:, 1] * t[:, 0]
    targets = np.array([[1.0], [2.0], [3.0]], np.float32)
    maps = Occlusion(two_outputs, patch_size=4, patch_stride=4, operator=operator).explain(
        images, targets)
    single = Occlusion(lambda x: two_outputs(x)[:, 1:], patch_size=4, patch_stride=4,
                       operator="regression").explain(images, targets[:, 0])
    np.testing.assert_allclose(np.asarray(maps), np.asarray(single), rtol=1e-5)


def test_the_warning_points_at_the_callers_line(images):
    _, caught = caught_warnings(lambda: Occlusion(
        two_outputs, patch_size=4, patch_stride=4).explain(images, np.zeros((N, 2))))
    assert caught[0].filename == __file__
