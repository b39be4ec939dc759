"""Developer sessions: ``nox -s tests`` (the README's test command, also what CI runs), ``lint``,
``typecheck``, ``build``, ``bench`` (the benchmark suite, see ``docs/performance.md``),
``bench_video`` (``benchmarks/video.py``, see ``docs/video.md``),
``bench_serve`` (the HTTP service against the library, see ``docs/serve.md``), ``docs`` (the
documentation site) and ``examples`` (runs every script in ``examples/``), ``notorch`` (an install without
PyTorch, also run in CI).

CPU PyTorch is installed first (``torch==2.13.0`` resolves to a local CPU wheel on the project's
machines; any other torch requirement would pull several GB of CUDA wheels).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
TORCH = os.environ.get("RMBG_TORCH_REQUIREMENT", "torch==2.13.0")
STANDIN_TOOL = ROOT.parent / "shared" / "tools" / "standin-checkpoint"


ROUTES = """\
The real-weight tests need an RMBG-1.4 checkpoint. Any one of these works:
  1. a checkpoint folder of yours (config.json + model.safetensors, the Hub layout):
       RMBG_TEST_CHECKPOINT=/path/to/checkpoint nox -s tests
  2. the official weights from the Hugging Face Hub (accept the licence at
     https://huggingface.co/briaai/RMBG-1.4, then set HF_TOKEN or run `hf auth login`):
       HF_TOKEN=hf_... nox -s tests
  3. the project's offline stand-in builder, where it exists (the team's machines and CI):
       ../shared/tools/standin-checkpoint (needs npm)"""


def _hf_token() -> str | None:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    stored = home / "token"
    return stored.read_text().strip() if stored.is_file() else None


def checkpoint_route(session: nox.Session) -> tuple[str, str]:
    """Which checkpoint the real-weight tests will use, decided before anything is installed:
    ``("folder", path)``, ``("standin", path)`` or ``("hub", repo)``. Fails at once, naming the
    three routes, when none is available."""
    existing = os.environ.get("RMBG_TEST_CHECKPOINT")
    if existing:
        folder = Path(existing).expanduser()
        if not (folder / "model.safetensors").is_file():
            session.error(f"RMBG_TEST_CHECKPOINT={existing} has no model.safetensors.\n{ROUTES}")
        return "folder", str(folder)
    if STANDIN_TOOL.exists():
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return "standin", str(cache / "rmbg-ci" / "standin")
    if _hf_token():
        return "hub", "briaai/RMBG-1.4"
    session.error(f"No checkpoint for the real-weight tests.\n{ROUTES}")
    raise AssertionError  # session.error raises


def standin_checkpoint(session: nox.Session, route: tuple[str, str]) -> str:
    """The checkpoint folder of ``route``, built or downloaded with the session's Python."""
    kind, where = route
    if kind == "standin":
        # every time: the tool returns at once when the folder is current, and rebuilds an old one
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        session.run("python", str(STANDIN_TOOL), where)
    elif kind == "hub":
        where = (
            session.run(
                "python",
                "-c",
                "import rmbg.weights as w; print(w.download())",
                silent=True,
            )
            .strip()
            .splitlines()[-1]
        )
    return where


CHROMIUM = Path(os.environ.get("RMBG_CHROMIUM", "/usr/bin/chromium"))


def ensure_chromium(session: nox.Session) -> None:
    """Debian's Chromium for the demo's browser test (tests/test_demo.py drives it through
    Playwright, whose own browser download is not reachable from the project's machines):
    installed with apt when it is missing and this session may (root on a Debian machine)."""
    if CHROMIUM.is_file():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error(
            f"No Chromium at {CHROMIUM}: install Debian's `chromium` package (or set "
            "RMBG_CHROMIUM to a Chromium binary); tests/test_demo.py needs it."
        )
    session.run("apt-get", "update", "-qq", external=True)
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "chromium",
        external=True,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The full suite, slow and real-weight tests included."""
    route = checkpoint_route(session)  # before installing anything: fail in the first second
    session.install(TORCH)
    session.install("-e", ".[test]")
    checkpoint = standin_checkpoint(session, route)
    ensure_chromium(session)
    session.run(
        "python",
        "-m",
        "pytest",
        *(session.posargs or ["-q"]),
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
    route = checkpoint_route(session)
    session.install(".[int8]")  # a regular (non-editable) install, as a user gets it
    session.run("python", "-m", "pip", "check")
    checkpoint = standin_checkpoint(session, route)
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
    paths = ("src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install(TORCH)
    session.install("-e", ".[all]", "mypy>=1.10")
    session.run("mypy", "--strict", "src/rmbg")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel into a fresh folder; check that the wheel has the package data
    rmbg needs (py.typed, the bundled photos) and that neither archive carries weights."""
    session.install("build")
    out = Path(session.create_tmp()) / "dist"
    if out.exists():
        shutil.rmtree(out)
    session.run("python", "-m", "build", "--outdir", str(out))
    wheel, sdist = next(out.glob("rmbg-*.whl")), next(out.glob("rmbg-*.tar.gz"))
    with zipfile.ZipFile(wheel) as z:
        in_wheel = z.namelist()
    with tarfile.open(sdist) as t:
        in_sdist = t.getnames()
    for needed in (
        "rmbg/py.typed",
        "rmbg/data/photos/heldout/camera.jpg",
        "rmbg/cache/__init__.py",
    ):
        if needed not in in_wheel:
            session.error(f"the wheel lacks {needed}")
    for name in in_wheel + in_sdist:
        if name.endswith((".safetensors", ".onnx", ".bin", ".pth", ".pt")):
            session.error(f"{name} is in a built archive; weights must never ship")
    session.log(f"{wheel.name}: {len(in_wheel)} files; {sdist.name}: {len(in_sdist)} files")


