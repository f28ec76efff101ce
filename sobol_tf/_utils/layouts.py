"""Layouts: what the inputs are (images, tabular rows, time series, token ids) and how
the engine sees them.

One rule decides, from the inputs alone (as Xplique reads them):

============  =================  =================  ==========================
rank, dtype   kind               engine layout      maps returned
============  =================  =================  ==========================
2, float      ``'tabular'``      (N, 1, F, 1)       (N, F)
2, integer    ``'tokens'``       (N, 1, L, 1)       (N, L)
3             ``'time_series'``  (N, 1, T, C)       (N, T, C) (or (N, T, 1))
4             ``'image'``        (N, H, W, C)       (N, H, W, 1) (or (N, H, W, C))
============  =================  =================  ==========================

Inside the engine every kind is an "image" (N, H, W, C) float32, so that the compiled
batch loops, the masks and their upsampling are written once: a tabular row is a 1 x F
image of one channel, a time series a 1 x T image of C channels, a text a 1 x L image
whose pixels hold the token ids (exact in float32 below 2**24). A layout converts inputs
and maps both ways and wraps the model so that it is called in the caller's layout (and
with int32 ids for tokens).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple
import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError

KINDS = ("image", "tabular", "time_series", "tokens")

#: what each kind is, for messages.
DESCRIPTIONS = {
    "image": "images (N, H, W, C)",
    "tabular": "tabular rows (N, F)",
    "time_series": "time series (N, T, C)",
    "tokens": "token ids (N, L)",
}

#: token ids are held in float32 inside the engine: exact below this.
MAX_TOKEN_ID = 2 ** 24


class Layout:
    """The layout of one set of inputs.

    Args:
        kind: one of :data:`KINDS`.
        shape: the shape of one input as the caller gives it (no batch axis).
        pads: for tokens, a bool tensor (N, L) of the padded positions, or None.

    Attributes:
        kind, shape, pads: as given.
        engine_shape: (H, W, C), the shape of one input inside the engine.
    """

    def __init__(self, kind: str, shape: Sequence[int], pads: Any = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown layout kind {kind!r}")
        self.kind = kind
        self.shape = tuple(int(d) for d in shape)
        self.pads = pads
        if kind == "image":
            self.engine_shape = self.shape
        elif kind == "time_series":
            self.engine_shape = (1,) + self.shape
        else:
            self.engine_shape = (1, self.shape[0], 1)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]

    def __repr__(self):
        return f"Layout({self.kind!r}, {self.shape})"

    def __eq__(self, other):
        return isinstance(other, Layout) and (self.kind, self.shape) == (other.kind, other.shape)

    def __hash__(self):
        return hash((self.kind, self.shape))

    # -- inputs -----------------------------------------------------------------------
    def to_engine(self, inputs: Any) -> tf.Tensor:
        """Inputs (N, ...) in the caller's layout as float32 (N, H, W, C)."""
        inputs = tf.cast(inputs, tf.float32)
        return tf.reshape(inputs, (-1,) + self.engine_shape)

    def from_engine_inputs(self, images: Any) -> tf.Tensor:
        """The inverse of :meth:`to_engine`: the caller's layout, float32 (int32 ids for
        tokens, so that an explainer given them reads token ids again)."""
        inputs = tf.reshape(images, (-1,) + self.shape)
        return tf.cast(tf.round(inputs), tf.int32) if self.kind == "tokens" else inputs

    # -- maps -------------------------------------------------------------------------
    def from_engine(self, maps: Any) -> tf.Tensor:
        """Maps (N, H, W, k) at the engine's input size in the caller's layout.

        Images keep (N, H, W, k); tabular rows and texts give (N, F) / (N, L) (k must be
        1); time series give (N, T, k). Padded token positions are set to 0.
        """
        maps = tf.convert_to_tensor(maps, tf.float32)
        if self.kind == "image":
            return maps
        if self.kind == "time_series":
            return maps[:, 0]
        maps = tf.reduce_mean(maps[:, 0], axis=-1) if maps.shape[-1] != 1 else maps[:, 0, :, 0]
        if self.kind == "tokens" and self.pads is not None:
            maps = tf.where(self.pads, tf.zeros_like(maps), maps)
        return maps

    # -- the model --------------------------------------------------------------------
    def wrap_model(self, model: Callable[..., Any]) -> Callable[..., Any]:
        """``model`` as the engine calls it: on (B, H, W, C) float32 batches."""
        if self.kind == "image":
            return model
        shape = self.shape
        if self.kind == "tokens":
            def on_tokens(x):
                return model(tf.cast(tf.round(tf.reshape(x, (-1,) + shape)), tf.int32))
            return on_tokens

        def reshaped(x):
            return model(tf.reshape(x, (-1,) + shape))
        return reshaped


