"""The work done in a worker thread: the facade call (decode, inference, compositing) and the
encoding of the result. Everything here is blocking and runs off the event loop."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..errors import UnsupportedOptionError
from ..options import CutoutOptions, MaskOptions

__all__ = ["MEDIA_TYPES", "Rendered", "render"]

MEDIA_TYPES: dict[str, str] = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg"}


@dataclasses.dataclass(frozen=True)
class Rendered:
    """Encoded result bytes and how long each stage took (seconds)."""

    data: bytes
    media_type: str
    compute: float
    encode: float | None


def render(
    remover: Any,
    kind: str,
    image: bytes,
    options: MaskOptions,
    fmt: str,
    quality: int | None,
    background: bytes | None = None,
) -> Rendered:
    """Run ``remover.mask``/``remover.cutout`` on ``image`` and encode the result as ``fmt``.

    PNG comes from the facade itself (``output="png"``); WebP (lossless unless ``quality``) and
    JPEG from :func:`rmbg.io.encode_image`, the encoder the CLI uses.

    Raises:
        UnsupportedOptionError: A background image with a mask, or JPEG for a transparent cutout.
        InvalidImageError: The image (or background image) cannot be read; ImageTooLargeError
            when it has more pixels than the remover's limit.
    """
    started = time.perf_counter()
    if background is not None:
        if not isinstance(options, CutoutOptions):
            raise UnsupportedOptionError("A background image applies to cutouts, not masks.")
        if options.background is not None:
            raise UnsupportedOptionError(
                "background given both as a field and as an image part; give one."
            )
        options = options.replace(background=background)  # decoded here, in the worker
    if fmt == "jpg" and isinstance(options, CutoutOptions) and not options.opaque:
        raise UnsupportedOptionError(
            "JPEG has no transparency: a cutout in jpg needs an opaque background "
            "(e.g. background=white); or ask for png or webp."
        )
    call = remover.cutout if kind == "cutout" else remover.mask
    if fmt == "png":
        data = call(image, options, output="png")
        return Rendered(data, MEDIA_TYPES[fmt], time.perf_counter() - started, None)
    result = call(image, options, output="pil")
    computed = time.perf_counter()
    data = encode(result, fmt, quality)
    return Rendered(data, MEDIA_TYPES[fmt], computed - started, time.perf_counter() - computed)


def encode(image: Any, fmt: str, quality: int | None) -> bytes:
    """A PIL result as WebP (lossless unless ``quality``) or JPEG: rmbg's one encoder."""
    from ..io import encode_image

    return encode_image(image, fmt, quality=quality)
