"""``rmbg verify``: run the PyTorch reference and the OpenVINO backend side by side on photos and
print their parity (the shared :func:`rmbg.metrics.mask_figures`) and timings.

Each image is reported on its own; one that cannot be read is a failed row and the others are
still checked. The exit code is 1 if any image failed (unreadable or outside the criteria).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import PRECISIONS
from .flags import add_log_arguments, add_model_arguments, resolve_source
from .runtime import EXIT_FAILED, EXIT_OK, UsageError, reason

if TYPE_CHECKING:
    from ..remover import BackgroundRemover

__all__ = ["add_arguments", "run"]

logger = logging.getLogger("rmbg.cli")

_EXAMPLES = """\
examples:
  rmbg verify                                       # bundled photos, OpenVINO f32 on CPU vs torch
  rmbg verify --device GPU --precision f16
  rmbg verify --model ./checkpoint my-photo.jpg --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, backend=False, device=False, precision=False)
    add_log_arguments(parser)
    parser.add_argument(
        "images", nargs="*", metavar="IMAGE", help="images to check (default: the bundled photos)"
    )
    parser.add_argument("--device", default="CPU", help="OpenVINO device to check (default: CPU)")
    parser.add_argument(
        "--precision",
        default="f32",
        choices=PRECISIONS,
        help="OpenVINO precision (default: f32); torch always runs the f32 reference",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.epilog = _EXAMPLES


def _criteria(exact: bool) -> str:
    if exact:
        return "max difference <= 1 grey level and IoU >= 0.99"
    return "mean difference <= 1 grey level and IoU >= 0.99"


def _compare(image: Path, removers: dict[str, BackgroundRemover], exact: bool) -> dict[str, Any]:
    """One image's row: sizes, figures, timings and ok; or the reason it could not be checked."""
    from ..metrics import mask_figures

    row: dict[str, Any] = {"image": image.name}
    masks: dict[str, Any] = {}
    try:
        for name, remover in removers.items():
            t0 = time.perf_counter()
            masks[name] = remover.mask(image, output="array")
            row[f"{name}_ms"] = round(1000 * (time.perf_counter() - t0), 1)
    except Exception as exc:
        row.update(error=reason(exc), ok=False)
        logger.error("%s: %s", image, row["error"])
        return row
    figures = mask_figures(masks["torch"], masks["openvino"])
    h, w = masks["torch"].shape
    row.update(
        size=f"{w}x{h}",
        max_diff=int(figures["max_diff"]),
        mean_diff=round(figures["mean_diff"], 4),
        iou=round(figures["iou"], 5),
    )
    close = row["max_diff"] <= 1 if exact else row["mean_diff"] <= 1.0
    row["ok"] = bool(figures["iou"] >= 0.99 and close)
    return row


def run(args: argparse.Namespace) -> int:
    from ..photos import bundled_photos
    from ..remover import BackgroundRemover

    images = [Path(i) for i in args.images] or bundled_photos()
    missing = [str(i) for i in images if not i.is_file()]
    if missing:
        raise UsageError(f"no such image: {', '.join(missing)}")
    source = resolve_source(args)
    if source.kind not in ("checkpoint", "module"):
        raise UsageError(
            f"verify compares against PyTorch, which cannot run a model of kind {source.kind!r}; "
            "pass a checkpoint folder or .safetensors as --model"
        )
    runs: dict[str, dict[str, Any]] = {}
    removers: dict[str, BackgroundRemover] = {}
    for name, backend, device, precision in (
        ("torch", "torch", "cpu", "f32"),
        ("openvino", "openvino", args.device, args.precision),
    ):
        t0 = time.perf_counter()
        removers[name] = BackgroundRemover(
            source, backend=backend, device=device, precision=precision, cache_dir=args.cache_dir
        )
        info = removers[name].info
        runs[name] = {
            "device": ",".join(info.execution_devices),
            "precision": info.inference_precision,
            "load_seconds": round(time.perf_counter() - t0, 3),
        }
        logger.info("%s ready in %.1f s", name, runs[name]["load_seconds"])
    exact = args.precision == "f32"
    rows = [_compare(image, removers, exact) for image in images]
    ok = all(r["ok"] for r in rows)
    if args.json:
        report = {"ok": ok, "criteria": _criteria(exact), "backends": runs, "images": rows}
        print(json.dumps(report, indent=2))
    else:
        _print_table(runs, rows, exact, ok)
    return EXIT_OK if ok else EXIT_FAILED


def _print_table(
    runs: dict[str, dict[str, Any]], rows: list[dict[str, Any]], exact: bool, ok: bool
) -> None:
    for name, r in runs.items():
        print(f"{name:<9} on {r['device']} ({r['precision']}), loaded in {r['load_seconds']:.1f} s")
    print(f"criteria: {_criteria(exact)}")
    header = f"{'image':<16} {'size':>9} {'max':>4} {'mean':>7} {'IoU':>7} {'torch ms':>9} {'OV ms':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['image']:<16} FAIL: {r['error']}")
            continue
        print(
            f"{r['image']:<16} {r['size']:>9} {r['max_diff']:>4} {r['mean_diff']:>7.3f} "
            f"{r['iou']:>7.4f} {r['torch_ms']:>9.0f} {r['openvino_ms']:>8.0f}  "
            f"{'ok' if r['ok'] else 'FAIL'}"
        )
    print("parity: ok" if ok else "parity: FAILED")
