"""Normalisation of inputs and targets at the API boundary.

Inputs arrive as numpy arrays, tf.Tensors or a tf.data.Dataset of (input, target)
pairs, batched or not; targets as one-hot / score vectors (N, K) or class ids (N,).
They leave as one float32 tf.Tensor of inputs and one float32 (N, K) tf.Tensor of
targets. The caller's arrays are never written to.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


@dataclass(frozen=True)
class PreparedData:
    """Inputs and raw targets after the boundary checks.

    Attributes:
        inputs: float32 tf.Tensor (N, ...).
        targets: numpy array (N,) or (N, K), or None when none were given.
    """

    inputs: tf.Tensor
    targets: object


def model_batch_rank(model):
    """Rank of a batch for ``model`` when it declares its input shape, else None."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and shape and all(isinstance(d, (int, type(None))) for d in shape):
        return len(shape)
    return None


def to_numpy(value, name):
    """Return ``value`` (numpy, tensor, list) as a numpy array without aliasing writes."""
    if isinstance(value, tf.data.Dataset):
        raise InvalidTypeError(f"{name} cannot be a tf.data.Dataset here.")
    if tf.is_tensor(value):
        return value.numpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy's own message is chained
        raise InvalidTypeError(
            f"{name} must be a numpy array, a tf.Tensor or a nested list of numbers, "
            f"got {type(value).__name__}."
        ) from exc


def _dataset_to_arrays(dataset, batched_rank):
    """Collect a tf.data.Dataset of (input, target) pairs (or inputs alone)."""
    spec = dataset.element_spec
    has_targets = isinstance(spec, tuple) and len(spec) == 2
    x_spec = spec[0] if has_targets else spec
    if isinstance(spec, tuple) and len(spec) not in (1, 2):
        raise InvalidArgumentError(
            "inputs as a tf.data.Dataset must yield (input, target) pairs or inputs "
            f"alone, got elements of {len(spec)} parts."
        )
    if batched_rank is not None:
        batched = x_spec.shape.rank == batched_rank
    else:
        batched = x_spec.shape.rank is not None and x_spec.shape[0] is None
    if not batched:
        dataset = dataset.batch(256)
    xs, ys = [], []
    for element in dataset:
        if has_targets:
            xs.append(element[0].numpy())
            ys.append(element[1].numpy())
        else:
            xs.append((element[0] if isinstance(element, tuple) else element).numpy())
    if not xs:
        raise InvalidArgumentError("inputs is an empty tf.data.Dataset; give at least one input.")
    inputs = np.concatenate(xs, axis=0)
    targets = np.concatenate(ys, axis=0) if has_targets else None
    return inputs, targets


def prepare_inputs_targets(inputs, targets, *, batched_rank=None, allowed_ranks=None,
                           require_targets=True):
    """Check and normalise ``inputs`` and ``targets``.

    Args:
        inputs: numpy array, tf.Tensor or tf.data.Dataset of (input, target) pairs.
        targets: numpy array or tf.Tensor (N,) or (N, K); None when ``inputs`` is a dataset
            that carries them (or when ``require_targets`` is False).
        batched_rank: rank of a batch for the model, when known; decides whether a dataset
            is batched.
        allowed_ranks: ranks of ``inputs`` the caller can handle (None: any rank >= 2).
        require_targets: raise if no targets are given.

    Returns:
        PreparedData.

    Raises:
        InvalidArgumentError: empty inputs, NaN/inf in inputs, a rank not allowed,
            targets whose length differs from the inputs.
        InvalidTypeError: inputs or targets of a type that is not an array.
    """
    if isinstance(inputs, tf.data.Dataset):
        array, ds_targets = _dataset_to_arrays(inputs, batched_rank)
        if targets is not None and ds_targets is not None:
            raise InvalidArgumentError(
                "targets must be None when inputs is a tf.data.Dataset of (input, target) "
                "pairs; the dataset already carries the targets."
            )
        targets = ds_targets if targets is None else targets
    else:
        array = to_numpy(inputs, "inputs")

    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise InvalidTypeError(f"inputs must hold numbers, got dtype {array.dtype}.")
    if array.ndim == 0 or array.shape[0] == 0:
        raise InvalidArgumentError(
            f"inputs is empty (shape {array.shape}); give at least one input."
        )
    if allowed_ranks is not None and array.ndim not in allowed_ranks:
        raise InvalidArgumentError(
            f"inputs must have rank {' or '.join(map(str, sorted(allowed_ranks)))}, "
            f"got shape {array.shape} (rank {array.ndim})."
        )
    if array.size and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise InvalidArgumentError(
            f"inputs contain {bad} NaN or infinite value(s); clean them before explaining."
        )

    if targets is None:
        if require_targets:
            raise InvalidArgumentError(
                "targets is required: one-hot vectors (N, K) or class ids (N,)."
            )
        target_array = None
    else:
        target_array = to_numpy(targets, "targets")
        if target_array.ndim not in (1, 2):
            raise InvalidArgumentError(
                "targets must be class ids of shape (N,) or one-hot / score vectors of "
                f"shape (N, K), got shape {target_array.shape}."
            )
        if target_array.shape[0] != array.shape[0]:
            raise InvalidArgumentError(
                f"targets has {target_array.shape[0]} rows but inputs has "
                f"{array.shape[0]}; give one target per input."
            )
        if not np.issubdtype(target_array.dtype, np.number) and target_array.dtype != np.bool_:
            raise InvalidTypeError(f"targets must hold numbers, got dtype {target_array.dtype}.")
    return PreparedData(inputs=tf.constant(array, dtype=tf.float32), targets=target_array)
