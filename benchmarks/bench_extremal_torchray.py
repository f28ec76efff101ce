"""ExtremalPerturbation against TorchRay's extremal_perturbation, on the same weights.

TorchRay (facebookresearch/TorchRay) is the authors' own implementation of extremal
perturbations (Fong, Patrick & Vedaldi, ICCV 2019). This benchmark builds ONE small
convnet twice, in Keras and in torch, copies the Keras weights into the torch model and
checks that both give the same logits (to 1e-5), then explains the same correctly
classified cluttered-digit canvases (benchmarks/cluttered_digits.py: a digit in a known
box among fragments of other digits) with both libraries, each at its defaults:

- TorchRay: ``extremal_perturbation(model, x, label)`` with its defaults (area 0.1,
  800 iterations, blur, jitter) and its 224-px ``step`` 7, ``sigma`` 21 and maximum blur
  20 scaled to the canvas side (step max(1, round(7 s / 224)), sigma 21 s / 224, blur
  20 s / 224: the maximum blur is not an argument of ``extremal_perturbation``, so the
  script gives it to TorchRay's ``Perturbation`` class for the run); one image at a
  time, as TorchRay works;
- sobol_tf: ``ExtremalPerturbation(model)``, every setting at its default (which scale
  with the side the same way), all images in one call.

Reported (mean ± standard error over the images): pointing game and share of the mask
in the box (benchmarks/localisation.py), the area the mask keeps (share of the image
above 1/2), the preserved score (softmax probability of the label when the image is
blurred outside the mask, with one common blur, the strongest of the pyramid, for both
libraries, over the clean probability), the correlation of the two masks of an image,
and seconds per input. Writes <out>/extremal_torchray.md.

Runs only where ``torch`` and ``torchray`` import (``pip install sobol_tf[torchray]``);
elsewhere it prints a skip line and exits with status 0. TorchRay 1.0 imports torchvision
and pycocotools only in parts this benchmark does not use: ``pip install torchray
--no-deps`` next to torch is enough.

Usage: python benchmarks/bench_extremal_torchray.py [--quick] [--nb-images 32]
       [--seed 0] [--out DIR]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the benchmark measures the sobol_tf next to it, not whichever one is installed
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import numpy as np  # noqa: E402

#: canvases, model and training: those of the ground-truth benchmark, a smaller run.
FULL = dict(nb_train=6000, epochs=10, nb_test=600, nb_images=32)
QUICK = dict(nb_train=1500, epochs=3, nb_images=4, nb_test=200)
#: largest difference allowed between the Keras and the torch logits.
LOGIT_TOLERANCE = 1e-5


def torchray_available():
    """(True, '') when torch and TorchRay's extremal_perturbation import, else (False, why)."""
    try:
        import torch  # noqa: F401
        from torchray.attribution import extremal_perturbation  # noqa: F401
    except Exception as error:  # ImportError, or a broken install of either
        return False, f"{type(error).__name__}: {error}"
    return True, ""


def torch_twin(keras_model):
    """The convnet of bench_quality.build_model in torch, with the Keras weights.

    Conv2D (kh, kw, in, out) -> Conv2d (out, in, kh, kw); Dense (in, out) -> Linear
    (out, in). 'same' padding of a 3x3 kernel is a padding of 1; the inputs go from
    NHWC to NCHW.
    """
    import torch

    convs = [layer for layer in keras_model.layers if "conv" in layer.name]
    dense = keras_model.layers[-1]
    layers = []
    for conv in convs:
        kernel, bias = conv.get_weights()
        module = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], padding=1)
        module.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        module.bias.data = torch.from_numpy(bias)
        layers += [module, torch.nn.ReLU()]
        if conv is not convs[-1]:
            layers.append(torch.nn.MaxPool2d(2))
    kernel, bias = dense.get_weights()
    linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
    linear.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
    linear.bias.data = torch.from_numpy(bias)
    layers += [torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), linear]
    return torch.nn.Sequential(*layers).eval()


