"""Finding, downloading and verifying weights: local forms, torch modules, and the Hub route.

Everything runs offline. The Hub tests build a fake huggingface_hub cache in a temporary folder
(``models--owner--name/{refs/main, blobs/<sha256>, snapshots/<commit>/...}``) with offline mode
on, or replace ``hf_hub_download`` with a stub that raises the errors huggingface_hub raises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import numpy as np
import pytest
from huggingface_hub import errors as hf_errors
from safetensors.numpy import save_file

from rmbg import weights
from rmbg.backends.base import ModelSource
from rmbg.errors import (
    ChecksumMismatchError,
    GatedModelError,
    ModelError,
    ModelNotFoundError,
    UnsupportedOptionError,
)
from rmbg.specs import RMBG_1_4, WeightsFile
from rmbg.weights import download, file_sha256, read_state_dict, resolve_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SRC = Path(__file__).resolve().parents[1] / "src"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_safetensors(path: Path, value: float = 1.0) -> bytes:
    save_file({"conv_in.weight": np.full((2, 3), value, np.float32)}, str(path))
    return path.read_bytes()


@pytest.fixture(autouse=True)
def _fresh_digest_memo(monkeypatch):
    """Each test starts with an empty in-process digest memo."""
    monkeypatch.setattr(weights, "_digests", {})


# -- file_sha256 ------------------------------------------------------------------------------


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == sha256(data)
    assert file_sha256(str(tmp_path / "f")) == sha256(data)


def test_file_sha256_is_memoised_by_path_size_and_mtime(tmp_path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"a" * 100)
    first = file_sha256(f)
    st = f.stat()
    f.write_bytes(b"b" * 100)  # same size; put the old mtime back: the memo answers
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(f) == first
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: hashed again
    assert file_sha256(f) == sha256(b"b" * 100)


def test_file_sha256_sidecar_serves_a_new_process_and_survives_corruption(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "_SIDECAR_MIN_BYTES", 10)
    f = tmp_path / "big"
    f.write_bytes(b"a" * 100)
    st = f.stat()
    digest = file_sha256(f)
    sidecar = tmp_path / "cache" / "digests.json"
    assert digest in json.loads(sidecar.read_text()).values()
    # a "new process": empty memo, content changed behind the same size and mtime
    monkeypatch.setattr(weights, "_digests", {})
    f.write_bytes(b"b" * 100)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(f) == digest  # from the sidecar, without reading the file
    # corrupt sidecars cost a re-hash, never an error
    for garbage in ("{not json", "[1, 2]", json.dumps({"x": 1}), ""):
        monkeypatch.setattr(weights, "_digests", {})
        sidecar.write_text(garbage)
        assert file_sha256(f) == sha256(b"b" * 100)
    monkeypatch.setattr(weights, "_digests", {})
    sidecar.write_text(json.dumps({f"{f.resolve()}|100|{st.st_mtime_ns}": "not-a-digest"}))
    assert file_sha256(f) == sha256(b"b" * 100)


def test_file_sha256_small_files_leave_no_sidecar(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "small").write_bytes(b"x")
    file_sha256(tmp_path / "small")
    assert not (tmp_path / "cache").exists()


def test_file_sha256_read_only_cache_is_not_an_error(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("RMBG_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    monkeypatch.setattr(weights, "_SIDECAR_MIN_BYTES", 1)
    (tmp_path / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f") == sha256(b"abc")


def test_default_cache_dir_is_reexported(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "c"))
    assert weights.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RMBG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.default_cache_dir() == tmp_path / "xdg" / "rmbg"


# -- read_state_dict --------------------------------------------------------------------------


def test_read_state_dict_round_trip(tmp_path) -> None:
    tensors = {
        "a.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "a.bn_s1.num_batches_tracked": np.array(3),
        "c": np.ones(2, np.float16),
    }
    save_file(tensors, str(tmp_path / "m.safetensors"))
    got = read_state_dict(tmp_path / "m.safetensors")
    assert got.keys() == tensors.keys()
    for k, v in tensors.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_read_state_dict_corrupt_file_is_a_model_error(tmp_path, damage) -> None:
    data = tiny_safetensors(tmp_path / "ok.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(
        {"truncated": data[: len(data) - 7], "garbage": os.urandom(200), "empty": b""}[damage]
    )
    with pytest.raises(ModelError, match="download it again") as info:
        read_state_dict(bad)
    assert str(bad) in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("side1.weight", np.ones((1, 2), np.int32), "dtype int32, not floating point"),
        ("side1.bias", np.ones(2, np.uint8), "dtype uint8, not floating point"),
        ("stage1.bn_s1.num_batches_tracked", np.ones((), np.int32), "dtype int32, not int64"),
        ("stage1.rebnconvin.conv_s1.weight", np.array([0.0, np.nan], np.float32), "1 NaN"),
        ("conv_in.bias", np.array([np.inf, -np.inf, 1.0], np.float32), "2 NaN or infinite"),
        ("conv_in.weight", np.full(4, np.inf, np.float16), "4 NaN"),
    ],
)
def test_bad_weights_are_a_model_error_naming_the_tensor(tmp_path, name, value, complaint) -> None:
    """Fault 8: NaN weights failed at inference as an InvalidImageError blaming the image, and an
    int32 tensor was accepted silently."""
    path = tmp_path / "m.safetensors"
    save_file({"conv_in.weight": np.ones((2, 2), np.float32), name: value}, str(path))
    with pytest.raises(ModelError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert f"tensor {name!r}" in message and complaint in message and str(path) in message


def test_large_finite_weights_are_accepted(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    big = np.full(1000, np.finfo(np.float32).max, np.float32)  # the sum overflows float32 only
    save_file({"w": big, "h": np.array([-65504.0], np.float16)}, str(path))
    np.testing.assert_array_equal(read_state_dict(path)["w"], big)


def test_read_state_dict_missing_file(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError):
        read_state_dict(tmp_path / "nope.safetensors")


# -- resolve_model: local forms ---------------------------------------------------------------


def test_checkpoint_folder(tmp_path) -> None:
    data = tiny_safetensors(tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{}")
    source = resolve_model(tmp_path)
    assert source.kind == "checkpoint"
    assert source.path == tmp_path
    assert source.weights_path == tmp_path / "model.safetensors"
    assert source.weights_digest == sha256(data)
    assert source.repo_id is None and source.revision is None and source.module is None
    assert source.spec is RMBG_1_4
    assert resolve_model(str(tmp_path)) == source  # str and Path alike


def test_folder_without_safetensors_explains_the_layout(tmp_path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="pickle") as info:
        resolve_model(tmp_path)
    assert "config.json + model.safetensors" in str(info.value)
    (tmp_path / "pytorch_model.bin").unlink()
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="pass the file itself"):
        resolve_model(tmp_path)


def test_safetensors_file(tmp_path) -> None:
    f = tmp_path / "finetune.safetensors"
    data = tiny_safetensors(f)
    source = resolve_model(f)
    assert (source.kind, source.path, source.weights_path) == ("checkpoint", f, f)
    assert source.weights_digest == sha256(data)


def test_onnx_file(tmp_path) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"onnx bytes")  # not parsed here: the backend reads it
    source = resolve_model(f)
    assert (source.kind, source.path, source.weights_path) == ("onnx", f, f)
    assert source.weights_digest == sha256(b"onnx bytes")


def test_openvino_ir(tmp_path) -> None:
    xml, bin_ = tmp_path / "rmbg.xml", tmp_path / "rmbg.bin"
    xml.write_text("<net/>")
    bin_.write_bytes(b"weights-1")
    source = resolve_model(xml)
    assert (source.kind, source.path, source.weights_path) == ("ir", xml, bin_)
    assert len(source.weights_digest) == 64
    assert resolve_model(bin_) == source  # the .bin half of the pair names the same IR
    bin_.write_bytes(b"weights-2")  # other weights, other digest (cache keys follow)
    assert resolve_model(xml).weights_digest != source.weights_digest
    bin_.unlink()
    with pytest.raises(ModelNotFoundError, match=r"rmbg\.bin"):
        resolve_model(xml)


def test_pickle_files_are_refused(tmp_path) -> None:
    for name in ("pytorch_model.bin", "rmbg.pth", "rmbg.pt"):
        (tmp_path / name).write_bytes(b"\x80\x04pickle")
        with pytest.raises(ModelError, match="safetensors only"):
            resolve_model(tmp_path / name)


def test_unknown_file_type(tmp_path) -> None:
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(ModelError, match="Don't know how to load"):
        resolve_model(tmp_path / "model.h5")


@pytest.fixture
def no_hub(monkeypatch):
    """Fail the test if anything reaches hf_hub_download."""

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError(f"unexpected Hub call {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.mark.parametrize(
    "model",
    [
        "does/not/exist.onnx",
        "./missing",
        "models/rmbg.onnx",  # owner/name-like, but a file name: a path, not a repo id
        "not a repo id",
        Path("owner/name"),  # a Path object is always a path
    ],
)
def test_missing_paths_say_which_forms_are_accepted(model, no_hub, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="nothing exists at that path") as info:
        resolve_model(model)
    message = str(info.value)
    for form in ("repo id", "checkpoint folder", ".safetensors", ".onnx", ".xml", "torch module"):
        assert form in message
    assert isinstance(info.value, FileNotFoundError)


def test_an_empty_string_is_not_the_current_folder(no_hub) -> None:
    with pytest.raises(ModelNotFoundError, match="empty string"):
        resolve_model("")


def test_other_objects_are_refused(no_hub) -> None:
    with pytest.raises(ModelError, match="Cannot use a int"):
        resolve_model(42)


def test_a_model_source_passes_through(no_hub) -> None:
    source = ModelSource(kind="onnx", path=Path("x.onnx"))
    assert resolve_model(source) is source


def test_verify_checks_local_files_against_the_published_digests(tmp_path, no_hub) -> None:
    tiny_safetensors(tmp_path / "model.safetensors")
    (tmp_path / "model.onnx").write_bytes(b"not the official export")
    assert resolve_model(tmp_path, verify=None).kind == "checkpoint"  # local: unchecked
    with pytest.raises(ChecksumMismatchError, match=RMBG_1_4.weights.sha256):
        resolve_model(tmp_path, verify=True)
    with pytest.raises(ChecksumMismatchError, match="9fdfdb41"):
        resolve_model(tmp_path / "model.onnx", verify=True)
    data = (tmp_path / "model.onnx").read_bytes()
    spec = dataclasses.replace(
        RMBG_1_4, onnx_weights=(WeightsFile("onnx/model.onnx", sha256(data), len(data)),)
    )
    assert resolve_model(tmp_path / "model.onnx", spec=spec, verify=True).kind == "onnx"
    (tmp_path / "m.xml").write_text("<net/>")
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(UnsupportedOptionError):
        resolve_model(tmp_path / "m.xml", verify=True)


# -- resolve_model: torch modules -------------------------------------------------------------


def test_torch_module_digest_is_stable_and_follows_the_weights(no_hub) -> None:
    import torch  # the test extra installs it (a missing torch fails, never skips)

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    source = resolve_model(net)
    assert source.kind == "module" and source.module is net
    assert source.path is None and source.weights_path is None
    assert len(source.weights_digest) == 64
    assert resolve_model(net).weights_digest == source.weights_digest  # stable across calls
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    twin.load_state_dict(net.state_dict())
    assert resolve_model(twin).weights_digest == source.weights_digest  # content, not identity
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] += 1e-3
    changed = resolve_model(net).weights_digest
    assert changed != source.weights_digest
    net[1].running_var[0] = 2.0  # buffers count too
    assert resolve_model(net).weights_digest != changed

    class Other(torch.nn.Sequential):  # same weights, other forward: other digest
        pass

    other = Other(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    other.load_state_dict(twin.state_dict())
    assert resolve_model(other).weights_digest != resolve_model(twin).weights_digest
    half = twin.to(torch.bfloat16)  # dtypes numpy lacks hash fine
    assert len(resolve_model(half).weights_digest) == 64


def test_torch_module_cannot_be_verified() -> None:
    import torch

    with pytest.raises(UnsupportedOptionError):
        resolve_model(torch.nn.Linear(1, 1), verify=True)


def test_importing_weights_imports_neither_torch_nor_huggingface_hub() -> None:
    code = (
        "import sys, rmbg.weights; "
        "bad = [m for m in ('torch', 'huggingface_hub') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the Hub route, offline -------------------------------------------------------------------


def make_hub_cache(root: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """Lay files out as huggingface_hub does: blobs named by digest, snapshot symlinks."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / sha256(data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1, also for the already-imported huggingface_hub (it reads it at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def hub_cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture
def weights_bytes(tmp_path) -> bytes:
    return tiny_safetensors(tmp_path / "w.safetensors", 0.5)


