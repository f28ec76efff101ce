"""MACO feature visualisation: optimise only the phase of the image's Fourier spectrum,
its magnitude held at that of natural images (Fel et al., "Unlocking Feature
Visualization for Deeper Networks with MAgnitude Constrained Optimization", NeurIPS
2023), with Xplique's ``maco`` signature."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numbers

import keras
import numpy as np
import tensorflow as tf

from sobol_tf._utils.batching import progbar, quiet_retracing
from sobol_tf._utils.validation import check_positive_int, check_seed
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.features_visualizations.optim import as_list, prepare
from sobol_tf.features_visualizations.preconditioning import (
    _maco_image, check_values_range, init_maco_buffer)

#: learning rate of MACO's default optimiser (Nadam, as Xplique).
MACO_LEARNING_RATE = 1.0
#: default crop size, as a share of the image side: linear from the first to the last.
BOX_SIZE_SCHEDULE = (0.5, 0.05)
#: spread of the crops: centre ~ N(0.5, CENTER_STD), side ~ N(box_size, SIZE_STD),
#: clipped to [MIN_BOX_SIZE, 1] (shares of the image side).
CENTER_STD, SIZE_STD, MIN_BOX_SIZE = 0.15, 0.05, 0.05
#: noise_intensity=None: log-spaced from 10**first to 10**last.
NOISE_SCHEDULE = (0.0, -4.0)


def _resampling_matrix(starts, ends, length, size):
    """(N, size, length) bilinear weights that sample ``size`` points from ``starts`` to
    ``ends`` (shares of the side, as the corners of ``tf.image.crop_and_resize``) out of
    ``length`` pixels; a point outside the image has no weight (it reads 0)."""
    scale = float(length - 1)
    if size > 1:
        steps = tf.range(size, dtype=tf.float32) / float(size - 1)
        points = (starts[:, None] + (ends - starts)[:, None] * steps[None]) * scale
    else:
        points = (0.5 * (starts + ends) * scale)[:, None]
    inside = tf.cast((points >= 0.0) & (points <= scale), tf.float32)
    lower = tf.floor(points)
    weight = (points - lower) * inside
    lower = tf.cast(lower, tf.int32)
    upper = tf.cast(tf.math.ceil(points), tf.int32)
    return (tf.one_hot(lower, length) * (inside - weight)[..., None]
            + tf.one_hot(upper, length) * weight[..., None])


def crop_and_resize(image: Any, corners: Any, size: Any) -> Any:
    """Bilinear crops of one image (H, W, C) at ``corners`` (N, 4) = (y1, x1, y2, x2) in
    shares of the side, resized to ``size`` (h, w), with 0 outside the image: the values
    of ``tf.image.crop_and_resize(image[None], corners, zeros, size)``.

    It is computed as two matrix products (rows, then columns) so that its gradient is
    exact and reproducible: the gradient of TensorFlow's CPU kernel
    (CropAndResizeGradImage) adds the crops of one image from several threads at once,
    and when they overlap, as MACO's do, updates are lost at random (measured: errors
    of 10 on a gradient of norm 54 in 2 of 20 runs of 256 crops).
    """
    corners = tf.convert_to_tensor(corners, tf.float32)
    height, width = int(image.shape[0]), int(image.shape[1])
    rows = _resampling_matrix(corners[:, 0], corners[:, 2], height, int(size[0]))
    columns = _resampling_matrix(corners[:, 1], corners[:, 3], width, int(size[1]))
    crops = tf.einsum("nih,hwc->niwc", rows, image)
    return tf.einsum("njw,niwc->nijc", columns, crops)


def _schedule(name, value, nb_steps, default):
    """``value`` (None: ``default`` array per step, a number, or a callable step ->
    number) as a list of nb_steps floats."""
    if value is None:
        return [float(v) for v in default]
    if callable(value):
        values = [value(step) for step in range(nb_steps)]
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = [value] * nb_steps
    else:
        raise InvalidTypeError(
            f"{name} must be None, a number or a callable step -> number, got "
            f"{type(value).__name__}.")
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise InvalidTypeError(f"{name}(step) must return a number.") from error
    return values


def maco(objective: Any, optimizer: Any = None, maco_dataset: Any = None, nb_steps: int = 256,
         noise_intensity: Any = 0.08, box_size: Any = None, nb_crops: int = 32,
         values_range: Tuple[float, float] = (-1, 1),
         custom_shape: Tuple[int, int] = (512, 512), *, magnitude_spectrum: Any = None,
         seed: Optional[int] = None, verbose: bool = False) -> Tuple[Any, Any]:
    """Maximise one objective with MACO: a fixed magnitude spectrum, an optimised phase.

    Each step builds the image from the magnitude and the phase
    (:func:`maco_image_parametrization`), cuts ``nb_crops`` random square crops (centres
    ~ N(0.5, 0.15), sides ~ N(box_size, 0.05) clipped to [0.05, 1], shares of the
    image), resizes them to the model's input, adds noise (Gaussian of std
    ``noise_intensity`` plus uniform of width ``noise_intensity``), and moves the phase
    along the gradient of the crops' mean objective. One compiled ``tf.function`` does
    the forward pass of all the crops, the gradients and the update.

    Args:
        objective: an :class:`Objective` with one combination (e.g. one channel).
        optimizer: a Keras optimizer (default ``Nadam(1.0)``).
        maco_dataset: images whose mean spectrum magnitude is kept: a tf.data.Dataset of
            (N, h, w, C) batches or an array (N, h, w, C). None: ``magnitude_spectrum``
            or, without it, the natural-image power law 1/f (see
            :func:`power_law_spectrum`; Xplique loads an ImageNet spectrum file instead
            and requires a dataset for non-RGB images).
        nb_steps: number of steps (>= 1).
        noise_intensity: a number, a callable step -> number, or None (log-spaced from
            1 to 1e-4).
        box_size: crop side as a share of the image side: a number in (0, 1], a callable
            step -> number, or None (linear from 0.5 to 0.05).
        nb_crops: crops per step (0: the whole image, resized).
        values_range: (low, high) of the model's inputs, low < high (Xplique sorts an
            inverted pair; here it is an error).
        custom_shape: (H, W) of the optimised image, or None for the model's input size.
        magnitude_spectrum: keyword-only, a magnitude (C, h, w // 2 + 1) to keep (resized).
        seed: keyword-only, seed of the initial phase, the crops and the noise (same seed,
            same image on the same device).
        verbose: keyword-only, show a progress bar with the objective.

    Returns:
        (image, transparency): arrays (H, W, C). ``transparency`` is the accumulated
        |gradient of the objective w.r.t. the image| over the steps, divided by its
        maximum so that it lies in [0, 1] (Xplique returns the raw sum as a tensor); use
        it as an alpha channel to show where the objective looks.

    Raises:
        InvalidTypeError / InvalidArgumentError: a bad argument (named in the message),
        an objective with several combinations (MACO optimises one image).
    """
    model, objective_function, names, input_shape, size = prepare(
        objective, nb_steps, custom_shape)
    if input_shape[0] != 1:
        raise InvalidArgumentError(
            f"maco optimises one objective at a time; this objective has "
            f"{input_shape[0]} combinations ({list(names)[:4]}...). Build one per call.")
    low, high = check_values_range(values_range)
    nb_crops = check_positive_int("nb_crops", nb_crops, minimum=0)
    boxes = _schedule("box_size", box_size, nb_steps,
                      np.linspace(*BOX_SIZE_SCHEDULE, nb_steps))
    if not all(0.0 < b <= 1.0 for b in boxes):
        raise InvalidArgumentError(
            f"box_size must lie in (0, 1] (a share of the image side), got "
            f"{min(boxes)} to {max(boxes)}.")
    noises = _schedule("noise_intensity", noise_intensity, nb_steps,
                       np.logspace(*NOISE_SCHEDULE, nb_steps))
    if not all(np.isfinite(n) and n >= 0 for n in noises):
        raise InvalidArgumentError(
            f"noise_intensity must be finite and >= 0, got {min(noises)} to {max(noises)}.")
    seed = check_seed(seed)
    channels = int(input_shape[-1])

    magnitude, phase = init_maco_buffer((*size, channels), maco_dataset,
                                        magnitude_spectrum=magnitude_spectrum, seed=seed)
    phase = tf.Variable(phase)
    transparency = tf.Variable(tf.zeros((*size, channels)))
    generator = (tf.random.Generator.from_seed(seed) if seed is not None
                 else tf.random.Generator.from_non_deterministic_state())
    optimizer = optimizer or keras.optimizers.Nadam(MACO_LEARNING_RATE)
    model_size = tuple(int(s) for s in input_shape[1:3])
    crops_shape = (max(nb_crops, 1), *model_size, channels)

    def step(box, noise):
        with tf.GradientTape() as tape:
            image = _maco_image(magnitude, phase, (low, high), size)
            if nb_crops == 0:
                crops = tf.image.resize(image[None], model_size)
            else:
                centres = 0.5 + generator.normal((2, nb_crops), stddev=CENTER_STD)
                sides = tf.clip_by_value(generator.normal((nb_crops,), box, SIZE_STD),
                                         MIN_BOX_SIZE, 1.0)
                corners = tf.stack([centres[0] - sides / 2, centres[1] - sides / 2,
                                    centres[0] + sides / 2, centres[1] + sides / 2], -1)
                crops = crop_and_resize(image, corners, model_size)
            crops += generator.normal(crops_shape, stddev=noise)
            crops += generator.uniform(crops_shape, -noise / 2.0, noise / 2.0)
            loss = tf.reduce_mean(objective_function(as_list(model(crops))))
        phase_gradient, image_gradient = tape.gradient(loss, [phase, image])
        optimizer.apply_gradients([(-phase_gradient, phase)])
        transparency.assign_add(tf.abs(image_gradient))
        return loss

    step = tf.function(quiet_retracing(step, "maco_step"))

    progress = progbar(nb_steps, verbose, f"maco: {nb_steps} steps")
    for index in range(nb_steps):
        value = step(tf.constant(boxes[index], tf.float32),
                     tf.constant(noises[index], tf.float32))
        if progress is not None:
            progress.update(index + 1, values=[("objective", float(value))])
    image = _maco_image(magnitude, phase, (low, high), size).numpy()
    transparency = transparency.numpy()
    peak = transparency.max()
    return image, (transparency / peak if peak > 0 else transparency)
