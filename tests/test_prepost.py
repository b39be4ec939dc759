"""The numpy pre/post-processing against BRIA's torch reference, element for element.

Exactness reached (torch 2.x CPU wheels, x86-64 with AVX2 or AVX-512):

| comparison                                             | asserted                         |
|--------------------------------------------------------|----------------------------------|
| ``resize_bilinear`` vs ``F.interpolate`` raw float32   | bit-identical (NaN where torch's) |
| ``preprocess`` vs ``preprocess_image``                 | bit-identical                    |
| ``postprocess`` vs ``postprocess_image``               | identical masks (0 grey levels)  |
| ``preprocess`` vs a single-threaded torch's reference  | <= 1 grey level, < 1e-4 of values|

The last line is torch's own inconsistency: with one thread, torch resizes 3-channel images with
another kernel (``resize_bilinear(kernel="channels_last")`` reproduces that one exactly too).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbg.errors import InvalidImageError, UnsupportedOptionError
from rmbg.postprocess import postprocess
from rmbg.preprocess import preprocess, resize_bilinear, source_indices
from rmbg.specs import RMBG_1_4

from .helpers import PHOTOS, load_photo
from .reference import normalize, postprocess_image, preprocess_image

SRC = Path(__file__).resolve().parents[1] / "src"


# the oracle: BRIA's utilities.py (tests/reference.py)


def torch_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``F.interpolate`` on an HxW or HxWxC array, the way the reference feeds it."""
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    t = t[None, None] if image.ndim == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=size, mode="bilinear")
    return (out[0, 0] if image.ndim == 2 else out[0].permute(1, 2, 0)).numpy()


