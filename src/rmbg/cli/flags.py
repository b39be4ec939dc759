"""Flags shared by several subcommands, and what they turn into: typed options and a remover.

The argparse types here only *parse* (a number is a number); the ranges of the image options are
checked once, by :mod:`rmbg.options`, with the same message as from Python or any other
frontend: :func:`options_from_args` turns an :class:`~rmbg.errors.UnsupportedOptionError` into
a usage error (exit 2) before any model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import available_backends
from ..backends.base import PRECISIONS
from ..errors import RmbgError
from .runtime import UsageError

if TYPE_CHECKING:
    from ..options import CutoutOptions, MaskOptions
    from ..remover import BackgroundRemover
    from ..source import ModelSource

__all__ = [
    "HIDDEN_BACKENDS",
    "add_image_arguments",
    "add_log_arguments",
    "add_model_arguments",
    "backend_options_from_args",
    "cli_backends",
    "default_model",
    "non_negative_int",
    "options_from_args",
    "parse_backend_option",
    "pillow_pixel_limit",
    "remover_from_args",
    "resolve_source",
]

logger = logging.getLogger("rmbg.cli")

#: Registered backends not offered by ``--backend``: the test backend computes no real mask.
#: (rmbg's own tests offer it by emptying this set in the process they drive.)
HIDDEN_BACKENDS: frozenset[str] = frozenset({"fake"})


def cli_backends() -> list[str]:
    """The backends ``--backend`` offers: the registered ones but :data:`HIDDEN_BACKENDS`."""
    return [name for name in available_backends() if name not in HIDDEN_BACKENDS]


# -- argparse types: parsing only --------------------------------------------------------------------
def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
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


def parse_backend_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``, the value parsed as JSON when it can be."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def nest_backend_options(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
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


def backend_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--backend-option`` pairs as the nested mapping the backend takes."""
    return nest_backend_options(args.backend_option)


# -- flag groups -------------------------------------------------------------------------------------
def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("logging (to stderr)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more logs (-vv: debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="errors only")


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    backend: bool = True,
    device: bool = True,
    precision: bool = True,
) -> None:
    g = parser.add_argument_group("model")
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
        help="rmbg's cache of converted models (default: $RMBG_CACHE_DIR, else "
        "$XDG_CACHE_HOME/rmbg or ~/.cache/rmbg; see `rmbg cache list`)",
    )
    if backend:
        g.add_argument(
            "--backend",
            default="openvino",
            choices=cli_backends(),
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
            type=parse_backend_option,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="backend option, VALUE parsed as JSON when it can be, dots nest: "
            "performance_hint=THROUGHPUT, config.NUM_STREAMS=2, num_requests=4 (repeatable)",
        )


def add_image_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    """INPUT..., the output, run, mask shaping and (``kind="cutout"``) cutout flags."""
    from ..io import DEFAULT_JPEG_QUALITY, PNG_COMPRESS_LEVEL

    inputs = "image files, folders, glob patterns, or - for standard input"
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs)
    # exclusive pairs are checked by the images command: argparse's mutually exclusive groups
    # cannot sit inside these titled groups in the help
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="output file for a single input, - for standard output "
        f"(default: <stem>.{kind}.<format> beside the input; stdout for stdin)",
    )
    out.add_argument(
        "--out-dir",  # a string: with --ray it may be a URI (s3://...), which Path would mangle
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
        default=PNG_COMPRESS_LEVEL,
        metavar="N",
        help=f"PNG zlib level 0-9 (default: {PNG_COMPRESS_LEVEL}, fast; 6 is ~15-30%% smaller and "
        "3-6x slower to write)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and move on (resume a long run)",
    )
    run = parser.add_argument_group("run")
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
        "--watch",
        action="store_true",
        help="keep running: process the images in the INPUT folders, then each new one as it "
        "arrives (once its size stops changing); Ctrl-C stops",
    )
    run.add_argument(
        "--poll",
        type=_positive_float,
        metavar="SECONDS",
        help="with --watch: how often the folders are looked at (default: 1)",
    )
    run.add_argument(
        "--max-pixels",
        type=non_negative_int,
        metavar="N",
        help="largest input accepted, in pixels; 0 for no limit, Pillow's own cap included "
        "(default: 89478485, Pillow's)",
    )
    run.add_argument(
        "--no-exif-transpose",
        dest="exif_transpose",
        action="store_false",
        help="ignore the EXIF orientation (default: apply it, as viewers do)",
    )
    shape = parser.add_argument_group("mask shaping")
    # fmt: off
    for flag, convert, default, metavar, text in (
        ("--threshold", float, None, "T", "hard mask: pixels at or above T (0..1) become opaque, the rest transparent"),
        ("--feather", float, 0.0, "PX", "soften the edge by a Gaussian of this radius in pixels"),
        ("--grow", int, 0, "PX", "grow (positive) or shrink (negative) the mask by PX pixels"),
    ):
        shape.add_argument(flag, type=convert, default=default, metavar=metavar, help=text)
    # fmt: on
    shape.add_argument("--invert", action="store_true", help="keep the background instead")
    shape.add_argument(
        "--normalize",
        choices=("minmax", "none"),
        default="minmax",
        help="minmax: stretch each mask to 0..255 like the reference (default); none: keep "
        "the network's probabilities (an empty scene stays empty)",
    )
    if kind != "cutout":
        return
    comp = parser.add_argument_group("cutout")
    comp.add_argument(
        "--background",
        metavar="COLOUR|IMAGE",
        help="fill the background: a colour (white, '#00ff00', '#00ff0080', 255,255,255) "
        "or an image file fitted to the output (default: transparent)",
    )
    comp.add_argument("--trim", action="store_true", help="crop to the subject's bounding box")
    comp.add_argument(
        "--margin",
        type=int,
        metavar="PX",
        help="pixels kept around the subject with --trim (default: 0)",
    )
    comp.add_argument(
        "--trim-threshold",
        type=int,
        metavar="A",
        help="alpha (1..255) that counts as subject with --trim (default: the library's)",
    )
    comp.add_argument(
        "--refine",
        action="store_true",
        help="estimate the foreground colour at soft edges so the old background does "
        "not bleed into hair and fur",
    )


