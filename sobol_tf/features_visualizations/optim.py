"""Classic feature visualisation: gradient ascent on a Fourier-parametrised image under
random transformations (Olah et al., "Feature Visualization", Distill 2017), with
Xplique's ``optimize`` signature."""
import numbers

import keras
import numpy as np
import tensorflow as tf

from sobol_tf._utils.batching import progbar, quiet_retracing
from sobol_tf._utils.validation import check_positive_int, check_real, check_seed
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.features_visualizations.objectives import Objective
from sobol_tf.features_visualizations.preconditioning import (
    check_values_range, fft_image, fft_to_rgb, get_fft_scale, to_valid_image)
from sobol_tf.features_visualizations.transformations import (
    compose_transformations, generate_standard_transformations)

#: learning rate of the default optimiser of :func:`optimize` (Adam, as Xplique).
OPTIMIZE_LEARNING_RATE = 0.05


def prepare(objective, nb_steps, custom_shape):
    """Checks shared by :func:`optimize` and :func:`maco`; returns
    (model, objective_function, names, input_shape, (H, W) of the optimised image)."""
    if not isinstance(objective, Objective):
        raise InvalidTypeError(
            f"objective must be an Objective (e.g. Objective.channel(model, layer, 0)), got "
            f"a {type(objective).__name__}.")
    check_positive_int("nb_steps", nb_steps)
    model, objective_function, names, input_shape = objective.compile()
    if len(input_shape) != 4:
        raise InvalidArgumentError(
            f"feature visualisation needs a model of images (N, H, W, C); its input has "
            f"shape {(None, *input_shape[1:])}.")
    if custom_shape is None:
        size = tuple(int(s) for s in input_shape[1:3])
    else:
        if (not isinstance(custom_shape, (tuple, list)) or len(custom_shape) != 2
                or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                       for s in custom_shape)):
            raise InvalidArgumentError(
                f"custom_shape must be None or (height, width), two integers >= 1, got "
                f"{custom_shape!r}.")
        size = (int(custom_shape[0]), int(custom_shape[1]))
    return model, objective_function, names, input_shape, size


def as_list(outputs):
    """The model's outputs as a list (one output comes back as a tensor)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _open_rule(upstream, slope):
    """The backward rule of the warm-up's ReLUs: the gradient passes unchanged."""
    return upstream


_open_rule.uses_slope = False  # type: ignore[attr-defined]


def _check_warmup_steps(warmup_steps):
    """``warmup_steps`` as an int >= 0 (False / None: 0)."""
    if warmup_steps is None or warmup_steps is False:
        return 0
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) \
            or warmup_steps < 0:
        raise InvalidArgumentError(
            f"warmup_steps must be False or an integer >= 0, got {warmup_steps!r}.")
    return int(warmup_steps)


def _check_transformations(transformations, size, channels):
    if transformations is None:
        return None
    if isinstance(transformations, str):
        if transformations != "standard":
            raise InvalidArgumentError(
                f"transformations must be 'standard', None, a callable or a list of "
                f"callables, got {transformations!r}.")
        return generate_standard_transformations(min(size), channels)
    if isinstance(transformations, (list, tuple)):
        return compose_transformations(transformations)
    if callable(transformations):
        return transformations
    raise InvalidTypeError(
        f"transformations must be 'standard', None, a callable or a list of callables, got "
        f"a {type(transformations).__name__}.")