@pytest.fixture
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def _multithreaded_torch():
    """The default kernel choice assumes a multi-threaded torch (any machine with 2+ cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


def _values(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "prob":  # like a sigmoid output
        return rng.random(shape, dtype=np.float32)
    if kind == "tiny":  # nonzero values far below 1e-30: the always-exact fma route
        return (rng.random(shape) ** 60).astype(np.float32)
    if kind == "signed":  # mixed signs and magnitudes: cancellations, subnormals
        scale = 10.0 ** rng.integers(-44, 6)
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    raise AssertionError(kind)


def _assert_same(out: np.ndarray, ref: np.ndarray, what: object) -> None:
    assert out.dtype == np.float32 and out.shape == ref.shape, what
    if not np.array_equal(out, ref, equal_nan=True):
        bad = np.flatnonzero(out != ref)
        raise AssertionError(f"{what}: {bad.size} of {out.size} elements differ, e.g. at {bad[:5]}")


# -- resize_bilinear vs F.interpolate ------------------------------------------------------------

EDGE_CASES = [
    # (input h, w), (output h, w), channels (None = HxW)
    ((1, 1), (1, 1), None),
    ((1, 1), (97, 203), 3),
    ((1, 57), (200, 300), None),
    ((57, 1), (300, 200), 3),
    ((1, 300), (1, 77), None),
    ((300, 1), (77, 1), 1),
    ((300, 200), (1, 1), 3),
    ((129, 257), (1024, 1024), 3),
    ((1024, 1024), (1024, 1024), None),
    ((1024, 1024), (333, 777), None),
    ((777, 1031), (1024, 1024), 3),
    ((31, 7), (64, 64), 3),  # out_h + out_w <= 128: torch's channels-last kernel
    ((5, 300), (60, 68), None),
    ((40, 50), (90, 130), 4),  # C > 3: channels-last kernel
    ((23, 29), (61, 67), 8),  # all 8 channels in torch's vectorised loop
    ((23, 29), (71, 83), 13),  # 8 vectorised + 5 scalar channels
]


@pytest.mark.parametrize(("in_size", "out_size", "channels"), EDGE_CASES)
def test_resize_matches_torch_on_edge_sizes(in_size, out_size, channels):
    rng = np.random.default_rng(sum(in_size) * 7919 + sum(out_size))
    shape = in_size if channels is None else (*in_size, channels)
    for kind in ("uint8", "prob"):
        image = _values(rng, shape, kind)
        _assert_same(resize_bilinear(image, out_size), torch_resize(image, out_size), (shape, kind))


def _random_cases(seed: int, n: int) -> list[tuple[tuple[int, ...], tuple[int, int], str]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 300, 4))
        if rng.random() < 0.25:  # small outputs use the other kernel
            oh, ow = (int(v) for v in rng.integers(1, 64, 2))
        channels = [None, 1, 3, 3, 4][int(rng.integers(5))]
        shape = (h, w) if channels is None else (h, w, channels)
        kind = ["uint8", "prob", "tiny", "signed"][int(rng.integers(4))]
        cases.append((shape, (oh, ow), kind))
    return cases


@pytest.mark.parametrize("seed", range(4))
def test_resize_matches_torch_on_random_sizes(seed):
    rng = np.random.default_rng(1000 + seed)
    for shape, size, kind in _random_cases(seed, 50):
        image = _values(rng, shape, kind)
        _assert_same(resize_bilinear(image, size), torch_resize(image, size), (shape, size, kind))


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 160),
    w=st.integers(1, 160),
    oh=st.integers(1, 400),
    ow=st.integers(1, 400),
    channels=st.sampled_from([None, 1, 3]),
    kind=st.sampled_from(["uint8", "prob", "tiny", "signed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_resize_matches_torch_property(h, w, oh, ow, channels, kind, seed):
    shape = (h, w) if channels is None else (h, w, channels)
    image = _values(np.random.default_rng(seed), shape, kind)
    _assert_same(resize_bilinear(image, (oh, ow)), torch_resize(image, (oh, ow)), shape)


def test_resize_propagates_inf_and_nan_like_torch():
    image = np.random.default_rng(0).random((9, 11), dtype=np.float32)
    image[2, 3], image[7, 1] = np.inf, np.nan
    for size in [(9, 90), (90, 11), (9, 11), (40, 100), (30, 30)]:
        _assert_same(resize_bilinear(image, size), torch_resize(image, size), size)


def _double_rounding_cases() -> list[tuple[int, int, int, np.float32]]:
    """Rows ``[.., a, 1000, ..]`` whose width pass ``fma(a, w0, 1000 * w1)`` has a float64 sum
    exactly halfway between two float32 values while the exact sum is not: computing the fma in
    float64 and rounding once more to float32 gets those wrong (round half to even)."""
    found = []
    b = np.float32(1000.0)
    for n_in in range(2, 7):
        for n_out in range(129, 150):  # wide enough for torch's generic kernel
            i0, i1, w0, w1 = source_indices(n_in, n_out)
            for k in np.flatnonzero((w0 > 0) & (w1 > 0) & (i0 != i1)):
                c = np.float32(b * w1[k])
                half = np.float64(np.spacing(c)) / 2
                for m in range(30):
                    a = np.float32((2 * m + 1) * half / np.float64(w0[k]))
                    s = np.float64(a) * np.float64(w0[k]) + np.float64(c)
                    inexact = np.float64(a) * np.float64(w0[k]) - (s - np.float64(c)) != 0
                    if inexact and s.view(np.int64) & ((1 << 29) - 1) == 1 << 28:
                        found.append((n_in, n_out, int(k), a))
    return found


def test_fused_multiply_add_is_emulated_exactly_at_float32_midpoints():
    cases = _double_rounding_cases()
    assert len(cases) > 20
    naive_wrong = 0
    for n_in, n_out, k, a in cases[:: max(1, len(cases) // 60)]:
        i0, i1, w0, w1 = source_indices(n_in, n_out)
        row = np.ones((1, n_in), np.float32)
        row[0, i0[k]], row[0, i1[k]] = a, 1000.0
        ref = torch_resize(row, (1, n_out))
        _assert_same(resize_bilinear(row, (1, n_out)), ref, (n_in, n_out, k))
        product = np.float64(a) * np.float64(w0[k])
        naive = np.float32(product + np.float64(np.float32(np.float32(1000.0) * w1[k])))
        naive_wrong += bool(naive != ref[0, k])
    assert naive_wrong > 0  # the cases do exercise the midpoint correction


def test_single_threaded_torch_uses_the_channels_last_kernel_for_rgb(one_torch_thread):
    rng = np.random.default_rng(5)
    for shape, size in [((67, 91, 3), (150, 130)), ((300, 200, 3), (1024, 1024))]:
        image = rng.random(shape, dtype=np.float32)
        ref = torch_resize(image, size)
        _assert_same(resize_bilinear(image, size, kernel="channels_last"), ref, shape)
        assert not np.array_equal(resize_bilinear(image, size), ref)  # torch is thread-dependent


@pytest.mark.slow
def test_unfused_arithmetic_matches_torch_without_avx2(tmp_path):
    """``ATEN_CPU_CAPABILITY=default`` runs torch's SSE build: plain float32, no fma."""
    script = textwrap.dedent(
        """
        import numpy as np, torch, torch.nn.functional as F
        from rmbg.preprocess import resize_bilinear
        assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
        torch.set_num_threads(2)
        rng = np.random.default_rng(0)
        for i in range(40):
            h, w, oh, ow = (int(v) for v in rng.integers(1, 200, 4))
            if i % 4 == 0:
                oh, ow = (int(v) for v in rng.integers(1, 64, 2))
            c = [None, 1, 3, 4, 13][i % 5]
            x = rng.random((h, w) if c is None else (h, w, c), dtype=np.float32)
            t = torch.from_numpy(x)
            t = t[None, None] if c is None else t.permute(2, 0, 1)[None]
            r = F.interpolate(t, size=(oh, ow), mode="bilinear")
            r = (r[0, 0] if c is None else r[0].permute(1, 2, 0)).numpy()
            assert np.array_equal(resize_bilinear(x, (oh, ow), fused=False), r), (x.shape, oh, ow)
            if i < 8:
                assert not np.array_equal(resize_bilinear(x, (oh, ow)), r)
        """
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_resize_output_and_input_handling():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    image.setflags(write=False)
    out = resize_bilinear(image, (70, 40))
    assert out.shape == (70, 40, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    # views with odd strides, float16/float64 values (rounded to float32 first, as the reference)
    view = image[::-1, ::2]
    _assert_same(resize_bilinear(view, (33, 77)), torch_resize(view, (33, 77)), "view")
    f64 = rng.random((20, 30))
    _assert_same(resize_bilinear(f64, (50, 50)), torch_resize(f64.astype(np.float32), (50, 50)), 1)
    f16 = f64.astype(np.float16)
    _assert_same(resize_bilinear(f16, (50, 50)), torch_resize(f16.astype(np.float32), (50, 50)), 2)


@pytest.mark.parametrize(
    ("image", "size", "message"),
    [
        (np.zeros((4, 4, 3, 1), np.float32), (2, 2), "HxW or HxWxC"),
        (np.zeros(5, np.float32), (2, 2), "HxW or HxWxC"),
        (np.zeros((0, 4), np.float32), (2, 2), "non-empty"),
        (np.zeros((4, 4), np.int32), (2, 2), "uint8 or floating"),
        (np.zeros((4, 4), bool), (2, 2), "uint8 or floating"),
        ([[0.0, 1.0]], (2, 2), "numpy array"),
        (np.zeros((4, 4), np.float32), (0, 2), ">= 1"),
        (np.zeros((4, 4), np.float32), (2,), "pair of integers"),
        (np.zeros((4, 4), np.float32), (2.5, 2), "pair of integers"),
    ],
)
def test_resize_rejects_invalid_input(image, size, message):
    with pytest.raises(InvalidImageError, match=message):
        resize_bilinear(image, size)


def test_resize_rejects_unknown_kernel():
    with pytest.raises(ValueError, match="kernel"):
        resize_bilinear(np.zeros((4, 4), np.float32), (2, 2), kernel="bicubic")  # type: ignore[arg-type]


# -- preprocess vs preprocess_image --------------------------------------------------------------


def _assert_preprocess_exact(rgb: np.ndarray, spec=RMBG_1_4) -> None:
    x = preprocess(rgb, spec)
    h, w = spec.input_size
    assert x.shape == (1, 3, h, w) and x.dtype == np.float32 and x.flags.c_contiguous
    ref = preprocess_image(np.ascontiguousarray(rgb), [h, w]).numpy()  # torch: no negative strides
    np.testing.assert_array_equal(x, ref, err_msg=f"{rgb.shape} -> {spec.input_size}")


@pytest.mark.parametrize("name", PHOTOS)
def test_preprocess_matches_reference_on_photos(name):
    _assert_preprocess_exact(load_photo(name))


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (1, 700, 3), (700, 1, 3), (17, 23, 3), (1024, 1024, 3), (1111, 777, 3)]
)
def test_preprocess_matches_reference_on_random_images(shape):
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    _assert_preprocess_exact(rng.integers(0, 256, shape, dtype=np.uint8))


