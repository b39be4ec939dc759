"""rmbg.io: every accepted input type and mode, exact conversions, bad inputs, output mirroring."""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageCms, ImageFile, ImageOps

from rmbg import io as rio
from rmbg.errors import ImageTooLargeError, InvalidImageError, RmbgWarning, UnsupportedOptionError

RNG = np.random.default_rng(1234)


# -- helpers ---------------------------------------------------------------------------------------
def encode(im: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(arr: np.ndarray, color_type: int, bit_depth: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit colour PNGs)."""
    h, w = arr.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + arr[y].astype(dtype).tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with one tiny IDAT: nothing to decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def flatten_ref(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Reference flattening onto white, with Python integers: round(c*a/255 + 255*(1-a/255))."""
    c = colors.astype(np.int64)
    a = alpha.astype(np.int64)[..., None]
    num = c * a + 255 * (255 - a)
    return ((2 * num + 255) // 510).astype(np.uint8)  # round half up; no ties exist anyway


def rgb_photo(h: int = 12, w: int = 17) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- input types -----------------------------------------------------------------------------------
@pytest.fixture
def photo_png(tmp_path: Path) -> tuple[np.ndarray, Path]:
    arr = rgb_photo()
    path = tmp_path / "photo.png"
    Image.fromarray(arr).save(path)
    return arr, path


def test_every_input_type_gives_the_same_pixels(photo_png):
    arr, path = photo_png
    data = path.read_bytes()
    with open(path, "rb") as fh:
        from_file = rio.load_image(fh)
        assert not fh.closed  # a caller's file is never closed
    inputs = {
        "path": [str(path), path],
        "bytes": [data, bytearray(data), memoryview(data)],
        "file": [io.BytesIO(data)],
        "pil": [Image.open(path), Image.fromarray(arr)],
        "ndarray": [arr],
    }
    assert from_file.kind == "file"
    np.testing.assert_array_equal(from_file.rgb, arr)
    for kind, values in inputs.items():
        for value in values:
            loaded = rio.load_image(value)
            assert loaded.kind == kind
            assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == arr.shape
            assert loaded.rgb.flags.c_contiguous
            assert loaded.alpha is None
            np.testing.assert_array_equal(loaded.rgb, arr)
            assert loaded.size == (arr.shape[1], arr.shape[0])


def test_memoryview_of_a_non_contiguous_buffer(photo_png):
    _, path = photo_png
    data = np.frombuffer(path.read_bytes() * 2, np.uint8).reshape(2, -1)
    view = memoryview(data[0])
    assert rio.load_image(view).rgb.shape[:2] == (12, 17)


def test_format_and_mode_are_recorded(photo_png):
    _, path = photo_png
    loaded = rio.load_image(path)
    assert (loaded.format, loaded.mode, loaded.frame, loaded.orientation) == ("PNG", "RGB", 0, None)
    arr = rio.load_image(np.zeros((3, 4, 4), np.uint16))
    assert (arr.format, arr.mode, arr.source_shape, arr.source_dtype) == (
        None,
        None,
        (3, 4, 4),
        "uint16",
    )


# -- PIL modes -------------------------------------------------------------------------------------
def test_mode_1_is_0_or_255():
    bits = RNG.integers(0, 2, (5, 7)).astype(bool)
    loaded = rio.load_image(Image.fromarray(bits))
    assert Image.fromarray(bits).mode == "1"
    np.testing.assert_array_equal(loaded.rgb, np.repeat(bits[..., None] * np.uint8(255), 3, axis=2))


def test_mode_L_is_replicated():
    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    loaded = rio.load_image(Image.fromarray(grey))
    np.testing.assert_array_equal(loaded.rgb, np.stack([grey] * 3, axis=2))
    assert loaded.alpha is None


def test_mode_LA_keeps_alpha_and_flattens_onto_white():
    la = RNG.integers(0, 256, (6, 9, 2), dtype=np.uint8)
    la[0, 0, 1] = 0
    la[0, 1, 1] = 255
    im = Image.fromarray(la)
    assert im.mode == "LA"
    loaded = rio.load_image(im)
    grey = np.repeat(la[..., :1], 3, axis=2)
    np.testing.assert_array_equal(loaded.alpha, la[..., 1])
    np.testing.assert_array_equal(loaded.colors, grey)
    np.testing.assert_array_equal(loaded.rgb, flatten_ref(grey, la[..., 1]))
    assert loaded.rgb[0, 0].tolist() == [255, 255, 255]  # fully transparent -> white


def test_mode_RGBA_every_alpha_level_flattens_exactly():
    colors = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    alpha = np.arange(256, dtype=np.uint8).reshape(16, 16)
    loaded = rio.load_image(Image.fromarray(np.dstack([colors, alpha])))
    np.testing.assert_array_equal(loaded.alpha, alpha)
    np.testing.assert_array_equal(loaded.colors, colors)
    np.testing.assert_array_equal(loaded.rgb, flatten_ref(colors, alpha))


def test_fully_opaque_alpha_is_dropped():
    rgba = np.dstack([rgb_photo(), np.full((12, 17), 255, np.uint8)])
    loaded = rio.load_image(rgba)
    assert loaded.alpha is None and loaded.straight_rgb is None
    np.testing.assert_array_equal(loaded.rgb, rgba[..., :3])


def test_palette_without_transparency():
    im = Image.fromarray(rgb_photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    loaded = rio.load_image(im)
    np.testing.assert_array_equal(loaded.rgb, np.asarray(im.convert("RGB")))
    assert loaded.alpha is None


def test_palette_with_transparent_index():
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    im = Image.frombytes("P", (3, 2), idx.tobytes())
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    im.info["transparency"] = 1
    loaded = rio.load_image(im)
    np.testing.assert_array_equal(loaded.alpha, np.where(idx == 1, 0, 255))
    expected = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], np.uint8)[idx]
    np.testing.assert_array_equal(loaded.colors, expected)


def test_palette_gif_with_transparency_from_a_file():
    idx = np.array([[0, 1], [1, 0]], np.uint8)
    im = Image.frombytes("P", (2, 2), idx.tobytes())
    im.putpalette([255, 0, 0, 0, 0, 255])
    data = encode(im, "GIF", transparency=0)
    loaded = rio.load_image(data)
    np.testing.assert_array_equal(loaded.alpha, np.where(idx == 0, 0, 255))
    np.testing.assert_array_equal(loaded.rgb[0, 1], [0, 0, 255])
    np.testing.assert_array_equal(loaded.rgb[0, 0], [255, 255, 255])  # transparent -> white


def test_palette_with_rgba_palette_and_PA():
    im = Image.new("P", (2, 1))
    im.putpalette([1, 2, 3, 0, 4, 5, 6, 255], rawmode="RGBA")
    im.putpixel((1, 0), 1)
    loaded = rio.load_image(im)
    np.testing.assert_array_equal(loaded.alpha, [[0, 255]])
    pa = Image.new("PA", (2, 2))
    np.testing.assert_array_equal(rio.load_image(pa).alpha, np.asarray(pa.convert("RGBA"))[..., 3])


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "HSV", "RGBX"])
def test_colour_modes_use_pillows_conversion(mode):
    im = Image.fromarray(rgb_photo()).convert(mode)
    loaded = rio.load_image(im)
    np.testing.assert_array_equal(loaded.rgb, np.asarray(im.convert("RGB")))
    assert loaded.alpha is None and loaded.mode == mode


