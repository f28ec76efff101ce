import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import perturbations
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError


def test_inpainting_moves_masked_pixels_to_the_baseline():
    x = tf.fill((1, 4, 4, 3), 2.0)
    masks = tf.constant(np.array([[[1.0], [0.0], [0.5], [1.0]]] * 4, np.float32)[None])
    p = perturbations.Inpainting(baseline=-1.0)
    out = p.apply(x, masks, p.baselines(x)).numpy()
    np.testing.assert_allclose(out[0, 0, :, 0], [2.0, -1.0, 0.5, 2.0])


def box_blur_by_hand(image, k):
    """cv2.blur(image, (k, k)) with BORDER_REFLECT_101, written with loops."""
    h, w = image.shape[:2]

    def reflect(i, n):
        while i < 0 or i >= n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            rows = [reflect(r + d, h) for d in range(-(k // 2), k - k // 2)]
            cols = [reflect(c + d, w) for d in range(-(k // 2), k - k // 2)]
            out[r, c] = image[np.ix_(rows, cols)].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("k", [3, 4])
def test_box_blur_matches_the_definition(k):
    image = np.random.default_rng(0).uniform(size=(7, 6, 2)).astype(np.float32)
    blurred = perturbations.box_blur(tf.constant(image[None]), k).numpy()[0]
    np.testing.assert_allclose(blurred, box_blur_by_hand(image, k), atol=1e-5)


def test_blurring_keeps_unmasked_pixels_and_blurs_masked_ones():
    x = tf.constant(np.random.default_rng(0).uniform(size=(2, 8, 8, 1)), tf.float32)
    p = perturbations.Blurring(sigma=3)
    base = p.baselines(x)
    np.testing.assert_allclose(p.apply(x, tf.ones((2, 8, 8, 1)), base), x, atol=1e-6)
    np.testing.assert_allclose(p.apply(x, tf.zeros((2, 8, 8, 1)), base), base, atol=1e-6)


def test_amplitude_follows_the_reference():
    x = tf.fill((1, 2, 2, 1), 4.0)
    masks = tf.constant([[[[0.0], [1.0]], [[0.5], [0.25]]]])
    out = perturbations.Amplitude(sigma=2.0).apply(x, masks, None).numpy()
    np.testing.assert_allclose(out[0, ..., 0], [[-4.0, 4.0], [0.0, -2.0]])


def test_get():
    assert isinstance(perturbations.get("blur"), perturbations.Blurring)
    custom = perturbations.get(lambda x, m: x * m)
    assert isinstance(custom, perturbations.CallablePerturbation)
    with pytest.raises(InvalidArgumentError, match="'noise'"):
        perturbations.get("noise")
    with pytest.raises(InvalidTypeError):
        perturbations.get(1.5)
