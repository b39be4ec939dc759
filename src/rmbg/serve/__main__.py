"""``python -m rmbg.serve``: the same as ``rmbg serve``."""

from __future__ import annotations

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
