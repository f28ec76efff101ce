"""Explain inputs of any number, batch of inputs by batch of inputs.

:func:`explain_dataset` is a generator: it reads a batch of inputs, explains it with the
explainer's ordinary ``explain`` (the same compiled perturbation loop, several inputs
per forward batch), yields the maps and forgets them. Nothing grows with the length of
the stream: at most ``prefetch`` batches of inputs read ahead, the batch being explained
and the maps the caller holds are in memory.

Reading overlaps explaining: a ``tf.data.Dataset`` is batched and prefetched by
tf.data's own threads (its ``map`` decodes the next inputs while the model runs on the
current ones, since TensorFlow's kernels release the GIL); a plain Python iterable is
read by one background thread into a bounded queue (see :func:`explain_dataset`).

:func:`image_files_dataset` is a tf.data source of image files (decode and resize in
tf.data) whose broken files are reported by name instead of ending the stream;
:class:`MapWriter` / :func:`write_maps` write maps to disk as they come (one shard per
batch plus an index that survives a crash), and :func:`read_maps` reads them back.
"""
import json
import os
import queue
import secrets
import tempfile
import threading
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from sobol_tf._utils import files as _files
from sobol_tf._progress import Progress
from sobol_tf._utils.data import _element_parts, _is_batched, model_input_shape, to_numpy
from sobol_tf._utils.validation import check_positive_int
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: inputs per step of the stream when the data is not batched already
DEFAULT_BATCH_SIZE = 32
#: batches of inputs read ahead while the current one is explained
DEFAULT_PREFETCH = 2
#: file name endings :func:`image_files` lists (what ``tf.io.decode_image`` reads)
IMAGE_EXTENSIONS = _files.IMAGE_EXTENSIONS
#: keys of a dataset of dicts (the elements of :func:`image_files_dataset`)
ELEMENT_KEYS = ("inputs", "targets", "names", "errors")
#: the index of a folder written by :class:`MapWriter`: one JSON line per shard
INDEX_FILE = "index.jsonl"


class ExplainedBatch(NamedTuple):
    """One step of :func:`explain_dataset`.

    Attributes:
        number: the batch number, from 0.
        start, stop: positions in the stream of this batch's first element and one past
            its last (skipped elements included): element ``start + i`` is the i-th of
            the batch, and ``targets=`` rows are read at these positions.
        index: (B',) int64 positions in the stream of the inputs explained (those of
            ``start:stop`` that were not skipped), one per map.
        maps: (B', ...) float32 numpy maps, as ``explainer.explain`` returns them; None
            when every element of the batch was skipped.
        targets: the targets of the maps as given (rows of ``targets=`` or the
            dataset's), None when none were given (each map then explains the class
            the model predicts).
        names: (B',) names of the inputs explained (the file paths of
            :func:`image_files_dataset`, or a dataset's ``'names'``), None without names.
        errors: ((position, name, message), ...) for each element skipped in this batch.
    """

    number: int
    start: int
    stop: int
    index: np.ndarray
    maps: Optional[np.ndarray]
    targets: Optional[np.ndarray]
    names: Optional[tuple]
    errors: tuple


# -- sources: every kind of data becomes batches {'inputs', 'targets', 'names', 'errors'}
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
    x_spec, y_spec = _element_parts(spec)
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
    if _is_batched(x_spec, y_spec, declared):
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


def _batches(data, batch_size, prefetch, declared):
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


