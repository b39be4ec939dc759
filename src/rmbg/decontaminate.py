"""Edge decontamination: estimate the foreground colour at soft edges.

``rgb = a F + (1 - a) B``: where the mask is soft (hair, fur, motion blur) a pixel mixes the
subject's colour ``F`` with the old background's ``B``, which then bleeds into a cutout placed on
a new background. :func:`estimate_foreground` recovers ``F`` (``refine_foreground=True``).
Pure numpy on uint8 arrays; never writes into its inputs.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import NDArray

from ._validate import check_mask, is_int
from .errors import UnsupportedOptionError

__all__ = ["FOREGROUND_BAND_BYTES", "estimate_foreground"]

logger = logging.getLogger("rmbg")

#: Working-memory budget of :func:`estimate_foreground`'s blur-fusion (``sizes=``), in bytes,
#: besides its ``HxWx3`` output: the image is processed in horizontal bands sized to fit. (The
#: default multi-level estimator needs far less: see its docstring.)
FOREGROUND_BAND_BYTES: int = 96 * 2**20

# Bytes per pixel of a band's input rows that estimate_foreground keeps alive at its peak
# (measured with tracemalloc, 73-78 B at 4000 px wide, plus a margin); sizes the bands.
_BAND_BYTES_PER_PIXEL = 85
_MIN_BAND_ROWS = 32


def estimate_foreground(
    rgb: NDArray[np.uint8],
    alpha: NDArray[np.uint8],
    *,
    sizes: tuple[int, ...] | None = None,
    band_rows: int | None = None,
) -> NDArray[np.uint8]:
    """Estimate the foreground colour ``F`` of ``rgb = a*F + (1-a)*B`` (edge decontamination).

    By default, the multi-level estimator of Germer, Uelwer, Conrad and Harmeling (2020, "Fast
    multi-level foreground estimation"; pymatting's ``estimate_foreground_ml``). It minimises, for
    ``F`` and ``B`` together,

    ``sum (a F + (1-a) B - I)² + sum over neighbours (ε + |∇a|) (|∇F|² + |∇B|²)``, ``ε = 1e-5``,

    coarse to fine on a pyramid from 1x1 to the full size (``ceil(log2(max(H, W)))`` levels, each
    about twice the previous one, nearest-neighbour resampling, starting from the mean colours
    where ``a > 0.9`` and ``a < 0.1``): 10 iterations on the levels up to 32x32, 6 on the levels in
    between, 2 on the full-size one. An iteration solves every pixel's 2x2 system from its four
    neighbours' previous values (Jacobi, like the authors' GPU kernels; their CPU code sweeps in
    place, which converges faster -- hence 6 iterations where pymatting does 2). In closed form it
    is blur-fusion's correction with ``M`` the neighbours' weighted mean: ``F = M_F + a·t·e``,
    ``B = M_B + (1-a)·t·e``, ``e = I - a·M_F - (1-a)·M_B``, ``t = 1 / (a² + (1-a)² + Σw)``, clipped
    to the colour range. The coarse levels carry colours across wide soft edges, the fine ones
    follow the alpha's detail: unlike a box filter, it needs no size matched to the edge width.

    Accuracy (``benchmarks/decontamination.py``: composites ``I = a F + (1-a) B`` with a known
    ``F`` and soft edges up to 85 px wide at 800x600; mean error of ``F`` on the pixels with
    ``0.05 < a < 0.95``, in grey levels): smooth foregrounds go from 62-138 as the image is to
    0.03-0.24; a textured foreground from 78 to 7.8; a busy background from 40 to 9.0; a photograph
    over another from 42 and 54 to 15 and 27 -- as good as or better than pymatting's original on
    every scene. Blur-fusion ``(90, 6)`` leaves 1.4-2.3x less than the image, ``(270, 6)``
    1.3-7.9x. At 12 megapixels, with a 100 px ramp and 240 px strands: 79.5 -> 0.19 (``(90, 6)``:
    61.8).

    Time and memory: linear in the pixels, about 1.7-2.1 s for 12 megapixels on one core of a
    shared 2-core AMD EPYC with AVX-512 (blur-fusion ``(90, 6)``: 1.9-2.9 s). Each level is computed
    in bands of ``band_rows`` rows (plus a halo of one row per iteration on each side), each band in
    cache-sized tiles, and reads only the rows of the next coarser level that it needs: besides the
    ``HxWx3`` uint8 result, memory stays below 2 MiB plus 8 KiB per column, whatever the height --
    27 MiB for a 4000-pixel-wide image (blur-fusion: 84 MiB; pymatting: over 1 GiB). Bands and
    tiles only decide which halo is recomputed: the result is the same bit for bit.

    With ``sizes``, blur-fusion instead (Forte & Pitie 2021, "Approximate fast foreground colour
    estimation"): each pass takes local means of the foreground and the background weighted by
    ``a`` and ``1 - a`` over a box of that full width, ``F̄ = box(F·a) / (box(a) + ε)``,
    ``B̄ = box(B·(1-a)) / (box(1-a) + ε)``, and corrects them by the compositing equation,
    ``F = clip(F̄ + a·(I - a·F̄ - (1-a)·B̄))``; the first pass starts from ``F = B = I``, the next
    ones from the previous ``F`` and ``B̄``; boxes are truncated at the image border. It needs a
    first box several times wider than the soft edges, and its bands (within
    :data:`FOREGROUND_BAND_BYTES`) re-read ``sum(sizes) - len(sizes)`` rows of context each, so a
    wide first box costs time in proportion.

    Pixels with ``a = 255`` keep their colour exactly. Pixels with ``a = 0`` are invisible; the
    estimate extends the nearby subject's colour into them, which keeps a later resampling of the
    cutout from pulling in the old background.

    Args:
        rgb: ``HxWx3`` uint8 image.
        alpha: ``HxW`` uint8 alpha (the cutout's).
        sizes: ``None`` (default) for the multi-level estimator; else blur-fusion with these box
            widths in pixels, one pass each (the paper's ``(90, 6)``).
        band_rows: Output rows per band (default: 64 for the multi-level estimator; for
            blur-fusion, as many as fit :data:`FOREGROUND_BAND_BYTES`).

    Returns:
        ``HxWx3`` uint8 foreground colours.

    Raises:
        UnsupportedOptionError: Bad ``sizes`` or ``band_rows``.
        ValueError: ``rgb`` and ``alpha`` are not ``HxWx3`` and ``HxW`` uint8 arrays of one size.
    """
    check_mask(alpha, "alpha")
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != (*alpha.shape, 3):
        raise ValueError(f"rgb must be HxWx3 uint8 matching alpha {alpha.shape}, got {rgb.shape}")
    if sizes is not None and (not sizes or any(not is_int(k) or k < 1 for k in sizes)):
        raise UnsupportedOptionError(f"sizes must be positive ints or None, not {sizes!r}")
    if band_rows is not None and (not is_int(band_rows) or band_rows < 1):
        raise UnsupportedOptionError(f"band_rows must be an int >= 1 or None, not {band_rows!r}")
    if sizes is None:
        return _multilevel(rgb, alpha, band_rows or _ML_BAND_ROWS)
    return _blur_fusion(rgb, alpha, tuple(int(k) for k in sizes), band_rows)


# Multi-level estimator. Regularisation and the small levels' iterations are pymatting's
# defaults; its larger levels get 2 in-place sweeps. Jacobi sweeps converge more slowly: 6 on the
# levels between 32x32 and the full size make the estimate better than pymatting's on every scene of
# benchmarks/decontamination.py, while the full-size level gains nothing measurable beyond 2.
_ML_REGULARIZATION = 1e-5
_ML_SMALL_ITERATIONS = 10  # levels up to _ML_SMALL_SIZE on both sides
_ML_SMALL_SIZE = 32
_ML_ITERATIONS = 6  # the levels in between
_ML_FULL_SIZE_ITERATIONS = 2
_ML_BAND_ROWS = 64
# Pixels per tile (halo included): a tile's ~35 float32 planes stay within a core's L2 cache.
_ML_TILE_PIXELS = 8192


def _multilevel(rgb: NDArray[np.uint8], alpha: NDArray[np.uint8], rows: int) -> NDArray[np.uint8]:
    height, width = alpha.shape
    n_levels = math.ceil(math.log2(max(height, width)))
    means = _mean_colors(rgb, alpha)
    level: _Level | None = None
    for i in range(n_levels + 1):
        h = round(height ** (i / n_levels)) if n_levels else height
        w = round(width ** (i / n_levels)) if n_levels else width
        if h <= _ML_SMALL_SIZE and w <= _ML_SMALL_SIZE:
            n_iter = _ML_SMALL_ITERATIONS
        else:
            n_iter = _ML_FULL_SIZE_ITERATIONS if i == n_levels else _ML_ITERATIONS
        level = _Level(rgb, alpha, (h, w), n_iter, level, rows, means)
    assert level is not None
    out = np.empty((height, width, 3), np.uint8)
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        fg = level.band(y0, y1, planes=3)
        np.rint(fg, out=fg)
        out[y0:y1] = fg.astype(np.uint8).transpose(1, 2, 0)  # 0..255 after the clip: exact
        opaque = (alpha[y0:y1] == 255)[:, :, None]
        np.copyto(out[y0:y1], rgb[y0:y1], where=opaque)  # exactly the input where a = 1
    return out


def _mean_colors(rgb: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The starting ``F`` and ``B``, as in pymatting: the mean colours where ``a > 0.9`` and where
    ``a < 0.1``, ``(F_r, F_g, F_b, B_r, B_g, B_b)`` -- taken on every ``k``-th row and column,
    ``k = ceil(max(H, W) / 1024)`` (a starting point only: the coarsest levels' 10 iterations
    move on from it)."""
    k = -(-max(alpha.shape) // 1024)
    a, image = alpha[::k, ::k], rgb[::k, ::k]
    means = np.zeros(6, np.float64)
    for i, where in enumerate((a >= 230, a <= 25)):  # a8 / 255 > 0.9 and a8 / 255 < 0.1
        total = image[where].sum(axis=0, dtype=np.int64)
        means[3 * i : 3 * i + 3] = total / (np.count_nonzero(where) + 1e-5)
    return means.astype(np.float32)


class _Level:
    """One pyramid level of the multi-level estimator, computed band by band on demand.

    :meth:`band` computes rows ``[y0, y1)`` of ``(F, B)`` from scratch: from the rows of the
    coarser level it needs (nearest-neighbour, as pymatting resizes) and ``n_iter`` rows of halo on
    each side (each Jacobi iteration invalidates one), tile by tile. :meth:`rows` serves a finer
    level's requests, which only move down the image, from a buffer of the rows computed last.
    """

    def __init__(
        self,
        rgb: NDArray[np.uint8],
        alpha: NDArray[np.uint8],
        shape: tuple[int, int],
        n_iter: int,
        coarser: _Level | None,
        rows: int,
        means: NDArray[np.float32],
    ) -> None:
        self.rgb, self.alpha = rgb, alpha
        self.h, self.w = shape
        self.n_iter, self.coarser, self.step, self.means = n_iter, coarser, rows, means
        height, width = alpha.shape
        # the image column (and coarser-level column) that each column of this level samples
        self._cols = np.arange(self.w) * width // self.w
        self._identity = (self.h, self.w) == (height, width)
        self._coarse_cols = None if coarser is None else np.arange(self.w) * coarser.w // self.w
        self._buf: NDArray[np.float32] = np.empty((6, 0, self.w), np.float32)
        self._top = 0  # row of this level held in self._buf[:, 0]

    def rows(self, y0: int, y1: int) -> NDArray[np.float32]:
        """Rows ``[y0, y1)`` of ``(F, B)``, ``(6, y1 - y0, w)``; ``y0`` and ``y1`` never decrease."""
        end = self._top + self._buf.shape[1]
        if y0 >= end:
            self._buf, self._top, end = self._buf[:, :0], y0, y0
        elif y0 > self._top:
            self._buf, self._top = self._buf[:, y0 - self._top :], y0
        if end < y1:
            parts = [self._buf]
            while end < y1:
                stop = min(self.h, max(y1, end + self.step))
                parts.append(self.band(end, stop))
                end = stop
            self._buf = np.concatenate(parts, axis=1)
        return self._buf[:, y0 - self._top : y1 - self._top]

    def band(self, y0: int, y1: int, planes: int = 6) -> NDArray[np.float32]:
        """Rows ``[y0, y1)`` of ``(F, B)`` (or of ``F`` only, ``planes=3``), C-contiguous."""
        h, w, n = self.h, self.w, self.n_iter
        height = self.alpha.shape[0]
        rr = np.clip(np.arange(y0 - n, y1 + n), 0, h - 1)  # halo rows, clamped to the image
        image_rows = rr * height // h
        # this band's rows at this level's resolution, whole width: alpha, image (planar), F and B
        if self._identity:
            a8, rgb = self.alpha[image_rows], self.rgb[image_rows]
        else:
            a8 = np.take(self.alpha[image_rows], self._cols, axis=1)
            rgb = np.take(self.rgb[image_rows], self._cols, axis=1)
        alpha = a8.astype(np.float32)
        alpha *= np.float32(1 / 255)
        image = np.empty((3, rr.size, w), np.float32)
        image[...] = np.moveaxis(rgb, 2, 0)
        if self.coarser is None or self._coarse_cols is None:
            fb = np.empty((6, rr.size, w), np.float32)
            fb[...] = self.means[:, None, None]
        else:
            cy = rr * self.coarser.h // h
            coarse = self.coarser.rows(int(cy[0]), int(cy[-1]) + 1)
            fb = np.take(np.take(coarse, cy - cy[0], axis=1), self._coarse_cols, axis=2)
        del a8, rgb
        out = np.empty((planes, y1 - y0, w), np.float32)
        rows = (max(0, n - y0), max(0, y1 + n - h))  # halo rows outside the image
        tile = max(8, _ML_TILE_PIXELS // rr.size - 2 * n)
        for x0 in range(0, w, tile):
            x1 = min(w, x0 + tile)
            lo, hi = max(0, x0 - n), min(w, x1 + n)
            cols = (lo - (x0 - n), (x1 + n) - hi)  # halo columns outside the image
            if cols == (0, 0):  # a slice; the tile's F and B are updated in place: a copy
                t_fb, t_a, t_image = fb[:, :, lo:hi].copy(), alpha[:, lo:hi], image[:, :, lo:hi]
            else:
                cc = np.clip(np.arange(x0 - n, x1 + n), 0, w - 1)
                t_fb, t_a, t_image = fb[:, :, cc], alpha[:, cc], image[:, :, cc]
            _jacobi(t_fb, t_a, t_image, n, (*rows, *cols))
            out[:, :, x0:x1] = t_fb[:planes, n : n + y1 - y0, n : n + x1 - x0]
        return out


def _jacobi(
    fb: NDArray[np.float32],
    a: NDArray[np.float32],
    image: NDArray[np.float32],
    n_iter: int,
    edges: tuple[int, int, int, int],
) -> None:
    """``n_iter`` Jacobi iterations of the multi-level estimator on a tile, in place.

    ``fb`` is ``(6, R, C)`` (``F`` then ``B``, 0..255), ``a`` ``(R, C)`` in [0, 1], ``image``
    ``(3, R, C)``. The outermost rows and columns are read, never updated, so each iteration
    leaves one more ring of the tile stale: after ``n_iter`` only the tile minus ``n_iter`` pixels
    on each side is exact. ``edges`` counts the rows (top, bottom) and columns (left, right) that
    lie outside the image, clamped copies of its border: they are refreshed after every iteration,
    which makes a border pixel its own neighbour, as pymatting's clamped indices do.
    """
    reg = np.float32(_ML_REGULARIZATION)
    dh = np.abs(a[:, 1:] - a[:, :-1])
    dh += reg  # weight of each horizontal pair, (R, C-1)
    dv = np.abs(a[1:, 1:-1] - a[:-1, 1:-1])
    dv += reg  # weight of each vertical pair, (R-1, C-2)
    wl, wr, wu, wd = dh[1:-1, :-1], dh[1:-1, 1:], dv[:-1], dv[1:]
    total = wl + wr
    total += wu
    total += wd
    inv = np.float32(1) / total  # neighbour weights normalised to sum to 1: M is a mean
    wl, wr, wu, wd = wl * inv, wr * inv, wu * inv, wd * inv
    ai = a[1:-1, 1:-1]
    bi = np.float32(1) - ai
    t = ai * ai
    t += bi * bi
    t += total
    np.divide(np.float32(1), t, out=t)
    at, bt = ai * t, bi * t
    del dh, dv, total, inv, t
    img = image[:, 1:-1, 1:-1]
    mean = np.empty((6, *ai.shape), np.float32)
    tmp = np.empty_like(mean)
    err = np.empty((3, *ai.shape), np.float32)
    inner = fb[:, 1:-1, 1:-1]
    top, bottom, left, right = edges
    rows, cols = fb.shape[1], fb.shape[2]
    for _ in range(n_iter):
        np.multiply(wl, fb[:, 1:-1, :-2], out=mean)
        np.multiply(wr, fb[:, 1:-1, 2:], out=tmp)
        mean += tmp
        np.multiply(wu, fb[:, :-2, 1:-1], out=tmp)
        mean += tmp
        np.multiply(wd, fb[:, 2:, 1:-1], out=tmp)
        mean += tmp
        # e = I - a M_F - (1 - a) M_B;  F = M_F + a t e;  B = M_B + (1 - a) t e
        np.multiply(ai, mean[:3], out=err)
        np.subtract(img, err, out=err)
        np.multiply(bi, mean[3:], out=tmp[:3])
        err -= tmp[:3]
        np.multiply(at, err, out=inner[:3])
        inner[:3] += mean[:3]
        np.multiply(bt, err, out=inner[3:])
        inner[3:] += mean[3:]
        np.clip(inner, np.float32(0), np.float32(255), out=inner)
        if top:
            fb[:, :top] = fb[:, top : top + 1]
        if bottom:
            fb[:, rows - bottom :] = fb[:, rows - bottom - 1 : rows - bottom]
        if left:
            fb[:, :, :left] = fb[:, :, left : left + 1]
        if right:
            fb[:, :, cols - right :] = fb[:, :, cols - right - 1 : cols - right]


def _blur_fusion(
    rgb: NDArray[np.uint8],
    alpha: NDArray[np.uint8],
    sizes: tuple[int, ...],
    band_rows: int | None,
) -> NDArray[np.uint8]:
    height, width = alpha.shape
    halo = sum(k - 1 for k in sizes[1:])  # extra rows the first pass needs for the later ones
    if band_rows is None:
        fit = FOREGROUND_BAND_BYTES // (_BAND_BYTES_PER_PIXEL * width) - halo - (sizes[0] - 1)
        band_rows = max(_MIN_BAND_ROWS, int(fit))
    out = np.empty((height, width, 3), np.uint8)
    for y0 in range(0, height, band_rows):
        y1 = min(height, y0 + band_rows)
        out[y0:y1] = _foreground_band(rgb, alpha, y0, y1, sizes)
    return out


def _halves(size: int) -> tuple[int, int]:
    """Pixels before and after the centre in a box of ``size`` (OpenCV's anchor for even sizes)."""
    return size // 2, size - 1 - size // 2


def _foreground_band(
    rgb: NDArray[np.uint8],
    alpha: NDArray[np.uint8],
    y0: int,
    y1: int,
    sizes: tuple[int, ...],
) -> NDArray[np.uint8]:
    """Rows ``[y0, y1)`` of the estimate; works on planar float32 ``(C, rows, W)`` arrays."""
    height, width = alpha.shape
    spans: list[tuple[int, int]] = []  # image rows each pass computes
    lo, hi = y0, y1
    for size in reversed(sizes):
        spans.append((lo, hi))
        before, after = _halves(size)
        lo, hi = max(0, lo - before), min(height, hi + after)
    spans.reverse()
    top = lo  # image row of the first row of `a`, `fg`, `bg`
    image = np.moveaxis(rgb[lo:hi], 2, 0).astype(np.float32)  # (3, R, W), 0..255
    a = alpha[lo:hi].astype(np.float32)
    a *= np.float32(1 / 255)
    fg = image  # F and B of the first pass
    bg = image
    for size, (p0, p1) in zip(sizes, spans, strict=True):
        rows = slice(p0 - top, p1 - top)
        ai = a[rows]
        count = _box_count(size, p0, p1, height)[:, None] * _box_count(size, 0, width, width)
        eps = count * np.float32(1e-5)
        a_sum = _box_sum(a, size, rows)
        f_den = a_sum + eps  # box(a) + eps, in pixel units
        b_den = count - a_sum
        b_den += eps  # box(1 - a) + eps
        del a_sum, count, eps
        one_minus_a = np.float32(1) - a
        f_mean = np.empty((3, p1 - p0, width), np.float32)
        b_mean = np.empty((3, p1 - p0, width), np.float32)
        for c in range(3):
            np.divide(_box_sum(fg[c] * a, size, rows), f_den, out=f_mean[c])
            np.divide(_box_sum(bg[c] * one_minus_a, size, rows), b_den, out=b_mean[c])
        del f_den, b_den, one_minus_a
        # F = F̄ + a (I - a F̄ - (1 - a) B̄), clipped to the colour range
        est = image[:, p0 - lo : p1 - lo] - ai * f_mean
        est -= (np.float32(1) - ai) * b_mean
        est *= ai
        est += f_mean
        np.clip(est, 0, 255, out=est)
        fg, bg, a, top = est, b_mean, ai, p0
        del f_mean
    result = np.rint(fg)
    opaque = a >= np.float32(1)
    result[:, opaque] = image[:, y0 - lo : y1 - lo][:, opaque]  # exactly the input where a = 1
    return np.moveaxis(result.astype(np.uint8), 0, 2)


def _box_count(size: int, start: int, stop: int, length: int) -> NDArray[np.float32]:
    """Pixels inside the box, along one axis, for positions ``[start, stop)`` of ``length``."""
    before, after = _halves(size)
    pos = np.arange(start, stop)
    span = np.minimum(pos + after, length - 1) - np.maximum(pos - before, 0) + 1
    return span.astype(np.float32)


def _box_sum(plane: NDArray[np.float32], size: int, rows: slice) -> NDArray[np.float32]:
    """``size x size`` box sums of a 2-D float32 plane (zero outside it: truncated boxes), for the
    rows ``rows`` only."""
    return _box_sum_cols(_box_sum_rows(plane, size)[rows], size)


def _box_sum_cols(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Box sums of ``size`` columns along each row, zero beyond its ends.

    Differences of float64 running sums along the contiguous axis: rows are at most a few
    thousand terms of at most ``size * 255``, so the running totals stay below ``2**30`` and their
    differences are exact to ``1e-7`` -- far below a grey level -- and numpy runs this one fastest.
    """
    n_rows, n = x.shape
    before, after = _halves(size)
    total = np.zeros((n_rows, n + 1), np.float64)
    np.cumsum(x, axis=1, dtype=np.float64, out=total[:, 1:])
    out = np.empty((n_rows, n), np.float32)
    if n >= size:  # windows wholly inside the row
        np.subtract(total[:, size:], total[:, : n + 1 - size], out=out[:, before : n - after])
    edge = np.r_[0 : min(before, n), max(n - after, before, 0) : n]
    if edge.size:
        out[:, edge] = (
            total[:, np.minimum(edge + after + 1, n)] - total[:, np.maximum(edge - before, 0)]
        )
    return out


def _box_sum_rows(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Box sums of ``size`` rows of a C-contiguous 2-D array, zero beyond its ends.

    Blocked prefix sums (the additive form of van Herk/Gil-Werman): the padded rows are cut into
    blocks of ``size``; a window starting at row ``j`` is the suffix sum of its block from ``j``
    plus the prefix sum of the next block up to ``j + size - 1``. Only non-negative partial sums of
    at most ``size`` terms are added -- never a difference of large running totals -- so float32
    keeps a relative error below about ``size * 2**-24`` of each window's own sum, even where that
    sum is tiny. Each step adds whole rows (contiguous, vectorised): about three additions per
    element whatever ``size`` is.
    """
    n, m = x.shape
    before, _ = _halves(size)
    nb = -(-(n + size) // size)  # blocks; the last one is only ever read as "next block"
    padded = np.zeros((nb * size, m), np.float32)
    padded[before : before + n] = x
    blocks = padded.reshape(nb, size, m)
    prefix = np.empty_like(blocks)
    suffix = np.empty_like(blocks)
    prefix[:, 0] = blocks[:, 0]
    suffix[:, -1] = blocks[:, -1]
    for t in range(1, size):
        np.add(prefix[:, t - 1], blocks[:, t], out=prefix[:, t])
        np.add(suffix[:, size - t], blocks[:, size - 1 - t], out=suffix[:, size - 1 - t])
    del padded, blocks
    out = suffix[:-1]  # reuse: the window sums overwrite the suffix sums in place
    np.add(out[:, 1:], prefix[1:, :-1], out=out[:, 1:])
    return out.reshape(-1, m)[:n]
