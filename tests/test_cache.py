"""The conversion cache: keys, atomic entries, locking across processes, corrupt entries rebuilt."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from rmbg import cache
from rmbg.cache import _store
from rmbg.errors import CacheError


def _build(content: bytes):
    def build(folder: Path, metadata: object = None) -> None:
        (folder / "model.xml").write_bytes(b"<xml/>")
        (folder / "model.bin").write_bytes(content)

    return build


def test_key_is_stable_and_sensitive_to_every_part():
    parts = {
        "weights": "abc",
        "spec": "s",
        "input_shape": [1, 3, 1024, 1024],
        "rmbg": "1",
        "openvino": "2",
    }
    key = cache.cache_key(parts)
    assert key == cache.cache_key(dict(reversed(list(parts.items()))))
    for name in parts:
        changed = dict(parts, **{name: "other"})
        assert cache.cache_key(changed) != key, name


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "x"))
    assert cache.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("RMBG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_cache_dir() == tmp_path / "xdg" / "rmbg"


def test_entry_round_trip_and_manifest(tmp_path):
    entry = tmp_path / "ir" / "k"
    manifest = cache.write_entry(entry, _build(b"w" * 100), metadata={"key": {"a": 1}})
    assert cache.read_manifest(entry) == manifest
    assert manifest["files"]["model.bin"]["size"] == 100
    assert manifest["key"] == {"a": 1}
    assert sorted(p.name for p in entry.parent.iterdir()) == ["k"]  # no temporary left behind


@pytest.mark.parametrize(
    "damage",
    ["truncate_bin", "flip_xml", "drop_manifest", "garbage_manifest", "drop_bin"],
)
def test_damaged_entry_is_detected(tmp_path, damage):
    entry = tmp_path / "k"
    cache.write_entry(entry, _build(b"w" * 100), metadata={})
    if damage == "truncate_bin":
        (entry / "model.bin").write_bytes(b"w" * 50)
    elif damage == "flip_xml":
        (entry / "model.xml").write_bytes(b"<xmk/>")
    elif damage == "drop_manifest":
        (entry / "manifest.json").unlink()
    elif damage == "garbage_manifest":
        (entry / "manifest.json").write_text("{not json")
    elif damage == "drop_bin":
        (entry / "model.bin").unlink()
    assert cache.read_manifest(entry) is None
    # and rebuilding replaces it with a valid entry
    cache.write_entry(entry, _build(b"w" * 100), metadata={})
    assert cache.read_manifest(entry) is not None


def test_same_size_overwrite_of_a_large_file_is_caught_on_a_normal_read(tmp_path):
    """Fault 1: a 17 MiB file overwritten in place with other bytes of the same size."""
    entry = tmp_path / "k"
    cache.write_entry(entry, _build(b"w" * (17 << 20)), metadata={})
    with (entry / "model.bin").open("r+b") as f:
        f.seek(5 << 20)
        f.write(b"x" * 64)
    assert (entry / "model.bin").stat().st_size == 17 << 20
    assert cache.read_manifest(entry) is None


def test_an_untouched_entry_is_trusted_without_hashing(tmp_path, monkeypatch):
    entry = tmp_path / "k"
    written = cache.write_entry(entry, _build(b"w" * 1000), metadata={"a": 1})
    hashed: list[Path] = []
    real = _store.sha256_file
    monkeypatch.setattr(_store, "sha256_file", lambda p: hashed.append(p) or real(p))
    assert cache.read_manifest(entry) == written
    assert hashed == []  # one stat per file, no read
    # a file whose stat changed but not its bytes (copied, touched) is re-hashed once,
    # and its new stat recorded so that the next read is cheap again
    os.utime(entry / "model.bin", ns=(1, 1))
    assert cache.read_manifest(entry) is not None
    assert [p.name for p in hashed] == ["model.bin"]
    assert cache.read_manifest(entry) is not None
    assert len(hashed) == 1


def test_files_and_folder_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", (st.st_dev, st.st_ino)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    entry = tmp_path / "ir" / "k"
    cache.write_entry(entry, _build(b"w" * 100), metadata={})
    synced = [ident for kind, ident in events if kind == "fsync"]
    before_rename = synced[: [e[0] for e in events].index("replace")]

    def ident(p: Path) -> tuple[int, int]:
        st = p.stat()
        return (st.st_dev, st.st_ino)

    for p in (entry / "model.xml", entry / "model.bin", entry / "manifest.json", entry):
        assert ident(p) in before_rename, p.name
    assert events[-1] == ("fsync", ident(entry.parent))  # and the rename itself


def test_verify_rehashes_what_a_normal_read_trusts(tmp_path):
    """Damage the filesystem cannot see (the stat still matches): only verify() finds it."""
    root = tmp_path
    good, bad = root / "ir" / ("a" * 24), root / "ir" / ("b" * 24)
    cache.write_entry(good, _build(b"w" * 100), metadata={"key": {"n": 1}})
    cache.write_entry(bad, _build(b"w" * 100), metadata={"key": {"n": 2}})
    data = json.loads((bad / "manifest.json").read_text())
    data["files"]["model.bin"]["sha256"] = "0" * 64  # as if the bytes had rotted on the disk
    (bad / "manifest.json").write_text(json.dumps(data))
    assert cache.read_manifest(bad) is not None  # by design: stat unchanged, no re-hash
    assert cache.read_manifest(bad, full_check=True) is None
    report = {e.path.name: e for e in cache.verify(root)}
    assert report[good.name].status == "ok" and report[good.name].problem is None
    assert report[bad.name].status == "corrupt"
    assert "model.bin" in (report[bad.name].problem or "")
    assert report[good.name].key == {"n": 1}
    assert report[good.name].size == sum(p.stat().st_size for p in good.iterdir())


def test_failed_build_leaves_nothing(tmp_path):
    def boom(folder: Path) -> None:
        (folder / "model.bin").write_bytes(b"partial")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError, match="converter crashed"):
        cache.write_entry(tmp_path / "k", boom, metadata={})
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="RMBG_CACHE_DIR"):
        cache.write_entry(blocker / "k", _build(b"w"), metadata={})


def _convert_once(root: str, log: str) -> None:
    entry = Path(root) / "k"
    with cache.locked(Path(root) / "k.lock"):
        if cache.read_manifest(entry) is None:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(0.3)  # a slow conversion, so the other process has to wait on the lock
            cache.write_entry(entry, _build(b"w" * 1000), metadata={"pid": os.getpid()})


def test_two_processes_converting_at_once_build_once(tmp_path):
    log = tmp_path / "log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_convert_once, args=(str(tmp_path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1
    manifest = cache.read_manifest(tmp_path / "k")
    assert manifest is not None
    assert json.loads((tmp_path / "k" / "manifest.json").read_text())["pid"] == manifest["pid"]


def test_lock_timeout_says_what_to_do(tmp_path):
    import filelock

    held = filelock.FileLock(str(tmp_path / "k.lock"))
    with (
        held,
        pytest.raises(CacheError, match="delete the lock file"),
        cache.locked(tmp_path / "k.lock", timeout=0.2),
    ):
        pass


# -- fault 6: any manifest that is not exactly what rmbg writes means "rebuild" --------------------
def _valid_manifest(tmp_path: Path) -> tuple[Path, dict]:
    entry = tmp_path / "k"
    cache.write_entry(entry, _build(b"w" * 100), metadata={"key": {"a": 1}})
    return entry, json.loads((entry / "manifest.json").read_text())


def _files(m):
    return m["files"]


MALFORMED = {
    "empty object": lambda m: {},
    "array": lambda m: [m],
    "null": lambda m: None,
    "files as a list": lambda m: {**m, "files": list(_files(m).values())},
    "files empty": lambda m: {**m, "files": {}},
    "no files": lambda m: {k: v for k, v in m.items() if k != "files"},
    "no format": lambda m: {k: v for k, v in m.items() if k != "format"},
    "old format": lambda m: {**m, "format": 1},
    "format true": lambda m: {**m, "format": True},
    "weights not listed": lambda m: {**m, "files": {"model.xml": _files(m)["model.xml"]}},
    "size as text": lambda m: _edit(m, "size", "100"),
    "size as bool": lambda m: _edit(m, "size", True),
    "negative size": lambda m: _edit(m, "size", -1),
    "sha256 not hex": lambda m: _edit(m, "sha256", "z" * 64),
    "sha256 as int": lambda m: _edit(m, "sha256", 7),
    "record as list": lambda m: {**m, "files": {**_files(m), "model.bin": [100]}},
    "extra field": lambda m: _edit(m, "check", True),
    "stat missing": lambda m: _edit(m, "stat", None),
    "stat as list": lambda m: _edit(m, "stat", [1, 2, 3]),
    "stat float": lambda m: _edit(m, "stat", {"mtime_ns": 1.5, "ino": 1, "ctime_ns": 1}),
    "path escape": lambda m: {**m, "files": {**_files(m), "../model.bin": _files(m)["model.bin"]}},
    "wrong key": lambda m: {**m, "key": {"a": 2}},
    "key missing": lambda m: {k: v for k, v in m.items() if k != "key"},
}


def _edit(m, field, value):
    files = json.loads(json.dumps(m["files"]))
    if value is None:
        del files["model.bin"][field]
    else:
        files["model.bin"][field] = value
    return {**m, "files": files}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_manifest_means_rebuild(tmp_path, name):
    entry, manifest = _valid_manifest(tmp_path)
    (entry / "manifest.json").write_text(json.dumps(MALFORMED[name](manifest)))
    required = ("model.xml", "model.bin")
    assert cache.read_manifest(entry, required=required, expect={"key": {"a": 1}}) is None
    built: list[Path] = []

    def build(folder: Path, metadata: object = None) -> None:
        built.append(folder)
        _build(b"w" * 100)(folder)

    got = cache.get_or_build(entry, build, metadata={"key": {"a": 1}}, required=required)
    assert len(built) == 1 and got["key"] == {"a": 1}
    assert cache.read_manifest(entry, required=required, expect={"key": {"a": 1}}) == got


def test_a_valid_manifest_passes_the_strict_check(tmp_path):
    entry, manifest = _valid_manifest(tmp_path)
    got = cache.read_manifest(entry, required=("model.xml", "model.bin"), expect={"key": {"a": 1}})
    assert got == manifest


# -- fault 4: read-only and unusable cache folders -------------------------------------------------
@pytest.fixture
def read_only(monkeypatch):
    """Make every write under the folders given to it fail with EROFS, as on a read-only mount
    (tests run as root here, where permission bits do not stop writes)."""
    import builtins
    import errno
    import io

    roots: list[str] = []

    def blocked(path) -> bool:
        try:
            p = os.path.abspath(os.fspath(path))
        except TypeError:
            return False
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    def guard(real, writes=lambda *a, **k: True, paths=1):
        def wrapper(*args, **kwargs):
            if writes(*args, **kwargs) and any(blocked(a) for a in args[:paths]):
                refuse(args[0])
            return real(*args, **kwargs)

        return wrapper

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def mode_writes(file, mode="r", *a, **k):
        return any(c in mode for c in "wax+")

    monkeypatch.setattr(os, "open", guard(os.open, lambda p, flags, *a, **k: flags & write_flags))
    for name in ("mkdir", "rmdir", "unlink", "remove"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), paths=2))
    monkeypatch.setattr(builtins, "open", guard(builtins.open, mode_writes))
    monkeypatch.setattr(io, "open", guard(io.open, mode_writes))
    return lambda path: roots.append(os.path.abspath(path))


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(root.rglob("*"))
    }


def test_complete_entry_is_read_without_a_lock_or_any_write(tmp_path, read_only):
    entry = tmp_path / "ir" / ("a" * 24)
    written = cache.get_or_build(
        entry, _build(b"w" * 100), metadata={"key": 1}, required=("model.bin",)
    )
    (tmp_path / "ir" / ("a" * 24 + ".lock")).unlink()
    before = _tree(tmp_path)
    read_only(tmp_path)

    def must_not_build(folder: Path, metadata: object = None) -> None:
        raise AssertionError("a complete entry was rebuilt")

    got = cache.get_or_build(entry, must_not_build, metadata={"key": 1}, required=("model.bin",))
    assert got == written
    assert _tree(tmp_path) == before  # no lock file, nothing written


def test_empty_read_only_cache_says_what_to_do(tmp_path, read_only):
    root = tmp_path / "cache"
    root.mkdir()
    read_only(root)
    with pytest.raises(CacheError) as info:
        cache.get_or_build(root / "ir" / "k", _build(b"w"), metadata={})
    message = str(info.value)
    assert str(root / "ir") in message and "not writable" in message
    assert "RMBG_CACHE_DIR" in message and "read-only" in message
    assert isinstance(info.value.__cause__, OSError)


def test_cache_root_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError) as info:
        cache.get_or_build(blocker / "ir" / "k", _build(b"w"), metadata={})
    assert f"{blocker} is a file, not a folder" in str(info.value)
    assert "RMBG_CACHE_DIR" in str(info.value)
    assert blocker.read_text() == "not a folder"


# -- fault 5: disk full while writing an entry -----------------------------------------------------
@pytest.mark.parametrize("failure", ["ENOSPC", "EDQUOT", "openvino-iostream"])
def test_disk_full_is_a_cache_error_and_leaves_nothing(tmp_path, monkeypatch, failure):
    import errno
    import shutil

    def build(folder: Path, metadata: object = None) -> None:
        (folder / "model.xml").write_bytes(b"<xml/>")
        (folder / "model.bin").write_bytes(b"partial")
        if failure == "openvino-iostream":
            # what ov.save_model raises on a full disk (it also deletes its partial files)
            monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(9, 9, 1))
            raise RuntimeError("basic_ios::clear: iostream error")
        raise OSError(getattr(errno, failure), os.strerror(getattr(errno, failure)))

    ir = tmp_path / "ir"
    with pytest.raises(CacheError, match=rf"No space left on {ir}") as info:
        cache.get_or_build(ir / "k", build, metadata={}, needs_bytes=1000)
    assert "RMBG_CACHE_DIR" in str(info.value)
    assert info.value.__cause__ is not None
    assert sorted(p.name for p in ir.iterdir()) == ["k.lock"]  # no partial entry, no temporary


def test_a_failed_write_with_room_left_is_still_a_cache_error(tmp_path):
    """OpenVINO's writer gives no reason; with room left after its cleanup, say what we know."""

    def build(folder: Path, metadata: object = None) -> None:
        raise RuntimeError("Exception from serialize.cpp:1300:\nbasic_ios::clear: iostream error")

    with pytest.raises(CacheError) as info:
        cache.write_entry(tmp_path / "k", build, metadata={}, needs_bytes=10)
    message = str(info.value)
    assert f"Writing the converted model into {tmp_path} failed" in message
    assert "(basic_ios::clear: iostream error)" in message and "probably full or failing" in message
    assert list(tmp_path.iterdir()) == []


