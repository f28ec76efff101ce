"""The maps shard format: a folder of ``shard-*.npz`` files and their ``index.jsonl``.

:class:`MapWriter` writes the batches of :func:`sobol_tf.streaming.explain_dataset` as
they come (one shard per batch, then one JSON line in the index, so a run killed at any
point leaves a readable folder); :func:`read_maps`, :func:`shard_files` and
:func:`finished_names` read a folder back. The one format of maps on disk, below both
:mod:`sobol_tf.streaming` and :mod:`sobol_tf.cli` (which keeps its shards in
``DIR/.sobol-tf/shards``). No TensorFlow.
"""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from typing import Any, Dict, Iterable, List, Optional, TextIO, Tuple

import numpy as np

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.io.maps_file import write_npz
from sobol_tf.io.problems import PathLike

#: the index of a folder written by :class:`MapWriter`: one JSON line per shard
INDEX_FILE = "index.jsonl"


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

    def __init__(self, directory: PathLike) -> None:
        self.directory = os.fspath(directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".check-"):
                pass
        except OSError as exc:
            raise InvalidArgumentError(
                f"directory {self.directory!r} cannot be written to: "
                f"{exc.strerror or exc}.") from exc
        self._index: Optional[TextIO] = None
        self.count = 0
        self.errors: List[Tuple[int, str, str]] = []

    def write(self, batch: Any) -> None:
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
            write_npz(os.path.join(self.directory, name), arrays)
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

    def close(self) -> None:
        if self._index is not None:
            self._index.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def write_maps(stream: Iterable[Any], directory: PathLike) -> MapWriter:
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


def shard_files(directory: PathLike,
                missing: str = "raise") -> List[Tuple[Dict[str, Any], str]]:
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


def finished_names(directory: PathLike) -> Dict[str, str]:
    """{name: shard path} of the inputs whose maps a folder written by
    :class:`MapWriter` holds (the first shard of a name wins); to resume a job. A
    missing or damaged shard is passed over (its inputs count as not finished)."""
    finished: Dict[str, str] = {}
    for _, shard in shard_files(directory, missing="skip"):
        try:
            with np.load(shard, allow_pickle=False) as arrays:
                names = arrays["names"] if "names" in arrays.files else ()
        except Exception:  # a damaged shard: its inputs are not finished
            continue
        for name in names:
            finished.setdefault(str(name), shard)
    return finished


def read_maps(directory: PathLike) -> Dict[str, Any]:
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
    parts: Dict[str, List[np.ndarray]] = {"maps": [], "index": [], "names": [],
                                          "targets": []}
    for _, shard in shards:
        with np.load(shard) as arrays:
            for key in parts:
                if key in arrays:
                    parts[key].append(arrays[key])
    out: Dict[str, Any] = {key: (np.concatenate(v) if v else None)
                           for key, v in parts.items()}
    if out["maps"] is None:
        out["maps"] = np.zeros((0,), np.float32)
        out["index"] = np.zeros((0,), np.int64)
    out["errors"] = [tuple(e) for record in _records(directory) or ()
                     for e in record["errors"]]
    return out
