"""rmbg.compose: exact values on hand-made arrays for every option, and the decontamination."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from rmbg import compose as C
from rmbg import decontaminate as D
from rmbg.errors import UnsupportedOptionError
from rmbg.options import resolve_background

RNG = np.random.default_rng(99)


def rnd(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def frac_round(x: Fraction) -> int:
    """Round half up, exactly."""
    return int((x + Fraction(1, 2)).__floor__())


# -- parse_color -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("white", (255, 255, 255, 255)),
        ("Black", (0, 0, 0, 255)),
        ("rebeccapurple", (102, 51, 153, 255)),
        ("#0af", (0, 170, 255, 255)),
        ("#0af8", (0, 170, 255, 136)),
        ("#00AAFF", (0, 170, 255, 255)),
        ("#00aaff80", (0, 170, 255, 128)),
        (" #00aaff ", (0, 170, 255, 255)),
        ("rgb(1, 2, 3)", (1, 2, 3, 255)),
        ("transparent", (0, 0, 0, 0)),
        ((1, 2, 3), (1, 2, 3, 255)),
        ((1, 2, 3, 4), (1, 2, 3, 4)),
        ([0, 0, 255], (0, 0, 255, 255)),
        ((np.uint8(7), np.int64(8), 9), (7, 8, 9, 255)),
    ],
)
def test_parse_color(value, expected):
    assert C.parse_color(value) == expected
    assert all(type(c) is int for c in C.parse_color(value))


@pytest.mark.parametrize(
    "value",
    ["nope", "#12", "#1234567", "", (256, 0, 0), (-1, 0, 0), (1.0, 0, 0), (True, 0, 0), (1, 2),
     (1, 2, 3, 4, 5), 5, None, 0.5],
)  # fmt: skip
def test_bad_colors(value):
    with pytest.raises(UnsupportedOptionError, match="not a colour") as info:
        C.parse_color(value)
    assert isinstance(info.value, ValueError)


# -- shape_mask ------------------------------------------------------------------------------------
def test_defaults_return_an_equal_copy():
    mask = rnd(7, 9)
    before = mask.copy()
    out = C.shape_mask(mask)
    np.testing.assert_array_equal(out, mask)
    assert out is not mask and not np.shares_memory(out, mask)
    np.testing.assert_array_equal(mask, before)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.0, [255, 255, 255, 255, 255, 255, 255]),
        (0.2, [0, 0, 255, 255, 255, 255, 255]),  # 0.2 * 255 = 51 (up to float rounding)
        (0.5, [0, 0, 0, 0, 255, 255, 255]),  # 127.5: 128 and above
        (254 / 255, [0, 0, 0, 0, 0, 255, 255]),
        (1.0, [0, 0, 0, 0, 0, 0, 255]),
    ],
)
def test_threshold_is_a_fraction_of_255(threshold, expected):
    mask = np.array([[0, 50, 51, 127, 128, 254, 255]], np.uint8)
    np.testing.assert_array_equal(C.shape_mask(mask, threshold=threshold), [expected])


@pytest.mark.parametrize("value", [-0.1, 1.5, 128, float("nan"), "0.5", True])
def test_bad_threshold(value):
    with pytest.raises(UnsupportedOptionError, match="threshold"):
        C.shape_mask(rnd(3, 3), threshold=value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("feather", -1), ("feather", float("inf")), ("feather", "2"), ("grow", 1.5), ("grow", True)],
)
def test_bad_shaping_options(option, value):
    with pytest.raises(UnsupportedOptionError, match=option):
        C.shape_mask(rnd(3, 3), **{option: value})


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 3), np.float32), np.zeros((3, 3, 1), np.uint8), [[0]]]
)
def test_mask_must_be_2d_uint8(bad):
    with pytest.raises(ValueError, match="2-D uint8"):
        C.shape_mask(bad)


def disk_offsets(r: int) -> list[tuple[int, int]]:
    return [
        (dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r
    ]


def shifted(a: np.ndarray, dy: int, dx: int, fill: int) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx], ``fill`` outside."""
    h, w = a.shape
    out = np.full_like(a, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def dilate_ref(a: np.ndarray, r: int) -> np.ndarray:
    return np.max([shifted(a, dy, dx, 0) for dy, dx in disk_offsets(r)], axis=0)


def erode_ref(a: np.ndarray, r: int) -> np.ndarray:
    return np.min([shifted(a, dy, dx, 255) for dy, dx in disk_offsets(r)], axis=0)


def test_grow_a_point_draws_the_lattice_disk():
    mask = np.zeros((7, 7), np.uint8)
    mask[3, 3] = 200
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(C.shape_mask(mask, grow=2), expected * 200)
    np.testing.assert_array_equal(C.shape_mask(mask, grow=1), dilate_ref(mask, 1))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 14), st.integers(1, 14))),
    st.integers(1, 6),
)
def test_grow_and_shrink_equal_the_brute_force_disk(mask, radius):
    np.testing.assert_array_equal(C.shape_mask(mask, grow=radius), dilate_ref(mask, radius))
    np.testing.assert_array_equal(C.shape_mask(mask, grow=-radius), erode_ref(mask, radius))


