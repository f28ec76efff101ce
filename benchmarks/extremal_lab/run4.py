import sys, pickle
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
import torch; torch.set_num_threads(1)
N = int(sys.argv[1]); offset = int(sys.argv[3])
model, images, labels, boxes = load(N, offset)
out = {}
if len(sys.argv) > 4:
    twin = torch_twin(model)
    for p in twin.parameters(): p.requires_grad_(False)
    m, h, sec = torchray(twin, images, labels)
    out["torchray"] = (m, h, sec); summary(model, images, labels, boxes, m, "torchray", sec)
for spec in sys.argv[2].split(";"):
    kw = eval(f"dict({spec})")
    m, rs, ra, sec = ours(model, images, labels, **kw)
    out[spec] = (m, rs, ra, sec)
    summary(model, images, labels, boxes, m, spec, sec)
pickle.dump(out, open(f"outputs/lab/run4_{N}_{offset}.pkl", "wb"))
