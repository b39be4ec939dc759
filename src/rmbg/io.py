"""Image input and output: any accepted input -> :class:`LoadedImage`; results mirror the input.

:func:`load_image` turns whatever a caller has (a path, bytes, a binary file, a PIL image of any
mode, a numpy array) into one canonical form, :class:`LoadedImage`: an ``HxWx3`` uint8 RGB array for
the network (alpha flattened onto white) plus the input's own alpha, kept apart. :func:`to_output`
turns a result array (a mask or a cutout) back into the caller's kind of object.

Conversions are exact and the same whichever way an image arrives:

============================  ==================================================================
input                         8-bit RGB
============================  ==================================================================
uint8 / ``L`` / ``RGB``       as is (grey replicated to three channels)
bool / ``1``                  ``False -> 0``, ``True -> 255``
uint16 / ``I;16*``            the high byte, ``x >> 8`` -- the rule Pillow itself applies when it
                              decodes 16-bit colour PNG and TIFF files, so a 16-bit image gives the
                              same pixels as an array, a grey file or a colour file
``I`` (int32)                 taken as 16-bit data: clipped to ``0..65535``, then ``x >> 8``
float16/32/64 / ``F``         values must lie in ``[0, 1]``: ``rint(x * 255)`` (round half to even)
                              in the array's precision (float16 in float32); NaN/Inf or values
                              outside ``[0, 1]`` raise :class:`~rmbg.errors.InvalidImageError`
``CMYK`` / ``YCbCr`` / ...    Pillow's ``convert("RGB")`` (CMYK without colour management)
``P`` / ``PA``                Pillow's ``convert("RGBA")`` when the palette carries transparency,
                              ``convert("RGB")`` otherwise
``LA`` / ``RGBA`` / tRNS      colour plus alpha, the alpha kept in :attr:`LoadedImage.alpha`
                              (premultiplied ``La``/``RGBa`` un-premultiplied by Pillow first)
============================  ==================================================================

Alpha is flattened onto **white** for the network: ``round((c * a + 255 * (255 - a)) / 255)``,
computed exactly in integers: a product shot on a transparent background reads as one on a white
sweep, and the network never sees the arbitrary colours that transparent pixels happen to hold. The
un-flattened colours stay available as :attr:`LoadedImage.colors` for compositing.

Nothing here flips Pillow's global settings (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import IO, Any, Literal, TypeAlias, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from . import _decode
from ._blend import over_opaque
from .errors import (
    ImageTooLargeError,
    InvalidImageError,
    RmbgError,
    RmbgWarning,
    UnsupportedOptionError,
)

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_MAX_PIXELS",
    "ENCODINGS",
    "PNG_COMPRESS_LEVEL",
    "ImageInput",
    "InputKind",
    "LoadedImage",
    "OutputKind",
    "check_output",
    "encode_image",
    "load_image",
    "to_output",
]

logger = logging.getLogger("rmbg")

#: Default pixel limit: Pillow's own default ``Image.MAX_IMAGE_PIXELS`` (``1024 * 1024 * 1024 // 4
#: // 3`` = 89,478,485 pixels, about 0.25 GiB of RGBA), as a constant so that a process that changed
#: Pillow's global does not silently change rmbg's guard.
DEFAULT_MAX_PIXELS: int = 89_478_485

#: Deflate level of the PNG that a ``bytes`` input (or ``output="png"``) gets back, written by
#: rmbg's own encoder (:mod:`rmbg._png`: Up filter, deflate on a few threads, ISA-L when
#: ``rmbg[fast]`` is installed). Level 1 is the fast end; PNG is lossless at every level.
PNG_COMPRESS_LEVEL: int = 1

#: JPEG quality :func:`encode_image` uses unless told otherwise.
DEFAULT_JPEG_QUALITY: int = 95

#: File formats :func:`encode_image` writes (``"jpg"`` is accepted for ``"jpeg"`` too).
ENCODINGS: tuple[str, ...] = ("png", "webp", "jpeg")

#: Everything :func:`load_image` accepts.
ImageInput: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Image.Image | NDArray[Any]
)

InputKind: TypeAlias = Literal["path", "bytes", "file", "pil", "ndarray"]

#: What :func:`to_output` returns: ``"auto"`` mirrors the input, or a numpy ``"array"``, a
#: ``"pil"`` image, ``"png"`` bytes whatever the input was.
OutputKind: TypeAlias = Literal["auto", "array", "pil", "png"]
_OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)

_ORIENTATION_TAG = 0x0112
# Modes whose pixels np.asarray() returns as uint16 (any byte order).
_MODES_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An input image in canonical form, plus what is needed to mirror the input on output.

    The arrays are read-only and never share memory with the caller's object.

    Attributes:
        rgb: ``HxWx3`` uint8, C-contiguous: what the network sees. Transparent and translucent
            pixels are flattened onto white.
        alpha: ``HxW`` uint8: the input's own alpha, or ``None`` when it has none (or it is fully
            opaque, which is the same thing for every result).
        kind: What the caller passed: ``"path"``, ``"bytes"``, ``"file"``, ``"pil"`` or
            ``"ndarray"``. :func:`to_output` answers in the same kind.
        straight_rgb: ``HxWx3`` uint8: the input's colours before flattening, or ``None`` when
            :attr:`alpha` is ``None`` (then they equal :attr:`rgb`). Use :attr:`colors`.
        mode: The PIL mode the pixels were decoded from (``None`` for an array).
        format: The file format Pillow detected (``"JPEG"``, ``"PNG"``...), ``None`` for in-memory
            inputs.
        icc_profile: The embedded ICC profile, if any; :func:`to_output` re-attaches an RGB profile
            to colour results so that their colours stay what they were.
        orientation: The EXIF orientation (2..8) that was applied, or ``None``.
        frame: The frame that was used (0 for single-frame images).
        source_shape: Shape of the array that was passed (``None`` for other inputs).
        source_dtype: Dtype name of the array that was passed (``None`` for other inputs).
    """

    rgb: NDArray[np.uint8]
    alpha: NDArray[np.uint8] | None
    kind: InputKind
    straight_rgb: NDArray[np.uint8] | None = field(default=None, repr=False)
    mode: str | None = None
    format: str | None = None
    icc_profile: bytes | None = field(default=None, repr=False)
    orientation: int | None = None
    frame: int = 0
    source_shape: tuple[int, ...] | None = None
    source_dtype: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, PIL's order."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    @property
    def colors(self) -> NDArray[np.uint8]:
        """``HxWx3`` uint8: the input's own (un-flattened) colours -- what a cutout should show."""
        return self.rgb if self.straight_rgb is None else self.straight_rgb


