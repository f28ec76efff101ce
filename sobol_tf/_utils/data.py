"""Normalisation of inputs and targets at the API boundary.

Inputs arrive as numpy arrays, tf.Tensors or a tf.data.Dataset of (input, target)
pairs, 1-tuples or inputs alone, batched or not; targets as one-hot / score vectors
(N, K) or class ids (N,). They leave as one float32 tf.Tensor of inputs and one float32
(N, K) tf.Tensor of targets. The caller's arrays are never written to.

Rules (README, "Inputs, targets and models: the rules"): inputs equal to the model's
declared input shape without its batch axis are refused (add it: ``img[None]``); whether
a dataset element is a batch is read from the target's spec, else the model's declared
input shape, else the element's own spec (:func:`_is_batched`); elements of different
shapes are refused (resize them in the pipeline); infinite datasets are refused, and
datasets of unknown length are refused past :data:`MAX_DATASET_INPUTS` inputs or
:data:`MAX_DATASET_BYTES`.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn


@dataclass(frozen=True)
class PreparedData:
    """Inputs and raw targets after the boundary checks.

    Attributes:
        inputs: float32 tf.Tensor (N, ...).
        targets: numpy array (N,) or (N, K), or None when none were given.
        integer: the inputs were given as integers (rank 2: token ids, see
            :mod:`sobol_tf._utils.layouts`).
    """

    inputs: tf.Tensor
    targets: Any
    integer: bool = False


#: a tf.data.Dataset of unknown cardinality (e.g. after ``filter``, or from a generator)
#: is read until it ends; past this many inputs it is refused (an endless one would never
#: end). 2**16 8x8x3 inputs from a generator take ~6 s to read; to explain more, collect
#: them into an array (or explain the dataset in parts, ds.skip(k).take(n)).
MAX_DATASET_INPUTS = 2 ** 16

#: nor past this many bytes of inputs (float32), whichever comes first.
MAX_DATASET_BYTES = 2 * 2 ** 30


def check_model(model: Any) -> Callable[..., Any]:
    """The callable that runs ``model`` on a batch; raise InvalidTypeError if there is none.

    A callable (a Keras model, a function) is returned as it is. An object that is not
    callable but has a ``predict_proba`` method (a scikit-learn or XGBoost classifier, as
    Xplique accepts) gives that method, which runs eagerly on numpy batches. An object
    with only ``.predict`` is refused, saying what to pass.
    """
    if callable(model):
        return model
    if callable(getattr(model, "predict_proba", None)):
        return model.predict_proba
    if callable(getattr(model, "predict", None)):
        raise InvalidTypeError(
            f"model must be callable on a batch; this {type(model).__name__} is not, "
            "but has .predict: pass model.predict (it runs eagerly if it works on numpy "
            "arrays)."
        )
    raise InvalidTypeError(
        f"model must be a Keras model or a callable on a batch tensor, got "
        f"{type(model).__name__}."
    )


def model_input_shape(model: Any) -> Optional[Tuple[Optional[int], ...]]:
    """The input shape a model declares, batch axis included (e.g. (None, 224, 224, 3)),
    or None when it declares none or several inputs.

    Read from ``model.input_shape`` (Keras) or ``model.inputs[0].shape``; any error
    while reading it (an unbuilt subclassed model) counts as "not declared".
    """
    try:
        shape = getattr(model, "input_shape", None)
        if shape is None:
            inputs = getattr(model, "inputs", None)
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
                shape = tuple(inputs[0].shape)
    except Exception:  # noqa: BLE001 - a property that cannot answer declares nothing
        return None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if isinstance(shape, tf.TensorShape):
        shape = tuple(shape.as_list()) if shape.rank is not None else None
    if (isinstance(shape, tuple) and len(shape) >= 2
            and all(isinstance(d, (int, type(None))) for d in shape)):
        return shape
    return None


def model_batch_rank(model: Any) -> Optional[int]:
    """Rank of a batch for ``model`` when it declares its input shape, else None."""
    shape = model_input_shape(model)
    return None if shape is None else len(shape)


def _fits(dims, wanted):
    """Whether ``dims`` (None: unknown) surely match ``wanted`` (None: any size)."""
    return len(dims) == len(wanted) and all(w is None or w == d for d, w in zip(dims, wanted))


def check_batch_axis(shape: Sequence[int], declared: Optional[Sequence[Optional[int]]],
                     name: str = "inputs", *, rank_too: bool = False) -> None:
    """Check the shape of ``inputs`` against the model's declared input shape.

    Raises:
        InvalidArgumentError: ``shape`` equals ``declared`` without its batch axis (one
            input: explain(img) instead of explain(img[None])), or, for a model taking
            (None, H, W, 1), equals (H, W) (one grayscale image without its batch and
            channel axes: img[None, ..., None]). With ``rank_too``: another rank than the
            model takes (grayscale images (N, H, W) for a model taking (None, H, W, 1)
            are refused with the fix, x[..., None]: rank 3 is a time series), or another
            number of channels than it declares.

    Warns:
        SobolTFWarning: with ``rank_too``, another height or width than the model
            declares (Keras runs fully convolutional models on any size).
    """
    if declared is None:
        return
    shape = tuple(shape)
    if _fits(shape, declared[1:]):
        raise InvalidArgumentError(
            f"{name} has shape {shape}, which is ONE input of the model (it takes "
            f"batches of shape {declared}): add the batch axis, e.g. img[None] or "
            "np.expand_dims(img, 0), to pass a batch of one input."
        )
    channel_free = declared[-1] in (1, None) and len(declared) >= 3
    if channel_free and _fits(shape, declared[1:-1]):
        raise InvalidArgumentError(
            f"{name} has shape {shape}, which is ONE grayscale image without its batch and "
            f"channel axes (the model takes batches of shape {declared}): add them, "
            f"img[None, ..., None], giving {(1,) + shape + (1,)}."
        )
    if not rank_too:
        return
    if len(shape) == len(declared) - 1 and channel_free and len(declared) == 4:
        raise InvalidArgumentError(
            f"{name} has shape {shape}: rank-3 inputs are time series (N, T, C) (as in "
            f"Xplique), but the model takes images {declared}; give grayscale images with "
            f"their channel axis, x[..., None], giving {shape + (1,)}."
        )
    grayscale = False
    if len(shape) != len(declared):
        raise InvalidArgumentError(
            f"{name} has shape {shape} (rank {len(shape)}) but the model takes batches of "
            f"shape {declared} (rank {len(declared)}); give inputs of that rank."
        )
    wanted = declared[1:-1] if grayscale else declared[1:]
    if _fits(shape[1:], wanted):
        return
    if not grayscale and not _fits(shape[-1:], wanted[-1:]):
        raise InvalidArgumentError(
            f"{name} has shape {shape} but the model declares its input shape {declared}: "
            f"each input must have {wanted[-1]} channel(s), got {shape[-1]}. Convert the "
            "inputs (e.g. tf.image.grayscale_to_rgb or rgb_to_grayscale)."
        )
    # another spatial size: Keras runs fully convolutional models on it, so warn only
    warn(
        f"{name} has shape {shape} but the model declares its input shape {declared}: "
        f"each input should be {wanted}"
        + (" (grayscale, without the channel axis)" if grayscale else "")
        + ". The inputs are passed as they are (a fully convolutional model runs on any "
        "size); if the model fails on them, resize them (tf.image.resize), or, if it "
        "takes any size, build it with keras.Input((None, None, channels)) to silence "
        "this warning."
    )


def to_numpy(value: Any, name: str) -> np.ndarray:
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


def _element_parts(spec):
    """(input spec, target spec or None) of a dataset's element spec."""
    if isinstance(spec, dict):
        keys = sorted(spec)
        example = keys[0] if keys else "image"
        raise InvalidTypeError(
            f"inputs is a tf.data.Dataset of dicts (keys {keys}); map it to (input, target) "
            f"pairs or inputs alone first, e.g. ds.map(lambda d: (d['{example}'], "
            "d['label'])) with the keys of your dataset."
        )
    if isinstance(spec, tuple):
        if len(spec) not in (1, 2):
            raise InvalidArgumentError(
                "inputs as a tf.data.Dataset must yield (input, target) pairs, 1-tuples "
                f"(input,) or inputs alone, got elements of {len(spec)} parts."
            )
        parts = (spec[0], spec[1] if len(spec) == 2 else None)
    else:
        parts = (spec, None)
    for part, what in zip(parts, ("input", "target")):
        if part is not None and not isinstance(part, tf.TensorSpec):
            raise InvalidTypeError(
                f"inputs is a tf.data.Dataset whose {what} part is a "
                f"{type(part).__name__}, not a tensor; map it to (input, target) pairs of "
                "tensors first, e.g. ds.map(lambda x, y: (x['image'], y))."
            )
    return parts


