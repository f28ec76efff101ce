"""``maps.npz``: the maps of a job in one numpy archive, keyed by image file name.

Written atomically (a temporary file in the same folder, renamed over the target) by
:func:`save_maps` / :func:`write_npz`, read back by :func:`load_maps`. No TensorFlow.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any, Dict, Iterable, Sequence, Tuple

import numpy as np

from sobol_tf.io.problems import FileProblem, one_line

MAPS_FILE = "maps.npz"
#: keys of maps.npz that are not maps
RESERVED_KEYS = ("files", "targets")


def save_maps(path: str, names: Sequence[str], maps: Sequence[np.ndarray],
              targets: Sequence[int]) -> None:
    """Write maps.npz with numpy's format (names may be any string), atomically: to a
    temporary file in the same folder, then renamed over ``path``."""
    arrays = [("files", np.asarray(names, dtype=str)),
              ("targets", np.asarray(targets, np.int64))]
    arrays += [(name, np.asarray(m, np.float32)) for name, m in zip(names, maps)]
    write_npz(path, arrays)


def write_npz(path: str, members: Iterable[Tuple[str, Any]]) -> None:
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


def load_maps(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, int]]:
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