# -- loading ---------------------------------------------------------------------------------------
def load_image(
    image: ImageInput,
    *,
    exif_transpose: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    frame: int | None = None,
) -> LoadedImage:
    """Read any accepted input into a :class:`LoadedImage`.

    Args:
        image: A path (``str`` or ``os.PathLike``), encoded bytes (``bytes``, ``bytearray``,
            ``memoryview``), a binary file object (read from its start, as Pillow does), a PIL image
            of any mode, or a numpy array ``HxW``, ``HxWx1``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA),
            channels last, of dtype uint8, uint16, bool or float in ``[0, 1]``. Arrays are taken as
            RGB: convert OpenCV's BGR first (``cv2.cvtColor(a, cv2.COLOR_BGR2RGB)``).
        exif_transpose: Apply the EXIF (or XMP) orientation, so that the image and every result
            line up with the picture as viewers display it. Files and PIL images only; results
            carry no orientation tag.
        max_pixels: Largest accepted ``width * height``; checked from the file header, before any
            pixel is decoded. ``None`` disables rmbg's guard (Pillow's own, at twice
            ``Image.MAX_IMAGE_PIXELS``, still applies to files: raise that global in your
            application if you trust your inputs).
        frame: Frame of a multi-frame file (GIF, APNG, multi-page TIFF, MPO) to read. ``None``
            reads the first one and warns (:class:`~rmbg.errors.RmbgWarning`) if there are more.
            A PIL image is used as it is -- its current frame -- and rmbg never seeks it: seek it
            yourself.

    Returns:
        The image in canonical form.

    Raises:
        InvalidImageError: Not an image, an unknown format, a truncated or empty file, an array of
            the wrong shape or dtype, non-finite or out-of-range floats, a 0-size image.
        ImageTooLargeError: More than ``max_pixels`` pixels.
        UnsupportedOptionError: A bad ``max_pixels`` or ``frame``.
        OSError: The path cannot be opened (``FileNotFoundError``, ``PermissionError``...).
    """
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise UnsupportedOptionError(
            f"max_pixels must be a positive int or None, not {max_pixels!r}"
        )
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise UnsupportedOptionError(f"frame must be a non-negative int or None, not {frame!r}")

    if isinstance(image, Image.Image):
        if frame not in (None, image.tell()):
            raise UnsupportedOptionError(
                f"frame={frame} cannot be used with a PIL image positioned on frame "
                f"{image.tell()}: rmbg never seeks a caller's image; call image.seek({frame}) first."
            )
        return _from_pil(image, kind="pil", exif_transpose=exif_transpose, max_pixels=max_pixels)
    if isinstance(image, np.ndarray):
        if frame not in (None, 0):
            raise UnsupportedOptionError("frame= applies to multi-frame files, not to arrays.")
        return _from_array(image, max_pixels=max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = image.tobytes() if isinstance(image, memoryview) else bytes(image)
        if not data:
            raise InvalidImageError("The image data is empty (0 bytes).")
        return _from_encoded(
            io.BytesIO(data), "the image data", "bytes", exif_transpose, max_pixels, frame
        )
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not isinstance(path, str):
            raise InvalidImageError(
                "A bytes path is not accepted; pass a str or pathlib.Path (bytes are image data)."
            )
        if path.startswith(("http://", "https://")):
            raise InvalidImageError(
                f"{path!r} is a URL: rmbg reads local files only. Download it and pass the bytes."
            )
        _decode.check_path(path)
        return _from_encoded(path, repr(path), "path", exif_transpose, max_pixels, frame)
    if _is_text_stream(image):
        raise InvalidImageError("The file is open in text mode; open it in binary mode ('rb').")
    if callable(getattr(image, "read", None)):
        name = getattr(image, "name", None)
        label = f"file {name!r}" if isinstance(name, str) else "the file object"
        return _from_encoded(image, label, "file", exif_transpose, max_pixels, frame)
    raise InvalidImageError(
        f"Cannot read an image from a {type(image).__name__}: pass a path, bytes, a binary file, "
        "a PIL image or a numpy array."
    )


def _is_text_stream(obj: object) -> bool:
    return isinstance(obj, io.TextIOBase)


def _check_size(width: int, height: int, max_pixels: int | None, what: str) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{what} has no pixels ({width}x{height}).")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}. Pass a larger max_pixels (or None) if you trust this input."
        )


