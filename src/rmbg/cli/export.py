"""``rmbg export``: write the converted OpenVINO IR (``.xml``/``.bin`` and a ``.json`` of the
pre/post-processing it needs) for deployment, e.g. in OpenVINO Model Server's layout.

The network comes from the OpenVINO backend's public
:meth:`~rmbg.backends.openvino.OpenVINOBackend.read_model` (converted into rmbg's cache first);
the files are staged in a hidden folder beside the target and renamed into place, ``.bin``
before ``.xml``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from .._version import __version__
from .flags import add_log_arguments, add_model_arguments, resolve_source
from .runtime import EXIT_FAILED, EXIT_OK, UsageError, catch_signals, folder_problem

__all__ = ["add_arguments", "run"]

logger = logging.getLogger("rmbg.cli")

_EXAMPLES = """\
examples:
  rmbg export models/rmbg/1                         # f16 IR, OpenVINO Model Server layout
  rmbg export --precision f32 --name rmbg out/
  rmbg export --model ./checkpoint --overwrite out/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, backend=False, device=False, precision=False)
    add_log_arguments(parser)
    parser.add_argument(
        "out_dir", type=Path, metavar="OUT_DIR", help="folder to write into (created)"
    )
    parser.add_argument(
        "--precision",
        choices=("f16", "f32"),
        default="f16",
        help="weights of the IR: f16 (half the size; OpenVINO's default) or f32 (default: f16)",
    )
    parser.add_argument("--name", default="rmbg-1.4", help="file stem (default: rmbg-1.4)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.epilog = _EXAMPLES


def run(args: argparse.Namespace) -> int:
    try:
        import openvino as ov

        from ..backends.openvino import OpenVINOBackend
    except ImportError as exc:
        logger.error("export needs OpenVINO (%s): pip install openvino", exc)
        return EXIT_FAILED
    out_dir: Path = args.out_dir
    stem: str = args.name
    if Path(stem).name != stem or not stem:
        raise UsageError(f"--name {stem!r} must be a plain file stem")
    targets = [out_dir / f"{stem}{ext}" for ext in (".xml", ".bin", ".json")]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.overwrite:
        logger.error("%s exist(s); pass --overwrite to replace", ", ".join(existing))
        return EXIT_FAILED
    problem = folder_problem(out_dir)
    if problem is not None:  # before the conversion, not after it
        logger.error("cannot write into %s: %s", out_dir, problem)
        return EXIT_FAILED
    source = resolve_source(args)
    backend = OpenVINOBackend(source, precision=args.precision, cache_dir=args.cache_dir)
    started = time.perf_counter()
    backend.model_path()  # converts into the rmbg cache on first use
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        catch_signals(),  # SIGTERM too unwinds, so the staging folder is removed
        tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=out_dir) as tmp,
    ):
        staged = Path(tmp) / f"{stem}.xml"
        ov.save_model(backend.read_model(), str(staged), compress_to_fp16=args.precision == "f16")
        spec = source.spec
        meta = {
            "model": spec.name,
            "rmbg": __version__,
            "openvino": ov.get_version(),
            "weights_sha256": source.weights_digest,
            "ir_precision": args.precision,
            "input": {"shape": [1, 3, *spec.input_size], "layout": "NCHW", "dtype": "f32"},
            "output": "mask probabilities (1, 1, H, W), sigmoid already applied",
            "preprocess": "RGB, bilinear resize to the input size (align_corners=False, no "
            "antialias), truncate to uint8, /255, minus mean, divided by std",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "postprocess": "bilinear resize back, per-image min-max to 0..255, truncate to uint8",
        }
        (Path(tmp) / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
        # staged in the same folder, renamed into place: .bin before .xml, so a reader that sees
        # the new .xml also sees its weights
        for ext in (".json", ".bin", ".xml"):
            os.replace(Path(tmp) / f"{stem}{ext}", out_dir / f"{stem}{ext}")
    logger.info("exported in %.1f s", time.perf_counter() - started)
    for t in targets:
        print(t)
    return EXIT_OK
