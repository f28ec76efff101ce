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
        "gray": rng.integers(0, 256, (16, 16, 1)),       # repeated into RGB
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


@pytest.mark.slow
def test_explain_in_a_subprocess_writes_maps_equal_to_the_explainer(files, tmp_path):
    out = tmp_path / "out"
    paths = files["paths"]
    command = [sys.executable, "-m", "sobol_tf", "explain", files["model"],
               paths["exact"], paths["broken"], paths["gray"], paths["large"],
               str(tmp_path / "missing.png"), "--out", str(out), *FAST]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 1, result.stderr[-3000:]
    # nothing but our lines on stderr: TensorFlow's start-up lines are silenced
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2, result.stderr
    assert "broken.png: cannot decode the image" in errors[0]
    assert "missing.png: cannot read the image: No such file" in errors[1]
    assert "SobolAttributionMethod" in result.stdout          # the progress bar's title
    assert f"wrote {out / 'maps.npz'} (3 map(s))" in result.stdout

    # the maps are the explainer's on the preprocessed images, for the predicted class;
    # the grayscale image is repeated into RGB for this RGB model
    pixels = dict(files["pixels"], gray=np.repeat(files["pixels"]["gray"], 3, axis=-1))
    inputs = np.stack([expected_inputs(pixels[n]) for n in ("exact", "gray", "large")])
    model = files["keras_model"]
    predicted = model.predict(inputs, verbose=0).argmax(axis=1)
    direct = SobolAttributionMethod(model, grid_size=4, nb_design=16, seed=0)(inputs, predicted)
    saved = np.load(out / "maps.npz")
    assert sorted(saved.files) == ["exact.png", "files", "gray.png", "large.png", "targets"]
    assert list(saved["files"]) == ["exact.png", "gray.png", "large.png"]
    np.testing.assert_array_equal(saved["targets"], predicted)
    for row, name in enumerate(saved["files"]):
        assert saved[name].shape == (16, 16) and saved[name].dtype == np.float32
        np.testing.assert_allclose(saved[name], direct[row, ..., 0], atol=1e-5)

    # one overlay per explained image: the input beside its map, over a colour bar
    assert listing(out) == ["exact_sobol.png", "gray_sobol.png",
                                                     "large_sobol.png", "maps.npz"]
    for name in ("exact", "large"):
        overlay = tf.io.decode_png(tf.io.read_file(str(out / f"{name}_sobol.png"))).numpy()
        height, width, _ = overlay.shape
        assert overlay.shape[2] == 4 and 1.3 * height < width <= 1000  # two square panels
        for half in (overlay[:height // 2, :width // 2], overlay[:height // 2, width // 2:]):
            assert half[..., :3].std() > 10  # the image, and the map: neither blank

    # score reads them back: the metrics' per-image scores on the same inputs, as JSON
    command = [sys.executable, "-m", "sobol_tf", "score", files["model"], paths["exact"],
               paths["large"], "--maps", str(out / "maps.npz"), "--json", *SCORE]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    inputs, direct, predicted = inputs[[0, 2]], direct.numpy()[[0, 2]], predicted[[0, 2]]
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


def listing(out):
    """The output folder's files, without the job's state folder (.sobol-tf)."""
    return sorted(p.name for p in out.iterdir() if p.name != ".sobol-tf")


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
    (b"PK\x03\x04 not a zip", "a damaged zip archive"),
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


# -- help and argument errors without TensorFlow (item 15) ----------------------------
IMPORT_PROBE = """
import sys
import sobol_tf.cli
try:
    status = sobol_tf.cli.main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print("tensorflow imported:", "tensorflow" in sys.modules, "status:", status)
"""


@pytest.mark.parametrize("argv, status", [
    (["--help"], 0),
    (["explain", "--help"], 0),
    (["score", "--help"], 0),
    (["explain"], 2),                                        # missing arguments
    (["explain", "m.keras", "a.png", "--out", "o", "--batch-size", "0"], 2),
    (["explain", "m.keras", "a.png", "--out", "o", "--sampler", "sobolev"], 2),
    (["score", "m.keras", "a.png", "--maps", "m.npz", "--steps", "0"], 2),
])
def test_help_and_argument_errors_do_not_import_tensorflow(argv, status):
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE, *argv], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == \
        f"tensorflow imported: False status: {status}", result.stderr[-2000:]


@pytest.mark.parametrize("command, options, message", [
    ("score", ["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    ("score", ["--steps", "0"], "argument --steps: must be an integer >= 1 or -1, got 0"),
    ("score", ["--steps", "many"],
     "argument --steps: expected an integer >= 1 or -1, got 'many'"),
    ("score", ["--nb-samples", "1"], "argument --nb-samples: must be an integer >= 2, got 1"),
    ("score", ["--mu-grid-size", "0"],
     "argument --mu-grid-size: must be an integer >= 1, got 0"),
    ("score", ["--subset-percent", "1"],
     "argument --subset-percent: must be strictly between 0 and 1, got 1.0"),
    ("score", ["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    ("explain", ["--seed", "-5"], "argument --seed: must be an integer >= 0, got -5"),
    ("explain", ["--nb-design", "1"], "argument --nb-design: must be an integer >= 2, got 1"),
    ("explain", ["--grid-size", "0"], "argument --grid-size: must be an integer >= 1, got 0"),
])
def test_numeric_options_are_checked_while_parsing(capsys, command, options, message):
    files = ["--maps", "m.npz"] if command == "score" else ["--out", "o"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "m.keras", "a.png", *files, *options])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"sobol-tf {command}: error: {message}"


def test_help_is_fast():
    """`python -m sobol_tf --help` end to end (interpreter start included): < 1 s on a
    laptop; 2 s here leaves room for a shared CPU."""
    import time

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "sobol_tf", "--help"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                            text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "explain" in result.stdout and result.stderr == ""
    assert elapsed < 2.0, f"--help took {elapsed:.2f} s"


def test_cli_choices_equal_the_registries():
    from sobol_tf.attributions import estimators, perturbations, samplers

    assert cli.SAMPLER_NAMES == tuple(sorted(samplers.SAMPLERS))
    assert cli.ESTIMATOR_NAMES == tuple(sorted(estimators.ESTIMATORS))
    assert cli.PERTURBATION_NAMES == tuple(sorted(perturbations.PERTURBATIONS))


# -- tiny 8x8 models for the items of issue 11 ---------------------------------------
TINY = ["--grid-size", "2", "--nb-design", "4", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Saved 8x8 RGB and grayscale models, a flexible-size one, and PNGs of every kind."""
    folder = tmp_path_factory.mktemp("tiny")
    models = {"rgb": tiny_convnet((8, 8, 3), nb_classes=2),
              "gray": tiny_convnet((8, 8, 1), nb_classes=2)}
    keras.utils.set_random_seed(1)
    models["flexible"] = keras.Sequential([        # needs images of at least 5x5
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(2, 5, padding="valid", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    paths = {name: str(folder / f"{name}.keras") for name in models}
    for name, model in models.items():
        model.save(paths[name])
    rng = np.random.default_rng(5)
    pixels = {"rgb": rng.integers(0, 256, (8, 8, 3)), "rgba": rng.integers(0, 256, (8, 8, 4)),
              "gray": rng.integers(0, 256, (8, 8, 1)),
              "gray_alpha": rng.integers(0, 256, (8, 8, 2)),
              "rgb10": rng.integers(0, 256, (10, 10, 3)), "small": rng.integers(0, 256, (3, 3, 3))}
    images = {name: write_png(folder / f"{name}.png", p) for name, p in pixels.items()}
    return {"folder": folder, "models": models, "model_paths": paths, "pixels": pixels,
            "images": images}


def direct_maps(model, images):
    """The explainer's maps (predicted classes) with the options of TINY."""
    images = np.stack(images).astype(np.float32)
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    maps = SobolAttributionMethod(model, grid_size=2, nb_design=4, seed=0)(images, predicted)
    return maps.numpy()[..., 0], predicted


# -- item 16: TensorFlow's log lines are silenced ------------------------------------
@pytest.mark.slow
def test_quiet_run_prints_nothing_at_all(tiny, tmp_path):
    """No absl/oneDNN/cuInit lines, even when TF_CPP_MIN_LOG_LEVEL is not set."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "sobol_tf", "explain", tiny["model_paths"]["rgb"],
         tiny["images"]["rgb"], "--out", str(tmp_path / "out"), *TINY],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    assert not [line for line in result.stdout.splitlines()
                if line.startswith(("I0000", "E0000", "W0000", "WARNING: All log messages"))]
    assert (tmp_path / "out" / "maps.npz").exists()


# -- item 12: images are converted to the model's channels as Keras' load_img does ---
def luma(rgb):
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("model, image, convert", [
    ("rgb", "rgba", lambda p: p[..., :3]),                         # alpha dropped
    ("rgb", "gray", lambda p: np.repeat(p, 3, axis=-1)),
    ("rgb", "gray_alpha", lambda p: np.repeat(p[..., :1], 3, axis=-1)),
    ("gray", "rgb", lambda p: luma(p)[..., None]),                 # ITU-R 601-2 luma
    ("gray", "rgba", lambda p: luma(p)[..., None]),
    ("gray", "gray_alpha", lambda p: p[..., :1]),
])
def test_images_are_converted_to_the_models_channels(tiny, tmp_path, capsys, model, image,
                                                     convert):
    # an odd file name, too: it keys maps.npz and names the overlay as it is
    odd = tmp_path / "my image (1), é#.png"
    odd.write_bytes(pathlib.Path(tiny["images"][image]).read_bytes())
    out = tmp_path / "out"
    status, _, stderr = run_main(["explain", tiny["model_paths"][model], str(odd),
                                  "--out", str(out), *TINY], capsys)
    assert (status, stderr) == (0, "")
    expected, predicted = direct_maps(tiny["models"][model],
                                      [convert(tiny["pixels"][image].astype(np.float64)) / 255])
    saved = np.load(out / "maps.npz")
    assert list(saved["files"]) == [odd.name]
    np.testing.assert_array_equal(saved["targets"], predicted)
    np.testing.assert_allclose(saved[odd.name], expected[0], atol=1e-5)
    assert (out / "my image (1), é#_sobol.png").exists()


# -- item 13: one bad file never loses the others' results ---------------------------
def assert_says_too_small(line):
    """The reason names the cause: the image's size, too small, and TensorFlow's own
    account of it (the 5x5 kernel does not fit in 3x3), without the op's internals."""
    reason = line.split(": cannot ", 1)[1]
    assert "the image (3 x 3) is too small for the model" in reason, line
    assert "subtracting 5 from 3" in reason or "would be zero or negative" in reason, line
    assert "{{node" not in reason and "\x1b" not in reason and len(line) < 400, line


def test_one_line_skips_the_lines_that_only_say_where():
    from sobol_tf.io import one_line
    graph = ValueError('Graph execution error:\n\nDetected at node c defined at (most recent '
                       'call last):\n  File "a.py", line 1, in <module>\n\ninput depth must '
                       'be evenly divisible\n\t [[{{node c}}]] [Op:__inference_f_1]')
    assert one_line(graph) == "input depth must be evenly divisible"
    keras_call = ValueError(
        "Exception encountered when calling Conv2D.call().\n\n\x1b[1mNegative dimension size "
        "caused by subtracting 5 from 4 for '{{node c}} = Conv2D[T=DT_FLOAT]' with input "
        "shapes: [1,4,4,3].\x1b[0m\n\nArguments received by Conv2D.call():\n  \u2022 inputs=x")
    assert one_line(keras_call) == ("Negative dimension size caused by subtracting 5 from 4 "
                                    "with input shapes: [1,4,4,3].")
    try:
        try:
            raise RuntimeError("the real cause\nmore")
        except RuntimeError as cause:
            raise ValueError("Graph execution error:") from cause
    except ValueError as chained:
        assert one_line(chained) == "the real cause"
    assert one_line(ValueError("plain\nsecond")) == "plain"
    assert one_line(ValueError()) == "ValueError"


def test_too_small_image_for_a_flexible_model_loses_only_itself(tiny, tmp_path, capsys):
    images = tiny["images"]
    out = tmp_path / "out"
    status, _, stderr = run_main(["explain", tiny["model_paths"]["flexible"], images["rgb"],
                                  images["small"], images["rgb10"], "--out", str(out),
                                  *TINY], capsys)
    lines = stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1, stderr
    assert lines[0].startswith(f"sobol-tf: error: {images['small']}: cannot explain: ")
    assert_says_too_small(lines[0])
    saved = np.load(out / "maps.npz")
    assert list(saved["files"]) == ["rgb.png", "rgb10.png"]
    model = tiny["models"]["flexible"]
    for name in ("rgb", "rgb10"):
        expected, _ = direct_maps(model, [tiny["pixels"][name] / 255])
        np.testing.assert_allclose(saved[f"{name}.png"], expected[0], atol=1e-5)
    assert listing(out) == ["maps.npz", "rgb10_sobol.png",
                                                     "rgb_sobol.png"]


def test_a_failing_image_in_a_batch_is_retried_alone(tiny, tmp_path, capsys, monkeypatch):
    """Images of one size share a batch: when the batch fails, each is tried alone."""
    explain = SobolAttributionMethod.explain
    white = tmp_path / "white.png"
    write_png(white, np.full((8, 8, 3), 255))

    def fragile(self, inputs, targets=None):
        if np.any(np.min(np.asarray(inputs), axis=(1, 2, 3)) == 1.0):
            raise RuntimeError("the model cannot take a white image\nmore details")
        return explain(self, inputs, targets)

    monkeypatch.setattr(SobolAttributionMethod, "explain", fragile)
    images = tiny["images"]
    out = tmp_path / "out"
    status, _, stderr = run_main(["explain", tiny["model_paths"]["rgb"], images["rgb"],
                                  str(white), images["rgba"], "--out", str(out), *TINY],
                                 capsys)
    assert status == 1
    assert stderr.strip().splitlines() == [
        f"sobol-tf: error: {white}: cannot explain: the model cannot take a white image"]
    saved = np.load(out / "maps.npz")
    assert list(saved["files"]) == ["rgb.png", "rgba.png"]
    expected, _ = direct_maps(tiny["models"]["rgb"], [tiny["pixels"]["rgb"] / 255,
                                                       tiny["pixels"]["rgba"][..., :3] / 255])
    np.testing.assert_allclose(saved["rgba.png"], expected[1], atol=1e-5)


def test_an_interrupted_run_keeps_the_finished_maps(tiny, tmp_path, capsys, monkeypatch):
    """maps.npz is rewritten (atomically) after each batch of images of one size."""
    explain = SobolAttributionMethod.explain
    calls = []

    def interrupted(self, inputs, targets=None):
        calls.append(len(inputs))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return explain(self, inputs, targets)

    monkeypatch.setattr(SobolAttributionMethod, "explain", interrupted)
    images = tiny["images"]
    out = tmp_path / "out"
    status, _, stderr = run_main(["explain", tiny["model_paths"]["flexible"], images["rgb"],
                                  images["rgb10"], "--out", str(out), *TINY], capsys)
    assert (status, stderr) == (130, f"sobol-tf: error: interrupted; {out / 'maps.npz'} "
                                     "holds the 1 map(s) finished; rerun the same "
                                     "command to resume\n")
    saved = np.load(out / "maps.npz")
    assert list(saved["files"]) == ["rgb.png"]
    assert listing(out) == ["maps.npz", "rgb_sobol.png"]


def test_score_loses_only_the_bad_image(tiny, tmp_path, capsys):
    images = tiny["images"]
    maps = tmp_path / "maps.npz"
    np.savez(maps, **{"rgb.png": np.ones((8, 8), np.float32),
                      "small.png": np.ones((3, 3), np.float32),
                      "rgb10.png": np.ones((10, 10), np.float32)})
    status, stdout, stderr = run_main(
        ["score", tiny["model_paths"]["flexible"], images["rgb"], images["small"],
         images["rgb10"], "--maps", str(maps), "--json", "--steps", "4", "--mu-grid-size",
         "2", "--nb-samples", "8"], capsys)
    lines = stderr.strip().splitlines()
    assert status == 1 and len(lines) == 1, stderr
    assert lines[0].startswith(f"sobol-tf: error: {images['small']}: cannot score: ")
    assert_says_too_small(lines[0])
    assert [row["file"] for row in json.loads(stdout)["images"]] == ["rgb.png", "rgb10.png"]


# -- item 14: the output folder and the model file are checked before computing -------
def unwritable_folder(tmp_path):
    """A folder this process cannot write in: chmod 0o500, or /sys when running as root
    (root ignores permissions); None when there is none."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if os.path.isdir("/sys"):
        try:
            open("/sys/.sobol_tf_probe", "w").close()
        except OSError:
            return pathlib.Path("/sys")
        os.remove("/sys/.sobol_tf_probe")
    return None


@pytest.mark.parametrize("case", ["parent_is_a_file", "unwritable", "maps_is_a_folder"])
def test_unusable_out_folder_is_refused_before_computing(tiny, tmp_path, capsys,
                                                         monkeypatch, case):
    if case == "parent_is_a_file":
        (tmp_path / "file").write_text("x")
        out, reason = tmp_path / "file" / "out", "Not a directory"
    elif case == "unwritable":
        out = unwritable_folder(tmp_path)
        if out is None:
            pytest.skip("no folder this process cannot write in")
        reason = "cannot write in the output folder"
    else:
        out, reason = tmp_path / "out", "maps.npz is a folder"
        (out / "maps.npz").mkdir(parents=True)
    monkeypatch.setattr(SobolAttributionMethod, "explain", lambda *a, **k: pytest.fail(
        "computed before checking the output folder"))
    status, stdout, stderr = run_main(["explain", tiny["model_paths"]["rgb"],
                                       tiny["images"]["rgb"], "--out", str(out), *TINY],
                                      capsys)
    lines = stderr.strip().splitlines()
    assert (status, stdout, len(lines)) == (2, "", 1), stderr
    assert lines[0].startswith(f"sobol-tf: error: {out}") and reason in lines[0]


@pytest.mark.parametrize("content, message", [
    (b"model = resnet50\n", "not a saved Keras model: a .keras file is a zip archive and a "
                            ".h5 file an HDF5 file; this file is neither (it looks like text)"),
    (b"", "not a saved Keras model: the file is empty"),
    (b"\x00\x01\x02\xff" * 8, "this file is neither (it starts with bytes 00 01 02 ff)"),
    ("zip", "a zip archive but not a Keras model archive (no config.json inside)"),
])
def test_a_file_that_is_not_a_model_says_what_is_wrong(tiny, tmp_path, capsys, content,
                                                       message):
    model = tmp_path / "model.keras"
    if content == "zip":
        import zipfile
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("notes.txt", "hello")
    else:
        model.write_bytes(content)
    status, _, stderr = run_main(["explain", str(model), tiny["images"]["rgb"], "--out",
                                  str(tmp_path / "out"), *TINY], capsys)
    assert status == 1 and len(stderr.strip().splitlines()) == 1
    assert stderr.startswith(f"sobol-tf: error: {model}: ") and message in stderr, stderr


# -- more of the same kind -----------------------------------------------------------
def test_models_with_several_inputs_or_outputs_are_refused(tmp_path, capsys, tiny):
    image = keras.Input((8, 8, 3))
    features = keras.layers.GlobalAveragePooling2D()(image)
    two_outputs = keras.Model(image, [keras.layers.Dense(2)(features),
                                      keras.layers.Dense(3)(features)])
    two_outputs.save(tmp_path / "two_outputs.keras")
    other = keras.Input((8, 8, 3))
    two_inputs = keras.Model([image, other], keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([image, other]))))
    two_inputs.save(tmp_path / "two_inputs.keras")
    for name, message in [("two_outputs", "the model must have one output; it has 2"),
                          ("two_inputs", "the model must take one batch of images")]:
        path = tmp_path / f"{name}.keras"
        status, _, stderr = run_main(["explain", str(path), tiny["images"]["rgb"], "--out",
                                      str(tmp_path / "out"), *TINY], capsys)
        assert status == 1 and len(stderr.strip().splitlines()) == 1, stderr
        assert f"{path}: {message}" in stderr


def test_overlay_names_must_not_collide(tiny, tmp_path, capsys):
    """a.png and a.jpg would both write a_sobol.png."""
    first, second = tmp_path / "a.png", tmp_path / "a.jpg"
    for path in (first, second):
        path.write_bytes(pathlib.Path(tiny["images"]["rgb"]).read_bytes())
    status, _, stderr = run_main(["explain", tiny["model_paths"]["rgb"], str(first),
                                  str(second), "--out", str(tmp_path / "out"), *TINY], capsys)
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert f"{second}: its overlay would be a_sobol.png, as for {first}" in stderr


def test_the_same_image_twice_is_explained_once(tiny, tmp_path, capsys):
    image = tiny["images"]["rgb"]
    status, _, stderr = run_main(["explain", tiny["model_paths"]["rgb"], image, image,
                                  "--out", str(tmp_path / "out"), *TINY], capsys)
    assert (status, stderr) == (0, "")
    assert list(np.load(tmp_path / "out" / "maps.npz")["files"]) == ["rgb.png"]


def test_an_empty_image_file_gets_one_line(tiny, tmp_path, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    status, _, stderr = run_main(["explain", tiny["model_paths"]["rgb"], str(empty),
                                  tiny["images"]["rgb"], "--out", str(tmp_path / "out"),
                                  *TINY], capsys)
    assert status == 1
    assert stderr.strip().splitlines() == [f"sobol-tf: error: {empty}: the file is empty"]
    assert list(np.load(tmp_path / "out" / "maps.npz")["files"]) == ["rgb.png"]


def test_a_file_name_that_is_not_utf8_is_refused_before_computing(tiny, tmp_path, capsys):
    """maps.npz keys are UTF-8 zip member names: such a name could never be saved."""
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")     # Latin-1, not UTF-8
    with open(raw, "wb") as handle:
        handle.write(pathlib.Path(tiny["images"]["rgb"]).read_bytes())
    path = os.fsdecode(raw)
    status, _, stderr = run_main(["explain", tiny["model_paths"]["rgb"], path,
                                  tiny["images"]["rgba"], "--out", str(tmp_path / "out"),
                                  *TINY], capsys)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "its file name is not valid UTF-8 (it is saved as a key of maps.npz); " \
           "rename it" in stderr


def test_a_savedmodel_folder_says_how_to_convert_it(tiny, tmp_path, capsys):
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    status, _, stderr = run_main(["explain", str(folder), tiny["images"]["rgb"], "--out",
                                  str(tmp_path / "out"), *TINY], capsys)
    assert status == 1 and len(stderr.strip().splitlines()) == 1
    assert f"{folder}: a TensorFlow SavedModel folder, which Keras 3 cannot load as a " \
           "model; save the model with model.save('model.keras')" in stderr


def test_the_parser_is_importable_where_tensorflow_is_not():
    """The docs build imports the argparse parser to write the --help pages: from
    sobol_tf._cli_parser (the former module) and sobol_tf.cli, with TensorFlow, Keras and
    matplotlib unimportable."""
    code = ("import sys\n"
            "for name in ('tensorflow', 'keras', 'matplotlib'):\n"
            "    sys.modules[name] = None  # any import of them raises ImportError\n"
            "from sobol_tf._cli_parser import build_parser\n"
            "from sobol_tf import cli\n"
            "parser = build_parser('d', cli.run_explain, cli.run_score)\n"
            "print(build_parser is cli.build_parser, 'explain' in parser.format_help())\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_refine_runs_the_two_stage_design(files, tmp_path, capsys):
    """--refine with the efficient estimator and sampler: the maps equal the library's
    two-stage explainer's; --refine with Jansen's estimator is a usage error."""
    out = tmp_path / "out"
    options = ["--estimator", "jansen_normalised", "--sampler", "scrambled_sobol",
               "--refine"]
    status, _, stderr = run_main(
        ["explain", files["model"], files["paths"]["exact"], "--out", str(out),
         "--target", "1", "--quiet", "--no-overlays", *FAST, *options], capsys)
    assert (status, stderr) == (0, "")
    image = np.asarray(files["pixels"]["exact"], np.float32)[None] / 255.0
    direct = SobolAttributionMethod(files["keras_model"], grid_size=4, nb_design=16, seed=0,
                                    estimator="jansen_normalised",
                                    sampler="scrambled_sobol", refine=True)(image, [1])
    np.testing.assert_allclose(np.load(out / "maps.npz")["exact.png"], direct[0, ..., 0],
                               atol=1e-5)
    status, _, stderr = run_main(
        ["explain", files["model"], files["paths"]["exact"], "--out", str(tmp_path / "o2"),
         "--quiet", "--refine", *FAST], capsys)
    assert status == 2 and "refine=True needs estimator='jansen_normalised'" in stderr
