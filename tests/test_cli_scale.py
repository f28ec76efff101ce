"""``sobol-tf explain`` at scale: folders, shards and resume, workers (TF_CONFIG), locks,
faults. Tiny saved Keras model and 8x8 PNGs."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from sobol_tf import cli
from sobol_tf.cli import files, jobs
from sobol_tf.io import finished_names
from sobol_tf.attributions import SobolAttributionMethod
from tests.conftest import tiny_convnet

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--grid-size", "2", "--nb-design", "4", "--seed", "0", "--quiet", "--no-overlays"]


def write_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(pixels, np.uint8)))
    return path


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A saved 8x8 RGB model and a folder tree of 7 PNGs (and files to leave out)."""
    folder = tmp_path_factory.mktemp("scale")
    model = tiny_convnet((8, 8, 3), nb_classes=3)
    model.save(folder / "model.keras")
    rng = np.random.default_rng(2)
    images = folder / "images"
    names = ["b.png", "a.PNG", "sub/c.png", "sub/deeper/d.png", "sub/e.png", "z/f.png",
             "g.png"]
    pixels = {}
    for name in names:
        pixels[pathlib.Path(name).name] = rng.integers(0, 256, (8, 8, 3))
        write_png(images / name, pixels[pathlib.Path(name).name])
    (images / "notes.txt").write_text("not an image")
    write_png(images / ".hidden" / "h.png", pixels["b.png"])
    write_png(images / ".dot.png", pixels["b.png"])
    order = ["a.PNG", "b.png", "g.png", "c.png", "d.png", "e.png", "f.png"]
    inputs = np.stack([pixels[n] for n in order]).astype(np.float32) / 255
    predicted = model.predict(inputs, verbose=0).argmax(axis=1)
    direct = SobolAttributionMethod(model, grid_size=2, nb_design=4, seed=0)(inputs, predicted)
    return {"folder": folder, "model": str(folder / "model.keras"), "images": images,
            "order": order, "direct": dict(zip(order, direct.numpy()[..., 0])),
            "predicted": dict(zip(order, predicted))}


