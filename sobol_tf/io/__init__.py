"""Files of the library: image files, maps on disk (``maps.npz`` and the shard format).

One layer below both :mod:`sobol_tf.streaming` and :mod:`sobol_tf.cli`, which read and
write maps through it; it imports neither (nor any explainer). Importing it does not
import TensorFlow: :mod:`sobol_tf.io.datasets` (the tf.data sources of image files) is
left out of this package's names and imported where used.

Modules:
    problems: :class:`FileProblem`, :func:`one_line`.
    images: :func:`list_images`, :func:`decode_image_file`, :data:`LUMA_WEIGHTS`.
    maps_file: ``maps.npz`` (:func:`save_maps`, :func:`write_npz`, :func:`load_maps`).
    shards: the shard format (:class:`MapWriter`, :func:`read_maps`,
        :func:`finished_names`, :func:`shard_files`).
    datasets: :func:`image_files`, :func:`image_files_dataset` (TensorFlow).
"""
from sobol_tf.io.images import (CHANNEL_NAMES, IMAGE_EXTENSIONS, LUMA_WEIGHTS,
                                convert_channels, decode_image_file, list_images)
from sobol_tf.io.maps_file import MAPS_FILE, RESERVED_KEYS, load_maps, save_maps, write_npz
from sobol_tf.io.problems import FileProblem, PathLike, one_line
from sobol_tf.io.shards import (INDEX_FILE, MapWriter, finished_names, read_maps,
                                shard_files, write_maps)

__all__ = ["CHANNEL_NAMES", "IMAGE_EXTENSIONS", "INDEX_FILE", "LUMA_WEIGHTS", "MAPS_FILE",
           "RESERVED_KEYS", "FileProblem", "MapWriter", "PathLike", "convert_channels",
           "decode_image_file", "finished_names", "list_images", "load_maps", "one_line",
           "read_maps", "save_maps", "shard_files", "write_maps", "write_npz"]
