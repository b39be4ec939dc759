"""Every image flag of the CLI has the effect of the library option it names.

Run in-process (``rmbg.cli.main``) on the fake backend, which the CLI hides from users and these
tests offer by emptying ``rmbg.cli.flags.HIDDEN_BACKENDS``. Each case writes a file through the
CLI and compares its pixels with the library's result for the same typed options, and checks that
the option changes the result on this image, so a flag wired to the wrong option (or to none)
fails. Flags that only reach the remover (--cache-dir, --revision, --precision, --max-pixels) are
checked at that seam, and where the fake backend can show it, by their effect.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import rmbg.io
import rmbg.remover
from rmbg.cli import flags, main
from rmbg.errors import ModelNotFoundError
from rmbg.io import encode_image
from rmbg.options import CutoutOptions, MaskOptions
from rmbg.testing import fake_remover

from .test_cli import make_image


@pytest.fixture(autouse=True)
def _offer_fake_backend(monkeypatch):
    monkeypatch.setattr(flags, "HIDDEN_BACKENDS", frozenset())


@pytest.fixture
def model(tmp_path: Path) -> list[str]:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    return ["--model", str(path), "--backend", "fake"]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A photo whose EXIF orientation turns it (so --no-exif-transpose shows), with a subject
    off-centre (so trimming crops)."""
    rng = np.random.default_rng(7)
    h, w = 60, 90
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = rng.integers(0, 20, (h, w, 3), dtype=np.uint8)  # dark: below the trim level
    rgb[((yy - 25) ** 2 + (xx - 35) ** 2) < 15**2] = (235, 215, 190)
    rgb[((yy - 40) ** 2 + (xx - 65) ** 2) < 6**2] = (150, 140, 120)  # a dimmer second subject
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path, exif=exif)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def library(kind: str, photo: Path, options: dict[str, Any]) -> np.ndarray:
    remover = fake_remover()
    if kind == "mask":
        return remover.mask(photo, MaskOptions(**options), output="array")
    return remover.cutout(photo, CutoutOptions(**options), output="array")


@pytest.mark.parametrize(
    ("kind", "argv", "options"),
    [
        ("mask", ["--feather", "2.5"], {"feather": 2.5}),
        ("mask", ["--grow", "3"], {"grow": 3}),
        ("mask", ["--grow", "-2"], {"grow": -2}),
        ("mask", ["--normalize", "none"], {"normalize": "none"}),
        ("mask", ["--threshold", "0.6"], {"threshold": 0.6}),
        ("mask", ["--invert"], {"invert": True}),
        ("mask", ["--no-exif-transpose"], {"exif_transpose": False}),
        ("cutout", ["--no-exif-transpose"], {"exif_transpose": False}),
        ("cutout", ["--trim"], {"trim": True}),
        ("cutout", ["--trim", "--margin", "4"], {"trim": True, "margin": 4}),
        ("cutout", ["--trim", "--trim-threshold", "250"], {"trim": True, "trim_threshold": 250}),
        ("cutout", ["--background", "0,128,255"], {"background": (0, 128, 255)}),
        ("cutout", ["--background", "#ff000080"], {"background": "#ff000080"}),
        ("cutout", ["--refine"], {"refine_foreground": True}),
        ("cutout", ["--feather", "1.5", "--grow", "-1"], {"feather": 1.5, "grow": -1}),
    ],
)
def test_flag_has_the_effect_of_its_option(kind, argv, options, photo, model, tmp_path):
    out = tmp_path / "out.png"
    assert main([kind, str(photo), "-o", str(out), *argv, *model]) == 0
    expected = library(kind, photo, options)
    assert not np.array_equal(expected, library(kind, photo, {})), "no effect on this photo"
    np.testing.assert_array_equal(pixels(out), expected)


def test_trim_threshold_and_margin_crop_where_the_library_does(photo, model, tmp_path):
    """The crop sizes themselves: a higher --trim-threshold drops the dimmer subject, --margin
    adds pixels on each side (clipped to the image)."""
    sizes = {}
    for name, argv in {
        "default": ["--trim"],
        "strict": ["--trim", "--trim-threshold", "250"],
        "margin": ["--trim", "--margin", "3"],
    }.items():
        out = tmp_path / f"{name}.png"
        assert main(["cutout", str(photo), "-o", str(out), *argv, *model]) == 0
        sizes[name] = pixels(out).shape[:2]
    assert sizes["strict"][0] * sizes["strict"][1] < sizes["default"][0] * sizes["default"][1]
    assert sizes["margin"][0] > sizes["default"][0] and sizes["margin"][1] > sizes["default"][1]


def test_background_image_is_decoded_once_for_a_folder(photo, model, tmp_path, monkeypatch):
    """--background FILE becomes a Path in the options, decoded once per run, not once per
    image (plus once to validate it, as before)."""
    folder = tmp_path / "in"
    for i in range(3):
        make_image(folder / f"{i}.png", seed=i)
    bg = make_image(tmp_path / "bg.jpg", (80, 80), seed=9)
    reads: list[Any] = []
    original = rmbg.io.load_image

    def counting(image: Any, **kwargs: Any) -> Any:
        reads.append(image)
        return original(image, **kwargs)

    monkeypatch.setattr(rmbg.io, "load_image", counting)
    argv = ["cutout", str(folder), "--out-dir", str(tmp_path / "o"), "--background", str(bg)]
    assert main([*argv, *model]) == 0
    assert [r for r in reads if Path(str(r)) == bg] == [bg]
    assert len(list((tmp_path / "o").iterdir())) == 3
    got = pixels(tmp_path / "o" / "0.png")
    expected = fake_remover().cutout(folder / "0.png", background=bg, output="array")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("level", ["0", "9"])
