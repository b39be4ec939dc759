"""How close two masks are: the one set of figures used by ``rmbg verify``, INT8's quality bar,
the parity tests and the benchmarks."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["mask_figures"]


def mask_figures(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> dict[str, float]:
    """Compare two ``HxW`` uint8 masks.

    Returns:
        ``{"iou", "mean_diff", "max_diff"}``: the IoU of the masks thresholded at 128 (1.0 when
        both are empty), and the mean and largest absolute difference in grey levels.

    Raises:
        ValueError: The masks are not uint8 arrays of the same shape.
    """
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(
            f"expected two uint8 masks of one shape, got {a.dtype} {a.shape} and {b.dtype} {b.shape}"
        )
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    fa, fb = a >= 128, b >= 128
    union = int(np.logical_or(fa, fb).sum())
    iou = float(np.logical_and(fa, fb).sum() / union) if union else 1.0
    return {"iou": iou, "mean_diff": float(d.mean()), "max_diff": float(d.max()) if d.size else 0.0}
