"""The command line's files: the saved Keras model, the images for it, the output folder.

A file that cannot be used raises :class:`~sobol_tf.io.FileProblem`, whose message is
one line naming the file. The file formats shared with the library (image decoding,
``maps.npz``, shards) live in :mod:`sobol_tf.io` and are re-exported here, so the
commands reach every file helper as ``files.<name>``.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sobol_tf.io.images import (  # noqa: F401 (re-exported: the commands' file helpers)
    CHANNEL_NAMES,
    IMAGE_EXTENSIONS,
    LUMA_WEIGHTS,
    convert_channels,
    decode_image_file,
    list_images,
)
from sobol_tf.io.maps_file import (  # noqa: F401 (re-exported)
    MAPS_FILE,
    RESERVED_KEYS,
    load_maps,
    save_maps,
    write_npz,
)
from sobol_tf.io.problems import FileProblem, one_line  # noqa: F401 (re-exported)

#: first bytes of a .keras file (a zip archive) and of a .h5 file (HDF5)
ZIP_SIGNATURE = b"PK\x03\x04"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: where HDF5 may place its signature (after a user block of 512, 1024, 2048 ... bytes)
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
NOT_A_MODEL = ("not a saved Keras model: a .keras file is a zip archive and a .h5 file "
               "an HDF5 file; this file is neither")


class ModelInput:
    """What a model's single image input needs: (height, width, channels), rank, and
    its number of outputs per image.

    ``height``/``width``/``channels``/``nb_outputs`` are None when not fixed.
    """

    def __init__(self, model_path: str, shape: Any, output_shape: Any = None) -> None:
        if not (isinstance(shape, tuple) and len(shape) in (3, 4)
                and all(isinstance(d, (int, type(None))) for d in shape)):
            raise FileProblem(model_path, f"the model must take one batch of images "
                              f"(N, H, W, C) or (N, H, W); its input shape is {shape}")
        self.height, self.width = shape[1], shape[2]
        self.channels = shape[3] if len(shape) == 4 else 1
        self.squeeze = len(shape) == 3
        if self.channels is not None and self.channels not in CHANNEL_NAMES:
            raise FileProblem(model_path, f"the model takes images of {self.channels} "
                              "channels; images have 1 to 4 (grayscale, grayscale + alpha, "
                              "RGB, RGBA)")
        self.nb_outputs = None
        if isinstance(output_shape, tuple) and all(isinstance(d, int)
                                                    for d in output_shape[1:]):
            self.nb_outputs = int(np.prod(output_shape[1:], dtype=np.int64))


def check_model_file(path: str) -> None:
    """Refuse, with what is wrong, a file that is neither a zip (.keras) nor HDF5 (.h5)."""
    with open(path, "rb") as handle:
        head = handle.read(HDF5_OFFSETS[-1] + len(HDF5_SIGNATURE))
    if not head:
        raise FileProblem(path, "not a saved Keras model: the file is empty")
    if any(head[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE
           for offset in HDF5_OFFSETS):
        return
    if head.startswith(ZIP_SIGNATURE) or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise FileProblem(path, f"a damaged zip archive: {one_line(exc)}") from exc
        if "config.json" not in names:
            raise FileProblem(path, "a zip archive but not a Keras model archive (no "
                              "config.json inside); save models with model.save('m.keras')")
        return
    try:
        text = head.decode("utf-8")
        looks_like_text = all(char.isprintable() or char.isspace() for char in text)
    except UnicodeDecodeError:  # may also be text cut inside a character: say bytes
        looks_like_text = False
    what = ("it looks like text" if looks_like_text
            else "it starts with bytes " + " ".join(f"{b:02x}" for b in head[:4]))
    raise FileProblem(path, f"{NOT_A_MODEL} ({what})")


def load_model(path: str) -> Tuple[Any, ModelInput]:
    """Load a saved Keras model (.keras or .h5); returns (model, ModelInput).

    The file's first bytes are checked before Keras reads it, so a text file or a zip
    that is not a Keras archive is named as such. The model must have one image input
    and one output.
    """
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileProblem(path, "a TensorFlow SavedModel folder, which Keras 3 cannot load "
                          "as a model; save the model with model.save('model.keras')")
    if not os.path.isfile(path):
        raise FileProblem(path, "no such model file" if not os.path.exists(path)
                          else "not a file; expected a saved Keras model (.keras, .h5)")
    try:
        check_model_file(path)
    except OSError as exc:
        raise FileProblem(path, f"cannot read the model: {exc.strerror or exc}") from exc
    import keras  # heavy (TensorFlow): only when a model is loaded

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise FileProblem(path, f"cannot load a Keras model: {one_line(exc)}") from exc
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) > 1:
        raise FileProblem(path, f"the model must have one output; it has {len(outputs)}")
    return model, ModelInput(path, getattr(model, "input_shape", None),
                             getattr(model, "output_shape", None))


def load_image(path: str, spec: ModelInput, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Read one image for a model (:func:`decode_image_file` at the model's channels and
    size); returns (display image in [0, 1], model input), float32 numpy; the model
    input has no channel axis for models of (N, H, W) inputs (``spec.squeeze``)."""
    display, inputs = decode_image_file(path, spec.channels, (spec.height, spec.width),
                                        scale)
    return display, (inputs[..., 0] if spec.squeeze else inputs)


