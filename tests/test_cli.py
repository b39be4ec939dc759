"""The ``rmbg`` command line, driven as users drive it: the real command line in a subprocess.

Most tests use the dependency-free fake backend with an empty ``model.onnx`` as ``--model`` (the
fake backend accepts any model file and runs no network), so they exercise the real CLI, the real
input handling, compositing and encoding in well under a second each. The CLI hides
``--backend fake`` from users: the subprocesses run ``tests/fake_cli.py``, the real ``main()``
with the test backend offered. One slow test runs the real-weight stand-in on OpenVINO (cutout,
verify, export).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import cli
from rmbg.cli import flags, runtime

from .helpers import PHOTO_DIR

SRC = Path(rmbg.__file__).resolve().parents[1]
FAKE_CLI = Path(__file__).with_name("fake_cli.py")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every subprocess: this rmbg first on the path, private caches, offline."""
    home = tmp_path_factory.mktemp("env")
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [e.get("PYTHONPATH")])])
    e["RMBG_CACHE_DIR"] = str(home / "rmbg-cache")
    e["HF_HOME"] = str(home / "hf-home")
    e["HF_HUB_OFFLINE"] = "1"
    e.pop("RMBG_MODEL", None)
    return e


@pytest.fixture
def fake(tmp_path: Path) -> list[str]:
    """Model flags for the fake backend: an empty .onnx file it happily 'runs'."""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    return ["--model", str(model), "--backend", "fake"]


