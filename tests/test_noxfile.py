"""The README's test command (`nox -s tests`) from a plain clone: without a checkpoint and without
the team's stand-in builder it fails at once, before installing anything, naming the routes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's noxfile in a folder with no ../shared beside it."""
    repo = tmp_path / "elsewhere" / "rmbg"
    repo.mkdir(parents=True)
    shutil.copy(ROOT / "noxfile.py", repo / "noxfile.py")
    return repo


def run_nox(repo: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RMBG_TEST_CHECKPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME")
    }
    clean.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    return subprocess.run(
        [sys.executable, "-m", "nox", "-s", "tests", "--envdir", str(tmp_path / "nox")],
        cwd=repo,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_checkpoint_fails_at_once_naming_the_three_routes(clone, tmp_path):
    done = run_nox(clone, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "No checkpoint for the real-weight tests" in out
    assert "RMBG_TEST_CHECKPOINT=/path/to/checkpoint" in out  # 1. your folder
    assert "HF_TOKEN=hf_" in out and "hf auth login" in out  # 2. the official weights
    assert "standin-checkpoint" in out  # 3. the builder, where it exists
    assert "pip install" not in out  # decided before installing anything


def test_a_folder_without_weights_is_refused_at_once(clone, tmp_path):
    done = run_nox(clone, tmp_path, RMBG_TEST_CHECKPOINT=str(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "has no model.safetensors" in out, out
    assert "pip install" not in out
