"""The analysis of a study, counted by the database (method.md §7).

Every count comes from a ``GROUP BY`` with filtered ``COUNT``\\ s; Python receives counts,
never one row per judgement, so a study with a million judgements is analysed in a handful
of queries (bench/bench_analysis.py). The statistics are :mod:`survey.statistics`' pure
functions applied to those counts.

**The exclusion rule** (:func:`exclusion_rules`, the one definition; :data:`EXCLUSION_RULE`
says it in words and the dashboard shows it). Counted are the *main* trials, answered, of
*included* participants:

* practice trials never count (they came with feedback);
* attention checks never enter the tables (they are obvious fakes that only serve the rule);
* a participant who answered "Real" to any attention check (a colour-inverted photograph)
  is excluded altogether;
* a participant who has not answered every trial (``completed_at`` NULL: dropped out, or
  still in progress) is excluded, unless ``include_unfinished`` is asked for, in which case
  their answered main trials count;
* withdrawn participants have no trials left (their data was deleted); they are listed.

The tables, the per-participant statistics, the per-image rates, the response times and
the exports all go through :func:`included_participants` / :func:`measured_trials`.

**Conditions.** Between subjects (the paper's design) each participant sees one condition,
whose real and AI stimuli are its own: the condition's table is simply its participants'
judgements. Within subjects the real photographs are shared by the conditions (their
stimuli have no condition), so every condition's table has the same *shared real row* (every
real judgement of the included participants) beside its own AI row. The tables are then not
independent; compare conditions with the long-format export and a mixed-effects model. Per
participant (d′, c, the bootstrap) a participant's real judgements count towards each
condition whose AI images they judged; when every participant sees every condition (half
the images per participant at least the number of conditions) the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, Exists, F, Least, OuterRef, Q, QuerySet, Value
from django.db.models import When as _When
from django.db.models.expressions import Case
from django.db.models.fields import CharField

from survey.models import Participant, Stimulus, Study, Trial
from survey.statistics import (
    CELLS,
    DEFAULT_CONFIDENCE,
    BootstrapResult,
    ContingencyTable,
    SDTSummary,
    analyse_table,
    bootstrap_counts,
    compare_conditions,
    sdt_summary_from_counts,
    wilson_interval,
)

MAIN, ATTENTION = Stimulus.Role.MAIN, Stimulus.Role.ATTENTION
REAL, AI = Trial.Answer.REAL, Trial.Answer.AI

#: The exclusion rule in words (the dashboard and the JSON export show it).
EXCLUSION_RULE = (
    "Practice trials are never counted (they came with feedback).",
    "Attention checks (colour-inverted photographs, whose right answer is AI) are never "
    "counted in the tables; a participant who answered Real to any of them is excluded "
    "altogether.",
    "Unfinished participants (who have not answered every trial: dropped out or still in "
    "progress) are excluded.",
    "Withdrawn participants have no data left: their trials were deleted on request.",
)
UNFINISHED_INCLUDED = (
    "Unfinished participants are included on request: their answered main trials count."
)

#: Exclusion reasons, in the order they are checked (the first that applies is given).
WITHDRAWN, FAILED_ATTENTION, UNFINISHED = "withdrawn", "failed attention check", "unfinished"

#: Response times are counted in bins of this many ms, up to RT_CAP_MS (longer ones in the last).
RT_BIN_MS = 50
RT_CAP_MS = 30_000

#: The cells of a 2×2 table as filters on measured trials (truth from the stimulus).
CELL_FILTERS = {
    "real_real": Q(stimulus__is_real=True, answer=REAL),
    "real_ai": Q(stimulus__is_real=True, answer=AI),
    "ai_real": Q(stimulus__is_real=False, answer=REAL),
    "ai_ai": Q(stimulus__is_real=False, answer=AI),
}
#: The run metrics shown beside each condition: key in ModelRun.metrics["test"] -> label.
RUN_METRICS = {"l1": "L1 distance", "ssim": "SSIM"}


def exclusion_rule_text(*, include_unfinished: bool = False) -> list[str]:
    rule = list(EXCLUSION_RULE)
    if include_unfinished:
        rule[2] = UNFINISHED_INCLUDED
    return rule


# --------------------------------------------------------------------------------------
# The exclusion rule
# --------------------------------------------------------------------------------------


def failed_attention() -> Exists:
    """On a participant queryset: answered "Real" to an attention check."""
    return Exists(Trial.objects.filter(participant_id=OuterRef("pk"), kind=ATTENTION, answer=REAL))


def exclusion_rules(*, include_unfinished: bool = False) -> list[tuple[str, Q]]:
    """(reason, filter on participants meaning "excluded for this reason"), in order."""
    rules = [
        (WITHDRAWN, Q(withdrawn_at__isnull=False)),
        (FAILED_ATTENTION, Q(failed_attention())),
    ]
    if not include_unfinished:
        rules.append((UNFINISHED, Q(completed_at__isnull=True)))
    return rules


def exclusion_reason(*, include_unfinished: bool = False) -> Case:
    """On a participant queryset: why the participant is excluded ("" when included)."""
    return Case(
        *(
            _When(q, then=Value(reason))
            for reason, q in exclusion_rules(include_unfinished=include_unfinished)
        ),
        default=Value(""),
        output_field=CharField(),
    )


def included_participants(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The participants whose judgements count (see the module docstring)."""
    keep = Q()
    for _, excluded in exclusion_rules(include_unfinished=include_unfinished):
        keep &= ~excluded
    return Participant.objects.filter(keep, study=study)


