"""A folder of photos, with a progress bar: cutouts written as PNGs, bad files reported, not fatal.

    python examples/folder.py [FOLDER] [--out DIR] [--model MODEL] [--background COLOUR]

FOLDER defaults to rmbg's bundled photos; outputs go to DIR (default: a new temporary folder).
Images go through ``remover.cutouts()``, which overlaps decoding, pre/post-processing, inference
and (with ``then=``) PNG encoding of different images, and yields results in input order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from rmbg import BackgroundRemover, RmbgError
from rmbg.photos import PHOTO_DIR, image_suffixes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=PHOTO_DIR)
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--model", help="checkpoint folder, .onnx, .xml or Hub id")
    parser.add_argument("--background", help="a colour, e.g. white (default: transparent)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: no such folder: {args.folder}", file=sys.stderr)
        return 2
    suffixes = image_suffixes()  # every format Pillow opens here
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in suffixes)
    if not paths:
        print(f"error: no images in {args.folder}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-folder-"))
    out.mkdir(parents=True, exist_ok=True)

    failed = 0
    try:
        # THROUGHPUT: OpenVINO runs several images at once (what the CLI does for a folder)
        remover = BackgroundRemover(args.model, backend_options={"performance_hint": "THROUGHPUT"})
        results = remover.cutouts(
            paths,
            background=args.background,
            output="png",  # PNG bytes, encoded in the worker threads
            return_exceptions=True,  # a bad file yields its error instead of stopping the batch
        )
        for path, result in tqdm(zip(paths, results, strict=True), total=len(paths), unit="image"):
            if isinstance(result, Exception):
                failed += 1
                tqdm.write(f"skipped {path.name}: {result}", file=sys.stderr)
                continue
            (out / f"{path.stem}.png").write_bytes(result)
    except RmbgError as exc:  # the model could not be loaded, or a bad option
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"{len(paths) - failed} cutouts in {out}, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
