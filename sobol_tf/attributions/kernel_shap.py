"""Kernel SHAP (Lundberg & Lee, NeurIPS 2017): LIME with the Shapley kernel."""
from __future__ import annotations

from typing import Any

import numpy as np

from sobol_tf.attributions.lime import Lime
from sobol_tf.attributions.surrogates import WeightedLinearRegression
from sobol_tf.errors import InvalidArgumentError


class UniformKernel:
    """Weight 1 for every sample (the Shapley weights are in how samples are drawn).

    Callable as Xplique's kernels, ``kernel(original_input, interpret_samples,
    perturbed_samples)`` -> (P,) ones; :meth:`from_sums` is the same without the inputs.
    """

    def __call__(self, original_input: Any, interpret_samples: Any,
                 perturbed_samples: Any) -> np.ndarray:
        return np.ones(len(interpret_samples), np.float32)

    def from_sums(self, samples: np.ndarray, sums: np.ndarray) -> np.ndarray:
        return np.ones(len(samples))


def shapley_coalitions(nb_features: int, nb_samples: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Samples (nb_samples, nb_features) float32 of the Shapley kernel.

    The number of kept features k is drawn with probability proportional to
    ``(F - 1) / (k (F - k))`` for k in 1 .. F - 1, then k features are kept, uniformly at
    random: each coalition z is drawn with probability proportional to the Shapley kernel
    ``(F - 1) / (C(F, k) k (F - k))``, so an unweighted least-squares fit on these samples
    estimates the Shapley values.

    Raises:
        InvalidArgumentError: fewer than 2 features (no coalition between empty and full).
    """
    if nb_features < 2:
        raise InvalidArgumentError(
            f"KernelShap needs at least 2 interpretable features per input, got "
            f"{nb_features}; give a map_to_interpret_space with more features.")
    sizes = np.arange(1, nb_features)
    probabilities = 1.0 / (sizes * (nb_features - sizes))
    kept = rng.choice(sizes, size=nb_samples, p=probabilities / probabilities.sum())
    ranks = np.argsort(rng.random((nb_samples, nb_features)), axis=1).argsort(axis=1)
    return (ranks < kept[:, None]).astype(np.float32)


class KernelShap(Lime):
    """Kernel SHAP: Shapley values of the interpretable features, by weighted regression.

    :class:`~sobol_tf.attributions.Lime` with the choices of Lundberg & Lee: coalitions
    drawn from the Shapley kernel (:func:`shapley_coalitions`), equal weights, and an
    ordinary least-squares fit with an intercept (``WeightedLinearRegression(alpha=0)``,
    the fit of scikit-learn's LinearRegression, as Xplique). For a model linear in the
    features, f(x) = w . x + b, the map is exactly the Shapley value of each feature,
    ``sum over its pixels of w (x - ref)`` (for time series, by default, ``w_tc (x_tc -
    ref_tc)`` per (step, channel)), once the samples span the features; for token ids, a
    model that counts a token gets 1 at each of its positions (when ``mask_token`` is
    another id) and 0 elsewhere. As Xplique,
    the empty and full coalitions are not drawn and the efficiency constraint (values
    summing to f(x) - f(ref)) is not imposed: for other models the values are the
    regression's estimate.

    Deliberate differences from Xplique: those of :class:`Lime` (grid superpixels by
    default, shared samples per feature count, numpy fit); fewer than 2 features are
    refused (Xplique's sampler has nothing to draw).

    Ref. S. M. Lundberg, S.-I. Lee. A Unified Approach to Interpreting Model Predictions.
    NeurIPS 2017. https://arxiv.org/abs/1705.07874

    Args:
        model: a Keras model or a callable on a batch tensor.
        batch_size: perturbed inputs per forward pass; 64 as Xplique. None:
            ``nb_samples`` per pass.
        operator: None / 'classification', 'regression' or g(model, inputs, targets).
        map_to_interpret_space: as :class:`Lime`'s (None: grid superpixels for images,
            one feature per column for tabular rows, per (step, channel) for time series,
            per token that is not padding for token ids).
        nb_samples: coalitions per input; 800 as Xplique.
        ref_value: as :class:`Lime`'s: a number, one per channel (images, time series),
            one per feature (tabular rows, e.g. a reference set's means) or one per cell
            (T, C) (time series); None: images 0.5 per channel for 3 channels, else 0;
            refused for token ids.
        grid_size: (keyword-only) as :class:`Lime`'s: None: 8 x 8 superpixels for
            images, one feature per (step, channel) for time series; g: g x g
            superpixels, or g windows along time per channel.
        mask_token: (keyword-only) the id replacing switched-off tokens; required for
            token ids (integer inputs (N, L)).
        pad_token: (keyword-only) the id of padding (never a feature, 0 in the maps);
            None: no padding.
        seed: (keyword-only) seed of the coalitions (None: fresh ones per explainer).
        verbose: (keyword-only) show a progress bar.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches (the surrogate's fit runs on one device); see
            :class:`~sobol_tf.attributions.Explainer`.

    The positional order is Xplique's: ``KernelShap(model, batch_size, operator,
    map_to_interpret_space, nb_samples, ref_value)``.

    Raises:
        As :class:`Lime`; InvalidArgumentError for an input of fewer than 2 features.

    Example:
        >>> maps = KernelShap(model, nb_samples=1000, seed=0)(images, labels)
        >>> maps = KernelShap(text_model, mask_token=unk_id, pad_token=0)(ids, labels)
    """

    def __init__(self, model: Any, batch_size: int | None = 64, operator: Any = None,
                 map_to_interpret_space: Any = None, nb_samples: int = 800,
                 ref_value: Any = None, *, grid_size: int | None = None,
                 mask_token: int | None = None, pad_token: int | None = None,
                 seed: Any = None, verbose: bool = False, strategy: Any = None) -> None:
        super().__init__(model, batch_size, operator,
                         interpretable_model=WeightedLinearRegression(alpha=0.0),
                         similarity_kernel=UniformKernel(),
                         map_to_interpret_space=map_to_interpret_space, ref_value=ref_value,
                         nb_samples=nb_samples, grid_size=grid_size, mask_token=mask_token,
                         pad_token=pad_token, seed=seed, verbose=verbose, strategy=strategy)

    def _default_samples(self, nb_features, rng):
        return shapley_coalitions(nb_features, self.nb_samples, rng)