# -- the stream -------------------------------------------------------------------------
def explain_dataset(explainer, data, targets=None, *, batch_size=None,
                    prefetch=DEFAULT_PREFETCH, verbose=False, on_error="raise"):
    """Explain ``data`` batch of inputs by batch of inputs; a generator of
    :class:`ExplainedBatch`.

    Only the current batch of inputs, the ``prefetch`` batches read ahead and the maps
    the caller keeps are in memory, so a stream of any length runs in constant memory.
    Each batch is explained by ``explainer.explain``: the maps equal those of
    ``explainer.explain`` on all the inputs at once (to float error; random methods need
    a ``seed``, as for any two calls).

    Args:
        explainer: any :class:`~sobol_tf.attributions.Explainer`.
        data: one of

            - a ``tf.data.Dataset`` yielding inputs alone, (input, target) pairs,
              1-tuples, or dicts with the keys ``'inputs'`` (required), ``'targets'``,
              ``'names'`` (strings) and ``'errors'`` (strings, '' when the element is
              fine: a non-empty message skips the element, see
              :func:`image_files_dataset`). Batched or not: an element is a batch by
              the rule of ``explain`` (README, "Inputs, targets and models: the
              rules"): a rank-0 target means one input per element, (B,) or (B, K)
              targets a batch; else the model's declared input shape, else the
              element's rank. Unbatched elements are batched here (``batch_size``).
              Its ``map`` / ``prefetch`` run in tf.data's threads while the model runs.
            - a numpy array or tf.Tensor (N, ...): cut in slices (maps are still produced
              and released batch by batch).
            - any other iterable (a generator, a list, a ``keras.utils.PyDataset``) of
              batches: arrays (B, ...), (inputs, targets) pairs or dicts as above, each
              a batch (not one input). It is read ``prefetch`` batches ahead by a
              background thread and a bounded queue (not
              ``tf.data.Dataset.from_generator``: no output signature to declare, the
              iterable's own exceptions are raised unchanged).

        targets: None, rows (N, K) / class ids (N,) of every element of the stream
            in order (skipped elements included), read at each batch's
            ``start:stop``, or a function of a batch of inputs (B, ...) returning its
            targets (B, K) or (B,) (e.g. the predicted class ids, which then are in
            ``ExplainedBatch.targets``); None when the data carries its targets or to
            explain the predicted class.
        batch_size: inputs explained per step (not the forward batch size: that is the
            explainer's ``batch_size``, and several inputs share a forward batch). None:
            a batched dataset's own batches (an iterable's always are), else
            :data:`DEFAULT_BATCH_SIZE`. Larger steps fill the forward batches better;
            memory grows with it.
        prefetch: batches read ahead (0: none, reading then waits for the model).
        verbose: a progress line of inputs (inputs/s, time left when the length is
            known; :class:`Progress`). The explainer's own ``verbose`` bars, if set,
            show each batch.
        on_error: what an exception of ``explainer.explain`` on a batch does: "raise"
            (default) ends the stream with it; "skip" explains each input of that batch
            alone and skips (reports in ``ExplainedBatch.errors``) those that still
            fail, with the message "cannot explain: <first line of the error>"; a
            function ``(input, exception) -> message`` does the same with its message
            (what it raises ends the stream). A ``targets`` function is part of the
            work retried. KeyboardInterrupt always ends the stream.

    Yields:
        :class:`ExplainedBatch` (number, start, stop, index, maps, targets, names,
        errors), in the order of the data.

    Raises:
        InvalidTypeError: ``data`` of another type; ``batch_size`` or ``prefetch`` not an
            integer.
        InvalidArgumentError: ``batch_size`` < 1 or ``prefetch`` < 0; an infinite
            dataset; a dataset of dicts without 'inputs' or with other keys; targets
            given both ways; ``targets`` with fewer rows than the stream has elements
            (raised at the batch that runs past them) or more (raised at the end);
            ``on_error`` neither "raise", "skip" nor a function; and whatever
            ``explainer.explain`` raises on a batch (``on_error="raise"``).
    """
    batch_size = None if batch_size is None else check_positive_int("batch_size", batch_size)
    prefetch = check_positive_int("prefetch", prefetch, minimum=0)
    if not (on_error in ("raise", "skip") or callable(on_error)):
        raise InvalidArgumentError(
            f"on_error must be 'raise', 'skip' or a function (input, exception) -> "
            f"message, got {on_error!r}.")
    if targets is not None and not callable(targets):
        targets = to_numpy(targets, "targets")
        if targets.ndim == 0:
            raise InvalidArgumentError(
                "targets must be rows (N, K) or class ids (N,) of every element of the "
                "stream, or a function of a batch of inputs, got a single number.")
    declared = model_input_shape(explainer.model)
    batches, length = _batches(data, batch_size, prefetch, declared)
    progress = Progress(length, unit="inputs") if verbose else None
    return _stream(explainer, batches, targets, on_error, progress)


