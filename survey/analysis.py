"""The analysis of a study, counted by the database (method.md §7).

Every count comes from a ``GROUP BY`` with filtered ``COUNT``\\ s; Python receives counts,
never one row per judgement, and the statistics are :mod:`survey.statistics`' pure functions
applied to those counts.

**Two levels.** The judgements are first counted per participant (and stimulus condition):
the four cells of the participant's own 2×2 table and the sums of their log response times
(:func:`participant_tallies`). A finished participation never changes, so these tallies are
stored, once, for each finished participant (:class:`survey.models.ParticipantTally`,
:func:`tallies_refresh`, run by every analysis for those newly finished; a withdrawal deletes
them). The study's tables, the distinct per-participant tables (for d′, c and the bootstrap),
the participants' accuracy and response times are then grouped from the tallies of the
included participants in one query (:func:`study_counts`): a study with a million
judgements is analysed in under a second (bench/bench_analysis.py), and the dashboard's
polling costs little. :func:`condition_cells` counts the tables straight from the trials
(the same numbers; the tests hold them equal).

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
the exports all go through :func:`exclusion_rules` (:func:`included_participants`,
:func:`measured_trials`, :func:`participant_exclusions`).

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
from django.db import connection, transaction
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest, Ln

from survey.models import Participant, ParticipantTally, Stimulus, Study, Trial
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
    wilson_intervals,
)
from worker.models import ColourisedImage

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

#: Participants' typical response times (the geometric mean of theirs) are counted in bins
#: of RT_BIN_MS ms up to RT_CAP_MS (longer ones in the last bin).
RT_BIN_MS = 50
RT_CAP_MS = 10_000

#: For the one large query, on PostgreSQL (as SET LOCAL: this transaction only): room for a
#: hash of one group per participant (the default 4 MB spills to disk from about 40,000
#: participants); no JIT compilation, which costs more than it saves on a query this
#: short; and parallel workers for the scan and the grouping, which the planner's default
#: costs refuse for it (on 2 cores they take a third off).
POSTGRESQL_SETTINGS = {
    "work_mem": "64MB",
    "jit": "off",
    "parallel_setup_cost": "100",
    "parallel_tuple_cost": "0.01",
}

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
            When(q, then=Value(reason))
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


def _log_rt() -> Ln:
    """ln(response time in ms), 0 ms counted as 1 ms."""
    return Ln(Greatest(F("rt_ms"), Value(1)))


def participant_tallies(*, study: Study) -> QuerySet:
    """Counted from the trials: one row per participant and stimulus condition (within
    subjects the real photographs' row has condition None) with the participant's answered
    main trials as the four cells and the sums of the log response times to real and to AI
    images (divided by the row's judgements: the log of the geometric mean). Every
    participant of the study: the exclusion rule is applied to these rows."""
    return (
        Trial.objects.filter(stimulus__study=study, kind=MAIN, answer__isnull=False)
        .values("participant_id", condition=F("stimulus__condition_id"))
        .annotate(
            **_cells(),
            log_rt_real=Sum(_log_rt(), filter=Q(stimulus__is_real=True)),
            log_rt_ai=Sum(_log_rt(), filter=Q(stimulus__is_real=False)),
        )
        .order_by()
    )


TALLY_COLUMNS = (*CELLS, "log_rt_real", "log_rt_ai")
#: Up to this many newly finished participants are tallied by id (through the index on
#: the trials' participant); more (a first analysis) in one pass over the study's trials.
TALLY_BY_ID = 1000


def tallies_refresh(*, study: Study) -> int:
    """Store the tallies (:class:`survey.models.ParticipantTally`) of the finished, not
    withdrawn participants that have none yet; returns how many tally rows were stored. A
    finished participation never changes, so each is counted from its trials once."""
    missing = Participant.objects.filter(
        study=study, completed_at__isnull=False, withdrawn_at__isnull=True, tallies__isnull=True
    )
    ids = list(missing.order_by().values_list("pk", flat=True)[: TALLY_BY_ID + 1])
    if not ids:
        return 0
    source = participant_tallies(study=study)
    if len(ids) <= TALLY_BY_ID:
        source = source.filter(participant_id__in=ids)
    else:
        source = source.filter(participant__in=missing.values("pk"))
    sql, params = source.query.sql_with_params()
    columns = ", ".join(TALLY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ParticipantTally._meta.db_table} "
            f"(participant_id, condition_id, {columns}) "
            # (SQLite parses ON CONFLICT after INSERT … SELECT only behind a WHERE.)
            f"SELECT participant_id, condition, {columns} FROM ({sql}) t WHERE 1 = 1 "
            "ON CONFLICT DO NOTHING",  # a concurrent analysis stored them first
            params,
        )
        return cursor.rowcount


def _counts_sql(study: Study, include_unfinished: bool) -> tuple[str, list]:
    """The one query behind :func:`study_counts`: the tallies of the included participants
    (``inc``: the stored ones, and with ``include_unfinished`` those of the unfinished
    participants counted from their trials), then, from them, the tables, the distinct
    per-participant tables, the participants' accuracy and their typical response times, as
    one result with a ``part`` column."""
    columns = ", ".join(TALLY_COLUMNS)
    tallies = (
        f"SELECT participant_id, condition_id AS condition, {columns} "
        f"FROM {ParticipantTally._meta.db_table}"
    )
    tally_params: list = []
    if include_unfinished:  # the unfinished participants' trials, counted now
        live, live_params = (
            participant_tallies(study=study)
            .filter(participant__completed_at__isnull=True, participant__withdrawn_at__isnull=True)
            .query.sql_with_params()
        )
        tallies += f" UNION ALL SELECT participant_id, condition, {columns} FROM ({live}) live"
        tally_params = list(live_params)
    included, included_params = (
        included_participants(study=study, include_unfinished=include_unfinished)
        .order_by()
        .values("pk")
        .query.sql_with_params()
    )
    cells = ", ".join(CELLS)
    within = study.design == Study.Design.WITHIN
    if within:  # each AI row beside the participant's real row (condition NULL)
        patterns = (
            "SELECT 'pattern', a.condition, COALESCE(r.real_real, 0), COALESCE(r.real_ai, 0), "
            "a.ai_real, a.ai_ai, COUNT(*) FROM inc a LEFT JOIN inc r "
            "ON r.participant_id = a.participant_id AND r.condition IS NULL "
            "WHERE a.condition IS NOT NULL "
            "GROUP BY a.condition, r.real_real, r.real_ai, a.ai_real, a.ai_ai"
        )
    else:
        patterns = (
            f"SELECT 'pattern', condition, {cells}, COUNT(*) FROM inc GROUP BY condition, {cells}"
        )
    last = RT_CAP_MS // RT_BIN_MS
    rt_parts = []
    for part, log_sum, judged in (
        ("rt_real", "log_rt_real", "real_real + real_ai"),
        ("rt_ai", "log_rt_ai", "ai_real + ai_ai"),
    ):
        # The bin of the participant's geometric mean response time, the last bin open.
        bin_ = f"FLOOR(EXP({log_sum} / ({judged})) / {RT_BIN_MS})"
        bin_ = f"CASE WHEN {bin_} > {last} THEN {last} ELSE CAST({bin_} AS BIGINT) END"
        rt_parts.append(
            f"SELECT '{part}', condition, {bin_}, NULL, NULL, NULL, COUNT(*) FROM inc "
            f"WHERE {log_sum} IS NOT NULL AND {judged} > 0 GROUP BY condition, {bin_}"
        )
    # Accuracy over all of a participant's judgements: between subjects their one row,
    # within subjects the sum of their rows (and no condition).
    if within:
        per_participant = (
            "SELECT CAST(NULL AS BIGINT) AS condition, SUM(real_real + ai_ai) AS correct, "
            "SUM(real_real + real_ai + ai_real + ai_ai) AS n FROM inc GROUP BY participant_id"
        )
    else:
        per_participant = (
            "SELECT condition, real_real + ai_ai AS correct, "
            "real_real + real_ai + ai_real + ai_ai AS n FROM inc"
        )
    accuracy = (
        "SELECT 'accuracy', condition, correct, n, NULL, NULL, COUNT(*) "
        f"FROM ({per_participant}) acc GROUP BY condition, correct, n"
    )
    sums = ", ".join(f"CAST(SUM({c}) AS BIGINT)" for c in CELLS)
    sql = " UNION ALL ".join(
        [
            f"WITH per AS ({tallies}), "
            f"inc AS (SELECT * FROM per WHERE participant_id IN ({included})) "
            f"SELECT 'table', condition, {sums}, NULL FROM inc GROUP BY condition",
            patterns,
            accuracy,
            *rt_parts,
        ]
    )
    return sql, [*tally_params, *included_params]


@dataclass
class StudyCounts:
    """What the database counted for :func:`study_analysis` (see :func:`study_counts`)."""

    #: stimulus condition -> (real_real, real_ai, ai_real, ai_ai); within subjects the
    #: shared real row under None.
    tables: dict[int | None, tuple[int, int, int, int]] = field(default_factory=dict)
    #: condition -> [(real_real, real_ai, ai_real, ai_ai, participants)]: the distinct
    #: per-participant tables and how many participants have each.
    patterns: dict[int, list[tuple[int, ...]]] = field(default_factory=dict)
    #: participant's condition (None within subjects) -> [(correct, judged, participants)].
    accuracy: dict[int | None, list[tuple[int, int, int]]] = field(default_factory=dict)
    #: (condition, is_real) -> {bin: participants}: participants' geometric mean response
    #: time in RT_BIN_MS bins (the last bin: RT_CAP_MS and more).
    response_times: dict[tuple[int | None, bool], dict[int, int]] = field(default_factory=dict)


def study_counts(*, study: Study, include_unfinished: bool = False) -> StudyCounts:
    """Tables, per-participant tables, accuracy and response times of the included
    participants, from their tallies (stored for the newly finished ones first:
    :func:`tallies_refresh`) grouped again by the database; one query once the tallies
    are stored."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # set_config(..., true): SET LOCAL
            calls = ", ".join(["set_config(%s, %s, true)"] * len(POSTGRESQL_SETTINGS))
            cursor.execute(f"SELECT {calls}", [x for kv in POSTGRESQL_SETTINGS.items() for x in kv])
        tallies_refresh(study=study)
        cursor.execute(*_counts_sql(study, include_unfinished))
        rows = cursor.fetchall()
    counts = StudyCounts()
    for part, condition, a, b, c, d, n in rows:
        if part == "table":
            counts.tables[condition] = (int(a), int(b), int(c), int(d))
        elif part == "pattern":
            counts.patterns.setdefault(condition, []).append((a, b, c, d, n))
        elif part == "accuracy":
            counts.accuracy.setdefault(condition, []).append((a, b, n))
        else:
            key = (condition, part == "rt_real")
            counts.response_times.setdefault(key, {})[int(a)] = n
    return counts


def condition_cells(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, tuple[int, int, int, int]]:
    """stimulus condition id -> (real_real, real_ai, ai_real, ai_ai) of the measured
    judgements, counted directly (one query; :func:`study_counts` gives the same tables
    from the participants' tallies). Within subjects the real photographs' row is under
    None."""
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values(condition=F("stimulus__condition_id"))
        .annotate(**_cells())
        .order_by()
    )
    return {row["condition"]: tuple(row[c] for c in CELLS) for row in rows}


def stimulus_counts(
    *, study: Study, include_unfinished: bool = False
) -> dict[int, tuple[int, int, float | None]]:
    """stimulus id -> (judgements, wrong answers, geometric mean response time in ms) of
    the measured judgements (one query)."""
    wrong = CELL_FILTERS["real_ai"] | CELL_FILTERS["ai_real"]
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .values("stimulus_id")
        .annotate(n=Count("pk"), fooled=Count("pk", filter=wrong), log_rt=Avg(_log_rt()))
        .order_by()
        .values_list("stimulus_id", "n", "fooled", "log_rt")
    )
    return {
        stimulus: (n, fooled, None if log_rt is None else math.exp(log_rt))
        for stimulus, n, fooled, log_rt in rows
    }


