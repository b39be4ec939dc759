"""The OpenVINO backend: convert once into a keyed IR cache, compile once per device.

Flow: a checkpoint is written as an OpenVINO graph from its weights, without torch
(:mod:`rmbg.backends.ov_graph`); a torch module handed in is converted with ``ov.convert_model``.
Either way the model is static ``1x3xHxW``, pruned to the one output the mask needs, and saved as
an IR in the rmbg cache under a key of the weights digest, the model spec, the input shape, the IR
precision and the rmbg/OpenVINO versions (see :mod:`rmbg.cache`). An ``.onnx`` export is
converted with ``ov.convert_model`` (no torch either); an IR is read as it is. Each device is compiled once with a performance hint and, for ``precision``, the
``INFERENCE_PRECISION_HINT``; OpenVINO's own compiled-blob cache (``CACHE_DIR``) makes the second
process's compile fast too.

``precision="int8"`` quantizes the f32 IR with NNCF (:mod:`rmbg.quantize`), checks the result
against f32 on held-out photos and caches it only if it meets the quality bar; the figures are
kept in the cache manifest and reported in ``EngineInfo.details["quantization"]``.
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
from .base import Backend, EngineInfo, ModelSource, SourceKind

__all__ = ["OpenVINOBackend", "OpenVINOEngine"]

logger = logging.getLogger("rmbg")

#: precision -> INFERENCE_PRECISION_HINT value and the device capability it needs
_HINTS: dict[str, tuple[str, str]] = {
    "f32": ("f32", "FP32"),
    "bf16": ("bf16", "BF16"),
    "f16": ("f16", "FP16"),
}
_VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")


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


class OpenVINOBackend(Backend):
    """OpenVINO backend (``backend="openvino"``, the default).

    Devices: whatever ``openvino.Core().available_devices`` lists (``"CPU"``, ``"GPU"``, ``"GPU.1"``,
    ``"NPU"``...) plus the virtual ``"AUTO"``, ``"AUTO:GPU,CPU"``, ``"MULTI:..."``, ``"HETERO:..."``;
    names are case-insensitive. Precision ``"auto"`` leaves the device's default (bf16 on CPUs that
    have it, f16 on GPUs); ``"f32"`` is exact parity with PyTorch.

    ``options`` (all optional):
        ``performance_hint``: ``"LATENCY"`` (default) or ``"THROUGHPUT"``.
        ``config``: a mapping of OpenVINO properties passed to ``compile_model`` untouched.
        ``num_requests``: infer requests in the pool (default: the compiled model's optimal number).
        ``compile_cache``: use OpenVINO's compiled-blob cache (default True).
        ``calibration`` (``precision="int8"``): a folder of photos, or a list of images, to
        calibrate on instead of the bundled set.
        ``quantization`` (``precision="int8"``): NNCF settings, see
        :class:`rmbg.quantize.QuantizationSettings` (e.g. ``{"subset_size": 64}``).
    """

    name: ClassVar[str] = "openvino"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("checkpoint", "module", "onnx", "ir")
    default_device: ClassVar[str] = "AUTO"
    #: Parallel streams: 1.1-1.2x the images per second on a folder (docs/performance.md),
    #: 1.5x slower for a single image, so only for batches.
    batch_options: ClassVar[Mapping[str, Any]] = {"performance_hint": "THROUGHPUT"}

    def __init__(
        self,
        source: ModelSource,
        *,
        precision: str = "auto",
        cache_dir: Path | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source, precision=precision, cache_dir=cache_dir, options=options)
        if precision not in ("auto", "int8", *_HINTS):
            raise UnsupportedOptionError(
                f"precision={precision!r} is not supported by the OpenVINO backend; "
                f"use one of: auto, {', '.join(_HINTS)}, int8."
            )
        self.cache_root = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
        self.core = ov.Core()
        if self.options.get("compile_cache", True):
            try:
                self.core.set_property({"CACHE_DIR": str(self.cache_root / "ov")})
            except RuntimeError as exc:  # pragma: no cover - depends on the plugin set
                logger.warning("OpenVINO compiled-model cache disabled: %s", exc)
        self._lock = threading.Lock()
        self._model_path: Path | None = None
        self._model: ov.Model | None = None
        self._quantization: dict[str, Any] | None = None
        self._calibration: Any = (
            None  # rmbg.quantize.CalibrationSet, built once (may be a generator)
        )

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
        if self.precision == "int8":
            return "int8"
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
            **({"quantization": self._quantization_key()} if self.precision == "int8" else {}),
        }

    def _quantization_key(self) -> dict[str, Any]:
        """What makes one INT8 model differ from another: settings, calibration and held-out data."""
        from .. import quantize

        settings = quantize.settings_from_options(self.options)
        return {
            "settings": settings.as_dict(),
            "calibration": self._calibration_set().digest,
            "heldout": quantize.heldout_digest(),
            "bar": dataclasses.asdict(quantize.DEFAULT_BAR),
        }

    def _calibration_set(self) -> Any:
        """The calibration set of ``options["calibration"]``, read once."""
        from .. import quantize

        if self._calibration is None:
            settings = quantize.settings_from_options(self.options)
            self._calibration = quantize.calibration_set(
                self.options.get("calibration"), settings=settings
            )
        return self._calibration

    def model_path(self) -> Path | None:
        """The IR file in use (converting into the cache on first call); None for an in-memory IR."""
        self._prepare()
        return self._model_path

    def _prepare(self) -> None:
        with self._lock:
            if self._model_path is not None or self._model is not None:
                return
            if self.source.kind == "ir" and self.precision != "int8":
                self._model = _prune(self.core.read_model(str(self.source.path)), self.source)
                return
            parts = self._key_parts()
            key = cache.cache_key(parts)
            entry = self.cache_root / "ir" / key
            with cache.locked(entry.with_name(key + ".lock")):
                manifest = cache.read_manifest(entry)
                if manifest is None:
                    metadata: dict[str, Any] = {"key": parts}
                    if self.precision == "int8":
                        logger.info("quantizing %s to INT8 (cache %s)", self.source.kind, entry)
                    else:
                        logger.info(
                            "converting %s to OpenVINO IR (cache %s)", self.source.kind, entry
                        )
                    # the build adds the quantization figures to metadata before it is written
                    manifest = cache.write_entry(
                        entry, lambda d: self._convert_into(d, metadata), metadata=metadata
                    )
                else:
                    logger.debug("using cached IR %s", entry)
            quantization = manifest.get("quantization")
            self._quantization = dict(quantization) if isinstance(quantization, dict) else None
            self._model_path = entry / "model.xml"

    def _convert_into(self, folder: Path, metadata: dict[str, Any] | None = None) -> None:
        if self.precision == "int8":
            model = self._quantize(metadata if metadata is not None else {})
        else:
            model = self._convert()
        model.set_rt_info(__version__, ["rmbg", "version"])
        model.set_rt_info(self.source.weights_digest, ["rmbg", "weights_sha256"])
        ov.save_model(
            model, str(folder / "model.xml"), compress_to_fp16=self._ir_precision() == "f16"
        )

    def _quantize(self, metadata: dict[str, Any]) -> ov.Model:
        """The f32 IR (converted into the cache first), quantized and checked against f32.

        Raises :class:`rmbg.quantize.QuantizationQualityError` (nothing is cached) when the INT8
        masks miss the bar on the held-out photos.
        """
        from .. import quantize

        f32 = OpenVINOBackend(
            self.source,
            precision="f32",
            cache_dir=self.cache_root,
            options={"compile_cache": False},
        )
        f32._prepare()
        model = f32._model if f32._model is not None else self.core.read_model(str(f32._model_path))
        settings = quantize.settings_from_options(self.options)
        quantized, report = quantize.quantize_checked(
            self.core,
            model,
            calibration=self._calibration_set(),
            spec=self.source.spec,
            settings=settings,
        )
        metadata["quantization"] = report.as_dict()
        quantized.set_rt_info("int8", ["rmbg", "precision"])
        return quantized

    def _convert(self) -> ov.Model:
        spec = self.source.spec
        shape = [1, 3, *spec.input_size]
        if self.source.kind == "ir":  # only for int8: the IR is quantized, not converted
            return _prune(self.core.read_model(str(self.source.path)), self.source)
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
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": str(self.options.get("performance_hint", "LATENCY")).upper()
        }
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
        config.update(dict(self.options.get("config", {})))
        return config

    def load(self, device: str) -> OpenVINOEngine:
        self._prepare()
        config = self._config(device)
        target: Any = str(self._model_path) if self._model_path is not None else self._model
        compiled = self.core.compile_model(target, device, config)
        n = int(
            self.options.get("num_requests")
            or _prop(compiled, "OPTIMAL_NUMBER_OF_INFER_REQUESTS", 1)
        )
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
        if self.precision == "int8":
            inference = f"int8 (other layers: {inference})"
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
                **({"quantization": self._quantization} if self._quantization else {}),
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