def run_main(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def count_explained(monkeypatch):
    """Record the number of images of each explain call."""
    calls = []
    explain = SobolAttributionMethod.explain

    def counted(self, inputs, targets=None):
        calls.append(len(inputs))
        return explain(self, inputs, targets)

    monkeypatch.setattr(SobolAttributionMethod, "explain", counted)
    return calls


def assert_maps_equal_direct(out, job, names=None):
    saved = np.load(out / "maps.npz")
    names = job["order"] if names is None else names
    assert list(saved["files"]) == names
    assert list(saved["targets"]) == [job["predicted"][n] for n in names]
    for name in names:
        np.testing.assert_allclose(saved[name], job["direct"][name], atol=1e-5)


def test_list_images_recursive_sorted_images_only(job, tmp_path):
    images = job["images"]
    inside_out = images / "out"
    write_png(inside_out / "x_sobol.png", np.zeros((8, 8, 3)))
    try:
        found = files.list_images([str(images), str(images / "b.png")], exclude=inside_out)
    finally:
        (inside_out / "x_sobol.png").unlink()
        inside_out.rmdir()
    assert [os.path.relpath(p, images) for p in found] == [
        "a.PNG", "b.png", "g.png", "sub/c.png", "sub/deeper/d.png", "sub/e.png", "z/f.png",
        "b.png"]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(files.FileProblem, match="a folder without image files"):
        files.list_images([str(tmp_path / "empty")])


def test_a_folder_is_explained_in_shards_and_a_rerun_recomputes_nothing(job, tmp_path,
                                                                         capsys, monkeypatch):
    out = tmp_path / "out"
    calls = count_explained(monkeypatch)
    argv = ["explain", job["model"], str(job["images"]), "--out", str(out), "--shard-size",
            "3", *TINY]
    assert run_main(argv, capsys) == (0, "", "")
    assert calls == [3, 3, 1]                    # streamed 3 at a time
    assert_maps_equal_direct(out, job)
    shards = sorted((out / ".sobol-tf" / "shards").glob("shard-*.npz"))
    assert len(shards) == 3
    stamps = [s.stat().st_mtime_ns for s in shards]

    calls.clear()
    (out / "maps.npz").unlink()
    assert run_main(argv, capsys) == (0, "", "")
    assert calls == []                           # nothing recomputed
    assert [s.stat().st_mtime_ns for s in sorted(shards)] == stamps
    assert_maps_equal_direct(out, job)

    # a new image in the folder: only it is explained; progress says what is skipped
    extra = write_png(job["images"] / "sub" / "new.png", np.full((8, 8, 3), 90))
    try:
        status, stdout, stderr = run_main([a for a in argv if a != "--quiet"], capsys)
    finally:
        extra.unlink()
    assert (status, stderr, calls) == (0, "", [1])
    assert "1 image(s) to explain, 7 already done" in stdout
    assert "1/1 images" in stdout and "images/s" in stdout and "left" in stdout
    assert list(np.load(out / "maps.npz")["files"]) == job["order"][:6] + ["new.png"] + \
        job["order"][6:]


def test_a_rerun_with_other_options_is_refused_unless_overwrite(job, tmp_path, capsys,
                                                                monkeypatch):
    out = tmp_path / "out"
    image = str(job["images"] / "b.png")
    assert run_main(["explain", job["model"], image, "--out", str(out), *TINY], capsys)[0] == 0
    other = [a if a != "4" else "8" for a in TINY]        # --nb-design 8
    calls = count_explained(monkeypatch)
    status, _, stderr = run_main(["explain", job["model"], image, "--out", str(out), *other],
                                 capsys)
    assert (status, calls) == (2, [])
    assert stderr.strip().splitlines() == [
        f"sobol-tf: error: {out}: holds maps made with other settings: nb_design 4 (now 8); "
        "rerun with the same ones to resume, choose another --out, or add --overwrite to "
        "discard them"]
    status, _, stderr = run_main(["explain", job["model"], image, "--out", str(out), *other,
                                  "--overwrite"], capsys)
    assert (status, stderr, calls) == (0, "", [1])
    model = tf.keras.models.load_model(job["model"])
    pixels = tf.io.decode_png(tf.io.read_file(image)).numpy()[None].astype(np.float32) / 255
    expected = SobolAttributionMethod(model, grid_size=2, nb_design=8, seed=0)(
        pixels, np.array([job["predicted"]["b.png"]]))
    np.testing.assert_allclose(np.load(out / "maps.npz")["b.png"], expected[0, ..., 0],
                               atol=1e-5)
    assert json.loads((out / ".sobol-tf" / "job.json").read_text())["nb_design"] == 8


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_into_the_same_folder_is_refused_and_a_stale_lock_taken(
        job, tmp_path, capsys, monkeypatch):
    import socket
    out = tmp_path / "out"
    lock = out / ".sobol-tf" / "lock-0"
    lock.parent.mkdir(parents=True)
    parent = os.getppid()
    holder = subprocess.Popen(                             # a live run holds the lock
        [sys.executable, "-c", f"import fcntl, os, sys, time\n"
         f"fd = os.open({str(lock)!r}, os.O_CREAT | os.O_RDWR)\n"
         f"fcntl.flock(fd, fcntl.LOCK_EX)\n"
         f"os.write(fd, b'{parent} {socket.gethostname()}\\n')\n"
         f"print('held', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        calls = count_explained(monkeypatch)
        image = str(job["images"] / "b.png")
        status, _, stderr = run_main(["explain", job["model"], image, "--out", str(out),
                                      *TINY], capsys)
    finally:
        holder.kill()
        holder.wait()
    assert (status, calls) == (2, [])
    assert stderr == (f"sobol-tf: error: {lock}: locked by process {parent} on "
                      f"{socket.gethostname()}: another run writes to this output folder; "
                      "wait for it to end or choose another --out (remove the lock file if "
                      "no run is going)\n")
    lock.write_text(f"{dead_pid()} {socket.gethostname()}\n")  # killed: taken over
    assert run_main(["explain", job["model"], image, "--out", str(out), *TINY],
                    capsys) == (0, "", "")
    assert calls == [1] and not lock.exists()             # released at the end


TAKE_LOCK = """
import sys
from sobol_tf.cli import files, jobs
try:
    jobs.acquire_lock(sys.argv[1])
except files.FileProblem:
    print("refused", flush=True)
else:
    print("taken", flush=True)
    sys.stdin.read()  # held until every run has answered
    jobs.release_lock(sys.argv[1])
"""


@pytest.mark.slow
def test_several_runs_taking_over_one_stale_lock_at_once_leave_one_holder(tmp_path):
    """A killed run's lock, then 4 processes started together to take it: exactly one
    gets it (with the lock of pid-stamped files, two could both remove and recreate)."""
    import socket
    lock = tmp_path / "lock-0"
    lock.write_text(f"{dead_pid()} {socket.gethostname()}\n")
    runs = [subprocess.Popen([sys.executable, "-c", TAKE_LOCK, str(lock)], cwd=ROOT,
                             env=python_env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
            for _ in range(4)]
    answers = sorted(run.stdout.readline().strip() for run in runs)
    for run in runs:
        run.communicate(timeout=60)
    assert answers == ["refused", "refused", "refused", "taken"]
    assert not lock.exists()                                # released by its holder
    jobs.acquire_lock(str(lock))                            # and free again
    assert lock.read_text().split()[0] == str(os.getpid())
    jobs.release_lock(str(lock))


def test_corrupt_and_vanished_files_are_reported_and_skipped(job, tmp_path, capsys,
                                                             monkeypatch):
    folder = tmp_path / "images"
    for name in ("a.PNG", "b.png", "g.png"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes((job["images"] / name).read_bytes())
    (folder / "c_broken.png").write_bytes(b"\x89PNG damaged")
    listed = files.list_images

    def vanishing(paths, exclude=None):                    # g.png is deleted mid-stream
        found = listed(paths, exclude)
        (folder / "g.png").unlink()
        return found

    monkeypatch.setattr(files, "list_images", vanishing)
    out = tmp_path / "out"
    status, _, stderr = run_main(["explain", job["model"], str(folder), "--out", str(out),
                                  "--shard-size", "2", *TINY], capsys)
    assert status == 1
    lines = stderr.strip().splitlines()
    assert lines[0] == f"sobol-tf: error: {folder / 'c_broken.png'}: cannot decode the " \
                       "image: not a PNG, JPEG, GIF or BMP file, or a damaged one"
    assert lines[1].startswith(f"sobol-tf: error: {folder / 'g.png'}: cannot read the image")
    assert len(lines) == 2
    assert_maps_equal_direct(out, job, ["a.PNG", "b.png"])


def test_too_little_disk_space_is_reported_before_computing(job, tmp_path, capsys,
                                                            monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        10**9, 10**9 - 1000, 1000))
    calls = count_explained(monkeypatch)
    status, stdout, stderr = run_main(["explain", job["model"], str(job["images"]), "--out",
                                       str(tmp_path / "out"), *TINY], capsys)
    assert (status, stdout, calls) == (2, "", [])
    assert stderr == (f"sobol-tf: error: {tmp_path / 'out'}: too little free disk space: "
                      "the maps need about 0.0 MB and 0.0 MB are free\n")


@pytest.mark.parametrize("config, message", [
    ("{not json", "TF_CONFIG is not a JSON object"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "ps", "index": 0}}',
     "TF_CONFIG task type 'ps'"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG task index 2: the cluster has 2 worker(s), so use 0 to 1"),
])
def test_bad_tf_config_exits_2(job, tmp_path, capsys, monkeypatch, config, message):
    monkeypatch.setenv("TF_CONFIG", config)
    status, _, stderr = run_main(["explain", job["model"], str(job["images"]), "--out",
                                  str(tmp_path / "out"), *TINY], capsys)
    assert status == 2 and message in stderr and len(stderr.splitlines()) == 1, stderr


def test_worker_of_reads_tensorflows_convention():
    cluster = {"worker": ["h1:1", "h2:1", "h3:1"]}
    assert cli.worker_of({}) == (0, 1)
    assert cli.worker_of({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": 2}})}) == (2, 3)
    assert cli.worker_of({"TF_CONFIG": json.dumps(
        {"cluster": dict(cluster, chief=["c:1"]), "task": {"type": "worker", "index": 0}})}) \
        == (1, 4)


def tf_config(index, count):
    return json.dumps({"cluster": {"worker": [f"localhost:{2000 + k}" for k in range(count)]},
                       "task": {"type": "worker", "index": index}})


def test_two_workers_share_the_files_and_the_last_assembles(job, tmp_path, capsys,
                                                            monkeypatch):
    out = tmp_path / "out"
    argv = ["explain", job["model"], str(job["images"]), "--out", str(out), *TINY]
    explained = []
    explain = SobolAttributionMethod.explain

    def recorded(self, inputs, targets=None):
        explained.append(np.asarray(inputs))
        return explain(self, inputs, targets)

    monkeypatch.setattr(SobolAttributionMethod, "explain", recorded)
    monkeypatch.setenv("TF_CONFIG", tf_config(1, 2))
    status, stdout, _ = run_main([a for a in argv if a != "--quiet"], capsys)
    assert status == 0 and not (out / "maps.npz").exists()   # worker 0 has not finished
    assert "the last worker to finish writes" in stdout
    first = np.concatenate(explained)
    assert len(first) == 3                                    # files 1, 3, 5 of 7
    monkeypatch.setenv("TF_CONFIG", tf_config(0, 2))
    assert run_main(argv, capsys) == (0, "", "")
    assert len(np.concatenate(explained)) == 7                # no image twice
    assert_maps_equal_direct(out, job)                        # = a single-process run


def python_env():
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.mark.slow
def test_two_worker_processes_on_localhost(job, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sobol_tf", "explain", job["model"], str(job["images"]),
               "--out", str(out), "--shard-size", "1", *TINY]
    workers = [subprocess.Popen(command, cwd=ROOT, env=dict(python_env(),
                                                            TF_CONFIG=tf_config(k, 2)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(2)]
    results = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], results
    shards = [np.load(s)["names"] for s in (out / ".sobol-tf" / "shards").glob("*.npz")]
    names = [os.path.basename(str(n)) for shard in shards for n in shard]
    assert sorted(names) == sorted(job["order"])              # each image once
    assert_maps_equal_direct(out, job)


@pytest.mark.slow
def test_a_killed_run_resumes_without_recomputing(job, tmp_path):
    """SIGKILL once the index names a first shard; the rerun keeps the finished shards
    (same files, same mtimes), explains only the rest, and maps equal the direct ones.

    A shard is renamed into place before its index line is appended, so the kill can
    land between the two: such an orphan shard is not finished (its image is explained
    again), which is why "finished" is read from the index, not from the files."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sobol_tf", "explain", job["model"], str(job["images"]),
               "--out", str(out), "--shard-size", "1",
               *[a for a in TINY if a != "--quiet"]]
    run = subprocess.Popen(command, cwd=ROOT, env=python_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    shards = out / ".sobol-tf" / "shards"
    deadline = time.monotonic() + 120
    while not (shards.is_dir() and finished_names(shards)):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = finished_names(shards)
    before = {path: os.stat(path).st_mtime_ns for path in set(done.values())}
    assert 1 <= len(done) < 7 and not (out / "maps.npz").exists()
    assert (out / ".sobol-tf" / "lock-0").exists()           # stale: taken over
    result = subprocess.run(command, cwd=ROOT, env=python_env(), capture_output=True,
                            text=True, timeout=180)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert f"{7 - len(done)} image(s) to explain, {len(done)} already done" \
        in result.stdout
    assert {path: os.stat(path).st_mtime_ns for path in before} == before
    assert len(finished_names(shards)) == 7
    assert_maps_equal_direct(out, job)


# -- --devices: a MirroredStrategy over 2 logical CPU devices, in a child process -------
# (logical devices must be set up before TensorFlow initialises, long done in this
# process; the child sets them up, then runs cli.main in-process, and prints JSON)
DEVICES_CHILD = r"""
import contextlib, io, json, os, shutil, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from sobol_tf import cli
from sobol_tf.cli import files, jobs
from sobol_tf.attributions import SobolAttributionMethod

model, images, base = sys.argv[1:4]
tiny = sys.argv[4:]
result = {}
mirrored, explained = [], []
load_model, explain = files.load_model, SobolAttributionMethod.explain

def recording_load(path):  # are the weights mirrored on the devices?
    loaded, spec = load_model(path)
    mirrored.append(all(isinstance(w.value, tf.distribute.DistributedValues)
                        for w in loaded.weights))
    return loaded, spec

def counted(self, inputs, targets=None):
    explained.append(len(inputs))
    return explain(self, inputs, targets)

files.load_model, SobolAttributionMethod.explain = recording_load, counted

def run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main(["explain", model, *argv, *tiny])
    return status, err.getvalue()

# 1. all 7 images over 2 devices (the saved Keras model, mirrored weights)
result["two"] = run(images, "--out", os.path.join(base, "two"), "--devices", "2")
result["mirrored"] = list(mirrored)
# 2. resume with other devices: 3 images on 1 device, then all 7 with --devices all
#    (the forward passes traced on each device are recorded by a wrapped model)
part = os.path.join(base, "part")
for name in ("a.PNG", "b.png", "g.png"):
    os.makedirs(part, exist_ok=True)
    shutil.copy(os.path.join(images, name), part)
explained.clear()
result["first"] = run(part, "--out", os.path.join(base, "resumed"))
result["first_explained"] = sum(explained)
seen = set()
from sobol_tf.cli import explain as cli_explain
with_channel_axis = cli_explain.with_channel_axis

def spying(loaded, spec):
    inner = with_channel_axis(loaded, spec)
    def spy(x):
        seen.add(x.device)
        return inner(x)
    return spy

cli_explain.with_channel_axis = spying
explained.clear()
result["resumed"] = run(images, "--out", os.path.join(base, "resumed"), "--devices", "all")
result["resumed_explained"] = sum(explained)
result["devices"] = sorted(seen)
# 3. more devices than found
result["three"] = run(images, "--out", os.path.join(base, "three"), "--devices", "3")
print("RESULT" + json.dumps(result))
"""


@pytest.fixture(scope="module")
def two_devices(job, tmp_path_factory):
    """What the child measured over 2 logical CPUs (see DEVICES_CHILD)."""
    base = tmp_path_factory.mktemp("devices")
    done = subprocess.run([sys.executable, "-c", DEVICES_CHILD, job["model"],
                           str(job["images"]), str(base), *TINY], cwd=ROOT,
                          env=dict(python_env(), CUDA_VISIBLE_DEVICES=""),
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return base, json.loads(lines[-1][len("RESULT"):])


@pytest.mark.slow
def test_devices_2_gives_the_maps_of_one_device(job, two_devices):
    base, result = two_devices
    assert result["two"] == [0, ""]
    assert result["mirrored"] == [True]          # loaded under the strategy's scope
    assert_maps_equal_direct(base / "two", job)  # = one device, to 1e-5


@pytest.mark.slow
def test_a_run_resumes_with_other_devices_on_both_devices(job, two_devices):
    base, result = two_devices
    assert result["first"] == [0, ""] and result["first_explained"] == 3
    assert result["resumed"] == [0, ""]
    assert result["resumed_explained"] == 4      # the 3 finished maps were kept
    assert [device[-5:] for device in result["devices"]] == ["CPU:0", "CPU:1"], \
        result["devices"]
    assert_maps_equal_direct(base / "resumed", job)


@pytest.mark.slow
def test_more_devices_than_found_exits_2_naming_them(two_devices):
    base, result = two_devices
    status, stderr = result["three"]
    assert status == 2 and len(stderr.splitlines()) == 1, stderr
    assert "--devices 3: this machine has 2 device(s) to use (CPU:0, CPU:1)" in stderr
    assert not (base / "three").exists()         # refused before anything is written


def test_devices_in_process_one_device_and_bad_values(job, tmp_path, capsys):
    """This process has one CPU device: --devices 2 exits 2 naming it; --devices all
    is one device (no strategy); 0 or a word is refused while parsing."""
    argv = ["explain", job["model"], str(job["images"]), "--out", str(tmp_path / "out"),
            *TINY]
    status, _, stderr = run_main(argv + ["--devices", "2"], capsys)
    assert status == 2 and "this machine has 1 device(s) to use (CPU:0)" in stderr, stderr
    assert cli.device_strategy("all") is None and cli.device_strategy(1) is None
    for value, message in (("0", "must be an integer >= 1 or 'all', got 0"),
                           ("two", "expected an integer >= 1 or 'all', got 'two'")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv + ["--devices", value])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
