"""rmbg's PNG encoder (``rmbg._png``): lossless for every layout, with and without ISA-L."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rmbg import _png

from .helpers import load_photo


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


@pytest.fixture(params=["default", "zlib"])
def deflate(request, monkeypatch):
    if request.param == "zlib":
        monkeypatch.setattr(_png, "_deflate_module", lambda: zlib)
    return request.param


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (29, 1), (64, 48), (333, 257)])
def test_round_trip_is_exact(deflate, channels, shape):
    rng = np.random.default_rng(sum(shape))
    full = shape if channels is None else (*shape, channels)
    a = rng.integers(0, 256, size=full, dtype=np.uint8)
    back = _decode(_png.encode_png(a))
    np.testing.assert_array_equal(back.reshape(a.shape), a)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_levels_and_many_blocks(deflate, level, monkeypatch):
    monkeypatch.setattr(_png, "_BLOCK_BYTES", 4096)  # dozens of blocks: the adler32 combine
    rgba = np.dstack([load_photo("coffee"), np.full(load_photo("coffee").shape[:2], 200, np.uint8)])
    data = _png.encode_png(rgba, level=level)
    np.testing.assert_array_equal(_decode(data), rgba)
    assert _png.encode_png(rgba, level=level, threads=False) == data  # threads change nothing


def test_photo_compresses_like_pillow_level_1():
    rgb = load_photo("astronaut")
    ours = len(_png.encode_png(rgb))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    assert ours < 1.15 * len(buf.getvalue())


def test_icc_profile_is_embedded():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _png.encode_png(np.zeros((4, 4, 3), np.uint8), icc_profile=icc)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == icc


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint16), np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4), np.uint8)],
)
def test_bad_arrays_are_refused(bad):
    with pytest.raises(ValueError, match="uint8"):
        _png.encode_png(bad)


def test_bad_level_is_refused():
    with pytest.raises(ValueError, match="level"):
        _png.encode_png(np.zeros((2, 2), np.uint8), level=10)


def test_adler32_combine_matches_zlib():
    rng = np.random.default_rng(0)
    a, b = rng.bytes(70_000), rng.bytes(123_457)
    combined = _png._adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
    assert combined == zlib.adler32(a + b)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 2, 3, 4]),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(h, w, c, seed):
    a = np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(_png.encode_png(a)).reshape(a.shape), a)


def test_higher_levels_never_give_bigger_files(deflate):
    """--compress-level 6 must mean smaller than 1, with or without ISA-L (whose own top level is
    not smaller than its level 1 on photo cutouts): levels 3-9 go to zlib."""
    rgb = load_photo("coffee")
    sizes = [len(_png.encode_png(rgb, level=level)) for level in (1, 3, 6, 9)]
    assert sizes == sorted(sizes, reverse=True) and sizes[2] < sizes[0], sizes
