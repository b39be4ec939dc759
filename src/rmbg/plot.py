"""The notebook's result figure: the original, the mask and the cutout, side by side.

Needs the ``plot`` extra (``pip install "rmbg[plot]"``: matplotlib)::

    from rmbg import BackgroundRemover
    from rmbg.plot import compare

    remover = BackgroundRemover()
    result = remover.cutout_and_mask("photo.jpg")
    compare("photo.jpg", result.mask, result.cutout).savefig("compare.png")

The panels are laid out by the photo's shape: stacked for a wide photo, side by side for a tall
(or square) one, so each panel stays as large as the figure allows. Transparent parts of the
original and of the cutout are drawn over a grey checkerboard, as image editors show them. The
figure is a plain :class:`matplotlib.figure.Figure` (no pyplot state): Jupyter displays it,
``savefig`` writes it, and a server can make one per request without a display.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .errors import BackendUnavailableError, InvalidImageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .options import CutoutOptions, MaskOptions
    from .remover import BackgroundRemover

__all__ = ["CHECKER_COLORS", "TITLES", "checkerboard", "compare", "preview"]

#: Panel titles, in order.
TITLES: tuple[str, str, str] = ("Original", "Mask", "Cutout")
#: The two greys of the checkerboard drawn behind transparency (RGB, 0..255).
CHECKER_COLORS: tuple[tuple[int, int, int], tuple[int, int, int]] = (
    (204, 204, 204),
    (255, 255, 255),
)

#: Longest side of a panel, in inches.
_PANEL_INCHES = 5.0


def compare(
    image: Any,
    mask: Any,
    cutout: Any,
    *,
    titles: tuple[str, str, str] = TITLES,
    panel_inches: float = _PANEL_INCHES,
    dpi: float = 100.0,
) -> Figure:
    """A three-panel figure: ``image``, ``mask`` and ``cutout``.

    Args:
        image: The photo: a path, encoded bytes, a PIL image or an ``HxWx3``/``HxWx4`` uint8
            array (its own transparency is drawn over the checkerboard).
        mask: The mask, in the same forms (``HxW`` uint8, or a mode ``"L"`` image), drawn in grey.
        cutout: The cutout (RGBA over the checkerboard, or RGB over an opaque background). It
            may be smaller than the photo when it was trimmed.
        titles: The three panel titles.
        panel_inches: Longest side of one panel, in inches.
        dpi: The figure's resolution (pixels per inch) when saved or displayed.

    Returns:
        A :class:`matplotlib.figure.Figure` with three axes, no ticks: stacked (three rows) when
        the photo is wider than tall, side by side (three columns) otherwise.

    Raises:
        BackendUnavailableError: matplotlib is not installed (the ``plot`` extra).
        InvalidImageError: An input that is not an image, or a mask whose size differs from the
            photo's.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError(
            'rmbg.plot needs matplotlib: pip install "rmbg[plot]"'
        ) from exc

    photo = _as_array(image, "image")
    alpha_mask = _as_array(mask, "mask")
    cut = _as_array(cutout, "cutout")
    if alpha_mask.ndim == 3:
        alpha_mask = alpha_mask[..., 0]
    if alpha_mask.shape != photo.shape[:2]:
        raise InvalidImageError(
            f"the mask is {alpha_mask.shape[1]}x{alpha_mask.shape[0]} but the photo is "
            f"{photo.shape[1]}x{photo.shape[0]}: pass the mask made from this photo."
        )
    height, width = photo.shape[:2]
    wide = width > height
    rows, cols = (3, 1) if wide else (1, 3)
    scale = panel_inches / max(width, height)
    title_room = 0.35  # inches above each panel for its title
    panel_w, panel_h = width * scale, height * scale
    fig_w = cols * panel_w + 0.2 * (cols + 1)
    fig_h = rows * (panel_h + title_room) + 0.2

    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=True)
    panels = (_over_checkerboard(photo), alpha_mask, _over_checkerboard(cut))
    for ax, title, panel in zip(axes, titles, panels, strict=True):
        if panel.ndim == 2:
            ax.imshow(panel, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
        else:
            ax.imshow(panel, interpolation="antialiased")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def preview(
    remover: BackgroundRemover,
    image: Any,
    options: CutoutOptions | MaskOptions | None = None,
    *,
    device: str | None = None,
) -> Figure:
    """The figure of ``image`` as ``remover`` cuts it out with ``options`` (one network run):
    what ``rmbg cutout --preview FILE`` saves.

    Raises:
        As :meth:`~rmbg.BackgroundRemover.cutout_and_mask` and :func:`compare`.
    """
    from .io import load_image
    from .options import CutoutOptions

    opts = CutoutOptions.build(options)
    loaded = load_image(image, exif_transpose=opts.exif_transpose, max_pixels=remover.max_pixels)
    photo = loaded.colors if loaded.alpha is None else np.dstack([loaded.colors, loaded.alpha])
    result = remover.cutout_and_mask(photo, opts, device=device, output="array")
    return compare(photo, result.mask, result.cutout)


def checkerboard(height: int, width: int, square: int | None = None) -> NDArray[np.uint8]:
    """An ``HxWx3`` checkerboard of :data:`CHECKER_COLORS` (squares of ``square`` pixels;
    default: about 1/24 of the longer side, at least 4)."""
    if square is None:
        square = max(4, max(height, width) // 24)
    ys = (np.arange(height) // square)[:, None]
    xs = (np.arange(width) // square)[None, :]
    dark = (ys + xs) % 2 == 0
    out = np.empty((height, width, 3), np.uint8)
    out[dark] = CHECKER_COLORS[0]
    out[~dark] = CHECKER_COLORS[1]
    return out


def _over_checkerboard(rgb_or_rgba: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """RGB as it is; RGBA composited over a checkerboard, for display."""
    if rgb_or_rgba.ndim == 2:
        rgb_or_rgba = np.repeat(rgb_or_rgba[..., None], 3, axis=2)
    if rgb_or_rgba.shape[2] == 3:
        return rgb_or_rgba
    colors = rgb_or_rgba[..., :3].astype(np.uint16)
    alpha = rgb_or_rgba[..., 3:].astype(np.uint16)
    board = checkerboard(*rgb_or_rgba.shape[:2]).astype(np.uint16)
    mixed = (colors * alpha + board * (255 - alpha) + 127) // 255
    return mixed.astype(np.uint8)


def _as_array(value: Any, what: str) -> NDArray[np.uint8]:
    """An ``HxW``, ``HxWx3`` or ``HxWx4`` uint8 array from a path, bytes, PIL image or array."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, np.ndarray):
        arr = value
    else:
        if isinstance(value, (bytes, bytearray)):
            import io

            value = io.BytesIO(bytes(value))
        if isinstance(value, (str, os.PathLike)) or hasattr(value, "read"):
            try:
                with Image.open(value) as opened:
                    opened.load()
                    value = opened.copy()
            except (OSError, UnidentifiedImageError) as exc:
                raise InvalidImageError(f"compare(): the {what} cannot be read ({exc}).") from exc
        if not isinstance(value, Image.Image):
            raise InvalidImageError(
                f"compare(): the {what} must be a path, bytes, a PIL image or an array, "
                f"not {type(value).__name__}."
            )
        if value.mode not in ("L", "RGB", "RGBA"):
            has_alpha = "A" in value.getbands() or "transparency" in value.info
            value = value.convert("RGBA" if has_alpha else "RGB")
        arr = np.asarray(value)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InvalidImageError(
            f"compare(): the {what} must be HxW, HxWx3 or HxWx4 uint8, not {arr.dtype} {arr.shape}."
        )
    return arr
