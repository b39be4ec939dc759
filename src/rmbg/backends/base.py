"""The backend interface: what a backend must provide, and what crosses the boundary.

A backend only runs the network. It receives a :class:`ModelSource` (where the model is) once, and
is asked for an :class:`Engine` per device. An engine takes a float32 NCHW batch that the shared
numpy pre-processing produced and returns the network's mask output, float32 ``(N, 1, H, W)``
probabilities (``sigmoid(d1)``). No PIL image, mask or cutout ever crosses this boundary; that is
what makes the outputs of two backends comparable.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Self

from ..errors import UnsupportedOptionError
from ..source import ModelSource, SourceKind

__all__ = [
    "PRECISIONS",
    "Backend",
    "BackendOptions",
    "Engine",
    "EngineInfo",
    "ModelSource",
    "Precision",
    "SourceKind",
]

Precision = Literal["auto", "f32", "bf16", "f16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "f32", "bf16", "f16", "int8")


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What actually runs: reported by :attr:`BackgroundRemover.info`.

    Attributes:
        backend: Registry name of the backend (``"openvino"``, ``"torch"``, ...).
        device: The device that was asked for, canonical spelling (``"AUTO"``, ``"CPU"``, ``"cpu"``).
        execution_devices: The device(s) that really execute (under AUTO: the one AUTO chose).
        precision: The precision that was asked for.
        inference_precision: The element type the device computes in (``"f32"``, ``"bf16"``...).
        model_files: The model files in use (checkpoint, ONNX, cached IR...).
        details: Backend-specific facts (OpenVINO properties, torch threads...), informational.
    """

    backend: str
    device: str
    execution_devices: tuple[str, ...]
    precision: str
    inference_precision: str
    model_files: tuple[str, ...] = ()
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A network compiled/loaded for one device. Must be safe to call from several threads."""

    @property
    def info(self) -> EngineInfo:
        """What runs, on what, in which precision."""
        ...

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the network: float32 ``(N, 3, H, W)`` in, float32 ``(N, 1, H, W)`` probabilities out."""
        ...


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """Base of a backend's typed options (``backend_options=``). Each backend declares a frozen
    dataclass subclass as its :attr:`Backend.Options`; a mapping is turned into it, an unknown key
    is an error listing the known ones, and ``__post_init__`` validates the values."""

    @classmethod
    def parse(cls, values: BackendOptions | Mapping[str, Any] | None, backend: str) -> Self:
        """``values`` (the options, a mapping of their fields, or ``None``) as this class.

        Raises:
            UnsupportedOptionError: An unknown key, or a value the options refuse.
        """
        if values is None:
            return cls()
        if isinstance(values, cls):
            return values
        if not isinstance(values, Mapping):
            raise UnsupportedOptionError(
                f"backend_options must be a mapping or {cls.__name__}, not {type(values).__name__}."
            )
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise UnsupportedOptionError(
                f"Unknown option(s) for the {backend!r} backend: {', '.join(map(str, unknown))}. "
                f"Known: {', '.join(known) or 'none'}."
            )
        return cls(**dict(values))


class Backend(abc.ABC):
    """Base class of every backend (built-in or third-party, via the ``rmbg.backends`` entry points).

    Subclasses are constructed with the resolved model source and the remover's options, do any
    model-level preparation lazily (conversion, caching), and compile one engine per device in
    :meth:`load`. The remover memoises engines, so :meth:`load` is called once per device.
    """

    #: Registry name; set by subclasses.
    name: ClassVar[str] = ""
    #: The model source kinds this backend accepts.
    accepts: ClassVar[tuple[SourceKind, ...]] = ("checkpoint", "module")
    #: Default device when the user gives none.
    default_device: ClassVar[str] = "cpu"
    #: Backend options that favour throughput over latency, which callers that process many
    #: images at once (the CLI's folder mode) apply unless the user set them.
    batch_options: ClassVar[Mapping[str, Any]] = {}
    #: The precisions this backend computes in (checked once, by this base class).
    precisions: ClassVar[tuple[str, ...]] = ("auto", "f32")
    #: Whether ``precision="int8"`` can be built for it by :mod:`rmbg.quantize` (an OpenVINO IR
    #: build step above the backend; the backend then runs the INT8 IR at ``"auto"``).
    quantizable: ClassVar[bool] = False
    #: The typed options this backend takes (``backend_options=``).
    Options: ClassVar[type[BackendOptions]] = BackendOptions

    def __init__(
        self,
        source: ModelSource,
        *,
        precision: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        options: BackendOptions | Mapping[str, Any] | None = None,
    ) -> None:
        if precision not in self.precisions:
            hint = (
                " precision='int8' is built above the backend: use backend='openvino'."
                if (precision == "int8")
                else ""
            )
            raise UnsupportedOptionError(
                f"precision={precision!r} is not supported by the {self.name!r} backend; use one "
                f"of: {', '.join(self.precisions)}.{hint}"
            )
        self.source = source
        self.precision = precision
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.options = self.Options.parse(options, self.name)
        self.setup()

    def setup(self) -> None:
        """Backend-specific preparation, called at the end of ``__init__`` once the precision and
        options are checked (override this, not ``__init__``). Keep it cheap: convert and compile
        lazily, in :meth:`load`. Never change process-wide settings here."""
        return

    @abc.abstractmethod
    def available_devices(self) -> tuple[str, ...]:
        """Devices this backend can run on, on this machine, in canonical spelling."""

    @abc.abstractmethod
    def canonical_device(self, device: str) -> str:
        """Normalise a user's device name (case, aliases); raise DeviceNotFoundError if absent."""

    @abc.abstractmethod
    def load(self, device: str) -> Engine:
        """Compile or load the network for a canonical device name."""

    def model_path(self) -> Path | None:
        """The model file this backend runs, converting it into the cache first if it does that;
        ``None`` when it runs the network from memory (the default)."""
        return None
