"""The ASGI app: :func:`create_app` wires the remover, the settings, the load control, the
metrics and the routes together. The routes are thin: read the request, build the typed options,
run the facade in a worker thread, send the bytes back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import http
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .. import __version__
from ..errors import RmbgError
from ..options import CutoutOptions, MaskOptions
from . import openapi
from .errors import Busy, ClientGone, HTTPError, NotReady, Timeout, status_of
from .inputs import RESERVED, Upload, fetch_url, merge, output_format, read_upload
from .limits import BodyLimit, Gate
from .metrics import Metrics, MetricsMiddleware
from .render import Rendered, render
from .settings import Settings

__all__ = ["Service", "create_app"]

logger = logging.getLogger("rmbg.serve")

T = TypeVar("T")

#: Paths answered without a token (probes must work without secrets).
OPEN_PATHS = frozenset({"/health/live", "/health/ready"})
#: Parses a request's text fields into (kind, options, format, quality, ignored field names).
Parser = Callable[[dict[str, str], str | None], tuple[str, MaskOptions, str, int | None, list[str]]]


class Service:
    """The state one app holds: the remover, its settings, the gate once loaded, the metrics."""

    def __init__(self, remover: Any, settings: Settings) -> None:
        self.remover = remover
        self.settings = settings
        self.gate: Gate | None = None
        self.error: str | None = None
        self.metrics = Metrics(openapi.ROUTES)
        self.metrics.gauges = self.gauges
        self._loader: asyncio.Task[None] | None = None
        self.load_seconds: float | None = None

    # -- loading ----------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Load and compile the model in a thread (once); ``/health/ready`` says when done."""
        if self._loader is None:
            self._loader = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.remover.warmup)
            engine = self.remover.engine()
        except Exception as exc:  # a service that cannot load says why on /health/ready
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error("the model could not be loaded: %s", self.error)
            return
        workers = self.settings.workers or int(getattr(engine, "n_requests", 1)) + 2
        self.gate = Gate(workers, self.settings.max_queue)
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "model ready in %.1f s: %d workers, queue of %d",
            self.load_seconds,
            workers,
            self.settings.max_queue,
        )

    async def close(self) -> None:
        if self._loader is not None and not self._loader.done():
            with contextlib.suppress(BaseException):
                await self._loader
        if self.gate is not None:
            await asyncio.to_thread(self.gate.close)

    def gauges(self) -> dict[str, float]:
        gate = self.gate
        return {
            "rmbg_images_in_flight": gate.running if gate else 0,
            "rmbg_queue_depth": gate.waiting if gate else 0,
            "rmbg_admitted": gate.admitted if gate else 0,
            "rmbg_capacity": gate.capacity if gate else 0,
            "rmbg_model_ready": 1 if gate else 0,
        }

    def not_ready(self) -> NotReady:
        headers = {"Retry-After": str(max(1, self.settings.retry_after))}
        if self.error is not None:
            return NotReady(f"The model could not be loaded: {self.error}", headers=headers)
        return NotReady("The model is still loading; retry shortly.", headers=headers)

    # -- image requests -----------------------------------------------------------------------
    async def respond(self, request: Request, parse: Parser) -> Response:
        """Admit, read, parse, compute within the deadline, answer (or raise an HTTP error)."""
        self.start_loading()
        gate = self.gate
        if gate is None:
            self.metrics.reject("not_ready")
            raise self.not_ready()
        if not gate.try_admit():
            self.metrics.reject("busy")
            raise Busy(
                f"The service is busy ({gate.capacity} requests in progress or queued); "
                f"retry after {self.settings.retry_after} s.",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        try:
            return await asyncio.wait_for(
                self._respond(request, parse, gate), self.settings.timeout
            )
        except asyncio.TimeoutError:
            raise Timeout(
                f"No answer within {self.settings.timeout:g} s (--timeout): the service is "
                "overloaded or the image is very large. Retry later or send a smaller image."
            ) from None
        finally:
            gate.leave()

    async def _respond(self, request: Request, parse: Parser, gate: Gate) -> Response:
        started = time.perf_counter()
        query = dict(request.query_params)
        url = query.pop("url", None)
        if url is None:
            upload = await read_upload(request, self.settings)
        else:  # only from the hosts on the allow-list (fetch_url refuses the rest)
            upload = Upload(await asyncio.to_thread(fetch_url, url, self.settings), {})
        read = time.perf_counter() - started
        fields = merge(query, upload.fields)
        kind, options, fmt, quality, ignored = parse(fields, request.headers.get("accept"))
        work = functools.partial(
            render, self.remover, kind, upload.image, options, fmt, quality, upload.background
        )
        del upload
        result, waited = await until_disconnect(request, gate.run(work))
        self.metrics.observe_queue_wait(waited)
        headers = {"Server-Timing": server_timing(read, waited, result)}
        if ignored:
            headers["X-Rmbg-Ignored"] = ", ".join(ignored)
        return Response(result.data, media_type=result.media_type, headers=headers)


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, unless the client goes away first: then the request leaves the queue
    (or, computing, drops its result) and answers 499, which nobody reads but the metrics."""
    computing = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watching = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({computing, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not computing.done():
            computing.cancel()
    if computing.done() and not computing.cancelled():
        return computing.result()
    raise ClientGone("The client closed the connection before the answer was ready.")


def server_timing(read: float, waited: float, result: Rendered) -> str:
    """The ``Server-Timing`` header: each stage in milliseconds."""
    stages = [("read", read), ("queue", waited), ("compute", result.compute)]
    if result.encode is not None:
        stages.append(("encode", result.encode))
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in stages)


def v1_parser(kind: str) -> Parser:
    """Fields of ``/v1/cutout`` or ``/v1/mask``: the options by their library names."""
    cls = CutoutOptions if kind == "cutout" else MaskOptions

    def parse(
        fields: dict[str, str], accept: str | None
    ) -> tuple[str, MaskOptions, str, int | None, list[str]]:
        fmt, quality = output_format(fields, accept)
        options = cls.from_strings({k: v for k, v in fields.items() if k not in RESERVED})
        return kind, options, fmt, quality, []

    return parse


def error_response(
    kind: str, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)


class TokenAuth:
    """ASGI middleware: ``Authorization: Bearer <token>`` on every path but the health probes,
    compared in constant time."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
        if not hmac.compare_digest(given, self.expected):
            detail = (
                "Wrong bearer token."
                if given
                else "This service needs 'Authorization: Bearer <token>'."
            )
            response = error_response(
                "Unauthorized", 401, detail, {"WWW-Authenticate": 'Bearer realm="rmbg"'}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(remover: Any, settings: Settings | None = None) -> FastAPI:
    """An ASGI app serving ``remover`` (a :class:`~rmbg.BackgroundRemover`).

    The model is loaded and compiled when the app starts (its lifespan), in a thread, so that
    ``/health/live`` answers at once and ``/health/ready`` turns 200 when the model is ready.
    Mounted inside another app whose lifespan does not reach it, it starts loading on the first
    request instead.

    Args:
        remover: The remover every request shares (one model per process).
        settings: Limits, token, CORS (default: :class:`Settings`'s defaults).
    """
    settings = settings or Settings()
    service = Service(remover, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start_loading()
        yield
        await service.close()

    middleware = [Middleware(MetricsMiddleware, metrics=service.metrics)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                expose_headers=["Server-Timing", "Retry-After", "X-Rmbg-Ignored"],
            )
        )
    if settings.token is not None:
        middleware.append(Middleware(TokenAuth, token=settings.token))
    middleware.append(
        Middleware(
            BodyLimit,
            limit=settings.max_upload_bytes,
            reply=lambda exc: error_response(exc.kind, exc.status, exc.detail),
        )
    )
    app = FastAPI(
        title="rmbg",
        version=__version__,
        description=openapi.DESCRIPTION,
        lifespan=lifespan,
        middleware=middleware,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.rmbg = service
    install_error_handlers(app)
    add_routes(app, service)
    return app


def install_error_handlers(app: FastAPI) -> None:
    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return error_response(exc.kind, exc.status, exc.detail, exc.headers)

    async def on_rmbg_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RmbgError)
        status = status_of(exc)
        if status >= 500:
            logger.error("request failed: %s: %s", type(exc).__name__, exc)
        return error_response(type(exc).__name__, status, str(exc))

    async def on_starlette(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = http.HTTPStatus(exc.status_code).phrase.replace(" ", "")
        return error_response(kind, exc.status_code, str(exc.detail), exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(
            "InternalError", 500, f"{type(exc).__name__}: the service failed; see its log."
        )

    app.add_exception_handler(HTTPError, on_http_error)
    app.add_exception_handler(RmbgError, on_rmbg_error)
    app.add_exception_handler(StarletteHTTPException, on_starlette)
    app.add_exception_handler(Exception, on_unexpected)


def add_routes(app: FastAPI, service: Service) -> None:
    from .rembg_compat import add_rembg_routes

    @app.post("/v1/cutout", **openapi.image_route("cutout"))
    async def cutout(request: Request) -> Response:
        return await service.respond(request, v1_parser("cutout"))

    @app.post("/v1/mask", **openapi.image_route("mask"))
    async def mask(request: Request) -> Response:
        return await service.respond(request, v1_parser("mask"))

    add_rembg_routes(app, service)

    @app.get("/health/live", tags=["health"], summary="The process answers")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="The model is loaded and compiled (503 until then)",
        responses={503: {"description": "Loading, or the model failed to load"}},
    )
    async def ready() -> Response:
        service.start_loading()
        if service.gate is None:
            exc = service.not_ready()
            status = "failed" if service.error else "loading"
            return JSONResponse(
                {"status": status, "detail": exc.detail}, status_code=503, headers=exc.headers
            )
        return JSONResponse({"status": "ready", "load_seconds": service.load_seconds})

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (text format 0.0.4)")
    async def metrics() -> Response:
        return PlainTextResponse(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.get("/v1/info", tags=["service"], summary="Model, backend, device, limits, versions")
    async def info() -> dict[str, Any]:
        return openapi.describe(service.remover, service.settings, service.gate)
