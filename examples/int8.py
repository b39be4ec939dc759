"""INT8: quantize once with NNCF, check it against f32, and use it.

    python examples/int8.py [IMAGE] [--out DIR] [--model CHECKPOINT] [--input-size N]

The first run quantizes (minutes: calibration statistics on 32 samples of the bundled photos,
then f32 and INT8 compared on four held-out photos) and caches the INT8 model only if every
held-out mask stays within the bar (IoU >= 0.99, mean difference <= 2 grey levels); later runs
load it from the cache in about a second. Needs ``pip install "rmbg[int8]"``.

``--input-size 512`` runs the network at 512x512 instead of 1024x1024: four times less work, for
a quick try (the CI runs it so); the quality check is made at that size too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rmbg import BackgroundRemover, RmbgError
from rmbg.metrics import mask_figures
from rmbg.photos import PHOTO_DIR

PHOTO = PHOTO_DIR / "coffee.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=PHOTO)
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: $RMBG_MODEL)")
    parser.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    parser.add_argument("--input-size", type=int, help="network input size (default: 1024)")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"error: no such image: {args.image}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-int8-"))
    out.mkdir(parents=True, exist_ok=True)

    masks = {}
    try:
        for precision in ("f32", "int8"):
            remover = BackgroundRemover(
                args.model, device=args.device, precision=precision, input_size=args.input_size
            )
            start = time.perf_counter()
            remover.warmup()  # int8: quantizes and checks on first use, else reads the cache
            print(f"{precision}: ready in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            masks[precision] = remover.mask(args.image, output="array")
            print(f"{precision}: one mask in {time.perf_counter() - start:.2f} s")
            if precision == "int8":
                report = remover.info.details.get("quantization")
                remover.cutout(args.image).save(out / f"{args.image.stem}.int8-cutout.png")
    except RmbgError as exc:  # e.g. QuantizationQualityError: the bar was missed, nothing cached
        print(f"error: {exc}", file=sys.stderr)
        return 1

    f = mask_figures(masks["f32"], masks["int8"])  # the figures of INT8's own quality bar
    print(
        f"{args.image.name}, int8 vs f32: IoU {f['iou']:.4f}, mean difference {f['mean_diff']:.2f}"
    )
    print("the held-out check it passed when it was made:")
    print(json.dumps(report, indent=2))
    (out / "quantization.json").write_text(json.dumps(report, indent=2))
    print(f"wrote the INT8 cutout and quantization.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
