"""Housekeeping of the cache: list what is in it, verify it fully, clear it (see :mod:`rmbg.cache`)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from ..errors import CacheError
from ._store import (
    EXTERNAL_PREFIX,
    KEY_PATTERN,
    STALE_AFTER_S,
    EntryStatus,
    default_cache_dir,
    entry_digest,
    inspect_entry,
    is_stale,
    leftover_of,
    locked,
)

__all__ = ["CacheEntry", "ClearReport", "clear", "list_entries", "verify"]

logger = logging.getLogger("rmbg")

EntryKind = Literal["ir", "blobs", "temporary", "digests"]


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One item of the cache, as :func:`list_entries` and :func:`verify` report it.

    Attributes:
        path: The folder (or file).
        kind: ``"ir"`` a converted model; ``"blobs"`` OpenVINO's compiled blobs for one IR;
            ``"temporary"`` an entry being written or left by an interrupted conversion;
            ``"digests"`` rmbg's sha256 memo of large weight files.
        size: Bytes of the files in it.
        status: ``"ok"``; ``"changed"`` (a file's ``stat`` differs from the manifest: it is
            re-hashed on next use, :func:`verify` tells); ``"invalid"`` (no complete manifest,
            a missing file or a wrong size: rebuilt on next use); ``"corrupt"`` (:func:`verify`
            found other bytes than the manifest's); ``"stale"`` / ``"in use"`` for temporaries;
            ``"orphaned"`` for blobs of an IR no longer in the cache.
        key: For an IR, the parts its key hashes (weights digest, precision, versions...), as
            stored in its manifest; else empty.
        problem: Why the status is not ``"ok"``, in words.
        digest: For a usable IR, its content digest: its compiled blobs are in ``ov/<digest>``.
    """

    path: Path
    kind: EntryKind
    size: int
    status: EntryStatus
    key: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    problem: str | None = None
    digest: str | None = None


@dataclasses.dataclass(frozen=True)
class ClearReport:
    """What :func:`clear` did: the paths removed, the bytes freed, and what it kept and why."""

    removed: tuple[Path, ...]
    freed: int
    kept: tuple[tuple[Path, str], ...]


def _size(path: Path) -> int:
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total
    except OSError:
        return 0


def _check_ir(entry: Path, *, full: bool) -> CacheEntry:
    status, problem, data, _ = inspect_entry(entry, rehash="all" if full else "none")
    key = data.get("key") if data is not None else None
    return CacheEntry(
        entry,
        "ir",
        _size(entry),
        status,
        key if isinstance(key, dict) else {},
        problem,
        entry_digest(data) if data is not None else None,
    )


def _entries(root: Path, *, full: bool) -> list[CacheEntry]:
    out: list[CacheEntry] = []
    ir, ov = root / "ir", root / "ov"
    live_blobs = set()
    with contextlib.suppress(OSError):
        for p in sorted(ir.iterdir()) if ir.is_dir() else ():
            found = leftover_of(p.name)
            if found is not None:
                stale = is_stale(p, found[1], STALE_AFTER_S)
                out.append(CacheEntry(p, "temporary", _size(p), "stale" if stale else "in use"))
            elif p.is_dir() and re.fullmatch(KEY_PATTERN, p.name):
                item = _check_ir(p, full=full)
                out.append(item)
                if item.digest is not None:
                    live_blobs.add(item.digest)
    with contextlib.suppress(OSError):
        for p in sorted(ov.iterdir()) if ov.is_dir() else ():
            # blobs of a model used in place (an IR of the user's) live in "model-<digest>"
            used = p.is_dir() and (p.name in live_blobs or p.name.startswith(EXTERNAL_PREFIX))
            out.append(CacheEntry(p, "blobs", _size(p), "ok" if used else "orphaned"))
    sidecar = root / "digests.json"
    if sidecar.is_file():
        out.append(CacheEntry(sidecar, "digests", _size(sidecar), "ok"))
    return out


