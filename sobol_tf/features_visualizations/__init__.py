"""Feature visualisation: what image maximises a neuron, a channel, a layer or a
direction of a model.

    from sobol_tf.features_visualizations import Objective, maco
    objective = Objective.channel(model, "conv_2", 5)
    image, transparency = maco(objective, nb_steps=256, custom_shape=(224, 224))

:func:`maco` (Fel et al., NeurIPS 2023) optimises the phase of the image's spectrum with
its magnitude held fixed; :func:`optimize` is the classic Fourier-parametrised ascent
(Olah et al., Distill 2017). Names follow Xplique's ``xplique.features_visualizations``.
"""
from sobol_tf.features_visualizations.maco import maco
from sobol_tf.features_visualizations.objectives import (
    Objective, cosine_similarity, dot_cossim)
from sobol_tf.features_visualizations.optim import optimize
from sobol_tf.features_visualizations.preconditioning import (
    fft_image, fft_to_rgb, get_fft_scale, init_maco_buffer, maco_image_parametrization,
    power_law_spectrum, recorrelate_colors, to_valid_grayscale, to_valid_rgb)
from sobol_tf.features_visualizations.regularizers import (
    l1_reg, l2_reg, l_inf_reg, total_variation_reg)
from sobol_tf.features_visualizations.transformations import (
    compose_transformations, generate_standard_transformations, pad, random_blur,
    random_blur_grayscale, random_flip, random_jitter, random_scale)

__all__ = [
    "Objective", "maco", "optimize", "cosine_similarity", "dot_cossim",
    "fft_image", "fft_to_rgb", "get_fft_scale", "init_maco_buffer",
    "maco_image_parametrization", "power_law_spectrum", "recorrelate_colors",
    "to_valid_grayscale", "to_valid_rgb",
    "l1_reg", "l2_reg", "l_inf_reg", "total_variation_reg",
    "compose_transformations", "generate_standard_transformations", "pad", "random_blur",
    "random_blur_grayscale", "random_flip", "random_jitter", "random_scale",
]
