"""Replicated designs for Sobol index estimation, drawn with scipy.stats.qmc.

A sampler draws the two independent matrices A and B of ``nb_design`` points in
``[0, 1]^dimension`` together, as one design of ``2 * dimension`` columns (so that for a
quasi-Monte Carlo sequence A and B come from one low-discrepancy set), and builds the
replicated design

    [A, B, C_1, ..., C_d]      with C_i = A whose column i is taken from B,

of ``nb_design * (dimension + 2)`` rows, the layout the estimators read.

A design where column i of A equals column i of B gives C_i == A, so the index of
dimension i would be 0 whatever the model does ("tied" dimensions). The unscrambled
Sobol sequence gives such ties when ``nb_design`` is small for the dimension (e.g. 3 of
16 dimensions at nb_design=8, every dimension at nb_design=2). The default sampler
(``get(None)`` or ``get('sobol')`` without a seed, i.e. ``SobolSequence(scramble='auto')``)
then uses the Owen-scrambled sequence of seed :data:`FALLBACK_SEED` instead, so results
stay reproducible; any other sampler that ties a dimension is refused with
InvalidArgumentError.

Xplique's names: the replicated samplers ``ScipySobolSequenceRS``, ``TFSobolSequenceRS``,
``HaltonSequenceRS``, ``LatinHypercubeRS`` (and ``MonteCarloRS``), and the plain-point
samplers of HSIC, :class:`Sampler` with ``binary=``: ``TFSobolSequence``,
``ScipySobolSequence``, ``HaltonPoints`` and ``LatinHypercubePoints`` (Xplique's
``HaltonSequence`` and ``LatinHypercube``, under those names in
:mod:`sobol_tf.attributions.global_sensitivity_analysis`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import qmc

from sobol_tf._utils import check_positive_int, check_seed, lookup
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: seed of the Owen-scrambled Sobol sequence the default sampler falls back to when the
#: unscrambled one ties a column of A to the same column of B.
FALLBACK_SEED = 0

#: the error path looks for a tie-free nb_design of the unscrambled Sobol sequence up to
#: this many points.
_LARGEST_SUGGESTION = 1 << 12


def replicate(a: Any, b: Any) -> np.ndarray:
    """Build the replicated design [A, B, C_1..C_d] from A and B of shape (n, d).

    Written straight into one float32 array (no float64 or (d, n, d) temporaries), so
    that the peak memory is the design itself.

    Returns:
        float32 array (n * (d + 2), d).
    """
    n, d = a.shape
    design = np.empty((n * (d + 2), d), np.float32)
    design[:n] = a
    design[n:2 * n] = b
    c = design[2 * n:].reshape(d, n, d)
    c[:] = design[None, :n]
    columns = np.arange(d)
    c[columns, :, columns] = design[n:2 * n].T
    return design


def tied_dimensions(design: Any, nb_design: int) -> np.ndarray:
    """Dimensions i whose column in A equals the one in B (so C_i == A): int array."""
    a, b = design[:nb_design], design[nb_design:2 * nb_design]
    return np.flatnonzero(np.all(a == b, axis=0))


def check_design(design: Any, expected_shape: tuple, who: str) -> np.ndarray:
    """Raise InvalidArgumentError unless ``design`` has ``expected_shape`` and values in [0, 1].

    Args:
        design: array-like returned by a sampler.
        expected_shape: the shape it must have.
        who: what drew it, for the message (e.g. "sampler").

    Returns:
        the design as a numpy array.
    """
    design = np.asarray(design)
    if design.shape != tuple(expected_shape):
        raise InvalidArgumentError(
            f"{who} returned a design of shape {design.shape}, expected {tuple(expected_shape)}."
        )
    if design.size and not (np.all(np.isfinite(design)) and design.min() >= 0
                            and design.max() <= 1):
        finite = np.isfinite(design)
        low, high = (design[finite].min(), design[finite].max()) if finite.any() else (None,) * 2
        raise InvalidArgumentError(
            f"{who} returned values outside [0, 1] or non-finite ({design.size - int(finite.sum())}"
            f" non-finite of {design.size}; finite ones from {low} to {high}); a design's "
            "points must lie in [0, 1]."
        )
    return design


def tied_design_error(tied: Any, nb_design: int, dimension: int,
                      suggestion: int | None = None) -> InvalidArgumentError:
    """InvalidArgumentError for a replicated design with tied dimensions ``tied``."""
    listed = tied[:10].tolist()
    more = f" and {tied.size - 10} more" if tied.size > 10 else ""
    larger = (f"a larger nb_design (nb_design={suggestion} has no tie)" if suggestion
              else "a larger nb_design")
    return InvalidArgumentError(
        f"the sampler's design with nb_design={nb_design} gives A and B the same column for "
        f"dimension(s) {listed}{more} of {dimension} (grid cells, row-major, for the Sobol "
        "attribution method), so C_i == A and their index would be 0 whatever the model "
        f"does; use {larger} or a scrambled sampler (sampler='sobol' with a seed, or "
        "SobolSequence(scramble=True, seed=0))."
    )


class ReplicatedSampler:
    """Base of the samplers: ``sampler(dimension, nb_design)`` -> replicated design.

    Subclasses implement ``_draw(dimension, nb_points)`` returning (nb_points, dimension)
    points in [0, 1]. Any object with ``__call__(dimension, nb_design)`` returning the
    replicated design can be given to :class:`SobolAttributionMethod` instead.

    Attributes:
        max_dimension: the most dimensions ``_draw`` supports (None: no limit). The
            replicated design draws A and B together, so it supports half as many.
    """

    max_dimension: int | None = None

    def __call__(self, dimension: int, nb_design: int) -> np.ndarray:
        """Return the replicated design (nb_design * (dimension + 2), dimension), float32.

        Raises:
            InvalidArgumentError: ``2 * dimension`` over :attr:`max_dimension`, points
                outside [0, 1], or a dimension whose column in A equals its column in B
                (see the module's docstring).
        """
        dimension = check_positive_int("dimension", dimension)
        nb_design = check_positive_int("nb_design", nb_design)
        self._check_dimension(2 * dimension, "2 * dimension (A and B are drawn together)")
        ab = self._draw_ab(dimension, nb_design)
        ab = check_design(ab, (nb_design, 2 * dimension), repr(self))
        design = replicate(ab[:, :dimension], ab[:, dimension:])
        tied = tied_dimensions(design, nb_design)
        if tied.size:
            raise tied_design_error(tied, nb_design, dimension,
                                    self._untied_nb_design(dimension, nb_design))
        return design

    def sample(self, dimension: int, nb_points: int) -> np.ndarray:
        """Plain points (no replication): float64 array (nb_points, dimension) in [0, 1].

        Used by methods that need a single design rather than [A, B, C_1..C_d], such as
        :class:`~sobol_tf.attributions.hsic.HsicAttributionMethod`.
        """
        dimension = check_positive_int("dimension", dimension)
        nb_points = check_positive_int("nb_points", nb_points)
        self._check_dimension(dimension, "dimension")
        points = np.asarray(self._draw(dimension, nb_points), dtype=np.float64)
        return check_design(points, (nb_points, dimension), repr(self))

    def _check_dimension(self, needed, what):
        if self.max_dimension is not None and needed > self.max_dimension:
            raise InvalidArgumentError(
                f"{type(self).__name__} supports at most {self.max_dimension} dimensions, "
                f"got {what} = {needed}; use fewer dimensions (a smaller grid_size) or "
                "another sampler ('halton', 'lhs', 'monte_carlo')."
            )

    def _draw_ab(self, dimension, nb_design):
        """A and B side by side: (nb_design, 2 * dimension) points in [0, 1]."""
        return self._draw(2 * dimension, nb_design)

    def _untied_nb_design(self, dimension, nb_design):
        """A nb_design without tied dimensions to suggest, or None if unknown."""
        return None

    def _draw(self, dimension, nb_points):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class SobolSequence(ReplicatedSampler):
    """Sobol low-discrepancy sequence (default).

    Args:
        scramble: False gives the deterministic, unscrambled sequence of the reference
            implementation; True an Owen-scrambled one, reproducible with seed; 'auto'
            (what ``get(None)`` gives) the unscrambled sequence unless it would tie a
            column of A to the same column of B, then the scrambled one of ``seed`` (or
            :data:`FALLBACK_SEED` when ``seed`` is None).
        seed: seed of the scrambling: None, an integer >= 0 or a numpy Generator (one
            integer is drawn from it; see :func:`~sobol_tf._utils.validation.check_seed`).

    Raises:
        InvalidArgumentError, InvalidTypeError: another ``seed``.
    """

    max_dimension = qmc.Sobol.MAXDIM

    def __init__(self, scramble: Any = False, seed: Any = None) -> None:
        if scramble != "auto":
            scramble = bool(scramble)
        self.scramble = scramble
        self.seed = check_seed(seed)

    def _draw_ab(self, dimension, nb_design):
        if self.scramble != "auto":
            return super()._draw_ab(dimension, nb_design)
        ab = self._sobol(2 * dimension, nb_design, False, None)
        if np.any(np.all(ab[:, :dimension].astype(np.float32)
                         == ab[:, dimension:].astype(np.float32), axis=0)):
            seed = FALLBACK_SEED if self.seed is None else self.seed
            ab = self._sobol(2 * dimension, nb_design, True, seed)
        return ab

    def _untied_nb_design(self, dimension, nb_design):
        if self.scramble is not False:
            return None
        nb_points = 2 * nb_design
        while nb_points <= _LARGEST_SUGGESTION and nb_points * dimension <= 1 << 22:
            ab = self._sobol(2 * dimension, nb_points, False, None)
            if not np.any(np.all(ab[:, :dimension] == ab[:, dimension:], axis=0)):
                return nb_points
            nb_points *= 2
        return None

    def _draw(self, dimension, nb_points):
        return self._sobol(dimension, nb_points, self.scramble is True, self.seed)

    @staticmethod
    def _sobol(dimension, nb_points, scramble, seed):
        engine = qmc.Sobol(dimension, scramble=scramble, seed=seed)
        return engine.random_base2(int(np.log2(nb_points))) if _is_pow2(nb_points) \
            else engine.random(nb_points)


class HaltonSequence(ReplicatedSampler):
    """Halton low-discrepancy sequence, scrambled by default (scipy's default).

    Args:
        scramble: randomise the sequence (reproducible with ``seed``).
        seed: seed of the scrambling (as :class:`SobolSequence`).
    """

    def __init__(self, scramble: bool = True, seed: Any = None) -> None:
        self.scramble = bool(scramble)
        self.seed = check_seed(seed)

    def _draw(self, dimension, nb_points):
        return qmc.Halton(dimension, scramble=self.scramble, seed=self.seed).random(nb_points)


class LatinHypercube(ReplicatedSampler):
    """Latin hypercube sampling.

    Args:
        seed: seed of the permutations and jitter (as :class:`SobolSequence`).
    """

    def __init__(self, seed: Any = None) -> None:
        self.seed = check_seed(seed)

    def _draw(self, dimension, nb_points):
        return qmc.LatinHypercube(dimension, seed=self.seed).random(nb_points)


class MonteCarlo(ReplicatedSampler):
    """Plain Monte Carlo: independent uniform points.

    Args:
        seed: seed of the generator (as :class:`SobolSequence`).
    """

    def __init__(self, seed: Any = None) -> None:
        self.seed = check_seed(seed)

    def _draw(self, dimension, nb_points):
        return np.random.default_rng(self.seed).random((nb_points, dimension))


class ScipySobolSequenceRS(SobolSequence):
    """Xplique's name: scipy's unscrambled Sobol sequence, A and B drawn together.

    The same design as ``SobolSequence(scramble=False)``: a design that ties a dimension
    (small ``nb_design``) is refused where Xplique would return it.
    """

    def __init__(self):
        super().__init__(scramble=False)


class TFSobolSequenceRS(ReplicatedSampler):
    """Xplique's default sampler: TensorFlow's Sobol sequence (``tf.math.sobol_sample``,
    which starts after the all-zero point), A and B drawn together. Returns a float32
    numpy array (Xplique: a tf.Tensor of the same values)."""

    max_dimension = 21200  # the dimensions tf.math.sobol_sample has direction numbers for

    def _draw(self, dimension, nb_points):
        import tensorflow as tf  # noqa: PLC0415 (samplers stay importable without TF)
        return tf.math.sobol_sample(dimension, nb_points, dtype=tf.float64).numpy()


class HaltonSequenceRS(HaltonSequence):
    """Xplique's name: the unscrambled Halton sequence (Xplique's choice; ours,
    :class:`HaltonSequence`, scrambles by default)."""

    def __init__(self):
        super().__init__(scramble=False)


class LatinHypercubeRS(LatinHypercube):
    """Xplique's name: Latin hypercube sampling, unseeded unless ``seed`` is given."""


class MonteCarloRS(MonteCarlo):
    """Plain Monte Carlo replicated design (:class:`MonteCarlo`; not in Xplique 2.0)."""


class Sampler:
    """Xplique's plain samplers (for HSIC): ``sampler(dimension, nb_design)`` -> points.

    Returns float32 (nb_design, dimension) points in [0, 1], rounded to {0, 1} when
    ``binary`` is True (Xplique's ``make_binary``). Subclasses implement ``_draw``.

    Args:
        binary: round the points to 0 or 1.
    """

    def __init__(self, binary: bool = False) -> None:
        self.binary = bool(binary)

    def __call__(self, dimension: int, nb_design: int) -> Any:
        dimension = check_positive_int("dimension", dimension)
        nb_design = check_positive_int("nb_design", nb_design)
        points = check_design(np.asarray(self._draw(dimension, nb_design), np.float32),
                              (nb_design, dimension), repr(self))
        return np.round(points) if self.binary else points

    def _draw(self, dimension, nb_points):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(binary={self.binary})"


class TFSobolSequence(Sampler):
    """TensorFlow's Sobol sequence as plain points (Xplique's HSIC default, binary)."""

    def _draw(self, dimension, nb_points):
        return TFSobolSequenceRS()._draw(dimension, nb_points)


class ScipySobolSequence(Sampler):
    """scipy's unscrambled Sobol sequence as plain points."""

    def _draw(self, dimension, nb_points):
        return qmc.Sobol(dimension, scramble=False).random(nb_points)


class HaltonPoints(Sampler):
    """The unscrambled Halton sequence as plain points (Xplique's ``HaltonSequence``)."""

    def _draw(self, dimension, nb_points):
        return qmc.Halton(dimension, scramble=False).random(nb_points)


class LatinHypercubePoints(Sampler):
    """Latin hypercube points (Xplique's ``LatinHypercube``).

    Args:
        binary: as :class:`Sampler`.
        seed: seed of the permutations and jitter (None: a fresh draw, as Xplique).
    """

    def __init__(self, binary: bool = False, seed: Any = None) -> None:
        super().__init__(binary)
        self.seed = check_seed(seed)

    def _draw(self, dimension, nb_points):
        return qmc.LatinHypercube(dimension, seed=self.seed).random(nb_points)


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


def get(identifier: Any, seed: Any = None) -> Any:
    """Resolve a sampler from None (Sobol), a name or an object.

    Args:
        identifier: None, one of 'sobol', 'halton', 'lhs' (or 'latin_hypercube'),
            'monte_carlo' (or 'mc'), or a callable ``(dimension, nb_design) -> design``.
        seed: passed to a sampler built from a name. With ``seed`` set, 'sobol' is
            scrambled; without (and for None), it is ``SobolSequence(scramble='auto')``:
            the unscrambled sequence of the reference, or the scrambled one of
            :data:`FALLBACK_SEED` where the unscrambled one would tie a dimension. None,
            an integer >= 0 or a numpy Generator; must be None with a sampler object,
            which carries its own seed.

    Raises:
        InvalidArgumentError: an unknown name, a negative ``seed``, a ``seed`` with a
            sampler object (it would be ignored).
        InvalidTypeError: neither None, a string nor a callable; a ``seed`` of another
            type.
    """
    seed = check_seed(seed)
    if identifier is None:
        identifier = "sobol"
    if isinstance(identifier, str):
        sampler = lookup("sampler", identifier, SAMPLERS, "a sampler object")
        if sampler is SobolSequence:
            return SobolSequence(scramble=True if seed is not None else "auto", seed=seed)
        return sampler(seed=seed)
    if callable(identifier):
        if seed is not None:
            raise InvalidArgumentError(
                f"seed={seed} is not used with a sampler object ({identifier!r}): give the "
                "seed to the sampler itself, e.g. sampler=SobolSequence(scramble=True, "
                f"seed={seed}), or name the sampler (sampler='sobol') with seed={seed}."
            )
        return identifier
    raise InvalidTypeError(
        f"sampler must be a name or a callable (dimension, nb_design) -> design, got "
        f"{type(identifier).__name__}."
    )


# -- Scrambled by name (issue 26) ---------------------------------------------------------
#: the seed of ``'scrambled_sobol'`` when none is given, so that it is reproducible.
SCRAMBLED_SEED = 0


class ScrambledSobolSequence(SobolSequence):
    """The Owen-scrambled Sobol sequence, reproducible by default (name
    ``'scrambled_sobol'``).

    Scrambling evens out the small designs: at nb_design=16 in 128 dimensions, the
    unscrambled sequence moves some cells' mask values between A and B much less than
    others (per-cell mean squared step from 0 to 0.16, for an expected 1/6), which
    Jansen's sums inherit; scrambled columns are randomised independently.

    Args:
        seed: seed of the scrambling; None gives :data:`SCRAMBLED_SEED` (unlike
            ``SobolSequence(scramble=True)``, whose None is a fresh draw).
    """

    def __init__(self, seed: "int | np.random.Generator | None" = None) -> None:
        seed = check_seed(seed)
        super().__init__(scramble=True, seed=SCRAMBLED_SEED if seed is None else seed)


SAMPLERS["scrambled_sobol"] = ScrambledSobolSequence
