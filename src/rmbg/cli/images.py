"""``rmbg cutout`` and ``rmbg mask``: files, globs, folders, stdin/stdout.

A run: parse the flags into typed options (once; a bad value is a usage error), plan every job
(inputs expanded, every output named and checked: existing, a folder, unwritable) -- all before
the model loads -- then load the model once and stream the jobs through the library's pipelined
batch API (``remover.cutouts/masks``, which decodes, computes and encodes in worker threads),
writing each result atomically as it arrives, in order. A failure is recorded and the run goes
on; the summary says what happened.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import io
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImageTooLargeError, RmbgError
from . import flags, on_ray
from .runtime import (
    Interrupted,
    Summary,
    UsageError,
    catch_signals,
    deferred_signals,
    folder_problem,
    progress,
    reason,
    remove_stale_temp_files,
    write_atomic,
    write_stdout,
)

if TYPE_CHECKING:
    from ..options import CutoutOptions, MaskOptions
    from ..remover import BackgroundRemover

__all__ = [
    "FORMATS",
    "Job",
    "Output",
    "add_arguments",
    "check_outputs",
    "find_inputs",
    "format_of",
    "load_remover",
    "output_for",
    "process_many",
    "run",
]

logger = logging.getLogger("rmbg.cli")

#: Output formats and the file extensions that select them.
FORMATS: dict[str, str] = {".png": "png", ".webp": "webp", ".jpg": "jpg", ".jpeg": "jpg"}

_EXAMPLES: dict[str, str] = {
    "cutout": """\
examples:
  rmbg cutout photo.jpg                             # -> photo.cutout.png beside the input
  rmbg cutout photo.jpg -o product.webp             # format from the extension (lossless WebP)
  rmbg cutout shop/ -r --out-dir out/ --skip-existing --json > summary.json
  rmbg cutout 'shop/**/*.jpg' --out-dir out/        # quoted globs: ** is any depth
  rmbg cutout inbox/ --watch --out-dir out/         # then each new file as it arrives
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
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kind: str = parser.get_default("command")
    flags.add_image_arguments(parser, kind)
    if kind == "cutout":
        parser.add_argument(
            "--preview",
            type=Path,
            metavar="FILE",
            help="also save the original / mask / cutout figure of the first input to FILE "
            "(.png, .jpg, .pdf, .svg...; needs rmbg[plot]: matplotlib)",
        )
    on_ray.add_arguments(parser)
    flags.add_model_arguments(parser)
    flags.add_log_arguments(parser)
    parser.epilog = _EXAMPLES[kind]


# -- planning --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Job:
    """One image to process: where it comes from and where it goes."""

    label: str  # the input as reported: the path as found, or "-" for standard input
    path: Path | None  # None: standard input
    dest: Path | None  # None: standard output
    fmt: str
    data: bytes | None = None  # standard input's bytes

    @property
    def output_label(self) -> str:
        return "-" if self.dest is None else str(self.dest)


@dataclasses.dataclass(frozen=True)
class Output:
    """How outputs are encoded and written."""

    fmt: str | None  # None: from -o's extension / png
    quality: int | None
    compress_level: int
    overwrite: bool
    skip_existing: bool


def find_inputs(
    arg: str, recursive: bool, exclude: Path | None
) -> list[tuple[Path, Path | None]] | None:
    """One INPUT argument -> ``(file, base folder or None)`` pairs, sorted; None when ``arg`` is
    neither an existing file or folder nor a glob pattern.

    Folders and globs yield image files only (by extension), skipping hidden files, rmbg's own
    default outputs and anything under ``exclude`` (the output folder); a file named explicitly is
    always taken. A glob follows the shell's globstar meaning: ``**`` matches any number of
    folders (none included), ``*`` one name; hidden folders are not entered.
    """
    from ..photos import image_suffixes, is_own_output

    exts = image_suffixes()
    path = Path(arg)
    top = path if path.is_dir() else _glob_base(arg)
    if exclude is not None and exclude == top.resolve():
        exclude = None  # --out-dir is the input folder itself: its sub-folders are still inputs

    def keep(p: Path) -> bool:
        if p.name.startswith(".") or p.suffix.lower() not in exts or is_own_output(p):
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
        return [(p, path) for p in sorted(p for p in found if keep(p))]
    if path.exists():
        return [(path, None)]
    if glob.has_magic(arg):
        matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
        base = _glob_base(arg)
        return [(m, base) for m in matches if keep(m)]
    return None


def _expand(
    arg: str, recursive: bool, exclude: Path | None, summary: Summary
) -> list[tuple[Path, Path | None]]:
    """:func:`find_inputs`, with what it did not find reported."""
    found = find_inputs(arg, recursive, exclude)
    if found is None:
        summary.fail(arg, "no such file or folder")
        return []
    if not found:
        if Path(arg).is_dir():
            logger.warning(
                "%s: no image files%s", arg, "" if recursive else " (use -r for sub-folders)"
            )
        else:
            summary.fail(arg, "no image files match this pattern")
    return found


