"""A study's analysis as the dashboard shows it: formatted cells, each with the key under
which the live update (``analysis.json``) sends its new text, and the figures.

One place formats every number, so the page and its updates always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.safestring import SafeString

from studyplatform.figures import figure_html
from studyplatform.words import counted
from survey.analysis.caveats import interval_caveat, too_few_participants
from survey.analysis.counts import RT_BIN_MS, RT_CAP_MS
from survey.analysis.distributions import Distribution, quantile, regroup
from survey.analysis.figures import (
    HistogramFigure,
    ImageRatesFigure,
    MetricFigure,
    RatesFigure,
)
from survey.analysis.results import (
    TWO_WAY_MAX_JUDGEMENTS,
    ConditionResult,
    ImageRow,
    StudyAnalysis,
)
from survey.statistics import CELLS, format_p

DASH = "—"
RATE_LABELS = {
    "fooling_rate": "Fooling rate (paper: wrong answers / all)",
    "ai_judged_real_rate": "P(judged Real | AI) (Zhang et al., pix2pix)",
    "real_judged_ai_rate": "P(judged AI | Real)",
    "accuracy": "Accuracy",
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def pct(value: float | None, digits: int = 2) -> str:
    return DASH if _missing(value) else f"{100 * value:.{digits}f} %"


def pct_interval(bounds, digits: int = 1) -> str:
    if bounds is None or any(_missing(b) for b in bounds):
        return DASH
    return f"{100 * bounds[0]:.{digits}f} to {100 * bounds[1]:.{digits}f} %"


def number(value: float | None, digits: int = 3) -> str:
    return DASH if _missing(value) else f"{value:.{digits}f}"


def p_text(value: float | None) -> str:
    return DASH if _missing(value) else format_p(value)


def seconds(ms: float | None) -> str:
    return DASH if _missing(ms) else f"{ms / 1000:.2f} s"


@dataclass
class Cell:
    key: str
    text: str


@dataclass
class Row:
    label: str
    cells: list[Cell]
    hint: str = ""
    group: str = ""


def _key(c: ConditionResult, name: str) -> str:
    return f"c{c.condition_id}-{name}"


def _participants(c: ConditionResult) -> int:
    return c.sdt.n_participants + c.sdt_skipped if c.sdt else 0


def with_caveat(text: str, caveat: str) -> str:
    """An interval's text with the reason it means little beside it (see
    :mod:`survey.analysis.caveats`)."""
    return f"{text} ({caveat})" if caveat and text != DASH else text


def _boot_text(c: ConditionResult, boot) -> str:
    if boot is None:
        return DASH
    interval = boot.fooling_rate.interval
    caveat = interval_caveat(_participants(c), interval.low, interval.high, bootstrap=True)
    return with_caveat(pct_interval([interval.low, interval.high]), caveat)


def _metric_hint(c: ConditionResult) -> str:
    return f"run metric, on {c.partial_coverage} only" if c.partial_coverage else "run metric"


def _condition_values(
    c: ConditionResult, level: str, two_way_skipped: bool = False
) -> dict[str, tuple[str, str, str]]:
    """name -> (label, text, hint) of one condition's summary column, in display order."""
    t, s = c.table, c.sdt
    few = too_few_participants(_participants(c))
    values: dict[str, tuple[str, str, str]] = {
        "l1": ("L1 distance (test split)", number(c.metrics.get("l1")), _metric_hint(c)),
        "ssim": ("SSIM (test split)", number(c.metrics.get("ssim"), 4), _metric_hint(c)),
        "participants": ("Participants counted", str(_participants(c)), ""),
        "n": ("Judgements", str(t["n"]) if t else "0", ""),
    }
    if t is None and c.pairs is not None:  # a paired study: P(chose the fake)
        values["n"] = ("Judgements (pairs)", str(c.pairs["n"]), "")
    for rate, label in RATE_LABELS.items():
        if t is None and c.pairs is not None and rate == "fooling_rate":
            values[rate] = ("Fooling rate: P(chose the fake)", pct(c.pairs["rate"]), "")
            values[f"{rate}_ci"] = (
                f"{level} Wilson interval",
                with_caveat(pct_interval(c.pairs["wilson"]), few),
                "",
            )
        else:
            values[rate] = (label, pct(t[rate]) if t else DASH, "")
            values[f"{rate}_ci"] = (
                f"{level} Wilson interval",
                with_caveat(pct_interval(t["intervals"][rate]["wilson"]), few) if t else DASH,
                "",
            )
        if rate == "fooling_rate":
            values["fooling_rate_boot"] = (
                f"{level} bootstrap over participants",
                _boot_text(c, c.bootstrap),
                "resamples participants, all their judgements together; images fixed",
            )
            values["fooling_rate_boot2"] = (
                f"{level} bootstrap over participants and images",
                f"not computed above {TWO_WAY_MAX_JUDGEMENTS:,} judgements"
                if two_way_skipped
                else _boot_text(c, c.bootstrap_two_way),
                "resamples participants and images together (two-way): "
                "generalises to other images too",
            )
    values.update(
        chi2=(
            "χ² Pearson, no continuity correction (df = 1)",
            number(t["chi2_pearson"], 4) if t else DASH,
            "the paper's pooled χ², which ignores clustering",
        ),
        p=("p (Pearson χ²)", p_text(t["p_pearson"]) if t else DASH, ""),
        yates=(
            "χ² with Yates' continuity correction",
            f"{number(t['chi2_yates'], 4)} (p = {p_text(t['p_yates'])})" if t else DASH,
            "",
        ),
        fisher=("Fisher's exact test p", p_text(t["fisher_p"]) if t else DASH, ""),
        binomial=(
            "Binomial test of the fooling rate against 50 %: p",
            p_text(t["binomial_tests"]["fooling_rate"]["p_value"])
            if t
            else p_text(c.pairs["binomial_p"])
            if c.pairs is not None
            else DASH,
            "",
        ),
        d_prime=(
            "Sensitivity d′ (mean over participants)",
            with_caveat(_mean_interval(s.mean_d_prime, s.d_prime_interval), few) if s else DASH,
            f"{level} t interval; log-linear correction; 0 = cannot tell",
        ),
        criterion=(
            "Criterion c (mean)",
            with_caveat(_mean_interval(s.mean_criterion, s.criterion_interval), few) if s else DASH,
            "c > 0: a bias towards answering Real",
        ),
    )
    return values


