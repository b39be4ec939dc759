"""The photos rmbg ships (public domain / CC0, see ``data/photos/README.md``): one list of them.

Four are for examples, ``rmbg verify`` and INT8 calibration; four others are held out, never used
for calibration, to judge an INT8 model on photos it has not seen.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BUNDLED",
    "HELDOUT",
    "PHOTO_DIR",
    "bundled_photos",
    "heldout_photos",
    "image_suffixes",
    "is_own_output",
]

#: The folder of the bundled photos.
PHOTO_DIR: Path = Path(__file__).resolve().parent / "data" / "photos"
#: The bundled photos (``PHOTO_DIR/<name>.jpg``): examples, ``rmbg verify``, INT8 calibration.
BUNDLED: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket")
#: The held-out photos (``PHOTO_DIR/heldout/<name>.jpg``): never used for calibration.
HELDOUT: tuple[str, ...] = ("camera", "clock", "horse", "retina")


def bundled_photos() -> list[Path]:
    """Paths of the bundled photos, in :data:`BUNDLED` order."""
    return [PHOTO_DIR / f"{name}.jpg" for name in BUNDLED]


def heldout_photos() -> list[Path]:
    """Paths of the held-out photos, in :data:`HELDOUT` order."""
    return [PHOTO_DIR / "heldout" / f"{name}.jpg" for name in HELDOUT]


def image_suffixes() -> frozenset[str]:
    """The file suffixes (lower case, with the dot) of every format Pillow can open here."""
    from PIL import Image

    exts = Image.registered_extensions()
    return frozenset(e.lower() for e, f in exts.items() if f in Image.OPEN)


def is_own_output(name: str | os.PathLike[str]) -> bool:
    """``x.cutout.png`` / ``x.mask.webp``: the default output names of rmbg's command line, never
    taken as inputs when a folder is read again (by the CLI's folder mode or ``rmbg.ray``)."""
    stem, ext = os.path.splitext(os.fspath(name))
    return os.path.splitext(stem)[1] in (".cutout", ".mask") and ext.lower() in _OUTPUT_SUFFIXES


_OUTPUT_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")
