"""The service's settings: limits, security, CORS. Plain data, no web framework imported."""

from __future__ import annotations

import dataclasses
import ipaddress

from ..errors import UnsupportedOptionError

__all__ = ["Settings"]

#: Output formats the service writes, by the name used in ``format=``.
FORMATS: tuple[str, ...] = ("png", "webp", "jpg")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """How an rmbg service behaves under load and who may use it.

    Attributes:
        host: Interface to bind (``rmbg serve`` only; default localhost).
        port: TCP port (``rmbg serve`` only).
        workers: Images processed at once (decode, inference, encode), one thread each. ``None``:
            the engine's infer requests + 2 (the batch API's default), so that decoding and
            encoding of some images overlap the inference of others.
        max_queue: Requests admitted beyond ``workers`` that wait for a slot. When ``workers +
            max_queue`` requests are in the service, the next one gets 503 with ``Retry-After`` at
            once, so a burst never piles up without bound.
        timeout: Seconds from admission to response. Past it the client gets 504; a request
            still waiting leaves the queue at once, one already computing finishes its image
            (inference cannot be interrupted) and its result is dropped.
        max_upload_mb: Largest request body, in MiB (a body announced or found larger gets 413
            before the rest of it is read).
        token: Bearer token required on every endpoint except ``/health/*`` (``None``: open).
        cors_origins: Origins allowed by CORS (empty: no CORS headers at all).
        allow_url_hosts: Hosts from which ``{"url": ...}`` inputs may be fetched (empty: URL
            inputs are refused; no request makes the service fetch anything).
        retry_after: Seconds suggested to a client turned away (503 ``Retry-After``).
        docs: Serve the OpenAPI schema and the interactive docs (``/docs``, ``/openapi.json``).
    """

    host: str = "127.0.0.1"
    port: int = 7000
    workers: int | None = None
    max_queue: int = 16
    timeout: float = 60.0
    max_upload_mb: float = 50.0
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    allow_url_hosts: tuple[str, ...] = ()
    retry_after: int = 1
    docs: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UnsupportedOptionError(f"port must be 0..65535, not {self.port}.")
        if self.workers is not None and self.workers < 1:
            raise UnsupportedOptionError(f"workers must be at least 1, not {self.workers}.")
        if self.max_queue < 0:
            raise UnsupportedOptionError(f"max_queue must be 0 or more, not {self.max_queue}.")
        if not self.timeout > 0:
            raise UnsupportedOptionError(f"timeout must be more than 0 s, not {self.timeout}.")
        if not self.max_upload_mb > 0:
            raise UnsupportedOptionError(
                f"max_upload_mb must be more than 0, not {self.max_upload_mb}."
            )
        if self.token is not None and not self.token.strip():
            raise UnsupportedOptionError(
                "token must not be empty; leave it unset for an open service."
            )
        if self.retry_after < 0:
            raise UnsupportedOptionError(f"retry_after must be 0 or more, not {self.retry_after}.")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(
            self, "allow_url_hosts", tuple(h.strip().lower() for h in self.allow_url_hosts)
        )

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def public(self) -> bool:
        """Whether ``host`` listens beyond this machine."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host.lower() != "localhost"

    def as_dict(self) -> dict[str, object]:
        """The settings without the token (for ``/v1/info`` and logs)."""
        out = dataclasses.asdict(self)
        out["token"] = "set" if self.token else None
        return out
