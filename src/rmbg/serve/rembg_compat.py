"""``/api/remove``: rembg's server API, so that its clients switch by changing the URL.

rembg's ``POST /api/remove`` takes a multipart ``file`` and these fields (form or query):

=========  ==========================================  ============================================
field      rembg                                       here
=========  ==========================================  ============================================
``file``   the image                                   the image (also raw body or JSON base64)
``om``     only the mask                               ``true``: the mask (``/v1/mask``)
``bgc``    background colour ``r,g,b,a``               ``background=(r, g, b, a)``
``ppm``    post-process: hard mask after smoothing     ``true``: ``threshold=0.5`` (a hard mask;
                                                       rembg also removes specks first)
``a``      alpha matting (pymatting) on the mask       ignored: RMBG-1.4's mask is a soft matte
``af``     matting foreground threshold                ignored (with ``a``)
``ab``     matting background threshold                ignored (with ``a``)
``ae``     matting erosion size                        ignored (with ``a``)
``model``  which of rembg's models                     ignored: the service runs its one model
``extras`` JSON of model-specific arguments            ignored
=========  ==========================================  ============================================

The answer is a PNG, as rembg's. Ignored fields that were sent are named in ``X-Rmbg-Ignored``.
``GET /api/remove?url=...`` works only on a service started with ``--allow-url-host``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..errors import UnsupportedOptionError
from ..options import CutoutOptions, MaskOptions
from .openapi import image_body

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .app import Service

__all__ = ["REMBG_FIELDS", "add_rembg_routes", "rembg_options"]

#: Every field rembg's server reads, and what happens to it here.
REMBG_FIELDS: dict[str, str] = {
    "om": "only the mask",
    "bgc": "background colour r,g,b,a",
    "ppm": "hard mask (threshold=0.5)",
    "a": "ignored (alpha matting: RMBG-1.4's mask is already a soft matte)",
    "af": "ignored (alpha matting)",
    "ab": "ignored (alpha matting)",
    "ae": "ignored (alpha matting)",
    "model": "ignored (the service runs its one model)",
    "extras": "ignored",
}
_IGNORED = ("a", "af", "ab", "ae", "model", "extras")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise UnsupportedOptionError(f"{name}={text!r} is not true or false.")


def _colour(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (3, 4):
        raise UnsupportedOptionError(
            f"bgc={text!r} is not a colour: give r,g,b,a (four whole numbers 0..255)."
        )
    return values


def rembg_options(
    fields: dict[str, str], accept: str | None = None
) -> tuple[str, MaskOptions, str, int | None, list[str]]:
    """rembg's fields as rmbg's (kind, options, format, quality, ignored names).

    Raises:
        UnsupportedOptionError: A field rembg does not have, or a value that does not parse.
    """
    unknown = sorted(set(fields) - set(REMBG_FIELDS))
    if unknown:
        raise UnsupportedOptionError(
            f"Unknown field(s) for /api/remove: {', '.join(unknown)}. rembg's fields: "
            f"{', '.join(REMBG_FIELDS)}. /v1/cutout and /v1/mask take every rmbg option."
        )
    threshold = 0.5 if _flag("ppm", fields.get("ppm", "")) else None
    ignored = [name for name in _IGNORED if name in fields]
    if _flag("om", fields.get("om", "")):
        return "mask", MaskOptions(threshold=threshold), "png", None, ignored
    bgc = fields.get("bgc", "").strip()
    background = _colour(bgc) if bgc else None
    return "cutout", CutoutOptions(threshold=threshold, background=background), "png", None, ignored


def add_rembg_routes(app: FastAPI, service: Service) -> None:
    """``POST /api/remove`` (and ``GET`` with ``url=`` where URL inputs are allowed)."""
    fields = {
        name: {"type": "string", "description": text}
        for name, text in REMBG_FIELDS.items()
        if name != "bgc"
    }
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in REMBG_FIELDS.items()
    ]

    @app.post(
        "/api/remove",
        tags=["rembg-compatible"],
        summary="rembg's POST /api/remove",
        description=__doc__ or "",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        openapi_extra={"parameters": parameters, "requestBody": image_body(fields)},
    )
    async def remove(request: Request) -> Response:
        return await service.respond(request, rembg_options)

    @app.get(
        "/api/remove",
        tags=["rembg-compatible"],
        summary="rembg's GET /api/remove?url=... (only with --allow-url-host)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def remove_url(request: Request, url: str) -> Response:
        return await service.respond(request, rembg_options)