def test_other_build_errors_pass_through(tmp_path):
    def build(folder: Path, metadata: object = None) -> None:
        raise RuntimeError("Model conversion failed: unsupported operation aten::foo")

    with pytest.raises(RuntimeError, match="aten::foo") as info:
        cache.write_entry(tmp_path / "k", build, metadata={}, needs_bytes=10)
    assert not isinstance(info.value, CacheError)
    assert list(tmp_path.iterdir()) == []


def test_too_little_space_is_refused_before_converting(tmp_path):
    def build(folder: Path, metadata: object = None) -> None:
        raise AssertionError("should not start")

    with pytest.raises(CacheError, match=r"No space left on .* needs about"):
        cache.write_entry(tmp_path / "k", build, metadata={}, needs_bytes=1 << 60)


# -- fault 9: temporaries left by killed conversions -----------------------------------------------
KEY = "c" * 24


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftover(ir: Path, name: str, age_s: float = 0.0) -> Path:
    p = ir / name
    p.mkdir(parents=True)
    (p / "model.bin").write_bytes(b"x" * 10)
    if age_s:
        t = time.time() - age_s
        os.utime(p, (t, t))
    return p


def test_stale_temporaries_are_removed_when_the_key_is_converted(tmp_path):
    ir = tmp_path / "ir"
    dead = _leftover(ir, f".{KEY}.{_dead_pid()}.abc123.tmp")
    half_removed = _leftover(ir, f".{KEY}.old.{_dead_pid()}")
    old_unknown = _leftover(ir, f".{KEY}.zz9_q.tmp", age_s=cache._store.STALE_AFTER_S + 60)
    live = _leftover(ir, f".{KEY}.{os.getppid()}.def456.tmp")  # a running process's
    young_unknown = _leftover(ir, f".{KEY}.q1w2e3.tmp")

    def build(
        folder: Path, metadata: object = None
    ) -> None:  # removed first: they may be what filled the disk
        assert not dead.exists() and not half_removed.exists() and not old_unknown.exists()
        _build(b"w")(folder)

    cache.get_or_build(ir / KEY, build, metadata={})
    assert not dead.exists() and not half_removed.exists() and not old_unknown.exists()
    assert live.exists() and young_unknown.exists()
    assert cache.read_manifest(ir / KEY) is not None