def measured_trials(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The judgements that count: answered main trials of the included participants."""
    return Trial.objects.filter(
        participant__in=included_participants(
            study=study, include_unfinished=include_unfinished
        ).values("pk"),
        kind=MAIN,
        answer__isnull=False,
    )


def participant_exclusions(*, study: Study, include_unfinished: bool = False) -> dict[int, str]:
    """participant id -> exclusion reason, for the excluded participants only."""
    return dict(
        study.participants.annotate(reason=exclusion_reason(include_unfinished=include_unfinished))
        .exclude(reason="")
        .values_list("pk", "reason")
    )


@dataclass
class ParticipantCounts:
    """Participants of one condition (None: all, within subjects) by their fate."""

    started: int = 0
    completed: int = 0
    withdrawn: int = 0
    failed_attention: int = 0
    unfinished: int = 0  # excluded as unfinished (0 when unfinished ones are included)
    unfinished_included: int = 0  # unfinished but counted (include_unfinished)
    included: int = 0


def participant_counts(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, ParticipantCounts]:
    """condition id -> :class:`ParticipantCounts` (one query)."""
    rows = (
        study.participants.annotate(reason=exclusion_reason(include_unfinished=include_unfinished))
        .values("condition_id", "reason")
        .annotate(
            n=Count("pk"),
            completed=Count("pk", filter=Q(completed_at__isnull=False)),
        )
        .order_by()
    )
    counts: dict[int | None, ParticipantCounts] = {}
    for row in rows:
        c = counts.setdefault(row["condition_id"], ParticipantCounts())
        n, reason = row["n"], row["reason"]
        c.started += n
        if reason == WITHDRAWN:
            c.withdrawn += n
            continue
        c.completed += row["completed"]
        if reason == FAILED_ATTENTION:
            c.failed_attention += n
        elif reason == UNFINISHED:
            c.unfinished += n
        else:
            c.included += n
            c.unfinished_included += n - row["completed"]
    return counts


# --------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------


def _cells() -> dict[str, Count]:
    return {name: Count("pk", filter=q) for name, q in CELL_FILTERS.items()}


def condition_cells(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, tuple[int, int, int, int]]:
    """stimulus condition id -> (real_real, real_ai, ai_real, ai_ai) of the measured
    judgements (one query). Within subjects the real photographs' row is under None."""
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values(condition=F("stimulus__condition_id"))
        .annotate(**_cells())
        .order_by()
    )
    return {row["condition"]: tuple(row[c] for c in CELLS) for row in rows}


