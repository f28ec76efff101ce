"""Lab: TorchRay vs a switchable replica of our optimisation, on the 64 px twin."""
import os, sys, time, json
sys.path[:0] = ["benchmarks", "."]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf
import bench_quality
bench_quality.CANVAS = 64
from bench_quality import build_model
from bench_extremal_torchray import torch_twin
from localisation import pointing_game, share_in_box
from sobol_tf.attributions.extremal import scaled_mask_settings, mask_margin, MOMENTUM
from sobol_tf.attributions.extremal_masks import (SmoothMaskGenerator, area_loss,
    apply_pyramid, perturbation_pyramid, gaussian_blur_matrix)

H = 64
STEP, SIGMA, MAXBLUR = scaled_mask_settings(H, H)


def load(n, offset=0):
    model = build_model(0)
    model.load_weights("outputs/lab/model64.weights.h5")
    d = np.load("outputs/lab/test64.npz")
    pred = np.argmax(model.predict(d["images"], batch_size=256, verbose=0), 1)
    ok = np.flatnonzero(pred == d["labels"])[offset:offset + n]
    return model, d["images"][ok], d["labels"][ok], d["boxes"][ok]


def blur(images, sigma):
    mh = tf.constant(gaussian_blur_matrix(images.shape[1], sigma))
    mw = tf.constant(gaussian_blur_matrix(images.shape[2], sigma))
    x = tf.einsum("ij,bjwc->biwc", mh, images)
    return tf.einsum("kw,biwc->bikc", mw, x)


def logits(model, x, labels):
    out = model(tf.constant(x, tf.float32)).numpy()
    return out[np.arange(len(labels)), labels]


