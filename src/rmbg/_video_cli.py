"""``rmbg video IN OUT``: the command-line frontend of :func:`rmbg.video.remove_background`.

Exposes ``add_arguments(parser)`` and ``run(args) -> int``, the shape every subcommand module of
the CLI has; only argparse is imported until the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["EXAMPLES", "add_arguments", "run"]

logger = logging.getLogger("rmbg")

EXAMPLES = """\
examples:
  rmbg video clip.mp4 cut.webm                      # VP9 with alpha (browsers, Resolve, AE)
  rmbg video clip.mov cut.mov                       # ProRes 4444 with alpha (editors)
  rmbg video clip.mp4 green.mp4 --background '#00b140'   # opaque H.264 over a colour
  rmbg video clip.mp4 frames/                       # PNG frames + timecodes.txt + audio.mka
  rmbg video clip.mp4 matte.mp4 --format mask       # the mask as a greyscale video
  rmbg video clip.mp4 cut.webm --smoothing 0 --quality 15 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``video`` subcommand's arguments."""
    parser.add_argument("input", type=Path, metavar="IN", help="the clip to read")
    parser.add_argument(
        "output",
        type=Path,
        metavar="OUT",
        help="a .webm/.mov/.mp4 file, or a folder for PNG frames (replaced atomically)",
    )
    fmt = parser.add_argument_group("output")
    fmt.add_argument(
        "--format",
        choices=("webm", "mov", "mp4", "png", "mask"),
        help="output format (default: from OUT's extension; no extension: PNG folder)",
    )
    fmt.add_argument(
        "--smoothing",
        type=float,
        metavar="S",
        help="temporal smoothing in [0, 1): 0 off (default: the library's, see docs/video.md)",
    )
    fmt.add_argument("--quality", type=int, metavar="CRF", help="VP9/H.264 CRF (lower: better)")
    fmt.add_argument("--no-audio", action="store_true", help="drop the audio")
    fmt.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    shape = parser.add_argument_group("per-frame options")
    shape.add_argument("--background", metavar="COLOUR|IMAGE", help="colour or image file behind")
    shape.add_argument("--threshold", type=float, metavar="T", help="hard mask at T (0..1)")
    shape.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften edges")
    shape.add_argument("--grow", type=int, default=0, metavar="PX", help="grow (<0: shrink)")
    shape.add_argument("--invert", action="store_true", help="keep the background instead")
    shape.add_argument(
        "--refine-foreground", action="store_true", help="estimate edge colours (slower)"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="Hub id, checkpoint folder, .onnx or .xml")
    model.add_argument("--backend", default="openvino", help="openvino (default), torch, ...")
    model.add_argument("--device", help="e.g. CPU, GPU, AUTO (OpenVINO); cpu, cuda (torch)")
    model.add_argument("--precision", default="auto", help="auto, f32, bf16, f16, int8")
    model.add_argument("--cache-dir", type=Path, help="converted-model cache")
    model.add_argument("--workers", type=int, help="frames in flight (default: the engine's)")
    model.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable (e.g. performance_hint=THROUGHPUT)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def _backend_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values that parse as JSON (numbers, true/false) are typed."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            from .errors import UnsupportedOptionError

            raise UnsupportedOptionError(f"--backend-option takes KEY=VALUE, not {pair!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def _background(value: str | None) -> Any:
    """A colour string, or a ``Path`` when it names an existing image file."""
    if value is None:
        return None
    path = Path(value)
    return path if path.suffix and path.is_file() else value


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so the output is cleaned up either way."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Progress:
    """One line on stderr: frames, frames/s, ETA (tqdm when stderr is a terminal)."""

    def __init__(self, show: bool) -> None:
        self.bar: Any = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(unit="frame", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, p: Any) -> None:
        if self.bar is None:
            return
        if p.total is not None and self.bar.total != p.total:
            self.bar.total = p.total
        self.bar.update(p.frames - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    """Run ``rmbg video``; exit code 0 ok, 1 failed, 130/143 interrupted (nothing left at OUT)."""
    from .remover import BackgroundRemover
    from .video import remove_background

    keywords: dict[str, Any] = {
        "background": _background(args.background),
        "threshold": args.threshold,
        "feather": args.feather,
        "grow": args.grow,
        "invert": args.invert,
        "refine_foreground": args.refine_foreground,
        "audio": not args.no_audio,
        "overwrite": args.overwrite,
        "format": args.format,
        "quality": args.quality,
    }
    if args.smoothing is not None:
        keywords["smoothing"] = args.smoothing
    started = time.perf_counter()
    remover = BackgroundRemover(
        args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        cache_dir=args.cache_dir,
        backend_options=_backend_options(args.backend_option),
    )
    logger.info("model ready in %.1f s: %s", time.perf_counter() - started, remover.info)
    show = not args.no_progress and not getattr(args, "quiet", False) and sys.stderr.isatty()
    bar = _Progress(show)
    try:
        with _sigterm_as_interrupt():
            result = remove_background(
                remover, args.input, args.output, workers=args.workers, progress=bar, **keywords
            )
    except KeyboardInterrupt as exc:
        bar.close()
        signum = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
        logger.error("interrupted by %s: nothing written", signal.Signals(signum).name)
        return 128 + int(signum)
    bar.close()
    summary = {
        "output": str(result.path),
        "format": result.format,
        "frames": result.frames,
        "size": list(result.size),
        "rotation": result.rotation,
        "duration": result.duration,
        "seconds": round(result.seconds, 3),
        "fps": round(result.fps, 3),
        "audio": list(result.audio),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not getattr(args, "quiet", False):
        audio = f", audio: {', '.join(result.audio)}" if result.audio else ""
        print(
            f"rmbg: {result.path}: {result.frames} frames, {result.fps:.2f} frames/s{audio}",
            file=sys.stderr,
        )
    return 0
