"""Every example runs, exits 0 and writes what it says, outside the repository (``nox -s examples``).

Each script runs as a user would run it (a subprocess, its default photo, ``--out`` a temporary
folder) on the checkpoint named by ``RMBG_TEST_CHECKPOINT`` (the offline stand-in in CI).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import rmbg
from rmbg.photos import PHOTO_DIR

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKPOINT = os.environ.get("RMBG_TEST_CHECKPOINT") or os.environ.get("RMBG_MODEL")
TIMEOUT = 1800  # seconds; a first INT8 quantization on a loaded 2-core machine takes minutes


def run(script: str, *args: str | Path, cwd: Path, check: bool = True) -> str:
    """Run ``examples/<script>`` with ``args``; return its stdout (its exit code must be 0)."""
    if not CHECKPOINT:
        pytest.fail("set RMBG_TEST_CHECKPOINT to a checkpoint folder (nox -s examples does)")
    env = dict(os.environ, RMBG_MODEL=CHECKPOINT, GRADIO_ANALYTICS_ENABLED="False")
    done = subprocess.run(
        [sys.executable, str(HERE / script), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr[-4000:])
    if check:
        assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout


def git_status() -> str | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.fixture(autouse=True)
def _leaves_the_repository_alone() -> Iterator[None]:
    before = git_status()
    yield
    assert git_status() == before, "an example wrote into the repository"


def opened(path: Path) -> Image.Image:
    assert path.is_file(), f"{path.name} was not written"
    with Image.open(path) as im:
        im.load()
        return im


# -- quickstart -------------------------------------------------------------------------------------
def test_quickstart_cuts_out_a_photo(tmp_path: Path) -> None:
    out = tmp_path / "cutout.png"
    stdout = run("quickstart.py", PHOTO_DIR / "astronaut.jpg", out, "CPU", cwd=tmp_path)
    assert opened(out).mode == "RGBA"
    assert opened(out).size == (512, 512)
    assert "wrote" in stdout


def test_quickstart_missing_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "quickstart.py"), "holiday.jpg", "out.png"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no such image: holiday.jpg"
    assert not (tmp_path / "out.png").exists()


# -- the examples, each on its defaults --------------------------------------------------------------
def test_one_photo(tmp_path: Path) -> None:
    run("one_photo.py", "--out", tmp_path, "--device", "CPU", cwd=tmp_path)
    mask = opened(tmp_path / "astronaut.mask.png")
    assert (mask.mode, mask.size) == ("L", (512, 512))
    assert opened(tmp_path / "astronaut.cutout.png").mode == "RGBA"
    assert opened(tmp_path / "astronaut.cutout-bytes.png").mode == "RGBA"
    card = opened(tmp_path / "astronaut.card.jpg")
    assert card.mode == "RGB"
    assert card.width <= 512 + 2 * 16


def test_folder(tmp_path: Path) -> None:
    stdout = run("folder.py", "--out", tmp_path, cwd=tmp_path)
    names = sorted(p.stem for p in PHOTO_DIR.glob("*.jpg"))
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == names
    for name in names:
        with Image.open(PHOTO_DIR / f"{name}.jpg") as photo:
            size = photo.size
        cut = opened(tmp_path / f"{name}.png")
        assert (cut.mode, cut.size) == ("RGBA", size)
    assert f"{len(names)} cutouts" in stdout
    assert "0 failed" in stdout


def test_folder_reports_a_bad_file_and_goes_on(tmp_path: Path) -> None:
    photos = tmp_path / "in"
    photos.mkdir()
    shutil.copy(PHOTO_DIR / "coffee.jpg", photos / "coffee.jpg")
    (photos / "notes.jpg").write_text("not a picture")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(HERE / "folder.py"), str(photos), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
        env=dict(os.environ, RMBG_MODEL=CHECKPOINT or ""),
    )  # fmt: skip
    assert done.returncode == 1  # something failed, and the rest was done
    assert "skipped notes.jpg" in done.stderr
    assert opened(out / "coffee.png").mode == "RGBA"
    assert not (out / "notes.png").exists()


def test_background(tmp_path: Path) -> None:
    run("background.py", "--out", tmp_path, cwd=tmp_path)
    colour = opened(tmp_path / "astronaut.colour.png")
    assert colour.mode == "RGB"
    assert colour.getpixel((0, 0)) == (0x2F, 0x6F, 0xD6)  # the corner is background
    assert opened(tmp_path / "astronaut.photo.png").mode == "RGB"
    assert opened(tmp_path / "astronaut.tinted.png").mode == "RGBA"
    assert opened(tmp_path / "astronaut.white-trimmed.png").mode == "RGB"


def test_notebook_flow(tmp_path: Path) -> None:
    stdout = run("notebook_flow.py", "--out", tmp_path, cwd=tmp_path)
    diff = re.search(r"masks: max difference (\d+) grey levels", stdout)
    assert diff is not None
    assert int(diff.group(1)) <= 1  # f32 OpenVINO against the PyTorch reference
    assert opened(tmp_path / "mask.png").mode == "L"
    assert opened(tmp_path / "cutout.png").mode == "RGBA"
    assert opened(tmp_path / "figure.png").size[0] > 0
    has_plot = importlib.util.find_spec("rmbg.plot") is not None
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    expected = "rmbg.plot.compare" if has_plot and has_matplotlib else "Pillow side-by-side"
    assert expected in stdout


def test_int8(tmp_path: Path) -> None:
    # at 512x512 to keep CI short (the quality check runs at that size too)
    stdout = run("int8.py", "--out", tmp_path, "--input-size", "512", cwd=tmp_path)
    assert opened(tmp_path / "coffee.int8-cutout.png").mode == "RGBA"
    report = json.loads((tmp_path / "quantization.json").read_text())
    assert report, "the INT8 engine reported no quantization figures"
    iou = re.search(r"int8 vs f32: IoU ([0-9.]+)", stdout)
    assert iou is not None
    assert float(iou.group(1)) >= 0.95


def test_plugin_backend(tmp_path: Path) -> None:
    assert "onnxruntime" in rmbg.available_backends(), (
        "the example plugin is not installed: pip install examples/plugin (nox -s examples does)"
    )
    stdout = run("plugin_backend.py", "--out", tmp_path, cwd=tmp_path)
    assert "registered backends:" in stdout
    assert "onnxruntime on cpu" in stdout
    diff = re.search(r"onnxruntime vs openvino on \S+: max difference (\d+)", stdout)
    assert diff is not None
    assert int(diff.group(1)) <= 2
    assert opened(tmp_path / "rocket.ort.png").mode == "RGB"  # over white


@pytest.mark.skipif(
    importlib.util.find_spec("rmbg.demo") is None or importlib.util.find_spec("gradio") is None,
    reason="rmbg.demo (the demo extra, issue 13) is not in this checkout or gradio is missing",
)
def test_gradio_embed(tmp_path: Path) -> None:
    stdout = run("gradio_embed.py", "--check", cwd=tmp_path)
    assert "served the app with the demo tab" in stdout