def list_entries(root: Path | None = None) -> list[CacheEntry]:
    """Everything in the cache, with sizes, checked cheaply (manifests and ``stat`` only).

    Args:
        root: The cache root (default :func:`default_cache_dir`).

    Returns:
        IR entries (status ``"ok"``, ``"changed"`` or ``"invalid"``), temporaries (``"stale"`` or
        ``"in use"``), blob folders and the digest memo, in path order. Nothing is written.
    """
    return _entries(default_cache_dir() if root is None else Path(root), full=False)


def verify(root: Path | None = None) -> list[CacheEntry]:
    """Every IR entry of the cache, fully re-hashed against its manifest.

    Reads every byte (about 0.5 s per converted RMBG-1.4 model) and writes nothing. Damage the
    filesystem cannot see (bit rot, a raw-device write) is found here, not on a normal read.

    Returns:
        One :class:`CacheEntry` per IR folder: ``"ok"``, ``"corrupt"`` or ``"invalid"`` (with
        :attr:`CacheEntry.problem`). Remove the bad ones with ``clear(root, keys=...)``; a
        normal run would also rebuild an ``"invalid"`` one, and a ``"corrupt"`` one whose file
        ``stat`` changed.
    """
    base = default_cache_dir() if root is None else Path(root)
    return [e for e in _entries(base, full=True) if e.kind == "ir"]


def clear(
    root: Path | None = None,
    *,
    keys: Iterable[str] | None = None,
    stale_only: bool = False,
) -> ClearReport:
    """Remove cache entries safely (an entry being written by another process is kept).

    Args:
        root: The cache root (default :func:`default_cache_dir`).
        keys: Only these IR keys (folder names under ``ir/``) and their blobs.
        stale_only: Only what is of no use: stale temporaries, invalid IR entries and orphaned
            blob folders. Default: everything (IRs, blobs, temporaries no process is writing,
            the digest memo). The 0-byte lock files stay: removing one that another process
            waits on would break the lock.

    Returns:
        A :class:`ClearReport`.
    """
    base = default_cache_dir() if root is None else Path(root)
    wanted = None if keys is None else set(keys)
    items = _entries(base, full=False)
    blobs_of = {item.path.name: item.digest for item in items if item.digest is not None}
    removed: list[Path] = []
    kept: list[tuple[Path, str]] = []
    freed = 0
    for item in items:
        owner = _owner_key(item)
        if wanted is not None:
            chosen = owner in wanted or (
                item.kind == "blobs" and item.path.name in {blobs_of.get(k) for k in wanted}
            )
        elif stale_only:
            chosen = item.status in ("invalid", "stale", "orphaned")
        else:
            chosen = item.status != "in use"
        if not chosen:
            if item.status == "in use":
                kept.append((item.path, "another process is writing it"))
            continue
        lock = base / "ir" / f"{owner}.lock" if owner else None
        try:
            with locked(lock, timeout=0) if lock else contextlib.nullcontext():
                if item.path.is_dir():
                    shutil.rmtree(item.path)
                else:
                    item.path.unlink()
        except CacheError as exc:
            busy = isinstance(exc.__cause__, TimeoutError)  # filelock.Timeout
            kept.append((item.path, "another process is writing it" if busy else str(exc)))
            continue
        except OSError as exc:
            kept.append((item.path, f"cannot remove it ({exc.strerror or exc})"))
            continue
        logger.info("removed %s from the cache (%d bytes)", item.path, item.size)
        removed.append(item.path)
        freed += item.size
    return ClearReport(tuple(removed), freed, tuple(kept))


def _owner_key(item: CacheEntry) -> str | None:
    """The IR key whose lock guards ``item`` (None for blobs and the digest memo)."""
    if item.kind == "ir":
        return item.path.name
    if item.kind == "temporary":
        found = leftover_of(item.path.name)
        return found[0] if found else None
    return None
