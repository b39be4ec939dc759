"""Exact integer blending of uint8 images: the one place the ``(x + 127) // 255`` rounding lives.

``round(x / 255)`` for ``x`` a sum of products of 0..255 values is ``(x + 127) // 255``, with no
ties (255 is odd), so every result is the correctly rounded one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["div255", "over_opaque"]


def div255(acc: NDArray[np.uint16]) -> NDArray[np.uint8]:
    """``round(acc / 255)`` for ``acc <= 65025 - 127``, in place on ``acc``; returns uint8."""
    acc += np.uint16(127)
    acc //= np.uint16(255)
    return acc.astype(np.uint8)


def over_opaque(
    fg: NDArray[np.uint8], a: NDArray[np.uint8], bg: NDArray[np.uint8] | int
) -> NDArray[np.uint8]:
    """``round((fg a + bg (255 - a)) / 255)``: ``fg`` with alpha ``a`` over an opaque ``bg``
    (an ``HxWx3`` image, an RGB triple or one grey level), in uint16 (the sum is <= 255 * 255)."""
    a16 = a.astype(np.uint16)[:, :, None]
    acc = fg.astype(np.uint16) * a16
    acc += np.asarray(bg, np.uint16) * (np.uint16(255) - a16)
    return div255(acc)
