"""Xplique's ``batch_inference_function``: an operator's scores on a whole set of inputs,
on the library's batching loop. Shared by explainers and metrics."""
import keras
import numpy as np
import tensorflow as tf

from sobol_tf._utils.batching import CompiledStep, ModelMode, run_batches, scores_step
from sobol_tf._utils.data import check_model, to_numpy
from sobol_tf._utils.validation import check_positive_int
from sobol_tf.errors import InvalidArgumentError


#: one batch_inference_function per built-in operator, so that every explainer and
#: metric holds the same object (Xplique's ``batch_predictions`` is one function).
_BUILTIN_FUNCTIONS = {}


def batch_inference(operator):
    """Xplique's ``batch_inference_function`` for ``operator``, on the library's loop
    (the same object for the same built-in operator).

    Returns:
        f(model, inputs, targets, batch_size=None) -> float32 tf.Tensor (N,): the
        operator's score of each input, ``batch_size`` inputs per forward pass (None:
        all at once); a model TensorFlow cannot trace runs eagerly (one SobolTFWarning).
        ``targets`` are rows (N, K) as the operator reads them (one-hot rows for
        classification), as in Xplique.
    """

    def batch_inference_function(model, inputs, targets, batch_size=None):
        model = check_model(model)
        inputs = tf.constant(to_numpy(inputs, "inputs").astype(np.float32))
        targets = tf.constant(to_numpy(targets, "targets").astype(np.float32))
        nb_inputs = int(inputs.shape[0])
        if targets.shape[0] != nb_inputs:
            raise InvalidArgumentError(
                f"targets has {targets.shape[0]} rows but inputs has {nb_inputs}; give one "
                "target row per input.")
        batch_size = nb_inputs if batch_size is None else check_positive_int(
            "batch_size", batch_size)
        signature = [tf.TensorSpec([None], tf.int64)] + [
            tf.TensorSpec([None] + a.shape[1:].as_list(), tf.float32) for a in (inputs, targets)]
        step = CompiledStep(scores_step(model, operator), signature, mode=ModelMode(),
                            eager_first=isinstance(model, keras.Model))
        return run_batches(step, nb_inputs, (inputs, targets), batch_size=batch_size,
                           verbose=False, title="batch_inference_function",
                           what="the inputs", one_score=True)

    if getattr(operator, "builtin", False):
        return _BUILTIN_FUNCTIONS.setdefault(operator.name, batch_inference_function)
    return batch_inference_function
