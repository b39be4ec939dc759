"""``rmbg info``: versions, the cache's location and size, the model files in use and the IRs
converted from them. Never downloads."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from .._version import __version__
from .flags import add_log_arguments, add_model_arguments, default_model
from .runtime import EXIT_OK, human_bytes, jsonable, reason

__all__ = ["add_arguments", "run"]

_EXAMPLES = """\
examples:
  rmbg info
  rmbg info --model ./checkpoint --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, backend=False, device=False, precision=False)
    add_log_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.epilog = _EXAMPLES


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / f).lstat().st_size
    return total


def _model_report(args: argparse.Namespace, cache_root: Path) -> dict[str, Any]:
    from ..weights import resolve_model

    model = default_model(args.model)
    report: dict[str, Any] = {"model": model}
    local = Path(model).expanduser().exists()
    try:
        if not local:  # look in the Hub cache only: `info` never downloads
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "model.safetensors", revision=args.revision)
            if not isinstance(cached, str):
                report["error"] = f"not downloaded yet (run `rmbg download --model {model}`)"
                return report
            model = str(Path(cached).parent)
        source = resolve_model(model, revision=args.revision)
    except Exception as exc:
        report["error"] = reason(exc)
        return report
    report.update(
        kind=source.kind,
        files=[str(f) for f in source.files],
        weights_sha256=source.weights_digest,
    )
    irs = []
    for manifest in sorted((cache_root / "ir").glob("*/manifest.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            key = json.loads(manifest.read_text()).get("key", {})
            if key.get("weights") == source.weights_digest:
                irs.append({"path": str(manifest.parent / "model.xml"), **jsonable(key)})
    report["converted_irs"] = irs
    return report


def run(args: argparse.Namespace) -> int:
    from ..cache import default_cache_dir

    cache_root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    versions = {
        name: _dist_version(name)
        for name in (
            "rmbg",
            "openvino",
            "torch",
            "numpy",
            "pillow",
            "huggingface_hub",
            "safetensors",
        )
    }
    versions["rmbg"] = __version__
    versions["python"] = platform.python_version()
    try:
        from huggingface_hub import constants

        hub_cache: str | None = str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - a dependency
        hub_cache = None
    report: dict[str, Any] = {
        "versions": versions,
        "platform": platform.platform(),
        "cache": {
            "path": str(cache_root),
            "exists": cache_root.is_dir(),
            "bytes": _folder_size(cache_root) if cache_root.is_dir() else 0,
        },
        "hub_cache": hub_cache,
        "model": _model_report(args, cache_root),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()))
    print(f"platform: {report['platform']}")
    cache = report["cache"]
    print(
        f"rmbg cache: {cache['path']} ({human_bytes(cache['bytes'])}{'' if cache['exists'] else ', not created yet'})"
    )
    print(f"hub cache: {hub_cache}")
    model = report["model"]
    print(f"model: {model['model']}")
    if "error" in model:
        print(f"  {model['error']}")
    else:
        print(f"  kind: {model['kind']}, sha256 {model['weights_sha256'][:16]}...")
        for f in model["files"]:
            print(f"  file: {f}")
        for ir in model["converted_irs"]:
            print(
                f"  converted IR: {ir['path']} ({ir.get('ir_precision', '?')}, OpenVINO {ir.get('openvino', '?')})"
            )
        if not model["converted_irs"]:
            print("  converted IR: none yet (converted on first OpenVINO use)")
    return EXIT_OK
