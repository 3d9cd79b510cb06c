"""Pilot mode: a prepared draft opened as a pilot flags its participants; they are absent
from every table and export (the analysis pages and downloads read the same with and
without them), hold no place of the real study and leave the exposures alone, show on the
monitor and the participant list as pilot, and "Remove pilot data" deletes exactly them
(confirmed POST, edit access) and puts a never-opened study back to draft."""

from __future__ import annotations

import random
import re

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey import participant_list as plist
from survey.models import Participant, Stimulus, Study, StudyShare, Trial
from survey.selectors import study_monitor
from survey.services.assignment import participant_start
from survey.services.errors import StudyError
from survey.services.places import places_taken
from survey.services.stimuli import study_prepare_stimuli
from survey.services.studies import pilot_remove, study_create, study_open, study_open_pilot
from tests.survey.analysis_helpers import take_part
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-Passphrase-1"
ANALYSIS_PAGES = [
    ("study_analysis", {}),
    ("study_analysis", {"unfinished": "1"}),
    ("study_analysis_json", {}),
    ("study_images", {}),
    ("export_tables_csv", {}),
    ("export_tables_json", {}),
    ("export_tables_tex", {}),
    ("export_judgements_csv", {}),
    ("export_judgements_csv", {"unfinished": "1"}),
    ("export_runs_tex", {}),
]


@pytest.fixture
def ada():
    return researcher_create(username="ada", password=PASSWORD)


@pytest.fixture
def draft(tmp_path, ada):
    """A prepared draft: two conditions, 4 images, an attention check."""
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    runs = [
        uploaded_run(dataset, tmp_path, name="warm", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=ada),
    ]
    study = study_create(
        name="study",
        runs=runs,
        user=ada,
        images_per_participant=4,
        attention_checks=1,
        target_participants_per_condition=3,
    )
    study_prepare_stimuli(study=study, rng=random.Random(0))
    return study


def _body(response) -> bytes:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    # What differs between two loads of the same page: the CSP nonce and the CSRF token.
    body = re.sub(rb'nonce="[^"]+"', b"", body)
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", body)


def _analysis(client, study) -> dict:
    seen = {}
    for name, query in ANALYSIS_PAGES:
        response = client.get(reverse(name, args=[study.pk]), query)
        assert response.status_code == 200, name
        seen[name, tuple(query)] = _body(response)
    return seen


def test_pilot_participants_are_absent_from_every_table_and_export(client, ada, draft):
    study = study_open_pilot(study=draft)
    pilots = [
        take_part(study, 0),
        take_part(study, 1, attention="real"),
        take_part(study, 2, stop_after=2),
    ]
    assert all(p.is_pilot for p in pilots)
    assert set(Stimulus.objects.values_list("exposures", flat=True)) == {0}  # left alone
    study = study_open(study=study)
    real = [take_part(study, 10 + i) for i in range(3)]
    real.append(take_part(study, 13, attention="real"))
    real.append(take_part(study, 14, stop_after=3))
    assert not any(p.is_pilot for p in real)
    monitor = study_monitor(study=study)
    assert sum(r["started"] for r in monitor) == 5 and sum(r["pilot"] for r in monitor) == 3
    assert sum(r["included"] for r in monitor) == 3 and sum(r["excluded"] for r in monitor) == 1
    client.force_login(ada)
    listed = client.get(reverse("studies")).content.decode()
    # Started and completed: real participants only, each once (two conditions).
    assert '<td class="num">5</td>\n        <td class="num">4</td>' in listed
    with_pilot = _analysis(client, study)
    pilot_trials = Trial.objects.filter(participant__in=pilots).count()
    assert pilot_remove(study=study) == (3, pilot_trials)
    assert Study.objects.get(pk=study.pk).status == Study.Status.OPEN  # opened for real: stays
    only_real = _analysis(client, study)
    for key in with_pilot:
        assert with_pilot[key] == only_real[key], key
    # The real participants are really in them (the comparison is not of empty pages).
    judgements = only_real["export_judgements_csv", ()].decode()
    assert len(judgements.splitlines()) > 1 + 4 * 4


def test_removal_removes_exactly_the_pilot_participations(draft):
    study = study_open_pilot(study=draft)
    pilots = [take_part(study, i) for i in range(2)]
    study = study_open(study=study)
    real = [take_part(study, 10), take_part(study, 11, stop_after=1)]
    real_trials = sorted(Trial.objects.filter(participant__in=real).values_list("pk", "answer"))
    people, trials = pilot_remove(study=study)
    assert people == 2 and trials == 2 * study.trials_per_participant
    assert sorted(Participant.objects.values_list("pk", flat=True)) == [p.pk for p in real]
    assert sorted(Trial.objects.values_list("pk", "answer")) == real_trials
    assert not Participant.objects.filter(pk__in=[p.pk for p in pilots]).exists()
    assert pilot_remove(study=study) == (0, 0)


