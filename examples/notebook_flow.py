"""The OpenVINO notebook's flow, written with rmbg: the PyTorch reference and OpenVINO on the same
photo, their masks compared, and the original / mask / cutout figure saved.

    python examples/notebook_flow.py [IMAGE] [--out DIR] [--model CHECKPOINT] [--device DEVICE]
                                     [--precision P]

The notebook loads the network in PyTorch, runs it, converts it to OpenVINO, runs it again and
plots both results. rmbg does each step behind one call: ``backend="torch"`` is the reference,
``backend="openvino"`` converts once (cached on disk) and compiles per device; both share the
same numpy pre- and post-processing, so their masks can be compared number for number.
The model must be a checkpoint (PyTorch cannot run an .onnx or an IR): --model, else
``$RMBG_MODEL``, else ``briaai/RMBG-1.4``. Precision defaults to f32, where OpenVINO matches
PyTorch to within a grey level; try ``--precision auto`` for the device's fast default.

The figure is ``rmbg.plot.compare()`` (``pip install "rmbg[plot]"``, matplotlib) when it is
available; otherwise a plain side-by-side made with Pillow, and the script says which it wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rmbg import BackgroundRemover, RmbgError
from rmbg.metrics import mask_figures
from rmbg.photos import PHOTO_DIR

PHOTO = PHOTO_DIR / "chelsea.jpg"


def run(remover: BackgroundRemover, image: Path) -> tuple[np.ndarray, Image.Image, float, float]:
    """Mask (as an array) and cutout of ``image``, with the load time and one mask's time."""
    start = time.perf_counter()
    remover.warmup()  # loads (OpenVINO: converts, or reads the cache) and compiles
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    mask = remover.mask(image, output="array")
    seconds = time.perf_counter() - start
    return mask, remover.cutout(image), loaded, seconds


def save_figure(image: Path, mask: np.ndarray, cutout: Image.Image, path: Path) -> str:
    """The notebook's three panels: rmbg.plot when installed, else Pillow. Returns which."""
    try:
        from rmbg import plot  # rmbg[plot]: the notebook's matplotlib figure
    except ImportError:
        plot = None
    if plot is not None:
        try:
            figure = plot.compare(image, mask, cutout)
        except RmbgError as exc:  # matplotlib itself missing: rmbg says which extra to install
            print(f"rmbg.plot unavailable ({exc}); using Pillow", file=sys.stderr)
        else:
            figure.savefig(path)
            return "rmbg.plot.compare (matplotlib)"
    _side_by_side(image, mask, cutout).save(path)
    return "a Pillow side-by-side (rmbg.plot is not available in this install)"


def _side_by_side(image: Path, mask: np.ndarray, cutout: Image.Image) -> Image.Image:
    photo = Image.open(image).convert("RGB")
    grey = Image.fromarray(mask).convert("RGB")
    board = Image.new("RGB", cutout.size, "#cccccc")  # a checkerboard shows transparency
    for y in range(0, board.height, 16):
        for x in range((y // 16) % 2 * 16, board.width, 32):
            board.paste("#f4f4f4", (x, y, x + 16, y + 16))
    board.paste(cutout, (0, 0), cutout)
    sheet = Image.new("RGB", (photo.width * 3 + 16, photo.height), "white")
    for i, panel in enumerate((photo, grey, board)):
        sheet.paste(panel, (i * (photo.width + 8), 0))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=PHOTO)
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: $RMBG_MODEL)")
    parser.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    parser.add_argument("--precision", default="f32", help="OpenVINO precision (default: f32)")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"error: no such image: {args.image}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-notebook-"))
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {}
    try:
        for backend, device, precision in (
            ("torch", "cpu", "f32"),
            ("openvino", args.device, args.precision),
        ):
            remover = BackgroundRemover(
                args.model, backend=backend, device=device, precision=precision
            )
            results[backend] = run(remover, args.image)
            info = remover.info
            _, _, loaded, seconds = results[backend]
            print(
                f"{backend:8} on {'/'.join(info.execution_devices)} ({info.inference_precision}): "
                f"loaded in {loaded:.1f} s, one mask in {seconds:.2f} s"
            )
    except RmbgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    reference, ov = results["torch"][0], results["openvino"][0]
    f = mask_figures(reference, ov)  # the figures `rmbg verify` and the parity tests use
    print(
        f"masks: max difference {f['max_diff']:.0f} grey levels, mean {f['mean_diff']:.3f}, "
        f"IoU {f['iou']:.4f}"
    )

    cutout = results["openvino"][1]
    Image.fromarray(ov).save(out / "mask.png")
    cutout.save(out / "cutout.png")
    made = save_figure(args.image, ov, cutout, out / "figure.png")
    print(f"figure: {made}")
    print(f"wrote mask.png, cutout.png and figure.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