def output_for(
    path: Path,
    base: Path | None,
    *,
    output: str | None,
    out_dir: Path | None,
    kind: str,
    fmt: str,
) -> Path | None:
    """Where the result of the input file ``path`` (found below ``base``) goes; None: stdout."""
    ext = "jpg" if fmt == "jpg" else fmt
    if output is not None:
        return None if output == "-" else Path(output)
    if out_dir is not None:
        rel = path.relative_to(base) if base is not None else Path(path.name)
        return out_dir / rel.with_name(f"{rel.stem}.{ext}")
    return path.with_name(f"{path.stem}.{kind}.{ext}")


def _glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard (structure is kept below it)."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


def format_of(output: str | None, fmt: str | None) -> str:
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


def _plan(args: argparse.Namespace, kind: str, out: Output, summary: Summary) -> list[Job]:
    """Expand the inputs into jobs, deciding every output name up front."""
    inputs: list[str] = args.inputs
    output: str | None = args.output
    out_dir = Path(args.out_dir) if args.out_dir is not None else None
    fmt = format_of(output, out.fmt)
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

    jobs: list[Job] = []
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
            jobs.append(Job("-", None, dest, fmt))
            continue
        for path, base in _expand(arg, args.recursive, exclude, summary):
            key = path.resolve()
            if key in seen_inputs:
                continue
            seen_inputs.add(key)
            dest = output_for(path, base, output=output, out_dir=out_dir, kind=kind, fmt=fmt)
            jobs.append(Job(str(path), path, dest, fmt))

    if any(j.dest is None for j in jobs):
        if sys.stdout.isatty():
            raise UsageError(
                "refusing to write image data to a terminal; redirect stdout or use -o"
            )
        if args.json:
            raise UsageError("--json prints on stdout, which already carries the image; use -o")
    return check_outputs(jobs, out, summary)


def check_outputs(jobs: list[Job], out: Output, summary: Summary) -> list[Job]:
    """Never overwrite an input, never let two inputs write the same file, never write where a
    folder is or where nothing can be written, honour existing outputs: all before any work.
    Stale temporary files of a killed run are removed from the output folders on the way."""
    todo: list[Job] = []
    claimed: dict[Path, str] = {}
    folders: dict[Path, str | None] = {}  # output folder -> why it cannot be written (or None)
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
        if job.dest.is_dir():  # in every mode: --overwrite cannot replace a folder with a file
            summary.fail(job.label, f"the output {job.dest} is a folder; name a file instead")
            continue
        folder = job.dest.parent
        if folder not in folders:
            folders[folder] = folder_problem(folder)
            if folders[folder] is None:
                remove_stale_temp_files(folder)
        problem = folders[folder]
        if problem is not None:
            summary.fail(job.label, f"cannot write the output {job.dest}: {problem}")
            continue
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


# -- the per-file stages ---------------------------------------------------------------------------
def _compute(
    remover: BackgroundRemover,
    jobs: Sequence[Job],
    options: MaskOptions | CutoutOptions,
    out: Output,
) -> Iterator[Any]:
    """Load + compute + encode, through the library's pipelined batch API: yields encoded bytes
    (or the exception) per job, in job order, while decoding, pre/post-processing and encoding
    of some files overlap the inference of others."""
    from ..io import encode_image
    from ..options import CutoutOptions

    batch = remover.cutouts if isinstance(options, CutoutOptions) else remover.masks
    sources: list[Any] = [
        job.path if job.path is not None else io.BytesIO(job.data or b"") for job in jobs
    ]
    formats = {job.fmt for job in jobs}
    then = None
    if len(formats) == 1:  # one format per run: encode in the workers too
        then = functools.partial(
            encode_image,
            format=formats.pop(),
            quality=out.quality,
            compress_level=out.compress_level,
        )
    return batch(sources, options, return_exceptions=True, then=then)


def _deliver(job: Job, data: bytes, out: Output) -> None:
    """Atomic file write, or standard output (which must take every byte)."""
    if job.dest is None:
        write_stdout(data)
    else:
        write_atomic(job.dest, data, overwrite=out.overwrite)


def process_many(
    remover: BackgroundRemover,
    jobs: Sequence[Job],
    *,
    options: MaskOptions | CutoutOptions,
    out: Output,
    summary: Summary,
    progress_bar: Any = None,
) -> None:
    """Compute, encode and write every job in order; a failure is recorded and the run goes on.

    The batch is closed before this returns, whatever happens (an interruption included), so no
    worker thread outlives the run.
    """
    from ..io import encode_image

    results = _compute(remover, jobs, options, out)
    try:
        for job, result in zip(jobs, results, strict=True):
            started = time.perf_counter()
            try:
                if isinstance(result, BaseException):
                    raise result
                data = (
                    result
                    if isinstance(result, bytes)
                    else encode_image(
                        result, job.fmt, quality=out.quality, compress_level=out.compress_level
                    )
                )
                # a signal is held back until the file is in place *and* counted, so the
                # summary of an interrupted run lists exactly the files on disk
                with deferred_signals() if job.dest is not None else contextlib.nullcontext():
                    _deliver(job, data, out)
                    summary.processed += 1
                    summary.outputs.append({"input": job.label, "output": job.output_label})
            except Exception as exc:
                logger.debug("%s failed", job.label, exc_info=exc)
                why = reason(exc)
                if isinstance(exc, ImageTooLargeError):  # the library's advice is for Python
                    why += " On the command line: --max-pixels N (0: no limit)."
                summary.fail(job.label, why)
            else:
                logger.info(
                    "%s -> %s (%d bytes, encoded and written in %.0f ms)",
                    job.label,
                    job.output_label,
                    len(data),
                    1000 * (time.perf_counter() - started),
                )
            if progress_bar is not None:
                progress_bar.update(1)
    finally:  # the pipeline's threads are joined here, inside the run's signal handling
        close = getattr(results, "close", None)
        if close is not None:
            close()


