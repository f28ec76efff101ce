"""explain_dataset: the same maps as explain, batch by batch, in constant memory, with
reading overlapping the model; image files with named errors; maps written as they come."""
import gc
import re
import time
import tracemalloc
import weakref

import numpy as np
import pytest
from tests.conftest import tiny_convnet

import tensorflow as tf
from sobol_tf.attributions import Occlusion, Saliency, SobolAttributionMethod
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.streaming import (ExplainedBatch, MapWriter, explain_dataset, image_files,
                                image_files_dataset, read_maps, write_maps)

N = 10
RNG = np.random.default_rng(0)
X = RNG.random((N, 8, 8, 3), dtype=np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, N)]


@pytest.fixture(scope="module")
def model():
    return tiny_convnet()


def build(name, model):
    if name == "sobol":
        return SobolAttributionMethod(model, grid_size=4, nb_design=8, seed=0, batch_size=64)
    if name == "occlusion":
        return Occlusion(model, patch_size=4, patch_stride=2, batch_size=16)
    return Saliency(model, batch_size=4)


def collect(stream):
    batches = list(stream)
    assert all(isinstance(b, ExplainedBatch) for b in batches)
    return batches, np.concatenate([b.maps for b in batches])


def generator(batch=3):
    for start in range(0, N, batch):
        yield X[start:start + batch], Y[start:start + batch]


@pytest.mark.parametrize("source, method", [
    ("unbatched", "sobol"), ("batched", "occlusion"), ("array", "saliency"),
    ("generator", "sobol"), ("generator", "saliency")])
def test_maps_equal_explain_on_the_whole_array(model, source, method):
    for explainer in [build(method, model)]:
        expected = explainer.explain(X, Y).numpy()
        if source == "unbatched":
            stream = explain_dataset(explainer, tf.data.Dataset.from_tensor_slices((X, Y)),
                                     batch_size=4)
        elif source == "batched":
            stream = explain_dataset(explainer,
                                     tf.data.Dataset.from_tensor_slices((X, Y)).batch(3))
        elif source == "array":
            stream = explainer.explain_dataset(X, Y, batch_size=4)
        else:
            stream = explain_dataset(explainer, generator())
        batches, maps = collect(stream)
        sizes = {"unbatched": 4, "array": 4}.get(source, 3)
        assert [b.stop - b.start for b in batches[:-1]] == [sizes] * (len(batches) - 1)
        np.testing.assert_array_equal(np.concatenate([b.index for b in batches]), np.arange(N))
        np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6,
                                   err_msg=type(explainer).__name__)
        np.testing.assert_array_equal(np.concatenate([b.targets for b in batches]), Y)


def test_targets_in_the_dataset_or_as_argument_or_predicted(model):
    explainer = Occlusion(model, patch_size=4, patch_stride=4)
    ids = Y.argmax(1)
    _, in_data = collect(explain_dataset(explainer, tf.data.Dataset.from_tensor_slices((X, ids))))
    _, argument = collect(explain_dataset(explainer, tf.data.Dataset.from_tensor_slices(X),
                                          ids, batch_size=3))
    np.testing.assert_allclose(in_data, argument, rtol=1e-6)
    np.testing.assert_allclose(in_data, explainer.explain(X, Y).numpy(), rtol=1e-5)
    # no targets: the predicted class, as explain
    _, predicted = collect(explain_dataset(explainer, X, batch_size=3))
    np.testing.assert_allclose(predicted, explainer.explain(X).numpy(), rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match="carries its targets"):
        list(explain_dataset(explainer, tf.data.Dataset.from_tensor_slices((X, ids)), ids))
    with pytest.raises(InvalidArgumentError, match="targets has 9 rows"):
        list(explain_dataset(explainer, X, ids[:9], batch_size=5))
    with pytest.raises(InvalidArgumentError, match="stream had 10 elements"):
        list(explain_dataset(explainer, X, np.concatenate([ids, ids]), batch_size=5))


def test_past_batches_are_not_kept(model):
    """Neither the maps yielded nor the input batches read survive their step, and the
    traced memory of a long stream stays within a few batches (it would grow by
    16 MB if the 300 batches of inputs were kept, 5 MB if their maps were)."""
    explainer = Saliency(tiny_convnet((16, 16, 3)), batch_size=64)
    size, steps = 16, 300

    def batches(refs):
        for _ in range(steps):
            x = np.full((size, 16, 16, 3), 0.5, np.float32)
            refs.append(weakref.ref(x))
            yield x

    input_refs, map_refs = [], []
    stream = explain_dataset(explainer, batches(input_refs), np.zeros(size * steps, int))
    for number, batch in enumerate(stream):
        map_refs.append(weakref.ref(batch.maps))
        if number == 5:
            gc.collect()
            tracemalloc.start()
        del batch
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    gc.collect()
    assert sum(r() is not None for r in map_refs) == 0
    assert sum(r() is not None for r in input_refs) == 0
    one_batch = size * 16 * 16 * 3 * 4
    assert peak < 32 * one_batch, (peak, one_batch)


