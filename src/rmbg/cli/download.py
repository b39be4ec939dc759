"""``rmbg download``: fetch the checkpoint into the Hugging Face cache ahead of time, with the
licence printed first and the gating steps when the Hub refuses."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import GatedModelError
from .flags import add_log_arguments, default_model
from .runtime import EXIT_FAILED, EXIT_OK

__all__ = ["add_arguments", "run"]

logger = logging.getLogger("rmbg.cli")

_EXAMPLES = """\
examples:
  rmbg download                                     # briaai/RMBG-1.4 into the Hub cache
  HF_TOKEN=hf_... rmbg download --revision main
  rmbg download --model myorg/my-rmbg-finetune
"""
_LICENCE = """\
RMBG-1.4 weights: BRIA AI's licence 'bria-rmbg-1.4', non-commercial use only.
Commercial use needs an agreement with BRIA. rmbg never bundles or re-hosts the weights.
Terms: https://huggingface.co/{repo}"""
_GATING = """\
The repository is gated. To download it:
  1. accept the licence at https://huggingface.co/{repo} with your Hugging Face account;
  2. create a read token at https://huggingface.co/settings/tokens and export HF_TOKEN=<token>
     (or run `hf auth login`);
  3. run `rmbg download` again."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_log_arguments(parser)
    parser.add_argument(
        "--model", metavar="REPO", help="Hub repo id (default: $RMBG_MODEL, else briaai/RMBG-1.4)"
    )
    parser.add_argument("--revision", help="branch, tag or commit to fetch")
    parser.epilog = _EXAMPLES


def run(args: argparse.Namespace) -> int:
    from .. import weights

    repo = default_model(args.model)
    if Path(repo).expanduser().exists():
        print(f"{repo} is a local path: nothing to download.", file=sys.stderr)
        return EXIT_OK
    print(_LICENCE.format(repo=repo), file=sys.stderr)
    logger.info("downloading %s%s", repo, f" at {args.revision}" if args.revision else "")
    try:
        folder = weights.download(repo, revision=args.revision)
    except GatedModelError as exc:
        logger.error("%s", exc)
        print(_GATING.format(repo=repo), file=sys.stderr)
        return EXIT_FAILED
    print(folder)
    return EXIT_OK