def test_shrink_does_not_eat_the_frame():
    mask = np.zeros((6, 8), np.uint8)
    mask[2:, :] = 255  # a subject cut by the bottom, left and right edges
    out = C.shape_mask(mask, grow=-1)
    np.testing.assert_array_equal(out[3:], 255)
    np.testing.assert_array_equal(out[:3], 0)


def test_grow_larger_than_the_image():
    mask = np.zeros((3, 4), np.uint8)
    mask[0, 0] = 9
    np.testing.assert_array_equal(C.shape_mask(mask, grow=50), np.full((3, 4), 9))
    np.testing.assert_array_equal(C.shape_mask(mask, grow=-50), np.zeros((3, 4)))


def test_feather_is_a_gaussian_of_that_sigma():
    mask = np.zeros((81, 81), np.uint8)
    mask[40, 40] = 255
    impulse = C.shape_mask(np.full((81, 81), 0, np.uint8) + mask, feather=0)
    np.testing.assert_array_equal(impulse, mask)
    square = np.zeros((81, 81), np.uint8)
    square[30:51, 30:51] = 255
    out = C.shape_mask(square, feather=4).astype(np.float64)
    assert out[40, 40] >= 250 and out[0, 0] == 0
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1)  # symmetric
    assert (np.diff(out[40, 20:41]) >= 0).all()  # rises monotonically across the edge
    step = np.zeros((9, 81), np.uint8)
    step[:, 40:] = 255
    profile = C.shape_mask(step, feather=4)[4].astype(np.float64)
    assert 110 <= profile[40] <= 145  # the old edge is half covered
    # the derivative of a blurred step is the blur kernel: its spread is sigma
    d = np.diff(profile)
    x = np.arange(d.size) + 0.5
    mean = (d * x).sum() / d.sum()
    sigma = np.sqrt((d * (x - mean) ** 2).sum() / d.sum())
    assert 3.6 < sigma < 4.4, sigma


def test_feather_keeps_constant_masks():
    for value in (0, 77, 255):
        mask = np.full((9, 13), value, np.uint8)
        np.testing.assert_array_equal(C.shape_mask(mask, feather=3.5), mask)


def test_invert():
    mask = rnd(4, 5)
    np.testing.assert_array_equal(C.shape_mask(mask, invert=True), 255 - mask)


def test_order_threshold_then_grow_then_feather_then_invert():
    mask = np.zeros((21, 21), np.uint8)
    mask[8:13, 8:13] = 100
    mask[0, 0] = 20  # below the threshold: gone before it can grow
    hard = C.shape_mask(mask, threshold=0.3, grow=2)
    np.testing.assert_array_equal(hard, dilate_ref((mask >= 77).astype(np.uint8) * 255, 2))
    assert hard[0:3, 0:3].max() == 0
    soft = C.shape_mask(mask, threshold=0.3, grow=2, feather=1.5)
    assert soft[10, 10] == 255 and 60 < soft[10, 5] < 200  # the threshold did not undo the feather
    both = C.shape_mask(mask, threshold=0.3, grow=2, feather=1.5, invert=True)
    np.testing.assert_array_equal(both, 255 - soft)  # grow speaks of the subject, then invert