def test_compress_level_is_the_encoders_level(level, photo, model, tmp_path):
    out = tmp_path / "out.png"
    assert main(["cutout", str(photo), "-o", str(out), "--compress-level", level, *model]) == 0
    result = fake_remover().cutout(photo)
    assert out.read_bytes() == encode_image(result, "png", compress_level=int(level))
    other = encode_image(result, "png", compress_level=9 - int(level))
    assert out.read_bytes() != other


def test_quality_reaches_the_jpeg_encoder(photo, model, tmp_path):
    sizes = []
    for q in ("20", "95"):
        out = tmp_path / f"q{q}.jpg"
        assert main(["mask", str(photo), "-o", str(out), "--quality", q, *model]) == 0
        sizes.append(out.stat().st_size)
        assert out.read_bytes() == encode_image(fake_remover().mask(photo), "jpeg", quality=int(q))
    assert sizes[0] < sizes[1]


class _Recorder:
    """Wraps BackgroundRemover to record what the CLI builds it with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        self.removers: list[Any] = []
        original = rmbg.remover.BackgroundRemover
        recorder = self

        class Recording(original):  # type: ignore[misc, valid-type]
            def __init__(self, model: Any = None, **kwargs: Any) -> None:
                recorder.calls.append({"model": model, **kwargs})
                super().__init__(model, **kwargs)
                recorder.removers.append(self)

        monkeypatch.setattr(rmbg.remover, "BackgroundRemover", Recording)


def test_model_flags_reach_the_remover(photo, model, tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    cache = tmp_path / "my-cache"
    argv = [
        "--cache-dir",
        str(cache),
        "--revision",
        "v1.0",
        "--precision",
        "f32",
        "--device",
        "fake",
    ]
    argv += ["--backend-option", "delay=0", "--max-pixels", "12345"]
    assert main(["mask", str(photo), "-o", str(tmp_path / "m.png"), *argv, *model]) == 0
    (call,) = rec.calls
    assert call["cache_dir"] == cache and call["revision"] == "v1.0"
    assert call["precision"] == "f32" and call["device"] == "fake"
    assert call["backend_options"] == {"delay": 0} and call["max_pixels"] == 12345
    assert call["model"] == model[1] and call["backend"] == "fake"
    (remover,) = rec.removers
    assert remover.max_pixels == 12345 and remover.info.device == "fake"


def test_max_pixels_limits_and_zero_lifts_the_limit(photo, model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.png"
    assert main(["mask", str(photo), "-o", str(out), "--max-pixels", "100", *model]) == 1
    assert "photo.png" in capsys.readouterr().err and not out.exists()
    rec = _Recorder(monkeypatch)
    assert main(["mask", str(photo), "-o", str(out), "--max-pixels", "0", *model]) == 0
    assert rec.calls[0]["max_pixels"] is None and rec.removers[0].max_pixels is None
    assert main(["mask", str(photo), "-o", str(tmp_path / "d.png"), *model]) == 0
    assert "max_pixels" not in rec.calls[1]  # the library's default limit


def test_precision_reaches_the_backend(photo, model, tmp_path, capsys):
    """The fake backend computes in f32 only: --precision bf16 is refused by it (exit 2)."""
    assert (
        main(["mask", str(photo), "-o", str(tmp_path / "m.png"), "--precision", "bf16", *model])
        == 2
    )
    assert "precision='bf16' is not supported by the 'fake' backend" in capsys.readouterr().err


def test_revision_reaches_the_hub_lookup(tmp_path, monkeypatch, capsys):
    """Offline, a Hub model at a --revision that is not cached: the error names the revision's
    effect (nothing cached for it), and the model is never loaded."""
    import rmbg.weights

    seen: list[Any] = []

    def resolve(model: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("revision"))
        raise ModelNotFoundError("not cached (test)")

    monkeypatch.setattr(rmbg.weights, "resolve_model", resolve)
    src = make_image(tmp_path / "p.png")
    assert main(["mask", str(src), "--model", "org/repo", "--revision", "abc123"]) == 1
    assert seen == ["abc123"]
    assert "not cached (test)" in capsys.readouterr().err


def test_quiet_verbose_and_the_summary(tmp_path, model, capsys):
    good = make_image(tmp_path / "p.png")
    argv = ["mask", str(good), str(tmp_path / "missing.jpg"), "--out-dir", str(tmp_path / "o")]
    assert main([*argv, *model]) == 1
    text = capsys.readouterr().err
    assert "missing.jpg: no such file or folder" in text and "1 processed" in text
    assert "model ready" not in text
    assert main([*argv, "--overwrite", "-q", *model]) == 1  # errors only: no summary line
    text = capsys.readouterr().err
    assert "missing.jpg: no such file or folder" in text and "processed" not in text
    assert main([*argv, "--overwrite", "-v", *model]) == 1  # info: the model and each file
    text = capsys.readouterr().err
    assert "model ready" in text and "p.png ->" in text and "fake engine loaded" not in text
    assert main([*argv, "--overwrite", "-vv", *model]) == 1  # debug
    assert "fake engine loaded" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "bar"), [([], True), (["--no-progress"], False), (["-q"], False)])
def test_progress_bar_on_a_terminal_unless_turned_off(argv, bar, tmp_path, model, monkeypatch):
    folder = tmp_path / "in"
    for i in range(3):
        make_image(folder / f"{i}.png", seed=i)
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["mask", str(folder), "--out-dir", str(tmp_path / "o"), *argv, *model]) == 0
    assert ("3/3" in terminal.getvalue()) is bar, terminal.getvalue()
