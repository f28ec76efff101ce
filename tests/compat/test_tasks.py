"""Xplique's tasks beyond classification, called as Xplique users call them.

``operator=Tasks.SEMANTIC_SEGMENTATION`` / ``"semantic segmentation"`` /
``Tasks.OBJECT_DETECTION`` ... with Xplique's target formats: segmentation masks
(N, H, W, C) like the model's outputs, box rows (N, 4 + 1 + K) or (N, nb_boxes, 4 + 1 + K).
The models are built so that the right answer is known: the explained score depends only
on a known block of pixels, so every attribution must lie in that block.
"""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import Occlusion, Rise, Saliency, SobolAttributionMethod
from sobol_tf.errors import InvalidArgumentError
from sobol_tf.metrics import Deletion, Insertion
from sobol_tf.tasks import Tasks
from sobol_tf.utils_functions import object_detection as od
from sobol_tf.utils_functions.segmentation import (get_class_zone, get_common_border,
                                                   get_connected_zone, get_in_out_border,
                                                   list_class_connected_zones)

N, H, W = 2, 8, 8


def images(seed=0):
    return np.random.default_rng(seed).uniform(0.2, 1.0, (N, H, W, 1)).astype(np.float32)


def as_maps(maps):
    """Maps (N, H, W) (the channel axis of a one-channel map dropped)."""
    maps = np.asarray(maps)
    return maps[..., 0] if maps.ndim == 4 else maps


def block(rows, cols):
    """A (H, W) boolean mask of one block of pixels."""
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    return mask


# -- semantic segmentation ----------------------------------------------------------------
def segmenter(x):
    """Two classes per pixel; the class-0 score of pixel (i, j) is the input at (i, j + 4)
    (the columns rolled by 4), the class-1 score is 1.2 - that. Outputs (B, H, W, 2)."""
    shifted = tf.roll(x[..., 0], shift=-4, axis=2)
    return tf.stack([shifted, 1.2 - shifted], axis=-1)


ZONE = block(slice(0, 4), slice(0, 4))      # the zone explained (top-left), class 0
SOURCE = block(slice(0, 4), slice(4, 8))    # the pixels its class-0 scores read (top-right)


def zone_targets():
    targets = np.zeros((N, H, W, 2), np.float32)
    targets[:, ZONE, 0] = 1.0
    return targets


@pytest.mark.parametrize("operator", [Tasks.SEMANTIC_SEGMENTATION, "semantic segmentation"])
def test_occlusion_and_sobol_put_a_segmentation_zone_on_the_pixels_it_reads(operator):
    x, targets = images(), zone_targets()
    occlusion = as_maps(Occlusion(segmenter, batch_size=2, operator=operator, patch_size=4,
                                  patch_stride=4)(x, targets))
    all_maps = [occlusion]
    if isinstance(operator, Tasks):  # one Sobol run is enough (each run traces, ~2 s)
        all_maps.append(as_maps(SobolAttributionMethod(segmenter, grid_size=8, nb_design=8,
                                                       operator=operator)(x, targets)))
    for maps in all_maps:
        assert maps.shape == (N, H, W)
        assert np.all(np.abs(maps[:, ~SOURCE]) < 1e-6)
        assert np.all(np.abs(maps[:, SOURCE]) > 1e-3)
    # occlusion, closed form: removing the source block drops the zone's mean to 0
    expected = x[:, SOURCE, 0].mean(axis=1)
    np.testing.assert_allclose(occlusion[:, SOURCE].mean(axis=1), expected, rtol=1e-5)


def test_saliency_of_a_segmentation_zone_is_one_over_its_size_on_the_source():
    x, targets = images(), zone_targets()
    maps = as_maps(Saliency(segmenter, operator=Tasks.SEMANTIC_SEGMENTATION)(x, targets))
    np.testing.assert_allclose(maps[:, SOURCE], 1 / ZONE.sum(), rtol=1e-5)
    np.testing.assert_allclose(maps[:, ~SOURCE], 0, atol=1e-7)


def test_rise_ranks_the_source_of_a_segmentation_zone_first():
    x, targets = images(), zone_targets()
    maps = as_maps(Rise(segmenter, batch_size=64, operator="semantic segmentation",
                        nb_samples=512, grid_size=2, seed=0)(x, targets))
    assert np.all(maps[:, SOURCE].mean(axis=1) > maps[:, ~SOURCE].max(axis=1))


def test_metrics_score_the_segmentation_zone():
    """Deletion/Insertion on the zone's mean score equal the same metrics run with the
    operator written by hand."""
    x, targets = images(), zone_targets()
    explanation = np.where(SOURCE, 1.0, 0.0)[None].repeat(N, 0).astype(np.float32)
    def by_hand(model, v, t):
        return tf.reduce_sum(model(v) * t, axis=[1, 2, 3]) / tf.reduce_sum(t, axis=[1, 2, 3])

    for metric in (Deletion, Insertion):
        task = metric(segmenter, x, targets, operator=Tasks.SEMANTIC_SEGMENTATION)(explanation)
        hand = metric(segmenter, x, targets, operator=by_hand)(explanation)
        np.testing.assert_allclose(task, hand, rtol=1e-6)
    # the source removed first: the deletion curve falls to 0 after the source's pixels
    assert Deletion(segmenter, x, targets, operator="semantic segmentation", steps=4)(
        explanation) < Deletion(segmenter, x, targets, operator="semantic segmentation",
                                steps=4)(1.0 - explanation)


