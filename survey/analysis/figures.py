"""The dashboard's figures (matplotlib, in the house style of :mod:`studyplatform.figures`):

* :class:`RatesFigure`: the rates per condition with their intervals as error bars, beside
  a dashed line at chance (50 %);
* :class:`MetricFigure`: the fooling rate (with its interval) against a run metric (L1,
  SSIM), one point per condition;
* :class:`HistogramFigure`: participants' accuracy and response times, one or two series.

Each is a frozen dataclass of the data and the words (so the same data gives the same
bytes and a rendered SVG is kept); :func:`study_figures` makes them from a study's
analysis. Rates are fractions; the axes print percentages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from studyplatform.figures import INK, PALETTE, wrap

Interval = tuple[float, float, float]  # value, low, high


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _below(fig, ax, ncols: int = 2) -> None:
    """The legend under the axes, outside the data (constrained layout makes room)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


@dataclass(frozen=True)
class RatesFigure:
    title: str
    conditions: tuple[str, ...]
    series: tuple[str, ...]
    #: estimates[condition][series]: (value, low, high), or None (not available yet)
    estimates: tuple[tuple[Interval | None, ...], ...]
    x_label: str
    reference: float = 0.5

    @property
    def size(self) -> tuple[float, float]:
        return (3.6, 1.5 + 0.22 * len(self.series) * len(self.conditions))

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        n = len(self.series)
        offsets = (np.arange(n) - (n - 1) / 2) * min(0.3, 0.8 / max(1, n))
        for j, name in enumerate(self.series):
            points = [
                (i + offsets[j], e)
                for i, row in enumerate(self.estimates)
                if (e := row[j]) is not None and _finite(*e)
            ]
            if not points:
                continue
            y = [p[0] for p in points]
            value = np.array([p[1][0] for p in points])
            low = np.array([p[1][1] for p in points])
            high = np.array([p[1][2] for p in points])
            ax.errorbar(
                value,
                y,
                xerr=[value - low, high - value],
                fmt="o",
                color=PALETTE[j % len(PALETTE)],
                label=name,
            )
        ax.axvline(self.reference, color=INK, linestyle="--", linewidth=0.8, label="chance")
        ax.set_yticks(range(len(self.conditions)), [wrap(c) for c in self.conditions])
        ax.set_ylim(len(self.conditions) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(self.x_label)
        _below(fig, ax, ncols=n + 1)


@dataclass(frozen=True)
class MetricFigure:
    title: str
    x_label: str
    #: (condition, metric, (rate, low, high))
    points: tuple[tuple[str, float, Interval], ...]
    y_label: str = "fooling rate"

    size = (3.6, 2.8)

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        for i, (label, x, (value, low, high)) in enumerate(self.points):
            ax.errorbar(
                [x],
                [value],
                yerr=[[value - low], [high - value]],
                fmt="o",
                color=PALETTE[i % len(PALETTE)],
                label=label,
            )
        ax.axhline(0.5, color=INK, linestyle="--", linewidth=0.8, label="chance")
        xs = [p[1] for p in self.points]
        pad = (max(xs) - min(xs)) * 0.15 or abs(xs[0]) * 0.05 or 1.0
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self.y_label)
        _below(fig, ax, ncols=min(3, len(self.points) + 1))


@dataclass(frozen=True)
class HistogramFigure:
    title: str
    x_label: str
    edges: tuple[float, ...]
    #: (label, counts per bin)
    series: tuple[tuple[str, tuple[int, ...]], ...]
    #: "percent" (edges are fractions) or "seconds" (edges are milliseconds)
    unit: str = "percent"
    y_label: str = "participants"
    #: (value, label): a dashed vertical line
    marker: tuple[float, str] | None = None

    size = (3.6, 2.6)

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        scale = 0.001 if self.unit == "seconds" else 1.0
        edges = np.array(self.edges, float) * scale
        widths = np.diff(edges)
        share = 0.86 / len(self.series)
        for j, (label, counts) in enumerate(self.series):
            left = edges[:-1] + widths * (0.07 + share * j)
            ax.bar(
                left,
                counts,
                width=widths * share,
                align="edge",
                color=PALETTE[j % len(PALETTE)],
                label=label,
            )
        if self.marker is not None:
            value, label = self.marker
            ax.axvline(value * scale, color=INK, linestyle="--", linewidth=0.8, label=label)
        ax.set_xlim(edges[0], edges[-1])
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(6))
        if self.unit == "percent":
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="x", visible=False)
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self.y_label)
        _below(fig, ax, ncols=3)


@dataclass(frozen=True)
class ImageRatesFigure:
    """Per-image realism: each judged image's fooling rate with its interval, the images
    ranked from most to least often taken for the other kind, one series per kind."""

    title: str
    #: (label, ((rate, low, high), ...) highest first)
    series: tuple[tuple[str, tuple[Interval, ...]], ...]
    y_label: str

    size = (3.6, 2.6)

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        # Two kinds: side by side at each rank (-0.12 and +0.12), not on top of each other.
        shift = 0.12 if len(self.series) > 1 else 0.0
        for j, (label, rates) in enumerate(self.series):
            if not rates:
                continue
            value = np.array([r[0] for r in rates])
            low = np.array([r[1] for r in rates])
            high = np.array([r[2] for r in rates])
            ax.errorbar(
                np.arange(1, len(rates) + 1) + shift * (2 * j - 1),
                value,
                yerr=[value - low, high - value],
                fmt="o",
                markersize=3,
                capsize=0 if len(rates) > 30 else 2,
                elinewidth=0.8,
                color=PALETTE[j % len(PALETTE)],
                label=label,
            )
        ax.axhline(0.5, color=INK, linestyle="--", linewidth=0.8, label="chance")
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.set_xlabel("images, ranked by fooling rate")
        ax.set_ylabel(self.y_label)
        _below(fig, ax, ncols=3)
