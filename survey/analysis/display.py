"""A study's analysis as the dashboard shows it: formatted cells, each with the key under
which the live update (``analysis.json``) sends its new text, and the charts.

One place formats every number, so the page and its updates always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from studyplatform.words import counted
from survey.analysis.charts import (
    Bars,
    Estimate,
    IntervalRow,
    Point,
    bar_chart,
    interval_chart,
    scatter_chart,
)
from survey.analysis.counts import RT_BIN_MS, RT_CAP_MS
from survey.analysis.distributions import Distribution, quantile, regroup
from survey.analysis.results import ConditionResult, ImageRow, StudyAnalysis
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


def _condition_values(c: ConditionResult, level: str) -> dict[str, tuple[str, str, str]]:
    """name -> (label, text, hint) of one condition's summary column, in display order."""
    t, s, b = c.table, c.sdt, c.bootstrap
    values: dict[str, tuple[str, str, str]] = {
        "l1": ("L1 distance (test split)", number(c.metrics.get("l1")), "run metric"),
        "ssim": ("SSIM (test split)", number(c.metrics.get("ssim"), 4), "run metric"),
        "participants": (
            "Participants counted",
            str(s.n_participants + c.sdt_skipped) if s else "0",
            "",
        ),
        "n": ("Judgements", str(t["n"]) if t else "0", ""),
    }
    for rate, label in RATE_LABELS.items():
        values[rate] = (label, pct(t[rate]) if t else DASH, "")
        values[f"{rate}_ci"] = (
            f"{level} Wilson interval",
            pct_interval(t["intervals"][rate]["wilson"]) if t else DASH,
            "",
        )
        if rate == "fooling_rate":
            boot = b.fooling_rate.interval if b else None
            values["fooling_rate_boot"] = (
                f"{level} bootstrap over participants",
                pct_interval([boot.low, boot.high]) if boot else DASH,
                "resamples participants, all their judgements together",
            )
    values.update(
        chi2=(
            "χ² Pearson, no continuity correction (df = 1)",
            number(t["chi2_pearson"], 4) if t else DASH,
            "the paper's statistic",
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
            p_text(t["binomial_tests"]["fooling_rate"]["p_value"]) if t else DASH,
            "",
        ),
        d_prime=(
            "Sensitivity d′ (mean over participants)",
            _mean_interval(s.mean_d_prime, s.d_prime_interval) if s else DASH,
            f"{level} t interval; log-linear correction; 0 = cannot tell",
        ),
        criterion=(
            "Criterion c (mean)",
            _mean_interval(s.mean_criterion, s.criterion_interval) if s else DASH,
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


def summary_rows(analysis: StudyAnalysis) -> list[Row]:
    """Rows = statistics, columns = conditions."""
    level = f"{100 * analysis.confidence:g} %"
    columns = [_condition_values(c, level) for c in analysis.conditions]
    if not columns:
        return []
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
    for label, prefix, accuracy, rt in groups:
        cells = [
            Cell(f"{prefix}-acc", _distribution_line(accuracy, pct) if accuracy else DASH),
            Cell(f"{prefix}-rt-real", _distribution_line(rt["real"], seconds)),
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


def image_cards(rows: list[ImageRow]) -> list[dict[str, Any]]:
    """The per-image view's captions."""
    return [
        {
            "image": r,
            "percent": round(100 * r.rate) if r.rate is not None else 0,
            "rate": pct(r.rate, 0),
            "interval": pct_interval(r.interval, 0),
            "rt": seconds(r.rt_ms),
            "l1": number(r.metrics.get("l1"), 2),
            "ssim": number(r.metrics.get("ssim"), 3),
        }
        for r in rows
    ]


def _estimate(c: ConditionResult, rate: str) -> Estimate | None:
    if c.table is None:
        return None
    low, high = c.table["intervals"][rate]["wilson"]
    return Estimate(c.table[rate], low, high)


def charts(analysis: StudyAnalysis) -> dict[str, SafeString]:
    level = f"{100 * analysis.confidence:g} %"
    rows = [
        IntervalRow(
            c.label,
            {
                "fooling rate": _estimate(c, "fooling_rate"),
                "P(judged Real | AI)": _estimate(c, "ai_judged_real_rate"),
            },
        )
        for c in analysis.conditions
    ]
    result = {
        "rates": interval_chart(
            "Rates per condition",
            rows,
            ["fooling rate", "P(judged Real | AI)"],
            note=f"Dots: the rates; whiskers: {level} Wilson intervals.",
        )
    }
    for key, label in (("l1", "L1 distance"), ("ssim", "SSIM")):
        points = [
            Point(c.label, c.metrics[key], _estimate(c, "fooling_rate"))
            for c in analysis.conditions
            if c.metrics.get(key) is not None and c.table is not None
        ]
        result[key] = scatter_chart(
            f"Fooling rate against {label}",
            f"{label} of the run (test split)",
            points,
            note=f"One point per condition; whiskers: {level} Wilson intervals.",
        )
    accuracy = analysis.accuracy
    result["accuracy"] = bar_chart(
        "Participants' accuracy",
        "accuracy (share of right answers)",
        accuracy.edges,
        [Bars("participants", accuracy.counts)],
        edge_label=lambda v: f"{100 * v:.0f}%",
        marker=(0.5, "chance"),
        note="Each participant's right answers over all their counted judgements.",
    )
    real, ai = (
        regroup(d, **rt_scale(analysis.response_times.values()))
        for d in (
            analysis.response_times["real"],
            analysis.response_times["ai"],
        )
    )
    result["rt"] = bar_chart(
        "Participants' response times",
        "geometric mean response time (s)",
        real.edges,
        [Bars("real photographs", real.counts), Bars("AI images", ai.counts)],
        edge_label=lambda v: f"{v / 1000:g}",
        open_end=True,
        note="Per participant, the geometric mean of their response times to real "
        "photographs and to AI images; the last bar holds all longer ones.",
    )
    return result


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
