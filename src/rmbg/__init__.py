"""rmbg: remove image backgrounds with BRIA RMBG-1.4, fast on any hardware.

>>> from rmbg import BackgroundRemover
>>> remover = BackgroundRemover()            # doctest: +SKIP
>>> cut = remover.cutout("photo.jpg")        # doctest: +SKIP

Importing rmbg imports neither torch nor OpenVINO; backends load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .backends import available_backends, get_backend, register_backend
from .backends.base import Backend, Engine, EngineInfo, ModelSource
from .errors import (
    BackendUnavailableError,
    CacheError,
    CheckpointMismatchError,
    ChecksumMismatchError,
    DeviceNotFoundError,
    GatedModelError,
    ImageTooLargeError,
    InvalidImageError,
    ModelError,
    ModelNotFoundError,
    QuantizationQualityError,
    RmbgError,
    RmbgWarning,
    UnknownBackendError,
    UnsupportedOptionError,
)
from .specs import RMBG_1_4, ModelSpec

__all__ = [
    "RMBG_1_4",
    "Backend",
    "BackendUnavailableError",
    "BackgroundRemover",
    "CacheError",
    "CheckpointMismatchError",
    "ChecksumMismatchError",
    "DeviceNotFoundError",
    "Engine",
    "EngineInfo",
    "GatedModelError",
    "ImageTooLargeError",
    "InvalidImageError",
    "ModelError",
    "ModelNotFoundError",
    "ModelSource",
    "ModelSpec",
    "QuantizationQualityError",
    "RmbgError",
    "RmbgWarning",
    "UnknownBackendError",
    "UnsupportedOptionError",
    "__version__",
    "available_backends",
    "get_backend",
    "register_backend",
]

if TYPE_CHECKING:
    from .remover import BackgroundRemover


def __getattr__(name: str) -> Any:
    # BackgroundRemover pulls in numpy and the image stack; load it on first use (PEP 562).
    if name == "BackgroundRemover":
        from .remover import BackgroundRemover

        return BackgroundRemover
    raise AttributeError(f"module 'rmbg' has no attribute {name!r}")
