"""A fast, lossless PNG encoder for results: numpy filtering, parallel deflate.

Pillow spends most of a PNG encode choosing a filter per row and running zlib on one thread:
a 12-megapixel RGBA cutout takes 0.5 s at ``compress_level=1`` and 2 s at the default level on
the machines rmbg is benchmarked on. :func:`encode_png` writes the same pixels (the file decodes to
exactly the input; ``tests/test_png.py`` checks it) with

- the *Up* filter on every row (one vectorised numpy subtraction; on photos it compresses about as
  well as Pillow's adaptive choice at level 1),
- deflate in row blocks on a few threads (the compressors release the GIL), each block ended by a
  full flush so the blocks concatenate into one valid zlib stream (what ``pigz`` does),
- ISA-L's deflate (the ``isal`` package, optional: ``pip install "rmbg[fast]"``) when it is
  installed, else the standard library's zlib. ISA-L level 1 is about 5x faster than zlib level 1
  for files of about the same size.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _parallel

__all__ = ["deflate_backend", "encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)
_BLOCK_BYTES = 4 << 20  # raw bytes per deflate block (a few blocks per thread for a 12 MP image)
_ADLER_BASE = 65521
_ISAL_MAX_LEVEL = 2  # higher levels go to zlib


def _deflate_module() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def deflate_backend() -> str:
    """``"isal"`` when ISA-L's deflate is installed (used for levels 0-2), else ``"zlib"``."""
    return "isal" if _deflate_module() is not zlib else "zlib"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """zlib's ``adler32_combine``: the checksum of ``A + B`` from those of ``A`` and ``B``."""
    rem = len2 % _ADLER_BASE
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (rem * a1 + b1 + b2 - rem) % _ADLER_BASE
    return (b << 16) | a


def _filtered(rows: NDArray[np.uint8], previous: NDArray[np.uint8] | None) -> bytes:
    """Rows (``n x stride``) with the Up filter: a filter-type byte, then ``row - row_above``."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = 2
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    if previous is None:
        out[0, 1:] = rows[0]
    else:
        np.subtract(rows[0], previous, out=out[0, 1:])
    return out.tobytes()


def encode_png(
    array: NDArray[np.uint8],
    *,
    level: int = 1,
    icc_profile: bytes | None = None,
    threads: bool = True,
) -> bytes:
    """Encode an 8-bit image as PNG, losslessly.

    Args:
        array: ``HxW`` (grey), ``HxWx1``, ``HxWx2`` (grey + alpha), ``HxWx3`` (RGB) or ``HxWx4``
            (RGBA) uint8.
        level: Deflate level, 0-9. Levels 0-2 use ISA-L when it is installed (0 compresses
            too, ISA-L has no stored mode), 3-9 always zlib, for smaller files.
        icc_profile: An ICC profile to embed (``iCCP`` chunk), e.g. the input's.
        threads: Deflate row blocks on a few threads (:mod:`rmbg._parallel`).

    Returns:
        The PNG file's bytes.

    Raises:
        ValueError: Not a uint8 image of one of those shapes, or a level outside 0-9.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in _COLOR_TYPES or 0 in a.shape:
        raise ValueError(f"expected an HxW[xC] uint8 image with C in 1..4, got {a.dtype} {a.shape}")
    if not 0 <= level <= 9:
        raise ValueError(f"level must be in 0..9, not {level}")
    h, w, c = a.shape
    rows = np.ascontiguousarray(a).reshape(h, w * c)
    # ISA-L for the fast levels; zlib above, where its files are smaller (ISA-L's own highest
    # level, 3, was slower *and* larger than its level 1 on photo cutouts)
    mod = _deflate_module() if level <= _ISAL_MAX_LEVEL else zlib

    per_block = max(1, _BLOCK_BYTES // (w * c + 1))
    starts = list(range(0, h, per_block))

    def compress(i: int) -> tuple[bytes, int, int]:
        lo = starts[i]
        hi = min(lo + per_block, h)
        raw = _filtered(rows[lo:hi], rows[lo - 1] if lo > 0 else None)
        co = mod.compressobj(level, zlib.DEFLATED, -15)
        last = i == len(starts) - 1
        data = co.compress(raw) + co.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)
        return bytes(data), zlib.adler32(raw), len(raw)

    if threads:  # one range per block: the threads take the next block as they finish one
        blocks = _parallel.run(lambda i, _: compress(i), [(i, i + 1) for i in range(len(starts))])
    else:
        blocks = [compress(i) for i in range(len(starts))]
    adler = 1
    for _, block_adler, n in blocks:
        adler = _adler32_combine(adler, block_adler, n)
    header = b"\x78\x01" if level <= 1 else b"\x78\x9c"  # CMF/FLG (the level hint is advisory)
    stream = b"".join([header, *(b for b, _, _ in blocks), struct.pack(">I", adler)])

    parts = [
        _SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPES[c], 0, 0, 0)),
    ]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    parts.append(_chunk(b"IDAT", stream))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
