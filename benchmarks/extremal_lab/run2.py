import sys, pickle
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
N = int(sys.argv[1]); which = sys.argv[2].split(",")
model, images, labels, boxes = load(N)
TR = dict(normalize=False, w0=300.0, growth=1.0035, schedule="step", area_norm="full",
          ref="full", ties="index", jitter=True, slope_at_one=False, first_momentum="torch")
CONFIGS = {
    "replica_torchray": TR,
    "objective_torchray": dict(normalize=False, w0=300.0, growth=1.0035, schedule="step", area_norm="full"),
    "jitter": dict(jitter=True),
    "ref_full": dict(ref="full"),
    "ties_index": dict(ties="index"),
    "no_slope_at_one": dict(slope_at_one=False),
    "momentum_torch": dict(first_momentum="torch"),
    "tr_minus_objective": dict(TR, normalize=True, w0=4.8, growth=1000.0, schedule="span", area_norm="image"),
}
out = {}
for name in which:
    m, rs, ra, sec = ours(model, images, labels, **CONFIGS[name])
    out[name] = (m, rs, ra, sec)
    summary(model, images, labels, boxes, m, name, sec)
pickle.dump(out, open(f"outputs/lab/run2_{N}_{sys.argv[2][:40]}.pkl", "wb"))
