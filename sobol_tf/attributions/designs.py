"""Design plumbing shared by the sampling methods (Sobol, HSIC).

:class:`DesignExplainer` holds what a method that draws one design per set of cells
shares: its cells (``grid_size`` x ``grid_size`` x ``nb_channels`` for images, the
features, windows or tokens of the other kinds), the design drawn once per cells and
kept, the size checks before anything is drawn (the sampler's dimensions and a memory
budget, with messages that name the cells of the inputs' kind and the largest sizes
that fit), the adapter of Xplique-style estimators ``estimator(masks, outputs,
nb_design)`` called once per input, and the tie checks of designs whose cells could
not be told apart (:func:`check_replicated`, :func:`twin_cells`,
:func:`balanced_binary_design`). A method says only how it draws a design
(``_draw_cells``), how big a design may be (``_fits``, ``_check_budget``) and its
estimator.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from sobol_tf import operators as operators_module
from sobol_tf._utils import check_positive_int, check_seed
from sobol_tf._utils.layouts import DESCRIPTIONS, Layout, grid_shape, mask_channels
from sobol_tf.attributions import perturbations as perturbations_module
from sobol_tf.attributions import samplers as samplers_module
from sobol_tf.attributions._modalities import ALL_KINDS, DesignMixin
from sobol_tf.attributions.base import BlackBoxExplainer
from sobol_tf.errors import InvalidArgumentError

#: redraws of the twin columns of a balanced binary design before giving up.
FALLBACK_DRAWS = 100

#: redraws of the fallback design for token ids (Sobol) before giving up.
TOKEN_FALLBACK_DRAWS = 10

Cells = tuple  # (rows, columns, mask channels)


class DesignExplainer(DesignMixin, BlackBoxExplainer):
    """Base of the methods that draw one design of masks per set of cells (see the
    module's docstring). A subclass calls :meth:`_init_design` in its constructor and
    implements ``_draw_cells(cells, layout)``, its budget (``_fits(nb_design,
    dimension)``, ``_check_budget(what, cells, kind, nb_design)``) and ``_estimate``."""

    upsampling = "nearest"
    input_kinds = ALL_KINDS
    #: one mask value per cell and channel of the inputs (Sobol's ``per_channel``).
    per_channel = False
    #: token ids get their own design (its decisions checked) apart from float inputs.
    tokens_apart = False
    #: how many rows of points the sampler draws per cell (Sobol: A and B, so 2).
    draws_per_cell = 1

    grid_size: int | None
    nb_channels: int
    nb_design: int
    seed: Any
    sampler: Any
    estimator: Any

    def _init_design(self, grid_size: int | None, nb_channels: int, seed: Any,
                     perturbation_function: Any, mask_token: int | None,
                     pad_token: int | None, baseline: Any) -> None:
        """Check and set the arguments every design method shares."""
        self.grid_size = None if grid_size is None else check_positive_int("grid_size",
                                                                           grid_size)
        self.nb_channels = check_positive_int("nb_channels", nb_channels)
        self.seed = check_seed(seed)
        self.perturbation_function = perturbations_module.resolve(
            perturbation_function, mask_token=mask_token, pad_token=pad_token,
            baseline=baseline)
        self._designs: dict = {}
        self._current: Any = None   # the entry of the last design used

    @property
    def perturbation(self) -> perturbations_module.Perturbation:
        """How a mask perturbs an input: ``perturbation_function`` (Xplique's name)."""
        return self.perturbation_function

    @perturbation.setter
    def perturbation(self, value: perturbations_module.Perturbation) -> None:
        self.perturbation_function = value

    # -- cells and designs -------------------------------------------------------------
    def nb_forward_passes(self, inputs: Any, targets: Any = None) -> int:
        """The forward passes :meth:`explain` will make for ``inputs``, to budget a job.

        One per mask the model is run on, per input: for Sobol ``nb_design * (d + 2)``,
        or ``nb_design * (d + 1)`` with an estimator that skips the B rows (e.g.
        :data:`~sobol_tf.attributions.sobol.EFFICIENT_SETTINGS`); for HSIC
        ``nb_design``; plus one per input when the operator needs the clean outputs
        (``targets`` None: the predicted class) or the estimator the clean scores.
        :meth:`~sobol_tf.attributions.sobol.SobolAttributionMethod.explain_indices`
        always evaluates B.

        Args:
            inputs: as :meth:`explain` (checked, not run; the design is drawn).
            targets: as :meth:`explain`.

        Returns:
            int: rows the model is called on.

        Raises:
            InvalidArgumentError: as :meth:`explain` for the inputs.

        Example:
            >>> SobolAttributionMethod(model, nb_design=16).nb_forward_passes(images)
        """
        _, images, raw_targets = self._prepare_inputs(inputs, targets)
        masks = self._masks(*images.shape[1:])
        clean = (int(operators_module.needs_outputs(raw_targets, self.operator))
                 + int(self._needs_base_scores))
        return int(images.shape[0]) * (self._passes_per_input(masks) + clean)

    def _passes_per_input(self, masks: tf.Tensor) -> int:
        """Rows of ``masks`` (the design) the model is run on per input."""
        return int(self._evaluated(masks).shape[0])

    def _image_cells(self, channels: int | None = None) -> Cells:
        return (self.grid_size, self.grid_size,
                channels if self.per_channel and channels else self.nb_channels)

    def _cells_of(self, layout: Layout | None, channels: int) -> Cells:
        """The cells (rows, columns, mask channels) for inputs of ``layout`` with
        ``channels`` channels: the grid for images, see
        :func:`~sobol_tf._utils.layouts.grid_shape` and
        :func:`~sobol_tf._utils.layouts.mask_channels` for the others."""
        if layout is None or layout.kind == "image":
            return self._image_cells(channels)
        return grid_shape(layout, self.grid_size) + (mask_channels(layout),)

    def _masks(self, height: int, width: int, channels: int) -> tf.Tensor:
        layout = self._layout
        return self._design_of(self._cells_of(layout, channels), layout)[0]

    def _design_of(self, cells: Cells, layout: Layout | None = None) -> tuple:
        """The entry (masks, ...) of the design of ``cells``, drawn once per cells (and
        per thresholding for token ids when ``tokens_apart``) and kept; it becomes the
        current one."""
        tokens = self.tokens_apart and layout is not None and layout.kind == "tokens"
        key = tuple(cells) + ((tokens,) if self.tokens_apart else ())
        if key not in self._designs:
            if self.grid_size is None or tuple(cells) != self._image_cells():
                self._check_size(self.nb_design, cells, layout)
            self._designs[key] = self._draw_cells(tuple(cells), layout)
        self._current = self._designs[key]
        return self._current

    @abstractmethod
    def _draw_cells(self, cells: Cells, layout: Layout | None) -> tuple:
        """Draw and check the design of ``cells``: a tuple whose first item is the masks
        (P, rows, columns, mask channels) float32."""

    def _current_masks(self, unknown: str) -> tf.Tensor:
        """The masks of the last explain, else of the image cells; ``unknown``: why the
        cells are not known before an explain ('' when they are)."""
        if self._current is not None:
            return self._current[0]
        if unknown:
            raise InvalidArgumentError(
                f"the masks are drawn at the first explain, once the inputs' cells are known "
                f"({unknown}); explain first"
                + (", or give nb_channels=C instead of per_channel=True." if self.per_channel
                   else "."))
        return self._design_of(self._image_cells())[0]

    # -- sizes -------------------------------------------------------------------------
    def _check_size(self, nb_design: int, cells: Cells, layout: Layout | None = None) -> None:
        """Refuse a design of ``cells`` over the sampler's dimensions or the method's
        memory budget (``_check_budget``), before any drawing; the messages speak of
        grid_size for images, of features, windows or tokens otherwise."""
        rows, columns, channels = cells
        dimension = rows * columns * channels
        kind = "image" if layout is None else layout.kind
        if kind == "image":
            what = f"grid_size={self.grid_size}" + (
                f" with per_channel=True and {channels} channels" if self.per_channel else "")
        elif kind == "time_series":
            what = (f"grid_size={self.grid_size} ({columns} windows" if self.grid_size
                    else f"grid_size=None ({columns} time steps") + f" x {channels} channel(s))"
        else:
            unit = "features" if kind == "tabular" else "tokens"
            what = f"{DESCRIPTIONS[kind]} of {columns} {unit}"
        what += f" and nb_design={nb_design} (d={dimension} cells)"
        max_dimension = max_dimension_of(self.sampler)
        if max_dimension is not None and self.draws_per_cell * dimension > max_dimension:
            together = (f" and draws A and B together in 2d = {2 * dimension}"
                        if self.draws_per_cell == 2 else "")
            raise InvalidArgumentError(
                f"{what}: the sampler {type(self.sampler).__name__} supports at most "
                f"{max_dimension} dimensions{together}; use "
                f"{self._fewer_cells(kind, nb_design, channels)}, or a sampler without "
                "that limit ('halton', 'lhs', 'monte_carlo').")
        self._check_budget(what, cells, kind, nb_design)

    @abstractmethod
    def _fits(self, nb_design: int, dimension: int) -> bool:
        """Whether a design of ``nb_design`` points in ``dimension`` cells fits the
        method's memory budget (true up to some size, false above it)."""

    @abstractmethod
    def _check_budget(self, what: str, cells: Cells, kind: str, nb_design: int) -> None:
        """Raise InvalidArgumentError when the design of ``cells`` is over the budget;
        ``what`` describes the design (the start of the message)."""

    def _fewer_cells(self, kind: str, nb_design: int, channels: int) -> str:
        """What to use instead: the largest grid_size, windows, features or tokens whose
        design at ``nb_design`` fits both the sampler and the budget."""
        max_dimension = max_dimension_of(self.sampler)

        def fits(dimension: int) -> bool:
            return self._fits(nb_design, dimension) and (
                max_dimension is None or self.draws_per_cell * dimension <= max_dimension)

        if kind == "image":
            grid = largest_fitting(lambda size: fits(size * size * channels), 1 << 20)
            return (f"grid_size <= {grid} at nb_design={nb_design}" if grid
                    else f"no grid_size fits at nb_design={nb_design}")
        largest = largest_fitting(fits, 1 << 40) // channels
        if kind == "time_series":
            return f"grid_size <= {largest} windows" if largest else "no number of windows fits"
        unit = "features" if kind == "tabular" else "tokens"
        return f"at most {largest} {unit} per input" if largest else f"no number of {unit} fits"

    # -- Xplique-style estimators --------------------------------------------------------
    def _per_input(self, scores: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
        """An Xplique-style ``estimator(masks, outputs, nb_design)``, called once per
        input with its (P,) scores, each result reshaped to ``masks.shape[1:]``."""
        return tf.stack([tf.reshape(tf.cast(self.estimator(masks, row, self.nb_design),
                                            tf.float32), masks.shape[1:])
                         for row in tf.unstack(scores)])


def max_dimension_of(sampler: Any) -> int | None:
    """The most dimensions ``sampler`` draws (None: no limit)."""
    return getattr(sampler, "max_dimension", None)


def largest_fitting(fits: Callable[[int], bool], high: int) -> int:
    """The largest n in [0, high] with ``fits(n)``, for a ``fits`` true up to some n and
    false above it (0 when none from 1 fits), by bisection."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


# -- replicated designs (Sobol) ---------------------------------------------------------
def check_replicated(design: Any, nb_design: int, dimension: int) -> np.ndarray:
    """A design from a user's callable, checked as a ReplicatedSampler checks its own
    (shape, values in [0, 1], no tied cell) and for its replication: rows [A, B,
    C_1..C_d], C_i being A with column i taken from B."""
    design = samplers_module.check_design(
        design, (nb_design * (dimension + 2), dimension),
        "sampler (rows [A, B, C_1..C_d] of nb_design * (d + 2), d columns)")
    a, b = design[:nb_design], design[nb_design:2 * nb_design]
    c = design[2 * nb_design:].reshape(dimension, nb_design, dimension)
    replicated = c == a[None]
    columns = np.arange(dimension)
    replicated[columns, :, columns] = c[columns, :, columns] == b.T
    if not replicated.all():
        cell = int(np.flatnonzero(~replicated.all(axis=(1, 2)))[0])
        raise InvalidArgumentError(
            f"sampler returned a design that is not replicated: C_{cell} (rows "
            f"{(2 + cell) * nb_design} to {(3 + cell) * nb_design - 1}) must be A "
            f"with column {cell} taken from B; build designs with "
            "sobol_tf.attributions.samplers.replicate(a, b).")
    del replicated, c
    tied = samplers_module.tied_dimensions(design, nb_design)
    if tied.size:
        raise samplers_module.tied_design_error(tied, nb_design, dimension)
    return design


def untied_decisions(design: np.ndarray, draw: Callable[[Any], np.ndarray], nb_design: int,
                     seed: int | None, fallback: bool, sampler: Any) -> np.ndarray:
    """A replicated design whose keep / mask decisions (mask >= 1/2) of A and B differ
    somewhere for every token position (else C_i == A once thresholded and that
    position's index would be 0 whatever the model does). With ``fallback`` (the default
    sampler), Latin hypercube designs of seed ``seed`` (None:
    :data:`~sobol_tf.attributions.samplers.FALLBACK_SEED`), then the next ones, drawn by
    ``draw(sampler)``; otherwise the design is refused."""
    dimension = design.shape[1]
    seed = samplers_module.FALLBACK_SEED if seed is None else seed
    for attempt in range(TOKEN_FALLBACK_DRAWS + 1):
        tied = samplers_module.tied_dimensions(design >= 0.5, nb_design)
        if not tied.size:
            return design
        if not fallback:
            break
        design = draw(samplers_module.LatinHypercube(seed=seed + attempt))
    listed = tied[:10].tolist()
    raise InvalidArgumentError(
        f"with token ids a token is kept where its mask is >= 0.5, and the design of "
        f"{sampler!r} with nb_design={nb_design} then gives A and B the same "
        f"decisions for token position(s) {listed}{' ...' if tied.size > 10 else ''} "
        f"of {dimension}, so their index would be 0 whatever the model does; use a "
        "larger nb_design, sampler='lhs' or 'monte_carlo', or the default sampler "
        "(sampler=None).")


# -- binary designs (HSIC) ----------------------------------------------------------------
def twin_cells(design: np.ndarray) -> tuple[int, int] | None:
    """The first pair (i, j), i < j, of columns of a binary design that are equal or
    complementary, or None. Exact, in O(nb_design * d) (columns hashed as bytes).
    """
    canonical = design != design[:1]            # flip each column so that its row 0 is 0
    packed = np.packbits(canonical, axis=0).T   # (d, ceil(n / 8)) one byte string per column
    seen: dict = {}
    for column, key in enumerate(map(bytes, packed)):
        if key in seen:
            return seen[key], column
        seen[key] = column
    return None


def untold_cells(design: np.ndarray, nb_design: int) -> str:
    """Why cells of a binary design (nb_design, d) cannot be told apart (a constant cell,
    two equal or complementary cells), or '' if they can."""
    constant = np.flatnonzero(np.all(design == design[:1], axis=0))
    if constant.size:
        return (f"the binary design keeps cell {constant[0]} in all or none of the "
                f"{nb_design} masks, so its HSIC is always 0; use a larger "
                "nb_design, sampler='lhs' or the default sampler (sampler=None).")
    twins = twin_cells(design)
    if twins is not None:
        first, second = twins
        return (f"the binary design gives cells {first} and {second} equal or "
                f"complementary masks over the {nb_design} designs, so they cannot "
                f"be told apart; use a larger nb_design (got {nb_design} for "
                f"{design.shape[1]} cells), sampler='lhs' or the default sampler "
                "(sampler=None).")
    return ""


def balanced_binary_design(nb_design: int, dimension: int, seed: Any) -> np.ndarray:
    """Random binary design (nb_design, d) float32: each column a random permutation of
    ``nb_design // 2`` ones, redrawn until no two columns are equal or complementary.

    Raises:
        InvalidArgumentError: no such design (more cells than the C(n, n/2) / 2 classes of
            balanced columns, or none found after :data:`FALLBACK_DRAWS` redraws).
    """
    rng = np.random.default_rng(seed)

    def draw(count: int) -> np.ndarray:
        ranks = np.argsort(rng.random((count, nb_design)), axis=1)
        return (ranks < nb_design // 2).T

    design = draw(dimension)
    for _ in range(FALLBACK_DRAWS):
        twins = _twin_columns(design)
        if not twins:
            return design.astype(np.float32)
        design[:, twins] = draw(len(twins))
    raise InvalidArgumentError(
        f"nb_design={nb_design} binary masks cannot give {dimension} cells distinct masks "
        "(two cells would get equal or complementary masks and could not be told apart); "
        "use a larger nb_design or a smaller grid_size."
    )


def fractional_factorial_design(nb_design: int, dimension: int, seed: Any
                                ) -> "np.ndarray | None":
    """A regular two-level fraction (nb_design, d) float32 of 0 and 1, or None where
    there is none: ``nb_design`` not a power of two 2**m, or d > nb_design - 1.

    Cell c's column is the parity of <v_c, bits(t)> over the row index t, for d distinct
    nonzero vectors v_c of m bits: every column is balanced, and any two are orthogonal
    (their sum is a third such parity), so no two cells are equal or complementary and
    each cell's effect is measured against an even split of every other cell's (an
    orthogonal array of strength 2). Where d <= nb_design / 2, the v_c all have their
    leading bit set (resolution IV: the sum of two of them has it clear, so no cell's
    column is the product of two others' and a two-cell interaction is not read as a
    third cell's effect); else any nonzero v_c (resolution III). ``seed`` draws which
    vectors, and flips each column or not (the flip keeps the column's balance).

    Measured for HSIC (benchmarks/results/hsic_designs.md): at nb_design 128 with 64
    cells, 0.3 to 0.7 times the map error of a random balanced design (three convnets).
    """
    m = int(nb_design).bit_length() - 1
    if nb_design < 2 or 1 << m != nb_design or dimension > nb_design - 1:
        return None
    rng = np.random.default_rng(seed)
    if dimension <= nb_design // 2:  # resolution IV: the leading bit set
        vectors = (1 << (m - 1)) + rng.choice(nb_design // 2, dimension, replace=False)
    else:
        vectors = 1 + rng.choice(nb_design - 1, dimension, replace=False)
    bits = (np.arange(nb_design)[:, None] >> np.arange(m)[None]) & 1   # (n, m)
    coefficients = (vectors[:, None] >> np.arange(m)[None]) & 1       # (d, m)
    design = (bits @ coefficients.T) % 2 ^ rng.integers(0, 2, dimension)[None]
    return design.astype(np.float32)


def fallback_binary_design(nb_design: int, dimension: int, seed: Any) -> np.ndarray:
    """HSIC's design where the default sampler's cannot tell its cells apart: the
    regular fraction of :func:`fractional_factorial_design` where there is one, else
    :func:`balanced_binary_design`, both of ``seed``."""
    design = fractional_factorial_design(nb_design, dimension, seed)
    return balanced_binary_design(nb_design, dimension, seed) if design is None else design


def _twin_columns(design: np.ndarray) -> list:
    """Columns of a binary design equal or complementary to an earlier one, as a list."""
    canonical = design != design[:1]
    seen, twins = set(), []
    for column, key in enumerate(map(bytes, np.packbits(canonical, axis=0).T)):
        if key in seen or not canonical[:, column].any():
            twins.append(column)
        seen.add(key)
    return twins
