"""Image parametrisations for feature visualisation: Fourier buffers (Olah et al.,
"Feature Visualization", Distill 2017) and MACO's fixed magnitude with an optimised
phase (Fel et al., NeurIPS 2023).

Spectra are real-FFT shaped: an (H, W) image has an (H, W // 2 + 1) spectrum, stored
channels first, (C, H, W // 2 + 1).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import numbers

import numpy as np
import tensorflow as tf

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: Colour recorrelation of natural images: row k is the k-th principal component of
#: the RGB pixels of scikit-learn's two sample photographs (``load_sample_images``,
#: values in [0, 1]) times the square root of its variance, all divided by the
#: largest column norm. An image whose channels are decorrelated components maps to
#: RGB by ``pixels @ COLOR_CORRELATION``. Computed once offline (see
#: tests/features_visualizations/test_fv_preconditioning.py, which recomputes it).
COLOR_CORRELATION = np.array([[0.936278, 0.791189, 0.815692],
                              [-0.350163, 0.098226, 0.306653],
                              [-0.027753, 0.097817, -0.063023]], np.float32)
#: exponent alpha of MACO's default magnitude spectrum 1 / f**alpha (f in cycles per
#: pixel). Natural images have amplitude spectra close to 1 / f (Field, 1987; van der
#: Schaaf and van Hateren, 1996); the ImageNet spectrum Xplique ships falls as
#: f**-1.24 below 0.02 cycles/pixel and f**-1.43 between 0.02 and 0.1.
SPECTRUM_DECAY = 1.0
#: the Fourier buffer of :func:`fft_to_rgb` is divided by this (Lucid's scale).
FFT_IMAGE_DIVISOR = 4.0
#: keeps divisions by a standard deviation finite.
EPSILON = 1e-5


def recorrelate_colors(images: Any) -> Any:
    """Map images whose 3 channels are decorrelated colour components to RGB with
    :data:`COLOR_CORRELATION`."""
    return tf.tensordot(images, tf.constant(COLOR_CORRELATION, images.dtype), axes=1)


def _normalize(images, normalizer, values_range):
    if isinstance(normalizer, str) and normalizer == "sigmoid":
        images = tf.nn.sigmoid(images)
    elif isinstance(normalizer, str) and normalizer == "clip":
        images = tf.clip_by_value(images, values_range[0], values_range[1])
    elif callable(normalizer) and not isinstance(normalizer, str):
        images = normalizer(images)
    else:
        raise InvalidArgumentError(
            f"image_normalizer must be 'sigmoid', 'clip' or a callable, got {normalizer!r}.")
    axes = (1, 2, 3)
    images = images - tf.reduce_min(images, axes, keepdims=True)
    images = images / tf.maximum(tf.reduce_max(images, axes, keepdims=True), EPSILON)
    return images * (values_range[1] - values_range[0]) + values_range[0]


def to_valid_rgb(images: Any, normalizer: Union[str, Callable[..., Any]] = "sigmoid",
                 values_range: Tuple[float, float] = (0, 1)) -> Any:
    """Decorrelated (N, H, W, 3) buffers -> RGB images spanning ``values_range``:
    recorrelate the colours, squash ("sigmoid"), clip ("clip") or apply a callable,
    then stretch each image min-max to ``values_range``."""
    return _normalize(recorrelate_colors(images), normalizer, values_range)


def to_valid_grayscale(images: Any, normalizer: Union[str, Callable[..., Any]] = "sigmoid",
                       values_range: Tuple[float, float] = (0, 1)) -> Any:
    """As :func:`to_valid_rgb` without the colour recorrelation (any channel count)."""
    return _normalize(images, normalizer, values_range)


def to_valid_image(images: Any, normalizer: Union[str, Callable[..., Any]] = "sigmoid",
                   values_range: Tuple[float, float] = (0, 1)) -> Any:
    """:func:`to_valid_rgb` for 3 channels, :func:`to_valid_grayscale` otherwise."""
    if images.shape[-1] == 3:
        return to_valid_rgb(images, normalizer, values_range)
    return to_valid_grayscale(images, normalizer, values_range)


def fft_2d_freq(width: int, height: int) -> np.ndarray:
    """Radial frequency (cycles per pixel) of each bin of the real FFT of a
    (height, width) image: an array (height, width // 2 + 1)."""
    rows = np.fft.fftfreq(height)[:, None]
    columns = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(rows ** 2 + columns ** 2)


def get_fft_scale(width: int, height: int, decay_power: float = 1.0) -> Any:
    """Per-bin scale 1 / max(f, 1/max(width, height))**decay_power * sqrt(width*height)
    of a (height, width) image's spectrum (complex64, (height, width // 2 + 1)): damps
    the high frequencies and makes the learning rate independent of the size.

    Unlike Xplique, whose call site passes (height, width), the arguments here are the
    image's width then height (the same for square images)."""
    frequencies = fft_2d_freq(width, height)
    scale = 1.0 / np.maximum(frequencies, 1.0 / max(width, height)) ** decay_power
    return tf.constant(scale * np.sqrt(width * height), tf.complex64)


def fft_image(shape: Tuple[int, ...], std: float = 0.01, *,
              seed: Optional[int] = None) -> Any:
    """A random Fourier buffer (2, N, C, H, W // 2 + 1) (real and imaginary parts) for
    images of ``shape`` (N, H, W, C), drawn from N(0, std**2) (``seed``: numpy seed)."""
    batch, height, width, channels = shape
    rng = np.random.default_rng(seed)
    size = (2, batch, channels, height, width // 2 + 1)
    return tf.constant(rng.normal(0.0, std, size), tf.float32)


def fft_to_rgb(shape: Tuple[int, ...], buffer: Any, fft_scale: Any) -> Any:
    """The images (N, H, W, C) of ``shape`` whose scaled spectrum is ``buffer``
    (see :func:`fft_image`, :func:`get_fft_scale`); still decorrelated, unbounded."""
    _, height, width, _ = shape
    spectrum = tf.complex(buffer[0], buffer[1]) * fft_scale
    images = tf.signal.irfft2d(spectrum, fft_length=[height, width])
    return tf.transpose(images, (0, 2, 3, 1)) / FFT_IMAGE_DIVISOR


def power_law_spectrum(image_shape: Tuple[int, ...], decay: float = SPECTRUM_DECAY) -> Any:
    """MACO's default magnitude: 1 / max(f, 1/max(H, W))**decay for every channel,
    an array (C, H, W // 2 + 1) (C = 3 when ``image_shape`` is (H, W))."""
    height, width = int(image_shape[0]), int(image_shape[1])
    channels = int(image_shape[2]) if len(image_shape) > 2 else 3
    frequencies = fft_2d_freq(width, height)
    magnitude = 1.0 / np.maximum(frequencies, 1.0 / max(height, width)) ** decay
    return np.repeat(magnitude[None].astype(np.float32), channels, axis=0)


def _resize_spectrum(magnitude, spectrum_shape):
    """(C, h, w) -> (C, *spectrum_shape) by bilinear resizing."""
    magnitude = tf.convert_to_tensor(magnitude, tf.float32)
    if tuple(magnitude.shape[1:]) == tuple(spectrum_shape):
        return magnitude
    resized = tf.image.resize(tf.transpose(magnitude, (1, 2, 0)), spectrum_shape)
    return tf.transpose(resized, (2, 0, 1))


def _dataset_spectrum(dataset):
    """Mean |rfft2d| (C, H, W // 2 + 1) of the images of ``dataset``: a tf.data.Dataset
    of (N, H, W, C) batches or an array (N, H, W, C)."""
    batches = [dataset] if not isinstance(dataset, tf.data.Dataset) else dataset
    total, count = 0.0, 0
    for batch in batches:
        batch = tf.convert_to_tensor(batch, tf.float32)
        if batch.shape.rank != 4:
            raise InvalidArgumentError(
                f"maco_dataset must hold images (N, H, W, C), got a batch of shape "
                f"{tuple(batch.shape)}.")
        spectra = tf.abs(tf.signal.rfft2d(tf.transpose(batch, (0, 3, 1, 2))))
        total += tf.reduce_sum(spectra, axis=0)
        count += int(batch.shape[0])
    if count == 0:
        raise InvalidArgumentError("maco_dataset must hold at least one image, got none.")
    return total / count


def init_maco_buffer(image_shape: Tuple[int, ...], dataset: Any = None, std: float = 1.0, *,
                     magnitude_spectrum: Any = None,
                     seed: Optional[int] = None) -> Tuple[Any, Any]:
    """MACO's fixed magnitude and a random initial phase, both (C, H, W // 2 + 1).

    Args:
        image_shape: (H, W, C) or (H, W) (then C = 3).
        dataset: images whose mean spectrum magnitude is the one to keep: a tf.data.Dataset
            of (N, h, w, C) batches or an array (N, h, w, C); resized to the image's.
        std: standard deviation of the random phase.
        magnitude_spectrum: keyword-only, a magnitude (C, h, w // 2 + 1) to use as it is
            (resized). Used when ``dataset`` is None.
        seed: keyword-only, numpy seed of the phase.

    Without ``dataset`` nor ``magnitude_spectrum`` the magnitude is the natural-image
    power law :func:`power_law_spectrum` (Xplique loads an ImageNet spectrum file for
    RGB and requires a dataset for other channel counts).

    Returns:
        (magnitude, phase): float32 tensors (C, H, W // 2 + 1).
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    spectrum_shape = (height, width // 2 + 1)
    if dataset is not None:
        magnitude = _dataset_spectrum(dataset)
    elif magnitude_spectrum is not None:
        magnitude = np.asarray(magnitude_spectrum, np.float32)
        if magnitude.ndim != 3 or not np.all(np.isfinite(magnitude)) or np.any(magnitude < 0):
            raise InvalidArgumentError(
                f"magnitude_spectrum must be a finite non-negative array "
                f"(C, h, w // 2 + 1), got shape {magnitude.shape}.")
    else:
        magnitude = power_law_spectrum(image_shape)
    magnitude = _resize_spectrum(magnitude, spectrum_shape)
    channels = int(magnitude.shape[0])
    if len(image_shape) > 2 and int(image_shape[2]) != channels:
        raise InvalidArgumentError(
            f"the magnitude spectrum has {channels} channels but the images have "
            f"{image_shape[2]}; give a dataset or a magnitude_spectrum with "
            f"{image_shape[2]} channels.")
    rng = np.random.default_rng(seed)
    phase = rng.normal(0.0, std, (channels, *spectrum_shape)).astype(np.float32)
    return tf.cast(magnitude, tf.float32), tf.constant(phase)


def maco_image_parametrization(magnitude: Any, phase: Any,
                               values_range: Tuple[float, float]) -> Any:
    """The image (H, W, C) with spectrum ``magnitude * exp(i * standardised phase)``:
    inverse real FFT, standardised, colours recorrelated (3 channels), squashed by a
    sigmoid into ``values_range``.

    Args:
        magnitude, phase: (C, H, W // 2 + 1) tensors.
        values_range: (low, high) of the model's inputs.

    Returns:
        (H, W, C) tensor, W = 2 * (W // 2 + 1 - 1): an even width (the spectrum of an
        odd width is ambiguous; :func:`maco` keeps odd widths).
    """
    return _maco_image(magnitude, phase, values_range,
                       (magnitude.shape[1], 2 * (magnitude.shape[2] - 1)))


def _maco_image(magnitude, phase, values_range, size):
    """:func:`maco_image_parametrization` with an explicit (H, W) (odd widths)."""
    phase = (phase - tf.reduce_mean(phase)) / (tf.math.reduce_std(phase) + EPSILON)
    spectrum = tf.complex(tf.cos(phase) * magnitude, tf.sin(phase) * magnitude)
    image = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=list(size)), (1, 2, 0))
    image = (image - tf.reduce_mean(image)) / (tf.math.reduce_std(image) + EPSILON)
    if image.shape[-1] == 3:
        image = recorrelate_colors(image)
    return tf.nn.sigmoid(image) * (values_range[1] - values_range[0]) + values_range[0]


def check_values_range(values_range: Any) -> Tuple[float, float]:
    """``values_range`` as a (low, high) pair of finite floats with low < high."""
    if (not isinstance(values_range, (tuple, list)) or len(values_range) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Real)
                   for v in values_range)):
        raise InvalidTypeError(
            f"values_range must be a pair of numbers (low, high), got {values_range!r}.")
    low, high = float(values_range[0]), float(values_range[1])
    if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise InvalidArgumentError(
            f"values_range must be (low, high) with finite low < high, got "
            f"{tuple(values_range)}; e.g. (0, 1) or (-1, 1).")
    return low, high
