"""Shared fixtures. The real-weight tests need a checkpoint in RMBG-1.4's layout: set
``RMBG_TEST_CHECKPOINT`` or build the offline stand-in at ``~/.cache/rmbg-ci/standin``
(``nox -s tests`` does it). Missing, those tests fail with instructions: they never skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _standin_path() -> Path:
    env = os.environ.get("RMBG_TEST_CHECKPOINT")
    return Path(env) if env else Path.home() / ".cache" / "rmbg-ci" / "standin"


@pytest.fixture(scope="session")
def standin_dir() -> Path:
    """The real-weight checkpoint folder (config.json + model.safetensors + onnx/)."""
    path = _standin_path()
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
