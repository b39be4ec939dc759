"""rmbg: remove image backgrounds with BRIA RMBG-1.4, fast on any hardware.

>>> from rmbg import BackgroundRemover
>>> remover = BackgroundRemover()            # doctest: +SKIP
>>> cut = remover.cutout("photo.jpg")        # doctest: +SKIP

Importing rmbg imports neither torch nor OpenVINO; backends load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .backends import available_backends, get_backend, register_backend
from .backends.base import Backend, Engine, EngineInfo, ModelSource
from .errors import *  # noqa: F403  (the error classes: errors.__all__, added below)
from .specs import RMBG_1_4, ModelSpec

__all__ = [
    "RMBG_1_4",
    "Backend",
    "BackgroundRemover",
    "CutoutAndMask",
    "Engine",
    "EngineInfo",
    "ModelSource",
    "ModelSpec",
    "__version__",
    "available_backends",
    "default_remover",
    "get_backend",
    "register_backend",
    "remove",
    "remove_mask",
    "set_default_remover",
]
__all__ += errors.__all__  # the error classes, one list for both modules

if TYPE_CHECKING:
    from .default import default_remover, remove, remove_mask, set_default_remover
    from .remover import BackgroundRemover, CutoutAndMask


_LAZY = {
    "BackgroundRemover": "remover",
    "CutoutAndMask": "remover",
    "remove": "default",
    "remove_mask": "default",
    "default_remover": "default",
    "set_default_remover": "default",
}


def __getattr__(name: str) -> Any:
    # these pull in numpy and the image stack: load them on first use (PEP 562)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rmbg' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
