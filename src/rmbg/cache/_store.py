"""Cache entries: keys, locks, manifests, atomic durable writes, leftovers (see :mod:`rmbg.cache`)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from ..errors import CacheError

__all__ = [
    "EXTERNAL_PREFIX",
    "IR_FILES",
    "KEY_PATTERN",
    "MANIFEST",
    "STALE_AFTER_S",
    "EntryStatus",
    "blob_cache_dir",
    "cache_key",
    "clean_stale",
    "default_cache_dir",
    "entry_digest",
    "get_or_build",
    "inspect_entry",
    "is_stale",
    "leftover_of",
    "locked",
    "read_manifest",
    "sha256_file",
    "write_entry",
]

logger = logging.getLogger("rmbg")
#: One-time set-up work a user waits for (conversion, quantization): the CLI shows it by default.
setup_logger = logging.getLogger("rmbg.setup")

MANIFEST = "manifest.json"
#: The files of an IR entry.
IR_FILES = ("model.xml", "model.bin")
#: Version of the manifest layout; any other value means "rebuild".
MANIFEST_FORMAT = 2
LOCK_TIMEOUT_S = 30 * 60.0
#: A temporary folder of a process that cannot be proven dead is removed only after this long.
STALE_AFTER_S = 6 * 3600.0

KEY_PATTERN = r"[0-9a-f]{24}"
_TMP_RE = re.compile(rf"^\.(?P<key>{KEY_PATTERN})\.(?:(?P<pid>\d+)\.)?[^/]*\.tmp$")
_OLD_RE = re.compile(rf"^\.(?P<key>{KEY_PATTERN})\.old\.(?P<pid>\d+)$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_STAT_FIELDS = ("mtime_ns", "ino", "ctime_ns")
EXTERNAL_PREFIX = "model-"

EntryStatus = Literal["ok", "changed", "invalid", "corrupt", "stale", "in use", "orphaned"]


def default_cache_dir() -> Path:
    """The cache root: ``$RMBG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rmbg``, else ``~/.cache/rmbg``."""
    env = os.environ.get("RMBG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rmbg"


def cache_key(parts: Mapping[str, Any]) -> str:
    """A short stable hash of the JSON-serialisable ``parts``."""
    blob = json.dumps(dict(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an inter-process file lock on ``path`` (created if needed)."""
    import filelock

    _make_dirs(path.parent)
    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise CacheError(
            f"Timed out after {timeout:.0f} s waiting for the cache lock {path}. Another process "
            "may be converting the same model; if none is, delete the lock file and retry."
        ) from exc
    except OSError as exc:  # read-only, no permission, a file in the way
        raise _unusable(path.parent, exc) from exc
    try:
        yield
    finally:
        lock.release()


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read now (no memo: cache checks must see what is on disk)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- manifests -------------------------------------------------------------------------------------
def _stat_record(st: os.stat_result) -> dict[str, int]:
    return {"mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _plain_json(value: Any) -> Any:
    """``value`` as it reads back from the manifest (tuples become lists, unknowns strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _manifest_problem(
    data: Any, required: Iterable[str], expect: Mapping[str, Any] | None
) -> str | None:
    """Why ``data`` is not exactly a manifest :func:`write_entry` writes (None if it is)."""
    if not isinstance(data, dict):
        return f"the manifest is a {type(data).__name__}, not an object"
    if data.get("format") != MANIFEST_FORMAT or isinstance(data.get("format"), bool):
        return f"manifest format {data.get('format')!r}, expected {MANIFEST_FORMAT}"
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        return "the manifest lists no files"
    for name, meta in files.items():
        if not isinstance(name, str) or name in ("", ".", "..", MANIFEST) or "/" in name:
            return f"the manifest lists a bad file name {name!r}"
        if "\\" in name or name.startswith("."):
            return f"the manifest lists a bad file name {name!r}"
        if not isinstance(meta, dict) or set(meta) != {"size", "sha256", "stat"}:
            return f"the manifest's record of {name} is malformed"
        stat = meta["stat"]
        if not _is_int(meta["size"]) or not isinstance(meta["sha256"], str):
            return f"the manifest's record of {name} is malformed"
        if not _SHA_RE.match(meta["sha256"]):
            return f"the manifest's sha256 of {name} is malformed"
        if (
            not isinstance(stat, dict)
            or set(stat) != set(_STAT_FIELDS)
            or not all(_is_int(v) for v in stat.values())
        ):
            return f"the manifest's stat record of {name} is malformed"
    missing = [name for name in required if name not in files]
    if missing:
        return f"the manifest does not list {', '.join(missing)}"
    for name, value in (expect or {}).items():
        if name not in data or data[name] != _plain_json(value):
            return f"the manifest's {name!r} is not the expected one"
    return None


def inspect_entry(
    entry: Path,
    *,
    rehash: Literal["changed", "all", "none"],
    required: Iterable[str] = (),
    expect: Mapping[str, Any] | None = None,
) -> tuple[EntryStatus, str | None, dict[str, Any] | None, dict[str, dict[str, int]]]:
    """``(status, problem, manifest, stats to record)`` of an IR entry; ``manifest`` is None
    unless the entry is usable (``"ok"`` or, with ``rehash="none"``, ``"changed"``)."""
    try:
        data = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "invalid", "it has no manifest", None, {}
    except (OSError, ValueError) as exc:
        return "invalid", f"unreadable manifest ({exc})", None, {}
    problem = _manifest_problem(data, required, expect)
    if problem is not None:
        return "invalid", problem, None, {}
    status: EntryStatus = "ok"
    refreshed: dict[str, dict[str, int]] = {}
    for name, meta in data["files"].items():
        try:
            st = (entry / name).stat()
            if st.st_size != meta["size"]:
                return "invalid", f"{name} has the wrong size", None, {}
            now = _stat_record(st)
            if rehash == "all" or (rehash == "changed" and now != meta["stat"]):
                if sha256_file(entry / name) != meta["sha256"]:
                    return (
                        "corrupt",
                        f"{name} does not hold the bytes it was written with",
                        None,
                        {},
                    )
                if now != meta["stat"] and _stat_record((entry / name).stat()) == now:
                    refreshed[name] = now
            elif now != meta["stat"]:
                problem = f"{name} was modified or copied since it was written (not re-hashed)"
                status = "changed"
        except OSError as exc:
            return "invalid", f"cannot read {name} ({exc.strerror or exc})", None, {}
    return status, problem, data, refreshed


def read_manifest(
    entry: Path,
    *,
    full_check: bool = False,
    required: Iterable[str] = (),
    expect: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The manifest of a complete, intact cache entry, or ``None`` if the entry must be rebuilt.

    Takes no lock and, when the entry is intact, writes nothing (a read-only cache works).
    The manifest must be exactly what :func:`write_entry` writes, list every name in
    ``required`` and hold ``expect``'s items (compared as JSON). Each listed file must exist with
    its recorded size; a file whose ``stat`` (mtime, ctime, inode) differs from the recorded one
    is re-hashed, and with ``full_check`` every file is. When re-hashing finds the recorded bytes
    the new ``stat`` is recorded (best effort), so a copied cache is re-hashed once.
    """
    rehash: Literal["all", "changed"] = "all" if full_check else "changed"
    _, problem, manifest, refreshed = inspect_entry(
        entry, rehash=rehash, required=required, expect=expect
    )
    if manifest is None:
        if (entry / MANIFEST).exists() or entry.exists():
            logger.warning("cache entry %s: %s; rebuilding", entry, problem)
        return None
    if refreshed:
        _record_stats(entry, manifest, refreshed)
    return manifest


def _record_stats(entry: Path, manifest: dict[str, Any], stats: dict[str, dict[str, int]]) -> None:
    """Rewrite the manifest with the files' current stat (their bytes were just checked)."""
    new = json.loads(json.dumps(manifest))
    for name, record in stats.items():
        new["files"][name]["stat"] = record
    tmp = entry / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        with locked(entry.with_name(entry.name + ".lock"), timeout=0):
            tmp.write_text(json.dumps(new, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, entry / MANIFEST)
    except OSError as exc:  # read-only, or being rewritten by another process: re-hash next time
        logger.debug("cache entry %s: stat record not refreshed (%s)", entry, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def entry_digest(manifest: Mapping[str, Any]) -> str:
    """A digest of an entry's content (its files' names and sha256), e.g. to key derived caches."""
    files = manifest["files"]
    blob = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def blob_cache_dir(root: Path, digest: str, *, cached: bool = True) -> Path:
    """Where OpenVINO's compiled blobs of one IR go (``CACHE_DIR``): keyed by the IR's content.

    OpenVINO keys its blobs by the model file's path, so a blob compiled from an IR would outlive
    a rebuilt IR at the same path; one folder per content digest cannot.

    Args:
        root: The cache root.
        digest: :func:`entry_digest` of a cache entry, or the digest of a model used in place.
        cached: False for a model that is not a cache entry (an IR of the user's).
    """
    if cached:
        return root / "ov" / digest[:24]
    # any string (an "int8:<key>" digest, say), as a portable folder name
    return root / "ov" / f"{EXTERNAL_PREFIX}{hashlib.sha256(digest.encode()).hexdigest()[:24]}"


# -- writing ---------------------------------------------------------------------------------------
def _fsync(path: Path, *, folder: bool = False) -> None:
    if folder and os.name == "nt":  # pragma: no cover - Windows cannot open a folder
        return
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(folder, exc) from exc


def _unusable(folder: Path, exc: OSError) -> CacheError:
    """A CacheError naming the cache folder, why it cannot be written, and what to do."""
    fix = (
        "Set RMBG_CACHE_DIR (or pass cache_dir=, --cache-dir) to a writable folder; a read-only "
        "cache works only when it already holds the converted model (convert once where it is "
        "writable, then mount it)."
    )
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return CacheError(
            f"The rmbg cache folder {folder} cannot be created: {blocker} is a file, not a "
            f"folder. Remove it, or point the cache elsewhere. {fix}"
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(f"No space left on {folder} ({exc.strerror}). {fix}")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return CacheError(
            f"The rmbg cache folder {folder} is not writable ({exc.strerror}) and does not hold "
            f"this converted model yet. {fix}"
        )
    return CacheError(f"Cannot write to the rmbg cache at {folder} ({exc}). {fix}")


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _no_space(folder: Path, needs: int | None, exc: BaseException | None = None) -> CacheError:
    free = _free_bytes(folder)
    have = f"{free / 2**20:.0f} MiB free" if free is not None else "free space unknown"
    want = f", this entry needs about {needs / 2**20:.0f} MiB" if needs else ""
    fix = (
        "Free some space, or set RMBG_CACHE_DIR (or pass cache_dir=) to a folder on another "
        "disk. Nothing was left in the cache."
    )
    if isinstance(exc, RuntimeError) and needs and free is not None and free >= needs:
        # the writer gave no reason, and there is room now that its partial files are gone
        return CacheError(
            f"Writing the converted model into {folder} failed ({_first_line(exc)}): the disk "
            f"is probably full or failing ({have}{want}). {fix}"
        )
    return CacheError(f"No space left on {folder} ({have}{want}). {fix}")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _is_write_failure(exc: BaseException) -> bool:
    """A full disk (or quota), as the build reports it: ENOSPC/EDQUOT, or OpenVINO's writer,
    which says "basic_ios::clear: iostream error" for any failed write (and deletes its partial
    files). The build writes into a folder rmbg just created, so a failed write is the disk."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, RuntimeError) and "iostream error" in str(exc)


def write_entry(
    entry: Path,
    build: Callable[[Path], Any],
    *,
    metadata: Mapping[str, Any],
    needs_bytes: int | None = None,
) -> dict[str, Any]:
    """Build a cache entry atomically and durably.

    ``build(tmp_dir)`` writes the entry's files into a fresh temporary folder beside ``entry``;
    each file is fsynced and recorded (size, sha256, stat), the manifest is written and fsynced,
    and the folder is moved into place with ``os.replace``. The caller holds the entry's lock. A
    stale or corrupt ``entry`` is replaced.

    Args:
        entry: Final folder of the entry.
        build: Callable taking the temporary folder.
        metadata: Stored in the manifest (the key's parts, versions...); ``metadata`` is read
            after ``build`` ran, so the build may add to it.
        needs_bytes: About how much the entry takes on disk: refused at once when less is free.

    Returns:
        The manifest written.

    Raises:
        CacheError: The cache folder cannot be written, or the disk is full (nothing is left).
    """
    _make_dirs(entry.parent)
    free = _free_bytes(entry.parent)
    if needs_bytes and free is not None and free < needs_bytes:
        raise _no_space(entry.parent, needs_bytes)
    try:
        tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{entry.name}.{os.getpid()}.", suffix=".tmp", dir=entry.parent
            )
        )
    except OSError as exc:
        raise _unusable(entry.parent, exc) from exc
    try:
        build(tmp)
        files = {}
        for f in sorted(p for p in tmp.iterdir() if p.is_file()):
            _fsync(f)
            st = f.stat()
            files[f.name] = {"size": st.st_size, "sha256": sha256_file(f), "stat": _stat_record(st)}
        clash = {"format", "files"} & set(metadata)
        if clash:
            raise ValueError(f"metadata may not use the manifest's own fields {sorted(clash)}")
        manifest = {"format": MANIFEST_FORMAT, "files": files, **dict(metadata)}
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by a team
        with (tmp / MANIFEST).open("w", encoding="utf-8") as out:
            out.write(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            out.flush()
            os.fsync(out.fileno())
        _fsync(tmp, folder=True)
        if entry.exists():
            old = entry.with_name(f".{entry.name}.old.{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(entry, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, entry)
        _fsync(entry.parent, folder=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_write_failure(exc):
            raise _no_space(entry.parent, needs_bytes, exc) from exc
        raise
    return _plain_json(manifest)  # type: ignore[no-any-return]


def get_or_build(
    entry: Path,
    build: Callable[[Path, dict[str, Any]], Any],
    *,
    metadata: Mapping[str, Any],
    what: str = "model",
    expect: str = "",
    required: Iterable[str] = IR_FILES,
    needs_bytes: int | None = None,
    lock_timeout: float = LOCK_TIMEOUT_S,
) -> dict[str, Any]:
    """The manifest of the cache entry ``entry``, building it first if it is missing, partial,
    damaged or not exactly what rmbg writes.

    A complete entry is used without a lock and without writing anything (read-only caches
    work). Otherwise the entry's lock is taken (concurrent processes wait: each entry is built
    once), the entry checked again, this key's stale temporaries removed, and
    ``build(tmp_dir, metadata)`` writes the files into a temporary folder; it may add to
    ``metadata`` (a copy), which is stored in the manifest. Building is announced once on the
    ``rmbg.setup`` logger (which the CLI shows by default), with ``expect``: how long it takes.

    Args:
        entry: The entry's folder, ``<root>/ir/<key>``.
        build: Writes the entry's files into the folder it is given.
        metadata: Stored in the manifest; a manifest whose items differ is rebuilt (what the build
            adds is stored, not compared).
        what: What is built, for the announcement and the logs.
        expect: How long building takes, for the announcement.
        required: File names the entry must have (default: an IR's ``model.xml``, ``model.bin``).
        needs_bytes: See :func:`write_entry`.
        lock_timeout: Seconds to wait for another process building the same entry.

    Raises:
        CacheError: The entry must be built and the cache cannot be written (read-only, a file
            in the way, no space left), or the lock timed out.
    """
    required = tuple(required)
    check = _plain_json(metadata)
    manifest = read_manifest(entry, required=required, expect=check)
    if manifest is not None:
        logger.debug("using cached %s %s", what, entry)
        return manifest
    with locked(entry.with_name(entry.name + ".lock"), timeout=lock_timeout):
        manifest = read_manifest(entry, required=required, expect=check)
        if manifest is not None:
            return manifest
        _remove_stale(entry.parent, entry.name)
        setup_logger.info(
            "building the %s, once%s; later runs start from the cache (%s)",
            what,
            f" ({expect})" if expect else "",
            entry.parent,
        )
        extra = dict(metadata)
        manifest = write_entry(
            entry, lambda tmp: build(tmp, extra), metadata=extra, needs_bytes=needs_bytes
        )
    clean_stale(entry.parent.parent)
    return manifest


# -- leftovers -------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool | None:
    """Whether ``pid`` runs on this machine (None: cannot tell)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def leftover_of(name: str) -> tuple[str, int | None] | None:
    """``(key, pid)`` of a temporary or half-removed entry folder name, else None."""
    m = _TMP_RE.match(name) or _OLD_RE.match(name)
    if m is None:
        return None
    pid = m.group("pid")
    return m.group("key"), int(pid) if pid else None


def is_stale(path: Path, pid: int | None, stale_after: float) -> bool:
    """A leftover is stale when its process is gone, or when it is older than ``stale_after``."""
    if pid is not None and pid != os.getpid() and _pid_alive(pid) is False:
        return True
    return _age(path) > stale_after


def _remove_stale(ir: Path, key: str, stale_after: float = STALE_AFTER_S) -> list[Path]:
    """Remove ``key``'s leftovers in ``ir``. The caller holds the key's lock."""
    removed = []
    with contextlib.suppress(OSError):
        for p in ir.iterdir():
            found = leftover_of(p.name)
            if found and found[0] == key and is_stale(p, found[1], stale_after):
                logger.info("removing %s, left by an interrupted conversion", p)
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def clean_stale(root: Path | None = None, *, stale_after: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary folders that interrupted conversions left in the cache.

    A leftover ``ir/.<key>.<pid>.*.tmp`` is removed only while its key's lock can be taken at
    once (no process is converting that key) and when its process is no longer running on this
    machine, or it is older than ``stale_after`` seconds (a process on another machine sharing
    the cache, or a name without a pid). Never raises for a folder it cannot clean.

    Returns:
        The folders removed.
    """
    ir = (default_cache_dir() if root is None else Path(root)) / "ir"
    try:
        keys = sorted({found[0] for p in ir.iterdir() if (found := leftover_of(p.name))})
    except OSError:
        return []
    removed: list[Path] = []
    for key in keys:
        try:
            with locked(ir / f"{key}.lock", timeout=0):
                removed += _remove_stale(ir, key, stale_after)
        except CacheError:  # being converted right now, or not writable
            continue
    return removed
