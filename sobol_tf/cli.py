"""Command line: explain a saved Keras model's predictions on image files, score maps.

    sobol-tf explain MODEL.keras IMAGE... --out DIR [--target K] [--grid-size 8] ...
    sobol-tf score MODEL.keras IMAGE... --maps DIR/maps.npz [--json]

(or ``python -m sobol_tf ...``). Images (PNG, JPEG, GIF, BMP) are decoded with their own
channels, which must match the model's (RGB for a 3-channel model, grayscale for 1),
resized to the model's input size with bilinear interpolation (antialiased when
shrinking), and scaled to [0, 1] floats (``--scale 255``: raw 0..255 values). Models that
expect other preprocessing should include it as a layer.

``explain`` writes ``<stem>_sobol.png`` (the map over the image) per image and
``maps.npz``: one (H, W) float32 map per image, under the image's file name, at the
model's input resolution; ``files`` (the names, in order) and ``targets`` (the class ids
explained). ``score`` reads them back and prints Deletion, Insertion and MuFidelity.

A file that cannot be used gets one line on stderr naming it, the others are still
processed, and the exit status is then 1; bad options exit with 2.
"""
import argparse
import os
import sys
import zipfile

import numpy as np

PROGRAM = "sobol-tf"
MAPS_FILE = "maps.npz"
OVERLAY_SUFFIX = "_sobol.png"
#: keys of maps.npz that are not maps
RESERVED_KEYS = ("files", "targets")
#: what ``--scale`` multiplies [0, 1] pixels by
SCALES = {"1": 1.0, "255": 255.0}
CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}
EXIT_FILE_ERROR = 1
EXIT_USAGE = 2


class FileProblem(Exception):
    """A file the command cannot use; ``str()`` is the one line printed about it."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")


def _one_line(exc):
    """The first meaningful line of an exception's message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _report(message):
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)


# -- model and images ----------------------------------------------------------------
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
        raise FileProblem(path, f"cannot load a Keras model: {_one_line(exc)}") from exc
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


def load_images(paths, spec, scale):
    """Load every image; report and skip the ones that fail.

    Returns:
        (loaded, nb_failed): loaded is a list of (path, display image, model input).
    """
    loaded, failed = [], 0
    for path in paths:
        try:
            loaded.append((path,) + load_image(path, spec, scale))
        except FileProblem as problem:
            _report(problem)
            failed += 1
    return loaded, failed


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


def predicted_classes(model, inputs, batch_size):
    """Class ids of the highest output, and the outputs, on a batch of inputs."""
    outputs = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    outputs = outputs.reshape(len(outputs), -1)
    return outputs.argmax(axis=1), outputs