def test_cmyk_values():
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 128, 0, 128]]], np.uint8)
    loaded = rio.load_image(Image.frombytes("CMYK", (4, 1), cmyk.tobytes()))
    assert loaded.rgb[0, :3].tolist() == [[255, 255, 255], [0, 255, 255], [0, 0, 0]]
    # (255 - C)(255 - K)/255 per channel
    assert abs(int(loaded.rgb[0, 3, 1]) - round(127 * 127 / 255)) <= 1


def test_La_is_unpremultiplied():
    la = np.dstack([RNG.integers(0, 256, (4, 5)), RNG.integers(1, 256, (4, 5))]).astype(np.uint8)
    pre = Image.fromarray(la).convert("La")
    ref = np.asarray(pre.convert("LA"))
    loaded = rio.load_image(pre)
    np.testing.assert_array_equal(loaded.alpha, ref[..., 1])
    np.testing.assert_array_equal(loaded.colors[..., 0], ref[..., 0])


def test_RGBa_is_unpremultiplied():
    im = Image.fromarray(np.dstack([rgb_photo(), RNG.integers(1, 256, (12, 17), dtype=np.uint8)]))
    pre = im.convert("RGBa")
    loaded = rio.load_image(pre)
    ref = pre.convert("RGBA")
    np.testing.assert_array_equal(loaded.alpha, np.asarray(ref)[..., 3])
    np.testing.assert_array_equal(loaded.colors, np.asarray(ref)[..., :3])


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I;16N"])
def test_16_bit_modes_take_the_high_byte(mode):
    values = np.array([[0, 255, 256, 32767, 32768, 65279, 65280, 65535]], np.uint16)
    order = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2"}[mode]
    im = Image.frombytes(mode, (8, 1), values.astype(order).tobytes())
    assert im.mode == mode and np.asarray(im).astype(np.uint16).tolist() == values.tolist()
    loaded = rio.load_image(im)
    expected = np.array([0, 0, 1, 127, 128, 254, 255, 255], np.uint8)
    np.testing.assert_array_equal(loaded.rgb[0, :, 0], expected)
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])


