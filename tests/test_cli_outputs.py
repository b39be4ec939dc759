"""Where outputs go, checked before any work; what a killed run leaves, cleaned by the next one;
standard output that takes fewer bytes than written; a second Ctrl-C; ``verify`` per image.

(Issue 10 faults 2, 7, 9 and 10; issue 11 items 7 and 8.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rmbg.remover
from rmbg.cli import flags, main, runtime
from rmbg.cli import verify as verify_cmd
from rmbg.testing import FAKE_SOURCE

from .test_cli import (
    FAKE_CLI,
    assert_complete_image,
    env,
    err,
    fake,
    interrupt_folder_run,
    make_image,
    run,
    summary,
)

__all__ = ["env", "fake"]  # fixtures shared with test_cli

_REMOVER = rmbg.remover.BackgroundRemover


@pytest.fixture(autouse=True)
def _offer_fake_backend(monkeypatch):
    monkeypatch.setattr(flags, "HIDDEN_BACKENDS", frozenset())


# ---------------------------------------------------------------------------------------------
# outputs checked before the model loads
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [[], ["--overwrite"], ["--skip-existing"]])
def test_an_output_that_is_a_folder_fails_in_every_mode_before_the_model_loads(
    mode, tmp_path, env, fake
):
    src = make_image(tmp_path / "p.png")
    (tmp_path / "taken.png").mkdir()
    proc = run("mask", str(src), "-o", "taken.png", "-vv", *mode, *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1, err(proc)
    assert "the output taken.png is a folder" in err(proc)
    assert "engine loaded" not in err(proc)
    assert (tmp_path / "taken.png").is_dir()

    make_image(tmp_path / "in" / "a.png")
    make_image(tmp_path / "in" / "b.png", seed=3)
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    proc = run("mask", "in", "--out-dir", "out", "--json", *mode, *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1, err(proc)
    s = summary(proc)
    assert s["failed"] == [
        {"input": "in/a.png", "error": "the output out/a.png is a folder; name a file instead"}
    ]
    assert s["processed"] == 1 and s["skipped"] == 0  # the other file is still done
    assert_complete_image(tmp_path / "out" / "b.png")


def test_an_output_folder_that_cannot_be_created_fails_before_the_model_loads(tmp_path, env, fake):
    src = make_image(tmp_path / "p.png")
    (tmp_path / "file.txt").write_text("a file, not a folder")
    proc = run(
        "mask",
        str(src),
        "--out-dir",
        "file.txt/masks",
        "--json",
        "-vv",
        *fake,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, err(proc)
    (failure,) = summary(proc)["failed"]
    assert failure["error"] == (
        "cannot write the output file.txt/masks/p.png: file.txt/masks cannot be created: "
        "file.txt is not a folder"
    )
    assert "engine loaded" not in err(proc)


@pytest.mark.parametrize("mode", [[], ["--overwrite"], ["--skip-existing"]])
def test_a_read_only_output_folder_fails_before_the_model_loads(
    mode, tmp_path, fake, monkeypatch, capsys
):
    """Read-only as the OS reports it (``os.access``: a read-only mount, or a folder without
    write permission for a user other than root); simulated, since these tests run as root."""
    src = make_image(tmp_path / "in" / "p.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "p.png").write_bytes(b"old")
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, m, **kw: False if Path(p) == locked else real_access(p, m, **kw)
    )
    loaded: list[str] = []
    monkeypatch.setattr(flags, "remover_from_args", lambda *a, **k: loaded.append("x"))
    assert main(["mask", str(src), "--out-dir", str(locked), "--json", *mode, *fake]) == 1
    out = json.loads(capsys.readouterr().out)
    (failure,) = out["failed"]
    assert failure["error"] == (
        f"cannot write the output {locked / 'p.png'}: {locked} is not writable (permission denied)"
    )
    assert out["skipped"] == 0 and loaded == []  # never skipped, never loaded


def test_folder_problem_names_the_folder(tmp_path):
    assert runtime.folder_problem(tmp_path) is None
    assert runtime.folder_problem(tmp_path / "new" / "deeper") is None  # created when written
    (tmp_path / "f").write_text("x")
    assert runtime.folder_problem(tmp_path / "f") == f"{tmp_path / 'f'} is not a folder"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "broken symbolic link" in str(runtime.folder_problem(tmp_path / "dangling" / "x"))


# ---------------------------------------------------------------------------------------------
# standard output must take every byte
# ---------------------------------------------------------------------------------------------
def test_a_reader_that_stops_early_is_a_failure_not_success(tmp_path, env, fake):
    """``rmbg cutout x.jpg -o - | head -c 1000``: exit 1, said on stderr (issue 10, fault 2)."""
    src = make_image(tmp_path / "p.png", (900, 700))  # a PNG cutout far above a pipe's 64 KiB
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_CLI), "cutout", str(src), "-o", "-", *fake],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(1000)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, stderr
    assert len(head) == 1000
    assert "standard output was closed after" in stderr and "the image is incomplete" in stderr
    assert "0 processed, 0 skipped, 1 failed" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


class _ShortPipe:
    """A stdout buffer that takes ``limit`` bytes and then only returns short counts, as
    CPython's does after the reader closed the pipe."""

    def __init__(self, limit: int, then_raise: bool) -> None:
        self.limit, self.then_raise, self.taken = limit, then_raise, 0

    def write(self, data: Any) -> int:
        n = min(len(data), self.limit - self.taken)
        if n == 0 and self.then_raise:
            raise BrokenPipeError(32, "Broken pipe")
        self.taken += n
        return n

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("then_raise", [True, False])
def test_write_stdout_raises_on_a_short_write(then_raise, monkeypatch):
    pipe = _ShortPipe(65536, then_raise)

    class Out:
        buffer = pipe

        def fileno(self) -> int:
            raise ValueError("not a real file")

    monkeypatch.setattr(sys, "stdout", Out())
    with pytest.raises(BrokenPipeError, match=r"closed after 65536 of 100000 bytes"):
        runtime.write_stdout(b"x" * 100_000)
    pipe.taken, pipe.limit = 0, 10**6
    runtime.write_stdout(b"y" * 100_000)  # a reader that takes everything: no error
    assert pipe.taken == 100_000