def _is_batched(x_spec, y_spec, declared):
    """Whether a dataset's input elements are batches (the rule of the README).

    1. With (input, target) pairs, the target's spec first: a scalar target (rank 0)
       means one input per element; a rank-2 target (rows (B, K)) or a rank-1 target
       with a dynamic length ((B,) class ids of ``.batch(b)``) means batches.
    2. Else the model's declared input shape: an element of its rank is a batch; an
       element one rank lower is a batch of grayscale images (B, H, W) when the model
       takes (None, H, W, 1) and the element is not one (H, W, 1) input; any other
       element is one input.
    3. Else: an element of rank 4 or more is a batch; an element of rank 1 to 3 whose
       first dimension is dynamic and whose others are static ((B, H, W) after
       ``.batch(b)``) is a batch; an element of rank 3 with a static channel dimension
       (e.g. (None, None, 3), images of any size) or a static first dimension is one
       image (H, W, C); rank 2 (H, W) is one grayscale image.

    Raises:
        InvalidArgumentError: inputs alone whose elements have rank 3 with the first and
            last dimensions dynamic (one image (H, W, C) or a batch (B, H, W)?).
    """
    shape = x_spec.shape
    rank = shape.rank
    if y_spec is not None and y_spec.shape.rank is not None:
        y_shape = y_spec.shape
        if y_shape.rank == 0:
            return False
        if y_shape.rank == 2 or (y_shape.rank == 1 and y_shape[0] is None):
            return True
    if rank is None:
        return False
    dims = tuple(shape.as_list())
    if declared is not None:
        if rank == len(declared):
            return True
        if (rank == len(declared) - 1 and declared[-1] in (1, None)
                and not _fits(dims, declared[1:])):
            return _fits(dims[1:], declared[1:-1])
        return False
    if rank >= 4:
        return True
    if rank >= 1 and dims[0] is None and all(d is not None for d in dims[1:]):
        return True
    if rank == 3 and dims[0] is None and dims[2] is None:
        raise InvalidArgumentError(
            f"inputs is a tf.data.Dataset of inputs alone with elements of shape {dims}: "
            "that may be one image (H, W, C) or a batch of grayscale images (B, H, W), and "
            "the model declares no input shape to tell. Give the channels in the spec, e.g. "
            "output_signature=tf.TensorSpec((None, None, 3)) for one RGB image per element "
            "(or ds.map(lambda x: tf.ensure_shape(x, (None, None, 3)))), give the grayscale "
            "batches a channel axis (ds.map(lambda x: x[..., None])), or yield (input, "
            "target) pairs, whose target tells."
        )
    return False


