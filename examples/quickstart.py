"""Cut out one photo: ``python examples/quickstart.py INPUT OUTPUT.png [DEVICE]``.

The model is ``$RMBG_MODEL`` if set (a local checkpoint folder, an .onnx or an OpenVINO .xml),
else ``briaai/RMBG-1.4`` from the Hugging Face Hub (gated: accept the licence, set HF_TOKEN).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rmbg import BackgroundRemover, RmbgError


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = argv[0], argv[1]
    device = argv[2] if len(argv) == 3 else "AUTO"
    # check the paths before loading the model: a typo should not cost a model load, nor a traceback
    if not Path(src).is_file():
        print(f"error: no such image: {src}", file=sys.stderr)
        return 2
    if not Path(dst).parent.is_dir():
        print(f"error: the output folder {Path(dst).parent} does not exist", file=sys.stderr)
        return 2
    try:
        remover = BackgroundRemover(device=device)
        start = time.perf_counter()
        # PNG bytes from rmbg's own encoder: lossless and ~10x faster than PIL's Image.save()
        png = remover.cutout(src, output="png")
        elapsed = time.perf_counter() - start
    except (RmbgError, OSError) as exc:  # OSError: the input vanished or cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 1
    Path(dst).write_bytes(png)
    info = remover.info
    print(
        f"wrote {dst} ({len(png):,} bytes) in {elapsed:.2f} s with {info.backend} on "
        f"{'/'.join(info.execution_devices)} ({info.inference_precision})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