def test_16_bit_is_not_clamped_to_white_as_pillow_convert_does():
    values = np.full((4, 4), 20000, np.uint16)  # mid grey in 16 bits
    im = Image.fromarray(values)
    assert np.asarray(im.convert("L")).max() == 255  # Pillow's clamp: the bug we avoid
    assert rio.load_image(im).rgb.max() == 20000 >> 8


def test_mode_I_is_taken_as_16_bit_and_clipped():
    values = np.array([[-5, 0, 256, 65535, 70000]], np.int32)
    im = Image.fromarray(values)
    assert im.mode == "I"
    np.testing.assert_array_equal(rio.load_image(im).rgb[0, :, 1], [0, 0, 1, 255, 255])


def test_mode_F_is_taken_in_0_1():
    values = np.array([[0.0, 0.5, 1 / 255, 0.998, 1.0]], np.float32)
    im = Image.fromarray(values)
    assert im.mode == "F"
    np.testing.assert_array_equal(rio.load_image(im).rgb[0, :, 0], [0, 128, 1, 254, 255])
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        rio.load_image(Image.fromarray(np.array([[0.0, 200.0]], np.float32)))
    with pytest.raises(InvalidImageError, match="NaN"):
        rio.load_image(Image.fromarray(np.array([[0.0, np.nan]], np.float32)))


def test_float_file_advice_is_for_files(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.array([[0.0, 200.0]], np.float32)).save(path)
    with pytest.raises(InvalidImageError) as info:
        rio.load_image(path)
    message = str(info.value)
    assert (
        f"{str(path)!r} (floating-point pixels, mode 'F') has float values in [0, 200]" in message
    )
    assert "8- or 16-bit" in message
    assert "uint8" not in message and "Divide" not in message  # array advice, not for a file


def test_16_bit_colour_png_is_consistent_with_the_array_path():
    data = RNG.integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    from_file = rio.load_image(raw_png(data, color_type=2, bit_depth=16))
    from_array = rio.load_image(data)
    np.testing.assert_array_equal(from_file.rgb, (data >> 8).astype(np.uint8))
    np.testing.assert_array_equal(from_file.rgb, from_array.rgb)


def test_16_bit_grey_png_and_tiff_files():
    grey = RNG.integers(0, 65536, (5, 6)).astype(np.uint16)
    for data in (raw_png(grey, color_type=0, bit_depth=16), encode(Image.fromarray(grey), "TIFF")):
        loaded = rio.load_image(data)
        np.testing.assert_array_equal(loaded.rgb[..., 0], (grey >> 8).astype(np.uint8))


def test_16_bit_grey_with_trns_key_compares_at_full_depth():
    grey = np.array([[1000, 1001], [1000, 65535]], np.uint16)
    png = raw_png(grey, color_type=0, bit_depth=16)
    trns = png_chunk(b"tRNS", struct.pack(">H", 1000))
    png = png[:33] + trns + png[33:]  # after the signature (8) and IHDR (25)
    loaded = rio.load_image(png)
    np.testing.assert_array_equal(loaded.alpha, [[0, 255], [0, 255]])


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_colour_key_transparency(mode):
    arr = rgb_photo(4, 5)
    arr[0, 0] = (1, 2, 3)
    im = Image.fromarray(arr).convert(mode)
    key = (1, 2, 3) if mode == "RGB" else int(np.asarray(im)[0, 0])
    loaded = rio.load_image(encode(im, "PNG", transparency=key))
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 0
    ref = np.asarray(Image.open(io.BytesIO(encode(im, "PNG", transparency=key))).convert("RGBA"))
    np.testing.assert_array_equal(loaded.alpha, ref[..., 3])


