"""One photo: its mask, its cutout, and a cutout with a few options.

    python examples/one_photo.py [IMAGE] [--out DIR] [--model MODEL] [--device DEVICE]

IMAGE defaults to a bundled photo; outputs go to DIR (default: a new temporary folder), never
next to the input. The model is --model, else ``$RMBG_MODEL``, else ``briaai/RMBG-1.4`` from the
Hugging Face Hub (gated: accept the licence and set HF_TOKEN first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rmbg import BackgroundRemover, RmbgError
from rmbg.photos import PHOTO_DIR

PHOTO = PHOTO_DIR / "astronaut.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=PHOTO)
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--model", help="checkpoint folder, .onnx, .xml or Hub id")
    parser.add_argument("--device", help="OpenVINO device: AUTO (default), CPU, GPU, NPU...")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"error: no such image: {args.image}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-one-photo-"))
    out.mkdir(parents=True, exist_ok=True)

    try:
        remover = BackgroundRemover(args.model, device=args.device)  # the model loads once
        start = time.perf_counter()
        mask = remover.mask(args.image)  # a PIL image, mode "L", the photo's size
        first = time.perf_counter() - start
        cutout = remover.cutout(args.image)  # RGBA: the subject, the rest transparent
        # options: a hard edge softened a little, cropped to the subject with a margin, on white
        card = remover.cutout(
            args.image, threshold=0.5, feather=1.5, trim=True, margin=16, background="white"
        )
        # PNG bytes straight from rmbg's fast encoder, e.g. to upload or store
        png = remover.cutout(args.image, output="png")
    except RmbgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    stem = args.image.stem
    mask.save(out / f"{stem}.mask.png")
    cutout.save(out / f"{stem}.cutout.png")
    card.save(out / f"{stem}.card.jpg", quality=90)
    (out / f"{stem}.cutout-bytes.png").write_bytes(png)

    info = remover.info
    print(f"{args.image.name}: {mask.width}x{mask.height}, first call {first:.2f} s (compiles)")
    print(f"ran on {info.backend} {'/'.join(info.execution_devices)} ({info.inference_precision})")
    print(f"subject covers {sum(mask.histogram()[128:]) / (mask.width * mask.height):.0%}")
    print(f"wrote 4 files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