def test_pilot_places_are_apart_and_a_never_opened_study_returns_to_draft(draft):
    with pytest.raises(StudyError):
        participant_start(study=draft)  # a draft takes no one
    study = study_open_pilot(study=draft)
    for i in range(6):  # the target, 3 per condition, among pilot participants
        take_part(study, i, stop_after=1)
    assert places_taken(study) == {}  # none of the real study's places
    assert sum(places_taken(study, pilot=True).values()) == 6
    with pytest.raises(StudyError):
        take_part(study, 6)  # the pilot is full too
    monitor = study_monitor(study=study)
    assert [(r["pilot"], r["pilot_taking_part"], r["started"], r["held"]) for r in monitor] == [
        (3, 3, 0, 0),
        (3, 3, 0, 0),
    ]
    rows = plist.participant_rows(study=study)
    assert len(rows) == 6 and all(r.pilot for r in rows)
    assert pilot_remove(study=study) == (6, 6 * study.trials_per_participant)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT and study.opened_at is None
    assert study.stimuli.exists()
    with pytest.raises(StudyError):
        study_open_pilot(study=study_open(study=study))  # only a draft becomes a pilot


def test_a_pilot_needs_prepared_stimuli(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    run = uploaded_run(dataset, tmp_path, name="warm", owner=ada)
    study = study_create(name="s", runs=[run], user=ada, images_per_participant=2)
    with pytest.raises(StudyError, match="prepare the stimuli first"):
        study_open_pilot(study=study)


def test_the_pages_open_a_pilot_show_it_and_remove_it_after_confirmation(client, ada, draft):
    client.force_login(ada)
    detail = reverse("study_detail", args=[draft.pk])
    assert "Open as pilot" in client.get(detail).content.decode()
    assert client.get(reverse("study_pilot", args=[draft.pk])).status_code == 405
    response = client.post(reverse("study_pilot", args=[draft.pk]))
    assert response.status_code == 302
    study = Study.objects.get(pk=draft.pk)
    assert study.status == Study.Status.PILOT
    # A participant's start is a pilot participation.
    landing = reverse("study_landing", args=[study.slug])
    other = client.__class__()
    started = other.post(landing, {"consent": "yes"})
    assert started.status_code == 302
    person = Participant.objects.get()
    assert person.is_pilot
    page = client.get(detail).content.decode()
    assert "open as a pilot" in page and "Open for real" in page
    assert 'data-f="pilot">1<' in page and 'data-f="started">0<' in page
    listing = client.get(reverse("study_participants", args=[study.pk])).content.decode()
    assert "status-pilot" in listing
    monitor = client.get(reverse("study_monitor", args=[study.pk])).json()
    assert monitor["status"] == "pilot" and sum(r["pilot"] for r in monitor["rows"]) == 1
    remove = reverse("study_pilot_remove", args=[study.pk])
    assert client.get(remove).status_code == 405
    confirm = client.post(remove)
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "1 pilot participation and" in text
    assert "taking part now" in text and "goes back to draft" in text
    assert Participant.objects.exists()  # nothing yet
    done = client.post(remove, {"confirm": "yes"}, follow=True)
    assert "Pilot data removed: 1 participation" in done.content.decode()
    assert not Participant.objects.exists() and not Trial.objects.exists()
    assert Study.objects.get(pk=study.pk).status == Study.Status.DRAFT
    # The pilot's browser is told there is no such page any more.
    assert other.get(started["Location"]).status_code == 404


@pytest.mark.parametrize(("share", "status"), [(None, 404), ("view", 403), ("edit", 302)])
def test_only_owners_and_editors_open_or_remove_a_pilot(client, draft, share, status):
    bob = researcher_create(username="bob", password=PASSWORD)
    if share:
        StudyShare.objects.create(study=draft, user=bob, level=share)
    client.force_login(bob)
    opened = client.post(reverse("study_pilot", args=[draft.pk]))
    assert opened.status_code == status
    expected = Study.Status.PILOT if status == 302 else Study.Status.DRAFT
    assert Study.objects.get(pk=draft.pk).status == expected
    study = study_open_pilot(study=draft)
    take_part(study, 0)
    removed = client.post(reverse("study_pilot_remove", args=[draft.pk]), {"confirm": "yes"})
    assert removed.status_code == status
    assert Participant.objects.exists() == (status != 302)
