import sys, pickle
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
N = int(sys.argv[1]); offset = int(sys.argv[3]) if len(sys.argv) > 3 else 0
model, images, labels, boxes = load(N, offset)
x = tf.constant(images); pyr = perturbation_pyramid(x, 8, MAXBLUR)
s = logits(model, x, labels); s0 = logits(model, pyr[:, :, :, 0].numpy(), labels)
print("size", np.round(np.maximum(np.maximum(abs(s), abs(s0)), abs(s - s0)), 2))
out = {}
for spec in sys.argv[2].split(";"):
    kw = eval(f"dict({spec})")
    m, rs, ra, sec = ours(model, images, labels, **kw)
    out[spec] = (m, rs, ra, sec)
    summary(model, images, labels, boxes, m, spec, sec)
pickle.dump(out, open(f"outputs/lab/run3_{N}_{offset}_{abs(hash(sys.argv[2]))}.pkl", "wb"))