def _benchmark(session: nox.Session, script: str, extras: str) -> None:
    """Run ``benchmarks/<script>`` on the test checkpoint with ``rmbg[<extras>]`` installed;
    arguments after ``--`` go to the script."""
    route = checkpoint_route(session)
    session.install(TORCH)
    session.install("-e", f".[{extras}]")
    checkpoint = standin_checkpoint(session, route)
    session.run(
        "python", f"benchmarks/{script}", *session.posargs, env={"RMBG_TEST_CHECKPOINT": checkpoint}
    )


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite on the stand-in checkpoint: prints ratios, writes
    ``benchmarks/results/*.json`` and ``docs/performance.png``. Arguments after ``--`` go to
    ``benchmarks/bench.py`` (e.g. ``nox -s bench -- --quick``)."""
    _benchmark(session, "bench.py", "bench")


@nox.session
def bench_video(session: nox.Session) -> None:
    """The video benchmark (``benchmarks/video.py``): 1080p frames/s against the network alone,
    flicker and lag per smoothing strength. Arguments after ``--`` go to the script."""
    _benchmark(session, "video.py", "bench")


@nox.session
def bench_serve(session: nox.Session) -> None:
    """``rmbg serve`` against the library, side by side on 127.0.0.1 (``benchmarks/serve.py``;
    arguments after ``--`` go to it, e.g. ``nox -s bench_serve -- --quick``)."""
    _benchmark(session, "serve.py", "bench,test")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (``mkdocs.yml``), built with ``--strict`` into ``site/``.

    The troubleshooting page's error messages are generated during the build, by making each
    error happen (``docs/hooks/troubleshooting.py``). The pictures are committed; every one is
    made by a script from the stand-in checkpoint:

    - ``docs/images/*``: ``docs/make_pictures.py``; ``nox -s docs -- --pictures`` runs it first;
    - ``docs/performance.png``: the benchmark suite, ``nox -s bench``.

    ``nox -s docs -- serve`` previews the site on http://127.0.0.1:8000 instead of building.
    """
    pictures = "--pictures" in session.posargs
    route = checkpoint_route(session) if pictures else None
    session.install(TORCH)
    # the troubleshooting page raises each error for real, so the extras that raise them are needed
    extras = ["docs", "openvino", "torch", *sorted({"video"} & _extras())]
    session.install("-e", f".[{','.join(extras)}]")
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if route is not None:
        checkpoint = standin_checkpoint(session, route)
        session.run("python", "docs/make_pictures.py", "--model", checkpoint)
    if "serve" in session.posargs:
        session.run("mkdocs", "serve", "--strict", env=env)
    else:
        session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=env)


def _extras() -> set[str]:
    """The project's optional-dependency groups (so that sessions can use ones added later)."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"].get("optional-dependencies", {}))


@nox.session
def examples(session: nox.Session) -> None:
    """Run every script in ``examples/`` on the test checkpoint (``examples/test_examples.py``):
    each must exit 0 and write its outputs, never into the repository. Installs the example
    backend plugin (``examples/plugin``), and the demo and plot extras when the project has them.
    Arguments after ``--`` go to pytest (e.g. ``nox -s examples -- -k folder``)."""
    route = checkpoint_route(session)  # before installing anything, as for the tests
    session.install(TORCH)
    extras = ["openvino", "torch", "int8", "test", *sorted({"demo", "plot"} & _extras())]
    session.install("-e", f".[{','.join(extras)}]")
    session.install("./examples/plugin")
    checkpoint = standin_checkpoint(session, route)
    session.run(
        "python", "-m", "pytest", "examples/test_examples.py", "-ra", "-p", "no:cacheprovider",
        *(session.posargs or ["-q"]),
        env={"RMBG_TEST_CHECKPOINT": checkpoint, "RMBG_MODEL": checkpoint},
    )  # fmt: skip
