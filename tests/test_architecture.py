"""The layering, read from the source (AST), not by eye.

::

    frontends      cli/ (and demo, serve, ray, video)          parse inputs -> typed options
    facade         remover  (+ quantize: the INT8 build step)   one pipeline for all of them
    options        options                                      validated once
    pipeline       io, preprocess, pipeline, postprocess, compose, decontaminate   pure numpy
    backends       backends/*                                   float32 NCHW in, float32 out
    foundations    source, specs, errors, cache, weights, metrics, photos, _validate, ...

A backend never imports the pipeline above it, the pipeline never imports a backend, and no module
reaches into another's private names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rmbg"
MAX_LINES = 700

#: What backends must never import: everything above them.
ABOVE_BACKENDS = (
    "rmbg.remover",
    "rmbg.io",
    "rmbg.compose",
    "rmbg.decontaminate",
    "rmbg.options",
    "rmbg.pipeline",
    "rmbg.quantize",
    "rmbg.cli",
    "rmbg.demo",
    "rmbg.serve",
    "rmbg.ray",
    "rmbg.video",
    "rmbg.plot",
)
#: The shared numpy pipeline: imports no backend.
PIPELINE = (
    "rmbg.io",
    "rmbg.preprocess",
    "rmbg.postprocess",
    "rmbg.compose",
    "rmbg.decontaminate",
    "rmbg.options",
    "rmbg.pipeline",
)


def module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = SRC) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def is_package(name: str, known: dict[str, Path]) -> bool:
    return known[name].name == "__init__.py"


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[int, str, str | None]]:
    """``(line, imported module, imported name or None)`` for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if is_package(name, known) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                yield node.lineno, target, alias.name


def violations_of(known: dict[str, Path], root: Path = SRC) -> list[str]:
    found = []
    for name, path in known.items():
        for line, target, imported in imports(name, path, known):
            where = f"{path.relative_to(root.parent)}:{line}"
            full = f"{target}.{imported}" if imported else target
            is_module = imported is not None and full in known
            if name.startswith("rmbg.backends"):
                for above in ABOVE_BACKENDS:
                    if full == above or full.startswith(above + ".") or target == above:
                        found.append(f"{where}: backend {name} imports {above} (above it)")
            if name in PIPELINE and (
                target.startswith("rmbg.backends") or full.startswith("rmbg.backends")
            ):
                found.append(f"{where}: {name} imports the backend layer ({full})")
            if (
                imported
                and imported.startswith("_")
                and not imported.startswith("__")
                and target.startswith("rmbg")
                and target != name
                and not is_module
            ):
                found.append(f"{where}: {name} imports the private name {imported} of {target}")
    return found


def test_layering_and_private_names():
    assert violations_of(modules()) == []


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(SRC.parent)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules (> {MAX_LINES} lines): {long}"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("backends/evil.py", "from ..remover import BackgroundRemover\n", "above it"),
        ("backends/evil.py", "import rmbg.quantize\n", "above it"),
        ("backends/evil.py", "from rmbg.io import load_image\n", "above it"),
        ("compose.py", "from .backends.openvino import OpenVINOBackend\n", "backend layer"),
        ("preprocess.py", "import rmbg.backends.torch\n", "backend layer"),
        ("thing.py", "from .backends.torch import _load_module\n", "private name"),
        ("thing.py", "from . import _parallel\n", None),
        ("thing.py", "from ._validate import is_int\n", None),
    ],
)
def test_the_checks_catch_violations(tmp_path, module, source, expected):
    """Each rule fails on a planted violation, in a copy of the tree (and allows what it allows)."""
    root = tmp_path / "rmbg"
    for path in SRC.rglob("*.py"):
        dest = root / path.relative_to(SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text())
    planted = root / module
    planted.write_text(planted.read_text() + source if planted.exists() else source)
    found = violations_of(modules(root), root)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found
