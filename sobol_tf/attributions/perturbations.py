"""Perturbation functions: how a mask in [0, 1] perturbs an input, in pure TensorFlow.

A perturbation has two parts, so that the engine can apply it to a batch that mixes
several inputs: ``baselines(images)`` computes once per explain() call what a masked-out
pixel becomes ((1, H, W, C) or (N, H, W, C)), and ``apply(inputs, masks, baselines)``
perturbs a batch on the device.

- 'inpainting': x * M + (1 - M) * baseline, baseline a number (0 by default), an array
  of one input's values (e.g. feature means) or one value per channel.
- 'tokens' (:class:`TokenMasking`): token ids kept where M >= 0.5, replaced by a mask
  token elsewhere, padding never changed (needs ``mask_token``; see :func:`resolve`).
- 'blurring':   x * M + (1 - M) * box_blur(x), the blur of the reference (cv2.blur with
  a ``sigma`` x ``sigma`` box, reflected borders), written with TF ops.
- 'amplitude':  x * (M - 0.5) * sigma, as in the reference implementation.

A callable ``f(inputs, masks) -> perturbed`` on batches (B, H, W, C) and (B, H, W, k)
is accepted too. (Xplique's perturbation functions take one input and return a closure;
ours take batches, so that one forward batch can hold several inputs.)
"""
from __future__ import annotations

from typing import Any, Callable

import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, lookup
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


class Perturbation:
    """Base: masked-out pixels move towards a baseline, ``x * M + (1 - M) * baseline``."""

    #: ``apply`` is elementwise and broadcasts inputs (1, H, W, C) against masks
    #: (B, H, W, k); the engine then skips copying an input once per mask.
    broadcasts = True

    def baselines(self, images: Any) -> Any:
        """Baselines for images (N, H, W, C): (1, H, W, C) or (N, H, W, C) float32."""
        return tf.zeros((1,) + tuple(images.shape[1:]), tf.float32)

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        """Perturb inputs (B, H, W, C) with masks (B, H, W, k) towards baselines.

        ``x * M + (1 - M) * baseline``, computed as ``baseline + M * (x - baseline)``: when
        the engine broadcasts one input (1, H, W, C) over a batch of masks, only two
        operations run at the batch's size.
        """
        return baselines + masks * (inputs - baselines)

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Inpainting(Perturbation):
    """x * M + (1 - M) * baseline (0 by default).

    Args:
        baseline: a number; or an array-like of one input's values in the caller's
            layout (e.g. the feature means (F,) of a reference set for tabular rows, a
            (T, C) series, an (H, W, C) image), reshaped to the engine's layout (a
            reshape of the caller's); or one value per channel (C,), broadcast over the
            positions. Copied: the caller's array is not kept nor modified.

    Raises:
        InvalidTypeError: a baseline that is neither a number nor an array of numbers.
        InvalidArgumentError: NaN or infinite values, an empty array; at explain time, an
            array whose size is neither one input's nor its number of channels.
    """

    def __init__(self, baseline: Any = 0.0) -> None:
        self.baseline = check_baseline(baseline)

    def baselines(self, images: Any) -> Any:
        shape = tuple(images.shape[1:])
        if isinstance(self.baseline, float):
            return tf.fill((1,) + shape, self.baseline)
        values = self.baseline
        if values.size == int(np.prod(shape)):
            return tf.constant(values.reshape((1,) + shape))
        if values.size == shape[-1]:
            return tf.constant(np.broadcast_to(values.reshape(1, 1, 1, -1), (1,) + shape))
        raise InvalidArgumentError(
            f"baseline of shape {values.shape} cannot fill inputs of {int(np.prod(shape))} "
            f"values ({shape[-1]} channel(s)); give a number, one value per channel, or an "
            "array of one input's shape (e.g. (F,) for tabular rows (N, F), (T, C) for "
            "time series (N, T, C)).")


def check_baseline(baseline: Any, name: str = "baseline") -> Any:
    """A baseline: a float, or a float32 numpy copy of a non-empty finite array.

    Raises:
        InvalidTypeError: neither a number nor an array of real numbers (booleans too).
        InvalidArgumentError: NaN or infinite values, an empty array.
    """
    allowed = ("a number or an array of real numbers (one value per feature of one input, "
               "e.g. the feature means of a reference set, or one per channel)")
    if isinstance(baseline, bool):
        raise InvalidTypeError(f"{name} must be {allowed}, got {baseline!r}.")
    if isinstance(baseline, numbers.Real):
        value = float(baseline)
        if not np.isfinite(value):
            raise InvalidArgumentError(f"{name} must be finite, got {baseline!r}.")
        return value
    values = np.array(baseline) if not isinstance(baseline, str) else np.array(None)
    if values.dtype.kind not in "iuf":
        raise InvalidTypeError(
            f"{name} must be {allowed}, got {baseline!r} of type {type(baseline).__name__}.")
    values = values.astype(np.float32)  # a copy: the caller's array is never kept
    if values.ndim == 0:
        return check_baseline(float(values), name)
    if values.size == 0:
        raise InvalidArgumentError(f"{name} must not be empty, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise InvalidArgumentError(
            f"{name} must be finite, got {int(np.sum(~np.isfinite(values)))} NaN or "
            f"infinite value(s) of {values.size}.")
    return values


