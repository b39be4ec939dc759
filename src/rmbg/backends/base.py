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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..specs import RMBG_1_4, ModelSpec

__all__ = ["PRECISIONS", "Backend", "Engine", "EngineInfo", "ModelSource", "Precision"]

Precision = Literal["auto", "f32", "bf16", "f16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "f32", "bf16", "f16", "int8")

SourceKind = Literal["checkpoint", "onnx", "ir", "module"]


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, resolved once by :func:`rmbg.weights.resolve_model`.

    Attributes:
        kind: ``"checkpoint"`` (a folder with config.json + model.safetensors, the Hub layout),
            ``"onnx"`` (an .onnx export), ``"ir"`` (an OpenVINO .xml/.bin pair) or ``"module"``
            (a torch module object handed in by the caller).
        path: The checkpoint folder or the .onnx/.xml file (``None`` for a module).
        weights_path: The file that holds the weights (model.safetensors, the .onnx, the .bin).
        weights_digest: sha256 of the weights (for a module: of its state dict), for cache keys.
        spec: The model facts (input size, normalisation...).
        repo_id: The Hub repository when it came from the Hub, else ``None``.
        revision: The Hub revision (commit hash) when it came from the Hub.
        module: The caller's torch module (kind ``"module"`` only).
    """

    kind: SourceKind
    spec: ModelSpec = RMBG_1_4
    path: Path | None = None
    weights_path: Path | None = None
    weights_digest: str = ""
    repo_id: str | None = None
    revision: str | None = None
    module: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def files(self) -> tuple[Path, ...]:
        """The model files in use (checkpoint folder or file, weights file), for reports."""
        out: list[Path] = []
        for p in (self.path, self.weights_path):
            if p is not None and p not in out:
                out.append(p)
        return tuple(out)


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

    def __init__(
        self,
        source: ModelSource,
        *,
        precision: str = "auto",
        cache_dir: Path | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.precision = precision
        self.cache_dir = cache_dir
        self.options: Mapping[str, Any] = dict(options or {})

    @abc.abstractmethod
    def available_devices(self) -> tuple[str, ...]:
        """Devices this backend can run on, on this machine, in canonical spelling."""

    @abc.abstractmethod
    def canonical_device(self, device: str) -> str:
        """Normalise a user's device name (case, aliases); raise DeviceNotFoundError if absent."""

    @abc.abstractmethod
    def load(self, device: str) -> Engine:
        """Compile or load the network for a canonical device name."""
