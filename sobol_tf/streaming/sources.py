"""Every kind of data :func:`sobol_tf.streaming.explain_dataset` reads becomes batches
``{'inputs', 'targets', 'names', 'errors'}``: a tf.data.Dataset (batched or not, read
ahead by tf.data's threads), a numpy array (sliced), or a Python iterable (read by one
background thread into a bounded queue, :class:`_Reader`).
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Any, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from sobol_tf._utils.data import element_parts, is_batched
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: inputs per step of the stream when the data is not batched already
DEFAULT_BATCH_SIZE = 32
#: keys of a dataset of dicts (the elements of :func:`sobol_tf.io.datasets.image_files_dataset`)
ELEMENT_KEYS = ("inputs", "targets", "names", "errors")


def _dataset_parts(spec):
    """(input spec, target spec or None, dict keys or None) of a dataset element spec."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(ELEMENT_KEYS))
        if "inputs" not in spec or unknown:
            raise InvalidArgumentError(
                f"data is a tf.data.Dataset of dicts with keys {sorted(spec)}; explain_dataset "
                f"reads dicts with the keys {list(ELEMENT_KEYS)} ('inputs' required), "
                "(input, target) pairs or inputs alone. Map it first, e.g. "
                "ds.map(lambda d: (d['image'], d['label'])).")
        return spec["inputs"], spec.get("targets"), tuple(spec)
    x_spec, y_spec = element_parts(spec)
    return x_spec, y_spec, None


def _as_parts(element, keys):
    """A batch element (dict, tuple or tensor) as a dict of numpy arrays."""
    if keys is not None:
        parts = dict(element)
    elif isinstance(element, (tuple, list)):
        parts = {"inputs": element[0]}
        if len(element) == 2:
            parts["targets"] = element[1]
    else:
        parts = {"inputs": element}
    out = {}
    for key, value in parts.items():
        value = value.numpy() if hasattr(value, "numpy") else value
        if key in ("names", "errors"):
            value = [os.fsdecode(v) if isinstance(v, bytes) else str(v)
                     for v in np.asarray(value).reshape(-1)]
        out[key] = value
    return out


def _dataset_batches(dataset, batch_size, prefetch, declared):
    """(batches of a tf.data.Dataset, its number of inputs or None)."""
    x_spec, y_spec, keys = _dataset_parts(dataset.element_spec)
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise InvalidArgumentError(
            "data is an infinite tf.data.Dataset (e.g. after .repeat()); explain a finite "
            "part of it: ds.take(n).")
    length = None
    if is_batched(x_spec, y_spec, declared):
        if batch_size is not None:  # the caller's batch size wins over the dataset's
            dataset = dataset.unbatch().batch(batch_size)
    else:
        length = cardinality if cardinality >= 0 else None
        dataset = dataset.batch(batch_size or DEFAULT_BATCH_SIZE)
    if prefetch:
        dataset = dataset.prefetch(prefetch)
    else:  # no read-ahead at all: tf.data would otherwise inject a prefetch
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        dataset = dataset.with_options(options)

    def batches():
        for element in dataset:
            yield _as_parts(element, keys)
    return batches(), length


def _array_batches(array, batch_size):
    """Batches of an in-memory array: slices, nothing to read ahead."""
    size = batch_size or DEFAULT_BATCH_SIZE
    for start in range(0, len(array), size):
        yield {"inputs": array[start:start + size]}


class _Reader:
    """Iterate a Python iterable in a background thread, ``prefetch`` items ahead.

    Chosen over ``tf.data.Dataset.from_generator``: it needs no output signature (the
    batches' shapes and dtypes need not be declared, and may be numpy, lists or
    tensors), the iterable's own exception reaches the caller unchanged (tf.data wraps
    it in a TensorFlow error), and the thread stops as soon as the stream is closed.
    """

    _END = object()

    def __init__(self, iterable, prefetch):
        self._queue = queue.Queue(maxsize=max(prefetch, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(iterable),),
                                        daemon=True, name="sobol_tf-stream-reader")
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterator):
        try:
            for item in iterator:
                if not self._put(("item", item)):
                    return
                del item
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
            return
        self._put(("end", None))

    def __iter__(self):
        try:
            while True:
                kind, item = self._queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
                del item
        finally:
            self._stop.set()


def _iterable_batches(iterable, prefetch):
    for element in (_Reader(iterable, prefetch) if prefetch else iterable):
        if isinstance(element, dict):
            _dataset_parts({key: None for key in element})  # checks the keys
            yield _as_parts(element, tuple(element))
        elif isinstance(element, (tuple, list)) and len(element) in (1, 2):
            yield _as_parts(tuple(element), None)
        else:
            yield _as_parts(element, None)


def batches(data: Any, batch_size: Optional[int], prefetch: int,
            declared: Any) -> Tuple[Iterator[Any], Optional[int]]:
    """(iterator of batch dicts, number of inputs or None) of any supported ``data``."""
    if isinstance(data, tf.data.Dataset):
        return _dataset_batches(data, batch_size, prefetch, declared)
    if isinstance(data, (np.ndarray, tf.Tensor)):
        array = data if isinstance(data, np.ndarray) else data.numpy()
        if array.ndim < 2:
            raise InvalidArgumentError(
                f"data as an array must be a batch of inputs (N, ...), got shape "
                f"{array.shape}.")
        return _array_batches(array, batch_size), len(array)
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise InvalidTypeError(
            "data must be a tf.data.Dataset, a numpy array (N, ...) or an iterable of "
            f"batches (arrays (B, ...) or (inputs, targets) pairs), got "
            f"{type(data).__name__}.")
    return _iterable_batches(data, prefetch), None