def _check_same_shapes(arrays, what):
    """Raise InvalidArgumentError unless the collected ``arrays`` (N_i, ...) have the same
    shape past their first axis (images of different sizes); ``what`` names them."""
    shapes = []
    for array in arrays:
        if array.shape[1:] not in shapes:
            shapes.append(array.shape[1:])
    if len(shapes) <= 1:
        return
    shown = ", ".join(map(str, shapes[:4])) + (", ..." if len(shapes) > 4 else "")
    raise InvalidArgumentError(
        f"inputs is a tf.data.Dataset whose {what} have different shapes ({shown}); the "
        "explainers and metrics take inputs of one size. Resize them in the pipeline, e.g. "
        "ds.map(lambda x, y: (tf.image.resize(x, (224, 224)), y)) (or "
        "tf.image.resize_with_crop_or_pad), to the size the model takes."
    )


def _dataset_to_arrays(dataset, declared):
    """Collect a tf.data.Dataset of (input, target) pairs, 1-tuples or inputs alone."""
    x_spec, y_spec = _element_parts(dataset.element_spec)
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise InvalidArgumentError(
            "inputs is an infinite tf.data.Dataset (e.g. after .repeat()); explain a "
            "finite part of it: ds.take(n) (unbatched) or ds.take(nb_batches)."
        )
    batched = _is_batched(x_spec, y_spec, declared)
    # one element at a time when the elements may differ in shape (images of any size):
    # .batch would fail on them with TensorFlow's error; then the shapes are compared
    static = x_spec.shape.is_fully_defined() and (
        y_spec is None or y_spec.shape.is_fully_defined())
    chunked = not batched and static
    if chunked:
        dataset = dataset.batch(256)
    xs, ys = [], []
    count = size = 0
    for element in dataset:
        if isinstance(element, tuple):
            x, y = element[0], (element[1] if y_spec is not None else None)
        else:
            x, y = element, None
        x = x.numpy()
        if not batched and not chunked:
            x = x[None]
        xs.append(x)
        if y is not None:
            y = y.numpy()
            ys.append(y if batched or chunked else y[None])
        count += len(x) if x.ndim else 1
        size += x.size * 4
        if cardinality == tf.data.UNKNOWN_CARDINALITY and (
                count > MAX_DATASET_INPUTS or size > MAX_DATASET_BYTES):
            raise InvalidArgumentError(
                "inputs is a tf.data.Dataset of unknown length that yielded more than "
                f"{MAX_DATASET_INPUTS} inputs or {MAX_DATASET_BYTES / 2 ** 30:.0f} GiB "
                f"(read so far: {count} inputs); it may be endless (e.g. a generator that "
                "never stops, or .repeat() before .filter()). Explain a finite part of it: "
                "ds.take(n); to explain more, collect the inputs into an array first and "
                "pass the array (or explain the dataset in parts with ds.skip / ds.take)."
            )
    if not xs:
        raise InvalidArgumentError("inputs is an empty tf.data.Dataset; give at least one input.")
    if any(x.ndim == 0 for x in xs):
        raise InvalidArgumentError(
            f"inputs is a tf.data.Dataset whose input elements are single numbers (spec "
            f"{x_spec.shape}); give images (H, W, C) or (H, W), or batches of them."
        )
    _check_same_shapes(xs, "inputs" if not batched else "batches of inputs")
    inputs = np.concatenate(xs, axis=0)
    targets = None
    if y_spec is not None:
        if any(y.ndim == 0 for y in ys):
            raise InvalidArgumentError(
                f"inputs is a tf.data.Dataset of batches (input spec {x_spec.shape}) with "
                f"single-number targets (spec {y_spec.shape}); batched elements need one "
                "target per input, (B,) or (B, K)."
            )
        _check_same_shapes([y[:, None] if y.ndim == 1 else y for y in ys], "targets")
        targets = np.concatenate(ys, axis=0)
    return inputs, targets


