"""Server-rendered line charts as inline SVG (no JavaScript, no chart library).

:func:`line_chart` draws one or more series over epochs, with axis ticks and labels and
vertical markers (the best and the early-stopping epoch), and returns a ``<figure>`` whose
caption is the legend. Every series is one ``<polyline>`` with one point per epoch that has
a value (``data-points`` says how many); dots are drawn as well while there are few epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 440, 270
LEFT, RIGHT, TOP, BOTTOM = 60, 14, 26, 46
#: Above this many epochs the per-epoch dots are left out (the line still has every point).
MAX_DOTS = 60

COLOURS = {
    "train": "#2f5d8a",
    "val": "#c4561b",
    "extra": "#6b4c9a",
    "best": "#21703a",
    "stopped": "#a42020",
}


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[int, float]]
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    epoch: int
    label: str
    colour: str
    kind: str  # "best" or "stopped": used as a CSS class and in tests


@dataclass
class Chart:
    title: str
    y_label: str
    series: list[Series]
    markers: list[Marker] = field(default_factory=list)
    x_label: str = "epoch"
    y_range: tuple[float, float] | None = None
    #: The last epoch the x axis reaches at least (to draw two runs' charts on one scale).
    x_max: int | None = None
    note: str = ""


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _epoch_ticks(first: int, last: int) -> list[int]:
    span = max(1, last - first)
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500) if span / s <= 8), 1000)
    multiples = range(step * math.ceil(first / step), last + 1, step)
    return [first] + [e for e in multiples if e - first >= step * 0.4]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.0f}" if value == round(value) else f"{value:.1f}"
    return f"{value:.3g}"


def line_chart(chart: Chart) -> SafeString:
    """The chart as a ``<figure>`` holding the SVG and its legend."""
    points = [p for s in chart.series for p in s.points if p[1] is not None and math.isfinite(p[1])]
    title = escape(chart.title)
    if not points:
        return mark_safe(
            f'<figure class="chart chart-empty"><figcaption><strong>{title}</strong>'
            f'<p class="hint">No epochs recorded yet.</p></figcaption></figure>'
        )
    epochs = [p[0] for p in points] + [m.epoch for m in chart.markers]
    x_min, x_max = min(epochs), max(epochs + [chart.x_max or 0])
    if x_max == x_min:
        x_min, x_max = x_min - 1, x_max + 1
    values = [p[1] for p in points]
    y_ticks = nice_ticks(*(chart.y_range or (min(values), max(values))))
    y_min, y_max = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(epoch: float) -> float:
        return LEFT + (epoch - x_min) / (x_max - x_min) * plot_w

    def y(value: float) -> float:
        return TOP + (1 - (value - y_min) / ((y_max - y_min) or 1)) * plot_h

    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="13">',
        f"<title>{title}</title>",
    ]
    # Grid, ticks and tick labels.
    for value in y_ticks:
        yy = y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="#e3e6ea" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#5b6570">'
            f"{_fmt(value)}</text>"
        )
    for epoch in _epoch_ticks(math.ceil(x_min), math.floor(x_max)):
        xx = x(epoch)
        parts.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}" '
            f'stroke="#5b6570"/>'
            f'<text x="{xx:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" fill="#5b6570">'
            f"{epoch}</text>"
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#9aa3ad" stroke-width="1"/>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
        f'fill="#1d2329">{escape(chart.x_label)}</text>'
        f'<text transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="#1d2329">{escape(chart.y_label)}</text>'
    )
    # Markers: vertical lines with a short label at the top (one row lower when two meet).
    previous_x = None
    for marker in chart.markers:
        xx = x(marker.epoch)
        anchor = "end" if xx > LEFT + plot_w * 0.75 else "start"
        dx = -4 if anchor == "end" else 4
        close = previous_x is not None and abs(xx - previous_x) < 80
        label_y = TOP + 14 if close else TOP - 8
        previous_x = xx
        parts.append(
            f'<line class="marker marker-{escape(marker.kind)}" data-epoch="{marker.epoch}" '
            f'x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="{marker.colour}" stroke-width="1.5" '
            f'stroke-dasharray="{"5 3" if marker.kind == "best" else "none"}"/>'
            f'<text x="{xx + dx:.1f}" y="{label_y:.1f}" '
            f'text-anchor="{anchor}" fill="{marker.colour}" font-size="12">'
            f"{escape(marker.label)} {marker.epoch}</text>"
        )
    # Series.
    for s in chart.series:
        pts = [(e, v) for e, v in s.points if v is not None and math.isfinite(v)]
        if not pts:
            continue
        coords = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in pts)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<polyline class="series" data-label="{escape(s.label)}" '
            f'data-points="{len(pts)}" points="{coords}" fill="none" stroke="{s.colour}" '
            f'stroke-width="2" stroke-linejoin="round"{dash}/>'
        )
        if len(pts) <= MAX_DOTS:
            parts.extend(
                f'<circle class="pt" cx="{x(e):.1f}" cy="{y(v):.1f}" r="2.6" '
                f'fill="{s.colour}"><title>{escape(s.label)}, epoch {e}: {v:.4g}</title>'
                f"</circle>"
                for e, v in pts
            )
    parts.append("</svg>")
    legend = [
        f'<li><span class="swatch{" dashed" if s.dashed else ""}" '
        f'style="border-color:{s.colour}"></span>{escape(s.label)}</li>'
        for s in chart.series
    ] + [
        f'<li><span class="swatch vline{" dashed" if m.kind == "best" else ""}" '
        f'style="border-color:{m.colour}"></span>{escape(m.label)} epoch ({m.epoch})</li>'
        for m in chart.markers
    ]
    note = f'<p class="hint">{escape(chart.note)}</p>' if chart.note else ""
    return mark_safe(
        f'<figure class="chart"><figcaption><strong>{title}</strong></figcaption>'
        + "".join(parts)
        + f'<ul class="legend">{"".join(legend)}</ul>{note}</figure>'
    )


def _series(records: list[tuple[int, dict]], key: str) -> list[tuple[int, float]]:
    return [(epoch, values.get(key)) for epoch, values in records if values.get(key) is not None]


def _markers(best: int | None, stopped: int | None) -> list[Marker]:
    markers = []
    if best is not None:
        markers.append(Marker(best, "best", COLOURS["best"], "best"))
    if stopped is not None:
        markers.append(Marker(stopped, "stopped", COLOURS["stopped"], "stopped"))
    return markers


#: The per-epoch values each generator chart draws.
GENERATOR_CHARTS = {"l1": ("train_l1", "val_l1"), "gan": ("train_gan", "val_gan")}


def shared_scales(histories: list[dict]) -> dict:
    """Axis ranges that fit several histories of the same sub-model (for side-by-side
    charts on one scale): the last epoch, and each generator chart's value range."""
    records = [r for h in histories for r in h["records"]]
    scales: dict = {"x_max": max((epoch for epoch, _ in records), default=None)}
    for chart, keys in GENERATOR_CHARTS.items():
        values = [
            v[key]
            for _, v in records
            for key in keys
            if isinstance(v.get(key), int | float) and math.isfinite(v[key])
        ]
        scales[chart] = (min(values), max(values)) if values else None
    return scales


