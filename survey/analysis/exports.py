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
from survey.analysis.caveats import too_few_participants, zero_width
from survey.analysis.exclusion import (
    ATTENTION,
    INSTRUCTED,
    MAIN,
    participant_exclusions,
    study_participants,
)
from survey.analysis.results import RUN_METRICS, ConditionResult, StudyAnalysis
from survey.inference import Row
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

#: The reference predictors' test metrics in tables.csv: "no_colour_l1", … (empty for a run
#: evaluated before they were computed).
REFERENCE_COLUMNS = tuple(
    f"{reference}_{key}"
    for reference in ("no_colour", "category_mean_chroma")
    for key in RUN_METRICS
)
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
    "fooling_rate_bootstrap_two_way_low",
    "fooling_rate_bootstrap_two_way_high",
    "ai_judged_real_rate_bootstrap_two_way_low",
    "ai_judged_real_rate_bootstrap_two_way_high",
    "interval_note",
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
    *REFERENCE_COLUMNS,
    "beats_no_colour",
    "confidence",
    # The protocol (survey.protocols); a HYPE_time study's statistic (survey.hype): the
    # mean exposure threshold over the condition's participants with its bootstrap
    # interval over participants, empty in the other protocols.
    "protocol",
    "exposure_threshold_ms",
    "exposure_threshold_low_ms",
    "exposure_threshold_high_ms",
    "threshold_participants",
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
    # The protocol (survey.protocols); for a paired trial the fake's side and the side
    # chosen as the real photograph (its stimulus is the fake, its truth "ai", its answer
    # "real" when the fake was chosen), empty for a single image.
    "protocol",
    "fake_side",
    "side",
    # A HYPE_time trial's exposure in ms, set by its staircase (empty in other protocols).
    "exposure_ms",
    # A rating study's ACR score, 1–5 (its answer is "acr"; empty in other protocols).
    "rating",
    # What an instructed-response check asked for, as the participant would give it: real
    # or ai (compare with answer), left or right in a pair (with side), 1–5 in a rating
    # study (with rating); empty for every other trial.
    "instructed",
)


#: Protocols whose statistic is not a fooling rate: where it is instead. Their tables.*
#: say so rather than carry empty fooling-rate numbers.
ELSEWHERE = {
    "rating": "rating study: its statistic is the mean opinion score (MOS) per run and of "
    "the real photographs, on the analysis page and in mos.json / mos.csv (the bundle's "
    "tables/mos.json); no fooling rate, 2x2 table or d' applies",
    "preference": "preference study: its statistic is the Bradley-Terry score per run, on "
    "the analysis page and in bradley-terry.json (the bundle's tables/bradley-terry.json); "
    "no fooling rate, 2x2 table or d' applies",
}


def elsewhere(protocol: str) -> str | None:
    """Where a rating or preference study's statistic is, in words; None for a protocol
    whose statistic these tables hold (single, paired, HYPE_time)."""
    return ELSEWHERE.get(protocol)


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