def topk(masks, area):
    flat = masks.reshape(len(masks), -1)
    k = int(round(area * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(flat)
    np.put_along_axis(out, order, 1.0, axis=1)
    return out.reshape(masks.shape)


def kept_fraction(model, images, labels, masks, sigma, mode="preserve", area=0.1):
    """(s(x_m) - s(x0)) / (s(x) - s(x0)), x_m = x m + blur(x) (1 - m); m top-area mask
    (hard) or the soft mask; delete: m -> 1 - m and the fraction removed."""
    x = tf.constant(images)
    x0 = blur(x, sigma)
    s, s0 = logits(model, x, labels), logits(model, x0, labels)
    res = {}
    for kind, m in (("top", topk(masks, area)), ("soft", masks)):
        m = m[..., None].astype(np.float32)
        if mode == "preserve":
            xm = x * m + x0 * (1 - m)
            res[kind] = (logits(model, xm, labels) - s0) / (s - s0)
        else:  # removed fraction: (s(x) - s(x without m)) / (s(x) - s0)
            xm = x * (1 - m) + x0 * m
            res[kind] = (s - logits(model, xm, labels)) / (s - s0)
    res["drop"] = s - s0
    return res


def torchray(twin, images, labels, jitter=True, variant="preserve", max_iter=800,
             step=STEP, sigma=SIGMA, max_blur=MAXBLUR):
    import torch
    from torchray.attribution import extremal_perturbation as module
    original = module.Perturbation
    module.Perturbation = lambda input, num_levels=8, type="blur": original(
        input, num_levels=num_levels, max_blur=max_blur, type=type)
    try:
        masks, hists = [], []
        t = time.perf_counter()
        for image, label in zip(images, labels):
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
            mask, hist = module.extremal_perturbation(twin, x, int(label), step=step,
                sigma=sigma, jitter=jitter, variant=variant, max_iter=max_iter)
            masks.append(mask[0, 0].numpy()); hists.append(hist[0].numpy())
        sec = (time.perf_counter() - t) / len(images)
    finally:
        module.Perturbation = original
    return np.stack(masks), np.stack(hists), sec


DEFAULT = dict(normalize=True, w0=4.8, growth=1000.0, cells=True, ref="image",
               ties="shared", init=1.0, jitter=False, slope_at_one=True, steps=800,
               lr=0.01, first_momentum="ema", area_norm="image", variant="preserve",
               schedule="span", record_every=25)


def ours(model, images, labels, **kw):
    c = dict(DEFAULT, **kw)
    steps = c["steps"]
    margin = mask_margin(SIGMA)
    gen = SmoothMaskGenerator(H, H, step=STEP, sigma=SIGMA, margin=margin)
    gh, gw = gen.grid_shape
    cells = gh * gw / 1024 if c["cells"] else 1.0
    x = tf.constant(images)
    pyr = perturbation_pyramid(x, 8, MAXBLUR)
    lab = tf.constant(labels, tf.int32)
    n = len(labels)
    full_pixels = gen.full_shape[0] * gen.full_shape[1]

    def score(xx, ll):
        return tf.gather(model(xx), ll, batch_dims=1)

    def perturb(m):
        if c["slope_at_one"]:
            return apply_pyramid(pyr, m)
        L = 8
        pos = m * (L - 1)
        k = tf.stop_gradient(tf.floor(pos))
        w = (pos - k)[..., None]
        ki = tf.cast(k, tf.int32)
        y0 = tf.gather(pyr, ki, axis=3, batch_dims=3)
        y1 = tf.gather(pyr, tf.minimum(ki + 1, L - 1), axis=3, batch_dims=3)
        return (1 - w) * y0 + w * y1

    if c["normalize"]:
        clean = score(x, lab); pert = score(pyr[:, :, :, 0], lab)
        size = tf.reduce_max(tf.abs(tf.stack([clean, pert, clean - pert])), 0)
        scale = 1.0 / tf.maximum(size, 1e-6)
    else:
        scale = tf.ones((n,))
    areas = tf.fill((n,), 0.1)
    if c["ref"] == "image":
        image_pixels = H * H
    else:  # TorchRay: a of the full canvas
        image_pixels = full_pixels
    norm = (H * H) if c["area_norm"] == "image" else full_pixels

    def area_term(full):
        if c["ties"] == "shared":
            return area_loss(full, areas, image_pixels=image_pixels) * image_pixels / norm
        flat = tf.sort(tf.reshape(full, (n, -1)), axis=1)
        nz = full_pixels - int(full_pixels * 0.1) if c["ref"] == "full" else full_pixels - int(round(0.1 * H * H))
        ref = tf.concat([tf.zeros((n, nz)), tf.ones((n, full_pixels - nz))], 1)
        return tf.reduce_sum(tf.square(flat - ref), 1) / norm

    variant = c["variant"]

    def loss(params, t):
        full = gen.full(params)
        m = full[:, margin:margin + H, margin:margin + H]
        if variant == "preserve":
            xx = perturb(m)
        elif variant == "delete":
            xx = perturb(1 - m)
        if c["jitter"]:
            xx = tf.cond(t % 2 == 0, lambda: tf.reverse(xx, axis=[2]), lambda: xx)
        s = score(xx, lab)
        reward = s if variant == "preserve" else -s
        if c["schedule"] == "span":
            w = cells * c["w0"] * tf.pow(c["growth"], tf.cast(t, tf.float32) / max(steps - 1, 1))
        else:  # per-step factor
            w = cells * c["w0"] * tf.pow(c["growth"], tf.cast(t, tf.float32))
        a = area_term(full)
        return tf.reduce_sum(w * a - reward * scale), s, a, w

    @tf.function
    def run():
        params = tf.fill((n, gh, gw), c["init"])
        vel = tf.zeros_like(params)
        rec_s = tf.TensorArray(tf.float32, size=steps)
        rec_a = tf.TensorArray(tf.float32, size=steps)
        for t in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                value, s, a, w = loss(params, t)
            g = tape.gradient(value, params)
            if c["first_momentum"] == "torch":
                vel = tf.cond(t == 0, lambda: g, lambda: MOMENTUM * vel + (1 - MOMENTUM) * g)
            else:
                vel = MOMENTUM * vel + (1 - MOMENTUM) * g
            params = tf.clip_by_value(params - c["lr"] * vel, 0.0, 1.0)
            rec_s = rec_s.write(t, s)
            rec_a = rec_a.write(t, w * a)
        return gen(params), rec_s.stack(), rec_a.stack()

    t0 = time.perf_counter()
    masks, rs, ra = run()
    sec = (time.perf_counter() - t0) / n
    return masks.numpy(), rs.numpy().T, ra.numpy().T, sec


def summary(model, images, labels, boxes, masks, tag, sec=None, mode="preserve"):
    r = {"tag": tag}
    r["point"] = float(np.mean(pointing_game(masks, boxes)))
    r["box"] = float(np.mean(share_in_box(masks, boxes)))
    r["area>.5"] = float(np.mean((masks > 0.5).mean(axis=(1, 2))))
    border = np.ones(masks.shape[1:], bool); border[3:-3, 3:-3] = False
    r["border"] = float(np.mean(masks[:, border]))
    for sig in (MAXBLUR, 20.0):
        k = kept_fraction(model, images, labels, masks, sig, mode)
        sel = k["drop"] >= 2
        r[f"top@{sig:.0f}"] = float(np.mean(k["top"][sel]))
        r[f"soft@{sig:.0f}"] = float(np.mean(k["soft"][sel]))
        r[f"n@{sig:.0f}"] = int(sel.sum())
    if sec is not None:
        r["s/img"] = round(sec, 2)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    return r