def optimize(objective, optimizer=None, nb_steps=256, use_fft=True, fft_decay=0.85,
             std=0.01, regularizers=None, image_normalizer="sigmoid", values_range=(0, 1),
             transformations="standard", warmup_steps=False, custom_shape=(512, 512),
             save_every=None, *, seed=None, verbose=False):
    """Maximise ``objective`` by gradient ascent on images, one image per combination of
    the objective (see :meth:`Objective.compile`).

    Each step builds the images from their parameters (a Fourier buffer scaled by
    1/f**fft_decay when ``use_fft``, else the pixels), maps them to ``values_range``
    (``image_normalizer``), applies the random ``transformations``, resizes to the
    model's input, and moves the parameters along the gradient of
    sum(objective) - sum(regularizers). The step (forward, gradient and update) is one
    compiled ``tf.function``.

    Args:
        objective: an :class:`Objective`.
        optimizer: a Keras optimizer (default ``Adam(0.05)``).
        nb_steps: number of steps (>= 1).
        use_fft: optimise a Fourier buffer (True) or the pixels (False).
        fft_decay: damping of the high frequencies of the Fourier buffer.
        std: standard deviation of the initial parameters.
        regularizers: callables images -> (N,) penalties (see regularizers.py).
        image_normalizer: "sigmoid", "clip" or a callable, then min-max to values_range.
        values_range: (low, high) of the model's inputs, low < high.
        transformations: "standard" (Xplique's robust set), None, a callable or a list.
        warmup_steps: False / 0, or a number of warm-up steps run first, as Xplique's: on a
            copy of the model whose ReLUs pass every gradient back (their outputs are
            unchanged), so that ReLUs dead at the random start do not block the ascent;
            then ``nb_steps`` ordinary steps (same optimizer). Needs a functional or
            Sequential Keras model when not 0.
        custom_shape: (H, W) of the optimised images (resized for the model), or None
            for the model's input size.
        save_every: also keep the images every ``save_every`` steps.
        seed: keyword-only, seed of the initial parameters (the transformations draw from
            TensorFlow's global random state).
        verbose: keyword-only, show a progress bar.

    Returns:
        (images, names): a list of arrays (N, H, W, C) (the saved ones, then the last),
        and one name per image. Xplique returns tensors.

    Raises:
        InvalidTypeError / InvalidArgumentError: a bad argument (named in the message).
    """
    model, objective_function, names, input_shape, size = prepare(
        objective, nb_steps, custom_shape)
    low, high = check_values_range(values_range)
    warmup_steps = _check_warmup_steps(warmup_steps)
    if save_every is not None:
        save_every = check_positive_int("save_every", save_every)
    check_real("std", std, 0.0, finite=True)
    check_real("fft_decay", fft_decay, finite=True)
    regularizers = list(regularizers or [])
    if not all(callable(r) for r in regularizers):
        raise InvalidTypeError("regularizers must be a list of callables images -> (N,).")
    transform = _check_transformations(transformations, size, input_shape[-1])
    shape = (input_shape[0], *size, input_shape[-1])
    seed = check_seed(seed)
    to_valid_image(tf.zeros((1, 1, 1, shape[-1])), image_normalizer, (low, high))  # checks

    if use_fft:
        variable = tf.Variable(fft_image(shape, std, seed=seed))
        scale = get_fft_scale(size[1], size[0], decay_power=fft_decay)

        def parametrize(parameters):
            return to_valid_image(fft_to_rgb(shape, parameters, scale), image_normalizer,
                                  (low, high))
    else:
        start = np.random.default_rng(seed).normal(0.0, std, shape)
        variable = tf.Variable(tf.constant(start, tf.float32))

        def parametrize(parameters):
            return to_valid_image(parameters, image_normalizer, (low, high))

    optimizer = optimizer or keras.optimizers.Adam(OPTIMIZE_LEARNING_RATE)
    model_size = tuple(int(s) for s in input_shape[1:3])

    def make_step(network):
        def step():
            with tf.GradientTape() as tape:
                images = parametrize(variable)
                if transform is not None:
                    images = transform(images)
                images = tf.image.resize(images, model_size)
                values = objective_function(as_list(network(images)))
                loss = tf.reduce_sum(values)
                for regularizer in regularizers:
                    loss -= tf.reduce_sum(regularizer(images))
            gradient = tape.gradient(loss, variable)
            optimizer.apply_gradients([(-gradient, variable)])
            return tf.reduce_mean(values)

        return tf.function(quiet_retracing(step, "optimize_step"))

    if warmup_steps:
        # Xplique's warm-up: first steps on a copy of the model whose ReLUs pass every
        # gradient back (a dead ReLU would block the ascent from the start)
        from sobol_tf.attributions.guided import override_relu_gradients

        opened, _ = override_relu_gradients(model, _open_rule, "optimize(warmup_steps=...)")
        warmup = make_step(opened)
        for _ in range(warmup_steps):
            warmup()
    step = make_step(model)

    progress = progbar(nb_steps, verbose, f"optimize: {nb_steps} steps")
    saved = []
    for index in range(nb_steps):
        value = step()
        if progress is not None:
            progress.update(index + 1, values=[("objective", float(value))])
        if (save_every and (index + 1) % save_every == 0) or index == nb_steps - 1:
            saved.append(parametrize(variable).numpy())
    return saved, list(names)
