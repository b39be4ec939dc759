"""Issue 10's CLI checks that no test made: ``verify`` at a precision other than f32 (which
precision reaches OpenVINO, and the failing exit), ``export``'s default precision, ``info``'s
listing of converted IRs, and ``--max-pixels 0`` past Pillow's own cap.

All in-process on the fake backend or with the OpenVINO side replaced at its seam: no conversion.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import rmbg.remover
from rmbg import cache
from rmbg.cli import export as export_cmd
from rmbg.cli import flags, main
from rmbg.cli import verify as verify_cmd
from rmbg.testing import FAKE_SOURCE
from rmbg.weights import resolve_model

from .test_cli import make_image

_REMOVER = rmbg.remover.BackgroundRemover


@pytest.fixture(autouse=True)
def _offer_fake_backend(monkeypatch):
    monkeypatch.setattr(flags, "HIDDEN_BACKENDS", frozenset())


# ---------------------------------------------------------------------------------------------
# verify at another precision
# ---------------------------------------------------------------------------------------------
def _fake_sides(monkeypatch: pytest.MonkeyPatch, shift: int) -> list[dict[str, Any]]:
    """Both verify sides on the fake backend; the "openvino" side's masks ``shift`` grey levels
    up. Returns the (backend, device, precision) each side was asked for."""
    asked: list[dict[str, Any]] = []

    class Side(_REMOVER):  # type: ignore[misc, valid-type]
        def __init__(self, model: Any, *, backend: str, device: str, precision: str, **kw: Any):
            asked.append({"backend": backend, "device": device, "precision": precision})
            self.side = backend
            super().__init__(FAKE_SOURCE, backend="fake", **kw)

        def mask(self, image: Any, *args: Any, **kwargs: Any) -> Any:
            mask = super().mask(image, *args, **kwargs)
            if self.side == "openvino":
                return np.clip(mask.astype(np.int16) + shift, 0, 255).astype(np.uint8)
            return mask

    monkeypatch.setattr(rmbg.remover, "BackgroundRemover", Side)
    monkeypatch.setattr(verify_cmd, "resolve_source", lambda args: FAKE_SOURCE)
    return asked


@pytest.mark.parametrize("precision", ["f16", "bf16", "int8"])
def test_verify_at_another_precision_asks_openvino_for_it_and_fails_beyond_its_bar(
    precision, tmp_path, monkeypatch, capsys
):
    """The OpenVINO side runs at --precision (torch stays the f32 reference); the bar is then a
    mean difference <= 1 grey level: masks 3 levels apart fail it, exit 1."""
    src = make_image(tmp_path / "a.png")
    asked = _fake_sides(monkeypatch, shift=3)
    argv = ["verify", str(src), "--json", "--precision", precision, "--device", "GPU"]
    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert asked == [
        {"backend": "torch", "device": "cpu", "precision": "f32"},
        {"backend": "openvino", "device": "GPU", "precision": precision},
    ]
    assert report["criteria"] == "mean difference <= 1 grey level and IoU >= 0.99"
    (row,) = report["images"]
    assert not row["ok"] and not report["ok"] and row["mean_diff"] > 1
    assert main(["verify", str(src), "--precision", precision]) == 1
    assert "parity: FAILED" in capsys.readouterr().out


def test_verify_defaults_to_f32_on_cpu(tmp_path, monkeypatch, capsys):
    src = make_image(tmp_path / "a.png")
    asked = _fake_sides(monkeypatch, shift=0)
    assert main(["verify", str(src), "--json"]) == 0
    assert asked[1] == {"backend": "openvino", "device": "CPU", "precision": "f32"}
    assert json.loads(capsys.readouterr().out)["criteria"].startswith("max difference <= 1")


# ---------------------------------------------------------------------------------------------
# export's default precision
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "precision"), [([], "f16"), (["--precision", "f32"], "f32")])
def test_export_default_is_an_f16_ir(argv, precision, tmp_path, monkeypatch, capsys):
    """Without --precision, export converts at f16 and saves with compress_to_fp16 (half-size
    weights, as documented); --precision f32 keeps full precision."""
    import openvino as ov

    import rmbg.backends.openvino as ov_backend

    calls: dict[str, Any] = {}

    class Backend:
        def __init__(self, source: Any, *, precision: str, cache_dir: Any) -> None:
            calls["backend_precision"] = precision

        def model_path(self) -> None:
            pass

        def read_model(self) -> str:
            return "the network"

    def save_model(model: Any, path: str, *, compress_to_fp16: bool) -> None:
        calls.update(model=model, compress_to_fp16=compress_to_fp16)
        Path(path).write_text("<net/>")
        Path(path).with_suffix(".bin").write_bytes(b"w")

    monkeypatch.setattr(ov_backend, "OpenVINOBackend", Backend)
    monkeypatch.setattr(ov, "save_model", save_model)
    monkeypatch.setattr(export_cmd, "resolve_source", lambda args: FAKE_SOURCE)
    assert main(["export", str(tmp_path / "ir"), *argv]) == 0
    assert calls == {
        "backend_precision": precision,
        "model": "the network",
        "compress_to_fp16": precision == "f16",
    }
    meta = json.loads((tmp_path / "ir" / "rmbg-1.4.json").read_text())
    assert meta["ir_precision"] == precision
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "ir" / f"rmbg-1.4{ext}") for ext in (".xml", ".bin", ".json")
    ]


# ---------------------------------------------------------------------------------------------
# info's IR listing
# ---------------------------------------------------------------------------------------------
def test_info_lists_the_irs_converted_from_this_model_only(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"some weights")
    digest = resolve_model(str(model)).weights_digest
    root = tmp_path / "cache"

    def build(folder: Path) -> None:
        (folder / "model.xml").write_text("<net/>")
        (folder / "model.bin").write_bytes(b"w")

    irs = {}
    for weights, precision in ((digest, "f16"), (digest, "int8"), ("0" * 64, "f32")):
        parts = {"weights": weights, "ir_precision": precision, "openvino": "2026.4.1"}
        irs[weights, precision] = root / "ir" / cache.cache_key(parts)
        cache.write_entry(irs[weights, precision], build, metadata={"key": parts})
    argv = ["info", "--model", str(model), "--cache-dir", str(root)]
    assert main([*argv, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["model"]["converted_irs"]
    assert sorted((ir["path"], ir["ir_precision"]) for ir in listed) == sorted(
        (str(irs[digest, p] / "model.xml"), p) for p in ("f16", "int8")
    )  # not the IR of other weights
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"converted IR: {irs[digest, 'int8'] / 'model.xml'} (int8, OpenVINO 2026.4.1)" in text
    assert str(irs["0" * 64, "f32"]) not in text


def test_info_says_when_nothing_is_converted_yet(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    assert main(["info", "--model", str(model), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "converted IR: none yet" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# --max-pixels and Pillow's own cap
# ---------------------------------------------------------------------------------------------
def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds no pixels: Pillow's size checks run
    on opening it, without the memory a real image that size would take."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_max_pixels_zero_lifts_pillows_cap_too(tmp_path, capsys):
    """200 MP is over twice Pillow's MAX_IMAGE_PIXELS (179 MP), where Pillow refuses whatever
    rmbg's limit. By default that refusal names --max-pixels; with --max-pixels 0 (documented as
    no limit) or a limit above it, the file gets past every size check (and fails here only
    because it holds no pixels). Pillow's global is restored after the run."""
    huge = _png_header(tmp_path / "huge.png", 20_000, 10_000)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    base = ["mask", str(huge), "--json", "-o", str(tmp_path / "m.png")]
    base += ["--model", str(model), "--backend", "fake"]
    before = Image.MAX_IMAGE_PIXELS

    assert main(base) == 1
    (failure,) = json.loads(capsys.readouterr().out)["failed"]
    assert "decompression-bomb limit" in failure["error"]
    assert failure["error"].endswith("On the command line: --max-pixels N (0: no limit).")

    for limit in ("0", "300000000"):
        assert main([*base, "--max-pixels", limit]) == 1
        (failure,) = json.loads(capsys.readouterr().out)["failed"]
        assert "limit" not in failure["error"] and "truncated or corrupt" in failure["error"]
        assert before == Image.MAX_IMAGE_PIXELS

    assert main([*base, "--max-pixels", "150000000"]) == 1  # rmbg's own limit, named
    (failure,) = json.loads(capsys.readouterr().out)["failed"]
    assert "200,000,000 pixels, more than the limit of 150,000,000" in failure["error"]
    assert "--max-pixels N" in failure["error"]
