"""Exports of a study's analysis (method.md §7): the contingency tables as CSV, JSON and
LaTeX, the runs' metrics as LaTeX, and every judgement as a long-format CSV.

The table exports are built from a :class:`survey.analysis.results.StudyAnalysis` (so the files
say exactly what the dashboard says); the long-format CSV is streamed from the database
(``values_list(...).iterator()``), one row per answered trial.

LaTeX needs ``\\usepackage{booktabs}``. χ² is always Pearson's test of independence
without continuity correction (the paper's statistic), and the files say so.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from studyplatform.safe_text import SafeCsvWriter, one_line
from studyplatform.words import counted
from survey.analysis.exclusion import MAIN, participant_exclusions
from survey.analysis.results import RUN_METRICS, ConditionResult, StudyAnalysis
from survey.models import Study, Trial
from survey.statistics import (
    dumps_json,
    format_latex,
    format_latex_conditions,
    latex_escape,
    to_jsonable,
)

CHI2_VARIANT = "Pearson chi-square test of independence, df = 1, no continuity correction"
RATES = ("fooling_rate", "ai_judged_real_rate", "real_judged_ai_rate", "accuracy")

TABLE_COLUMNS = (
    "condition",
    "condition_id",
    "model_run_id",
    "model_run",
    "run_kind",
    "colour_space",
    "participants",
    "real_real",
    "real_ai",
    "ai_real",
    "ai_ai",
    "n",
    *(f"{rate}{part}" for rate in RATES for part in ("", "_wilson_low", "_wilson_high")),
    "fooling_rate_bootstrap_low",
    "fooling_rate_bootstrap_high",
    "chi2_pearson_uncorrected",
    "p_pearson_uncorrected",
    "chi2_yates",
    "p_yates",
    "fisher_exact_p",
    "d_prime_mean",
    "d_prime_low",
    "d_prime_high",
    "criterion_mean",
    "criterion_low",
    "criterion_high",
    *RUN_METRICS,
    "confidence",
    "language",
)

JUDGEMENT_COLUMNS = (
    "participant",
    "condition",
    "model_run",
    "image",
    "image_name",
    "stimulus",
    "truth",
    "answer",
    "is_ai",
    "judged_ai",
    "correct",
    "rt_ms",
    "position",
    "practice",
    "attention",
    "excluded",
    "counted",
    "language",
)


def _csv_text(rows) -> str:
    buffer = io.StringIO()
    SafeCsvWriter(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _number(value: Any) -> Any:
    """Floats at full precision; None, NaN and infinities as an empty cell."""
    value = to_jsonable(value)
    return "" if value is None else value


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def table_row(c: ConditionResult, confidence: float) -> dict[str, Any]:
    """One condition as a flat record (the CSV's columns)."""
    row: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS, "")
    row.update(
        condition=c.label,
        condition_id=c.condition_id,
        model_run_id=c.run_id,
        model_run=c.run_name,
        run_kind=c.run_kind,
        colour_space=c.colour_space.upper(),
        confidence=confidence,
        **{key: _number(c.metrics.get(key)) for key in RUN_METRICS},
    )
    if c.sdt is not None:
        row["participants"] = c.sdt.n_participants + c.sdt_skipped
        row["d_prime_mean"] = _number(c.sdt.mean_d_prime)
        row["d_prime_low"] = _number(c.sdt.d_prime_interval.low)
        row["d_prime_high"] = _number(c.sdt.d_prime_interval.high)
        row["criterion_mean"] = _number(c.sdt.mean_criterion)
        row["criterion_low"] = _number(c.sdt.criterion_interval.low)
        row["criterion_high"] = _number(c.sdt.criterion_interval.high)
    if c.bootstrap is not None:
        interval = c.bootstrap.fooling_rate.interval
        row["fooling_rate_bootstrap_low"] = _number(interval.low)
        row["fooling_rate_bootstrap_high"] = _number(interval.high)
    if c.cells is not None:
        row.update(c.cells)
    t = c.table
    if t is not None:
        row["n"] = t["n"]
        for rate in RATES:
            low, high = t["intervals"][rate]["wilson"]
            row[rate] = _number(t[rate])
            row[f"{rate}_wilson_low"] = _number(low)
            row[f"{rate}_wilson_high"] = _number(high)
        row["chi2_pearson_uncorrected"] = _number(t["chi2_pearson"])
        row["p_pearson_uncorrected"] = _number(t["p_pearson"])
        row["chi2_yates"] = _number(t["chi2_yates"])
        row["p_yates"] = _number(t["p_yates"])
        row["fisher_exact_p"] = _number(t["fisher_p"])
    return row


