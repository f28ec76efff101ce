"""Files of the command line: saved Keras models, images, the output folder, maps.npz.

Private to :mod:`sobol_tf.cli`. A file that cannot be used raises :class:`FileProblem`,
whose message is one line naming the file.
"""
import json
import os
import re
import tempfile
import zipfile

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

import numpy as np

MAPS_FILE = "maps.npz"
#: keys of maps.npz that are not maps
RESERVED_KEYS = ("files", "targets")
CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}
#: ITU-R 601-2 luma weights of R, G, B (PIL's convert("L"), Keras' load_img grayscale)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: first bytes of a .keras file (a zip archive) and of a .h5 file (HDF5)
ZIP_SIGNATURE = b"PK\x03\x04"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: where HDF5 may place its signature (after a user block of 512, 1024, 2048 ... bytes)
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
NOT_A_MODEL = ("not a saved Keras model: a .keras file is a zip archive and a .h5 file "
               "an HDF5 file; this file is neither")


class FileProblem(Exception):
    """A file the command cannot use; ``str()`` is the one line printed about it."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path, self.reason = path, message


#: lines of TensorFlow's and Keras' messages that say where an error happened, not what
WHERE_LINES = re.compile(r'^(Graph execution error:?|Exception encountered when calling .*|'
                         r'Detected at node .*|File ".*|Arguments received by .*|\u2022 .*|'
                         r'\[\[.*)$')
#: terminal colour codes (Keras writes some) and TensorFlow's graph-node descriptions
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
NODE_DESCRIPTIONS = re.compile(r" for '\{\{node [^']*'")


def one_line(exc):
    """The first line of an exception's message that says what went wrong.

    Lines that only say where (TensorFlow's "Graph execution error:" and its traceback,
    Keras' "Exception encountered when calling ...", "Arguments received by ...") are
    skipped, and the exception's chained causes are read when its own message has no
    other line; colour codes and graph-node descriptions are removed. The exception's
    type name when nothing is left.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for line in ANSI_CODES.sub("", str(exc)).splitlines():
            line = NODE_DESCRIPTIONS.sub("", line).strip()
            if line and not WHERE_LINES.match(line):
                return line
        last = exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return type(last).__name__


class ModelInput:
    """What a model's single image input needs: (height, width, channels), rank, and
    its number of outputs per image.

    ``height``/``width``/``channels``/``nb_outputs`` are None when not fixed.
    """

    def __init__(self, model_path, shape, output_shape=None):
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


def check_model_file(path):
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


def load_model(path):
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
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise FileProblem(path, f"cannot load a Keras model: {one_line(exc)}") from exc
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) > 1:
        raise FileProblem(path, f"the model must have one output; it has {len(outputs)}")
    return model, ModelInput(path, getattr(model, "input_shape", None),
                             getattr(model, "output_shape", None))


def convert_channels(image, channels):
    """Convert a (H, W, C) float image to ``channels`` as Keras' ``load_img`` does.

    Alpha is dropped when the model has none (no compositing, as PIL's
    ``convert("RGB")``) and set to 1 (opaque) when it has one and the image has none;
    grayscale becomes RGB by repeating the channel; RGB becomes grayscale by ITU-R
    601-2 luma, L = 0.299 R + 0.587 G + 0.114 B, as PIL's ``convert("L")`` but without
    rounding to whole grey levels. ``channels`` None: unchanged.
    """
    have = image.shape[-1]
    if channels is None or have == channels:
        return image
    has_alpha = have in (2, 4)
    color = image[..., :-1] if has_alpha else image
    if color.shape[-1] == 3 and channels in (1, 2):
        color = (color @ np.asarray(LUMA_WEIGHTS, np.float32))[..., None]
    elif color.shape[-1] == 1 and channels in (3, 4):
        color = np.repeat(color, 3, axis=-1)
    if channels in (1, 3):
        return color
    alpha = image[..., -1:] if has_alpha else np.ones_like(color[..., :1])
    return np.concatenate([color, alpha], axis=-1)


