"""``rmbg serve``: an HTTP service for background removal (``pip install "rmbg[serve]"``).

Run it with ``rmbg serve`` (or ``python -m rmbg.serve``), or embed it in your own ASGI app::

    from rmbg import BackgroundRemover
    from rmbg.serve import Settings, create_app

    app = create_app(BackgroundRemover(), Settings(max_queue=32, token="s3cret"))

Layout, in the order a request meets it: :mod:`.settings` (limits, token, CORS),
:mod:`.limits` (admission, worker slots, upload cap), :mod:`.inputs` (body, multipart, JSON),
:mod:`.render` (the facade call and encoding, in a worker thread), :mod:`.app` (routes, errors,
lifespan), :mod:`.rembg_compat` (``/api/remove``), :mod:`.metrics`, :mod:`.openapi`,
:mod:`rmbg.cli.serve` (the ``rmbg serve`` command line). See ``docs/serve.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import Settings

__all__ = ["Settings", "create_app", "require_extra"]

INSTALL_HINT = 'rmbg serve needs the serve extra: pip install "rmbg[serve]"'


def require_extra() -> None:
    """Raise ImportError naming the extra when FastAPI, uvicorn or python-multipart is missing."""
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart, for form uploads)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc


if TYPE_CHECKING:
    from .app import create_app


def __getattr__(name: str) -> Any:
    # the web stack is imported when an app is made, so that Settings and the command's flags
    # work without it (and say how to install it)
    if name == "create_app":
        require_extra()
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'rmbg.serve' has no attribute {name!r}")
