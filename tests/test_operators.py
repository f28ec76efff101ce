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


# -- tasks beyond classification (Xplique's Tasks) ---------------------------------------

TASK_NAMES = ["classification", "regression", "semantic segmentation", "object detection",
              "object detection box position", "object detection box proba",
              "object detection box class"]


def test_tasks_and_their_names_resolve_to_the_same_operator():
    from sobol_tf.tasks import Tasks
    assert [task.value for task in Tasks] == TASK_NAMES
    for task in Tasks:
        assert operators.get(task) is operators.get(task.value)
        assert Tasks.from_string(task.value) is task
        assert operators.get(task).name == task.value
    assert operators.get_operator is operators.get
    with pytest.raises(InvalidArgumentError, match="semantic segmentation"):
        operators.get("segmentation")
    with pytest.raises(InvalidArgumentError, match="object detection box class"):
        Tasks.from_string("detection")
    # operators sits below tasks (it does not import it): its names are the tasks' values,
    # in their order, and a name or a member resolves alike, whatever its case; an enum
    # member of another value is refused as an unknown type
    assert list(operators.OPERATORS) == TASK_NAMES
    assert operators.get("Object Detection") is operators.get(Tasks.OBJECT_DETECTION)
    with pytest.raises(InvalidArgumentError) as caught:
        operators.get("segmentation")
    assert str(caught.value) == (f"operator must be one of {TASK_NAMES} (or a callable "
                                 "g(model, inputs, targets)), got 'segmentation'.")
    import enum

    class Other(enum.Enum):
        X = "not a task"

    with pytest.raises(TypeError):
        operators.get(Other.X)


def test_a_task_is_callable_as_its_operator():
    from sobol_tf.tasks import Tasks
    x = tf.ones((2, 3))
    targets = tf.constant([[1.0, 0, 0], [0, 0, 2.0]])
    model = lambda v: v * tf.constant([1.0, 2.0, 3.0])  # noqa: E731
    np.testing.assert_allclose(Tasks.CLASSIFICATION(model, x, targets), [1.0, 6.0])
    masks = tf.constant(np.eye(3, dtype=np.float32)[None].repeat(2, 0))  # (2, 3, 3)
    # segmentation: mean over the non-zero target entries of outputs * targets
    seg = Tasks.SEMANTIC_SEGMENTATION(lambda v: tf.ones((2, 3, 3)) * 4.0, x, masks)
    np.testing.assert_allclose(seg, [4.0, 4.0])


