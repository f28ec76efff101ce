"""`make demo`: train a small convnet on real handwritten digits, explain it with Sobol.

The digits are scikit-learn's (1,797 scans of 8x8 pixels, shipped inside the package:
no download), upsampled to 32x32. Training takes well under a minute on a laptop CPU.
Writes a PNG grid of images and Sobol heatmaps and prints where.
"""
import argparse
import os
import time

import numpy as np

from sobol_tf._quiet import import_tensorflow_quietly

# before anything imports TensorFlow: no absl/oneDNN/cuInit start-up lines
import_tensorflow_quietly()


def load_digits_32(seed=0):
    """scikit-learn's digits as (N, 32, 32, 1) floats in [0, 1], shuffled train/test."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None] / 16.0
    images = tf.image.resize(images, (32, 32), method="bilinear").numpy()
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order], digits.target[order]
    split = int(0.8 * len(images))
    return (images[:split], labels[:split]), (images[split:], labels[split:])


def train_convnet(train, test, epochs=8, seed=0):
    """A small convnet; returns (model, test accuracy)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*train, epochs=epochs, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(*test, verbose=0)
    return model, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="folder for the PNG")
    parser.add_argument("--nb-images", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    from sobol_tf.attributions import SobolAttributionMethod
    from sobol_tf.plots import plot_attributions

    start = time.perf_counter()
    train, test = load_digits_32()
    model, accuracy = train_convnet(train, test, epochs=args.epochs)
    print(f"trained a convnet on {len(train[0])} digits in {time.perf_counter() - start:.1f} s;"
          f" test accuracy {accuracy:.3f} on {len(test[0])} digits")

    images, labels = test[0][:args.nb_images], test[1][:args.nb_images]
    explainer = SobolAttributionMethod(model, grid_size=8, nb_design=32, verbose=True)
    start = time.perf_counter()
    maps = explainer.explain(images, labels)
    print(f"explained {len(images)} digits in {time.perf_counter() - start:.1f} s "
          f"({explainer.nb_design * (explainer.grid_size ** 2 + 2)} forward passes each)")

    import matplotlib

    matplotlib.use("Agg")
    predicted = np.argmax(model.predict(images, verbose=0), axis=1)
    titles = [f"label {t}, predicted {p}" for t, p in zip(labels, predicted)]
    # per digit: the digit, then its Sobol map over it; one colour bar says what red means
    figure = plot_attributions(
        maps, images, cols=4, titles=titles,
        title="Sobol total-order indices: share of the class score's variance due to "
              "each region (red: the model relies on it)")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.abspath(os.path.join(args.out, "sobol_digits.png"))
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
