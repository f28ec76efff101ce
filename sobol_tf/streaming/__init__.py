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
batch plus an index that survives a crash), and :func:`read_maps` reads them back. Those
live in :mod:`sobol_tf.io` (the one file format of maps, shared with the command line)
and are re-exported here.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple, Optional, Union

import numpy as np
import tensorflow as tf

from sobol_tf._progress import Progress
from sobol_tf._utils.data import model_input_shape, to_numpy
from sobol_tf._utils.validation import check_positive_int
from sobol_tf.errors import InvalidArgumentError
from sobol_tf.io.datasets import files_dataset, image_files, image_files_dataset
from sobol_tf.io.images import IMAGE_EXTENSIONS
from sobol_tf.io.problems import one_line
from sobol_tf.io.shards import (INDEX_FILE, MapWriter, finished_names, read_maps,
                                shard_files, write_maps)
from sobol_tf.streaming.sources import DEFAULT_BATCH_SIZE, ELEMENT_KEYS, batches

#: batches of inputs read ahead while the current one is explained
DEFAULT_PREFETCH = 2


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
    index: np.ndarray  # type: ignore[assignment]  # the field shadows tuple.index
    maps: Optional[np.ndarray]
    targets: Optional[np.ndarray]
    names: Optional[tuple]
    errors: tuple


# -- the stream -------------------------------------------------------------------------
def explain_dataset(explainer: Any, data: Any, targets: Any = None, *,
                    batch_size: Optional[int] = None, prefetch: int = DEFAULT_PREFETCH,
                    verbose: bool = False,
                    on_error: Union[str, Callable[..., Any]] = "raise"
                    ) -> Iterator[ExplainedBatch]:
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
    stream_batches, length = batches(data, batch_size, prefetch, declared)
    progress = Progress(length, unit="inputs") if verbose else None
    return _stream(explainer, stream_batches, targets, on_error, progress)


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
    return f"cannot explain: {one_line(exc)}"


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


#: the names this module had before the file format moved to :mod:`sobol_tf.io` (kept:
#: ``from sobol_tf.streaming import MapWriter`` and the others still work)
_files_dataset = files_dataset
__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_PREFETCH", "ELEMENT_KEYS", "IMAGE_EXTENSIONS",
           "INDEX_FILE", "ExplainedBatch", "MapWriter", "explain_dataset", "finished_names",
           "image_files", "image_files_dataset", "read_maps", "shard_files", "write_maps"]
