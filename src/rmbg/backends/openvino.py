"""The OpenVINO backend: convert once into a keyed IR cache, compile once per device.

Flow: a checkpoint is written as an OpenVINO graph from its weights, without torch
(:mod:`rmbg.backends.ov_graph`); a torch module handed in is converted with ``ov.convert_model``.
Either way the model is static ``1x3xHxW``, pruned to the one output the mask needs, and saved as
an IR in the rmbg cache under a key of the weights digest, the model spec, the input shape, the IR
precision and the rmbg/OpenVINO versions (see :mod:`rmbg.cache`). An ``.onnx`` export is
converted with ``ov.convert_model`` (no torch either); an IR is read as it is. Each device is
compiled once with a performance hint and, for ``precision``, the ``INFERENCE_PRECISION_HINT``;
OpenVINO's own compiled-blob cache (``CACHE_DIR``) makes the second process's compile fast too.

``precision="int8"`` is not this backend's business: :mod:`rmbg.quantize` builds an INT8 IR from
this backend's f32 one (:meth:`OpenVINOBackend.read_model`) and hands it back as an IR to run.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import openvino as ov
from numpy.typing import NDArray

from .. import cache
from .._version import __version__
from ..errors import (
    DeviceNotFoundError,
    ModelError,
    UnsupportedOptionError,
)
from .base import Backend, BackendOptions, EngineInfo, ModelSource, SourceKind

__all__ = ["OpenVINOBackend", "OpenVINOEngine", "OpenVINOOptions"]

logger = logging.getLogger("rmbg")

#: precision -> INFERENCE_PRECISION_HINT value and the device capability it needs
_HINTS: dict[str, tuple[str, str]] = {
    "f32": ("f32", "FP32"),
    "bf16": ("bf16", "BF16"),
    "f16": ("f16", "FP16"),
}
_VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")
_PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")


class OpenVINOEngine:
    """A compiled model on one device, with a pool of infer requests. Thread-safe."""

    def __init__(self, compiled: ov.CompiledModel, info: EngineInfo, n_requests: int) -> None:
        self._compiled = compiled
        self._info = info
        self._pool: queue.LifoQueue[ov.InferRequest] = queue.LifoQueue()
        for _ in range(max(1, n_requests)):
            self._pool.put(compiled.create_infer_request())
        self.n_requests = max(1, n_requests)

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def compiled_model(self) -> ov.CompiledModel:
        """The underlying ``openvino.CompiledModel`` (for async pipelines and inspection)."""
        return self._compiled

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        outs = []
        request = self._pool.get()
        try:
            for i in range(x.shape[0]):
                request.infer({0: x[i : i + 1]})
                outs.append(
                    np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)
                )
        finally:
            self._pool.put(request)
        return np.concatenate(outs, axis=0)


@dataclasses.dataclass(frozen=True)
class OpenVINOOptions(BackendOptions):
    """The OpenVINO backend's options (``backend_options=``; all optional).

    Attributes:
        performance_hint: ``"LATENCY"`` (default), ``"THROUGHPUT"`` or
            ``"CUMULATIVE_THROUGHPUT"`` (case-insensitive).
        config: OpenVINO properties passed to ``compile_model`` untouched (e.g.
            ``{"NUM_STREAMS": 2}``).
        num_requests: Infer requests in the pool (default: the compiled model's optimal number).
        compile_cache: Use OpenVINO's compiled-blob cache (default True).
    """

    performance_hint: str = "LATENCY"
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_requests: int | None = None
    compile_cache: bool = True

    def __post_init__(self) -> None:
        hint = str(self.performance_hint).upper()
        if hint not in _PERFORMANCE_HINTS:
            raise UnsupportedOptionError(
                f"performance_hint must be one of: {', '.join(_PERFORMANCE_HINTS)}; "
                f"not {self.performance_hint!r}."
            )
        object.__setattr__(self, "performance_hint", hint)
        if not isinstance(self.config, Mapping):
            raise UnsupportedOptionError(
                f"config must be a mapping of OpenVINO properties, not {self.config!r}."
            )
        if self.num_requests is not None and (
            isinstance(self.num_requests, bool)
            or not isinstance(self.num_requests, int)
            or self.num_requests < 1
        ):
            raise UnsupportedOptionError(
                f"num_requests must be a whole number >= 1, not {self.num_requests!r}."
            )
        if not isinstance(self.compile_cache, bool):
            raise UnsupportedOptionError(
                f"compile_cache must be True or False, not {self.compile_cache!r}."
            )


class OpenVINOBackend(Backend):
    """OpenVINO backend (``backend="openvino"``, the default).

    Devices: whatever ``openvino.Core().available_devices`` lists (``"CPU"``, ``"GPU"``, ``"GPU.1"``,
    ``"NPU"``...) plus the virtual ``"AUTO"``, ``"AUTO:GPU,CPU"``, ``"MULTI:..."``, ``"HETERO:..."``;
    names are case-insensitive. Precision ``"auto"`` leaves the device's default (bf16 on CPUs that
    have it, f16 on GPUs); ``"f32"`` is exact parity with PyTorch.

    ``backend_options``: :class:`OpenVINOOptions`.
    """

    name: ClassVar[str] = "openvino"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("checkpoint", "module", "onnx", "ir")
    default_device: ClassVar[str] = "AUTO"
    #: Parallel streams: 1.1-1.2x the images per second on a folder (docs/performance.md),
    #: 1.5x slower for a single image, so only for batches.
    batch_options: ClassVar[Mapping[str, Any]] = {"performance_hint": "THROUGHPUT"}

    precisions: ClassVar[tuple[str, ...]] = ("auto", *_HINTS)
    quantizable: ClassVar[bool] = True
    Options: ClassVar[type[BackendOptions]] = OpenVINOOptions
    options: OpenVINOOptions

    def setup(self) -> None:
        self.cache_root = (
            self.cache_dir if self.cache_dir is not None else cache.default_cache_dir()
        )
        self.core = ov.Core()
        self._lock = threading.Lock()
        self._model_path: Path | None = None
        self._model: ov.Model | None = None

    # -- devices --------------------------------------------------------------------------------
    def available_devices(self) -> tuple[str, ...]:
        return (*self.core.available_devices, "AUTO")

    def canonical_device(self, device: str) -> str:
        name = device.strip()
        head, sep, tail = name.partition(":")
        head = head.upper()
        present = self.core.available_devices
        if head in _VIRTUAL:
            parts = [p.strip() for p in tail.split(",") if p.strip()] if sep else []
            parts = [self._physical(p, present, device) for p in parts]
            return head + (":" + ",".join(parts) if parts else "")
        if sep:
            raise DeviceNotFoundError(f"Unrecognised OpenVINO device {device!r}.")
        return self._physical(name, present, device)

    def _physical(self, name: str, present: list[str], asked: str) -> str:
        canon = name.upper()
        family = {d.split(".")[0] for d in present}
        if canon in present or (canon in family and "." not in canon):
            return canon
        raise DeviceNotFoundError(
            f"OpenVINO device {asked!r} is not available on this machine. Available: "
            f"{', '.join(self.available_devices())}. Install the device's driver (GPU/NPU) or pick "
            "another device; rmbg never falls back silently."
        )

    # -- model ----------------------------------------------------------------------------------
    def _ir_precision(self) -> str:
        return "f16" if self.precision == "f16" else "f32"

    def _key_parts(self) -> dict[str, Any]:
        spec = self.source.spec
        return {
            "weights": self.source.weights_digest,
            "kind": self.source.kind,
            "spec": spec.digest(),
            "input_shape": [1, 3, *spec.input_size],
            "ir_precision": self._ir_precision(),
            "rmbg": __version__,
            "openvino": ov.get_version(),
            # 2: checkpoints are built by ov_graph (folded BatchNorm), no longer traced from torch
            "format": 2,
        }

    def model_path(self) -> Path | None:
        """The IR file in use (converting into the cache on first call); None for an in-memory IR."""
        self._prepare()
        return self._model_path

    def read_model(self) -> ov.Model:
        """The network as an ``openvino.Model`` with its one mask output (converted into the
        cache first if needed): what ``rmbg export`` saves and INT8 quantization starts from."""
        self._prepare()
        if self._model is not None:
            return self._model
        return self.core.read_model(str(self._model_path))

    def _prepare(self) -> None:
        with self._lock:
            if self._model_path is not None or self._model is not None:
                return
            if self.source.kind == "ir":
                self._model = _prune(self.core.read_model(str(self.source.path)), self.source)
                self._use_blob_cache(self.source.weights_digest, cached=False)
                return
            parts = self._key_parts()
            entry = self.cache_root / "ir" / cache.cache_key(parts)
            # a complete entry is read without a lock (a read-only cache works)
            manifest = cache.get_or_build(
                entry,
                lambda folder, _metadata: self._convert_into(folder),
                metadata={"key": parts},
                what=f"OpenVINO IR of the {self.source.kind}",
                expect="seconds for a checkpoint, up to a minute for a torch module",
                needs_bytes=self._ir_bytes(),
            )
            self._model_path = entry / "model.xml"
            self._use_blob_cache(cache.entry_digest(manifest))

    def _ir_bytes(self) -> int | None:
        """About what the IR takes on disk: the weights' size (f32), half for an f16 IR."""
        try:
            if self.source.module is not None:
                tensors = self.source.module.state_dict().values()
                size = sum(t.numel() * t.element_size() for t in tensors)
            else:
                path = self.source.weights_path
                size = path.stat().st_size if path is not None else 0
        except (OSError, AttributeError):
            return None
        return (size // 2 if self._ir_precision() == "f16" else size) or None

    def _use_blob_cache(self, digest: str, *, cached: bool = True) -> None:
        """Point OpenVINO's compiled-blob cache at a folder of this IR's content digest: its
        blobs are keyed by the model's path, so they must not outlive a rebuilt IR there."""
        if not self.options.compile_cache:
            return
        folder = cache.blob_cache_dir(self.cache_root, digest, cached=cached)
        try:
            self.core.set_property({"CACHE_DIR": str(folder)})
        except RuntimeError as exc:  # a read-only cache without this folder, say
            logger.info("OpenVINO compiled-model cache off for this model: %s", exc)

    def _convert_into(self, folder: Path) -> None:
        model = self._convert()
        model.set_rt_info(__version__, ["rmbg", "version"])
        model.set_rt_info(self.source.weights_digest, ["rmbg", "weights_sha256"])
        ov.save_model(
            model, str(folder / "model.xml"), compress_to_fp16=self._ir_precision() == "f16"
        )

    def _convert(self) -> ov.Model:
        spec = self.source.spec
        shape = [1, 3, *spec.input_size]
        if self.source.kind == "onnx":
            try:
                model = ov.convert_model(str(self.source.path))
            except Exception as exc:
                raise ModelError(
                    f"OpenVINO could not read the ONNX file {self.source.path}: {exc}"
                ) from exc
            model = _prune(model, self.source)
            model.reshape({model.input(0): ov.PartialShape(shape)})
            return model
        if self.source.kind == "checkpoint":  # no torch: the graph is written from the weights
            from ..weights import read_state_dict
            from .ov_graph import build_model

            assert self.source.weights_path is not None
            return build_model(read_state_dict(self.source.weights_path), spec.input_size)
        import torch  # a torch module was handed in, so torch is there

        from ..model import MaskOutput

        net = MaskOutput(self.source.module).eval()
        example = torch.zeros(*shape)
        with torch.no_grad(), warnings.catch_warnings():
            # OpenVINO's PyTorch frontend traces with TorchScript, which torch now deprecates
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
            model = ov.convert_model(net, example_input=example, input=[ov.PartialShape(shape)])
        return model

    # -- compile --------------------------------------------------------------------------------
    def _config(self, device: str) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.options.performance_hint}
        if self.precision in _HINTS:
            hint, capability = _HINTS[self.precision]
            if not device.startswith(_VIRTUAL):
                caps = self.core.get_property(device, "OPTIMIZATION_CAPABILITIES")
                if capability not in caps and not (capability == "FP32"):
                    raise UnsupportedOptionError(
                        f"precision={self.precision!r} is not supported on {device} "
                        f"(capabilities: {', '.join(caps)}). Use precision='auto' or 'f32', or "
                        "another device."
                    )
            config["INFERENCE_PRECISION_HINT"] = hint
        config.update(dict(self.options.config))
        return config

    def load(self, device: str) -> OpenVINOEngine:
        config = self._config(device)  # a precision the device lacks: refused before converting
        self._prepare()
        target: Any = str(self._model_path) if self._model_path is not None else self._model
        compiled = self.core.compile_model(target, device, config)
        n = int(self.options.num_requests or _prop(compiled, "OPTIMAL_NUMBER_OF_INFER_REQUESTS", 1))
        execution = tuple(_prop(compiled, "EXECUTION_DEVICES", [device]))
        hint = _prop(compiled, "INFERENCE_PRECISION_HINT", None)
        if isinstance(hint, ov.Type):
            inference = hint.get_type_name()
        elif self.precision in _HINTS:
            inference = _HINTS[self.precision][0]
        else:  # AUTO does not report it: the defaults of the devices it picked
            inference = _device_defaults(self.core, execution) or (
                f"default of {','.join(execution)}"
            )
        files = [str(p) for p in self.source.files]
        if self._model_path is not None:
            files.append(str(self._model_path))
        info = EngineInfo(
            backend=self.name,
            device=device,
            execution_devices=execution,
            precision=self.precision,
            inference_precision=inference,
            model_files=tuple(files),
            details={
                "openvino": ov.get_version(),
                "config": config,
                "infer_requests": n,
            },
        )
        logger.info(
            "OpenVINO engine on %s (runs on %s, %s, %s hint, %d infer requests)",
            device,
            ",".join(execution),
            inference,
            config.get("PERFORMANCE_HINT"),
            n,
        )
        return OpenVINOEngine(compiled, info, n)


def _device_defaults(core: ov.Core, devices: tuple[str, ...]) -> str | None:
    """The default inference precision of each device (``"bf16"`` on a CPU with BF16), or None
    when a device does not say."""
    names = []
    for device in devices:
        try:
            value = core.get_property(device, "INFERENCE_PRECISION_HINT")
        except Exception:  # OpenVINO raises RuntimeError subclasses per plugin
            return None
        if not isinstance(value, ov.Type):
            return None
        names.append(value.get_type_name())
    return ",".join(dict.fromkeys(names)) or None


def _prop(compiled: ov.CompiledModel, name: str, default: Any) -> Any:
    try:
        return compiled.get_property(name)
    except RuntimeError:
        return default


def _prune(model: ov.Model, source: ModelSource) -> ov.Model:
    """Keep only the first output (d1 = the mask); exports and notebook IRs carry all 12."""
    if len(model.outputs) < 1 or len(model.inputs) != 1:
        raise ModelError(
            f"{source.path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; an "
            "RMBG network has one image input and the mask as its first output."
        )
    if len(model.outputs) == 1:
        return model
    return ov.Model([model.output(0)], model.get_parameters(), model.friendly_name)