def _from_encoded(
    source: str | IO[bytes],
    label: str,
    kind: InputKind,
    exif_transpose: bool,
    max_pixels: int | None,
    frame: int | None,
) -> LoadedImage:
    try:
        with _decode.no_bomb_warning():
            im = Image.open(source)
    except UnidentifiedImageError as exc:
        if kind == "file" and _stream_is_empty(source):
            raise InvalidImageError(f"{label}: empty (0 bytes).") from exc
        raise InvalidImageError(
            f"{label}: not an image, or in a format Pillow cannot read (it reads JPEG, PNG, WebP, "
            "TIFF, GIF, BMP and more)."
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{label}: exceeds Pillow's decompression-bomb limit (twice Image.MAX_IMAGE_PIXELS): "
            f"{_decode.reason(exc)}. rmbg never changes that global; raise it in your application if "
            "you trust this file."
        ) from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError, MemoryError) as exc:
        if kind == "path" or isinstance(exc, MemoryError):
            raise  # the path itself cannot be opened: an OSError, as documented
        raise InvalidImageError(
            f"{label}: cannot be opened as an image ({_decode.reason(exc)})."
        ) from exc
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise InvalidImageError(
            f"{label}: cannot be opened as an image ({_decode.reason(exc)}); is it truncated or corrupt?"
        ) from exc

    with im:  # closes the file only when Pillow opened it itself (never a caller's file object)
        _check_size(im.width, im.height, max_pixels, label)
        try:
            if frame:
                try:
                    with _decode.no_bomb_warning():
                        im.seek(frame)
                except EOFError as exc:
                    raise UnsupportedOptionError(
                        f"frame={frame}, but {label} has only {_decode.frame_count(im)} frame(s)."
                    ) from exc
                _check_size(im.width, im.height, max_pixels, label)
            elif frame is None:
                with _decode.no_bomb_warning():  # counting frames reads their headers
                    frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", 0) else 1
                if frames != 1:
                    warnings.warn(
                        f"{label} has {frames} frames ({im.format}); using the first. Pass "
                        "frame= to choose another.",
                        RmbgWarning,
                        stacklevel=3,
                    )
            return _from_pil(
                im,
                kind=kind,
                exif_transpose=exif_transpose,
                max_pixels=max_pixels,
                label=label,
                frame=frame or 0,
            )
        except (RmbgError, MemoryError, Warning):
            raise  # Warning: an RmbgWarning the application turned into an error
        except Exception as exc:
            # e.g. "image file is truncated" (LOAD_TRUNCATED_IMAGES stays as the app set it), or
            # whatever a plugin raises on a damaged frame
            raise InvalidImageError(_decode.decode_failure(label, im, exc)) from exc