def test_segmentation_targets_must_match_the_outputs():
    x = images()
    explainer = Occlusion(segmenter, batch_size=2, operator=Tasks.SEMANTIC_SEGMENTATION,
                          patch_size=4, patch_stride=4)
    with pytest.raises(InvalidArgumentError, match="targets"):
        explainer(x, np.ones((N, H, W, 3), np.float32))
    with pytest.raises(InvalidArgumentError, match="all zeros"):
        explainer(x, np.zeros((N, H, W, 2), np.float32))


# -- the segmentation helpers (sobol_tf.utils_functions.segmentation) ----------------------
def test_get_class_zone_and_connected_zones():
    labels = np.zeros((5, 5), int)
    labels[0:2, 0:2] = 1      # a blob of class 1
    labels[2, 2] = 1          # touches it by a corner: same 8-connected zone
    labels[4, 3:5] = 1        # another blob of class 1
    predictions = np.eye(3, dtype=np.float32)[labels] * 0.8 + 0.05
    zone = get_class_zone(predictions, 1)
    assert zone.shape == (5, 5, 3)
    np.testing.assert_array_equal(zone[..., 1], labels == 1)
    assert not zone[..., [0, 2]].any()
    connected = get_connected_zone(predictions, (0, 0))
    expected = np.zeros((5, 5), bool)
    expected[0:2, 0:2] = expected[2, 2] = True
    np.testing.assert_array_equal(connected[..., 1], expected)
    assert not connected[..., [0, 2]].any()
    zones = list_class_connected_zones(predictions, 1, zone_minimum_size=1)
    assert [int(z.sum()) for z in zones] == [5, 2]
    assert [int(z.sum()) for z in list_class_connected_zones(predictions, 1, 2)] == [5]
    with pytest.raises(InvalidArgumentError, match="class_id"):
        get_class_zone(predictions, 2)
    with pytest.raises(InvalidArgumentError, match="coordinates"):
        get_connected_zone(predictions, (5, 0))


def test_in_out_border_and_common_border():
    zone = np.zeros((6, 6, 2), np.float32)
    zone[1:4, 1:4, 1] = 1  # a 3x3 square of class 1
    border = get_in_out_border(zone)
    expected = np.zeros((6, 6))
    expected[0:5, 0:5] = -1         # outside pixels touching the square (8-neighbours)
    expected[1:4, 1:4] = 1          # inside pixels touching the outside
    expected[2, 2] = 0              # the centre touches only the square
    np.testing.assert_array_equal(border[..., 1], expected)
    assert not border[..., 0].any()
    other = np.zeros((6, 6, 2), np.float32)
    other[1:4, 4:6, 0] = 1  # a block of class 0 right of the square
    common = get_common_border(border, get_in_out_border(other))
    touching = np.zeros((6, 6), bool)
    touching[0:5, 3:5] = True  # both borders are non-zero on columns 3 and 4, rows 0-4
    assert set(np.unique(common[..., 1][touching])) <= {-1.0, 1.0}
    np.testing.assert_array_equal(common[~touching], 0)
    with pytest.raises(InvalidArgumentError, match="no common border"):
        get_common_border(border, np.zeros((6, 6, 2), np.float32))
    # targets built by the helpers explain a model as they are
    image = np.where(SOURCE, 0.9, 0.3).astype(np.float32)[None, :, :, None]
    target = get_class_zone(np.asarray(segmenter(image))[0], 0)  # class 0 wins on ZONE only
    np.testing.assert_array_equal(target[..., 0], ZONE)
    maps = as_maps(Saliency(segmenter, operator="semantic segmentation")(image, target[None]))
    np.testing.assert_allclose(maps[0], SOURCE / ZONE.sum(), atol=1e-6)


# -- object detection ---------------------------------------------------------------------
PROBA = block(slice(4, 8), slice(0, 4))     # drives box 0's detection probability
POSITION = block(slice(0, 4), slice(4, 8))  # drives box 0's right edge


def detector(x):
    """Two boxes (x1, y1, x2, y2, proba, class 0, class 1) per image, no NMS.

    Box 0: (0, 0, 2 + 3 m_c, 4), probability m_p, class [1, 0], with m_c, m_p the means of
    the POSITION and PROBA blocks. Box 1: fixed (4, 4, 8, 8), probability 1, class [0, 1],
    disjoint from box 0.
    """
    pixels = x[..., 0]
    m_c = tf.reduce_mean(tf.boolean_mask(pixels, POSITION, axis=1), axis=1)
    m_p = tf.reduce_mean(tf.boolean_mask(pixels, PROBA, axis=1), axis=1)
    zeros, ones = tf.zeros_like(m_c), tf.ones_like(m_c)
    box0 = tf.stack([zeros, zeros, 2 + 3 * m_c, 4 * ones, m_p, ones, zeros], -1)
    box1 = tf.stack([4 * ones, 4 * ones, 8 * ones, 8 * ones, ones, zeros, ones], -1)
    return tf.stack([box0, box1], axis=1)


