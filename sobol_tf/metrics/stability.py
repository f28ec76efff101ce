"""Stability of explanations under small input noise (sensitivity, Bhatt et al. 2020).

    from sobol_tf.metrics import AverageStability
    metric = AverageStability(model, inputs, targets, radius=0.1, nb_samples=20, seed=0)
    score = metric.evaluate(Saliency(model))    # 0: explanations do not move; lower is better
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import check_positive_int, to_numpy
from sobol_tf._utils.batching import map_chunks
from sobol_tf._utils.validation import check_real, check_seed, lookup
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics.base import ExplainerMetric


def _l1(differences):
    return np.sum(np.abs(differences), axis=1)


def _l2(differences):
    return np.sqrt(np.sum(differences * differences, axis=1))


#: distances between explanations, by name: each maps differences (B, n) to (B,).
DISTANCES = {"l1": _l1, "l2": _l2}


class AverageStability(ExplainerMetric):
    """Average sensitivity: how far explanations move when the inputs move a little.

    For each input x, ``nb_samples`` neighbours x + m_k are drawn, m_k uniform in the
    L-infinity ball of radius ``radius`` (every feature moves by at most ``radius``), and
    the score is the mean over inputs and neighbours of D(g(x + m_k), g(x)), with g the
    explainer and D the ``distance``. 0 means the explanations do not move; lower is
    more stable. A Monte-Carlo estimate of the average sensitivity of Bhatt et al.:
    the mean of D(g(x), g(z)) over z drawn around x within radius r.

    Ref. U. Bhatt, A. Weller, J. M. F. Moura. Evaluating and Aggregating Feature-based
    Model Explanations. IJCAI 2020. https://arxiv.org/abs/2005.00631

    Args:
        model: the model explained (as :class:`ExplanationMetric`); the metric calls it
            only to predict targets when ``targets`` is None.
        inputs: images (N, H, W, C), time series (N, T, C) or tabular rows (N, F) of
            floats (numpy, tf.Tensor or a tf.data.Dataset). Token ids (integer (N, L))
            are refused: noise of a given size on ids is meaningless.
        targets: one-hot rows (N, K) or class ids (N,), passed to the explainer (with
            each noisy input, the target of its input); None: the predicted class.
        batch_size: noisy inputs per explainer call (bounds memory: the N * nb_samples
            noisy inputs are built and explained chunk by chunk, the clean ones too);
            None: all in one call.
        radius: the half-width of the noise, > 0, in the inputs' units; 0.1 as Xplique.
        distance: 'l2' (default, as Xplique) or 'l1' between the two maps (all their
            values, as the explainer returns them), or a callable
            ``distance(noisy_map, clean_map) -> float`` called on each pair of maps
            (numpy arrays, one map each, as Xplique calls it).
        nb_samples: neighbours per input, >= 1; 20 as Xplique.
        seed: (keyword-only) seed of the noise: None, an integer >= 0 or a
            numpy.random.Generator; the same seed gives the same noise, hence the same
            score for a deterministic explainer.
        verbose: (keyword-only) a progress bar over the explainer calls on noisy inputs.
        strategy: (keyword-only) see :class:`~sobol_tf.metrics.ExplanationMetric`; it runs
            the metric's own model calls only (the predicted targets): the explainer
            runs on its own strategy.

    Attributes:
        noisy_masks: float32 numpy (nb_samples, ...) in the inputs' shape, the noise
            m_k, drawn once in ``__init__`` and shared by every input (as Xplique) and by
            every explainer evaluated, so explainers are compared on the same
            neighbours. It may be replaced by an array of that shape.

    Raises:
        InvalidArgumentError: ``radius`` <= 0 or not finite, an unknown ``distance``
            name, ``nb_samples`` or ``batch_size`` < 1, a negative ``seed``, token ids;
            in ``evaluate``: maps of the wrong shape, NaN or inf, a callable distance
            that does not return one finite number.
        InvalidTypeError: arguments of the wrong type (``distance`` neither a string nor
            a callable, a float ``nb_samples``, ...).
        Plus everything :class:`ExplanationMetric` raises.

    Differences from Xplique: the noise is uniform in [-radius, radius] for every
    feature, the L-infinity ball around x of the paper (Xplique draws it in
    [0, radius], a corner of the ball, so every neighbour is brighter than x and the
    mean noise is radius / 2, not 0). ``batch_size`` is used (Xplique explains each
    input's neighbours in its own call, whatever ``batch_size``). The noisy inputs are
    not clipped to a valid range, as in Xplique.

    Example:
        >>> metric = AverageStability(model, images, labels, radius=0.05, seed=0)
        >>> metric.evaluate(Saliency(model))
    """

    def __init__(self, model: Any, inputs: Any, targets: Any = None,
                 batch_size: Optional[int] = 64, radius: float = 0.1,
                 distance: Union[str, Callable[[np.ndarray, np.ndarray], float]] = "l2",
                 nb_samples: int = 20, *, seed: Any = None, verbose: bool = False,
                 strategy: Optional[tf.distribute.Strategy] = None) -> None:
        self.radius = check_real("radius", radius, finite=True)
        if self.radius <= 0:
            raise InvalidArgumentError(
                f"radius must be > 0 (the half-width of the noise added to the inputs), "
                f"got {radius}.")
        self._distance: Optional[Callable[[np.ndarray], np.ndarray]]
        if isinstance(distance, str):
            self._distance = lookup("distance", distance, DISTANCES,
                                    "a callable distance(noisy_map, clean_map) -> float")
        elif callable(distance):
            self._distance = None
        else:
            raise InvalidTypeError(
                f"distance must be one of {sorted(DISTANCES)} or a callable "
                f"distance(noisy_map, clean_map) -> float, got {type(distance).__name__}.")
        self.distance = distance
        self.nb_samples = check_positive_int("nb_samples", nb_samples)
        self.seed = check_seed(seed)
        super().__init__(model, inputs, targets, batch_size, verbose=verbose, strategy=strategy)
        if self._layout.kind == "tokens":
            raise InvalidArgumentError(
                f"AverageStability adds noise of size {self.radius} to the inputs, which "
                "means nothing for token ids (integer inputs of shape "
                f"{self._input_shape}); measure stability on the embeddings instead: give "
                "float embeddings (N, L, D) as inputs (read as time series) with a model "
                "that takes them.")
        rng = np.random.default_rng(self.seed)
        self.noisy_masks = rng.uniform(-self.radius, self.radius,
                                       (self.nb_samples,) + self._layout.shape
                                       ).astype(np.float32)

    def evaluate(self, explainer: Callable[..., Any],  # type: ignore[override]
                 base_explanations: Optional[ArrayLike] = None) -> float:
        """The mean distance between explanations of noisy and clean inputs: a float.

        Args:
            explainer: any callable ``explainer(inputs, targets) -> maps`` (an explainer
                of this library, of Xplique, or a function), called on inputs in their
                own shape and on float32 one-hot ``targets``.
            base_explanations: the explanations of the clean inputs, one map per input;
                None: computed here, once (in chunks of ``batch_size``).

        Raises:
            InvalidArgumentError: maps of the wrong shape or with NaN / inf; clean and
                noisy maps of different sizes; a callable distance that does not return
                one finite number; ``noisy_masks`` replaced by an array of another shape.
        """
        nb_inputs, nb_samples = int(self.inputs.shape[0]), self.nb_samples
        if base_explanations is None:
            clean = np.concatenate(map_chunks(
                lambda first, stop: self._maps(explainer, self.inputs[first:stop],
                                               self.targets[first:stop]),
                nb_inputs, self.batch_size))
        else:
            clean = to_numpy(base_explanations, "base_explanations")
            self._explanation_maps(clean)  # checks the shape and the values
            clean = clean.astype(np.float32)

        masks = np.asarray(self.noisy_masks, np.float32)
        if masks.shape != (nb_samples,) + self._layout.shape:
            raise InvalidArgumentError(
                f"noisy_masks has shape {masks.shape}; it must be "
                f"{(nb_samples,) + self._layout.shape} (nb_samples, then an input's shape).")
        masks = self._to_images(masks)

        def distances(first, stop):
            items = tf.range(first, stop)
            owners = items // nb_samples  # item j is neighbour j % S of input j // S
            noisy = tf.gather(self.inputs, owners) + tf.gather(masks, items % nb_samples)
            maps = self._maps(explainer, noisy, tf.gather(self.targets, owners))
            return self._distances(maps, clean[owners.numpy()])

        return float(np.mean(np.concatenate(map_chunks(
            distances, nb_inputs * nb_samples, self.batch_size, verbose=self.verbose,
            title="AverageStability: explaining the noisy inputs"))))

    def __call__(self, explainer: Callable[..., Any],  # type: ignore[override]
                 base_explanations: Optional[ArrayLike] = None) -> float:
        """Alias of :meth:`evaluate`."""
        return self.evaluate(explainer, base_explanations)

    def _maps(self, explainer, inputs, targets):
        """``explainer``'s maps of ``inputs`` (engine layout), checked, as it returns
        them: float32 numpy (B, ...)."""
        maps = to_numpy(explainer(self._from_images(inputs), targets), "explanations")
        self._explanation_maps(maps, nb_inputs=int(inputs.shape[0]))
        return maps.astype(np.float32)

    def _distances(self, noisy, clean):
        """D(noisy[b], clean[b]) for each b: float64 (B,)."""
        if noisy[0].size != clean[0].size:
            raise InvalidArgumentError(
                f"the maps of the noisy inputs have shape {noisy.shape[1:]} but those of "
                f"the clean inputs (base_explanations) {clean.shape[1:]}; give "
                "base_explanations of the shape the explainer returns.")
        clean = clean.reshape(noisy.shape)
        if self._distance is not None:
            differences = (noisy.astype(np.float64) - clean.astype(np.float64)).reshape(
                len(noisy), -1)
            return self._distance(differences)
        values = []
        for noisy_map, clean_map in zip(noisy, clean):
            value = self.distance(noisy_map, clean_map)
            value = to_numpy(value, "distance(noisy_map, clean_map)")
            if value.size != 1 or not np.issubdtype(value.dtype, np.number) \
                    or not np.isfinite(value).all():
                raise InvalidArgumentError(
                    "distance(noisy_map, clean_map) must return one finite number, got "
                    f"{value!r}.")
            values.append(float(value.reshape(())))
        return np.asarray(values, np.float64)
