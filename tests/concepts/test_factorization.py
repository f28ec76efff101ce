"""CRAFT's model-free parts (sobol_tf.concepts.factorization): crops where the stride puts
them, an exact non-negative factorisation recovered, coefficients against a fixed bank,
images checked without touching the caller's array, and the names still importable from
sobol_tf.concepts.craft."""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sobol_tf.concepts import factorization  # noqa: E402
from sobol_tf.concepts.factorization import (STRIDE_SHARE, check_images,  # noqa: E402
                                             coefficients_of, extract_crops, factorize)
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError  # noqa: E402


def test_crops_are_the_windows_at_every_stride_image_by_image_row_by_row():
    images = np.arange(2 * 7 * 9 * 2, dtype=np.float32).reshape(2, 7, 9, 2)
    patch = 4
    stride = int(STRIDE_SHARE * patch)  # 3
    crops = extract_crops(images, patch)
    rows, cols = (7 - patch) // stride + 1, (9 - patch) // stride + 1  # 2, 2
    expected = [images[n, r * stride:r * stride + patch, c * stride:c * stride + patch]
                for n in range(2) for r in range(rows) for c in range(cols)]
    np.testing.assert_array_equal(crops, np.stack(expected))
    # a patch of 1 pixel: the stride is at least 1, every pixel is a crop
    np.testing.assert_array_equal(extract_crops(images, 1), images.reshape(-1, 1, 1, 2))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 200 steps
def test_an_exact_low_rank_non_negative_product_is_recovered():
    rng = np.random.default_rng(0)
    bank = np.array([[1.0, 0.0, 2.0, 0.0, 0.5], [0.0, 3.0, 0.0, 1.0, 0.0]], np.float32)
    coefficients = rng.uniform(0.0, 2.0, (40, 2)).astype(np.float32)
    activations = coefficients @ bank
    reducer, crops_u, bank_w = factorize(activations, 2, 0)
    assert crops_u.dtype == bank_w.dtype == np.float32
    assert crops_u.shape == (40, 2) and bank_w.shape == (2, 5)
    assert crops_u.min() >= 0 and bank_w.min() >= 0
    error = np.linalg.norm(crops_u @ bank_w - activations) / np.linalg.norm(activations)
    assert error < 0.02
    # each recovered concept points along one planted row (up to order and scale)
    cosines = (bank_w / np.linalg.norm(bank_w, axis=1, keepdims=True)) @ (
        bank / np.linalg.norm(bank, axis=1, keepdims=True)).T
    assert np.all(np.sort(cosines.max(axis=1)) > 0.99)
    # the coefficients of new activations against the fixed bank, at every position
    new = rng.uniform(0.0, 2.0, (3, 2, 2, 2)).astype(np.float32)
    found = coefficients_of(reducer, new @ bank)
    assert found.shape == (3, 2, 2, 2) and found.dtype == np.float32
    rebuilt = found @ bank_w
    # (the regularisation of W and 200 iterations leave a few percent)
    assert np.linalg.norm(rebuilt - new @ bank) / np.linalg.norm(new @ bank) < 0.05


def test_check_images_copies_and_checks():
    images = np.ones((2, 4, 4, 1), np.float64)
    checked = check_images(images, "inputs")
    assert checked.dtype == np.float32 and checked.shape == images.shape
    checked[0] = 5.0
    assert images.max() == 1.0  # a copy: the caller's array is untouched
    assert check_images(images[0], "img", allow_single=True).shape == (1, 4, 4, 1)
    with pytest.raises(InvalidArgumentError, match=r"img must be non-empty images"):
        check_images(images[0], "img")
    with pytest.raises(InvalidArgumentError, match=r"got shape \(0, 4, 4, 1\)"):
        check_images(images[:0], "inputs")
    with pytest.raises(InvalidTypeError, match="real numbers"):
        check_images(np.full((1, 2, 2, 1), "a"), "inputs")
    bad = images.copy()
    bad[1, 2, 3, 0] = np.inf
    with pytest.raises(InvalidArgumentError, match="1 NaN or infinite"):
        check_images(bad, "inputs")


def test_the_names_moved_out_of_craft_py_are_still_importable_from_there():
    from sobol_tf.concepts import craft

    for name in ("Factorization", "Sensitivity", "STRIDE_SHARE", "NMF_ALPHA_W"):
        assert getattr(craft, name) is getattr(factorization, name)
