"""What the service answers when it cannot: one JSON shape, the right status.

Every error response is ``{"error": "<kind>", "detail": "<what to do next>"}``. The library's
errors keep their message; their status says whose fault it is:

==============================  ======  ===============================================
error                           status  when
==============================  ======  ===============================================
``InvalidImageError``            400    the body is not an image rmbg can read
``Unauthorized``                 401    no or wrong bearer token
``PayloadTooLarge``              413    the body is over ``--max-upload-mb``
``ImageTooLargeError``           413    more pixels than the limit (decompression bomb)
``UnsupportedMediaType``         415    a ``Content-Type`` the endpoint does not read
``UnsupportedOptionError``       422    a bad option value or name (the library's message)
``Busy``                         503    the queue is full (``Retry-After``)
``NotReady``                     503    the model is still loading (``Retry-After``)
``Timeout``                      504    past the per-request deadline
``ClientGone``                   499    the client left first (counted, never read)
==============================  ======  ===============================================
"""

from __future__ import annotations

from ..errors import ImageTooLargeError, InvalidImageError, RmbgError, UnsupportedOptionError

__all__ = [
    "Busy",
    "ClientGone",
    "HTTPError",
    "NotReady",
    "PayloadTooLarge",
    "Timeout",
    "Unauthorized",
    "UnsupportedMediaType",
    "status_of",
]


class HTTPError(Exception):
    """An error answered with ``status`` and ``{"error": kind, "detail": message}``."""

    status: int = 500

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    @property
    def kind(self) -> str:
        return type(self).__name__


class Unauthorized(HTTPError):
    status = 401


class PayloadTooLarge(HTTPError):
    status = 413

    @classmethod
    def body(cls, size: int, limit: int, *, partial: bool = False) -> PayloadTooLarge:
        mib = limit / (1024 * 1024)
        what = f"more than {limit} bytes" if partial else f"{size} bytes"
        return cls(
            f"The request body is {what}; this service takes at most {mib:g} MiB per request "
            "(--max-upload-mb). Send a smaller image or ask the operator to raise the limit."
        )


class UnsupportedMediaType(HTTPError):
    status = 415


class ClientGone(HTTPError):
    """The client disconnected while its request waited or computed (nginx's 499)."""

    status = 499


class Busy(HTTPError):
    status = 503


class NotReady(HTTPError):
    status = 503


class Timeout(HTTPError):
    status = 504


def status_of(exc: RmbgError) -> int:
    """The HTTP status of a library error: the caller's fault (4xx) or the service's (500)."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, InvalidImageError):
        return 400
    if isinstance(exc, UnsupportedOptionError):
        return 422
    return 500