def test_preprocess_matches_reference_at_other_input_sizes():
    rng = np.random.default_rng(11)
    for input_size in [(96, 96), (128, 160), (37, 53), (40, 60)]:
        spec = RMBG_1_4.with_input_size(*input_size)
        for _ in range(4):
            h, w = (int(v) for v in rng.integers(1, 400, 2))
            _assert_preprocess_exact(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), spec)


def test_preprocess_without_truncation_and_with_other_normalisation():
    spec = dataclasses.replace(
        RMBG_1_4.with_input_size(64, 80),
        truncate_resized_input=False,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    rgb = np.random.default_rng(2).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    resized = torch.from_numpy(torch_resize(rgb, (64, 80))).permute(2, 0, 1)[None]
    ref = normalize(torch.divide(resized, 255.0), list(spec.mean), list(spec.std)).numpy()
    np.testing.assert_array_equal(preprocess(rgb, spec), ref)


def test_preprocess_leaves_the_input_alone():
    rgb = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    copy = rgb.copy()
    preprocess(rgb, RMBG_1_4.with_input_size(32, 32))
    np.testing.assert_array_equal(rgb, copy)
    _assert_preprocess_exact(rgb[::-1, ::-1], RMBG_1_4.with_input_size(32, 48))  # any strides


def test_preprocess_vs_single_threaded_reference_is_within_one_grey_level(one_torch_thread):
    rng = np.random.default_rng(8)
    images = [load_photo("coffee")] + [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(300, 451), (767, 405)]
    ]
    differing = total = 0
    for rgb in images:
        diff = np.abs(preprocess(rgb) - preprocess_image(rgb, [1024, 1024]).numpy())
        assert diff.max() <= np.float32(1 / 255) + 1e-7
        differing += int(np.count_nonzero(diff))
        total += diff.size
    assert differing / total < 1e-4


