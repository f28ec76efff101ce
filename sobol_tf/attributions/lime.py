"""LIME (Ribeiro, Singh & Guestrin, KDD 2016) on the shared perturbation engine.

The interpretable features of an input (superpixels, tabular columns) are switched on
and off by binary samples; a weighted linear model fitted to the model's scores on those
samples gives one coefficient per feature. :class:`~sobol_tf.attributions.KernelShap`
is the same machinery with Shapley weights.
"""

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_choice, check_positive_int, check_probability, check_seed
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.attributions.perturbations import Perturbation
from sobol_tf.attributions.surrogates import (DEFAULT_GRID_SIZE, ExponentialKernel,
                                              WeightedLinearRegression, grid_mapping)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: more interpretable features than this in one input: a warning (slow fits), as Xplique.
MANY_FEATURES = 10000


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
    ``map_to_interpret_space``); inputs of the same number of features share
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

    input_kinds = ("image", "tabular")

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

    @property
    def perturbation(self):
        """Samples applied through the inputs' feature ids, towards ``ref_value``."""
        perturbation = self.__dict__.get("_samples_perturbation")
        if perturbation is None:
            perturbation = self.__dict__["_samples_perturbation"] = FeatureSamples()
        return perturbation

    def _explain(self, model, images, targets):
        layout = self._layout.kind
        images_np = images.numpy()
        self.perturbation.reference = tf.constant(
            self._reference_vector(images_np.shape[-1], layout))
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
            ref = self.perturbation.reference.numpy().astype(np.float64)
            flat_ids = np.broadcast_to(ids[index][..., None], x.shape).ravel()
            terms = (x * x, x * ref, np.broadcast_to(ref * ref, x.shape), (x - ref) ** 2)
            sums = np.stack([np.bincount(flat_ids, term.ravel(), samples.shape[1])
                             for term in terms])
            return kernel.from_sums(samples.astype(np.float64), sums)
        original = tf.constant(_original_layout(image, layout))
        reference, keep_ids = self.perturbation.reference, tf.constant(ids[index])
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
    return image


class FeatureSamples(Perturbation):
    """Lime's and KernelShap's perturbation: ``ref + z[id] * (x - ref)``, where the
    engine's inputs (b, H, W, C + 1) carry in their last channel each pixel's column in
    the samples z (B, 1, T, 1) given as masks. ``reference`` (C,) is set per call."""

    reference = None

    def baselines(self, images):
        return self.reference[None, None, None, :]

    def apply(self, inputs, masks, baselines):
        samples = masks[:, 0, :, 0]
        ids = tf.cast(inputs[..., -1], tf.int32)
        if inputs.shape[0] == 1:  # one input broadcast over its samples (the usual batch)
            keep = tf.gather(samples, ids[0], axis=1)[..., None]
        else:  # one input per sample, or a number of rows known only when running
            ids = tf.broadcast_to(ids, tf.concat([tf.shape(samples)[:1], tf.shape(ids)[1:]], 0))
            keep = tf.gather(samples, ids, axis=1, batch_dims=1)[..., None]
        return baselines + keep * (inputs[..., :-1] - baselines)


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
