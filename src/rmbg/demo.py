"""A browser demo: drop a photo, get its cutout, its mask and where the time went.

Needs the ``demo`` extra (``pip install "rmbg[demo]"``: Gradio 6). Start it with ``rmbg demo`` or
``python -m rmbg.demo`` (localhost only unless ``--host``/``--share`` say otherwise), or embed it::

    import gradio as gr
    from rmbg import BackgroundRemover
    from rmbg.demo import build_app

    app = build_app(BackgroundRemover())          # a gr.Blocks: launch it, or mount it
    app.launch()

This module is a thin adapter: the widgets become :class:`~rmbg.options.CutoutOptions`, one call
to :meth:`~rmbg.BackgroundRemover.cutout_and_mask` makes the cutout and the mask, and the results are shown
as the library encoded them. Three Gradio defaults would lose the alpha channel, and none applies:

- uploads reach the library as the uploaded file, untouched (the event does not let Gradio
  preprocess it, which would convert to RGB by default); the library decodes it, so a broken or
  oversized file gets the library's own message in the page;
- results are PNG files written from the library's PNG bytes, handed to Gradio as paths, which it
  serves as they are (an array or PIL image would be re-encoded as WebP by default);
- the download button serves the same PNG file.

One process holds one model: every browser session shares the :class:`~rmbg.BackgroundRemover`
given to :func:`build_app` (and one more per other precision picked in the page, made on first
use), behind a bounded queue.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .backends.base import PRECISIONS
from .errors import BackendUnavailableError, RmbgError, UnsupportedOptionError
from .options import CutoutOptions

if TYPE_CHECKING:
    import gradio as gr

    from .remover import BackgroundRemover

__all__ = ["BACKGROUNDS", "build_app", "main", "run_demo"]

logger = logging.getLogger("rmbg")

#: The background choices offered in the page.
BACKGROUNDS: tuple[str, ...] = ("transparent", "colour", "image")
#: Results older than this are deleted from the app's folder when a new one is written.
_KEEP_SECONDS = 3600.0
_STAGES = ("decode", "preprocess", "network", "postprocess", "shape", "compose", "encode")


def _gradio() -> Any:
    try:
        import gradio
    except ImportError as exc:
        raise BackendUnavailableError('The demo needs Gradio: pip install "rmbg[demo]"') from exc
    return gradio


class _Removers:
    """The app's removers: the one it was given, and one per other precision, made once."""

    def __init__(
        self, base: BackgroundRemover, make: Callable[[str], BackgroundRemover] | None
    ) -> None:
        self.base = base
        self._make = make or self._same_model
        self._by_precision: dict[str, BackgroundRemover] = {base.precision: base}
        self._lock = threading.Lock()

    def _same_model(self, precision: str) -> BackgroundRemover:
        from .remover import BackgroundRemover

        return BackgroundRemover(
            self.base.source,
            backend=self.base.backend,
            device=self.base.device,
            precision=precision,
            max_pixels=self.base.max_pixels,
        )

    def get(self, precision: str) -> BackgroundRemover:
        with self._lock:
            remover = self._by_precision.get(precision)
            if remover is None:
                logger.info("demo: loading the model at precision %s", precision)
                remover = self._make(precision)
                self._by_precision[precision] = remover
            return remover


class _Results:
    """A private folder of result files, pruned as new ones arrive, deleted with the app."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rmbg-demo-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def write(self, name: str, data: bytes) -> str:
        self._prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        path = folder / name
        path.write_bytes(data)
        return str(path)

    def _prune(self) -> None:
        cutoff = time.time() - _KEEP_SECONDS
        for folder in self.root.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:  # pruned by a concurrent request
                continue


def _precision_choices(remover: BackgroundRemover) -> list[str]:
    """The remover's precision first, then the others its backend can compute in."""
    from .backends import get_backend

    backend = get_backend(remover.backend)
    supported = [
        p
        for p in PRECISIONS
        if p in backend.precisions or (p == "int8" and getattr(backend, "quantizable", False))
    ]
    return [remover.precision, *(p for p in supported if p != remover.precision)]


def _device_choices(remover: BackgroundRemover) -> list[str]:
    devices = list(remover.available_devices())
    if remover.backend == "openvino" and "AUTO" not in devices:
        devices.append("AUTO")
    if remover.device not in devices:
        devices.insert(0, remover.device)
    return devices


