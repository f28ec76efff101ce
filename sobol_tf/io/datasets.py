"""tf.data sources of image files: :func:`image_files` lists them and
:func:`image_files_dataset` decodes them in tf.data's threads with the one decoder of
:func:`sobol_tf.io.images.decode_image_file` (what ``sobol-tf explain`` reads too).

Reachable as :func:`sobol_tf.streaming.image_files` and
:func:`sobol_tf.streaming.image_files_dataset`.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.io import images as _images
from sobol_tf.io.images import IMAGE_EXTENSIONS
from sobol_tf.io.problems import FileProblem, PathLike, one_line


def image_files(paths_or_folder: Union[PathLike, Sequence[PathLike]], *,
                exclude: Optional[PathLike] = None) -> List[str]:
    """The image files of a folder (recursively) or of a list of files and folders; the
    listing of ``sobol-tf explain`` (one implementation, :func:`sobol_tf.io.images.list_images`).

    Args:
        paths_or_folder: a folder, a file, or a list of them. Folders are listed
            recursively, keeping the files whose name ends with one of
            :data:`IMAGE_EXTENSIONS` (any case), sorted by their path inside the folder
            (component by component); hidden files and folders (``.name``) are left
            out. Files named directly are kept as given (a file that is not an image is
            reported when read).
        exclude: a folder to leave out (e.g. an output folder inside the input folder).

    Returns:
        list of paths (str), in order, without duplicates.

    Raises:
        InvalidArgumentError: a path that does not exist; a folder without image files.
        InvalidTypeError: ``paths_or_folder`` not a path or a list of paths.
    """
    if isinstance(paths_or_folder, (str, bytes, os.PathLike)):
        paths_or_folder = [paths_or_folder]
    try:
        entries = [os.fsdecode(p) for p in paths_or_folder]
    except TypeError as exc:
        raise InvalidTypeError(
            "paths_or_folder must be a path or a list of paths (files or folders), got "
            f"{type(paths_or_folder).__name__}.") from exc
    for entry in entries:
        if not os.path.exists(entry):
            raise InvalidArgumentError(
                f"paths_or_folder: {entry!r} is neither a file nor a folder.")
    try:
        listed = _images.list_images(entries, exclude=exclude)
    except FileProblem as problem:
        raise InvalidArgumentError(
            f"paths_or_folder: no image file ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"{problem.path!r}, even in its sub-folders.") from None
    if not listed:
        raise InvalidArgumentError(f"paths_or_folder: no image file in {entries!r}.")
    return list(dict.fromkeys(listed))


def _size_of(size: Any) -> Tuple[Optional[int], Optional[int]]:
    """(height, width) of ``size``; None, or None for a side: the file's own."""
    if size is None:
        return None, None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(s is not None and (isinstance(s, bool) or not isinstance(
                s, (int, np.integer)) or s < 1) for s in size)):
        raise InvalidArgumentError(
            f"size must be (height, width) of positive integers (None for a side: the "
            f"file's own), one integer or None, got {size!r}.")
    height, width = (None if s is None else int(s) for s in size)
    return height, width


def image_files_dataset(paths_or_folder: Union[PathLike, Sequence[PathLike]],
                        size: Union[None, int, Tuple[Optional[int], Optional[int]]], *,
                        channels: Optional[int] = 3, scale: float = 1.0,
                        num_parallel_calls: Optional[int] = None) -> tf.data.Dataset:
    """A tf.data.Dataset of image files, decoded and resized in tf.data exactly as
    ``sobol-tf explain`` reads them (one decoder, :func:`sobol_tf.io.images.decode_image_file`).

    Each file is read and decoded (PNG, JPEG, GIF (first frame), BMP) to [0, 1] floats,
    converted to ``channels`` as Keras' ``load_img`` does (alpha dropped, not
    composited; grayscale repeated into RGB; RGB to grayscale by ITU-R 601-2 luma
    0.299 R + 0.587 G + 0.114 B, not rounded), resized to ``size`` (bilinear,
    antialiased) and multiplied by ``scale``, in tf.data's threads. A file that cannot
    be read or decoded (vanished, empty, corrupt, not an image) does not end the stream:
    its element carries a zero image and its error message, and :func:`explain_dataset`
    skips it and reports it (``ExplainedBatch.errors``: position, path, message).
    (Unlike ``tf.data.experimental.ignore_errors``, which drops the element and its
    name.) To catch the error per file, the decoder runs in one ``tf.py_function``
    (TensorFlow's decode and resize kernels release the GIL) inside the parallel ``map``.

    Args:
        paths_or_folder: a folder (listed recursively, image files only), a file, or a
            list of them (see :func:`image_files`).
        size: (height, width) of the model's inputs, or one int for square ones. None
            (or None for a side) keeps each file's own size: elements then differ in
            size and cannot be ``batch``-ed together; group them by size first, e.g.
            ``ds.group_by_window`` (``sobol-tf explain`` does so for models of free
            input size), or explain them with ``batch_size=1``.
        channels: 1 (grayscale), 2, 3 (RGB) or 4 (RGBA), or None for each file's own.
        scale: what pixels in [0, 1] are multiplied by (255.0 for models trained on
            0..255 pixels).
        num_parallel_calls: files decoded in parallel (None: tf.data.AUTOTUNE).

    Returns:
        tf.data.Dataset of unbatched dicts ``{'inputs': (H, W, channels) float32,
        'names': path, 'errors': message or ''}``, in the order of :func:`image_files`
        (call it for the list of paths). Map it further as any dataset (keep the dict).

    Raises:
        InvalidArgumentError: a bad ``size`` or ``channels``, a path that does not exist,
            no image file.
    """
    height_width = _size_of(size)
    if channels not in (None, 1, 2, 3, 4):
        raise InvalidArgumentError(
            f"channels must be 1, 2, 3, 4 or None, got {channels!r}.")
    return files_dataset(image_files(paths_or_folder), height_width, channels, scale,
                          num_parallel_calls)


def files_dataset(paths: Sequence[str], size: Tuple[Optional[int], Optional[int]],
                  channels: Optional[int], scale: float,
                  num_parallel_calls: Optional[int] = None) -> tf.data.Dataset:
    """The dataset of :func:`image_files_dataset` over a list of paths taken as they are
    (``sobol-tf explain`` lists them itself)."""
    height, width = size

    def load(path):
        path = path.numpy().decode("utf-8", "surrogateescape")
        try:
            _, image = _images.decode_image_file(path, channels, size, scale)
            return image.astype(np.float32, copy=False), ""
        except FileProblem as problem:
            message = problem.reason
        except Exception as exc:  # what the decoder did not foresee: still one file
            message = f"cannot read the image: {one_line(exc)}"
        return np.zeros((height or 1, width or 1, channels or 1), np.float32), message

    def element(path):
        image, error = tf.py_function(load, [path], [tf.float32, tf.string])
        image = tf.ensure_shape(image, (height, width, channels))
        return {"inputs": image, "names": path, "errors": tf.ensure_shape(error, ())}

    names = [os.fsencode(p) for p in paths]
    return tf.data.Dataset.from_tensor_slices(tf.constant(names, tf.string)).map(
        element, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
        deterministic=True)