TARGET_BOX = np.array([0, 0, 6, 4, 1, 1, 0], np.float32)  # IoU with box 0: (2 + 3 m_c) / 6


@pytest.mark.parametrize("operator, regions, with_sobol", [
    (Tasks.OBJECT_DETECTION_BOX_POSITION, [POSITION], True),
    ("object detection box position", [POSITION], False),
    (Tasks.OBJECT_DETECTION_BOX_PROBA, [POSITION, PROBA], False),
    (Tasks.OBJECT_DETECTION, [POSITION, PROBA], True),
    ("object detection box class", [POSITION], False)])
def test_a_box_is_explained_by_the_pixels_its_score_reads(operator, regions, with_sobol):
    x = images()
    targets = np.tile(TARGET_BOX, (N, 1))
    relevant = np.logical_or.reduce(regions)
    all_maps = [as_maps(Occlusion(detector, batch_size=4, operator=operator, patch_size=4,
                                  patch_stride=4)(x, targets)),
                as_maps(Saliency(detector, operator=operator)(x, targets))]
    if with_sobol:
        all_maps.append(as_maps(SobolAttributionMethod(detector, grid_size=8, nb_design=8,
                                                       operator=operator)(x, targets)))
    for maps in all_maps:
        assert np.all(np.abs(maps[:, ~relevant]) < 1e-6)
        for region in regions:
            assert np.all(np.abs(maps[:, region]).mean(axis=1) > 1e-4)


def test_box_score_closed_form_and_several_boxes_at_once():
    """Box position: the score is IoU = (2 + 3 m_c) / 6; occluding POSITION (m_c = 0)
    drops it by m_c / 2. Two target boxes (N, 2, 7): the mean of their scores."""
    x = images()
    m_c = x[:, POSITION, 0].mean(axis=1)
    explainer = Occlusion(detector, batch_size=4, operator="object detection box position",
                          patch_size=4, patch_stride=4)
    maps = as_maps(explainer(x, np.tile(TARGET_BOX, (N, 1))))
    np.testing.assert_allclose(maps[:, POSITION].mean(axis=1), m_c / 2, rtol=1e-3)
    second = np.array([4, 4, 8, 8, 1, 0, 1], np.float32)  # box 1 exactly: score 1
    both = np.stack([np.tile(TARGET_BOX, (N, 1)), np.tile(second, (N, 1))], axis=1)
    maps_both = as_maps(explainer(x, both))
    np.testing.assert_allclose(maps_both, maps / 2, rtol=1e-3, atol=1e-6)
    deletion = Deletion(detector, x, both, operator=Tasks.OBJECT_DETECTION_BOX_POSITION)
    assert 0 < deletion(maps_both) <= 1


def test_box_helpers():
    a = np.array([0, 0, 2, 2], np.float32)
    b = np.array([1, 1, 3, 3], np.float32)
    np.testing.assert_allclose(od.box_iou(a, b), 1 / 7, rtol=1e-3)
    np.testing.assert_allclose(od.box_iou(np.stack([a, b]), b), [1 / 7, 1], rtol=1e-3)
    boxes, proba, classes = od.format_objects(detector(images())[0])
    assert boxes.shape == (2, 4) and proba.shape == (2, 1) and classes.shape == (2, 2)
    cxcywh = np.array([[2.0, 3.0, 4.0, 2.0, 0.9]])
    xyxy = od.box_cxcywh_to_xyxy(cxcywh)
    np.testing.assert_allclose(xyxy, [[0, 2, 4, 4, 0.9]])
    np.testing.assert_allclose(od.box_xyxy_to_cxcywh(xyxy), cxcywh)
    np.testing.assert_allclose(od.box_xywh_to_xyxy([[1, 2, 3, 4]]), [[1, 2, 4, 6]])
    np.testing.assert_allclose(od.box_xyxy_to_xywh([[1, 2, 4, 6]]), [[1, 2, 3, 4]])
    np.testing.assert_allclose(od.normalize_boxes([[2, 4, 6, 8, 0.5]], (8, 16)),
                               [[0.25, 0.25, 0.75, 0.5, 0.5]])
    np.testing.assert_allclose(od.denormalize_boxes([[0.25, 0.25, 0.75, 0.5]], (8, 16)),
                               [[2, 4, 6, 8]])
    targets = od.format_box_targets([[0, 0, 6, 4]], [1.0], [[1.0, 0.0]])
    np.testing.assert_array_equal(targets, TARGET_BOX[None])
