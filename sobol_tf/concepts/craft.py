"""CRAFT: concepts of a class by non-negative factorisation, ranked with Sobol indices.

Ref. Fel et al., "CRAFT: Concept Recursive Activation FacTorization for Explainability",
CVPR 2023 (https://arxiv.org/abs/2211.10154).

The model is cut in two: ``g = input_to_latent_model`` (images to non-negative
activations) and ``h = latent_to_logit_model`` (activations to logits). :meth:`fit`
cuts the images of one class into crops, averages ``g`` of each crop (resized to the
images' size) over space and factorises those activations A ~ U W with scikit-learn's
NMF: W (concepts x channels) is the concept bank, U the concepts' coefficients of each
crop. :meth:`estimate_importance` ranks the concepts with the Sobol attribution method's
machinery (:mod:`sobol_tf.attributions.samplers` draws the concept masks,
:mod:`sobol_tf.attributions.estimators` turns scores into total-order indices, Jansen's
by default as in the paper): the k-th perturbation of an image is
``h((U * mask_k) @ W)``, built on the device inside the scoring engine's compiled batch
loop (several images per forward batch).

Both models run on one :class:`~sobol_tf._utils.engine.ModelEngine` (h seen through the
classification operator; g's activations on the same scorer), as the explainers and
metrics do. The parts that do not touch the models (the result classes, checking and
cropping images, the NMF) live in :mod:`sobol_tf.concepts.factorization` and are
importable from here too.

The classes share Xplique's names, positional order and defaults (``CraftTf``,
``CraftManagerTf``); our extras are keyword-only.
"""
from typing import Any, Callable, Optional, Tuple, cast

import numpy as np

from sobol_tf.concepts._plots import CraftPlots, DisplayImportancesOrder  # noqa: F401
from sobol_tf.concepts.factorization import (  # noqa: F401 (also importable from here)
    NMF_ALPHA_W, STRIDE_SHARE, Factorization, Sensitivity, check_images, coefficients_of,
    extract_crops, factorize, nmf_class)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError, NotFittedError


def _check_callable(name, value):
    if not callable(value):
        raise InvalidTypeError(
            f"{name} must be a Keras model or a callable mapping a batch of tensors to a "
            f"batch of tensors, got {type(value).__name__}."
        )
    return value