# -- combined alpha and trimming -------------------------------------------------------------------
def test_combined_alpha_is_exact_for_every_pair():
    m, a = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    out = C.combined_alpha(m, a).astype(np.int64)
    expected = np.array(
        [[frac_round(Fraction(int(x) * int(y), 255)) for x in range(256)] for y in range(256)]
    )
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(C.combined_alpha(m, np.full_like(m, 255)), m)
    np.testing.assert_array_equal(C.combined_alpha(m, np.zeros_like(m)), 0)
    assert C.combined_alpha(m) is not m
    with pytest.raises(ValueError, match="differ"):
        C.combined_alpha(m, a[:5])


def test_trim_box():
    alpha = np.zeros((10, 12), np.uint8)
    alpha[3:6, 4:9] = 200
    alpha[1, 1] = C.DEFAULT_TRIM_THRESHOLD - 1  # faint haze: not subject
    assert C.trim_box(alpha) == (4, 3, 9, 6)
    assert C.trim_box(alpha, margin=2) == (2, 1, 11, 8)
    assert C.trim_box(alpha, margin=100) == (0, 0, 12, 10)
    assert C.trim_box(alpha, threshold=1) == (1, 1, 9, 6)
    assert C.trim_box(alpha, threshold=201) is None
    assert C.trim_box(np.zeros((4, 4), np.uint8)) is None
    x0, y0, x1, y1 = C.trim_box(alpha)
    assert (alpha[y0:y1, x0:x1] >= C.DEFAULT_TRIM_THRESHOLD).any(axis=0).all()


@pytest.mark.parametrize(("option", "value"), [("margin", -1), ("margin", 1.5), ("threshold", 0),
                                               ("threshold", 256), ("threshold", True)])  # fmt: skip
def test_bad_trim_options(option, value):
    with pytest.raises(UnsupportedOptionError):
        C.trim_box(rnd(3, 3), **{option: value})


def test_trim_tiny():
    assert C.trim_box(np.full((1, 1), 255, np.uint8)) == (0, 0, 1, 1)
    assert C.trim_box(np.array([[0, 0, 9]], np.uint8), margin=1) == (1, 0, 3, 1)


# -- compose ---------------------------------------------------------------------------------------
FG = np.array([[[10, 20, 30], [200, 100, 0], [255, 255, 255], [0, 0, 0], [1, 2, 3]]], np.uint8)
MASK = np.array([[0, 1, 128, 254, 255]], np.uint8)


def test_transparent_cutout_is_colour_plus_mask():
    out = C.compose(FG, MASK)
    assert out.shape == (1, 5, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0, 0])  # fully transparent: colour cleared
    np.testing.assert_array_equal(out[..., 1:, :3], FG[:, 1:])  # any alpha > 0 keeps the colour
    np.testing.assert_array_equal(out[..., 3], MASK)
    np.testing.assert_array_equal(C.compose(FG, MASK, background="transparent"), out)
    np.testing.assert_array_equal(C.compose(FG, MASK, background=(9, 9, 9, 0)), out)


def test_input_alpha_is_multiplied_in():
    alpha = np.array([[255, 255, 0, 128, 128]], np.uint8)
    out = C.compose(FG, MASK, alpha=alpha)
    expected = [
        frac_round(Fraction(int(m) * int(a), 255)) for m, a in zip(MASK[0], alpha[0], strict=True)
    ]
    assert out[0, :, 3].tolist() == expected
    assert out[0, 2, 3] == 0  # transparent in the input: never revealed