def _explain_or_skip(explainer, inputs, targets, on_error):
    """Explain a batch (``targets``: rows, None, or a function of the inputs).

    Returns:
        (kept mask, maps of the kept inputs or None, their targets or None,
        [(row, message)] of the inputs skipped).
    """
    def run(rows):
        part = inputs if rows is None else inputs[rows]
        chosen = targets(part) if callable(targets) else (
            targets if rows is None or targets is None else targets[rows])
        chosen = None if chosen is None else np.asarray(chosen)
        return np.asarray(explainer.explain(part, chosen)), chosen

    everything = np.ones(len(inputs), bool)
    if on_error == "raise":
        return (everything,) + run(None) + ([],)
    try:
        return (everything,) + run(None) + ([],)
    except Exception as exc:  # any error of the model or the method on this batch
        if len(inputs) == 1:
            return np.zeros(1, bool), None, None, [(0, _failure(on_error, inputs[0], exc))]
    keep, maps, chosen, failures = np.zeros(len(inputs), bool), [], [], []
    for row in range(len(inputs)):
        try:
            one_map, one_target = run(slice(row, row + 1))
        except Exception as exc:
            failures.append((row, _failure(on_error, inputs[row], exc)))
            continue
        keep[row] = True
        maps.append(one_map)
        chosen.append(one_target)
    if not maps:
        return keep, None, None, failures
    return keep, np.concatenate(maps), (None if chosen[0] is None
                                        else np.concatenate(chosen)), failures


def _failure(on_error, one_input, exc):
    if callable(on_error):
        return str(on_error(one_input, exc))
    return f"cannot explain: {_files.one_line(exc)}"


def _stream(explainer, batches, targets, on_error, progress):
    position = 0
    for number, parts in enumerate(batches):
        inputs = parts["inputs"]
        size = len(inputs)
        start, stop = position, position + size
        position = stop
        batch_targets = parts.get("targets")
        names = parts.get("names")
        messages = parts.get("errors")
        keep = np.ones(size, bool)
        errors = []
        if messages is not None:
            keep = np.array([not m for m in messages], bool)
            errors = [(int(start + i), names[i] if names is not None else None, messages[i])
                      for i in np.flatnonzero(~keep)]
        if targets is not None and not callable(targets):
            if batch_targets is not None:
                raise InvalidArgumentError(
                    "targets must be None when the data carries its targets ((input, "
                    "target) pairs or a 'targets' key).")
            if stop > len(targets):
                raise InvalidArgumentError(
                    f"targets has {len(targets)} rows but the stream has more elements "
                    f"(batch {number} covers elements {start} to {stop - 1}); give one "
                    "target per element of the data.")
            batch_targets = targets[start:stop]
        if batch_targets is not None:
            batch_targets = np.asarray(batch_targets)[keep]
        inputs = inputs[keep] if not keep.all() else inputs
        index = np.arange(start, stop, dtype=np.int64)[keep]
        kept_names = None if names is None else [n for n, k in zip(names, keep) if k]
        maps = None
        if len(inputs):
            if callable(targets):
                if batch_targets is not None:
                    raise InvalidArgumentError(
                        "targets must be None when the data carries its targets ((input, "
                        "target) pairs or a 'targets' key).")
                batch_targets = targets
            done, maps, batch_targets, failures = _explain_or_skip(
                explainer, inputs, batch_targets, on_error)
            if failures:
                errors += [(int(index[row]), None if kept_names is None else kept_names[row],
                            message) for row, message in failures]
                errors.sort(key=lambda error: error[0])
                index = index[done]
                kept_names = None if kept_names is None else [
                    n for n, k in zip(kept_names, done) if k]
        del inputs
        yield ExplainedBatch(number, start, stop, index, maps, batch_targets,
                             None if kept_names is None else tuple(kept_names),
                             tuple(errors))
        del maps, batch_targets, parts
        if progress is not None:
            progress.update(stop - start)
    if targets is not None and not callable(targets) and position != len(targets):
        raise InvalidArgumentError(
            f"targets has {len(targets)} rows but the stream had {position} elements; give "
            "one target per element of the data.")


