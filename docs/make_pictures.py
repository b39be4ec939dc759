"""Generate the before/after pictures of ``docs/options.md`` into ``docs/images/``.

Every picture is made by the library itself on the bundled photos (``src/rmbg/data/photos``), with
a real checkpoint: ``--model`` (a Hub id, a checkpoint folder, an ``.onnx`` or an OpenVINO IR), else
``$RMBG_MODEL``, else ``briaai/RMBG-1.4`` from the Hugging Face Hub. The project's pictures were made
with the offline stand-in checkpoint on OpenVINO::

    RMBG_MODEL=~/.cache/rmbg-ci/standin PYTHONPATH=src python docs/make_pictures.py

Files are small progressive JPEGs (the quality is lowered until each fits in 150 KB; a ``.png``
name would write an optimised PNG instead); transparency is shown over a light checkerboard.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, ImageOps

from rmbg import BackgroundRemover

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "src" / "rmbg" / "data" / "photos"
MAX_BYTES = 150_000
LABEL_HEIGHT = 26
GAP = 8
FONT = ImageFont.load_default(size=14)


# -- drawing helpers -------------------------------------------------------------------------------
def photo(name: str) -> Image.Image:
    with Image.open(PHOTOS / f"{name}.jpg") as im:
        return im.convert("RGB")


def checker(size: tuple[int, int], square: int = 10) -> Image.Image:
    """A light-grey checkerboard, the usual way of showing transparency."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    tiles = ((yy // square + xx // square) % 2).astype(bool)
    grey = np.where(tiles, 204, 244).astype(np.uint8)
    return Image.fromarray(np.dstack([grey, grey, grey]))


def flat(im: Image.Image) -> Image.Image:
    """RGB as displayed: RGBA over the checkerboard, grey masks as grey."""
    if im.mode == "RGBA":
        board = checker(im.size)
        board.paste(im, (0, 0), im)
        return board
    return im.convert("RGB")


def zoom(im: Image.Image, box: tuple[int, int, int, int], factor: float) -> Image.Image:
    """A crop enlarged with nearest-neighbour: the pixels stay honest."""
    crop = im.crop(box)
    size = (round(crop.width * factor), round(crop.height * factor))
    return crop.resize(size, Image.Resampling.NEAREST)


def fit_height(im: Image.Image, height: int) -> Image.Image:
    if im.height == height:
        return im
    width = round(im.width * height / im.height)
    return im.resize((width, height), Image.Resampling.LANCZOS)