def test_official_repo_with_a_wrong_file_is_a_checksum_error(offline, hub_cache, weights_bytes):
    snapshot = make_hub_cache(
        hub_cache, "briaai/RMBG-1.4", {"model.safetensors": weights_bytes, "config.json": b"{}"}
    )
    with pytest.raises(ChecksumMismatchError) as info:
        resolve_model("briaai/RMBG-1.4", cache_dir=hub_cache)
    message = str(info.value)
    assert str(snapshot / "model.safetensors") in message  # the file to delete...
    assert str((snapshot / "model.safetensors").resolve()) in message  # ...and its blob
    assert "delete" in message and "download it again" in message
    assert sha256(weights_bytes) in message and RMBG_1_4.weights.sha256 in message
    # explicitly unverified, the same file resolves
    source = resolve_model("briaai/RMBG-1.4", cache_dir=hub_cache, verify=False)
    assert source.weights_digest == sha256(weights_bytes)


def test_official_repo_with_the_published_file_resolves(offline, hub_cache, weights_bytes):
    spec = dataclasses.replace(
        RMBG_1_4,
        weights=WeightsFile("model.safetensors", sha256(weights_bytes), len(weights_bytes)),
    )
    snapshot = make_hub_cache(
        hub_cache, "briaai/RMBG-1.4", {"model.safetensors": weights_bytes, "config.json": b"{}"}
    )
    source = resolve_model("briaai/RMBG-1.4", spec=spec, cache_dir=hub_cache)
    assert source.kind == "checkpoint"
    assert source.path == snapshot
    assert source.weights_path == snapshot / "model.safetensors"
    assert (source.repo_id, source.revision) == ("briaai/RMBG-1.4", COMMIT)
    assert source.spec is spec
    assert download(spec=spec, cache_dir=hub_cache) == snapshot
    assert resolve_model(str(snapshot)).weights_digest == source.weights_digest  # same key


