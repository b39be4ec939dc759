"""The shape of the CLI package: a table of subcommands, each a module imported only when it runs,
small modules, and no reaching into the library's private parts."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rmbg.cli
from rmbg.cli import COMMANDS, build_parser

PACKAGE = Path(rmbg.cli.__file__).parent
SRC = PACKAGE.parents[1]


def test_every_command_module_exposes_add_arguments_and_run():
    for name, command in COMMANDS.items():
        module = importlib.import_module(command.module)
        assert callable(module.add_arguments) and callable(module.run), name
        assert command.help and "\n" not in command.help


@pytest.mark.parametrize(
    ("argv", "imported"),
    [
        (["--version"], set()),
        (["devices", "--json"], {"devices"}),
        (["info", "--help"], {"info"}),
        (["mask", "--help"], {"images", "on_ray"}),  # --ray is one of its flags
    ],
)
def test_a_command_imports_only_its_own_module(argv, imported):
    code = (
        "import sys, contextlib, io\n"
        "from rmbg.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({argv!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('rmbg.cli.')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {m.removeprefix("rmbg.cli.") for m in json.loads(proc.stdout.replace("'", '"'))}
    assert loaded == {"flags", "runtime"} | imported


def test_full_parser_lists_every_command_with_its_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    for name, p in sub.choices.items():
        assert p.get_default("command") == name
        assert p.get_default("verbose") == 0, name  # every command has -v/-q
        assert p.epilog and f"rmbg {name}" in p.epilog


def test_modules_are_small_and_touch_no_private_library_names():
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) < 700, path.name
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level:
                for alias in node.names:
                    assert not alias.name.startswith("_") or alias.name == "__version__", (
                        path.name,
                        alias.name,
                    )
            # no obj._private on anything but the module's own names (self, cls, _SignalGate)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                if node.attr.startswith("__"):
                    continue
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                assert owner in {"self", "cls", "_SignalGate"}, (path.name, node.lineno, node.attr)