# ---------------------------------------------------------------------------------------------
# leftovers of a killed run
# ---------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_are_removed_by_the_next_run(tmp_path, env, fake):
    """A kill -9 mid-write leaves ``.NAME.PID.XXXXXXXX.tmp``; the next run into that folder
    removes it when its writer is dead or it is old, leaves a live run's and anything not
    rmbg's, and --skip-existing does not mistake it for the output (issue 10, fault 9)."""
    make_image(tmp_path / "in" / "a.png")
    make_image(tmp_path / "in" / "b.png", seed=4)
    out = tmp_path / "out"
    out.mkdir()
    old = time.time() - runtime.STALE_TEMP_SECONDS - 60
    dead = out / f".a.png.{_dead_pid()}.k3j_x9ab.tmp"  # its writer is gone
    ancient = out / f".b.png.{os.getpid()}.abcdefgh.tmp"  # alive, but far too old
    legacy = out / ".b.png.zzzzzzzz.tmp"  # rmbg < 0.2: no pid, old
    live = out / f".c.png.{os.getpid()}.qwertyui.tmp"  # a live run writing right now
    young_legacy = out / ".c.png.yyyyyyyy.tmp"  # no pid, recent: may be someone's
    not_ours = out / ".notes.txt.abcdefgh.tmp"  # not an image name rmbg writes
    for p in (dead, ancient, legacy, live, young_legacy, not_ours):
        p.write_bytes(b"partial")
    for p in (ancient, legacy, not_ours):
        os.utime(p, (old, old))
    proc = run(
        "mask",
        "in",
        "--out-dir",
        "out",
        "--skip-existing",
        "--json",
        "-v",
        *fake,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, err(proc)
    assert summary(proc)["processed"] == 2 and summary(proc)["skipped"] == 0
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted(["a.png", "b.png", live.name, young_legacy.name, not_ours.name])
    assert f"removed {Path('out', dead.name)}, left by an interrupted run" in err(proc)


def test_a_failed_write_names_the_output_not_the_temporary_file(tmp_path, monkeypatch):
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".x.png.1.abc.tmp"))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        OSError, match=r"^cannot write the output .*x\.png: No space left on device$"
    ):
        runtime.write_atomic(tmp_path / "x.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_temporary_files_carry_the_writers_pid(tmp_path, monkeypatch):
    seen: list[str] = []
    real_fdopen = os.fdopen

    def spy(fd: int, *args: Any, **kwargs: Any) -> Any:
        seen.extend(p.name for p in tmp_path.iterdir())
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", spy)
    runtime.write_atomic(tmp_path / "x.png", b"data")
    (name,) = seen
    assert name.startswith(f".x.png.{os.getpid()}.") and name.endswith(".tmp")
    assert runtime.remove_stale_temp_files(tmp_path) == []  # the finished output is not touched


# ---------------------------------------------------------------------------------------------
# a second Ctrl-C
# ---------------------------------------------------------------------------------------------
def test_a_second_ctrl_c_while_stopping_prints_no_traceback(tmp_path, env, fake):
    # the second SIGINT comes 0.5 s after the first, while the run waits for the images in
    # flight (2.5 s each)
    out = tmp_path / "out"
    proc, stdout, stderr = interrupt_folder_run(
        tmp_path, env, fake, signal.SIGINT, signal.SIGINT, n=8, size=(160, 120), delay=2.5, after=1
    )
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "Exception ignored" not in text, text
    # noted while the run stops; after it, ignored until the process exits (both are timing)
    s = json.loads(stdout)
    assert s["interrupted"] == "SIGINT" and len(list(out.iterdir())) == s["processed"]


def test_signals_after_the_first_are_noted_then_ignored_until_exit(caplog):
    """In-process, deterministic: the first SIGINT raises Interrupted; one while stopping is
    only logged; after an interrupted run both signals stay ignored (the process is exiting);
    after an uninterrupted run the previous handlers are back."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with runtime.catch_signals():
            pass
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == previous
        with runtime.catch_signals():
            with pytest.raises(runtime.Interrupted) as first:
                signal.raise_signal(signal.SIGINT)
            assert first.value.name == "SIGINT"
            signal.raise_signal(signal.SIGTERM)  # while stopping: noted, not raised
            with runtime.deferred_signals():
                signal.raise_signal(signal.SIGINT)  # nor raised at the end of a critical section
        assert "already stopping (SIGTERM)" in caplog.text
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: no KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


# ---------------------------------------------------------------------------------------------
# verify: per image, on after a bad one
# ---------------------------------------------------------------------------------------------
def _fake_removers(monkeypatch: pytest.MonkeyPatch, *, shift: int = 0) -> None:
    """verify on the fake backend: both sides run it; ``shift`` grey levels added to the
    "openvino" side's masks."""

    class Fake(_REMOVER):  # type: ignore[misc, valid-type]
        def __init__(self, model: Any, *, backend: str, device: str, precision: str, **kw: Any):
            self.side = backend
            super().__init__(FAKE_SOURCE, backend="fake", **kw)

        def mask(self, image: Any, *args: Any, **kwargs: Any) -> Any:
            mask = super().mask(image, *args, **kwargs)
            if self.side == "openvino" and shift:
                return np.clip(mask.astype(np.int16) + shift, 0, 255).astype(np.uint8)
            return mask

    monkeypatch.setattr(rmbg.remover, "BackgroundRemover", Fake)
    monkeypatch.setattr(verify_cmd, "resolve_source", lambda args: FAKE_SOURCE)


def test_verify_reports_every_image_and_goes_on_after_a_bad_one(tmp_path, monkeypatch, capsys):
    _fake_removers(monkeypatch)
    good = [make_image(tmp_path / f"{n}.png", seed=i) for i, n in enumerate("ab")]
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a JPEG")
    assert main(["verify", str(good[0]), str(bad), str(good[1]), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in report["images"]] == ["a.png", "bad.jpg", "b.png"]
    assert [r["ok"] for r in report["images"]] == [True, False, True]
    assert "error" in report["images"][1] and not report["ok"]
    a = report["images"][0]
    assert (a["max_diff"], a["mean_diff"], a["iou"], a["size"]) == (0, 0.0, 1.0, "64x48")
    assert main(["verify", str(good[0]), str(good[1])]) == 0
    assert "parity: ok" in capsys.readouterr().out


def test_verify_fails_outside_the_bar_with_the_shared_figures(tmp_path, monkeypatch, capsys):
    """The figures of rmbg.metrics.mask_figures against each precision's bar: masks one grey
    level apart pass f16's (mean <= 1); two levels apart fail f32's (max <= 1), exit 1."""
    src = make_image(tmp_path / "a.png")
    _fake_removers(monkeypatch, shift=1)
    assert main(["verify", str(src), "--json", "--precision", "f16"]) == 0
    row = json.loads(capsys.readouterr().out)["images"][0]
    assert row["ok"] and row["max_diff"] == 1 and 0.5 < row["mean_diff"] <= 1
    _fake_removers(monkeypatch, shift=2)
    assert main(["verify", str(src), "--json"]) == 1
    row = json.loads(capsys.readouterr().out)["images"][0]
    assert not row["ok"] and row["max_diff"] == 2


def _child_signal_handlers_forked_from_a_thread() -> tuple[bool, bool]:
    """Fork from a worker thread (as OpenVINO's telemetry sender does) and report whether the
    child's SIGINT and SIGTERM handlers are the defaults."""
    result: list[tuple[bool, bool]] = []

    def fork_and_ask() -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            ok = (
                signal.getsignal(signal.SIGINT) is signal.SIG_DFL,
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,
            )
            os.write(write, bytes(ok))
            os._exit(0)
        os.close(write)
        data = os.read(read, 2)
        os.close(read)
        os.waitpid(pid, 0)
        result.append((bool(data[0]), bool(data[1])))

    worker = threading.Thread(target=fork_and_ask)
    worker.start()
    worker.join(30)
    return result[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads running
def test_children_forked_during_and_after_a_run_get_default_signal_handling():
    """A telemetry sender forked by OpenVINO/NNCF must stay killable by terminate() (SIGTERM):
    with the CLI's handler, or SIG_IGN after an interrupted run, a child stuck in a C call made
    the parent wait for it forever at exit (issue 11)."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with runtime.catch_signals():
            assert _child_signal_handlers_forked_from_a_thread() == (True, True)
            with pytest.raises(runtime.Interrupted):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the parent is exiting...
        assert _child_signal_handlers_forked_from_a_thread() == (True, True)  # ...children not
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def test_one_time_setup_is_announced_by_default_and_quiet_with_q(tmp_path, capsys):
    """A first conversion or quantization is never a silent wait: the cache announces it on
    rmbg.setup, which the CLI shows without -v (and hides with -q)."""
    from rmbg import cache

    def build(folder, metadata):
        (folder / "x.txt").write_text("x")

    for quiet, entry in ((False, "a"), (True, "b")):
        with runtime.logging_to_stderr(0, quiet):
            cache.get_or_build(tmp_path / entry, build, metadata={}, what="thing", expect="2 s")
            cache.get_or_build(tmp_path / entry, build, metadata={}, what="thing")  # cached
        err = capsys.readouterr().err
        if quiet:
            assert err == ""
        else:
            assert err.count("building the thing, once (2 s); later runs start from the cache") == 1
