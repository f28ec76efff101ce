"""The ``sobol-tf`` command line, on a tiny model and PNGs saved by the tests."""
import configparser
import importlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from sobol_tf import cli
from sobol_tf.attributions import SobolAttributionMethod
from sobol_tf.metrics import Deletion, Insertion, MuFidelity
from tests.conftest import tiny_convnet

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ["--grid-size", "4", "--nb-design", "16", "--seed", "0"]
SCORE = ["--steps", "8", "--mu-grid-size", "4", "--nb-samples", "32", "--seed", "3"]


def write_png(path, pixels):
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(pixels, np.uint8)))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved 16x16 RGB model, good and bad images; pixels kept to check against."""
    folder = tmp_path_factory.mktemp("cli")
    model = tiny_convnet((16, 16, 3), nb_classes=3)
    model.save(folder / "model.keras")
    rng = np.random.default_rng(0)
    pixels = {
        "exact": rng.integers(0, 256, (16, 16, 3)),      # the model's size: no resizing
        "large": rng.integers(0, 256, (20, 24, 3)),      # resized to 16x16
        "gray": rng.integers(0, 256, (16, 16, 1)),       # wrong number of channels
    }
    paths = {name: write_png(folder / f"{name}.png", p) for name, p in pixels.items()}
    paths["broken"] = str(folder / "broken.png")
    pathlib.Path(paths["broken"]).write_bytes(b"\x89PNG but not really")
    return {"folder": folder, "model": str(folder / "model.keras"), "paths": paths,
            "pixels": pixels, "keras_model": model}


def expected_inputs(pixels):
    """The documented preprocessing: [0, 1] floats, bilinear antialiased resize to 16x16."""
    image = np.asarray(pixels, np.float32) / 255.0
    if image.shape[:2] != (16, 16):
        image = tf.image.resize(image, (16, 16), method="bilinear", antialias=True).numpy()
    return image


def test_explain_in_a_subprocess_writes_maps_equal_to_the_explainer(files, tmp_path):
    out = tmp_path / "out"
    paths = files["paths"]
    command = [sys.executable, "-m", "sobol_tf", "explain", files["model"],
               paths["exact"], paths["broken"], paths["gray"], paths["large"],
               str(tmp_path / "missing.png"), "--out", str(out), *FAST]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("sobol-tf:")]
    assert len(errors) == 3, result.stderr
    assert "broken.png: cannot decode the image" in errors[0]
    assert "gray.png: the image has 1 channel(s) (grayscale) but the model expects 3" in errors[1]
    assert "missing.png: cannot read the image: No such file" in errors[2]
    assert "SobolAttributionMethod" in result.stdout          # the progress bar's title
    assert f"wrote {out / 'maps.npz'} (2 map(s))" in result.stdout

    # the maps are the explainer's on the preprocessed images, for the predicted class
    inputs = np.stack([expected_inputs(files["pixels"][n]) for n in ("exact", "large")])
    model = files["keras_model"]
    predicted = model.predict(inputs, verbose=0).argmax(axis=1)
    direct = SobolAttributionMethod(model, grid_size=4, nb_design=16, seed=0)(inputs, predicted)
    saved = np.load(out / "maps.npz")
    assert sorted(saved.files) == ["exact.png", "files", "large.png", "targets"]
    assert list(saved["files"]) == ["exact.png", "large.png"]
    np.testing.assert_array_equal(saved["targets"], predicted)
    for row, name in enumerate(saved["files"]):
        assert saved[name].shape == (16, 16) and saved[name].dtype == np.float32
        np.testing.assert_allclose(saved[name], direct[row, ..., 0], atol=1e-5)

    # one overlay per explained image: a 4 x 4 inch figure at 100 dpi, not blank
    assert sorted(p.name for p in out.iterdir()) == ["exact_sobol.png", "large_sobol.png",
                                                     "maps.npz"]
    for name in ("exact", "large"):
        overlay = tf.io.decode_png(tf.io.read_file(str(out / f"{name}_sobol.png"))).numpy()
        assert overlay.shape == (400, 400, 4)
        assert overlay[100:300, 100:300, :3].std() > 10

    # score reads them back: the metrics' per-image scores on the same inputs, as JSON
    command = [sys.executable, "-m", "sobol_tf", "score", files["model"], paths["exact"],
               paths["large"], "--maps", str(out / "maps.npz"), "--json", *SCORE]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    expected = direct_scores(model, inputs, direct, predicted)
    assert [row["file"] for row in report["images"]] == ["exact.png", "large.png"]
    assert [row["target"] for row in report["images"]] == list(predicted)
    for name in expected:
        np.testing.assert_allclose([row[name] for row in report["images"]], expected[name],
                                   atol=1e-6)
        np.testing.assert_allclose(report["mean"][name], np.mean(expected[name]), atol=1e-6)


def direct_scores(model, inputs, maps, targets):
    """Per-image scores of the library's metrics with the options of SCORE."""
    deletion = Deletion(model, inputs, targets, steps=8)
    insertion = Insertion(model, inputs, targets, steps=8)
    mufidelity = MuFidelity(model, inputs, targets, grid_size=4, nb_samples=32, seed=3)
    return {"deletion": deletion.curves(maps).areas, "insertion": insertion.curves(maps).areas,
            "mufidelity": mufidelity.detailed_evaluate(maps)}


