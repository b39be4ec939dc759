"""Shared fixtures. The real-weight tests need a checkpoint in RMBG-1.4's layout: set
``RMBG_TEST_CHECKPOINT``, or let the suite build the offline stand-in at
``~/.cache/rmbg-ci/standin`` with ``../shared/tools/standin-checkpoint`` (run every session: it
returns at once when the folder is current and rebuilds an older version). Missing, those tests
fail with instructions: they never skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STANDIN_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "standin-checkpoint"
DEFAULT_STANDIN = Path.home() / ".cache" / "rmbg-ci" / "standin"


def _standin_path() -> Path:
    env = os.environ.get("RMBG_TEST_CHECKPOINT")
    return Path(env).expanduser() if env else DEFAULT_STANDIN


def _refresh_standin(path: Path) -> None:
    """Run the stand-in builder on ``path`` when it is the stand-in's folder (the default one, or
    one the builder stamped): a real checkpoint named by RMBG_TEST_CHECKPOINT is never touched."""
    if not STANDIN_TOOL.is_file():
        return
    if path != DEFAULT_STANDIN and not (path / "standin.json").is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, str(STANDIN_TOOL), str(path)], capture_output=True, text=True
    )
    if run.returncode != 0:
        pytest.fail(f"{STANDIN_TOOL} {path} failed:\n{run.stdout}{run.stderr}")


@pytest.fixture(scope="session")
def standin_dir() -> Path:
    """The real-weight checkpoint folder (config.json + model.safetensors + onnx/)."""
    path = _standin_path()
    _refresh_standin(path)
    if not (path / "model.safetensors").is_file():
        pytest.fail(
            f"No checkpoint at {path}. Build the offline stand-in with "
            f"`python ../shared/tools/standin-checkpoint {path}` (or run `nox -s tests`), or set "
            "RMBG_TEST_CHECKPOINT to a folder with config.json + model.safetensors."
        )
    return path


@pytest.fixture(autouse=True)
def _isolated_rmbg_cache(tmp_path_factory, monkeypatch):
    """Every test writes converted models into a session-private cache, never the user's."""
    if "RMBG_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "rmbg-cache"))