def decode_image_file(path, channels, size, scale):
    """Read and decode one image file as the command line and
    :func:`sobol_tf.streaming.image_files_dataset` both do (one decoder for both).

    The image is converted to ``channels`` (:func:`convert_channels`; None: the file's
    own), resized (bilinear, antialiased) to ``size`` = (height, width) (None for either:
    the file's own) and multiplied by ``scale``.

    Returns:
        (display image in [0, 1] at the file's size without alpha, model input
        (H, W, C)), float32 numpy.

    Raises:
        FileProblem: the file cannot be read, is empty, is not a PNG, JPEG, GIF or BMP
            image (or a damaged one), or has more than 4 channels.
    """
    import tensorflow as tf

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise FileProblem(path, f"cannot read the image: {exc.strerror or exc}") from exc
    if not data:
        raise FileProblem(path, "the file is empty")
    try:
        image = tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise FileProblem(path, "cannot decode the image: not a PNG, JPEG, GIF or BMP "
                          "file, or a damaged one") from exc
    if image.shape[-1] not in CHANNEL_NAMES:
        raise FileProblem(path, f"the image has {image.shape[-1]} channels; expected 1 to 4")
    image = convert_channels(image.numpy(), channels)
    height, width = size if size is not None else (None, None)
    size = (height or image.shape[0], width or image.shape[1])
    inputs = image
    if tuple(image.shape[:2]) != size:
        inputs = tf.image.resize(image, size, method="bilinear", antialias=True).numpy()
    inputs = inputs * np.float32(scale)
    display = image[..., :-1] if image.shape[-1] in (2, 4) else image
    return display, inputs


def load_image(path, spec, scale):
    """Read one image for a model (:func:`decode_image_file` at the model's channels and
    size); returns (display image in [0, 1], model input), float32 numpy; the model
    input has no channel axis for models of (N, H, W) inputs (``spec.squeeze``)."""
    display, inputs = decode_image_file(path, spec.channels, (spec.height, spec.width),
                                        scale)
    return display, (inputs[..., 0] if spec.squeeze else inputs)


def group_by_shape(loaded):
    """Indices of loaded images grouped by model-input shape (one batch per group)."""
    groups = {}
    for index, (_, _, inputs) in enumerate(loaded):
        groups.setdefault(inputs.shape, []).append(index)
    return list(groups.values())


def check_names(paths, overlay_suffix=None):
    """The image paths, each once, in order; their file names key maps.npz and name the
    overlays (``<stem><overlay_suffix>``), so these must not collide.

    Raises:
        FileProblem: a reserved name, a name that is not valid UTF-8, two paths with
            one file name, or (when
            ``overlay_suffix`` is given) two file names with one overlay name.
    """
    seen, overlays, unique = {}, {}, []
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


def check_output_folder(folder):
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


def save_maps(path, names, maps, targets):
    """Write maps.npz with numpy's format (names may be any string), atomically: to a
    temporary file in the same folder, then renamed over ``path``."""
    arrays = [("files", np.asarray(names, dtype=str)),
              ("targets", np.asarray(targets, np.int64))]
    arrays += [(name, np.asarray(m, np.float32)) for name, m in zip(names, maps)]
    write_npz(path, arrays)


