"""A custom background: the subject over a colour, and over another photo.

    python examples/background.py [IMAGE] [--backdrop IMAGE] [--colour COLOUR] [--out DIR]

IMAGE and the backdrop default to bundled photos; outputs go to DIR (default: a new temporary
folder). Colours are CSS names, ``#rrggbb``, ``#rrggbbaa`` or ``rgb(r, g, b)``; an image backdrop
is scaled to cover the output and centred. Options are checked (and a backdrop decoded) once
when ``CutoutOptions`` is built, then reused for every photo.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rmbg import BackgroundRemover, RmbgError
from rmbg.options import CutoutOptions
from rmbg.photos import PHOTO_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=PHOTO_DIR / "astronaut.jpg")
    parser.add_argument("--backdrop", type=Path, default=PHOTO_DIR / "rocket.jpg")
    parser.add_argument("--colour", default="#2f6fd6")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--model", help="checkpoint folder, .onnx, .xml or Hub id")
    args = parser.parse_args(argv)
    for path in (args.image, args.backdrop):
        if not path.is_file():
            print(f"error: no such image: {path}", file=sys.stderr)
            return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-background-"))
    out.mkdir(parents=True, exist_ok=True)

    try:
        over_colour = CutoutOptions(background=args.colour)  # validated here, once
        over_photo = CutoutOptions(background=args.backdrop)  # decoded here, once
        # a semi-transparent colour keeps an alpha channel: the result stays RGBA
        tinted = CutoutOptions(background="#ffffff80")
        remover = BackgroundRemover(args.model)
        results = {
            "colour": remover.cutout(args.image, over_colour),  # RGB: the colour is opaque
            "photo": remover.cutout(args.image, over_photo),
            "tinted": remover.cutout(args.image, tinted),
            # keywords work too, for one call
            "white-trimmed": remover.cutout(args.image, background="white", trim=True, margin=8),
        }
    except RmbgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    for name, image in results.items():
        path = out / f"{args.image.stem}.{name}.png"
        image.save(path)
        print(f"{path.name}: {image.mode} {image.width}x{image.height}")
    print(f"wrote {len(results)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
