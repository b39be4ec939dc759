"""What every subcommand run shares: exit codes, logging to stderr, signals, safe writes, progress
and the run summary (text on stderr, ``--json`` on stdout).

Signals: inside :func:`catch_signals`, SIGINT and SIGTERM raise :class:`Interrupted` in the main
thread, except inside :func:`deferred_signals` sections (an output being renamed into place and
counted), at whose end they are raised instead. Once one has been raised, later ones are only
noted: the run is already stopping, and a second Ctrl-C must not turn a clean stop into a
traceback.

Writes: :func:`write_atomic` puts a file in place complete or not at all, through a hidden
``.NAME.PID.XXXXXXXX.tmp`` file beside it; :func:`remove_stale_temp_files` removes the ones a
killed run left. :func:`write_stdout` fails on a short write (a closed pipe) instead of reporting
success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import RmbgError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "STALE_TEMP_SECONDS",
    "Interrupted",
    "Summary",
    "UsageError",
    "catch_signals",
    "deferred_signals",
    "folder_problem",
    "human_bytes",
    "jsonable",
    "logging_to_stderr",
    "progress",
    "reason",
    "remove_stale_temp_files",
    "write_atomic",
    "write_stdout",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + 2
EXIT_SIGTERM = 128 + 15

#: A temporary file older than this is left over from a killed run, whoever wrote it (a write
#: takes well under a second; this leaves room for slow network file systems).
STALE_TEMP_SECONDS = 300.0

logger = logging.getLogger("rmbg.cli")


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


def reason(exc: BaseException) -> str:
    """An exception as one line for the user: its message, or its type when it has none."""
    if isinstance(exc, (RmbgError, OSError, ValueError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def human_bytes(n: float) -> str:
    """A size for people: ``512 B``, ``1.5 KB``, ``170.3 MB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into strings."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


# -- logging ---------------------------------------------------------------------------------------
class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"rmbg: {record.levelname.lower()}: {message}"
        return f"rmbg: {message}"


@contextlib.contextmanager
def logging_to_stderr(verbose: int, quiet: bool) -> Iterator[None]:
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
    # one-time set-up (conversion, quantization) is said by default: never a silent wait
    setup = logging.getLogger("rmbg.setup")
    saved_setup = setup.level
    setup.setLevel(level if quiet else min(level, logging.INFO))
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        setup.setLevel(saved_setup)
        for lg, (lvl, prop) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(lvl)
            lg.propagate = prop


# -- signals ---------------------------------------------------------------------------------------
class _SignalGate:
    """State shared by the signal handler and the critical sections (main thread only)."""

    changed = False  # the CLI has changed SIGINT/SIGTERM handling in this process
    depth = 0  # > 0 inside a critical section: signals are held back
    pending: int | None = None  # the first signal that arrived inside one
    raised: int | None = None  # the signal already raised: the run is stopping


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def catch_signals() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (once),
    except inside :func:`deferred_signals` sections, at whose end they are raised instead.

    Once one has been raised, later ones are only noted, and after the block they are ignored
    for the rest of the process: the run was interrupted and the process is exiting with
    130/143 (a caller of :func:`rmbg.cli.main` in a long-lived process should know this).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        if _SignalGate.raised is not None:  # already stopping: a second Ctrl-C changes nothing
            logger.warning("already stopping (%s); waiting for the images in flight", _name(signum))
            return
        if _SignalGate.depth:
            if _SignalGate.pending is None:
                _SignalGate.pending = signum
            return
        _SignalGate.raised = signum
        raise Interrupted(signum)

    if not _in_main_thread():
        yield
        return
    _SignalGate.changed = True  # from now on, children forked by this process get the defaults
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        interrupted = _SignalGate.raised is not None
        for s, h in previous.items():
            # an interrupted run is on its way out of the process (exit 130/143): a later signal
            # must not turn that into a KeyboardInterrupt during the exit
            signal.signal(s, signal.SIG_IGN if interrupted else h)
        _SignalGate.pending = None
        _SignalGate.raised = None


def _default_signals_in_child() -> None:
    """In a process forked from the CLI (OpenVINO's and NNCF's telemetry senders fork one from a
    worker thread, then join it with a timeout and ``terminate()`` it), SIGINT and SIGTERM go back
    to their defaults. With the CLI's Python handler (or SIG_IGN after an interrupted run), a child
    stuck in a C call such as a deadlocked ``getaddrinfo`` could not be terminated, and the
    parent waited for it forever at exit."""
    if not _SignalGate.changed:
        return
    for s in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # pragma: no cover - not its main thread
            signal.signal(s, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_signals_in_child)


