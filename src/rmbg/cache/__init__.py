"""The on-disk cache: where it lives, how entries are keyed, written, validated and cleaned.

Layout under the cache root (``$RMBG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rmbg``, else ``~/.cache/rmbg``)::

    ir/<key>/model.xml, model.bin, manifest.json   converted OpenVINO IRs, one folder per key
    ir/<key>.lock                                  held while converting that key (0 bytes)
    ir/.<key>.<pid>.<random>.tmp                   an entry being written (left by a killed process)
    ov/<digest>/                                   OpenVINO's compiled-blob cache (CACHE_DIR), one
                                                   folder per IR content digest
    digests.json                                   sha256 memo of large weight files (rmbg.weights)

A key hashes everything that changes the converted model (weights digest, model spec, input shape,
IR precision, rmbg and OpenVINO versions), so a cached IR is never reused for other weights or
other library versions.

Integrity: an entry is written into a temporary sibling folder, every file and the folder are
fsynced, and it is moved into place with ``os.replace`` while the key's file lock is held, so two
processes converting at once leave exactly one valid entry and a crash leaves none.
``manifest.json`` is written last; it lists each file's size and sha256 and what the filesystem
said about it at write time (mtime, ctime, inode). A reader trusts a file whose ``stat`` still
matches, and fully re-hashes one whose ``stat`` differs (rebuilding the entry if the bytes
changed): an in-place overwrite, even of the same size, is caught at the cost of one ``stat``
per file. :func:`verify` re-hashes everything (damage below the filesystem, bit rot).

Reading takes no lock and writes nothing, so a complete cache works on a read-only mount. Anything
in a manifest that is not exactly what :func:`write_entry` writes means "rebuild". An entry that
must be built where the cache cannot be written (read-only, a file in the way, a full disk) raises
:class:`~rmbg.errors.CacheError` naming the folder and the fix; rmbg does not fall back to
converting in memory on every run (35 s and about 1 GB each time, silently).

Leftovers of killed conversions (``ir/.<key>.<pid>.*.tmp``) are removed when their key's lock can
be taken and their process is gone (or they are older than :data:`STALE_AFTER_S`): before a key
is converted, and after any conversion for the other keys (:func:`clean_stale`).

Housekeeping (for ``rmbg cache list|verify|clear``): :func:`list_entries` (cheap: manifests and
``stat``), :func:`verify` (re-hashes every byte), :func:`clear` (everything, some keys, or only
what is of no use), each with sizes.
"""

from ._admin import CacheEntry, ClearReport, clear, list_entries, verify
from ._store import (
    STALE_AFTER_S,
    blob_cache_dir,
    cache_key,
    clean_stale,
    default_cache_dir,
    entry_digest,
    get_or_build,
    locked,
    read_manifest,
    setup_logger,
    sha256_file,
    write_entry,
)

__all__ = [
    "STALE_AFTER_S",
    "CacheEntry",
    "ClearReport",
    "blob_cache_dir",
    "cache_key",
    "clean_stale",
    "clear",
    "default_cache_dir",
    "entry_digest",
    "get_or_build",
    "list_entries",
    "locked",
    "read_manifest",
    "setup_logger",
    "sha256_file",
    "verify",
    "write_entry",
]