def _check_real_dtype(array, name):
    """Raise InvalidTypeError unless ``array`` holds real numbers (booleans included)."""
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer) or np.issubdtype(
            array.dtype, np.floating):
        return
    what = "complex numbers" if np.issubdtype(array.dtype, np.complexfloating) else \
        f"dtype {array.dtype}"
    raise InvalidTypeError(
        f"{name} must hold real numbers (floats, integers or booleans), got {what}; "
        "convert them first (e.g. np.abs or .real for complex values)."
    )


def prepare_inputs_targets(inputs: Any, targets: Any, *,
                           declared_shape: Optional[Sequence[Optional[int]]] = None,
                           allowed_ranks: Optional[Sequence[int]] = None,
                           require_targets: bool = True) -> PreparedData:
    """Check and normalise ``inputs`` and ``targets``.

    Args:
        inputs: numpy array, tf.Tensor or tf.data.Dataset of (input, target) pairs,
            1-tuples (input,) or inputs alone, batched or not. Numbers of any real dtype
            (integers and booleans are read as float32).
        targets: numpy array or tf.Tensor (N, ...): (N,) or (N, K), or of higher rank
            for the operators that read it (checked by
            :func:`sobol_tf.operators.prepare_targets`); None when ``inputs`` is a dataset
            that carries them (or when ``require_targets`` is False).
        declared_shape: the model's input shape, batch axis included, when it declares
            one (:func:`model_input_shape`): inputs equal to it without the batch axis,
            or of another rank or size, are refused (:func:`check_batch_axis`), and it
            decides whether a dataset's elements are batches.
        allowed_ranks: ranks of ``inputs`` the caller can handle (None: any rank >= 2).
        require_targets: raise if no targets are given.

    Returns:
        PreparedData.

    Raises:
        InvalidArgumentError: empty inputs, NaN/inf in inputs, a rank not allowed, one
            input without its batch axis, targets whose length differs from the inputs,
            an infinite dataset or one of unknown length past :data:`MAX_DATASET_INPUTS`,
            a dataset whose inputs differ in shape, inputs alone of an ambiguous spec
            (rank 3, first and last dimensions dynamic, no declared input shape).
        InvalidTypeError: inputs or targets of a type that is not an array of real
            numbers, a dataset of dicts.

    """
    if isinstance(inputs, tf.data.Dataset):
        array, ds_targets = _dataset_to_arrays(inputs, declared_shape)
        if targets is not None and ds_targets is not None:
            raise InvalidArgumentError(
                "targets must be None when inputs is a tf.data.Dataset of (input, target) "
                "pairs; the dataset already carries the targets."
            )
        targets = ds_targets if targets is None else targets
    else:
        array = to_numpy(inputs, "inputs")
        check_batch_axis(array.shape, declared_shape)
    _check_real_dtype(array, "inputs")
    if array.ndim == 0 or array.shape[0] == 0:
        raise InvalidArgumentError(
            f"inputs is empty (shape {array.shape}); give at least one input."
        )
    if allowed_ranks is not None and array.ndim not in allowed_ranks:
        raise InvalidArgumentError(
            f"inputs must have rank {' or '.join(map(str, sorted(allowed_ranks)))}, "
            f"got shape {array.shape} (rank {array.ndim})."
        )
    check_batch_axis(array.shape, declared_shape, rank_too=True)
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
        if target_array.ndim == 0:  # the rank each operator reads: operators.prepare_targets
            raise InvalidArgumentError(
                "targets must be class ids of shape (N,) or one-hot / score vectors of "
                "shape (N, K) (masks (N, H, W, C) or boxes (N, nb_boxes, 4 + 1 + K) for "
                "the segmentation and detection operators), got a single number."
            )
        if target_array.shape[0] != array.shape[0]:
            raise InvalidArgumentError(
                f"targets has {target_array.shape[0]} rows but inputs has "
                f"{array.shape[0]}; give one target per input."
            )
        _check_real_dtype(target_array, "targets")
    integer = bool(np.issubdtype(array.dtype, np.integer))
    return PreparedData(inputs=tf.constant(array, dtype=tf.float32), targets=target_array,
                        integer=integer)


#: public names of the element rules, for the engine's users outside this module
#: (:mod:`sobol_tf.streaming` batches datasets by them)
element_parts = _element_parts
is_batched = _is_batched
