"""Server-drawn SVG charts of a study's analysis (no JavaScript, no chart library), in the
style of :mod:`worker.charts` (whose tick rule and colours they share):

* :func:`interval_chart`: rates with their intervals, one row per condition, beside a
  reference line (50 %: chance);
* :func:`scatter_chart`: one point per condition (a run's metric against its fooling rate),
  with vertical interval whiskers and labels;
* :func:`bar_chart`: histograms (participants' accuracy, response times), one or two series.

Each returns a ``<figure>`` with the SVG and a legend, like ``worker.charts.line_chart``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from worker.charts import COLOURS, nice_ticks

WIDTH = 440
FONT = 'font-family="system-ui, sans-serif" font-size="13"'
MUTED, INK, GRID, FRAME = "#5b6570", "#1d2329", "#e3e6ea", "#9aa3ad"
#: Series colours: the first two as in the training charts.
PALETTE = (COLOURS["train"], COLOURS["val"], COLOURS["extra"], COLOURS["best"], "#8a6d1d")


def pct(value: float, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f} %"


def _svg_open(title: str, height: int) -> list[str]:
    return [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" {FONT}>',
        f"<title>{escape(title)}</title>",
    ]


def _figure(title: str, svg: list[str], legend: list[tuple[str, str, str]], note: str) -> str:
    items = "".join(
        f'<li><span class="swatch {kind}" style="border-color:{colour}"></span>{escape(label)}</li>'
        for label, colour, kind in legend
    )
    hint = f'<p class="hint">{escape(note)}</p>' if note else ""
    return mark_safe(
        f'<figure class="chart"><figcaption><strong>{escape(title)}</strong></figcaption>'
        + "".join(svg)
        + "</svg>"
        + (f'<ul class="legend">{items}</ul>' if items else "")
        + f"{hint}</figure>"
    )


def _empty(title: str, message: str) -> SafeString:
    return mark_safe(
        f'<figure class="chart chart-empty"><figcaption><strong>{escape(title)}</strong>'
        f'<p class="hint">{escape(message)}</p></figcaption></figure>'
    )


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    ticks = nice_ticks(low, high, count)
    return ticks if len(ticks) >= 2 else [low, high]


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


# --------------------------------------------------------------------------------------
# Rates with intervals
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """One rate of one condition with its interval (fractions)."""

    value: float
    low: float
    high: float


@dataclass
class IntervalRow:
    label: str
    #: series label -> estimate (None: not yet available)
    estimates: dict[str, Estimate | None] = field(default_factory=dict)


def interval_chart(
    title: str, rows: list[IntervalRow], series: list[str], *, reference: float = 0.5, note=""
) -> SafeString:
    """Each row a condition; each series a dot at its rate with a whisker over its
    interval, the series of a row one above the other; a dashed line at ``reference``."""
    values = [
        v
        for row in rows
        for e in row.estimates.values()
        if e is not None
        for v in (e.low, e.high, e.value)
        if math.isfinite(v)
    ]
    if not values:
        return _empty(title, "No judgements yet.")
    ticks = _ticks(min(values + [reference]), max(values + [reference]))
    x_min, x_max = ticks[0], ticks[-1]
    left, right, top = 118, 16, 12
    band = 16 * max(1, len(series)) + 14
    height = top + band * len(rows) + 40
    plot_w = WIDTH - left - right

    def x(value: float) -> float:
        return left + (value - x_min) / ((x_max - x_min) or 1) * plot_w

    parts = _svg_open(title, height)
    bottom = top + band * len(rows)
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>'
            f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="{MUTED}">'
            f"{pct(t)}</text>"
        )
    parts.append(
        f'<line class="reference" x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{top}" '
        f'y2="{bottom}" stroke="{INK}" stroke-dasharray="4 3"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{INK}">rate (dashed: {pct(reference)}, chance)</text>'
    )
    for i, row in enumerate(rows):
        y0 = top + band * i
        label = row.label if len(row.label) <= 16 else row.label[:15] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y0 + band / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{INK}"><title>{escape(row.label)}</title>{escape(label)}</text>'
        )
        for j, name in enumerate(series):
            e = row.estimates.get(name)
            if e is None:
                continue
            y = y0 + 10 + 16 * j
            colour = PALETTE[j % len(PALETTE)]
            parts.append(
                f'<g class="estimate" data-series="{escape(name)}">'
                f'<line x1="{x(e.low):.1f}" x2="{x(e.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{x(e.low):.1f}" x2="{x(e.low):.1f}" y1="{y - 4:.1f}" '
                f'y2="{y + 4:.1f}" stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{x(e.high):.1f}" x2="{x(e.high):.1f}" y1="{y - 4:.1f}" '
                f'y2="{y + 4:.1f}" stroke="{colour}" stroke-width="2"/>'
                f'<circle cx="{x(e.value):.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(row.label)}, {escape(name)}: {pct(e.value, 2)} "
                f"({pct(e.low, 1)} to {pct(e.high, 1)})</title></circle></g>"
            )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{bottom - top}" fill="none" '
        f'stroke="{FRAME}"/>'
    )
    legend = [(name, PALETTE[j % len(PALETTE)], "") for j, name in enumerate(series)]
    return _figure(title, parts, legend, note)


# --------------------------------------------------------------------------------------
# Metric against rate
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: Estimate


def scatter_chart(
    title: str, x_label: str, points: list[Point], *, y_label: str = "fooling rate", note=""
) -> SafeString:
    """One labelled point per condition at (metric, rate), with the rate's interval as a
    vertical whisker and a dashed line at 50 %."""
    points = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y.value)]
    if not points:
        return _empty(title, "Needs judgements and the runs' metrics.")
    left, right, top, bottom_margin = 62, 16, 16, 46
    height = 280
    plot_w, plot_h = WIDTH - left - right, height - top - bottom_margin
    xs = [p.x for p in points]
    pad = (max(xs) - min(xs)) * 0.15 or abs(xs[0]) * 0.05 or 1.0
    x_ticks = _ticks(min(xs) - pad, max(xs) + pad, 4)
    ys = [v for p in points for v in (p.y.low, p.y.high) if math.isfinite(v)] + [0.5]
    y_ticks = _ticks(min(ys), max(ys), 5)

    def x(v: float) -> float:
        return left + (v - x_ticks[0]) / ((x_ticks[-1] - x_ticks[0]) or 1) * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - y_ticks[0]) / ((y_ticks[-1] - y_ticks[0]) or 1)) * plot_h

    parts = _svg_open(title, height)
    for t in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}">{pct(t)}</text>'
        )
    for t in x_ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + plot_h}" '
            f'y2="{top + plot_h + 5}" stroke="{MUTED}"/>'
            f'<text x="{x(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
            f'fill="{MUTED}">{_number(t)}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(0.5):.1f}" y2="{y(0.5):.1f}" '
        f'stroke="{INK}" stroke-dasharray="4 3"/>'
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{FRAME}"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{INK}">{escape(x_label)}</text>'
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{escape(y_label)}</text>'
    )
    for i, p in enumerate(points):
        colour = PALETTE[i % len(PALETTE)]
        px, py = x(p.x), y(p.y.value)
        anchor = "end" if px > left + plot_w * 0.7 else "start"
        dx = -8 if anchor == "end" else 8
        parts.append(
            f'<g class="point" data-label="{escape(p.label)}">'
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(p.y.low):.1f}" y2="{y(p.y.high):.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="{colour}"><title>'
            f"{escape(p.label)}: {escape(x_label)} {_number(p.x)}, {pct(p.y.value, 2)}"
            f"</title></circle>"
            f'<text x="{px + dx:.1f}" y="{py - 6:.1f}" text-anchor="{anchor}" '
            f'fill="{colour}" font-size="12">{escape(p.label)}</text></g>'
        )
    return _figure(title, parts, [], note)


# --------------------------------------------------------------------------------------
# Histograms
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bars:
    label: str
    counts: list[int]


def bar_chart(
    title: str,
    x_label: str,
    edges: list[float],
    series: list[Bars],
    *,
    edge_label=_number,
    open_end: bool = False,
    y_label: str = "participants",
    marker: tuple[float, str] | None = None,
    note: str = "",
) -> SafeString:
    """A histogram over ``edges`` (one more than the counts), the series side by side in
    each bin; ``open_end``: the last bin holds everything from its lower edge on;
    ``marker``: a dashed vertical line (value, label)."""
    if not any(sum(s.counts) for s in series):
        return _empty(title, "No participants counted yet.")
    left, right, top, bottom_margin = 52, 22, 22, 46
    height = 256
    plot_w, plot_h = WIDTH - left - right, height - top - bottom_margin
    peak = max(max(s.counts) for s in series)
    y_ticks = [t for t in _ticks(0, peak * 1.08, 4) if t == int(t)] or [0, peak]
    y_max = y_ticks[-1] or 1
    bins = len(edges) - 1
    slot = plot_w / bins

    def y(v: float) -> float:
        return top + (1 - v / y_max) * plot_h

    parts = _svg_open(title, height)
    for t in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}">{int(t)}</text>'
        )
    width = slot * 0.86 / len(series)
    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        for i, n in enumerate(s.counts):
            if not n:
                continue
            bx = left + slot * i + slot * 0.07 + width * j
            upper = "+" if open_end and i == bins - 1 else f"–{edge_label(edges[i + 1])}"
            parts.append(
                f'<rect class="bar" x="{bx:.1f}" y="{y(n):.1f}" width="{width:.1f}" '
                f'height="{y(0) - y(n):.1f}" fill="{colour}"><title>{escape(s.label)}: '
                f"{n} in {edge_label(edges[i])}{upper}</title></rect>"
            )
    step = max(1, math.ceil(bins / 8))
    for i in range(0, bins + 1, step):
        text = edge_label(edges[i]) + ("+" if open_end and i == bins else "")
        if open_end and i == bins:
            continue
        parts.append(
            f'<text x="{left + slot * i:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'fill="{MUTED}">{text}</text>'
        )
    if marker is not None:
        value, label = marker
        mx = left + (value - edges[0]) / ((edges[-1] - edges[0]) or 1) * plot_w
        parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top - 4}" y2="{top + plot_h}" '
            f'stroke="{INK}" stroke-dasharray="4 3"/>'
            f'<text x="{mx:.1f}" y="{top - 7}" text-anchor="middle" fill="{INK}" '
            f'font-size="12">{escape(label)}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{FRAME}"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{INK}">{escape(x_label)}</text>'
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{escape(y_label)}</text>'
    )
    legend = [(s.label, PALETTE[j % len(PALETTE)], "block") for j, s in enumerate(series)]
    return _figure(title, parts, legend if len(series) > 1 else [], note)
