"""The PyTorch reference backend: the BriaRMBG network in eager mode.

This is the implementation every other backend is checked against. It accepts a checkpoint
(folder or .safetensors) or a torch module handed in by the caller (e.g. one loaded the notebook's
way with ``AutoModelForImageSegmentation.from_pretrained(..., trust_remote_code=True)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from ..errors import DeviceNotFoundError, UnsupportedOptionError
from .base import Backend, BackendOptions, EngineInfo, ModelSource, SourceKind

__all__ = ["TorchBackend", "TorchEngine", "TorchOptions", "load_module"]

logger = logging.getLogger("rmbg")

_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def load_module(source: ModelSource) -> torch.nn.Module:
    """The network of ``source`` (a checkpoint or a caller's module) in eval mode, returning only
    the mask probabilities (``MaskOutput``): what the torch engines run and what OpenVINO
    converts a caller's torch module from."""
    from ..model import MaskOutput, build_model
    from ..weights import read_state_dict

    if source.kind == "module":
        module = source.module
    else:
        assert source.weights_path is not None
        module = build_model(read_state_dict(source.weights_path))
    net = MaskOutput(module)
    net.eval()
    return net


class TorchEngine:
    """The network on one torch device. Thread-safe: inference mode mutates no module state."""

    def __init__(
        self,
        net: torch.nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        info: EngineInfo,
        num_threads: int | None = None,
    ):
        self._net = net
        self._device = device
        self._dtype = dtype
        self._info = info
        self._num_threads = num_threads

    @property
    def info(self) -> EngineInfo:
        return self._info

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._device)
        with _threads(self._num_threads), torch.inference_mode(), self._autocast():
            y = self._net(x.to(self._dtype) if self._device.type != "cpu" else x)
        out: NDArray[np.float32] = y.float().cpu().numpy()
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._dtype == torch.float32:
            return contextlib.nullcontext()
        if self._device.type == "cpu":
            return torch.autocast("cpu", dtype=self._dtype)
        return contextlib.nullcontext()  # weights already cast to the dtype on accelerators


@dataclasses.dataclass(frozen=True)
class TorchOptions(BackendOptions):
    """The torch backend's options (``backend_options=``).

    Attributes:
        num_threads: CPU threads torch uses while this backend's engines run (torch's thread
            count is process-wide: it is set for each call and restored after it, never by the
            constructor). ``None`` leaves torch's own setting.
    """

    num_threads: int | None = None

    def __post_init__(self) -> None:
        n = self.num_threads
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise UnsupportedOptionError(f"num_threads must be a whole number >= 1, not {n!r}.")


class TorchBackend(Backend):
    """PyTorch eager reference backend (``backend="torch"``).

    Devices: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` (case-insensitive). Precision ``"auto"``
    is f32 on the CPU (exact reference) and f16 on CUDA; ``"bf16"``/``"f16"`` use autocast on the
    CPU. ``backend_options``: :class:`TorchOptions`.
    """

    name: ClassVar[str] = "torch"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("checkpoint", "module")
    default_device: ClassVar[str] = "cpu"

    precisions: ClassVar[tuple[str, ...]] = ("auto", *_DTYPES)
    Options: ClassVar[type[BackendOptions]] = TorchOptions
    options: TorchOptions

    def setup(self) -> None:
        self._lock = threading.Lock()
        self._cpu_net: torch.nn.Module | None = None

    def available_devices(self) -> tuple[str, ...]:
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps")
        return tuple(devices)

    def canonical_device(self, device: str) -> str:
        name = device.strip().lower()
        if name == "cuda":
            name = "cuda:0"
        if name not in self.available_devices():
            raise DeviceNotFoundError(
                f"Torch device {device!r} is not available on this machine. Available: "
                f"{', '.join(self.available_devices())}. (OpenVINO names such as 'CPU' or 'GPU' "
                "belong to backend='openvino'.)"
            )
        return name

    def _net(self) -> torch.nn.Module:
        with self._lock:
            if self._cpu_net is None:
                self._cpu_net = load_module(self.source)
            return self._cpu_net

    def _dtype(self, device: torch.device) -> torch.dtype:
        if self.precision == "auto":
            return torch.float16 if device.type == "cuda" else torch.float32
        return _DTYPES[self.precision]

    def load(self, device: str) -> TorchEngine:
        dev = torch.device(device)
        dtype = self._dtype(dev)
        net = self._net()
        if dev.type != "cpu":
            import copy

            net = copy.deepcopy(net).to(dev, dtype=dtype)
        files = tuple(str(p) for p in self.source.files)
        info = EngineInfo(
            backend=self.name,
            device=device,
            execution_devices=(device,),
            precision=self.precision,
            inference_precision={
                torch.float32: "f32",
                torch.bfloat16: "bf16",
                torch.float16: "f16",
            }[dtype],
            model_files=files,
            details={
                "torch": torch.__version__,
                "num_threads": self.options.num_threads or torch.get_num_threads(),
            },
        )
        logger.info("torch engine on %s (%s)", device, info.inference_precision)
        return TorchEngine(net, dev, dtype, info, self.options.num_threads)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's (process-wide) thread count set to ``n`` for one call, then restored."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