@pytest.mark.parametrize("bg", ["white", (0, 128, 255), "#123456"])
def test_opaque_colour_background(bg):
    out = C.compose(FG, MASK, background=bg)
    assert out.shape == (1, 5, 3)
    r, g, b, _ = C.parse_color(bg)
    for i in range(5):
        a = int(MASK[0, i])
        for c, bgc in enumerate((r, g, b)):
            want = frac_round(Fraction(int(FG[0, i, c]) * a + bgc * (255 - a), 255))
            assert out[0, i, c] == want


def test_translucent_colour_background_is_porter_duff_over():
    bg = (0, 128, 255, 100)
    out = C.compose(FG, MASK, background=bg)
    assert out.shape == (1, 5, 4)
    for i in range(5):
        a = int(MASK[0, i])
        wf, wb = a * 255, bg[3] * (255 - a)
        assert out[0, i, 3] == frac_round(Fraction(wf + wb, 255))
        for c in range(3):
            want = frac_round(Fraction(int(FG[0, i, c]) * wf + bg[c] * wb, wf + wb))
            assert out[0, i, c] == want


def test_image_background_of_the_same_size_is_exact():
    bg = rnd(1, 5, 3)
    out = C.compose(FG, MASK, background=bg)
    ref = C.compose(FG, MASK, background=(0, 0, 0))
    a = MASK[0].astype(np.int64)
    for i in range(5):
        for c in range(3):
            want = frac_round(
                Fraction(int(FG[0, i, c]) * int(a[i]) + int(bg[0, i, c]) * (255 - int(a[i])), 255)
            )
            assert out[0, i, c] == want
    assert out.shape == ref.shape == (1, 5, 3)
    resolved = resolve_background(Image.fromarray(bg))
    np.testing.assert_array_equal(C.compose(FG, MASK, background=resolved), out)


def test_image_background_is_cover_cropped(tmp_path: Path):
    # a 6:1 background, red | green | blue; a square output sees the centre sixth: green only
    bg = np.zeros((40, 240, 3), np.uint8)
    bg[:, :60] = (255, 0, 0)
    bg[:, 60:180] = (0, 255, 0)
    bg[:, 180:] = (0, 0, 255)
    rgb = rnd(10, 10, 3)
    mask = np.zeros((10, 10), np.uint8)
    out = C.compose(rgb, mask, background=bg)
    assert out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out, np.broadcast_to([0, 255, 0], (10, 10, 3)))
    path = tmp_path / "bg.png"
    Image.fromarray(bg).save(path)
    np.testing.assert_array_equal(C.compose(rgb, mask, background=resolve_background(path)), out)


def test_compose_reads_no_files(tmp_path: Path):
    """compose works on arrays only: a path or PIL image is resolved once by the options."""
    path = tmp_path / "bg.png"
    Image.fromarray(rnd(4, 4, 3)).save(path)
    for unresolved in (path, Image.open(path)):
        with pytest.raises(UnsupportedOptionError, match="resolve_background"):
            C.compose(FG, MASK, background=unresolved)


def test_image_background_with_alpha_gives_rgba():
    bg = np.zeros((4, 4, 4), np.uint8)
    bg[..., 2] = 255
    bg[..., 3] = 128
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 255
    out = C.compose(rnd(4, 4, 3), mask, background=bg)
    assert out.shape == (4, 4, 4)
    assert out[0, 0, 3] == 255 and out[1, 1, 3] == 128
    assert out[1, 1, :3].tolist() == [0, 0, 255]


@pytest.mark.parametrize("bad", [5, 2.5, object(), {"r": 1}, "not-a-colour"])
def test_bad_background(bad):
    with pytest.raises(UnsupportedOptionError):
        C.compose(FG, MASK, background=bad)


def test_compose_validates_shapes():
    with pytest.raises(ValueError, match="HxWx3"):
        C.compose(rnd(2, 5, 3), MASK)
    with pytest.raises(ValueError, match="2-D uint8"):
        C.compose(FG, MASK.astype(np.float32))


