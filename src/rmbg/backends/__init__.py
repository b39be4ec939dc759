"""The backend registry: built-ins registered lazily by import path, third parties by entry point.

Built-in backends are recorded as ``"module:Class"`` strings with the ``pip install`` that provides
their dependencies, so ``import rmbg`` imports neither torch nor OpenVINO. Third-party packages add
theirs through the ``rmbg.backends`` entry-point group::

    [project.entry-points."rmbg.backends"]
    mybackend = "mypkg.rmbg_backend:MyBackend"

or at run time with :func:`register_backend`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from importlib.metadata import entry_points

from ..errors import BackendUnavailableError, UnknownBackendError
from .base import Backend, Engine, EngineInfo, ModelSource

__all__ = [
    "Backend",
    "Engine",
    "EngineInfo",
    "ModelSource",
    "available_backends",
    "get_backend",
    "register_backend",
]

logger = logging.getLogger("rmbg")
ENTRY_POINT_GROUP = "rmbg.backends"


@dataclasses.dataclass(frozen=True)
class _Registration:
    target: str | type[Backend]
    install_hint: str | None = None


_lock = threading.Lock()
_registry: dict[str, _Registration] = {
    "openvino": _Registration("rmbg.backends.openvino:OpenVINOBackend", "pip install openvino"),
    "torch": _Registration(
        "rmbg.backends.torch:TorchBackend",
        'pip install "rmbg[torch]" (the PyTorch reference; for CPU-only wheels install torch '
        "first: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
    ),
    "fake": _Registration("rmbg.testing:FakeBackend"),
}
_entry_points_loaded = False


def register_backend(
    name: str,
    target: str | type[Backend],
    *,
    install_hint: str | None = None,
    replace: bool = False,
) -> None:
    """Register a backend under ``name``.

    Args:
        name: Registry name (case-insensitive), used as ``BackgroundRemover(backend=name)``.
        target: The Backend subclass, or its import path as ``"package.module:Class"`` (imported
            on first use).
        install_hint: The command that installs the backend's dependencies, shown when its import
            fails.
        replace: Allow replacing an existing registration.

    Raises:
        ValueError: ``name`` is taken and ``replace`` is false.
    """
    key = name.lower()
    with _lock:
        if key in _registry and not replace:
            raise ValueError(f"A backend named {name!r} is already registered; pass replace=True.")
        _registry[key] = _Registration(target, install_hint)


def _load_entry_points() -> None:
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            key = ep.name.lower()
            if key in _registry:
                logger.debug("entry point %s ignored: a backend %r is registered", ep.value, key)
                continue
            _registry[key] = _Registration(ep.value)


def available_backends() -> list[str]:
    """Names of the registered backends (whether or not their dependencies are installed)."""
    _load_entry_points()
    with _lock:
        return sorted(_registry)


def get_backend(name: str) -> type[Backend]:
    """The Backend class registered under ``name``, imported on first use.

    Raises:
        UnknownBackendError: No backend is registered under ``name``.
        BackendUnavailableError: Its dependencies are not installed; the message names the
            ``pip install`` that fixes it.
    """
    _load_entry_points()
    key = name.lower()
    with _lock:
        reg = _registry.get(key)
    if reg is None:
        raise UnknownBackendError(
            f"Unknown backend {name!r}. Available backends: {', '.join(available_backends())}. "
            "Third-party backends register through the 'rmbg.backends' entry-point group."
        )
    if not isinstance(reg.target, str):
        return reg.target
    module_name, _, attr = reg.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        hint = reg.install_hint or f"install the package that provides {module_name!r}"
        raise BackendUnavailableError(
            f"The {key!r} backend needs a package that is not installed ({exc.name or exc}). "
            f"Install it with: {hint}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UnknownBackendError(
            f"{reg.target!r} (backend {key!r}) is not an rmbg Backend subclass."
        )
    return cls