def test_lossless_webp_with_alpha():
    rgba = np.dstack([rgb_photo(), RNG.integers(0, 256, (12, 17), dtype=np.uint8)])
    loaded = rio.load_image(encode(Image.fromarray(rgba), "WEBP", lossless=True, exact=True))
    np.testing.assert_array_equal(loaded.alpha, rgba[..., 3])
    np.testing.assert_array_equal(loaded.colors, rgba[..., :3])


@pytest.mark.parametrize("fmt", ["JPEG", "BMP", "TIFF", "GIF", "WEBP", "PPM"])
def test_common_formats_decode_like_pillow(fmt):
    im = Image.fromarray(rgb_photo(9, 11))
    data = encode(im, fmt)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    loaded = rio.load_image(data)
    assert loaded.format == Image.open(io.BytesIO(data)).format
    np.testing.assert_array_equal(loaded.rgb, expected)


# -- numpy arrays ----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32", "float64", "bool"])
def test_array_matrix(channels, dtype):
    shape = (5, 7) if channels is None else (5, 7, channels)
    if dtype == "bool":
        arr = RNG.integers(0, 2, shape).astype(bool)
        as8 = arr.astype(np.uint8) * 255
    elif dtype == "uint8":
        arr = RNG.integers(0, 256, shape).astype(np.uint8)
        as8 = arr
    elif dtype == "uint16":
        arr = RNG.integers(0, 65536, shape).astype(np.uint16)
        as8 = (arr >> 8).astype(np.uint8)
    else:
        arr = RNG.random(shape).astype(dtype)
        work = arr.astype(np.float32) if dtype == "float16" else arr
        as8 = np.rint(work * 255).astype(np.uint8)
    before = arr.copy()
    loaded = rio.load_image(arr)
    np.testing.assert_array_equal(arr, before)
    grey = channels in (None, 1)
    colors = np.repeat(as8.reshape(5, 7, 1), 3, axis=2) if grey else as8[..., :3]
    if channels == 4 and not (as8[..., 3] == 255).all():
        np.testing.assert_array_equal(loaded.alpha, as8[..., 3])
        np.testing.assert_array_equal(loaded.colors, colors)
        np.testing.assert_array_equal(loaded.rgb, flatten_ref(colors, as8[..., 3]))
    else:
        assert loaded.alpha is None
        np.testing.assert_array_equal(loaded.rgb, colors)
    assert loaded.rgb.flags.c_contiguous and not loaded.rgb.flags.writeable


def test_float_rounding_is_exact():
    values = np.array([[0.0, 1 / 255, 0.5, 127.5 / 255, 128.5 / 255, 254 / 255, 1.0]])
    np.testing.assert_array_equal(
        rio.load_image(values).rgb[0, :, 0], np.rint(values[0] * 255).astype(np.uint8)
    )
    assert rio.load_image(np.array([[0.5]])).rgb[0, 0, 0] == 128  # rint(127.5) = 128 (even)


def test_uint16_scaling_is_exact_over_the_whole_range():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    np.testing.assert_array_equal(
        rio.load_image(values).rgb[..., 0], (values // 256).astype(np.uint8)
    )


def test_big_endian_fortran_and_negative_stride_arrays():
    base = rgb_photo(8, 10)
    views = {
        "negative strides": base[::-1, ::-1],
        "step": rgb_photo(16, 20)[::2, ::2],
        "fortran": np.asfortranarray(base),
        "transposed": base.transpose(1, 0, 2),
        "channel view": np.dstack([base, base])[..., 1:4],
    }
    for name, view in views.items():
        loaded = rio.load_image(view)
        np.testing.assert_array_equal(loaded.rgb, np.ascontiguousarray(view), err_msg=name)
        assert not np.shares_memory(loaded.rgb, view)
    big = RNG.integers(0, 65536, (3, 4)).astype(">u2")
    np.testing.assert_array_equal(rio.load_image(big).rgb[..., 0], (big.astype(np.uint16) >> 8))


def test_read_only_and_subclass_arrays():
    arr = rgb_photo()
    arr.flags.writeable = False
    np.testing.assert_array_equal(rio.load_image(arr).rgb, arr)
    masked = np.ma.masked_array(rgb_photo(), mask=False)
    assert rio.load_image(masked).rgb.shape == (12, 17, 3)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.bool_]),
        shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4])),
    )
)
def test_arrays_property(arr):
    loaded = rio.load_image(arr)
    as8 = (
        arr.astype(np.uint8) * 255
        if arr.dtype == np.bool_
        else (arr >> 8).astype(np.uint8)
        if arr.dtype == np.uint16
        else arr
    )
    colors = np.repeat(as8, 3, axis=2) if arr.shape[2] == 1 else as8[..., :3]
    assert loaded.rgb.shape == (*arr.shape[:2], 3)
    np.testing.assert_array_equal(loaded.colors, colors)
    if arr.shape[2] == 4 and not (as8[..., 3] == 255).all():
        np.testing.assert_array_equal(loaded.rgb, flatten_ref(colors, as8[..., 3]))
    else:
        np.testing.assert_array_equal(loaded.rgb, colors)


