"""Shared test helpers: the bundled photos and mask comparison figures."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_DIR = Path(__file__).resolve().parents[1] / "src" / "rmbg" / "data" / "photos"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
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
    """Max and mean absolute difference in grey levels, and IoU of the masks thresholded at 0.5."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    fa, fb = a >= 128, b >= 128
    union = np.logical_or(fa, fb).sum()
    iou = float(np.logical_and(fa, fb).sum() / union) if union else 1.0
    return {"max": float(d.max()), "mean": float(d.mean()), "iou": iou}


def visible(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The colours a cutout keeps: ``colors`` where ``alpha > 0``, black where the pixel is fully
    transparent (rmbg clears those: invisible, and the PNG gets half as big)."""
    return (colors * (np.asarray(alpha) != 0)[..., None]).astype(np.uint8)