def torchray_masks(torch_model, images, labels, step, sigma, max_blur):
    """TorchRay's masks (N, H, W), one image at a time, and seconds per input."""
    import torch
    from torchray.attribution import extremal_perturbation as module

    original = module.Perturbation

    def scaled_perturbation(input, num_levels=8, type="blur"):
        return original(input, num_levels=num_levels, max_blur=max_blur, type=type)

    module.Perturbation = scaled_perturbation
    try:
        masks = []
        start = time.perf_counter()
        for image, label in zip(images, labels):
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
            mask, _ = module.extremal_perturbation(torch_model, x, int(label), step=step,
                                                   sigma=sigma)
            masks.append(mask[0, 0].numpy())
        seconds = (time.perf_counter() - start) / len(images)
    finally:
        module.Perturbation = original
    return np.stack(masks), seconds


def preserved_scores(model, images, labels, masks, max_blur):
    """Softmax probability of the label with the image blurred outside the mask (the
    strongest level of our zero-padded pyramid, TorchRay's blur), over the clean one."""
    import tensorflow as tf

    from sobol_tf.attributions.extremal_masks import apply_pyramid, perturbation_pyramid

    pyramid = perturbation_pyramid(tf.constant(images), 2, max_blur)
    kept = apply_pyramid(pyramid, tf.constant(masks, tf.float32))
    rows = np.arange(len(labels))
    clean = tf.nn.softmax(model(images)).numpy()[rows, labels]
    perturbed = tf.nn.softmax(model(kept)).numpy()[rows, labels]
    return perturbed / clean


