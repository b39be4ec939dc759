"""The ``rmbg`` command line (also ``python -m rmbg``).

Commands: ``cutout`` and ``mask`` (files, globs, folders, stdin/stdout), ``devices``, ``download``,
``export``, ``verify`` and ``info``. See ``docs/cli.md`` for the user guide.

Exit codes:
    0: everything asked for was done (skipped outputs count as done).
    1: something failed: some inputs (each is reported with its reason, the rest are still
       processed), the model could not be loaded, or ``verify`` found a parity failure.
    2: usage error: unknown or incompatible flags, an option the backend or device cannot honour.
    130 / 143: interrupted by SIGINT (Ctrl-C) / SIGTERM; no partial output is left behind.

Design: the model is loaded once per run; every image goes through :func:`_process_many`, which
keeps the per-file stages (load + compute by the library, encode, atomic write, error capture)
apart so that a pipelined batch API can replace the compute stage alone. Logs go to stderr, image
data and ``--json`` summaries to stdout. The library itself never prints; only this module does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import io
import json
import logging
import os
import platform
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .backends import available_backends
from .backends.base import PRECISIONS
from .errors import (
    DeviceNotFoundError,
    GatedModelError,
    RmbgError,
    UnknownBackendError,
    UnsupportedOptionError,
)

if TYPE_CHECKING:
    from .backends.base import ModelSource
    from .remover import BackgroundRemover

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + 2
EXIT_SIGTERM = 128 + 15

logger = logging.getLogger("rmbg.cli")

#: Output formats and the file extensions that select them.
FORMATS: dict[str, str] = {".png": "png", ".webp": "webp", ".jpg": "jpg", ".jpeg": "jpg"}
#: zlib level for PNG: 1 encodes a 12 MP RGBA cutout 3-6x faster than Pillow's default (6) for
#: a file 15-30 % larger (measured in docs/cli.md); lossless either way.
DEFAULT_PNG_LEVEL = 1
DEFAULT_JPEG_QUALITY = 95
#: Library errors that mean "the options are wrong" rather than "something broke".
_USAGE_ERRORS = (UnknownBackendError, DeviceNotFoundError, UnsupportedOptionError)
_LICENCE = """\
RMBG-1.4 weights: BRIA AI's licence 'bria-rmbg-1.4', non-commercial use only.
Commercial use needs an agreement with BRIA. rmbg never bundles or re-hosts the weights.
Terms: https://huggingface.co/{repo}"""
_GATING = """\
The repository is gated. To download it:
  1. accept the licence at https://huggingface.co/{repo} with your Hugging Face account;
  2. create a read token at https://huggingface.co/settings/tokens and export HF_TOKEN=<token>
     (or run `hf auth login`);
  3. run `rmbg download` again."""


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


class Interrupted(BaseException):
    """Raised in the main thread when SIGINT or SIGTERM arrives during a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


# ---------------------------------------------------------------------------------------------
# the argument parser
# ---------------------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


_EXAMPLES: dict[str, str] = {
    "rmbg": """\
examples:
  rmbg cutout photo.jpg                        # writes photo.cutout.png beside it
  rmbg cutout photos/ -r --out-dir cutouts/    # a folder tree, structure kept
  cat a.jpg | rmbg cutout - > a.png            # stdin to stdout
  rmbg mask photo.jpg -o mask.png --threshold 0.5
  rmbg devices && rmbg info
""",
    "cutout": """\
examples:
  rmbg cutout photo.jpg                             # -> photo.cutout.png beside the input
  rmbg cutout photo.jpg -o product.webp             # format from the extension (lossless WebP)
  rmbg cutout shop/ -r --out-dir out/ --skip-existing --json > summary.json
  rmbg cutout 'shop/**/*.jpg' -r --out-dir out/     # quoted globs are expanded by rmbg
  rmbg cutout photo.jpg --background white --trim --margin 20 -o product.jpg
  cat photo.jpg | rmbg cutout - > photo.png         # stdin -> stdout
  rmbg cutout photos/ --device GPU --precision f16 --backend-option performance_hint=THROUGHPUT
""",
    "mask": """\
examples:
  rmbg mask photo.jpg                               # -> photo.mask.png beside the input
  rmbg mask photos/ -r --out-dir masks/ --threshold 0.5
  rmbg mask photo.jpg --feather 2 --grow 3 -o mask.png
  cat photo.jpg | rmbg mask - --invert > background-mask.png
""",
    "devices": """\
examples:
  rmbg devices
  rmbg devices --json
""",
    "download": """\
examples:
  rmbg download                                     # briaai/RMBG-1.4 into the Hub cache
  HF_TOKEN=hf_... rmbg download --revision main
  rmbg download --model myorg/my-rmbg-finetune
""",
    "export": """\
examples:
  rmbg export models/rmbg/1                         # f16 IR, OpenVINO Model Server layout
  rmbg export --precision f32 --name rmbg out/
  rmbg export --model ./checkpoint --overwrite out/
""",
    "verify": """\
examples:
  rmbg verify                                       # bundled photos, OpenVINO f32 on CPU vs torch
  rmbg verify --device GPU --precision f16
  rmbg verify --model ./checkpoint my-photo.jpg --json
""",
    "info": """\
examples:
  rmbg info
  rmbg info --model ./checkpoint --json
