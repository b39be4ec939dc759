"""Developer sessions: ``nox -s tests`` (the README's test command, also what CI runs), ``lint``,
``typecheck``, ``build``, ``bench`` (the benchmark suite, see ``docs/performance.md``), ``notorch``
(an install without PyTorch, also run in CI).

CPU PyTorch is installed first (``torch==2.13.0`` resolves to a local CPU wheel on the project's
machines; any other torch requirement would pull several GB of CUDA wheels).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
TORCH = os.environ.get("RMBG_TORCH_REQUIREMENT", "torch==2.13.0")
STANDIN_TOOL = ROOT.parent / "shared" / "tools" / "standin-checkpoint"


def standin_checkpoint(session: nox.Session) -> str:
    """The offline stand-in checkpoint for the real-weight tests: built once, cached."""
    existing = os.environ.get("RMBG_TEST_CHECKPOINT")
    if existing:
        return existing
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rmbg-ci" / "standin"
    if not (cache / "model.safetensors").exists():
        if not STANDIN_TOOL.exists():
            session.error(
                f"No stand-in checkpoint at {cache} and no builder at {STANDIN_TOOL}. Set "
                "RMBG_TEST_CHECKPOINT to a checkpoint folder (config.json + model.safetensors)."
            )
        cache.parent.mkdir(parents=True, exist_ok=True)
        session.run("python", str(STANDIN_TOOL), str(cache))
    return str(cache)


@nox.session
def tests(session: nox.Session) -> None:
    """The full suite, slow and real-weight tests included."""
    session.install(TORCH)
    session.install("-e", ".[test]")
    checkpoint = standin_checkpoint(session)
    session.run(
        "python", "-m", "pytest", *(session.posargs or ["-q"]),
        env={"RMBG_TEST_CHECKPOINT": checkpoint},
    )


def _site_packages_mib(session: nox.Session) -> float:
    """Installed size of the session's site-packages in MiB (the blocks ``du -sh`` counts)."""
    path = session.run(
        "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", silent=True
    )
    total = 0
    for root, _dirs, files in os.walk(str(path).strip()):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / 2**20


@nox.session(reuse_venv=False)
def notorch(session: nox.Session) -> None:
    """``pip install rmbg[int8]`` in a fresh environment without PyTorch: a cutout on the stand-in
    through the library and the CLI, and INT8, with an empty cache; fails if torch is installed or
    imported. ``nox -s notorch -- --no-int8`` skips the INT8 quantization (about 4 minutes on 2
    cores)."""
    session.install(".[int8]")  # a regular (non-editable) install, as a user gets it
    session.run("python", "-m", "pip", "check")
    checkpoint = standin_checkpoint(session)
    work = Path(session.create_tmp()) / "notorch"
    shutil.rmtree(work, ignore_errors=True)  # an empty cache every run
    work.mkdir(parents=True)
    session.run(
        "python", str(ROOT / "tests" / "notorch_smoke.py"), checkpoint, str(work), *session.posargs
    )
    session.log(f"site-packages without torch: {_site_packages_mib(session):.0f} MiB")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install(TORCH)
    session.install("-e", ".[all]", "mypy>=1.10")
    session.run("mypy", "--strict", "src/rmbg")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel, and check that the wheel carries no weights."""
    session.install("build")
    session.run("python", "-m", "build", "--outdir", "dist")
    wheels = sorted((ROOT / "dist").glob("rmbg-*.whl"))
    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheels[-1])], capture_output=True, text=True, check=True
    ).stdout
    for bad in (".safetensors", ".onnx", ".bin", ".pth"):
        if bad in listing:
            session.error(f"the wheel contains a {bad} file; weights must never ship")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite on the stand-in checkpoint: prints ratios, writes
    ``benchmarks/results/*.json`` and ``docs/performance.png``. Arguments after ``--`` go to
    ``benchmarks/bench.py`` (e.g. ``nox -s bench -- --quick``)."""
    session.install(TORCH)
    session.install("-e", ".[bench]")
    checkpoint = standin_checkpoint(session)
    session.run(
        "python", "benchmarks/bench.py", *session.posargs, env={"RMBG_TEST_CHECKPOINT": checkpoint}
    )
