"""``rmbg serve`` (also ``python -m rmbg.serve``): the HTTP service of :mod:`rmbg.serve`.

The service's flags are here, the model flags are the other commands' (:mod:`rmbg.cli.flags`).
Nothing imports the web stack until :func:`run` starts the server.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from types import FrameType

from ..serve import Settings, require_extra
from .flags import add_model_arguments, backend_options_from_args, remover_from_args
from .runtime import EXIT_FAILED, EXIT_SIGINT

__all__ = ["add_arguments", "run", "settings_from_args"]

logger = logging.getLogger("rmbg.serve")

EXAMPLES = """\
examples:
  rmbg serve --model ./checkpoint                  # http://127.0.0.1:7000 (docs/serve.md)
  RMBG_TOKEN=s3cret rmbg serve --host 0.0.0.0      # bearer token on all but /health/*
  rmbg serve --max-queue 32 --timeout 30 --max-upload-mb 20
  curl -sS -F file=@photo.jpg http://127.0.0.1:7000/v1/cutout -o cutout.png
"""


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
    """The service's flags and the model flags."""
    parser.epilog = EXAMPLES
    add_service_arguments(parser)
    add_model_arguments(parser)


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
    # fmt: off
    for flag, convert, default, text in (
        ("--workers", int, None, "images processed at once (default: the engine's infer requests + 2)"),
        ("--max-queue", _count, d.max_queue, "requests waiting beyond the workers; more get 503"),
        ("--timeout", _positive_float, d.timeout, "seconds per request before 504"),
        ("--max-upload-mb", _positive_float, d.max_upload_mb, "largest request body in MiB; larger gets 413"),
        ("--max-pixels", _count, None, "largest image in pixels; larger gets 413 (default: 89,478,485; 0: no limit)"),
    ):
        shown = "" if default is None else f" (default: {default:g})"
        load.add_argument(flag, type=convert, default=default, help=f"{text}{shown}")
    # fmt: on


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


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; in-flight requests finish first. Exit 0 on SIGTERM."""
    require_extra()
    import uvicorn

    from ..serve.app import create_app

    level = "error" if args.quiet else ("debug" if args.verbose > 1 else "info")
    logger.setLevel(level.upper())  # "model ready" and the warnings below, unless -q
    settings = settings_from_args(args)
    # concurrent requests are a batch: the backend's throughput settings apply unless
    # --backend-option says otherwise
    remover = remover_from_args(args, backend_options_from_args(args), batch=True, load=False)
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
        return EXIT_FAILED
    return EXIT_SIGINT if signal.SIGINT in received else 0
