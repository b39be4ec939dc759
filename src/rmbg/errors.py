"""The errors rmbg raises.

Every error derives from :class:`RmbgError` and also from the builtin exception it refines, so
``except ValueError`` keeps working for callers who do not know rmbg::

    RmbgError
    ├── InvalidImageError        (ValueError)    the input is not an image rmbg can read
    │   ├── ImageTooLargeError                   more pixels than the configured limit
    │   └── InvalidVideoError                    no video stream, zero frames, an unsupported
    │                                            codec, or a clip corrupt/truncated at frame N
    ├── ModelError               (ValueError)    a checkpoint/ONNX/IR that cannot be used
    │   ├── CheckpointMismatchError              missing/unexpected state-dict keys or shapes
    │   ├── ChecksumMismatchError                a downloaded file's sha256 is not the published one
    │   └── QuantizationQualityError             an INT8 model misses the quality bar (not cached)
    ├── ModelNotFoundError       (FileNotFoundError)  no such local path, or offline with no cached copy
    ├── GatedModelError          (PermissionError)    the Hub refused the download (401/403)
    ├── BackendUnavailableError  (ImportError)   a backend's extra is not installed
    ├── UnknownBackendError      (KeyError)      no backend registered under that name
    ├── DeviceNotFoundError      (ValueError)    the device is not present on this machine
    ├── UnsupportedOptionError   (ValueError)    an option the chosen backend/device cannot honour
    └── CacheError               (OSError)       the conversion cache cannot be written or read

:class:`RmbgWarning` (a ``UserWarning``) is the category of every warning rmbg emits.

Messages say what to do next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BackendUnavailableError",
    "CacheError",
    "CheckpointMismatchError",
    "ChecksumMismatchError",
    "DeviceNotFoundError",
    "GatedModelError",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidVideoError",
    "ModelError",
    "ModelNotFoundError",
    "QuantizationQualityError",
    "RmbgError",
    "RmbgWarning",
    "UnknownBackendError",
    "UnsupportedOptionError",
]


class RmbgError(Exception):
    """Root of every error raised by rmbg."""


class InvalidImageError(RmbgError, ValueError):
    """The input cannot be read as an image (wrong type, shape, dtype, truncated or empty file...)."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than the configured limit (a decompression bomb guard)."""


class InvalidVideoError(InvalidImageError):
    """The input cannot be read as a video: no video stream, no frames, a codec this FFmpeg
    cannot decode, or a clip that is corrupt or truncated (the message names the frame)."""


class ModelError(RmbgError, ValueError):
    """A model file or object that rmbg cannot use."""


class CheckpointMismatchError(ModelError):
    """A state dict whose keys or shapes do not match the BriaRMBG network."""


class ChecksumMismatchError(ModelError):
    """A downloaded file whose sha256 differs from the published one."""


class QuantizationQualityError(ModelError):
    """The quantized model misses the quality bar on the held-out photos; nothing was cached.

    Attributes:
        report: The evaluation figures that failed the bar (``rmbg.quantize.QuantizationReport``
            as plain data: ``photos``, ``bar``, ``passed``, ``min_iou``, ``max_mean_diff``...).
    """

    def __init__(self, message: str, report: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.report: Mapping[str, Any] = report


class ModelNotFoundError(RmbgError, FileNotFoundError):
    """The model could not be found locally, and could not (or may not) be downloaded."""


class GatedModelError(RmbgError, PermissionError):
    """The Hugging Face Hub refused the download: the repository is gated or the token is wrong."""


class BackendUnavailableError(RmbgError, ImportError):
    """A backend whose optional dependencies are not installed."""


class UnknownBackendError(RmbgError, KeyError):
    """No backend is registered under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a readable message
        return str(self.args[0]) if self.args else ""


class DeviceNotFoundError(RmbgError, ValueError):
    """The requested device is not available on this machine."""


class UnsupportedOptionError(RmbgError, ValueError):
    """An option that the chosen backend, model format or device cannot honour."""


class CacheError(RmbgError, OSError):
    """The conversion cache could not be used."""


class RmbgWarning(UserWarning):
    """Category of the warnings rmbg emits (multi-frame inputs, fallbacks the user asked for...)."""
