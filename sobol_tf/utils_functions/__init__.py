"""Helpers that build the ``targets`` of the segmentation and object-detection tasks
(Xplique's ``xplique.utils_functions``). numpy only: they take numpy arrays or tensors
and return numpy arrays, and importing them does not import TensorFlow."""
from sobol_tf.utils_functions import object_detection, segmentation
from sobol_tf.utils_functions.segmentation import (get_class_zone, get_common_border,
                                                   get_connected_zone, get_in_out_border,
                                                   list_class_connected_zones)

__all__ = [
    "get_class_zone",
    "get_connected_zone",
    "get_common_border",
    "get_in_out_border",
    "list_class_connected_zones",
    "object_detection",
    "segmentation",
]