# -- image files ------------------------------------------------------------------------
def image_files(paths_or_folder, *, exclude=None):
    """The image files of a folder (recursively) or of a list of files and folders; the
    listing of ``sobol-tf explain`` (one implementation, ``_utils.files.list_images``).

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
        listed = _files.list_images(entries, exclude=exclude)
    except _files.FileProblem as problem:
        raise InvalidArgumentError(
            f"paths_or_folder: no image file ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"{problem.path!r}, even in its sub-folders.") from None
    if not listed:
        raise InvalidArgumentError(f"paths_or_folder: no image file in {entries!r}.")
    return list(dict.fromkeys(listed))


def _size_of(size):
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
    return tuple(None if s is None else int(s) for s in size)


def image_files_dataset(paths_or_folder, size, *, channels=3, scale=1.0,
                        num_parallel_calls=None):
    """A tf.data.Dataset of image files, decoded and resized in tf.data exactly as
    ``sobol-tf explain`` reads them (one decoder, ``_utils.files.decode_image_file``).

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
    size = _size_of(size)
    if channels not in (None, 1, 2, 3, 4):
        raise InvalidArgumentError(
            f"channels must be 1, 2, 3, 4 or None, got {channels!r}.")
    return _files_dataset(image_files(paths_or_folder), size, channels, scale,
                          num_parallel_calls)


def _files_dataset(paths, size, channels, scale, num_parallel_calls=None):
    """The dataset of :func:`image_files_dataset` over a list of paths taken as they are
    (``sobol-tf explain`` lists them itself)."""
    height, width = size

    def load(path):
        path = path.numpy().decode("utf-8", "surrogateescape")
        try:
            _, image = _files.decode_image_file(path, channels, size, scale)
            return image.astype(np.float32, copy=False), ""
        except _files.FileProblem as problem:
            message = problem.reason
        except Exception as exc:  # what the decoder did not foresee: still one file
            message = f"cannot read the image: {_files.one_line(exc)}"
        return np.zeros((height or 1, width or 1, channels or 1), np.float32), message

    def element(path):
        image, error = tf.py_function(load, [path], [tf.float32, tf.string])
        image = tf.ensure_shape(image, (height, width, channels))
        return {"inputs": image, "names": path, "errors": tf.ensure_shape(error, ())}

    names = [os.fsencode(p) for p in paths]
    return tf.data.Dataset.from_tensor_slices(tf.constant(names, tf.string)).map(
        element, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
        deterministic=True)