def box_blur(images: Any, size: int) -> tf.Tensor:
    """Mean over a ``size`` x ``size`` box with reflected borders, like cv2.blur.

    The box is clipped to the image for images smaller than ``size``.
    """
    height, width = images.shape[1], images.shape[2]
    size_h, size_w = min(size, height), min(size, width)
    if size_h < 2 and size_w < 2:
        return tf.identity(images)
    # cv2 anchors a box of even size one pixel after its centre; reflect = BORDER_REFLECT_101
    pads = [[0, 0], [size_h // 2, size_h - 1 - size_h // 2],
            [size_w // 2, size_w - 1 - size_w // 2], [0, 0]]
    padded = tf.pad(images, pads, mode="REFLECT") if min(height, width) > 1 \
        else tf.pad(images, pads, mode="SYMMETRIC")
    return tf.nn.avg_pool2d(padded, (size_h, size_w), strides=1, padding="VALID")


class Blurring(Perturbation):
    """x * M + (1 - M) * blur(x), with a box blur of side ``sigma`` (10 by default)."""

    def __init__(self, sigma: int = 10) -> None:
        self.sigma = check_positive_int("sigma", sigma)

    def baselines(self, images: Any) -> Any:
        return box_blur(images, self.sigma)


class Amplitude(Perturbation):
    """x * (M - 0.5) * sigma, the reference implementation's amplitude perturbation."""

    def __init__(self, sigma: float = 1.0) -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise InvalidTypeError(f"sigma must be a number, got {sigma!r}.")
        self.sigma: float = float(sigma)

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        return inputs * (masks - 0.5) * self.sigma


class TokenMasking(Perturbation):
    """Token ids (the engine's float32 ids (B, 1, L, 1)): a token is kept where its mask
    is >= 0.5 and replaced by ``mask_token`` elsewhere; tokens equal to ``pad_token``
    (padding) are never changed.

    Continuous masks (Sobol's quasi-Monte Carlo masks, RISE's) thus become a decision per
    token, each token kept with the probability that its mask value is >= 0.5 (1/2 for
    Sobol's uniform masks).
    """

    def __init__(self, mask_token: int, pad_token: int | None = None) -> None:
        self.mask_token = check_token("mask_token", mask_token)
        self.pad_token = None if pad_token is None else check_token("pad_token", pad_token)

    def baselines(self, images: Any) -> Any:
        return tf.fill((1,) + tuple(images.shape[1:]), float(self.mask_token))

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        kept = masks >= 0.5
        if self.pad_token is not None:
            kept = tf.logical_or(kept, tf.equal(inputs, float(self.pad_token)))
        return tf.where(kept, inputs, baselines)


def check_token(name: str, value: Any) -> int:
    """A token id: an integer >= 0 (numpy integers included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name} must be a token id (an integer >= 0), got {value!r}.")
    if value < 0:
        raise InvalidArgumentError(f"{name} must be a token id (an integer >= 0), got {value}.")
    return int(value)


class CallablePerturbation(Perturbation):
    """Wraps a user function ``f(inputs, masks) -> perturbed`` on batches.

    The function always receives inputs and masks of the same batch size.
    """

    broadcasts = False

    def __init__(self, function: Callable) -> None:
        self.function = function

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        return self.function(inputs, masks)


class FeatureSamples(Perturbation):
    """Lime's and KernelShap's perturbation: ``ref + z[id] * (x - ref)``, where the
    engine's inputs (b, H, W, C + k) carry in their last k channels (1, or C for time
    series) each value's column in the samples z (B, 1, T, 1) given as masks.
    ``reference`` (h, w, C) is set per call. ``tokens``: a token is kept where z >= 0.5
    and replaced by the reference (the mask token) elsewhere."""

    reference: Any = None

    def __init__(self, tokens: bool = False) -> None:
        self.tokens = bool(tokens)

    def baselines(self, images: Any) -> Any:
        return self.reference[None]

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        channels = baselines.shape[-1]
        samples = masks[:, 0, :, 0]
        values, ids = inputs[..., :channels], tf.cast(inputs[..., channels:], tf.int32)
        if inputs.shape[0] == 1:  # one input broadcast over its samples (the usual batch)
            keep = tf.gather(samples, ids[0], axis=1)
        else:  # one input per sample, or a number of rows known only when running
            ids = tf.broadcast_to(ids, tf.concat([tf.shape(samples)[:1], tf.shape(ids)[1:]], 0))
            keep = tf.gather(samples, ids, axis=1, batch_dims=1)
        if self.tokens:
            return tf.where(keep >= 0.5, values, baselines)
        return baselines + keep * (values - baselines)


PERTURBATIONS = {"inpainting": Inpainting, "blurring": Blurring, "amplitude": Amplitude}


def get(identifier: Any) -> Perturbation:
    """Resolve a perturbation from a name, a Perturbation or a callable f(inputs, masks).

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither a string, a Perturbation nor a callable.
    """
    if isinstance(identifier, Perturbation):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() == "tokens":
            raise InvalidArgumentError(
                "perturbation_function='tokens' needs mask_token=ID, the token id that "
                "replaces a masked token: give mask_token= to the explainer, or "
                "TokenMasking(mask_token, pad_token) as perturbation_function.")
        key = "blurring" if identifier.lower() == "blur" else identifier
        return lookup("perturbation_function", key, PERTURBATIONS,
                      "a Perturbation or a callable f(inputs, masks)")()
    if callable(identifier):
        return CallablePerturbation(identifier)
    raise InvalidTypeError(
        "perturbation_function must be a name, a Perturbation or a callable f(inputs, "
        f"masks), got {type(identifier).__name__}."
    )


def _named(identifier, name):
    return isinstance(identifier, str) and identifier.lower() == name


def resolve(perturbation_function: Any, *, mask_token: int | None = None,
            pad_token: int | None = None, baseline: Any = None) -> Perturbation:
    """The Perturbation of an explainer from its arguments: ``'tokens'`` with
    ``mask_token`` (required) and ``pad_token`` (:class:`TokenMasking`), ``'inpainting'``
    with ``baseline`` (:class:`Inpainting`), else :func:`get`.

    Raises:
        InvalidArgumentError: 'tokens' without mask_token; mask_token or pad_token with
            another perturbation; baseline with a perturbation other than 'inpainting';
            what :func:`get`, :class:`Inpainting` and :class:`TokenMasking` raise.
    """
    if _named(perturbation_function, "tokens"):
        if baseline is not None:
            raise InvalidArgumentError(
                f"baseline={baseline!r} is for perturbation_function='inpainting'; with "
                "'tokens' a masked token becomes mask_token.")
        if mask_token is None:
            raise InvalidArgumentError(
                "perturbation_function='tokens' needs mask_token=ID, the token id that "
                "replaces a masked token (e.g. the tokenizer's [MASK] or [UNK] id).")
        return TokenMasking(mask_token, pad_token)
    if mask_token is not None or pad_token is not None:
        given = "mask_token" if mask_token is not None else "pad_token"
        raise InvalidArgumentError(
            f"{given}={mask_token if mask_token is not None else pad_token!r} is for token "
            "ids (integer inputs (N, L)) with perturbation_function='tokens'; got "
            f"perturbation_function={perturbation_function!r}.")
    if baseline is not None:
        if not _named(perturbation_function, "inpainting"):
            raise InvalidArgumentError(
                f"baseline= is for perturbation_function='inpainting', got "
                f"perturbation_function={perturbation_function!r}; give a Perturbation "
                "its own baseline instead (e.g. Inpainting(baseline)).")
        return Inpainting(baseline)
    return get(perturbation_function)


def check_for_layout(perturbation: Perturbation, layout: Any) -> None:
    """Raise InvalidArgumentError unless ``perturbation`` can perturb inputs of
    ``layout`` (a :class:`~sobol_tf._utils.layouts.Layout`): token ids need
    :class:`TokenMasking` and it needs token ids; an Inpainting baseline array must have
    one input's shape in the caller's layout, or one value per channel."""
    tokens = isinstance(perturbation, TokenMasking)
    if layout.kind == "tokens" and not tokens:
        raise InvalidArgumentError(
            f"integer inputs (N, L) are token ids, which {perturbation!r} cannot perturb: "
            "pass perturbation_function='tokens', mask_token=ID (the id that replaces a "
            "masked token; pad_token=ID for padding), or give float32 inputs for tabular "
            "rows.")
    if tokens and layout.kind != "tokens":
        raise InvalidArgumentError(
            "perturbation_function='tokens' perturbs token ids (integer inputs (N, L)); "
            f"got {layout.description} of shape {(None,) + layout.shape}.")
    if isinstance(perturbation, Inpainting) and not isinstance(perturbation.baseline, float):
        shape = perturbation.baseline.shape
        channels = layout.shape[-1] if layout.kind in ("image", "time_series") else 1
        if shape != layout.shape and shape != (channels,):
            raise InvalidArgumentError(
                f"baseline of shape {shape} does not fit {layout.description} of shape "
                f"{(None,) + layout.shape}: give a number, an array of one input's shape "
                f"{layout.shape}, or one value per channel ({channels},).")


class Replacement(Perturbation):
    """Hard masks: a value is kept where its mask is >= 0.5 and replaced by the baseline
    elsewhere, ``where(M >= 0.5, x, baseline)`` (exact: no arithmetic on kept values).
    The perturbation of the metrics that set features to a baseline (Deletion,
    Insertion, MuFidelity's subsets); the caller gives the baselines.

    Args:
        pad_token: the id of padding in token ids, never replaced; None: no padding.
    """

    def __init__(self, pad_token: "int | None" = None) -> None:
        self.pad_token = None if pad_token is None else check_token("pad_token", pad_token)

    def apply(self, inputs: Any, masks: Any, baselines: Any) -> Any:
        kept = masks >= 0.5
        if self.pad_token is not None:
            kept = tf.logical_or(kept, tf.equal(inputs, float(self.pad_token)))
        return tf.where(kept, inputs, baselines)
