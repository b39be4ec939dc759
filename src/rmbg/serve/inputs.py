"""Reading a request: the image (raw body, multipart, JSON base64, or an allowed URL) and its
text fields (options, format). Nothing here decodes an image: that happens in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..errors import InvalidImageError, UnsupportedOptionError
from .errors import PayloadTooLarge, UnsupportedMediaType
from .settings import FORMATS, Settings

__all__ = ["RESERVED", "Upload", "read_upload"]

#: Fields that are not image options: the output format and its quality.
RESERVED: tuple[str, ...] = ("format", "quality")
#: Multipart parts that may hold the image (rembg's clients send ``file``).
IMAGE_PARTS: tuple[str, ...] = ("file", "image")
RAW_TYPES = "image/* or application/octet-stream (the image as the body)"
ACCEPTED = f"{RAW_TYPES}, multipart/form-data (a 'file' part) or application/json (base64 'image')"


@dataclasses.dataclass
class Upload:
    """One request's inputs, read but not decoded."""

    image: bytes
    fields: dict[str, str]  # option fields from the body, as text
    background: bytes | None = None  # a background image sent as a multipart part


def text_fields(values: Mapping[str, Any], where: str) -> dict[str, str]:
    """JSON or form values as the text that ``from_strings`` parses."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            out[name] = "none"
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[name] = str(value)
        else:
            raise UnsupportedOptionError(
                f"{name} in the {where} must be a string, number, boolean or null, "
                f"not {type(value).__name__}."
            )
    return out


def merge(query: Mapping[str, str], body: Mapping[str, str]) -> dict[str, str]:
    """Query and body fields together; a name given in both is an error (which one to take?)."""
    twice = sorted(set(query) & set(body))
    if twice:
        raise UnsupportedOptionError(
            f"{', '.join(twice)} given both in the query and in the body; give each once."
        )
    return {**query, **body}


def output_format(fields: Mapping[str, str], accept: str | None) -> tuple[str, int | None]:
    """``format=`` (png, webp, jpg/jpeg), else the first image type ``Accept`` prefers, else png;
    and ``quality=`` (1..100: lossy WebP, JPEG quality)."""
    fmt = fields.get("format", "").strip().lower()
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt and fmt not in FORMATS:
        raise UnsupportedOptionError(
            f"format={fields['format']!r} is not one of: {', '.join(FORMATS)} (or jpeg)."
        )
    if not fmt:
        fmt = from_accept(accept)
    quality: int | None = None
    raw = fields.get("quality", "").strip()
    if raw:
        try:
            quality = int(raw)
        except ValueError:
            quality = 0
        if not 1 <= quality <= 100:
            raise UnsupportedOptionError(f"quality={raw!r} is not a whole number from 1 to 100.")
        if fmt == "png":
            raise UnsupportedOptionError(
                "quality applies to webp and jpg; PNG is lossless. Add format=webp or format=jpg."
            )
    return fmt, quality


def from_accept(accept: str | None) -> str:
    """The output format ``Accept`` prefers (by q-value, then order); png when it names none."""
    types = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg", "image/jpg": "jpg"}
    best: tuple[float, int, str] | None = None
    for i, item in enumerate((accept or "").split(",")):
        parts = [p.strip() for p in item.split(";")]
        fmt = types.get(parts[0].lower())
        if fmt is None:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, fmt)
    return best[2] if best else "png"


async def read_upload(request: Request, settings: Settings) -> Upload:
    """The image and body fields of ``request``, whatever the encoding.

    Raises:
        UnsupportedMediaType: A ``Content-Type`` other than the three encodings.
        InvalidImageError: No image in the request, or invalid base64.
        UnsupportedOptionError: A field that is not text, or a URL where URLs are off.
        PayloadTooLarge: The body, or a fetched image, is over the upload cap.
    """
    ctype = request.headers.get("content-type", "application/octet-stream")
    media = ctype.split(";")[0].strip().lower()
    if media == "multipart/form-data":
        return await _multipart(request)
    if media == "application/json":
        return await _json(request, settings)
    if media.startswith("image/") or media == "application/octet-stream":
        return Upload(await request.body(), {})
    hint = ""
    if media == "application/x-www-form-urlencoded":
        hint = (
            " (curl --data-binary sends this type: add -H 'Content-Type: image/jpeg', "
            "or send a form with -F file=@photo.jpg)"
        )
    raise UnsupportedMediaType(f"Content-Type {media!r} is not read here{hint}. Send {ACCEPTED}.")


async def _multipart(request: Request) -> Upload:
    form = await request.form(max_files=2, max_fields=64)
    image: bytes | None = None
    background: bytes | None = None
    fields: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                if name in IMAGE_PARTS and image is None:
                    image = data
                elif name == "background":
                    background = data
                else:
                    raise UnsupportedOptionError(
                        f"Unexpected file part {name!r}: send the image as 'file' (and a "
                        "background image as 'background')."
                    )
            elif name in IMAGE_PARTS:
                raise InvalidImageError(
                    f"The form field {name!r} is text, not a file: send it as a file part "
                    f"(curl -F {name}=@photo.jpg)."
                )
            else:
                fields[name] = value
    finally:
        await form.close()
    if image is None:
        raise InvalidImageError("No image in the form: send it as a file part named 'file'.")
    return Upload(image, fields, background)


async def _json(request: Request, settings: Settings) -> Upload:
    try:
        document = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidImageError(f"The JSON body does not parse: {exc}.") from None
    if not isinstance(document, dict):
        raise InvalidImageError('The JSON body must be an object: {"image": "<base64>", ...}.')
    image_text = document.pop("image", None)
    url = document.pop("url", None)
    fields = text_fields(document, "JSON body")
    if image_text is not None and url is not None:
        raise UnsupportedOptionError("Give either 'image' or 'url' in the JSON body, not both.")
    if url is not None:
        if not isinstance(url, str):
            raise UnsupportedOptionError("'url' in the JSON body must be a string.")
        import asyncio

        return Upload(await asyncio.to_thread(fetch_url, url, settings), fields)
    if not isinstance(image_text, str):
        raise InvalidImageError(
            'No image in the JSON body: send {"image": "<base64 of the file>", ...}.'
        )
    return Upload(decode_base64(image_text), fields)


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, optionally as a ``data:`` URL."""
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise InvalidImageError("A data: URL image must be base64 ('data:image/png;base64,').")
    compact = "".join(text.split())
    try:
        return base64.b64decode(
            compact + "=" * (-len(compact) % 4), altchars=_alt(compact), validate=True
        )
    except (binascii.Error, ValueError):
        raise InvalidImageError("'image' is not valid base64.") from None


