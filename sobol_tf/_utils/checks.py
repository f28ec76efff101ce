"""Checks of what a model (or an operator) returned, and the messages that say what is
wrong: one row per input, no NaN or infinite values, the real cause of an error that
TensorFlow wrapped. Used by the batching loop (:mod:`sobol_tf._utils.batching`) and the
operators."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union
import re

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidTypeError, ModelCallError, SobolTFError


def describe_structure(value: Any) -> str:
    """A few words on a nested output: 'a list of 2 tensors', "a dict with keys ['a']"."""
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    kind = "list" if isinstance(value, list) else "tuple"
    return f"a {kind} of {len(value)} {'tensor' if len(value) == 1 else 'tensors'}"


def batch_result(result: Any, indices: tf.Tensor, who: str,
                 several: Callable[[str], Exception]) -> tf.Tensor:
    """``result`` of a batch as float32, checked: one tensor (not a list, tuple or dict:
    ``several(structure)`` is raised, ``structure`` in words), not a single number, one
    row per item of ``indices`` (:func:`check_rows`). ``who`` names what returned it.

    Raises:
        ModelCallError: a single number, or another number of rows than items.
    """
    if isinstance(result, (list, tuple, dict)):
        raise several(describe_structure(result))
    result = tf.cast(result, tf.float32)
    if result.shape.rank == 0:
        raise ModelCallError(
            f"{who} returned a single number for a batch of inputs; it must map a batch "
            "(B, ...) to outputs (B, K) or scores (B,)."
        )
    return check_rows(result, indices, who)


def one_output(outputs: Any, indices: tf.Tensor, operator_name: str) -> tf.Tensor:
    """A model's ``outputs`` on a batch as float32 (B, K), for a built-in operator
    (``operator_name``), which reads a single output.

    Raises:
        InvalidTypeError: several outputs (list, tuple, dict); the message says to pass
            an operator that picks one (indexing a dict by its first key).
        ModelCallError: see :func:`batch_result`.
    """
    def several(structure):
        return InvalidTypeError(
            f"the model returned {structure}; operator={operator_name!r} reads one output "
            "(B, K). Pass operator=g(model, inputs, targets) that picks the output to "
            f"explain, e.g. lambda model, x, t: tf.reduce_sum(model(x)[{_an_index(outputs)}]"
            " * t, axis=-1)."
        )

    outputs = batch_result(outputs, indices, "the model", several)
    return tf.reshape(outputs, (tf.shape(outputs)[0], -1))


def _an_index(outputs):
    """How to pick one of several ``outputs`` in an example: the first key of a dict
    (``'cls'``), else position 1 of a list or tuple."""
    if isinstance(outputs, dict) and outputs:
        return repr(next(iter(outputs)))
    return "1"


def check_rows(result: tf.Tensor, indices: tf.Tensor, who: str) -> tf.Tensor:
    """Fail when ``result`` does not hold one row per item of ``indices`` (a model that
    drops, adds or reduces over the batch): statically when both sizes are known, else
    with a runtime assertion (ignored inside XLA clusters;
    :func:`~sobol_tf._utils.batching.run_batches` then checks the total).

    Returns:
        ``result``, after the check when it runs at run time.
    """
    rows, items = result.shape[0], indices.shape[0]
    if rows is not None and items is not None:
        if rows != items:
            raise ModelCallError(
                f"{who} returned {rows} rows of outputs for a batch of {items} inputs; it "
                "must map a batch (B, ...) to outputs (B, K) or scores (B,)."
            )
        return result
    check = tf.debugging.assert_equal(
        tf.shape(result, out_type=tf.int64)[0], tf.shape(indices, out_type=tf.int64)[0],
        message=f"{who} returned outputs for another number of inputs than the batch it "
                "was given (rows of outputs, batch size); it must map a batch (B, ...) to "
                "outputs (B, K) or scores (B,)")
    with tf.control_dependencies([check] if check is not None else []):
        return tf.identity(result)


def library_error(exc: Optional[BaseException]) -> Optional[SobolTFError]:
    """The SobolTFError an exception wraps (autograph re-raises tracing errors as
    StagingError with the original as context), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SobolTFError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


#: what :func:`check_finite` suggests when a model gives NaN or infinite values.
NON_FINITE_HINT = (
    "The model (or the operator) overflows or divides by zero on some inputs, e.g. on "
    "perturbed inputs far from the data: clip its outputs, compute probabilities with a "
    "stable softmax / log-softmax of the logits (tf.nn.softmax, tf.nn.log_softmax), or "
    "guard divisions, logs and square roots."
)

#: what a model must be, said when it fails.
MODEL_CONTRACT = (
    "The model must map a float32 batch (B, ...) (a tf.Tensor; call np.asarray on it if "
    "it works on numpy) to outputs (B, K) as an array or tensor (or any structure, with "
    "an operator that picks from it)."
)


def format_ids(ids: Union[Sequence[int], np.ndarray]) -> str:
    ids = sorted(set(int(i) for i in ids))
    shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
    return f"input {shown}" if len(ids) == 1 else f"inputs {shown}"


def check_finite(result: tf.Tensor, *, what: str, values: str, items_per_input: int = 1,
                 hint: str = NON_FINITE_HINT) -> tf.Tensor:
    """Raise ModelCallError when ``result`` holds NaN or infinite values.

    One reduction on the device when everything is finite; the counts are computed only
    when something is not.

    Args:
        result: (nb_items, ...) tensor.
        what: what was evaluated ("the clean inputs").
        values: what the values are ("scores", "outputs of the model").
        items_per_input: items of one input (item i belongs to input i // items_per_input).
    """
    if bool(tf.reduce_all(tf.math.is_finite(result))):
        return
    array = result.numpy()
    nan, positive, negative = (int(np.sum(np.isnan(array))), int(np.sum(array == np.inf)),
                               int(np.sum(array == -np.inf)))
    bad_items = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    raise ModelCallError(
        f"non-finite {values}: {nan + positive + negative} of {array.size} ({nan} NaN, "
        f"{positive} +inf, {negative} -inf), from {format_ids(bad_items // items_per_input)}"
        f", while evaluating {what}. {hint}"
    )


def cause_line(exc: BaseException) -> str:
    """One line on an exception: its type and the first line of its message (for an
    error autograph re-raised while tracing, the original error: its last line)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code:"):
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
        return raised[-1] if raised else lines[-1]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
