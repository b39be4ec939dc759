"""``rmbg cutout DIR --watch``: new files processed as they arrive, a file being written read only
once complete, own outputs and temporary files never taken as inputs, a clean stop on SIGINT and
SIGTERM (issue 11). Also the glob patterns' globstar meaning.

The subprocess tests drive the real command line (``tests/fake_cli.py``, the fake backend) with a
short ``--poll``; every wait has a deadline, so a broken watch fails instead of hanging.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rmbg.cli import flags, main
from rmbg.cli.watch import Watcher

from .test_cli import (
    FAKE_CLI,
    assert_complete_image,
    env,
    err,
    fake,
    make_image,
    run,
    stray_files,
    summary,
)

__all__ = ["env", "fake"]  # fixtures shared with test_cli

POLL = "0.2"


@pytest.fixture(autouse=True)
def _offer_fake_backend(monkeypatch):
    monkeypatch.setattr(flags, "HIDDEN_BACKENDS", frozenset())


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(FAKE_CLI), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> tuple[dict, str]:
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return json.loads(stdout), stderr.decode()


# ---------------------------------------------------------------------------------------------
# end to end
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_watch_processes_what_is_there_then_new_files_and_stops_cleanly(
    sig, code, tmp_path, env, fake
):
    inbox = tmp_path / "in"
    make_image(inbox / "old.png", seed=1)
    make_image(tmp_path / "staging" / "new.jpg", seed=2)
    proc = _start(
        ["cutout", "in", "--watch", "--poll", POLL, "--out-dir", "out", "--json", *fake],
        env,
        tmp_path,
    )
    try:
        out = tmp_path / "out"
        _wait_for(lambda: (out / "old.png").exists(), proc, "the file already there")
        # a file moved in, the way a finished download or an upload lands
        (tmp_path / "staging" / "new.jpg").rename(inbox / "new.jpg")
        _wait_for(lambda: (out / "new.png").exists(), proc, "the new file")
        (inbox / ".partial.jpg.tmp").write_bytes(b"ignored: hidden")
        (inbox / "notes.txt").write_text("ignored: not an image")
        time.sleep(4 * float(POLL))
        s, stderr = _stop(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert s["interrupted"] == sig.name and s["failed"] == [] and s["processed"] == 2
    assert [o["input"] for o in s["outputs"]] == ["in/old.png", "in/new.jpg"]
    assert sorted(p.name for p in out.iterdir()) == ["new.png", "old.png"]
    assert not stray_files(out)
    for p in out.iterdir():
        assert assert_complete_image(p).mode == "RGBA"
    assert f"interrupted by {sig.name}" in stderr
    assert "watching in every 0.2 s" in stderr  # said without -v: the command keeps running


def test_a_file_being_written_is_read_only_once_complete(tmp_path, env, fake):
    """Written in chunks more often than the poll: never read half-written (which would fail
    as a truncated image); processed after the last chunk."""
    inbox = tmp_path / "in"
    make_image(inbox / "first.png")
    data = make_image(tmp_path / "big.png", (400, 300), seed=5).read_bytes()
    proc = _start(["mask", "in", "--watch", "--poll", POLL, "--json", *fake], env, tmp_path)
    try:  # the first file's output: the model is loaded and the looks are running
        _wait_for((inbox / "first.mask.png").exists, proc, "the watch to start")
        target, output = inbox / "big.png", inbox / "big.mask.png"
        step = len(data) // 12 + 1
        chunks = [data[i : i + step] for i in range(0, len(data), step)]
        with target.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(float(POLL) / 3)
                assert not output.exists(), "read before the writer finished"
        _wait_for(output.exists, proc, "the completed file")
        s, stderr = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert s["failed"] == [] and s["processed"] == 2, stderr
    assert assert_complete_image(output).size == (400, 300)


def test_watch_never_takes_its_own_outputs_even_under_other_names(tmp_path, env, fake):
    """--out-dir is the watched folder itself: the outputs (a.png beside a.jpg) are plain image
    names there, yet never fed back in."""
    inbox = tmp_path / "in"
    make_image(inbox / "a.jpg", seed=1)
    proc = _start(
        ["mask", "in", "--watch", "--poll", POLL, "--out-dir", "in", "--json", *fake],
        env,
        tmp_path,
    )
    try:
        _wait_for(lambda: (inbox / "a.png").exists(), proc, "the output")
        time.sleep(5 * float(POLL))
        s, stderr = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert s["processed"] == 1 and s["failed"] == [], stderr
    assert sorted(p.name for p in inbox.iterdir()) == ["a.jpg", "a.png"]


def test_watch_respects_skip_existing_and_reports_bad_files_once(tmp_path, env, fake):
    inbox = tmp_path / "in"
    make_image(inbox / "done.png", seed=1)
    make_image(tmp_path / "out" / "done.png", seed=9)  # from an earlier run
    before = (tmp_path / "out" / "done.png").read_bytes()
    (inbox / "bad.jpg").write_text("not a JPEG")
    make_image(inbox / "todo.png", seed=2)
    args = ["cutout", "in", "--watch", "--poll", POLL, "--out-dir", "out", "--skip-existing"]
    proc = _start([*args, "--json", *fake], env, tmp_path)
    try:
        _wait_for(lambda: (tmp_path / "out" / "todo.png").exists(), proc, "the new output")
        time.sleep(5 * float(POLL))
        s, stderr = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (s["processed"], s["skipped"]) == (1, 1), stderr
    assert [f["input"] for f in s["failed"]] == ["in/bad.jpg"]  # once, not once per look
    assert (tmp_path / "out" / "done.png").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.png", "--watch"], "--watch watches folders (or glob patterns): x.png is not a folder"),
        (["in", "--watch", "-o", "m.png"], "use --out-dir, not -o"),
        (["-", "--watch"], "standard input (-) cannot be watched"),
        (["in", "--poll", "2"], "--poll goes with --watch"),
        (["in", "--watch", "--poll", "0"], "must be a positive number of seconds"),
        (["nowhere", "--watch"], "nowhere does not exist"),
    ],
)
def test_watch_usage_errors(args, message, tmp_path, fake, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    make_image(tmp_path / "x.png")
    assert main(["mask", *args, *fake]) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the bookkeeping, step by step (no clock, no model)
# ---------------------------------------------------------------------------------------------
def test_watcher_waits_for_a_stable_signature_and_content(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    w = Watcher([str(inbox)], False, None)
    a = inbox / "a.png"
    a.write_bytes(b"")
    assert w.look() == []  # first seen
    assert w.look() == []  # empty: waits for content
    a.write_bytes(b"\x89PNG half")
    assert w.look() == []  # changed since the last look
    assert w.look() == [(a, inbox)]  # unchanged for one poll: ready
    w.handled(a, ok=True)
    assert w.look() == []  # done
    a.write_bytes(b"\x89PNG changed after success")
    assert w.look() == [] and w.look() == []  # a success is not redone


def test_watcher_retries_a_failed_file_only_when_it_changes(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    w = Watcher([str(inbox)], False, None)
    a = inbox / "a.jpg"
    a.write_bytes(b"truncated")
    w.look()
    assert w.look() == [(a, inbox)]
    w.handled(a, ok=False)
    assert w.look() == [] and w.look() == []  # unchanged: not retried
    a.write_bytes(b"truncated, then completed")
    assert w.look() == []
    assert w.look() == [(a, inbox)]  # changed and stable again: retried


def test_watcher_skips_outputs_hidden_files_and_forgets_removed_files(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    w = Watcher([str(inbox)], True, None)
    for name in ("a.cutout.png", ".a.png.123.abcdefgh.tmp", ".hidden.png", "mine.png"):
        (inbox / name).write_bytes(b"x")
    w.outputs.add((inbox / "mine.png").resolve())
    b = inbox / "sub" / "b.png"
    b.parent.mkdir()
    b.write_bytes(b"x")
    w.look()
    assert w.look() == [(b, inbox)]
    w.handled(b, ok=True)
    b.unlink()
    assert w.look() == []
    b.write_bytes(b"x")  # back by the same name: a new file
    w.look()
    assert w.look() == [(b, inbox)]


# ---------------------------------------------------------------------------------------------
# globs
# ---------------------------------------------------------------------------------------------
def test_globstar_matches_any_depth_without_r(tmp_path, env, fake):
    """``'shop/**/*.jpg'`` means what it means in a shell with globstar: every depth, the top
    level included, with or without -r; ``*`` alone stays one level."""
    shop = tmp_path / "shop"
    for rel in ("a.jpg", "x/b.jpg", "x/y/c.jpg", "x/y/d.png", ".hidden/e.jpg"):
        make_image(shop / rel)
    for extra in ([], ["-r"]):
        out = tmp_path / f"out{len(extra)}"
        args = ["mask", "shop/**/*.jpg", "--out-dir", str(out), "--json", *extra, *fake]
        proc = run(*args, env=env, cwd=tmp_path)
        assert proc.returncode == 0, err(proc)
        got = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
        assert got == ["a.png", "x/b.png", "x/y/c.png"]
        assert summary(proc)["processed"] == 3
    proc = run("mask", "shop/*/*.jpg", "--out-dir", "one", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert sorted(str(p.relative_to(tmp_path / "one")) for p in (tmp_path / "one").rglob("*")) == [
        "x",
        "x/b.png",
    ]
