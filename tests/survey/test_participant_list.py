"""The participant list (page and CSV) and the lists to act on in Prolific: status in words
per participation, accuracy and checks counted from what the test answered, the approval
policy (a failed colour-inverted check is no ground for rejection; two failed
instructed-response checks are), bonuses rounded to cents and absurd amounts refused,
reads that write nothing, and another researcher's 404."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey import participant_list as plist
from survey.models import Participant, Trial
from survey.services.places import participant_return
from tests.survey.analysis_helpers import make_study, take_part, withdraw

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")
PASSWORD = "a-long-Passphrase-1"
DOWNLOADS = [
    "study_participants_csv",
    "study_approvals",
    "study_approve_ids",
]


def _pid(participant: Participant, pid: str | None) -> Participant:
    Participant.objects.filter(pk=participant.pk).update(
        prolific_pid=pid, prolific_study_id="S1" if pid else None, prolific_session_id=pid and "x"
    )
    participant.refresh_from_db()
    return participant


@pytest.fixture
def ada():
    return researcher_create(username="ada", password=PASSWORD)


@pytest.fixture
def world(tmp_path, ada):
    """One participation of each status (and one completed without a PROLIFIC_PID)."""
    study = make_study(tmp_path, owner=ada)
    people = {
        "completed": _pid(take_part(study, 0), "PID-COMPLETED"),
        "excluded": _pid(take_part(study, 1, attention="real"), "PID-EXCLUDED"),
        "taking": _pid(take_part(study, 2, stop_after=2), "PID-TAKING"),
        "silent": _pid(take_part(study, 3, stop_after=1), "PID-SILENT"),
        "returned": _pid(take_part(study, 4, stop_after=1), "PID-RETURNED"),
        "withdrawn": _pid(take_part(study, 5), "PID-WITHDRAWN"),
        "no_pid": take_part(study, 6),
    }
    Participant.objects.filter(pk=people["silent"].pk).update(
        last_active_at=people["silent"].last_active_at - study.time_limit - timedelta(minutes=1)
    )
    participant_return(participant=people["returned"])
    withdraw(study, people["withdrawn"])
    return study, people


@pytest.fixture
def researcher(client, ada):
    client.force_login(ada)
    return client


def _correct(participant: Participant) -> tuple[int, int]:
    """(answered, correct) main trials, counted here from the stored answers."""
    answered = correct = 0
    for t in Trial.objects.filter(participant=participant, kind="main").select_related("stimulus"):
        if t.answer is None:
            continue
        answered += 1
        correct += t.answer == ("real" if t.stimulus.is_real else "ai")
    return answered, correct


def test_each_participation_has_its_status_in_words(world):
    study, people = world
    rows = {r.public_id: r for r in plist.participant_rows(study=study)}
    status = {name: rows[p.public_id].status for name, p in people.items()}
    assert status == {
        "completed": "completed",
        "excluded": "excluded",
        "taking": "unfinished",
        "silent": "unfinished",
        "returned": "returned",
        "withdrawn": "withdrawn",
        "no_pid": "completed",
    }
    assert "colour-inverted" in rows[people["excluded"].public_id].detail
    assert rows[people["taking"].public_id].detail == "taking part"
    assert "silent" in rows[people["silent"].public_id].detail
    starts = [r.started_at for r in plist.participant_rows(study=study)]
    assert starts == sorted(starts)


def test_accuracy_checks_and_duration_are_counted(world):
    study, people = world
    rows = {r.public_id: r for r in plist.participant_rows(study=study)}
    for name in ("completed", "excluded", "taking"):
        p = people[name]
        answered, correct = _correct(p)
        row = rows[p.public_id]
        assert (row.main_answered, row.main_correct) == (answered, correct), name
        assert row.accuracy == (correct / answered if answered else None)
    done = rows[people["completed"].public_id]
    assert (done.attention_passed, done.attention_failed) == (1, 0)
    assert (rows[people["excluded"].public_id].attention_failed) == 1
    assert done.duration == people["completed"].completed_at - people["completed"].started_at
    assert rows[people["taking"].public_id].duration is None
    assert rows[people["withdrawn"].public_id].main_answered == 0


def test_durations_read_as_minutes_and_seconds():
    assert plist.duration_words(252) == "4 min 12 s"
    assert plist.duration_words(7) == "7 s"
    assert plist.duration_words(3600 + 5) == "1 h 0 min 5 s"


def test_the_page_shows_every_participation_and_links_the_downloads(researcher, world):
    study, people = world
    html = researcher.get(reverse("study_participants", args=[study.pk])).content.decode()
    assert '<thead><tr><th class="num">Participant</th><th>PROLIFIC_PID</th>' in html
    for name, p in people.items():
        assert f'data-participant="{p.public_id}"' in html, name
        # The number of the downloads' participant column, to find them there and withdraw.
        page = reverse("study_participant", args=[study.pk, p.pk])
        assert f'<td class="num" data-f="number"><a href="{page}"' in html, name
    for pid in ("PID-COMPLETED", "PID-EXCLUDED", "PID-RETURNED", "PID-WITHDRAWN"):
        assert pid in html
    for word in ("returned", "withdrawn", "excluded", "unfinished", "taking part"):
        assert word in html
    assert "without a PROLIFIC_PID" in html and 'class="scroll-x"' in html
    for name in [*DOWNLOADS, "study_bonuses"]:
        assert reverse(name, args=[study.pk]) in html
    detail = researcher.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert reverse("study_participants", args=[study.pk]) in detail


def test_the_csv_has_one_row_per_participation_with_its_columns(researcher, world):
    study, people = world
    response = researcher.get(reverse("study_participants_csv", args=[study.pk]))
    assert response["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == plist.CSV_HEADER
    assert len(rows) == len(people)
    by_id = {r["participant"]: r for r in rows}
    done = by_id[str(people["completed"].pk)]
    assert done["public_id"] == people["completed"].public_id  # for the withdrawal form
    answered, correct = _correct(people["completed"])
    assert done["PROLIFIC_PID"] == "PID-COMPLETED" and done["STUDY_ID"] == "S1"
    assert done["status"] == "completed" and done["main_correct"] == str(correct)
    assert float(done["accuracy"]) == pytest.approx(correct / answered, abs=1e-4)
    assert done["started"].endswith("+00:00") and done["finished"]
    assert int(done["duration_s"]) >= 0
    assert by_id[str(people["returned"].pk)]["finished"] == ""


def test_approvals_approve_completed_ones_including_the_excluded_and_withdrawn(researcher, world):
    """A participant who completed and then withdrew their data still has a submission on
    Prolific to approve (and pay); one who stopped part-way has none."""
    study, people = world
    response = researcher.get(reverse("study_approvals", args=[study.pk]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["participant_id"]: r["action"] for r in rows} == {
        "PID-COMPLETED": "approve",
        "PID-EXCLUDED": "approve",
        "PID-WITHDRAWN": "approve",
    }
    excluded = next(r for r in rows if r["participant_id"] == "PID-EXCLUDED")
    assert "colour-inverted" in excluded["reason"]
    withdrawn = next(r for r in rows if r["participant_id"] == "PID-WITHDRAWN")
    assert "completed, then withdrew" in withdrawn["reason"]
    ids = researcher.get(reverse("study_approve_ids", args=[study.pk])).content.decode()
    assert ids.splitlines() == ["PID-COMPLETED", "PID-EXCLUDED", "PID-WITHDRAWN"]
    done = next(r for r in plist.participant_rows(study=study) if r.status == "withdrawn")
    assert plist.approval(replace(done, completed_at=None)) is None  # withdrew part-way


def test_two_failed_instructed_checks_may_be_rejected_one_may_not(world):
    study, _ = world
    done = next(r for r in plist.participant_rows(study=study) if r.status == "completed")
    assert plist.approval(replace(done, instructed_failed=1))[0] == "approve"
    action, reason = plist.approval(replace(done, instructed_failed=2))
    assert action == "may_reject" and "2 instructed-response" in reason
    excluded = replace(done, status="excluded")
    assert plist.approval(excluded)[0] == "approve"
    assert plist.approval(replace(done, status="returned")) is None
    assert plist.approval(replace(done, prolific_pid=None)) is None
    rows = [replace(done, instructed_failed=2), replace(done, prolific_pid="P2")]
    assert plist.approve_ids_text(rows) == "P2\n"
    assert plist.approve_ids_text(rows, "may_reject") == f"{done.prolific_pid}\n"


def test_bonuses_pay_per_correct_answer_rounded_to_cents(researcher, world):
    study, people = world
    response = researcher.get(reverse("study_bonuses", args=[study.pk]) + "?per_correct=0.333")
    lines = response.content.decode().splitlines()
    expected = []
    for name in ("completed", "excluded"):
        _, correct = _correct(people[name])
        amount = (Decimal("0.333") * correct).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        if amount > 0:
            expected.append(f"{people[name].prolific_pid},{amount:.2f}")
    assert lines == expected and expected
    assert all(len(line.split(",")[1].split(".")[1]) == 2 for line in lines)


def test_bonus_rounding_half_up():
    row = plist.ParticipantRow(
        number=1,
        public_id="x",
        prolific_pid="P",
        prolific_study_id=None,
        prolific_session_id=None,
        condition="",
        started_at=None,
        completed_at=None,
        status="completed",
        detail="",
        main_answered=3,
        main_correct=3,
        attention_passed=0,
        attention_failed=0,
    )
    assert plist.bonuses([row], Decimal("0.005")) == [("P", Decimal("0.02"))]
    assert plist.bonuses_csv([row], Decimal("1")) == "P,3.00\n"
    assert plist.bonuses([row], Decimal("0")) == []


@pytest.mark.parametrize("value", ["-0.05", "100.01", "abc", "", "nan", "inf", "1e400"])
def test_absurd_bonuses_are_refused_with_a_message(researcher, world, value):
    study, _ = world
    response = researcher.get(reverse("study_bonuses", args=[study.pk]), {"per_correct": value})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "Bonuses for Prolific" in html
    assert "PID-COMPLETED" in html  # the page again, not a file


def test_reading_the_list_and_its_downloads_writes_nothing(researcher, world):
    study, _ = world
    urls = [reverse(n, args=[study.pk]) for n in ["study_participants", *DOWNLOADS]]
    urls += [reverse("study_bonuses", args=[study.pk]) + q for q in ("?per_correct=1", "?x")]
    with CaptureQueriesContext(connection) as queries:
        for url in urls:
            assert researcher.get(url).status_code in (200, 400), url
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_another_researcher_gets_404(client, world):
    study, _ = world
    client.force_login(researcher_create(username="bob", password=PASSWORD))
    for name in ["study_participants", *DOWNLOADS, "study_bonuses"]:
        response = client.get(reverse(name, args=[study.pk]), {"per_correct": "1"})
        assert response.status_code == 404, name
        assert b"PID-COMPLETED" not in response.content


def test_a_participants_page_lists_their_answers_as_judgements_csv_has_them(researcher, world):
    """The number on the list leads to the participant's answers in the order given: what
    they answered, how fast, and which the analysis counts; a withdrawn one's are gone."""
    study, people = world
    excluded = people["excluded"]
    page = researcher.get(reverse("study_participant", args=[study.pk, excluded.pk]))
    assert page.status_code == 200
    trials = page.context["trials"]
    stored = list(
        Trial.objects.filter(participant=excluded, answer__isnull=False).order_by("position")
    )
    assert [(t["position"], t["answer"], t["rt_ms"]) for t in trials] == [
        (t.position, t.answer, t.rt_ms) for t in stored
    ]
    assert not any(t["counted"] for t in trials)  # excluded: nothing counts
    html = page.content.decode()
    assert "excluded" in html and "attention check" in html and "PID-EXCLUDED" in html
    done = researcher.get(reverse("study_participant", args=[study.pk, people["completed"].pk]))
    assert any(t["counted"] for t in done.context["trials"])
    withdrawn = researcher.get(
        reverse("study_participant", args=[study.pk, people["withdrawn"].pk])
    ).content.decode()
    assert "No answers: deleted on request." in withdrawn
    absent = max(p.pk for p in people.values()) + 1000
    assert researcher.get(reverse("study_participant", args=[study.pk, absent])).status_code == 404