@pytest.mark.slow  # ~5 s here (two streams of 6 batches of sleeps)
def test_reading_overlaps_the_model():
    """A dataset whose map sleeps 0.15 s per batch and a model that sleeps 0.05 s per call
    (3 calls per batch: 0.15 s): the stream takes about the larger of the two, not
    their sum (measured to the last batch)."""
    model_pause, read_pause, nb_batches = 0.05, 0.15, 6

    def sleeping(pause):
        return lambda v: (time.sleep(pause), v)[1]

    def slow_model(x):
        out = tf.ensure_shape(tf.py_function(sleeping(model_pause), [x], tf.float32), x.shape)
        return tf.stack([tf.reduce_mean(out, [1, 2, 3]), -tf.reduce_mean(out, [1, 2, 3])], -1)

    def slow_read(x):
        out = tf.py_function(sleeping(read_pause), [x], tf.float32)
        return tf.ensure_shape(out, (None, 4, 4, 1))

    x = np.ones((nb_batches * 2, 4, 4, 1), np.float32)
    ids = np.zeros(len(x), int)
    # 3 model calls per batch of 2 inputs (the 8 occluded copies fill one forward pass)
    explainer = Occlusion(slow_model, patch_size=2, patch_stride=2, batch_size=10)
    explainer.explain(x[:2], ids[:2])  # trace the steps
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(2).map(slow_read)
    elapsed = {}
    for prefetch in (0, 2):
        stream = explain_dataset(explainer, dataset, ids, prefetch=prefetch)
        begin = time.perf_counter()
        for _ in range(nb_batches):
            next(stream)
        elapsed[prefetch] = time.perf_counter() - begin
        stream.close()
    assert elapsed[0] > nb_batches * 2 * read_pause * 0.95, elapsed
    assert elapsed[2] < 0.8 * elapsed[0], elapsed


