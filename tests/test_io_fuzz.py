"""Fuzzing the decoder: every malformed file is an InvalidImageError, never another exception.

A seeded byte mutator (bit flips, byte overwrites, truncation, insertions, duplicated and deleted
runs; PNG chunk CRCs re-computed half of the time so that the mutation reaches the decoder instead
of the checksum) runs over small valid files of every format Pillow writes here, made in the test.
The input count is fixed, so the test is deterministic and bounded: ``FUZZ_INPUTS`` mutants take
about 10 s on the project's 2-core CI machine. Raise ``RMBG_FUZZ_INPUTS`` for a longer local run.
"""

from __future__ import annotations

import io
import os
import random
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, features

from rmbg import io as rio
from rmbg.errors import InvalidImageError

FUZZ_INPUTS = int(os.environ.get("RMBG_FUZZ_INPUTS", "6000"))
SEED = 20240610


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    rgb[3:9, 2:8] = (200, 40, 40)  # some structure, so that codecs have runs to encode
    rgba = np.dstack([rgb, rng.integers(0, 256, (12, 10), dtype=np.uint8)])
    photo = Image.fromarray(rgb)
    frames = [Image.fromarray(np.roll(rgb, k, axis=1)) for k in range(3)]
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    save("png-rgb", photo, "PNG")
    save("png-rgba", Image.fromarray(rgba), "PNG")
    save("png-palette", photo.convert("P"), "PNG", transparency=0)
    save("png-16", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG")
    save("apng", frames[0], "PNG", save_all=True, append_images=frames[1:])
    save("jpeg", photo, "JPEG", quality=80)
    save("jpeg-progressive", photo, "JPEG", progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpeg-exif", photo, "JPEG", exif=exif)
    save("gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)
    save("webp-lossless", Image.fromarray(rgba), "WEBP", lossless=True)
    save("webp-lossy", photo, "WEBP", quality=70)
    save("webp-animated", frames[0], "WEBP", save_all=True, append_images=frames[1:])
    save("tiff", photo, "TIFF")
    save("tiff-lzw", photo, "TIFF", compression="tiff_lzw")
    save("tiff-multipage", frames[0], "TIFF", save_all=True, append_images=frames[1:])
    save("tiff-float", Image.fromarray(rgb[..., 0].astype(np.float32) / 255), "TIFF")
    save("bmp", photo, "BMP")
    # the formats behind the escapes the issue found (DDS, BLP, SPIDER) and a few more
    save("dds", Image.fromarray(rgba), "DDS")
    save("blp", photo.convert("P"), "BLP")
    save("spider", Image.fromarray(rgb[..., 0].astype(np.float32) / 255), "SPIDER")
    save(
        "ico", photo.resize((16, 16)), "ICO", sizes=[(16, 16)]
    )  # Pillow 12 writes no smaller icons
    save("tga", photo, "TGA")
    save("pcx", photo, "PCX")
    save("ppm", photo, "PPM")
    save("qoi", photo, "QOI")
    if features.check("avif"):
        save("avif", photo, "AVIF", quality=60)
    return out


def _fix_png_crcs(data: bytearray) -> None:
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            return
        data[end : end + 4] = struct.pack(">I", zlib.crc32(data[pos + 4 : end]))
        pos = end + 4


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        i = rng.randrange(len(out))
        op = rng.randrange(7)
        if op == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[i] = rng.choice((0, 1, 0x7F, 0x80, 0xFE, 0xFF, rng.randrange(256)))
        elif op == 2:  # a 16/32-bit field set to an extreme
            width = rng.choice((2, 4))
            out[i : i + width] = rng.choice((b"\xff", b"\x00", b"\x7f")) * width
        elif op == 3:
            del out[rng.randrange(len(out) // 2, len(out)) :]
        elif op == 4:
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 5:
            j = min(len(out), i + rng.randint(1, 32))
            out[i:i] = out[i:j]
        else:
            del out[i : i + rng.randint(1, 32)]
    if out[:8] == b"\x89PNG\r\n\x1a\n" and rng.random() < 0.5:
        _fix_png_crcs(out)
    return bytes(out)


def test_mutated_files_only_ever_raise_invalid_image_error():
    seeds = _seeds()
    names = sorted(seeds)
    for name in names:  # the unmutated files are all readable
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rio.load_image(seeds[name])
    rng = random.Random(SEED)
    escapes: dict[str, list[str]] = {}
    outcomes = {"decoded": 0, "refused": 0}
    start = time.perf_counter()
    for n in range(FUZZ_INPUTS):
        name = names[n % len(names)]
        data = _mutate(seeds[name], rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # multi-frame notes, Pillow's EXIF complaints
                loaded = rio.load_image(data, max_pixels=4_000_000)
        except InvalidImageError:
            outcomes["refused"] += 1
            continue
        except Exception as exc:  # an escape: collect them all, then fail with a summary
            key = f"{type(exc).__name__} ({name})"
            escapes.setdefault(key, []).append(f"input {n}: {exc!r}"[:200])
            continue
        outcomes["decoded"] += 1
        assert loaded.rgb.dtype == np.uint8 and loaded.rgb.ndim == 3
    elapsed = time.perf_counter() - start
    print(
        f"\nfuzz: {FUZZ_INPUTS} inputs from {len(names)} seed files in {elapsed:.1f} s: "
        f"{outcomes['decoded']} decoded, {outcomes['refused']} refused as InvalidImageError"
    )
    assert not escapes, {k: (len(v), v[:2]) for k, v in escapes.items()}
    assert outcomes["refused"] > FUZZ_INPUTS // 10  # the mutator does damage files


ERRORS = (KeyError, RuntimeError, AttributeError, NotImplementedError, ZeroDivisionError, OSError)


@pytest.mark.filterwarnings("ignore::rmbg.errors.RmbgWarning")  # "3 frames, using the first"
@pytest.mark.parametrize(
    ("stage", "error"),
    [
        (stage, error)
        for stage in ("open", "is_animated", "seek", "load")
        for error in ERRORS
        # Pillow turns a KeyError in _open into "not an image" itself; an AttributeError from
        # is_animated reads as "no such attribute": a single-frame image, decoded as such
        if (stage, error) not in (("open", KeyError), ("is_animated", AttributeError))
    ],
)
def test_any_exception_a_plugin_raises_is_an_invalid_image(monkeypatch, stage, error):
    """Each place a plugin runs (the header, the multi-frame count, seek(frame), the pixel load)
    sits inside the guard, whatever the exception type."""
    from PIL import GifImagePlugin, ImageFile

    def boom(*args, **kwargs):
        raise error("plugin bug")

    target = {
        "open": (GifImagePlugin.GifImageFile, "_open"),
        "is_animated": (GifImagePlugin.GifImageFile, "is_animated"),
        "seek": (GifImagePlugin.GifImageFile, "seek"),
        "load": (ImageFile.ImageFile, "load"),
    }[stage]
    monkeypatch.setattr(*target, property(boom) if stage == "is_animated" else boom)
    with pytest.raises(InvalidImageError, match="plugin bug") as info:
        rio.load_image(_seeds()["gif"], frame=1 if stage == "seek" else None)
    assert isinstance(info.value.__cause__, error)