def write_npz(path, members):
    """Write ``(key, array)`` pairs (any iterable) as an .npz archive, atomically."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".",
                                         prefix=".maps-", suffix=".npz.tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0o600 would stick after replace
        with os.fdopen(handle, "wb") as raw, \
                zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, array in members:
                with archive.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array),
                                              allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


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


# -- large jobs: folders, the work folder (job.json, shards, locks), workers ----------
#: extensions of the files taken from a folder (any case); files named on the command
#: line are tried whatever their name
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
#: the folder, inside the output folder, that holds the state of a job
WORK_FOLDER = ".sobol-tf"
JOB_FILE = "job.json"
SHARDS_FOLDER = "shards"


def list_images(paths, exclude=None):
    """The image files named by ``paths``, in order: a file as given, a folder as its
    image files (by extension, :data:`IMAGE_EXTENSIONS`), recursively, sorted by their
    path inside the folder. Hidden files and folders (``.name``) and the folder
    ``exclude`` (the output folder, when it lies inside an input folder) are left out.

    Raises:
        FileProblem: a folder without any image file.
    """
    excluded = os.path.realpath(exclude) if exclude is not None else None
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        inside = []
        for root, folders, names in os.walk(path):
            folders[:] = [name for name in folders if not name.startswith(".")
                          and os.path.realpath(os.path.join(root, name)) != excluded]
            inside += [os.path.join(root, name) for name in names
                       if not name.startswith(".")
                       and name.lower().endswith(IMAGE_EXTENSIONS)]
        if not inside:
            raise FileProblem(path, "a folder without image files (" +
                              ", ".join(IMAGE_EXTENSIONS) + "), even in its sub-folders")
        inside.sort(key=lambda p: os.path.relpath(p, path).split(os.sep))
        found += inside
    return found


def check_free_space(folder, needed):
    """Refuse to start when the disk of ``folder`` has fewer than ``needed`` bytes free.

    Raises:
        FileProblem: naming the bytes needed and free.
    """
    import shutil

    free = shutil.disk_usage(folder).free
    if free < needed:
        raise FileProblem(folder, f"too little free disk space: the maps need about "
                          f"{needed / 1e6:.1f} MB and {free / 1e6:.1f} MB are free")


def _lock_owner(path):
    """(pid, host) written in a lock file; (None, None) when unreadable or half written."""
    try:
        with open(path, encoding="utf-8") as handle:
            pid, host = handle.read().split()
        return int(pid), host
    except (OSError, ValueError):
        return None, None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


#: lock path -> (open descriptor, whether it holds a flock), for this process's locks.
_HELD_LOCKS = {}


def _try_flock(path):
    """Open ``path`` and take its exclusive ``flock`` without waiting: the descriptor, or
    None when another open file holds it. The kernel drops the lock when its holder
    dies, so a killed run leaves no stale lock and two runs cannot both take one over."""
    while True:
        handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return None
        except BaseException:
            os.close(handle)
            raise
        try:  # the holder before us may have released it (unlinked the file): retry
            if os.stat(path).st_ino == os.fstat(handle).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)


def _try_exclusive_create(path, host):
    """Where ``flock`` is missing (Windows): create ``path`` with O_EXCL, taking over the
    lock of a dead process of this host; the descriptor, or None when it is held."""
    try:
        return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        pid, owner_host = _lock_owner(path)
        if pid is not None and owner_host == host and not _alive(pid):
            try:  # stale: its process is dead
                os.remove(path)
            except FileNotFoundError:
                pass
            return _try_exclusive_create(path, host)
        return None


def acquire_lock(path, wait=0.0):
    """Take the lock file ``path`` and write this pid and host in it.

    The lock is an exclusive ``flock`` on the file, held until :func:`release_lock` or
    the end of the process, so the lock of a killed run is free at once (its file,
    left behind, is simply reused). Without ``flock`` (Windows) the file is created
    with O_EXCL and a dead process's lock is taken over. ``wait`` seconds: how long to
    retry while another process holds it.

    Raises:
        FileProblem: another run holds it (naming its pid and host).
    """
    import socket
    import time

    flocked = fcntl is not None
    deadline = time.monotonic() + wait
    while True:
        handle = (_try_flock(path) if flocked
                  else _try_exclusive_create(path, socket.gethostname()))
        if handle is not None:
            break
        if time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        pid, owner_host = _lock_owner(path)
        who = f"process {pid} on {owner_host}" if pid is not None else "another process"
        raise FileProblem(path, f"locked by {who}: another run writes to this output "
                          "folder; wait for it to end or choose another --out (remove "
                          "the lock file if no run is going)")
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()} {socket.gethostname()}\n".encode())
    _HELD_LOCKS[path] = handle, flocked
    return path


def release_lock(path):
    """Release a lock taken by :func:`acquire_lock` in this process and remove its file.

    A flock'ed file is removed before it is closed, so that a process waiting on it
    sees it is gone and takes a new one (Windows cannot remove an open file)."""
    handle, flocked = _HELD_LOCKS.pop(path, (None, None))
    if handle is None:
        return
    if not flocked:
        os.close(handle)
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    if flocked:
        os.close(handle)


def check_job(work, settings, overwrite=False):
    """Record ``settings`` (what the maps depend on) in ``work/job.json``, or check that
    the recorded ones equal them. ``overwrite``: discard the finished maps of other
    settings (the shards) instead.

    Raises:
        FileProblem: the folder holds maps made with other settings (naming them).
    """
    os.makedirs(os.path.join(work, SHARDS_FOLDER), exist_ok=True)
    path = os.path.join(work, JOB_FILE)
    text = json.dumps(settings, indent=1, sort_keys=True)
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                recorded = json.load(handle)
        except FileNotFoundError:
            handle, temporary = tempfile.mkstemp(dir=work, prefix=".job-", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as job:
                job.write(text)
            try:
                os.link(temporary, path)  # exclusive: another worker may be first
                return
            except FileExistsError:
                continue
            finally:
                os.remove(temporary)
        except (OSError, ValueError) as exc:
            raise FileProblem(path, f"cannot read the job's settings: {one_line(exc)}; "
                              "remove the folder or add --overwrite") from exc
        if recorded == settings:
            return
        if not overwrite:
            changed = ", ".join(f"{key} {recorded.get(key)!r} (now {settings.get(key)!r})"
                                for key in sorted(set(recorded) | set(settings))
                                if recorded.get(key) != settings.get(key))
            raise FileProblem(os.path.dirname(work), "holds maps made with other settings: "
                              f"{changed}; rerun with the same ones to resume, choose "
                              "another --out, or add --overwrite to discard them")
        shards = os.path.join(work, SHARDS_FOLDER)
        for name in os.listdir(shards):
            os.remove(os.path.join(shards, name))
        os.remove(path)
        overwrite = False


def shards_folder(work):
    """Where a job's shards and their index are (written by streaming.MapWriter)."""
    return os.path.join(work, SHARDS_FOLDER)