def _upload_path(payload: Any, what: str) -> str | None:
    """The server-side path of an uploaded file (the event's raw, unprocessed payload)."""
    if payload is None:
        return None
    # a FileData dict from the page, or a plain path from a Python caller of the handler
    path = payload.get("path") if isinstance(payload, Mapping) else payload
    if not path:
        raise UnsupportedOptionError(f"The {what} upload has no file; upload it again.")
    return str(path)


def _stem(payload: Any) -> str:
    name = payload.get("orig_name") if isinstance(payload, Mapping) else None
    stem = Path(str(name or payload or "image")).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80] or "image"


def _whole(value: float | None) -> Any:
    """A widget's number as an int when it is whole (the library rejects a fraction itself)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _timings(seconds: Mapping[str, float], info: str) -> str:
    rows = [
        f"| {stage} | {1000 * seconds[stage]:.0f} ms |" for stage in _STAGES if stage in seconds
    ]
    total = 1000 * sum(seconds.values())
    return "\n".join(
        [f"**{total:.0f} ms** in all on {info}", "", "| stage | time |", "|---|---:|", *rows]
    )


def _handler(
    removers: _Removers, results: _Results
) -> Callable[..., tuple[tuple[str, str], str, str, str]]:
    ui = _gradio()

    def remove_background(
        image: Any,
        precision: str,
        device: str,
        background: str,
        colour: str | None,
        background_image: Any,
        hard: bool,
        threshold: float,
        feather: float,
        grow: float,
        invert: bool,
        refine_foreground: bool,
        trim: bool,
        margin: float | None,
    ) -> tuple[tuple[str, str], str, str, str]:
        try:
            source = _upload_path(image, "photo")
            if source is None:
                raise UnsupportedOptionError("Upload, paste or drop a photo first.")
            backdrop: Any = None
            if background == "colour":
                backdrop = colour or "white"
            elif background == "image":
                backdrop_path = _upload_path(background_image, "background image")
                if backdrop_path is None:
                    raise UnsupportedOptionError(
                        "Background 'image' needs a background image: upload one, or pick "
                        "'transparent' or 'colour'."
                    )
                backdrop = Path(backdrop_path)
            elif background != "transparent":
                raise UnsupportedOptionError(
                    f"background={background!r} is not one of: {', '.join(BACKGROUNDS)}."
                )
            options = CutoutOptions(
                background=backdrop,
                threshold=threshold if hard else None,
                feather=feather,
                grow=_whole(grow),
                invert=invert,
                refine_foreground=refine_foreground,
                trim=trim,
                margin=_whole(margin) if trim else None,
            )
            remover = removers.get(precision)
            result = remover.cutout_and_mask(Path(source), options, device=device, output="png")
            engine = remover.engine(device).info
        except RmbgError as exc:
            message = str(exc)
            for payload in (image, background_image):  # the user's file names, not server paths
                path = _upload_path(payload, "file") if isinstance(payload, Mapping) else None
                if path:
                    message = message.replace(path, str(payload.get("orig_name") or "upload"))
            raise ui.Error(message, title=type(exc).__name__, print_exception=False) from exc
        stem = _stem(image)
        cutout = results.write(f"{stem}.cutout.png", result.cutout)
        mask = results.write(f"{stem}.mask.png", result.mask)
        where = "/".join(engine.execution_devices) or engine.device
        info = f"{engine.backend} {where}, {engine.inference_precision}"
        return (source, cutout), mask, cutout, _timings(result.seconds, info)

    return remove_background


def build_app(
    remover: BackgroundRemover,
    *,
    make_remover: Callable[[str], BackgroundRemover] | None = None,
    examples: Sequence[str | Path] | None = None,
    concurrency: int = 1,
    max_queue: int = 16,
    title: str = "rmbg: remove the background",
) -> gr.Blocks:
    """The demo as a :class:`gradio.Blocks` app, to launch or to embed.

    Args:
        remover: The model every session shares (loaded once, compiled per device on first use).
        make_remover: Makes the remover for another precision picked in the page (called once
            per precision); default: the same model, backend and pixel limit as ``remover``.
        examples: Photos offered as one-click examples (default: rmbg's bundled photos).
        concurrency: Requests computed at once; the others wait in the queue.
        max_queue: Requests that may wait; beyond that a new one is refused at once with
            "queue full" rather than piling up.
        title: The page's heading.

    Raises:
        BackendUnavailableError: Gradio is not installed (the ``demo`` extra).
    """
    ui = _gradio()
    removers = _Removers(remover, make_remover)
    results = _Results()
    if examples is None:
        from .photos import bundled_photos

        examples = bundled_photos()
    precisions = _precision_choices(remover)
    devices = _device_choices(remover)

    # every picture goes through files as PNG: Gradio would convert uploads to RGB without
    # image_mode=None and save outputs as WebP without format="png"
    picture: dict[str, Any] = {"type": "filepath", "image_mode": None, "format": "png"}
    # delete_cache: Gradio's copies of uploads and results older than _KEEP_SECONDS go hourly
    keep = int(_KEEP_SECONDS)
    with ui.Blocks(title=title, analytics_enabled=False, delete_cache=(keep, keep)) as app:
        ui.Markdown(
            f"# {title}\n"
            "Upload, paste or drop a photo (PNG transparency is kept), or pick a bundled one "
            f"below. Backend: `{remover.backend}`."
        )
        with ui.Row():
            with ui.Column(scale=1):
                image = ui.Image(
                    label="Photo", sources=["upload", "clipboard"], elem_id="rmbg-photo", **picture
                )
                run = ui.Button("Remove background", variant="primary", elem_id="rmbg-run")
                with ui.Row():
                    device = ui.Dropdown(devices, value=remover.device, label="Device")
                    precision = ui.Dropdown(precisions, value=remover.precision, label="Precision")
                background = ui.Radio(
                    list(BACKGROUNDS),
                    value="transparent",
                    label="Background",
                    elem_id="rmbg-background",
                )
                colour = ui.ColorPicker(value="#ffffff", label="Background colour")
                background_image = ui.Image(
                    label="Background image", sources=["upload", "clipboard"], height=160, **picture
                )
                with ui.Accordion("Mask options", open=False):
                    hard = ui.Checkbox(False, label="Hard mask (threshold)")
                    threshold = ui.Slider(0, 1, value=0.5, step=0.01, label="Threshold")
                    feather = ui.Slider(0, 20, value=0, step=0.5, label="Feather (px)")
                    grow = ui.Slider(-20, 20, value=0, step=1, label="Grow / shrink (px)")
                    invert = ui.Checkbox(False, label="Invert (keep the background)")
                    refine = ui.Checkbox(False, label="Refine foreground colours")
                    trim = ui.Checkbox(False, label="Trim to the subject")
                    margin = ui.Number(0, label="Trim margin (px)", precision=0)
            with ui.Column(scale=2):
                slider = ui.ImageSlider(
                    label="Before / after", interactive=False, elem_id="rmbg-slider", **picture
                )
                with ui.Row():
                    mask = ui.Image(
                        label="Mask", interactive=False, height=240, elem_id="rmbg-mask", **picture
                    )
                    with ui.Column():
                        download = ui.DownloadButton(
                            "Download the cutout (PNG)", elem_id="rmbg-download"
                        )
                        timings = ui.Markdown("Stage times appear here.", elem_id="rmbg-timings")
        ui.Examples(examples=[[str(p)] for p in examples], inputs=[image], label="Bundled photos")

        # the handler's parameters, in order
        inputs = [image, precision, device, background, colour, background_image]
        inputs += [hard, threshold, feather, grow, invert, refine, trim, margin]
        run.click(
            _handler(removers, results),
            inputs=inputs,
            outputs=[slider, mask, download, timings],
            preprocess=False,  # the library reads the uploaded files itself
            api_name="remove",
        )
    app.queue(max_size=max_queue, default_concurrency_limit=concurrency)
    return cast("gr.Blocks", app)


def run_demo(
    remover: BackgroundRemover,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    max_upload_mb: float = 50.0,
    make_remover: Callable[[str], BackgroundRemover] | None = None,
    concurrency: int = 1,
    max_queue: int = 16,
    block: bool = True,
) -> gr.Blocks:
    """Build the app and serve it (localhost by default) until interrupted.

    ``block=False`` returns once the server is up (``app.close()`` stops it); ``port=None`` takes
    Gradio's default (7860, or the next free one).
    """
    app = build_app(
        remover, make_remover=make_remover, concurrency=concurrency, max_queue=max_queue
    )
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=int(max_upload_mb * 1024 * 1024),  # bytes; refused before the upload
        prevent_thread_lock=not block,
        inbrowser=False,
        show_error=False,  # errors the user can fix are shown with the library's message
        quiet=not block,
    )
    return app


# -- command line ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rmbg.demo [flags]``: the same as ``rmbg demo [flags]``."""
    import sys

    from .cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
