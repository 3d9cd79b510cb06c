"""A run's training curves as figures (matplotlib, in the house style of
:mod:`studyplatform.figures`): per generator its L1 and GAN plain losses, for the
classifier its validation macro-F1 and accuracy, over epochs, with the best and the
early-stopping epochs marked.

:func:`submodel_figures` makes the specs of one sub-model's history
(``selectors.run_history``); :func:`paired_figures` matches two runs' sub-models and puts
each pair on one scale (the compare page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.ticker import MaxNLocator

from studyplatform.figures import BEST, PALETTE, STOPPED

#: Above this many epochs the per-epoch dots are left out (the line keeps every point).
MAX_DOTS = 60

TRAIN, VAL, EXTRA = PALETTE[0], PALETTE[1], PALETTE[3]


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[tuple[int, float], ...]
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Mark:
    epoch: int
    kind: str  # "best" or "stopped"


@dataclass(frozen=True)
class CurveFigure:
    title: str
    y_label: str
    lines: tuple[Line, ...]
    marks: tuple[Mark, ...] = ()
    y_range: tuple[float, float] | None = None
    #: The last epoch the x axis reaches at least (two runs' curves on one scale).
    x_max: int | None = None

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        for line in self.lines:
            if not line.points:
                continue
            epochs, values = zip(*line.points, strict=True)
            ax.plot(
                epochs,
                values,
                color=line.colour,
                linestyle="--" if line.dashed else "-",
                marker="o" if len(epochs) <= MAX_DOTS else None,
                markersize=3,
                label=line.label,
            )
        for mark in self.marks:
            best = mark.kind == "best"
            ax.axvline(
                mark.epoch,
                color=BEST if best else STOPPED,
                linestyle="--" if best else "-",
                linewidth=1,
                label=f"{'best' if best else 'stopped'} epoch ({mark.epoch})",
            )
        if self.y_range is not None:
            low, high = self.y_range
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 0.5
            ax.set_ylim(low - pad, high + pad)
        epochs = [e for line in self.lines for e, _ in line.points]
        last = max(epochs + [self.x_max or 0])
        ax.set_xlim(min(epochs) - 0.5 if len(set(epochs)) > 1 else min(epochs) - 1, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.y_label)
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)


def _points(records: list[tuple[int, dict]], key: str) -> tuple[tuple[int, float], ...]:
    return tuple(
        (epoch, float(values[key]))
        for epoch, values in records
        if isinstance(values.get(key), int | float) and math.isfinite(values[key])
    )


#: The per-epoch values each generator figure draws.
GENERATOR_FIGURES = {"l1": ("train_l1", "val_l1"), "gan": ("train_gan", "val_gan")}


def shared_scales(histories: list[dict]) -> dict:
    """Axis ranges that fit several histories of the same sub-model (for side-by-side
    figures on one scale): the last epoch, and each generator figure's value range."""
    records = [r for h in histories for r in h["records"]]
    scales: dict = {"x_max": max((epoch for epoch, _ in records), default=None)}
    for name, keys in GENERATOR_FIGURES.items():
        values = [v for key in keys for _, v in _points(records, key)]
        scales[name] = (min(values), max(values)) if values else None
    return scales


@dataclass(frozen=True)
class Slot:
    """One figure of a sub-model: its name (in the download's URL), spec (None: no value
    recorded yet) and note."""

    name: str
    title: str
    spec: CurveFigure | None
    note: str = ""


def _slot(name: str, figure: CurveFigure, note: str = "") -> Slot:
    drawn = any(line.points for line in figure.lines)
    return Slot(name, figure.title, figure if drawn else None, note)


def submodel_figures(history: dict, scales: dict | None = None) -> list[Slot]:
    """The figures of one sub-model's history: L1 and GAN plain loss for a generator;
    macro-F1 and accuracy for the classifier. ``scales`` (from :func:`shared_scales`)
    puts the axes on a given scale."""
    scales = scales or {}
    records = history["records"]
    best, stopped = history["best_epoch"], history["stopped_epoch"]
    marks = tuple(
        Mark(epoch, kind) for epoch, kind in ((best, "best"), (stopped, "stopped")) if epoch
    )
    if history["role"] == "classifier":
        figure = CurveFigure(
            "Classifier: validation macro-F1 and accuracy",
            "score",
            (
                Line("val macro-F1", _points(records, "val_macro_f1"), VAL),
                Line("val accuracy", _points(records, "val_accuracy"), EXTRA, dashed=True),
                Line("train accuracy", _points(records, "train_accuracy"), TRAIN),
            ),
            tuple(m for m in marks if m.kind == "best"),
            y_range=(0.0, 1.0),
            x_max=scales.get("x_max"),
        )
        return [
            _slot(
                "classifier",
                figure,
                "The kept model is the epoch with the best validation macro-F1.",
            )
        ]
    note = ""
    if stopped is None and records and history["status"] == "done":
        note = f"No early stop: trained all {records[-1][0]} epochs."
    name = history["label"]
    return [
        _slot(
            "l1",
            CurveFigure(
                f"{name}: L1 loss",
                "L1 loss (λ·mean |Δ|)",
                (
                    Line("train L1", _points(records, "train_l1"), TRAIN),
                    Line("val L1", _points(records, "val_l1"), VAL, dashed=True),
                ),
                marks,
                y_range=scales.get("l1"),
                x_max=scales.get("x_max"),
            ),
            note,
        ),
        _slot(
            "gan",
            CurveFigure(
                f"{name}: GAN plain loss",
                "GAN plain loss",
                (
                    Line("train GAN plain", _points(records, "train_gan"), TRAIN),
                    Line("val GAN plain", _points(records, "val_gan"), VAL, dashed=True),
                ),
                marks,
                y_range=scales.get("gan"),
                x_max=scales.get("x_max"),
            ),
        ),
    ]


def paired_figures(histories_a: list[dict], histories_b: list[dict]) -> list[tuple]:
    """Two runs' sub-model figures matched by sub-model (classifier with classifier, city
    generator with city generator), each pair on one scale: (label, (history, slots) or
    None for each run)."""
    by_label = [{h["label"]: h for h in histories} for histories in (histories_a, histories_b)]
    labels = list(by_label[0]) + [label for label in by_label[1] if label not in by_label[0]]
    rows = []
    for label in labels:
        pair = [side.get(label) for side in by_label]
        scales = shared_scales([h for h in pair if h])
        rows.append((label, *[(h, submodel_figures(h, scales)) if h else None for h in pair]))
    return rows