def test_compose_does_not_touch_its_inputs():
    rgb, mask, alpha = rnd(20, 30, 3), rnd(20, 30), rnd(20, 30)
    copies = rgb.copy(), mask.copy(), alpha.copy()
    for bg in (None, "white", (1, 2, 3, 4), rnd(5, 5, 3)):
        for refine in (False, True):
            out = C.compose(rgb, mask, alpha=alpha, background=bg, refine_foreground=refine)
            assert not np.shares_memory(out, rgb)
    for a, b in zip((rgb, mask, alpha), copies, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (7, 1), (2, 2)])
def test_tiny_compose_and_refine(hw):
    rgb, mask = rnd(*hw, 3), rnd(*hw)
    for refine in (False, True):
        assert C.compose(rgb, mask, refine_foreground=refine).shape == (*hw, 4)
        assert C.compose(rgb, mask, background="red", refine_foreground=refine).shape == (*hw, 3)
    assert D.estimate_foreground(rgb, mask).shape == (*hw, 3)


# -- foreground estimation -------------------------------------------------------------------------
def box_ref(x: np.ndarray, size: int) -> np.ndarray:
    """Reference box sums with truncated windows: 2-D integral image in float64."""
    h, w = x.shape[:2]
    integral = np.zeros((h + 1, w + 1, *x.shape[2:]))
    integral[1:, 1:] = x.cumsum(0).cumsum(1)
    before, after = size // 2, size - 1 - size // 2
    y = np.arange(h)
    xs = np.arange(w)
    y0, y1 = np.maximum(y - before, 0), np.minimum(y + after + 1, h)
    x0, x1 = np.maximum(xs - before, 0), np.minimum(xs + after + 1, w)
    return integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0]


def blur_fusion_ref(image: np.ndarray, alpha: np.ndarray, sizes=(90, 6)) -> np.ndarray:
    """Forte & Pitie's two-pass estimator, written directly in [0, 1] float64 from the paper."""
    img = image / 255.0
    a = (alpha / 255.0)[..., None]
    fg, bg = img, img
    ones = np.ones_like(a)
    for size in sizes:
        n = box_ref(ones, size)
        mean_a = box_ref(a, size) / n
        f_mean = box_ref(fg * a, size) / n / (mean_a + 1e-5)
        b_mean = box_ref(bg * (1 - a), size) / n / (1 - mean_a + 1e-5)
        fg = np.clip(f_mean + a * (img - a * f_mean - (1 - a) * b_mean), 0, 1)
        bg = b_mean
    return np.rint(fg * 255).astype(np.uint8)


