"""rmbg's one encoder, :func:`rmbg.io.encode_image`: used by ``output="png"`` and the CLI."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from rmbg.errors import UnsupportedOptionError
from rmbg.io import DEFAULT_JPEG_QUALITY, encode_image, load_image, to_output


@pytest.fixture(scope="module")
def rgba() -> np.ndarray:
    rng = np.random.default_rng(3)
    out = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    out[..., 3] = np.linspace(0, 255, 53, dtype=np.uint8)[None, :]
    return out


@pytest.fixture(scope="module")
def icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_output_png_is_the_encoders_png(rgba, icc):
    """``to_output(output="png")`` writes exactly what ``encode_image(..., "png")`` writes,
    the input's RGB profile included."""
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, "PNG", icc_profile=icc)
    like = load_image(buf.getvalue())
    assert like.icc_profile == icc
    png = to_output(rgba, like, "png")
    assert png == encode_image(rgba, "png", icc_profile=icc)
    pil = to_output(rgba, like, "pil")
    assert encode_image(pil, "png") == png  # a PIL image's own profile is kept
    im = decode(png)
    assert im.info["icc_profile"] == icc
    np.testing.assert_array_equal(np.asarray(im), rgba)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_lossless_formats_round_trip_with_the_profile(fmt, rgba, icc):
    pil = Image.fromarray(rgba)
    pil.info["icc_profile"] = icc
    im = decode(encode_image(pil, fmt))
    assert im.format == fmt.upper() and im.info.get("icc_profile") == icc
    got = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(got[..., 3], rgba[..., 3])
    visible = rgba[..., 3] > 0  # lossless WebP may drop colours under alpha 0
    np.testing.assert_array_equal(got[visible], rgba[visible])


def test_png_levels_trade_size_for_time_losslessly(rgba):
    sizes = [len(encode_image(rgba, "png", compress_level=level)) for level in (0, 9)]
    assert sizes[1] < sizes[0]
    for level in (0, 9):
        np.testing.assert_array_equal(
            np.asarray(decode(encode_image(rgba, "png", compress_level=level))), rgba
        )


def test_jpeg_quality_profile_and_opacity(rgba, icc):
    opaque = rgba.copy()
    opaque[..., 3] = 255
    pil = Image.fromarray(opaque)
    pil.info["icc_profile"] = icc
    default = encode_image(pil, "jpg")
    assert default == encode_image(pil, "jpeg", quality=DEFAULT_JPEG_QUALITY)
    low = encode_image(pil, "jpeg", quality=10)
    assert len(low) < len(default)
    im = decode(default)
    assert im.format == "JPEG" and im.mode == "RGB" and im.info["icc_profile"] == icc
    assert decode(encode_image(opaque[..., 0], "jpeg")).mode == "L"
    with pytest.raises(UnsupportedOptionError, match="JPEG cannot store transparency"):
        encode_image(rgba, "jpeg")


def test_lossy_webp_takes_a_quality(rgba):
    assert len(encode_image(rgba, "webp", quality=10)) < len(encode_image(rgba, "webp"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "gif"}, "format must be one of png, webp, jpeg"),
        ({"format": "png", "quality": 80}, "quality applies to webp and jpeg"),
        ({"format": "jpeg", "quality": 0}, "quality must be a whole number in 1..100"),
        ({"format": "png", "compress_level": 10}, "compress_level must be a whole number in 0..9"),
    ],
)
def test_bad_encoder_settings(kwargs, message, rgba):
    with pytest.raises(UnsupportedOptionError, match=message):
        encode_image(rgba, **kwargs)