def save_maps(path, names, maps, targets):
    """Write maps.npz with numpy's format (names may be any string)."""
    arrays = {"files": np.asarray(names), "targets": np.asarray(targets, np.int64)}
    arrays.update({name: np.asarray(m, np.float32) for name, m in zip(names, maps)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save_overlay(path, display, heatmap, title):
    """One heatmap over its image, drawn by sobol_tf.plots.plot_attributions."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sobol_tf.plots import plot_attributions

    figure = plot_attributions(heatmap[None], display[None], cols=1, img_size=4.0,
                               titles=[title])
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -- commands ------------------------------------------------------------------------
def run_explain(args):
    """``sobol-tf explain``: returns the exit status."""
    from sobol_tf.attributions import SobolAttributionMethod
    from sobol_tf.errors import SobolTFError

    try:
        names = check_names(args.images)
        os.makedirs(args.out, exist_ok=True)
    except FileProblem as problem:
        _report(problem)
        return EXIT_USAGE
    except OSError as exc:
        _report(f"{args.out}: cannot create the output folder: {exc.strerror or exc}")
        return EXIT_USAGE
    try:
        model, spec = load_model(args.model)
    except FileProblem as problem:
        _report(problem)
        return EXIT_FILE_ERROR
    smallest = min(spec.height or args.grid_size, spec.width or args.grid_size)
    if args.grid_size > smallest:
        _report(f"--grid-size {args.grid_size} exceeds the model's input size "
                f"{spec.height}x{spec.width}; use at most {smallest}")
        return EXIT_USAGE
    try:
        explainer = SobolAttributionMethod(
            model, grid_size=args.grid_size, nb_design=args.nb_design,
            sampler=args.sampler, estimator=args.estimator,
            perturbation_function=args.perturbation, batch_size=args.batch_size,
            seed=args.seed, verbose=not args.quiet)
    except SobolTFError as exc:
        _report(exc)
        return EXIT_USAGE

    loaded, failed = load_images(args.images, spec, SCALES[args.scale])
    done_names, done_maps, done_targets = [], [], []
    for group in group_by_shape(loaded):
        inputs = np.stack([loaded[i][2] for i in group])
        predicted, outputs = predicted_classes(model, inputs, args.batch_size)
        if args.target is not None and not 0 <= args.target < outputs.shape[1]:
            _report(f"--target {args.target} is out of range: the model has "
                    f"{outputs.shape[1]} outputs, so use 0 to {outputs.shape[1] - 1}")
            return EXIT_USAGE
        targets = predicted if args.target is None else np.full(len(group), args.target)
        try:
            maps = explainer.explain(inputs, targets).numpy()[..., 0]
        except SobolTFError as exc:
            for i in group:
                _report(f"{loaded[i][0]}: cannot explain: {_one_line(exc)}")
            failed += len(group)
            continue
        for row, i in enumerate(group):
            path, display, _ = loaded[i]
            name = os.path.basename(path)
            target = int(targets[row])
            overlay = os.path.join(args.out, os.path.splitext(name)[0] + OVERLAY_SUFFIX)
            title = f"{name}: class {target} (score {outputs[row, target]:.3g})"
            save_overlay(overlay, display, maps[row], title)
            if not args.quiet:
                print(f"wrote {overlay}")
            done_names.append(name)
            done_maps.append(maps[row])
            done_targets.append(target)
    if done_names:
        # keep the command line's order
        order = sorted(range(len(done_names)), key=lambda k: names.index(done_names[k]))
        maps_path = os.path.join(args.out, MAPS_FILE)
        save_maps(maps_path, [done_names[k] for k in order], [done_maps[k] for k in order],
                  [done_targets[k] for k in order])
        if not args.quiet:
            print(f"wrote {maps_path} ({len(done_names)} map(s))")
    return EXIT_FILE_ERROR if failed else 0


def _add_common(parser):
    parser.add_argument("model", metavar="MODEL", help="a saved Keras model (.keras, .h5)")
    parser.add_argument("images", metavar="IMAGE", nargs="+",
                        help="PNG, JPEG, GIF or BMP files, resized to the model's input")
    parser.add_argument("--scale", choices=sorted(SCALES), default="1",
                        help="pixel range the model expects: 1 for [0, 1] (default), "
                             "255 for raw 0..255 values")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="inputs per forward pass (bounds memory; default 256)")


def build_parser():
    """The argparse parser of ``sobol-tf``."""
    from sobol_tf.attributions import estimators, perturbations, samplers

    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    explain = commands.add_parser(
        "explain", help="Sobol attribution maps of a model's predictions",
        description="Explain each image's predicted class (or --target) with the Sobol "
                    "attribution method; write <stem>_sobol.png per image and maps.npz.")
    _add_common(explain)
    explain.add_argument("--out", required=True, metavar="DIR",
                         help="folder for the overlays and maps.npz (created if needed)")
    explain.add_argument("--target", type=int, default=None, metavar="K",
                         help="class id to explain for every image (default: predicted)")
    explain.add_argument("--grid-size", type=int, default=8, help="cells per side (8)")
    explain.add_argument("--nb-design", type=int, default=32,
                         help="design size, a power of two (32); cost: "
                              "nb_design * (grid_size**2 + 2) forward passes per image")
    explain.add_argument("--sampler", default="sobol", choices=sorted(samplers.SAMPLERS),
                         help="how mask values are drawn (sobol)")
    explain.add_argument("--estimator", default="jansen",
                         choices=sorted(estimators.ESTIMATORS),
                         help="estimator of the total-order indices (jansen)")
    explain.add_argument("--perturbation", default="inpainting",
                         choices=sorted(perturbations.PERTURBATIONS),
                         help="what a masked-out cell becomes (inpainting)")
    explain.add_argument("--seed", type=int, default=None,
                         help="seed of the sampler (scrambles the Sobol sequence)")
    explain.add_argument("--quiet", action="store_true",
                         help="no progress bar, only errors")
    explain.set_defaults(run=run_explain)
    return parser


def main(argv=None):
    """Run ``sobol-tf`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)
