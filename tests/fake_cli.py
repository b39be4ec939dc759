"""``python tests/fake_cli.py ARGS``: the ``rmbg`` command line with the test backend offered.

The real command line hides ``--backend fake`` (it computes no real mask); the CLI tests run this
instead of ``python -m rmbg`` so that their subprocesses use it: everything else is the real CLI.
"""

from __future__ import annotations

import sys

from rmbg.cli import flags, main

flags.HIDDEN_BACKENDS = frozenset()

if __name__ == "__main__":
    sys.exit(main())
