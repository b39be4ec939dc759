"""``rmbg cache list|clear|verify``: what rmbg's cache of converted models holds, where it is,
how big; remove entries safely; re-hash every entry and remove the damaged ones.

A thin adapter over :mod:`rmbg.cache`'s housekeeping (:func:`~rmbg.cache.list_entries`,
:func:`~rmbg.cache.verify`, :func:`~rmbg.cache.clear`): the library takes each entry's lock before
removing it and keeps an entry another process is writing. ``--older-than`` is decided here from
the entries' modification times (when they were written: rmbg records no use, and reading must
work on a read-only cache) and handed to the library as keys.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .flags import add_log_arguments
from .runtime import EXIT_FAILED, EXIT_OK, UsageError, human_bytes, jsonable

if TYPE_CHECKING:
    from ..cache import CacheEntry

__all__ = ["add_arguments", "parse_duration", "run"]

_EXAMPLES = """\
examples:
  rmbg cache list                       # where the cache is, each entry with size and kind
  rmbg cache clear --older-than 30d     # converted models written more than 30 days ago
  rmbg cache clear 4ac8d976             # one converted model (a unique key prefix is enough)
  rmbg cache clear --stale              # only what is of no use (leftovers, broken, orphaned)
  rmbg cache clear                      # everything but what another process is writing
  rmbg cache verify --repair            # re-hash every byte; remove damaged entries
"""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 15m, 12h, 30d or 2w, not {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache (default: $RMBG_CACHE_DIR, else $XDG_CACHE_HOME/rmbg or ~/.cache/rmbg)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_log_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EXAMPLES
    parser.set_defaults(verbose=0, quiet=False)  # each action has the log flags
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="where the cache is; each entry with its size and kind")
    _common(p)
    p = actions.add_parser(
        "clear",
        help="remove entries (all, some keys, --older-than, --stale); never one being written",
    )
    p.add_argument(
        "keys", nargs="*", metavar="KEY", help="converted models to remove (a unique prefix)"
    )
    p.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="AGE",
        help="converted models (and their compiled blobs) written more than AGE ago: 90s, "
        "15m, 12h, 30d, 2w",
    )
    p.add_argument(
        "--stale",
        action="store_true",
        help="only what is of no use: leftovers of killed conversions, broken entries, "
        "compiled blobs of models no longer cached",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be removed, remove nothing"
    )
    _common(p)
    p = actions.add_parser(
        "verify", help="re-hash every converted model against its manifest (reads every byte)"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove the damaged entries (each is converted again on next use)",
    )
    _common(p)


def _describe(entry: CacheEntry, owners: dict[str, str]) -> str:
    """What an entry is, in words: ``IR int8 (INT8) of weights 1e6e1492, OpenVINO 2026.4``."""
    if entry.kind == "ir":
        key = entry.key
        if not key:
            return "IR whose manifest cannot be read (an older rmbg's, or damaged)"
        precision = str(key.get("ir_precision", "?"))
        what = f"IR {precision}" + (" (INT8, quantized)" if precision == "int8" else "")
        weights = str(key.get("weights", "?"))[:8]
        openvino = str(key.get("openvino", "?")).split("-")[0]
        return f"{what} of weights {weights}, OpenVINO {openvino}, rmbg {key.get('rmbg', '?')}"
    if entry.kind == "blobs":
        owner = owners.get(entry.path.name)
        if owner is not None:
            return f"compiled blobs of IR {owner}"
        if entry.path.name.startswith("model-"):
            return "compiled blobs of an IR used in place (--model model.xml)"
        return "compiled blobs of an IR no longer in the cache"
    if entry.kind == "temporary":
        return "a conversion being written, or left by a killed one"
    return "sha256 memo of large weight files"


def _row(entry: CacheEntry, owners: dict[str, str], now: float) -> dict[str, Any]:
    try:
        age = now - entry.path.stat().st_mtime
    except OSError:
        age = None
    return {
        "name": entry.path.name,
        "path": str(entry.path),
        "kind": entry.kind,
        "what": _describe(entry, owners),
        "bytes": entry.size,
        "status": entry.status,
        "problem": entry.problem,
        "age_seconds": None if age is None else round(age, 1),
        "key": jsonable(dict(entry.key)),
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _print_rows(rows: Sequence[dict[str, Any]]) -> None:
    for r in rows:
        status = r["status"] + (f": {r['problem']}" if r["problem"] else "")
        print(
            f"  {r['name']:<30} {human_bytes(r['bytes']):>9} {_age(r['age_seconds']):>4}  {r['what']}"
        )
        if r["status"] != "ok":
            print(f"  {'':<30} {'':>9} {'':>4}  {status}")


def _list(root: Path, args: argparse.Namespace) -> int:
    from ..cache import list_entries

    entries = list_entries(root)
    owners = {e.digest: e.path.name for e in entries if e.digest is not None}
    now = time.time()
    rows = [_row(e, owners, now) for e in entries]
    total = sum(e.size for e in entries)
    if args.json:
        report = {"path": str(root), "exists": root.is_dir(), "bytes": total, "entries": rows}
        print(json.dumps(report, indent=2))
        return EXIT_OK
    where = "" if root.is_dir() else ", not created yet"
    print(f"rmbg cache: {root} ({human_bytes(total)} in {len(rows)} entries{where})")
    _print_rows(rows)
    if rows:
        print("remove with `rmbg cache clear` (all), `--older-than 30d`, `--stale` or a KEY")
    return EXIT_OK


def _resolve_keys(wanted: Sequence[str], entries: Sequence[CacheEntry]) -> list[str]:
    keys = sorted(e.path.name for e in entries if e.kind == "ir")
    chosen = []
    for text in wanted:
        matches = [k for k in keys if k.startswith(text.lower())]
        if len(matches) != 1:
            why = "no converted model has" if not matches else "several converted models have"
            raise UsageError(f"{why} the key {text!r} (see `rmbg cache list`)")
        chosen.append(matches[0])
    return chosen


def _clear(root: Path, args: argparse.Namespace) -> int:
    from ..cache import clear, list_entries

    if args.stale and (args.keys or args.older_than is not None):
        raise UsageError("--stale excludes KEYs and --older-than")
    entries = list_entries(root)
    keys: list[str] | None = None
    if args.keys:
        keys = _resolve_keys(args.keys, entries)
    if args.older_than is not None:
        cutoff = time.time() - args.older_than
        old = [e.path.name for e in entries if e.kind == "ir" and _mtime(e.path) < cutoff]
        keys = old if keys is None else [k for k in keys if k in old]
    if args.dry_run:
        return _dry_run(root, entries, keys, args)
    if keys is not None and not keys:
        report_removed: list[str] = []
        freed, kept = 0, []
    else:
        report = clear(root, keys=keys, stale_only=args.stale)
        report_removed = [str(p) for p in report.removed]
        freed, kept = report.freed, [{"path": str(p), "reason": r} for p, r in report.kept]
    return _report(
        args,
        {"path": str(root), "removed": report_removed, "bytes_freed": freed, "kept": kept},
        f"removed {len(report_removed)} entries, {human_bytes(freed)} freed from {root}",
        [f"kept {k['path']}: {k['reason']}" for k in kept],
    )


def _report(args: argparse.Namespace, data: dict[str, Any], headline: str, lines: list[str]) -> int:
    """``data`` as JSON with ``--json``, else the headline and its indented lines."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(headline)
        for line in lines:
            print(f"  {line}")
    return EXIT_OK


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to remove