def run_main(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_target_quiet_and_scale(files, tmp_path, capsys):
    """--target explains that class; --quiet prints nothing; --scale 255 feeds raw pixels."""
    out = tmp_path / "out"
    status, stdout, stderr = run_main(
        ["explain", files["model"], files["paths"]["exact"], "--out", str(out),
         "--target", "2", "--scale", "255", "--quiet", *FAST], capsys)
    assert (status, stdout, stderr) == (0, "", "")
    raw = np.asarray(files["pixels"]["exact"], np.float32)[None]
    direct = SobolAttributionMethod(files["keras_model"], grid_size=4, nb_design=16,
                                    seed=0)(raw, [2])
    saved = np.load(out / "maps.npz")
    np.testing.assert_array_equal(saved["targets"], [2])
    np.testing.assert_allclose(saved["exact.png"], direct[0, ..., 0], atol=1e-5)


@pytest.mark.parametrize("options, message", [
    (["--target", "3"], "--target 3 is out of range: the model has 3 outputs, so use 0 to 2"),
    (["--nb-design", "30"], "nb_design must be a power of two, got 30"),
    (["--grid-size", "32"], "--grid-size 32 exceeds the model's input size 16x16; use at"),
])
def test_bad_options_exit_2_with_one_line(files, tmp_path, capsys, options, message):
    argv = ["explain", files["model"], files["paths"]["exact"], "--out", str(tmp_path),
            "--quiet", *options]
    status, _, stderr = run_main(argv, capsys)
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith("sobol-tf: error: ") and message in lines[0]
    assert not (tmp_path / "maps.npz").exists()


def test_unknown_choice_is_an_argparse_error(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", files["model"], files["paths"]["exact"], "--out",
                  str(tmp_path), "--sampler", "sobolev"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sobolev'" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "no such model file"),
    (b"not a zip", "cannot load a Keras model"),
])
def test_missing_or_unreadable_model(files, tmp_path, capsys, content, message):
    model = tmp_path / "model.keras"
    if content is not None:
        model.write_bytes(content)
    status, _, stderr = run_main(["explain", str(model), files["paths"]["exact"],
                                  "--out", str(tmp_path / "out")], capsys)
    assert status == 1
    assert stderr.startswith(f"sobol-tf: error: {model}: {message}")
    assert len(stderr.strip().splitlines()) == 1


def test_same_file_name_twice_is_refused(files, tmp_path, capsys):
    other = tmp_path / "exact.png"
    other.write_bytes(pathlib.Path(files["paths"]["exact"]).read_bytes())
    status, _, stderr = run_main(["explain", files["model"], files["paths"]["exact"],
                                  str(other), "--out", str(tmp_path / "out")], capsys)
    assert status == 2
    assert f"{other}: same file name as {files['paths']['exact']}" in stderr