def iou(a, b):
    """IoU of two (x1, y1, x2, y2) boxes, by hand."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# predictions of a constant detector: A, B and one zero-padded row (not a box)
PREDICTED = np.array([[0, 0, 2, 2, 0.5, 1.0, 0.0],
                      [1, 1, 3, 3, 1.0, 0.6, 0.8],
                      [0, 0, 0, 0, 0.0, 0.0, 0.0]], np.float32)
REFERENCES = np.array([[0, 0, 2, 2, 1.0, 1.0, 0.0],
                       [1, 1, 3, 3, 1.0, 0.0, 1.0]], np.float32)


def detector(x):
    return tf.tile(tf.constant(PREDICTED)[None], (tf.shape(x)[0], 1, 1))


@pytest.mark.parametrize("name, use_proba, use_class", [
    ("object detection", True, True), ("object detection box position", False, False),
    ("object detection box proba", True, False), ("object detection box class", False, True)])
def test_detection_scores_match_hand_computed_iou_matching(name, use_proba, use_class):
    """DRise: per reference box, the best predicted box of IoU * proba * cosine(classes);
    the mean over the reference boxes; zero rows are padding, not boxes."""
    def pair_score(ref, pred):
        score = iou(ref[:4], pred[:4])
        if use_proba:
            score *= pred[4]
        if use_class:
            score *= ref[5:] @ pred[5:] / np.linalg.norm(ref[5:]) / np.linalg.norm(pred[5:])
        return score

    best = [max(pair_score(ref, pred) for pred in PREDICTED[:2]) for ref in REFERENCES]
    padded = np.concatenate([REFERENCES, np.zeros((1, 7), np.float32)])
    targets = tf.constant(np.stack([REFERENCES[0], REFERENCES[1]]))  # (2, 7): one box each
    several = tf.constant(padded[None].repeat(2, 0))  # (2, 3, 7): both boxes, + padding
    operator = operators.get(name)
    x = tf.zeros((2, 4, 4, 1))
    np.testing.assert_allclose(operator(detector, x, targets), best, rtol=1e-3)
    np.testing.assert_allclose(operator(detector, x, several), [np.mean(best)] * 2, rtol=1e-3)
    # by hand, for the full DRise score: (0.5 + 0.8) / 2
    if name == "object detection":
        np.testing.assert_allclose(np.mean(best), 0.65, rtol=1e-6)


def test_detection_with_no_box_scores_zero_and_custom_intersection():
    x = tf.zeros((1, 4, 4, 1))
    no_boxes = lambda v: tf.zeros((1, 3, 7))  # noqa: E731
    score = operators.object_detection_operator(no_boxes, x, tf.constant(REFERENCES[:1]))
    np.testing.assert_allclose(score, [0.0])
    # a custom intersection score, Xplique's keyword: here 1 for every pair of boxes
    ones = lambda a, b: tf.ones_like(a[..., 0] + b[..., 0])  # noqa: E731
    score = operators.object_detection_operator(
        detector, x, tf.constant(REFERENCES[1:]), intersection_score_fn=ones)
    np.testing.assert_allclose(score, [max(0.5 * 0.0, 1.0 * 0.8)], rtol=1e-4)


def test_task_targets_of_higher_rank_are_checked_against_the_outputs():
    seg = operators.get("semantic segmentation")
    outputs = np.ones((2, 4, 4, 2), np.float32)
    masks = np.zeros((2, 4, 4, 2), np.float32)
    masks[:, :2, :2, 1] = 1
    prepared = operators.prepare_targets(masks, outputs, seg)
    assert prepared.shape == (2, 4, 4, 2)
    with pytest.raises(InvalidArgumentError, match=r"targets .*\(2, 4, 4, 3\).*\(2, 4, 4, 2\)"):
        operators.prepare_targets(np.ones((2, 4, 4, 3)), outputs, seg)
    masks[1] = 0
    with pytest.raises(InvalidArgumentError, match="input 1.*all zeros"):
        operators.prepare_targets(masks, outputs, seg)
    with pytest.raises(InvalidArgumentError, match="targets is required"):
        operators.prepare_targets(None, outputs, seg)
    det = operators.get("object detection")
    boxes = np.ones((2, 3, 7), np.float32)
    assert operators.prepare_targets(boxes, boxes, det).shape == (2, 3, 7)
    assert operators.prepare_targets(boxes[:, 0], boxes, det).shape == (2, 7)
    with pytest.raises(InvalidArgumentError, match=r"4 \+ 1 \+ nb_classes"):
        operators.prepare_targets(boxes[..., :4], boxes, det)
    with pytest.raises(InvalidArgumentError, match="width 8"):
        operators.prepare_targets(np.ones((2, 8)), boxes, det)
    with pytest.raises(InvalidArgumentError, match="rank"):
        operators.prepare_targets(np.ones((2, 1, 3, 7)), boxes, det)
    # classification still reads (N,) or (N, K) only
    with pytest.raises(InvalidArgumentError, match=r"\(N,\) or .*\(N, K\)"):
        operators.prepare_targets(np.ones((2, 3, 7)), boxes, operators.get(None))


def test_all_zero_target_boxes_warn_naming_the_input():
    boxes = np.ones((2, 3, 7), np.float32)
    targets = boxes.copy()
    targets[0] = 0
    _, caught = caught_warnings(lambda: operators.prepare_targets(
        targets, boxes, operators.get("object detection")))
    assert len(caught) == 1 and "input 0 " in str(caught[0].message)


def test_tasks_and_target_helpers_import_without_tensorflow():
    import subprocess
    import sys
    code = ("import sys; import sobol_tf.tasks, sobol_tf.utils_functions; "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_boxes_of_another_width_than_the_targets_are_refused():
    """(B, 2, 14) boxes flatten like (B, 4, 7): the operator checks the box width itself."""
    model = lambda v: tf.ones((2, 2, 14))  # noqa: E731
    with pytest.raises(InvalidArgumentError, match=r"width 7.*\(2, 2, 14\)"):
        operators.object_detection_operator(model, tf.zeros((2, 4, 4, 1)), tf.ones((2, 7)))
