"""Post-processing in pure numpy, bit-exact with the reference pipeline.

The reference (BRIA's ``utilities.py``) resizes the network output back to the image size with
torch's bilinear ``F.interpolate``, stretches it per image, ``(r - min) / (max - min)``, multiplies
by 255 and truncates to uint8. :func:`postprocess` resizes with
:func:`rmbg.preprocess.resize_bilinear` (torch's kernels reproduced bit for bit, see
:mod:`rmbg.preprocess`) and then applies the same float32 operations in the same order (a
subtraction, a true division by the float32 span, a multiplication by 255; numpy and torch round
each one identically), so the mask equals the reference's in every pixel:
``tests/test_prepost.py`` asserts equality, not a tolerance.

Two deliberate departures, both where the reference is undefined or unhelpful:

- **a constant output** (``max == min``, before or after the resize) makes the reference divide
  by zero: NaN, then an undefined uint8 cast. Here the mask is defined as 255 everywhere if the
  constant is >= 0.5 (a uniformly confident foreground) and 0 otherwise. The check is also made on
  the raw output, because resizing a constant can wobble by one ulp, which the stretch would
  blow up into a 0..255 noise mask;
- ``normalize="none"`` skips the stretch and uses the network's probabilities as they are
  (clipped to [0, 1], times 255, truncated), so an empty scene stays empty instead of having its
  noise stretched to full contrast.

A network output with NaN or infinite values is rejected: no mask can be made from it.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from . import _parallel
from . import _validate as check
from .errors import InvalidImageError
from .preprocess import check_size, resize_bilinear

__all__ = ["Normalize", "postprocess"]

Normalize = Literal["minmax", "none"]
"""How :func:`postprocess` maps the network output to grey levels."""

_F32 = np.float32
# output pixels normalised at once (the float32 work stays in the cache)
_BLOCK = 1 << 16
# output pixels per thread, at least (smaller masks stay on the calling thread)
_PARALLEL_MIN = 1 << 18


def _as_map(raw: object) -> NDArray[np.float32]:
    """The network output as a 2-D float32 array, or a clear error."""
    arr = np.asarray(raw)
    shape = arr.shape
    if arr.dtype.kind != "f":
        raise InvalidImageError(
            f"postprocess expects the network's float output, got dtype {arr.dtype} "
            f"(shape {shape})."
        )
    if arr.ndim in (3, 4) and all(n == 1 for n in shape[:-2]):
        arr = arr.reshape(shape[-2:])
    if arr.ndim != 2 or 0 in arr.shape:
        raise InvalidImageError(
            "postprocess expects a network output of shape (1, 1, h, w), (1, h, w) or (h, w) "
            f"with h, w >= 1, got {shape}."
        )
    return arr.astype(_F32, copy=False)


def _constant_mask(value: float, size: tuple[int, int]) -> NDArray[np.uint8]:
    """The defined mask of a constant output: 255 if the constant is >= 0.5, else 0."""
    return np.full(size, 255 if value >= 0.5 else 0, np.uint8)


def postprocess(
    raw: NDArray[np.floating[Any]],
    size: tuple[int, int],
    *,
    normalize: Normalize = "minmax",
) -> NDArray[np.uint8]:
    """The network's output as a uint8 mask of the image's size.

    Args:
        raw: Network output (probabilities), shape ``(1, 1, h, w)``, ``(1, h, w)`` or ``(h, w)``,
            any float dtype (computed in float32).
        size: The image's ``(height, width)``.
        normalize: ``"minmax"``: the reference's per-image stretch to 0..255 (a constant output
            gives all 255 if the constant is >= 0.5, else all 0); ``"none"``: the probabilities
            as they are, clipped to [0, 1].

    Returns:
        C-contiguous ``(height, width)`` uint8 mask.

    Raises:
        InvalidImageError: ``raw`` is not a float array of one of the accepted shapes, holds NaN
            or infinite values, or ``size`` is not two positive integers.
        UnsupportedOptionError: ``normalize`` is not ``"minmax"`` or ``"none"``.
    """
    check.choice("normalize", normalize, get_args(Normalize))
    prob = _as_map(raw)
    height, width = check_size(size, "mask")
    lo, hi = prob.min(), prob.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidImageError(
            "The network output contains NaN or infinite values; no mask can be made from it "
            "(with a reduced-precision backend, try precision='f32')."
        )
    if normalize == "minmax" and lo == hi:
        return _constant_mask(float(lo), (height, width))

    result = resize_bilinear(prob, (height, width))
    if normalize == "minmax":
        lo, hi = result.min(), result.max()
        if lo == hi:  # a downscale can skip every pixel that differed
            return _constant_mask(float(lo), (height, width))
        span = hi - lo  # float32, as torch's (ma - mi)
    mask = np.empty((height, width), np.uint8)
    rows = max(1, _BLOCK // width)

    def to_levels(lo_row: int, hi_row: int) -> None:
        for a in range(lo_row, hi_row, rows):
            b = min(a + rows, hi_row)
            block = result[a:b]
            if normalize == "minmax":
                block -= lo
                block /= span
            else:
                np.clip(block, _F32(0.0), _F32(1.0), out=block)
            block *= _F32(255.0)
            mask[a:b] = block  # values in [0, 255]: the cast truncates, as .astype does

    _parallel.run(to_levels, _parallel.split(height, max(1, _PARALLEL_MIN // width)))
    return mask
