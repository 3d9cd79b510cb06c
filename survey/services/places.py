"""Places in a study, as Prolific counts them.

A condition's target is a number of *included* participants (finished, and not excluded by
a failed attention check). A place is **held** by a participant who is taking part
(unfinished, heard from within the study's time limit, :attr:`Study.time_limit`) or who
finished and is included. A participant who stops (:func:`participant_return`) or falls
silent for longer than the time limit gives their place up: :func:`places_release` marks
them released and gives their stimuli's exposures back, so that assignment stays
balanced. Excluded participants (a failed attention check) hold no place either, so a
study refills until it has its target of usable participants. A released participant who
comes back may go on while a place is free (:func:`participant_rehold`), as Prolific
lets a timed-out participant finish unless they were replaced.

Pilot participations (:attr:`Participant.is_pilot`) hold pilot places only: a pilot is
counted against the same target among its own participants, and never fills the real
study. They never count in the stimuli's exposures, so nothing is given back for them.

So starts that are abandoned cannot fill a study for good: each holds its place for the
time limit only, and from one client address the start rate limit
(``STUDY_START_LIMIT`` per ``STUDY_START_WINDOW_SECONDS``) bounds how many places can be
held at once.

Every function here that writes runs under the study's row lock (``SELECT … FOR UPDATE``),
the lock :func:`~survey.services.assignment.participant_start` holds, so that places are
counted and taken by one start at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from survey.analysis.exclusion import failed_checks
from survey.models import Condition, Participant, Stimulus, Study


def _present() -> Q:
    return Q(withdrawn_at__isnull=True, returned_at__isnull=True, released_at__isnull=True)


def holding(study: Study, now: datetime | None = None) -> Q:
    """On participants: holds a place in ``study`` at ``now``."""
    since = (now or timezone.now()) - study.time_limit
    taking_part = Q(completed_at__isnull=True, last_active_at__gte=since)
    included = Q(completed_at__isnull=False) & ~failed_checks(study)
    return _present() & (taking_part | included)


def _places_taken_query(study: Study, now: datetime | None, pilot: bool) -> QuerySet:
    return (
        Participant.objects.filter(study=study, is_pilot=pilot)
        .values("condition_id")
        .annotate(n=Count("pk", filter=holding(study, now)))
        .order_by()
    )


def places_taken(
    study: Study, now: datetime | None = None, *, pilot: bool = False
) -> dict[int | None, int]:
    """Places held per condition id (None: the whole study, within subjects): by the real
    participants, or with ``pilot`` by the pilot ones."""
    since = (now or timezone.now()) - study.time_limit
    sql, params, study_at, since_at = _places_taken_sql(
        connection.vendor, pilot, study.instructed_checks_exclude, study.colour_screen_excludes
    )
    params = list(params)
    for index in study_at:
        params[index] = study.pk
    for index in since_at:
        params[index] = _since_param(since)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


#: Stand for a study's id and for the start of its time limit while
#: :func:`_places_taken_sql` compiles: values no row and no time of this platform has.
_SOME_STUDY = -7_654_321
_SOME_SINCE = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def _since_param(since: datetime):
    """``since`` as the ORM passes it to the database (a string on SQLite)."""
    return Participant._meta.get_field("last_active_at").get_db_prep_value(since, connection)


@cache
def _places_taken_sql(
    vendor: str, pilot: bool, instructed_exclude: bool, colour_exclude: bool
) -> tuple[str, tuple, list[int], list[int]]:
    """:func:`places_taken`'s statement as the ORM compiles it, once per process for each
    form it takes (whether the study excludes on the instructed-response checks and on the
    colour-vision screen): (sql, parameters, where the study's id goes in them, where the
    time limit's start goes). Every start counts the places under the study's lock, and
    the ORM took a millisecond to compile what the database ran in a fraction of one."""
    stand_in = Study(
        pk=_SOME_STUDY,
        instructed_checks_exclude=instructed_exclude,
        colour_screen_excludes=colour_exclude,
    )
    now = _SOME_SINCE + stand_in.time_limit
    sql, params = _places_taken_query(stand_in, now, pilot).query.sql_with_params()
    study_at = [i for i, value in enumerate(params) if value == _SOME_STUDY]
    since_at = [i for i, value in enumerate(params) if value == _since_param(_SOME_SINCE)]
    if not study_at or not since_at:
        raise AssertionError("places_taken's statement takes the study and the time limit")
    return sql, tuple(params), study_at, since_at


def shown_stimuli(participant: Participant) -> list[int]:
    """The stimuli ``participant``'s trials show, each once: a paired trial's real
    photograph (its partner) too."""
    rows = participant.trials.values_list("stimulus_id", "partner_id")
    return sorted({pk for row in rows for pk in row if pk is not None})


def _give_back_exposures(participants) -> None:
    for participant in participants:
        if participant.is_pilot:  # never counted
            continue
        shown = shown_stimuli(participant)
        Stimulus.objects.filter(pk__in=shown).update(exposures=F("exposures") - 1)


def places_release(*, study: Study, now: datetime | None = None) -> int:
    """Release the places of unfinished participants silent past the time limit; returns
    how many. The caller holds the study's row lock."""
    now = now or timezone.now()
    silent = Participant.objects.filter(
        _present(),
        study=study,
        completed_at__isnull=True,
        last_active_at__lt=now - study.time_limit,
    ).select_for_update()
    released = list(silent)
    _give_back_exposures(released)
    Participant.objects.filter(pk__in=[p.pk for p in released]).update(released_at=now)
    return len(released)


def place_free(
    study: Study, condition: Condition | None, now: datetime | None = None, *, pilot=False
) -> bool:
    """Whether ``condition`` (None: the study, within subjects) has a place left (a pilot
    place with ``pilot``)."""
    taken = places_taken(study, now, pilot=pilot).get(condition.pk if condition else None, 0)
    return taken < study.target_participants_per_condition


def every_place_taken(study: Study, taken: dict, condition_ids: list[int]) -> bool:
    """Whether every condition of ``condition_ids`` (within subjects: the study) has
    reached the target, by ``taken`` (:func:`places_taken`): the rule a start refuses by
    (survey.services.assignment) and the consent page tells beforehand."""
    target = study.target_participants_per_condition
    if study.design == Study.Design.BETWEEN:
        return min(taken.get(pk, 0) for pk in condition_ids) >= target
    return taken.get(None, 0) >= target


def study_full(study: Study, now: datetime | None = None) -> bool:
    """Whether a start would now be refused because every condition (within subjects: the
    study) has reached its target, counted as the start counts it (participants silent past
    the time limit hold no place, released or not; a pilot's places while it is a pilot).
    Reads only: the consent page's GET asks before anyone consents, and the researcher's
    Reopen says it."""
    ids = list(study.conditions.values_list("pk", flat=True))
    if study.design == Study.Design.BETWEEN and not ids:
        return False  # no start goes on: the start says why
    taken = places_taken(study, now, pilot=study.status == Study.Status.PILOT)
    return every_place_taken(study, taken, ids)


def participant_return(*, participant: Participant) -> Participant:
    """The participant stops taking part: their place is free at once. Their answers so
    far stay (unfinished participants are left out of the analysis unless asked for)."""
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=participant.study_id)
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.completed_at or participant.returned_at or participant.withdrawn_at:
            return participant
        now = timezone.now()
        if participant.released_at is None:
            _give_back_exposures([participant])
        participant.returned_at = now
        participant.released_at = participant.released_at or now
        participant.save(update_fields=["returned_at", "released_at"])
        return participant


def participant_rehold(*, participant: Participant) -> bool:
    """A released participant (silent past the time limit) came back: they may go on if
    their condition still has a place, which they take again. False if it has none (their
    place went to someone else) or they stopped themselves. ``participant`` as just read
    (the quick check of ``released_at`` is on it; the rest under the locks)."""
    if participant.released_at is None:
        return True
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=participant.study_id)
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.released_at is None:
            return True
        pilot = participant.is_pilot
        if participant.returned_at is not None or not place_free(
            study, participant.condition, pilot=pilot
        ):
            return False
        if not pilot:
            Stimulus.objects.filter(pk__in=shown_stimuli(participant)).update(
                exposures=F("exposures") + 1
            )
        Participant.objects.filter(pk=participant.pk).update(
            released_at=None, last_active_at=timezone.now()
        )
        return True
