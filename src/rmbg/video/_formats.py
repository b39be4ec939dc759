"""Output formats: which container, codec and pixel format each ``format=`` writes.

One table, so that the writer, the docs and the tests speak of the same choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeAlias, get_args

from ..errors import UnsupportedOptionError

__all__ = ["FORMATS", "Encoding", "Format", "choose_encoding", "format_of"]

Format: TypeAlias = Literal["webm", "mov", "mp4", "png", "mask"]
#: The values ``format=`` accepts.
FORMATS: tuple[str, ...] = get_args(Format)

_BY_SUFFIX: dict[str, Format] = {".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4"}
#: Containers a mask video may go into, by suffix (``format="mask"``).
_MASK_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How the frames of one output are encoded.

    Attributes:
        format: The ``format=`` it serves.
        container: FFmpeg muxer name (``None`` for a PNG sequence).
        codec: FFmpeg encoder name (``"png"`` for a PNG sequence: rmbg's own encoder).
        pix_fmt: Pixel format handed to the encoder.
        frame: What each frame is: ``"rgba"`` (alpha kept), ``"rgb"`` (opaque) or ``"gray"``
            (the mask itself).
        options: Encoder options (FFmpeg's names).
        audio_codecs: Audio codecs the container takes as they are (copied); ``None``: any.
        audio_encoder: What other audio is transcoded to (``None``: dropped).
    """

    format: Format
    container: str | None
    codec: str
    pix_fmt: str
    frame: Literal["rgba", "rgb", "gray"]
    options: Mapping[str, str]
    audio_codecs: frozenset[str] | None
    audio_encoder: str | None

    @property
    def alpha(self) -> bool:
        """Whether the output carries an alpha channel."""
        return self.frame == "rgba"


_VP9 = {"b": "0", "row-mt": "1", "deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "0"}
_WEBM_AUDIO = frozenset({"opus", "vorbis"})
_MP4_AUDIO = frozenset({"aac", "mp3", "opus", "alac", "flac", "ac3", "eac3"})


def format_of(dst: Path, fmt: str | None) -> Format:
    """The output format: ``fmt`` if given, else from ``dst``'s suffix (none: a PNG folder).

    Raises:
        UnsupportedOptionError: An unknown ``fmt`` or suffix.
    """
    if fmt is not None:
        name = str(fmt).strip().lower()
        if name not in FORMATS:
            raise UnsupportedOptionError(
                f"format={fmt!r} is not one of: {', '.join(FORMATS)} (webm: VP9 with alpha, "
                "mov: ProRes 4444 with alpha, mp4: H.264 over an opaque background, png: a "
                "folder of PNG frames, mask: a greyscale mask video)."
            )
        return name  # type: ignore[return-value]
    suffix = dst.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if suffix == "" or dst.is_dir():
        return "png"
    raise UnsupportedOptionError(
        f"Cannot tell the output format from {dst.name!r}: use a .webm (VP9 with alpha), .mov "
        "(ProRes 4444 with alpha) or .mp4 (opaque, needs a background) file, a folder (PNG "
        "frames), or pass format= (webm, mov, mp4, png, mask)."
    )


def choose_encoding(
    fmt: Format,
    dst: Path,
    *,
    opaque: bool,
    size: tuple[int, int],
    quality: int | None,
) -> Encoding:
    """The encoding of ``fmt`` for a ``(width, height)`` clip written to ``dst``.

    Args:
        fmt: The output format.
        dst: Where it goes (a mask video's container comes from its suffix).
        opaque: The cutouts are opaque (an opaque background was given).
        size: Frame size as stored (odd sizes need 4:4:4 H.264).
        quality: CRF for VP9 (0-63) and H.264 (0-51); ``None``: rmbg's default.

    Raises:
        UnsupportedOptionError: MP4 without an opaque background, a mask video in an unknown
            container, a quality out of range.
    """
    odd = size[0] % 2 == 1 or size[1] % 2 == 1
    if fmt == "png":
        return Encoding(fmt, None, "png", "rgba", "rgb" if opaque else "rgba", {}, None, None)
    if fmt == "webm":
        crf = _crf(quality, 63, 18)
        return Encoding(
            fmt, "webm", "libvpx-vp9", "yuv420p" if opaque else "yuva420p",
            "rgb" if opaque else "rgba", {**_VP9, "crf": crf}, _WEBM_AUDIO, "libopus",
        )  # fmt: skip
    if fmt == "mov":
        if quality is not None:
            raise UnsupportedOptionError(
                "quality= applies to webm, mp4 and mask videos, not ProRes."
            )
        if opaque:
            return Encoding(
                fmt, "mov", "prores_ks", "yuv444p10le", "rgb", {"profile": "4444"}, None, "aac"
            )
        options = {"profile": "4444", "alpha_bits": "16"}
        return Encoding(fmt, "mov", "prores_ks", "yuva444p10le", "rgba", options, None, "aac")
    if fmt == "mp4":
        if not opaque:
            raise UnsupportedOptionError(
                "MP4 (H.264) has no alpha channel: pass an opaque background (a colour such as "
                "'white', or an image), or write .webm (VP9 with alpha), .mov (ProRes 4444 with "
                "alpha), a PNG folder, or format='mask' for the mask alone."
            )
        options = {"crf": _crf(quality, 51, 18), "preset": "fast"}
        pix = "yuv444p" if odd else "yuv420p"
        return Encoding(fmt, "mp4", "libx264", pix, "rgb", options, _MP4_AUDIO, "aac")
    # the mask as a greyscale video, in the container the suffix names
    suffix = dst.suffix.lower()
    if suffix in (".mp4", ".m4v"):
        options = {"crf": _crf(quality, 51, 12), "preset": "fast"}
        pix = "yuv444p" if odd else "yuv420p"  # 4:0:0 H.264 plays in too few places
        return Encoding(fmt, "mp4", "libx264", pix, "gray", options, _MP4_AUDIO, "aac")
    if suffix == ".mov":
        return Encoding(
            fmt, "mov", "prores_ks", "yuv422p10le", "gray", {"profile": "3"}, None, "aac"
        )
    if suffix == ".mkv":
        return Encoding(fmt, "matroska", "ffv1", "gray", "gray", {}, None, None)
    if suffix == ".webm":
        return Encoding(
            fmt, "webm", "libvpx-vp9", "yuv420p", "gray", {**_VP9, "crf": _crf(quality, 63, 16)},
            _WEBM_AUDIO, "libopus",
        )  # fmt: skip
    raise UnsupportedOptionError(
        f"A mask video goes into {', '.join(_MASK_SUFFIXES)} (H.264, H.264, ProRes 422 HQ, "
        f"lossless FFV1, VP9), not {dst.name!r}."
    )


def _crf(quality: int | None, top: int, default: int) -> str:
    if quality is None:
        return str(default)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= top:
        raise UnsupportedOptionError(
            f"quality must be a CRF from 0 (best) to {top} for this codec, not {quality!r}."
        )
    return str(quality)