def _dry_run(
    root: Path, entries: Sequence[CacheEntry], keys: list[str] | None, args: argparse.Namespace
) -> int:
    """What :func:`rmbg.cache.clear` would remove, by the same rules (nothing is locked)."""
    blobs_of = {e.path.name: e.digest for e in entries if e.digest is not None}
    chosen: list[CacheEntry] = []
    for e in entries:
        if keys is not None:
            picked = e.kind == "ir" and e.path.name in keys
            picked = picked or (
                e.kind == "blobs" and e.path.name in {blobs_of.get(k) for k in keys}
            )
        elif args.stale:
            picked = e.status in ("invalid", "stale", "orphaned")
        else:
            picked = e.status != "in use"
        if picked:
            chosen.append(e)
    total = sum(e.size for e in chosen)
    paths = [str(e.path) for e in chosen]
    return _report(
        args,
        {"path": str(root), "would_remove": paths, "bytes": total},
        f"would remove {len(chosen)} entries, {human_bytes(total)} from {root}",
        paths,
    )


def _verify(root: Path, args: argparse.Namespace) -> int:
    from ..cache import clear, verify

    started = time.perf_counter()
    entries = verify(root)
    now = time.time()
    rows = [_row(e, {}, now) for e in entries]
    bad = [e for e in entries if e.status != "ok"]
    repaired: list[str] = []
    kept: list[dict[str, str]] = []
    if args.repair and bad:
        report = clear(root, keys=[e.path.name for e in bad])
        repaired = [str(p) for p in report.removed if p.parent.name == "ir"]
        kept = [{"path": str(p), "reason": r} for p, r in report.kept]
    remaining = [e for e in bad if str(e.path) not in repaired]
    seconds = time.perf_counter() - started
    if args.json:
        out = {
            "path": str(root),
            "ok": not remaining,
            "entries": rows,
            "repaired": repaired,
            "kept": kept,
            "seconds": round(seconds, 3),
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"rmbg cache: {root}: {len(entries)} converted models re-hashed in {seconds:.1f} s")
        for r in rows:
            line = f"  {r['name']:<26} {human_bytes(r['bytes']):>9}  {r['status']}"
            print(line + (f": {r['problem']}" if r["problem"] else ""))
        for path in repaired:
            print(f"  removed {path} (converted again on next use)")
        for k in kept:
            print(f"  kept {k['path']}: {k['reason']}")
        if remaining:
            print(f"{len(remaining)} damaged; run `rmbg cache verify --repair` to remove them")
        else:
            print("cache: ok" if not bad else "cache: repaired")
    return EXIT_FAILED if remaining else EXIT_OK


def run(args: argparse.Namespace) -> int:
    from ..cache import default_cache_dir

    root = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    action: str = args.action
    if action == "list":
        return _list(root, args)
    if action == "clear":
        return _clear(root, args)
    return _verify(root, args)
