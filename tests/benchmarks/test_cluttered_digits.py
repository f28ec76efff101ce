"""The cluttered-digits builder: the digit is inside its box, only clutter outside."""
import numpy as np
import pytest

from cluttered_digits import (box_masks, make_cluttered_digits, pool, upsampled_digits)

CLEAN = dict(noise=0.0)


@pytest.fixture(scope="module")
def clean():
    return make_cluttered_digits(60, split="test", seed=3, **CLEAN)


def test_shapes_and_ranges(clean):
    images, labels, boxes, sources = clean
    assert images.shape == (60, 48, 48, 1) and images.dtype == np.float32
    assert labels.shape == sources.shape == (60,) and boxes.shape == (60, 4)
    assert images.min() >= 0.0 and images.max() <= 1.0
    sides = boxes[:, 2:] - boxes[:, :2]
    assert np.all(sides[:, 0] == sides[:, 1])                     # square boxes
    assert sides.min() >= 16 and sides.max() <= 20
    assert boxes[:, :2].min() >= 0 and boxes[:, 2:].max() <= 48


def test_the_box_holds_the_pasted_digit_exactly(clean):
    images, _, boxes, sources = clean
    for image, (top, left, bottom, right), source in zip(images[..., 0], boxes, sources):
        digit = upsampled_digits(bottom - top)[source]
        np.testing.assert_array_equal(image[top:bottom, left:right], digit)
        assert digit.sum() > 1.0                                   # there is ink


def test_labels_are_those_of_the_scan_that_matches_the_box(clean):
    # independent of `sources`: find the scan closest to the box's content among all
    # 1,797 upsampled to the box's size, and compare the classes
    from sklearn.datasets import load_digits

    targets = load_digits().target
    images, labels, boxes, _ = clean
    for image, label, (top, left, bottom, right) in zip(images[..., 0], labels, boxes):
        candidates = upsampled_digits(bottom - top)
        distances = np.abs(candidates - image[top:bottom, left:right]).sum(axis=(1, 2))
        assert distances.min() == 0.0
        assert targets[np.argmin(distances)] == label


def test_outside_the_box_only_clutter():
    bare = make_cluttered_digits(20, seed=5, nb_fragments=(0, 0), **CLEAN)
    outside = ~box_masks(bare.boxes, 48, 48)
    assert np.all(bare.images[..., 0][outside] == 0.0)           # nothing without clutter
    cluttered = make_cluttered_digits(20, seed=5, nb_fragments=(3, 6), **CLEAN)
    ink_outside = (cluttered.images[..., 0] * ~box_masks(cluttered.boxes, 48, 48)).sum((1, 2))
    assert np.all(ink_outside > 1.0)                              # fragments, outside only
    noisy = make_cluttered_digits(20, seed=5, nb_fragments=(0, 0), noise=0.1)
    assert np.mean(noisy.images[..., 0][~box_masks(noisy.boxes, 48, 48)] > 0) > 0.3


def test_seeded_and_splits_disjoint():
    first = make_cluttered_digits(10, seed=7)
    again = make_cluttered_digits(10, seed=7)
    other = make_cluttered_digits(10, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.images, other.images)
    train, test = pool("train"), pool("test")
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    assert np.isin(make_cluttered_digits(50, split="test", seed=1).sources, test).all()
    assert np.isin(first.sources, train).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        make_cluttered_digits(2, split="validation")
    with pytest.raises(ValueError, match="digit_sizes"):
        make_cluttered_digits(2, canvas_size=16, digit_sizes=(16, 20))


def test_box_masks_by_hand():
    masks = box_masks([[1, 2, 3, 5]], 4, 6)
    expected = np.zeros((1, 4, 6), bool)
    expected[0, 1:3, 2:5] = True
    np.testing.assert_array_equal(masks, expected)