def test_other_repo_from_the_cache_is_not_checksummed(offline, hub_cache, weights_bytes):
    # no config.json: tolerated
    snapshot = make_hub_cache(
        hub_cache, "someone/rmbg-finetune", {"model.safetensors": weights_bytes}
    )
    source = resolve_model("someone/rmbg-finetune", cache_dir=hub_cache)
    assert (source.kind, source.path, source.repo_id) == (
        "checkpoint",
        snapshot,
        "someone/rmbg-finetune",
    )
    assert source.weights_digest == sha256(weights_bytes)
    with pytest.raises(ChecksumMismatchError):  # unless asked to
        resolve_model("someone/rmbg-finetune", cache_dir=hub_cache, verify=True)


def test_offline_without_a_cached_copy_says_what_to_do(offline, hub_cache):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("briaai/RMBG-1.4", cache_dir=hub_cache)
    message = str(info.value)
    assert "rmbg download" in message
    assert "hf download briaai/RMBG-1.4" in message
    assert "local checkpoint folder" in message
    assert isinstance(info.value.__cause__, hf_errors.LocalEntryNotFoundError)
    with pytest.raises(ModelNotFoundError, match="meant as a local path"):
        resolve_model("models/rmbg", cache_dir=hub_cache)  # a typo'd relative path?
    with pytest.raises(ModelNotFoundError, match="rmbg download"):
        download(cache_dir=hub_cache)


