"""The OpenVINO backend: conversion cache, devices, precision, and running without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from rmbg.backends.base import ModelSource
from rmbg.backends.openvino import OpenVINOBackend
from rmbg.errors import DeviceNotFoundError, UnsupportedOptionError
from rmbg.specs import RMBG_1_4

from .helpers import load_photo

SPEC = RMBG_1_4.with_input_size(64, 64)


@pytest.fixture(scope="module")
def tiny_source():
    from rmbg.model import random_model

    return ModelSource(
        kind="module", module=random_model(seed=11), spec=SPEC, weights_digest="tiny-11"
    )


@pytest.fixture
def count_conversions(monkeypatch):
    calls: list[object] = []
    real = ov.convert_model

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ov, "convert_model", counting)
    return calls


@pytest.mark.slow
def test_converted_once_then_read_from_the_cache(tiny_source, tmp_path, count_conversions):
    first = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path)
    path = first.model_path()
    assert path is not None and path.is_file() and path.parent.parent == tmp_path / "ir"
    second = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path)
    assert second.model_path() == path
    assert len(count_conversions) == 1
    # the IR is stamped and pruned to the single mask output
    model = ov.Core().read_model(str(path))
    assert len(model.outputs) == 1
    assert model.get_rt_info(["rmbg", "weights_sha256"]).astype(str) == "tiny-11"
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["key"]["openvino"] == ov.get_version()
    assert manifest["key"]["input_shape"] == [1, 3, 64, 64]


@pytest.mark.slow
def test_other_weights_or_precision_get_their_own_entry(tiny_source, tmp_path, count_conversions):
    from dataclasses import replace

    a = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path).model_path()
    b = OpenVINOBackend(
        replace(tiny_source, weights_digest="tiny-12"), precision="f32", cache_dir=tmp_path
    ).model_path()
    c = OpenVINOBackend(tiny_source, precision="f16", cache_dir=tmp_path).model_path()
    d = OpenVINOBackend(
        replace(tiny_source, spec=RMBG_1_4.with_input_size(96, 96)), cache_dir=tmp_path
    ).model_path()
    assert len({a, b, c, d}) == 4
    assert len(count_conversions) == 4


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "delete_xml", "garbage_xml"])
def test_corrupt_cache_entry_is_rebuilt(tiny_source, tmp_path, count_conversions, damage):
    path = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path).model_path()
    assert path is not None
    if damage == "truncate":
        bin_path = path.with_suffix(".bin")
        bin_path.write_bytes(bin_path.read_bytes()[:1000])
    elif damage == "delete_xml":
        path.unlink()
    else:
        path.write_text("<net>" + "x" * (path.stat().st_size - 5))  # same size, wrong bytes
    backend = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path)
    assert backend.model_path() == path
    assert len(count_conversions) == 2
    engine = backend.load("CPU")
    assert engine(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)


_CONVERT_SCRIPT = textwrap.dedent(
    """
    import sys
    from rmbg.backends.base import ModelSource
    from rmbg.backends.openvino import OpenVINOBackend
    from rmbg.model import random_model
    from rmbg.specs import RMBG_1_4
    src = ModelSource(kind="module", module=random_model(seed=5), spec=RMBG_1_4.with_input_size(64, 64), weights_digest="race-5")
    print(OpenVINOBackend(src, precision="f32", cache_dir=sys.argv[1]).model_path())
    """
)


@pytest.mark.slow
def test_two_processes_converting_at_once_leave_one_valid_ir(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONVERT_SCRIPT, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    entries = [p for p in (tmp_path / "ir").iterdir() if p.is_dir()]
    assert len(entries) == 1, entries  # no temporary folder left behind
    core = ov.Core()
    compiled = core.compile_model(core.read_model(outs[0]), "CPU")
    assert compiled(np.zeros((1, 3, 64, 64), np.float32))[0].shape == (1, 1, 64, 64)


def test_device_names_are_canonical(tiny_source, tmp_path):
    backend = OpenVINOBackend(tiny_source, cache_dir=tmp_path)
    assert backend.canonical_device("cpu") == "CPU"
    assert backend.canonical_device(" Auto ") == "AUTO"
    assert backend.canonical_device("auto:cpu") == "AUTO:CPU"
    assert "AUTO" in backend.available_devices() and "CPU" in backend.available_devices()
    for missing in ("GPU", "gpu.1", "NPU", "AUTO:GPU,CPU"):
        if (
            missing.split(":")[-1].split(",")[0].upper().split(".")[0]
            in ov.Core().available_devices
        ):
            continue
        with pytest.raises(DeviceNotFoundError, match=r"Available: CPU"):
            backend.canonical_device(missing)


def test_precision_the_device_lacks_is_refused(tiny_source, tmp_path):
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    backend = OpenVINOBackend(tiny_source, precision="f16", cache_dir=tmp_path)
    if "FP16" in caps:
        assert backend.load("CPU").info.inference_precision == "f16"
    else:
        with pytest.raises(UnsupportedOptionError, match="not supported on CPU"):
            backend.load("CPU")
    with pytest.raises(UnsupportedOptionError, match="precision"):
        OpenVINOBackend(tiny_source, precision="f64", cache_dir=tmp_path)


@pytest.mark.slow
def test_precision_maps_to_the_inference_precision_hint(tiny_source, tmp_path):
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    f32 = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path).load("CPU").info
    assert f32.inference_precision == "f32"
    assert f32.details["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    auto = OpenVINOBackend(tiny_source, precision="auto", cache_dir=tmp_path).load("CPU").info
    assert auto.inference_precision == ("bf16" if "BF16" in caps else "f32")
    assert "INFERENCE_PRECISION_HINT" not in auto.details["config"]
    under_auto = (
        OpenVINOBackend(tiny_source, precision="auto", cache_dir=tmp_path).load("AUTO").info
    )
    assert under_auto.execution_devices == ("CPU",)
    assert under_auto.inference_precision == auto.inference_precision  # asked of the CPU plugin


_NO_TORCH = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    import numpy as np
    from rmbg import BackgroundRemover, BackendUnavailableError
    model, cache = sys.argv[1], sys.argv[2]
    r = BackgroundRemover(model, precision="f32", cache_dir=cache, device="CPU")
    x = np.zeros((1, 3, 1024, 1024), np.float32)
    print(r.engine()(x).shape, r.info.execution_devices)
    try:
        BackgroundRemover(model, backend="torch")
    except BackendUnavailableError as exc:
        print("torch backend:", exc)
    """
)


