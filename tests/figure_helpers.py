"""Reading the figures (matplotlib SVG) in tests: the texts drawn, the ids, the figure of a
page by its caption."""

from __future__ import annotations

import html
import re
from xml.etree import ElementTree


def figure_on_page(page: str, title: str) -> str:
    """The ``<figure>`` of ``page`` whose caption is ``title``."""
    caption = page.index(f"<strong>{html.escape(title)}</strong>")
    start = page.rindex("<figure", 0, caption)
    return page[start : page.index("</figure>", caption) + len("</figure>")]


def svg_texts(svg: str) -> set[str]:
    """Every text a matplotlib SVG draws (text is drawn as paths; matplotlib keeps each
    text's words in a comment before it), lines of a wrapped text joined by a space."""
    return {
        " ".join(html.unescape(t).split()) for t in re.findall(r"<!-- (.*?) -->", svg, flags=re.S)
    }


def svg_ids(page: str) -> list[str]:
    return re.findall(r'\bid="([^"]+)"', page)


def parse_svg(svg: str) -> ElementTree.Element:
    """The SVG parsed as XML (raises if it is not well formed)."""
    return ElementTree.fromstring(svg)
