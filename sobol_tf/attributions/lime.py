"""LIME (Ribeiro, Singh & Guestrin, KDD 2016) on the shared perturbation engine.

The interpretable features of an input (superpixels, tabular columns, (step, channel)
cells or windows of a time series, tokens) are switched on and off by binary samples; a
weighted linear model fitted to the model's scores on those samples gives one
coefficient per feature. :class:`~sobol_tf.attributions.KernelShap`
is the same machinery with Shapley weights.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from sobol_tf._utils import check_choice, check_positive_int, check_probability, check_seed
from sobol_tf.attributions.perturbations import FeatureSamples, check_token
from sobol_tf.attributions.surrogate_explainer import (MANY_FEATURES, SurrogateExplainer,
                                                       check_ref_value)
from sobol_tf.attributions.surrogates import (ExponentialKernel, WeightedLinearRegression,
                                              grid_mapping)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["Lime", "FeatureSamples", "MANY_FEATURES", "grid_mapping"]


class Lime(SurrogateExplainer):
    """LIME: a weighted linear model of the scores on interpretable features.

    Each input is cut into F interpretable features by ``map_to_interpret_space`` (an id
    per pixel, per column, per (step, channel) or per token). ``nb_samples`` binary samples
    z in {0, 1}^F switch features on (kept) or off (set to ``ref_value``, or to
    ``mask_token`` for token ids); the model scores each perturbed input
    ``ref + z[feature] * (x - ref)``; ``interpretable_model`` is fitted to those scores
    with the weights ``similarity_kernel`` gives each sample, and its coefficients
    (``coef_``) are the map, each pixel (column, cell, token) taking its feature's
    coefficient.

    Inputs and maps (the rank rule of README, "Beyond images"): images (N, H, W, C) ->
    (N, H, W, 1); tabular rows (N, F) of floats -> (N, F), one feature per column; time
    series (N, T, C) -> (N, T, C), one feature per (step, channel) by default, as Xplique
    (``grid_size=g``: g windows along time per channel); token ids (N, L) of integers ->
    (N, L), one feature per token, switched-off tokens replaced by ``mask_token``, padded
    positions (``pad_token``) never features, never changed, and 0 in the maps.

    On the shared engine: the perturbed inputs of several inputs share forward batches,
    and are built on the device inside the compiled batch loop; the linear fits come
    after, in numpy (all inputs at once for the built-in model).

    Deliberate differences from Xplique: the default image mapping is a grid of
    ``grid_size`` x ``grid_size`` superpixels (:func:`grid_mapping`; Xplique segments
    RGB images with scikit-image's quickshift and grayscale ones with felzenszwalb, a
    dependency we do not take — pass your own segmentation as
    ``map_to_interpret_space``); inputs of the same number of features share
    the same ``nb_samples`` samples (Xplique draws them per input); the default
    ``interpretable_model`` computes Ridge(alpha=2) in numpy (same fit as scikit-learn's;
    scikit-learn is not needed); the cosine kernel uses the distance ``1 - cos(x, x')``
    (Xplique's subtracts Keras' cosine_similarity, which is ``-cos``); a
    ``kernel_width`` <= 0 is refused (Xplique warns and uses 1e-8). Beyond Xplique: token
    ids (Xplique has no text), a ``ref_value`` per tabular feature or per time-series
    channel or cell (Xplique takes one number there), time-series windows
    (``grid_size``).

    Ref. M. T. Ribeiro, S. Singh, C. Guestrin. "Why Should I Trust You?": Explaining the
    Predictions of Any Classifier. KDD 2016. https://arxiv.org/abs/1602.04938

    Args:
        model: a Keras model or a callable on a batch tensor.
        batch_size: perturbed inputs per forward pass (inputs may share a batch); None:
            ``nb_samples`` per pass, as Xplique.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        interpretable_model: None (Xplique's default Ridge(alpha=2):
            ``WeightedLinearRegression(alpha=2)``), or any object with ``fit(X, y,
            sample_weight=...)`` that has a ``coef_`` of F values after it (e.g.
            scikit-learn's ``Lasso``), fitted once per input.
        similarity_kernel: None (``ExponentialKernel(distance_mode, kernel_width)``) or a
            callable ``(original_input, interpret_samples, perturbed_samples)`` -> (P,)
            weights >= 0, given one input (in its own layout), int32 samples (B, F) and
            the perturbed inputs (B, ...), ``batch_size`` samples at a time (token ids:
            int32 ids (L,) and (B, L)). For token ids the default kernel measures the
            distance between each binary sample z and the all-ones sample (the text
            itself) in the interpretable space (distances between id values mean
            nothing): the squared Euclidean distance is the number of switched-off
            features, the cosine distance ``1 - |z| / sqrt(F |z|)``.
        pertub_func: None (each feature kept with probability ``prob``) or a callable
            ``(num_features, nb_samples)`` -> (nb_samples, num_features) values in [0, 1]
            (Xplique's spelling, without the r); a token is kept where its value is
            >= 0.5.
        map_to_interpret_space: None or a callable mapping one input, a tf.Tensor in
            the caller's layout, to integer feature ids >= 0: an image (H, W, C) -> (H, W)
            (its shape without the channels); a tabular row (F,) -> (F,); a time series
            (T, C) -> (T, C) (an id per step and channel, as Xplique); token ids (L,)
            int32 -> (L,) (ids at padded positions are ignored). F = largest id + 1.
            None: a grid of ``grid_size`` superpixels per side for images; one feature
            per column for tabular rows; one per (step, channel) for time series (id
            ``t * C + c``, as Xplique), or ``grid_size`` windows per channel; one per
            token that is not padding, numbered in order, for token ids.
        ref_value: the value of switched-off features, a number or: for images one per
            channel (C,); for tabular rows one per feature (F,) (e.g. the feature means
            of a reference set: 0 is often not a neutral value); for time series one per
            channel (C,) or one per cell (T, C). None: images 0.5 per channel for 3
            channels (grey for inputs in [0, 1]), else 0; tabular rows and time series 0
            (as Xplique). Meaningless for token ids (switched-off tokens become
            ``mask_token``): giving it there is an error.
        nb_samples: samples per input; 150 as Xplique.
        distance_mode: 'euclidean' or 'cosine', for the default kernel.
        kernel_width: width of the default kernel, > 0; 45 as Xplique (suits RGB images
            in [0, 1]: with the Euclidean distance, widen it for large inputs).
        prob: probability that the default ``pertub_func`` keeps a feature; 0.5.
        grid_size: (keyword-only) the default mapping's grid: None (default): 8
            (:data:`~sobol_tf.attributions.surrogates.DEFAULT_GRID_SIZE`) superpixels per
            side for images, one feature per (step, channel) for time series; an integer
            g: g x g superpixels for images, g windows along time (sizes differing by at
            most one step) per channel for time series. Ignored for tabular rows and
            token ids (one feature per column / token) and with a
            ``map_to_interpret_space``.
        mask_token: (keyword-only) for token ids (integer inputs (N, L)): the id that
            replaces a switched-off token (e.g. the id of ``[MASK]`` or of an unknown
            word); required for token ids, unused otherwise.
        pad_token: (keyword-only) for token ids: the id of padding; those positions are
            not features, are never changed and get 0 in the maps. None: no padding.
        seed: (keyword-only) seed of the default samples (None: fresh ones per
            explainer); as :class:`~sobol_tf.attributions.Rise`'s. A custom
            ``pertub_func`` draws its own.
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (the surrogate's fit runs on one device); see
            :class:`~sobol_tf.attributions.Explainer`.

    The positional order is Xplique's: ``Lime(model, batch_size, operator,
    interpretable_model, similarity_kernel, pertub_func, map_to_interpret_space,
    ref_value, nb_samples, distance_mode, kernel_width, prob)``.

    Raises:
        InvalidTypeError: an ``interpretable_model`` without ``fit``, a kernel, perturbation
            or mapping that is not callable, a ``ref_value`` that is not numbers, a
            ``mask_token`` or ``pad_token`` that is not an integer.
        InvalidArgumentError: ``nb_samples``, ``batch_size`` or ``grid_size`` < 1, an
            unknown ``distance_mode``, ``kernel_width`` <= 0, ``prob`` outside [0, 1], a
            negative ``mask_token`` or ``pad_token``; at explain time: a ``ref_value`` of
            the wrong length or shape for the inputs, or given with token ids; token ids
            without ``mask_token``; a ``pad_token`` with inputs that are not token ids; a
            text that is only padding; a mapping of the wrong shape or with negative or
            non-integer ids, samples of the wrong shape or outside [0, 1], similarities
            of the wrong shape, negative or not finite, a fitted ``coef_`` that does not
            hold F values.

    Warns:
        SobolTFWarning: more than :data:`MANY_FEATURES` features in an input; all the
            similarities of an input are 0 (its fit then weighs samples equally, as
            Xplique).

    Example:
        >>> maps = Lime(model, nb_samples=500, kernel_width=10.0, seed=0)(images, labels)
        >>> maps = Lime(tabular_model, ref_value=x_train.mean(axis=0))(rows, labels)
        >>> maps = Lime(text_model, mask_token=unk_id, pad_token=0)(token_ids, labels)
    """

    def __init__(self, model: Callable, batch_size: int | None = None,
                 operator: Any = None, interpretable_model: Any = None,
                 similarity_kernel: Callable | None = None,
                 pertub_func: Callable | None = None,
                 map_to_interpret_space: Callable | None = None, ref_value: Any = None,
                 nb_samples: int = 150, distance_mode: str = "euclidean",
                 kernel_width: float = 45.0, prob: float = 0.5, *,
                 grid_size: int | None = None, mask_token: int | None = None,
                 pad_token: int | None = None, seed: Any = None, verbose: bool = False,
                 strategy: Any = None) -> None:
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        if self.batch_size is None:
            self.batch_size = self.nb_samples
        if interpretable_model is None:
            interpretable_model = WeightedLinearRegression(alpha=2.0)
        elif not callable(getattr(interpretable_model, "fit", None)):
            raise InvalidTypeError(
                "interpretable_model must have a fit(X, y, sample_weight) method and a "
                f"coef_ after it (e.g. sklearn.linear_model.Ridge()), got "
                f"{interpretable_model!r}.")
        self.interpretable_model = interpretable_model
        self.distance_mode = check_choice("distance_mode", distance_mode,
                                          ("euclidean", "cosine"))
        self.prob = check_probability("prob", prob)
        if similarity_kernel is None:
            similarity_kernel = ExponentialKernel(distance_mode, kernel_width)
        self.kernel_width = kernel_width
        for name, value in (("similarity_kernel", similarity_kernel),
                            ("pertub_func", pertub_func),
                            ("map_to_interpret_space", map_to_interpret_space)):
            if value is not None and not callable(value):
                raise InvalidTypeError(f"{name} must be None or a callable, got {value!r}.")
        self.similarity_kernel = similarity_kernel
        self.pertub_func = pertub_func
        self.map_to_interpret_space = map_to_interpret_space
        self.ref_value, self._ref_shape = check_ref_value(ref_value)
        self.grid_size = None if grid_size is None else check_positive_int("grid_size",
                                                                            grid_size)
        self.mask_token = None if mask_token is None else check_token("mask_token",
                                                                      mask_token)
        self.pad_token = None if pad_token is None else check_token("pad_token", pad_token)
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)

    # -- the samples -------------------------------------------------------------------
    def _default_samples(self, nb_features: int, rng: np.random.Generator) -> np.ndarray:
        """(P, F) binary samples, each feature kept with probability ``prob``."""
        return (rng.random((self.nb_samples, nb_features)) < self.prob).astype(np.float32)

    def _samples(self, nb_features: int) -> np.ndarray:
        """The (P, F) float32 samples of inputs with ``nb_features`` features."""
        if self.pertub_func is None:
            rng = np.random.default_rng([self._entropy, nb_features])
            return self._default_samples(nb_features, rng)
        samples = np.asarray(self.pertub_func(nb_features, self.nb_samples), np.float32)
        if samples.shape != (self.nb_samples, nb_features):
            raise InvalidArgumentError(
                f"pertub_func(num_features={nb_features}, nb_samples={self.nb_samples}) "
                f"must return an array of shape ({self.nb_samples}, {nb_features}), got "
                f"shape {samples.shape}.")
        if not np.all((samples >= 0) & (samples <= 1)):
            raise InvalidArgumentError(
                "pertub_func must return values in [0, 1] (1 keeps a feature, 0 sets it "
                f"to ref_value), got values from {samples.min()} to {samples.max()}.")
        return samples