def submodel_charts(history: dict, scales: dict | None = None) -> list[SafeString]:
    """The charts of one sub-model's history (see ``selectors.run_history``): L1 and GAN
    plain loss for a generator; macro-F1 and accuracy for the classifier. ``scales``
    (from :func:`shared_scales`) puts the axes on a given scale."""
    scales = scales or {}
    records = history["records"]
    best, stopped = history["best_epoch"], history["stopped_epoch"]
    markers = _markers(best, stopped)
    if stopped is None and records and history["status"] == "done":
        note = f"No early stop: trained all {records[-1][0]} epochs."
    else:
        note = ""
    if history["role"] == "classifier":
        return [
            line_chart(
                Chart(
                    title="Classifier: validation macro-F1 and accuracy",
                    y_label="score",
                    series=[
                        Series("val macro-F1", _series(records, "val_macro_f1"), COLOURS["val"]),
                        Series(
                            "val accuracy",
                            _series(records, "val_accuracy"),
                            COLOURS["extra"],
                            dashed=True,
                        ),
                        Series(
                            "train accuracy", _series(records, "train_accuracy"), COLOURS["train"]
                        ),
                    ],
                    markers=[m for m in markers if m.kind == "best"],
                    y_range=(0.0, 1.0),
                    x_max=scales.get("x_max"),
                    note="The kept model is the epoch with the best validation macro-F1.",
                )
            )
        ]
    name = history["label"]
    return [
        line_chart(
            Chart(
                title=f"{name}: L1 loss",
                y_label="L1 loss (λ·mean |Δ|)",
                series=[
                    Series("train L1", _series(records, "train_l1"), COLOURS["train"]),
                    Series("val L1", _series(records, "val_l1"), COLOURS["val"], dashed=True),
                ],
                markers=markers,
                note=note,
                y_range=scales.get("l1"),
                x_max=scales.get("x_max"),
            )
        ),
        line_chart(
            Chart(
                title=f"{name}: GAN plain loss",
                y_label="GAN plain loss",
                series=[
                    Series("train GAN plain", _series(records, "train_gan"), COLOURS["train"]),
                    Series(
                        "val GAN plain", _series(records, "val_gan"), COLOURS["val"], dashed=True
                    ),
                ],
                markers=markers,
                y_range=scales.get("gan"),
                x_max=scales.get("x_max"),
            )
        ),
    ]


def paired_charts(histories_a: list[dict], histories_b: list[dict]) -> list[tuple]:
    """Two runs' sub-model charts matched by sub-model (classifier with classifier, city
    generator with city generator), each pair on one scale: (label, (history, charts) or
    None for each run)."""
    by_label = [{h["label"]: h for h in histories} for histories in (histories_a, histories_b)]
    labels = list(by_label[0]) + [label for label in by_label[1] if label not in by_label[0]]
    rows = []
    for label in labels:
        pair = [side.get(label) for side in by_label]
        scales = shared_scales([h for h in pair if h])
        rows.append((label, *[(h, submodel_charts(h, scales)) if h else None for h in pair]))
    return rows
