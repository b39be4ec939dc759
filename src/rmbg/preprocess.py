"""Pre-processing in pure numpy, bit-exact with the reference pipeline's torch resize.

The reference (BRIA's ``utilities.py``) resizes with ``F.interpolate(mode="bilinear")``
(``align_corners=False``, no antialias), **casts the result to uint8** (truncation), divides by 255
and subtracts the mean 0.5 (std 1.0). Because of the truncation, a resize that is off by one ulp
can flip a grey level (a value of 127.99999 becomes 127 instead of 128), so :func:`resize_bilinear`
reproduces torch's CPU kernels (``aten/src/ATen/native/cpu/UpSampleKernel.cpp``) operation for
operation, in float32.

Source indices and weights, per axis (``compute_source_index_and_lambda``)::

    scale = float32(in) / float32(out)
    src   = max(scale * (dst + 0.5) - 0.5, 0)        # one fused multiply-add
    i0    = min(floor(src), in - 1);  i1 = i0 + 1 unless i0 == in - 1
    w1    = clamp(src - i0, 0, 1);    w0 = 1 - w1
    (in == out: i0 = i1 = dst, w0 = 1, w1 = 0)

torch has two float kernels, and :func:`resize_bilinear` follows whichever torch would pick:

- ``"generic"`` (``upsample_generic_Nd_kernel_impl``), separable: each needed source row is
  interpolated along the width, ``t = fma(x0, w0, x1 * w1)``, then the output along the height,
  ``fma(t0, h0, t1 * h1)``;
- ``"channels_last"`` (``cpu_upsample_linear_channels_last``), direct: four 2-D weights
  ``w00 = h0 * w0`` ... and ``fma(x11, w11, fma(x10, w10, fma(x00, w00, x01 * w01)))``; channels
  in groups of 8 (torch's ``Vectorized<float>``) are summed in the other order,
  ``fma(x00, w00, fma(x01, w01, fma(x11, w11, x10 * w10)))``.

torch uses ``"channels_last"`` when the output is small (``out_h + out_w <= 128``), for an
``HxWxC`` array with ``C > 3`` (permuted to NCHW, it is a channels-last tensor) and also for
``C == 3`` when torch runs on **one** thread; otherwise ``"generic"``. ``kernel="auto"`` follows
that rule for a multi-threaded torch, the default on any machine with more than one core.

The fused multiply-adds are what x86-64 torch wheels run: the kernels are compiled for AVX2 and
AVX-512 with FMA contraction (``ATEN_CPU_CAPABILITY=default``, the SSE build used on CPUs without
AVX2, does plain float32 ``x0 * w0 + x1 * w1``: pass ``fused=False``). numpy has no fma, so it is
emulated exactly: the product of two float32 is exact in float64; the float64 sum is rounded, and
rounding that once more to float32 could differ from the single rounding of a real fma (when the
float64 sum lands exactly halfway between two float32, which constructed inputs hit and random
ones about once in 2**28). So the sum's rounding error is recovered with TwoSum (error-free) and
the sum is rounded to odd (an inexact sum with an even last bit moves one ulp towards the exact
value): rounding a round-to-odd float64 to float32 is the correctly rounded result, for every
input, subnormals included. This costs about as much as the plain float64 emulation on large
images, where the gathers and memory traffic dominate.

``tests/test_prepost.py`` checks every element against torch on hundreds of random sizes (1xN,
Nx1, 1x1, upscaling, downscaling, odd sizes, 1024), for both kernels and for ``fused=False``.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import _parallel
from .errors import InvalidImageError
from .specs import RMBG_1_4, ModelSpec

__all__ = ["Kernel", "preprocess", "resize_bilinear", "source_indices"]

Kernel = Literal["auto", "generic", "channels_last"]
"""Which torch CPU kernel :func:`resize_bilinear` reproduces (see the module docstring)."""

_F32 = np.float32
_F64 = np.float64
# torch's Vectorized<float>::size() in the AVX2 and AVX-512 builds of the channels-last kernel
_VEC = 8
# output elements per block: small float64 temporaries (a few MB), few numpy calls (measured)
_BLOCK = 1 << 17
# float64 bits below float32's precision, and their value at a float32 midpoint
_LOW_BITS = (1 << 29) - 1
_MIDPOINT = 1 << 28
_F32_TINY = 2.0**-126  # float32's smallest normal
# output elements per thread, at least (smaller jobs stay on the calling thread)
_PARALLEL_MIN = 1 << 18


def source_indices(
    in_size: int, out_size: int, *, fused: bool = True
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32], NDArray[np.float32]]:
    """torch's bilinear source indices and weights along one axis.

    Args:
        in_size: Input length along the axis.
        out_size: Output length along the axis.
        fused: Compute the source coordinate with a fused multiply-add (AVX2/AVX-512 torch).

    Returns:
        ``(i0, i1, w0, w1)``: output ``k`` is ``x[i0[k]] * w0[k] + x[i1[k]] * w1[k]``.
    """
    if in_size == out_size:
        idx = np.arange(out_size, dtype=np.intp)
        return idx, idx.copy(), np.ones(out_size, _F32), np.zeros(out_size, _F32)
    scale = _F32(in_size) / _F32(out_size)
    dst = np.arange(out_size, dtype=_F32) + _F32(0.5)
    # fused: scale * dst is exact in float64, and adding -0.5 is exact too whenever the result is
    # >= 0 (otherwise only its sign matters), so one rounding to float32, as fma does
    src = (dst.astype(_F64) * _F64(scale) - 0.5).astype(_F32) if fused else dst * scale - _F32(0.5)
    np.maximum(src, _F32(0.0), out=src)
    i0 = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
    w1 = np.clip(src - i0.astype(_F32), _F32(0.0), _F32(1.0))
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    w0 = _F32(1.0) - w1
    return i0, i1, w0.astype(_F32, copy=False), w1.astype(_F32, copy=False)


# -- exact fused multiply-add -------------------------------------------------------------------


def _fma_odd(
    a: NDArray[Any], w: NDArray[Any], c: NDArray[Any], *, tiny: bool = True
) -> NDArray[np.float64]:
    """``a * w + c`` in float64, rounded so that casting it to float32 gives the correct fma.

    ``a`` and ``w`` must hold float32 values (their product is then exact in float64), ``c`` a
    float32 value. The float64 sum ``s`` is off only where it landed exactly on a midpoint between
    two float32 values (then the second rounding may go the wrong way): only there is TwoSum's
    rounding error computed, and ``s`` moved one ulp towards the exact value (round to odd).
    Midpoints are found from the bits of ``s`` for float32-normal results; ``tiny=True`` also
    takes the exact route for every result below float32's smallest normal (subnormal results
    have coarser midpoints), which callers may skip when their values cannot get that small.
    """
    p = np.multiply(a, w, dtype=_F64)
    s: NDArray[np.float64] = p + c
    suspect = (s.view(np.int64) & _LOW_BITS) == _MIDPOINT
    if tiny:
        suspect |= np.abs(s) < _F32_TINY
    if suspect.any():
        idx = np.nonzero(suspect)
        ps, cs, ss = p[idx], np.broadcast_to(c, s.shape)[idx].astype(_F64), s[idx]
        bb = ss - ps
        err = (ps - (ss - bb)) + (cs - bb)
        fix = (np.abs(err) > 0) & ((ss.view(np.int64) & 1) == 0)  # NaN/inf: err is NaN, no fix
        ss[fix] = np.nextafter(ss[fix], np.copysign(np.inf, err[fix]))
        s[idx] = ss
    return s


def _fma(
    a: NDArray[Any], w: NDArray[Any], c: NDArray[Any], *, tiny: bool = True
) -> NDArray[np.float32]:
    """Correctly rounded float32 ``fma(a, w, c)`` of float32 values."""
    return _fma_odd(a, w, c, tiny=tiny).astype(_F32)


def _lerp(
    a: NDArray[np.float32],
    w0: NDArray[np.float32],
    b: NDArray[np.float32],
    w1: NDArray[np.float32],
    out: NDArray[np.float32],
    *,
    fused: bool,
    tiny: bool = True,
) -> None:
    """``out = fma(a, w0, b * w1)``, or ``a * w0 + b * w1`` when not ``fused``, in float32."""
    c = np.multiply(b, w1, dtype=_F32)
    if fused:
        out[...] = _fma_odd(a, w0, c, tiny=tiny)
    else:
        np.multiply(a, w0, out=out)
        out += c


def _may_get_tiny(x: NDArray[Any], *weights: NDArray[np.float32]) -> bool:
    """Could a bilinear mix of ``x`` with these per-axis weights be below float32's smallest
    normal (then the fma must check every result, see :func:`_fma_odd`)?

    Not when ``x`` is non-negative and its nonzero values are large enough that their product
    with the smallest nonzero weight of each axis stays above ``2**-125``: every product, and
    every sum of non-negative products, is then 0 or a normal float32. Negative values can cancel.
    """
    floor = 1.0
    for w in weights:
        positive = w[w > 0]
        if positive.size:
            floor *= float(positive.min())
    limit = 2.0**-125 / floor
    if x.dtype == np.uint8:
        return limit > 1.0
    with np.errstate(invalid="ignore"):
        if not x.min() >= 0:  # negative values, or NaN
            return True
        return bool(((x > 0) & (x < limit)).any())


# -- the two torch kernels -----------------------------------------------------------------------


def _generic(x: NDArray[Any], out_h: int, out_w: int, *, fused: bool) -> NDArray[np.float32]:
    """torch's separable generic kernel: width pass on the needed rows, then height pass.

    Both passes are split in row blocks over a few threads (:mod:`rmbg._parallel`).
    """
    in_h, in_w = x.shape[:2]
    extra = (1,) * (x.ndim - 2)
    j0, j1, v0, v1 = source_indices(in_h, out_h, fused=fused)
    i0, i1, w0, w1 = source_indices(in_w, out_w, fused=fused)
    tiny = fused and _may_get_tiny(x, np.concatenate([v0, v1]), np.concatenate([w0, w1]))

    # width pass, only on the source rows the height pass reads
    rows, inverse = np.unique(np.concatenate([j0, j1]), return_inverse=True)
    ww0, ww1 = w0.reshape(1, out_w, *extra), w1.reshape(1, out_w, *extra)
    per_row = out_w * int(np.prod(x.shape[2:], dtype=np.int64))
    t = np.empty((rows.size, out_w, *x.shape[2:]), _F32)
    step = max(1, _BLOCK // per_row)
    min_rows = max(1, _PARALLEL_MIN // per_row)

    def width_pass(lo: int, hi: int) -> None:
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            src = x[rows[a:b]]
            xa = np.asarray(src[:, i0], dtype=_F32)
            xb = np.asarray(src[:, i1], dtype=_F32)
            _lerp(xa, ww0, xb, ww1, t[a:b], fused=fused, tiny=tiny)

    _parallel.run(width_pass, _parallel.split(rows.size, min_rows))

    # height pass
    r0, r1 = inverse[:out_h], inverse[out_h:]
    vv0, vv1 = v0.reshape(out_h, 1, *extra), v1.reshape(out_h, 1, *extra)
    out = np.empty((out_h, out_w, *x.shape[2:]), _F32)

    def height_pass(lo: int, hi: int) -> None:
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            _lerp(t[r0[a:b]], vv0[a:b], t[r1[a:b]], vv1[a:b], out[a:b], fused=fused, tiny=tiny)

    _parallel.run(height_pass, _parallel.split(out_h, min_rows))
    return out


def _channels_last(x: NDArray[Any], out_h: int, out_w: int, *, fused: bool) -> NDArray[np.float32]:
    """torch's direct channels-last kernel: four 2-D weights per output pixel."""
    x = np.asarray(x, dtype=_F32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    in_h, in_w, channels = x.shape
    j0, j1, v0, v1 = source_indices(in_h, out_h, fused=fused)
    i0, i1, w0, w1 = source_indices(in_w, out_w, fused=fused)
    w00 = (v0[:, None] * w0[None, :])[:, :, None]
    w01 = (v0[:, None] * w1[None, :])[:, :, None]
    w10 = (v1[:, None] * w0[None, :])[:, :, None]
    w11 = (v1[:, None] * w1[None, :])[:, :, None]
    top, bottom = x[j0], x[j1]
    x00, x01, x10, x11 = top[:, i0], top[:, i1], bottom[:, i0], bottom[:, i1]
    out = np.empty((out_h, out_w, channels), _F32)
    nvec = channels - channels % _VEC
    vec, tail = slice(0, nvec), slice(nvec, channels)
    if fused:
        # Vectorized<float>: a*w00 + (b*w01 + (c*w10 + d*w11)), contracted from the right
        r = _fma(x11[..., vec], w11, x10[..., vec] * w10)
        r = _fma(x01[..., vec], w01, r)
        out[..., vec] = _fma(x00[..., vec], w00, r)
        # scalar tail: ((a*w00 + b*w01) + c*w10) + d*w11
        r = _fma(x00[..., tail], w00, x01[..., tail] * w01)
        r = _fma(x10[..., tail], w10, r)
        out[..., tail] = _fma(x11[..., tail], w11, r)
    else:
        out[..., vec] = x00[..., vec] * w00 + (
            x01[..., vec] * w01 + (x10[..., vec] * w10 + x11[..., vec] * w11)
        )
        out[..., tail] = (
            (x00[..., tail] * w00 + x01[..., tail] * w01) + x10[..., tail] * w10
        ) + x11[..., tail] * w11
    return out[:, :, 0] if squeeze else out


# -- public API ----------------------------------------------------------------------------------


def check_size(size: Any, what: str = "output") -> tuple[int, int]:
    """``size`` as ``(height, width)`` positive ints, or an :class:`InvalidImageError` naming
    ``what`` (``"output"``, ``"mask"``...)."""
    try:
        h, w = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidImageError(
            f"The {what} size must be a pair of integers (height, width), got {size!r}."
        ) from None
    if h < 1 or w < 1:
        raise InvalidImageError(
            f"Cannot make a {what} of size {(h, w)}: height and width must be >= 1."
        )
    return h, w


def resize_bilinear(
    image: NDArray[np.floating[Any]] | NDArray[np.uint8],
    size: tuple[int, int],
    *,
    kernel: Kernel = "auto",
    fused: bool = True,
) -> NDArray[np.float32]:
    """Resize like torch's ``F.interpolate(mode="bilinear", align_corners=False)`` on the CPU.

    Bit for bit what torch returns for the same values as a float32 tensor (``HxWxC`` permuted to
    ``1xCxHxW``, ``HxW`` as ``1x1xHxW``); see the module docstring for the kernels.

    Args:
        image: ``HxW`` or ``HxWxC`` array, uint8 or floating (computed in float32; float64 values
            are rounded to float32 first, as the reference's float32 tensor does).
        size: Output ``(height, width)``.
        kernel: ``"auto"`` picks the kernel a multi-threaded torch picks for this array;
            ``"generic"`` or ``"channels_last"`` force one (single-threaded torch resizes
            3-channel images with ``"channels_last"``).
        fused: Reproduce the fused multiply-adds of torch's AVX2/AVX-512 builds (every x86-64
            CPU of the last decade); ``False`` reproduces the plain float32 arithmetic of
            ``ATEN_CPU_CAPABILITY=default``.

    Returns:
        C-contiguous float32 array of shape ``(height, width)`` or ``(height, width, C)``.

    Raises:
        InvalidImageError: ``image`` is not a 2-D or 3-D uint8/float array with non-empty
            dimensions, or ``size`` is not two positive integers.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(
            f"resize_bilinear expects a numpy array, got {type(image).__name__}."
        )
    if image.dtype != np.uint8 and image.dtype.kind != "f":
        raise InvalidImageError(
            f"resize_bilinear expects a uint8 or floating array, got dtype {image.dtype}."
        )
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise InvalidImageError(
            "resize_bilinear expects an HxW or HxWxC array with non-empty dimensions, "
            f"got shape {image.shape}."
        )
    out_h, out_w = check_size(size)
    if kernel not in ("auto", "generic", "channels_last"):
        raise ValueError(f"kernel must be 'auto', 'generic' or 'channels_last', not {kernel!r}.")
    if image.dtype.kind == "f" and image.dtype != _F32:
        image = image.astype(_F32)
    channels = image.shape[2] if image.ndim == 3 else 1
    if kernel == "auto":
        small = out_h + out_w <= 128
        kernel = "channels_last" if small or channels > 3 else "generic"
    # inf/NaN inputs propagate as in torch (inf * 0 is NaN...): no numpy warnings about it
    with np.errstate(invalid="ignore", over="ignore"):
        if kernel == "channels_last":
            return _channels_last(image, out_h, out_w, fused=fused)
        return _generic(image, out_h, out_w, fused=fused)


def preprocess(rgb: NDArray[np.uint8], spec: ModelSpec = RMBG_1_4) -> NDArray[np.float32]:
    """An ``HxWx3`` uint8 RGB image to the network input, exactly as the reference computes it.

    Bilinear resize to ``spec.input_size`` (:func:`resize_bilinear`), truncation to uint8 when
    ``spec.truncate_resized_input``, ``/ 255``, then ``(x - mean) / std`` per channel, all in
    float32.

    Args:
        rgb: ``HxWx3`` uint8 array (grayscale, RGBA... must be converted first, e.g. by
            ``rmbg.io.load_image``).
        spec: The model's input size and normalisation.

    Returns:
        C-contiguous float32 array of shape ``(1, 3, h, w)``.

    Raises:
        InvalidImageError: ``rgb`` is not a non-empty ``HxWx3`` uint8 array.
    """
    if not isinstance(rgb, np.ndarray):
        raise InvalidImageError(
            f"preprocess expects an HxWx3 uint8 numpy array, got {type(rgb).__name__}."
        )
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise InvalidImageError(
            f"preprocess expects an HxWx3 uint8 RGB array, got dtype {rgb.dtype} and shape "
            f"{rgb.shape}; convert grayscale, RGBA or float images to RGB uint8 first "
            "(rmbg.io.load_image does)."
        )
    h, w = spec.input_size
    resized = resize_bilinear(rgb, (h, w))
    mean = np.asarray(spec.mean, _F32)
    std = np.asarray(spec.std, _F32)
    out = np.empty((1, 3, h, w), _F32)
    if spec.truncate_resized_input:
        # the resized values are in [0, 255]: the cast truncates like torch's .type(torch.uint8);
        # the normalisation then only sees 256 levels, precomputed with the same float32 ops
        levels = resized.astype(np.uint8)
        lut = (np.arange(256, dtype=_F32)[:, None] / _F32(255.0) - mean) / std  # (256, 3)
        for c in range(3):
            np.take(lut[:, c], levels[:, :, c], out=out[0, c])
    else:
        for c in range(3):
            out[0, c] = (resized[:, :, c] / _F32(255.0) - mean[c]) / std[c]
    return out