def interval_note(c: ConditionResult) -> str:
    """Why the condition's intervals mean little, in words ("" when they can be read):
    too few participants, or a bootstrap interval of zero width (named). The participants'
    note is the analysis page's (survey.analysis.display), for a single-image table and for
    a paired study's pairs alike; a condition with no judgements yet has no interval."""
    n = c.sdt.n_participants + c.sdt_skipped if c.sdt else 0
    judged = c.table is not None or c.pairs is not None
    notes = [too_few_participants(n)] if judged else []
    for name, boot in (("participants", c.bootstrap), ("two-way", c.bootstrap_two_way)):
        if boot is not None:
            interval = boot.fooling_rate.interval
            if reason := zero_width(interval.low, interval.high):
                notes.append(f"bootstrap ({name}) {reason}")
    return "; ".join(n for n in notes if n)


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
        **{
            f"{reference}_{key}": _number(values.get(key))
            for reference, values in c.references.items()
            for key in RUN_METRICS
        },
        beats_no_colour={True: "yes", False: "no"}.get(c.beats_no_colour, ""),
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
    if c.bootstrap_two_way is not None:
        for rate in ("fooling_rate", "ai_judged_real_rate"):
            interval = getattr(c.bootstrap_two_way, rate).interval
            row[f"{rate}_bootstrap_two_way_low"] = _number(interval.low)
            row[f"{rate}_bootstrap_two_way_high"] = _number(interval.high)
    row["interval_note"] = interval_note(c)
    if c.hype is not None:
        row["exposure_threshold_ms"] = _number(c.hype["mean_ms"])
        row["exposure_threshold_low_ms"] = _number(c.hype["low_ms"])
        row["exposure_threshold_high_ms"] = _number(c.hype["high_ms"])
        row["threshold_participants"] = c.hype["participants"]
    if c.cells is not None:
        row.update(c.cells)
    t = c.table
    if t is None and c.pairs is not None:  # a paired study: P(chose the fake)
        row["n"] = c.pairs["n"]
        for rate in ("fooling_rate", "ai_judged_real_rate"):
            row[rate] = _number(c.pairs["rate"])
            row[f"{rate}_wilson_low"] = _number(c.pairs["wilson"][0])
            row[f"{rate}_wilson_high"] = _number(c.pairs["wilson"][1])
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
    continuity correction, and Yates), Fisher's p, d′ and c, and the run's L1 and SSIM. A
    rating or preference study: one row per condition naming where its statistic is."""
    note = elsewhere(analysis.protocol)
    if note:
        return _csv_text(
            [["condition", "protocol", "statistic", "note"]]
            + [[c.label, analysis.protocol, analysis.statistic, note] for c in analysis.conditions]
        )
    rows = [TABLE_COLUMNS]
    for c in analysis.conditions:
        record = table_row(c, analysis.confidence) | {
            "language": analysis.language,
            "protocol": analysis.protocol,
        }
        rows.append([record[column] for column in TABLE_COLUMNS])
    return _csv_text(rows)


def analysis_record(analysis: StudyAnalysis) -> dict[str, Any]:
    """The analysis as plain JSON values (a rating or preference study: the study, who
    counts and a note naming where its statistic is, no fooling-rate content)."""
    study = {
        "id": analysis.study_id,
        "name": analysis.study_name,
        "design": analysis.design,
        "protocol": analysis.protocol,
        "statistic": analysis.statistic,
        "language": analysis.language,
        "wording": analysis.wording,
    }
    note = elsewhere(analysis.protocol)
    if note:
        return {
            "study": study,
            "note": note,
            "exclusion_rule": analysis.exclusion_rule,
            "include_unfinished": analysis.include_unfinished,
            "participants": to_jsonable(analysis.participants),
        }
    return {
        "study": study,
        "exclusion_rule": analysis.exclusion_rule,
        "include_unfinished": analysis.include_unfinished,
        "confidence": analysis.confidence,
        "chi2": CHI2_VARIANT + " (chi2_pearson); Yates-corrected beside it (chi2_yates)",
        "fooling_rate": "(real judged AI + AI judged real) / all judgements (the paper's)",
        "ai_judged_real_rate": "P(judged Real | AI image) (Zhang et al., pix2pix)",
        "bootstrap": {
            "two_way_computed": not analysis.two_way_skipped,
            "n_boot": analysis.n_boot,
            "seed": analysis.seed,
            "over_participants": "participants resampled with replacement, images fixed",
            "two_way": "participants and images resampled together (crossed "
            "bootstrap, Owen 2007): images within their truth; the judgements of each drawn "
            "participant about each drawn image, with multiplicity",
        },
        "participants": to_jsonable(analysis.participants),
        "shared_real_row": analysis.shared_real,
        "conditions": [
            {**to_jsonable(c), "interval_note": interval_note(c)} for c in analysis.conditions
        ],
        "comparisons": to_jsonable(analysis.comparisons),
        # HYPE_time (survey.hype): each counted participant's exposure threshold.
        "exposure_thresholds": to_jsonable(analysis.hype_participants),
        "accuracy": to_jsonable(analysis.accuracy),
        "response_times": to_jsonable(analysis.response_times),
    }


#: Beyond this many judgements the mixed models are left to ``manage.py analyse_judgements``
#: on judgements.csv: a download must not wait minutes for them (the paper's 4 × 104 × 24
#: takes about 8 s).
MIXED_MODEL_LIMIT = 12_000


def inference_rows(*, study: Study, include_unfinished: bool = False) -> list[Row] | None:
    """The counted judgements as :class:`survey.inference.Row` (image = the scene; a shared
    real photograph has no condition), or None beyond :data:`MIXED_MODEL_LIMIT`."""
    at = {name: JUDGEMENT_COLUMNS.index(name) for name in JUDGEMENT_COLUMNS}
    rows = []
    for record in judgement_rows(study=study, include_unfinished=include_unfinished):
        if not record[at["counted"]]:
            continue
        if len(rows) >= MIXED_MODEL_LIMIT:
            return None
        rows.append(
            Row(
                participant=str(record[at["participant"]]),
                image=str(record[at["image"]]),
                condition=record[at["condition"]] or None,
                truth=record[at["truth"]],
                answer=record[at["answer"]],
            )
        )
    return rows


def mixed_models_record(analysis: StudyAnalysis) -> dict[str, Any]:
    """The mixed models and equivalence tests of survey.inference (the ``glmm``, ``sdt``,
    ``tost`` and ``mixed_tost`` of each condition, the contrasts), or why they are absent."""
    from survey.analysis.mixed import analysis_mixed_models  # it reads the judgements from here

    note = elsewhere(analysis.protocol)
    if note:
        return {"computed": False, "reason": note}
    study = Study.objects.get(pk=analysis.study_id)
    models = analysis_mixed_models(study=study, analysis=analysis)
    if not models.computed:
        return {"computed": False, "reason": models.reason}
    return {"computed": True, **to_jsonable(models.result)}


def tables_json(analysis: StudyAnalysis) -> str:
    record = analysis_record(analysis)
    record["mixed_models"] = mixed_models_record(analysis)
    return dumps_json(record, indent=2) + "\n"


def _header(analysis: StudyAnalysis) -> list[str]:
    lines = [
        f"% Study {analysis.study_id}: {one_line(analysis.study_name)}",
        f"% Participants' language: {analysis.language}.",
        "% Needs \\usepackage{booktabs}.",
        f"% chi^2: {CHI2_VARIANT}; intervals: Wilson, {100 * analysis.confidence:g} %.",
        "% Fooling rate: (real judged AI + AI judged real) / all judgements.",
        "% Exclusions:",
    ]
    if analysis.protocol == Study.Protocol.PAIRED:
        lines[3:5] = [
            f"% Intervals: {100 * analysis.confidence:g} %: Wilson, percentile bootstrap "
            f"({analysis.n_boot} replicates, seed {analysis.seed}), mixed model (Wald).",
            "% Fooling rate: pairs in which the fake was chosen as the real photograph / "
            "all pairs.",
        ]
    lines += [f"%   {rule}" for rule in analysis.exclusion_rule]
    return lines


def _bootstrap_caption(c: ConditionResult, confidence: float) -> str:
    """The fooling rate's bootstrap intervals for a table's caption, and the note when
    they mean little ("" without a bootstrap)."""
    parts = []
    for name, boot in (
        ("over participants", c.bootstrap),
        ("over participants and images", c.bootstrap_two_way),
    ):
        interval = boot.fooling_rate.interval if boot is not None else None
        if interval is not None and _number(interval.low) != "":
            parts.append(f"{name} {100 * interval.low:.1f}--{100 * interval.high:.1f}\\,\\%")
    if not parts:
        return ""
    text = f" Fooling rate, {100 * confidence:g}\\,\\% bootstrap intervals: {'; '.join(parts)}."
    note = interval_note(c)
    return text + (f" ({latex_escape(note)}.)" if note else "")


def tables_latex(analysis: StudyAnalysis, *, label_prefix: str | None = None) -> str:
    """One booktabs table per condition, laid out like the paper's Tables 5 and 7–9, then
    one table with every condition."""
    prefix = label_prefix or f"tab:study{analysis.study_id}"
    note = elsewhere(analysis.protocol)
    if note:
        return (
            f"% Study {analysis.study_id}: {one_line(analysis.study_name)}\n"
            f"% No fooling-rate table: {note}.\n"
        )
    parts = ["\n".join(_header(analysis)) + "\n"]
    if analysis.protocol == Study.Protocol.PAIRED:
        return "\n".join(parts + _paired_tables(analysis, prefix))
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
            "correction." + _bootstrap_caption(c, analysis.confidence)
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


def _paired_tables(analysis: StudyAnalysis, prefix: str) -> list[str]:
    """A paired study's tables (survey.analysis.paired_latex), with the mixed models of
    tables.json (or the reason they are absent, as a comment)."""
    from survey.analysis import paired_latex

    mixed = mixed_models_record(analysis)
    models = {m["condition"]: m for m in mixed.get("conditions", [])} if mixed["computed"] else {}
    parts = [
        f"% Protocol: {analysis.protocol_title}. Statistic: {one_line(analysis.statistic)}.",
        "% Each pair is counted as the judgement of its fake; there is no 2x2 table and no d'.",
    ]
    if not mixed["computed"]:
        parts.append(f"% Mixed models: {one_line(mixed['reason'])}")
    found = False
    for i, c in enumerate(analysis.conditions, start=1):
        if c.pairs is None:
            parts.append(f"% {one_line(c.label)}: no pairs counted yet\n")
            continue
        found = True
        people = c.bootstrap.n_participants if c.bootstrap is not None else 0
        parts.append(
            paired_latex.paired_condition_table(
                c,
                analysis.confidence,
                models.get(c.label),
                f"{prefix}-{i}",
                people,
                interval_note(c),
            )
        )
    if found:
        parts.append(paired_latex.paired_conditions_table(analysis, models, f"{prefix}-all"))
    return parts


def _metric_text(value: float | None, digits: int) -> str:
    return "---" if value is None else f"{value:.{digits}f}"


#: The reference rows of runs.tex (worker.services.references), in order.
REFERENCE_ROWS = {
    "no_colour": "No colour (grayscale input)",
    "category_mean_chroma": "Category mean chroma",
}


def _reference_rows(analysis: StudyAnalysis) -> list[str]:
    """One row per reference predictor and colour space; where the conditions' test images
    differ (an upload covering part of the split), one per distinct set of values, naming
    the models whose images it was measured on."""
    rows = []
    for key, title in REFERENCE_ROWS.items():
        groups: dict[tuple, list[str]] = {}
        for c in analysis.conditions:
            values = c.references.get(key)
            if values is not None:
                found = (c.colour_space, values.get("l1"), values.get("ssim"))
                groups.setdefault(found, []).append(c.label)
        spaces = [space for space, _, _ in groups]
        for (space, l1, ssim), labels in groups.items():
            name = title
            if spaces.count(space) > 1:
                name += f" (test images of {', '.join(labels)})"
            rows.append(
                f"{latex_escape(name)} & {space.upper()} & "
                f"{_metric_text(l1, 3)} & {_metric_text(ssim, 3)} \\\\"
            )
    return rows


def runs_latex(analysis: StudyAnalysis, *, label: str | None = None) -> str:
    """The study's model runs' test-split metrics, shaped like the paper's Table 4: one
    row per model (condition) with its colour space, L1 distance and SSIM, then the same
    metrics of the reference predictors on the same test images (predicting no colour at
    all, and each category's mean chroma); a model that does not beat no colour is marked."""
    body = [
        "\\begin{table}[htbp]",
        "\\centering",
        "\\caption{L1 distance and SSIM of the colourised test images, per model, beside "
        "predicting no colour at all.}",
        f"\\label{{{label or f'tab:study{analysis.study_id}-runs'}}}",
        "\\begin{tabular}{llrr}",
        "\\toprule",
        "Model & Colour space & L1 distance & SSIM \\\\",
        "\\midrule",
    ]
    partial = [c for c in analysis.conditions if c.partial_coverage]
    for c in analysis.conditions:
        mark = "\\textsuperscript{\\dag}" if c.beats_no_colour is False else ""
        mark += "$^\\ddagger$" if c.partial_coverage else ""
        body.append(
            f"{latex_escape(c.label)}{mark} & {c.colour_space.upper()} & "
            f"{_metric_text(c.metrics.get('l1'), 3)} & "
            f"{_metric_text(c.metrics.get('ssim'), 3)} \\\\"
        )
    references = _reference_rows(analysis)
    if references:
        body += ["\\midrule", *references]
    body += ["\\bottomrule", "\\end{tabular}"]
    if any(c.beats_no_colour is False for c in analysis.conditions):
        body.append(
            "\\par\\footnotesize \\textsuperscript{\\dag} Does not beat predicting no colour "
            "(its test L1 distance is not lower): it has learned little beyond grey."
        )
    if partial:
        covered = "; ".join(f"{latex_escape(c.label)}: {c.partial_coverage}" for c in partial)
        body.append(
            f"\\par\\footnotesize $^\\ddagger$ Tested on part of the test split ({covered}): "
            "not comparable with the complete runs."
        )
    body.append("\\end{table}")
    notes = [
        f"% Study {analysis.study_id}: {one_line(analysis.study_name)}. "
        "Needs \\usepackage{booktabs}.",
        "% L1 distance: lambda * mean |c_hat - c| over the normalised chroma channels; "
        "SSIM: on RGB in [0, 1], 7x7 window, averaged over channels.",
    ]
    if references:
        notes.append(
            "% No colour: the input's luminance with zero chroma; category mean chroma: each "
            "category's mean chroma over its training images."
        )
    if any(c.beats_no_colour is False for c in analysis.conditions):
        notes.append(
            "% \\dag: the model's test L1 distance is not lower than predicting no colour's."
        )
    return "\n".join(notes + body) + "\n"


# --------------------------------------------------------------------------------------
# Judgements, long format
# --------------------------------------------------------------------------------------


def judgement_rows(
    *, study: Study, include_unfinished: bool = False, participant: int | None = None
) -> Iterator[list[Any]]:
    """Every answered trial of the study's participants (pilot ones are no part of it;
    practice and checks flagged, instructed-response checks as attention checks; excluded
    participants named), in participant and position order; only participant number
    ``participant``'s when given. ``counted`` is 1 exactly for the judgements the tables
    count (not a flagged display where the study drops them). Participants appear by
    their database id only."""
    excluded = participant_exclusions(study=study, include_unfinished=include_unfinished)
    language = study.language
    trials = Trial.objects.filter(
        participant__in=study_participants(study).values("pk"), answer__isnull=False
    )
    if participant is not None:
        trials = trials.filter(participant_id=participant)
    trials = trials.order_by("participant_id", "position").values_list(
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
        "display__flagged",
        "fake_side",
        "chosen_side",
        "exposure_ms",
        "rating",
        "instructed_answer",
        "instructed_rating",
    )
    drops = study.drop_flagged_displays
    protocol = study.protocol
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
        flagged,
        fake_side,
        chosen_side,
        exposure_ms,
        rating,
        instructed_answer,
        instructed_rating,
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
            int(kind in (ATTENTION, INSTRUCTED)),
            reason,
            int(kind == MAIN and not reason and not (drops and flagged)),
            language,
            protocol,
            fake_side or "",
            chosen_side or "",
            "" if exposure_ms is None else exposure_ms,
            "" if rating is None else rating,
            _asked(instructed_answer, instructed_rating, fake_side),
        ]


def _asked(answer: str | None, score: int | None, fake_side: str | None) -> str | int:
    """An instructed-response check's instruction as the participant would answer it (see
    ``instructed`` in :data:`JUDGEMENT_COLUMNS`); "" for any other trial."""
    if answer is None:
        return ""
    if score is not None:
        return score
    if fake_side is not None:
        return Trial.side_stored_as(answer, fake_side)
    return answer


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