def multilevel_ref(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The multi-level estimator written directly, whole image, in float64 and [0, 1]: on each
    level of the pyramid (pymatting's sizes and nearest-neighbour resampling), every pixel solves
    Germer et al.'s 2x2 system for (F, B) from its four clamped neighbours' previous values."""
    h0, w0 = alpha.shape
    img0, a0 = image / 255.0, alpha / 255.0
    k = -(-max(h0, w0) // 1024)  # the starting colours are taken on this grid
    sa, si = alpha[::k, ::k], image[::k, ::k]
    f = np.zeros((1, 1, 3)) + si[sa >= 230].sum(0) / 255.0 / ((sa >= 230).sum() + 1e-5)
    b = np.zeros((1, 1, 3)) + si[sa <= 25].sum(0) / 255.0 / ((sa <= 25).sum() + 1e-5)
    n_levels = math.ceil(math.log2(max(h0, w0)))
    for i in range(n_levels + 1):
        h = round(h0 ** (i / n_levels)) if n_levels else h0
        w = round(w0 ** (i / n_levels)) if n_levels else w0
        ys, xs = np.arange(h) * h0 // h, np.arange(w) * w0 // w
        img, a = img0[ys][:, xs], a0[ys][:, xs]
        py, px = np.arange(h) * f.shape[0] // h, np.arange(w) * f.shape[1] // w
        f, b = f[py][:, px], b[py][:, px]
        n_iter = 10 if h <= 32 and w <= 32 else 2 if i == n_levels else 6
        pad = np.pad(a, 1, mode="edge")
        shifts = [(1, 0), (1, 2), (0, 1), (2, 1)]  # left, right, up, down in the padded arrays
        da = [1e-5 + np.abs(a - pad[y : y + h, x : x + w]) for y, x in shifts]
        a00 = a * a + sum(da)
        a11 = (1 - a) ** 2 + sum(da)
        a01 = a * (1 - a)
        det = a00 * a11 - a01 * a01
        for _ in range(n_iter):
            fp = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
            bp = np.pad(b, ((1, 1), (1, 1), (0, 0)), mode="edge")
            b0 = a[..., None] * img
            b1 = (1 - a)[..., None] * img
            for d, (y, x) in zip(da, shifts, strict=True):
                b0 = b0 + d[..., None] * fp[y : y + h, x : x + w]
                b1 = b1 + d[..., None] * bp[y : y + h, x : x + w]
            f = np.clip((a11[..., None] * b0 - a01[..., None] * b1) / det[..., None], 0, 1)
            b = np.clip((a00[..., None] * b1 - a01[..., None] * b0) / det[..., None], 0, 1)
    out = np.rint(f * 255).astype(np.uint8)
    out[alpha == 255] = image[alpha == 255]
    return out


@pytest.mark.parametrize("hw", [(37, 53), (64, 33), (1, 1), (1, 7), (7, 1), (2, 2), (130, 90)])
def test_multilevel_matches_the_reference_and_is_the_same_whatever_the_bands(hw):
    image, alpha = rnd(*hw, 3), rnd(*hw)
    alpha[: hw[0] // 5] = 255
    alpha[hw[0] // 2 :, : hw[1] // 3] = 0
    out = D.estimate_foreground(image, alpha)
    ref = multilevel_ref(image, alpha)
    assert np.abs(out.astype(int) - ref).max() <= 1  # float32 against float64
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])
    for band_rows in (1, 3, 7, 1000):  # bands and tiles only change which halo is recomputed
        np.testing.assert_array_equal(D.estimate_foreground(image, alpha, band_rows=band_rows), out)


def test_multilevel_tiles_do_not_change_the_result(monkeypatch):
    image, alpha = rnd(70, 300, 3), rnd(70, 300)
    whole = D.estimate_foreground(image, alpha)
    monkeypatch.setattr(D, "_ML_TILE_PIXELS", 200)  # tiles of a few columns
    np.testing.assert_array_equal(D.estimate_foreground(image, alpha, band_rows=5), whole)


@pytest.mark.parametrize("band_rows", [None, 1, 7, 64])
@pytest.mark.parametrize("sizes", [(90, 6), (5,), (4, 3, 2), (1,)])
def test_blur_fusion_matches_the_reference_whatever_the_bands(sizes, band_rows):
    image, alpha = rnd(37, 53, 3), rnd(37, 53)
    alpha[5:9] = 255
    alpha[20:25, 10:20] = 0
    out = D.estimate_foreground(image, alpha, sizes=sizes, band_rows=band_rows)
    ref = blur_fusion_ref(image, alpha, sizes)
    assert np.abs(out.astype(int) - ref).max() <= 1
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])


@pytest.mark.parametrize("sizes", [None, (90, 6)], ids=["multilevel", "blur-fusion"])
def test_estimate_is_exact_where_opaque_and_extends_the_subject_where_transparent(sizes):
    image = rnd(40, 40, 3)
    image[:, :20] = (200, 100, 50)
    alpha = np.zeros((40, 40), np.uint8)
    alpha[:, :20] = 255
    out = D.estimate_foreground(image, alpha, sizes=sizes)
    np.testing.assert_array_equal(out[:, :20], image[:, :20])
    # a = 0 next to the subject: the subject's colour (invisible, but resampling stays clean)
    np.testing.assert_array_equal(out[:, 20:23], np.broadcast_to([200, 100, 50], (40, 3, 3)))


def test_estimate_of_a_constant_alpha():
    image = rnd(30, 40, 3)
    np.testing.assert_array_equal(
        D.estimate_foreground(image, np.full((30, 40), 255, np.uint8)), image
    )
    # nothing is subject: the estimate is black (no colour has a > 0.9), and invisible anyway
    empty = D.estimate_foreground(image, np.zeros((30, 40), np.uint8))
    np.testing.assert_array_equal(empty, np.zeros_like(image))


def silhouette(h: int, w: int, ramp: float = 12, strands: float = 30) -> np.ndarray:
    """Known soft alpha in [0, 1]: a disc with a ``ramp`` px edge and radial strands (hair)
    ``strands`` px long."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r0 = 0.3 * min(h, w)
    r = np.hypot(xx - w / 2, yy - h / 2)
    a = np.clip((r0 - r) / ramp + 0.5, 0, 1)
    theta = np.arctan2(yy - h / 2, xx - w / 2)
    hair = (0.5 + 0.5 * np.sin(theta * 60)) ** 3 * np.clip(1 - (r - r0) / strands, 0, 1)
    return np.where(r > r0, np.maximum(a, 0.9 * hair), a)


def edge_errors(
    background: tuple[float, float, float], sizes=None, h=240, w=320, ramp=12.0, strands=30.0
) -> dict[str, float]:
    """I = a F + (1 - a) B with a known skin-like F, a known a and a contrasting B: the mean
    colour error on the soft pixels (0.05 < a < 0.95) before and after the estimate, and the same
    for what shows once the cutout is laid over a new (grey) background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    fg = np.stack([225 + 0 * xx, 170 + 20 * yy / h, 130 + 10 * np.sin(xx / 40)], -1)
    a8 = np.rint(silhouette(h, w, ramp, strands) * 255).astype(np.uint8)
    af = a8[..., None] / 255.0
    image = np.rint(af * fg + (1 - af) * np.array(background)).astype(np.uint8)
    soft = (a8 > 0.05 * 255) & (a8 < 0.95 * 255)
    assert soft.sum() > 5000
    est = D.estimate_foreground(image, a8, sizes=sizes)
    new = np.array([128.0, 128.0, 128.0])
    truth = af * fg + (1 - af) * new
    # and through compose(): refine_foreground uses exactly the default estimate
    if sizes is None:
        visible = (a8 > 0)[..., None]  # compose() clears the colour where alpha is 0
        np.testing.assert_array_equal(
            C.compose(image, a8, refine_foreground=True)[..., :3], est * visible
        )
    return {
        "before": np.abs(image[soft] - fg[soft]).mean(),
        "after": np.abs(est[soft] - fg[soft]).mean(),
        "worst": np.abs(est[soft] - fg[soft]).max(),
        "seen_before": np.abs(af * image + (1 - af) * new - truth)[soft].mean(),
        "seen_after": np.abs(af * est + (1 - af) * new - truth)[soft].mean(),
    }


BACKGROUNDS = pytest.mark.parametrize(
    "background",
    [(20.0, 60.0, 230.0), (30.0, 200.0, 40.0), (250.0, 250.0, 250.0)],
    ids=["blue", "green", "white"],
)


@BACKGROUNDS
def test_decontamination_cuts_the_edge_colour_error(background):
    """The default estimate is 40 times closer to F than I is on the soft pixels (measured: 61x
    to 123x, from 44-87 grey levels to 0.7), and so is what shows over a new background."""
    e = edge_errors(background)
    assert e["before"] > 40
    assert e["after"] < 1.0, e
    assert e["after"] < e["before"] / 40, e
    assert e["worst"] <= 10, e  # measured: 8.2 at the very tips of the strands
    assert e["seen_after"] < e["seen_before"] / 40, e  # measured: 67x to 136x


@BACKGROUNDS
def test_decontamination_does_not_depend_on_the_edge_width(background):
    """Soft edges four times wider (a 48 px ramp, 120 px strands, like a 1024-px mask upsampled to
    12 MP): the default estimate stays within 1.5 grey levels (measured: 1.2, 39x to 77x less than
    the image), where blur-fusion's (90, 6) boxes, not much wider than the edges, leave 1/1.5."""
    wide = {"h": 480, "w": 640, "ramp": 48.0, "strands": 120.0}
    e = edge_errors(background, **wide)
    assert e["after"] < 1.5, e
    assert e["after"] < e["before"] / 30, e
    blur = edge_errors(background, sizes=(90, 6), **wide)
    assert blur["after"] > e["before"] / 4, blur


@BACKGROUNDS
def test_blur_fusion_cuts_the_edge_colour_error(background):
    e = edge_errors(background, sizes=(90, 6))
    assert e["after"] < e["before"] / 4, e  # measured: 5.1x to 5.7x
    assert e["seen_after"] < e["seen_before"] / 4, e  # measured: 5.0x to 5.5x


@pytest.mark.parametrize(("h", "w"), [(400, 1000), (1200, 1000), (60, 3000)])
def test_multilevel_memory_does_not_grow_with_the_height(h, w):
    image, alpha = rnd(h, w, 3), rnd(h, w)
    tracemalloc.start()
    out = D.estimate_foreground(image, alpha)
    peak = tracemalloc.get_traced_memory()[1] - out.nbytes
    tracemalloc.stop()
    # the documented bound: 2 MiB + 8 KiB per column (measured: 1.5 MiB + 7 KB per column); a
    # whole-image float32 working set would be ~100 bytes per pixel
    assert peak <= 2 * 2**20 + 8 * 2**10 * w, peak


def test_blur_fusion_stays_within_its_memory_bound(monkeypatch):
    monkeypatch.setattr(D, "FOREGROUND_BAND_BYTES", 8 * 2**20)
    h, w = 400, 1000
    image, alpha = rnd(h, w, 3), rnd(h, w)
    tracemalloc.start()
    out = D.estimate_foreground(image, alpha, sizes=(90, 6))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the result, plus one band within the (patched) budget; a whole-image float32 working set
    # would be ~90 bytes per pixel = 34 MiB here
    assert peak - out.nbytes <= 8 * 2**20, peak
    whole = D.estimate_foreground(image, alpha, sizes=(90, 6), band_rows=h)  # one band
    assert np.abs(out.astype(int) - whole).max() <= 1  # float rounding may differ


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sizes": ()}, UnsupportedOptionError),
        ({"sizes": (0,)}, UnsupportedOptionError),
        ({"sizes": (9.5,)}, UnsupportedOptionError),
        ({"sizes": []}, UnsupportedOptionError),
        ({"band_rows": 0}, UnsupportedOptionError),
        ({"band_rows": 2.0}, UnsupportedOptionError),
        ({"band_rows": True}, UnsupportedOptionError),
        ({"sizes": (90, 6), "band_rows": 0}, UnsupportedOptionError),
    ],
)
def test_estimate_bad_options(kwargs, error):
    with pytest.raises(error):
        D.estimate_foreground(rnd(4, 4, 3), rnd(4, 4), **kwargs)


def test_estimate_validates_shapes():
    with pytest.raises(ValueError, match="HxWx3"):
        D.estimate_foreground(rnd(4, 5, 3), rnd(4, 4))


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (7, 1), (3, 5), (299, 977), (1001, 4001), (2, 300_001)]
)
def test_rgba_assembly_matches_the_plain_definition(shape):
    """The cutout's RGBA is assembled 4 bytes at a time on threads (compose._rgba): equal to
    the plain definition for every shape, the last pixel and strided inputs included."""
    rng = np.random.default_rng(sum(shape))
    fg = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = (rng.integers(0, 3, shape, dtype=np.uint8) * 127).astype(np.uint8)
    expected = np.concatenate([fg * (alpha != 0)[..., None], alpha[..., None]], axis=2)
    np.testing.assert_array_equal(C.compose(fg, alpha), expected)
    flipped = C.compose(fg[:, ::-1], alpha[:, ::-1])  # non-contiguous inputs
    np.testing.assert_array_equal(flipped, expected[:, ::-1])
