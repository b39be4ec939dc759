"""What the service tells about itself: the OpenAPI description of the image routes (their
parameters come from the option classes, so a new option shows up in the docs by itself) and
``/v1/info``."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

from starlette.responses import Response

from .. import __version__
from ..options import CutoutOptions, MaskOptions
from .settings import FORMATS, Settings

__all__ = ["DESCRIPTION", "ROUTES", "describe", "image_route"]

#: The service's own paths (metrics label them; anything else is "other").
ROUTES: tuple[str, ...] = (
    "/v1/cutout",
    "/v1/mask",
    "/api/remove",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/v1/info",
    "/docs",
    "/openapi.json",
)

DESCRIPTION = """Remove image backgrounds with BRIA RMBG-1.4.

Send the image as the raw body (`Content-Type: image/*`), as a multipart `file` part, or as JSON
`{"image": "<base64>", ...}`. Options are query or form/JSON fields with the library's names
(docs/options.md); the output format comes from `format=` or `Accept` (png, webp, jpg).
Errors are JSON: `{"error": "<kind>", "detail": "<what to do>"}`. See docs/serve.md.
"""

#: One line per option for the OpenAPI parameters (docs/options.md has the full story).
OPTION_HELP: dict[str, str] = {
    "normalize": "minmax (default: stretch to 0..255) or none (keep the network's probabilities)",
    "threshold": "hard mask: 255 where the mask is at least this fraction (0..1) of 255",
    "feather": "soften the edge by a Gaussian of this standard deviation, in pixels",
    "grow": "grow (positive) or shrink (negative) the subject by this many pixels",
    "invert": "keep the background instead of the subject (true/false)",
    "exif_transpose": "apply the EXIF orientation first (default true)",
    "background": "a colour: white, #0af, #00aaff80, rgb(0,170,255); or a multipart "
    "'background' image part",
    "trim": "crop to the subject's bounding box (true/false)",
    "margin": "pixels kept around the subject when trimming (needs trim=true)",
    "trim_threshold": "alpha (1..255) that counts as subject when trimming (needs trim=true)",
    "refine_foreground": "estimate the true colours at soft edges (hair, fur)",
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not an image rmbg can read"},
    401: {"description": "Missing or wrong bearer token (when the service has one)"},
    413: {"description": "Body over the upload cap, or more pixels than the limit"},
    415: {"description": "A Content-Type this route does not read"},
    422: {"description": "A bad option (the library's message)"},
    503: {"description": "Queue full or model loading; see Retry-After"},
    504: {"description": "Past the per-request deadline"},
}


def _option_parameters(kind: str) -> list[dict[str, Any]]:
    cls = CutoutOptions if kind == "cutout" else MaskOptions
    params = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": OPTION_HELP.get(name, name),
            "schema": {"type": "string"},
        }
        for name in cls.names()
    ]
    params.append(
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": f"output format: {', '.join(FORMATS)} (default: from Accept, else png)",
            "schema": {"type": "string", "enum": [*FORMATS, "jpeg"]},
        }
    )
    params.append(
        {
            "name": "quality",
            "in": "query",
            "required": False,
            "description": "1..100: lossy WebP at this quality (default lossless), JPEG quality "
            "(default 95)",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        }
    )
    return params


def image_body(fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The three encodings of an image upload, for ``requestBody``."""
    form_fields = {"file": {"type": "string", "format": "binary"}, **(fields or {})}
    return {
        "required": True,
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": form_fields, "required": ["file"]}
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "description": "base64 (or a data: URL)"},
                        "url": {"type": "string", "description": "only on allowed hosts"},
                    },
                    "additionalProperties": {"description": "options, as in the query"},
                }
            },
        },
    }


def image_route(kind: str) -> dict[str, Any]:
    """Keyword arguments of ``app.post`` for ``/v1/cutout`` or ``/v1/mask``."""
    what = (
        "The image with its background removed: RGBA, or RGB over an opaque background."
        if kind == "cutout"
        else "The soft alpha mask (greyscale), the size of the image."
    )
    return {
        "tags": ["images"],
        "summary": f"Make a {kind}",
        "description": what,
        "response_class": Response,
        "responses": {
            200: {
                "description": f"The {kind}; Server-Timing gives the stage timings",
                "content": {
                    "image/png": {},
                    "image/webp": {},
                    "image/jpeg": {},
                },
            },
            **_ERRORS,
        },
        "openapi_extra": {"parameters": _option_parameters(kind), "requestBody": image_body()},
    }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(remover: Any, settings: Settings, gate: Any) -> dict[str, Any]:
    """``/v1/info``: what runs, with which limits, in which versions (no secrets)."""
    source = remover.source
    out: dict[str, Any] = {
        "ready": gate is not None,
        "model": {
            "name": str(source.repo_id or source.path or "module"),
            "kind": source.kind,
            "weights_sha256": source.weights_digest,
            "input_size": list(remover.spec.input_size),
        },
        "backend": remover.backend,
        "device": remover.device,
        "precision": remover.precision,
        "max_pixels": remover.max_pixels,
        "limits": settings.as_dict(),
        "options": {"cutout": list(CutoutOptions.names()), "mask": list(MaskOptions.names())},
        "formats": list(FORMATS),
        "versions": {
            "rmbg": __version__,
            "python": platform.python_version(),
            **{name: _version(name) for name in ("numpy", "pillow", "fastapi", "uvicorn")},
        },
    }
    if "openvino" in sys.modules:
        out["versions"]["openvino"] = _version("openvino")
    if "torch" in sys.modules:
        out["versions"]["torch"] = _version("torch")
    if gate is not None:  # the engine is compiled: reading its info costs nothing
        info = remover.info
        out["execution_devices"] = list(info.execution_devices)
        out["inference_precision"] = info.inference_precision
        out["model"]["files"] = list(info.model_files)
        out["workers"] = gate.workers
        out["max_queue"] = gate.max_queue
        out["infer_requests"] = int(getattr(remover.engine(), "n_requests", 1))
    return out
