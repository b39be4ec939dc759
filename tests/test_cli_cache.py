"""``rmbg cache list|clear|verify`` (issue 10 fault 1, issue 11 item 10): where the cache is, what
is in it and how big, removal that never touches an entry another process is writing, a full
re-hash that finds what a normal read trusts, and repairs it.

The entries are made with the library's own :func:`rmbg.cache.write_entry` (no conversion: the
command only reads manifests, sizes and bytes).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from rmbg import cache
from rmbg.cli import main
from rmbg.cli.cache import parse_duration

F32, INT8 = "a" * 24, "b" * 24


def _entry(root: Path, key: str, precision: str, size: int) -> dict:
    def build(folder: Path) -> None:
        (folder / "model.xml").write_bytes(b"<net/>")
        (folder / "model.bin").write_bytes(b"w" * size)

    parts = {"weights": "1e6e1492" + "0" * 56, "ir_precision": precision}
    parts |= {"openvino": "2026.4.1-22982-abc", "rmbg": "0.1.0"}
    return cache.write_entry(root / "ir" / key, build, metadata={"key": parts})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two converted models (f32 with compiled blobs, int8) and orphaned blobs."""
    root = tmp_path / "cache"
    manifest = _entry(root, F32, "f32", 1000)
    _entry(root, INT8, "int8", 300)
    blobs = cache.blob_cache_dir(root, cache.entry_digest(manifest))
    blobs.mkdir(parents=True)
    (blobs / "x.blob").write_bytes(b"c" * 500)
    (root / "ov" / ("f" * 24)).mkdir()
    (root / "ov" / ("f" * 24) / "y.blob").write_bytes(b"c" * 7)
    return root


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_list_says_where_the_cache_is_with_kinds_and_sizes(root, capsys, monkeypatch):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(root))  # the default location: $RMBG_CACHE_DIR
    assert main(["cache", "list", "--json"]) == 0
    report = _json(capsys)
    assert report["path"] == str(root) and report["exists"]
    by_name = {e["name"]: e for e in report["entries"]}
    f32, int8 = by_name[F32], by_name[INT8]
    assert (f32["kind"], f32["status"], f32["bytes"]) == ("ir", "ok", _size(root / "ir" / F32))
    assert f32["what"] == "IR f32 of weights 1e6e1492, OpenVINO 2026.4.1, rmbg 0.1.0"
    assert int8["what"].startswith("IR int8 (INT8, quantized) of weights 1e6e1492")
    blobs = [e for e in report["entries"] if e["kind"] == "blobs"]
    assert sorted((e["what"], e["bytes"], e["status"]) for e in blobs) == [
        ("compiled blobs of IR " + F32, 500, "ok"),
        ("compiled blobs of an IR no longer in the cache", 7, "orphaned"),
    ]
    assert report["bytes"] == _size(root)  # every byte of the cache is accounted for
    assert main(["cache", "list"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"rmbg cache: {root} (")
    assert f"{F32}" in text and "compiled blobs of IR" in text


def test_list_of_a_cache_not_created_yet(tmp_path, capsys):
    assert main(["cache", "list", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "(0 B in 0 entries, not created yet)" in capsys.readouterr().out


def test_clear_one_key_by_prefix_takes_its_blobs_too(root, capsys):
    blobs = next(p for p in (root / "ov").iterdir() if p.name != "f" * 24)
    assert main(["cache", "clear", F32[:8], "--cache-dir", str(root), "--json"]) == 0
    report = _json(capsys)
    assert sorted(report["removed"]) == sorted([str(root / "ir" / F32), str(blobs)])
    assert report["bytes_freed"] > 1500
    assert (root / "ir" / INT8).is_dir() and not (root / "ir" / F32).exists()
    assert main(["cache", "clear", "zz", "--cache-dir", str(root)]) == 2
    assert "no converted model has the key 'zz'" in capsys.readouterr().err


def test_clear_older_than_goes_by_when_the_entry_was_written(root, capsys):
    old = time.time() - 40 * 86400
    os.utime(root / "ir" / INT8, (old, old))
    args = ["cache", "clear", "--older-than", "30d", "--cache-dir", str(root)]
    assert main([*args, "--dry-run"]) == 0
    assert str(root / "ir" / INT8) in capsys.readouterr().out
    assert (root / "ir" / INT8).is_dir()  # a dry run removes nothing
    assert main(args) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not (root / "ir" / INT8).exists() and (root / "ir" / F32).is_dir()
    assert main(args) == 0  # nothing that old left: nothing removed (not everything!)
    assert (root / "ir" / F32).is_dir()


def test_clear_keeps_an_entry_whose_lock_another_process_holds(root, capsys):
    with open(root / "ir" / f"{F32}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a process converting F32 right now holds it
        assert main(["cache", "clear", "--cache-dir", str(root), "--json"]) == 0
        report = _json(capsys)
    assert report["kept"] == [
        {"path": str(root / "ir" / F32), "reason": "another process is writing it"}
    ]
    assert (root / "ir" / F32).is_dir() and not (root / "ir" / INT8).exists()
    assert not (root / "ov" / ("f" * 24)).exists()


def test_verify_finds_what_a_normal_read_trusts_and_repairs_it(root, capsys):
    """Bytes changed under an unchanged stat (bit rot, a raw write): only a full re-hash sees
    it. verify exits 1 naming the file; --repair removes the entry (converted again on next
    use) and exits 0."""
    manifest_path = root / "ir" / INT8 / "manifest.json"
    data = json.loads(manifest_path.read_text())
    data["files"]["model.bin"]["sha256"] = "0" * 64  # as if model.bin's bytes had rotted
    manifest_path.write_text(json.dumps(data))
    assert cache.read_manifest(root / "ir" / INT8) is not None  # a normal read trusts it
    assert main(["cache", "verify", "--cache-dir", str(root), "--json"]) == 1
    report = _json(capsys)
    status = {e["name"]: (e["status"], e["problem"]) for e in report["entries"]}
    assert status[F32] == ("ok", None)
    assert status[INT8][0] == "corrupt" and "model.bin" in status[INT8][1]
    assert not report["ok"] and (root / "ir" / INT8).is_dir()  # reported, not touched
    assert main(["cache", "verify", "--cache-dir", str(root)]) == 1
    assert "run `rmbg cache verify --repair`" in capsys.readouterr().out
    assert main(["cache", "verify", "--repair", "--cache-dir", str(root)]) == 0
    text = capsys.readouterr().out
    assert f"removed {root / 'ir' / INT8} (converted again on next use)" in text
    assert not (root / "ir" / INT8).exists() and (root / "ir" / F32).is_dir()
    assert main(["cache", "verify", "--cache-dir", str(root)]) == 0


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("2w", 1209600)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_and_contradictory_flags_are_usage_errors(root, capsys):
    assert main(["cache", "clear", "--older-than", "soon", "--cache-dir", str(root)]) == 2
    assert "expected a duration such as 90s" in capsys.readouterr().err
    assert main(["cache", "clear", "--stale", F32, "--cache-dir", str(root)]) == 2
    assert "--stale excludes" in capsys.readouterr().err
    assert (root / "ir" / F32).is_dir()
