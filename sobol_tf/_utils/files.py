"""Files of the command line: saved Keras models, images, and maps.npz.

Private to :mod:`sobol_tf.cli`. A file that cannot be used raises :class:`FileProblem`,
whose message is one line naming the file.
"""
import os
import zipfile

import numpy as np

MAPS_FILE = "maps.npz"
#: keys of maps.npz that are not maps
RESERVED_KEYS = ("files", "targets")
CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}


class FileProblem(Exception):
    """A file the command cannot use; ``str()`` is the one line printed about it."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")


def one_line(exc):
    """The first meaningful line of an exception's message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class ModelInput:
    """What a model's single image input needs: (height, width, channels), rank.

    ``height``/``width``/``channels`` are None when the model accepts any value.
    """

    def __init__(self, model_path, shape):
        if not (isinstance(shape, tuple) and len(shape) in (3, 4)
                and all(isinstance(d, (int, type(None))) for d in shape)):
            raise FileProblem(model_path, f"the model must take one batch of images "
                              f"(N, H, W, C) or (N, H, W); its input shape is {shape}")
        self.height, self.width = shape[1], shape[2]
        self.channels = shape[3] if len(shape) == 4 else 1
        self.squeeze = len(shape) == 3


def load_model(path):
    """Load a saved Keras model (.keras or .h5); returns (model, ModelInput)."""
    if not os.path.isfile(path):
        raise FileProblem(path, "no such model file" if not os.path.exists(path)
                          else "not a file; expected a saved Keras model (.keras, .h5)")
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise FileProblem(path, f"cannot load a Keras model: {one_line(exc)}") from exc
    return model, ModelInput(path, getattr(model, "input_shape", None))


def load_image(path, spec, scale):
    """Read one image; returns (display image in [0, 1], model input), float32 numpy.

    The display image keeps the file's size; the model input is resized (bilinear,
    antialiased) to the model's size and multiplied by ``scale``.
    """
    import tensorflow as tf

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise FileProblem(path, f"cannot read the image: {exc.strerror or exc}") from exc
    try:
        image = tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise FileProblem(path, "cannot decode the image: not a PNG, JPEG, GIF or BMP "
                          "file, or a damaged one") from exc
    channels = image.shape[-1]
    if spec.channels is not None and channels != spec.channels:
        raise FileProblem(
            path, f"the image has {channels} channel(s) "
            f"({CHANNEL_NAMES.get(channels, 'unknown')}) but the model expects "
            f"{spec.channels} ({CHANNEL_NAMES.get(spec.channels, 'unknown')}); "
            "convert the image")
    size = (spec.height or image.shape[0], spec.width or image.shape[1])
    inputs = image
    if tuple(image.shape[:2]) != size:
        inputs = tf.image.resize(image, size, method="bilinear", antialias=True)
    inputs = inputs * scale
    if spec.squeeze:
        inputs = inputs[..., 0]
    return image.numpy(), inputs.numpy()


def group_by_shape(loaded):
    """Indices of loaded images grouped by model-input shape (one batch per group)."""
    groups = {}
    for index, (_, _, inputs) in enumerate(loaded):
        groups.setdefault(inputs.shape, []).append(index)
    return list(groups.values())


def check_names(paths):
    """Image file names, which key maps.npz and name overlays: they must be unique."""
    seen = {}
    for path in paths:
        name = os.path.basename(path)
        if name in RESERVED_KEYS:
            raise FileProblem(path, f"an image cannot be named {name!r} (a key of "
                              f"{MAPS_FILE}); rename it")
        if name in seen and seen[name] != path:
            raise FileProblem(path, f"same file name as {seen[name]}; outputs are named "
                              "after the file name, so rename one")
        seen[name] = path
    return [os.path.basename(path) for path in paths]


def save_maps(path, names, maps, targets):
    """Write maps.npz with numpy's format (names may be any string)."""
    arrays = {"files": np.asarray(names), "targets": np.asarray(targets, np.int64)}
    arrays.update({name: np.asarray(m, np.float32) for name, m in zip(names, maps)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def load_maps(path):
    """Read maps.npz: ({file name: (H, W) map}, {file name: class id})."""
    problem = "not an .npz archive of maps (as written by 'sobol-tf explain')"
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileProblem(path, "no such maps file") from None
    except OSError as exc:
        raise FileProblem(path, f"cannot read the maps: {exc.strerror or exc}") from exc
    except ValueError as exc:  # neither .npy nor .npz: numpy refuses to unpickle it
        raise FileProblem(path, problem) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FileProblem(path, problem)
    try:
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:  # a damaged archive: zipfile and numpy raise many types
        raise FileProblem(path, f"{problem}: {one_line(exc)}") from exc
    if not all(isinstance(array, np.ndarray) for array in arrays.values()):
        raise FileProblem(path, f"{problem}: it holds files other than arrays")
    targets = {}
    if "files" in arrays and "targets" in arrays:
        targets = {str(name): int(t) for name, t in zip(arrays["files"], arrays["targets"])}
    maps = {key: value for key, value in arrays.items() if key not in RESERVED_KEYS}
    return maps, targets