# -- maps on disk -----------------------------------------------------------------------
class MapWriter:
    """Write the batches of :func:`explain_dataset` to a folder as they come; the one
    writer of maps on disk (``sobol-tf explain`` writes its shards with it too).

    Each batch with maps becomes one file ``shard-<start>-<random>.npz`` (``maps``,
    ``index``, and ``names`` / ``targets`` when the batch has them), written to a
    temporary name and renamed, and then one JSON line is appended to ``index.jsonl``
    (number, start, stop, file, count, errors). The index names only whole shards, so a
    run killed at any point leaves a readable folder; the next writer on the folder
    (a resumed job, another worker) appends its own shards (random names: no two
    writers replace each other's) and lines.

    Example::

        with MapWriter("out/") as writer:
            for batch in explain_dataset(explainer, image_files_dataset("imgs/", 224)):
                writer.write(batch)
                for position, name, message in batch.errors:
                    print("skipped", name, message)
        maps = read_maps("out/")["maps"]

    Raises:
        InvalidArgumentError: the folder cannot be created or written to (checked when
            the writer is built).
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".check-"):
                pass
        except OSError as exc:
            raise InvalidArgumentError(
                f"directory {self.directory!r} cannot be written to: "
                f"{exc.strerror or exc}.") from exc
        self._index = None
        self.count = 0
        self.errors = []

    def write(self, batch):
        """Write one :class:`ExplainedBatch` (a shard, then its index line).

        Raises:
            OSError: the shard or the index line cannot be written (disk full, ...).
        """
        name = None
        if batch.maps is not None:
            name = f"shard-{batch.start:08d}-{secrets.token_hex(4)}.npz"
            arrays = [("maps", batch.maps), ("index", batch.index)]
            if batch.names is not None:
                arrays.append(("names", np.asarray(batch.names, dtype=str)))
            if batch.targets is not None:
                arrays.append(("targets", batch.targets))
            _files.write_npz(os.path.join(self.directory, name), arrays)
        record = {"number": batch.number, "start": batch.start, "stop": batch.stop,
                  "file": name, "count": len(batch.index),
                  "errors": [list(e) for e in batch.errors]}
        if self._index is None:  # O_APPEND: lines of several writers do not mix
            self._index = open(os.path.join(self.directory, INDEX_FILE), "a",
                               encoding="utf-8")
        self._index.write(json.dumps(record) + "\n")
        self._index.flush()
        self.count += len(batch.index)
        self.errors += batch.errors

    def close(self):
        if self._index is not None:
            self._index.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def write_maps(stream, directory):
    """Write every batch of ``stream`` (:func:`explain_dataset`) to ``directory`` as it
    comes (:class:`MapWriter`); returns the :class:`MapWriter` (``count`` maps written,
    ``errors`` of the skipped elements)."""
    with MapWriter(directory) as writer:
        for batch in stream:
            writer.write(batch)
    return writer


def _records(directory):
    """The lines of a folder's index, in the order written (a line cut by a crash is
    ignored); None when there is no index."""
    path = os.path.join(os.fspath(directory), INDEX_FILE)
    try:
        file = open(path, encoding="utf-8")
    except FileNotFoundError:
        return None
    records = []
    with file:
        for line in file:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def shard_files(directory, missing="raise"):
    """(index record, shard path) of each shard named in the index of a folder written
    by :class:`MapWriter`, in the order written (what :func:`read_maps`,
    :func:`finished_names` and ``sobol-tf explain`` read).

    Args:
        missing: "raise" for a shard named in the index but absent, "skip" to pass
            over it (its inputs then count as not finished).

    Raises:
        InvalidArgumentError: no index (when ``missing="raise"``), a missing shard.
    """
    records = _records(directory)
    if records is None:
        if missing == "skip":
            return []
        raise InvalidArgumentError(f"directory {directory!r} has no {INDEX_FILE}: it was "
                                   "not written by MapWriter / write_maps.")
    found = []
    for record in records:
        if record.get("file") is None:
            continue
        shard = os.path.join(os.fspath(directory), record["file"])
        if not os.path.isfile(shard):
            if missing == "skip":
                continue
            raise InvalidArgumentError(f"{shard!r} is named in {INDEX_FILE} but missing.")
        found.append((record, shard))
    return found


def finished_names(directory):
    """{name: shard path} of the inputs whose maps a folder written by
    :class:`MapWriter` holds (the first shard of a name wins); to resume a job. A
    missing or damaged shard is passed over (its inputs count as not finished)."""
    finished = {}
    for _, shard in shard_files(directory, missing="skip"):
        try:
            with np.load(shard, allow_pickle=False) as arrays:
                names = arrays["names"] if "names" in arrays.files else ()
        except Exception:  # a damaged shard: its inputs are not finished
            continue
        for name in names:
            finished.setdefault(str(name), shard)
    return finished


def read_maps(directory):
    """Read back a folder written by :class:`MapWriter`, in the order written (stream
    order for one stream).

    Returns:
        dict with ``maps`` (N, ...), ``index`` (N,) stream positions, ``names`` (N,) or
        None, ``targets`` (N, ...) or None, ``errors`` [(position, name, message)].
        A trailing index line cut by a crash is ignored. A folder written by several
        writers (appended to, resumed, workers) holds the shards of each in turn.

    Raises:
        InvalidArgumentError: no index in ``directory``, or a shard it names is missing.
    """
    shards = shard_files(directory)
    parts = {"maps": [], "index": [], "names": [], "targets": []}
    for _, shard in shards:
        with np.load(shard) as arrays:
            for key in parts:
                if key in arrays:
                    parts[key].append(arrays[key])
    out = {key: (np.concatenate(v) if v else None) for key, v in parts.items()}
    if out["maps"] is None:
        out["maps"] = np.zeros((0,), np.float32)
        out["index"] = np.zeros((0,), np.int64)
    out["errors"] = [tuple(e) for record in _records(directory) for e in record["errors"]]
    return out