# --------------------------------------------------------------------------------------
# Summaries of counts (pure)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """A histogram of participants: ``edges`` has one more entry than ``counts`` (the last
    bin is open when ``open_end``); median and quartiles are interpolated within bins."""

    edges: list[float]
    counts: list[int]
    n: int
    mean: float | None = None
    median: float | None = None
    quartiles: list[float] | None = None
    open_end: bool = False


def _quantile(edges: np.ndarray, counts: np.ndarray, q: float) -> float:
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    target = q * cumulative[-1]
    i = int(np.searchsorted(cumulative, target, side="left"))
    i = min(max(i, 1), len(counts))
    inside = counts[i - 1]
    fraction = 0.0 if inside == 0 else (target - cumulative[i - 1]) / inside
    return float(edges[i - 1] + fraction * (edges[i] - edges[i - 1]))


def rt_distribution(bins: dict[int, int]) -> Distribution:
    """Participants' geometric mean response times (``bins``: RT_BIN_MS bin -> participants)
    as a histogram of RT_BIN_MS bins up to RT_CAP_MS, the last bin open (RT_CAP_MS and
    more); median and quartiles exact to within RT_BIN_MS ms."""
    last = RT_CAP_MS // RT_BIN_MS
    fine = np.zeros(last + 1, np.int64)
    for b, n in bins.items():
        fine[min(max(int(b), 0), last)] += n
    edges = [float(i * RT_BIN_MS) for i in range(last + 2)]
    n = int(fine.sum())
    if not n:
        return Distribution(edges, [0] * (last + 1), 0, open_end=True)
    centres = np.array(edges[:-1]) + RT_BIN_MS / 2
    q1, median, q3 = (_quantile(np.array(edges), fine, q) for q in (0.25, 0.5, 0.75))
    mean = float((fine * centres).sum() / n)
    return Distribution(edges, [int(x) for x in fine], n, mean, median, [q1, q3], open_end=True)


def regroup(d: Distribution, *, width: float, upto: float) -> Distribution:
    """``d`` (an open-ended histogram of equal bins) in bins of ``width`` (a multiple of
    its own) up to ``upto``, everything above in the last, open bin."""
    step = round(width / (d.edges[1] - d.edges[0]))
    keep = round((upto - d.edges[0]) / (d.edges[1] - d.edges[0]))
    counts = [sum(d.counts[i : min(i + step, keep)]) for i in range(0, keep, step)]
    counts.append(sum(d.counts[keep:]))
    edges = [d.edges[0] + width * i for i in range(len(counts) + 1)]
    return Distribution(edges, counts, d.n, d.mean, d.median, d.quartiles, open_end=True)


def quantile(d: Distribution, q: float) -> float | None:
    """The ``q`` quantile of a histogram, interpolated within its bin (None when empty)."""
    return _quantile(np.array(d.edges), np.array(d.counts), q) if d.n else None


def accuracy_distribution(rows: list[tuple[int, int, int]], *, bins: int = 10) -> Distribution:
    """Participants' accuracy (``rows``: (correct, judged, participants)) in ``bins`` equal
    bins over [0, 1] (1.0 in the last); the median is exact."""
    rows = [(correct / n, participants) for correct, n, participants in rows if n]
    counts = np.zeros(bins, np.int64)
    for accuracy, participants in rows:
        counts[min(int(accuracy * bins), bins - 1)] += participants
    edges = [i / bins for i in range(bins + 1)]
    total = int(counts.sum())
    if not total:
        return Distribution(edges, [int(x) for x in counts], 0)
    rows.sort()
    values = np.array([a for a, _ in rows])
    weights = np.array([p for _, p in rows])
    cumulative = np.cumsum(weights)
    lower = values[np.searchsorted(cumulative, (total + 1) // 2)]
    upper = values[np.searchsorted(cumulative, total // 2 + 1)]
    return Distribution(
        edges,
        [int(x) for x in counts],
        total,
        float((values * weights).sum() / total),
        float((lower + upper) / 2),
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
    rt_ms: float | None  # geometric mean response time
    metrics: dict[str, float | None] = field(default_factory=dict)  # an AI image's L1, SSIM


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
    accuracy: Distribution | None  # between subjects only
    response_times: dict[str, Distribution]  # "real", "ai"


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

    @property
    def judgements(self) -> int:
        """The judgements counted (within subjects the shared real row once)."""
        cells = [c.cells for c in self.conditions if c.cells]
        ai = sum(x["ai_real"] + x["ai_ai"] for x in cells)
        if self.shared_real is not None:
            return ai + self.shared_real["real_real"] + self.shared_real["real_ai"]
        return ai + sum(x["real_real"] + x["real_ai"] for x in cells)


def _table(cells: tuple[int, ...] | None) -> ContingencyTable | None:
    if cells is None or cells[0] + cells[1] == 0 or cells[2] + cells[3] == 0:
        return None
    return ContingencyTable(*cells)


def _run_metrics(run) -> dict[str, float | None]:
    test = (run.metrics or {}).get("test") or {}
    return {key: finite(test.get(key)) for key in RUN_METRICS}


def _sum_counts(items) -> ParticipantCounts:
    total = ParticipantCounts()
    for item in items:
        for name in total.__dataclass_fields__:
            setattr(total, name, getattr(total, name) + getattr(item, name))
    return total


def _merge_bins(parts) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for b, n in part.items():
            merged[b] = merged.get(b, 0) + n
    return merged


def _condition_result(
    condition, counts: StudyCounts, people, *, within: bool, confidence, n_boot, seed
) -> ConditionResult:
    cells = counts.tables.get(condition.pk)
    if within:
        real = counts.tables.get(None) or (0, 0, 0, 0)
        cells = (real[0], real[1], *(cells or (0, 0, 0, 0))[2:])
    table = _table(cells)
    sdt, skipped, boot = None, 0, None
    pattern = counts.patterns.get(condition.pk)
    if pattern:
        rows = np.array([p[:4] for p in pattern], np.int64)
        weights = np.array([p[4] for p in pattern], np.int64)
        sdt, skipped = sdt_summary_from_counts(rows, weights, confidence)
        if rows.sum():
            boot = bootstrap_counts(rows, weights, n_boot=n_boot, seed=seed, confidence=confidence)
    real_key = None if within else condition.pk
    return ConditionResult(
        condition_id=condition.pk,
        label=condition.label,
        run_id=condition.run_id,
        run_name=condition.run.name,
        run_kind=condition.run.get_kind_display(),
        colour_space=condition.run.colour_space,
        metrics=_run_metrics(condition.run),
        participants=None if within else people.get(condition.pk, ParticipantCounts()),
        cells=dict(zip(CELLS, cells, strict=True)) if cells else None,
        table=analyse_table(table, confidence) if table else None,
        sdt=sdt,
        sdt_skipped=skipped,
        bootstrap=boot,
        accuracy=None if within else accuracy_distribution(counts.accuracy.get(condition.pk, [])),
        response_times={
            "real": rt_distribution(counts.response_times.get((real_key, True), {})),
            "ai": rt_distribution(counts.response_times.get((condition.pk, False), {})),
        },
    )


def study_analysis(
    *,
    study: Study,
    include_unfinished: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 2000,
    seed: int = 0,
) -> StudyAnalysis:
    """Everything the dashboard and the table exports show, in the same few queries
    whatever the number of participants (conditions and runs; participants by their fate;
    :func:`study_counts`: the newly finished, their tallies stored, the counts). Per-image
    rates are :func:`image_rows`."""
    within = study.design == Study.Design.WITHIN
    conditions = list(study.conditions.select_related("run").order_by("pk"))
    people = participant_counts(study=study, include_unfinished=include_unfinished)
    counts = study_counts(study=study, include_unfinished=include_unfinished)
    results = [
        _condition_result(
            c, counts, people, within=within, confidence=confidence, n_boot=n_boot, seed=seed
        )
        for c in conditions
    ]
    rt = counts.response_times
    shared_real = counts.tables.get(None) if within else None
    return StudyAnalysis(
        study_id=study.pk,
        study_name=study.name,
        design=study.design,
        include_unfinished=include_unfinished,
        confidence=confidence,
        exclusion_rule=exclusion_rule_text(include_unfinished=include_unfinished),
        participants=_sum_counts(people.values()),
        conditions=results,
        comparisons=_comparisons(results, confidence),
        accuracy=accuracy_distribution([r for rows in counts.accuracy.values() for r in rows]),
        response_times={
            "real": rt_distribution(_merge_bins(v for (_, real), v in rt.items() if real)),
            "ai": rt_distribution(_merge_bins(v for (_, real), v in rt.items() if not real)),
        },
        shared_real=dict(zip(CELLS, shared_real, strict=True)) if shared_real else None,
        n_boot=n_boot,
        seed=seed,
    )


def _comparisons(results: list[ConditionResult], confidence: float) -> list[dict[str, Any]]:
    """Every pair of conditions with a table: a − b of the fooling rate and of P(judged
    Real | AI), with Newcombe intervals and two-proportion z tests (independent samples:
    right between subjects; within subjects the tables share participants and the real
    row, so take these as descriptive)."""
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


# --------------------------------------------------------------------------------------
# Per image
# --------------------------------------------------------------------------------------


def _image_metrics(conditions, stimuli) -> dict[tuple[int, int], dict[str, float | None]]:
    """(run id, scene id) -> the colourised image's own L1 and SSIM (one query)."""
    runs = [c.run_id for c in conditions]
    scenes = {s["scene_id"] for s in stimuli if not s["is_real"]}
    rows = ColourisedImage.objects.filter(run_id__in=runs, source_id__in=scenes).values_list(
        "run_id", "source_id", "metrics"
    )
    return {
        (run, scene): {k: finite((metrics or {}).get(k)) for k in RUN_METRICS}
        for run, scene, metrics in rows
    }


