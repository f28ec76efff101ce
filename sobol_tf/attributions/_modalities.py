"""What the black-box methods share beyond images: a baseline value per feature and token
masking.

- :class:`ModalityMixin`: the keyword-only ``mask_token`` / ``pad_token`` of an
  explainer, the checks of a call's layout against them and against the value array,
  and the perturbation of the call (tokens: :class:`TokenMasking`; an array:
  :class:`~sobol_tf.attributions.perturbations.Inpainting` towards it; a number: the
  explainer's cached ``Inpainting``).
- :class:`DesignMixin`: what Sobol and HSIC share: ``mask_token`` / ``pad_token`` read
  from a ``perturbation_function`` that masks tokens, and the checks of the inputs
  against ``grid_size``, ``nb_channels`` and the perturbation.
"""
from __future__ import annotations

from typing import Any, Callable


import numpy as np

from sobol_tf._utils import check_grid_fits, check_positive_int
from sobol_tf._utils.validation import check_mask_channels, check_windows_fit
from sobol_tf.attributions import perturbations as perturbations_module
from sobol_tf.attributions.perturbations import (Inpainting, Perturbation, TokenMasking,
                                                check_baseline,
                                                check_token)
from sobol_tf.errors import InvalidArgumentError

#: the kinds of inputs Rise and Occlusion explain.
ALL_KINDS = ("image", "tabular", "time_series", "tokens")


def check_pair(name: str, value: Any, sequences: tuple = (tuple, list)) -> tuple[int, int]:
    """An int or a pair of ints >= 1 (a ``sequences`` instance) as a (rows, cols) tuple."""
    if isinstance(value, sequences):
        if len(value) != 2:
            raise InvalidArgumentError(
                f"{name} must be an int or a pair (rows, cols) of ints, got {value!r}.")
        rows, cols = (check_positive_int(name, v) for v in value)
        return rows, cols
    size = check_positive_int(name, value)
    return size, size


class ModalityMixin:
    """Tokens and per-feature baselines for a :class:`BlackBoxExplainer` whose masked-out
    values move towards ``self.<value_name>``."""

    input_kinds: tuple[str, ...] = ALL_KINDS
    _layout: Any
    _towards: Callable[..., Any]

    #: the attribute holding the value masked-out features move towards.
    value_name: str = ""

    def _value_argument(self):
        """(name, value): the argument masked-out features move towards, as given: a
        ``baseline`` when the method has one and it is set, else ``value_name``'s."""
        if getattr(self, "baseline", None) is not None:
            return "baseline", self.baseline
        return self.value_name, getattr(self, self.value_name)

    def _kind(self):
        """The kind of the inputs of the current (or last) call; 'image' before any."""
        return "image" if self._layout is None else self._layout.kind

    def _init_value(self, value, baseline, mask_token, pad_token):
        """Set ``value_name`` to ``value`` (a number), ``baseline`` (None, a number or
        one value per feature; not with a non-zero ``value``) and the tokens."""
        setattr(self, self.value_name, value)
        self.baseline = None if baseline is None else check_baseline(baseline, "baseline")
        if self.baseline is not None and value != 0.0:
            raise InvalidArgumentError(
                f"pass either {self.value_name} (a number) or baseline (a number or one "
                f"value per feature), not both: got {self.value_name}={value} and a "
                "baseline.")
        self._init_tokens(mask_token, pad_token)

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
    def perturbation(self) -> Perturbation:
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
            if cached is None or cached[0] is not value:
                cached = self.__dict__["_value_inpainting"] = (value, Inpainting(value))
            return cached[1]
        return self._towards(value)


class DesignMixin:
    """What Sobol and HSIC share beyond images: ``mask_token`` and ``pad_token`` read from
    ``perturbation_function`` (None unless it masks tokens), and the checks of a call's
    inputs against the perturbation, ``grid_size`` and ``nb_channels``."""

    perturbation_function: Any

    @property
    def mask_token(self) -> int | None:
        """The id replacing masked tokens (perturbation_function='tokens'), else None."""
        return getattr(self.perturbation_function, "mask_token", None)

    @property
    def pad_token(self) -> int | None:
        """The id of padding in token ids (never perturbed, attribution 0), else None."""
        return getattr(self.perturbation_function, "pad_token", None)

    def _check_inputs(self, images):
        layout = self._layout
        perturbations_module.check_for_layout(self.perturbation_function, layout)
        if layout.kind == "image":
            if self.grid_size is None:
                raise InvalidArgumentError(
                    "grid_size=None (a cell per time step) is for time series; images need "
                    "grid_size, the cells per side (e.g. grid_size=8).")
            check_grid_fits(self.grid_size, images.shape[1], images.shape[2])
        elif layout.kind == "time_series":
            check_windows_fit(self.grid_size, layout)
        check_mask_channels(self.nb_channels, images)