def test_write_maps_round_trip(model, tmp_path):
    explainer = Occlusion(model, patch_size=4, patch_stride=4)
    writer = write_maps(explain_dataset(explainer, X, Y, batch_size=4), tmp_path / "out")
    assert writer.count == N
    back = read_maps(tmp_path / "out")
    np.testing.assert_allclose(back["maps"], explainer.explain(X, Y).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(back["index"], np.arange(N))
    np.testing.assert_array_equal(back["targets"], Y)
    # shards are named by their first position and a random part (appending writers,
    # resumed jobs and workers never replace each other's shards)
    listed = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert listed[0] == "index.jsonl" and len(listed) == 4
    assert [re.fullmatch(r"shard-(\d{8})-[0-9a-f]{8}\.npz", n)[1] for n in listed[1:]] == [
        "00000000", "00000004", "00000008"]
    # a line cut by a crash is ignored
    with open(tmp_path / "out" / "index.jsonl", "a") as file:
        file.write('{"number": 3, "sta')
    assert len(read_maps(tmp_path / "out")["maps"]) == N


def _write_png(path, value, size=(6, 5)):
    image = tf.cast(tf.fill((*size, 3), value), tf.uint8)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def test_image_files_named_errors_skip_not_kill(model, tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    _write_png(tmp_path / "a.png", 255)
    _write_png(tmp_path / "sub" / "b.PNG", 0)
    (tmp_path / "sub" / "broken.png").write_bytes(b"\x89PNG not really")
    _write_png(tmp_path / "sub" / "deeper" / "c.png", 51)
    (tmp_path / "notes.txt").write_text("not an image")
    files = image_files(tmp_path)
    assert [f[len(str(tmp_path)) + 1:] for f in files] == [
        "a.png", "sub/b.PNG", "sub/broken.png", "sub/deeper/c.png"]
    dataset = image_files_dataset(tmp_path, (8, 8))
    explainer = Occlusion(model, patch_size=4, patch_stride=4)
    with MapWriter(tmp_path / "out") as writer:
        for batch in explain_dataset(explainer, dataset, np.arange(4) % 3, batch_size=2):
            writer.write(batch)
    assert writer.count == 3
    [(position, name, message)] = writer.errors
    assert (position, name) == (2, files[2]) and message
    back = read_maps(tmp_path / "out")
    assert list(back["names"]) == [files[0], files[1], files[3]]
    np.testing.assert_array_equal(back["index"], [0, 1, 3])
    images = np.stack([np.full((8, 8, 3), v, np.float32) for v in (1.0, 0.0, 0.2)])
    np.testing.assert_allclose(back["maps"], explainer.explain(images, [0, 1, 0]).numpy(),
                               rtol=1e-4, atol=1e-6)
    # a file that vanishes after the listing is reported too
    (tmp_path / "sub" / "deeper" / "c.png").unlink()
    batches = list(explain_dataset(explainer, dataset, np.zeros(4, int)))
    assert [e[1] for e in batches[0].errors] == [files[2], files[3]]


def test_bad_input(model, tmp_path):
    explainer = Occlusion(model)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        explain_dataset(explainer, X, batch_size=0)
    with pytest.raises(InvalidTypeError, match="prefetch"):
        explain_dataset(explainer, X, prefetch=1.5)
    with pytest.raises(InvalidTypeError, match="data must be"):
        explain_dataset(explainer, "images/")
    with pytest.raises(InvalidArgumentError, match="infinite"):
        explain_dataset(explainer, tf.data.Dataset.from_tensor_slices(X).repeat())
    with pytest.raises(InvalidArgumentError, match="keys"):
        explain_dataset(explainer, tf.data.Dataset.from_tensor_slices({"image": X}))
    with pytest.raises(InvalidArgumentError, match="neither a file nor a folder"):
        image_files_dataset(tmp_path / "missing", 8)
    with pytest.raises(InvalidArgumentError, match="no image file"):
        image_files(tmp_path)
    with pytest.raises(InvalidArgumentError, match="size"):
        image_files_dataset(tmp_path, (8, 0))

    def failing():
        yield X[:2]
        raise KeyError("my reader broke")
    stream = explain_dataset(explainer, failing())
    assert len(next(stream).maps) == 2
    with pytest.raises(KeyError, match="my reader broke"):
        next(stream)
    with pytest.raises(InvalidArgumentError, match="NaN"):  # explain's own checks
        list(explain_dataset(explainer, np.full((2, 8, 8, 3), np.nan, np.float32)))
    with pytest.raises(InvalidArgumentError, match="no index"):
        read_maps(tmp_path)


def test_api_and_cli_read_a_file_alike_and_list_alike(tmp_path):
    """One decoder: the dataset's input equals the CLI's (load_img semantics: luma not
    rounded, alpha dropped); one listing: hidden files and an excluded folder left out."""
    from sobol_tf.cli import files as cli_files
    rgba = RNG.integers(0, 256, (5, 7, 4)).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "a.png"), tf.io.encode_png(rgba))
    _write_png(tmp_path / ".hidden.png", 9)
    _write_png(tmp_path / "out" / "x.png", 9)
    (tmp_path / "out").mkdir(exist_ok=True)
    assert image_files(tmp_path, exclude=tmp_path / "out") == [str(tmp_path / "a.png")]
    for channels, expected in [(1, rgba[..., :3] @ np.array([0.299, 0.587, 0.114])),
                               (3, rgba[..., :3])]:
        [element] = list(image_files_dataset(tmp_path / "a.png", None, channels=channels))
        np.testing.assert_allclose(element["inputs"].numpy().reshape(5, 7, -1),
                                   expected.reshape(5, 7, -1) / 255, atol=1e-6)
        spec = type("Spec", (), dict(channels=channels, height=4, width=4, squeeze=False))
        [resized] = list(image_files_dataset(tmp_path / "a.png", 4, channels=channels))
        np.testing.assert_array_equal(resized["inputs"].numpy(), cli_files.load_image(
            str(tmp_path / "a.png"), spec, 1.0)[1])


def test_targets_function_and_on_error_skip(model, tmp_path):
    explainer = Occlusion(model, patch_size=4, patch_stride=4)
    bad = X.copy()
    bad[3] = np.nan                                   # explain refuses NaN inputs
    ids = Y.argmax(1)
    seen = []

    def chosen(inputs):
        seen.append(len(inputs))
        return ids[:len(inputs)] * 0 + 1
    batches = list(explain_dataset(explainer, bad, chosen, batch_size=5, on_error="skip"))
    assert seen == [5, 1, 1, 1, 1, 1, 5]              # batch, then each input alone
    [(position, name, message)] = batches[0].errors
    assert (position, name) == (3, None) and message.startswith("cannot explain: ")
    np.testing.assert_array_equal(batches[0].index, [0, 1, 2, 4])
    np.testing.assert_array_equal(np.concatenate([b.targets for b in batches]), [1] * 9)
    keep = np.arange(N) != 3
    np.testing.assert_allclose(np.concatenate([b.maps for b in batches]),
                               explainer.explain(X[keep], np.ones(9, int)).numpy(), rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match="NaN"):
        list(explain_dataset(explainer, bad, chosen, batch_size=5))
    with pytest.raises(InvalidArgumentError, match="on_error"):
        explain_dataset(explainer, X, on_error="ignore")
    # two writers on one folder (a resumed job, a worker) keep each other's shards
    for part in (slice(0, 4), slice(4, N)):
        write_maps(explain_dataset(explainer, X[part], ids[part], batch_size=4),
                   tmp_path / "maps")
    assert len(read_maps(tmp_path / "maps")["maps"]) == N