def _grouped_patterns_sql(inner: QuerySet, within: bool) -> tuple[str, list]:
    sql, params = inner.query.sql_with_params()
    cells = ", ".join(CELLS)
    if not within:
        return (
            f"SELECT condition, {cells}, COUNT(*) FROM ({sql}) per "
            f"GROUP BY condition, {cells}",
            list(params),
        )
    # The participant's real row (condition NULL) beside each of their AI rows.
    return (
        f"WITH per AS ({sql}) "
        "SELECT a.condition, COALESCE(r.real_real, 0), COALESCE(r.real_ai, 0), "
        "a.ai_real, a.ai_ai, COUNT(*) FROM per a LEFT JOIN per r "
        "ON r.participant_id = a.participant_id AND r.condition IS NULL "
        "WHERE a.condition IS NOT NULL "
        "GROUP BY a.condition, r.real_real, r.real_ai, a.ai_real, a.ai_ai",
        list(params),
    )


def participant_patterns(
    *, study: Study, include_unfinished: bool = False
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """condition id -> (cells (k, 4), participants (k,)): each distinct per-participant
    table of the condition and how many participants have it (one query: the database
    groups judgements by participant, then those tables by their cells)."""
    within = study.design == Study.Design.WITHIN
    inner = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values(
            "participant_id",
            condition=F("stimulus__condition_id"),
        )
        .annotate(**_cells())
        .order_by()
    )
    sql, params = _grouped_patterns_sql(inner, within)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    grouped: dict[int, list] = {}
    for condition, *cells, n in rows:
        grouped.setdefault(condition, []).append((*cells, n))
    return {
        condition: (np.array([r[:4] for r in group], np.int64), np.array([r[4] for r in group]))
        for condition, group in grouped.items()
    }


def participant_accuracy(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, list[tuple[int, int, int]]]:
    """participant's condition (None within subjects) -> [(correct, judgements,
    participants)]: each included participant's accuracy over all their measured trials,
    grouped by the database (one query)."""
    inner = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values("participant_id", condition=F("participant__condition_id"))
        .annotate(
            correct=Count("pk", filter=CELL_FILTERS["real_real"] | CELL_FILTERS["ai_ai"]),
            n=Count("pk"),
        )
        .order_by()
    )
    sql, params = inner.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT condition, correct, n, COUNT(*) FROM ({sql}) per "
            "GROUP BY condition, correct, n",
            params,
        )
        rows = cursor.fetchall()
    result: dict[int | None, list[tuple[int, int, int]]] = {}
    for condition, correct, n, participants in rows:
        result.setdefault(condition, []).append((correct, n, participants))
    return result


def response_time_bins(
    *, study: Study, include_unfinished: bool = False
) -> dict[tuple[int | None, bool], dict[int, int]]:
    """(stimulus condition, is_real) -> {bin: judgements}; bin b holds response times in
    [b, b + 1) × RT_BIN_MS, the last bin everything from RT_CAP_MS on (one query)."""
    last = RT_CAP_MS // RT_BIN_MS
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .filter(rt_ms__isnull=False)
        .values(
            condition=F("stimulus__condition_id"),
            is_real=F("stimulus__is_real"),
            bin=Least(F("rt_ms") / Value(RT_BIN_MS), Value(last)),
        )
        .annotate(n=Count("pk"))
        .order_by()
    )
    bins: dict[tuple[int | None, bool], dict[int, int]] = {}
    for row in rows:
        bins.setdefault((row["condition"], row["is_real"]), {})[row["bin"]] = row["n"]
    return bins


def stimulus_counts(
    *, study: Study, include_unfinished: bool = False
) -> dict[int, tuple[int, int]]:
    """stimulus id -> (judgements, wrong answers) of the measured judgements (one query)."""
    wrong = CELL_FILTERS["real_ai"] | CELL_FILTERS["ai_real"]
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values("stimulus_id")
        .annotate(n=Count("pk"), fooled=Count("pk", filter=wrong))
        .order_by()
        .values_list("stimulus_id", "n", "fooled")
    )
    return {stimulus: (n, fooled) for stimulus, n, fooled in rows}


