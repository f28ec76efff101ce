"""What Rise and Occlusion share beyond images: a baseline value per feature and token
masking.

- :func:`check_value`: a number or one value per feature (an array of one input's shape
  in the caller's layout, e.g. the feature mean of a reference set for tabular rows).
- :class:`ValueInpainting`: ``x * M + (1 - M) * baseline`` with such an array.
- :class:`ModalityMixin`: the keyword-only ``mask_token`` / ``pad_token`` of an
  explainer, the checks of a call's layout against them and against the value array,
  and the perturbation of the call (tokens: :class:`TokenMasking`; an array:
  :class:`ValueInpainting`; a number: the explainer's cached ``Inpainting``).
"""
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf.attributions.perturbations import Perturbation, TokenMasking, check_token
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: the kinds of inputs Rise and Occlusion explain.
ALL_KINDS = ("image", "tabular", "time_series", "tokens")


def check_value(name, value):
    """A baseline: a real number (as float) or an array of finite reals (a float32 copy).

    Raises:
        InvalidTypeError: neither a number nor an array of real numbers.
        InvalidArgumentError: NaN or inf, an array of rank 0 or empty.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not np.isfinite(value):
            raise InvalidArgumentError(f"{name} must be a finite number, got {value}.")
        return float(value)
    if isinstance(value, (np.ndarray, tf.Tensor, list, tuple)):
        array = np.array(value)                                 # a copy, never a view
        if array.dtype.kind in "biuf" and array.dtype.kind != "b" and array.ndim >= 1 \
                and array.size:
            array = array.astype(np.float32)
            if not np.all(np.isfinite(array)):
                raise InvalidArgumentError(
                    f"{name} must hold finite numbers, got {int(np.sum(~np.isfinite(array)))} "
                    f"NaN or infinite value(s) in an array of shape {array.shape}.")
            return array
        if array.dtype.kind in "iuf" and array.ndim == 0:
            return check_value(name, array.item())
    raise InvalidTypeError(
        f"{name} must be a number or an array of real numbers of one input's shape (one "
        f"value per feature, e.g. the feature mean of a reference set), got {value!r} of "
        f"type {type(value).__name__}.")


class ValueInpainting(Perturbation):
    """``x * M + (1 - M) * baseline`` with one baseline value per feature.

    Args:
        baseline: float32 array of one input's shape in the caller's layout; the engine
            layout is a reshape of it (see :mod:`sobol_tf._utils.layouts`).
    """

    def __init__(self, baseline):
        self.baseline = baseline

    def baselines(self, images):
        return tf.reshape(tf.constant(self.baseline), (1,) + tuple(images.shape[1:]))


class ModalityMixin:
    """Tokens and per-feature baselines for a :class:`BlackBoxExplainer` whose masked-out
    values move towards ``self.<value_name>``."""

    input_kinds = ALL_KINDS

    #: the attribute holding the value masked-out features move towards.
    value_name = None

    def _value_argument(self):
        """(name, value): the argument masked-out features move towards, as given."""
        return self.value_name, getattr(self, self.value_name)

    def _init_tokens(self, mask_token, pad_token):
        self.mask_token = None if mask_token is None else check_token("mask_token", mask_token)
        self.pad_token = None if pad_token is None else check_token("pad_token", pad_token)

    def _check_layout(self, layout):
        super()._check_layout(layout)
        who = type(self).__name__
        name, value = self._value_argument()
        if layout.kind == "tokens":
            if self.mask_token is None:
                raise InvalidArgumentError(
                    f"{who} got integer inputs (N, L) of shape {(None,) + layout.shape}, "
                    f"which are token ids: pass mask_token=ID (the id that replaces a masked "
                    f"token, e.g. your tokenizer's [MASK] or [UNK] id), and pad_token=ID if "
                    f"the texts are padded; or give float32 inputs for tabular rows.")
            if isinstance(value, np.ndarray) or value != 0.0:
                raise InvalidArgumentError(
                    f"{name} is for float inputs; token ids are replaced by "
                    f"mask_token={self.mask_token}: leave {name} at its default for "
                    f"token ids.")
            return
        if self.mask_token is not None:
            raise InvalidArgumentError(
                f"mask_token={self.mask_token} is for token ids (integer inputs (N, L)); "
                f"{who} got {layout.description} of shape {(None,) + layout.shape}, "
                f"dtype float. Cast token ids to an integer dtype, or drop mask_token.")
        if isinstance(value, np.ndarray) and value.shape != layout.shape:
            raise InvalidArgumentError(
                f"{name} must be a number or an array of one input's shape "
                f"{layout.shape} ({layout.description}), got an array of shape "
                f"{value.shape}.")

    @property
    def perturbation(self):
        """Token ids: :class:`TokenMasking` (``mask_token``, ``pad_token``); else masked-out
        features move towards the value (a number or one value per feature)."""
        layout = self._layout
        if layout is not None and layout.kind == "tokens":
            cached = self.__dict__.get("_token_masking")
            if cached is None or (cached.mask_token, cached.pad_token) != (
                    self.mask_token, self.pad_token):
                cached = self.__dict__["_token_masking"] = TokenMasking(
                    self.mask_token, self.pad_token)
            return cached
        _, value = self._value_argument()
        if isinstance(value, np.ndarray):
            cached = self.__dict__.get("_value_inpainting")
            if cached is None or cached.baseline is not value:
                cached = self.__dict__["_value_inpainting"] = ValueInpainting(value)
            return cached
        return self._towards(value)