class FakeHub:
    """Stands in for hf_hub_download: serves a fake cache, records requests, or raises."""

    def __init__(self, snapshot: Path | None = None, error: BaseException | None = None):
        self.snapshot = snapshot
        self.error = error
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, repo_id: str, filename: str, **kwargs: Any) -> str:
        self.calls.append((repo_id, filename, kwargs))
        if self.error is not None:
            raise self.error
        assert self.snapshot is not None
        path = self.snapshot / filename
        if not path.exists():
            raise hf_errors.RemoteEntryNotFoundError(
                f"404: {filename}", response=fake_response(404)
            )
        return str(path)


def fake_response(status: int) -> Any:
    """What HfHubHTTPError reads from a response: enough to build the real exceptions."""
    return SimpleNamespace(status_code=status, headers={}, request=None)


def test_only_safetensors_and_config_are_requested(monkeypatch, tmp_path, weights_bytes):
    snapshot = make_hub_cache(tmp_path, "someone/rmbg", {"model.safetensors": weights_bytes})
    (snapshot / "pytorch_model.bin").write_bytes(b"pickle")  # present upstream: never fetched
    hub = FakeHub(snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    source = resolve_model("someone/rmbg", revision="v1", token="hf_x", cache_dir=tmp_path)
    assert source.weights_path == snapshot / "model.safetensors"
    requested = [filename for _, filename, _ in hub.calls]
    assert requested == ["model.safetensors", "config.json"]  # config.json missing: tolerated
    assert not any(name.endswith((".bin", ".pt", ".pth", ".ckpt")) for name in requested)
    for _, _, kwargs in hub.calls:
        assert kwargs == {"revision": "v1", "token": "hf_x", "cache_dir": str(tmp_path)}
    hub.calls.clear()
    resolve_model("someone/rmbg")  # defaults: huggingface_hub decides (HF_HOME, HF_TOKEN...)
    assert hub.calls[0][2] == {"revision": None, "token": None, "cache_dir": None}


def _gated() -> BaseException:
    return hf_errors.GatedRepoError(
        "Access to model briaai/RMBG-1.4 is restricted", response=fake_response(403)
    )


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_gated(), id="GatedRepoError"),
        pytest.param(
            hf_errors.HfHubHTTPError("401 Unauthorized", response=fake_response(401)), id="401"
        ),
        pytest.param(
            hf_errors.HfHubHTTPError("403 Forbidden", response=fake_response(403)), id="403"
        ),
        pytest.param(
            hf_errors.RepositoryNotFoundError(
                "401 Repository Not Found", response=fake_response(401)
            ),
            id="401-official-repo-not-found",
        ),
    ],
)
def test_refusals_are_gated_model_errors_with_instructions(monkeypatch, error) -> None:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(error=error))
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(GatedModelError) as info:
        resolve_model("briaai/RMBG-1.4")
    message = str(info.value)
    assert "https://huggingface.co/briaai/RMBG-1.4" in message
    assert "bria-rmbg-1.4" in message and "non-commercial" in message
    assert "HF_TOKEN" in message and "token=" in message
    assert info.value.__cause__ is error
    assert isinstance(info.value, PermissionError)


