"""``rmbg cutout|mask --ray [ADDRESS] INPUT --out-dir OUTPUT``: the folder mode on a Ray cluster.

The CLI's own flags are parsed by :mod:`rmbg.cli` (the same as the folder mode's); this module only
checks what the Ray path supports, hands the typed options to :func:`rmbg.ray.remove_backgrounds`
and reports like the folder mode (text summary on stderr, ``--json`` on stdout, exit code 1 when
an input failed). Ray itself is imported only here, when ``--ray`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LOCAL", "normalize_argv", "run"]

logger = logging.getLogger("rmbg")

#: ``--ray`` without an address: start a local Ray on this machine's CPUs.
LOCAL = "local"
_ADDRESS = re.compile(r"auto|local|ray://\S+|[\w.-]+:\d+")


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--ray INPUT`` -> ``--ray=local INPUT``: ``--ray``'s address is optional, so a value that
    is not an address (``auto``, ``local``, ``ray://host:port``, ``host:port``) is an input."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--ray" and not _ADDRESS.fullmatch(out[i + 1]):
            out[i] = f"--ray={LOCAL}"
    return out


def run(
    args: argparse.Namespace,
    options: Mapping[str, Any],
    backend_options: Mapping[str, Any],
    usage_error: type[Exception],
) -> int:
    """Run ``rmbg cutout|mask --ray``; returns the exit code (0 ok, 1 some inputs failed).

    Args:
        args: The parsed flags of ``rmbg cutout`` / ``rmbg mask``.
        options: The library keyword options the folder mode built from the flags.
        backend_options: ``--backend-option`` pairs (the backend's batch options go under them).
        usage_error: The CLI's usage error, raised for flags the Ray path does not take.
    """
    from rmbg.options import CutoutOptions, MaskOptions

    kind = str(args.kind)
    if args.out_dir is None or args.output is not None:
        raise usage_error("--ray writes into --out-dir OUTPUT (a folder, s3://, gs://...), not -o")
    if len(args.inputs) != 1 or args.inputs[0] == "-":
        raise usage_error("--ray takes one INPUT: a folder, a file, or an s3://, gs://... prefix")
    fmt = args.format or "png"
    if fmt not in ("png", "webp"):
        raise usage_error("--ray writes png or webp")
    if args.compress_level != 1:
        raise usage_error("--ray writes PNGs at the library's level (1); drop --compress-level")
    built = (CutoutOptions if kind == "cutout" else MaskOptions).build(None, **options)

    import ray
    import ray.exceptions

    from rmbg.ray import remove_backgrounds

    started = not ray.is_initialized()  # main() called from a program that runs Ray already
    if started:
        address = None if args.ray == LOCAL else args.ray
        ray.init(address=address, log_to_driver=args.verbose > 0)
    show = not (args.no_progress or args.quiet) and sys.stderr.isatty()
    extra: dict[str, Any] = {}
    if args.max_pixels is not None:
        extra["max_pixels"] = args.max_pixels or None
    try:
        result = remove_backgrounds(
            str(args.inputs[0]),
            str(args.out_dir),
            built,
            kind=kind,  # type: ignore[arg-type]
            format=fmt,  # type: ignore[arg-type]
            quality=args.quality,
            model=args.model,
            backend=args.backend,
            device=args.device,
            precision=args.precision,
            cache_dir=args.cache_dir,
            revision=args.revision,
            backend_options=dict(backend_options),
            recursive=args.recursive,
            existing="overwrite" if args.overwrite else "skip" if args.skip_existing else "fail",
            progress=show,
            **extra,
        )
    except ray.exceptions.RayError as exc:
        logger.error("the Ray job failed: %s", exc)
        return 1
    finally:
        if started:
            ray.shutdown()
    for failure in result.failed:
        logger.error("%s: %s", failure.input, failure.error)
    summary = {
        "command": kind,
        "processed": result.processed,
        "skipped": result.skipped,
        "failed": [{"input": f.input, "error": f.error} for f in result.failed],
        "seconds": round(result.seconds, 3),
        "ray": args.ray,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    if not args.quiet:
        print(
            f"rmbg: {result.processed} processed, {result.skipped} skipped, "
            f"{len(result.failed)} failed in {result.seconds:.1f} s (on Ray)",
            file=sys.stderr,
        )
    return 1 if result.failed else 0