@pytest.mark.slow
@pytest.mark.realweights
def test_openvino_backend_works_without_torch(standin_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    onnx = standin_dir / "onnx" / "model_fp16.onnx"
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(onnx), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "(1, 1, 1024, 1024) ('CPU',)" in out.stdout
    assert 'pip install "rmbg[torch]"' in out.stdout
    # the IR it cached is usable as a model on its own, still without torch
    ir = next((tmp_path / "ir").glob("*/model.xml"))
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(ir), str(tmp_path / "other")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr


_TORCH_BLOCKED = textwrap.dedent(
    """
    import sys

    attempts = []

    class BlockTorch:
        # any attempt to import torch is recorded and fails, even one a library would catch
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                attempts.append(name)
                raise ModuleNotFoundError(f"torch is blocked in this test ({name})", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    import numpy as np
    from rmbg import BackendUnavailableError, BackgroundRemover

    checkpoint, cache, photo = sys.argv[1:4]
    remover = BackgroundRemover(checkpoint, precision="f32", cache_dir=cache, device="CPU")
    mask = np.asarray(remover.mask(photo))  # a path in, a PIL image out
    print("mask", mask.shape, mask.dtype, int(mask[256, 256]), int(mask[5, 5]))
    print("attempts", attempts, "torch" in sys.modules)
    try:
        BackgroundRemover(checkpoint, backend="torch")
    except BackendUnavailableError as exc:
        print("torch backend:", exc)
    """
)


@pytest.mark.slow
@pytest.mark.realweights
def test_checkpoint_runs_without_ever_importing_torch(standin_dir, tmp_path):
    """The default path (a checkpoint folder, empty cache) never tries to import torch."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    photo = Path(__file__).parents[1] / "src" / "rmbg" / "data" / "photos" / "astronaut.jpg"
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_BLOCKED, str(standin_dir), str(tmp_path), str(photo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    mask, attempts, torch_backend = lines[0].split(), lines[1], lines[2]
    assert mask[1:4] == ["(512,", "512)", "uint8"]
    assert int(mask[4]) > 200 and int(mask[5]) < 50  # the astronaut is kept, the corner is not
    assert attempts == "attempts [] False"
    assert 'pip install "rmbg[torch]"' in torch_backend
    assert len(list((tmp_path / "ir").glob("*/model.xml"))) == 1


@pytest.mark.slow
@pytest.mark.realweights
def test_second_process_does_not_convert_again(standin_dir, tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        from rmbg.backends import ov_graph
        calls = []
        real = ov_graph.build_model
        ov_graph.build_model = lambda *a, **k: calls.append(1) or real(*a, **k)
        from rmbg import BackgroundRemover
        t = time.perf_counter()
        r = BackgroundRemover(sys.argv[1], cache_dir=sys.argv[2], device="CPU")
        r.warmup()
        print(len(calls), "torch" in sys.modules)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(standin_dir), str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert runs[0].stdout.split() == ["1", "False"]  # built once, without torch
    assert runs[1].stdout.split() == ["0", "False"]  # cached IR: not built again
    assert any((tmp_path / "ov").iterdir())  # OpenVINO's compiled-blob cache is in use


@pytest.mark.slow
@pytest.mark.realweights
def test_real_photo_end_to_end_matches_torch(standin_dir, tmp_path):
    from rmbg import BackgroundRemover

    rgb = load_photo("astronaut")
    ov_mask = BackgroundRemover(
        standin_dir, precision="f32", device="cpu", cache_dir=tmp_path
    ).mask(rgb)
    torch_mask = BackgroundRemover(standin_dir, backend="torch").mask(rgb)
    assert np.abs(ov_mask.astype(int) - torch_mask.astype(int)).max() <= 1
    assert (
        ov_mask[256, 256] > 200 and ov_mask[5, 5] < 50
    )  # the astronaut is kept, the corner is not
