"""CraftManagerTf: one CRAFT per class of interest (Xplique's ``CraftManagerTf``)."""
from typing import Any, Callable, Optional, Sequence

import numpy as np

from sobol_tf.concepts.craft import CraftTf, DisplayImportancesOrder
from sobol_tf.concepts.factorization import check_images
from sobol_tf.errors import InvalidArgumentError


class CraftManagerTf:
    """One :class:`~sobol_tf.concepts.CraftTf` per class of interest, each fitted on the
    inputs the model *predicts* as that class (as Xplique).

    Args:
        input_to_latent_model, latent_to_logit_model: as :class:`CraftTf`.
        inputs: images (N, H, W, C).
        labels: class ids (N,) (or one-hot rows (N, K), read by argmax); they give the
            default classes of interest.
        list_of_class_of_interest: class ids to explain; None: every class in labels.
        number_of_concepts, batch_size, patch_size: as :class:`CraftTf`.
        strategy: (keyword-only) the ``tf.distribute.Strategy`` of every
            :class:`CraftTf` (see there).
        **craft_options: (keyword-only) sampler, estimator, seed, verbose of each
            :class:`CraftTf`.

    Attributes:
        craft_instances: dict class id -> CraftTf.

    Raises:
        InvalidArgumentError: images not (N, H, W, C); labels not one per image.
    """

    def __init__(self, input_to_latent_model: Callable, latent_to_logit_model: Callable,
                 inputs: Any, labels: Any,
                 list_of_class_of_interest: Optional[Sequence[int]] = None,
                 number_of_concepts: int = 20, batch_size: Optional[int] = 64,
                 patch_size: int = 64, *, strategy: Any = None,
                 **craft_options: Any) -> None:
        self.inputs = check_images(inputs, "inputs")
        labels = np.asarray(labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        if labels.ndim != 1 or len(labels) != len(self.inputs):
            raise InvalidArgumentError(
                f"labels must be class ids (N,) or one-hot rows (N, K) with N = "
                f"{len(self.inputs)}, got shape {np.shape(labels)}.")
        self.labels = labels
        classes = np.unique(labels) if list_of_class_of_interest is None \
            else list_of_class_of_interest
        self.list_of_class_of_interest = [int(c) for c in classes]
        self.input_to_latent_model = input_to_latent_model
        self.latent_to_logit_model = latent_to_logit_model
        self.craft_instances = {
            class_id: CraftTf(input_to_latent_model, latent_to_logit_model,
                              number_of_concepts, batch_size, patch_size, strategy=strategy,
                              **craft_options)
            for class_id in self.list_of_class_of_interest}

    def compute_predictions(self) -> np.ndarray:
        """Predicted class of every input, argmax of h(g(inputs)) (the engine's batches).

        Returns:
            int numpy (N,).
        """
        craft = next(iter(self.craft_instances.values()))
        g, h = self.input_to_latent_model, self.latent_to_logit_model
        if not hasattr(self, "_chained"):
            self._chained = lambda images: h(g(images))  # one compiled step, kept
        return craft.scorer.outputs(self._chained, self.inputs).argmax(axis=1)

    def fit(self, nb_samples_per_class: Optional[int] = None, verbose: bool = False) -> None:
        """Fit each class's CRAFT on the inputs predicted as that class (the first
        ``nb_samples_per_class`` of them when given).

        Raises:
            InvalidArgumentError: no input is predicted as a class of interest.
        """
        predictions = self.compute_predictions()
        for class_id, craft in self.craft_instances.items():
            if verbose:
                print(f"Fitting CRAFT instance for class {class_id}")
            chosen = self.inputs[predictions == class_id][:nb_samples_per_class]
            if len(chosen) == 0:
                raise InvalidArgumentError(
                    f"no input is predicted as class {class_id} (predicted classes: "
                    f"{sorted(set(predictions.tolist()))}); remove it from "
                    "list_of_class_of_interest or give inputs of that class.")
            craft.fit(chosen, class_id=class_id)

    def estimate_importance(self, nb_design: int = 32, verbose: bool = False) -> None:
        """Global concept importances of every class (each CraftTf's
        ``estimate_importance()``)."""
        for class_id, craft in self.craft_instances.items():
            if verbose:
                print(f"Estimating importances for class {class_id}")
            craft.estimate_importance(nb_design=nb_design)

    def _craft(self, class_id):
        if class_id not in self.craft_instances:
            raise InvalidArgumentError(
                f"class_id={class_id} is not a class of interest "
                f"({self.list_of_class_of_interest}).")
        return self.craft_instances[class_id]

    def plot_concepts_importances(self, class_id: int, nb_most_important_concepts: int = 5,
                                  verbose: bool = False) -> None:
        """Bar chart of the global importances of class ``class_id``."""
        self._craft(class_id).plot_concepts_importances(
            None, nb_most_important_concepts=nb_most_important_concepts, verbose=verbose)

    def plot_concepts_crops(self, class_id: int, nb_crops: int = 10,
                            nb_most_important_concepts: Optional[int] = None) -> None:
        """Best crops of the concepts of class ``class_id``."""
        self._craft(class_id).plot_concepts_crops(
            nb_crops=nb_crops, nb_most_important_concepts=nb_most_important_concepts)

    def plot_image_concepts(self, img: Any, class_id: int,
                            display_importance_order: DisplayImportancesOrder =
                            DisplayImportancesOrder.GLOBAL,
                            nb_most_important_concepts: int = 5, filter_percentile: int = 90,
                            clip_percentile: Optional[float] = 10, alpha: float = 0.65,
                            filepath: Optional[str] = None) -> None:
        """:meth:`CraftTf.plot_image_concepts` of class ``class_id``."""
        self._craft(class_id).plot_image_concepts(
            img, display_importance_order=display_importance_order,
            nb_most_important_concepts=nb_most_important_concepts,
            filter_percentile=filter_percentile, clip_percentile=clip_percentile,
            alpha=alpha, filepath=filepath)
