"""MkDocs hooks (mkdocs.yml ``hooks:``) for the API pages.

The docstrings cross-reference in Sphinx's roles (``:class:`Attention```, ``:func:`~.significance.seed_test```),
which mkdocstrings renders as the role's name followed by the code. This drops the role and, as Sphinx does
for a ``~`` target, keeps only the last component of the name.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:attr|class|data|exc|func|meth|mod|obj):<code>(~)?([^<]*)</code>")


def _plain(match: re.Match) -> str:
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2].lstrip(".")
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_plain, html)