def test_gated_download_is_a_gated_model_error(monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(error=_gated()))
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(GatedModelError, match="HF_TOKEN"):
        download()


def test_unknown_repo_is_model_not_found(monkeypatch) -> None:
    error = hf_errors.RepositoryNotFoundError(
        "404 Repository Not Found", response=fake_response(404)
    )
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(error=error))
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(ModelNotFoundError, match="No repository 'nobody/nothing'"):
        resolve_model("nobody/nothing")


def test_unknown_revision_and_server_errors(monkeypatch) -> None:
    error = hf_errors.RevisionNotFoundError("404 Revision Not Found", response=fake_response(404))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(error=error))
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(ModelNotFoundError, match="no revision 'v9'"):
        resolve_model("someone/rmbg", revision="v9")
    error = hf_errors.HfHubHTTPError("500 Server Error", response=fake_response(500))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", FakeHub(error=error))
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(ModelNotFoundError, match="status 500"):
        resolve_model("someone/rmbg")


def test_repo_without_safetensors_is_model_not_found(monkeypatch, tmp_path) -> None:
    snapshot = make_hub_cache(tmp_path, "someone/pickles", {"pytorch_model.bin": b"pickle"})
    hub = FakeHub(snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)  # a fake online Hub
    with pytest.raises(ModelNotFoundError, match="never loads pickle"):
        resolve_model("someone/pickles")
    assert [f for _, f, _ in hub.calls] == ["model.safetensors"]


@pytest.fixture
def unreachable_hub(monkeypatch):
    """HF_ENDPOINT on a closed local port: what a machine without network looks like, at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: connections are refused
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_unreachable_hub_is_detected_and_never_retried(unreachable_hub, hub_cache, monkeypatch):
    """Without network, rmbg asks the cache only (huggingface_hub would retry for ~25 s)."""
    import huggingface_hub as hub

    assert not weights.hub_reachable()
    calls: list[dict] = []
    real = hub.hf_hub_download

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(hub, "hf_hub_download", recording)
    with pytest.raises(ModelNotFoundError, match="Hub is unreachable"):
        resolve_model("briaai/RMBG-1.4", cache_dir=hub_cache)
    assert calls and all(c.get("local_files_only") for c in calls)


def test_unreachable_hub_still_uses_the_cached_copy(unreachable_hub, hub_cache, weights_bytes):
    snapshot = make_hub_cache(
        hub_cache, "someone/rmbg-finetune", {"model.safetensors": weights_bytes}
    )
    source = resolve_model("someone/rmbg-finetune", cache_dir=hub_cache)
    assert source.path == snapshot


def test_a_listening_hub_counts_as_reachable(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
        assert weights.hub_reachable()
