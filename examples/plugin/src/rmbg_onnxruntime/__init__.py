"""An rmbg backend that runs an RMBG-1.4 ``.onnx`` export with ONNX Runtime (an example plugin).

Registered through the ``rmbg.backends`` entry point of this package's ``pyproject.toml``, so
that ``BackgroundRemover("model.onnx", backend="onnxruntime")`` finds it by name. Like every
rmbg backend it only runs the network: numpy in, numpy out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from rmbg import Backend, DeviceNotFoundError, EngineInfo, ModelSource, UnsupportedOptionError
from rmbg.backends.base import SourceKind

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeEngine"]

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


class OnnxRuntimeBackend(Backend):
    """``backend="onnxruntime"``: an ``.onnx`` export on ONNX Runtime's CPU (or CUDA) provider.

    ``backend_options``: ``{"threads": N}`` sets ONNX Runtime's intra-op threads.
    """

    name: ClassVar[str] = "onnxruntime"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("onnx",)
    default_device: ClassVar[str] = "cpu"

    def __init__(
        self,
        source: ModelSource,
        *,
        precision: str = "auto",
        cache_dir: Path | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source, precision=precision, cache_dir=cache_dir, options=options)
        if precision not in ("auto", "f32"):
            raise UnsupportedOptionError(
                f"The onnxruntime backend runs the export as it was saved; precision={precision!r} "
                "is not supported. Use precision='auto', or export the model in that precision."
            )

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

        options = onnxruntime.SessionOptions()
        if "threads" in self.options:
            options.intra_op_num_threads = int(self.options["threads"])
        session = onnxruntime.InferenceSession(
            str(self.source.path), options, providers=[PROVIDERS[device]]
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