def group_by_shape(loaded: Sequence[Tuple[Any, Any, np.ndarray]]) -> List[List[int]]:
    """Indices of loaded images grouped by model-input shape (one batch per group)."""
    groups: Dict[Any, List[int]] = {}
    for index, (_, _, inputs) in enumerate(loaded):
        groups.setdefault(inputs.shape, []).append(index)
    return list(groups.values())


def check_names(paths: Sequence[str], overlay_suffix: Optional[str] = None) -> List[str]:
    """The image paths, each once, in order; their file names key maps.npz and name the
    overlays (``<stem><overlay_suffix>``), so these must not collide.

    Raises:
        FileProblem: a reserved name, a name that is not valid UTF-8, two paths with
            one file name, or (when
            ``overlay_suffix`` is given) two file names with one overlay name.
    """
    seen: Dict[str, str] = {}
    overlays: Dict[str, str] = {}
    unique: List[str] = []
    for path in paths:
        name = os.path.basename(path)
        if name in RESERVED_KEYS:
            raise FileProblem(path, f"an image cannot be named {name!r} (a key of "
                              f"{MAPS_FILE}); rename it")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes of the file system's name
            raise FileProblem(path, "its file name is not valid UTF-8 (it is saved as a "
                              f"key of {MAPS_FILE}); rename it") from None
        if name in seen:
            if seen[name] != path:
                raise FileProblem(path, f"same file name as {seen[name]}; outputs are "
                                  "named after the file name, so rename one")
            continue
        if overlay_suffix is not None:
            overlay = os.path.splitext(name)[0] + overlay_suffix
            if overlay in overlays:
                raise FileProblem(path, f"its overlay would be {overlay}, as for "
                                  f"{overlays[overlay]}; rename one")
            overlays[overlay] = path
        seen[name] = path
        unique.append(path)
    return unique


def check_output_folder(folder: str) -> None:
    """Create ``folder`` if needed and check that files can be written in it.

    Raises:
        FileProblem: it cannot be created or written in (with the system's reason), or
            its maps.npz is a folder.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise FileProblem(folder, "cannot create the output folder: "
                          f"{exc.strerror or exc}") from exc
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sobol-tf-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise FileProblem(folder, "cannot write in the output folder: "
                          f"{exc.strerror or exc}") from exc
    if os.path.isdir(os.path.join(folder, MAPS_FILE)):
        raise FileProblem(folder, f"{MAPS_FILE} is a folder there; remove or rename it")


def check_free_space(folder: str, needed: int) -> None:
    """Refuse to start when the disk of ``folder`` has fewer than ``needed`` bytes free.

    Raises:
        FileProblem: naming the bytes needed and free.
    """
    import shutil  # noqa: PLC0415 (looked up at call time: tests replace disk_usage)

    free = shutil.disk_usage(folder).free
    if free < needed:
        raise FileProblem(folder, f"too little free disk space: the maps need about "
                          f"{needed / 1e6:.1f} MB and {free / 1e6:.1f} MB are free")
