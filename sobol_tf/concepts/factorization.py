"""What CRAFT computes, and the factorisation it computes it with.

:class:`Factorization` holds what :meth:`~sobol_tf.concepts.CraftTf.fit` found (crops,
concept bank W, coefficients U, the fitted NMF); :class:`Sensitivity` the global concept
importances of :meth:`~sobol_tf.concepts.CraftTf.estimate_importance`. The helpers below
are the parts of CRAFT that do not touch the models: checking images, cutting them into
crops, and factorising non-negative activations A ~ U W with scikit-learn's NMF (W fitted
once, then fixed to find the coefficients of new activations). The models run on the
engine, in :mod:`sobol_tf.concepts.craft`.

scikit-learn is imported when a factorisation is first fitted, TensorFlow when images
are read or cut: importing this module imports neither.
"""
from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: crops overlap: the stride between two crops is this share of ``patch_size`` (the
#: reference implementation's).
STRIDE_SHARE = 0.8

#: regularisation of W in the NMF (the reference implementation's ``alpha_W``).
NMF_ALPHA_W = 1e-2

#: how to get scikit-learn, said when it is missing.
INSTALL_HINT = "pip install scikit-learn (or pip install 'sobol_tf[concepts]')"


@dataclasses.dataclass
class Factorization:
    """What :meth:`CraftTf.fit` computed.

    Attributes:
        inputs: the images given to fit, float32 (N, H, W, C).
        class_id: the class explained.
        crops: float32 (n_crops, patch_size, patch_size, C).
        reducer: the fitted scikit-learn NMF (its ``components_`` is the bank).
        crops_u: float32 (n_crops, number_of_concepts), U.
        concept_bank_w: float32 (number_of_concepts, channels), W.
    """

    inputs: np.ndarray
    class_id: int
    crops: np.ndarray
    reducer: Any
    crops_u: np.ndarray
    concept_bank_w: np.ndarray


class Sensitivity:
    """Global importances of :meth:`CraftTf.estimate_importance` (inputs=None).

    Attributes:
        importances: float32 (number_of_concepts,), total Sobol indices.
        most_important_concepts: concept ids by decreasing importance.
        cmaps: one matplotlib colormap per concept rank (built on first use; set with
            :meth:`set_concept_attribution_cmap`).
    """

    def __init__(self, importances: np.ndarray, most_important_concepts: np.ndarray,
                 cmaps: Optional[Sequence[Any]] = None) -> None:
        self.importances = importances
        self.most_important_concepts = most_important_concepts
        self._colors = cmaps
        self._cmaps: Optional[List[Any]] = None

    @property
    def cmaps(self) -> List[Any]:
        if self._cmaps is None:
            from sobol_tf.concepts._plots import concept_cmaps  # matplotlib, lazily
            self._cmaps = concept_cmaps(self._colors, len(self.most_important_concepts))
        return self._cmaps

    def set_concept_attribution_cmap(self, cmaps: Optional[Sequence[Any]] = None
                                     ) -> List[Any]:
        """Colours of the concepts: None (the default palette), a list of (r, g, b)
        (0-1 or 0-255) or of matplotlib colormap names, one per concept rank."""
        self._colors, self._cmaps = cmaps, None
        return self.cmaps


def check_images(inputs: Any, name: str, allow_single: bool = False) -> np.ndarray:
    """``inputs`` as a fresh float32 array (N, H, W, C), the caller's array untouched.

    Args:
        inputs: images, numpy or tensor.
        name: the argument's name, for the errors.
        allow_single: one image (H, W, C) gets a batch axis.

    Returns:
        float32 numpy (N, H, W, C), a copy.

    Raises:
        InvalidTypeError: values that are not real numbers.
        InvalidArgumentError: another shape, an empty axis, NaN or infinite values.
    """
    from sobol_tf._utils.data import to_numpy  # noqa: PLC0415 (imports TensorFlow)

    array = to_numpy(inputs, name)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    if allow_single and array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or 0 in array.shape:
        single = " or one image (H, W, C)" if allow_single else ""
        raise InvalidArgumentError(
            f"{name} must be non-empty images (N, H, W, C){single}, got shape {array.shape}."
        )
    array = np.array(array, dtype=np.float32)  # a copy: the caller's array is untouched
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(
            f"{name} holds {int(np.sum(~np.isfinite(array)))} NaN or infinite values.")
    return array


def extract_crops(images: np.ndarray, patch_size: int) -> np.ndarray:
    """The square crops of side ``patch_size`` of every image, taken every
    ``int(STRIDE_SHARE * patch_size)`` pixels (at least 1), image by image, row by row.

    Args:
        images: float32 (N, H, W, C), at least ``patch_size`` pixels high and wide.
        patch_size: the crops' side.

    Returns:
        float32 numpy (n_crops, patch_size, patch_size, C).
    """
    import tensorflow as tf  # noqa: PLC0415 (import sobol_tf.concepts stays light)

    stride = max(1, int(patch_size * STRIDE_SHARE))
    crops = tf.image.extract_patches(
        images, sizes=[1, patch_size, patch_size, 1], strides=[1, stride, stride, 1],
        rates=[1, 1, 1, 1], padding="VALID")
    return tf.reshape(crops, (-1, patch_size, patch_size, images.shape[-1])).numpy()


def nmf_class() -> Any:
    """scikit-learn's ``NMF`` class.

    Raises:
        ImportError: scikit-learn is missing (the message says how to install it).
    """
    try:
        from sklearn.decomposition import NMF  # noqa: PLC0415 (optional dependency)
    except ImportError as error:
        raise ImportError(
            f"CRAFT factorises activations with scikit-learn's NMF: {INSTALL_HINT}."
        ) from error
    return NMF


def factorize(activations: np.ndarray, number_of_concepts: int, seed: Any
              ) -> Tuple[Any, np.ndarray, np.ndarray]:
    """A ~ U W by scikit-learn's NMF, W regularised by :data:`NMF_ALPHA_W`.

    Args:
        activations: non-negative (n, channels).
        number_of_concepts: the rank of the factorisation.
        seed: scikit-learn's ``random_state`` (None, an integer or a numpy Generator).

    Returns:
        (reducer, U, W): the fitted NMF, float32 (n, number_of_concepts) and float32
        (number_of_concepts, channels).

    Raises:
        ImportError: scikit-learn is missing.
    """
    reducer = nmf_class()(n_components=number_of_concepts, alpha_W=NMF_ALPHA_W,
                          random_state=seed)
    crops_u = reducer.fit_transform(activations.astype(np.float32)).astype(np.float32)
    return reducer, crops_u, reducer.components_.astype(np.float32)


def coefficients_of(reducer: Any, activations: np.ndarray) -> np.ndarray:
    """The coefficients U of ``activations`` against the fitted bank W (non-negative
    least squares: scikit-learn's NMF solver with W fixed), at every spatial position.

    Args:
        reducer: the NMF fitted by :func:`factorize`.
        activations: non-negative (..., channels), the channels of the bank.

    Returns:
        float32 numpy (..., number_of_concepts).
    """
    channels = activations.shape[-1]
    flat = activations.reshape(-1, channels).astype(np.float32)
    coefficients = reducer.transform(flat).astype(np.float32)
    return coefficients.reshape(activations.shape[:-1] + (reducer.n_components,))