# --------------------------------------------------------------------------------------
# Summaries of counts (pure)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """A histogram: ``edges`` has one more entry than ``counts``; quantiles interpolated
    within the bins they fall in."""

    edges: list[float]
    counts: list[int]
    n: int
    mean: float | None = None
    median: float | None = None
    quartiles: tuple[float, float] | None = None


def _quantile(edges: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    total = counts.sum()
    if total == 0:
        return None
    target = q * total
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    i = int(np.searchsorted(cumulative, target, side="left"))
    i = min(max(i, 1), len(counts))
    below, inside = cumulative[i - 1], counts[i - 1]
    fraction = 0.0 if inside == 0 else (target - below) / inside
    return float(edges[i - 1] + fraction * (edges[i] - edges[i - 1]))


def rt_distribution(bins: dict[int, int], *, width_ms: int = 500) -> Distribution:
    """Response times regrouped into ``width_ms`` bins up to RT_CAP_MS (the last bin open);
    median and quartiles from the fine RT_BIN_MS bins (to within RT_BIN_MS)."""
    last = RT_CAP_MS // RT_BIN_MS
    fine = np.zeros(last + 1, np.int64)
    for b, n in bins.items():
        fine[min(int(b), last)] += n
    fine_edges = np.arange(last + 2, dtype=float) * RT_BIN_MS
    per = width_ms // RT_BIN_MS
    coarse = [int(fine[i : i + per].sum()) for i in range(0, last, per)]
    coarse[-1] += int(fine[last])
    edges = [float(i * RT_BIN_MS) for i in range(0, last + 1, per)]
    n = int(fine.sum())
    centres = (fine_edges[:-1] + RT_BIN_MS / 2)[: last + 1]
    mean = float((fine * centres).sum() / n) if n else None
    q = [_quantile(fine_edges, fine, x) for x in (0.25, 0.5, 0.75)]
    return Distribution(
        edges, coarse, n, mean, q[1], (q[0], q[2]) if n else None
    )


def accuracy_distribution(rows: list[tuple[int, int, int]], *, bins: int = 10) -> Distribution:
    """Participants' accuracy (correct / judged) in ``bins`` equal bins over [0, 1] (1.0
    in the last)."""
    counts = np.zeros(bins, np.int64)
    total, weighted = 0, 0.0
    for correct, n, participants in rows:
        if n == 0:
            continue
        accuracy = correct / n
        counts[min(int(accuracy * bins), bins - 1)] += participants
        total += participants
        weighted += accuracy * participants
    edges = [i / bins for i in range(bins + 1)]
    values = sorted((c / n, p) for c, n, p in rows if n)
    median = None
    if total:
        cumulative = np.cumsum([p for _, p in values])
        median = float(values[int(np.searchsorted(cumulative, total / 2))][0])
    return Distribution(
        edges, [int(x) for x in counts], total, weighted / total if total else None, median
    )


# --------------------------------------------------------------------------------------
# The whole analysis
# --------------------------------------------------------------------------------------


@dataclass
class ImageRow:
    stimulus_id: int
    scene_id: int
    scene_name: str
    is_real: bool
    n: int
    fooled: int
    rate: float | None
    interval: list[float] | None  # Wilson
    metrics: dict[str, float | None] = field(default_factory=dict)  # the AI image's L1, SSIM


@dataclass
class ConditionResult:
    condition_id: int
    label: str
    run_id: int
    run_name: str
    run_kind: str
    colour_space: str
    metrics: dict[str, float | None]  # RUN_METRICS of the run's test split
    participants: ParticipantCounts | None  # between subjects only
    cells: dict[str, int] | None
    table: dict[str, Any] | None  # statistics.analyse_table; None while a row is empty
    sdt: SDTSummary | None
    sdt_skipped: int
    bootstrap: BootstrapResult | None
    accuracy: Distribution | None
    response_times: dict[str, Distribution]  # "real", "ai"
    images: list[ImageRow]


@dataclass
class StudyAnalysis:
    study_id: int
    study_name: str
    design: str
    include_unfinished: bool
    confidence: float
    exclusion_rule: list[str]
    participants: ParticipantCounts  # all conditions together
    conditions: list[ConditionResult]
    comparisons: list[dict[str, Any]]
    accuracy: Distribution
    response_times: dict[str, Distribution]  # "real", "ai" (all conditions)
    shared_real: dict[str, int] | None = None  # within subjects: the shared real row
    n_boot: int = 2000
    seed: int = 0

    def condition(self, condition_id: int) -> ConditionResult:
        return next(c for c in self.conditions if c.condition_id == condition_id)


def _table(cells: tuple[int, ...] | None) -> ContingencyTable | None:
    if cells is None or cells[0] + cells[1] == 0 or cells[2] + cells[3] == 0:
        return None
    return ContingencyTable(*cells)


def _run_metrics(run) -> dict[str, float | None]:
    test = (run.metrics or {}).get("test") or {}
    values = {}
    for key in RUN_METRICS:
        value = test.get(key)
        values[key] = float(value) if isinstance(value, int | float) else None
    return values


def _sum_counts(items: list[ParticipantCounts]) -> ParticipantCounts:
    total = ParticipantCounts()
    for item in items:
        for name in total.__dataclass_fields__:
            setattr(total, name, getattr(total, name) + getattr(item, name))
    return total


def _merge_bins(parts: list[dict[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for b, n in part.items():
            merged[b] = merged.get(b, 0) + n
    return merged


def _image_metrics(conditions, stimuli) -> dict[tuple[int, int], dict[str, float | None]]:
    """(run id, scene id) -> the colourised image's L1 and SSIM (one query)."""
    from worker.models import ColourisedImage

    runs = [c.run_id for c in conditions]
    scenes = {s["scene_id"] for s in stimuli if not s["is_real"]}
    rows = ColourisedImage.objects.filter(run_id__in=runs, source_id__in=scenes).values_list(
        "run_id", "source_id", "metrics"
    )
    return {
        (run, scene): {k: (metrics or {}).get(k) for k in RUN_METRICS}
        for run, scene, metrics in rows
    }


