"""``rmbg demo``: the browser demo (:mod:`rmbg.demo`), on this machine only unless asked."""

from __future__ import annotations

import argparse

from . import flags

_EXAMPLES = """\
examples:
  rmbg demo                                   # http://127.0.0.1:7860, this machine only
  rmbg demo --port 8080 --precision f32
  rmbg demo --host 0.0.0.0                    # reachable from the network: mind who can reach it
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("server")
    g.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    g.add_argument(
        "--port", type=int, default=None, help="port (default: 7860, or the next free one)"
    )
    g.add_argument(
        "--share",
        action="store_true",
        help="also open a temporary public gradio.live link (off by default)",
    )
    g.add_argument(
        "--max-upload-mb",
        type=float,
        default=50.0,
        metavar="MB",
        help="largest upload accepted (default: 50)",
    )
    g.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="requests computed at once (default: 1)",
    )
    g.add_argument(
        "--max-queue",
        type=int,
        default=16,
        metavar="N",
        help="requests that may wait; more are refused at once (default: 16)",
    )
    flags.add_model_arguments(parser)
    flags.add_log_arguments(parser)
    parser.set_defaults(max_pixels=None)
    parser.epilog = _EXAMPLES


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..remover import BackgroundRemover

    backend_options = flags.backend_options_from_args(args)
    remover = flags.remover_from_args(args, backend_options)  # loaded and compiled before serving
    remover.warmup()

    def make(precision: str) -> BackgroundRemover:
        keywords = {**flags.remover_keywords(args, backend_options), "precision": precision}
        return BackgroundRemover(remover.source, **keywords)

    run_demo(
        remover,
        host=args.host,
        port=args.port,
        share=args.share,
        max_upload_mb=args.max_upload_mb,
        make_remover=make,
        concurrency=args.concurrency,
        max_queue=args.max_queue,
    )
    return 0