def _stream_is_empty(source: str | IO[bytes]) -> bool:
    if isinstance(source, str):
        return False
    try:
        return source.seek(0, io.SEEK_END) == 0
    except (AttributeError, OSError, ValueError):
        return False


def _has_transparency(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        return True
    if im.info.get("transparency") is not None:
        return True
    return im.mode == "P" and im.palette is not None and im.palette.mode == "RGBA"


def _from_pil(
    im: Image.Image,
    *,
    kind: InputKind,
    exif_transpose: bool,
    max_pixels: int | None,
    label: str = "the PIL image",
    frame: int = 0,
) -> LoadedImage:
    _check_size(im.width, im.height, max_pixels, label)
    orientation: int | None = None
    if exif_transpose:
        try:
            value = im.getexif().get(_ORIENTATION_TAG)
        except Exception:  # best effort: broken metadata must not make a readable image fail
            logger.debug("unreadable EXIF in %s", label, exc_info=True)
            value = None
        if isinstance(value, int) and 2 <= value <= 8:
            orientation = value
        elif value not in (None, 1):
            logger.debug("ignoring invalid EXIF orientation %r in %s", value, label)
    mode = im.mode
    colors, alpha = _pil_pixels(im, label, _PIL_FLOATS if kind == "pil" else _FILE_FLOATS)
    if orientation is not None:
        colors = _orient(colors, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
    icc = im.info.get("icc_profile")
    return _finish(
        colors,
        alpha,
        kind=kind,
        mode=mode,
        format=getattr(im, "format", None),
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
        orientation=orientation,
        frame=frame,
    )


def _pil_pixels(
    im: Image.Image, label: str, float_advice: str
) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Straight colours (``HxWx3`` or ``HxW`` grey) and alpha of ``im``, as uint8, never views of it."""
    mode = im.mode
    transparency = im.info.get("transparency")
    if mode in _MODES_16 or mode == "I":
        raw = np.asarray(im)
        alpha = None
        if isinstance(transparency, int):  # a tRNS grey key, compared at full depth
            alpha = np.where(raw == transparency, 0, 255).astype(np.uint8)
        wide = np.clip(raw, 0, 65535) if mode == "I" else raw
        return (wide.astype(np.uint16) >> 8).astype(np.uint8), alpha
    if mode == "F":
        return _float_to_uint8(
            np.asarray(im), f"{label} (floating-point pixels, mode 'F')", float_advice
        ), None
    if transparency is None:
        if mode == "1":
            return np.asarray(im).astype(np.uint8) * np.uint8(255), None
        if mode in ("L", "RGB"):
            return np.asarray(im), None
    if mode == "RGBA":
        arr = np.asarray(im)
        return arr[..., :3], arr[..., 3]
    if mode in ("LA", "La"):
        arr = np.asarray(im if mode == "LA" else im.convert("LA"))  # La: premultiplied
        return arr[..., 0], arr[..., 1]
    if mode == "RGBX":
        return np.asarray(im)[..., :3], None
    target = "RGBA" if _has_transparency(im) else "RGB"
    try:
        converted = im.convert(target)
    except ValueError as exc:
        raise InvalidImageError(
            f"Images of mode {mode!r} are not supported (Pillow cannot convert them to {target})."
        ) from exc
    arr = np.asarray(converted)
    if target == "RGBA":
        return arr[..., :3], arr[..., 3]
    return arr, None


def _orient(arr: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """A view of ``arr`` as displayed under EXIF ``orientation`` (same as ``ImageOps.exif_transpose``)."""
    t: NDArray[np.uint8] = arr.swapaxes(0, 1)  # the transpose: orientations 5..8 swap the axes
    views: dict[int, NDArray[np.uint8]] = {
        2: arr[:, ::-1],  # mirrored left-right
        3: arr[::-1, ::-1],  # rotated 180 degrees
        4: arr[::-1],  # mirrored top-bottom
        5: t,  # transposed
        6: t[:, ::-1],  # rotated 90 degrees clockwise
        7: t[::-1, ::-1],  # transversed
        8: t[::-1],  # rotated 90 degrees counter-clockwise
    }
    return views.get(orientation, arr)


def _finish(
    colors: NDArray[np.uint8],
    alpha: NDArray[np.uint8] | None,
    *,
    kind: InputKind,
    caller: NDArray[Any] | None = None,
    mode: str | None = None,
    format: str | None = None,
    icc_profile: bytes | None = None,
    orientation: int | None = None,
    frame: int = 0,
    source_shape: tuple[int, ...] | None = None,
    source_dtype: str | None = None,
) -> LoadedImage:
    """Grey -> RGB, drop an all-opaque alpha, flatten onto white; read-only arrays that share no
    memory with ``caller`` (the caller's array, when there is one)."""
    if colors.ndim == 3 and colors.shape[2] == 1:
        colors = colors[:, :, 0]
    if colors.ndim == 2:
        colors = np.repeat(colors[:, :, None], 3, axis=2)  # a fresh array
    straight = _own(colors, caller)
    a = None if alpha is None or bool((alpha == 255).all()) else _own(alpha, caller)
    if a is None:
        rgb, straight_rgb = straight, None
    else:
        rgb, straight_rgb = over_opaque(straight, a, 255), straight
        straight_rgb.flags.writeable = False
        a.flags.writeable = False
    rgb.flags.writeable = False
    return LoadedImage(
        rgb=rgb,
        alpha=a,
        kind=kind,
        straight_rgb=straight_rgb,
        mode=mode,
        format=format,
        icc_profile=icc_profile,
        orientation=orientation,
        frame=frame,
        source_shape=source_shape,
        source_dtype=source_dtype,
    )


def _own(arr: NDArray[np.uint8], caller: NDArray[Any] | None) -> NDArray[np.uint8]:
    """C-contiguous ``arr``, copied if it is not contiguous or may share memory with ``caller``."""
    if caller is not None and np.may_share_memory(arr, caller):
        return np.array(arr, dtype=np.uint8, order="C", copy=True)
    out: NDArray[np.uint8] = np.ascontiguousarray(arr, dtype=np.uint8)
    return out


_ARRAY_FLOATS = "Divide 0..255 data by 255 (or pass it as uint8)."
_PIL_FLOATS = "Scale its values to [0, 1] first (or convert it to 8-bit)."
_FILE_FLOATS = (
    "Save the image with 8- or 16-bit integer pixels, or read it yourself, scale it to [0, 1] "
    "and pass the array."
)


def _float_to_uint8(arr: NDArray[Any], what: str, advice: str = _ARRAY_FLOATS) -> NDArray[np.uint8]:
    work = arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
    if not bool(np.isfinite(work).all()):
        raise InvalidImageError(f"{what} contains NaN or infinite values.")
    lo, hi = float(work.min()), float(work.max())
    if lo < 0.0 or hi > 1.0:
        raise InvalidImageError(
            f"{what} has float values in [{lo:g}, {hi:g}]; float images must lie in [0, 1]. "
            + advice
        )
    scaled = work * 255
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def _from_array(image: NDArray[Any], *, max_pixels: int | None) -> LoadedImage:
    arr = np.asarray(image)  # a plain ndarray view of subclasses (np.ma drops its mask)
    shape = tuple(int(s) for s in arr.shape)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and shape[2] not in (1, 3, 4)):
        hint = ""
        if arr.ndim == 3 and shape[0] in (1, 3, 4):
            hint = " For a channels-first array use a.transpose(1, 2, 0)."
        raise InvalidImageError(
            f"Expected an array of shape HxW, HxWx1, HxWx3 or HxWx4 (channels last), got {shape}."
            + hint
        )
    what = f"the {arr.dtype} array of shape {shape}"
    _check_size(shape[1], shape[0], max_pixels, what)
    kind = arr.dtype.kind
    if arr.dtype == np.bool_:
        data = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype == np.uint8:
        data = arr
    elif kind == "u" and arr.dtype.itemsize == 2:
        data = (arr.astype(np.uint16) >> 8).astype(np.uint8)
    elif kind == "f":
        data = _float_to_uint8(arr, what)
    else:
        raise InvalidImageError(
            f"Arrays of dtype {arr.dtype} are not supported: use uint8 (0..255), uint16 "
            "(0..65535), bool, or float in [0, 1]."
        )
    alpha = data[:, :, 3] if data.ndim == 3 and data.shape[2] == 4 else None
    colors = data[:, :, :3] if alpha is not None else data
    return _finish(
        colors,
        alpha,
        kind="ndarray",
        caller=arr,
        source_shape=shape,
        source_dtype=str(arr.dtype),
    )


# -- output ----------------------------------------------------------------------------------------
def check_output(output: object) -> None:
    """Raise :class:`UnsupportedOptionError` unless ``output`` is an :data:`OutputKind`."""
    if output not in _OUTPUT_KINDS:
        raise UnsupportedOptionError(
            f"output must be one of {', '.join(map(repr, _OUTPUT_KINDS))}, not {output!r}."
        )


def to_output(
    array: NDArray[np.uint8], like: LoadedImage, output: OutputKind = "auto"
) -> Image.Image | NDArray[np.uint8] | bytes:
    """Return a result in the kind of object the caller passed (or asked for).

    Args:
        array: ``HxW`` (a mask), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA) uint8.
        like: The :class:`LoadedImage` the result was computed from.
        output: ``"auto"``: an ``ndarray`` for an array input, PNG bytes for bytes, a PIL image
            for a path, file or PIL image; or ``"array"``, ``"pil"``, ``"png"`` for that kind
            whatever the input.

    Returns:
        An ``ndarray`` that shares no memory with the input (``array`` itself when it is a
        writeable C-contiguous array owning its data, else a copy); PNG bytes (lossless, level
        ``PNG_COMPRESS_LEVEL``, rmbg's fast encoder); or a PIL image of mode ``"L"``, ``"RGB"``
        or ``"RGBA"``. Colour results carry the input's ICC profile when it is an RGB one (PNG:
        an ``iCCP`` chunk; PIL: ``info["icc_profile"]``, written by ``save``).

    Raises:
        ValueError: ``array`` is not one of the three layouts.
        UnsupportedOptionError: ``output`` is not one of the kinds above.
    """
    check_output(output)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    ):
        raise ValueError(f"expected HxW, HxWx3 or HxWx4 uint8, got {array.dtype} {array.shape}")
    if output == "auto":
        output = {"ndarray": "array", "bytes": "png"}.get(like.kind, "pil")  # type: ignore[assignment]
    if output == "array":
        fresh = array.flags.c_contiguous and array.flags.writeable and array.flags.owndata
        return array if fresh else np.array(array, order="C", copy=True)
    icc = like.icc_profile
    if not (array.ndim == 3 and icc is not None and icc[16:20] == b"RGB "):
        icc = None
    if output == "png":
        return encode_image(array, "png", icc_profile=icc)
    pil = Image.fromarray(np.ascontiguousarray(array))
    if icc is not None:
        pil.info["icc_profile"] = icc
    return pil


def encode_image(
    image: Image.Image | NDArray[np.uint8],
    format: str = "png",
    *,
    quality: int | None = None,
    compress_level: int = PNG_COMPRESS_LEVEL,
    icc_profile: bytes | None = None,
) -> bytes:
    """Encode a result (a mask or a cutout) as an image file's bytes: rmbg's one encoder, used by
    ``output="png"`` and by the command line.

    Args:
        image: A PIL image (its ``info["icc_profile"]`` is kept) or an ``HxW``, ``HxWx3`` or
            ``HxWx4`` uint8 array.
        format: ``"png"`` (lossless, rmbg's fast encoder :mod:`rmbg._png`), ``"webp"`` (lossless
            unless ``quality`` is given) or ``"jpeg"``/``"jpg"`` (opaque images only).
        quality: 1-100: lossy WebP at this quality; JPEG quality (default
            :data:`DEFAULT_JPEG_QUALITY`). PNG is lossless and takes none.
        compress_level: PNG deflate level 0-9 (default :data:`PNG_COMPRESS_LEVEL`).
        icc_profile: An ICC profile to embed (default: the PIL image's own, if any).

    Returns:
        The file's bytes.

    Raises:
        UnsupportedOptionError: An unknown format, a quality or level out of range, a quality
            for PNG, or an image with transparency as JPEG.
    """
    fmt = "jpeg" if format == "jpg" else format
    if fmt not in ENCODINGS:
        raise UnsupportedOptionError(
            f"format must be one of {', '.join(ENCODINGS)} (or jpg), not {format!r}."
        )
    if quality is not None and not (
        isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100
    ):
        raise UnsupportedOptionError(f"quality must be a whole number in 1..100, not {quality!r}.")
    if quality is not None and fmt == "png":
        raise UnsupportedOptionError("quality applies to webp and jpeg; PNG is lossless.")
    if isinstance(image, Image.Image):
        if icc_profile is None:
            icc = image.info.get("icc_profile")
            icc_profile = icc if isinstance(icc, bytes) and icc else None
    else:
        image = np.asarray(image)
    if fmt == "png":
        from ._png import encode_png

        if not (isinstance(compress_level, int) and 0 <= compress_level <= 9):
            raise UnsupportedOptionError(
                f"compress_level must be a whole number in 0..9, not {compress_level!r}."
            )
        return encode_png(np.asarray(image), level=compress_level, icc_profile=icc_profile)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    params: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    buf = io.BytesIO()
    if fmt == "webp":
        if quality is None:
            pil.save(buf, "WEBP", lossless=True, **params)
        else:
            pil.save(buf, "WEBP", quality=quality, **params)
        return buf.getvalue()
    if "A" in pil.getbands():
        if pil.getchannel("A").getextrema()[0] != 255:
            raise UnsupportedOptionError(
                "JPEG cannot store transparency: write PNG or WebP, or put the cutout over an "
                "opaque background."
            )
        pil = pil.convert("RGB" if pil.mode == "RGBA" else "L")
    elif pil.mode not in ("RGB", "L"):
        pil = pil.convert("RGB")
    pil.save(buf, "JPEG", quality=quality or DEFAULT_JPEG_QUALITY, **params)
    return buf.getvalue()
