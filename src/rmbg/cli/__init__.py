"""The ``rmbg`` command line (also ``python -m rmbg``). See ``docs/cli.md`` for the user guide.

Exit codes:
    0: everything asked for was done (skipped outputs count as done).
    1: something failed: some inputs (each is reported with its reason, the rest are still
       processed), an output that cannot be written, the model could not be loaded, or
       ``verify`` found a parity failure.
    2: usage error: unknown or incompatible flags, an option the backend or device cannot honour.
    130 / 143: interrupted by SIGINT (Ctrl-C) / SIGTERM; no partial output is left behind.

Layout: each subcommand is a module registered in :data:`COMMANDS` (name -> module, one-line
help) that exposes ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when
that subcommand runs or its ``--help`` is built. A module may serve several commands (``cutout``
and ``mask`` share :mod:`rmbg.cli.images`): ``parser.get_default("command")`` and
``args.command`` name the one asked for. Every subcommand has the ``-v``/``-q`` flags
(:func:`rmbg.cli.flags.add_log_arguments`; added after the module's own unless it places them). Shared flags and what they turn into (typed options, a
remover) live in :mod:`rmbg.cli.flags`; signals, atomic writes, progress, exit codes and the run
summary in :mod:`rmbg.cli.runtime`. Logs go to stderr, image data and ``--json`` to stdout. The
library itself never prints; only this package does.

Adding a subcommand: write ``rmbg/cli/NAME.py`` with ``add_arguments`` (set ``parser.epilog`` to
its examples) and ``run``, and add a line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple

from .._version import __version__
from ..errors import DeviceNotFoundError, RmbgError, UnknownBackendError, UnsupportedOptionError
from .flags import add_log_arguments
from .runtime import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    Interrupted,
    UsageError,
    logging_to_stderr,
)

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "Command",
    "build_parser",
    "main",
]

logger = logging.getLogger("rmbg.cli")


class Command(NamedTuple):
    """A subcommand: the module that implements it and its one-line help."""

    module: str
    help: str


#: The subcommands, in the order ``rmbg --help`` lists them.
COMMANDS: dict[str, Command] = {
    "cutout": Command("rmbg.cli.images", "cut out the subject: RGBA, or over a --background"),
    "mask": Command("rmbg.cli.images", "write the subject's alpha mask (greyscale)"),
    "devices": Command("rmbg.cli.devices", "list the OpenVINO devices and torch/CUDA availability"),
    "download": Command(
        "rmbg.cli.download", "fetch the checkpoint into the Hugging Face cache ahead of time"
    ),
    "export": Command(
        "rmbg.cli.export", "write the converted OpenVINO IR (.xml/.bin + .json) for deployment"
    ),
    "verify": Command(
        "rmbg.cli.verify",
        "run the PyTorch and OpenVINO backends side by side and print parity and timings",
    ),
    "info": Command("rmbg.cli.info", "versions, cache location and size, the model files in use"),
    "video": Command("rmbg.cli.video", "cut the subject out of a clip (needs rmbg[video])"),
    "serve": Command("rmbg.cli.serve", "serve background removal over HTTP (needs rmbg[serve])"),
    "demo": Command(
        "rmbg.cli.demo", "a browser demo on this machine: drop a photo, get its cutout (rmbg[demo])"
    ),
    "cache": Command(
        "rmbg.cli.cache", "list, clear or verify rmbg's cache of converted models (where, sizes)"
    ),
}

#: Library errors that mean "the options are wrong" rather than "something broke".
_USAGE_ERRORS = (UnknownBackendError, DeviceNotFoundError, UnsupportedOptionError)

_EXAMPLES = """\
examples:
  rmbg cutout photo.jpg                        # writes photo.cutout.png beside it
  rmbg cutout photos/ -r --out-dir cutouts/    # a folder tree, structure kept
  cat a.jpg | rmbg cutout - > a.png            # stdin to stdout
  rmbg mask photo.jpg -o mask.png --threshold 0.5
  rmbg devices && rmbg info
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name].module)


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``rmbg`` argument parser (exposed for documentation tools and tests).

    Args:
        commands: The subcommands whose flags are added (their modules are imported); the others
            are listed with their help only. Default: all of them.
    """
    parser = argparse.ArgumentParser(
        prog="rmbg",
        description="Remove image backgrounds with BRIA RMBG-1.4 (OpenVINO, PyTorch).",
        epilog=_EXAMPLES
        + "\nexit codes: 0 ok, 1 some inputs failed (or the model could not be loaded), "
        "2 usage error,\n            130/143 interrupted (SIGINT/SIGTERM).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"rmbg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = COMMANDS if commands is None else commands
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name, help=command.help, description=command.help, formatter_class=_Formatter
        )
        p.set_defaults(command=name, subparser=p)
        if name in wanted:
            _module(name).add_arguments(p)
            if p.get_default("verbose") is None:  # the module did not place the log flags itself
                add_log_arguments(p)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the top level takes no option values)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it).

    Args:
        argv: The arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 1 failures, 2 usage error, 130/143 interrupted.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--ray" in args_list:  # `--ray [ADDRESS]`: the on_ray module only when it is used
        from .on_ray import normalize_argv

        args_list = normalize_argv(args_list)
    name = _command_in(args_list)
    parser = build_parser([name] if name else [])
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or argparse's own usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with logging_to_stderr(args.verbose, args.quiet):
        try:
            code: int = _module(args.command).run(args)
            return code
        except UsageError as exc:
            sub: argparse.ArgumentParser = args.subparser
            sub.print_usage(sys.stderr)
            print(f"{sub.prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except _USAGE_ERRORS as exc:
            logger.error("%s", exc)
            return EXIT_USAGE
        except (RmbgError, OSError) as exc:  # e.g. offline without a cached model; disk full
            logger.error("%s", exc)
            return EXIT_FAILED
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            logger.error("interrupted by %s", signal.Signals(signum).name)
            return 128 + signum
