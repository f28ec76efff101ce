"""What a feature visualisation maximises: :class:`Objective`, built on one or several
layers of a Keras model (a neuron, a channel, a whole layer, a direction) and composed
with ``+``, ``-`` and a scalar ``*``.

Names and argument order follow Xplique's ``xplique.features_visualizations.Objective``.
"""
import itertools
import numbers

import keras
import numpy as np
import tensorflow as tf

from sobol_tf.attributions.whitebox import find_layer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: how ``Objective.layer`` reduces a layer: name -> power of the activations averaged.
LAYER_REDUCERS = {"magnitude": 2.0, "mean": 1.0}
#: floor of the cosine in :func:`dot_cossim` (keeps the gradient alive at right angles).
COSINE_FLOOR = 0.1


def cosine_similarity(tensor_a, tensor_b):
    """Cosine similarity of each pair of rows: <a_i, b_i> / (|a_i| |b_i|).

    Args:
        tensor_a, tensor_b: (N, ...) tensors of the same shape (or broadcastable).

    Returns:
        (N,) tensor: one cosine per row, over all the non-batch axes.
    """
    axes = list(range(1, len(tensor_a.shape)))
    tensor_a = tf.nn.l2_normalize(tensor_a, axis=axes)
    tensor_b = tf.nn.l2_normalize(tensor_b, axis=axes)
    return tf.reduce_sum(tensor_a * tensor_b, axis=axes)


def dot_cossim(tensor_a, tensor_b, cossim_pow=2.0):
    """Lucid's direction objective, per row: <a_i, b_i> * max(cos(a_i, b_i), 0.1)**p.

    The dot product pushes the activation along the direction, the cosine power
    rewards the angle. Xplique sums the dot product over the whole batch; here each
    image gets its own value.
    """
    axes = list(range(1, len(tensor_a.shape)))
    cosine = tf.maximum(cosine_similarity(tensor_a, tensor_b), COSINE_FLOOR)
    return tf.reduce_sum(tensor_a * tensor_b, axis=axes) * cosine ** cossim_pow


def _masked_mean(outputs, mask):
    """sum(outputs * mask) / sum(mask) per row: a neuron's value (one-hot mask) or a
    channel's spatial mean (mask of ones on that channel)."""
    axes = list(range(1, len(outputs.shape)))
    return (tf.reduce_sum(outputs * mask, axis=axes)
            / tf.maximum(tf.reduce_sum(mask, axis=axes), 1.0))


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_multiplier(multiplier):
    if isinstance(multiplier, bool) or not isinstance(multiplier, numbers.Real):
        raise InvalidTypeError(
            f"multiplier must be a number, got {multiplier!r} of type "
            f"{type(multiplier).__name__}.")
    return float(multiplier)


def _target_layer(model, layer):
    """The layer (by name or index) and the shape of one of its outputs (no batch)."""
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            f"model must be a Keras model (functional or Sequential), got a "
            f"{type(model).__name__}.")
    if len(model.inputs) != 1:
        raise InvalidArgumentError(
            f"model must have one input to visualise its features, it has "
            f"{len(model.inputs)}.")
    found = find_layer(model, layer, argument="layer")
    return found, tuple(found.output.shape[1:])


def _check_ids(argument, ids, size, what):
    """``ids`` (an int or a list of ints) as a list of indices in [0, size)."""
    ids = _as_list(ids)
    if not ids:
        raise InvalidArgumentError(f"{argument} must name at least one {what}, got [].")
    checked = []
    for index in ids:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise InvalidTypeError(
                f"{argument} must be an integer or a list of integers, got {index!r} of "
                f"type {type(index).__name__}.")
        if not -size <= index < size:
            raise InvalidArgumentError(
                f"{argument} must hold {what} indices in [{-size}, {size}), got {index}.")
        checked.append(int(index) % size)
    return checked


def _names(argument, names, default):
    if names is None:
        return default
    names = _as_list(names)
    if len(names) != len(default):
        raise InvalidArgumentError(
            f"{argument} must give one name per objective ({len(default)}), got "
            f"{len(names)}.")
    return [str(name) for name in names]


