"""Reading image files without surprises: paths that are not files, Pillow's warnings and the
exception types its plugins raise, turned into rmbg's errors and messages (used by :mod:`rmbg.io`)."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import warnings
from collections.abc import Iterator

from PIL import Image

from .errors import InvalidImageError

__all__ = ["check_path", "decode_failure", "frame_count", "no_bomb_warning", "reason"]

_WARNINGS_LOCK = threading.Lock()


def check_path(path: str) -> None:
    """Refuse what is not a regular file before opening it: opening a FIFO blocks until some
    other process writes to it, and a device may never end. A missing path or a folder is left to
    ``open`` (``FileNotFoundError``, ``IsADirectoryError``)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        return
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        raise InvalidImageError(
            f"{path!r} is {kind}, not an image file. rmbg reads regular files only; read the "
            "stream yourself and pass the bytes (or a binary file object)."
        )
    if st.st_size == 0:
        raise InvalidImageError(f"{path!r}: an empty file (0 bytes).")


def reason(exc: BaseException) -> str:
    """An exception as a clause inside a sentence: its message without a final period."""
    text = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def no_bomb_warning() -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning while a header is read: rmbg checks the size
    itself right after, and refuses with ImageTooLargeError instead of printing a warning first.
    ``catch_warnings`` changes process-wide state, so rmbg's threads take turns (headers are
    quick to read; pixels are decoded outside)."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def frame_count(im: Image.Image) -> int | str:
    """How many frames ``im`` has, for a message (``"fewer"`` when it cannot even count them)."""
    try:
        return int(getattr(im, "n_frames", 1))
    except Exception:  # a damaged file may fail to count its frames
        return "fewer"


def decode_failure(label: str, im: Image.Image, exc: Exception) -> str:
    """The message for a file Pillow opened but could not decode."""
    if im.format == "EPS" and "ghostscript" in str(exc).lower():
        return (
            f"{label} is an EPS file, and Pillow needs Ghostscript (the `gs` program) to "
            "read those, which is not installed. Install Ghostscript (e.g. `apt install "
            "ghostscript`), or convert the file to PNG first."
        )
    return f"{label}: cannot be decoded ({reason(exc)}); is it truncated or corrupt?"