def _mean_interval(mean: float, interval) -> str:
    if _missing(mean):
        return DASH
    if _missing(interval.low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


#: Summary rows a paired study has no numbers for: every pair is a fake beside its
#: photograph, so there is no row of real photographs judged alone (no 2×2 table, no χ²,
#: no d′), and P(judged Real | AI) would repeat the fooling rate.
NOT_FOR_PAIRS = (
    "ai_judged_real_rate",
    "ai_judged_real_rate_ci",
    "real_judged_ai_rate",
    "real_judged_ai_rate_ci",
    "accuracy",
    "accuracy_ci",
    "chi2",
    "p",
    "yates",
    "fisher",
    "d_prime",
    "criterion",
)


def summary_rows(analysis: StudyAnalysis) -> list[Row]:
    """Rows = statistics, columns = conditions."""
    level = f"{100 * analysis.confidence:g} %"
    columns = [_condition_values(c, level, analysis.two_way_skipped) for c in analysis.conditions]
    if not columns:
        return []
    if analysis.protocol == "hype_time":  # no d′ for a staircase's judgements (survey.hype)
        for values in columns:
            for name in ("d_prime", "criterion"):
                values[name] = (values[name][0], "left out (HYPE_time)", values[name][2])
    if analysis.protocol == "paired":
        for values in columns:
            for name in NOT_FOR_PAIRS:
                del values[name]
    rows = []
    for name, (label, _, hint) in columns[0].items():
        cells = [
            Cell(_key(c, name), values[name][1])
            for c, values in zip(analysis.conditions, columns, strict=True)
        ]
        rows.append(Row(label, cells, hint))
    return rows


def table_cells(c: ConditionResult) -> dict[str, Cell]:
    """The 2×2 table of a condition with its margins, as keyed cells."""
    cells = c.cells or dict.fromkeys(CELLS, 0)
    values = dict(cells)
    values["real_total"] = cells["real_real"] + cells["real_ai"]
    values["ai_total"] = cells["ai_real"] + cells["ai_ai"]
    values["judged_real"] = cells["real_real"] + cells["ai_real"]
    values["judged_ai"] = cells["real_ai"] + cells["ai_ai"]
    values["total"] = values["real_total"] + values["ai_total"]
    table = {name: Cell(_key(c, f"t-{name}"), str(v)) for name, v in values.items()}
    t = c.table
    text = "No judgements of both kinds yet."
    if t is not None:
        text = (
            f"Fooling rate {pct(t['fooling_rate'])}; χ² = {number(t['chi2_pearson'], 4)} "
            f"(Pearson, no continuity correction, df = 1), p = {p_text(t['p_pearson'])}"
        )
    table["summary"] = Cell(_key(c, "t-summary"), text)
    return table


PARTICIPANT_COLUMNS = (
    ("started", "started"),
    ("withdrawn", "withdrawn"),
    ("failed_attention", "failed an attention check"),
    ("failed_instructed", "failed an instructed check (excluding)"),
    ("failed_colour_screen", "failed the colour-vision screen (excluding)"),
    ("unfinished", "unfinished (excluded)"),
    ("unfinished_included", "unfinished (counted)"),
    ("included", "counted"),
)


def participant_rows(analysis: StudyAnalysis) -> list[Row]:
    """One row per condition (between subjects) and the total."""
    groups = [(c.label, f"c{c.condition_id}", c.participants) for c in analysis.conditions]
    groups = [g for g in groups if g[2] is not None]
    groups.append(("All", "all", analysis.participants))
    columns = [
        (name, label)
        for name, label in PARTICIPANT_COLUMNS
        if name != "unfinished_included" or analysis.include_unfinished
    ]
    return [
        Row(label, [Cell(f"{prefix}-p-{name}", str(getattr(counts, name))) for name, _ in columns])
        for label, prefix, counts in groups
    ]


def participant_headers(analysis: StudyAnalysis) -> list[str]:
    return [
        label
        for name, label in PARTICIPANT_COLUMNS
        if name != "unfinished_included" or analysis.include_unfinished
    ]


def comparison_rows(analysis: StudyAnalysis) -> list[Row]:
    level = f"{100 * analysis.confidence:g} %"
    rows = []
    for pair in analysis.comparisons:
        key = f"cmp{pair['a_id']}-{pair['b_id']}"
        cells = []
        for rate in ("fooling_rate", "ai_judged_real_rate"):
            d = pair[rate]
            cells += [
                Cell(f"{key}-{rate}-d", f"{100 * d.difference:+.2f} pts"),
                Cell(f"{key}-{rate}-ci", pct_interval(d.interval.as_list())),
                Cell(f"{key}-{rate}-p", p_text(d.p_value)),
            ]
        rows.append(Row(f"{pair['a']} − {pair['b']}", cells, hint=level))
    return rows


def _distribution_line(d: Distribution, unit) -> str:
    if not d.n:
        return "no participants counted yet"
    parts = [counted(d.n, "participant"), f"median {unit(d.median)}"]
    if d.quartiles:
        parts.append(f"quartiles {unit(d.quartiles[0])} to {unit(d.quartiles[1])}")
    return ", ".join(parts)


def distribution_lines(analysis: StudyAnalysis) -> list[Row]:
    """Per condition (and all): median accuracy and typical response times."""
    rows = []
    groups = [("All", "all", analysis.accuracy, analysis.response_times)]
    groups += [
        (c.label, f"c{c.condition_id}", c.accuracy, c.response_times) for c in analysis.conditions
    ]
    paired = analysis.protocol == "paired"  # a pair's time is its fake's: no real column
    for label, prefix, accuracy, rt in groups:
        cells = [
            Cell(f"{prefix}-acc", _distribution_line(accuracy, pct) if accuracy else DASH),
            *(
                []
                if paired
                else [Cell(f"{prefix}-rt-real", _distribution_line(rt["real"], seconds))]
            ),
            Cell(f"{prefix}-rt-ai", _distribution_line(rt["ai"], seconds)),
        ]
        rows.append(Row(label, cells))
    return rows


# --------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------


def rt_scale(distributions) -> dict[str, float]:
    """Bins for a response-time chart: up to the 98th percentile rounded up to a second
    (1 to RT_CAP_MS s), about 20 bins of 50, 100, 250, 500 or 1000 ms."""
    highs = [quantile(d, 0.98) for d in distributions if d.n]
    upto = min(RT_CAP_MS, max(1000, 1000 * math.ceil(max(highs, default=1000) / 1000)))
    width = next((w for w in (50, 100, 250, 500) if upto / w <= 20), 1000)
    return {"width": max(width, RT_BIN_MS), "upto": upto}


def image_cards(rows: list[ImageRow], realism: dict | None = None) -> list[dict[str, Any]]:
    """The per-image view's captions; ``realism``: stimulus id -> the model's
    :class:`survey.analysis.image_realism.Realism` (the P(judged Real) shown beside)."""
    realism = realism or {}
    return [
        {
            "image": r,
            "model": realism.get(r.stimulus_id),
            "p_real": pct(realism[r.stimulus_id].p_real, 0) if r.stimulus_id in realism else "",
            "p_real_interval": pct_interval(realism[r.stimulus_id].p_real_ci, 0)
            if r.stimulus_id in realism
            else "",
            "percent": round(100 * r.rate) if r.rate is not None else 0,
            "rate": pct(r.rate, 0),
            "interval": pct_interval(r.interval, 0),
            "rt": seconds(r.rt_ms),
            "l1": number(r.metrics.get("l1"), 2),
            "ssim": number(r.metrics.get("ssim"), 3),
        }
        for r in rows
    ]


def _estimate(c: ConditionResult, rate: str) -> tuple[float, float, float] | None:
    if c.table is None:
        if c.pairs is not None and rate == "fooling_rate":  # a paired study
            return (c.pairs["rate"], *c.pairs["wilson"])
        return None
    low, high = c.table["intervals"][rate]["wilson"]
    return (c.table[rate], low, high)


#: The dashboard's figures: name -> title (the downloads' names use the name).
FIGURES = {
    "rates": "Rates per condition",
    "l1": "Fooling rate against L1 distance",
    "ssim": "Fooling rate against SSIM",
    "accuracy": "Participants' accuracy",
    "rt": "Participants' response times",
}


@dataclass(frozen=True)
class FigureSlot:
    """One figure of the dashboard: its spec (None: nothing to draw yet), and in words
    why it is empty and how to read it."""

    name: str
    title: str
    spec: Any
    empty: str
    note: str


def figure_slots(analysis: StudyAnalysis) -> dict[str, FigureSlot]:
    """Every figure of the dashboard (see :data:`FIGURES`) from the analysis."""
    level = f"{100 * analysis.confidence:g} %"
    rates = ("fooling_rate", "ai_judged_real_rate")
    estimates = tuple(tuple(_estimate(c, r) for r in rates) for c in analysis.conditions)
    slots = {
        "rates": FigureSlot(
            "rates",
            FIGURES["rates"],
            RatesFigure(
                FIGURES["rates"],
                tuple(c.label for c in analysis.conditions),
                ("fooling rate", "P(judged Real | AI)"),
                estimates,
                f"rate ({level} Wilson interval)",
            )
            if any(e for row in estimates for e in row)
            else None,
            "No judgements yet.",
            f"Dots: the rates; bars: {level} Wilson intervals; dashed: 50 %, chance.",
        )
    }
    for key, label in (("l1", "L1 distance"), ("ssim", "SSIM")):
        points = tuple(
            (c.label, c.metrics[key], _estimate(c, "fooling_rate"))
            for c in analysis.conditions
            if c.metrics.get(key) is not None and _estimate(c, "fooling_rate") is not None
        )
        slots[key] = FigureSlot(
            key,
            FIGURES[key],
            MetricFigure(FIGURES[key], f"{label} of the run (test split)", points)
            if points
            else None,
            "Needs judgements and the runs' metrics.",
            f"One point per condition; bars: {level} Wilson intervals.",
        )
    accuracy = analysis.accuracy
    slots["accuracy"] = FigureSlot(
        "accuracy",
        FIGURES["accuracy"],
        HistogramFigure(
            FIGURES["accuracy"],
            "accuracy (share of right answers)",
            tuple(accuracy.edges),
            (("participants", tuple(accuracy.counts)),),
            marker=(0.5, "chance"),
        )
        if sum(accuracy.counts)
        else None,
        "No participants counted yet.",
        "Each participant's right answers over all their counted judgements.",
    )
    real, ai = (
        regroup(d, **rt_scale(analysis.response_times.values()))
        for d in (analysis.response_times["real"], analysis.response_times["ai"])
    )
    paired = analysis.protocol == "paired"
    series = (
        (("pairs", tuple(ai.counts)),)
        if paired
        else (("real photographs", tuple(real.counts)), ("AI images", tuple(ai.counts)))
    )
    slots["rt"] = FigureSlot(
        "rt",
        FIGURES["rt"],
        HistogramFigure(
            FIGURES["rt"],
            "geometric mean response time (s)",
            tuple(real.edges),
            series,
            unit="seconds",
        )
        if sum(real.counts) + sum(ai.counts)
        else None,
        "No participants counted yet.",
        (
            "Per participant, the geometric mean of their response times to the pairs"
            if paired
            else "Per participant, the geometric mean of their response times to real "
            "photographs and to AI images"
        )
        + "; the last bar holds all longer ones.",
    )
    return slots


def figure_downloads(analysis: StudyAnalysis, name: str) -> list[tuple[str, str]]:
    return study_figure_downloads(analysis.study_id, name, analysis.include_unfinished)


def study_figure_downloads(study_id: int, name: str, include_unfinished: bool):
    query = "?unfinished=1" if include_unfinished else ""
    return [
        (fmt.upper(), reverse("study_figure", args=[study_id, name, fmt]) + query)
        for fmt in ("svg", "pdf")
    ]


def image_figure_slot(
    key: str, title: str, groups: list[tuple[str, list[ImageRow]]], level: str = "95 %"
) -> FigureSlot:
    """Per-image realism of one condition (or of the shared real photographs): ``groups``
    are (label, rows) (rows highest rate first, as :func:`results.image_rows` orders
    them); images nobody judged yet are left out."""
    series = tuple(
        (label, tuple((r.rate, *r.interval) for r in rows if r.n))
        for label, rows in groups
        if any(r.n for r in rows)
    )
    return FigureSlot(
        key,
        title,
        ImageRatesFigure(title, series, "fooling rate") if series else None,
        "No image judged yet.",
        "One dot per image, most often taken for the other kind first; bars: "
        f"{level} Wilson intervals; dashed: 50 %, chance.",
    )


def image_figure_slots(study, rows: dict) -> dict[str, FigureSlot]:
    """Every per-image figure of a study, by name (``images-c<condition id>``, and
    ``images-real`` for within subjects' shared real photographs)."""
    slots = {}
    for condition in study.conditions.order_by("pk"):
        images = rows.get(condition.pk, [])
        groups = [
            ("AI images", [r for r in images if not r.is_real]),
            ("real photographs", [r for r in images if r.is_real]),
        ]
        key = f"images-c{condition.pk}"
        slots[key] = image_figure_slot(key, f"Per-image fooling rate: {condition.label}", groups)
    if rows.get(None):
        slots["images-real"] = image_figure_slot(
            "images-real",
            "Per-image fooling rate: real photographs (shared)",
            [("real photographs", rows[None])],
        )
    return slots


def charts(analysis: StudyAnalysis) -> dict[str, SafeString]:
    """Every figure as the page shows it (caption, inline SVG, note, downloads)."""
    return {
        name: figure_html(
            slot.spec,
            f"figure-{name}",
            title=slot.title,
            empty=slot.empty,
            note=slot.note,
            downloads=figure_downloads(analysis, name),
        )
        for name, slot in figure_slots(analysis).items()
    }


@dataclass
class Dashboard:
    analysis: StudyAnalysis
    summary: list[Row]
    participants: list[Row]
    participant_headers: list[str]
    comparisons: list[Row]
    distributions: list[Row]
    tables: list[tuple[ConditionResult, dict[str, Cell]]]
    charts: dict[str, SafeString]
    level: str = "95 %"
    fields: dict[str, str] = field(default_factory=dict)


def dashboard(analysis: StudyAnalysis) -> Dashboard:
    board = Dashboard(
        analysis=analysis,
        summary=summary_rows(analysis),
        participants=participant_rows(analysis),
        participant_headers=participant_headers(analysis),
        comparisons=comparison_rows(analysis),
        distributions=distribution_lines(analysis),
        tables=[(c, table_cells(c)) for c in analysis.conditions],
        charts=charts(analysis),
        level=f"{100 * analysis.confidence:g} %",
    )
    cells = [
        cell
        for rows in (board.summary, board.participants, board.comparisons, board.distributions)
        for row in rows
        for cell in row.cells
    ]
    cells += [cell for _, table in board.tables for cell in table.values()]
    board.fields = {cell.key: cell.text for cell in cells}
    board.fields["judgements"] = str(analysis.judgements)
    return board


def live(analysis: StudyAnalysis) -> dict[str, Any]:
    """What the dashboard's poll receives: every keyed text and every chart."""
    board = dashboard(analysis)
    return {
        "fields": board.fields,
        "charts": {name: str(svg) for name, svg in board.charts.items()},
        "comparisons": len(board.comparisons),
    }