def _name(signum: int) -> str:
    return signal.Signals(signum).name


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back around a critical section; raise :class:`Interrupted` at its end.

    This works at the Python level (the handler installed by :func:`catch_signals` records the
    signal instead of raising), so it holds whichever OS thread the signal was delivered to
    (OpenVINO and torch run thread pools). Outside :func:`catch_signals` (the library's own
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
            if _SignalGate.raised is None:
                _SignalGate.raised = signum
                raise Interrupted(signum)


# -- writing ---------------------------------------------------------------------------------------
_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


def write_atomic(dest: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``dest`` so that ``dest`` is either absent or complete.

    The bytes go to a hidden temporary file in the destination folder (same file system), named
    ``.NAME.PID.XXXXXXXX.tmp``, are fsynced, and the file is renamed into place: with
    ``os.replace`` when ``overwrite``, else with a hard link that fails if ``dest`` appeared
    meanwhile (no-clobber even against another process). During a CLI run SIGINT/SIGTERM are held
    back for the duration (see :func:`deferred_signals`), and the temporary file is removed
    whatever happens; only a kill -9 can leave one, which the next run into the folder removes
    (:func:`remove_stale_temp_files`).

    Raises:
        FileExistsError: ``dest`` exists and ``overwrite`` is false.
        OSError: The folder cannot be written; the message names ``dest`` (not the temporary
            file) and the reason (e.g. "No space left on device").
    """
    try:
        _write_atomic(dest, data, overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise OSError(f"cannot write the output {dest}: {exc.strerror or exc}") from exc


def _write_atomic(dest: Path, data: bytes, overwrite: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with deferred_signals():
        fd, name = tempfile.mkstemp(
            dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp"
        )
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


#: ``.NAME.PID.XXXXXXXX.tmp`` for an output NAME rmbg writes (and ``.NAME.XXXXXXXX.tmp``, without
#: the pid, from earlier versions).
_TEMP_NAME = re.compile(
    r"^\..+\.(?:png|webp|jpe?g)(?:\.(?P<pid>\d+))?\.[a-z0-9_]{8}\.tmp$", re.IGNORECASE
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's
        return True
    return True


def remove_stale_temp_files(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files of :func:`write_atomic` that a killed run left in ``folder``.

    A file is stale when its writer's process is gone (the pid in its name) or when it is older
    than :data:`STALE_TEMP_SECONDS`; another live run's file being written is left alone.
    Returns the files removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = match.group("pid")
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > STALE_TEMP_SECONDS or (
            pid is not None and int(pid) != os.getpid() and not _pid_alive(int(pid))
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
                logger.info("removed %s, left by an interrupted run", entry.path)
    return removed


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created as needed), or None if they can.

    Checks the folder, or the nearest ancestor that exists when it is still to be created: it
    must be a folder that this process may write into (a read-only mount or a permission
    denied says so).
    """
    path = folder
    while not path.exists():
        if path.is_symlink():
            return f"{path} is a broken symbolic link"
        if path.parent == path:
            break
        path = path.parent
    if not path.is_dir():
        if path == folder:
            return f"{folder} is not a folder"
        return f"{folder} cannot be created: {path} is not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        probe = "is read-only" if _read_only_mount(path) else "is not writable (permission denied)"
        where = "" if path == folder else f" (so {folder} cannot be created)"
        return f"{path} {probe}{where}"
    return None


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # pragma: no cover - statvfs is POSIX
        return False


def write_stdout(data: bytes) -> None:
    """Write ``data`` to standard output completely, or raise.

    A reader that closes the pipe early (``| head -c 1000``) makes CPython's buffered stdout
    return a short count without raising; every byte is accounted for here, and standard output
    is then pointed at /dev/null so that the interpreter's last flush cannot complain either.

    Raises:
        BrokenPipeError: The reader went away before all of ``data`` was written.
    """
    stream = sys.stdout.buffer
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            n = stream.write(view[written:])
            if not n:
                raise BrokenPipeError("the write returned no progress")
            written += n
        stream.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # ValueError: not a real file (tests)
            fileno = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fileno)
            finally:
                os.close(devnull)
        raise BrokenPipeError(
            f"standard output was closed after {written} of {len(data)} bytes (broken pipe): "
            "the reader stopped early, the image is incomplete"
        ) from None


# -- progress and the summary ----------------------------------------------------------------------
@contextlib.contextmanager
def progress(total: int, show: bool) -> Iterator[Any]:
    """A tqdm bar on stderr (``update(1)`` per item) when ``show``, else None."""
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


@dataclasses.dataclass
class Summary:
    """What a run did, printed at the end (text on stderr, or ``--json`` on stdout)."""

    command: str
    started: float = dataclasses.field(default_factory=time.perf_counter)
    processed: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    outputs: list[dict[str, str]] = dataclasses.field(default_factory=list)
    interrupted: str | None = None
    error: str | None = None  # the run could not start (the model did not load)

    def fail(self, label: str, why: str) -> None:
        """Record (and log) that ``label`` failed; the library's messages name the file too:
        once is enough."""
        for named in (f"{label!r}: ", f"{label}: "):
            if why.startswith(named):
                why = why[len(named) :]
                break
        self.failed.append({"input": label, "error": why})
        logger.error("%s: %s", label, why)

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

    def print_json(self) -> None:
        print(json.dumps(self.as_json(), indent=2))

    def report(self, *, json_: bool, quiet: bool, verbose: int) -> None:
        """``--json`` on stdout; the one-line text on stderr unless quiet (always after a failure
        or an interruption, on a terminal, or with -v)."""
        if json_:
            self.print_json()
        if quiet:
            return
        if self.interrupted or self.failed or sys.stderr.isatty() or verbose:
            print(f"rmbg: {self.text()}", file=sys.stderr)