def layout_of(inputs: Any, *, integer: bool = False, pad_token: Optional[int] = None
              ) -> Layout:
    """The layout of ``inputs`` (N, ...) by the rank rule of this module.

    Args:
        inputs: the inputs (numpy or tf.Tensor), batch axis first.
        integer: the caller's inputs hold integers (then rank 2 is token ids).
        pad_token: for token ids, the id of padding (those positions are never
            perturbed and get 0); None: no padding.

    Raises:
        InvalidArgumentError: a rank other than 2, 3 or 4; token ids that are negative or
            too large to be held exactly; a pad_token with inputs that are not token ids.
    """
    rank = len(inputs.shape)
    if rank == 2:
        kind = "tokens" if integer else "tabular"
    elif rank == 3:
        kind = "time_series"
    elif rank == 4:
        kind = "image"
    else:
        raise InvalidArgumentError(
            f"inputs must have rank 2 (tabular rows (N, F) or token ids (N, L)), 3 (time "
            f"series (N, T, C)) or 4 (images (N, H, W, C)), got shape "
            f"{tuple(inputs.shape)} (rank {rank}).")
    pads = None
    if kind == "tokens":
        values = np.asarray(inputs)
        if values.size and (values.min() < 0 or values.max() >= MAX_TOKEN_ID):
            raise InvalidArgumentError(
                f"token ids must be in [0, {MAX_TOKEN_ID}), got values from {values.min()} "
                f"to {values.max()}.")
        if pad_token is not None:
            pads = tf.constant(values == pad_token)
    elif pad_token is not None:
        raise InvalidArgumentError(
            f"pad_token={pad_token!r} is for token ids (integer inputs (N, L)); the inputs "
            f"are {DESCRIPTIONS[kind]}, shape {tuple(inputs.shape)}.")
    return Layout(kind, inputs.shape[1:], pads)


def grid_shape(layout: Layout, grid_size: Optional[int]
               ) -> Tuple[Optional[int], Optional[int]]:
    """The cells of a mask grid on inputs of ``layout``, (rows, columns) in the engine
    layout: images ``grid_size`` x ``grid_size``; tabular rows one cell per feature and
    token ids one per token (``grid_size`` ignored); time series ``grid_size`` windows
    along time (None: one cell per step). Time series are masked channel by channel:
    see :func:`mask_channels`."""
    _, width, _ = layout.engine_shape
    if layout.kind == "image":
        return (grid_size, grid_size)
    if layout.kind == "time_series" and grid_size is not None:
        return (1, grid_size)
    return (1, width)


def mask_channels(layout: Layout) -> int:
    """Channels of the masks drawn for ``layout`` by default: one per channel of a time
    series (each channel's windows are cells of their own), else 1."""
    return layout.engine_shape[2] if layout.kind == "time_series" else 1


def check_kind(layout: Layout, allowed: Sequence[str], who: str, hint: str = "") -> None:
    """Raise InvalidArgumentError when ``who`` cannot explain inputs of ``layout``."""
    if layout.kind not in allowed:
        kinds = " or ".join(DESCRIPTIONS[k] for k in allowed)
        raise InvalidArgumentError(
            f"{who} explains {kinds}; got {layout.description} of shape "
            f"{(None,) + layout.shape}{hint}.")
