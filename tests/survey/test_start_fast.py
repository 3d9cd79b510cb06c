"""A start's cheaper path (survey.services.assignment.participant_start): what it reads
before the study's lock, the release it skips when nothing can be released, a same
PROLIFIC_PID race met by the database's constraint, the trials written in one statement,
and the start rate limit's single Redis round trip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from survey import ratelimit
from survey.models import Participant, Stimulus, Trial
from survey.services import assignment, participant_sql
from survey.services.assignment import participant_start
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    return open_study(
        runs,
        labels=["A", "B"],
        images_per_participant=4,
        attention_checks=1,
        target_participants_per_condition=3,
    )


def _locked_queries(queries: list[dict]) -> list[str]:
    """The statements from the study's row lock on (the first read of the study's row:
    the start is handed the study, so nothing before the lock reads it)."""
    sqls = [q["sql"] for q in queries]
    first = next(i for i, sql in enumerate(sqls) if 'FROM "survey_study"' in sql)
    return sqls[first:]


def test_a_start_with_nothing_to_release_reads_no_participant_under_the_lock(study):
    with CaptureQueriesContext(connection) as queries:
        participant_start(study=study)
    locked = _locked_queries(queries.captured_queries)
    selects = [sql for sql in locked if sql.startswith("SELECT")]
    # the study's row, the places held, the main stimuli: nothing else is read under it
    assert len(selects) == 3, selects
    assert not any("survey_condition" in sql for sql in locked)


def test_a_silent_participant_is_released_by_the_next_start(study):
    silent = participant_start(study=study)
    assert not participant_sql.any_silent(study.pk, timezone.now() - study.time_limit)
    Participant.objects.filter(pk=silent.pk).update(
        last_active_at=timezone.now() - study.time_limit - timedelta(seconds=1)
    )
    assert participant_sql.any_silent(study.pk, timezone.now() - study.time_limit)
    participant_start(study=study)
    silent.refresh_from_db()
    assert silent.released_at is not None
    for stimulus in Stimulus.objects.filter(study=study):
        held = Trial.objects.filter(stimulus=stimulus, participant__released_at__isnull=True)
        assert stimulus.exposures == held.count()


def test_a_start_racing_one_of_the_same_prolific_pid_returns_that_participant(study, monkeypatch):
    first = participant_start(study=study, prolific_pid="5f1a")
    exposures = dict(Stimulus.objects.values_list("pk", "exposures"))
    # as if the first start had not committed when the second looked before the lock
    real = participant_sql.participant_by_pid
    calls = []

    def late(study_id, pid):
        calls.append(pid)
        return None if len(calls) == 1 else real(study_id, pid)

    monkeypatch.setattr(participant_sql, "participant_by_pid", late)
    second = participant_start(study=study, prolific_pid="5f1a")
    assert second.pk == first.pk
    assert Participant.objects.count() == 1
    assert dict(Stimulus.objects.values_list("pk", "exposures")) == exposures


def test_the_trials_are_written_as_the_orm_would_write_them(study):
    participant = participant_start(study=study)
    trials = list(participant.trials.order_by("position"))
    assert [t.position for t in trials] == list(range(1, len(trials) + 1))
    for trial in trials:
        assert trial.kind == trial.stimulus.role
        assert (trial.answer, trial.shown_at, trial.rt_ms, trial.partner_id) == (
            None,
            None,
            None,
            None,
        )


def test_insert_many_writes_rows_in_batches(study, monkeypatch):
    monkeypatch.setattr(participant_sql, "MAX_PARAMETERS", 10)  # a few rows a statement
    participant = Participant.objects.create(study=study)
    stimuli = list(Stimulus.objects.filter(study=study).values_list("pk", flat=True)[:25])
    rows = [
        {"participant": participant.pk, "position": i, "stimulus": pk}
        for i, pk in enumerate(stimuli, start=1)
    ]
    with CaptureQueriesContext(connection) as queries:
        participant_sql.insert_many(Trial, rows)
    assert len(queries.captured_queries) > 1
    added = Trial.objects.filter(participant=participant).order_by("position")
    assert list(added.values_list("position", "stimulus_id")) == [
        (row["position"], row["stimulus"]) for row in rows
    ]
    assert set(added.values_list("kind", flat=True)) == {Trial._meta.get_field("kind").default}


def test_the_locked_start_reads_the_other_stimuli_before_the_lock(study, monkeypatch):
    seen = []
    real = assignment.other_stimuli
    monkeypatch.setattr(assignment, "other_stimuli", lambda s: seen.append(1) or real(s))
    participant = participant_start(study=study)
    assert seen == [1]
    kinds = set(participant.trials.values_list("kind", flat=True))
    assert Stimulus.Role.ATTENTION in kinds


@pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the start limit on Redis"
)
def test_the_start_limit_counts_on_redis_in_one_round_trip(study, settings):
    settings.STUDY_START_LIMIT = 2
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.77")
    backend = caches["default"]
    key = f"study-start:{study.pk}:203.0.113.77"
    backend.delete(key)
    assert ratelimit.start_allowed(request, study)
    assert backend.get(key) == 1  # the value Django's cache reads back
    assert ratelimit.start_allowed(request, study)
    assert not ratelimit.start_allowed(request, study)
    client = backend._cache.get_client(key)
    ttl = client.ttl(backend.make_and_validate_key(key))
    assert 0 < ttl <= settings.STUDY_START_WINDOW_SECONDS
    backend.delete(key)
