"""The analysis of a study, counted by the database (method.md §7).

Every count comes from a ``GROUP BY`` with filtered ``COUNT``\\ s; Python receives counts,
never one row per judgement, and the statistics are :mod:`survey.statistics`' pure functions
applied to those counts.

**Two levels.** The judgements are first counted per participant (and stimulus condition):
the four cells of the participant's own 2×2 table and the sums of their log response times
(:func:`participant_tallies`). A finished participation never changes, so these tallies are
stored, once, in the transaction of each participant's last answer
(:class:`survey.models.ParticipantTally`, :func:`tallies_store`; a withdrawal deletes them).
The study's tables, the distinct per-participant tables (for d′, c and the bootstrap), the
participants' accuracy and response times are then grouped from the tallies of the
included participants in one query (:func:`study_counts`, which only reads): a study with
a million judgements is analysed in under a second (bench/bench_analysis.py), and the
dashboard's polling costs little. :func:`condition_cells` counts the tables straight from
the trials (the same numbers; the tests hold them equal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from django.db import connection, transaction
from django.db.models import (
    Avg,
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Greatest, Ln

from survey.analysis.exclusion import (
    AI,
    MAIN,
    REAL,
    included_participants,
    kept_displays,
    measured_trials,
)
from survey.models import ParticipantTally, Study, Trial
from survey.statistics import CELLS

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


def _cells() -> dict[str, Count]:
    return {name: Count("pk", filter=q) for name, q in CELL_FILTERS.items()}


def _log_rt() -> Ln:
    """ln(response time in ms), 0 ms counted as 1 ms."""
    return Ln(Greatest(F("rt_ms"), Value(1)))


def _tallied(trials: QuerySet) -> QuerySet:
    """``trials``' answered main trials grouped per participant and stimulus condition:
    see :func:`participant_tallies`."""
    return (
        trials.filter(kind=MAIN, answer__isnull=False)
        .values("participant_id", condition=F("stimulus__condition_id"))
        .annotate(
            **_cells(),
            log_rt_real=Sum(_log_rt(), filter=Q(stimulus__is_real=True)),
            log_rt_ai=Sum(_log_rt(), filter=Q(stimulus__is_real=False)),
        )
        .order_by()
    )


def participant_tallies(*, study: Study) -> QuerySet:
    """Counted from the trials: one row per participant and stimulus condition (within
    subjects the real photographs' row has condition None) with the participant's answered
    main trials as the four cells and the sums of the log response times to real and to AI
    images (divided by the row's judgements: the log of the geometric mean). Every
    participant of the study: the exclusion rule is applied to these rows."""
    trials = Trial.objects.filter(stimulus__study=study)
    if study.drop_flagged_displays:
        trials = trials.exclude(display__flagged=True)
    return _tallied(trials)


TALLY_COLUMNS = (*CELLS, "log_rt_real", "log_rt_ai")


def tallies_store(*, participant_ids: Iterable[int] | QuerySet) -> int:
    """Store the tallies (:class:`survey.models.ParticipantTally`) of finished participants
    (their ids, or a queryset of ids), counted from their trials; returns how many tally
    rows were stored. A finished participation never changes, so this runs once, when the
    participant's last answer is stored (:func:`survey.services.trials.trial_answer`);
    tallies stored already are left as they are. Trials whose display was flagged are left
    out where the study drops them (a setting frozen at opening: a tally stays right)."""
    if isinstance(participant_ids, list | tuple) and len(participant_ids) == 1:
        # A participant's last answer: the statement compiled once per process.
        sql, params, at = _one_tallies_insert(connection.vendor)
        params = [*params[:at], participant_ids[0], *params[at + 1 :]]
    else:
        sql, params = _tallies_insert(participant_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


#: Stands for the participant's id while :func:`_one_tallies_insert` compiles.
_SOME_ID = -7_654_321


@cache
def _one_tallies_insert(vendor: str) -> tuple[str, list, int]:
    """:func:`tallies_store`'s statement for one participant: (sql, parameters, where the
    participant's id goes in them). The ORM took longer to compile it than the database to
    run it, on every participant's last answer (bench/profile_participant_paths.py)."""
    sql, params = _tallies_insert([_SOME_ID])
    if params.count(_SOME_ID) != 1:
        raise AssertionError("the tallies' statement takes the participant's id once")
    return sql, params, params.index(_SOME_ID)


def _tallies_insert(participant_ids) -> tuple[str, list]:
    source = _tallied(kept_displays(Trial.objects.filter(participant_id__in=participant_ids)))
    sql, params = source.query.sql_with_params()
    columns = ", ".join(TALLY_COLUMNS)
    return (
        f"INSERT INTO {ParticipantTally._meta.db_table} "
        f"(participant_id, condition_id, {columns}) "
        # (SQLite parses ON CONFLICT after INSERT … SELECT only behind a WHERE.)
        f"SELECT participant_id, condition, {columns} FROM ({sql}) t WHERE 1 = 1 "
        "ON CONFLICT DO NOTHING",
        list(params),
    )


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
    participants, from their tallies (stored when each finished: :func:`tallies_store`)
    grouped again by the database, in one query. It only reads."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # set_config(..., true): SET LOCAL
            calls = ", ".join(["set_config(%s, %s, true)"] * len(POSTGRESQL_SETTINGS))
            cursor.execute(f"SELECT {calls}", [x for kv in POSTGRESQL_SETTINGS.items() for x in kv])
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


def judgement_pairs(
    *, study: Study, include_unfinished: bool = False
) -> list[tuple[int, int, int | None, bool, bool]]:
    """Every measured judgement as (participant id, stimulus id, stimulus condition id,
    the image is AI, the answer was wrong), for the two-way bootstrap (which resamples
    images as well as participants, so needs who judged which image). One query, one row
    per judgement: unlike :func:`study_counts` its cost grows with the judgements."""
    wrong = Q(stimulus__is_real=True, answer=AI) | Q(stimulus__is_real=False, answer=REAL)
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .annotate(wrong=ExpressionWrapper(wrong, output_field=BooleanField()))
        .order_by("participant_id", "stimulus_id")
        .values_list(
            "participant_id", "stimulus_id", "stimulus__condition_id", "stimulus__is_real", "wrong"
        )
    )
    return [(p, s, c, not is_real, bool(w)) for p, s, c, is_real, w in rows.iterator()]
