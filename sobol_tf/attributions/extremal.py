"""Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019)."""
import numbers

import numpy as np
import tensorflow as tf

from sobol_tf._utils import check_choice, check_positive_int, check_seed
from sobol_tf.attributions.base import Explainer
from sobol_tf.attributions.extremal_masks import (  # noqa: F401 (constants: extremal's names)
    AREA_REFERENCE_CELLS, INITIAL_PARAMETERS, MOMENTUM, SCORE_SCALE_FLOOR,
    SmoothMaskGenerator,
    apply_pyramid,
    area_loss,
    perturbation_pyramid,
)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: what the mask keeps: 'preserve' (the mask alone keeps the score high), 'delete' (its
#: removal drops the score), 'dual' (both, rewarding the difference).
VARIANTS = ("preserve", "delete", "dual")

#: how masked-out pixels are perturbed: a blur pyramid, or a fade to zero.
PERTURBATIONS = ("blur", "fade")

#: the image side at which the size-scaled defaults equal TorchRay's: a parameter every
#: 7 pixels, bump kernels of 21 pixels, a strongest blur of 20 pixels.
REFERENCE_SIDE = 224
REFERENCE_MASK_STEP = 7
REFERENCE_MASK_SIGMA = 21.0
REFERENCE_MAX_BLUR = 20.0


def scaled_mask_settings(height, width):
    """The default (mask_step, mask_sigma, max_blur) of an image of height x width.

    With side = min(height, width): mask_step = max(1, round(7 * side / 224)),
    mask_sigma = 21 * side / 224 and max_blur = 20 * side / 224, TorchRay's values
    (7, 21, 20) at 224 px, proportional to the side elsewhere (sigma stays about three
    mask steps). 32 px: (1, 3.0, 2.86); 64 px: (2, 6.0, 5.71).
    """
    ratio = min(int(height), int(width)) / REFERENCE_SIDE
    return (max(1, int(round(REFERENCE_MASK_STEP * ratio))), REFERENCE_MASK_SIGMA * ratio,
            REFERENCE_MAX_BLUR * ratio)


def mask_margin(mask_sigma):
    """Width in pixels of the band around the image where the area loss also counts the
    mask: round(mask_sigma), TorchRay's margin (its ``sigma``)."""
    return int(round(mask_sigma))


def _check_positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(
            f"{name} must be a positive number, got {value!r} of type {type(value).__name__}."
        )
    if not np.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive finite number, got {value}.")
    return float(value)


def _check_areas(areas):
    values = [areas] if isinstance(areas, numbers.Real) else areas
    try:
        values = list(values)
    except TypeError:
        raise InvalidTypeError(
            f"areas must be a number or a sequence of numbers in (0, 1], got {areas!r}."
        ) from None
    if not values:
        raise InvalidArgumentError("areas must hold at least one area in (0, 1], got [].")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidTypeError(
                f"areas must hold numbers in (0, 1], got {value!r} of type "
                f"{type(value).__name__} in {areas!r}."
            )
        if not 0 < value <= 1:
            raise InvalidArgumentError(
                f"areas must lie in (0, 1] (fractions of the image), got {value} in {areas!r}."
            )
    return tuple(float(value) for value in values)


class ExtremalPerturbation(Explainer):
    """Extremal perturbations: the smooth mask of a given area that matters most.

    For each area a, the method looks for the smooth mask m covering a fraction a of the
    image that keeps the model's score as high as possible when only m is kept and the
    rest is blurred ('preserve'), that drops it as low as possible when m is blurred away
    ('delete'), or both at once ('dual', rewarding the difference). The mask is the smooth
    max of bump kernels placed on a low-resolution grid of parameters (see
    :class:`~sobol_tf.attributions.extremal_masks.SmoothMaskGenerator`), so it is never
    sharper than the kernels. Its area is imposed by a ranking loss, the mean squared
    distance between the sorted mask values and the sorted reference mask of area a
    (round(a H W) ones, the rest zeros), with a weight that grows exponentially during the
    optimisation: the score shapes the mask first, the area constraint wins at the end.
    The parameters start at 1 (0.75 for 'delete'), follow gradient descent with momentum
    (the step follows a moving average of the gradients, as TorchRay's SGD; not Adam,
    whose steps of about the learning rate whatever the gradient erase the small score
    differences that decide which pixels the area loss keeps) and are clipped to [0, 1]
    after each step. The (input, area) pairs of a batch are optimised together in
    one compiled loop; each pair's mask depends on that pair only.

    Ref. R. Fong, M. Patrick, A. Vedaldi. Understanding Deep Networks via Extremal
    Perturbations and Smooth Masks. ICCV 2019. https://arxiv.org/abs/1910.08485
    The optimiser, the parametrisation and most defaults follow TorchRay's
    ``extremal_perturbation``, written by the authors.

    Where we differ from TorchRay, on purpose:

    - ``normalize_scores`` (on by default) divides each pair's score by the largest of
      |s(x)|, |s(x0)| and |s(x) - s(x0)|, x the input and x0 the fully perturbed input, so
      that the balance between score and area does not depend on the scale of the
      model's outputs (logits or probabilities), and a model the perturbation barely
      moves does not get its noise amplified. The area weight then starts at 4.8 and
      grows 1000-fold to 4800: started above the score's pull, the area loss freezes the
      mask wherever it first puts it. Dividing the score by its scale divides its
      gradient too (by about 10 on logits), so the learning rate is 0.1, ten times
      TorchRay's 0.01 (issue 28: at 0.01 the parameters moved about ten times less per
      step than TorchRay's on the same logits, the score had barely shaped the mask
      when the growing area weight froze it, and at equal area, the top 10% of each
      mask, the masks kept 0.6 of the logit where TorchRay's kept 0.9 on 64 px digits;
      the table is in benchmarks/results/extremal_torchray.md).
      ``normalize_scores=False, area_weight=213, area_weight_growth=16.4,
      learning_rate=0.01`` gives TorchRay's objective and schedule (213 = 300 / 1.41:
      TorchRay averages the area loss over the image and its margin of sigma pixels,
      1.41 times the image with the size-scaled sigma; we divide by the image's
      pixels), tuned for logits of 224 x 224 images.
    - The area loss is multiplied by h w / 1024, h x w the parameter grid (1024 =
      32 x 32, TorchRay's grid at 224 px with a step of 7, where the factor is 1): each
      parameter moves a few pixels of the mask, so without the factor the pull of the
      area on each parameter would fall as the grid grows (the area was not held on a
      32 x 32 grid with a weight tuned on an 8 x 8 one).
    - The weight schedule spans the run whatever ``steps`` is (TorchRay multiplies the
      weight by 1.0035 per step).
    - The area loss counts, as TorchRay's, the mask on the image and on a margin of
      round(mask_sigma) pixels around it (:func:`mask_margin`), where the bumps of the
      parameters near the border spill over: a mask on the border pays for the part
      of its bumps outside the image, so that masks do not drift to the border (they
      did without the margin, border parameters moving fewer pixels). The reference
      holds round(a H W) ones, a of the image, where TorchRay's holds a of the image
      plus margin (its masks away from the border cover more than a of the image,
      1.35 a at 224 px); away from the border the returned masks have the asked area.
      Pixels whose mask values tie share the reference of the ranks they span (see
      :func:`~sobol_tf.attributions.extremal_masks.area_loss`) instead of being ranked
      by their index.
    - 'delete' starts from parameters of 0.75, not 1 (see :data:`INITIAL_PARAMETERS`).
    - The pyramid interpolation has a one-sided slope at m = 1 (zero in TorchRay).
    - ``jitter`` is off by default and, when on, flips the perturbed inputs horizontally
      at random (seeded; the same draws for every input, so that an input's masks do not
      depend on the others), where TorchRay flips every other step.
    - No ``resize`` or ``smooth`` options: the masks are computed at the input size.
      TorchRay's contrastive reward is an ``operator`` callable here.

    Args:
        model: a Keras model or a callable on a batch tensor; it must be differentiable
            with TensorFlow (the masks are optimised by gradient).
        areas: a target area or a sequence of them, fractions of the image in (0, 1];
            (0.1,) by default.
        variant: 'preserve' (default), 'delete' or 'dual'. The mask always marks what
            matters: kept in 'preserve', removed in 'delete'.
        perturbation: 'blur' (default: a pyramid of ``num_levels`` Gaussian blurs up to a
            standard deviation of ``max_blur`` pixels, the image padded with zeros as
            TorchRay's, so that the blur fades to 0 near the border; a mask value picks
            and interpolates the level) or 'fade' (x * m, a blend to zero).
        steps: optimisation steps (TorchRay's ``max_iter``), 800.
        learning_rate: step size of the gradient descent, 0.1 (TorchRay's 0.01 on a
            logit about 10 times larger than the normalised score; 0.01 before issue
            28). Parameters live in [0, 1]; with ``normalize_scores=False`` on logits
            use about 0.01.
        mask_step: spacing in pixels of the parameter grid (TorchRay's ``step``); None
            (default) scales it with the input: max(1, round(7 * side / 224)), side =
            min(H, W) of the inputs explained (7 at 224 px, 2 at 64 px, 1 at 32 px).
        mask_sigma: width in pixels of the bump kernels (TorchRay's ``sigma``); None
            (default): 21 * side / 224 (21 at 224 px, 6 at 64 px, 3 at 32 px).
        num_levels: levels of the blur pyramid, >= 2; 8.
        max_blur: standard deviation of the strongest blur in pixels; None (default):
            20 * side / 224 (20 at 224 px, 5.7 at 64 px, 2.9 at 32 px). The three
            size-scaled defaults are TorchRay's values at 224 x 224, proportional to the
            side (see :func:`scaled_mask_settings`), resolved when the inputs are
            explained; values given explicitly are used as given, at every size.
        normalize_scores: divide each pair's score by its scale (see above); True.
        area_weight: initial weight of the area loss (times h w / 1024, see above), 4.8.
        area_weight_growth: factor by which the area weight has grown at the last step,
            1000.
        jitter: flip the perturbed inputs horizontally at random during the optimisation.
        batch_size: (input, area) pairs optimised together, 16; a forward batch holds
            ``batch_size`` perturbed inputs (twice as many for 'dual'). Bounds memory:
            besides the model's activations, each pair holds a few tensors of
            H * W * (2r + 1)**2 values, r = 1 + ceil(mask_sigma / mask_step) (81 values
            per pixel with the defaults, 4M at 224 x 224), and a blur pyramid of
            ``num_levels`` copies of the input.
        operator: None / 'classification', 'regression' or g(model, inputs, targets);
            its score is the one kept or removed.
        seed: seed of the random flips of ``jitter``: None, an integer >= 0 or a numpy
            Generator (one integer is drawn from it); without jitter the method is
            deterministic and ``seed`` is unused (but still checked).
        verbose: show a progress bar over batches.
        strategy: (keyword-only) a ``tf.distribute.Strategy`` whose replicas share the
            (input, area) pairs of each batch; see
            :class:`~sobol_tf.attributions.Explainer`.

    Raises:
        InvalidArgumentError: areas outside (0, 1], an unknown variant or perturbation,
            a non-positive number, ``num_levels`` < 2, a negative ``seed``.
        InvalidTypeError: an argument of the wrong type.

    ``explain`` and ``explain_masks`` raise ModelCallError for a model TensorFlow cannot
    trace (a numpy function, ``predict_proba``): the masks follow TensorFlow's gradients
    of the model, which such a model does not have, so it is refused as by the gradient
    methods instead of being run eagerly.

    Example:
        >>> explainer = ExtremalPerturbation(model, areas=(0.05, 0.1, 0.2))
        >>> maps = explainer(images, labels)                # (N, H, W, 1), sum of masks
        >>> masks = explainer.explain_masks(images, labels) # (N, 3, H, W, 1)
    """

    #: the masks follow TensorFlow's gradients of the model: no eager fallback.
    needs_gradients = True

    input_kinds = ("image",)

    def __init__(self, model, *, areas=(0.1,), variant="preserve", perturbation="blur",
                 steps=800, learning_rate=0.1, mask_step=None, mask_sigma=None,
                 num_levels=8, max_blur=None, normalize_scores=True, area_weight=4.8,
                 area_weight_growth=1000.0, jitter=False, batch_size=16, operator=None,
                 seed=None, verbose=False, strategy=None):
        super().__init__(model, batch_size=batch_size, operator=operator, verbose=verbose,
                         strategy=strategy)
        self.areas = _check_areas(areas)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.perturbation = check_choice("perturbation", perturbation, PERTURBATIONS)
        self.steps = check_positive_int("steps", steps)
        self.learning_rate = _check_positive_number("learning_rate", learning_rate)
        self.mask_step = None if mask_step is None else check_positive_int("mask_step",
                                                                           mask_step)
        self.mask_sigma = None if mask_sigma is None else _check_positive_number(
            "mask_sigma", mask_sigma)
        self.num_levels = check_positive_int("num_levels", num_levels, minimum=2)
        self.max_blur = None if max_blur is None else _check_positive_number("max_blur",
                                                                             max_blur)
        self.normalize_scores = bool(normalize_scores)
        self.area_weight = _check_positive_number("area_weight", area_weight)
        self.area_weight_growth = _check_positive_number("area_weight_growth",
                                                         area_weight_growth)
        self.jitter = bool(jitter)
        self.seed = check_seed(seed)

    def mask_settings(self, height, width):
        """(mask_step, mask_sigma, max_blur) used on images of height x width pixels.

        The values given to the constructor, and for those left at None the size-scaled
        defaults of :func:`scaled_mask_settings`.
        """
        scaled = scaled_mask_settings(height, width)
        given = (self.mask_step, self.mask_sigma, self.max_blur)
        return tuple(default if value is None else value
                     for value, default in zip(given, scaled))

    def explain_masks(self, inputs, targets=None):
        """The mask of every area, one by one.

        Args and Raises: as :meth:`explain`.

        Returns:
            float32 tf.Tensor (N, nb_areas, H, W, 1) of masks in [0, 1], in the order of
            ``areas``; :meth:`explain` returns their sum over areas.
        """
        model, images, targets = self._prepare(inputs, targets)
        return self._area_masks(model, images, targets)

    def _explain(self, model, images, targets):
        return tf.reduce_sum(self._area_masks(model, images, targets), axis=1)

    def _area_masks(self, model, images, targets):
        """Masks (N, nb_areas, H, W, 1) of every (input, area) pair."""
        nb_inputs, height, width, channels = images.shape
        nb_pairs = nb_inputs * len(self.areas)
        arguments = (images, targets)
        signature = [tf.TensorSpec([None], tf.int64),
                     tf.TensorSpec([None, height, width, channels], tf.float32),
                     tf.TensorSpec([None] + targets.shape[1:].as_list(), tf.float32)]
        if self.jitter:  # one draw per (area, step), shared by every input
            rng = np.random.default_rng(self.seed)
            flips = rng.random((len(self.areas), self.steps)) < 0.5
            arguments += (tf.constant(flips),)
            signature.append(tf.TensorSpec([None, self.steps], tf.bool))
        key = ("extremal", height, width, channels, tuple(targets.shape[1:]))
        function = self._compiled(model, key, self._optimisation(model, height, width),
                                  signature)
        masks = self._run_batches(function, nb_pairs, arguments,
                                  f"the extremal masks of {nb_pairs} (input, area) pair(s)")
        return tf.reshape(masks, (nb_inputs, len(self.areas), height, width, 1))

    def _optimisation(self, model, height, width):
        """The compiled loop: ``step(indices, images, targets[, flips])`` -> (B, H, W)."""
        mask_step, mask_sigma, max_blur = self.mask_settings(height, width)
        nb_areas = len(self.areas)
        areas = tf.constant(self.areas, tf.float32)
        operator, variant, steps, jitter = self.operator, self.variant, self.steps, self.jitter
        learning_rate = self.learning_rate
        weight_0, growth = self.area_weight, self.area_weight_growth
        normalize = self.normalize_scores
        blur, num_levels = self.perturbation == "blur", self.num_levels

        def step(indices, images, targets, flips=None):
            generator = SmoothMaskGenerator(height, width, step=mask_step, sigma=mask_sigma,
                                            margin=mask_margin(mask_sigma))
            grid_h, grid_w = generator.grid_shape
            cells = grid_h * grid_w / AREA_REFERENCE_CELLS
            input_ids = indices // nb_areas
            inputs = tf.gather(images, input_ids)
            targets = tf.gather(targets, input_ids)
            if variant == "dual":
                targets = tf.concat([targets, targets], axis=0)
            pair_areas = tf.gather(areas, indices % nb_areas)
            if jitter:  # (B, steps): the flips of each pair's area, shared by all inputs
                flips = tf.gather(flips, indices % nb_areas)
            pyramid = perturbation_pyramid(inputs, num_levels, max_blur) if blur else None

            def perturb(masks):
                if blur:
                    return apply_pyramid(pyramid, masks)
                return inputs * masks[..., None]

            scale = tf.ones(tf.shape(indices), tf.float32)
            if normalize:  # scores in units of max(|clean|, |perturbed|, |clean - perturbed|)
                ones = tf.ones(tf.shape(inputs)[:3])
                pair_targets = targets[:tf.shape(indices)[0]]
                clean = operator(model, perturb(ones), pair_targets)
                perturbed = operator(model, perturb(0.0 * ones), pair_targets)
                size = tf.reduce_max(tf.abs(tf.stack([clean, perturbed, clean - perturbed])), 0)
                scale = 1.0 / tf.maximum(size, SCORE_SCALE_FLOOR)

            def loss(params, step_id):
                full = generator.full(params)  # the masks and their margin
                margin = generator.margin
                masks = full[:, margin:margin + height, margin:margin + width]
                if variant == "preserve":
                    perturbed = perturb(masks)
                elif variant == "delete":
                    perturbed = perturb(1.0 - masks)
                else:
                    perturbed = tf.concat([perturb(masks), perturb(1.0 - masks)], axis=0)
                if jitter:
                    flip = tf.gather(flips, step_id, axis=1)
                    if variant == "dual":
                        flip = tf.concat([flip, flip], axis=0)
                    perturbed = tf.where(flip[:, None, None, None],
                                         tf.reverse(perturbed, axis=[2]), perturbed)
                scores = operator(model, perturbed, targets)
                if variant == "preserve":
                    reward = scores
                elif variant == "delete":
                    reward = -scores
                else:
                    half = tf.shape(scores)[0] // 2
                    reward = scores[:half] - scores[half:]
                reward = reward * scale
                progress = tf.cast(step_id, tf.float32) / max(steps - 1, 1)
                weight = cells * weight_0 * tf.pow(growth, progress)
                area = area_loss(full, pair_areas, image_pixels=height * width)
                return tf.reduce_sum(weight * area - reward)

            params = tf.fill((tf.shape(indices)[0],) + generator.grid_shape,
                             INITIAL_PARAMETERS[variant])
            velocity = tf.zeros_like(params)
            for step_id in tf.range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    value = loss(params, step_id)
                gradient = tape.gradient(value, params)
                velocity = MOMENTUM * velocity + (1.0 - MOMENTUM) * gradient
                params = tf.clip_by_value(params - learning_rate * velocity, 0.0, 1.0)
            return generator(params)

        return step

    def explain_channels(self, inputs, targets=None, *, layer=None):
        """Extremal masks over the channels of ``layer`` (Fong et al.'s attribution at
        intermediate layers): (N, C) masks in [0, 1], or (N, nb_areas, C) for several
        areas; areas are shares of the C channels. See
        :func:`sobol_tf.attributions.extremal_channels.explain_channels`.

        Example:
            >>> masks = ExtremalPerturbation(model, areas=0.25).explain_channels(
            ...     images, labels, layer="conv2")                   # (N, C)
        """
        from sobol_tf.attributions.extremal_channels import explain_channels
        return explain_channels(self, inputs, targets, layer)