def _alt(text: str) -> bytes | None:
    return b"-_" if ("-" in text or "_" in text) else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could leave the allow-list: not followed


def fetch_url(url: str, settings: Settings) -> bytes:
    """Fetch an image from an allowed host (http/https, no redirects, capped, 10 s timeout).

    Raises:
        UnsupportedOptionError: URL inputs are off, or the host is not on the allow-list.
        InvalidImageError: The fetch failed.
        PayloadTooLarge: The image is over the upload cap.
    """
    if not settings.allow_url_hosts:
        raise UnsupportedOptionError(
            "This service does not fetch URLs: send the image itself (body, multipart 'file' "
            "or JSON 'image'). Operators can allow hosts with --allow-url-host."
        )
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in settings.allow_url_hosts:
        raise UnsupportedOptionError(
            f"{url!r} is not on this service's allow-list (http/https on: "
            f"{', '.join(settings.allow_url_hosts)})."
        )
    opener = urllib.request.build_opener(_NoRedirect)
    limit = settings.max_upload_bytes
    try:
        with opener.open(url, timeout=10) as response:
            if response.status != 200:
                raise InvalidImageError(f"Fetching {url} gave HTTP {response.status}.")
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise InvalidImageError(f"Fetching {url} gave HTTP {exc.code}.") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InvalidImageError(f"Could not fetch {url}: {exc}.") from None
    if len(data) > limit:
        raise PayloadTooLarge.body(len(data), limit, partial=True)
    return data