def image_rows(
    *, study: Study, include_unfinished: bool = False, confidence: float = DEFAULT_CONFIDENCE
) -> dict[int | None, list[ImageRow]]:
    """stimulus condition id (None: within subjects' shared real photographs) -> its main
    stimuli with their fooling rates, highest first (stimuli nobody judged yet last); AI
    images carry their own L1 and SSIM. Four queries."""
    conditions = list(study.conditions.all())
    counts = stimulus_counts(study=study, include_unfinished=include_unfinished)
    stimuli = list(
        Stimulus.objects.filter(study=study, role=MAIN)
        .order_by("pk")
        .values("pk", "condition_id", "scene_id", "scene__original_name", "is_real")
    )
    run_of = {c.pk: c.run_id for c in conditions}
    metrics = _image_metrics(conditions, stimuli)
    judged = [counts.get(s["pk"], (0, 0, None)) for s in stimuli]
    lows, highs = wilson_intervals([j[1] for j in judged], [j[0] for j in judged], confidence)
    rows: dict[int | None, list[ImageRow]] = {}
    for s, (n, fooled, rt), low, high in zip(stimuli, judged, lows, highs, strict=True):
        own = {}
        if not s["is_real"]:
            own = metrics.get((run_of.get(s["condition_id"]), s["scene_id"]), {})
        rows.setdefault(s["condition_id"], []).append(
            ImageRow(
                stimulus_id=s["pk"],
                scene_id=s["scene_id"],
                scene_name=s["scene__original_name"],
                is_real=s["is_real"],
                n=n,
                fooled=fooled,
                rate=fooled / n if n else None,
                interval=[float(low), float(high)] if n else None,
                rt_ms=rt,
                metrics=own,
            )
        )
    for group in rows.values():
        group.sort(key=lambda r: (r.rate is None, -(r.rate or 0), -r.n, r.stimulus_id))
    return rows


def finite(value: Any) -> float | None:
    """``value`` as a float; None when missing or not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
