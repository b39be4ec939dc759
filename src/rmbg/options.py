"""Typed options: what a mask or a cutout should look like, validated once.

Every frontend builds these from its own inputs -- Python keywords, CLI flags, HTTP query fields,
a demo's widgets, a Ray job's settings, a video's per-frame options -- and hands them to
:class:`~rmbg.BackgroundRemover`. A bad value fails when the options are built, before any image
is read or any model is loaded, with the same message whichever frontend sent it::

    >>> from rmbg.options import CutoutOptions
    >>> opts = CutoutOptions(background="white", feather=1.5, trim=True, margin=8)
    >>> opts.replace(grow=2).grow
    2
    >>> CutoutOptions(margin=8)                   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    rmbg.errors.UnsupportedOptionError: margin= and trim_threshold= need trim=True ...

A background image is decoded once, when the options are built, so a batch of a thousand
cutouts over the same backdrop reads it once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeAlias, TypedDict, cast, get_args

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Self

from . import _validate as check
from .compose import DEFAULT_TRIM_THRESHOLD, BackgroundImage, Color, parse_color
from .errors import UnsupportedOptionError
from .postprocess import Normalize

__all__ = [
    "DEFAULT_TRIM_THRESHOLD",
    "NORMALIZE",
    "Background",
    "BackgroundImage",
    "Color",
    "CutoutKeywords",
    "CutoutOptions",
    "MaskKeywords",
    "MaskOptions",
    "Normalize",
    "resolve_background",
]

#: The values ``normalize=`` accepts.
NORMALIZE: tuple[str, ...] = get_args(Normalize)

#: What ``background=`` accepts: ``None`` (transparent); a colour (``"white"``, ``"#0af"``,
#: ``"#00aaff80"``, ``"rgb(0, 170, 255)"``, ``(0, 170, 255)``, ``(0, 170, 255, 128)``,
#: ``"transparent"``); or an image (a ``pathlib.Path``, encoded ``bytes``, a PIL image or an
#: array; a ``str`` is always read as a colour).
Background: TypeAlias = (
    str | tuple[int, ...] | os.PathLike[str] | bytes | NDArray[Any] | BackgroundImage | Any | None
)


def resolve_background(background: Background) -> Color | BackgroundImage | None:
    """A colour parsed, or an image decoded: what :func:`rmbg.compose.compose` takes.

    Raises:
        UnsupportedOptionError: Neither a colour nor an image.
        InvalidImageError: An image that cannot be read.
    """
    if background is None or isinstance(background, BackgroundImage):
        return background
    if isinstance(background, (str, tuple, list)):
        return parse_color(tuple(background) if isinstance(background, list) else background)
    from PIL import Image

    if not isinstance(background, (os.PathLike, bytes, bytearray, Image.Image, np.ndarray)):
        raise UnsupportedOptionError(
            f"background must be None, a colour or an image, not a {type(background).__name__}. "
            "Colours: a name ('white'), '#rrggbb[aa]', 'rgb(r, g, b)' or an (r, g, b[, a]) tuple; "
            "images: a pathlib.Path, encoded bytes, a PIL image or an array."
        )
    from .io import load_image

    loaded = load_image(bytes(background) if isinstance(background, bytearray) else background)
    return BackgroundImage(loaded.colors, loaded.alpha)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"", "none", "null"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaskOptions:
    """How a mask is made and shaped. Steps run in this order, each only when asked for:
    ``threshold``, ``grow``, ``feather``, ``invert`` (see :func:`rmbg.compose.shape_mask`).

    Attributes:
        normalize: ``"minmax"`` stretches each mask to 0..255 like the reference pipeline;
            ``"none"`` keeps the network's probabilities (an empty scene stays empty).
        threshold: A hard mask: pixels at or above this fraction (0..1) of 255 become 255, the
            rest 0. ``None`` keeps the mask soft.
        feather: Soften the edge by a Gaussian of this standard deviation, in pixels (>= 0).
        grow: Grow (positive) or shrink (negative) the subject by this many pixels.
        invert: Keep the background instead of the subject.
        exif_transpose: Apply the EXIF orientation first, as viewers display the photo.
    """

    #: What the options make (used in messages).
    kind: ClassVar[str] = "mask"

    normalize: Normalize = "minmax"
    threshold: float | None = None
    feather: float = 0.0
    grow: int = 0
    invert: bool = False
    exif_transpose: bool = True

    def __post_init__(self) -> None:
        self._set("normalize", check.choice("normalize", self.normalize, NORMALIZE))
        self._set("threshold", check.threshold(self.threshold))
        self._set("feather", check.feather(self.feather))
        self._set("grow", check.grow(self.grow))
        self._set("invert", check.flag("invert", self.invert))
        self._set("exif_transpose", check.flag("exif_transpose", self.exif_transpose))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def _check_names(cls, names: Sequence[str] | Mapping[str, Any]) -> None:
        unknown = [n for n in names if n not in cls.names()]
        if unknown:
            raise UnsupportedOptionError(
                f"Unknown {cls.kind} option(s): {', '.join(sorted(unknown))}. "
                f"Known: {', '.join(cls.names())}."
            )

    @classmethod
    def build(cls, options: MaskOptions | None = None, /, **overrides: Any) -> Self:
        """``options`` (or the defaults) with ``overrides`` applied, validated.

        A :class:`MaskOptions` given where :class:`CutoutOptions` are wanted keeps its values
        and takes the cutout defaults for the rest.

        Raises:
            UnsupportedOptionError: An unknown name or a bad value; the message lists the names.
        """
        cls._check_names(overrides)
        if options is None:
            return cls(**overrides)
        if not isinstance(options, MaskOptions):
            raise UnsupportedOptionError(
                f"options must be {cls.__name__} (rmbg.options), not {type(options).__name__}."
            )
        if type(options) is cls and not overrides:
            return options
        values = {n: getattr(options, n) for n in options.names() if n in cls.names()}
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated; unknown names raise)."""
        self._check_names(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> Self:
        """Options from text fields (HTTP query or form fields, environment, config files).

        Each value is parsed by the field's type: numbers, ``true``/``false`` (also ``1/0``,
        ``yes/no``, ``on/off``), ``none`` or an empty string for an unset optional number;
        ``background`` is a colour (images are passed as objects, not text).

        Raises:
            UnsupportedOptionError: An unknown name, or a value that does not parse or validate.
        """
        cls._check_names(values)
        parsed: dict[str, Any] = {}
        hints = _FIELD_KINDS
        for name, raw in values.items():
            text = str(raw).strip()
            kind = hints.get(name, "str")
            try:
                if kind == "bool":
                    low = text.lower()
                    if low not in _TRUE | _FALSE:
                        raise ValueError
                    parsed[name] = low in _TRUE
                elif kind in ("float?", "int?") and text.lower() in _NONE:
                    parsed[name] = None
                elif kind.startswith("float"):
                    parsed[name] = float(text)
                elif kind.startswith("int"):
                    parsed[name] = int(text)
                elif kind == "background":
                    parsed[name] = None if text.lower() in _NONE else text
                else:
                    parsed[name] = text
            except ValueError:
                expected = {"bool": "true or false", "float": "a number", "int": "a whole number"}
                raise UnsupportedOptionError(
                    f"{name}={raw!r} is not {expected.get(kind.rstrip('?'), 'valid')}."
                ) from None
        return cls(**parsed)

    def as_dict(self) -> dict[str, Any]:
        """The options as plain values (a background image as its description)."""
        out = {}
        for name in self.names():
            value = getattr(self, name)
            out[name] = repr(value) if isinstance(value, BackgroundImage) else value
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class CutoutOptions(MaskOptions):
    """How a cutout is made: the mask options, plus what goes behind and around the subject.

    Attributes:
        background: ``None`` (transparent, an RGBA result); a colour (an RGB result over an
            opaque one, RGBA over a translucent one); or an image, scaled to cover the output
            and centre-cropped (see :data:`Background`). Resolved when the options are built:
            afterwards a :data:`Color` tuple, a :class:`BackgroundImage` or ``None``.
        trim: Crop to the subject's bounding box (alpha >= ``trim_threshold``) plus ``margin``.
        margin: Pixels kept around the subject when trimming (needs ``trim``; default 0).
        trim_threshold: Alpha level (1..255) that counts as subject when trimming (needs
            ``trim``; default :data:`DEFAULT_TRIM_THRESHOLD`).
        refine_foreground: Estimate the foreground colour at soft edges so that the old
            background does not bleed into hair and fur (see ``docs/options.md``).
    """

    kind: ClassVar[str] = "cutout"

    background: Background = None
    trim: bool = False
    margin: int | None = None
    trim_threshold: int | None = None
    refine_foreground: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("trim", check.flag("trim", self.trim))
        self._set("refine_foreground", check.flag("refine_foreground", self.refine_foreground))
        if self.margin is not None:
            self._set("margin", check.margin(self.margin))
        if self.trim_threshold is not None:
            self._set("trim_threshold", check.trim_threshold(self.trim_threshold))
        if not self.trim and (self.margin is not None or self.trim_threshold is not None):
            raise UnsupportedOptionError(
                "margin= and trim_threshold= need trim=True (they say how to trim); "
                "add trim=True or leave them out."
            )
        self._set("background", resolve_background(self.background))

    @property
    def trim_margin(self) -> int:
        """``margin``, or 0 when unset."""
        return 0 if self.margin is None else self.margin

    @property
    def trim_level(self) -> int:
        """``trim_threshold``, or :data:`DEFAULT_TRIM_THRESHOLD` when unset."""
        return DEFAULT_TRIM_THRESHOLD if self.trim_threshold is None else self.trim_threshold

    @property
    def backdrop(self) -> Color | BackgroundImage | None:
        """The resolved background: a colour, a decoded image, or ``None``."""
        return cast("Color | BackgroundImage | None", self.background)

    @property
    def opaque(self) -> bool:
        """Whether cutouts are opaque (RGB): an opaque background colour or image."""
        bg = self.backdrop
        if isinstance(bg, BackgroundImage):
            return bg.alpha is None
        return bg is not None and bg[3] == 255


#: How each option's text form parses (for :meth:`MaskOptions.from_strings`).
_FIELD_KINDS: dict[str, str] = {
    "normalize": "str",
    "threshold": "float?",
    "feather": "float",
    "grow": "int",
    "invert": "bool",
    "exif_transpose": "bool",
    "background": "background",
    "trim": "bool",
    "margin": "int?",
    "trim_threshold": "int?",
    "refine_foreground": "bool",
}


class MaskKeywords(TypedDict, total=False):
    """The keyword spelling of :class:`MaskOptions` (for ``mask(image, **keywords)``)."""

    normalize: Normalize
    threshold: float | None
    feather: float
    grow: int
    invert: bool
    exif_transpose: bool


class CutoutKeywords(MaskKeywords, total=False):
    """The keyword spelling of :class:`CutoutOptions` (for ``cutout(image, **keywords)``)."""

    background: Background
    trim: bool
    margin: int | None
    trim_threshold: int | None
    refine_foreground: bool
