"""Shared test helpers: the bundled photos and mask comparison figures."""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from rmbg.metrics import mask_figures
from rmbg.photos import BUNDLED, PHOTO_DIR

PHOTOS = BUNDLED
#: The held-out photos (``data/photos/heldout``, two of them grey), by ``load_photo`` name.
HELDOUT_PHOTOS = ("heldout/camera", "heldout/clock", "heldout/horse", "heldout/retina")
#: Every bundled photo.
ALL_PHOTOS = PHOTOS + HELDOUT_PHOTOS


@cache
def _photo(name: str) -> np.ndarray:
    with Image.open(PHOTO_DIR / f"{name}.jpg") as im:
        arr = np.asarray(im.convert("RGB"))
    arr.setflags(write=False)
    return arr


def load_photo(name: str) -> np.ndarray:
    """A bundled photo as HxWx3 uint8 (read-only, cached)."""
    return _photo(name)


def mask_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Max and mean absolute difference in grey levels, and IoU of the masks thresholded at 128
    (the library's own figures, rmbg.metrics.mask_figures, under the tests' short names)."""
    f = mask_figures(a, b)
    return {"max": f["max_diff"], "mean": f["mean_diff"], "iou": f["iou"]}


def visible(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The colours a cutout keeps: ``colors`` where ``alpha > 0``, black where the pixel is fully
    transparent (rmbg clears those: invisible, and the PNG gets half as big)."""
    return (colors * (np.asarray(alpha) != 0)[..., None]).astype(np.uint8)
