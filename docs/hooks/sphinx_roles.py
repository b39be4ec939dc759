"""Griffe extension for the API pages: the docstrings' Sphinx roles shown as code.

rmbg's docstrings are Google style with Sphinx cross-reference roles (``:class:`~rmbg.x.Y```,
``:meth:`cutout```), the spelling IDEs and ``help()`` readers know. mkdocstrings does not read
roles and printed them as raw text (``:class:`~rmbg.options.CutoutOptions```). This rewrites
each role as inline code before the pages are rendered (``~`` keeps the last name only, as in
Sphinx; functions and methods get their ``()``), and reST's ``::`` before a literal block as one
colon. Loaded by ``mkdocs.yml`` (mkdocstrings' ``extensions`` option); the source stays as is.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj):`(~?)([^`]+)`")
#: reStructuredText's "introduces a literal block" colons at the end of a line
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def rewrite(text: str) -> str:
    """Every role in ``text`` as inline code (``:meth:`~a.B.c``` -> ```c()```), and a line's
    closing ``::`` as one colon."""

    def code(match: re.Match[str]) -> str:
        short, target = match.group(1), match.group(2).strip()
        shown = target.rsplit(".", 1)[-1] if short else target
        if match.group(0).startswith((":meth:", ":func:")) and not shown.endswith(")"):
            shown += "()"
        return f"`{shown}`"

    return LITERAL_BLOCK.sub(":", ROLE.sub(code, text))


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
