"""The lab's replica of the loop against ExtremalPerturbation itself (same masks)."""
import sys
sys.path.insert(0, "benchmarks/extremal_lab")
from lab import *
from sobol_tf.attributions import ExtremalPerturbation
model, images, labels, boxes = load(2)
for lr in (0.1, 0.01):
    library = ExtremalPerturbation(model, steps=100, learning_rate=lr).explain_masks(
        images, labels).numpy()[:, 0, :, :, 0]
    replica = ours(model, images, labels, steps=100, lr=lr)[0]
    print("lr", lr, "largest |library - replica|:", float(np.abs(library - replica).max()))
