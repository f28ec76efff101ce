"""LIME (Ribeiro, Singh & Guestrin, KDD 2016) on the shared perturbation engine.

The interpretable features of an input (superpixels, tabular columns, (step, channel)
cells or windows of a time series, tokens) are switched on and off by binary samples; a
weighted linear model fitted to the model's scores on those samples gives one
coefficient per feature. :class:`~sobol_tf.attributions.KernelShap`
is the same machinery with Shapley weights.
"""

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_choice, check_positive_int, check_probability, check_seed
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.attributions.perturbations import Perturbation, check_token
from sobol_tf.attributions.surrogates import (DEFAULT_GRID_SIZE, ExponentialKernel,
                                              WeightedLinearRegression, grid_mapping)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, warn

#: more interpretable features than this in one input: a warning (slow fits), as Xplique.
MANY_FEATURES = 10000


class Lime(BlackBoxExplainer):
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

    input_kinds = ("image", "tabular", "time_series", "tokens")

    def __init__(self, model, batch_size=None, operator=None, interpretable_model=None,
                 similarity_kernel=None, pertub_func=None, map_to_interpret_space=None,
                 ref_value=None, nb_samples=150, distance_mode="euclidean",
                 kernel_width=45.0, prob=0.5, *, grid_size=None, mask_token=None,
                 pad_token=None, seed=None, verbose=False, strategy=None):
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
        self.ref_value, self._ref_shape = _check_ref_value(ref_value)
        self.grid_size = None if grid_size is None else check_positive_int("grid_size",
                                                                            grid_size)
        self.mask_token = None if mask_token is None else check_token("mask_token",
                                                                      mask_token)
        self.pad_token = None if pad_token is None else check_token("pad_token", pad_token)
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

    @property  # type: ignore[misc]  # read-only here (the base class has a setter)
    def perturbation(self):
        """Samples applied through the inputs' feature ids, towards ``ref_value`` (token
        ids: a token is kept or replaced by ``mask_token``)."""
        tokens = self._layout is not None and self._layout.kind == "tokens"
        key = "_token_samples" if tokens else "_samples_perturbation"
        perturbation = self.__dict__.get(key)
        if perturbation is None:
            perturbation = self.__dict__[key] = FeatureSamples(tokens=tokens)
        return perturbation

    def _check_inputs(self, images):
        """Token ids need a mask_token and take no ref_value."""
        layout = self._layout
        if layout.kind != "tokens":
            return
        name = type(self).__name__
        if self.mask_token is None:
            raise InvalidArgumentError(
                f"{name} explains token ids (integer inputs (N, L), here shape "
                f"{(None,) + layout.shape}) by replacing switched-off tokens with "
                "mask_token: pass mask_token=ID (e.g. the id of [MASK] or of an unknown "
                "word), and pad_token=ID if the texts are padded; or give float32 inputs "
                "for tabular rows.")
        if self.ref_value is not None:
            raise InvalidArgumentError(
                f"ref_value={self.ref_value.tolist()} is meaningless for token ids: a "
                f"switched-off token becomes mask_token={self.mask_token}; leave ref_value "
                "None.")

    def _explain(self, model, images, targets):
        layout = self._layout
        images_np = images.numpy()
        self.perturbation.reference = tf.constant(self._reference(layout))
        ids, nb_features = self._feature_ids(images_np, layout)
        columns = {count: None for count in nb_features}  # distinct counts, in order
        offset, blocks = 0, []
        for count in columns:
            columns[count] = offset
            blocks.append(self._samples(count))
            offset += count
        all_samples = np.concatenate(blocks, axis=1)                        # (P, T)
        shifted = ids + np.array([columns[c] for c in nb_features])[:, None, None, None]
        if np.any(ids < 0):  # positions that are no feature (padding): a column of ones
            all_samples = np.concatenate([all_samples, np.ones_like(all_samples[:, :1])], 1)
            shifted = np.where(ids < 0, offset, shifted)
        augmented = tf.concat([images, tf.constant(shifted, tf.float32)], axis=-1)
        masks = tf.constant(all_samples[:, None, :, None])
        scores = self._perturbed_scores(model, augmented, targets, masks).numpy()
        coefs = self._fit(images_np, layout, ids, nb_features, columns, blocks, scores)
        maps = np.stack([np.where(image_ids < 0, 0.0, coef[np.maximum(image_ids, 0)])
                         for coef, image_ids in zip(coefs, ids)])
        return tf.constant(maps, tf.float32)

    def _reference(self, layout):
        """ref_value as float32 (h, w, C), broadcastable to one input in the engine layout
        (H, W, C) (its last axis is always C: :class:`FeatureSamples` reads C from it),
        checked against the inputs."""
        height, width, channels = layout.engine_shape
        kind = layout.kind
        if kind == "tokens":
            return np.full((1, 1, 1), self.mask_token, np.float32)
        if self.ref_value is None:
            grey = kind == "image" and channels == 3
            return np.full((1, 1, channels), 0.5 if grey else 0.0, np.float32)
        values, shape = self.ref_value.astype(np.float32), self._ref_shape
        if values.size == 1:
            return np.full((1, 1, channels), values[0], np.float32)
        if kind == "image" and values.size == channels:
            return values.reshape(1, 1, channels)
        if kind == "tabular" and values.size == width:
            return values.reshape(1, width, 1)
        if kind == "time_series":
            if len(shape) == 1 and values.size == channels:
                return values.reshape(1, 1, channels)
            if shape == layout.shape:
                return values.reshape(1, width, channels)
            raise InvalidArgumentError(
                f"ref_value must be one number, one per channel ({channels}) or one per "
                f"cell {layout.shape}, got shape {shape}.")
        allowed = "one per feature" if kind == "tabular" else "one per channel"
        number = width if kind == "tabular" else channels
        raise InvalidArgumentError(
            f"ref_value must be one number or {allowed} ({number}), got "
            f"{values.size} values {self.ref_value.tolist()}.")

    def _feature_ids(self, images, layout):
        """Feature ids (N, H, W, k) int64 of every input (k: 1, or C for time series; -1
        at positions that are no feature: padding), and their number of features."""
        kind = layout.kind
        if self.map_to_interpret_space is None:
            ids = np.broadcast_to(self._default_mapping(layout),
                                  (len(images),) + layout.engine_shape[:2] + (
                                      layout.engine_shape[2] if kind == "time_series" else 1,))
        else:
            ids = np.stack([self._one_mapping(image, layout) for image in images])
        if kind == "tokens" and layout.pads is not None:
            pads = layout.pads.numpy()
            if self.map_to_interpret_space is None:  # the tokens that are not pads, in order
                ids = np.cumsum(~pads, axis=1) - 1
            ids = np.where(pads, -1, ids.reshape(pads.shape)).reshape(pads.shape + (1,))
            ids = ids[:, None]
        nb_features = ids.reshape(len(ids), -1).max(axis=1, initial=-1) + 1
        if nb_features.min() < 1:
            raise InvalidArgumentError(
                f"input {int(np.argmin(nb_features))} has no interpretable feature: every "
                f"token is padding (pad_token={self.pad_token}).")
        if nb_features.max() > MANY_FEATURES:
            warn(f"an input has {nb_features.max()} interpretable features (over "
                 f"{MANY_FEATURES}): the fits will be slow; give a map_to_interpret_space "
                 "with fewer features.")
        return ids.astype(np.int64), [int(count) for count in nb_features]

    def _default_mapping(self, layout):
        """The default feature ids (H, W, k) of inputs of ``layout``."""
        height, width, channels = layout.engine_shape
        if layout.kind in ("tabular", "tokens"):
            return np.arange(width)[None, :, None]
        if layout.kind == "time_series":
            if self.grid_size is None:  # one feature per (step, channel), as Xplique
                return np.arange(width * channels).reshape(1, width, channels)
            windows = np.arange(width) * min(self.grid_size, width) // width
            return (windows[:, None] * channels + np.arange(channels)[None, :])[None]
        grid = DEFAULT_GRID_SIZE if self.grid_size is None else self.grid_size
        return grid_mapping(height, width, grid)[..., None]

    def _one_mapping(self, image, layout):
        """map_to_interpret_space on one input (in its own layout), checked, as (H, W, k)."""
        kind = layout.kind
        original = _original_layout(image, kind)
        mapping = np.asarray(self.map_to_interpret_space(tf.constant(original)))
        wanted = original.shape[:2] if kind == "image" else original.shape
        if mapping.shape != wanted:
            what = {"image": "pixel", "tabular": "column", "time_series": "(step, channel)",
                    "tokens": "token"}[kind]
            raise InvalidArgumentError(
                f"map_to_interpret_space must return one feature id per {what}, shape "
                f"{wanted}, got shape {mapping.shape}.")
        if (mapping.size and (not np.all(np.mod(mapping, 1) == 0) or mapping.min() < 0)):
            raise InvalidArgumentError(
                "map_to_interpret_space must return integer feature ids >= 0, got values "
                f"from {mapping.min()} to {mapping.max()}.")
        channels = image.shape[2] if kind == "time_series" else 1
        return mapping.astype(np.int64).reshape(image.shape[:2] + (channels,))

    def _perturbed_copies(self, image, image_ids, chunk):
        """The inputs (B, H, W, C) float32 that samples ``chunk`` (B, F) make of one input,
        as the engine makes them (:class:`FeatureSamples`)."""
        reference = self.perturbation.reference.numpy()
        keep = np.where(image_ids < 0, 1.0, chunk[:, np.maximum(image_ids, 0)])
        keep = keep.astype(np.float32)
        if self._layout.kind == "tokens":
            return np.where(keep >= 0.5, image, reference)
        return reference + keep * (image - reference)

    def _similarities(self, images, layout, ids, samples, index):
        """Weights (P,) of the samples of input ``index``."""
        kernel = self.similarity_kernel
        image, image_ids = images[index], ids[index]
        if hasattr(kernel, "from_sums"):  # a built-in kernel: closed form
            if layout.kind == "tokens":  # in the interpretable space: z against all ones
                ones, zeros = np.ones(samples.shape[1]), np.zeros(samples.shape[1])
                sums = np.stack([ones, zeros, zeros, ones])
            else:
                x = image.astype(np.float64)
                ref = self.perturbation.reference.numpy().astype(np.float64)
                flat_ids = np.broadcast_to(image_ids, x.shape).ravel()
                terms = (x * x, x * ref, np.broadcast_to(ref * ref, x.shape), (x - ref) ** 2)
                sums = np.stack([np.bincount(flat_ids, term.ravel(), samples.shape[1])
                                 for term in terms])
            return kernel.from_sums(samples.astype(np.float64), sums)
        original = _original_layout(image, layout.kind)
        weights = []
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start:start + self.batch_size]
            perturbed = self._perturbed_copies(image, image_ids, chunk)
            perturbed = perturbed.reshape((-1,) + tuple(original.shape))
            if layout.kind == "tokens":
                perturbed = np.rint(perturbed).astype(np.int32)
            weights.append(np.asarray(kernel(tf.constant(original),
                                             tf.constant(chunk.astype(np.int32)),
                                             tf.constant(perturbed)),
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


def _original_layout(image, kind):
    """One input (H, W, C) of the engine back in the caller's layout (numpy)."""
    if kind == "tabular":
        return image[0, :, 0]
    if kind == "tokens":
        return np.rint(image[0, :, 0]).astype(np.int32)
    if kind == "time_series":
        return image[0]
    return image


class FeatureSamples(Perturbation):
    """Lime's and KernelShap's perturbation: ``ref + z[id] * (x - ref)``, where the
    engine's inputs (b, H, W, C + k) carry in their last k channels (1, or C for time
    series) each value's column in the samples z (B, 1, T, 1) given as masks.
    ``reference`` (h, w, C) is set per call. ``tokens``: a token is kept where z >= 0.5
    and replaced by the reference (the mask token) elsewhere."""

    reference = None

    def __init__(self, tokens=False):
        self.tokens = bool(tokens)

    def baselines(self, images):
        return self.reference[None]

    def apply(self, inputs, masks, baselines):
        channels = baselines.shape[-1]
        samples = masks[:, 0, :, 0]
        values, ids = inputs[..., :channels], tf.cast(inputs[..., channels:], tf.int32)
        if inputs.shape[0] == 1:  # one input broadcast over its samples (the usual batch)
            keep = tf.gather(samples, ids[0], axis=1)
        else:  # one input per sample, or a number of rows known only when running
            ids = tf.broadcast_to(ids, tf.concat([tf.shape(samples)[:1], tf.shape(ids)[1:]], 0))
            keep = tf.gather(samples, ids, axis=1, batch_dims=1)
        if self.tokens:
            return tf.where(keep >= 0.5, values, baselines)
        return baselines + keep * (values - baselines)


def _check_ref_value(ref_value):
    """(None, None), or ref_value as a flat float array of finite numbers and its shape."""
    if ref_value is None:
        return None, None
    try:
        array = np.asarray(ref_value, np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"ref_value must be a number or an array of numbers (one per channel, tabular "
            f"feature or time-series cell), got {ref_value!r}.") from None
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidArgumentError(
            f"ref_value must hold finite numbers (one, or one per channel, tabular feature "
            f"or time-series cell), got {ref_value!r}.")
    return array.reshape(-1), array.shape
