"""``rmbg devices``: the OpenVINO devices and torch's accelerators; a missing or broken install
is reported, not raised (this is a diagnostic tool)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from .flags import add_log_arguments
from .runtime import EXIT_OK, jsonable

__all__ = ["add_arguments", "devices_report", "run"]

logger = logging.getLogger("rmbg.cli")

_EXAMPLES = """\
examples:
  rmbg devices
  rmbg devices --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_log_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.epilog = _EXAMPLES


def devices_report() -> dict[str, Any]:
    """OpenVINO's devices and torch's accelerators."""
    return {"openvino": _openvino_devices(), "torch": _torch_devices()}


def _openvino_devices() -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError as exc:
        return {"installed": False, "error": str(exc), "hint": "pip install openvino"}
    try:
        core = ov.Core()
        names = list(core.available_devices)
    except Exception as exc:  # a broken plugin set: report it, `devices` is a diagnostic tool
        return {"installed": True, "version": ov.get_version(), "error": str(exc), "devices": []}
    devices = []
    for name in names:
        entry: dict[str, Any] = {"name": name}
        for prop in ("FULL_DEVICE_NAME", "DEVICE_TYPE", "OPTIMIZATION_CAPABILITIES"):
            try:
                entry[prop] = jsonable(core.get_property(name, prop))
            except Exception as exc:  # a plugin that does not report it
                entry[prop] = None
                logger.debug("%s: %s unavailable (%s)", name, prop, exc)
        devices.append(entry)
    return {
        "installed": True,
        "version": ov.get_version(),
        "devices": devices,
        "virtual": ["AUTO", "MULTI", "HETERO"],
    }


def _torch_devices() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:
        return {"installed": False, "error": str(exc), "hint": 'pip install "rmbg[torch]"'}
    report: dict[str, Any] = {
        "installed": True,
        "version": str(torch.__version__),
        "cuda_build": torch.version.cuda,
        "cuda_available": False,
        "cuda_devices": [],
        "mps_available": False,
    }
    try:
        report["cuda_available"] = bool(torch.cuda.is_available())
        if report["cuda_available"]:
            report["cuda_devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
        mps = getattr(torch.backends, "mps", None)
        report["mps_available"] = bool(mps is not None and mps.is_available())
    except Exception as exc:  # a driver problem: report it
        report["error"] = str(exc)
    return report


def run(args: argparse.Namespace) -> int:
    report = devices_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    ov = report["openvino"]
    if ov["installed"]:
        print(f"OpenVINO {ov['version']}")
        for d in ov["devices"]:
            caps = ", ".join(d.get("OPTIMIZATION_CAPABILITIES") or []) or "?"
            print(f"  {d['name']:<8} {d.get('FULL_DEVICE_NAME') or '?'}")
            print(f"  {'':<8} capabilities: {caps}")
        if "error" in ov:
            print(f"  error: {ov['error']}")
        print("  AUTO     (virtual: picks among the devices above; also AUTO:GPU,CPU, HETERO:...)")
    else:
        print(f"OpenVINO: not installed ({ov['hint']})")
    tr = report["torch"]
    if tr["installed"]:
        cuda = (
            f"available ({', '.join(tr['cuda_devices'])})"
            if tr["cuda_available"]
            else "not available" + ("" if tr["cuda_build"] else " (CPU-only build)")
        )
        mps = "available" if tr["mps_available"] else "not available"
        print(f"PyTorch {tr['version']}: cpu; CUDA {cuda}; MPS {mps}")
        if "error" in tr:
            print(f"  error: {tr['error']}")
    else:
        print(f"PyTorch: not installed ({tr['hint']})")
    return EXIT_OK
