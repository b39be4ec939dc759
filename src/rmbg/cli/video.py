"""``rmbg video IN OUT``: the command-line frontend of :func:`rmbg.video.remove_background`.

Parses the flags into :class:`~rmbg.options.CutoutOptions` (shared flags of
:mod:`rmbg.cli.flags`) and the clip options, builds the remover, calls the library and renders
progress and a summary. SIGINT/SIGTERM stop the run with 130/143; the library leaves nothing at
OUT (its output is renamed into place only when complete).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .flags import (
    add_log_arguments,
    add_model_arguments,
    backend_options_from_args,
    options_from_args,
    remover_from_args,
)
from .runtime import EXIT_OK, UsageError, catch_signals

__all__ = ["add_arguments", "run"]

logger = logging.getLogger("rmbg.cli")

_EXAMPLES = """\
examples:
  rmbg video clip.mp4 cut.webm                      # VP9 with alpha (browsers)
  rmbg video clip.mov cut.mov                       # ProRes 4444 with alpha (editors)
  rmbg video clip.mp4 green.mp4 --background '#00b140'   # opaque H.264 over a colour
  rmbg video clip.mp4 frames/                       # PNG frames + timecodes.txt + audio.mka
  rmbg video clip.mp4 matte.mkv --format mask       # the mask alone, lossless FFV1
  rmbg video clip.mp4 cut.webm --smoothing 0 --quality 12 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``IN OUT``, the clip flags, the per-frame cutout flags and the model flags."""
    parser.add_argument("input", type=Path, metavar="IN", help="the clip to read")
    parser.add_argument(
        "output",
        type=Path,
        metavar="OUT",
        help="a .webm/.mov/.mp4 file, or a folder (no extension) for PNG frames",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=("webm", "mov", "mp4", "png", "mask"),
        help="webm: VP9 with alpha; mov: ProRes 4444 with alpha; mp4: H.264 over --background; "
        "png: a folder of frames; mask: the mask as greyscale video (.mp4/.mov/.mkv/.webm) "
        "(default: from OUT's extension)",
    )
    out.add_argument(
        "--smoothing",
        type=float,
        metavar="S",
        help="temporal smoothing in [0, 1): weight of the previous mask where the picture is "
        "still; 0 turns it off (default: the library's, docs/video.md)",
    )
    out.add_argument(
        "--quality", type=int, metavar="CRF", help="VP9/H.264 CRF, lower is better and bigger"
    )
    out.add_argument("--no-audio", action="store_true", help="drop the audio streams")
    out.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    out.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("--workers", type=int, metavar="N", help="frames in flight at once")
    shape = parser.add_argument_group("per-frame options")
    shape.add_argument(
        "--background",
        metavar="COLOUR|IMAGE",
        help="a colour ('white', '#00b140', 0,177,64) or an image file behind the subject",
    )
    shape.add_argument("--threshold", type=float, metavar="T", help="hard mask at T (0..1)")
    shape.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften edges")
    shape.add_argument("--grow", type=int, default=0, metavar="PX", help="grow (<0: shrink)")
    shape.add_argument("--invert", action="store_true", help="keep the background instead")
    shape.add_argument(
        "--refine", action="store_true", help="estimate the colours at soft edges (slower)"
    )
    shape.add_argument(
        "--normalize", choices=("minmax", "none"), default="minmax", help="as for cutout"
    )
    add_model_arguments(parser)
    add_log_arguments(parser)
    # what the shared helpers read and a clip does not offer (a video keeps its size)
    parser.set_defaults(
        exif_transpose=False, trim=False, margin=None, trim_threshold=None, max_pixels=None
    )
    parser.epilog = _EXAMPLES


class _Progress:
    """A tqdm bar of frames on stderr (frames/s and ETA), when shown."""

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
    """Run ``rmbg video``."""
    from ..video import remove_background

    options = options_from_args(args, "cutout")
    clip: dict[str, Any] = {
        "format": args.format,
        "quality": args.quality,
        "audio": not args.no_audio,
        "overwrite": args.overwrite,
    }
    if args.smoothing is not None:
        clip["smoothing"] = args.smoothing
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    remover = remover_from_args(args, backend_options_from_args(args))
    bar = _Progress(not args.no_progress and not args.quiet and sys.stderr.isatty())
    try:
        with catch_signals():
            result = remove_background(
                remover,
                args.input,
                args.output,
                options,
                workers=args.workers,
                progress=bar,
                **clip,
            )
    finally:
        bar.close()
    summary = {
        "output": str(result.path),
        "format": result.format,
        "frames": result.frames,
        "size": list(result.size),
        "rotation": result.rotation,
        "duration": result.duration,
        "seconds": round(result.seconds, 3),
        "frames_per_second": round(result.fps, 3),
        "audio": list(result.audio),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        audio = f", audio: {', '.join(result.audio)}" if result.audio else ""
        print(
            f"rmbg: {result.path}: {result.frames} frames, {result.fps:.2f} frames/s{audio}",
            file=sys.stderr,
        )
    return EXIT_OK
