"""Argument checks that raise the library's clear exceptions."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, TypeVar
import math
import numbers

import numpy as np

from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

#: a registry's entry.
T = TypeVar("T")



def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} "
            f"of type {type(value).__name__}."
        )
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_power_of_two(name: str, value: Any, minimum: int = 1,
                       maximum: Optional[int] = None) -> int:
    """Return ``value`` if it is a power of two >= ``minimum``; raise otherwise.

    The message suggests the nearest power of two within [minimum, maximum] (``maximum``
    None: no upper bound), so that the suggestion is itself accepted. A power of two
    over ``maximum`` is not refused here: the caller says why it is too large.
    """
    value = check_positive_int(name, value, minimum=minimum)
    if value & (value - 1):
        lower = 1 << (value.bit_length() - 1)
        upper = lower << 1
        nearest = lower if value - lower < upper - value else upper
        if maximum is not None and nearest > maximum:
            nearest = 1 << (maximum.bit_length() - 1)
        nearest = max(nearest, 1 << (minimum - 1).bit_length())
        raise InvalidArgumentError(
            f"{name} must be a power of two, got {value}; try {nearest}."
        )
    return value


def check_real(name: str, value: Any, minimum: Optional[float] = None, *,
               finite: bool = False) -> float:
    """``value`` as a float if it is a real number (not a bool) >= ``minimum`` (and
    finite when ``finite``); raise InvalidTypeError / InvalidArgumentError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a number, got {value!r} of type "
                               f"{type(value).__name__}.")
    if finite and not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value}.")
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}.")
    return float(value)


def check_probability(name: str, value: Any, *, open_low: bool = False,
                      open_high: bool = False) -> float:
    """Return ``value`` as a float in [0, 1] (bounds excluded when asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(
            f"{name} must be a number between 0 and 1, got {value!r} "
            f"of type {type(value).__name__}."
        )
    value = float(value)
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    if not (low_ok and high_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise InvalidArgumentError(f"{name} must lie in {lo}, {hi}, got {value}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return the lower-cased ``value`` if it is one of ``choices``; raise otherwise."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidArgumentError(
            f"{name} must be one of {sorted(choices)}, got {value!r}."
        )
    return value.lower()


def check_grid_fits(grid_size: int, height: int, width: int, alternative: str = "") -> None:
    """Raise InvalidArgumentError when a grid has more cells per side than the input."""
    if grid_size > min(height, width):
        raise InvalidArgumentError(
            f"grid_size must not exceed the input size, got grid_size={grid_size} for "
            f"inputs of {height}x{width}; use grid_size <= {min(height, width)}"
            f"{alternative}."
        )


def check_windows_fit(grid_size: Optional[int], layout: Any) -> None:
    """Raise InvalidArgumentError when time series of ``layout`` (a
    :class:`~sobol_tf._utils.layouts.Layout`) have fewer steps than ``grid_size``
    windows (None: a window per step, always fits)."""
    steps = layout.shape[0]
    if grid_size is not None and grid_size > steps:
        raise InvalidArgumentError(
            f"grid_size={grid_size} windows cannot cut time series of {steps} time steps "
            f"(shape {(None,) + layout.shape}); use grid_size <= {steps}, or "
            "grid_size=None for a cell per time step.")


def check_mask_channels(nb_channels: int, images: Any) -> None:
    """Raise InvalidArgumentError unless masks of ``nb_channels`` channels (1 or the
    inputs') can perturb ``images`` (N, H, W, C)."""
    channels = images.shape[3]
    if nb_channels not in (1, channels):
        raise InvalidArgumentError(
            f"nb_channels={nb_channels} masks cannot perturb inputs of {channels} "
            f"channel(s) (shape {tuple(images.shape)}); use nb_channels=1 or "
            f"nb_channels={channels}."
        )


def check_memory(what: str, passes: str, held: str, needed: int, cap: int, cap_name: str,
                 lower: str) -> None:
    """Raise InvalidArgumentError when ``needed`` bytes exceed the ``cap`` bytes.

    The message reads "<what> need <passes> and <needed> GiB of <held>, over the <cap>
    GiB of <cap_name>; lower <lower>." (``passes``: the forward passes, e.g. "4000
    forward passes per input"; ``lower``: what to lower, with values that fit).
    """
    if needed > cap:
        raise InvalidArgumentError(
            f"{what} need {passes} and {needed / 2 ** 30:.1f} GiB of {held}, over the "
            f"{cap / 2 ** 30:.1f} GiB of {cap_name}; lower {lower}."
        )


def lookup(argument: str, name: str, registry: Mapping[str, T], alternatives: str) -> T:
    """``registry[name.lower()]``, or InvalidArgumentError listing the valid names.

    ``alternatives`` says what else ``argument`` accepts, e.g. "a callable f(x)".
    """
    key = name.lower()
    if key not in registry:
        raise InvalidArgumentError(
            f"{argument} must be one of {sorted(registry)} or {alternatives}, got {name!r}."
        )
    return registry[key]


def resolve(argument: str, identifier: Any, default: Callable[[], Any],
            registry: Mapping[str, Callable[[], Any]], alternatives: str) -> Any:
    """A component from None (``default()``), a name (``registry[name]()``, see
    :func:`lookup`) or a callable (returned as it is); InvalidTypeError otherwise.

    ``alternatives`` says what else ``argument`` accepts besides a name, e.g.
    "a SobolEstimator or a callable (masks, outputs, nb_design) -> indices".
    """
    if identifier is None:
        return default()
    if isinstance(identifier, str):
        return lookup(argument, identifier, registry, alternatives)()
    if callable(identifier):
        return identifier
    raise InvalidTypeError(
        f"{argument} must be a name, {alternatives}, got {type(identifier).__name__}."
    )


#: what ``seed`` accepts, said in the errors of :func:`check_seed`.
SEED_RULE = "None, an integer >= 0 or a numpy.random.Generator"


def check_seed(seed: Any, name: str = "seed") -> Optional[int]:
    """``seed`` as None or an int >= 0: the one rule of every random component.

    Accepts None (a fresh draw), an integer >= 0 (Python or numpy), or a
    ``numpy.random.Generator`` (scipy's samplers accept one): one integer is drawn from
    it here, so the component then behaves as if given that integer (its results are
    reproducible across calls) and the generator advances by one draw. A
    ``numpy.random.SeedSequence`` is refused, as scipy's samplers refuse it.

    Raises:
        InvalidTypeError: anything else (a float, a string, a bool, a SeedSequence).
        InvalidArgumentError: a negative integer.
    """
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        hint = (" Give np.random.default_rng(your_sequence) or an integer."
                if isinstance(seed, np.random.SeedSequence) else "")
        raise InvalidTypeError(
            f"{name} must be {SEED_RULE}, got {seed!r} of type {type(seed).__name__}.{hint}"
        )
    if seed < 0:
        raise InvalidArgumentError(
            f"{name} must be {SEED_RULE}, got {seed}; use a non-negative integer such as "
            f"{-int(seed)}."
        )
    return int(seed)
