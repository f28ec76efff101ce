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
import tempfile
import threading
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from sobol_tf._utils.data import _element_parts, _is_batched, model_input_shape, to_numpy
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: inputs per step of the stream when the data is not batched already
DEFAULT_BATCH_SIZE = 32
#: batches of inputs read ahead while the current one is explained
DEFAULT_PREFETCH = 2
#: file name endings :func:`image_files` lists (what ``tf.io.decode_image`` reads)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
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
def _check_positive(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__} "
                               f"({value!r}).")
    if value < (0 if name == "prefetch" else 1):
        raise InvalidArgumentError(
            f"{name} must be {'>= 0' if name == 'prefetch' else '>= 1'}, got {value}.")
    return int(value)


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
            value = [v.decode() if isinstance(v, bytes) else str(v)
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
                    prefetch=DEFAULT_PREFETCH, verbose=False):
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

        targets: None, or rows (N, K) / class ids (N,) of every element of the stream
            in order (skipped elements included), read at each batch's
            ``start:stop``; None when the data carries its targets or to explain the
            predicted class.
        batch_size: inputs explained per step (not the forward batch size: that is the
            explainer's ``batch_size``, and several inputs share a forward batch). None:
            a batched dataset's own batches (an iterable's always are), else
            :data:`DEFAULT_BATCH_SIZE`. Larger steps fill the forward batches better;
            memory grows with it.
        prefetch: batches read ahead (0: none, reading then waits for the model).
        verbose: a progress bar of inputs (rate in inputs/s, time left when the length
            is known). The explainer's own ``verbose`` bars, if set, show each batch.

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
            and whatever ``explainer.explain`` raises on a batch.
    """
    batch_size = _check_positive("batch_size", batch_size, allow_none=True)
    prefetch = _check_positive("prefetch", prefetch)
    if targets is not None:
        targets = to_numpy(targets, "targets")
        if targets.ndim == 0:
            raise InvalidArgumentError(
                "targets must be rows (N, K) or class ids (N,) of every element of the "
                "stream, got a single number.")
    declared = model_input_shape(explainer.model)
    batches, length = _batches(data, batch_size, prefetch, declared)
    return _stream(explainer, batches, length, targets, verbose)


def _stream(explainer, batches, length, targets, verbose):
    progress = None
    if verbose:
        import keras
        progress = keras.utils.Progbar(length, unit_name="input")
    position = 0
    for number, parts in enumerate(batches):
        inputs = parts["inputs"]
        size = len(inputs)
        start, stop = position, position + size
        position = stop
        batch_targets = parts.get("targets")
        if targets is not None:
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
        names = parts.get("names")
        messages = parts.get("errors")
        keep = np.ones(size, bool)
        errors = ()
        if messages is not None:
            keep = np.array([not m for m in messages], bool)
            errors = tuple((int(start + i), names[i] if names is not None else None, messages[i])
                           for i in np.flatnonzero(~keep))
        index = np.arange(start, stop, dtype=np.int64)[keep]
        maps = None
        if keep.any():
            if not keep.all():
                inputs = inputs[keep]
                batch_targets = None if batch_targets is None else np.asarray(
                    batch_targets)[keep]
            maps = np.asarray(explainer.explain(inputs, batch_targets))
        del inputs
        kept_names = None if names is None else tuple(n for n, k in zip(names, keep) if k)
        yield ExplainedBatch(number, start, stop, index, maps,
                             None if batch_targets is None else np.asarray(batch_targets),
                             kept_names, errors)
        del maps, batch_targets, parts
        if progress is not None:
            progress.update(stop)
    if targets is not None and position != len(targets):
        raise InvalidArgumentError(
            f"targets has {len(targets)} rows but the stream had {position} elements; give "
            "one target per element of the data.")


# -- image files ------------------------------------------------------------------------
def image_files(paths_or_folder):
    """The image files of a folder (recursively) or of a list of files and folders.

    Args:
        paths_or_folder: a folder, a file, or a list of them. Folders are listed
            recursively, keeping the files whose name ends with one of
            :data:`IMAGE_EXTENSIONS` (any case), sorted by path; files named directly are
            kept as given (a file that is not an image is reported when read).

    Returns:
        list of paths (str), in order, without duplicates.

    Raises:
        InvalidArgumentError: a path that does not exist; no image file at all.
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
    files, seen = [], set()
    for entry in entries:
        if os.path.isdir(entry):
            found = []
            for root, folders, names in os.walk(entry):
                folders.sort()
                found += [os.path.join(root, n) for n in names
                          if n.lower().endswith(IMAGE_EXTENSIONS)]
            listed = sorted(found)
        elif os.path.isfile(entry):
            listed = [entry]
        else:
            raise InvalidArgumentError(
                f"paths_or_folder: {entry!r} is neither a file nor a folder.")
        for path in listed:
            if path not in seen:
                seen.add(path)
                files.append(path)
    if not files:
        raise InvalidArgumentError(
            f"paths_or_folder: no image file ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"{entries!r}.")
    return files


def image_files_dataset(paths_or_folder, size, *, channels=3, scale=1.0,
                        num_parallel_calls=None):
    """A tf.data.Dataset of image files, decoded and resized in tf.data.

    Each file is read, decoded (``tf.io.decode_image``: PNG, JPEG, GIF (first frame),
    BMP) to ``channels`` channels in [0, 1], resized to ``size`` (bilinear, antialiased)
    and multiplied by ``scale``, in tf.data's threads. A file that cannot be read or
    decoded (vanished, empty, corrupt, not an image) does not end the stream: its element
    carries a zero image and its error message, and :func:`explain_dataset` skips it
    and reports it (``ExplainedBatch.errors``: position, path, message). (Unlike
    ``tf.data.experimental.ignore_errors``, which drops the element and its name.) To
    catch the error per file, read + decode + resize run in one ``tf.py_function`` (eager
    TensorFlow ops, whose kernels release the GIL) inside the parallel ``map``.

    Args:
        paths_or_folder: a folder (listed recursively, image files only), a file, or a
            list of them (see :func:`image_files`).
        size: (height, width) of the model's inputs, or one int for square ones.
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA); the decoder converts the file's.
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
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                   for s in size)):
        raise InvalidArgumentError(
            f"size must be (height, width) of positive integers or one integer, got {size!r}.")
    if channels not in (1, 3, 4):
        raise InvalidArgumentError(f"channels must be 1, 3 or 4, got {channels!r}.")
    height, width = int(size[0]), int(size[1])
    files = image_files(paths_or_folder)

    def load(path):
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                       dtype=tf.float32, expand_animations=False)
            image = tf.image.resize(image, (height, width), antialias=True) * scale
            return image, ""
        except (tf.errors.OpError, ValueError, OSError) as exc:
            message = str(getattr(exc, "message", None) or exc).strip().splitlines()
            return (tf.zeros((height, width, channels)),
                    f"{type(exc).__name__}: {message[0] if message else ''}")

    def element(path):
        image, error = tf.py_function(load, [path], [tf.float32, tf.string])
        image = tf.ensure_shape(image, (height, width, channels))
        return {"inputs": image, "names": path, "errors": tf.ensure_shape(error, ())}

    return tf.data.Dataset.from_tensor_slices(files).map(
        element, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE,
        deterministic=True)


# -- maps on disk -----------------------------------------------------------------------
class MapWriter:
    """Write the batches of :func:`explain_dataset` to a folder as they come.

    Each batch becomes one file ``shard-<number>.npz`` (``maps``, ``index``, and
    ``names`` / ``targets`` when the batch has them), written to a temporary name and
    renamed, then one JSON line in ``index.jsonl`` (number, start, stop, file, count,
    errors). A run killed at any point leaves whole shards and an index of them; the
    next writer on the folder appends (shards are named by batch number).

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
        self._index = open(os.path.join(self.directory, INDEX_FILE), "a", encoding="utf-8")
        self.count = 0
        self.errors = []

    def write(self, batch):
        """Write one :class:`ExplainedBatch` (a shard, then its index line)."""
        name = None
        if batch.maps is not None:
            name = f"shard-{batch.number:06d}.npz"
            arrays = {"maps": batch.maps, "index": batch.index}
            if batch.names is not None:
                arrays["names"] = np.asarray(batch.names, dtype=str)
            if batch.targets is not None:
                arrays["targets"] = batch.targets
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".npz.tmp")
            try:
                with os.fdopen(handle, "wb") as file:
                    np.savez(file, **arrays)
                os.replace(temporary, os.path.join(self.directory, name))
            except BaseException:
                if os.path.exists(temporary):
                    os.remove(temporary)
                raise
        record = {"number": batch.number, "start": batch.start, "stop": batch.stop,
                  "file": name, "count": len(batch.index),
                  "errors": [list(e) for e in batch.errors]}
        self._index.write(json.dumps(record) + "\n")
        self._index.flush()
        self.count += len(batch.index)
        self.errors += batch.errors

    def close(self):
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


