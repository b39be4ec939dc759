"""Post-processing in pure numpy, reproducing the reference pipeline.

The reference resizes the network output back to the image size (torch bilinear, see
:mod:`rmbg.preprocess`), stretches it min-max per image, multiplies by 255 and truncates to uint8.
:func:`postprocess` does the same with the bit-exact resize, so masks equal the reference's
(``tests/test_prepost.py`` asserts equality, with at most 1 grey level where torch's fused
``(r - min) / (max - min) * 255`` could round differently).

Two deliberate departures, both documented:

- a constant output (``max == min``) makes the reference divide by zero (NaN, then undefined
  uint8); here it gives a defined mask: 255 everywhere if the constant is >= 0.5, else 0;
- ``normalize="none"`` skips the min-max stretch and uses the network's probabilities as they
  are (clipped to [0, 1]), so an empty scene stays empty instead of stretching noise to 0..255.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidImageError, UnsupportedOptionError
from .preprocess import resize_bilinear

__all__ = ["postprocess"]

_BLOCK_ROWS = 256


def postprocess(
    raw: NDArray[np.floating],
    size: tuple[int, int],
    *,
    normalize: Literal["minmax", "none"] = "minmax",
) -> NDArray[np.uint8]:
    """The network's output as a uint8 mask of the image's size.

    Args:
        raw: Network output, ``(1, 1, h, w)``, ``(1, h, w)`` or ``(h, w)``.
        size: The image's ``(height, width)``.
        normalize: ``"minmax"`` (the reference) or ``"none"`` (raw probabilities).

    Returns:
        ``HxW`` uint8 mask, C-contiguous.
    """
    arr = np.asarray(raw)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidImageError(
            f"Expected a float network output of shape (1, 1, h, w), got {arr.dtype} {np.shape(raw)}."
        )
    if normalize not in ("minmax", "none"):
        raise UnsupportedOptionError(f"normalize must be 'minmax' or 'none', not {normalize!r}.")
    result = resize_bilinear(arr.astype(np.float32, copy=False), size)
    mask = np.empty(result.shape, np.uint8)
    if normalize == "minmax":
        hi = result.max()
        lo = result.min()
        if not hi > lo:  # constant (or NaN) output: the reference would divide by zero
            mask.fill(255 if lo >= 0.5 else 0)
            return mask
        span = hi - lo
    # in row blocks, in place: the float32 resize is the only full-size temporary (4 B/pixel)
    for a in range(0, result.shape[0], _BLOCK_ROWS):
        block = result[a : a + _BLOCK_ROWS]
        if normalize == "minmax":
            block -= lo
            block /= span
        else:
            np.clip(block, 0.0, 1.0, out=block)
        block *= np.float32(255.0)
        mask[a : a + _BLOCK_ROWS] = block
    return mask
