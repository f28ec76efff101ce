"""Speed of CRAFT's concept importance (`make bench`): sobol_tf.concepts.CraftTf against
Xplique's CraftTf on the same model, images and concept bank.

A small convnet (32x32x3 inputs, random weights) is cut after its second ReLU block:
g maps images to (8, 8, 64) activations, h maps those to 10 logits. Our CraftTf is
fitted once (its NMF gives the concept bank W and the fitted reducer); Xplique's CraftTf
gets the very same factorisation, so both ``estimate_importance()`` compute the Sobol
indices of the same concepts on the same images with the same design (Xplique's
HaltonSequenceRS is our default sampler) and the same Jansen estimator: the importances
are printed side by side (they agree to float error) and the wall times are measured
interleaved, median of repeats, after a warm-up.

Usage: python benchmarks/bench_concepts.py [--quick]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sobol_tf next to this benchmark

from common import machine, print_table, side_by_side, xplique_available  # noqa: E402

import numpy as np  # noqa: E402


def cut_convnet(seed=0):
    """g: (32, 32, 3) -> (8, 8, 64) non-negative activations; h: -> 10 logits."""
    import keras

    keras.utils.set_random_seed(seed)
    g = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
    ])
    h = keras.Sequential([
        keras.Input((8, 8, 64)),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    return g, h


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args()
    nb_images, repeats = (4, 2) if args.quick else (16, 3)
    concepts, nb_design, batch_size, patch = 10, 32, 64, 16

    from sobol_tf.concepts import CraftTf

    g, h = cut_convnet()
    images = np.random.default_rng(0).uniform(0, 1, (nb_images, 32, 32, 3)).astype(np.float32)
    ours = CraftTf(g, h, concepts, batch_size, patch, seed=0)
    ours.fit(images, class_id=0)
    functions = {"sobol_tf": lambda: ours.estimate_importance(nb_design=nb_design)}
    theirs = None
    if xplique_available():
        from xplique.concepts import CraftTf as XpliqueCraftTf
        from xplique.concepts.craft import Factorization

        theirs = XpliqueCraftTf(g, h, concepts, batch_size, patch)
        fitted = ours.factorization
        theirs.factorization = Factorization(
            inputs=fitted.inputs, class_id=fitted.class_id, crops=fitted.crops,
            reducer=fitted.reducer, crops_u=fitted.crops_u,
            concept_bank_w=fitted.concept_bank_w)
        functions["xplique"] = lambda: theirs.estimate_importance(nb_design=nb_design)

    times = side_by_side(functions, repeats)
    forwards = nb_images * nb_design * (concepts + 2)
    print(f"\nCRAFT estimate_importance: {nb_images} images, {concepts} concepts, "
          f"nb_design={nb_design} ({forwards} forward passes of h), batch_size={batch_size}"
          f"\n{machine()}")
    rows = [["sobol_tf", f"{times['sobol_tf']:.3f}", "1.00"]]
    if theirs is None:
        print("(xplique is not importable: its line is skipped)")
    else:
        rows.append(["xplique", f"{times['xplique']:.3f}",
                     f"{times['xplique'] / times['sobol_tf']:.2f}"])
    print_table("seconds (median); ratio = time / sobol_tf's time", ["method", "s", "ratio"],
                rows)
    if theirs is not None:
        mine = ours.estimate_importance(nb_design=nb_design)
        other = np.asarray(theirs.estimate_importance(nb_design=nb_design))
        print(f"\nimportances, same bank and design: max |sobol_tf - xplique| = "
              f"{np.max(np.abs(mine - other)):.2e} (largest {mine.max():.3f}); same ranking: "
              f"{bool(np.array_equal(np.argsort(-mine), np.argsort(-other)))}")


if __name__ == "__main__":
    main()
