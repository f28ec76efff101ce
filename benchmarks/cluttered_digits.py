"""Cluttered digits: a dataset where the evidence's location is known.

A real handwritten digit (scikit-learn's 8x8 scans, shipped with the package: no
download), upsampled to a random side in ``digit_sizes``, is pasted at a random place
of a dark canvas; the label is that digit's class and its box is the pasted square.
The clutter is made of fragments of other digits (random crops of a third to two thirds
of their side, any class), pasted anywhere *outside* the box, plus Gaussian noise over
the whole canvas. Inside the box there is therefore the digit (and noise), outside it
only clutter (and noise): a map that points outside the box points at clutter.

The source digits are split once (fixed permutation, ``TEST_SHARE`` of them held out)
into a 'train' and a 'test' pool; canvases of one split use digits and fragments of
that pool only, so test canvases show scans the model never saw.

    >>> data = make_cluttered_digits(1000, split="train", seed=0)
    >>> data.images.shape, data.labels.shape, data.boxes.shape
    ((1000, 48, 48, 1), (1000,), (1000, 4))
"""
from collections import namedtuple
from functools import lru_cache

import numpy as np

#: share of the source scans held out for the 'test' pool.
TEST_SHARE = 0.25
#: seed of the one permutation splitting the scans into pools (fixed on purpose).
POOL_SEED = 1234
#: attempts at placing a fragment outside the box before giving it up.
PLACEMENT_TRIES = 50
SPLITS = ("train", "test")

ClutteredDigits = namedtuple("ClutteredDigits", ["images", "labels", "boxes", "sources"])
ClutteredDigits.__doc__ = """Canvases with their ground truth.

Attributes:
    images: float32 (N, S, S, 1) in [0, 1], ink bright on a dark background.
    labels: int64 (N,), the class of the pasted digit.
    boxes: int64 (N, 4), (top, left, bottom, right) of the pasted digit, bottom and
        right exclusive: ``images[i, top:bottom, left:right]`` is the digit's square.
    sources: int64 (N,), the index of the pasted digit in ``load_digits()``.
"""


@lru_cache(maxsize=1)
def _scans():
    """scikit-learn's digits as float32 (1797, 8, 8) in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def pool(split):
    """Indices (into ``load_digits()``) of the scans of ``split``, 'train' or 'test'."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    nb_scans = len(_scans()[0])
    order = np.random.default_rng(POOL_SEED).permutation(nb_scans)
    nb_test = int(round(TEST_SHARE * nb_scans))
    return np.sort(order[:nb_test] if split == "test" else order[nb_test:])


@lru_cache(maxsize=32)
def upsampled_digits(size):
    """Every scan upsampled bilinearly to ``size`` x ``size``: float32 (1797, size, size)."""
    from scipy.ndimage import zoom

    scans = _scans()[0]
    zoomed = zoom(scans, (1, size / 8, size / 8), order=1, grid_mode=True, mode="nearest")
    return np.clip(zoomed, 0.0, 1.0).astype(np.float32)


def _overlaps(top, left, height, width, box):
    b_top, b_left, b_bottom, b_right = box
    return top < b_bottom and b_top < top + height and left < b_right and b_left < left + width


def make_cluttered_digits(nb_images, *, split="train", seed=0, canvas_size=48,
                          digit_sizes=(16, 20), nb_fragments=(3, 6), noise=0.08):
    """Canvases with one pasted digit each, clutter outside its box, noise everywhere.

    Args:
        nb_images: number of canvases N.
        split: 'train' or 'test': the pool of scans the digits and fragments come from.
        seed: seed of every random draw; the same arguments give the same canvases.
        canvas_size: side S of the square canvases; 48.
        digit_sizes: (smallest, largest) side of the pasted digit, both included.
        nb_fragments: (fewest, most) fragments of other digits per canvas, both included;
            (0, 0) for no fragment.
        noise: standard deviation of the Gaussian noise added to every pixel before
            clipping to [0, 1]; 0 for none.

    Returns:
        :class:`ClutteredDigits` (images, labels, boxes, sources).

    Raises:
        ValueError: a digit larger than the canvas, an unknown split, bad ranges.
    """
    smallest, largest = digit_sizes
    fewest, most = nb_fragments
    if not 1 <= smallest <= largest <= canvas_size:
        raise ValueError(f"digit_sizes must satisfy 1 <= smallest <= largest <= "
                         f"canvas_size={canvas_size}, got {digit_sizes}.")
    if not 0 <= fewest <= most:
        raise ValueError(f"nb_fragments must satisfy 0 <= fewest <= most, got {nb_fragments}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    rng = np.random.default_rng(seed)
    indices = pool(split)
    labels_of = _scans()[1]
    images = np.zeros((nb_images, canvas_size, canvas_size), np.float32)
    boxes = np.zeros((nb_images, 4), np.int64)
    sources = rng.choice(indices, size=nb_images)
    sizes = rng.integers(smallest, largest + 1, size=nb_images)
    for i in range(nb_images):
        size = int(sizes[i])
        top, left = rng.integers(0, canvas_size - size + 1, size=2)
        box = (int(top), int(left), int(top + size), int(left + size))
        boxes[i] = box
        canvas = images[i]
        for _ in range(rng.integers(fewest, most + 1)):
            other_size = int(rng.integers(smallest, largest + 1))
            other = upsampled_digits(other_size)[rng.choice(indices)]
            height, width = rng.integers(other_size // 3, 2 * other_size // 3 + 1, size=2)
            row, col = rng.integers(0, other_size - height + 1), rng.integers(
                0, other_size - width + 1)
            fragment = other[row:row + height, col:col + width]
            for _ in range(PLACEMENT_TRIES):
                f_top = int(rng.integers(0, canvas_size - height + 1))
                f_left = int(rng.integers(0, canvas_size - width + 1))
                if not _overlaps(f_top, f_left, height, width, box):
                    region = canvas[f_top:f_top + height, f_left:f_left + width]
                    np.maximum(region, fragment, out=region)
                    break
        canvas[box[0]:box[2], box[1]:box[3]] = upsampled_digits(size)[sources[i]]
    if noise > 0:
        images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return ClutteredDigits(images[..., None], labels_of[sources], boxes, sources)


def box_masks(boxes, height, width):
    """Boolean (N, height, width) masks, True inside each (top, left, bottom, right) box."""
    boxes = np.asarray(boxes)
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    top, left, bottom, right = (boxes[:, k, None, None] for k in range(4))
    return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
