"""Replicated designs for Sobol index estimation, drawn with scipy.stats.qmc.

A sampler draws the two independent matrices A and B of ``nb_design`` points in
``[0, 1]^dimension`` together, as one design of ``2 * dimension`` columns (so that for a
quasi-Monte Carlo sequence A and B come from one low-discrepancy set), and builds the
replicated design

    [A, B, C_1, ..., C_d]      with C_i = A whose column i is taken from B,

of ``nb_design * (dimension + 2)`` rows, the layout the estimators read.
"""
import numpy as np
from scipy.stats import qmc

from sobol_tf._utils import check_positive_int, lookup
from sobol_tf.errors import InvalidTypeError


def replicate(a, b):
    """Build the replicated design [A, B, C_1..C_d] from A and B of shape (n, d).

    Returns:
        float32 array (n * (d + 2), d).
    """
    n, d = a.shape
    c = np.repeat(a[None], d, axis=0)  # (d, n, d)
    columns = np.arange(d)
    c[columns, :, columns] = b.T
    return np.concatenate([a, b, c.reshape(n * d, d)], axis=0).astype(np.float32)


class ReplicatedSampler:
    """Base of the samplers: ``sampler(dimension, nb_design)`` -> replicated design.

    Subclasses implement ``_draw(dimension, nb_points)`` returning (nb_points, dimension)
    points in [0, 1]. Any object with ``__call__(dimension, nb_design)`` returning the
    replicated design can be given to :class:`SobolAttributionMethod` instead.
    """

    def __call__(self, dimension, nb_design):
        """Return the replicated design (nb_design * (dimension + 2), dimension), float32."""
        dimension = check_positive_int("dimension", dimension)
        nb_design = check_positive_int("nb_design", nb_design)
        ab = np.asarray(self._draw(2 * dimension, nb_design), dtype=np.float64)
        return replicate(ab[:, :dimension], ab[:, dimension:])

    def sample(self, dimension, nb_points):
        """Plain points (no replication): float64 array (nb_points, dimension) in [0, 1].

        Used by methods that need a single design rather than [A, B, C_1..C_d], such as
        :class:`~sobol_tf.attributions.hsic.HsicAttributionMethod`.
        """
        dimension = check_positive_int("dimension", dimension)
        nb_points = check_positive_int("nb_points", nb_points)
        return np.asarray(self._draw(dimension, nb_points), dtype=np.float64)

    def _draw(self, dimension, nb_points):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class SobolSequence(ReplicatedSampler):
    """Sobol low-discrepancy sequence (default).

    Args:
        scramble: False (default) gives the deterministic, unscrambled sequence of the
            reference implementation; True an Owen-scrambled one, reproducible with seed.
        seed: seed of the scrambling.
    """

    def __init__(self, scramble=False, seed=None):
        self.scramble = bool(scramble)
        self.seed = seed

    def _draw(self, dimension, nb_points):
        engine = qmc.Sobol(dimension, scramble=self.scramble, seed=self.seed)
        return engine.random_base2(int(np.log2(nb_points))) if _is_pow2(nb_points) \
            else engine.random(nb_points)


class HaltonSequence(ReplicatedSampler):
    """Halton low-discrepancy sequence, scrambled by default (scipy's default).

    Args:
        scramble: randomise the sequence (reproducible with ``seed``).
        seed: seed of the scrambling.
    """

    def __init__(self, scramble=True, seed=None):
        self.scramble = bool(scramble)
        self.seed = seed

    def _draw(self, dimension, nb_points):
        return qmc.Halton(dimension, scramble=self.scramble, seed=self.seed).random(nb_points)


class LatinHypercube(ReplicatedSampler):
    """Latin hypercube sampling.

    Args:
        seed: seed of the permutations and jitter.
    """

    def __init__(self, seed=None):
        self.seed = seed

    def _draw(self, dimension, nb_points):
        return qmc.LatinHypercube(dimension, seed=self.seed).random(nb_points)


class MonteCarlo(ReplicatedSampler):
    """Plain Monte Carlo: independent uniform points.

    Args:
        seed: seed of the generator.
    """

    def __init__(self, seed=None):
        self.seed = seed

    def _draw(self, dimension, nb_points):
        return np.random.default_rng(self.seed).random((nb_points, dimension))


def _is_pow2(n):
    return n > 0 and not n & (n - 1)


SAMPLERS = {
    "sobol": SobolSequence,
    "halton": HaltonSequence,
    "lhs": LatinHypercube,
    "latin_hypercube": LatinHypercube,
    "monte_carlo": MonteCarlo,
    "mc": MonteCarlo,
}


def get(identifier, seed=None):
    """Resolve a sampler from None (Sobol), a name or an object.

    Args:
        identifier: None, one of 'sobol', 'halton', 'lhs' (or 'latin_hypercube'),
            'monte_carlo' (or 'mc'), or a callable ``(dimension, nb_design) -> design``.
        seed: passed to a sampler built from a name. With ``seed`` set, 'sobol' is
            scrambled; without, it is the unscrambled sequence of the reference.

    Raises:
        InvalidArgumentError: an unknown name.
        InvalidTypeError: neither None, a string nor a callable.
    """
    if identifier is None:
        identifier = "sobol"
    if isinstance(identifier, str):
        sampler = lookup("sampler", identifier, SAMPLERS, "a sampler object")
        if sampler is SobolSequence:
            return SobolSequence(scramble=seed is not None, seed=seed)
        return sampler(seed=seed)
    if callable(identifier):
        return identifier
    raise InvalidTypeError(
        f"sampler must be a name or a callable (dimension, nb_design) -> design, got "
        f"{type(identifier).__name__}."
    )
