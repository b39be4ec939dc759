"""Pre-processing in pure numpy, bit-exact with the reference pipeline.

The reference (BRIA's ``utilities.py``) resizes with ``F.interpolate(mode="bilinear")``
(``align_corners=False``, no antialias), casts the result to uint8 (truncation), divides by 255
and subtracts the mean 0.5 (std 1.0). Because of the truncation, a resize that is off by one ulp
can flip a grey level, so :func:`resize_bilinear` reproduces torch's CPU kernel operation for
operation:

- ``scale = float32(in) / float32(out)``; the source coordinate is
  ``max(fma(scale, dst + 0.5, -0.5), 0)`` (the kernel is compiled with FMA contraction);
  ``i0 = floor(src)``, ``i1 = min(i0 + 1, in - 1)``, ``lambda = src - i0`` clamped to [0, 1];
- each output row is first interpolated along the width, then along the height, each step as
  ``fma(x0, w0, x1 * w1)`` in float32.

The fused multiply-adds are emulated in float64 (a product of two float32 values is exact in
float64) and rounded once to float32. This matches torch 2.x on x86-64 CPUs with AVX2/AVX-512
bit for bit: ``tests/test_prepost.py`` checks every element on hundreds of random sizes (1xN, Nx1,
upscaling, downscaling, odd sizes). Double rounding could in principle differ from a true FMA in
a tie; it has not been observed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidImageError
from .specs import RMBG_1_4, ModelSpec

__all__ = ["preprocess", "resize_bilinear", "source_indices"]


def source_indices(
    in_size: int, out_size: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32], NDArray[np.float32]]:
    """torch's bilinear source indices and weights for one axis: ``(i0, i1, w0, w1)``."""
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    dst = np.arange(out_size, dtype=np.float64)
    src = (scale * (dst + 0.5) - 0.5).astype(np.float32)  # fma(scale, dst + 0.5, -0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
    lam = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    w0 = (np.float32(1.0) - lam).astype(np.float32)
    return i0, i1, w0, lam


def _lerp(
    a: NDArray[np.float32], b: NDArray[np.float32], w0: NDArray[np.float32], w1: NDArray[np.float32]
) -> NDArray[np.float32]:
    """``fma(a, w0, b * w1)`` in float32, as torch's compiled kernel computes it."""
    bw = (b * w1).astype(np.float64)
    bw += a.astype(np.float64) * w0
    return bw.astype(np.float32)


def resize_bilinear(
    image: NDArray[np.floating] | NDArray[np.uint8],
    size: tuple[int, int],
    *,
    out: NDArray[np.float32] | None = None,
    block_rows: int = 128,
) -> NDArray[np.float32]:
    """Resize like torch's ``F.interpolate(mode="bilinear", align_corners=False)`` on the CPU.

    Output rows are produced in blocks of ``block_rows``, so the float64 temporaries of the
    emulated FMA stay small (a few MB) whatever the output size: the memory needed is the output
    itself (4 bytes per pixel and channel) plus the width-resized source rows.

    Args:
        image: ``HxW`` or ``HxWxC`` array (any real dtype; computed in float32).
        size: Output ``(height, width)``.
        out: Optional float32 array of the output shape to write into.
        block_rows: Output rows computed at once.

    Returns:
        float32 array of shape ``(height, width[, C])``.
    """
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImageError(
            f"Expected an HxW or HxWxC array with H, W >= 1, got shape {image.shape}."
        )
    out_h, out_w = int(size[0]), int(size[1])
    if out_h < 1 or out_w < 1:
        raise InvalidImageError(f"Cannot resize to {size}: both sizes must be at least 1.")
    in_h, in_w = image.shape[:2]
    j0, j1, v0, v1 = source_indices(in_h, out_h)
    # only the source rows the height pass reads are interpolated along the width
    rows, inverse = np.unique(np.concatenate([j0, j1]), return_inverse=True)
    i0, i1, w0, w1 = source_indices(in_w, out_w)
    extra = (1,) * (image.ndim - 2)
    ww0, ww1 = w0.reshape(1, out_w, *extra), w1.reshape(1, out_w, *extra)
    t = np.empty((len(rows), out_w, *image.shape[2:]), np.float32)
    step = max(1, (block_rows * out_w) // max(1, in_w))
    for a in range(0, len(rows), step):
        x = np.asarray(image[rows[a : a + step]], dtype=np.float32)
        t[a : a + step] = _lerp(x[:, i0], x[:, i1], ww0, ww1)
    r0, r1 = inverse[:out_h], inverse[out_h:]
    vv0, vv1 = v0.reshape(out_h, 1, *extra), v1.reshape(out_h, 1, *extra)
    if out is None:
        out = np.empty((out_h, out_w, *image.shape[2:]), np.float32)
    for a in range(0, out_h, block_rows):
        b = min(a + block_rows, out_h)
        out[a:b] = _lerp(t[r0[a:b]], t[r1[a:b]], vv0[a:b], vv1[a:b])
    return out


def preprocess(rgb: NDArray[np.uint8], spec: ModelSpec = RMBG_1_4) -> NDArray[np.float32]:
    """An ``HxWx3`` uint8 image to the network input: float32 ``(1, 3, h, w)``, C-contiguous.

    Exactly the reference: bilinear resize to ``spec.input_size``, truncation to uint8 (when
    ``spec.truncate_resized_input``), ``/ 255``, ``(x - mean) / std`` per channel.
    """
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
    ):
        raise InvalidImageError(
            "preprocess expects an HxWx3 uint8 RGB array, got "
            f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}."
        )
    resized = resize_bilinear(rgb, spec.input_size)
    if spec.truncate_resized_input:
        resized = resized.astype(np.uint8).astype(np.float32)  # values are in [0, 255]: truncation
    x = resized / np.float32(255.0)
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
