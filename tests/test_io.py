"""sobol_tf.io without TensorFlow: the shard format and maps.npz round-trip with known
arrays, in a process where TensorFlow, Keras and matplotlib cannot be imported."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROUND_TRIP = textwrap.dedent("""
    import collections, json, os, sys
    for name in ("tensorflow", "keras", "matplotlib"):
        sys.modules[name] = None  # any import of them raises ImportError
    import numpy as np
    from sobol_tf.io import (MapWriter, finished_names, load_maps, read_maps, save_maps,
                             shard_files)

    folder = sys.argv[1]
    Batch = collections.namedtuple("Batch", "number start stop index maps targets names errors")
    maps = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    with MapWriter(folder) as writer:
        writer.write(Batch(0, 0, 3, np.array([0, 2]), maps[:2], np.array([1, 0]),
                           ("a.png", "c.png"), ((1, "b.png", "broken"),)))
        writer.write(Batch(1, 3, 5, np.array([3, 4]), maps[2:4], np.array([2, 2]),
                           ("d.png", "e.png"), ()))
        writer.write(Batch(2, 5, 6, np.array([], np.int64), None, None, None,
                           ((5, "f.png", "gone"),)))
    with open(os.path.join(folder, "index.jsonl"), "a") as index:
        index.write('{"number": 3, "start": 6, "sto')          # a line cut by a crash
    back = read_maps(folder)
    assert np.array_equal(back["maps"], maps[:4])
    assert back["index"].tolist() == [0, 2, 3, 4]
    assert back["names"].tolist() == ["a.png", "c.png", "d.png", "e.png"]
    assert back["targets"].tolist() == [1, 0, 2, 2]
    assert back["errors"] == [(1, "b.png", "broken"), (5, "f.png", "gone")]
    assert len(shard_files(folder)) == 2 and writer.count == 4
    assert sorted(finished_names(folder)) == ["a.png", "c.png", "d.png", "e.png"]
    path = os.path.join(folder, "maps.npz")
    save_maps(path, ["x.png", "y.png"], maps[:2], [3, 4])
    loaded, targets = load_maps(path)
    assert sorted(loaded) == ["x.png", "y.png"] and targets == {"x.png": 3, "y.png": 4}
    assert np.array_equal(loaded["y.png"], maps[1])
    print("ok", "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
""")


def test_shards_and_maps_file_round_trip_without_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(tmp_path / "maps")],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "False"]
