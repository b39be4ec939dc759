"""A third-party backend, installed as a plugin and used by name.

    pip install examples/plugin          # the rmbg-onnxruntime-example package
    python examples/plugin_backend.py [IMAGE] [--model MODEL.onnx] [--out DIR] [--no-compare]

The package registers its ``onnxruntime`` backend in the ``rmbg.backends`` entry-point group;
rmbg lists it and loads it on first use, like its own. It runs an RMBG-1.4 ``.onnx`` export:
--model, else ``onnx/model.onnx`` (or ``model_fp16.onnx``) inside the ``$RMBG_MODEL`` folder,
else ``onnx/model.onnx`` of ``briaai/RMBG-1.4`` from the Hugging Face Hub (gated). The same
export is then run on OpenVINO, and the two masks compared: the numpy pre- and post-processing
are rmbg's in both cases, so only the engines differ.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import rmbg
from rmbg import BackgroundRemover, RmbgError
from rmbg.metrics import mask_figures
from rmbg.photos import PHOTO_DIR

PHOTO = PHOTO_DIR / "rocket.jpg"


def find_onnx() -> Path:
    """An .onnx export: in $RMBG_MODEL's onnx/ folder, else from the Hub."""
    folder = os.environ.get("RMBG_MODEL")
    if folder and Path(folder, "onnx").is_dir():
        for name in ("model.onnx", "model_fp16.onnx"):
            if Path(folder, "onnx", name).is_file():
                return Path(folder, "onnx", name)
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download("briaai/RMBG-1.4", "onnx/model.onnx"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, default=PHOTO)
    parser.add_argument("--model", type=Path, help="an RMBG-1.4 .onnx export")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--no-compare", action="store_true", help="skip the OpenVINO comparison")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"error: no such image: {args.image}", file=sys.stderr)
        return 2
    if "onnxruntime" not in rmbg.available_backends():
        print(
            "error: no 'onnxruntime' backend is registered; install the plugin first: "
            "pip install examples/plugin",
            file=sys.stderr,
        )
        return 2
    print(f"registered backends: {', '.join(rmbg.available_backends())}")
    out = args.out or Path(tempfile.mkdtemp(prefix="rmbg-plugin-"))
    out.mkdir(parents=True, exist_ok=True)

    try:
        model = args.model or find_onnx()
        remover = BackgroundRemover(model, backend="onnxruntime")  # found by name
        mask = remover.mask(args.image, output="array")
        remover.cutout(args.image, background="white").save(out / f"{args.image.stem}.ort.png")
        print(f"{remover.info.backend} on {remover.info.device}: {remover.info.details}")
        if not args.no_compare:
            reference = BackgroundRemover(model, backend="openvino", device="CPU", precision="f32")
            other = reference.mask(args.image, output="array")
            f = mask_figures(mask, other)
            print(
                f"onnxruntime vs openvino on {model.name}: max difference {f['max_diff']:.0f} "
                f"grey levels, mean {f['mean_diff']:.3f}"
            )
    except (RmbgError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.image.stem}.ort.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