def test_clean_stale_leaves_a_key_being_converted_alone(tmp_path):
    import fcntl

    ir = tmp_path / "ir"
    other = "d" * 24
    busy = _leftover(ir, f".{KEY}.{_dead_pid()}.abc.tmp")
    idle = _leftover(ir, f".{other}.{_dead_pid()}.abc.tmp")
    with open(ir / f"{KEY}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process converting KEY right now
        assert cache.clean_stale(tmp_path) == [idle]
    assert busy.exists() and not idle.exists()
    assert cache.clean_stale(tmp_path) == [busy]


# -- housekeeping: list, verify, clear -------------------------------------------------------------
def test_list_and_clear(tmp_path):
    ir = tmp_path / "ir"
    good = ir / ("a" * 24)
    touched = ir / ("b" * 24)
    broken = ir / ("e" * 24)
    m_good = cache.write_entry(good, _build(b"w" * 100), metadata={"key": {"n": 1}})
    cache.write_entry(touched, _build(b"w" * 200), metadata={"key": {"n": 2}})
    cache.write_entry(broken, _build(b"w" * 300), metadata={})
    os.utime(touched / "model.bin", ns=(5, 5))
    (broken / "model.bin").unlink()
    stale = _leftover(ir, f".{KEY}.{_dead_pid()}.abc.tmp")
    live = _leftover(ir, f".{KEY}.{os.getppid()}.def.tmp")
    blobs = cache.blob_cache_dir(tmp_path, cache.entry_digest(m_good))
    blobs.mkdir(parents=True)
    (blobs / "x.blob").write_bytes(b"b" * 50)
    orphan = tmp_path / "ov" / ("f" * 24)
    orphan.mkdir()
    (orphan / "y.blob").write_bytes(b"b" * 7)
    (tmp_path / "digests.json").write_text("{}")

    listed = {e.path: e for e in cache.list_entries(tmp_path)}
    assert {p: (e.kind, e.status) for p, e in listed.items()} == {
        good: ("ir", "ok"),
        touched: ("ir", "changed"),
        broken: ("ir", "invalid"),
        stale: ("temporary", "stale"),
        live: ("temporary", "in use"),
        blobs: ("blobs", "ok"),
        orphan: ("blobs", "orphaned"),
        tmp_path / "digests.json": ("digests", "ok"),
    }
    assert listed[good].size == sum(p.stat().st_size for p in good.iterdir())
    assert listed[blobs].size == 50 and listed[good].key == {"n": 1}
    assert listed[good].digest == blobs.name

    report = cache.clear(tmp_path, stale_only=True)
    assert set(report.removed) == {broken, stale, orphan}
    assert report.freed == listed[broken].size + 10 + 7
    assert report.kept == ((live, "another process is writing it"),)

    report = cache.clear(tmp_path, keys=[good.name])
    assert set(report.removed) == {good, blobs}
    assert touched.exists()

    report = cache.clear(tmp_path)
    assert set(report.removed) == {touched, tmp_path / "digests.json"}
    assert [p for p, _ in report.kept] == [live]
    assert {e.path for e in cache.list_entries(tmp_path)} == {live}