@pytest.mark.parametrize(
    ("rgb", "message"),
    [
        (np.zeros((8, 8), np.uint8), "HxWx3 uint8"),
        (np.zeros((8, 8, 4), np.uint8), "HxWx3 uint8"),
        (np.zeros((8, 8, 1), np.uint8), "HxWx3 uint8"),
        (np.zeros((8, 8, 3), np.float32), "HxWx3 uint8"),
        (np.zeros((0, 8, 3), np.uint8), "HxWx3 uint8"),
        ([[[0, 0, 0]]], "numpy array"),
    ],
)
def test_preprocess_rejects_invalid_input(rgb, message):
    with pytest.raises(InvalidImageError, match=message):
        preprocess(rgb)


# -- postprocess vs postprocess_image ------------------------------------------------------------


def _network_output(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A plausible sigmoid output: a smooth blob plus noise, shape (1, 1, h, w)."""
    yy, xx = np.mgrid[0:h, 0:w]
    logits = 8 - 16 * np.hypot((yy - h / 2) / h, (xx - w / 3) / w) * 2
    logits = logits + rng.standard_normal((h, w))
    return (1 / (1 + np.exp(-logits))).astype(np.float32)[None, None]


@pytest.mark.parametrize(
    "size",
    [(2, 3), (1, 500), (500, 1), (37, 41), (60, 60), (333, 777), (1024, 1024), (1500, 1001)],
)
def test_postprocess_matches_reference(size):
    rng = np.random.default_rng(size[0] + 7 * size[1])
    for raw_hw in [(1024, 1024), (96, 128)]:
        raw = _network_output(rng, *raw_hw)
        mask = postprocess(raw, size)
        assert mask.shape == size and mask.dtype == np.uint8 and mask.flags.c_contiguous
        ref = postprocess_image(torch.from_numpy(raw), list(size)).reshape(size)
        np.testing.assert_array_equal(mask, ref, err_msg=f"{raw_hw} -> {size}")


@pytest.mark.slow
def test_postprocess_matches_reference_at_12_megapixels():
    raw = _network_output(np.random.default_rng(12), 1024, 1024)
    ref = postprocess_image(torch.from_numpy(raw), [4000, 3000])
    np.testing.assert_array_equal(postprocess(raw, (4000, 3000)), ref)


def test_postprocess_accepts_the_usual_output_shapes_and_dtypes():
    raw = _network_output(np.random.default_rng(1), 64, 48)
    expected = postprocess(raw, (100, 90))
    for variant in (raw[0], raw[0, 0], raw.astype(np.float64), raw[0, 0].copy(order="F")):
        np.testing.assert_array_equal(postprocess(variant, (100, 90)), expected)
    half = raw.astype(np.float16)
    ref = postprocess_image(torch.from_numpy(half.astype(np.float32)), [100, 90])
    np.testing.assert_array_equal(postprocess(half, (100, 90)), ref)


@pytest.mark.parametrize(("value", "level"), [(0.0, 0), (0.2, 0), (0.5, 255), (0.97, 255)])
@pytest.mark.parametrize("size", [(1, 1), (50, 70), (300, 200)])
def test_constant_output_gives_a_defined_mask(value, level, size):
    raw = np.full((1, 1, 7, 9), value, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero or invalid-cast warnings either
        mask = postprocess(raw, size)
    np.testing.assert_array_equal(mask, np.full(size, level, np.uint8))


def test_a_constant_that_the_resize_wobbles_is_still_constant():
    raw = np.full((7, 9), 0.3, np.float32)
    resized = resize_bilinear(raw, (50, 70))
    assert resized.max() > resized.min()  # the reference would stretch 1-ulp noise to 0..255
    np.testing.assert_array_equal(postprocess(raw, (50, 70)), np.zeros((50, 70), np.uint8))


def test_output_constant_after_the_resize_gives_a_defined_mask():
    raw = np.array([[0.2, 0.9, 0.1]], np.float32)  # a 1x1 output samples the middle pixel only
    assert postprocess(raw, (1, 1)).tolist() == [[255]]


def test_normalize_none_keeps_probabilities():
    rng = np.random.default_rng(6)
    raw = np.clip(_network_output(rng, 96, 128) * 1.2 - 0.1, -0.5, 1.5)  # also outside [0, 1]
    size = (200, 150)
    resized = F.interpolate(torch.from_numpy(raw), size=size, mode="bilinear")[0, 0]
    ref = (resized.clamp(0, 1) * 255).numpy().astype(np.uint8)
    np.testing.assert_array_equal(postprocess(raw, size, normalize="none"), ref)


def test_normalize_none_keeps_an_empty_scene_empty():
    raw = (0.01 + 0.002 * np.random.default_rng(7).random((1, 1, 64, 64))).astype(np.float32)
    assert postprocess(raw, (80, 80), normalize="none").max() <= 3
    assert postprocess(raw, (80, 80)).max() == 255  # the reference stretches the noise
    constant = np.full((64, 64), 0.7, np.float32)
    np.testing.assert_array_equal(
        postprocess(constant, (5, 5), normalize="none"), np.full((5, 5), 178, np.uint8)
    )


@pytest.mark.parametrize(
    ("raw", "size", "message"),
    [
        (np.zeros((1, 1, 8, 8), np.uint8), (4, 4), "float output"),
        (np.zeros((2, 1, 8, 8), np.float32), (4, 4), r"\(1, 1, h, w\)"),
        (np.zeros((1, 2, 8, 8), np.float32), (4, 4), r"\(1, 1, h, w\)"),
        (np.zeros((1, 1, 1, 8, 8), np.float32), (4, 4), r"\(1, 1, h, w\)"),
        (np.zeros(8, np.float32), (4, 4), r"\(1, 1, h, w\)"),
        (np.zeros((1, 1, 0, 8), np.float32), (4, 4), r"\(1, 1, h, w\)"),
        (np.full((8, 8), np.nan, np.float32), (4, 4), "NaN or infinite"),
        (np.array([[0.5, np.inf]], np.float32), (4, 4), "NaN or infinite"),
        (np.zeros((8, 8), np.float32), (0, 4), ">= 1"),
        (np.zeros((8, 8), np.float32), (4,), "pair of integers"),
        (np.zeros((8, 8), np.float32), "44", "pair of integers"),
        ("not an array", (4, 4), "float output"),
    ],
)
def test_postprocess_rejects_invalid_input(raw, size, message):
    with pytest.raises(InvalidImageError, match=message):
        postprocess(raw, size)


def test_postprocess_rejects_unknown_normalize():
    with pytest.raises(UnsupportedOptionError, match="minmax"):
        postprocess(np.zeros((8, 8), np.float32), (4, 4), normalize="sigmoid")  # type: ignore[arg-type]


# -- no torch at import time ---------------------------------------------------------------------


def test_the_numpy_stages_do_not_import_torch():
    code = (
        "import sys, rmbg.preprocess, rmbg.postprocess; "
        "bad = [m for m in ('torch', 'PIL.Image', 'openvino') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
