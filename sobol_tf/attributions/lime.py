"""LIME (Ribeiro, Singh & Guestrin, KDD 2016) on the shared perturbation engine.

The interpretable features of an input (superpixels, tabular columns) are switched on
and off by binary samples; a weighted linear model fitted to the model's scores on those
samples gives one coefficient per feature. :class:`~sobol_tf.attributions.KernelShap`
is the same machinery with Shapley weights.
"""
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_choice, check_positive_int, check_probability, check_seed
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: superpixels per side of the default image mapping (a regular grid, see
#: :func:`grid_mapping`).
DEFAULT_GRID_SIZE = 8

#: more interpretable features than this in one input: a warning (slow fits), as Xplique.
MANY_FEATURES = 10000

#: eigenvalues of the Gram matrix below this fraction of the largest count as 0 in the
#: least-squares fit (directions the samples do not determine get no coefficient).
RANK_TOLERANCE = 1e-10

#: the L2 norm below which a vector counts as zero in the cosine distance (as Keras'
#: l2_normalize).
NORM_EPSILON = 1e-12


def grid_mapping(height, width, grid_size=DEFAULT_GRID_SIZE):
    """Ids (height, width) int32 of a regular grid of superpixels, row-major from 0.

    ``min(grid_size, height)`` bands of rows times ``min(grid_size, width)`` bands of
    columns, of sizes differing by at most one pixel; pixel (r, c) belongs to band
    ``r * rows // height`` (and likewise for columns).
    """
    rows, cols = min(grid_size, height), min(grid_size, width)
    row_ids = np.arange(height) * rows // height
    col_ids = np.arange(width) * cols // width
    return (row_ids[:, None] * cols + col_ids[None, :]).astype(np.int32)


class WeightedLinearRegression:
    """Weighted least squares with an intercept and an optional ridge penalty, in numpy.

    Minimises ``sum_p w_p (y_p - b - z_p . beta)^2 + alpha ||beta||^2`` (the intercept b is
    not penalised): the fit of scikit-learn's ``Ridge(alpha)`` (``alpha > 0``) and
    ``LinearRegression()`` (``alpha = 0``, the minimum-norm solution when the samples do not
    determine it), without needing scikit-learn, and fitted for every input at once.

    Args:
        alpha: the ridge penalty, >= 0.

    Attributes (after :meth:`fit`):
        coef_: (F,) the coefficients; intercept_: the intercept.
    """

    def __init__(self, alpha=0.0):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha < 0:
            raise InvalidArgumentError(f"alpha must be a number >= 0, got {alpha!r}.")
        self.alpha = float(alpha)

    def __repr__(self):
        return f"WeightedLinearRegression(alpha={self.alpha})"

    def fit(self, X, y, sample_weight=None):
        """Fit on samples X (P, F), targets y (P,), weights (P,) (None: all 1)."""
        X = np.asarray(X, np.float64)
        weights = np.ones(len(X)) if sample_weight is None else sample_weight
        coef, intercept = self.fit_many(X[None], np.asarray(y, np.float64)[None],
                                        np.asarray(weights, np.float64)[None])
        self.coef_, self.intercept_ = coef[0], intercept[0]
        return self

    def predict(self, X):
        return np.asarray(X, np.float64) @ self.coef_ + self.intercept_

    def fit_many(self, samples, scores, weights):
        """Coefficients (N, F) and intercepts (N,) of N fits at once: samples (N or 1, P,
        F), scores (N, P), weights (N, P) >= 0 with a positive sum per row."""
        total = weights.sum(axis=1, keepdims=True)
        mean_z = np.einsum("np,npf->nf", weights, np.broadcast_to(
            samples, (len(scores),) + samples.shape[1:])) / total
        mean_y = (weights * scores).sum(axis=1) / weights.sum(axis=1)
        centred = samples - mean_z[:, None, :]                     # (N, P, F)
        root = np.sqrt(weights)[:, :, None]
        design = root * centred
        target = root[..., 0] * (scores - mean_y[:, None])
        gram = np.einsum("npf,npg->nfg", design, design)              # (N, F, F)
        moment = np.einsum("npf,np->nf", design, target)
        if self.alpha > 0:
            coef = np.linalg.solve(gram + self.alpha * np.eye(samples.shape[2]),
                                   moment[..., None])[..., 0]
        else:  # the minimum-norm solution: the pseudo-inverse of the Gram matrix
            values, vectors = np.linalg.eigh(gram)
            kept = values > RANK_TOLERANCE * values.max(axis=1, keepdims=True)
            inverse = np.where(kept, 1.0 / np.where(kept, values, 1.0), 0.0)
            coef = np.einsum("nfk,nk,ngk,ng->nf", vectors, inverse, vectors, moment)
        return coef, mean_y - np.einsum("nf,nf->n", mean_z, coef)


class ExponentialKernel:
    """LIME's similarity ``exp(-D(x, x')^2 / kernel_width^2)`` of an input x and a
    perturbed copy x', D the Euclidean distance or the cosine distance ``1 - cos(x, x')``.

    Callable as Xplique's kernels, ``kernel(original_input, interpret_samples,
    perturbed_samples)`` -> (P,); :class:`Lime` computes the same values in closed form
    from per-feature sums (:meth:`from_sums`), without building the perturbed inputs.
    """

    def __init__(self, distance_mode="euclidean", kernel_width=45.0):
        self.distance_mode = check_choice("distance_mode", distance_mode,
                                          ("euclidean", "cosine"))
        if (isinstance(kernel_width, bool) or not isinstance(kernel_width, numbers.Real)
                or not kernel_width > 0 or not np.isfinite(kernel_width)):
            raise InvalidArgumentError(
                f"kernel_width must be a finite number > 0, got {kernel_width!r}.")
        self.kernel_width = float(kernel_width)

    def __call__(self, original_input, interpret_samples, perturbed_samples):
        x = tf.reshape(tf.cast(original_input, tf.float64), (1, -1))
        pert = tf.reshape(tf.cast(perturbed_samples, tf.float64),
                          (tf.shape(perturbed_samples)[0], -1))
        if self.distance_mode == "euclidean":
            distances = tf.reduce_sum((pert - x) ** 2, axis=1)
        else:
            cosine = tf.reduce_sum(tf.math.l2_normalize(x, axis=1, epsilon=NORM_EPSILON)
                                   * tf.math.l2_normalize(pert, axis=1, epsilon=NORM_EPSILON),
                                   axis=1)
            distances = (1.0 - cosine) ** 2
        return tf.cast(tf.exp(-distances / self.kernel_width ** 2), tf.float32)

    def from_sums(self, samples, sums):
        """Similarities (P,) from samples (P, F) and the per-feature sums of one input:
        ``sums`` (4, F) of x^2, x * ref, ref^2 and (x - ref)^2 over each feature's values.
        Exact for samples in [0, 1]: x' = ref + z (x - ref) feature by feature."""
        xx, xr, rr, dd = sums
        if self.distance_mode == "euclidean":
            distances = (1.0 - samples) ** 2 @ dd
        else:
            dot = xr.sum() + samples @ (xx - xr)
            norm_p = rr.sum() + samples @ (2 * (xr - rr)) + samples ** 2 @ (xx - 2 * xr + rr)
            norms = (np.sqrt(np.maximum(xx.sum(), NORM_EPSILON))
                     * np.sqrt(np.maximum(norm_p, NORM_EPSILON)))
            distances = (1.0 - dot / norms) ** 2
        return np.exp(-distances / self.kernel_width ** 2)


class Lime(BlackBoxExplainer):
    """LIME: a weighted linear model of the scores on interpretable features.

    Each input is cut into F interpretable features by ``map_to_interpret_space`` (an id
    per pixel or per column). ``nb_samples`` binary samples z in {0, 1}^F switch features
    on (kept) or off (set to ``ref_value``); the model scores each perturbed input
    ``ref + z[feature] * (x - ref)``; ``interpretable_model`` is fitted to those scores
    with the weights ``similarity_kernel`` gives each sample, and its coefficients
    (``coef_``) are the map, each pixel taking its feature's coefficient.

    On the shared engine: the perturbed inputs of several inputs share forward batches,
    and are built on the device inside the compiled batch loop; the linear fits come
    after, in numpy (all inputs at once for the built-in model).

    Deliberate differences from Xplique: the default image mapping is a grid of
    ``grid_size`` x ``grid_size`` superpixels (:func:`grid_mapping`; Xplique segments
    RGB images with scikit-image's quickshift and grayscale ones with felzenszwalb, a
    dependency we do not take — pass your own segmentation as
    ``map_to_interpret_space``); rank-3 inputs (N, H, W) are grayscale images, not time
    series (same mapping when you give one); inputs of the same number of features share
    the same ``nb_samples`` samples (Xplique draws them per input); the default
    ``interpretable_model`` computes Ridge(alpha=2) in numpy (same fit as scikit-learn's;
    scikit-learn is not needed); the cosine kernel uses the distance ``1 - cos(x, x')``
    (Xplique's subtracts Keras' cosine_similarity, which is ``-cos``); a
    ``kernel_width`` <= 0 is refused (Xplique warns and uses 1e-8).

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
            the perturbed inputs (B, ...), ``batch_size`` samples at a time.
        pertub_func: None (each feature kept with probability ``prob``) or a callable
            ``(num_features, nb_samples)`` -> (nb_samples, num_features) values in [0, 1]
            (Xplique's spelling, without the r).
        map_to_interpret_space: None or a callable mapping one input (a tf.Tensor, (H, W,
            C), (H, W) or (F,) for tabular inputs) to integer feature ids >= 0 of its
            shape without the channels; F = largest id + 1. None: a grid of
            ``grid_size`` superpixels per side for images, one feature per column for
            tabular inputs (N, F).
        ref_value: the value of switched-off features: a number or one per channel (C,);
            None: 0.5 per channel for 3 channels (grey for inputs in [0, 1]), else 0.
        nb_samples: samples per input; 150 as Xplique.
        distance_mode: 'euclidean' or 'cosine', for the default kernel.
        kernel_width: width of the default kernel, > 0; 45 as Xplique (suits RGB images
            in [0, 1]: with the Euclidean distance, widen it for large inputs).
        prob: probability that the default ``pertub_func`` keeps a feature; 0.5.
        grid_size: (keyword-only) superpixels per side of the default image mapping; 8.
        seed: (keyword-only) seed of the default samples (None: fresh ones per
            explainer); as :class:`~sobol_tf.attributions.Rise`'s. A custom
            ``pertub_func`` draws its own.
        verbose: (keyword-only) show a progress bar.

    The positional order is Xplique's: ``Lime(model, batch_size, operator,
    interpretable_model, similarity_kernel, pertub_func, map_to_interpret_space,
    ref_value, nb_samples, distance_mode, kernel_width, prob)``.

    Raises:
        InvalidTypeError: an ``interpretable_model`` without ``fit``, a kernel, perturbation
            or mapping that is not callable, a ``ref_value`` that is not numbers.
        InvalidArgumentError: ``nb_samples``, ``batch_size`` or ``grid_size`` < 1, an
            unknown ``distance_mode``, ``kernel_width`` <= 0, ``prob`` outside [0, 1]; at
            explain time: a ``ref_value`` of the wrong length, a mapping of the wrong
            shape or with negative or non-integer ids, samples of the wrong shape or
            outside [0, 1], similarities of the wrong shape, negative or not finite, a
            fitted ``coef_`` that does not hold F values.

    Warns:
        SobolTFWarning: more than :data:`MANY_FEATURES` features in an input; all the
            similarities of an input are 0 (its fit then weighs samples equally, as
            Xplique).

    Example:
        >>> maps = Lime(model, nb_samples=500, kernel_width=10.0, seed=0)(images, labels)
    """

    input_ranks = (2, 3, 4)

    def __init__(self, model, batch_size=None, operator=None, interpretable_model=None,
                 similarity_kernel=None, pertub_func=None, map_to_interpret_space=None,
                 ref_value=None, nb_samples=150, distance_mode="euclidean",
                 kernel_width=45.0, prob=0.5, *, grid_size=DEFAULT_GRID_SIZE, seed=None,
                 verbose=False):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose)
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
        self.ref_value = _check_ref_value(ref_value)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.seed = check_seed(seed)
        self._entropy = (np.random.SeedSequence().entropy if self.seed is None
                         else self.seed)

    # -- the samples -------------------------------------------------------------------
    def _default_samples(self, nb_features, rng):
        """(P, F) binary samples, each feature kept with probability ``prob``."""
        return (rng.random((self.nb_samples, nb_features)) < self.prob).astype(np.float32)

    def _samples(self, nb_features):
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

    # -- the engine --------------------------------------------------------------------
    def _masks(self, height, width, channels):  # pragma: no cover - see _explain
        raise NotImplementedError("Lime draws its samples per number of features")

    def _estimate(self, scores, masks, base_scores):  # pragma: no cover - see _fit
        raise NotImplementedError("Lime fits a linear model per input")

    def _upsample(self, masks, mask_ids, height, width):
        """The samples (B, 1, T, 1) are applied through the inputs' feature ids."""
        return masks

    def _baselines(self, images):
        return self._reference[None, None, None, :]

    def _perturb(self, inputs, masks, baselines):
        """``ref + z[id] * (x - ref)``: inputs (b, H, W, C + 1) whose last channel holds
        each pixel's column in the samples ``masks`` (B, 1, T, 1)."""
        samples = masks[:, 0, :, 0]
        ids = tf.cast(inputs[..., -1], tf.int32)
        if inputs.shape[0] == 1:  # one input broadcast over its samples (the usual batch)
            keep = tf.gather(samples, ids[0], axis=1)[..., None]
        else:  # one input per sample, or a number of rows known only when running
            ids = tf.broadcast_to(ids, tf.concat([tf.shape(samples)[:1], tf.shape(ids)[1:]], 0))
            keep = tf.gather(samples, ids, axis=1, batch_dims=1)[..., None]
        return baselines + keep * (inputs[..., :-1] - baselines)

    def _layout(self, model):
        """'tabular', 'grayscale' or 'image': the inputs' layout, from the model's view."""
        if model is self._views.get("tabular"):
            return "tabular"
        return "grayscale" if model is self._views.get(True) else "image"

    def _prepare(self, inputs, targets):
        model, images, targets = super()._prepare(inputs, targets)
        if images.shape.rank == 2:  # tabular (N, F): a (N, 1, F, 1) image for the engine
            images = images[:, None, :, None]
            if "tabular" not in self._views:
                inner = self._model_view(False)
                self._views["tabular"] = lambda x: inner(x[:, 0, :, 0])
            model = self._views["tabular"]
        return model, images, targets

    def explain(self, inputs, targets=None):
        """Explain the model's score on each input with a fitted linear model.

        Args:
            inputs: images (N, H, W, C) or (N, H, W), tabular rows (N, F), as a numpy
                array, a tf.Tensor or a tf.data.Dataset of (input, target) pairs.
            targets: one-hot rows (N, K) or class ids (N,); None: the predicted class.

        Returns:
            float32 tf.Tensor of the coefficients spread over their features: (N, H, W, 1)
            for images, (N, F) for tabular inputs.

        Raises:
            InvalidArgumentError, InvalidTypeError, ModelCallError: as
            :meth:`Explainer.explain`, and those listed in the class docstring.
        """
        model, images, targets = self._prepare(inputs, targets)
        maps = self._explain(model, images, targets)
        if self._layout(model) == "tabular":
            return maps[:, 0, :, 0]
        return maps

    def _explain(self, model, images, targets):
        layout = self._layout(model)
        images_np = images.numpy()
        self._reference = tf.constant(self._reference_vector(images_np.shape[-1], layout))
        ids, nb_features = self._feature_ids(images_np, layout)
        columns = {count: None for count in nb_features}  # distinct counts, in order
        offset, blocks = 0, []
        for count in columns:
            columns[count] = offset
            blocks.append(self._samples(count))
            offset += count
        all_samples = np.concatenate(blocks, axis=1)                        # (P, T)
        shifted = ids + np.array([columns[c] for c in nb_features])[:, None, None]
        augmented = tf.concat([images, tf.constant(shifted[..., None], tf.float32)], axis=-1)
        masks = tf.constant(all_samples[:, None, :, None])
        scores = self._perturbed_scores(model, augmented, targets, masks).numpy()
        coefs = self._fit(images_np, layout, ids, nb_features, columns, blocks, scores)
        maps = np.stack([coef[image_ids] for coef, image_ids in zip(coefs, ids)])
        return tf.constant(maps[..., None], tf.float32)

    def _reference_vector(self, channels, layout):
        """ref_value as (C,) float32, checked against the number of channels."""
        if self.ref_value is None:
            return np.full(channels, 0.5 if channels == 3 else 0.0, np.float32)
        if self.ref_value.size == 1:
            return np.full(channels, self.ref_value.item(), np.float32)
        if layout == "image" and self.ref_value.size == channels:
            return self.ref_value.astype(np.float32)
        raise InvalidArgumentError(
            f"ref_value must be one number or one per channel ({channels}), got "
            f"{self.ref_value.size} values {self.ref_value.tolist()}.")

    def _feature_ids(self, images, layout):
        """Feature ids (N, H, W) int64 of every input, and their number of features."""
        shape = images.shape[1:3]
        if self.map_to_interpret_space is None:
            if layout == "tabular":
                mapping = np.arange(shape[1])[None, :]
            else:
                mapping = grid_mapping(shape[0], shape[1], self.grid_size)
            ids = np.broadcast_to(mapping.astype(np.int64), (len(images),) + shape)
        else:
            ids = np.stack([self._one_mapping(image, layout) for image in images])
        nb_features = ids.reshape(len(ids), -1).max(axis=1) + 1
        if nb_features.max() > MANY_FEATURES:
            warn(f"an input has {nb_features.max()} interpretable features (over "
                 f"{MANY_FEATURES}): the fits will be slow; give a map_to_interpret_space "
                 "with fewer features.")
        return ids, [int(count) for count in nb_features]

    def _one_mapping(self, image, layout):
        """map_to_interpret_space on one input (in its own layout), checked, as (H, W)."""
        original = _original_layout(image, layout)
        mapping = np.asarray(self.map_to_interpret_space(tf.constant(original)))
        wanted = original.shape[:1] if layout == "tabular" else original.shape[:2]
        if mapping.shape != wanted:
            raise InvalidArgumentError(
                f"map_to_interpret_space must return one feature id per "
                f"{'column' if layout == 'tabular' else 'pixel'}, shape {wanted}, got shape "
                f"{mapping.shape}.")
        if (mapping.size and (not np.all(np.mod(mapping, 1) == 0) or mapping.min() < 0)):
            raise InvalidArgumentError(
                "map_to_interpret_space must return integer feature ids >= 0, got values "
                f"from {mapping.min()} to {mapping.max()}.")
        return mapping.astype(np.int64).reshape(image.shape[:2])

    def _similarities(self, images, layout, ids, samples, index):
        """Weights (P,) of the samples of input ``index``."""
        kernel = self.similarity_kernel
        image = images[index]
        if hasattr(kernel, "from_sums"):  # a built-in kernel: closed form
            x = image.astype(np.float64)
            ref = self._reference.numpy().astype(np.float64)
            flat_ids = np.broadcast_to(ids[index][..., None], x.shape).ravel()
            terms = (x * x, x * ref, np.broadcast_to(ref * ref, x.shape), (x - ref) ** 2)
            sums = np.stack([np.bincount(flat_ids, term.ravel(), samples.shape[1])
                             for term in terms])
            return kernel.from_sums(samples.astype(np.float64), sums)
        original = tf.constant(_original_layout(image, layout))
        reference, keep_ids = self._reference, tf.constant(ids[index])
        weights = []
        for start in range(0, len(samples), self.batch_size):
            chunk = tf.constant(samples[start:start + self.batch_size])
            keep = tf.gather(chunk, keep_ids, axis=1)[..., None]
            perturbed = reference + keep * (tf.constant(image) - reference)
            perturbed = tf.reshape(perturbed, (-1,) + tuple(original.shape))
            weights.append(np.asarray(kernel(original, tf.cast(chunk, tf.int32), perturbed),
                                      np.float64).reshape(-1))
        weights = np.concatenate(weights)
        if weights.shape != (len(samples),) or not np.all(np.isfinite(weights)) \
                or weights.min() < 0:
            raise InvalidArgumentError(
                f"similarity_kernel must return {len(samples)} finite weights >= 0 for "
                f"{len(samples)} samples, got shape {weights.shape} with values from "
                f"{weights.min() if weights.size else None} to "
                f"{weights.max() if weights.size else None}.")
        return weights

    def _fit(self, images, layout, ids, nb_features, columns, blocks, scores):
        """Coefficients (F_i,) of every input's interpretable model."""
        weights = []
        for index, count in enumerate(nb_features):
            samples = blocks[list(columns).index(count)]
            similarity = self._similarities(images, layout, ids, samples, index)
            if not similarity.sum() > 0:
                warn(f"all the similarities of input {index} are 0 (kernel_width="
                     f"{self.kernel_width} may be too small for these inputs): its samples "
                     "are weighed equally.")
                similarity = np.ones_like(similarity)
            weights.append(similarity)
        model = self.interpretable_model
        if isinstance(model, WeightedLinearRegression):
            coefs = [None] * len(nb_features)
            for count, block in zip(columns, blocks):  # one batched fit per feature count
                rows = [i for i, c in enumerate(nb_features) if c == count]
                found, _ = model.fit_many(block[None].astype(np.float64),
                                          scores[rows].astype(np.float64),
                                          np.stack([weights[i] for i in rows]))
                for row, coef in zip(rows, found):
                    coefs[row] = coef
            return coefs
        coefs = []
        for index, count in enumerate(nb_features):
            samples = blocks[list(columns).index(count)]
            model.fit(samples, scores[index], sample_weight=weights[index])
            coef = np.asarray(getattr(model, "coef_", None), np.float64).reshape(-1)
            if coef.shape != (count,):
                raise InvalidArgumentError(
                    f"interpretable_model must have a coef_ of {count} values (one per "
                    f"feature) after fit, got {getattr(model, 'coef_', None)!r}.")
            coefs.append(coef)
        return coefs


def _original_layout(image, layout):
    """One input (H, W, C) of the engine back in the caller's layout."""
    if layout == "tabular":
        return image[0, :, 0]
    return image[..., 0] if layout == "grayscale" else image


def _check_ref_value(ref_value):
    """None, or ref_value as a flat float array of finite numbers."""
    if ref_value is None:
        return None
    try:
        array = np.asarray(ref_value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"ref_value must be a number or an array of numbers (one per channel), got "
            f"{ref_value!r}.") from None
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidArgumentError(
            f"ref_value must hold finite numbers (one, or one per channel), got {ref_value!r}.")
    return array