def finished_names(work):
    """{file name: shard path} of the maps finished in the shards of ``work`` (names
    read back by :func:`sobol_tf.streaming.finished_names`; shards hold the images'
    paths, keyed here by file name as maps.npz is)."""
    from sobol_tf.streaming import finished_names as finished_paths

    finished = {}
    for path, shard in finished_paths(shards_folder(work)).items():
        finished.setdefault(os.path.basename(path), shard)
    return finished


def assemble_maps(path, names, work):
    """Write maps.npz (as :func:`save_maps`) from the shards of ``work``: the maps of
    ``names`` that are finished, in that order, reading one shard at a time.

    Returns:
        the number of maps written.
    """
    where = finished_names(work)
    names = [name for name in names if name in where]
    by_shard = {}
    for name in names:
        by_shard.setdefault(where[name], []).append(name)
    rows, targets = {}, {}
    for shard, held in by_shard.items():
        with np.load(shard, allow_pickle=False) as archive:
            row = {}
            for k, n in enumerate(archive["names"]):
                row.setdefault(os.path.basename(str(n)), k)
            rows[shard] = row
            for name in held:
                targets[name] = int(archive["targets"][row[name]])

    def members():
        yield "files", np.asarray(names, dtype=str)
        yield "targets", np.asarray([targets[n] for n in names], np.int64)
        for shard, held in by_shard.items():
            with np.load(shard, allow_pickle=False) as archive:
                maps = archive["maps"]
                for name in held:
                    yield name, maps[rows[shard][name]]

    write_npz(path, members())
    return len(names)
