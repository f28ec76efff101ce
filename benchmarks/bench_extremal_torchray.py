"""ExtremalPerturbation against TorchRay's extremal_perturbation, on the same weights.

TorchRay (facebookresearch/TorchRay) is the authors' own implementation of extremal
perturbations (Fong, Patrick & Vedaldi, ICCV 2019). This benchmark builds ONE small
convnet twice, in Keras and in torch, copies the Keras weights into the torch model and
checks that both give the same logits (to 1e-5), then explains the same correctly
classified cluttered-digit canvases (benchmarks/cluttered_digits.py: a digit in a known
box among fragments of other digits; 64 x 64 px by default, as issue 28) with both
libraries:

- TorchRay: ``extremal_perturbation(model, x, label)`` at its defaults (area 0.1, 800
  iterations, blur, jitter), once with its 224-px geometry as it ships (step 7, sigma
  21, maximum blur 20) and once given our mask geometry, its 224-px values scaled to
  the canvas side (step max(1, round(7 s / 224)), sigma 21 s / 224, blur 20 s / 224: the
  maximum blur is not an argument of ``extremal_perturbation``, so the script gives it
  to TorchRay's ``Perturbation`` class for the run); one image at a time, as TorchRay
  works;
- sobol_tf: ``ExtremalPerturbation(model)`` at its defaults (which scale with the side
  the same way), and at the defaults it had before issue 28 (learning rate 0.01, area
  weight 4.8 growing 1000-fold), all images in one call.

The preserve variant on N images, then the delete and dual variants on the first few.
Reported (mean ± standard error over the images): pointing game and share of the mask
in the box (benchmarks/localisation.py), the area the mask keeps (share of the image
above 1/2), the share of the label's logit kept at equal area (the top 10% of each
mask kept, the rest blurred) and removed (the top 10% blurred), the mean mask on the
border, and seconds per input. Writes <out>/extremal_torchray.md.

Runs only where ``torch`` and ``torchray`` import (``pip install sobol_tf[torchray]``);
elsewhere it prints a skip line and exits with status 0. TorchRay 1.0 imports torchvision
and pycocotools only in parts this benchmark does not use: ``pip install torchray
--no-deps`` next to torch is enough.

Usage: python benchmarks/bench_extremal_torchray.py [--quick] [--nb-images 32]
       [--nb-variant-images 8] [--canvas 64] [--seed 0] [--out DIR]
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


def torchray_masks(torch_model, images, labels, step, sigma, max_blur, variant="preserve"):
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
                                                   sigma=sigma, variant=variant)
            masks.append(mask[0, 0].numpy())
        seconds = (time.perf_counter() - start) / len(images)
    finally:
        module.Perturbation = original
    return np.stack(masks), seconds


#: TorchRay's strongest blur (its ``Perturbation`` default), in pixels: the second blur
#: the kept fractions are scored with.
TORCHRAY_MAX_BLUR = 20.0
#: kept fractions are averaged over the images whose logit the full blur drops by this.
MIN_DROP = 2.0
#: the settings of ExtremalPerturbation before issue 28 (the "before" row).
BEFORE_ISSUE_28 = dict(learning_rate=0.01, area_weight=4.8, area_weight_growth=1000.0)


def top_masks(masks, area):
    """Binary masks: 1 on the round(area H W) largest values of each mask (ties by index)."""
    flat = masks.reshape(len(masks), -1)
    count = int(round(area * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    binary = np.zeros_like(flat, dtype=np.float32)
    np.put_along_axis(binary, order, 1.0, axis=1)
    return binary.reshape(masks.shape)


def _blurred(images, sigma):
    """Zero-padded separable Gaussian blur of (N, H, W, C) images (TorchRay's imsmooth)."""
    from sobol_tf.attributions.extremal_masks import gaussian_blur_matrix

    along_h = gaussian_blur_matrix(images.shape[1], sigma)
    along_w = gaussian_blur_matrix(images.shape[2], sigma)
    return np.einsum("kw,bhwc->bhkc", along_w,
                     np.einsum("ih,bhwc->biwc", along_h, images)).astype(np.float32)


def _logits(model, images, labels):
    return np.asarray(model(images))[np.arange(len(labels)), labels]


def score_shares(model, images, labels, masks, sigma, area=0.1):
    """Shares of the label's logit kept and removed by the masks, at equal area.

    x0 is the image blurred with a Gaussian of ``sigma`` pixels; with m the top-``area``
    binary mask (or the soft mask), kept = (s(x m + x0 (1 - m)) - s(x0)) / (s(x) - s(x0))
    and removed = (s(x) - s(x (1 - m) + x0 m)) / (s(x) - s(x0)).

    Returns a dict of (N,) arrays: kept_top, kept_soft, removed_top, and drop = s(x) - s(x0).
    """
    x0 = _blurred(images, sigma)
    clean, blurred = _logits(model, images, labels), _logits(model, x0, labels)
    drop = clean - blurred
    shares = {"drop": drop}
    for name, kept in [("top", top_masks(masks, area)), ("soft", masks.astype(np.float32))]:
        kept = kept[..., None]
        shares[f"kept_{name}"] = (_logits(model, images * kept + x0 * (1 - kept), labels)
                                  - blurred) / drop
        shares[f"removed_{name}"] = (clean - _logits(model, images * (1 - kept) + x0 * kept,
                                                     labels)) / drop
    return shares


def correlations(first, second):
    """Pearson correlation of each pair of masks (NaN where one is constant)."""
    a = first.reshape(len(first), -1) - first.reshape(len(first), -1).mean(1, keepdims=True)
    b = second.reshape(len(second), -1) - second.reshape(len(second), -1).mean(1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / norms


def mean_se(values):
    """'mean ± standard error' of the finite values."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    spread = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {spread:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small training set, few epochs, 4 images")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and model")
    parser.add_argument("--nb-images", type=int, help="images explained (default 32; 4 quick)")
    parser.add_argument("--nb-variant-images", type=int, default=8,
                        help="images explained with the delete and dual variants (default 8)")
    parser.add_argument("--canvas", type=int, default=64,
                        help="canvas side in pixels (default 64, as issue 28)")
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
    import bench_quality

    bench_quality.CANVAS = args.canvas  # read by cluttered_sets and build_model
    from bench_quality import cluttered_sets, train
    from common import machine, markdown_table, print_table
    from localisation import pointing_game, share_in_box
    from sobol_tf.attributions import ExtremalPerturbation
    from sobol_tf.attributions.extremal import (
        REFERENCE_MASK_SIGMA,
        REFERENCE_MASK_STEP,
        scaled_mask_settings,
    )

    canvas = args.canvas
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
    step, sigma, max_blur = scaled_mask_settings(canvas, canvas)
    print(f"explaining {len(chosen)} correctly classified {canvas}x{canvas} canvases; "
          f"size-scaled step {step}, sigma {sigma:.2f}, max blur {max_blur:.2f}")

    def ours(nb, variant="preserve", **settings):
        explainer = ExtremalPerturbation(model, variant=variant, **settings)
        explainer.explain_masks(images[:2], labels[:2])  # compiles the loop, untimed
        start = time.perf_counter()
        masks = explainer.explain_masks(images[:nb], labels[:nb]).numpy()[:, 0, :, :, 0]
        return masks, (time.perf_counter() - start) / nb

    runs = []  # (name, variant, masks, seconds)
    geometry = (step, sigma, max_blur)
    torchray_geometry = (REFERENCE_MASK_STEP, REFERENCE_MASK_SIGMA, TORCHRAY_MAX_BLUR)
    for name, run in [
        ("TorchRay, its defaults (224-px geometry)",
         lambda: torchray_masks(twin, images, labels, *torchray_geometry)),
        ("TorchRay, our mask geometry", lambda: torchray_masks(twin, images, labels,
                                                               *geometry)),
        ("sobol_tf, defaults before issue 28", lambda: ours(len(images), **BEFORE_ISSUE_28)),
        ("sobol_tf, defaults", lambda: ours(len(images))),
    ]:
        masks, seconds = run()
        print(f"  {name}: {seconds:.3f} s per input")
        runs.append((name, "preserve", masks, seconds))
    nb_variant = min(args.nb_variant_images, len(images))
    for variant in ("delete", "dual"):
        for name, run in [
            ("TorchRay, our mask geometry", lambda: torchray_masks(
                twin, images[:nb_variant], labels[:nb_variant], *geometry, variant=variant)),
            ("sobol_tf, defaults before issue 28", lambda: ours(nb_variant, variant,
                                                                **BEFORE_ISSUE_28)),
            ("sobol_tf, defaults", lambda: ours(nb_variant, variant)),
        ]:
            masks, seconds = run()
            print(f"  {name}, {variant}: {seconds:.3f} s per input")
            runs.append((name, variant, masks, seconds))

    os.makedirs("outputs", exist_ok=True)  # the masks, to look at them again
    np.savez_compressed(os.path.join("outputs", "extremal_torchray_masks.npz"),
                        **{f"{i}: {name}, {variant}": masks
                           for i, (name, variant, masks, _) in enumerate(runs)})
    header = ["implementation", "variant", "N", "pointing game ↑", "share in box ↑",
              "area (> 1/2)", f"kept, top-10%, σ {max_blur:.1f} ↑",
              f"kept, top-10%, σ {TORCHRAY_MAX_BLUR:.0f} ↑", f"kept, soft, σ {max_blur:.1f} ↑",
              f"removed, top-10%, σ {max_blur:.1f} ↑",
              f"removed, top-10%, σ {TORCHRAY_MAX_BLUR:.0f} ↑", "border mean ↓",
              "s / input ↓"]
    rows = []
    border = np.ones((canvas, canvas), bool)
    border[3:-3, 3:-3] = False
    counts = {}
    for name, variant, masks, seconds in runs:
        nb = len(masks)
        near = score_shares(model, images[:nb], labels[:nb], masks, max_blur)
        far = score_shares(model, images[:nb], labels[:nb], masks, TORCHRAY_MAX_BLUR)
        kept_near, kept_far = near["drop"] >= MIN_DROP, far["drop"] >= MIN_DROP
        counts[(variant, nb)] = (int(kept_near.sum()), int(kept_far.sum()))
        rows.append([name, variant, str(nb), mean_se(pointing_game(masks, boxes[:nb])),
                     mean_se(share_in_box(masks, boxes[:nb])),
                     mean_se((masks > 0.5).mean(axis=(1, 2))),
                     mean_se(near["kept_top"][kept_near]), mean_se(far["kept_top"][kept_far]),
                     mean_se(near["kept_soft"][kept_near]),
                     mean_se(near["removed_top"][kept_near]),
                     mean_se(far["removed_top"][kept_far]),
                     f"{masks[:, border].mean():.3f}", f"{seconds:.3f}"])
    preserve = [masks for _, variant, masks, _ in runs if variant == "preserve"]
    agreement = correlations(preserve[1], preserve[3])
    title = (f"Extremal perturbations, TorchRay vs sobol_tf, {canvas} px; masks of TorchRay "
             f"(our geometry) and sobol_tf agree: r = {mean_se(agreement)}")
    print_table(title, header, rows)
    box_share = np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]) / canvas ** 2
    kept_counts = "; ".join(f"{variant} N={nb}: {a} (σ {max_blur:.1f}) and {b} (σ 20)"
                            for (variant, nb), (a, b) in counts.items())
    lines = [
        f"Machine: {machine()}; torch {torch.__version__} on {args.torch_threads} "
        f"thread(s). Seed {args.seed} (data, model and canvases; TorchRay and sobol_tf "
        "are deterministic at these settings apart from float rounding).",
        "",
        f"Model: the convnet of bench_quality.py built in Keras and in torch with the same "
        f"weights (largest logit difference {logit_gap:.1e}), trained on "
        f"{len(train_set.images)} cluttered-digit canvases of {canvas}x{canvas} px for "
        f"{sizes['epochs']} epochs; test accuracy {accuracy:.1%}. Explained: the first "
        f"N = {len(chosen)} correctly classified test canvases (the first {nb_variant} of "
        "them for delete and dual), for the logit of their label; the digit's box covers "
        f"{box_share:.1%} of them on average, the requested area is 0.1 (both defaults), "
        "800 steps.",
        "",
    ]
    lines += markdown_table(header, rows)
    lines += [
        "",
        "Mean ± standard error over the images. Correlation of the preserve masks of "
        f"TorchRay (our geometry) and sobol_tf (defaults): r = {mean_se(agreement)}.",
        f"- TorchRay: extremal_perturbation at its defaults (jitter on, weight 300 x "
        f"1.0035^t, SGD lr 0.01), one image per call; '224-px geometry': step 7, sigma 21, "
        f"maximum blur 20 as it ships; 'our mask geometry': step {step}, sigma "
        f"{sigma:.2f}, maximum blur {max_blur:.2f} (its 224-px values scaled to {canvas} "
        "px, what sobol_tf picks). Its area counts a margin of sigma pixels around the "
        "image, so its masks keep more than 0.1 of the image.",
        "- sobol_tf: ExtremalPerturbation(model, variant=...) at its defaults; 'before "
        "issue 28': learning_rate=0.01, area_weight=4.8, area_weight_growth=1000 (the "
        "defaults until then). All images in one explain_masks call after an untimed "
        "warm-up call on two of them (graph compilation).",
        "- kept, top-10%: with m the binary mask of the 10% of pixels where the mask is "
        "largest and x0 the canvas blurred by a zero-padded Gaussian of σ pixels, "
        "(s(x m + x0 (1 - m)) - s(x0)) / (s(x) - s(x0)), s the label's logit; 'soft': the "
        "mask itself as m; removed: (s(x) - s(x (1 - m) + x0 m)) / (s(x) - s(x0)), the "
        "score of the delete and dual variants. Averaged over the images where s(x) - "
        f"s(x0) >= {MIN_DROP:g} ({kept_counts}). σ {max_blur:.1f} is the strongest blur "
        f"both optimisations use at {canvas} px, σ 20 TorchRay's at 224 px.",
        "- Pointing game: the mask's maximum inside the box, ties shared. Share in box: "
        "mask inside the box / mask everywhere. Border mean: mean mask on the 3-pixel "
        "band along the edges.",
        "- Both on the CPU, on a machine shared with other jobs (timings are noisy); torch "
        f"on {args.torch_threads} thread(s) (--torch-threads: with TensorFlow in the same "
        "process, 2 torch threads ran 6x slower than 1 on 2 cores).",
    ]
    path = os.path.join(out, "extremal_torchray.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