def panels(
    images: Sequence[Image.Image],
    labels: Sequence[str],
    height: int = 260,
    same_scale: bool = False,
) -> Image.Image:
    """Images side by side, each with a one-line label above it. ``same_scale`` keeps their relative sizes
    (all scaled by the factor that brings the tallest to ``height``) and aligns them at the top."""
    shown = [flat(im) for im in images]
    if same_scale:
        factor = height / max(im.height for im in shown)
        shown = [
            im.resize(
                (round(im.width * factor), round(im.height * factor)), Image.Resampling.LANCZOS
            )
            for im in shown
        ]
    else:
        shown = [fit_height(im, height) for im in shown]
    width = sum(im.width for im in shown) + GAP * (len(shown) + 1)
    sheet = Image.new("RGB", (width, height + LABEL_HEIGHT + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for im, label in zip(shown, labels, strict=True):
        draw.text((x, 5), label, fill=(30, 30, 30), font=FONT)
        sheet.paste(im, (x, LABEL_HEIGHT))
        # a hairline frame: white results must not melt into the page
        draw.rectangle(
            (x - 1, LABEL_HEIGHT - 1, x + im.width, LABEL_HEIGHT + im.height), None, "#bbb"
        )
        x += im.width + GAP
    return sheet


def stack(sheets: Sequence[Image.Image]) -> Image.Image:
    """Rows of :func:`panels`, one under the other, left-aligned."""
    width = max(s.width for s in sheets)
    out = Image.new("RGB", (width, sum(s.height for s in sheets)), "white")
    y = 0
    for s in sheets:
        out.paste(s, (0, y))
        y += s.height
    return out


def outline(mask: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """RGBA layer with the mask's 50% contour drawn in ``colour``."""
    edge = _contour(np.asarray(mask) >= 128)
    layer = np.zeros((*edge.shape, 4), np.uint8)
    layer[edge] = (*colour, 255)
    return Image.fromarray(layer, "RGBA")


def _contour(hard: NDArray[np.bool_], width: int = 3) -> NDArray[np.bool_]:
    """Pixels of ``hard`` with a 4-neighbour outside it, thickened to about ``width`` pixels."""
    pad = np.pad(hard, 1, mode="edge")
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    thick = hard & ~inner
    for _ in range(width - 1):
        grown = thick.copy()
        grown[1:] |= thick[:-1]
        grown[:-1] |= thick[1:]
        grown[:, 1:] |= thick[:, :-1]
        grown[:, :-1] |= thick[:, 1:]
        thick = grown
    return thick


def save(im: Image.Image, name: str, out_dir: Path) -> Path:
    """JPEG (quality lowered until it fits MAX_BYTES) or, for ``.png`` names, an optimised PNG."""
    path = out_dir / name
    if name.endswith(".png"):
        im.save(path, "PNG", optimize=True)
    else:
        for quality in (86, 80, 74, 68, 60):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
            if buf.tell() <= MAX_BYTES:
                break
        path.write_bytes(buf.getvalue())
    size = path.stat().st_size
    sys.stdout.write(
        f"{path.relative_to(HERE.parent)}: {im.width}x{im.height}, {size / 1e3:.0f} KB\n"
    )
    if size > MAX_BYTES:
        sys.stderr.write(f"  warning: larger than {MAX_BYTES / 1e3:.0f} KB\n")
    return path


# -- the pictures ----------------------------------------------------------------------------------
def make_all(remover: BackgroundRemover, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    astronaut, coffee, chelsea, rocket = (
        photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket")
    )
    made: list[Path] = []

    # background colour
    made.append(
        save(
            panels(
                [
                    astronaut,
                    remover.cutout(astronaut),
                    remover.cutout(astronaut, background="white"),
                    remover.cutout(astronaut, background="#2f6fd6"),
                ],
                ["photo", "cutout(img)", 'background="white"', 'background="#2f6fd6"'],
                height=220,
            ),
            "background-colour.jpg",
            out_dir,
        )
    )

    # background image (a path is read as an image; a str is always a colour)
    made.append(
        save(
            panels(
                [astronaut, rocket, remover.cutout(astronaut, background=PHOTOS / "rocket.jpg")],
                ["photo", "backdrop", 'background=Path("rocket.jpg")'],
            ),
            "background-image.jpg",
            out_dir,
        )
    )

    # trim and margin, drawn at one scale so that the crops show
    full = remover.cutout(coffee)
    trimmed = remover.cutout(coffee, trim=True)
    margin = remover.cutout(coffee, trim=True, margin=24)
    made.append(
        save(
            panels(
                [full, trimmed, margin],
                [
                    f"cutout(img): {full.width}x{full.height}",
                    f"trim=True: {trimmed.width}x{trimmed.height}",
                    f"trim=True, margin=24: {margin.width}x{margin.height}",
                ],
                same_scale=True,
            ),
            "trim-margin.jpg",
            out_dir,
        )
    )

    # threshold: the soft mask and a hard one, and what each cutout keeps of the whiskers
    box = (250, 20, 451, 220)
    soft_cut = remover.cutout(chelsea, background="#2f6fd6")
    hard_cut = remover.cutout(chelsea, background="#2f6fd6", threshold=0.5)
    made.append(
        save(
            panels(
                [
                    remover.mask(chelsea).crop(box),
                    remover.mask(chelsea, threshold=0.5).crop(box),
                    soft_cut.crop(box),
                    hard_cut.crop(box),
                ],
                ["mask(img)", "mask(img, threshold=0.5)", "cutout, soft", "cutout, threshold=0.5"],
                height=200,
            ),
            "threshold.jpg",
            out_dir,
        )
    )

    # feather: a hard edge softened, zoomed on the saucer's rim
    box = (420, 250, 520, 330)
    made.append(
        save(
            panels(
                [
                    zoom(remover.mask(coffee, threshold=0.5), box, 2),
                    zoom(remover.mask(coffee, threshold=0.5, feather=3), box, 2),
                    zoom(remover.cutout(coffee, threshold=0.5, background="#2f6fd6"), box, 2),
                    zoom(
                        remover.cutout(coffee, threshold=0.5, feather=3, background="#2f6fd6"),
                        box,
                        2,
                    ),
                ],
                ["mask, threshold=0.5", "+ feather=3", "cutout, threshold=0.5", "+ feather=3"],
                height=160,
            ),
            "feather.jpg",
            out_dir,
        )
    )

    # grow and shrink, with the model's own 50% contour in red for reference
    contour = outline(remover.mask(astronaut), (255, 214, 0))
    grown = []
    for grow in (-12, 0, 12):
        cut = flat(remover.cutout(astronaut, grow=grow, background="#2f6fd6").convert("RGBA"))
        cut.paste(contour, (0, 0), contour)
        grown.append(cut)
    made.append(
        save(
            panels(
                grown, ["grow=-12", "grow=0 (yellow: where the mask is 50%)", "grow=12"], height=260
            ),
            "grow.jpg",
            out_dir,
        )
    )

    # invert: keep the background instead
    made.append(
        save(
            panels(
                [coffee, remover.cutout(coffee), remover.cutout(coffee, invert=True)],
                ["photo", "cutout(img)", "cutout(img, invert=True)"],
                height=200,
            ),
            "invert.jpg",
            out_dir,
        )
    )

    # normalize: a photo with a subject, and one without
    empty = coffee.crop((500, 200, 600, 400))  # bare wood: nothing to cut out
    rows = [
        panels(
            [image, remover.mask(image), remover.mask(image, normalize="none")],
            labels,
            height=180,
        )
        for image, labels in (
            (astronaut, ["a subject", 'normalize="minmax"', 'normalize="none"']),
            (empty, ["no subject", '"minmax"', '"none"']),
        )
    ]
    made.append(save(stack(rows), "normalize.jpg", out_dir))

    # refine_foreground: fur over contrasting colours, before and after, zoomed 2x
    box = (290, 170, 451, 300)  # the chin and whiskers, over a pale out-of-focus background
    rows = []
    for first, label, colour, name in (
        (chelsea, "photo (crop, 2x)", "#1f4fd0", "blue"),
        (remover.mask(chelsea), "its mask", "#141414", "black"),
    ):
        plain = remover.cutout(chelsea, background=colour)
        refined = remover.cutout(chelsea, background=colour, refine_foreground=True)
        rows.append(
            panels(
                [zoom(first, box, 2), zoom(plain, box, 2), zoom(refined, box, 2)],
                [label, f"over {name}", "+ refine_foreground=True"],
                height=220,
            )
        )
    made.append(save(stack(rows), "refine-foreground.jpg", out_dir))

    # an EXIF-rotated phone JPEG: stored sideways, displayed upright; results follow the display
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    chelsea.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=92, exif=exif)
    phone = buf.getvalue()
    with Image.open(io.BytesIO(phone)) as stored:
        stored_pixels = stored.convert("RGB")
        displayed = ImageOps.exif_transpose(stored).convert("RGB")
    mask = Image.open(io.BytesIO(remover.mask(phone)))  # bytes in, PNG bytes out
    cut = Image.open(io.BytesIO(remover.cutout(phone, background="#2f6fd6")))
    made.append(
        save(
            panels(
                [stored_pixels, displayed, mask, cut],
                [
                    "stored (EXIF 6)",
                    f"as shown: {displayed.width}x{displayed.height}",
                    f"mask(data): {mask.width}x{mask.height}",
                    'cutout(data, background="#2f6fd6")',
                ],
                height=180,
            ),
            "exif-orientation.jpg",
            out_dir,
        )
    )
    return made


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--model", default=None, help="checkpoint, .onnx, IR or Hub id (default: $RMBG_MODEL)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "images", help="output folder")
    parser.add_argument("--device", default=None, help="OpenVINO device (default: AUTO)")
    args = parser.parse_args(argv)
    model = args.model or os.environ.get("RMBG_MODEL")
    remover = BackgroundRemover(model, device=args.device)
    made = make_all(remover, args.out)
    total = sum(p.stat().st_size for p in made)
    sys.stdout.write(f"{len(made)} pictures, {total / 1e6:.2f} MB in total\n")


if __name__ == "__main__":
    main()
