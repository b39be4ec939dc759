"""Cut out one photo: ``python examples/quickstart.py INPUT OUTPUT.png [DEVICE]``.

The model is ``$RMBG_MODEL`` if set (a local checkpoint folder, an .onnx or an OpenVINO .xml),
else ``briaai/RMBG-1.4`` from the Hugging Face Hub (gated: accept the licence, set HF_TOKEN).
"""

from __future__ import annotations

import sys
import time

from rmbg import BackgroundRemover, RmbgError


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = argv[0], argv[1]
    device = argv[2] if len(argv) == 3 else "AUTO"
    try:
        remover = BackgroundRemover(device=device)
        start = time.perf_counter()
        cutout = remover.cutout(src)
        elapsed = time.perf_counter() - start
    except RmbgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cutout.save(dst)
    info = remover.info
    print(
        f"wrote {dst} ({cutout.size[0]}x{cutout.size[1]} RGBA) in {elapsed:.2f} s "
        f"with {info.backend} on {'/'.join(info.execution_devices)} ({info.inference_precision})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