# -- what the flags turn into ------------------------------------------------------------------------
#: option name -> the flag that sets it (argparse dest), for the image commands.
_MASK_FLAGS = {
    "normalize": "normalize",
    "threshold": "threshold",
    "feather": "feather",
    "grow": "grow",
    "invert": "invert",
    "exif_transpose": "exif_transpose",
}
_CUTOUT_FLAGS = {
    **_MASK_FLAGS,
    "trim": "trim",
    "margin": "margin",
    "trim_threshold": "trim_threshold",
    "refine_foreground": "refine",
}
_RGB_TEXT = re.compile(r"\d+(\s*,\s*\d+){2,3}")


def options_from_args(args: argparse.Namespace, kind: str) -> MaskOptions | CutoutOptions:
    """The typed options of a ``mask``/``cutout`` command line, built (and validated) once.

    ``--background`` is an image when it names an existing file (a :class:`~pathlib.Path`,
    decoded once here by the options), else a colour (``R,G,B[,A]`` read as a tuple).

    Raises:
        UsageError: A value the options refuse, with the library's message.
    """
    from ..options import CutoutOptions, MaskOptions

    cls = CutoutOptions if kind == "cutout" else MaskOptions
    flags = _CUTOUT_FLAGS if kind == "cutout" else _MASK_FLAGS
    try:
        options = cls(**{name: getattr(args, dest) for name, dest in flags.items()})
    except RmbgError as exc:
        raise UsageError(str(exc)) from exc
    value: str | None = getattr(args, "background", None)
    if value is None:
        return options
    background: Path | tuple[int, ...] | str
    path = Path(value).expanduser()
    if path.is_file():
        background = path
    elif _RGB_TEXT.fullmatch(value.strip()):
        background = tuple(int(c) for c in value.split(","))
    else:
        background = value.strip()
    try:
        return options.replace(background=background)
    except RmbgError as exc:
        if isinstance(background, Path):
            raise UsageError(f"--background {value}: {exc}") from exc
        raise UsageError(
            f"--background {value!r} is neither an image file nor a colour: {exc} "
            "(on the command line a tuple is written 255,255,255 or 255,255,255,128)"
        ) from exc


def default_model(model: str | None) -> str:
    """``--model``, else ``$RMBG_MODEL``, else the default model's Hub id."""
    from ..specs import RMBG_1_4

    return model or os.environ.get("RMBG_MODEL") or RMBG_1_4.repo_id


def resolve_source(args: argparse.Namespace) -> ModelSource:
    """The model of ``--model``/``--revision``, resolved (downloaded if needed)."""
    from ..weights import resolve_model

    return resolve_model(default_model(args.model), revision=args.revision)


@contextlib.contextmanager
def pillow_pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """``--max-pixels`` for Pillow too, for the duration of a run.

    Pillow refuses files over twice its global ``Image.MAX_IMAGE_PIXELS`` (about 179 MP) whatever
    rmbg's ``max_pixels``; the library never changes that global (it belongs to the
    application), but the command line *is* the application: ``--max-pixels 0`` lifts Pillow's
    cap too (no limit, as documented), and ``--max-pixels N`` above it raises it to ``N``. The
    previous value is restored afterwards (callers of :func:`rmbg.cli.main` in a process of
    their own keep theirs).
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    if max_pixels == 0:
        Image.MAX_IMAGE_PIXELS = None
    elif max_pixels is not None and saved is not None and max_pixels > saved:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def remover_keywords(args: argparse.Namespace, backend_options: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~rmbg.BackgroundRemover` keywords the model flags give, ``--model`` aside
    (``--backend``, ``--device``, ``--precision``, ``--cache-dir``, ``--revision``, and
    ``--max-pixels`` where the command has it: 0 is no limit)."""
    names = ("backend", "device", "precision", "cache_dir", "revision")
    keywords = {name: getattr(args, name) for name in names}
    keywords["backend_options"] = backend_options
    if getattr(args, "max_pixels", None) is not None:
        keywords["max_pixels"] = args.max_pixels or None
    return keywords


def remover_from_args(
    args: argparse.Namespace,
    backend_options: dict[str, Any],
    *,
    batch: bool = False,
    load: bool = True,
) -> BackgroundRemover:
    """Create the remover of the model flags and load its engine now: once per run, with errors
    before any file is read.

    Args:
        args: The parsed command line (``--model``, ``--backend``, ``--device``, ...).
        backend_options: From :func:`backend_options_from_args`.
        batch: Several files: the backend's throughput settings first (OpenVINO: the THROUGHPUT
            hint, parallel streams, docs/performance.md); what the user set with
            ``--backend-option`` wins.
        load: Compile the engine now (``rmbg serve`` leaves that to its start-up, so that its
            readiness endpoint tells the truth).
    """
    from ..backends import get_backend
    from ..remover import BackgroundRemover

    if batch:
        backend_options = {**get_backend(args.backend).batch_options, **backend_options}
    started = time.perf_counter()
    remover = BackgroundRemover(args.model, **remover_keywords(args, backend_options))
    if not load:
        return remover
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
