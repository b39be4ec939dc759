"""What the CLI documentation shows is what the CLI does (issue 11 item 9): the ``--json`` example
of docs/cli.md is a real run's output, and the README's first command leaves nothing in the
repository but a git-ignored folder."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from rmbg.cli import flags

from .test_cli import env, err, fake, make_image, run

__all__ = ["env", "fake"]  # fixtures shared with test_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offer_fake_backend(monkeypatch):
    monkeypatch.setattr(flags, "HIDDEN_BACKENDS", frozenset())


def _json_example() -> tuple[str, str]:
    """docs/cli.md's ``--json`` example: its command line and its JSON text."""
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text[text.index("`--json` prints one JSON object") :]
    command = re.search(r"For `(rmbg [^`]+)`", section)
    block = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert command is not None and block is not None
    return command.group(1), block.group(1)


def test_the_json_example_in_docs_cli_is_what_the_cli_prints(tmp_path, env, fake):
    command, documented = _json_example()
    assert command == "rmbg cutout many/ --out-dir o2/ --json"
    make_image(tmp_path / "many" / "c1.jpg", seed=1)
    make_image(tmp_path / "many" / "c2.jpg", seed=2)
    (tmp_path / "many" / "bad.jpg").write_text("this is not a JPEG\n")  # "a text file"
    proc = run(*shlex.split(command)[1:], *fake, env=env, cwd=tmp_path)
    assert proc.returncode == 1, err(proc)
    real = json.loads(proc.stdout)
    assert real["seconds"] >= 0
    real["seconds"] = json.loads(documented)["seconds"]  # the one figure that varies
    assert json.dumps(real, indent=2) == documented  # the same text, error messages included


def test_the_readme_first_command_writes_into_a_git_ignored_folder():
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quickstart") :]
    first = re.search(r"rmbg cutout (\S+) -o (\S+)", quick)
    assert first is not None
    output = Path(first.group(2))
    assert len(output.parts) > 1, "the README's cutout lands in the repository root"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"/{output.parts[0]}/" in ignored
    assert (ROOT / first.group(1)).is_file()  # the bundled photo it cuts out exists
    with Image.open(ROOT / first.group(1)) as im:
        assert im.size[0] > 0
