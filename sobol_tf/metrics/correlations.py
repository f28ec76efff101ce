"""Spearman's rank correlation, row by row: the one implementation every metric uses.

Spearman's rho is Pearson's correlation of the ranks (ties sharing their average rank,
as ``scipy.stats.rankdata``). It is undefined when either row is constant: its ranks
have no variance and the ratio is 0 / 0.

Convention of this library: where rho is undefined, :func:`spearman_rows` gives **0**
(a constant row carries no ranking, hence no evidence of agreement or disagreement), as
Xplique does in its MuFidelity and randomization metrics, and whether one row or both
are constant. Quantus returns NaN there (``scipy.stats.spearmanr``), which turns a mean
over inputs into NaN. A metric that must tell "undefined" apart (MeGe's distances) uses
:func:`rank_correlation`, which returns NaN there.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from sobol_tf.errors import InvalidArgumentError


def rank_correlation(first: ArrayLike, second: ArrayLike) -> np.ndarray:
    """Spearman's rho of each row of ``first`` with the same row of ``second``, NaN
    where it is undefined (a constant row).

    Args:
        first: array (N, S) of real numbers.
        second: array (N, S).

    Returns:
        float64 numpy (N,) in [-1, 1], NaN for the rows where either is constant.

    Raises:
        InvalidArgumentError: arrays that are not 2-D or of different shapes.

    Example:
        >>> rank_correlation([[1, 2, 3]], [[3, 2, 1]])
        array([-1.])
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    if first.ndim != 2 or first.shape != second.shape:
        raise InvalidArgumentError(
            f"the rows to correlate must be two arrays (N, S) of one shape, got shapes "
            f"{first.shape} and {second.shape}.")
    ranks_a = rankdata(first, axis=1)
    ranks_b = rankdata(second, axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    scale = np.sqrt(np.sum(ranks_a ** 2, axis=1) * np.sum(ranks_b ** 2, axis=1))
    product = np.sum(ranks_a * ranks_b, axis=1)
    defined = scale > 0
    rho = product / np.where(defined, scale, 1.0)
    return np.where(defined, np.clip(rho, -1.0, 1.0), np.nan)


def spearman_rows(first: ArrayLike, second: ArrayLike) -> np.ndarray:
    """Spearman's rho of each row of ``first`` with the same row of ``second``; 0 where
    it is undefined (either row constant: see the module's convention).

    Used by MuFidelity (drops of the score against attributions of the subsets) and by
    the randomization metrics (maps before and after the randomization).

    Args:
        first: array (N, S) of real numbers.
        second: array (N, S).

    Returns:
        float64 numpy (N,) in [-1, 1].

    Raises:
        InvalidArgumentError: arrays that are not 2-D or of different shapes.

    Example:
        >>> spearman_rows([[1, 2, 3], [1, 1, 1]], [[1, 3, 2], [0, 1, 2]])
        array([0.5, 0. ])
    """
    return np.nan_to_num(rank_correlation(first, second), nan=0.0)