def run(args: argparse.Namespace) -> int:
    kind: str = args.command
    summary = Summary(kind)
    out = Output(
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
    if args.ray is not None:  # the same flags and options, on Ray Data (rmbg.ray)
        return on_ray.run(args)
    from ..options import CutoutOptions

    options = flags.options_from_args(args, kind)
    fmt = format_of(args.output, args.format)
    opaque = options.opaque if isinstance(options, CutoutOptions) else True  # masks are
    if fmt == "jpg" and not opaque:
        raise UsageError(
            "JPEG has no transparency: a cutout in jpg needs an opaque --background "
            "(e.g. --background white); or use png/webp"
        )
    if args.quality is not None and fmt == "png":
        raise UsageError(
            "--quality applies to webp and jpg; PNG is lossless (see --compress-level)"
        )
    if getattr(args, "preview", None) is not None:
        try:
            import matplotlib  # noqa: F401  (checked before the model loads)
        except ImportError:
            raise UsageError('--preview needs matplotlib: pip install "rmbg[plot]"') from None
    backend_options = flags.backend_options_from_args(args)

    if args.watch:
        from . import watch

        watch.check_arguments(args)
    elif args.poll is not None:
        raise UsageError("--poll goes with --watch")
    jobs = [] if args.watch else _plan(args, kind, out, summary)
    with flags.pillow_pixel_limit(args.max_pixels), catch_signals():
        try:
            if args.watch:
                watch.watch(args, kind, options, out, summary, backend_options)
            for job in jobs:
                if job.path is None:
                    job.data = sys.stdin.buffer.read()
            if jobs:
                _run(args, jobs, options, out, summary, backend_options)
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
            summary.interrupted = signal.Signals(signum).name
        # still under the run's handlers: a second Ctrl-C while the summary prints is ignored
        with deferred_signals():
            summary.report(json_=args.json, quiet=args.quiet, verbose=args.verbose)
    return summary.exit_code()


def _run(
    args: argparse.Namespace,
    jobs: Sequence[Job],
    options: MaskOptions | CutoutOptions,
    out: Output,
    summary: Summary,
    backend_options: dict[str, Any],
) -> None:
    """Load the model once, then process every job (with a progress bar on a terminal)."""
    remover = load_remover(args, backend_options, summary, batch=len(jobs) > 1)
    show = len(jobs) > 1 and not args.no_progress and not args.quiet and sys.stderr.isatty()
    with progress(len(jobs), show) as bar:
        process_many(remover, jobs, options=options, out=out, summary=summary, progress_bar=bar)
    if getattr(args, "preview", None) is not None:
        _save_preview(remover, jobs, options, args.preview, out, summary)


def _save_preview(
    remover: BackgroundRemover,
    jobs: Sequence[Job],
    options: MaskOptions | CutoutOptions,
    dest: Path,
    out: Output,
    summary: Summary,
) -> None:
    """``--preview FILE``: the figure of the first input that was cut out (one more network run
    for that image), written atomically like the outputs."""
    from ..plot import preview

    done = {row["input"] for row in summary.outputs}
    job = next((j for j in jobs if j.label in done), None)
    if job is None:
        logger.warning("--preview: no input was cut out, so no figure is saved")
        return
    image: Any = job.path if job.path is not None else io.BytesIO(job.data or b"")
    try:
        figure = preview(remover, image, options)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=dest.suffix.lstrip(".").lower() or "png")
        write_atomic(dest, buffer.getvalue(), overwrite=out.overwrite)
    except (RmbgError, OSError, ValueError) as exc:
        summary.fail(str(dest), reason(exc))
    else:
        logger.info("%s: the figure of %s", dest, job.label)


def load_remover(
    args: argparse.Namespace,
    backend_options: dict[str, Any],
    summary: Summary,
    *,
    batch: bool,
) -> BackgroundRemover:
    """The run's remover, loaded once; a failure is the run's error (in ``--json`` too)."""
    try:
        return flags.remover_from_args(args, backend_options, batch=batch)
    except (RmbgError, OSError) as exc:
        summary.error = str(exc)
        if args.json:
            summary.print_json()
        raise  # main() reports it and picks the exit code
