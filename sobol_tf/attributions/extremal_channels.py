"""Extremal perturbations of a layer's channels (Fong, Patrick & Vedaldi, ICCV 2019,
"attribution at intermediate layers").

The model is split at a named layer, f = tail(head(x)); for each area a (a share of the
layer's C channels) a mask m in [0, 1]^C is optimised so that tail(m * head(x)) keeps
the score ('preserve'), tail((1 - m) * head(x)) loses it ('delete'), or both ('dual'),
under the same ranking loss of the area and the same gradient descent (momentum,
clipping, growing area weight, score normalisation) as the spatial masks of
:class:`~sobol_tf.attributions.ExtremalPerturbation`. A removed channel is set to 0
(channels have no neighbours to blur with); there is one free parameter per channel (no
smoothing: channels are not ordered).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf

from sobol_tf.attributions import extremal_masks as _extremal
from sobol_tf.attributions.extremal_masks import area_loss
from sobol_tf.errors import InvalidArgumentError
from sobol_tf.verification.split import split_model

#: a removed channel becomes this value.
REMOVED_VALUE = 0.0


def _optimise(tail, operator, activations, targets, areas, settings):
    """Masks (B, C) of (activation, target, area) triples, optimised together."""
    variant, steps, learning_rate, weight_0, growth, normalize = settings
    channels = activations.shape[-1]
    factor = channels / _extremal.AREA_REFERENCE_CELLS
    shape = (-1,) + (1,) * (len(activations.shape) - 2) + (channels,)

    def perturb(masks):
        return activations * tf.reshape(masks, shape)

    def scores_of(masks):
        if variant == "preserve":
            return operator(tail, perturb(masks), targets)
        if variant == "delete":
            return -operator(tail, perturb(1.0 - masks), targets)
        both = tf.concat([perturb(masks), perturb(1.0 - masks)], 0)
        scores = operator(tail, both, tf.concat([targets, targets], 0))
        half = tf.shape(scores)[0] // 2
        return scores[:half] - scores[half:]

    count = tf.shape(activations)[0]
    scale = tf.ones((count,), tf.float32)
    if normalize:
        ones = tf.ones((count, channels))
        clean = operator(tail, perturb(ones), targets)
        removed = operator(tail, perturb(0.0 * ones), targets)
        size = tf.reduce_max(tf.abs(tf.stack([clean, removed, clean - removed])), 0)
        scale = 1.0 / tf.maximum(size, _extremal.SCORE_SCALE_FLOOR)

    params = tf.fill((count, channels), _extremal.INITIAL_PARAMETERS[variant])
    velocity = tf.zeros_like(params)
    for step_id in tf.range(steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            progress = tf.cast(step_id, tf.float32) / max(steps - 1, 1)
            weight = factor * weight_0 * tf.pow(growth, progress)
            area = area_loss(params[:, None, :], areas)
            value = tf.reduce_sum(weight * area - scores_of(params) * scale)
        gradient = tape.gradient(value, params)
        velocity = _extremal.MOMENTUM * velocity + (1.0 - _extremal.MOMENTUM) * gradient
        params = tf.clip_by_value(params - learning_rate * velocity, 0.0, 1.0)
    return params


def explain_channels(explainer: Any, inputs: Any, targets: Any = None,
                     layer: Optional[Union[str, int]] = None) -> tf.Tensor:
    """Extremal channel masks of ``layer`` for every input (see the module docstring).

    Args:
        explainer: an :class:`~sobol_tf.attributions.ExtremalPerturbation` (its areas,
            variant, steps, learning_rate, area_weight, area_weight_growth,
            normalize_scores, batch_size and operator are used; the spatial options
            are not).
        inputs, targets: as for ``explainer.explain``.
        layer: the name (or index) of a layer whose output has channels last, e.g. a
            convolution's (N, h, w, C) or a Dense layer's (N, C).

    Returns:
        float32 tf.Tensor of masks in [0, 1]: (N, C) for one area, (N, nb_areas, C)
        for several, in the order of ``areas``. The mask marks the channels that
        matter: kept in 'preserve', removed in 'delete'.

    Raises:
        InvalidArgumentError: no ``layer``, a layer that is not in the model, the
            last layer, a model that cannot be split there (the message says how to
            fix it); the errors of ``explain`` for inputs and targets.
        InvalidTypeError: a model that is not a Keras model.
    """
    if layer is None:
        raise InvalidArgumentError(
            "explain_channels needs layer=NAME, the layer whose channels are masked "
            "(e.g. the name of a convolution).")
    head, tail = split_model(explainer.model, layer)
    _, images, targets = explainer._prepare(inputs, targets)
    inputs = explainer._layout.from_engine_inputs(images)
    size = images.shape[0] if explainer.batch_size is None else explainer.batch_size
    activations = tf.concat([head(inputs[i:i + size], training=False)
                             for i in range(0, images.shape[0], size)], 0)
    if len(activations.shape) < 2:
        raise InvalidArgumentError(
            f"layer {layer!r} gives outputs of shape {tuple(activations.shape)}, without "
            "a channel axis; name a layer with outputs (N, ..., C).")
    nb_inputs, nb_areas = images.shape[0], len(explainer.areas)
    settings = (explainer.variant, explainer.steps, explainer.learning_rate,
                explainer.area_weight, explainer.area_weight_growth,
                explainer.normalize_scores)
    operator = explainer.operator
    step = tf.function(lambda a, t, r: _optimise(tail, operator, a, t, r, settings))
    pairs = nb_inputs * nb_areas
    pair_size = pairs if explainer.batch_size is None else explainer.batch_size
    input_ids = np.arange(pairs) // nb_areas
    area_values = np.asarray(explainer.areas, np.float32)[np.arange(pairs) % nb_areas]
    masks = []
    for begin in range(0, pairs, pair_size):
        ids = input_ids[begin:begin + pair_size]
        masks.append(step(tf.gather(activations, ids), tf.gather(targets, ids),
                          tf.constant(area_values[begin:begin + pair_size])))
    masks = tf.reshape(tf.concat(masks, 0), (nb_inputs, nb_areas, -1))
    return masks[:, 0] if nb_areas == 1 else masks