def tables_csv(analysis: StudyAnalysis) -> str:
    """One row per condition: the 2×2 cells, rates with Wilson intervals, χ² (Pearson, no
    continuity correction, and Yates), Fisher's p, d′ and c, and the run's L1 and SSIM."""
    rows = [TABLE_COLUMNS]
    for c in analysis.conditions:
        record = table_row(c, analysis.confidence) | {"language": analysis.language}
        rows.append([record[column] for column in TABLE_COLUMNS])
    return _csv_text(rows)


def analysis_record(analysis: StudyAnalysis) -> dict[str, Any]:
    """The analysis as plain JSON values."""
    return {
        "study": {
            "id": analysis.study_id,
            "name": analysis.study_name,
            "design": analysis.design,
            "language": analysis.language,
            "wording": analysis.wording,
        },
        "exclusion_rule": analysis.exclusion_rule,
        "include_unfinished": analysis.include_unfinished,
        "confidence": analysis.confidence,
        "chi2": CHI2_VARIANT + " (chi2_pearson); Yates-corrected beside it (chi2_yates)",
        "fooling_rate": "(real judged AI + AI judged real) / all judgements (the paper's)",
        "ai_judged_real_rate": "P(judged Real | AI image) (Zhang et al., pix2pix)",
        "bootstrap": {"n_boot": analysis.n_boot, "seed": analysis.seed},
        "participants": to_jsonable(analysis.participants),
        "shared_real_row": analysis.shared_real,
        "conditions": to_jsonable(analysis.conditions),
        "comparisons": to_jsonable(analysis.comparisons),
        "accuracy": to_jsonable(analysis.accuracy),
        "response_times": to_jsonable(analysis.response_times),
    }


def tables_json(analysis: StudyAnalysis) -> str:
    return dumps_json(analysis_record(analysis), indent=2) + "\n"


def _header(analysis: StudyAnalysis) -> list[str]:
    lines = [
        f"% Study {analysis.study_id}: {one_line(analysis.study_name)}",
        f"% Participants' language: {analysis.language}.",
        "% Needs \\usepackage{booktabs}.",
        f"% chi^2: {CHI2_VARIANT}; intervals: Wilson, {100 * analysis.confidence:g} %.",
        "% Fooling rate: (real judged AI + AI judged real) / all judgements.",
        "% Exclusions:",
    ]
    lines += [f"%   {rule}" for rule in analysis.exclusion_rule]
    return lines


def tables_latex(analysis: StudyAnalysis, *, label_prefix: str | None = None) -> str:
    """One booktabs table per condition, laid out like the paper's Tables 5 and 7–9, then
    one table with every condition."""
    prefix = label_prefix or f"tab:study{analysis.study_id}"
    parts = ["\n".join(_header(analysis)) + "\n"]
    results = {}
    for i, c in enumerate(analysis.conditions, start=1):
        if c.table is None:
            parts.append(f"% {one_line(c.label)}: no judgements of both kinds yet\n")
            continue
        results[c.label] = c.table
        participants = c.sdt.n_participants + c.sdt_skipped if c.sdt else 0
        caption = (
            f"Judgements of real photographs and of images colourised by "
            f"{latex_escape(c.label)} ({counted(c.table['n'], 'judgement')} by "
            f"{counted(participants, 'participant')}). $\\chi^2$: Pearson, no continuity "
            "correction."
        )
        parts.append(format_latex(c.table, caption=caption, label=f"{prefix}-{i}"))
    if results:
        parts.append(
            format_latex_conditions(
                results,
                caption=(
                    "Judgements per condition: cells (rows actual, columns judged), "
                    "Pearson's $\\chi^2$ without continuity correction (df = 1) with its "
                    "$p$, and the fooling rate with its Wilson interval."
                ),
                label=f"{prefix}-all",
            )
        )
    return "\n".join(parts)


