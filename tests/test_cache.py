"""The conversion cache: keys, atomic entries, locking across processes, corrupt entries rebuilt."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from rmbg import cache
from rmbg.errors import CacheError


def _build(content: bytes):
    def build(folder: Path) -> None:
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


def test_full_check_catches_same_size_corruption(tmp_path):
    entry = tmp_path / "k"
    cache.write_entry(entry, _build(b"w" * 100), metadata={}, check_below=10)
    (entry / "model.bin").write_bytes(b"x" * 100)
    assert cache.read_manifest(entry) is not None  # size-only check for big files
    assert cache.read_manifest(entry, full_check=True) is None


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