def image_rows(
    *, study: Study, conditions, include_unfinished: bool = False, confidence: float
) -> dict[int | None, list[ImageRow]]:
    """stimulus condition id -> its main stimuli with their fooling rates, highest first
    (stimuli nobody judged yet last); AI images carry their own L1 and SSIM."""
    counts = stimulus_counts(study=study, include_unfinished=include_unfinished)
    stimuli = list(
        Stimulus.objects.filter(study=study, role=MAIN).values(
            "pk", "condition_id", "scene_id", "scene__original_name", "is_real"
        )
    )
    run_of = {c.pk: c.run_id for c in conditions}
    metrics = _image_metrics(conditions, stimuli)
    rows: dict[int | None, list[ImageRow]] = {}
    for s in stimuli:
        n, fooled = counts.get(s["pk"], (0, 0))
        interval = wilson_interval(fooled, n, confidence).as_list() if n else None
        image_metrics = {}
        if not s["is_real"]:
            image_metrics = metrics.get((run_of.get(s["condition_id"]), s["scene_id"]), {})
        rows.setdefault(s["condition_id"], []).append(
            ImageRow(
                s["pk"],
                s["scene_id"],
                s["scene__original_name"],
                s["is_real"],
                n,
                fooled,
                fooled / n if n else None,
                interval,
                image_metrics,
            )
        )
    for group in rows.values():
        group.sort(key=lambda r: (r.rate is None, -(r.rate or 0), -r.n, r.stimulus_id))
    return rows


