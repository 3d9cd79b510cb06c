"""The participant list (page, participants.csv, bonuses.csv) of each protocol says what its
answers and checks are: a rating or preference study has no right answer (no accuracy, no
bonus per correct answer, and the page says why), a paired study's checks are vigilance
pairs (not colour-inverted images)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Participant, Study, Trial
from survey.participant_list import protocol_words
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

LEFT, RIGHT = Trial.Side.LEFT, Trial.Side.RIGHT
NO_RIGHT_ANSWER = "has no right answer"


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def runs(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    return [
        uploaded_run(dataset, tmp_path, name="run-warm"),
        uploaded_run(dataset, tmp_path, name="run-cool", style="cool"),
    ]


def _trials(participant) -> list[Trial]:
    return list(Trial.objects.filter(participant=participant).order_by("position"))


def _finish(study: Study, answer) -> Participant:
    """One participation from Prolific, every trial answered by ``answer(trial)``."""
    participant = participant_start(study=study)
    Participant.objects.filter(pk=participant.pk).update(prolific_pid="PID-ONE")
    for t in _trials(participant):
        trial_answer(participant=participant, position=t.position, answer=answer(t), rt_ms=800)
    return participant


def _rating_study(runs, owner) -> Study:
    study = open_study(
        runs[:1],
        owner=owner,
        protocol=Study.Protocol.RATING,
        design=Study.Design.WITHIN,
        images_per_participant=4,
    )
    _finish(study, lambda t: "3")
    return study


def _preference_study(runs, owner) -> Study:
    study = open_study(
        runs,
        owner=owner,
        labels=["Warm", "Cool"],
        protocol=Study.Protocol.PREFERENCE,
        design=Study.Design.WITHIN,
        images_per_participant=4,
    )
    _finish(study, lambda t: LEFT)
    return study


def _paired_study(runs, owner, *, fall_for_vigilance: bool = False) -> Study:
    study = open_study(
        runs[:1],
        owner=owner,
        protocol=Study.Protocol.PAIRED,
        images_per_participant=4,
        practice_trials=0,
        attention_checks=2,
    )

    def choose(t: Trial) -> str:
        real = RIGHT if t.fake_side == LEFT else LEFT
        return t.fake_side if t.kind == "attention" and fall_for_vigilance else real

    _finish(study, choose)
    return study


def _get(client, name: str, study: Study, **query):
    return client.get(reverse(name, args=[study.pk]), query)


def _csv_rows(client, study: Study) -> list[dict[str, str]]:
    response = _get(client, "study_participants_csv", study)
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("build", [_rating_study, _preference_study], ids=["rating", "preference"])
def test_a_study_without_a_right_answer_shows_no_accuracy_and_no_per_correct_bonus(
    client, ada, runs, build
):
    study = build(runs, ada)
    client.force_login(ada)
    html = _get(client, "study_participants", study).content.decode()
    assert NO_RIGHT_ANSWER in html and "no accuracy" in html
    assert ">Accuracy<" not in html and "0 % (0/" not in html
    assert "Bonus per correct answer" not in html and 'name="per_correct"' not in html
    # No attention checks either: none to name.
    assert "Inverted-image" not in html and "colour-inverted" not in html
    (row,) = _csv_rows(client, study)
    assert row["main_answered"] == "4"
    assert (row["main_correct"], row["accuracy"]) == ("", "")
    bonuses = _get(client, "study_bonuses", study, per_correct="0.05")
    assert bonuses.status_code == 400
    assert NO_RIGHT_ANSWER in bonuses.content.decode()


def test_a_paired_study_names_its_vigilance_pairs_not_inverted_images(client, ada, runs):
    study = _paired_study(runs, ada)
    client.force_login(ada)
    html = _get(client, "study_participants", study).content.decode()
    assert "Vigilance pairs passed / failed" in html
    assert "chose the random-colour copy in a vigilance pair as the real photograph" in html
    assert "(the vigilance pairs)" in html
    assert "Inverted-image" not in html and "colour-inverted" not in html
    # A pair has a right answer (the photograph): its accuracy and bonus stay.
    assert "100 % (4/4)" in html and "Bonus per correct answer" in html
    (row,) = _csv_rows(client, study)
    assert (row["main_correct"], row["accuracy"], row["attention_passed"]) == ("4", "1.0000", "2")
    bonuses = _get(client, "study_bonuses", study, per_correct="0.05")
    assert bonuses.content.decode() == "PID-ONE,0.20\n"


def test_a_paired_participant_who_chose_a_vigilance_copy_is_counted_as_failing_it(
    client, ada, runs
):
    study = _paired_study(runs, ada, fall_for_vigilance=True)
    client.force_login(ada)
    (row,) = _csv_rows(client, study)
    assert (row["attention_passed"], row["attention_failed"]) == ("0", "2")
    assert row["status_detail"] == "failed a vigilance pair (excluded from the analysis)"


def test_a_single_image_study_still_names_its_colour_inverted_checks(client, ada, runs):
    study = open_study(runs[:1], owner=ada, images_per_participant=4, attention_checks=2)
    _finish(study, lambda t: "ai")
    client.force_login(ada)
    html = _get(client, "study_participants", study).content.decode()
    assert "Inverted-image checks passed / failed" in html
    assert "called a colour-inverted image Real" in html
    assert ">Accuracy<" in html and "Bonus per correct answer" in html


@pytest.mark.parametrize("protocol", Study.Protocol.values)
def test_every_protocol_has_its_words_and_hype_time_checks_are_colour_inverted(protocol):
    words = protocol_words(Study(protocol=protocol))
    if protocol in (Study.Protocol.RATING, Study.Protocol.PREFERENCE):
        assert NO_RIGHT_ANSWER in words.no_right_answer and not words.checks
    else:
        assert words.graded and words.checks
    if protocol in (Study.Protocol.SINGLE, Study.Protocol.HYPE_TIME):
        assert words.checks == "Inverted-image checks"  # survey.services.stimuli: inverted
