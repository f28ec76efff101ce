"""Baseline: TorchRay (our geometry, jitter on) vs ours defaults on N images; curves."""
import sys, pickle
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
import torch
torch.set_num_threads(1)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 6
model, images, labels, boxes = load(N)
twin = torch_twin(model)
for p in twin.parameters():
    p.requires_grad_(False)
res = {}
m, h, sec = torchray(twin, images, labels)
res["torchray"] = (m, h, sec); summary(model, images, labels, boxes, m, "torchray", sec)
m, rs, ra, sec = ours(model, images, labels)
res["ours"] = (m, rs, ra, sec); summary(model, images, labels, boxes, m, "ours", sec)
pickle.dump(res, open(f"outputs/lab/run1_{N}.pkl", "wb"))