# -- tiny images -----------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(1, 1), (1, 9), (9, 1), (2, 2)])
@pytest.mark.parametrize("how", ["png", "jpeg", "pil", "ndarray", "gray16"])
def test_tiny_images(hw, how):
    arr = rgb_photo(*hw)
    if how == "png":
        value = encode(Image.fromarray(arr))
    elif how == "jpeg":
        value = encode(Image.fromarray(arr), "JPEG")
    elif how == "pil":
        value = Image.fromarray(arr)
    elif how == "ndarray":
        value = arr
    else:
        value = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    loaded = rio.load_image(value)
    assert loaded.rgb.shape == (*hw, 3)
    if how in ("png", "pil", "ndarray"):
        np.testing.assert_array_equal(loaded.rgb, arr)
    out = rio.to_output(np.zeros(hw, np.uint8), loaded)
    if isinstance(out, bytes):
        out = Image.open(io.BytesIO(out))
    assert np.asarray(out).shape == hw


# -- EXIF orientation ------------------------------------------------------------------------------
def with_orientation(im: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, fmt, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_exact(orientation):
    arr = rgb_photo(4, 6)
    data = with_orientation(Image.fromarray(arr), "PNG", orientation)
    loaded = rio.load_image(data)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(loaded.rgb, expected)
    assert loaded.orientation == (None if orientation == 1 else orientation)
    assert loaded.rgb.flags.c_contiguous
    raw = rio.load_image(data, exif_transpose=False)
    np.testing.assert_array_equal(raw.rgb, arr)
    assert raw.orientation is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg_matches_pillow(orientation):
    data = with_orientation(Image.fromarray(rgb_photo(16, 24)), "JPEG", orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(rio.load_image(data).rgb, expected)
    pil = Image.open(io.BytesIO(data))
    np.testing.assert_array_equal(rio.load_image(pil).rgb, expected)  # a PIL input too
    assert pil.getexif().get(0x0112) == orientation  # ... and the caller's image is untouched


def test_exif_orientation_moves_alpha_with_colour():
    rgba = np.dstack([rgb_photo(3, 5), RNG.integers(0, 255, (3, 5), dtype=np.uint8)])
    data = with_orientation(Image.fromarray(rgba), "PNG", 6)
    loaded = rio.load_image(data)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert loaded.rgb.shape == (5, 3, 3)
    np.testing.assert_array_equal(loaded.alpha, expected[..., 3])
    np.testing.assert_array_equal(loaded.colors, expected[..., :3])


def test_invalid_orientation_is_ignored():
    data = with_orientation(Image.fromarray(rgb_photo(3, 4)), "PNG", 9)
    assert rio.load_image(data).orientation is None


# -- multi-frame -----------------------------------------------------------------------------------
def frames(n: int = 3) -> list[Image.Image]:
    return [Image.new("RGB", (4, 3), (60 * i, 10, 200)) for i in range(n)]


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "TIFF"])
def test_multi_frame_warns_and_uses_the_first(fmt):
    fs = frames()
    data = encode(fs[0], fmt, save_all=True, append_images=fs[1:])
    with pytest.warns(RmbgWarning, match="3 frames"):
        loaded = rio.load_image(data)
    assert loaded.rgb[0, 0].tolist() == [0, 10, 200]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = rio.load_image(data, frame=1)
        first = rio.load_image(data, frame=0)
    assert second.frame == 1 and abs(int(second.rgb[0, 0, 0]) - 60) <= 2
    np.testing.assert_array_equal(first.rgb, loaded.rgb)
    with pytest.raises(UnsupportedOptionError, match="frame=7"):
        rio.load_image(data, frame=7)


def test_pil_multi_frame_input_is_never_seeked():
    fs = frames()
    im = Image.open(io.BytesIO(encode(fs[0], "GIF", save_all=True, append_images=fs[1:])))
    im.seek(2)
    loaded = rio.load_image(im)
    assert im.tell() == 2
    np.testing.assert_array_equal(loaded.rgb, np.asarray(im.convert("RGB")))
    with pytest.raises(UnsupportedOptionError, match="seek"):
        rio.load_image(im, frame=0)


