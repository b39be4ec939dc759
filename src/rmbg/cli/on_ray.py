"""``rmbg cutout|mask --ray [ADDRESS] INPUT --out-dir OUTPUT``: the folder mode on Ray Data.

The flags are the folder mode's (:func:`rmbg.cli.flags.add_image_arguments`), turned into the
same typed options by :func:`rmbg.cli.flags.options_from_args`; this module only adds ``--ray``,
checks what the Ray path supports, hands the options to :func:`rmbg.ray.remove_backgrounds` and
reports with the folder mode's :class:`~rmbg.cli.runtime.Summary` (text on stderr, ``--json`` on
stdout, exit code 1 when an input failed). Ray is imported only when ``--ray`` is given.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from . import flags
from .runtime import EXIT_FAILED, Summary, UsageError

__all__ = ["LOCAL", "add_arguments", "normalize_argv", "run"]

logger = logging.getLogger("rmbg.cli")

#: ``--ray`` without an address: start a local Ray on this machine's CPUs.
LOCAL = "local"
_ADDRESS = re.compile(r"auto|local|ray://\S+|[\w.-]+:\d+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` (for ``cutout`` and ``mask``)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="run on a Ray cluster (ADDRESS: auto, host:6379, ray://host:10001; a local Ray "
        "when omitted): one INPUT folder or s3://, gs://... prefix and --out-dir OUTPUT "
        "(docs/scale.md; needs rmbg[ray])",
    )


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--ray INPUT`` -> ``--ray=local INPUT``: ``--ray``'s address is optional, so a value that
    is not an address (``auto``, ``local``, ``ray://host:port``, ``host:port``) is an input."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--ray" and not _ADDRESS.fullmatch(out[i + 1]):
            out[i] = f"--ray={LOCAL}"
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``rmbg cutout|mask --ray``; returns the exit code (0 ok, 1 some inputs failed)."""
    kind: str = args.command
    if args.out_dir is None or args.output is not None:
        raise UsageError("--ray writes into --out-dir OUTPUT (a folder, s3://, gs://...), not -o")
    if len(args.inputs) != 1 or args.inputs[0] == "-":
        raise UsageError("--ray takes one INPUT: a folder, a file, or an s3://, gs://... prefix")
    fmt = args.format or "png"
    if fmt not in ("png", "webp"):
        raise UsageError("--ray writes png or webp")
    if args.quality is not None and fmt == "png":
        raise UsageError("--quality applies to webp; PNG is lossless")
    if getattr(args, "preview", None) is not None:
        raise UsageError("--preview is not available with --ray; run it on one photo without --ray")
    if args.compress_level != 1:
        raise UsageError("--ray writes PNGs at the library's level (1); drop --compress-level")
    options = flags.options_from_args(args, kind)
    backend_options = flags.backend_options_from_args(args)

    import ray
    import ray.exceptions

    from ..ray import remove_backgrounds

    summary = Summary(kind)
    started = not ray.is_initialized()  # main() called from a program that runs Ray already
    if started:
        address = None if args.ray == LOCAL else args.ray
        ray.init(address=address, log_to_driver=args.verbose > 0)
    try:
        result = remove_backgrounds(
            str(args.inputs[0]),
            str(args.out_dir),
            options,
            kind=kind,  # type: ignore[arg-type]
            format=fmt,  # type: ignore[arg-type]
            quality=args.quality,
            model=args.model,
            recursive=args.recursive,
            existing="overwrite" if args.overwrite else "skip" if args.skip_existing else "fail",
            progress=not (args.no_progress or args.quiet) and sys.stderr.isatty(),
            **flags.remover_keywords(args, backend_options),
        )
    except ray.exceptions.RayError as exc:
        summary.error = f"the Ray job failed: {exc}"
        logger.error("%s", summary.error)
        summary.report(json_=args.json, quiet=args.quiet, verbose=args.verbose)
        return EXIT_FAILED
    finally:
        if started:
            ray.shutdown()
    summary.processed, summary.skipped = result.processed, result.skipped
    for failure in result.failed:
        summary.fail(failure.input, failure.error)
    summary.report(json_=args.json, quiet=args.quiet, verbose=args.verbose)
    return summary.exit_code()
