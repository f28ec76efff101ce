"""Statistics of the gradient over noisy copies of the input: the base of SmoothGrad
(the mean), SquareGrad (the mean square) and VarGrad (the variance).

The ``nb_samples`` noise images are drawn once per explain() call from ``seed`` and
shared by all the inputs; the engine runs the (input, noisy copy) pairs in full batches
and sums each input's contributions, so that nothing grows with ``nb_samples`` but time.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_positive_int, check_real, check_seed
from sobol_tf.attributions.whitebox import WhiteBoxExplainer


class GradientStatistic(WhiteBoxExplainer):
    """Base of SmoothGrad, SquareGrad and VarGrad: a statistic of the gradients at
    x + eps_s, s = 1..nb_samples, eps_s ~ N(0, noise^2) element-wise, per channel, then
    the channel ``reducer``.

    ``noise`` is the standard deviation itself (as in Xplique), not a fraction of the
    input range, and the same for every feature: for tabular rows whose features have
    different scales, standardise them first (or the noise drowns the small ones). Every
    element is noised independently: each pixel channel, each feature of a tabular row,
    each (step, channel) cell of a time series. The noise images are drawn once per explain() call from ``seed`` and
    shared by all the inputs, so an input's map does not depend on the other inputs or on
    ``batch_size`` (Xplique draws new noise for every input; the law is the same).

    Args:
        model: a Keras model or a callable on a batch tensor with differentiable TF ops.
        output_layer: None or the name / index of the layer explained (Keras model).
        batch_size: noisy inputs per forward/backward pass; 32 as Xplique; None: all of
            an explain() call's noisy inputs in one pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        reducer: 'mean' (default, as Xplique), 'min', 'max', 'sum' over the channels of
            the statistic, or None to keep the channels. Images only, as Xplique:
            tabular rows (N, F) and time series (N, T, C) get maps of their own shape,
            whatever the reducer.
        nb_samples: noisy copies per input; 50 as Xplique.
        noise: standard deviation of the Gaussian noise; 0.2 as Xplique.
        seed: (keyword-only) seed of the noise (None: drawn once per explainer); an
            integer >= 0 or a numpy Generator (one integer is drawn from it).
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (each replica takes the gradients of its slice); see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidArgumentError: ``nb_samples`` below the method's minimum, ``noise`` < 0,
            ``seed`` < 0, an unknown ``reducer``.
        InvalidTypeError: a ``seed`` that is not None, an integer or a numpy Generator.
    """

    #: the fewest noisy copies the statistic is defined for.
    min_samples = 1

    def __init__(self, model: Any, output_layer: Any = None, batch_size: int | None = 32,
                 operator: Any = None, reducer: str | None = "mean", nb_samples: int = 50,
                 noise: float = 0.2, *, seed: Any = None, verbose: bool = False,
                 strategy: Any = None) -> None:
        super().__init__(model, output_layer, batch_size, operator, reducer, verbose=verbose,
                         strategy=strategy)
        self.nb_samples = check_positive_int("nb_samples", nb_samples,
                                             minimum=self.min_samples)
        self.noise = check_real("noise", noise, minimum=0.0)
        self.seed = check_seed(seed)
        entropy: Any = np.random.SeedSequence().entropy
        self._seed = int(entropy % 2**63) if self.seed is None else self.seed
        self.nb_evaluations = self.nb_samples

    def _extras(self, images):
        seed = np.random.SeedSequence(self._seed).generate_state(2).astype(np.int64)
        shape = (self.nb_samples,) + tuple(images.shape[1:])
        return (self.noise * tf.random.stateless_normal(shape, seed=seed),)

    def _noisy_gradients(self, model, inputs, targets, evaluations, noise):
        """Gradients at the noisy copies ``evaluations`` of ``inputs``."""
        return self._gradients(model, inputs + tf.gather(noise, evaluations), targets)


class SmoothGrad(GradientStatistic):
    """SmoothGrad: the gradient averaged over noisy copies of the input.

    map = reducer_c mean_s d score / d x (x + eps_s), eps_s ~ N(0, noise^2) element-wise
    (sign kept; the default reducer 'mean' averages the channels, as Xplique). See
    :class:`GradientStatistic` for the noise
    (drawn once per explain() call from ``seed``, shared by the inputs).

    Ref. D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg. SmoothGrad: removing
    noise by adding noise. 2017. https://arxiv.org/abs/1706.03825

    Args, Raises: as :class:`GradientStatistic` (positional order of Xplique: model,
    output_layer, batch_size, operator, reducer, nb_samples, noise; ``seed`` and
    ``verbose`` keyword-only).

    Example:
        >>> maps = SmoothGrad(model, nb_samples=50, noise=0.2, seed=0)(images, labels)
    """

    def _attribute(self, model, inputs, targets, evaluations, noise):
        gradients = self._noisy_gradients(model, inputs, targets, evaluations, noise)
        return gradients / float(self.nb_samples)


class SquareGrad(GradientStatistic):
    """SquareGrad (SmoothGrad squared): the mean of the squared gradient over noisy copies.

    map = reducer_c mean_s (d score / d x (x + eps_s))^2, eps_s ~ N(0, noise^2).

    Ref. S. Hooker, D. Erhan, P.-J. Kindermans, B. Kim. A Benchmark for Interpretability
    Methods in Deep Neural Networks. NeurIPS 2019. https://arxiv.org/abs/1806.10758

    Args, Raises: as :class:`GradientStatistic` (positional order of Xplique: model,
    output_layer, batch_size, operator, reducer, nb_samples, noise; ``seed`` and
    ``verbose`` keyword-only).

    Example:
        >>> maps = SquareGrad(model, nb_samples=50, noise=0.2, seed=0)(images, labels)
    """

    def _attribute(self, model, inputs, targets, evaluations, noise):
        gradients = self._noisy_gradients(model, inputs, targets, evaluations, noise)
        return tf.square(gradients) / float(self.nb_samples)


class VarGrad(GradientStatistic):
    """VarGrad: the variance of the gradient over noisy copies of the input.

    map = reducer_c var_s d score / d x (x + eps_s), eps_s ~ N(0, noise^2), the unbiased
    sample variance (divided by nb_samples - 1), as Xplique.

    Ref. J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim. Sanity Checks
    for Saliency Maps. NeurIPS 2018. https://arxiv.org/abs/1810.03292

    Args, Raises: as :class:`GradientStatistic`; ``nb_samples`` must be >= 2 (the
    variance of one draw is undefined).

    Example:
        >>> maps = VarGrad(model, nb_samples=50, noise=0.2, seed=0)(images, labels)
    """

    min_samples = 2
    moments = 2

    def _attribute(self, model, inputs, targets, evaluations, noise):
        gradients = self._noisy_gradients(model, inputs, targets, evaluations, noise)
        return tf.concat([gradients, tf.square(gradients)], axis=-1) / float(self.nb_samples)

    def _statistic(self, sums):
        mean, mean_square = tf.split(sums, 2, axis=-1)
        count = float(self.nb_samples)
        # E[g^2] - E[g]^2 loses to rounding when the gradient barely varies: clip at 0
        return tf.maximum(mean_square - tf.square(mean), 0.0) * (count / (count - 1.0))