@pytest.mark.parametrize("frame", [-1, 1.5, True, "0"])
def test_bad_frame_option(frame):
    with pytest.raises(UnsupportedOptionError):
        rio.load_image(rgb_photo(), frame=frame)


# -- bad inputs ------------------------------------------------------------------------------------
def jpeg_bytes() -> bytes:
    return encode(Image.fromarray(rgb_photo(64, 64)), "JPEG")


BAD_BYTES = {
    "truncated JPEG header": (jpeg_bytes()[:400], "cannot be|truncated|not an image"),
    "JPEG cut mid-scan": (jpeg_bytes()[: len(jpeg_bytes()) // 2], "cannot be decoded"),
    "truncated PNG": (
        encode(Image.fromarray(rgb_photo(64, 64)))[:300],
        "cannot be|truncated|not an image",
    ),
    "PNG header only": (
        encode(Image.fromarray(rgb_photo(64, 64)))[:40],
        "cannot be|truncated|not an image",
    ),
    "random bytes": (RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not an image"),
    "text": (b"hello, this is not an image\n" * 20, "not an image"),
    "PDF": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not an image"),
    "zip": (b"PK\x03\x04" + b"\x00" * 100, "not an image"),
}


@pytest.mark.parametrize("name", BAD_BYTES)
@pytest.mark.parametrize("as_kind", ["bytes", "path", "file"])
def test_bad_files(name, as_kind, tmp_path):
    data, pattern = BAD_BYTES[name]
    value: object
    if as_kind == "bytes":
        value = data
    elif as_kind == "path":
        value = tmp_path / "bad.jpg"
        value.write_bytes(data)
    else:
        value = io.BytesIO(data)
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with pytest.raises(InvalidImageError, match=pattern) as info:
        rio.load_image(value)
    assert isinstance(info.value, ValueError)
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for value in (empty, str(empty), b"", bytearray(), memoryview(b""), io.BytesIO()):
        with pytest.raises(InvalidImageError, match="empty"):
            rio.load_image(value)


def test_truncated_jpeg_respects_an_application_that_allows_truncation(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # the app's choice, not ours
    assert rio.load_image(jpeg_bytes()[:1500]).rgb.shape == (64, 64, 3)


def test_missing_path_and_directory_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        rio.load_image(tmp_path / "nope.png")
    with pytest.raises(OSError):  # noqa: PT011 - IsADirectoryError, or PermissionError on Windows
        rio.load_image(tmp_path)


def test_url_text_file_and_bytes_path(tmp_path):
    with pytest.raises(InvalidImageError, match="URL"):
        rio.load_image("https://example.com/cat.jpg")
    text = tmp_path / "t.txt"
    text.write_text("hi")
    with open(text) as fh, pytest.raises(InvalidImageError, match="binary mode"):
        rio.load_image(fh)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="bytes path"):
        rio.load_image(BytesPath(str(text)))  # type: ignore[arg-type]


class BytesPath(os.PathLike):
    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return self.path.encode()


@pytest.mark.parametrize("value", [None, 42, 3.5, [[0, 1]], {"a": 1}, object()])
def test_wrong_types(value):
    with pytest.raises(InvalidImageError, match="Cannot read an image"):
        rio.load_image(value)


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((4, 5, 2), "HxWx4"),
        ((2, 4, 5, 3), "HxWx4"),
        ((7,), "HxWx4"),
        ((), "HxWx4"),
        ((3, 40, 50), "transpose"),
        ((0, 5), "no pixels"),
        ((5, 0, 3), "no pixels"),
        ((0, 0), "no pixels"),
    ],
)
def test_wrong_shapes(shape, pattern):
    with pytest.raises(InvalidImageError, match=pattern):
        rio.load_image(np.zeros(shape, np.uint8))


@pytest.mark.parametrize(
    "dtype", ["int64", "int32", "int16", "int8", "uint32", "uint64", "complex64", "object", "M8[s]"]
)
def test_wrong_dtypes(dtype):
    with pytest.raises(InvalidImageError, match="dtype"):
        rio.load_image(np.zeros((3, 4, 3), dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_non_finite_floats(bad, dtype):
    arr = np.zeros((3, 4, 3), dtype)
    arr[1, 2, 0] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        rio.load_image(arr)


@pytest.mark.parametrize("value", [-0.01, 1.01, 255.0])
def test_out_of_range_floats(value):
    arr = np.zeros((3, 4), np.float32)
    arr[0, 0] = value
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        rio.load_image(arr)


def test_zero_size_pil_image():
    with pytest.raises(InvalidImageError, match="no pixels"):
        rio.load_image(Image.new("RGB", (0, 5)))


# -- pixel limit -----------------------------------------------------------------------------------
@pytest.fixture
def load_calls(monkeypatch) -> list[tuple[int, int]]:
    """Records every ImageFile.load() (the pixel allocation and decode) made during a test."""
    calls: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def test_decompression_bomb_is_refused_from_the_header(load_calls):
    data = bomb_png(100_000, 100_000)  # 10 gigapixels; Pillow's own guard raises at open
    tracemalloc.start()
    t = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="decompression-bomb") as info:
        rio.load_image(data)
    elapsed = time.perf_counter() - t
    assert ".." not in str(info.value)  # Pillow's own sentence ends with a period
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 2**20
    assert load_calls == []  # refused before any pixel buffer was allocated


def test_image_over_the_limit_is_refused_before_decoding(load_calls):
    data = bomb_png(10_000, 10_000)  # over rmbg's default (Pillow's), under Pillow's error level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLargeError, match="100,000,000 pixels"):
            rio.load_image(data)
    assert caught == []  # refused with one error, no DecompressionBombWarning printed first
    assert load_calls == []
    with pytest.raises(ImageTooLargeError, match="limit of 1,000"):
        rio.load_image(bomb_png(100, 100), max_pixels=1000)
    assert load_calls == []
    rio.load_image(encode(Image.new("L", (10, 10))))
    assert set(load_calls) == {(10, 10)}  # the spy does see a normal load


def test_configurable_limit_for_every_kind(tmp_path):
    arr = rgb_photo(10, 10)
    path = tmp_path / "a.png"
    Image.fromarray(arr).save(path)
    for value in (path, path.read_bytes(), Image.fromarray(arr), arr):
        with pytest.raises(ImageTooLargeError, match="limit of 99"):
            rio.load_image(value, max_pixels=99)
        assert rio.load_image(value, max_pixels=100).rgb.shape == (10, 10, 3)
        assert rio.load_image(value, max_pixels=None).rgb.shape == (10, 10, 3)
    assert isinstance(ImageTooLargeError("x"), InvalidImageError)


def test_default_limit_is_pillows_default():
    assert rio.DEFAULT_MAX_PIXELS == (1024 * 1024 * 1024 // 4 // 3) == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "100"])
def test_bad_limit(limit):
    with pytest.raises(UnsupportedOptionError):
        rio.load_image(rgb_photo(), max_pixels=limit)


# -- the caller's objects --------------------------------------------------------------------------
def test_callers_pil_image_is_not_modified():
    rgba = np.dstack([rgb_photo(), RNG.integers(0, 256, (12, 17), dtype=np.uint8)])
    im = Image.fromarray(rgba)
    im.info["icc_profile"] = b"x"
    before = (im.tobytes(), im.mode, im.size, dict(im.info))
    loaded = rio.load_image(im)
    assert (im.tobytes(), im.mode, im.size, dict(im.info)) == before
    out = rio.to_output(np.zeros((12, 17, 4), np.uint8), loaded)
    assert out is not im and im.tobytes() == before[0]


def test_callers_array_is_not_modified_nor_shared():
    for arr in (
        rgb_photo(),
        np.dstack([rgb_photo(), RNG.integers(0, 256, (12, 17), dtype=np.uint8)]),
    ):
        before = arr.copy()
        loaded = rio.load_image(arr)
        for a in (loaded.rgb, loaded.alpha, loaded.colors):
            if a is not None:
                assert not np.shares_memory(a, arr)
                assert not a.flags.writeable
                with pytest.raises(ValueError, match="read-only"):
                    a[0, 0] = 1
        np.testing.assert_array_equal(arr, before)
        out = rio.to_output(loaded.rgb, loaded)
        assert not np.shares_memory(out, loaded.rgb) and out.flags.writeable


def test_loaded_image_is_frozen():
    loaded = rio.load_image(rgb_photo())
    with pytest.raises(AttributeError):
        loaded.kind = "pil"  # type: ignore[misc]


# -- output ----------------------------------------------------------------------------------------
@pytest.fixture(params=["path", "bytes", "file", "pil", "ndarray"])
def loaded_of_each_kind(request, tmp_path) -> rio.LoadedImage:
    arr = rgb_photo(6, 8)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    value = {
        "path": path,
        "bytes": path.read_bytes(),
        "file": io.BytesIO(path.read_bytes()),
        "pil": Image.fromarray(arr),
        "ndarray": arr,
    }[request.param]
    return rio.load_image(value)


@pytest.mark.parametrize(
    ("shape", "mode"), [((6, 8), "L"), ((6, 8, 3), "RGB"), ((6, 8, 4), "RGBA")]
)
def test_outputs_mirror_the_input(loaded_of_each_kind, shape, mode):
    result = RNG.integers(0, 256, shape, dtype=np.uint8)
    out = rio.to_output(result, loaded_of_each_kind)
    kind = loaded_of_each_kind.kind
    if kind == "ndarray":
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, result)
        return
    if kind == "bytes":
        assert isinstance(out, bytes) and out.startswith(b"\x89PNG")
        out = Image.open(io.BytesIO(out))
    assert isinstance(out, Image.Image) and out.mode == mode
    np.testing.assert_array_equal(np.asarray(out), result)  # lossless


def test_ndarray_output_is_fresh_or_the_pipelines_own_array():
    loaded = rio.load_image(rgb_photo())
    fresh = np.zeros((12, 17), np.uint8)
    assert rio.to_output(fresh, loaded) is fresh
    view = np.zeros((12, 34), np.uint8)[:, ::2]
    out = rio.to_output(view, loaded)
    assert out is not view and out.flags.c_contiguous and not np.shares_memory(out, view)


def test_rgb_icc_profile_is_carried_to_colour_results():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.fromarray(rgb_photo()), "PNG", icc_profile=srgb)
    loaded = rio.load_image(data)
    assert loaded.icc_profile == srgb
    cut = rio.to_output(np.zeros((12, 17, 4), np.uint8), loaded)
    assert Image.open(io.BytesIO(cut)).info.get("icc_profile") == srgb
    mask = rio.to_output(np.zeros((12, 17), np.uint8), loaded)
    assert "icc_profile" not in Image.open(io.BytesIO(mask)).info
    cmyk = Image.new("CMYK", (4, 4))
    cmyk.info["icc_profile"] = b"\x00" * 16 + b"CMYK" + b"\x00" * 100
    out = rio.to_output(np.zeros((4, 4, 3), np.uint8), rio.load_image(cmyk))
    assert "icc_profile" not in out.info  # a CMYK profile would be wrong on RGB pixels


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3, 4), np.uint16), np.zeros((3, 4, 2), np.uint8), np.zeros((2, 3, 4, 4), np.uint8)],
)
def test_to_output_rejects_other_layouts(bad):
    with pytest.raises(ValueError, match="expected"):
        rio.to_output(bad, rio.load_image(rgb_photo()))