class CraftTf(CraftPlots):
    """CRAFT concept extraction and Sobol concept importance (Xplique's ``CraftTf``).

    Args:
        input_to_latent_model: g, images (B, H, W, C) -> non-negative activations
            (B, h, w, channels) or (B, channels) (e.g. a model up to a ReLU layer).
        latent_to_logit_model: h, activations -> logits (B, K).
        number_of_concepts: concepts to extract (rank of the NMF), default 20.
        batch_size: items per forward pass (crops, images, perturbed activations),
            default 64; None: everything in one pass.
        patch_size: side of the square crops, default 64; crops are taken every
            ``int(0.8 * patch_size)`` pixels and resized to the images' size before g.
        sampler: (keyword-only) sampler of the concept masks: None (Xplique's
            ``HaltonSequenceRS``, the unscrambled Halton sequence, deterministic), a
            name of :func:`sobol_tf.attributions.samplers.get` (seeded with ``seed``)
            or a sampler object.
        estimator: (keyword-only) 'jansen' (default, the paper's), 'homma', 'janon',
            'glen', 'saltelli' or an estimator object
            (:mod:`sobol_tf.attributions.estimators`).
        seed: (keyword-only) seed of the NMF's initialisation (scikit-learn's
            ``random_state``: its random initialisation is used when number_of_concepts
            exceeds the crops or the channels) and of a sampler given by name; None, an
            integer >= 0 or a numpy Generator. The same seed gives the same concepts
            and importances.
        verbose: (keyword-only) progress bars.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            forward batches of both models (see :class:`~sobol_tf.attributions.Explainer`;
            None: the enclosing ``strategy.scope()``'s, else one device). The NMF and
            the Sobol estimates run on one device.

    Differences from Xplique: both models may be any callables of TensorFlow operations
    (Xplique requires Keras models); bad input raises sobol_tf's errors (Xplique
    asserts).

    Raises:
        InvalidTypeError: a model that is not callable; non-integer sizes; ``strategy``
            neither None nor a ``tf.distribute.Strategy``.
        InvalidArgumentError: sizes below 1; an unknown sampler or estimator.
    """

    def __init__(
        self,
        input_to_latent_model: Callable,
        latent_to_logit_model: Callable,
        number_of_concepts: int = 20,
        batch_size: Optional[int] = 64,
        patch_size: int = 64,
        *,
        sampler: Any = None,
        estimator: Any = None,
        seed: Optional[int] = None,
        verbose: bool = False,
        strategy: Any = None,
    ) -> None:
        # TensorFlow: imported when a CRAFT is built, so that import sobol_tf stays light
        from sobol_tf._utils.batching import current_strategy  # noqa: PLC0415
        from sobol_tf._utils.validation import check_positive_int, check_seed  # noqa: PLC0415
        from sobol_tf.attributions import estimators, samplers  # noqa: PLC0415

        self.input_to_latent_model = _check_callable("input_to_latent_model",
                                                     input_to_latent_model)
        self.latent_to_logit_model = latent_to_logit_model  # checked, on the engine
        self.number_of_concepts = check_positive_int("number_of_concepts", number_of_concepts)
        self.batch_size = None if batch_size is None else check_positive_int("batch_size",
                                                                             batch_size)
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.seed = check_seed(seed)
        if sampler is None:  # Xplique's HaltonSequenceRS: deterministic
            sampler = samplers.HaltonSequence(scramble=False)
        else:
            sampler = samplers.get(sampler, seed=self.seed if isinstance(sampler, str) else None)
        self.sampler = sampler
        self.estimator = estimators.get(estimator)
        self.verbose = bool(verbose)
        self.strategy = current_strategy() if strategy is None else strategy
        self.factorization: Optional[Factorization] = None
        self.sensitivity: Optional[Sensitivity] = None

    # -- the engine ---------------------------------------------------------------------
    @property
    def strategy(self) -> Any:
        """The ``tf.distribute.Strategy`` the scoring engine splits each forward batch
        over, or None (one device); may be set after construction."""
        return self.__dict__.get("_strategy")

    @strategy.setter
    def strategy(self, value: Any) -> None:
        from sobol_tf._utils.batching import check_strategy  # noqa: PLC0415
        self.__dict__["_strategy"] = check_strategy(value)

    @property
    def latent_to_logit_model(self) -> Callable:
        """h, the model CRAFT scores: the model of the CRAFT's
        :class:`~sobol_tf._utils.engine.ModelEngine` (h seen through the classification
        operator, the logit of the class fitted). The engine's scorer runs g too, so that
        one ModelMode (compiled or eager) and one set of compiled steps serve both
        models, as for an explainer. Setting it builds a new engine."""
        return self._engine.model

    @latent_to_logit_model.setter
    def latent_to_logit_model(self, value: Callable) -> None:
        from sobol_tf import operators  # noqa: PLC0415 (TensorFlow, see __init__)
        from sobol_tf._utils.engine import ModelEngine  # noqa: PLC0415

        self._engine = ModelEngine(self, _check_callable("latent_to_logit_model", value),
                                   operators.get(None), eager_first=True)

    @property
    def scorer(self) -> Any:
        """The scoring engine of both models (compiled steps kept between calls): the
        :class:`~sobol_tf._utils.scoring.Scorer` of the CRAFT's
        :class:`~sobol_tf._utils.engine.ModelEngine`."""
        return self._engine.scorer

    def _latent(self, images, crop_to=None):
        """g on ``images`` batch by batch (resized on the device to ``crop_to`` first,
        then averaged over space: the crops' activations); checked non-negative."""
        import tensorflow as tf  # noqa: PLC0415

        model = self.input_to_latent_model

        def step(indices, images):
            batch = tf.gather(images, indices)
            if crop_to is None:
                return model(batch)
            activations = model(tf.image.resize(batch, crop_to, method="bicubic"))
            rank = activations.shape.rank
            return tf.reduce_mean(activations, axis=(1, 2)) if rank == 4 else activations

        name = "craft_latent" if crop_to is None else f"craft_crops_{crop_to[0]}x{crop_to[1]}"
        activations = self.scorer.run_step(model, name, step, images.shape[0], (images,),
                                           f"input_to_latent_model on {images.shape[0]} "
                                           "image(s)", values="activations").numpy()
        if activations.ndim not in (2, 4):
            raise InvalidArgumentError(
                "input_to_latent_model must return activations (B, h, w, channels) or "
                f"(B, channels), got shape {activations.shape}.")
        if activations.min() < 0:
            raise InvalidArgumentError(
                f"input_to_latent_model returned negative activations (min "
                f"{activations.min():.4g}); CRAFT factorises non-negative activations: cut "
                "the model after a ReLU (or another non-negative layer).")
        return activations

    def check_if_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` was called."""
        if self.factorization is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(inputs, class_id) first.")

    # -- CRAFT --------------------------------------------------------------------------
    def fit(self, inputs: Any, class_id: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Extract the concepts of class ``class_id`` from images of that class.

        Args:
            inputs: images (N, H, W, C) (numpy or tensor), at least ``patch_size`` pixels
                high and wide; the paper's x_1..x_n.
            class_id: the class the concepts explain (the logit scored by
                :meth:`estimate_importance`), an integer >= 0.

        Returns:
            (crops, crops_u, concept_bank_w): float32 numpy arrays (n_crops, patch_size,
            patch_size, C), U (n_crops, number_of_concepts) and W (number_of_concepts,
            channels), with A ~ U W for the crops' spatially averaged activations A.

        Raises:
            InvalidArgumentError: images not of that shape, smaller than patch_size, or
                not finite; negative activations; a negative class_id.
            InvalidTypeError: a non-integer class_id.
            ImportError: scikit-learn is missing.
        """
        from sobol_tf._utils.validation import check_positive_int  # noqa: PLC0415

        class_id = check_positive_int("class_id", class_id, minimum=0)
        images = check_images(inputs, "inputs")
        height, width = images.shape[1:3]
        if self.patch_size > min(height, width):
            raise InvalidArgumentError(
                f"patch_size={self.patch_size} is larger than the images ({height}x{width}); "
                "use patch_size <= the smaller side.")
        nmf_class()  # scikit-learn is there, before the models run
        crops = extract_crops(images, self.patch_size)
        activations = self._latent(crops, crop_to=(height, width))
        reducer, crops_u, bank = factorize(activations, self.number_of_concepts, self.seed)
        self.factorization = Factorization(images, class_id, crops, reducer, crops_u, bank)
        self.sensitivity = None
        return crops, crops_u, bank

    def transform(self, inputs: Any, activations: Optional[Any] = None) -> np.ndarray:
        """Concept coefficients U of images against the fixed bank W (non-negative least
        squares, scikit-learn's NMF solver with W fixed).

        Args:
            inputs: images (N, H, W, C) or one image (H, W, C).
            activations: their activations by input_to_latent_model, if already
                computed ((N, h, w, channels) or (N, channels)); then inputs is not read.

        Returns:
            float32 numpy (N, h, w, number_of_concepts): the coefficients at every
            spatial position of the activations, or (N, number_of_concepts) when the
            activations have no spatial axes.

        Raises:
            NotFittedError: before :meth:`fit`.
            InvalidArgumentError: images of another shape, negative activations, or
                activations of another width than the bank's.
        """
        self.check_if_fitted()
        if activations is None:
            activations = self._latent(check_images(inputs, "inputs", allow_single=True))
        else:
            activations = np.asarray(activations, dtype=np.float32)
            if activations.ndim not in (2, 4) or activations.min(initial=0) < 0:
                raise InvalidArgumentError(
                    "activations must be non-negative (N, h, w, channels) or (N, channels),"
                    f" got shape {activations.shape}, min {activations.min(initial=0):.4g}.")
        factorization = cast(Factorization, self.factorization)  # not None once fitted
        channels = factorization.concept_bank_w.shape[1]
        if activations.shape[-1] != channels:
            raise InvalidArgumentError(
                f"the activations have {activations.shape[-1]} channels, the concept bank "
                f"{channels}: use the input_to_latent_model the concepts were fitted with.")
        return coefficients_of(factorization.reducer, activations)

    def estimate_importance(self, inputs: Optional[Any] = None,
                            nb_design: int = 32) -> np.ndarray:
        """Total Sobol index of every concept for the class fitted, averaged over images.

        For each image, the concept masks M (``nb_design * (number_of_concepts + 2)``
        rows of the replicated design [A, B, C_1..C_R] drawn by ``sampler``) perturb its
        coefficients U at every spatial position, the perturbed activations
        ``(U * M_k) @ W`` go through latent_to_logit_model (in the engine's compiled
        batch loop, ``batch_size`` per pass), and ``estimator`` turns the class logits into
        indices. The importances are the mean of the images' indices.

        Args:
            inputs: None (default) for the global importances on the images given to
                :meth:`fit` (then stored in :attr:`sensitivity` for the plots), or images
                (N, H, W, C) / one image (H, W, C) for local importances.
            nb_design: rows of A (and of B), an integer >= 2; default 32.

        Returns:
            float32 numpy (number_of_concepts,).

        Raises:
            NotFittedError: before :meth:`fit`.
            InvalidArgumentError: nb_design < 2; class_id not below the number of
                logits; bad images (see :meth:`transform`).
            ModelCallError: latent_to_logit_model failed or returned non-finite logits.
        """
        import tensorflow as tf  # noqa: PLC0415
        from sobol_tf._utils.validation import check_positive_int  # noqa: PLC0415
        from sobol_tf.attributions import estimators  # noqa: PLC0415

        self.check_if_fitted()
        factorization = cast(Factorization, self.factorization)  # not None once fitted
        nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        is_global = inputs is None
        coefficients = self.transform(factorization.inputs if is_global else inputs)
        masks = np.asarray(self.sampler(self.number_of_concepts, nb_design), np.float32)
        bank = tf.constant(factorization.concept_bank_w)
        coefficients = tf.constant(coefficients)
        model = self.latent_to_logit_model
        logits = self.scorer.outputs(model, tf.tensordot(coefficients[:1], bank, 1))
        class_id = factorization.class_id
        if class_id >= logits.shape[1]:
            raise InvalidArgumentError(
                f"class_id={class_id} but latent_to_logit_model returns {logits.shape[1]} "
                f"logits; fit with a class_id below {logits.shape[1]}.")
        nb_inputs = int(coefficients.shape[0])
        targets = tf.one_hot(tf.fill([nb_inputs], class_id), logits.shape[1])
        spatial = coefficients.shape.rank == 4

        def build(input_ids, mask_ids, coefficients, masks, bank):
            mask = tf.gather(masks, mask_ids)
            if spatial:
                mask = mask[:, None, None, :]
            return tf.tensordot(tf.gather(coefficients, input_ids) * mask, bank, 1)

        scores = self.scorer.perturbed_scores(
            model, "craft_concept_masks", build, coefficients, targets, masks.shape[0],
            extras=(tf.constant(masks), bank),
            what=f"{masks.shape[0]} concept masks of {nb_inputs} image(s)")
        if estimators.is_vectorised(self.estimator):
            indices = np.asarray(self.estimator(scores, nb_design))
        else:  # an Xplique-style estimator, one image at a time
            indices = np.stack([np.asarray(self.estimator(masks, row, nb_design)).reshape(-1)
                                for row in scores.numpy()])
        importances = indices.mean(axis=0).astype(np.float32)
        if is_global:
            self.sensitivity = Sensitivity(importances, np.argsort(importances)[::-1])
        return importances

    def concept_attribution_maps(self, inputs: Any) -> np.ndarray:
        """The coefficients of every concept resized to the images' size (bilinear).

        Args:
            inputs: images (N, H, W, C) or one image (H, W, C).

        Returns:
            float32 numpy (N, H, W, number_of_concepts); with activations without
            spatial axes, each concept's coefficient is constant over the image.
        """
        import tensorflow as tf  # noqa: PLC0415

        images = check_images(inputs, "inputs", allow_single=True)
        coefficients = self.transform(images)
        if coefficients.ndim == 2:
            coefficients = coefficients[:, None, None, :]
        return tf.image.resize(coefficients, images.shape[1:3], method="bilinear").numpy()
