"""The house style of every figure (matplotlib, drawn on the server) and its three outputs:
an SVG to put inline in a page, and SVG and PDF files to download for a paper.

A figure is described by a *spec*: a frozen dataclass holding the data and words, whose
``draw(fig)`` draws on a blank :class:`matplotlib.figure.Figure` (no pyplot, no global
figure state). The same spec always gives the same bytes (no date in the files, fixed
hash salt), so a rendered SVG is kept (:func:`svg_file` caches by spec) and the dashboard's
poll costs little once nothing changes.

Style for a paper: 9 pt text, labelled axes, light grid, intervals as error bars, the
legend outside the data, constrained layout and a tight bounding box (nothing overlaps or is
cut). Text is drawn as paths in the SVG (it needs no font; each text's words are kept in a
comment) and embedded as TrueType in the PDF (``pdf.fonttype`` 42, editable in a paper).

Inline (:func:`inline_svg`): no XML prologue or metadata; every id prefixed with the
figure's key, so several figures on one page never share an id; ``<style>`` replaced by
the same presentation attributes on the root (a ``<style>`` inside inline SVG would apply
to the whole page); ``role="img"`` with the title as its accessible name and ``<title>``;
the width is the container's (viewBox kept, no fixed size), so a phone never scrolls
sideways. matplotlib's elements keep their ``style`` attributes: the Content-Security-Policy
allows inline style attributes (settings.py).
"""

from __future__ import annotations

import functools
import io
import logging
import re
import textwrap
import threading
from dataclasses import dataclass
from typing import Protocol

import matplotlib

matplotlib.use("Agg")

from django.http import Http404, HttpResponse  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils.html import escape  # noqa: E402
from django.utils.safestring import SafeString, mark_safe  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# fontTools, which subsets the fonts embedded in a PDF, logs every glyph at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)

#: Series colours (colour-blind safe: Okabe & Ito), then the markers' colours.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
INK, MUTED, GRID = "#1d2329", "#5b6570", "#dfe3e8"
BEST, STOPPED = "#009e73", "#a42020"

#: Figure size for a page and for one column of a paper (inches).
SIZE = (3.6, 2.6)

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "errorbar.capsize": 3,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "svg.fonttype": "path",
    "svg.hashsalt": "studyplatform",
    "pdf.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "savefig.facecolor": "white",
}

#: Metadata that would make two renderings of one figure differ (or say too much).
METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}

CONTENT_TYPES = {"svg": "image/svg+xml", "pdf": "application/pdf"}

# rc_context changes matplotlib's global settings while a figure is drawn and saved: one
# figure at a time per process (a page draws a few small ones, then keeps them).
_LOCK = threading.Lock()


class Spec(Protocol):
    """What a figure needs: its title (the accessible name and the page's caption) and a
    ``draw`` that draws its data on a blank figure (and may have a ``size`` in inches)."""

    title: str

    def draw(self, fig: Figure) -> None: ...


@dataclass(frozen=True)
class EmptyFigure:
    """A figure with nothing to draw yet: its message, in words, where the data would be
    (what a download of such a figure holds)."""

    title: str
    message: str
    size = (3.6, 1.0)

    def draw(self, fig: Figure) -> None:
        fig.text(0.5, 0.5, self.message, ha="center", va="center", color=MUTED)


def wrap(label: str, width: int = 18) -> str:
    """A long label on several lines (tick labels must not run into each other)."""
    return "\n".join(textwrap.wrap(label, width, break_long_words=True)) or label


#: Axis labels longer than this many characters go on two lines (a y label longer than its
#: axis would run off the figure: matplotlib cuts it).
Y_LABEL_CHARS, X_LABEL_CHARS = 26, 46


def draw(spec: Spec) -> Figure:
    """The spec drawn on a new figure in the house style (call within ``STYLE``)."""
    fig = Figure(figsize=getattr(spec, "size", SIZE), layout="constrained")
    spec.draw(fig)
    for ax in fig.axes:
        if len(ax.get_ylabel()) > Y_LABEL_CHARS:
            ax.set_ylabel(wrap(ax.get_ylabel(), Y_LABEL_CHARS))
        if len(ax.get_xlabel()) > X_LABEL_CHARS:
            ax.set_xlabel(wrap(ax.get_xlabel(), X_LABEL_CHARS))
    return fig


def render(spec: Spec, fmt: str) -> bytes:
    """The figure as a file: ``fmt`` "svg" or "pdf". Same spec, same bytes."""
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"a figure is an SVG or a PDF, not {fmt!r}")
    with _LOCK, matplotlib.rc_context(STYLE):
        fig = draw(spec)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata=METADATA[fmt])
    data = buffer.getvalue()
    if fmt == "svg":  # the file names its content too
        data = _titled(data.decode(), spec.title).encode()
    return data


@functools.lru_cache(maxsize=256)
def svg_file(spec: Spec) -> str:
    """:func:`render` as SVG text, kept for the same spec (specs are frozen dataclasses)."""
    return render(spec, "svg").decode()


def _titled(svg: str, title: str) -> str:
    return re.sub(r"(<svg\b[^>]*>)", rf"\1<title>{escape(title)}</title>", svg, count=1)


_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(spec: Spec, key: str) -> SafeString:
    """The figure's SVG for a page: see the module docstring. ``key`` (letters, digits,
    hyphens) must be unique on the page: it prefixes every id."""
    if not re.fullmatch(r"[A-Za-z][\w-]*", key):
        raise ValueError(f"a figure's key is letters, digits and hyphens, not {key!r}")
    svg = svg_file(spec)
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<style[^>]*>.*?</style>", "", svg, flags=re.S)
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{key}-{m.group(1)}"', svg)
    svg = re.sub(
        r'(href="#|url\(#)([^")]+)',
        lambda m: f"{m.group(1)}{key}-{m.group(2)}" if m.group(2) in ids else m.group(0),
        svg,
    )
    svg = re.sub(
        r'<svg\b[^>]*?\sviewBox="([^"]+)"[^>]*>',
        lambda m: (
            f'<svg xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="{m.group(1)}" '
            f'class="chart-svg" width="100%" role="img" aria-label="{escape(spec.title)}" '
            f'stroke-linejoin="round" stroke-linecap="butt">'
        ),
        svg,
        count=1,
    )
    return mark_safe(svg.strip())


def figure_response(
    spec: Spec | None, fmt: str, filename: str, *, title: str = "", empty: str = ""
) -> HttpResponse:
    """The figure as a download (``filename`` without its extension): an SVG or a PDF (a
    404 in words for another format). ``spec`` None: a figure that says ``empty``."""
    if fmt not in CONTENT_TYPES:
        raise Http404("A figure can be downloaded as SVG or PDF.")
    if spec is None:
        spec = EmptyFigure(title, empty or "Nothing to draw yet.")
    response = HttpResponse(render(spec, fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response


def figure_html(
    spec: Spec | None, key: str, *, title: str, empty: str = "", note: str = "", downloads=None
) -> SafeString:
    """A figure for a page: caption, inline SVG, note and the download links (a list of
    (label, url)); ``spec`` None: the caption and ``empty`` (why there is nothing to
    draw yet), in words."""
    return render_to_string(
        "figure.html",
        {
            "key": key,
            "title": title,
            "svg": inline_svg(spec, key) if spec is not None else None,
            "empty": empty,
            "note": note,
            "downloads": downloads or [],
        },
    )
