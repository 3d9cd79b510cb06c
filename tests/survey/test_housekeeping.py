"""Deleting, archiving and duplicating a study from its page: an open study is never
deleted (close it first), one with participants only when its name is typed; its stimulus
files go (no other study's), its runs stay; a duplicate is a new draft with the design and
nothing of the participants, stimuli or sharing, and opens on its edit form."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Condition, Participant, Stimulus, Study, StudyShare, Trial
from survey.services.assignment import participant_start
from survey.services.housekeeping import NOT_COPIED, copied_fields
from survey.services.studies import study_close, study_create
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from worker.models import ModelRun, RunShare

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passphrase-1"
PID = "5f0c1e2d3b4a596877665544"


@pytest.fixture
def alice():
    return researcher_create(username="alice", password=PASSWORD)


@pytest.fixture
def bob():
    return researcher_create(username="bob", password=PASSWORD)


@pytest.fixture
def runs(alice, tmp_path):
    dataset = tiny_dataset("study-data", per_category=10, owner=alice)
    return [
        uploaded_run(dataset, tmp_path, name="warm run", owner=alice),
        uploaded_run(dataset, tmp_path, name="cool run", style="cool", owner=alice),
    ]


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> str:
    return " ".join(str(m) for m in response.wsgi_request._messages)


def _stimulus_files(study: Study) -> set[str]:
    return set(Stimulus.objects.filter(study=study).values_list("file", flat=True))


def _on_disk(names) -> set[str]:
    return {n for n in names if (Path(settings.MEDIA_ROOT) / n).is_file()}


def _delete(client: Client, study: Study, **extra):
    return client.post(reverse("study_delete", args=[study.pk]), {"confirm": "yes", **extra})


def test_an_open_study_is_not_deleted_but_can_be_archived(alice, runs):
    study = open_study(runs, owner=alice, images_per_participant=2)
    client = _as(alice)
    text = client.get(reverse("study_delete", args=[study.pk])).content.decode()
    assert "It is open to participants: close it first" in text
    assert "Delete for good" not in text
    response = _delete(client, study)
    assert response["Location"] == reverse("study_detail", args=[study.pk])
    assert "Nothing was deleted. It is open to participants" in _messages(response)
    assert Study.objects.filter(pk=study.pk).exists()

    client.post(reverse("study_archive", args=[study.pk]), {"action": "archive"})
    link = f'href="{reverse("study_detail", args=[study.pk])}"'
    assert link not in client.get(reverse("studies")).content.decode()
    assert link in client.get(reverse("studies") + "?archived=1").content.decode()
    # Archived, it keeps working: its participants still start.
    assert participant_start(study=Study.objects.get(pk=study.pk), prolific_pid=PID)


def test_a_closed_study_with_participants_goes_only_when_its_name_is_typed(
    alice, runs, django_capture_on_commit_callbacks
):
    study = open_study(runs, owner=alice, images_per_participant=2)
    other = open_study(runs[:1], owner=alice, images_per_participant=2)
    participant_start(study=study, prolific_pid=PID)
    study_close(study=study)
    files, others = _stimulus_files(study), _stimulus_files(other)
    assert _on_disk(files) == files and _on_disk(others) == others and files
    client = _as(alice)

    text = client.get(reverse("study_delete", args=[study.pk])).content.decode()
    assert "1 participant (withdrawn ones included)" in text
    assert f"{len(files)} stimuli" in text and f"{len(files)} stored files" in text
    assert "Type its name" in text and "archive it instead" in text
    assert "What stays: its model runs and their data sets." in text

    wrong = _delete(client, study, name="not its name")
    assert wrong.status_code == 200
    assert "Type the study’s name exactly to confirm" in wrong.content.decode()
    assert Study.objects.filter(pk=study.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = _delete(client, study, name="study")
    assert response["Location"] == reverse("studies")
    assert not Study.objects.filter(pk=study.pk).exists()
    assert not Participant.objects.filter(study_id=study.pk).exists()
    assert not Trial.objects.filter(participant__study_id=study.pk).exists()
    assert _on_disk(files) == set() and _on_disk(others) == others
    assert ModelRun.objects.filter(pk__in=[r.pk for r in runs]).count() == 2

    again = _delete(client, study, name="study")
    assert again.status_code == 404 and "it may have been deleted" in again.content.decode()


def test_a_draft_without_participants_goes_with_a_button_and_its_owner_only(alice, bob, runs):
    study = study_create(name="draft", runs=runs, user=alice, images_per_participant=2)
    StudyShare.objects.create(study=study, user=bob, level="edit")
    refused = _delete(_as(bob), study)
    assert refused.status_code == 403 and "Only its owner can delete this." in (
        refused.content.decode()
    )
    text = _as(alice).get(reverse("study_delete", args=[study.pk])).content.decode()
    assert "Type its name" not in text and "Delete for good" in text
    assert _delete(_as(alice), study)["Location"] == reverse("studies")
    assert not Study.objects.filter(pk=study.pk).exists()


def test_the_duplicate_copies_the_design_and_nothing_else(alice, bob, runs):
    study = study_create(
        name="Wave 1",
        runs=runs,
        labels=["Warm", "Cool"],
        user=alice,
        design=Study.Design.WITHIN,
        images_per_participant=4,
        target_participants_per_condition=30,
        practice_trials=1,
        attention_checks=1,
        consent_text="I agree.",
        instructions="Real or AI?",
        exposure_ms=1500,
        estimated_minutes=7,
        time_limit_minutes=40,
        redirect_url="https://app.prolific.com/submissions/complete?cc={code}",
    )
    study = open_study_again(study)
    participant_start(study=study, prolific_pid=PID)
    StudyShare.objects.create(study=study, user=bob, level="edit")
    for run in runs:
        RunShare.objects.create(run=run, user=bob, level="view")

    response = _as(bob).post(reverse("study_duplicate", args=[study.pk]))
    copy = Study.objects.exclude(pk=study.pk).get()
    assert response["Location"] == reverse("study_edit", args=[copy.pk])
    assert (copy.name, copy.status, copy.owner, copy.created_by) == (
        "Copy of Wave 1",
        Study.Status.DRAFT,
        bob,
        bob,
    )
    for name in copied_fields():
        assert getattr(copy, name) == getattr(study, name), name
    assert [(c.run_id, c.label) for c in copy.conditions.order_by("id")] == [
        (runs[0].pk, "Warm"),
        (runs[1].pk, "Cool"),
    ]
    assert copy.slug != study.slug and copy.completion_code != study.completion_code
    assert not copy.participants.exists() and not copy.stimuli.exists()
    assert not copy.shares.exists() and copy.opened_at is None
    assert study.participants.count() == 1 and Condition.objects.filter(study=study).count() == 2


def open_study_again(study: Study) -> Study:
    from survey.services.studies import study_open

    return study_open(study=study)


def test_every_field_is_copied_or_left_on_purpose():
    """A field added to Study must be placed: copied to a duplicate, or in NOT_COPIED."""
    assert set(copied_fields()) == {
        "design",
        "protocol",
        "images_per_participant",
        "target_participants_per_condition",
        "practice_trials",
        "attention_checks",
        "consent_text",
        "instructions",
        "exposure_ms",
        "drop_flagged_displays",
        "estimated_minutes",
        "time_limit_minutes",
        "redirect_url",
        "instructed_checks",
        "instructed_checks_exclude",
        "colour_screen",
        "colour_screen_excludes",
        "language",
        "question_text",
        "real_label",
        "ai_label",
        "real_key",
        "ai_key",
        "equivalence_margin",
        "alpha",
        "hypotheses",
        "preference_adaptive",
    }
    assert set(copied_fields()) | NOT_COPIED == {f.name for f in Study._meta.concrete_fields}


def test_a_duplicate_is_refused_in_words_for_an_archived_or_unseen_run(alice, bob, runs):
    study = study_create(name="Wave 2", runs=runs, user=alice, images_per_participant=2)
    StudyShare.objects.create(study=study, user=bob, level="edit")
    response = _as(bob).post(reverse("study_duplicate", args=[study.pk]))
    assert response["Location"] == reverse("study_detail", args=[study.pk])
    assert "Not duplicated: you cannot see 2 of its runs" in _messages(response)
    ModelRun.objects.filter(pk=runs[0].pk).update(archived_at="2026-01-01T00:00Z")
    response = _as(alice).post(reverse("study_duplicate", args=[study.pk]))
    assert "Not duplicated: its run “warm run” is archived; restore it first" in _messages(response)
    assert Study.objects.count() == 1
    StudyShare.objects.filter(study=study, user=bob).update(level="view")
    assert _as(bob).post(reverse("study_duplicate", args=[study.pk])).status_code == 403


def test_a_participant_with_a_wrong_link_gets_a_page_in_words(client):
    response = client.get(reverse("study_landing", args=["no-such-study"]))
    assert response.status_code == 404
    text = response.content.decode()
    assert "Not found" in text and "the link may be wrong" in text
    assert "Overview" not in text  # nothing that assumes a researcher
