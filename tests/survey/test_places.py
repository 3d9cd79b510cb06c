"""Places that refill, as Prolific counts them: the target is of included participants; a
start holds a place while the participant takes part; silence past the time limit, a stop,
or a failed attention check frees it; exposures stay balanced when places are freed."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from survey.models import Participant, Stimulus, Study, Trial
from survey.services.assignment import participant_start
from survey.services.errors import StudyFull
from survey.services.places import participant_rehold, places_taken
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run], images_per_participant=4, attention_checks=1, target_participants_per_condition=2
    )


def _silence(participant: Participant, study: Study) -> None:
    """Back-date the participant's last sign of life past the study's time limit."""
    Participant.objects.filter(pk=participant.pk).update(
        last_active_at=timezone.now() - study.time_limit - timedelta(seconds=1)
    )


def _finish(participant: Participant, *, attention: str = "ai") -> None:
    for trial in participant.trials.order_by("position"):
        value = attention if trial.kind == "attention" else "real"
        trial_answer(participant=participant, position=trial.position, answer=value, rt_ms=600)


def _exposures_match_the_held_trials(study: Study) -> None:
    """Every stimulus's exposures equal the trials of participants whose place was not
    given up (released places gave theirs back)."""
    for stimulus in Stimulus.objects.filter(study=study):
        held = Trial.objects.filter(
            stimulus=stimulus,
            participant__released_at__isnull=True,
            participant__withdrawn_at__isnull=True,
        ).count()
        assert stimulus.exposures == held, stimulus.pk


def test_the_default_time_limit_is_prolifics_maximum_time():
    for estimated in (1, 5, 10, 30):
        study = Study(estimated_minutes=estimated)
        expected = math.ceil(2 + estimated + 2 * math.sqrt(estimated))
        assert study.time_limit == timedelta(minutes=expected)
    assert Study(estimated_minutes=5).time_limit == timedelta(minutes=12)
    assert Study(estimated_minutes=5, time_limit_minutes=45).time_limit == timedelta(minutes=45)


def test_abandoned_starts_hold_their_places_only_until_the_time_limit(study):
    abandoned = [participant_start(study=study) for _ in range(2)]
    with pytest.raises(StudyFull):
        participant_start(study=study)
    _silence(abandoned[0], study)
    newcomer = participant_start(study=study)  # the silent one's place
    abandoned[0].refresh_from_db()
    assert abandoned[0].released_at is not None
    assert places_taken(study) == {newcomer.condition_id: 2}
    _exposures_match_the_held_trials(study)
    with pytest.raises(StudyFull):
        participant_start(study=study)


def test_a_failed_attention_check_frees_the_place_and_the_target_counts_included(study):
    passed, failed = participant_start(study=study), participant_start(study=study)
    _finish(passed)
    _finish(failed, attention="real")
    refill = participant_start(study=study)  # failed's place: the target is 2 included
    _finish(refill)
    with pytest.raises(StudyFull):
        participant_start(study=study)
    assert Participant.objects.filter(completed_at__isnull=False).count() == 3


@pytest.mark.parametrize(
    "ids, told",
    [
        ({"PROLIFIC_PID": "5f0c1e2d3b4a59687a8b9c0d"}, "Please return the study on Prolific"),
        ({}, "to have them deleted, contact the researchers."),  # not from Prolific
    ],
)
def test_stopping_frees_the_place_at_once_and_says_what_to_do(study, ids, told):
    client = Client()
    landing = reverse("study_landing", args=[study.slug])
    public_id = client.post(landing, {"consent": "yes", **ids})["Location"].split("/")[2]
    page = client.get(reverse("participant_page", args=[public_id]), {"begin": "1"})
    assert "Stop taking part" in page.content.decode()
    stopped = client.post(reverse("participant_stop", args=[public_id]))
    assert stopped.status_code == 200
    assert told in stopped.content.decode()
    assert ("Prolific" in stopped.content.decode()) == bool(ids)
    participant = Participant.objects.get(public_id=public_id)
    assert participant.returned_at is not None and participant.released_at is not None
    assert places_taken(study).get(participant.condition_id, 0) == 0
    _exposures_match_the_held_trials(study)
    refused = client.post(
        reverse("participant_answer", args=[public_id]),
        {"position": 1, "answer": "real", "rt_ms": 500},
        **JSON,
    )
    assert refused.status_code == 409
    assert not Trial.objects.filter(participant=participant, answer__isnull=False).exists()
    again = client.get(reverse("participant_page", args=[public_id]))
    assert "You have stopped taking part" in again.content.decode()


def test_a_participant_back_after_the_limit_goes_on_while_a_place_is_free(study):
    client = Client()
    landing = reverse("study_landing", args=[study.slug])
    public_id = client.post(landing, {"consent": "yes"})["Location"].split("/")[2]
    late = Participant.objects.get(public_id=public_id)
    _silence(late, study)
    participant_start(study=study)  # releases the silent place, takes the other one
    late.refresh_from_db()
    assert late.released_at is not None
    answered = client.post(
        reverse("participant_answer", args=[public_id]),
        {"position": 1, "answer": "real", "rt_ms": 500},
        **JSON,
    )
    assert answered.status_code == 200  # a place was free: taken again
    late.refresh_from_db()
    assert late.released_at is None
    _exposures_match_the_held_trials(study)


def test_a_participant_back_after_their_place_was_taken_is_told_so(study):
    client = Client()
    landing = reverse("study_landing", args=[study.slug])
    public_id = client.post(landing, {"consent": "yes"})["Location"].split("/")[2]
    late = Participant.objects.get(public_id=public_id)
    _silence(late, study)
    participant_start(study=study)
    participant_start(study=study)  # both places taken by others
    late.refresh_from_db()
    assert not participant_rehold(participant=late)
    page = client.get(reverse("participant_page", args=[public_id]))
    assert page.status_code == 409
    assert "Your time for this study has run out" in page.content.decode()
    image = client.get(reverse("participant_image", args=[public_id, 1]))
    assert image.status_code == 404
    answer = client.post(
        reverse("participant_answer", args=[public_id]),
        {"position": 1, "answer": "real", "rt_ms": 500},
        **JSON,
    )
    assert answer.status_code == 409
    assert not Trial.objects.filter(participant=late, answer__isnull=False).exists()
    assert Stimulus.objects.filter(study=study).aggregate(n=Sum("exposures"))["n"] == sum(
        p.trials.count() for p in Participant.objects.filter(released_at__isnull=True)
    )


@pytest.mark.parametrize("instructed", [False, True])
@pytest.mark.parametrize("colour", [False, True])
def test_the_places_counted_are_the_orms_count(study, instructed, colour):
    """places_taken runs the ORM's statement compiled once per form (with the study's id
    and time limit put in): the counts the ORM's query gives, at any moment and for pilots."""
    from survey.services.places import _places_taken_query

    Study.objects.filter(pk=study.pk).update(
        instructed_checks_exclude=instructed,
        colour_screen_excludes=colour,
        target_participants_per_condition=5,
    )
    study.refresh_from_db()
    people = [participant_start(study=study, prolific_pid=f"{i:024x}") for i in range(3)]
    _finish(people[0])
    _finish(people[1], attention="real")  # failed: holds no place
    _silence(people[2], study)
    Participant.objects.filter(pk=people[2].pk).update(colour_screen_passed=False)
    for now in (timezone.now(), timezone.now() - study.time_limit, None):
        for pilot in (False, True):
            orm = {row["condition_id"]: row["n"] for row in _places_taken_query(study, now, pilot)}
            assert places_taken(study, now, pilot=pilot) == orm, (now, pilot)
    assert sum(places_taken(study).values()) == 1