def test_grayscale_model_of_any_size_groups_images_by_size(tmp_path, capsys):
    """A rank-3 (N, H, W) model with free spatial size: each image keeps its size."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((None, None)),
        keras.layers.Reshape((-1, 1)),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.save(tmp_path / "gray.keras")
    rng = np.random.default_rng(1)
    sizes = {"a": (8, 8), "b": (12, 10), "c": (8, 8)}
    paths = [write_png(tmp_path / f"{n}.png", rng.integers(0, 256, s + (1,)))
             for n, s in sizes.items()]
    status, _, stderr = run_main(["explain", str(tmp_path / "gray.keras"), *paths, "--out",
                                  str(tmp_path / "out"), "--grid-size", "2",
                                  "--nb-design", "8", "--quiet"], capsys)
    assert (status, stderr) == (0, "")
    saved = np.load(tmp_path / "out" / "maps.npz")
    assert list(saved["files"]) == ["a.png", "b.png", "c.png"]
    assert [saved[f"{n}.png"].shape for n in sizes] == list(sizes.values())


def test_console_script_is_cli_main():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = config["options.entry_points"]["console_scripts"].strip().splitlines()
    name, target = (part.strip() for part in scripts[0].split("="))
    module, function = target.split(":")
    assert name == "sobol-tf"
    assert getattr(importlib.import_module(module), function) is cli.main


@pytest.fixture(scope="module")
def explained(files, tmp_path_factory):
    """maps.npz of the two good images, written by explain in-process."""
    out = tmp_path_factory.mktemp("explained")
    paths = files["paths"]
    assert cli.main(["explain", files["model"], paths["exact"], paths["large"], "--out",
                     str(out), "--quiet", *FAST]) == 0
    return out / "maps.npz"


def test_score_table_and_target(files, explained, capsys):
    """The table lists each image's scores and their mean; --target scores another class."""
    paths = files["paths"]
    status, stdout, stderr = run_main(["score", files["model"], paths["exact"], paths["large"],
                                       "--maps", str(explained), "--target", "0", *SCORE],
                                      capsys)
    assert (status, stderr) == (0, "")
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["file", "target", "deletion", "insertion", "mufidelity"]
    assert lines[-1] == "deletion: lower is better; insertion and mufidelity: higher is better"
    inputs = np.stack([expected_inputs(files["pixels"][n]) for n in ("exact", "large")])
    saved = np.load(explained)
    maps = np.stack([saved["exact.png"], saved["large.png"]])
    expected = direct_scores(files["keras_model"], inputs, maps, [0, 0])
    table = np.array([[float(v) for v in line.split()[-3:]] for line in lines[1:4]])
    np.testing.assert_allclose(table[:2], np.stack(list(expected.values()), axis=1), atol=1e-4)
    np.testing.assert_allclose(table[2], table[:2].mean(axis=0), atol=1e-4)
    assert [line.split()[:2] for line in lines[1:3]] == [["exact.png", "0"], ["large.png", "0"]]
    assert lines[3].split()[0] == "mean" and len(lines[3].split()) == 4
    # the saved (predicted) classes are scored by default, and they differ from class 0
    assert list(saved["targets"]) != [0, 0]


def test_score_errors_name_the_file(files, explained, tmp_path, capsys):
    """An image without a map, a map of NaN, an unreadable image: one line each, exit 1."""
    paths = files["paths"]
    unknown = tmp_path / "unknown.png"
    unknown.write_bytes(pathlib.Path(paths["exact"]).read_bytes())
    saved = dict(np.load(explained))
    saved["large.png"] = np.full((16, 16), np.nan, np.float32)
    nan_maps = tmp_path / "maps.npz"
    np.savez(nan_maps, **saved)
    status, stdout, stderr = run_main(
        ["score", files["model"], paths["exact"], str(unknown), paths["large"],
         paths["broken"], "--maps", str(nan_maps), "--json", *SCORE], capsys)
    assert status == 1
    assert stderr.strip().splitlines() == [
        f"sobol-tf: error: {paths['broken']}: cannot decode the image: not a PNG, JPEG, "
        "GIF or BMP file, or a damaged one",
        f"sobol-tf: error: {unknown}: no map named 'unknown.png' in {nan_maps}",
        f"sobol-tf: error: {paths['large']}: its map in {nan_maps} holds NaN or infinite "
        "values",
    ]
    assert [row["file"] for row in json.loads(stdout)["images"]] == ["exact.png"]


@pytest.mark.parametrize("options, status, message", [
    (["--maps", "missing.npz"], 1, "missing.npz: no such maps file"),
    (["--maps", "MODEL"], 1, "not an .npz archive of maps"),
    (["--target", "5"], 2, "--target 5 is out of range: the model has 3 outputs"),
    (["--steps", "0"], 2, "steps must be an integer >= 1 or -1 (every feature), got 0."),
    (["--mu-grid-size", "17"], 2, "--mu-grid-size 17 exceeds the model's input size 16x16"),
])
def test_score_bad_files_and_options(files, explained, capsys, options, status, message):
    options = [files["model"] if o == "MODEL" else o for o in options]
    if "--maps" not in options:
        options += ["--maps", str(explained)]
    result, stdout, stderr = run_main(["score", files["model"], files["paths"]["exact"],
                                       *options], capsys)
    assert (result, stdout) == (status, "")
    assert len(stderr.strip().splitlines()) == 1 and message in stderr
