"""The answer's statements in plain SQL (survey.services.participant_sql) give what the ORM
gives: whole instances, field by field and type by type, their related rows attached; and
an answer keeps to its seven statements. (SQLite's converters are exercised by
tests/survey/test_sqlite_contention.py, whose participants answer on an SQLite file.)"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from survey.models import Participant, Trial, TrialDisplay
from survey.services import participant_sql
from tests.survey.study_helpers import (
    answer_post,
    consent_start,
    open_study,
    tiny_dataset,
    uploaded_run,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def taking(client, tmp_path):
    """A participant of a study (in ``client``'s browser) who has begun."""
    dataset = tiny_dataset("syn", per_category=10, size=32)
    runs = [uploaded_run(dataset, tmp_path, name="warm")]
    participant = consent_start(client, open_study(runs, images_per_participant=4, exposure_ms=200))
    client.get(reverse("participant_page", args=[participant.public_id]), {"begin": "1"})
    participant.refresh_from_db()
    return participant


def same_fields(orm, raw) -> None:
    for field in orm._meta.concrete_fields:
        expected, got = getattr(orm, field.attname), getattr(raw, field.attname)
        assert got == expected and type(got) is type(expected), field.name


def test_the_participant_with_its_study_as_the_orm_reads_it(taking):
    Participant.objects.filter(pk=taking.pk).update(last_active_at=timezone.now())
    orm = Participant.objects.select_related("study").get(pk=taking.pk)
    with CaptureQueriesContext(connection) as queries:
        raw = participant_sql.participant_with_study(taking.public_id)
        same_fields(orm, raw)
        same_fields(orm.study, raw.study)  # attached: no query, no deferred field
    assert len(queries) == 1
    assert raw._state.db == "default" and not raw._state.adding
    assert participant_sql.participant_with_study("no-such-participation") is None


def test_the_trial_rows_as_the_orm_reads_them(taking):
    Trial.objects.filter(participant=taking, position=1).update(answer="real", rt_ms=5)
    orm = list(
        Trial.objects.filter(participant=taking, position__in=(1, 2))
        .select_related("stimulus")
        .order_by("position")
    )
    with CaptureQueriesContext(connection) as queries:
        raw = participant_sql.trials_open_or_at(taking.pk, 1)  # the answered one, the first open
        for orm_trial, raw_trial in zip(orm, raw, strict=True):
            same_fields(orm_trial, raw_trial)
            same_fields(orm_trial.stimulus, raw_trial.stimulus)
    assert len(queries) == 1
    assert [t.position for t in participant_sql.trials_open_or_at(taking.pk, 4)] == [2, 3]


def test_an_update_only_while_null_keeps_the_first_value(taking):
    trial = Trial.objects.get(participant=taking, position=2)
    first, later = timezone.now(), timezone.now() + timezone.timedelta(seconds=5)
    assert participant_sql.update(Trial, trial.pk, {"shown_at": first}, where_null="shown_at") == 1
    assert participant_sql.update(Trial, trial.pk, {"shown_at": later}, where_null="shown_at") == 0
    trial.refresh_from_db()
    assert trial.shown_at == first


def test_an_insert_gives_the_other_fields_their_defaults(taking):
    trial = Trial.objects.get(participant=taking, position=1)
    participant_sql.insert(TrialDisplay, {"trial": trial.pk, "status": "not_measured"})
    stored = TrialDisplay.objects.get(pk=trial.pk)
    assert (stored.flagged, stored.missed_target, stored.problems) == (False, False, "")
    assert stored.exposure_ms is None and stored.hidden is None


def test_an_answer_takes_four_statements(client, taking):
    """The participant, its lock, the trial rows, then one statement for the answer, its
    display, the next trial shown and the participant's sign of life (on SQLite those four
    one by one; bench/profile_participant_paths.py)."""
    with CaptureQueriesContext(connection) as queries:
        response = answer_post(client, taking, 1, "real", rt_ms=600, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    statements = [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 4, statements
    assert statements[-1].startswith("WITH w0 AS (UPDATE")
    assert response.json()["next"]["position"] == 2
    trial = Trial.objects.select_related("display").get(participant=taking, position=1)
    assert (trial.answer, trial.rt_ms, trial.display.status) == ("real", 600, "not_measured")
    assert trial.display.target_ms == 200
    assert Trial.objects.get(participant=taking, position=2).shown_at is not None
    taking.refresh_from_db()
    assert taking.last_active_at >= trial.answered_at


def test_an_unknown_participation_is_not_found(client):
    url = reverse("participant_answer", args=["no-such-participation"])
    response = client.post(url, {"position": 1, "answer": "real", "rt_ms": 600})
    assert response.status_code == 404


def test_the_statements_are_prepared_on_postgresql(client, taking):
    """Parsed and planned once per connection: the image's row and an answer's statements
    are among the connection's prepared statements, and give the same rows again."""
    url = reverse("participant_image", args=[taking.public_id, 1])
    assert client.get(url).status_code == 200
    first = participant_sql.image_row(taking.public_id, 1)
    assert answer_post(client, taking, 1, "real", HTTP_ACCEPT="application/json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("COUNT(*) FROM" in s and '"survey_stimulus" r' in s for s in prepared), prepared
    assert any(s.endswith("FOR UPDATE") for s in prepared), prepared
    assert any(s.startswith('WITH w0 AS (UPDATE "survey_trial" SET "answer"') for s in prepared)
    again = participant_sql.image_row(taking.public_id, 1)
    assert again[:3] == first[:3] and again[3] == 1 and first[3] == 0  # now answered
    assert participant_sql.image_row(taking.public_id, 99) is None


def test_the_last_answer_completes_the_participation_in_one_statement(client, taking):
    for position in (1, 2, 3):
        answer_post(client, taking, position, "ai", HTTP_ACCEPT="application/json")
    shown = {t.position: t.shown_at for t in Trial.objects.filter(participant=taking)}
    with CaptureQueriesContext(connection) as queries:
        response = answer_post(client, taking, 4, "real", rt_ms=700, HTTP_ACCEPT="application/json")
    assert response.json()["done_url"]
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH")]
    assert len(writes) == 1 and '"completed_at"' in writes[0] and '"shown_at"' not in writes[0]
    taking.refresh_from_db()
    last = Trial.objects.select_related("display").get(participant=taking, position=4)
    assert (last.answer, last.rt_ms, last.display.status) == ("real", 700, "not_measured")
    assert taking.completed_at == taking.last_active_at == last.answered_at
    assert {t.position: t.shown_at for t in Trial.objects.filter(participant=taking)} == shown
    assert TrialDisplay.objects.filter(trial__participant=taking).count() == 4


@pytest.mark.parametrize("vendor_writes", ["together", "one by one"])
def test_writes_sent_together_change_what_each_would(taking, vendor_writes, monkeypatch):
    """participant_sql.Writes: one WITH statement on PostgreSQL, the statements one by one
    elsewhere (as on SQLite); the same rows either way."""
    if vendor_writes == "one by one":
        monkeypatch.setattr(participant_sql, "_writes_together", lambda connection: False)
    first, second = Trial.objects.filter(participant=taking).order_by("position")[1:3]
    earlier = timezone.now() - timezone.timedelta(minutes=1)
    Trial.objects.filter(pk=second.pk).update(shown_at=earlier)
    now = timezone.now()
    writes = participant_sql.Writes()
    writes.update(Trial, first.pk, {"answer": "ai", "rt_ms": 5, "answered_at": now})
    writes.insert(TrialDisplay, {"trial": first.pk, "status": "not_measured"})
    writes.update(Trial, second.pk, {"shown_at": now}, where_null="shown_at")
    writes.update(Participant, taking.pk, {"last_active_at": now})
    with CaptureQueriesContext(connection) as queries:
        writes.send()
        writes.send()  # nothing left to send
    assert len(queries) == (1 if vendor_writes == "together" else 4)
    first.refresh_from_db(), second.refresh_from_db(), taking.refresh_from_db()
    assert (first.answer, first.rt_ms, first.answered_at) == ("ai", 5, now)
    assert TrialDisplay.objects.get(trial=first).status == "not_measured"
    assert second.shown_at == earlier  # only while it was NULL
    assert taking.last_active_at == now


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_gets_a_new_cursor():
    """On PostgreSQL the statements' cursor is kept for the connection's next statement;
    a connection closed (its time up, a failed health check) takes its cursor with it."""
    assert participant_sql.participant_with_study("no-such-participation") is None
    kept = connection._participant_sql_cursor
    assert participant_sql.participant_with_study("no-such-participation") is None
    assert connection._participant_sql_cursor is kept and not kept.closed
    connection.close()
    assert participant_sql.participant_with_study("no-such-participation") is None
    assert connection._participant_sql_cursor is not kept
    assert connection._participant_sql_cursor.connection is connection.connection
