"""Test helpers for rmbg users (and rmbg's own tests): a dependency-free fake backend.

:class:`FakeBackend` (registered as ``backend="fake"``) runs no network: its "mask" is a smooth
function of the pre-processed input's brightness, so it is deterministic, input-dependent, fast and
needs neither torch nor OpenVINO. Use it to test code built on rmbg without model weights::

    from rmbg.testing import fake_remover
    remover = fake_remover()
    cut = remover.cutout(my_image)   # real I/O, pre/post-processing and compositing; fake network
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .backends.base import Backend, BackendOptions, EngineInfo, ModelSource, SourceKind
from .errors import DeviceNotFoundError

__all__ = ["FAKE_SOURCE", "FakeBackend", "FakeEngine", "fake_remover"]

logger = logging.getLogger("rmbg")

#: A model source that needs no files, for ``BackgroundRemover(FAKE_SOURCE, backend="fake")``.
FAKE_SOURCE = ModelSource(kind="module", weights_digest="fake")


class FakeEngine:
    """``sigmoid(8 * mean_channel(x))``: bright pixels are "foreground". Counts its calls.

    ``delay`` seconds are slept per call, to stand in for a slow network (interruption tests).
    ``crash_once``: see :class:`FakeOptions`.
    """

    def __init__(self, info: EngineInfo, delay: float = 0.0, crash_once: str | None = None) -> None:
        self._info = info
        self.delay = delay
        self.crash_once = crash_once
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def info(self) -> EngineInfo:
        return self._info

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        if batch.ndim != 4 or batch.shape[1] != 3 or batch.dtype != np.float32:
            raise ValueError(f"expected float32 (N, 3, H, W), got {batch.dtype} {batch.shape}")
        with self._lock:
            self.calls += 1
            calls = self.calls
        if self.crash_once and calls > 1:
            _crash_once(self.crash_once)
        if self.delay > 0:
            time.sleep(self.delay)
        y = 1.0 / (1.0 + np.exp(-8.0 * batch.mean(axis=1, keepdims=True)))
        out: NDArray[np.float32] = y.astype(np.float32)
        return out


def _crash_once(marker: str) -> None:
    """Exit the process at once if this is the first process to create ``marker``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)  # an abrupt death, like the OOM killer's: no cleanup, no exception


@dataclasses.dataclass(frozen=True)
class FakeOptions(BackendOptions):
    """The fake backend's options.

    Attributes:
        delay: Seconds each engine call sleeps (to test pipelining and timeouts).
        performance_hint: Accepted like OpenVINO's (so that callers' batch options can be tested
            without a network); it changes nothing.
        crash_once: A marker path: the first process whose engine creates it (on a call after
            its first) exits at once, as the OOM killer would end it; to prove that a frontend
            replaces a dead worker and retries its work (tests/test_ray.py).
    """

    delay: float = 0.0
    crash_once: str | None = None
    performance_hint: str = "LATENCY"


class FakeBackend(Backend):
    """A backend without a network (``backend="fake"``). Devices: ``"cpu"`` and ``"fake"``.

    ``backend_options``: :class:`FakeOptions` (``{"delay": seconds}``: each engine call sleeps that
    long).
    """

    name: ClassVar[str] = "fake"
    accepts: ClassVar[tuple[SourceKind, ...]] = ("checkpoint", "module", "onnx", "ir")
    default_device: ClassVar[str] = "cpu"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "fake")
    #: Like OpenVINO's, so that batch callers' handling of it can be tested without a network.
    batch_options: ClassVar[Mapping[str, Any]] = {"performance_hint": "THROUGHPUT"}

    Options: ClassVar[type[BackendOptions]] = FakeOptions
    options: FakeOptions

    def setup(self) -> None:
        self.loads: list[str] = []

    def available_devices(self) -> tuple[str, ...]:
        return self.devices

    def canonical_device(self, device: str) -> str:
        name = device.strip().lower()
        if name not in self.devices:
            raise DeviceNotFoundError(
                f"Device {device!r} is not available to the fake backend. Available: "
                f"{', '.join(self.devices)}."
            )
        return name

    def load(self, device: str) -> FakeEngine:
        self.loads.append(device)
        logger.debug(
            "fake engine loaded on %s (options: %s)", device, dataclasses.asdict(self.options)
        )
        return FakeEngine(
            EngineInfo(
                backend=self.name,
                device=device,
                execution_devices=(device,),
                precision=self.precision,
                inference_precision="f32",
            ),
            delay=float(self.options.delay),
            crash_once=self.options.crash_once,
        )


def fake_remover(**kwargs: Any) -> Any:
    """A :class:`~rmbg.BackgroundRemover` on the fake backend (keyword arguments pass through)."""
    from .remover import BackgroundRemover

    return BackgroundRemover(FAKE_SOURCE, backend="fake", **kwargs)
