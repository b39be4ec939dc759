"""The on-disk cache: where it lives, how entries are keyed, written and validated.

Layout under the cache root (``$RMBG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rmbg``, else ``~/.cache/rmbg``)::

    ir/<key>/model.xml, model.bin, manifest.json   converted OpenVINO IRs, one folder per key
    ir/<key>.lock                                  held while converting that key
    ov/                                            OpenVINO's own compiled-blob cache (CACHE_DIR)

A key hashes everything that changes the converted model (weights digest, model spec, input shape,
IR precision, rmbg and OpenVINO versions), so a cached IR is never reused for other weights or
other library versions. An entry is written into a temporary sibling folder and moved into place
with ``os.replace`` while a file lock is held, so two processes converting at once leave exactly
one valid entry; ``manifest.json`` is written last and lists the sizes and digests of the files, so
a partial or corrupt entry is detected and rebuilt instead of trusted because it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import CacheError

__all__ = [
    "cache_key",
    "default_cache_dir",
    "locked",
    "read_manifest",
    "sha256_file",
    "write_entry",
]

logger = logging.getLogger("rmbg")
#: One-time set-up work a user waits for (conversion, quantization): the CLI shows it by default.
setup_logger = logging.getLogger("rmbg.setup")

MANIFEST = "manifest.json"
LOCK_TIMEOUT_S = 30 * 60.0


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

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        with lock:
            yield
    except filelock.Timeout as exc:
        raise CacheError(
            f"Timed out after {timeout:.0f} s waiting for the cache lock {path}. Another process "
            "may be converting the same model; if none is, delete the lock file and retry."
        ) from exc


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read now (no memo: cache checks must see what is on disk)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(entry: Path, *, full_check: bool = False) -> dict[str, Any] | None:
    """The manifest of a complete, intact cache entry, or ``None`` if the entry must be rebuilt.

    Every listed file must exist with its recorded size; files marked ``"check": true`` in the
    manifest (small ones, like the IR's XML) also have their sha256 checked, and with
    ``full_check`` every file is hashed.
    """
    try:
        manifest: dict[str, Any] = json.loads((entry / MANIFEST).read_text())
        files: dict[str, dict[str, Any]] = manifest["files"]
        for name, meta in files.items():
            f = entry / name
            if f.stat().st_size != meta["size"]:
                logger.warning("cache entry %s: %s has the wrong size; rebuilding", entry, name)
                return None
            if (full_check or meta.get("check")) and sha256_file(f) != meta["sha256"]:
                logger.warning("cache entry %s: %s is corrupt; rebuilding", entry, name)
                return None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("cache entry %s is unreadable (%s); rebuilding", entry, exc)
        return None
    return manifest


def write_entry(
    entry: Path,
    build: Any,
    *,
    metadata: Mapping[str, Any],
    check_below: int = 16 << 20,
) -> dict[str, Any]:
    """Build a cache entry atomically.

    ``build(tmp_dir)`` writes the entry's files into a fresh temporary folder beside ``entry``;
    then the manifest is written and the folder is moved into place with ``os.replace``. The caller
    holds the entry's lock. A stale or corrupt ``entry`` is replaced.

    Args:
        entry: Final folder of the entry.
        build: Callable taking the temporary folder.
        metadata: Stored in the manifest (the key's parts, versions...).
        check_below: Files smaller than this are sha256-checked on every read.

    Returns:
        The manifest written.
    """
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    except OSError as exc:
        raise CacheError(
            f"Cannot write to the rmbg cache at {entry.parent} ({exc}). Pass cache_dir= or set "
            "RMBG_CACHE_DIR to a writable folder."
        ) from exc
    try:
        build(tmp)
        files = {}
        for f in sorted(p for p in tmp.iterdir() if p.is_file()):
            size = f.stat().st_size
            files[f.name] = {"size": size, "sha256": sha256_file(f), "check": size < check_below}
        manifest = {"files": files, **dict(metadata)}
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by a team
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        if entry.exists():
            old = entry.with_name(f".{entry.name}.old.{os.getpid()}")
            os.replace(entry, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def get_or_build(
    entry: Path,
    build: Any,
    *,
    metadata: Mapping[str, Any],
    what: str = "model",
    expect: str = "",
) -> dict[str, Any]:
    """The manifest of the cache entry ``entry``, building it first if it is missing or stale.

    ``build(tmp_dir, metadata)`` writes the entry's files into a temporary folder and may add to
    ``metadata`` (a copy), which is stored in the manifest. Concurrent processes wait on the
    entry's lock, so each entry is built once. Building is announced once on the
    ``rmbg.setup`` logger (which the CLI shows by default), with ``expect``: how long it takes.
    """
    with locked(entry.with_name(entry.name + ".lock")):
        manifest = read_manifest(entry)
        if manifest is not None:
            logger.debug("using cached %s %s", what, entry)
            return manifest
        setup_logger.info(
            "building the %s, once%s; later runs start from the cache (%s)",
            what,
            f" ({expect})" if expect else "",
            entry.parent,
        )
        extra = dict(metadata)
        return write_entry(entry, lambda tmp: build(tmp, extra), metadata=extra)