""",
}


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _byte(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be between 0 and 255, not {text}")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, not {text}")
    return value


def _png_level(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be between 0 and 9, not {text}")
    return value


def _backend_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _backend_options(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``[("config.NUM_STREAMS", 2)]`` -> ``{"config": {"NUM_STREAMS": 2}}`` (dots nest)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"--backend-option {key}: {part!r} is already set to a value")
            node = child
        node[leaf] = value
    return out


def _log_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("logging (to stderr)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more logs (-vv: debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="errors only")
    return p


def _model_flags(
    *, backend: bool = True, device: bool = True, precision: bool = True
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        metavar="MODEL",
        help="Hub repo id, checkpoint folder, .safetensors, .onnx or OpenVINO .xml "
        "(default: $RMBG_MODEL, else briaai/RMBG-1.4)",
    )
    g.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model")
    g.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="rmbg's cache of converted models (default: $RMBG_CACHE_DIR or ~/.cache/rmbg)",
    )
    if backend:
        g.add_argument(
            "--backend",
            default="openvino",
            choices=available_backends(),
            help="inference backend (default: openvino)",
        )
    if device:
        g.add_argument(
            "--device",
            help="device: OpenVINO AUTO (default), CPU, GPU, GPU.1, NPU, AUTO:GPU,CPU...; "
            "torch cpu (default), cuda, cuda:1 (see `rmbg devices`)",
        )
    if precision:
        g.add_argument(
            "--precision",
            default="auto",
            choices=PRECISIONS,
            help="auto (the device's fastest accurate default), f32 (exact parity with "
            "PyTorch), bf16, f16, int8 (OpenVINO) (default: auto)",
        )
    if backend:
        g.add_argument(
            "--backend-option",
            dest="backend_option",
            type=_backend_option,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="backend option, VALUE parsed as JSON when it can be, dots nest: "
            "performance_hint=THROUGHPUT, config.NUM_STREAMS=2, num_requests=4 (repeatable)",
        )
    return p


def _image_flags(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders, glob patterns, or - for standard input",
    )
    # exclusive pairs are checked in _cmd_images: argparse loses a mutually exclusive group's
    # argument group when it is inherited through parents=, and the help would misplace them
    out = p.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="output file for a single input, - for standard output "
        f"(default: <stem>.{kind}.<format> beside the input; stdout for stdin)",
    )
    out.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="write <stem>.<format> into DIR, keeping the folder structure below each input folder",
    )
    out.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    out.add_argument(
        "--format",
        choices=("png", "webp", "jpg"),
        help="output format (default: from -o's extension, else png); jpg needs an opaque "
        "image (a mask, or a cutout with --background)",
    )
    out.add_argument(
        "--quality",
        type=_quality,
        metavar="Q",
        help=f"1-100: lossy WebP at this quality (default: lossless), JPEG quality "
        f"(default: {DEFAULT_JPEG_QUALITY})",
    )
    out.add_argument(
        "--compress-level",
        type=_png_level,
        default=DEFAULT_PNG_LEVEL,
        metavar="N",
        help=f"PNG zlib level 0-9 (default: {DEFAULT_PNG_LEVEL}, fast; 6 is ~15-30%% smaller and "
        "3-6x slower to write)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and move on (resume a long run)",
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary on stdout at the end (processed, skipped, failed, "
        "outputs, seconds)",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (there is none anyway when stderr is not a terminal)",
    )
    run.add_argument(
        "--max-pixels",
        type=_non_negative_int,
        metavar="N",
        help="largest input accepted, in pixels; 0 for no limit (default: Pillow's)",
    )
    run.add_argument(
        "--no-exif-transpose",
        dest="exif_transpose",
        action="store_false",
        help="ignore the EXIF orientation (default: apply it, as viewers do)",
    )
    shape = p.add_argument_group("mask shaping")
    shape.add_argument(
        "--threshold",
        type=_unit_float,
        metavar="T",
        help="hard mask: pixels at or above T (0..1) become opaque, the rest transparent",
    )
    shape.add_argument(
        "--feather",
        type=_non_negative_float,
        default=0.0,
        metavar="PX",
        help="soften the edge by a Gaussian of this radius in pixels",
    )
    shape.add_argument(
        "--grow",
        type=int,
        default=0,
        metavar="PX",
        help="grow (positive) or shrink (negative) the mask by PX pixels",
    )
    shape.add_argument("--invert", action="store_true", help="keep the background instead")
    shape.add_argument(
        "--normalize",
        choices=("minmax", "none"),
        default="minmax",
        help="minmax: stretch each mask to 0..255 like the reference (default); none: keep "
        "the network's probabilities (an empty scene stays empty)",
    )
    if kind == "cutout":
        comp = p.add_argument_group("cutout")
        comp.add_argument(
            "--background",
            metavar="COLOUR|IMAGE",
            help="fill the background: a colour (white, '#00ff00', '#00ff0080', 255,255,255) "
            "or an image file fitted to the output (default: transparent)",
        )
        comp.add_argument("--trim", action="store_true", help="crop to the subject's bounding box")
        comp.add_argument(
            "--margin",
            type=_non_negative_int,
            metavar="PX",
            help="pixels kept around the subject with --trim (default: 0)",
        )
        comp.add_argument(
            "--trim-threshold",
            type=_byte,
            metavar="A",
            help="alpha (0..255) that counts as subject with --trim (default: the library's)",
        )
        comp.add_argument(
            "--refine",
            action="store_true",
            help="estimate the foreground colour at soft edges so the old background does "
            "not bleed into hair and fur",
        )
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``rmbg`` argument parser (exposed for documentation tools and tests)."""
    parser = argparse.ArgumentParser(
        prog="rmbg",
        description="Remove image backgrounds with BRIA RMBG-1.4 (OpenVINO, PyTorch).",
        epilog=_EXAMPLES["rmbg"]
        + "\nexit codes: 0 ok, 1 some inputs failed (or the model could not be loaded), "
        "2 usage error,\n            130/143 interrupted (SIGINT/SIGTERM).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"rmbg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    logs = _log_flags()

    def add(
        name: str, help_: str, parents: list[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[*parents, logs],
            epilog=_EXAMPLES[name],
            formatter_class=_Formatter,
        )
        p.set_defaults(subparser=p)
        return p

    add(
        "cutout",
        "cut out the subject: RGBA, or over a --background",
        [_image_flags("cutout"), _model_flags()],
    ).set_defaults(handler=_cmd_images, kind="cutout")
    add(
        "mask", "write the subject's alpha mask (greyscale)", [_image_flags("mask"), _model_flags()]
    ).set_defaults(handler=_cmd_images, kind="mask")

    p = add("devices", "list the OpenVINO devices and torch/CUDA availability", [])
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=_cmd_devices)

    p = add("download", "fetch the checkpoint into the Hugging Face cache ahead of time", [])
    p.add_argument(
        "--model", metavar="REPO", help="Hub repo id (default: $RMBG_MODEL, else briaai/RMBG-1.4)"
    )
    p.add_argument("--revision", help="branch, tag or commit to fetch")
    p.set_defaults(handler=_cmd_download)

    p = add(
        "export",
        "write the converted OpenVINO IR (.xml/.bin + .json) for deployment",
        [_model_flags(backend=False, device=False, precision=False)],
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write into (created)")
    p.add_argument(
        "--precision",
        choices=("f16", "f32"),
        default="f16",
        help="weights of the IR: f16 (half the size; OpenVINO's default) or f32 (default: f16)",
    )
    p.add_argument("--name", default="rmbg-1.4", help="file stem (default: rmbg-1.4)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(handler=_cmd_export)

    p = add(
        "verify",
        "run the PyTorch and OpenVINO backends side by side and print parity and timings",
        [_model_flags(backend=False, device=False, precision=False)],
    )
    p.add_argument(
        "images", nargs="*", metavar="IMAGE", help="images to check (default: the bundled photos)"
    )
    p.add_argument("--device", default="CPU", help="OpenVINO device to check (default: CPU)")
    p.add_argument(
        "--precision",
        default="f32",
        choices=PRECISIONS,
        help="OpenVINO precision (default: f32); torch always runs the f32 reference",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_cmd_verify)

    p = add(
        "info",
        "versions, cache location and size, the model files in use",
        [_model_flags(backend=False, device=False, precision=False)],
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=_cmd_info)
    return parser


# ---------------------------------------------------------------------------------------------
# entry point, logging, signals
# ---------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it).

    Args:
        argv: The arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 1 failures, 2 usage error, 130/143 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, or argparse's own usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with _logging(args.verbose, args.quiet):
        handler: Callable[[argparse.Namespace], int] = args.handler
        try:
            return handler(args)
        except UsageError as exc:
            sub: argparse.ArgumentParser = args.subparser
            sub.print_usage(sys.stderr)
            print(f"{sub.prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except _USAGE_ERRORS as exc:
            logger.error("%s", exc)
            return EXIT_USAGE
        except (RmbgError, OSError) as exc:  # e.g. offline without a cached model; disk full
            logger.error("%s", exc)
            return EXIT_FAILED
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            logger.error("interrupted by %s", signal.Signals(signum).name)
            return 128 + signum


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"rmbg: {record.levelname.lower()}: {message}"
        return f"rmbg: {message}"


@contextlib.contextmanager
def _logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Route the library's and the CLI's logs (and rmbg warnings) to stderr for one run."""
    level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format("%(message)s"))
    loggers = [logging.getLogger("rmbg"), logging.getLogger("py.warnings")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for lg, (lvl, prop) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(lvl)
            lg.propagate = prop


class _SignalGate:
    """State shared by the signal handler and the critical sections (main thread only)."""

    depth = 0  # > 0 inside a critical section: signals are held back
    pending: int | None = None  # the first signal that arrived inside one


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, except
    inside :func:`_signals_deferred` sections, at whose end they are raised instead."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if _SignalGate.depth:
            if _SignalGate.pending is None:
                _SignalGate.pending = signum
            return
        raise Interrupted(signum)

    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _SignalGate.pending = None


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back around a critical section; raise :class:`Interrupted` at its end.

    This works at the Python level (the handler installed by :func:`_signals_raise` records the
    signal instead of raising), so it holds whichever OS thread the signal was delivered to
    (OpenVINO and torch run thread pools). Outside :func:`_signals_raise` (the library's own
    callers, tests) it does nothing and the ``finally`` clean-ups do the job.
    """
    if not _in_main_thread():
        yield
        return
    _SignalGate.depth += 1
    try:
        yield
    finally:
        _SignalGate.depth -= 1
        if _SignalGate.depth == 0 and _SignalGate.pending is not None:
            signum, _SignalGate.pending = _SignalGate.pending, None
            raise Interrupted(signum)


# ---------------------------------------------------------------------------------------------
# cutout / mask: planning
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Job:
    """One image to process: where it comes from and where it goes."""

    label: str  # the input as reported: the path as found, or "-" for standard input
    path: Path | None  # None: standard input
    dest: Path | None  # None: standard output
    fmt: str
    data: bytes | None = None  # standard input's bytes

    @property
    def output_label(self) -> str:
        return "-" if self.dest is None else str(self.dest)


@dataclasses.dataclass
class _Summary:
    """What a run did, printed at the end (text on stderr, or ``--json`` on stdout)."""

    command: str
    started: float = dataclasses.field(default_factory=time.perf_counter)
    processed: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    outputs: list[dict[str, str]] = dataclasses.field(default_factory=list)
    interrupted: str | None = None
    error: str | None = None  # the run could not start (the model did not load)

    def fail(self, label: str, reason: str) -> None:
        # the library's messages name the file too: once is enough
        for named in (f"{label!r}: ", f"{label}: "):
            if reason.startswith(named):
                reason = reason[len(named) :]
                break
        self.failed.append({"input": label, "error": reason})
        logger.error("%s: %s", label, reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            "outputs": self.outputs,
            "seconds": round(time.perf_counter() - self.started, 3),
            "interrupted": self.interrupted,
            "error": self.error,
        }

    def text(self) -> str:
        line = (
            f"{self.processed} processed, {self.skipped} skipped, {len(self.failed)} failed "
            f"in {time.perf_counter() - self.started:.1f} s"
        )
        if self.interrupted:
            line = f"interrupted by {self.interrupted}: {line}"
        return line

    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + int(signal.Signals[self.interrupted])
        return EXIT_FAILED if self.failed else EXIT_OK


@dataclasses.dataclass(frozen=True)
class _Output:
    """How outputs are encoded and written."""

    fmt: str | None  # None: from -o's extension / png
    quality: int | None
    compress_level: int
    overwrite: bool
    skip_existing: bool


def _image_extensions() -> frozenset[str]:
    from PIL import Image

    exts = Image.registered_extensions()
    return frozenset(e.lower() for e, f in exts.items() if f in Image.OPEN)


def _is_own_output(path: Path) -> bool:
    """``x.cutout.png`` / ``x.mask.webp``: rmbg's default output names, never taken as input."""
    stem_suffix = Path(path.stem).suffix
    return stem_suffix in (".cutout", ".mask") and path.suffix.lower() in FORMATS


def _expand(
    arg: str, recursive: bool, exclude: Path | None, summary: _Summary
) -> list[tuple[Path, Path | None]]:
    """One INPUT argument -> ``(file, base folder or None)`` pairs, sorted.

    Folders and globs yield image files only (by extension), skipping hidden files, rmbg's own
    default outputs and anything under ``exclude`` (the output folder); a file named explicitly is
    always taken.
    """
    exts = _image_extensions()
    path = Path(arg)
    top = path if path.is_dir() else _glob_base(arg)
    if exclude is not None and exclude == top.resolve():
        exclude = None  # --out-dir is the input folder itself: its sub-folders are still inputs

    def keep(p: Path) -> bool:
        if p.name.startswith(".") or p.suffix.lower() not in exts or _is_own_output(p):
            return False
        return not (exclude is not None and p.resolve().is_relative_to(exclude))

    if path.is_dir():
        if recursive:
            found: list[Path] = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                if exclude is not None and Path(folder).resolve().is_relative_to(exclude):
                    dirs[:] = []
                    continue
                found.extend(Path(folder, f) for f in files)
        else:
            found = [p for p in path.iterdir() if p.is_file()]
        files_ = sorted(p for p in found if keep(p))
        if not files_:
            logger.warning(
                "%s: no image files%s", arg, "" if recursive else " (use -r for sub-folders)"
            )
        return [(p, path) for p in files_]
    if path.exists():
        return [(path, None)]
    if glob.has_magic(arg):
        matches = sorted(Path(m) for m in glob.glob(arg, recursive=recursive) if Path(m).is_file())
        matches = [m for m in matches if keep(m)]
        if not matches:
            summary.fail(arg, "no image files match this pattern")
        base = _glob_base(arg)
        return [(m, base) for m in matches]
    summary.fail(arg, "no such file or folder")
    return []


def _glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard (structure is kept below it)."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


def _format_of(output: str | None, fmt: str | None) -> str:
    if output is None or output == "-":
        return fmt or "png"
    ext = Path(output).suffix.lower()
    from_ext = FORMATS.get(ext)
    if fmt is None:
        if from_ext is None:
            raise UsageError(
                f"cannot tell the format of {output!r} from its extension; use .png, .webp or "
                ".jpg, or pass --format"
            )
        return from_ext
    if from_ext is not None and from_ext != fmt:
        raise UsageError(f"--format {fmt} contradicts the extension of {output!r}")
    return fmt


def _plan(args: argparse.Namespace, kind: str, out: _Output, summary: _Summary) -> list[_Job]:
    """Expand the inputs into jobs, deciding every output name up front."""
    inputs: list[str] = args.inputs
    output: str | None = args.output
    out_dir: Path | None = args.out_dir
    fmt = _format_of(output, out.fmt)
    ext = "jpg" if fmt == "jpg" else fmt
    if inputs.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")
    if output is not None:
        single = inputs[0] if len(inputs) == 1 else ""
        if (
            not single
            or Path(single).is_dir()
            or (glob.has_magic(single) and not Path(single).exists())
        ):
            raise UsageError(
                "-o/--output takes exactly one input file (or -); use --out-dir for more"
            )
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} exists and is not a folder")
    exclude = out_dir.resolve() if out_dir is not None else None

    jobs: list[_Job] = []
    seen_inputs: set[Path] = set()
    for arg in inputs:
        if arg == "-":
            if sys.stdin.isatty():
                raise UsageError("standard input (-) is a terminal; pipe an image into rmbg")
            dest = None if output in (None, "-") else Path(output)
            if dest is None and out_dir is not None:
                raise UsageError(
                    "standard input (-) needs -o OUTPUT (or goes to stdout), not --out-dir"
                )
            jobs.append(_Job("-", None, dest, fmt))
            continue
        for path, base in _expand(arg, args.recursive, exclude, summary):
            key = path.resolve()
            if key in seen_inputs:
                continue
            seen_inputs.add(key)
            if output is not None:
                dest = None if output == "-" else Path(output)
            elif out_dir is not None:
                rel = path.relative_to(base) if base is not None else Path(path.name)
                dest = out_dir / rel.with_name(f"{rel.stem}.{ext}")
            else:
                dest = path.with_name(f"{path.stem}.{kind}.{ext}")
            jobs.append(_Job(str(path), path, dest, fmt))

    if any(j.dest is None for j in jobs):
        if sys.stdout.isatty():
            raise UsageError(
                "refusing to write image data to a terminal; redirect stdout or use -o"
            )
        if args.json:
            raise UsageError("--json prints on stdout, which already carries the image; use -o")

    # never overwrite an input, never let two inputs write the same file, honour existing outputs
    todo: list[_Job] = []
    claimed: dict[Path, str] = {}
    all_inputs = {j.path.resolve() for j in jobs if j.path is not None}
    for job in jobs:
        if job.dest is None:
            todo.append(job)
            continue
        target = job.dest.resolve()
        if target in all_inputs:
            summary.fail(job.label, f"the output {job.dest} would overwrite an input; refusing")
            continue
        if target in claimed:
            summary.fail(
                job.label, f"the output {job.dest} is also the output of {claimed[target]}"
            )
            continue
        claimed[target] = job.label
        if job.dest.exists():
            if out.skip_existing:
                summary.skipped += 1
                logger.info("%s: skipped, %s exists", job.label, job.dest)
                continue
            if not out.overwrite:
                summary.fail(
                    job.label, f"the output {job.dest} exists (use --overwrite or --skip-existing)"
                )
                continue
        todo.append(job)
    return todo


def _background(value: str | None) -> tuple[Any, bool]:
    """``--background`` -> (what the library accepts, whether it is opaque).

    An existing file is a background image (passed as a ``Path``, read by the library); anything
    else is a colour, read by the library's own :func:`rmbg.compose.parse_color`, with ``R,G,B[,A]``
    accepted as a tuple.
    """
    if value is None:
        return None, False
    from .compose import parse_color

    path = Path(value).expanduser()
    if path.is_file():
        from .io import load_image

        try:
            loaded = load_image(path)
        except RmbgError as exc:
            raise UsageError(f"--background {value}: {exc}") from exc
        return path, loaded.alpha is None
    colour: str | tuple[int, ...] = value.strip()
    if re.fullmatch(r"\d+(\s*,\s*\d+){2,3}", str(colour)):
        colour = tuple(int(c) for c in str(colour).split(","))
    try:
        alpha = parse_color(colour)[3]
    except RmbgError as exc:
        raise UsageError(
            f"--background {value!r} is neither an image file nor a colour (white, '#00ff00', "
            f"'#00ff0080', 255,255,255): {exc}"
        ) from exc
    return colour, alpha == 255


def _library_options(args: argparse.Namespace, kind: str) -> tuple[dict[str, Any], bool]:
    """The ``mask()``/``cutout()`` keyword options from the flags, and whether outputs are opaque."""
    options: dict[str, Any] = {
        "normalize": args.normalize,
        "threshold": args.threshold,
        "feather": args.feather,
        "grow": args.grow,
        "invert": args.invert,
        "exif_transpose": args.exif_transpose,
    }
    if kind == "mask":
        return options, True
    background, opaque = _background(args.background)
    if (args.margin is not None or args.trim_threshold is not None) and not args.trim:
        raise UsageError("--margin and --trim-threshold need --trim")
    options.update(background=background, trim=args.trim, refine_foreground=args.refine)
    if args.margin is not None:
        options["margin"] = args.margin
    if args.trim_threshold is not None:
        options["trim_threshold"] = args.trim_threshold
    return options, opaque


# ---------------------------------------------------------------------------------------------
# cutout / mask: the per-file stages
# ---------------------------------------------------------------------------------------------
def _compute(
    remover: BackgroundRemover,
    jobs: Sequence[_Job],
    kind: str,
    options: dict[str, Any],
    out: _Output,
) -> Iterator[tuple[_Job, Any]]:
    """Stages 1-2, load + compute + encode: yields ``(job, encoded bytes or the exception)``.

    Runs through the library's pipelined batch API, so decoding, pre/post-processing and
    encoding of some files overlap the inference of others; results come back in job order.
    """
    batch = remover.cutouts if kind == "cutout" else remover.masks
    sources: list[Any] = [
        job.path if job.path is not None else io.BytesIO(job.data or b"") for job in jobs
    ]
    formats = {job.fmt for job in jobs}
    then = None
    if len(formats) == 1:  # one format per run: encode in the workers too
        then = functools.partial(
            _encode, fmt=formats.pop(), quality=out.quality, compress_level=out.compress_level
        )
    results = batch(sources, return_exceptions=True, then=then, **options)
    yield from zip(jobs, results, strict=True)


def _encode(image: Any, fmt: str, *, quality: int | None, compress_level: int) -> bytes:
    """Stage 2: encode a result (a PIL image) to bytes: PNG, WebP (lossless unless ``quality``)
    or JPEG."""
    from PIL import Image as PILImage

    if not isinstance(image, PILImage.Image):  # the library mirrors the input type
        import numpy as np

        image = PILImage.fromarray(np.asarray(image))
    params: dict[str, Any] = {}
    icc = image.info.get("icc_profile")
    if icc:
        params["icc_profile"] = icc
    if fmt == "png":  # rmbg's encoder: lossless, 5-20x faster than Pillow's (rmbg._png)
        import numpy as np

        from ._png import encode_png

        return encode_png(np.asarray(image), level=compress_level, icc_profile=icc or None)
    buf = io.BytesIO()
    if fmt == "webp":
        if quality is None:
            image.save(buf, "WEBP", lossless=True, **params)
        else:
            image.save(buf, "WEBP", quality=quality, **params)
    elif fmt == "jpg":
        if "A" in image.getbands():
            if image.getchannel("A").getextrema()[0] != 255:
                raise ValueError("JPEG cannot store transparency; use png/webp or --background")
            image = image.convert("RGB" if image.mode == "RGBA" else "L")
        elif image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buf, "JPEG", quality=quality or DEFAULT_JPEG_QUALITY, **params)
    else:  # pragma: no cover - the parser only offers the formats above
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


def write_atomic(dest: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Stage 3: write ``data`` to ``dest`` so that ``dest`` is either absent or complete.

    The bytes go to a hidden temporary file in the destination folder (same file system), are
    fsynced, and the file is renamed into place: with ``os.replace`` when ``overwrite``, else with
    a hard link that fails if ``dest`` appeared meanwhile (no-clobber even against another
    process). During a CLI run SIGINT/SIGTERM are held back for the duration (see
    :func:`_signals_deferred`), and the temporary file is removed whatever happens, so an
    interrupted run never leaves a truncated or stray file.

    Raises:
        FileExistsError: ``dest`` exists and ``overwrite`` is false.
        OSError: The folder cannot be written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _signals_deferred():
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(OSError):  # mkstemp makes it private; outputs are not
                os.chmod(tmp, 0o666 & ~_umask())
            if overwrite:
                os.replace(tmp, dest)
            else:
                try:
                    os.link(tmp, dest)
                except FileExistsError:
                    raise FileExistsError(
                        f"the output {dest} exists (use --overwrite or --skip-existing)"
                    ) from None
                except OSError:  # no hard links here (some network/FAT file systems)
                    if dest.exists():
                        raise FileExistsError(f"the output {dest} exists") from None
                    os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _deliver(job: _Job, data: bytes, out: _Output) -> None:
    """Stage 3 for one job: atomic file write, or standard output."""
    if job.dest is None:
        stream = sys.stdout.buffer
        stream.write(data)
        stream.flush()
    else:
        write_atomic(job.dest, data, overwrite=out.overwrite)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (RmbgError, OSError, ValueError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _process_many(
    remover: BackgroundRemover,
    jobs: Sequence[_Job],
    *,
    kind: str,
    options: dict[str, Any],
    out: _Output,
    summary: _Summary,
    progress: Any = None,
) -> None:
    """Compute, encode and write every job in order; a failure is recorded and the run goes on.

    Args:
        remover: The (already loaded) remover.
        jobs: What to do, in order.
        kind: ``"cutout"`` or ``"mask"``.
        options: Keyword options of ``remover.cutout``/``remover.mask``.
        out: Encoding and writing options.
        summary: Receives the outcome of each job.
        progress: A tqdm bar (``update(1)`` per job) or None.
    """
    for job, result in _compute(remover, jobs, kind, options, out):
        started = time.perf_counter()
        try:
            if isinstance(result, BaseException):
                raise result
            data = (
                result
                if isinstance(result, bytes)
                else _encode(
                    result, job.fmt, quality=out.quality, compress_level=out.compress_level
                )
            )
            # a signal is held back until the file is in place *and* counted, so the summary of
            # an interrupted run lists exactly the files on disk
            with _signals_deferred() if job.dest is not None else contextlib.nullcontext():
                _deliver(job, data, out)
                summary.processed += 1
                summary.outputs.append({"input": job.label, "output": job.output_label})
        except Exception as exc:
            logger.debug("%s failed", job.label, exc_info=exc)
            summary.fail(job.label, _reason(exc))
        else:
            logger.info(
                "%s -> %s (%d bytes, encoded and written in %.0f ms)",
                job.label,
                job.output_label,
                len(data),
                1000 * (time.perf_counter() - started),
            )
        if progress is not None:
            progress.update(1)


def _cmd_images(args: argparse.Namespace) -> int:
    kind: str = args.kind
    summary = _Summary(kind)
    out = _Output(
        fmt=args.format,
        quality=args.quality,
        compress_level=args.compress_level,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
    )
    if args.output is not None and args.out_dir is not None:
        raise UsageError("-o/--output and --out-dir exclude each other")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip-existing exclude each other")
    options, opaque = _library_options(args, kind)
    fmt = _format_of(args.output, args.format)
    if fmt == "jpg" and not opaque:
        raise UsageError(
            "JPEG has no transparency: a cutout in jpg needs an opaque --background "
            "(e.g. --background white); or use png/webp"
        )
    if args.quality is not None and fmt == "png":
        raise UsageError(
            "--quality applies to webp and jpg; PNG is lossless (see --compress-level)"
        )
    backend_options = _backend_options(args.backend_option)

    jobs = _plan(args, kind, out, summary)
    with _signals_raise():
        try:
            for job in jobs:
                if job.path is None:
                    job.data = sys.stdin.buffer.read()
            if jobs:
                _run(args, jobs, kind, options, out, summary, backend_options)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            summary.interrupted = signal.Signals(signum).name
    _report(summary, args)
    return summary.exit_code()


def _run(
    args: argparse.Namespace,
    jobs: Sequence[_Job],
    kind: str,
    options: dict[str, Any],
    out: _Output,
    summary: _Summary,
    backend_options: dict[str, Any],
) -> None:
    """Load the model once, then process every job (with a progress bar on a terminal)."""
    if len(jobs) > 1:
        # several files: the backend's throughput settings (OpenVINO: the THROUGHPUT hint,
        # parallel streams, docs/performance.md); what the user set with --backend-option wins
        from .backends import get_backend

        backend_options = {**get_backend(args.backend).batch_options, **backend_options}
    try:
        remover = _make_remover(args, backend_options)
    except RmbgError as exc:
        summary.error = str(exc)
        if args.json:
            print(json.dumps(summary.as_json(), indent=2))
        raise  # main() reports it and picks the exit code
    show = len(jobs) > 1 and not args.no_progress and not args.quiet and sys.stderr.isatty()
    with _progress(len(jobs), show) as bar:
        _process_many(
            remover, jobs, kind=kind, options=options, out=out, summary=summary, progress=bar
        )


def _make_remover(args: argparse.Namespace, backend_options: dict[str, Any]) -> BackgroundRemover:
    """Create the remover and load its engine now: once per run, with errors before any file."""
    from .remover import BackgroundRemover

    started = time.perf_counter()
    kwargs: dict[str, Any] = {}
    if args.max_pixels is not None:
        kwargs["max_pixels"] = args.max_pixels or None
    remover = BackgroundRemover(
        args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        cache_dir=args.cache_dir,
        revision=args.revision,
        backend_options=backend_options,
        **kwargs,
    )
    info = remover.info  # compiles the engine
    logger.info(
        "model ready in %.1f s: %s on %s (%s, %s)",
        time.perf_counter() - started,
        info.backend,
        ",".join(info.execution_devices),
        info.inference_precision,
        ", ".join(info.model_files) or remover.source.kind,
    )
    return remover


@contextlib.contextmanager
def _progress(total: int, show: bool) -> Iterator[Any]:
    if not show:
        yield None
        return
    try:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:  # pragma: no cover - tqdm comes with huggingface_hub
        yield None
        return
    with (
        tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True) as bar,
        logging_redirect_tqdm(loggers=[logging.getLogger("rmbg")]),
    ):
        yield bar


def _report(summary: _Summary, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    if args.quiet:
        return
    if summary.interrupted or summary.failed or sys.stderr.isatty() or args.verbose:
        print(f"rmbg: {summary.text()}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# devices, download, export, verify, info
# ---------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _devices_report() -> dict[str, Any]:
    """OpenVINO's devices and torch's accelerators; a missing or broken install is reported."""
    return {"openvino": _openvino_devices(), "torch": _torch_devices()}


def _openvino_devices() -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError as exc:
        return {"installed": False, "error": str(exc), "hint": 'pip install "rmbg[openvino]"'}
    try:
        core = ov.Core()
        names = list(core.available_devices)
    except Exception as exc:  # a broken plugin set: report it, `devices` is a diagnostic tool
        return {"installed": True, "version": ov.get_version(), "error": str(exc), "devices": []}
    devices = []
    for name in names:
        entry: dict[str, Any] = {"name": name}
        for prop in ("FULL_DEVICE_NAME", "DEVICE_TYPE", "OPTIMIZATION_CAPABILITIES"):
            try:
                entry[prop] = _jsonable(core.get_property(name, prop))
            except Exception as exc:  # a plugin that does not report it
                entry[prop] = None
                logger.debug("%s: %s unavailable (%s)", name, prop, exc)
        devices.append(entry)
    return {
        "installed": True,
        "version": ov.get_version(),
        "devices": devices,
        "virtual": ["AUTO", "MULTI", "HETERO"],
    }


def _torch_devices() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:
        return {"installed": False, "error": str(exc), "hint": 'pip install "rmbg[torch]"'}
    report: dict[str, Any] = {
        "installed": True,
        "version": str(torch.__version__),
        "cuda_build": torch.version.cuda,
        "cuda_available": False,
        "cuda_devices": [],
        "mps_available": False,
    }
    try:
        report["cuda_available"] = bool(torch.cuda.is_available())
        if report["cuda_available"]:
            report["cuda_devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
        mps = getattr(torch.backends, "mps", None)
        report["mps_available"] = bool(mps is not None and mps.is_available())
    except Exception as exc:  # a driver problem: report it
        report["error"] = str(exc)
    return report


def _cmd_devices(args: argparse.Namespace) -> int:
    report = _devices_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    ov = report["openvino"]
    if ov["installed"]:
        print(f"OpenVINO {ov['version']}")
        for d in ov["devices"]:
            caps = ", ".join(d.get("OPTIMIZATION_CAPABILITIES") or []) or "?"
            print(f"  {d['name']:<8} {d.get('FULL_DEVICE_NAME') or '?'}")
            print(f"  {'':<8} capabilities: {caps}")
        if "error" in ov:
            print(f"  error: {ov['error']}")
        print("  AUTO     (virtual: picks among the devices above; also AUTO:GPU,CPU, HETERO:...)")
    else:
        print(f"OpenVINO: not installed ({ov['hint']})")
    tr = report["torch"]
    if tr["installed"]:
        cuda = (
            f"available ({', '.join(tr['cuda_devices'])})"
            if tr["cuda_available"]
            else "not available" + ("" if tr["cuda_build"] else " (CPU-only build)")
        )
        mps = "available" if tr["mps_available"] else "not available"
        print(f"PyTorch {tr['version']}: cpu; CUDA {cuda}; MPS {mps}")
        if "error" in tr:
            print(f"  error: {tr['error']}")
    else:
        print(f"PyTorch: not installed ({tr['hint']})")
    return EXIT_OK


def _default_model(model: str | None) -> str:
    from .specs import RMBG_1_4

    return model or os.environ.get("RMBG_MODEL") or RMBG_1_4.repo_id


def _cmd_download(args: argparse.Namespace) -> int:
    from .weights import download

    repo = _default_model(args.model)
    if Path(repo).expanduser().exists():
        print(f"{repo} is a local path: nothing to download.", file=sys.stderr)
        return EXIT_OK
    print(_LICENCE.format(repo=repo), file=sys.stderr)
    logger.info("downloading %s%s", repo, f" at {args.revision}" if args.revision else "")
    try:
        folder = download(repo, revision=args.revision)
    except GatedModelError as exc:
        logger.error("%s", exc)
        print(_GATING.format(repo=repo), file=sys.stderr)
        return EXIT_FAILED
    print(folder)
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> ModelSource:
    from .weights import resolve_model

    return resolve_model(_default_model(args.model), revision=args.revision)


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        import openvino as ov

        from .backends.openvino import OpenVINOBackend
    except ImportError as exc:
        logger.error('export needs OpenVINO (%s): pip install "rmbg[openvino]"', exc)
        return EXIT_FAILED
    out_dir: Path = args.out_dir
    stem: str = args.name
    if Path(stem).name != stem or not stem:
        raise UsageError(f"--name {stem!r} must be a plain file stem")
    targets = [out_dir / f"{stem}{ext}" for ext in (".xml", ".bin", ".json")]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.overwrite:
        logger.error("%s exist(s); pass --overwrite to replace", ", ".join(existing))
        return EXIT_FAILED
    source = _resolve(args)
    backend = OpenVINOBackend(source, precision=args.precision, cache_dir=args.cache_dir)
    started = time.perf_counter()
    ir = backend.model_path()  # converts into the rmbg cache on first use
    with (
        _signals_raise(),  # SIGTERM too unwinds, so the staging folder is removed
        tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=_mkdir(out_dir)) as tmp,
    ):
        staged = Path(tmp) / f"{stem}.xml"
        model = backend.core.read_model(str(ir)) if ir is not None else backend._model
        ov.save_model(model, str(staged), compress_to_fp16=args.precision == "f16")
        spec = source.spec
        meta = {
            "model": spec.name,
            "rmbg": __version__,
            "openvino": ov.get_version(),
            "weights_sha256": source.weights_digest,
            "ir_precision": args.precision,
            "input": {"shape": [1, 3, *spec.input_size], "layout": "NCHW", "dtype": "f32"},
            "output": "mask probabilities (1, 1, H, W), sigmoid already applied",
            "preprocess": "RGB, bilinear resize to the input size (align_corners=False, no "
            "antialias), truncate to uint8, /255, minus mean, divided by std",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "postprocess": "bilinear resize back, per-image min-max to 0..255, truncate to uint8",
        }
        (Path(tmp) / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
        # staged in the same folder, renamed into place: .bin before .xml, so a reader that sees
        # the new .xml also sees its weights
        for ext in (".json", ".bin", ".xml"):
            os.replace(Path(tmp) / f"{stem}{ext}", out_dir / f"{stem}{ext}")
    logger.info("exported in %.1f s", time.perf_counter() - started)
    for t in targets:
        print(t)
    return EXIT_OK


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bundled_photos() -> list[Path]:
    from importlib import resources

    folder = resources.files("rmbg").joinpath("data").joinpath("photos")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.lower().endswith(".jpg"))


def _cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    from .remover import BackgroundRemover

    images = [Path(i) for i in args.images] or _bundled_photos()
    missing = [str(i) for i in images if not i.is_file()]
    if missing:
        raise UsageError(f"no such image: {', '.join(missing)}")
    source = _resolve(args)
    if source.kind not in ("checkpoint", "module"):
        raise UsageError(
            f"verify compares against PyTorch, which cannot run a model of kind {source.kind!r}; "
            "pass a checkpoint folder or .safetensors as --model"
        )
    runs: dict[str, dict[str, Any]] = {}
    removers: dict[str, BackgroundRemover] = {}
    for name, backend, device, precision in (
        ("torch", "torch", "cpu", "f32"),
        ("openvino", "openvino", args.device, args.precision),
    ):
        t0 = time.perf_counter()
        removers[name] = BackgroundRemover(
            source, backend=backend, device=device, precision=precision, cache_dir=args.cache_dir
        )
        info = removers[name].info
        runs[name] = {
            "device": ",".join(info.execution_devices),
            "precision": info.inference_precision,
            "load_seconds": round(time.perf_counter() - t0, 3),
        }
        logger.info("%s ready in %.1f s", name, runs[name]["load_seconds"])
    exact = args.precision == "f32"
    rows = []
    for image in images:
        masks: dict[str, Any] = {}
        row: dict[str, Any] = {"image": image.name}
        for name, remover in removers.items():
            t0 = time.perf_counter()
            masks[name] = np.asarray(remover.mask(image))
            row[f"{name}_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        a, b = masks["torch"].astype(np.int16), masks["openvino"].astype(np.int16)
        diff = np.abs(a - b)
        fa, fb = a >= 128, b >= 128
        union = int(np.logical_or(fa, fb).sum())
        iou = float(np.logical_and(fa, fb).sum() / union) if union else 1.0
        row.update(
            size=f"{a.shape[1]}x{a.shape[0]}",
            max_diff=int(diff.max()),
            mean_diff=round(float(diff.mean()), 4),
            iou=round(iou, 5),
        )
        row["ok"] = bool(
            iou >= 0.99 and (row["max_diff"] <= 1 if exact else row["mean_diff"] <= 1.0)
        )
        rows.append(row)
    ok = all(r["ok"] for r in rows)
    criteria = (
        "max difference <= 1 grey level and IoU >= 0.99"
        if exact
        else "mean difference <= 1 grey level and IoU >= 0.99"
    )
    if args.json:
        print(
            json.dumps({"ok": ok, "criteria": criteria, "backends": runs, "images": rows}, indent=2)
        )
    else:
        for name, r in runs.items():
            print(
                f"{name:<9} on {r['device']} ({r['precision']}), loaded in {r['load_seconds']:.1f} s"
            )
        print(f"criteria: {criteria}")
        header = f"{'image':<16} {'size':>9} {'max':>4} {'mean':>7} {'IoU':>7} {'torch ms':>9} {'OV ms':>8}  result"
        print(header)
        print("-" * len(header))
        for r in rows:
            print(
                f"{r['image']:<16} {r['size']:>9} {r['max_diff']:>4} {r['mean_diff']:>7.3f} "
                f"{r['iou']:>7.4f} {r['torch_ms']:>9.0f} {r['openvino_ms']:>8.0f}  "
                f"{'ok' if r['ok'] else 'FAIL'}"
            )
        print("parity: ok" if ok else "parity: FAILED")
    return EXIT_OK if ok else EXIT_FAILED


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / f).lstat().st_size
    return total


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _model_report(args: argparse.Namespace, cache_root: Path) -> dict[str, Any]:
    from .weights import resolve_model

    model = _default_model(args.model)
    report: dict[str, Any] = {"model": model}
    local = Path(model).expanduser().exists()
    try:
        if not local:  # look in the Hub cache only: `info` never downloads
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "model.safetensors", revision=args.revision)
            if not isinstance(cached, str):
                report["error"] = f"not downloaded yet (run `rmbg download --model {model}`)"
                return report
            model = str(Path(cached).parent)
        source = resolve_model(model, revision=args.revision)
    except Exception as exc:
        report["error"] = _reason(exc)
        return report
    report.update(
        kind=source.kind,
        files=[str(f) for f in source.files],
        weights_sha256=source.weights_digest,
    )
    irs = []
    for manifest in sorted((cache_root / "ir").glob("*/manifest.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            key = json.loads(manifest.read_text()).get("key", {})
            if key.get("weights") == source.weights_digest:
                irs.append({"path": str(manifest.parent / "model.xml"), **_jsonable(key)})
    report["converted_irs"] = irs
    return report


def _cmd_info(args: argparse.Namespace) -> int:
    from .cache import default_cache_dir

    cache_root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    versions = {
        name: _dist_version(name)
        for name in (
            "rmbg",
            "openvino",
            "torch",
            "numpy",
            "pillow",
            "huggingface_hub",
            "safetensors",
        )
    }
    versions["rmbg"] = __version__
    versions["python"] = platform.python_version()
    try:
        from huggingface_hub import constants

        hub_cache: str | None = str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - a dependency
        hub_cache = None
    report: dict[str, Any] = {
        "versions": versions,
        "platform": platform.platform(),
        "cache": {
            "path": str(cache_root),
            "exists": cache_root.is_dir(),
            "bytes": _folder_size(cache_root) if cache_root.is_dir() else 0,
        },
        "hub_cache": hub_cache,
        "model": _model_report(args, cache_root),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()))
    print(f"platform: {report['platform']}")
    cache = report["cache"]
    print(
        f"rmbg cache: {cache['path']} ({_human(cache['bytes'])}{'' if cache['exists'] else ', not created yet'})"
    )
    print(f"hub cache: {hub_cache}")
    model = report["model"]
    print(f"model: {model['model']}")
    if "error" in model:
        print(f"  {model['error']}")
    else:
        print(f"  kind: {model['kind']}, sha256 {model['weights_sha256'][:16]}...")
        for f in model["files"]:
            print(f"  file: {f}")
        for ir in model["converted_irs"]:
            print(
                f"  converted IR: {ir['path']} ({ir.get('ir_precision', '?')}, OpenVINO {ir.get('openvino', '?')})"
            )
        if not model["converted_irs"]:
            print("  converted IR: none yet (converted on first OpenVINO use)")
    return EXIT_OK
