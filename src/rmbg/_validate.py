"""Small value checks shared by the option, compositing and decontamination code."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import UnsupportedOptionError

__all__ = [
    "check_mask",
    "choice",
    "feather",
    "flag",
    "grow",
    "is_bool",
    "is_int",
    "is_real",
    "margin",
    "threshold",
    "trim_threshold",
]


def is_int(x: object) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def is_real(x: object) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return (
        isinstance(x, (int, float, np.integer, np.floating))
        and not isinstance(x, (bool, np.bool_))
        and math.isfinite(float(x))
    )


def is_bool(x: object) -> bool:
    """A bool (Python or numpy)."""
    return isinstance(x, (bool, np.bool_))


def check_mask(mask: NDArray[Any], name: str = "mask") -> None:
    """Raise ``ValueError`` unless ``mask`` is a 2-D uint8 array."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"{name} must be a 2-D uint8 array, got {got}")


# -- option values: one check and one message per option, whoever asks ------------------------------
def threshold(value: Any) -> float | None:
    """``threshold=``: a fraction in [0, 1], or None."""
    if value is None:
        return None
    if not (is_real(value) and 0.0 <= float(value) <= 1.0):
        raise UnsupportedOptionError(
            f"threshold must be a number in [0, 1] (a fraction of 255) or None, not {value!r}."
        )
    return float(value)


def feather(value: Any) -> float:
    """``feather=``: a Gaussian sigma in pixels, >= 0."""
    if not (is_real(value) and float(value) >= 0):
        raise UnsupportedOptionError(f"feather must be a number >= 0 (pixels), not {value!r}.")
    return float(value)


def grow(value: Any) -> int:
    """``grow=``: whole pixels, negative shrinks."""
    if not is_int(value):
        raise UnsupportedOptionError(
            f"grow must be a whole number of pixels (negative shrinks), not {value!r}."
        )
    return int(value)


def margin(value: Any) -> int:
    """``margin=``: whole pixels >= 0."""
    if not is_int(value) or value < 0:
        raise UnsupportedOptionError(
            f"margin must be a whole number of pixels >= 0, not {value!r}."
        )
    return int(value)


def trim_threshold(value: Any) -> int:
    """``trim_threshold=``: an alpha level in 1..255."""
    if not is_int(value) or not 1 <= value <= 255:
        raise UnsupportedOptionError(
            f"trim_threshold must be a whole number in 1..255 (an alpha level), not {value!r}."
        )
    return int(value)


def flag(name: str, value: Any) -> bool:
    """A yes/no option."""
    if not is_bool(value):
        raise UnsupportedOptionError(f"{name} must be True or False, not {value!r}.")
    return bool(value)


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise UnsupportedOptionError(f"{name} must be one of: {', '.join(choices)}; not {value!r}.")
    return str(value)