def test_png_output_is_rmbgs_encoder_at_the_fast_level_and_lossless():
    """Bytes results are rmbg's own PNG encoder at level 1 (the fast end), byte for byte."""
    from rmbg import _png

    assert rio.PNG_COMPRESS_LEVEL == 1
    photo = np.asarray(Image.open(Path(__file__).parents[1] / "src/rmbg/data/photos/coffee.jpg"))
    loaded = rio.load_image(encode(Image.fromarray(rgb_photo())))
    rgba = np.dstack([photo, photo[..., 0]])  # compressible, so that the level shows
    data = rio.to_output(rgba, loaded)
    assert data == _png.encode_png(rgba, level=1)
    assert data != _png.encode_png(rgba, level=9)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), rgba)


# -- paths that are not regular files --------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX-only")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    import threading

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            rio.load_image(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(fifo, os.O_WRONLY))
        worker.join(10)
        pytest.fail("load_image blocked on a FIFO")
    assert isinstance(outcome[0], InvalidImageError), outcome
    assert "a FIFO (named pipe), not an image file" in str(outcome[0])
    assert "pass the bytes" in str(outcome[0])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused():
    with pytest.raises(InvalidImageError, match="'/dev/zero' is a device, not an image file"):
        rio.load_image("/dev/zero")


def test_a_folder_is_still_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        rio.load_image(tmp_path)


def test_eps_without_ghostscript_says_so(monkeypatch):
    from PIL import EpsImagePlugin

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "EPS")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", False)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: False)
    with pytest.raises(InvalidImageError) as info:
        rio.load_image(buf.getvalue())
    message = str(info.value)
    assert "EPS file" in message and "Ghostscript" in message and "install" in message.lower()
    assert "corrupt" not in message and "truncated" not in message