def run(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    stdin: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """``rmbg ARGS`` with the fake backend offered (stdout/stderr captured as bytes; stdin empty
    unless given)."""
    return subprocess.run(
        [sys.executable, str(FAKE_CLI), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def err(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode(errors="replace")


def summary(proc: subprocess.CompletedProcess[bytes]) -> dict:
    return json.loads(proc.stdout)


def make_image(path: Path, size: tuple[int, int] = (64, 48), *, seed: int = 0) -> Path:
    """A small photo-like image: a bright disc on a dark noisy background."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(w, h) / 3) ** 2
    rgb = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    rgb[disc] = (230, 200, 180)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def stray_files(root: Path) -> list[Path]:
    """Temporary files left anywhere under ``root`` (rmbg's are hidden ``.*.tmp``)."""
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def assert_complete_image(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()  # raises on a truncated file
        out = im.copy()
        out.format = im.format
        return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A nested folder of photos with bad files mixed in, and files that are not inputs."""
    root = tmp_path / "shop"
    make_image(root / "a.jpg", seed=1)
    make_image(root / "sub" / "b.png", (40, 30), seed=2)
    make_image(root / "sub" / "deeper" / "c.jpg", (33, 21), seed=3)
    good = (root / "a.jpg").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "bad" / "text.jpg").write_text("this is not a JPEG\n")
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not an image extension\n")
    make_image(root / ".hidden.jpg")  # ignored: hidden
    return root


GOOD = {"a.jpg": "a.png", "sub/b.png": "sub/b.png", "sub/deeper/c.jpg": "sub/deeper/c.png"}
BAD = ("bad/empty.jpg", "bad/text.jpg", "bad/truncated.jpg")


# ---------------------------------------------------------------------------------------------
# folders, bad files, structure
# ---------------------------------------------------------------------------------------------
def test_recursive_folder_keeps_structure_and_reports_bad_files(tree, tmp_path, env, fake):
    out = tmp_path / "out"
    proc = run(
        "cutout", str(tree), "-r", "--out-dir", str(out), "--json", *fake, env=env, cwd=tmp_path
    )
    assert proc.returncode == 1, err(proc)
    s = summary(proc)
    assert s["processed"] == 3 and s["skipped"] == 0 and s["interrupted"] is None
    assert sorted(Path(f["input"]).relative_to(tree).as_posix() for f in s["failed"]) == sorted(BAD)
    for f in s["failed"]:
        assert f["error"].strip(), f  # a reason, not just a name
        assert Path(f["input"]).name not in f["error"], f  # the name once, in "input"
        line = next(x for x in err(proc).splitlines() if f["input"] in x)  # on stderr too,
        assert line.count(Path(f["input"]).name) == 1, line  # named once
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(GOOD.values())
    for src, dst in GOOD.items():
        im = assert_complete_image(out / dst)
        with Image.open(tree / src) as orig:
            assert im.mode == "RGBA" and im.size == orig.size
    assert {o["output"] for o in s["outputs"]} == {str(out / d) for d in GOOD.values()}
    assert s["seconds"] >= 0
    assert not stray_files(out)


def test_folder_without_recursive_takes_the_top_level_only(tree, tmp_path, env, fake):
    out = tmp_path / "masks"
    proc = run("mask", str(tree), "--out-dir", str(out), *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert [p.name for p in out.iterdir()] == ["a.png"]
    assert assert_complete_image(out / "a.png").mode == "L"


def test_quoted_glob_is_expanded_and_keeps_structure_below_its_base(tree, tmp_path, env, fake):
    out = tmp_path / "out"
    proc = run(
        "mask",
        f"{tree}/**/*.jpg",
        "-r",
        "--out-dir",
        str(out),
        "--format",
        "webp",
        *fake,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, err(proc)  # the bad .jpg files match too
    assert (out / "a.webp").is_file() and (out / "sub" / "deeper" / "c.webp").is_file()
    assert not (out / "sub" / "b.webp").exists()  # a .png: not matched
    proc = run("mask", f"{tree}/nothing-*.jpg", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "no image files match" in err(proc)


def test_missing_input_is_reported_and_the_rest_processed(tmp_path, env, fake):
    a = make_image(tmp_path / "a.png")
    proc = run("mask", "missing.jpg", str(a), *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "missing.jpg: no such file or folder" in err(proc)
    assert (tmp_path / "a.mask.png").is_file()


def test_two_inputs_with_one_output_name_are_not_silently_merged(tmp_path, env, fake):
    make_image(tmp_path / "in" / "x.jpg")
    make_image(tmp_path / "in" / "x.png", seed=5)
    proc = run("cutout", "in", "--out-dir", "out", "--json", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1
    s = summary(proc)
    assert s["processed"] == 1 and len(s["failed"]) == 1
    assert "is also the output of" in s["failed"][0]["error"]


def test_model_is_loaded_once_per_run(tree, tmp_path, env, fake):
    proc = run(
        "mask", str(tree / "sub"), "-r", "--out-dir", "o", "-vv", *fake, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, err(proc)
    assert err(proc).count("fake engine loaded") == 1
    assert len(list((tmp_path / "o").rglob("*.png"))) == 2


def test_several_files_use_the_backends_batch_options_unless_told_otherwise(
    tree, tmp_path, env, fake
):
    """Folder mode passes the backend's ``batch_options`` (OpenVINO: PERFORMANCE_HINT=THROUGHPUT,
    faster for batches, see docs/performance.md; the fake backend declares the same); one file
    keeps the library's defaults; the user's --backend-option wins."""
    many = ["mask", str(tree / "sub"), "-r", "--out-dir", "o", "-vv"]
    cases = [
        (many, "'performance_hint': 'THROUGHPUT'"),
        (
            ["mask", str(tree / "sub" / "b.png"), "-o", "one.png", "-vv"],
            "'performance_hint': 'LATENCY'",
        ),
        (
            [*many, "--overwrite", "--backend-option", "performance_hint=LATENCY"],
            "'performance_hint': 'LATENCY'",
        ),
    ]
    for args, expected in cases:
        proc = run(*args, *fake, env=env, cwd=tmp_path)
        assert proc.returncode == 0, err(proc)
        assert expected in err(proc), err(proc)


# ---------------------------------------------------------------------------------------------
# naming, existing outputs
# ---------------------------------------------------------------------------------------------
def test_default_output_beside_the_input_and_existing_outputs(tmp_path, env, fake):
    src = make_image(tmp_path / "photos" / "p.jpg")
    out = tmp_path / "photos" / "p.cutout.png"
    proc = run("cutout", str(src), *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert assert_complete_image(out).mode == "RGBA"
    first = out.read_bytes()

    out.write_bytes(b"keep me")  # refused by default
    proc = run("cutout", str(src), *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "exists" in err(proc) and "--overwrite" in err(proc)
    assert out.read_bytes() == b"keep me"

    proc = run("cutout", str(src), "--skip-existing", "--json", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert summary(proc)["skipped"] == 1 and summary(proc)["processed"] == 0
    assert out.read_bytes() == b"keep me"

    proc = run("cutout", str(src), "--overwrite", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert out.read_bytes() == first


def test_rerun_on_a_folder_does_not_take_its_own_outputs_as_inputs(tmp_path, env, fake):
    make_image(tmp_path / "d" / "p.jpg")
    assert run("mask", "d", *fake, env=env, cwd=tmp_path).returncode == 0
    proc = run("mask", "d", "--skip-existing", "--json", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert summary(proc) | {"seconds": 0} == {
        "command": "mask",
        "processed": 0,
        "skipped": 1,
        "failed": [],
        "outputs": [],
        "seconds": 0,
        "interrupted": None,
        "error": None,
    }
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["p.jpg", "p.mask.png"]


def test_never_overwrites_an_input(tmp_path, env, fake):
    src = make_image(tmp_path / "p.png")
    before = src.read_bytes()
    proc = run("mask", str(src), "-o", str(src), "--overwrite", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "would overwrite an input" in err(proc)
    proc = run("mask", ".", "--out-dir", ".", "--overwrite", *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "would overwrite an input" in err(proc)
    assert src.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# stdin / stdout, formats
# ---------------------------------------------------------------------------------------------
def test_stdin_to_stdout(tmp_path, env, fake):
    data = (PHOTO_DIR / "chelsea.jpg").read_bytes()
    proc = run("cutout", "-", *fake, env=env, cwd=tmp_path, stdin=data)
    assert proc.returncode == 0, err(proc)
    im = Image.open(io.BytesIO(proc.stdout))
    assert im.format == "PNG" and im.mode == "RGBA" and im.size == (451, 300)
    proc = run("mask", "-", "--format", "webp", *fake, env=env, cwd=tmp_path, stdin=data)
    assert proc.returncode == 0, err(proc)
    im = Image.open(io.BytesIO(proc.stdout))
    assert im.format == "WEBP" and im.size == (451, 300)
    assert list(tmp_path.iterdir()) == [tmp_path / "model.onnx"]  # nothing written to disk


def test_stdin_garbage_fails_with_exit_1(tmp_path, env, fake):
    proc = run("cutout", "-", *fake, env=env, cwd=tmp_path, stdin=b"not an image")
    assert proc.returncode == 1 and proc.stdout == b""
    assert "-: " in err(proc)


@pytest.mark.parametrize(
    ("args", "fmt", "mode"),
    [
        (["cutout", "-o", "o.png"], "PNG", "RGBA"),
        (["cutout", "-o", "o.webp"], "WEBP", "RGBA"),
        (["cutout", "-o", "o.jpg", "--background", "white"], "JPEG", "RGB"),
        (["cutout", "-o", "o.jpeg", "--background", "0,128,255", "--trim"], "JPEG", "RGB"),
        (["cutout", "-o", "o", "--format", "webp", "--quality", "80"], "WEBP", "RGBA"),
        (["mask", "-o", "o.jpg"], "JPEG", "L"),
        (["mask", "-o", "sub/dir/o.png", "--threshold", "0.5", "--invert"], "PNG", "L"),
        (["cutout", "-o", "o.jpg", "--background", "{bg}", "--refine"], "JPEG", "RGB"),
    ],
)
def test_output_formats(args, fmt, mode, tmp_path, env, fake):
    src = make_image(tmp_path / "p.png")
    bg = make_image(tmp_path / "bg.jpg", (80, 80), seed=9)
    argv = [a.replace("{bg}", str(bg)) for a in args[1:]]
    proc = run(args[0], str(src), *argv, *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    out = tmp_path / args[args.index("-o") + 1]
    im = assert_complete_image(out)
    assert im.format == fmt and im.mode == mode
    if "--threshold" in args:
        assert set(np.unique(np.asarray(im))) <= {0, 255}


def test_lossless_webp_is_exact(tmp_path, env, fake):
    src = make_image(tmp_path / "p.png")
    assert run("cutout", str(src), "-o", "a.png", *fake, env=env, cwd=tmp_path).returncode == 0
    assert run("cutout", str(src), "-o", "a.webp", *fake, env=env, cwd=tmp_path).returncode == 0
    png = np.asarray(assert_complete_image(tmp_path / "a.png"))
    webp = np.asarray(assert_complete_image(tmp_path / "a.webp"))
    np.testing.assert_array_equal(png[..., 3], webp[..., 3])
    visible = png[..., 3] > 0
    np.testing.assert_array_equal(png[visible], webp[visible])


# ---------------------------------------------------------------------------------------------
# usage errors and exit codes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cutout", "{src}", "-o", "o.jpg"], "JPEG has no transparency"),
        (
            ["cutout", "{src}", "--format", "jpg", "--background", "#ffffff80"],
            "JPEG has no transparency",
        ),
        (["cutout", "{src}", "--background", "not-a-colour"], "neither an image file nor a colour"),
        (["cutout", "{src}", "{src}", "-o", "o.png"], "exactly one input"),
        (["cutout", "{src}", "-o", "o.gif"], "cannot tell the format"),
        (["cutout", "{src}", "-o", "o.webp", "--format", "png"], "contradicts"),
        (["cutout", "{src}", "--quality", "80"], "--quality applies to webp and jpg"),
        # option values: the library's one message (rmbg.options), exit 2 before the model loads
        (["cutout", "{src}", "--margin", "3"], "margin= and trim_threshold= need trim=True"),
        (["cutout", "{src}", "--trim", "--trim-threshold", "0"], "trim_threshold must be"),
        (["cutout", "{src}", "--trim", "--margin", "-1"], "margin must be a whole number"),
        (["mask", "{src}", "--feather", "-1"], "feather must be a number >= 0"),
        (["mask", "{src}", "--feather", "nan"], "feather must be a number >= 0"),
        (["cutout", "{src}", "--overwrite", "--skip-existing"], "exclude each other"),
        (["cutout", "{src}", "-o", "x.png", "--out-dir", "d"], "exclude each other"),
        (["mask", "{src}", "--threshold", "2"], "threshold must be a number in [0, 1]"),
        (["mask", "{src}", "--threshold", "half"], "invalid float value: 'half'"),
        (["cutout", "{src}", "--background", "no-such.png"], "'no-such.png' is not a colour"),
        (["mask", "{src}", "--backend", "tensorrt"], "invalid choice"),
        (["mask", "{src}", "--device", "GPU.7"], "not available"),
        (["mask", "{src}", "--backend-option", "novalue"], "KEY=VALUE"),
        (["mask", "-", "--json"], "--json prints on stdout"),
        (["mask", "-", "-"], "read only once"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2(args, message, tmp_path, env, fake):
    src = make_image(tmp_path / "p.png")
    argv = [a.replace("{src}", str(src)) for a in args]
    if argv and argv[0] in ("cutout", "mask"):
        argv += [*fake, "-vv"]
    proc = run(*argv, env=env, cwd=tmp_path, stdin=b"x")
    assert proc.returncode == 2, (proc.returncode, err(proc))
    assert message in err(proc)
    assert "engine loaded" not in err(proc)  # refused before the model loads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "p.png"]  # nothing written


def test_missing_model_exits_1_with_what_to_do(tmp_path, env):
    src = make_image(tmp_path / "p.png")
    proc = run("mask", str(src), "--model", "no/such-model", "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "rmbg download" in err(proc)  # offline, not cached: says what to do
    s = summary(proc)
    assert s["processed"] == 0 and "rmbg download" in s["error"]
    assert not (tmp_path / "p.mask.png").exists()


def test_backend_options_parse_json_values_and_nest():
    pairs = [
        flags.parse_backend_option("performance_hint=THROUGHPUT"),
        flags.parse_backend_option("config.NUM_STREAMS=2"),
        flags.parse_backend_option("config.ENABLE_CPU_PINNING=false"),
        flags.parse_backend_option("delay=0.5"),
    ]
    assert flags.nest_backend_options(pairs) == {
        "performance_hint": "THROUGHPUT",
        "config": {"NUM_STREAMS": 2, "ENABLE_CPU_PINNING": False},
        "delay": 0.5,
    }


# ---------------------------------------------------------------------------------------------
# interruption
# ---------------------------------------------------------------------------------------------
def interrupt_folder_run(
    tmp_path: Path, env, fake, *signals: signal.Signals, n: int, size, delay: float, after: int
) -> tuple[subprocess.Popen, bytes, bytes]:
    """Start ``cutout in --out-dir out --json`` on ``n`` images (the fake network ``delay``
    seconds per image), send ``signals`` (0.5 s apart) once ``after`` outputs exist, and wait
    for the process to end: ``(process, stdout, stderr)``. The process never outlives the call.
    """
    for i in range(n):
        make_image(tmp_path / "in" / f"{i:02d}.png", size, seed=i)
    out = tmp_path / "out"
    command = [sys.executable, str(FAKE_CLI), "cutout", "in", "--out-dir", str(out), "--json"]
    command += [*fake, "--backend-option", f"delay={delay}"]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("*.png"))) < after:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.02)
        for i, sig in enumerate(signals):
            if i:
                time.sleep(0.5)
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, stdout, stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_batch_leaves_no_partial_file(sig, code, tmp_path, env, fake):
    n = 12
    out = tmp_path / "out"
    proc, stdout, stderr = interrupt_folder_run(
        tmp_path, env, fake, sig, n=n, size=(320, 240), delay=0.3, after=2
    )
    assert proc.returncode == code, stderr.decode()
    s = json.loads(stdout)
    assert s["interrupted"] == sig.name
    assert 2 <= s["processed"] < n
    written = sorted(out.iterdir())
    assert not stray_files(out), written
    assert len(written) == s["processed"]
    for p in written:
        assert_complete_image(p)
    assert f"interrupted by {sig.name}" in stderr.decode()


def test_write_atomic_interrupted_mid_write_leaves_nothing(tmp_path, monkeypatch):
    dest = tmp_path / "o" / "x.png"

    def boom(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        runtime.write_atomic(dest, b"x" * 100_000)
    assert list((tmp_path / "o").iterdir()) == []


def test_write_atomic_never_clobbers_without_overwrite(tmp_path):
    dest = tmp_path / "x.png"
    runtime.write_atomic(dest, b"first")
    with pytest.raises(FileExistsError):
        runtime.write_atomic(dest, b"second")
    assert dest.read_bytes() == b"first"
    runtime.write_atomic(dest, b"third", overwrite=True)
    assert dest.read_bytes() == b"third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    assert oct(dest.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


# ---------------------------------------------------------------------------------------------
# help, devices, info, download, the console script
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", [None, "cutout", "mask", "devices", "download", "export", "verify", "info"]
)
def test_help_shows_examples(command, capsys):
    assert cli.main([*([command] if command else []), "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"rmbg {command or 'cutout'} " in text.split("examples:")[1]


def test_devices(tmp_path, env):
    proc = run("devices", env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    text = proc.stdout.decode()
    assert "OpenVINO" in text and "CPU" in text and "capabilities:" in text and "PyTorch" in text
    report = json.loads(run("devices", "--json", env=env, cwd=tmp_path).stdout)
    cpu = next(d for d in report["openvino"]["devices"] if d["name"] == "CPU")
    assert cpu["FULL_DEVICE_NAME"] and "FP32" in cpu["OPTIMIZATION_CAPABILITIES"]
    assert report["torch"]["cuda_available"] in (True, False)


def test_works_without_openvino_and_torch(tmp_path, env, fake):
    """`devices` and `info` report missing engines instead of crashing; the fake backend runs."""
    blocked = tmp_path / "blocked"
    for name in ("openvino", "torch"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(blocked), env["PYTHONPATH"]])}
    proc = run("devices", env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    assert "OpenVINO: not installed (pip install openvino)" in proc.stdout.decode()
    assert 'PyTorch: not installed (pip install "rmbg[torch]")' in proc.stdout.decode()
    assert run("info", "--model", fake[1], env=env, cwd=tmp_path).returncode == 0
    src = make_image(tmp_path / "p.png")
    assert run("mask", str(src), *fake, env=env, cwd=tmp_path).returncode == 0
    proc = run("mask", str(src), "--model", fake[1], "--overwrite", env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "pip install openvino" in err(proc)


def test_info(tmp_path, env, fake):
    proc = run("info", "--json", "--model", fake[1], env=env, cwd=tmp_path)
    assert proc.returncode == 0, err(proc)
    report = json.loads(proc.stdout)
    assert report["versions"]["rmbg"] == rmbg.__version__
    assert report["cache"]["path"] == env["RMBG_CACHE_DIR"]
    assert report["model"]["kind"] == "onnx" and report["model"]["files"] == [fake[1]]
    proc = run("info", env=env, cwd=tmp_path)  # the Hub default, not downloaded: reported
    assert proc.returncode == 0, err(proc)
    assert "briaai/RMBG-1.4" in proc.stdout.decode() and "rmbg download" in proc.stdout.decode()


def test_download_offline_prints_licence_and_fails(tmp_path, env):
    proc = run("download", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "non-commercial" in err(proc) and "huggingface.co/briaai/RMBG-1.4" in err(proc)
    assert proc.stdout == b""


def test_download_refused_prints_the_gating_steps(monkeypatch, capsys):
    import rmbg.weights
    from rmbg.errors import GatedModelError

    def refuse(repo_id, **kwargs):
        raise GatedModelError(f"The Hub refused {repo_id} (401).")

    monkeypatch.setattr(rmbg.weights, "download", refuse)
    monkeypatch.delenv("RMBG_MODEL", raising=False)
    assert cli.main(["download"]) == 1
    text = capsys.readouterr().err
    assert "non-commercial" in text and "refused briaai/RMBG-1.4 (401)" in text
    assert "accept the licence at https://huggingface.co/briaai/RMBG-1.4" in text
    assert "HF_TOKEN" in text


def test_verify_and_export_usage_errors(tmp_path, fake, capsys):
    assert cli.main(["verify", "--model", fake[1]]) == 2  # torch cannot run an ONNX file
    assert "cannot run a model of kind 'onnx'" in capsys.readouterr().err
    assert cli.main(["verify", "no-such.jpg", "--model", fake[1]]) == 2
    assert "no such image" in capsys.readouterr().err
    assert cli.main(["export", "--name", "a/b", str(tmp_path / "ir"), "--model", fake[1]]) == 2
    assert "plain file stem" in capsys.readouterr().err
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "rmbg-1.4.xml").write_text("<old/>")
    assert cli.main(["export", str(tmp_path / "ir"), "--model", fake[1]]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "ir" / "rmbg-1.4.xml").read_text() == "<old/>"


def test_console_script_and_python_m_run_the_cli_without_the_test_backend(tmp_path, env, fake):
    """The installed script and ``python -m rmbg`` run the CLI, and neither offers ``--backend
    fake`` (the test backend writes masks that mean nothing): issue 11, item 6."""
    script = shutil.which("rmbg", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the rmbg console script is not installed in this environment")
    src = make_image(tmp_path / "p.png")
    for launcher in ([script], [sys.executable, "-m", "rmbg"]):
        proc = subprocess.run(
            [*launcher, "mask", str(src), *fake],
            capture_output=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, err(proc)
        assert "invalid choice: 'fake' (choose from 'openvino', 'torch')" in err(proc)
        assert not (tmp_path / "p.mask.png").exists()
        proc = subprocess.run(
            [*launcher, "--version"], capture_output=True, env=env, timeout=60, check=False
        )
        assert proc.returncode == 0 and rmbg.__version__ in proc.stdout.decode()
        help_text = subprocess.run(
            [*launcher, "cutout", "--help"], capture_output=True, env=env, timeout=60, check=False
        ).stdout.decode()
        assert "--backend {openvino,torch}" in help_text and "fake" not in help_text


# ---------------------------------------------------------------------------------------------
# real weights on OpenVINO
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realweights
def test_real_weights_cutout_verify_export(standin_dir, tmp_path, env):
    """One conversion (f32 IR, shared cache) serves the cutouts, the parity check and the export."""
    model = ["--model", str(standin_dir)]
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(PHOTO_DIR / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    proc = run(
        "cutout",
        "photos",
        "--out-dir",
        "out",
        "--device",
        "CPU",
        "--json",
        "-v",
        *model,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 1, err(proc)
    assert "THROUGHPUT hint" in err(proc)  # a folder: the backend's batch options
    s = summary(proc)
    assert s["processed"] == 2 and [Path(f["input"]).name for f in s["failed"]] == ["broken.jpg"]
    alpha = np.asarray(assert_complete_image(tmp_path / "out" / "chelsea.png"))[..., 3]
    assert alpha.shape == (300, 451) and alpha.max() == 255 and alpha.min() == 0
    assert 0.1 < (alpha >= 128).mean() < 0.9  # a subject, not everything or nothing

    proc = run(
        "verify",
        str(PHOTO_DIR / "chelsea.jpg"),
        "--json",
        *model,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, err(proc)
    report = json.loads(proc.stdout)
    assert (
        report["ok"] and report["images"][0]["max_diff"] <= 1 and report["images"][0]["iou"] >= 0.99
    )

    proc = run("export", "--precision", "f32", "ir", *model, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, err(proc)
    xml, bin_, meta = (tmp_path / "ir" / f"rmbg-1.4{e}" for e in (".xml", ".bin", ".json"))
    assert proc.stdout.decode().split() == [str(p.relative_to(tmp_path)) for p in (xml, bin_, meta)]
    assert json.loads(meta.read_text())["input"]["shape"] == [1, 3, 1024, 1024]
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU")
    assert len(compiled.outputs) == 1 and list(compiled.input(0).shape) == [1, 3, 1024, 1024]
    assert not stray_files(tmp_path / "ir")


def test_verify_without_torch_names_the_extra(tmp_path, env):
    """`verify` needs the PyTorch reference: without torch it says which extra to install."""
    blocked = tmp_path / "blocked" / "torch"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ModuleNotFoundError('no torch here', name='torch')\n"
    )
    env = {**env, "PYTHONPATH": os.pathsep.join([str(blocked.parent), env["PYTHONPATH"]])}
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"never read: torch is missing first")
    proc = run("verify", "--model", str(checkpoint), env=env, cwd=tmp_path)
    assert proc.returncode == 1, err(proc)
    assert "'torch' backend" in err(proc) and 'pip install "rmbg[torch]"' in err(proc)