def study_analysis(
    *,
    study: Study,
    include_unfinished: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 2000,
    seed: int = 0,
    images: bool = True,
) -> StudyAnalysis:
    """Everything the dashboard and the exports show, in a fixed number of queries
    (whatever the number of participants). ``images=False`` leaves the per-image rates out
    (the dashboard does not show them)."""
    within = study.design == Study.Design.WITHIN
    flags = {"study": study, "include_unfinished": include_unfinished}
    conditions = list(study.conditions.select_related("run").order_by("pk"))
    people = participant_counts(**flags)
    cells = condition_cells(**flags)
    patterns = participant_patterns(**flags)
    accuracy = participant_accuracy(**flags)
    rt_bins = response_time_bins(**flags)
    images_by_condition = (
        image_rows(conditions=conditions, confidence=confidence, **flags) if images else {}
    )
    shared_real = cells.get(None) if within else None

    results = []
    for condition in conditions:
        own = cells.get(condition.pk)
        if within:
            real = shared_real or (0, 0, 0, 0)
            own = (real[0], real[1], *(own or (0, 0, 0, 0))[2:])
        table = _table(own)
        pattern = patterns.get(condition.pk)
        sdt, skipped, boot = None, 0, None
        if pattern is not None and pattern[1].sum():
            sdt, skipped = sdt_summary_from_counts(*pattern, confidence=confidence)
            if pattern[0].sum():
                boot = bootstrap_counts(
                    *pattern, n_boot=n_boot, seed=seed, confidence=confidence
                )
        image_list = list(images_by_condition.get(condition.pk, []))
        if within:
            image_list += images_by_condition.get(None, [])
            image_list.sort(key=lambda r: (r.rate is None, -(r.rate or 0), -r.n, r.stimulus_id))
        results.append(
            ConditionResult(
                condition_id=condition.pk,
                label=condition.label,
                run_id=condition.run_id,
                run_name=condition.run.name,
                run_kind=condition.run.get_kind_display(),
                colour_space=condition.run.colour_space,
                metrics=_run_metrics(condition.run),
                participants=None if within else people.get(condition.pk, ParticipantCounts()),
                cells=dict(zip(CELLS, own, strict=True)) if own else None,
                table=analyse_table(table, confidence) if table else None,
                sdt=sdt,
                sdt_skipped=skipped,
                bootstrap=boot,
                accuracy=None if within else accuracy_distribution(accuracy.get(condition.pk, [])),
                response_times={
                    "real": rt_distribution(
                        rt_bins.get((None if within else condition.pk, True), {})
                    ),
                    "ai": rt_distribution(rt_bins.get((condition.pk, False), {})),
                },
                images=image_list,
            )
        )
    return StudyAnalysis(
        study_id=study.pk,
        study_name=study.name,
        design=study.design,
        include_unfinished=include_unfinished,
        confidence=confidence,
        exclusion_rule=exclusion_rule_text(include_unfinished=include_unfinished),
        participants=_sum_counts(list(people.values())),
        conditions=results,
        comparisons=_comparisons(results, confidence),
        accuracy=accuracy_distribution([r for rows in accuracy.values() for r in rows]),
        response_times={
            "real": rt_distribution(_merge_bins([v for (_, real), v in rt_bins.items() if real])),
            "ai": rt_distribution(
                _merge_bins([v for (_, real), v in rt_bins.items() if not real])
            ),
        },
        shared_real=dict(zip(CELLS, shared_real, strict=True)) if shared_real else None,
        n_boot=n_boot,
        seed=seed,
    )


def _comparisons(results: list[ConditionResult], confidence: float) -> list[dict[str, Any]]:
    """Every pair of conditions with a table: a − b of the fooling rate and of P(judged
    Real | AI), Newcombe intervals and two-proportion z tests (independent samples)."""
    tables = [(r, ContingencyTable(**r.cells)) for r in results if r.table is not None]
    pairs = []
    for i, (a, ta) in enumerate(tables):
        for b, tb in tables[i + 1 :]:
            comparison = compare_conditions(ta, tb, confidence)
            pairs.append(
                {
                    "a": a.label,
                    "b": b.label,
                    "a_id": a.condition_id,
                    "b_id": b.condition_id,
                    "fooling_rate": comparison.fooling_rate,
                    "ai_judged_real_rate": comparison.ai_judged_real_rate,
                }
            )
    return pairs


def finite(value: Any) -> float | None:
    """``value`` as a float, None when missing or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
