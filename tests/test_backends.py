"""The backend registry and the contract every registered backend must honour."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import EntryPoint

import numpy as np
import pytest

import rmbg
from rmbg.backends import _registry as registry_table
from rmbg.backends import available_backends, get_backend, register_backend
from rmbg.backends.base import Backend, Engine, ModelSource
from rmbg.errors import BackendUnavailableError, DeviceNotFoundError, UnknownBackendError
from rmbg.specs import RMBG_1_4
from rmbg.testing import FAKE_SOURCE, FakeBackend

SPEC = RMBG_1_4.with_input_size(64, 64)


def test_import_rmbg_imports_neither_torch_nor_openvino():
    code = "import sys, rmbg; rmbg.available_backends(); print(sorted(m for m in ('torch', 'openvino') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_builtins_are_registered():
    assert {"openvino", "torch", "fake"} <= set(available_backends())
    assert get_backend("FAKE") is FakeBackend


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(UnknownBackendError, match=r"Available backends: .*openvino.*torch"):
        get_backend("tensorrt")
    with pytest.raises(KeyError):  # also a KeyError for callers that don't know rmbg
        get_backend("tensorrt")


def test_missing_extra_names_the_pip_install(monkeypatch):
    register_backend(
        "needs-extra",
        "rmbg_missing_package_xyz.backend:Backend",
        install_hint='pip install "rmbg[xyz]"',
    )
    try:
        with pytest.raises(BackendUnavailableError, match=r'pip install "rmbg\[xyz\]"') as info:
            get_backend("needs-extra")
        assert isinstance(info.value, ImportError)
    finally:
        registry_table.pop("needs-extra")


def test_register_refuses_to_overwrite_silently():
    with pytest.raises(ValueError, match="already registered"):
        register_backend("fake", FakeBackend)


def test_entry_point_backends_are_discovered(monkeypatch):
    import rmbg.backends as backends

    ep = EntryPoint(name="thirdparty", value="rmbg.testing:FakeBackend", group="rmbg.backends")
    monkeypatch.setattr(
        backends, "entry_points", lambda group: [ep] if group == "rmbg.backends" else []
    )
    monkeypatch.setattr(backends, "_entry_points_loaded", False)
    try:
        assert "thirdparty" in available_backends()
        assert get_backend("thirdparty") is FakeBackend
    finally:
        registry_table.pop("thirdparty", None)


def test_non_backend_target_is_rejected():
    register_backend("bogus", "rmbg.errors:RmbgError")
    try:
        with pytest.raises(UnknownBackendError, match="not an rmbg Backend"):
            get_backend("bogus")
    finally:
        registry_table.pop("bogus")


# -- the contract -------------------------------------------------------------------------------


def _source_for(cls: type[Backend]) -> ModelSource:
    if cls is FakeBackend or "module" not in cls.accepts:
        return FAKE_SOURCE
    from rmbg.model import random_model

    return ModelSource(
        kind="module", module=random_model(seed=3), spec=SPEC, weights_digest="contract-3"
    )


@pytest.fixture(scope="module", params=sorted(available_backends()))
def backend(request, tmp_path_factory) -> Backend:
    cls = get_backend(request.param)
    return cls(_source_for(cls), precision="auto", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_contract(backend: Backend):
    cls = type(backend)
    assert cls.name and get_backend(cls.name) is cls
    devices = backend.available_devices()
    assert devices and all(isinstance(d, str) for d in devices)
    default = backend.canonical_device(cls.default_device)
    assert backend.canonical_device(default) == default  # idempotent
    assert backend.canonical_device(default.swapcase()) == default  # case-insensitive
    with pytest.raises(DeviceNotFoundError, match="Available"):
        backend.canonical_device("no-such-device-42")

    engine = backend.load(default)
    assert isinstance(engine, Engine)
    assert engine.info.backend == cls.name
    assert engine.info.execution_devices

    h, w = 64, 64
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, (1, 3, h, w)).astype(np.float32) / 255 - 0.5).astype(np.float32)
    before = x.copy()
    y = engine(x)
    np.testing.assert_array_equal(x, before)  # the input is not mutated
    assert y.dtype == np.float32 and y.shape == (1, 1, h, w)
    assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    np.testing.assert_array_equal(engine(x), y)  # deterministic

    # several threads at once get the same answers as one at a time
    inputs = [(rng.random((1, 3, h, w), dtype=np.float32) - 0.5) for _ in range(4)]
    expected = [engine(i) for i in inputs]
    results: list[np.ndarray | None] = [None] * 8
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = engine(inputs[k % 4])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(8):
        np.testing.assert_array_equal(results[k], expected[k % 4])


PUBLIC = {
    "BackgroundRemover", "RMBG_1_4", "ModelSpec", "__version__",
    "Backend", "Engine", "EngineInfo", "ModelSource",
    "available_backends", "get_backend", "register_backend",
    "remove", "remove_mask", "default_remover", "set_default_remover", "CutoutAndMask",
}  # fmt: skip


def test_public_surface_is_explicit():
    """The public surface is exactly this list plus every error: a name added or dropped by
    accident fails here (update the list, the docs and the changelog together)."""
    import inspect

    from rmbg import errors

    assert len(rmbg.__all__) == len(set(rmbg.__all__))
    assert set(rmbg.__all__) == PUBLIC | set(errors.__all__)
    namespace: dict[str, object] = {}
    exec("from rmbg import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(rmbg.__all__)
    for name in rmbg.__all__:
        obj = namespace[name]
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("rmbg."), (name, obj.__module__)
    assert namespace["BackgroundRemover"].__name__ == "BackgroundRemover"
    assert isinstance(namespace["__version__"], str) and namespace["__version__"]
    with pytest.raises(AttributeError, match="no attribute 'remover_'"):
        rmbg.remover_  # noqa: B018  (a typo is an AttributeError, not None)
