"""Image files: which files of a folder are images, and the one decoder of an image file.

:func:`list_images` is the listing of ``sobol-tf explain`` and of
:func:`sobol_tf.streaming.image_files`; :func:`decode_image_file` is the decoder of both
(TensorFlow is imported when a file is first decoded). :data:`LUMA_WEIGHTS` is the
grayscale conversion shared with :mod:`sobol_tf.plots`.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from sobol_tf.io.problems import FileProblem, PathLike

CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}
#: ITU-R 601-2 luma weights of R, G, B (PIL's convert("L"), Keras' load_img grayscale)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: extensions of the files taken from a folder (any case); files named on the command
#: line are tried whatever their name
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def list_images(paths: Sequence[str], exclude: Optional[PathLike] = None) -> List[str]:
    """The image files named by ``paths``, in order: a file as given, a folder as its
    image files (by extension, :data:`IMAGE_EXTENSIONS`), recursively, sorted by their
    path inside the folder. Hidden files and folders (``.name``) and the folder
    ``exclude`` (the output folder, when it lies inside an input folder) are left out.

    Raises:
        FileProblem: a folder without any image file.
    """
    excluded = os.path.realpath(exclude) if exclude is not None else None
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        inside = []
        for root, folders, names in os.walk(path):
            folders[:] = [name for name in folders if not name.startswith(".")
                          and os.path.realpath(os.path.join(root, name)) != excluded]
            inside += [os.path.join(root, name) for name in names
                       if not name.startswith(".")
                       and name.lower().endswith(IMAGE_EXTENSIONS)]
        if not inside:
            raise FileProblem(path, "a folder without image files (" +
                              ", ".join(IMAGE_EXTENSIONS) + "), even in its sub-folders")
        inside.sort(key=lambda p: os.path.relpath(p, path).split(os.sep))
        found += inside
    return found


def convert_channels(image: np.ndarray, channels: Optional[int]) -> np.ndarray:
    """Convert a (H, W, C) float image to ``channels`` as Keras' ``load_img`` does.

    Alpha is dropped when the model has none (no compositing, as PIL's
    ``convert("RGB")``) and set to 1 (opaque) when it has one and the image has none;
    grayscale becomes RGB by repeating the channel; RGB becomes grayscale by ITU-R
    601-2 luma, L = 0.299 R + 0.587 G + 0.114 B, as PIL's ``convert("L")`` but without
    rounding to whole grey levels. ``channels`` None: unchanged.
    """
    have = image.shape[-1]
    if channels is None or have == channels:
        return image
    has_alpha = have in (2, 4)
    color = image[..., :-1] if has_alpha else image
    if color.shape[-1] == 3 and channels in (1, 2):
        color = (color @ np.asarray(LUMA_WEIGHTS, np.float32))[..., None]
    elif color.shape[-1] == 1 and channels in (3, 4):
        color = np.repeat(color, 3, axis=-1)
    if channels in (1, 3):
        return color
    alpha = image[..., -1:] if has_alpha else np.ones_like(color[..., :1])
    return np.concatenate([color, alpha], axis=-1)


def decode_image_file(path: str, channels: Optional[int],
                      size: Optional[Tuple[Optional[int], Optional[int]]],
                      scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Read and decode one image file as the command line and
    :func:`sobol_tf.streaming.image_files_dataset` both do (one decoder for both).

    The image is converted to ``channels`` (:func:`convert_channels`; None: the file's
    own), resized (bilinear, antialiased) to ``size`` = (height, width) (None for either:
    the file's own) and multiplied by ``scale``.

    Returns:
        (display image in [0, 1] at the file's size without alpha, model input
        (H, W, C)), float32 numpy.

    Raises:
        FileProblem: the file cannot be read, is empty, is not a PNG, JPEG, GIF or BMP
            image (or a damaged one), or has more than 4 channels.
    """
    import tensorflow as tf  # heavy: sobol_tf.io and `sobol-tf --help` do not need it

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise FileProblem(path, f"cannot read the image: {exc.strerror or exc}") from exc
    if not data:
        raise FileProblem(path, "the file is empty")
    try:
        image = tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise FileProblem(path, "cannot decode the image: not a PNG, JPEG, GIF or BMP "
                          "file, or a damaged one") from exc
    if image.shape[-1] not in CHANNEL_NAMES:
        raise FileProblem(path, f"the image has {image.shape[-1]} channels; expected 1 to 4")
    image = convert_channels(image.numpy(), channels)
    height, width = size if size is not None else (None, None)
    size = (height or image.shape[0], width or image.shape[1])
    inputs = image
    if tuple(image.shape[:2]) != size:
        inputs = tf.image.resize(image, size, method="bilinear", antialias=True).numpy()
    inputs = inputs * np.float32(scale)
    display = image[..., :-1] if image.shape[-1] in (2, 4) else image
    return display, inputs