def correlations(first, second):
    """Pearson correlation of each pair of masks (NaN where one is constant)."""
    a = first.reshape(len(first), -1) - first.reshape(len(first), -1).mean(1, keepdims=True)
    b = second.reshape(len(second), -1) - second.reshape(len(second), -1).mean(1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / norms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small training set, few epochs, 4 images")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and model")
    parser.add_argument("--nb-images", type=int, help="images explained (default 32; 4 quick)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; "
                                      "outputs/extremal-torchray-quick with --quick)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch's CPU threads (default 1: with TensorFlow in the same "
                             "process, 2 torch threads ran 6x slower on 2 cores)")
    args = parser.parse_args(argv)
    available, why = torchray_available()
    if not available:
        print(f"bench_extremal_torchray: skipped, torch and torchray are needed "
              f"(pip install 'sobol_tf[torchray]', or torch then torchray --no-deps): {why}")
        return 0
    import torch

    torch.set_num_threads(args.torch_threads)
    from bench_quality import CANVAS, cluttered_sets, train
    from common import machine, markdown_table, print_table
    from localisation import pointing_game, share_in_box
    from sobol_tf.attributions import ExtremalPerturbation
    from sobol_tf.attributions.extremal import scaled_mask_settings

    sizes = dict(QUICK if args.quick else FULL)
    if args.nb_images:
        sizes["nb_images"] = args.nb_images
    out = args.out or ("outputs/extremal-torchray-quick" if args.quick else
                       os.path.join(HERE, "results"))
    os.makedirs(out, exist_ok=True)

    train_set, test_set = cluttered_sets(sizes["nb_train"], sizes["nb_test"], args.seed)
    model, accuracy = train(train_set, test_set, sizes["epochs"], args.seed)
    twin = torch_twin(model)
    for parameter in twin.parameters():
        parameter.requires_grad_(False)
    keras_logits = np.asarray(model(test_set.images[:64]))
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(test_set.images[:64].transpose(0, 3, 1, 2))).numpy()
    logit_gap = float(np.abs(keras_logits - torch_logits).max())
    print(f"machine: {machine()}; torch {torch.__version__}, {args.torch_threads} thread(s)")
    print(f"test accuracy {accuracy:.4f}; largest |Keras - torch| logit on 64 canvases: "
          f"{logit_gap:.2e}")
    if logit_gap > LOGIT_TOLERANCE:
        raise SystemExit(f"the torch twin differs from the Keras model by {logit_gap:.2e} "
                         f"> {LOGIT_TOLERANCE}: the comparison would be meaningless.")

    predicted = np.argmax(model.predict(test_set.images, batch_size=512, verbose=0), axis=1)
    chosen = np.flatnonzero(predicted == test_set.labels)[:sizes["nb_images"]]
    images, labels, boxes = (test_set.images[chosen], test_set.labels[chosen],
                             test_set.boxes[chosen])
    step, sigma, max_blur = scaled_mask_settings(CANVAS, CANVAS)
    print(f"explaining {len(chosen)} correctly classified {CANVAS}x{CANVAS} canvases; "
          f"size-scaled step {step}, sigma {sigma:.2f}, max blur {max_blur:.2f}")

    reference, reference_seconds = torchray_masks(twin, images, labels, step, sigma, max_blur)
    print(f"  TorchRay: {reference_seconds:.3f} s per input")
    explainer = ExtremalPerturbation(model)
    explainer.explain_masks(images[:2], labels[:2])  # compiles the loop, untimed
    start = time.perf_counter()
    ours = explainer.explain_masks(images, labels).numpy()[:, 0, :, :, 0]
    our_seconds = (time.perf_counter() - start) / len(images)
    print(f"  sobol_tf: {our_seconds:.3f} s per input")

    def mean_se(values):
        values = np.asarray(values, np.float64)
        values = values[np.isfinite(values)]
        spread = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        return f"{values.mean():.3f} ± {spread:.3f}"

    agreement = correlations(reference, ours)
    header = ["implementation (its defaults)", "pointing game ↑", "share in box ↑",
              "area kept (> 1/2)", "preserved score ↑", "s / input ↓"]
    rows = []
    for name, masks, seconds in [("TorchRay extremal_perturbation", reference,
                                  reference_seconds),
                                 ("sobol_tf ExtremalPerturbation", ours, our_seconds)]:
        rows.append([name, mean_se(pointing_game(masks, boxes)),
                     mean_se(share_in_box(masks, boxes)),
                     mean_se((masks > 0.5).mean(axis=(1, 2))),
                     mean_se(preserved_scores(model, images, labels, masks, max_blur)),
                     f"{seconds:.3f}"])
    title = (f"Extremal perturbations, TorchRay vs sobol_tf, N={len(chosen)}; masks agree: "
             f"r = {mean_se(agreement)}")
    print_table(title, header, rows)
    box_share = np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]) / CANVAS ** 2
    lines = [
        f"Machine: {machine()}; torch {torch.__version__} on {args.torch_threads} "
        f"thread(s). Seed {args.seed}.",
        "",
        f"Model: the convnet of bench_quality.py built in Keras and in torch with the same "
        f"weights (largest logit difference {logit_gap:.1e}), trained on "
        f"{len(train_set.images)} cluttered-digit canvases for {sizes['epochs']} epochs; "
        f"test accuracy {accuracy:.1%}. Explained: the first N = {len(chosen)} correctly "
        f"classified {CANVAS}x{CANVAS} test canvases, for the logit of their label; the "
        f"digit's box covers {box_share:.1%} of them on average, the requested area is "
        "0.1 (both defaults).",
        "",
    ]
    lines += markdown_table(header, rows)
    lines += [
        "",
        f"Mean ± standard error over the N images. Correlation of the two masks of an "
        f"image: r = {mean_se(agreement)}.",
        f"- TorchRay: extremal_perturbation at its defaults, step {step}, sigma "
        f"{sigma:.2f} and maximum blur {max_blur:.2f} (its 7, 21 and 20 at 224 px scaled "
        f"to {CANVAS} px), one image per call. TorchRay's area counts a margin of sigma "
        "pixels around the image, so its masks keep more than 0.1 of the image.",
        "- sobol_tf: ExtremalPerturbation(model), all defaults (the same size-scaled step, "
        "sigma and blur), all images in one explain_masks call after an untimed warm-up "
        "call on two of them (graph compilation).",
        "- Pointing game: the mask's maximum inside the box, ties shared. Share in box: "
        "mask inside the box / mask everywhere. Preserved score: softmax probability of "
        "the label with the canvas blurred (zero-padded Gaussian of the maximum blur) "
        "outside the mask, over the clean probability.",
        "- Both on the CPU, on a machine shared with other jobs; torch on "
        f"{args.torch_threads} thread(s) (--torch-threads: with TensorFlow in the same "
        "process, 2 torch threads ran 6x slower than 1 on 2 cores).",
    ]
    path = os.path.join(out, "extremal_torchray.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
