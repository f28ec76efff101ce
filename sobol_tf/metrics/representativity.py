"""MeGe and ReCo: algorithmic stability of explanations across retrained models.

Fel, Vigouroux, Cadène & Serre, "How Good is your Explanation? Algorithmic Stability
Measures to Assess the Quality of Explanations for Deep Neural Networks", WACV 2022
(https://arxiv.org/abs/2009.04521).

The inputs are cut into k splits V_1 .. V_k and model f_i is trained on every split but
V_i. An input x of V_i is explained by f_i (which never saw it) and by each other model
f_j (which did); the distance between the two maps is the Spearman-rank distance
d = sqrt(1 - |rho|). The distances of the pairs where both models are right form S=,
those where exactly one is right form S!= (pairs where both are wrong are left out).

    MeGe = 1 / (1 + mean(S=))                       (1: identical explanations)
    ReCo = max over thresholds g of TPR(g) + TNR(g) - 1,
           TPR(g) = |{d in S= : d <= g}| / |S=|,  TNR(g) = |{d in S!= : d > g}| / |S!=|

ReCo is the best balanced accuracy (minus chance) of telling, from the distance alone,
a pair of right answers from a pair with one wrong answer (1: always; 0: never).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from sobol_tf._utils import check_positive_int, check_seed, prepare_inputs_targets
from sobol_tf._utils.batching import progbar
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn
from sobol_tf.metrics.base import INPUT_RANKS, ExplainerMetric
from sobol_tf.metrics.correlations import rank_correlation


def spearman_distances(maps_a: ArrayLike, maps_b: ArrayLike) -> np.ndarray:
    """Spearman-rank distance sqrt(1 - |rho|) between the rows of two (P, D) arrays.

    rho is scipy.stats.spearmanr's: the Pearson correlation of the ranks, ties sharing
    their average rank. A constant row has no ranking: its distance is NaN.

    Returns:
        float64 numpy array (P,), in [0, 1].
    """
    rho = np.abs(rank_correlation(maps_a, maps_b))
    return np.sqrt(1.0 - rho)


def reco_score(equal: ArrayLike, different: ArrayLike) -> float:
    """ReCo from the distances of S= (``equal``) and S!= (``different``).

    The maximum over every threshold g of TPR(g) + TNR(g) - 1 (see the module's
    docstring), exact: every observed distance is tried as a threshold, which reaches
    every way a threshold can split the distances. 0.0 when either set is empty (no
    disagreement to tell apart).
    """
    equal = np.sort(np.asarray(equal, np.float64))
    different = np.sort(np.asarray(different, np.float64))
    if equal.size == 0 or different.size == 0:
        return 0.0
    thresholds = np.unique(np.concatenate([equal, different]))
    tpr = np.searchsorted(equal, thresholds, side="right") / equal.size
    tnr = 1.0 - np.searchsorted(different, thresholds, side="right") / different.size
    return float(max(0.0, np.max(tpr + tnr - 1.0)))


class _FoldModel(ExplainerMetric):
    """One model of MeGe seen as a metric: the inputs, targets and checks of every
    metric, its predictions on the engine (computed once), its explanations checked."""

    _outputs = None

    def _predict(self):
        if self._outputs is None:
            self._outputs = super()._predict()
        return self._outputs

    def evaluate(self, explainer):  # pragma: no cover - MeGe calls the parts it needs
        raise NotImplementedError


class MeGe:
    """Mean generalizability (MeGe) and relative consistency (ReCo) of an explainer.

    Fel, Vigouroux et al., WACV 2022: k models are trained, each on all splits of the
    inputs but one; an input is explained by the model that did not see it and by each
    model that did, and the two maps are compared with the Spearman-rank distance
    sqrt(1 - |rho|) (Xplique's). MeGe = 1 / (1 + mean distance over the pairs where both
    models are right): 1 when the explanations do not depend on which data the model
    learnt from. ReCo is the best balanced accuracy, minus chance, of a threshold on the
    distance separating those pairs from the pairs where one model is right and the
    other wrong (pairs of two wrong answers count for neither), in [0, 1]. The formulas
    are in :mod:`sobol_tf.metrics.representativity`.

    Xplique's positional order and defaults; ``models``, ``splits``, ``seed``,
    ``verbose`` and ``strategy`` are ours, keyword-only. The models are trained once, in
    the constructor, and kept (``self.models``): evaluating several explainers trains
    nothing more, and each model's predictions are computed once, at the first
    :meth:`evaluate`.

    Args:
        learning_algorithm: ``learning_algorithm(x_train, y_train, x_test, y_test)`` ->
            a trained model (a Keras model, a callable on a batch, or an object with
            ``predict_proba``), called once per split in split order, with numpy arrays
            as given (inputs in the caller's layout and dtype, targets as given): the
            training inputs are every split but the held-out one (x_test, y_test), in
            split order. May be None when ``models`` is given. Seed its randomness (or
            give ``seed``) to get the same models again.
        inputs: images (N, H, W, C), time series (N, T, C), tabular rows (N, F) of floats
            or token ids (N, L) of integers; numpy, tf.Tensor or a tf.data.Dataset of
            (input, target) pairs.
        targets: the true classes, one-hot rows (N, K) or class ids (N,), required
            (Xplique's default None is kept for the positional order; None works only
            for a dataset that carries the targets). The explainers explain these
            classes; a prediction is right when the model's argmax equals them.
        batch_size: inputs per forward pass of the predictions (None: all at once).
            The explainers batch as their own ``explainer_params`` say.
        k_splits: k >= 2, the number of splits and models (4 to 6 are usual).
        models: keyword-only; k models already trained, ``models[i]`` on every input
            but ``splits[i]``: the learning algorithm is then not called.
        splits: keyword-only; k arrays of input indices, a partition of range(N), the
            held-out inputs of each model. Default: k consecutive splits of the inputs
            in their order (Xplique's), or of a permutation drawn from ``seed``.
        seed: keyword-only; None (default) keeps the inputs' order; an integer shuffles
            the inputs before splitting them (reproducibly) and calls
            ``keras.utils.set_random_seed(seed + i)`` before training model i, so that
            a learning algorithm drawing from the global random generators (Python,
            NumPy, TensorFlow/Keras) trains the same models again.
        verbose: keyword-only; a progress bar over the k trainings (and the
            predictions).
        strategy: keyword-only; a ``tf.distribute.Strategy`` whose replicas share the
            forward batches of the models' predictions (see
            :class:`~sobol_tf.metrics.ExplanationMetric`). The learning algorithm trains
            as it sees fit, and the explainers run on their own strategy.

    Attributes:
        models: the k trained models (``models[i]`` did not see ``splits[i]``).
        splits: the k int arrays of held-out input indices.
        k_splits, batch_size: as given.
        last_distances: after :meth:`evaluate`, the distances of its pairs:
            ``{"equal": S= (both right), "different": S!= (one right)}``, numpy arrays
            (e.g. for a standard error of MeGe).

    Differences from Xplique 2.0.2 (deliberate):
        - ReCo is the exact maximum over every threshold, with TPR and TNR over all of
          S= and S!= as in the paper. Xplique tries about 20 thresholds and drops the
          distances equal to the threshold from both sets, which can report perfect
          separation (1.0) for sets that share a value.
        - N need not be a multiple of k (Xplique asserts it): split sizes differ by at
          most one. When it is a multiple and no seed is given, the splits, the calls
          to the learning algorithm and MeGe are Xplique's.
        - An explainer's maps must be finite (NaN or inf raise InvalidArgumentError;
          Xplique replaces NaN by 0). A pair with a constant map (no ranking, Spearman
          undefined) is left out, as in Xplique, with a SobolTFWarning.
        - Models of one output are refused (Xplique's argmax would call every
          prediction class 0).

    Raises:
        InvalidTypeError: ``learning_algorithm`` (when no ``models``) not callable, or
            returning something that is not a model; ``k_splits`` not an integer; a
            model that is not callable.
        InvalidArgumentError: ``k_splits`` < 2 or more than the number of inputs;
            ``models`` or ``splits`` not of length k; ``splits`` not a partition of the
            inputs into non-empty sets; no targets; bad inputs, targets, ``batch_size``
            or ``seed``.
        ModelCallError: a model raised on the inputs.

    Example:
        >>> metric = MeGe(train, x, y, batch_size=64, k_splits=4, seed=0)
        >>> mege, reco = metric.evaluate(Saliency)
        >>> mege_ig, reco_ig = metric.evaluate(IntegratedGradients, {"steps": 16})
    """

    def __init__(self, learning_algorithm: Optional[Callable[..., Any]], inputs: Any,
                 targets: Any = None, batch_size: Optional[int] = 64, k_splits: int = 4, *,
                 models: Optional[Sequence[Any]] = None,
                 splits: Optional[Sequence[ArrayLike]] = None, seed: Optional[int] = None,
                 verbose: bool = False, strategy: Optional[tf.distribute.Strategy] = None
                 ) -> None:
        self.batch_size = None if batch_size is None else check_positive_int(
            "batch_size", batch_size)
        self.k_splits = check_positive_int("k_splits", k_splits, minimum=2)
        self.seed = check_seed(seed)
        self.verbose = bool(verbose)
        data = prepare_inputs_targets(inputs, targets, allowed_ranks=INPUT_RANKS,
                                      require_targets=True)
        x = data.inputs.numpy() if not isinstance(inputs, np.ndarray) else inputs
        if data.integer and not np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.int64)
        y = np.asarray(data.targets)
        nb_inputs = x.shape[0]
        if self.k_splits > nb_inputs:
            raise InvalidArgumentError(
                f"k_splits={self.k_splits} is more than the {nb_inputs} inputs; each split "
                f"needs at least one input: give k_splits <= {nb_inputs} or more inputs.")
        self.splits = self._resolve_splits(splits, nb_inputs)

        if models is None:
            models = self._train(learning_algorithm, x, y)
        else:
            models = self._check_models(models)
        self.models = models
        self._inputs = x
        self._folds = [_FoldModel(model, x, y, self.batch_size, strategy=strategy)
                       for model in models]
        self._labels = None
        self._predictions = None
        self.last_distances: Optional[Dict[str, np.ndarray]] = None

    # -- construction ---------------------------------------------------------------------
    def _resolve_splits(self, splits, nb_inputs):
        if splits is None:
            order = np.arange(nb_inputs) if self.seed is None else \
                np.random.default_rng(self.seed).permutation(nb_inputs)
            return [np.sort(part) if self.seed is None else part
                    for part in np.array_split(order, self.k_splits)]
        self._check_k_items("splits", splits, "arrays of input indices (the inputs each "
                            "model did not see)")
        parts = []
        for i, part in enumerate(splits):
            part = np.asarray(part)
            if part.ndim != 1 or part.size == 0 or not np.issubdtype(part.dtype, np.integer):
                raise InvalidArgumentError(
                    f"splits[{i}] must be a non-empty 1-d array of integer input indices, "
                    f"got {part.tolist()!r}.")
            parts.append(part.astype(np.int64))
        everything = np.sort(np.concatenate(parts))
        if not np.array_equal(everything, np.arange(nb_inputs)):
            raise InvalidArgumentError(
                f"splits must be a partition of the {nb_inputs} inputs: every index in "
                f"[0, {nb_inputs}) exactly once, got {[p.tolist() for p in parts]}.")
        return parts

    def _train(self, learning_algorithm, x, y):
        if not callable(learning_algorithm):
            raise InvalidTypeError(
                "learning_algorithm must be a callable (x_train, y_train, x_test, y_test) "
                f"-> trained model, got {type(learning_algorithm).__name__}; or give the "
                "trained models with models=[...].")
        progress = progbar(self.k_splits, self.verbose,
                           f"MeGe: training {self.k_splits} models")
        models = []
        for i, held_out in enumerate(self.splits):
            kept = np.concatenate([s for j, s in enumerate(self.splits) if j != i])
            if self.seed is not None:
                import keras

                keras.utils.set_random_seed(self.seed + i)
            model = learning_algorithm(x[kept], y[kept], x[held_out], y[held_out])
            if not callable(model) and not callable(getattr(model, "predict_proba", None)):
                raise InvalidTypeError(
                    f"learning_algorithm returned {type(model).__name__} for split {i}; it "
                    "must return the trained model: a Keras model, a callable on a batch, "
                    "or an object with predict_proba.")
            models.append(model)
            if progress is not None:
                progress.update(i + 1)
        return models

    def _check_k_items(self, name, value, what):
        """Raise unless ``value`` is a sequence of ``k_splits`` items (``what``)."""
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise InvalidTypeError(
                f"{name} must be a sequence of {self.k_splits} {what}, got "
                f"{type(value).__name__}.")
        if len(value) != self.k_splits:
            raise InvalidArgumentError(
                f"{name} must hold k_splits={self.k_splits} {what}, got {len(value)}.")

    def _check_models(self, models):
        self._check_k_items("models", models, "trained models (models[i] not trained on "
                            "splits[i])")
        for i, model in enumerate(models):
            if not callable(model) and not callable(getattr(model, "predict_proba", None)):
                raise InvalidTypeError(
                    f"models[{i}] must be a Keras model, a callable on a batch or an object "
                    f"with predict_proba, got {type(model).__name__}.")
        return list(models)

    # -- evaluation -----------------------------------------------------------------------
    def _right_answers(self):
        """(k, N) bool: whether model i predicts the true class of input n (cached)."""
        if self._predictions is None:
            labels = np.argmax(self._folds[0].targets.numpy(), axis=-1)
            predictions = []
            for i, fold in enumerate(self._folds):
                fold.verbose = self.verbose
                outputs = fold._predict()
                if outputs.ndim != 2 or outputs.shape[1] < 2:
                    raise InvalidArgumentError(
                        f"models[{i}] has one output (outputs of shape {outputs.shape}); "
                        "MeGe needs classifiers with one output per class (a prediction is "
                        "right when its argmax is the target class). For a binary "
                        "classifier, output [1 - p, p].")
                predictions.append(np.argmax(outputs, axis=-1))
            self._predictions = np.stack(predictions)
            self._labels = labels
        return self._predictions == self._labels[None]

    def evaluate(self, explainer_class: Callable[..., Any],
                 explainer_params: Optional[Dict[str, Any]] = None) -> Tuple[float, float]:
        """MeGe and ReCo of the explanations of ``explainer_class``.

        Each model gets its explainer, ``explainer_class(model, **explainer_params)``,
        called once on all the inputs (numpy, as given: the caller's layout and dtype,
        token ids stay integers) and the targets as one-hot float32 rows (N, K): every
        (model, input) is explained once.

        Args:
            explainer_class: a class (or any callable) ``(model, **explainer_params)`` ->
                an explainer ``explainer(inputs, targets) -> maps`` (sobol_tf's, Xplique's,
                a function). Maps as the metrics accept them (images (N, H, W),
                (N, H, W, 1) or (N, H, W, C), channels averaged; (N, F) tabular; (N, L)
                tokens; (N, T, C) or (N, T) time series).
            explainer_params: dict of keyword arguments of ``explainer_class`` (None: none),
                e.g. the explainer's own ``batch_size``, ``nb_design`` or mask token.

        Returns:
            (mege, reco): two floats. MeGe is NaN (with a SobolTFWarning) when no pair of
            models is right on the same input; ReCo is 0.0 (with a SobolTFWarning) when
            there is no pair with one right and one wrong answer, or no pair of two
            right answers.

        Raises:
            InvalidTypeError: ``explainer_class`` not callable, ``explainer_params`` not
                a dict.
            InvalidArgumentError: maps of the wrong shape or with NaN / inf; models of one
                output.
        """
        if not callable(explainer_class):
            raise InvalidTypeError(
                "explainer_class must be an explainer class (or a callable (model, "
                f"**explainer_params) -> explainer), got {explainer_class!r}.")
        if explainer_params is None:
            explainer_params = {}
        if not isinstance(explainer_params, dict):
            raise InvalidTypeError(
                "explainer_params must be a dict of keyword arguments of explainer_class, "
                f"got {type(explainer_params).__name__}.")
        right = self._right_answers()
        targets = self._folds[0].targets.numpy()
        maps = []
        for model, fold in zip(self.models, self._folds):
            explainer = explainer_class(model, **explainer_params)
            # the inputs as the caller gave them (token ids stay integers)
            fold_maps = fold._explanation_maps(explainer(self._inputs, targets)).numpy()
            maps.append(fold_maps.reshape(fold_maps.shape[0], -1))

        equal_parts: List[np.ndarray] = []
        different_parts: List[np.ndarray] = []
        undefined = 0
        for unseen, held_out in enumerate(self.splits):
            for other in range(self.k_splits):
                if other == unseen:
                    continue
                distances = spearman_distances(maps[unseen][held_out], maps[other][held_out])
                both = right[unseen, held_out] & right[other, held_out]
                one = right[unseen, held_out] ^ right[other, held_out]
                undefined += int(np.sum(np.isnan(distances) & (both | one)))
                equal_parts.append(distances[both])
                different_parts.append(distances[one])
        equal_all = np.concatenate(equal_parts)
        different_all = np.concatenate(different_parts)
        self.last_distances = {"equal": equal_all[~np.isnan(equal_all)],
                               "different": different_all[~np.isnan(different_all)]}
        equal, different = self.last_distances["equal"], self.last_distances["different"]
        if undefined:
            warn(f"{undefined} pair(s) of explanations with a constant map (no ranking, "
                 "Spearman correlation undefined) are left out of MeGe and ReCo.")
        if equal.size == 0:
            warn("no pair of models is right on the same input: MeGe is NaN (it averages "
                 "the distances of those pairs). Are the models trained, and the targets "
                 "the true classes?")
            mege = float("nan")
        else:
            mege = float(1.0 / (1.0 + np.mean(equal)))
        if equal.size == 0 or different.size == 0:
            warn("ReCo is 0.0: it needs pairs where both models are right and pairs where "
                 f"one is right and the other wrong, got {equal.size} and "
                 f"{different.size} (models that never disagree give no evidence).")
        return mege, reco_score(equal, different)

    def __call__(self, explainer_class: Callable[..., Any],
                 explainer_params: Optional[Dict[str, Any]] = None) -> Tuple[float, float]:
        """Alias of :meth:`evaluate`."""
        return self.evaluate(explainer_class, explainer_params)
