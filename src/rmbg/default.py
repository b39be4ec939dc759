"""One-line use: ``rmbg.remove(image)`` with a process-wide remover, for scripts that do not want
to manage a :class:`~rmbg.BackgroundRemover`.

The default remover is built on first use (the model in ``$RMBG_MODEL`` or briaai/RMBG-1.4,
OpenVINO, device AUTO), once even when many threads ask at the same time, and reused by every
later call. :func:`set_default_remover` puts another one in its place (a model, device or backend
of your choice, or a fake one in tests).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .options import CutoutKeywords, CutoutOptions, MaskKeywords, MaskOptions

if TYPE_CHECKING:
    from .io import ImageInput, OutputKind
    from .remover import BackgroundRemover

__all__ = ["default_remover", "remove", "remove_mask", "set_default_remover"]

_lock = threading.Lock()
_remover: BackgroundRemover | None = None


def default_remover() -> BackgroundRemover:
    """The process-wide remover, built on first use and reused (thread-safe)."""
    global _remover
    remover = _remover
    if remover is not None:
        return remover
    with _lock:
        if _remover is None:
            from .remover import BackgroundRemover

            _remover = BackgroundRemover()
        return _remover


def set_default_remover(remover: BackgroundRemover | None) -> None:
    """Use ``remover`` for :func:`remove` from now on (``None``: build the default again on next
    use), e.g. ``set_default_remover(BackgroundRemover("./checkpoint", device="GPU"))``."""
    global _remover
    with _lock:
        _remover = remover


def remove(
    image: ImageInput,
    options: CutoutOptions | MaskOptions | None = None,
    *,
    output: OutputKind = "auto",
    **keywords: Unpack[CutoutKeywords],
) -> Any:
    """The cutout of ``image`` by the process-wide remover: ``default_remover().cutout(...)``.

    Example:
        >>> import rmbg
        >>> rmbg.remove("photo.jpg").save("cutout.png")                 # doctest: +SKIP
        >>> png = rmbg.remove(open("photo.jpg", "rb").read())             # doctest: +SKIP
        >>> rmbg.remove("photo.jpg", background="white", trim=True)       # doctest: +SKIP
    """
    opts = CutoutOptions.build(options, **keywords)  # a bad option fails before the model loads
    return default_remover().cutout(image, opts, output=output)


def remove_mask(
    image: ImageInput,
    options: MaskOptions | None = None,
    *,
    output: OutputKind = "auto",
    **keywords: Unpack[MaskKeywords],
) -> Any:
    """The mask of ``image`` by the process-wide remover: ``default_remover().mask(...)``."""
    opts = MaskOptions.build(options, **keywords)
    return default_remover().mask(image, opts, output=output)
