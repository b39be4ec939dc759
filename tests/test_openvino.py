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


def _perturbed_bin(xml: Path) -> bytes:
    """The IR's .bin with its largest f32 constant negated: other valid weights, same size."""
    import re

    consts = []
    for tag in re.findall(r"<data [^>]*>", xml.read_text()):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("element_type") == "f32" and "offset" in attrs:
            consts.append((int(attrs["size"]), int(attrs["offset"])))
    size, offset = max(consts)
    data = bytearray(xml.with_suffix(".bin").read_bytes())
    block = np.frombuffer(bytes(data[offset : offset + size]), np.float32)
    data[offset : offset + size] = (-block).tobytes()
    return bytes(data)


def _run(target: OpenVINOBackend | Path) -> np.ndarray:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, 64, 64)).astype(np.float32)
    if isinstance(target, Path):  # compiled by OpenVINO itself, no cache of any kind
        return ov.Core().compile_model(str(target), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[
            0
        ]
    return target.load("CPU")(x)


@pytest.mark.slow
def test_same_size_overwrite_of_the_weights_is_caught(tiny_source, tmp_path, count_conversions):
    """Fault 1: a cached model.bin overwritten in place by other valid weights of the same size
    (so the IR still compiles) is detected and rebuilt, never silently used."""
    options = {"compile_cache": False}
    backend = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path, options=options)
    path = backend.model_path()
    assert path is not None
    expected = _run(backend)
    changed = _perturbed_bin(path)
    assert len(changed) == path.with_suffix(".bin").stat().st_size > 16 << 20
    with path.with_suffix(".bin").open("r+b") as f:  # in place: same inode, same size
        f.write(changed)
    assert np.abs(_run(path) - expected).max() > 1e-3  # what trusting it would give
    again = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path, options=options)
    np.testing.assert_array_equal(_run(again), expected)
    assert len(count_conversions) == 2  # converted, then rebuilt


def _matmul_ir(folder: Path, weight: float) -> None:
    """A tiny IR, y = x @ W with W = ``weight`` everywhere, as model.xml/model.bin in ``folder``."""
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], np.float32)
    w = ops.constant(np.full((4, 4), weight, np.float32))
    model = ov.Model([ops.matmul(x, w, False, False)], [x], "matmul")
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)


def test_compiled_blobs_never_outlive_a_changed_ir(tmp_path):
    """OpenVINO keys its compiled blobs by the IR's path (and the .xml file) and misses a changed
    .bin: it serves the old weights. When an entry's files are replaced in place by another
    consistent entry (``cp`` from a backup writes into the existing files; here the .xml is the
    same), the next backend must compile the new IR, not reuse the old blob."""
    from rmbg import cache

    source = ModelSource(kind="module", spec=SPEC, weights_digest="matmul")
    backend = OpenVINOBackend(source, cache_dir=tmp_path)
    entry = tmp_path / "ir" / cache.cache_key(backend._key_parts())
    metadata = {"key": backend._key_parts()}
    cache.write_entry(entry, lambda d: _matmul_ir(d, 1.0), metadata=metadata)
    x = np.ones((1, 4), np.float32)
    assert backend.load("CPU")(x).tolist() == [[4.0] * 4]  # read from the cache, blob stored
    assert any(p.suffix == ".blob" for p in (tmp_path / "ov").rglob("*"))
    backup = tmp_path / "backup" / entry.name

    def build(folder: Path) -> None:  # the same .xml, W = 2 in the .bin
        (folder / "model.xml").write_bytes((entry / "model.xml").read_bytes())
        (folder / "model.bin").write_bytes(np.full((4, 4), 2.0, np.float32).tobytes())

    cache.write_entry(backup, build, metadata=metadata)
    assert (backup / "model.bin").stat().st_size == (entry / "model.bin").stat().st_size
    for name in ("model.bin", "manifest.json"):
        with (entry / name).open("r+b") as f:  # same inodes, as `cp` does
            f.write((backup / name).read_bytes())
            f.truncate()
    again = OpenVINOBackend(source, cache_dir=tmp_path)
    assert again.load("CPU")(x).tolist() == [[8.0] * 4]


_READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from rmbg.backends.base import ModelSource
    from rmbg.backends.openvino import OpenVINOBackend
    from rmbg.errors import CacheError
    from rmbg.specs import RMBG_1_4
    spec = RMBG_1_4.with_input_size(64, 64)
    source = ModelSource(kind="module", spec=spec, weights_digest=sys.argv[2])
    try:
        out = OpenVINOBackend(source, cache_dir=sys.argv[1]).load("CPU")(np.ones((1, 4), np.float32))
        print(out.tolist())
    except CacheError as exc:
        print("CacheError:", exc)
    """
)


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(
    not _unshare_works(),
    reason="needs `unshare -rm` (user namespaces) to mount a folder read-only; the read-only "
    "rules are also tested with simulated EROFS in test_cache.py",
)
def test_a_read_only_mount_of_a_complete_cache_works(tmp_path):
    """Fault 4, on a real read-only bind mount: a complete entry is used (no lock file needed);
    a missing one is a CacheError that names the folder and the fix."""
    from rmbg import cache

    source = ModelSource(kind="module", spec=SPEC, weights_digest="matmul")
    parts = OpenVINOBackend(source, cache_dir=tmp_path)._key_parts()
    entry = tmp_path / "ir" / cache.cache_key(parts)
    cache.write_entry(entry, lambda d: _matmul_ir(d, 1.0), metadata={"key": parts})
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))

    def run_read_only(digest: str) -> str:
        shell = (
            'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && exec "$2" -c "$3" "$1" "$4"'
        )
        out = subprocess.run(
            [
                "unshare",
                "-rm",
                "sh",
                "-c",
                shell,
                "sh",
                str(tmp_path),
                sys.executable,
                _READ_ONLY_SCRIPT,
                digest,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run_read_only("matmul") == str([[4.0] * 4])
    message = run_read_only("not-converted-yet")
    assert message.startswith("CacheError: The rmbg cache folder") and "not writable" in message
    assert str(tmp_path / "ir") in message and "RMBG_CACHE_DIR" in message
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing was written


def test_cache_dir_that_is_a_file_says_so(tiny_source, tmp_path, monkeypatch):
    from rmbg.errors import CacheError

    blocker = tmp_path / "cache"
    blocker.write_text("oops")
    monkeypatch.setenv("RMBG_CACHE_DIR", str(blocker))
    with pytest.raises(CacheError, match=rf"{blocker} is a file, not a folder.*RMBG_CACHE_DIR"):
        OpenVINOBackend(tiny_source, precision="f32").model_path()


def test_disk_full_while_saving_the_ir(tiny_source, tmp_path, monkeypatch):
    """Fault 5: OpenVINO's writer fails with an iostream error on a full disk."""
    import shutil

    from rmbg.errors import CacheError

    backend = OpenVINOBackend(tiny_source, precision="f32", cache_dir=tmp_path)
    monkeypatch.setattr(backend, "_convert", lambda: ov.Model([], [], "stub"))

    def full_disk(model, path, compress_to_fp16=True):
        Path(path).write_bytes(b"<net")  # a partial file, as a real full disk leaves it
        free = shutil._ntuple_diskusage(1 << 30, 1 << 30, 4096)
        monkeypatch.setattr(shutil, "disk_usage", lambda p: free)
        raise RuntimeError(
            "Exception from src/core/src/pass/serialize.cpp:1300:\nbasic_ios::clear: iostream error"
        )

    monkeypatch.setattr(ov, "save_model", full_disk)
    with pytest.raises(CacheError, match=rf"No space left on {tmp_path / 'ir'} \(0 MiB free"):
        backend.model_path()
    assert [p.name for p in (tmp_path / "ir").iterdir()] == [
        p.name for p in (tmp_path / "ir").glob("*.lock")
    ]


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


class _Capabilities:
    """An ov.Core whose devices report other OPTIMIZATION_CAPABILITIES (the rest is the real one)."""

    def __init__(self, core: ov.Core, caps: list[str]) -> None:
        self._core, self._caps = core, caps

    def get_property(self, device: str, name: str) -> object:
        if name == "OPTIMIZATION_CAPABILITIES":
            return list(self._caps)
        return self._core.get_property(device, name)

    def __getattr__(self, name: str) -> object:
        return getattr(self._core, name)


def _matmul_backend(tmp_path: Path, precision: str) -> OpenVINOBackend:
    """A backend whose cache already holds its (tiny matmul) IR: loads without converting."""
    from rmbg import cache

    source = ModelSource(kind="module", spec=SPEC, weights_digest="matmul")
    backend = OpenVINOBackend(source, precision=precision, cache_dir=tmp_path)
    parts = backend._key_parts()
    entry = tmp_path / "ir" / cache.cache_key(parts)
    if cache.read_manifest(entry) is None:
        cache.write_entry(entry, lambda d: _matmul_ir(d, 1.0), metadata={"key": parts})
    return backend


@pytest.mark.parametrize("precision", ["f16", "bf16"])
def test_precision_the_device_lacks_is_refused(tmp_path, precision):
    real_caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    capability = {"f16": "FP16", "bf16": "BF16"}[precision]
    # this machine, whatever it has
    backend = _matmul_backend(tmp_path, precision)
    if capability in real_caps:
        assert backend.load("CPU").info.inference_precision == precision
    else:
        with pytest.raises(UnsupportedOptionError, match="not supported on CPU"):
            backend.load("CPU")
    # a CPU without it (the branch this machine may never reach)
    source = ModelSource(kind="module", spec=SPEC, weights_digest="never-converted")
    lacking = OpenVINOBackend(source, precision=precision, cache_dir=tmp_path / "empty")
    lacking.core = _Capabilities(lacking.core, [c for c in real_caps if c != capability])
    with pytest.raises(
        UnsupportedOptionError, match=rf"precision='{precision}' is not supported on CPU"
    ):
        lacking.load("CPU")
    assert not (tmp_path / "empty").exists()  # refused before converting anything
    # f32 is never refused, even by a device that does not list FP32
    plain = _matmul_backend(tmp_path, "f32")
    plain.core = _Capabilities(plain.core, ["INT8"])
    assert plain.load("CPU").info.inference_precision == "f32"
    with pytest.raises(UnsupportedOptionError, match="precision"):
        OpenVINOBackend(backend.source, precision="f64", cache_dir=tmp_path)


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
