"""MkDocs hook: leave out of the nav the pages named in ``extra.optional_pages`` that do not exist.

Pages that a later change adds (the demo, serving, video...) can then be listed in ``mkdocs.yml``
in their final place ahead of time. Any other nav entry whose file is missing still fails the
``--strict`` build, as it should.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.optional_pages")


def _prune(items: list[Any], optional: set[str], docs: Path, dropped: list[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            (title, value), *_ = item.items()
            if isinstance(value, list):
                children = _prune(value, optional, docs, dropped)
                if children:
                    kept.append({title: children})
                continue
            if isinstance(value, str) and value in optional and not (docs / value).exists():
                dropped.append(value)
                continue
        elif isinstance(item, str) and item in optional and not (docs / item).exists():
            dropped.append(item)
            continue
        kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    optional = set(config.extra.get("optional_pages", ()))
    if optional and config.nav:
        dropped: list[str] = []
        config.nav = _prune(config.nav, optional, Path(config.docs_dir), dropped)
        if dropped:
            log.info("optional pages not written yet, left out of the nav: %s", ", ".join(dropped))
    return config
