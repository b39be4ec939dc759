"""``rmbg serve`` / ``python -m rmbg.serve``: flags, the remover, uvicorn, a graceful exit.

``add_arguments(parser)`` and ``run(args)`` follow the CLI's subcommand contract; nothing here
imports the web stack until ``run`` starts the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import RmbgError
from .settings import Settings

__all__ = [
    "add_arguments",
    "add_model_arguments",
    "add_service_arguments",
    "main",
    "require_extra",
    "run",
]

logger = logging.getLogger("rmbg.serve")

EXIT_ERROR = 1
EXIT_SIGINT = 128 + 2
INSTALL_HINT = 'rmbg serve needs the serve extra: pip install "rmbg[serve]"'


def require_extra() -> None:
    """Raise ImportError naming the extra when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart, for form uploads)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc


def _backend_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def _backend_options(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m rmbg.serve``: the service's, the model's and ``--log-level``."""
    add_service_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="default: info",
    )


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """Network, security and load flags (what :class:`Settings` holds, and ``--max-pixels``)."""
    d = Settings()
    net = parser.add_argument_group("network")
    net.add_argument("--host", default=d.host, help=f"interface to bind (default: {d.host})")
    net.add_argument("--port", type=int, default=d.port, help=f"TCP port (default: {d.port})")
    net.add_argument(
        "--token",
        default=None,
        help="bearer token required on every endpoint but /health/* (default: $RMBG_TOKEN; "
        "unset: open)",
    )
    net.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this browser origin (repeatable; default: no CORS)",
    )
    net.add_argument(
        "--allow-url-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow {'url': ...} inputs from this host (repeatable; default: no URL fetching)",
    )
    net.add_argument("--no-docs", action="store_true", help="do not serve /docs and /openapi.json")

    load = parser.add_argument_group("load")
    load.add_argument(
        "--workers",
        type=int,
        default=None,
        help="images processed at once (default: the engine's infer requests + 2)",
    )
    load.add_argument(
        "--max-queue",
        type=_count,
        default=d.max_queue,
        help=f"requests waiting beyond the workers; more get 503 (default: {d.max_queue})",
    )
    load.add_argument(
        "--timeout",
        type=_positive_float,
        default=d.timeout,
        help=f"seconds per request before 504 (default: {d.timeout:g})",
    )
    load.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=d.max_upload_mb,
        help=f"largest request body in MiB; larger gets 413 (default: {d.max_upload_mb:g})",
    )
    load.add_argument(
        "--max-pixels",
        type=_count,
        default=None,
        help="largest image in pixels; larger gets 413 (default: 89,478,485; 0: no limit)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--device``... (the same flags as the other commands)."""
    from ..backends import available_backends
    from ..backends.base import PRECISIONS

    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        help="Hub repo id, checkpoint folder, .safetensors, .onnx or OpenVINO .xml "
        "(default: $RMBG_MODEL, else briaai/RMBG-1.4)",
    )
    model.add_argument("--revision", help="Hub revision of --model")
    model.add_argument("--cache-dir", type=Path, metavar="DIR", help="rmbg's model cache")
    model.add_argument(
        "--backend", default="openvino", choices=available_backends(), help="default: openvino"
    )
    model.add_argument("--device", help="OpenVINO AUTO (default), CPU, GPU...; torch cpu, cuda")
    model.add_argument("--precision", default="auto", choices=PRECISIONS, help="default: auto")
    model.add_argument(
        "--backend-option",
        type=_backend_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option (VALUE as JSON when it parses; dots nest), e.g. "
        "performance_hint=LATENCY (default: the backend's throughput settings)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_queue=args.max_queue,
        timeout=args.timeout,
        max_upload_mb=args.max_upload_mb,
        token=args.token if args.token is not None else (os.environ.get("RMBG_TOKEN") or None),
        cors_origins=tuple(args.cors_origin),
        allow_url_hosts=tuple(args.allow_url_host),
        docs=not args.no_docs,
    )


def remover_from_args(args: argparse.Namespace) -> Any:
    """The remover every request shares. Concurrent requests are a batch: the backend's
    throughput settings apply unless ``--backend-option`` says otherwise."""
    from ..backends import get_backend
    from ..remover import BackgroundRemover

    options = {**get_backend(args.backend).batch_options, **_backend_options(args.backend_option)}
    kwargs: dict[str, Any] = {}
    if args.max_pixels is not None:
        kwargs["max_pixels"] = args.max_pixels or None
    return BackgroundRemover(
        args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        cache_dir=args.cache_dir,
        revision=args.revision,
        backend_options=options,
        **kwargs,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; in-flight requests finish first. Exit 0 on SIGTERM."""
    require_extra()
    import uvicorn

    from .app import create_app

    level = getattr(args, "log_level", None) or _level(args)
    _logging(level)
    settings = settings_from_args(args)
    remover = remover_from_args(args)
    if settings.public and settings.token is None:
        logger.warning(
            "listening on %s without a token: anyone who reaches this port can use it "
            "(set --token or RMBG_TOKEN)",
            settings.host,
        )
    app = create_app(remover, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=level,
        timeout_graceful_shutdown=int(settings.timeout) + 5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        # uvicorn handles the signal itself while serving (stop accepting, finish in-flight
        # requests, then the lifespan's shutdown), and raises it again once it is done: this
        # handler receives it then, so that the process exits with a status instead of dying.
        received.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        return EXIT_ERROR
    return EXIT_SIGINT if signal.SIGINT in received else 0


def _level(args: argparse.Namespace) -> str:
    """The log level of the ``rmbg`` command's ``-v``/``-q`` flags."""
    if getattr(args, "quiet", False):
        return "error"
    return "debug" if getattr(args, "verbose", 0) > 1 else "info"


def _logging(level: str) -> None:
    log = logging.getLogger("rmbg")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(level.upper())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rmbg.serve [flags]``."""
    parser = argparse.ArgumentParser(
        prog="rmbg serve", description="Serve background removal over HTTP (docs/serve.md)."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (RmbgError, ImportError) as exc:
        print(f"rmbg serve: error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_ERROR