def read_maps(directory):
    """Read back a folder written by :class:`MapWriter`, in stream order.

    Returns:
        dict with ``maps`` (N, ...), ``index`` (N,) stream positions, ``names`` (N,) or
        None, ``targets`` (N, ...) or None, ``errors`` [(position, name, message)].
        A trailing index line cut by a crash is ignored.

    Raises:
        InvalidArgumentError: no index in ``directory``, or a shard it names is missing.
    """
    path = os.path.join(os.fspath(directory), INDEX_FILE)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"directory {directory!r} has no {INDEX_FILE}: it was "
                                   "not written by MapWriter / write_maps.")
    records = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            records[record["start"]] = record
    parts = {"maps": [], "index": [], "names": [], "targets": []}
    errors = []
    for start in sorted(records):
        record = records[start]
        errors += [tuple(e) for e in record["errors"]]
        if record["file"] is None:
            continue
        shard = os.path.join(os.fspath(directory), record["file"])
        if not os.path.isfile(shard):
            raise InvalidArgumentError(f"{shard!r} is named in {INDEX_FILE} but missing.")
        with np.load(shard) as arrays:
            for key in parts:
                if key in arrays:
                    parts[key].append(arrays[key])
    out = {key: (np.concatenate(v) if v else None) for key, v in parts.items()}
    if out["maps"] is None:
        out["maps"] = np.zeros((0,), np.float32)
        out["index"] = np.zeros((0,), np.int64)
    out["errors"] = errors
    return out