class Objective:
    """A sum of sub-objectives, each on one layer of ``model``, to maximise.

    Each sub-objective holds one or several masks (e.g. one per channel asked for).
    Adding objectives combines them: every combination of one mask per sub-objective
    becomes one image to optimise, in ``itertools.product`` order (the first
    sub-objective varies slowest), and its value is
    ``sum_k multipliers[k] * funcs[k](output_k, mask_k)``.

    Build objectives with :meth:`neuron`, :meth:`channel`, :meth:`layer` and
    :meth:`direction`; compose with ``a + b``, ``a - b`` and ``2.0 * a``.

    Differences from Xplique (deliberate):
      - a neuron's value is its activation and a channel's value its spatial mean
        (Xplique averages the masked layer over all of its entries, which divides them
        by the layer size, resp. the number of channels: same maximiser, another scale);
      - the combined value is ``sum_k m_k f_k`` (Xplique multiplies the running sum by
        each multiplier in turn, so a multiplier also scales the earlier terms);
      - ``-`` and ``*`` return new objectives and never modify their operands;
      - the direction objective is computed per image (Xplique sums its dot product
        over the batch).

    Args:
        model: the Keras model (one input).
        layers: the output tensors (KerasTensor) of the targeted layers, one per
            sub-objective.
        masks: per sub-objective, its masks: an array (n_k, *layer_shape).
        funcs: per sub-objective, f(outputs (N, *layer_shape), masks) -> (N,).
        multipliers: per sub-objective, its weight.
        names: per sub-objective, the names of its masks.
    """

    def __init__(self, model, layers, masks, funcs, multipliers, names):
        self.model = model
        self.layers = list(layers)
        self.masks = list(masks)
        self.funcs = list(funcs)
        self.multipliers = [float(m) for m in multipliers]
        self.names = [list(n) for n in names]

    def _replace(self, **changes):
        fields = dict(layers=self.layers, masks=self.masks, funcs=self.funcs,
                      multipliers=self.multipliers, names=self.names)
        fields.update(changes)
        return Objective(self.model, **fields)

    def __add__(self, term):
        if not isinstance(term, Objective):
            raise InvalidTypeError(
                f"an Objective can only be added to an Objective, got a "
                f"{type(term).__name__}.")
        if term.model is not self.model:
            raise InvalidArgumentError(
                "the objectives added must be built on the same model, got two models.")
        return self._replace(layers=self.layers + term.layers,
                             masks=self.masks + term.masks, funcs=self.funcs + term.funcs,
                             multipliers=self.multipliers + term.multipliers,
                             names=self.names + term.names)

    def __sub__(self, term):
        if not isinstance(term, Objective):
            raise InvalidTypeError(
                f"an Objective can only be subtracted from an Objective, got a "
                f"{type(term).__name__}.")
        return self + (-1.0) * term

    def __mul__(self, factor):
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
            raise InvalidTypeError(
                f"an Objective can only be multiplied by a number, got {factor!r} of type "
                f"{type(factor).__name__}.")
        return self._replace(multipliers=[m * float(factor) for m in self.multipliers])

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def compile(self):
        """The pieces an optimisation needs.

        Returns:
            (model, objective_function, names, input_shape):
            ``model`` a Keras model from the inputs to the targeted layers' outputs (a
            list); ``objective_function(outputs)`` takes that list (or the tensor of a
            single layer) for a batch of
            ``nb_combinations`` images (image i scored on combination i; one row
            broadcasts to the whole batch when there is one combination) and returns
            their values (N,); ``names`` one name per combination (" & "-joined);
            ``input_shape`` (nb_combinations, *model input shape).
        """
        combinations = list(itertools.product(*[range(len(m)) for m in self.masks]))
        masks = [tf.constant(np.stack([np.asarray(self.masks[k][c[k]]) for c in
                                       combinations]), tf.float32)
                 for k in range(len(self.masks))]
        names = [" & ".join(self.names[k][c[k]] for k in range(len(c)))
                 for c in combinations]
        funcs, multipliers = list(self.funcs), list(self.multipliers)

        def objective_function(model_outputs):
            if not isinstance(model_outputs, (list, tuple)):  # one layer: one tensor
                model_outputs = [model_outputs]
            total = 0.0
            for outputs, mask, func, weight in zip(model_outputs, masks, funcs,
                                                   multipliers):
                total += weight * func(outputs, tf.cast(mask, outputs.dtype))
            return total

        model = keras.Model(self.model.inputs[0], list(self.layers))
        input_shape = (len(combinations), *self.model.inputs[0].shape[1:])
        return model, objective_function, names, input_shape

    @staticmethod
    def layer(model, layer, reducer="magnitude", multiplier=1.0, name=None):
        """Maximise a whole layer: the mean of its squared activations ("magnitude") or
        of its activations ("mean").

        Args:
            model: Keras model (one input).
            layer: the layer's name (str) or index (int).
            reducer: "magnitude" (mean of a**2) or "mean" (mean of a).
            multiplier: weight of this objective.
            name: its name (default "Layer#<layer name>").

        Raises:
            InvalidArgumentError: unknown layer or reducer.
            InvalidTypeError: model not a Keras model, layer neither str nor int.
        """
        found, shape = _target_layer(model, layer)
        if not isinstance(reducer, str) or reducer.lower() not in LAYER_REDUCERS:
            raise InvalidArgumentError(
                f"reducer must be one of {sorted(LAYER_REDUCERS)}, got {reducer!r}.")
        power = LAYER_REDUCERS[reducer.lower()]
        name = _names("name", name, [f"Layer#{found.name}"])

        def reduce_layer(outputs, mask):
            axes = list(range(1, len(outputs.shape)))
            return tf.reduce_mean((outputs * mask) ** power, axis=axes)

        return Objective(model, [found.output], [np.ones((1, *shape), np.float32)],
                         [reduce_layer], [_check_multiplier(multiplier)], [name])

    @staticmethod
    def direction(model, layer, vectors, multiplier=1.0, cossim_pow=2.0, names=None):
        """Maximise the layer's activation along one or several directions, with
        Lucid's dot x cosine**cossim_pow objective (see :func:`dot_cossim`).

        Args:
            model: Keras model (one input).
            layer: the layer's name or index.
            vectors: a direction of the layer's shape (without batch), or a list of them
                (one image each). A vector of the layer's channel count (e.g. a CRAFT
                concept ``concept_bank_w[k]`` of a conv layer) is the same direction at
                every spatial position (tiled to the layer's shape).
            multiplier: weight of this objective.
            cossim_pow: power of the cosine (higher: the angle matters more).
            names: a name per direction (default "Direction#<layer>_<i>").

        The directions are stored as given (``objective.masks[0][i]`` equals the i-th
        vector, in its own float precision) and cast to float32 when compiled.

        Raises:
            InvalidArgumentError: unknown layer, a vector of another shape.
        """
        found, shape = _target_layer(model, layer)
        # kept as given (a copy, in its float precision): cast to float32 at compile
        vectors = [np.array(v, dtype=np.result_type(np.asarray(v).dtype, np.float32))
                   for v in _as_list(vectors)]
        for row, vector in enumerate(vectors):
            if len(shape) > 1 and vector.shape == shape[-1:]:  # one per channel: tiled
                vectors[row] = np.broadcast_to(vector, shape)
            elif vector.shape != shape:
                raise InvalidArgumentError(
                    f"vectors must have the shape of layer {found.name!r}'s output "
                    f"{shape} or its channel count {shape[-1:]} (then the same at every "
                    f"position), got {vector.shape}.")
        power = float(cossim_pow)
        names = _names("names", names, [f"Direction#{found.name}_{i}"
                                        for i in range(len(vectors))])

        def along(outputs, mask):
            return dot_cossim(outputs, mask, power)

        return Objective(model, [found.output], [np.stack(vectors)], [along],
                         [_check_multiplier(multiplier)], [names])

    @staticmethod
    def channel(model, layer, channel_ids, multiplier=1.0, names=None):
        """Maximise the spatial mean of one or several channels (last axis), one image
        per channel.

        Args:
            model: Keras model (one input).
            layer: the layer's name or index.
            channel_ids: a channel index or a list of them (negative ones count from
                the end).
            multiplier: weight of this objective.
            names: a name per channel (default "Channel#<layer>_<id>").

        Raises:
            InvalidArgumentError: unknown layer, a channel index out of range.
            InvalidTypeError: a channel index that is not an integer.
        """
        found, shape = _target_layer(model, layer)
        ids = _check_ids("channel_ids", channel_ids, shape[-1], "channel")
        masks = np.zeros((len(ids), *shape), np.float32)
        for row, index in enumerate(ids):
            masks[row, ..., index] = 1.0
        names = _names("names", names, [f"Channel#{found.name}_{i}" for i in ids])
        return Objective(model, [found.output], [masks], [_masked_mean],
                         [_check_multiplier(multiplier)], [names])

    @staticmethod
    def neuron(model, layer, neurons_ids, multiplier=1.0, names=None):
        """Maximise one or several neurons, one image per neuron.

        Args:
            model: Keras model (one input).
            layer: the layer's name or index.
            neurons_ids: a neuron's index in the flattened layer output (row-major,
                as Xplique), or a list of them.
            multiplier: weight of this objective.
            names: a name per neuron (default "Neuron#<layer>_<id>").

        Raises:
            InvalidArgumentError: unknown layer, a neuron index out of range.
            InvalidTypeError: a neuron index that is not an integer.
        """
        found, shape = _target_layer(model, layer)
        size = int(np.prod(shape))
        ids = _check_ids("neurons_ids", neurons_ids, size, "neuron")
        masks = np.zeros((len(ids), size), np.float32)
        masks[np.arange(len(ids)), ids] = 1.0
        names = _names("names", names, [f"Neuron#{found.name}_{i}" for i in ids])
        return Objective(model, [found.output], [masks.reshape((len(ids), *shape))],
                         [_masked_mean], [_check_multiplier(multiplier)], [names])
