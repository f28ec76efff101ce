import sys, pickle, glob
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
model, images, labels, boxes = load(6)
x = tf.constant(images); pyr = perturbation_pyramid(x, 8, MAXBLUR)
s = logits(model, x, labels); s0 = logits(model, pyr[:, :, :, 0].numpy(), labels)
S = np.maximum(np.maximum(abs(s), abs(s0)), abs(s - s0))
r1 = pickle.load(open("outputs/lab/run1_6.pkl", "rb"))
after = None
for f in glob.glob("outputs/lab/run3_6_0_*.pkl"):
    d = pickle.load(open(f, "rb"))
    after = d.get("w0=4.8,growth=1000.0,lr=0.1", after)
curves = {}
_, h, _ = r1["torchray"]  # (N, 2, steps): reward, regul (negative)
curves["TorchRay (our geometry)"] = (h[:, 0], -h[:, 1] / S[:, None])
_, rs, ra, _ = r1["ours"]
curves["sobol_tf before (lr 0.01)"] = (rs, ra)
_, rs, ra, _ = after
curves["sobol_tf now (lr 0.1)"] = (rs, ra)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for name, (score, area) in curves.items():
    kept = (score - s0[:, None]) / (s - s0)[:, None]
    t = np.arange(score.shape[1])
    if name.startswith("TorchRay"):  # its jitter flips the input at even steps
        t, score, area, kept = t[1::2], score[:, 1::2], area[:, 1::2], kept[:, 1::2]
    axes[0].plot(t, kept.mean(0), label=name)
    axes[1].semilogy(t, area.mean(0), label=name)
    axes[2].plot(t, (area - score / S[:, None]).mean(0), label=name)
axes[0].set(title="kept share of the logit, soft mask (TorchRay: unflipped steps)", xlabel="step", ylim=(-0.5, 1.5))
axes[1].set(title="area term (weight x area loss) / logit scale S", xlabel="step")
axes[2].set(title="objective / S (area term - logit / S)", xlabel="step"); axes[2].set_yscale("symlog")
for a in axes: a.legend(fontsize=8); a.grid(alpha=.3)
fig.suptitle("Extremal perturbations on 6 digit canvases, 64 px, preserve, area 0.1 (mean over images)")
fig.tight_layout(); fig.savefig("benchmarks/results/extremal_torchray_curves.png", dpi=80)
for name, (score, area) in curves.items():
    kept = (score - s0[:, None]) / (s - s0)[:, None]
    print(name, "kept at steps 100,200,400,799:", np.round(kept.mean(0)[[99, 199, 399, 799]], 2), 'area/S', np.round(area.mean(0)[[99, 199, 399, 799]], 1))
