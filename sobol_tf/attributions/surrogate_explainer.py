"""The surrogate engine of LIME and Kernel SHAP: binary samples of interpretable
features, perturbation through the shared engine, then a weighted linear fit.

:class:`SurrogateExplainer` is a :class:`~sobol_tf.attributions.base.BlackBoxExplainer`
whose masks are the samples z in {0, 1}^F of every input's interpretable features (one
column block per number of features, shared by the inputs that have it), applied on the
device through each input's feature ids by
:class:`~sobol_tf.attributions.perturbations.FeatureSamples`, and whose estimator is
the fit of ``interpretable_model`` to the scores, weighted by ``similarity_kernel``. A
subclass gives its arguments and its samples (``_samples(nb_features)``).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.attributions.perturbations import FeatureSamples
from sobol_tf.attributions.surrogates import (DEFAULT_GRID_SIZE, WeightedLinearRegression,
                                              grid_mapping)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: more interpretable features than this in one input: a warning (slow fits), as Xplique.
MANY_FEATURES = 10000


class _Call(NamedTuple):
    """What one explain() call of a surrogate method holds between masks and fit."""

    images: np.ndarray       # (N, H, W, C) the inputs, engine layout
    ids: np.ndarray          # (N, H, W, k) feature ids, -1 where no feature (padding)
    nb_features: list        # F_i of every input
    columns: dict            # F -> first column of its block in the masks
    blocks: list             # (P, F) samples of every distinct F, in order
    augmented: tf.Tensor     # (N, H, W, C + k) inputs with their shifted ids
    masks: tf.Tensor         # (P, 1, T, 1) every block side by side (+ a ones column)


class SurrogateExplainer(BlackBoxExplainer):
    """Base of LIME and Kernel SHAP (see the module's docstring).

    A subclass sets, in its constructor: ``nb_samples``, ``interpretable_model``,
    ``similarity_kernel``, ``map_to_interpret_space``, ``ref_value`` / ``_ref_shape``
    (:func:`check_ref_value`), ``grid_size``, ``mask_token``, ``pad_token``,
    ``kernel_width`` (named in a warning), and implements ``_samples``.
    """

    input_kinds = ("image", "tabular", "time_series", "tokens")

    nb_samples: int
    interpretable_model: Any
    similarity_kernel: Any
    map_to_interpret_space: Any
    ref_value: Any
    _ref_shape: Any
    grid_size: int | None
    mask_token: int | None
    pad_token: int | None
    kernel_width: Any
    _call: Any = None

    @abstractmethod
    def _samples(self, nb_features: int) -> np.ndarray:
        """The (P, F) float32 samples in [0, 1] of inputs with ``nb_features`` features."""

    # -- masks: the samples, applied through the feature ids ---------------------------
    def _engine_inputs(self, images: tf.Tensor) -> tf.Tensor:
        """The inputs with their feature ids as extra channels; draws the samples."""
        layout = self._layout
        images_np = images.numpy()
        self.perturbation.reference = tf.constant(self._reference(layout))
        ids, nb_features = self._feature_ids(images_np, layout)
        columns: dict = {count: None for count in nb_features}  # distinct counts, in order
        offset, blocks = 0, []
        for count in columns:
            columns[count] = offset
            blocks.append(self._samples(count))
            offset += count
        all_samples = np.concatenate(blocks, axis=1)                        # (P, T)
        shifted = ids + np.array([columns[c] for c in nb_features])[:, None, None, None]
        if np.any(ids < 0):  # positions that are no feature (padding): a column of ones
            all_samples = np.concatenate([all_samples, np.ones_like(all_samples[:, :1])], 1)
            shifted = np.where(ids < 0, offset, shifted)
        augmented = tf.concat([images, tf.constant(shifted, tf.float32)], axis=-1)
        self._call = _Call(images_np, ids, nb_features, columns, blocks, augmented,
                           tf.constant(all_samples[:, None, :, None]))
        return augmented

    def _masks(self, height: int, width: int, channels: int) -> tf.Tensor:
        return self._call.masks

    # -- estimator: the fit ------------------------------------------------------------
    def _estimate(self, scores: tf.Tensor, masks: tf.Tensor,
                  base_scores: tf.Tensor | None) -> tf.Tensor:
        call, self._call = self._call, None
        coefs = self._fit(call, np.asarray(scores))
        maps = np.stack([np.where(image_ids < 0, 0.0, coef[np.maximum(image_ids, 0)])
                         for coef, image_ids in zip(coefs, call.ids)])
        return tf.constant(maps, tf.float32)

    def _upsample(self, masks, mask_ids, height, width):
        """The samples (B, 1, T, 1) are applied through the inputs' feature ids."""
        return masks

    @property  # type: ignore[misc]
    def perturbation(self) -> FeatureSamples:
        """Samples applied through the inputs' feature ids, towards ``ref_value`` (token
        ids: a token is kept or replaced by ``mask_token``)."""
        tokens = self._layout is not None and self._layout.kind == "tokens"
        key = "_token_samples" if tokens else "_samples_perturbation"
        perturbation = self.__dict__.get(key)
        if perturbation is None:
            perturbation = self.__dict__[key] = FeatureSamples(tokens=tokens)
        return perturbation

    def _check_inputs(self, images):
        """Token ids need a mask_token and take no ref_value."""
        layout = self._layout
        if layout.kind != "tokens":
            return
        name = type(self).__name__
        if self.mask_token is None:
            raise InvalidArgumentError(
                f"{name} explains token ids (integer inputs (N, L), here shape "
                f"{(None,) + layout.shape}) by replacing switched-off tokens with "
                "mask_token: pass mask_token=ID (e.g. the id of [MASK] or of an unknown "
                "word), and pad_token=ID if the texts are padded; or give float32 inputs "
                "for tabular rows.")
        if self.ref_value is not None:
            raise InvalidArgumentError(
                f"ref_value={self.ref_value.tolist()} is meaningless for token ids: a "
                f"switched-off token becomes mask_token={self.mask_token}; leave ref_value "
                "None.")

    def _reference(self, layout):
        """ref_value as float32 (h, w, C), broadcastable to one input in the engine layout
        (H, W, C) (its last axis is always C: :class:`FeatureSamples` reads C from it),
        checked against the inputs."""
        height, width, channels = layout.engine_shape
        kind = layout.kind
        if kind == "tokens":
            return np.full((1, 1, 1), self.mask_token, np.float32)
        if self.ref_value is None:
            grey = kind == "image" and channels == 3
            return np.full((1, 1, channels), 0.5 if grey else 0.0, np.float32)
        values, shape = self.ref_value.astype(np.float32), self._ref_shape
        if values.size == 1:
            return np.full((1, 1, channels), values[0], np.float32)
        if kind == "image" and values.size == channels:
            return values.reshape(1, 1, channels)
        if kind == "tabular" and values.size == width:
            return values.reshape(1, width, 1)
        if kind == "time_series":
            if len(shape) == 1 and values.size == channels:
                return values.reshape(1, 1, channels)
            if shape == layout.shape:
                return values.reshape(1, width, channels)
            raise InvalidArgumentError(
                f"ref_value must be one number, one per channel ({channels}) or one per "
                f"cell {layout.shape}, got shape {shape}.")
        allowed = "one per feature" if kind == "tabular" else "one per channel"
        number = width if kind == "tabular" else channels
        raise InvalidArgumentError(
            f"ref_value must be one number or {allowed} ({number}), got "
            f"{values.size} values {self.ref_value.tolist()}.")

    def _feature_ids(self, images, layout):
        """Feature ids (N, H, W, k) int64 of every input (k: 1, or C for time series; -1
        at positions that are no feature: padding), and their number of features."""
        kind = layout.kind
        if self.map_to_interpret_space is None:
            ids = np.broadcast_to(self._default_mapping(layout),
                                  (len(images),) + layout.engine_shape[:2] + (
                                      layout.engine_shape[2] if kind == "time_series" else 1,))
        else:
            ids = np.stack([self._one_mapping(image, layout) for image in images])
        if kind == "tokens" and layout.pads is not None:
            pads = layout.pads.numpy()
            if self.map_to_interpret_space is None:  # the tokens that are not pads, in order
                ids = np.cumsum(~pads, axis=1) - 1
            ids = np.where(pads, -1, ids.reshape(pads.shape)).reshape(pads.shape + (1,))
            ids = ids[:, None]
        nb_features = ids.reshape(len(ids), -1).max(axis=1, initial=-1) + 1
        if nb_features.min() < 1:
            raise InvalidArgumentError(
                f"input {int(np.argmin(nb_features))} has no interpretable feature: every "
                f"token is padding (pad_token={self.pad_token}).")
        if nb_features.max() > MANY_FEATURES:
            warn(f"an input has {nb_features.max()} interpretable features (over "
                 f"{MANY_FEATURES}): the fits will be slow; give a map_to_interpret_space "
                 "with fewer features.")
        return ids.astype(np.int64), [int(count) for count in nb_features]

    def _default_mapping(self, layout):
        """The default feature ids (H, W, k) of inputs of ``layout``."""
        height, width, channels = layout.engine_shape
        if layout.kind in ("tabular", "tokens"):
            return np.arange(width)[None, :, None]
        if layout.kind == "time_series":
            if self.grid_size is None:  # one feature per (step, channel), as Xplique
                return np.arange(width * channels).reshape(1, width, channels)
            windows = np.arange(width) * min(self.grid_size, width) // width
            return (windows[:, None] * channels + np.arange(channels)[None, :])[None]
        grid = DEFAULT_GRID_SIZE if self.grid_size is None else self.grid_size
        return grid_mapping(height, width, grid)[..., None]

    def _one_mapping(self, image, layout):
        """map_to_interpret_space on one input (in its own layout), checked, as (H, W, k)."""
        kind = layout.kind
        original = original_layout(image, kind)
        mapping = np.asarray(self.map_to_interpret_space(tf.constant(original)))
        wanted = original.shape[:2] if kind == "image" else original.shape
        if mapping.shape != wanted:
            what = {"image": "pixel", "tabular": "column", "time_series": "(step, channel)",
                    "tokens": "token"}[kind]
            raise InvalidArgumentError(
                f"map_to_interpret_space must return one feature id per {what}, shape "
                f"{wanted}, got shape {mapping.shape}.")
        if (mapping.size and (not np.all(np.mod(mapping, 1) == 0) or mapping.min() < 0)):
            raise InvalidArgumentError(
                "map_to_interpret_space must return integer feature ids >= 0, got values "
                f"from {mapping.min()} to {mapping.max()}.")
        channels = image.shape[2] if kind == "time_series" else 1
        return mapping.astype(np.int64).reshape(image.shape[:2] + (channels,))

    def _similarities(self, call: _Call, samples: np.ndarray, index: int) -> np.ndarray:
        """Weights (P,) of the samples of input ``index``."""
        kernel, layout = self.similarity_kernel, self._layout
        image, image_ids = call.images[index], call.ids[index]
        if hasattr(kernel, "from_sums"):  # a built-in kernel: closed form
            if layout.kind == "tokens":  # in the interpretable space: z against all ones
                ones, zeros = np.ones(samples.shape[1]), np.zeros(samples.shape[1])
                sums = np.stack([ones, zeros, zeros, ones])
            else:
                x = image.astype(np.float64)
                ref = self.perturbation.reference.numpy().astype(np.float64)
                flat_ids = np.broadcast_to(image_ids, x.shape).ravel()
                terms = (x * x, x * ref, np.broadcast_to(ref * ref, x.shape), (x - ref) ** 2)
                sums = np.stack([np.bincount(flat_ids, term.ravel(), samples.shape[1])
                                 for term in terms])
            return kernel.from_sums(samples.astype(np.float64), sums)
        # a user's kernel gets the perturbed inputs, built by the engine's perturbation
        original = original_layout(image, layout.kind)
        perturbation = self.perturbation
        one_input, baselines = call.augmented[index:index + 1], perturbation.baselines(None)
        chunks = []
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start:start + self.batch_size]
            perturbed = perturbation.apply(one_input, call.masks[start:start + len(chunk)],
                                           baselines)
            perturbed = tf.reshape(perturbed, (-1,) + tuple(original.shape))
            if layout.kind == "tokens":
                perturbed = tf.cast(tf.round(perturbed), tf.int32)
            chunks.append(np.asarray(kernel(tf.constant(original),
                                             tf.constant(chunk.astype(np.int32)),
                                             perturbed), np.float64).reshape(-1))
        weights = np.concatenate(chunks)
        if weights.shape != (len(samples),) or not np.all(np.isfinite(weights)) \
                or weights.min() < 0:
            raise InvalidArgumentError(
                f"similarity_kernel must return {len(samples)} finite weights >= 0 for "
                f"{len(samples)} samples, got shape {weights.shape} with values from "
                f"{weights.min() if weights.size else None} to "
                f"{weights.max() if weights.size else None}.")
        return weights

    def _fit(self, call: _Call, scores: np.ndarray) -> list:
        """Coefficients (F_i,) of every input's interpretable model."""
        nb_features, columns, blocks = call.nb_features, call.columns, call.blocks
        weights = []
        for index, count in enumerate(nb_features):
            samples = blocks[list(columns).index(count)]
            similarity = self._similarities(call, samples, index)
            if not similarity.sum() > 0:
                warn(f"all the similarities of input {index} are 0 (kernel_width="
                     f"{self.kernel_width} may be too small for these inputs): its samples "
                     "are weighed equally.")
                similarity = np.ones_like(similarity)
            weights.append(similarity)
        model = self.interpretable_model
        if isinstance(model, WeightedLinearRegression):
            coefs: list = [None] * len(nb_features)
            for count, block in zip(columns, blocks):  # one batched fit per feature count
                rows = [i for i, c in enumerate(nb_features) if c == count]
                found, _ = model.fit_many(block[None].astype(np.float64),
                                          scores[rows].astype(np.float64),
                                          np.stack([weights[i] for i in rows]))
                for row, coef in zip(rows, found):
                    coefs[row] = coef
            return coefs
        coefs = []  # one fit per input
        for index, count in enumerate(nb_features):
            samples = blocks[list(columns).index(count)]
            model.fit(samples, scores[index], sample_weight=weights[index])
            coef = np.asarray(getattr(model, "coef_", None), np.float64).reshape(-1)
            if coef.shape != (count,):
                raise InvalidArgumentError(
                    f"interpretable_model must have a coef_ of {count} values (one per "
                    f"feature) after fit, got {getattr(model, 'coef_', None)!r}.")
            coefs.append(coef)
        return coefs


def original_layout(image: np.ndarray, kind: str) -> np.ndarray:
    """One input (H, W, C) of the engine back in the caller's layout (numpy)."""
    if kind == "tabular":
        return image[0, :, 0]
    if kind == "tokens":
        return np.rint(image[0, :, 0]).astype(np.int32)
    if kind == "time_series":
        return image[0]
    return image


def check_ref_value(ref_value: Any) -> tuple[np.ndarray | None, tuple | None]:
    """(None, None), or ref_value as a flat float array of finite numbers and its shape."""
    if ref_value is None:
        return None, None
    try:
        array = np.asarray(ref_value, np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"ref_value must be a number or an array of numbers (one per channel, tabular "
            f"feature or time-series cell), got {ref_value!r}.") from None
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidArgumentError(
            f"ref_value must hold finite numbers (one, or one per channel, tabular feature "
            f"or time-series cell), got {ref_value!r}.")
    return array.reshape(-1), array.shape

