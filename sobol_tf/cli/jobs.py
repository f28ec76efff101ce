"""A job of ``sobol-tf explain`` in its output folder: ``DIR/.sobol-tf`` holds ``job.json``
(what the maps depend on), the shards (:mod:`sobol_tf.io.shards`), the workers' locks
and their ``done`` marks; ``TF_CONFIG`` says which share of the files is this worker's.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Sequence, Tuple

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

import numpy as np

from sobol_tf.cli.common import UsageProblem
from sobol_tf.io.maps_file import write_npz
from sobol_tf.io.problems import FileProblem, one_line
from sobol_tf.io.shards import finished_names as finished_paths

#: the folder, inside the output folder, that holds the state of a job
WORK_FOLDER = ".sobol-tf"
JOB_FILE = "job.json"
SHARDS_FOLDER = "shards"


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
_HELD_LOCKS: Dict[str, Tuple[int, bool]] = {}


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


def acquire_lock(path: str, wait: float = 0.0) -> str:
    """Take the lock file ``path`` and write this pid and host in it.

    The lock is an exclusive ``flock`` on the file, held until :func:`release_lock` or
    the end of the process, so the lock of a killed run is free at once (its file,
    left behind, is simply reused). Without ``flock`` (Windows) the file is created
    with O_EXCL and a dead process's lock is taken over. ``wait`` seconds: how long to
    retry while another process holds it.

    Raises:
        FileProblem: another run holds it (naming its pid and host).
    """
    import socket  # noqa: PLC0415 (standard library, only when a lock is taken)
    import time  # noqa: PLC0415

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


def release_lock(path: str) -> None:
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


def check_job(work: str, settings: Dict[str, Any], overwrite: bool = False) -> None:
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
            descriptor, temporary = tempfile.mkstemp(dir=work, prefix=".job-", suffix=".tmp")
            with os.fdopen(descriptor, "w", encoding="utf-8") as job:
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


def shards_folder(work: str) -> str:
    """Where a job's shards and their index are (written by :class:`sobol_tf.io.MapWriter`)."""
    return os.path.join(work, SHARDS_FOLDER)


def finished_names(work: str) -> Dict[str, str]:
    """{file name: shard path} of the maps finished in the shards of ``work`` (names
    read back by :func:`sobol_tf.io.shards.finished_names`; shards hold the images'
    paths, keyed here by file name as maps.npz is)."""

    finished: Dict[str, str] = {}
    for path, shard in finished_paths(shards_folder(work)).items():
        finished.setdefault(os.path.basename(path), shard)
    return finished


def assemble_maps(path: str, names: Sequence[str], work: str) -> int:
    """Write maps.npz (as :func:`save_maps`) from the shards of ``work``: the maps of
    ``names`` that are finished, in that order, reading one shard at a time.

    Returns:
        the number of maps written.
    """
    where = finished_names(work)
    names = [name for name in names if name in where]
    by_shard: Dict[str, List[str]] = {}
    for name in names:
        by_shard.setdefault(where[name], []).append(name)
    rows: Dict[str, Dict[str, int]] = {}
    targets: Dict[str, int] = {}
    for shard, held in by_shard.items():
        with np.load(shard, allow_pickle=False) as archive:
            row: Dict[str, int] = {}
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


def worker_of(environ: Mapping[str, str]) -> Tuple[int, int]:
    """(index, number of workers) of this process from ``TF_CONFIG``, TensorFlow's
    convention: ``{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}``;
    a ``chief`` counts as worker 0 (before the ``worker`` list). (0, 1) without TF_CONFIG.
    Only the number of addresses is used: the workers share the output folder.

    Raises:
        UsageProblem: TF_CONFIG is not such a JSON object.
    """
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0, 1
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        chiefs, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
        kind, index = task.get("type"), task.get("index", 0)
    except (ValueError, AttributeError, TypeError) as exc:
        raise UsageProblem(f"TF_CONFIG is not a JSON object with 'cluster' and 'task': "
                           f"{exc}") from None
    members = {"chief": chiefs, "worker": workers}
    if kind not in members:
        raise UsageProblem(f"TF_CONFIG task type {kind!r}: 'explain' runs as a 'worker' "
                           "(or 'chief') of a cluster with a 'worker' list")
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(members[kind]):
        raise UsageProblem(f"TF_CONFIG task index {index!r}: the cluster has "
                           f"{len(members[kind])} {kind}(s), so use 0 to "
                           f"{len(members[kind]) - 1}")
    return (index if kind == "chief" else len(chiefs) + index), len(chiefs) + len(workers)


def file_digest(path: str) -> str:
    """sha256 of a file (the model: maps of another model are not resumed)."""
    import hashlib  # noqa: PLC0415 (standard library, only for the model's digest)

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """What the maps depend on, recorded in DIR/.sobol-tf/job.json to resume safely
    (not ``--devices``, ``--batch-size`` nor ``--shard-size``: the maps do not depend on
    them beyond float error, so a rerun may change them)."""
    return {"model_sha256": file_digest(args.model), "target": args.target,
            "grid_size": args.grid_size, "nb_design": args.nb_design,
            "sampler": args.sampler, "estimator": args.estimator,
            "perturbation": args.perturbation, "seed": args.seed, "scale": args.scale,
            # only when set, so that the job.json of earlier runs still matches
            **({"refine": True} if getattr(args, "refine", False) else {})}
