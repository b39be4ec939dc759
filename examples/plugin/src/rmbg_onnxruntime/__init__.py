"""An rmbg backend that runs an RMBG-1.4 ``.onnx`` export with ONNX Runtime (an example plugin).

Registered through the ``rmbg.backends`` entry point of this package's ``pyproject.toml``, so
that ``BackgroundRemover("model.onnx", backend="onnxruntime")`` finds it by name. Like every
rmbg backend it only runs the network: numpy in, numpy out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from rmbg import Backend, DeviceNotFoundError, EngineInfo, UnsupportedOptionError
from rmbg.backends.base import BackendOptions, SourceKind

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeEngine", "OnnxRuntimeOptions"]

#: rmbg device name -> ONNX Runtime execution provider.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeEngine:
    """One ONNX Runtime session. ``InferenceSession.run`` is thread-safe, as rmbg requires."""

    def __init__(self, session: Any, info: EngineInfo) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name  # the mask, sigmoid applied
        self._info = info

    @property
    def info(self) -> EngineInfo:
        return self._info

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        # RMBG-1.4 exports have a static batch of one: run the images one by one
        outputs = [
            self._session.run([self._output], {self._input: batch[i : i + 1]})[0]
            for i in range(batch.shape[0])
        ]
        return np.concatenate(outputs).astype(np.float32, copy=False)


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeOptions(BackendOptions):
    """``backend_options=`` of this backend (a mapping of these fields works too).

    Attributes:
        threads: ONNX Runtime's intra-op threads (0: its own default).
    """

    threads: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 0:
            raise UnsupportedOptionError(f"threads must be an int >= 0, not {self.threads!r}.")


class OnnxRuntimeBackend(Backend):
    """``backend="onnxruntime"``: an ``.onnx`` export on ONNX Runtime's CPU (or CUDA) provider.

    It runs the export in the precision it was saved in, so only ``precision="auto"`` (and
    ``"f32"``, which f32 exports are) make sense; rmbg refuses the others before loading anything.
    """

    name: ClassVar[str] = "onnxruntime"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("onnx",)
    default_device: ClassVar[str] = "cpu"
    precisions: ClassVar[tuple[str, ...]] = ("auto", "f32")
    Options: ClassVar[type[BackendOptions]] = OnnxRuntimeOptions
    options: OnnxRuntimeOptions

    def available_devices(self) -> tuple[str, ...]:
        import onnxruntime

        have = set(onnxruntime.get_available_providers())
        return tuple(device for device, provider in PROVIDERS.items() if provider in have)

    def canonical_device(self, device: str) -> str:
        name = device.strip().lower()
        available = self.available_devices()
        if name not in available:
            raise DeviceNotFoundError(
                f"Device {device!r} is not available to the onnxruntime backend. "
                f"Available: {', '.join(available)}."
            )
        return name

    def load(self, device: str) -> OnnxRuntimeEngine:
        import onnxruntime

        settings = onnxruntime.SessionOptions()
        if self.options.threads:
            settings.intra_op_num_threads = self.options.threads
        session = onnxruntime.InferenceSession(
            str(self.source.path), settings, providers=[PROVIDERS[device]]
        )
        info = EngineInfo(
            backend=self.name,
            device=device,
            execution_devices=(device,),
            precision=self.precision,
            inference_precision="as exported",
            model_files=tuple(str(p) for p in self.source.files),
            details={"onnxruntime": onnxruntime.__version__, "providers": session.get_providers()},
        )
        return OnnxRuntimeEngine(session, info)