def _metric_text(value: float | None, digits: int) -> str:
    return "---" if value is None else f"{value:.{digits}f}"


def runs_latex(analysis: StudyAnalysis, *, label: str | None = None) -> str:
    """The study's model runs' test-split metrics, shaped like the paper's Table 4: one
    row per model (condition) with its colour space, L1 distance and SSIM."""
    body = [
        "\\begin{table}[htbp]",
        "\\centering",
        "\\caption{L1 distance and SSIM of the colourised test images, per model.}",
        f"\\label{{{label or f'tab:study{analysis.study_id}-runs'}}}",
        "\\begin{tabular}{llrr}",
        "\\toprule",
        "Model & Colour space & L1 distance & SSIM \\\\",
        "\\midrule",
    ]
    for c in analysis.conditions:
        body.append(
            f"{latex_escape(c.label)} & {c.colour_space.upper()} & "
            f"{_metric_text(c.metrics.get('l1'), 3)} & "
            f"{_metric_text(c.metrics.get('ssim'), 3)} \\\\"
        )
    body += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    notes = [
        f"% Study {analysis.study_id}: {one_line(analysis.study_name)}. "
        "Needs \\usepackage{booktabs}.",
        "% L1 distance: lambda * mean |c_hat - c| over the normalised chroma channels; "
        "SSIM: on RGB in [0, 1], 7x7 window, averaged over channels.",
    ]
    return "\n".join(notes + body) + "\n"


# --------------------------------------------------------------------------------------
# Judgements, long format
# --------------------------------------------------------------------------------------


def judgement_rows(*, study: Study, include_unfinished: bool = False) -> Iterator[list[Any]]:
    """Every answered trial of the study (practice and attention checks flagged, excluded
    participants named), in participant and position order. ``counted`` is 1 exactly for
    the judgements the tables count. Participants appear by their database id only."""
    excluded = participant_exclusions(study=study, include_unfinished=include_unfinished)
    language = study.language
    trials = (
        Trial.objects.filter(participant__study=study, answer__isnull=False)
        .order_by("participant_id", "position")
        .values_list(
            "participant_id",
            "stimulus__condition__label",
            "stimulus__condition__run_id",
            "stimulus__scene_id",
            "stimulus__scene__original_name",
            "stimulus_id",
            "stimulus__is_real",
            "answer",
            "rt_ms",
            "position",
            "kind",
        )
    )
    for (
        participant,
        condition,
        run,
        scene,
        scene_name,
        stimulus,
        is_real,
        answer,
        rt_ms,
        position,
        kind,
    ) in trials.iterator(chunk_size=5000):
        truth = "real" if is_real else "ai"
        reason = excluded.get(participant, "")
        yield [
            participant,
            condition or "",
            run or "",
            scene,
            scene_name,
            stimulus,
            truth,
            answer,
            int(not is_real),
            int(answer == "ai"),
            int(truth == answer),
            "" if rt_ms is None else rt_ms,
            position,
            int(kind == "practice"),
            int(kind == "attention"),
            reason,
            int(kind == MAIN and not reason),
            language,
        ]


def judgements_csv_chunks(
    *, study: Study, include_unfinished: bool = False, rows_per_chunk: int = 2000
) -> Iterator[str]:
    """The long-format CSV in pieces (for a StreamingHttpResponse): the header, then
    ``rows_per_chunk`` rows at a time."""
    yield _csv_text([JUDGEMENT_COLUMNS])
    batch: list[list[Any]] = []
    for row in judgement_rows(study=study, include_unfinished=include_unfinished):
        batch.append(row)
        if len(batch) >= rows_per_chunk:
            yield _csv_text(batch)
            batch = []
    if batch:
        yield _csv_text(batch)
