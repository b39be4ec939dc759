"""``rmbg cutout DIR --watch`` (and ``mask``): process the images in the folders, then each new
one as it arrives, until Ctrl-C or SIGTERM.

Standard library only: the folders are looked at every ``--poll`` seconds (default 1; no inotify
dependency, and it works on network file systems). A file is read only once two looks in a row
saw the same size, modification time and inode, so a file still being copied in is left alone
until the copy is complete; an empty file waits for content. Everything else is the folder mode's:
the same input filter (image extensions, no hidden files such as rmbg's own ``.NAME.*.tmp``, no
``*.cutout.png``/``*.mask.png``, nothing under ``--out-dir``), the same output names and checks
(:func:`~rmbg.cli.images.output_for`, :func:`~rmbg.cli.images.check_outputs`), and the same
pipelined batch path (:func:`~rmbg.cli.images.process_many`) with its atomic writes and per-file
errors, once per look that found files ready. An output written in this session is never taken as
an input, whatever its name. A file that failed is tried again only if it changes (a copy that
paused long enough to look complete); one that succeeded is not redone unless it is removed and
comes back.

Stopping: SIGINT/SIGTERM raise :class:`~rmbg.cli.runtime.Interrupted` (the run's
:func:`~rmbg.cli.runtime.catch_signals`), whether the process is sleeping between looks or
writing; an output is either complete or absent, and the run ends with its summary and exit
code 130/143.
"""

from __future__ import annotations

import argparse
import glob
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .images import (
    Job,
    Output,
    check_outputs,
    find_inputs,
    format_of,
    load_remover,
    output_for,
    process_many,
)
from .runtime import Summary, UsageError

if TYPE_CHECKING:
    from ..options import CutoutOptions, MaskOptions

__all__ = ["DEFAULT_POLL", "Watcher", "check_arguments", "watch"]

#: Seconds between two looks at the watched folders.
DEFAULT_POLL = 1.0

logger = logging.getLogger("rmbg.cli.watch")

#: What a file looked like: size, modification time (ns), inode.
Signature = tuple[int, int, int]


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse what a watch cannot do: one output file, standard input, a file as INPUT.

    Raises:
        UsageError: With what to do instead.
    """
    if args.output is not None:
        raise UsageError("--watch writes one output per new file: use --out-dir, not -o")
    for arg in args.inputs:
        if arg == "-":
            raise UsageError("--watch watches folders; standard input (-) cannot be watched")
        path = Path(arg)
        if path.is_dir() or (glob.has_magic(arg) and not path.exists()):
            continue
        what = "does not exist" if not path.exists() else "is not a folder"
        raise UsageError(f"--watch watches folders (or glob patterns): {arg} {what}")


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:  # gone (moved away, or renamed into place by its writer) since the scan
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


class Watcher:
    """Which files are ready: seen twice in a row with the same signature, and not yet handled.

    Pure bookkeeping (no model, no clock), driven by :meth:`look`; see the module docstring for
    the rules.
    """

    def __init__(
        self,
        inputs: list[str],
        recursive: bool,
        exclude: Path | None,
        signature: Callable[[Path], Signature | None] = _signature,
    ) -> None:
        self.inputs = inputs
        self.recursive = recursive
        self.exclude = exclude
        self._signature = signature
        self._seen: dict[Path, Signature] = {}  # the last look's signatures
        self._handled: dict[Path, tuple[Signature, bool]] = {}  # what was done, succeeded
        self.outputs: set[Path] = set()  # this session's outputs, never inputs

    def look(self) -> list[tuple[Path, Path | None]]:
        """One look at the folders: the files ready to be processed now, as
        ``(file, base folder)`` pairs in a stable order."""
        current: dict[Path, tuple[Path, Path | None, Signature]] = {}
        for arg in self.inputs:
            for path, base in find_inputs(arg, self.recursive, self.exclude) or []:
                key = path.resolve()
                if key in current or key in self.outputs:
                    continue
                sig = self._signature(path)
                if sig is not None:
                    current[key] = (path, base, sig)
        ready = []
        for key, (path, base, sig) in current.items():
            done = self._handled.get(key)
            if done is not None and (done[1] or done[0] == sig):
                continue  # done, or failed and unchanged since
            if self._seen.get(key) == sig and sig[0] > 0:
                ready.append((path, base))
        self._seen = {key: sig for key, (_p, _b, sig) in current.items()}
        # a file that went away is forgotten: if one comes back by that name, it is new
        self._handled = {k: v for k, v in self._handled.items() if k in current}
        return ready

    def handled(self, path: Path, ok: bool) -> None:
        """Record the outcome for ``path`` (at the signature it was read with)."""
        key = path.resolve()
        sig = self._seen.get(key)
        if sig is not None:
            self._handled[key] = (sig, ok)


def watch(
    args: argparse.Namespace,
    kind: str,
    options: MaskOptions | CutoutOptions,
    out: Output,
    summary: Summary,
    backend_options: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Load the model, then look at the folders every ``--poll`` seconds and process what is
    ready, until a signal raises :class:`~rmbg.cli.runtime.Interrupted` (which propagates)."""
    poll: float = args.poll or DEFAULT_POLL
    out_dir = Path(args.out_dir) if args.out_dir is not None else None
    fmt = format_of(None, out.fmt)
    watcher = Watcher(
        list(args.inputs), args.recursive, out_dir.resolve() if out_dir is not None else None
    )
    remover = load_remover(args, backend_options, summary, batch=True)
    saved = logger.level
    if not args.quiet:  # a long-running command says what it does without -v
        logger.setLevel(logging.INFO)
    try:
        logger.info(
            "watching %s every %g s for new images; Ctrl-C to stop", ", ".join(args.inputs), poll
        )
        while True:
            ready = watcher.look()
            if ready:
                _process(ready, watcher, remover, args, out_dir, kind, fmt, options, out, summary)
            sleep(poll)
    finally:
        logger.setLevel(saved)


def _process(
    ready: list[tuple[Path, Path | None]],
    watcher: Watcher,
    remover: Any,
    args: argparse.Namespace,
    out_dir: Path | None,
    kind: str,
    fmt: str,
    options: MaskOptions | CutoutOptions,
    out: Output,
    summary: Summary,
) -> None:
    """One batch: plan the ready files like the folder mode, process them, record outcomes."""
    jobs: list[Job] = []
    for path, base in ready:
        dest = output_for(path, base, output=None, out_dir=out_dir, kind=kind, fmt=fmt)
        assert dest is not None  # -o is refused by check_arguments
        jobs.append(Job(str(path), path, dest, fmt))
        watcher.outputs.add(dest.resolve())
    done_before, failed_before = summary.processed + summary.skipped, len(summary.failed)
    todo = check_outputs(jobs, out, summary)
    process_many(remover, todo, options=options, out=out, summary=summary)
    failed = {f["input"] for f in summary.failed[failed_before:]}
    for job in jobs:
        assert job.path is not None
        watcher.handled(job.path, job.label not in failed)
    done = summary.processed + summary.skipped - done_before
    logger.info(
        "%d new image%s: %d done, %d failed",
        len(jobs),
        "" if len(jobs) == 1 else "s",
        done,
        len(summary.failed) - failed_before,
    )
