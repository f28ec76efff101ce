"""The shared design plumbing of Sobol and HSIC (attributions/designs.py), on designs
and budgets whose answer is known by hand."""
import numpy as np
import pytest

from sobol_tf.attributions import HsicAttributionMethod, SobolAttributionMethod, samplers
from sobol_tf.attributions.designs import (balanced_binary_design, check_replicated,
                                           fractional_factorial_design, largest_fitting,
                                           twin_cells, untold_cells)
from sobol_tf.attributions.sobol import MAX_DESIGN_BYTES, design_bytes
from sobol_tf.errors import InvalidArgumentError


@pytest.mark.parametrize("limit", [0, 1, 2, 7, 1000, 123457])
def test_largest_fitting_is_the_largest_n_that_fits(limit):
    assert largest_fitting(lambda n: n <= limit, 1 << 40) == limit
    assert largest_fitting(lambda n: n * n <= limit, limit + 1) == int(np.sqrt(limit))


def test_the_largest_sizes_in_messages_fit_and_one_more_does_not():
    """Sobol at nb_design=32: the grid_size given as the largest that fits has a design
    within MAX_DESIGN_BYTES, and one more cell per side does not."""
    with pytest.raises(InvalidArgumentError, match=r"grid_size <= (\d+) at nb_design=32") as error:
        SobolAttributionMethod(lambda x: x, grid_size=64, nb_design=32)
    grid = int(error.value.args[0].split("grid_size <= ")[1].split(" ")[0])
    assert design_bytes(32, grid ** 2) <= MAX_DESIGN_BYTES < design_bytes(32, (grid + 1) ** 2)


def test_check_replicated_accepts_replicate_and_names_the_wrong_block():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(4, 3)), rng.uniform(size=(4, 3))
    design = samplers.replicate(a, b)
    np.testing.assert_array_equal(check_replicated(design, 4, 3), design)
    broken = design.copy()
    broken[2 * 4 + 4 + 1, 0] = 0.5          # C_1 (rows 12..15): column 0 must be A's
    with pytest.raises(InvalidArgumentError, match=r"C_1 \(rows 12 to 15\)"):
        check_replicated(broken, 4, 3)


def test_binary_designs_tell_their_cells_apart():
    design = np.array([[0, 1, 1, 0], [1, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 0]], np.float32)
    assert twin_cells(design) == (0, 1)      # column 1 is the complement of column 0
    assert "cells 0 and 1" in untold_cells(design, 4)
    assert "cell 2" not in untold_cells(design[:, 2:], 4)
    constant = np.ones((4, 2), np.float32)
    assert "keeps cell 0 in all or none" in untold_cells(constant, 4)
    balanced = balanced_binary_design(16, 20, seed=0)
    assert balanced.shape == (16, 20) and (balanced.sum(axis=0) == 8).all()
    assert untold_cells(balanced, 16) == ""


@pytest.mark.parametrize("nb_design, dimension",
                         [(2, 1), (8, 4), (16, 8), (16, 15), (128, 64), (128, 100), (256, 64)])
def test_regular_fractions_are_orthogonal_arrays(nb_design, dimension):
    """Balanced, pairwise orthogonal columns (no cell untold); with at most nb_design / 2
    cells, resolution IV: the product of two cells' +-1 columns is orthogonal to every
    column (a two-cell interaction is not read as a cell's effect)."""
    design = fractional_factorial_design(nb_design, dimension, seed=3)
    assert design.shape == (nb_design, dimension) and design.dtype == np.float32
    assert set(np.unique(design)) <= {0.0, 1.0}
    signs = 2.0 * design - 1.0
    np.testing.assert_array_equal(signs.T @ signs, nb_design * np.eye(dimension))
    assert untold_cells(design, nb_design) == ""
    products = (signs[:, :, None] * signs[:, None, :]).reshape(nb_design, -1)
    aliased = np.abs(products.T @ signs).max(axis=1).reshape(dimension, dimension)
    off_diagonal = aliased[~np.eye(dimension, dtype=bool)]
    if dimension <= nb_design // 2:
        assert off_diagonal.size == 0 or off_diagonal.max() == 0
    else:  # resolution III: some interaction is some cell's column (more cells than room)
        assert off_diagonal.max() == nb_design
    np.testing.assert_array_equal(design, fractional_factorial_design(nb_design, dimension, 3))
    if dimension > 1:
        assert not np.array_equal(design, fractional_factorial_design(nb_design, dimension, 4))


@pytest.mark.parametrize("nb_design, dimension", [(100, 10), (16, 16), (1, 1), (0, 3)])
def test_no_regular_fraction_where_there_is_none(nb_design, dimension):
    assert fractional_factorial_design(nb_design, dimension, seed=0) is None


def test_hsic_and_sobol_share_the_cells_of_every_kind():
    rows = np.ones((1, 5), np.float32)
    series = np.ones((1, 6, 2), np.float32)
    for method, args in ((SobolAttributionMethod, {"nb_design": 8}),
                         (HsicAttributionMethod, {"nb_design": 16})):
        explainer = method(lambda x: x[:, :1] if x.ndim == 2 else x[:, 0, :1], grid_size=3,
                           **args)
        explainer(rows, [0])
        assert tuple(explainer.masks.shape[1:]) == (1, 5, 1)     # a cell per feature
        explainer(series, [0])
        assert tuple(explainer.masks.shape[1:]) == (1, 3, 2)     # 3 windows x 2 channels
