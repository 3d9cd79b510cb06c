"""The colour-vision screen over HTTP: after consent and before the instructions when the
study asks for it, plain form posts (no script), reload resumes at the plate at hand, one
answer per plate, bad input refused in words, plates only for their own participant and
only the plate at hand; its result on the participant, in the participant list and CSV,
and in the analysis only when the researcher ticked "excludes"."""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import replace

import pytest
from django.test import Client
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey import colour_screen as cs
from survey import participant_list as plist
from survey.analysis.counts import study_counts
from survey.analysis.exclusion import (
    FAILED_COLOUR_SCREEN,
    included_participants,
    participant_exclusions,
)
from survey.analysis.results import study_analysis
from survey.forms import StudyForm
from survey.models import ColourScreenAnswer, Participant, Study
from survey.selectors import study_monitor
from survey.services.assignment import participant_start
from survey.services.colour_screen import plate_answer, plates
from survey.services.withdrawal import participant_withdraw
from tests.survey.analysis_helpers import make_study, take_part
from tests.survey.test_participant_flow import answer, pid, start

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path, images_per_participant=2, colour_screen=True)


def screen_url(participant) -> str:
    return reverse("participant_screen", args=[participant.public_id])


def plate_url(participant, position) -> str:
    return reverse("participant_screen_plate", args=[participant.public_id, position])


def post_plate(client, participant, position, text=None):
    data = {"position": position}
    data |= {"cannot_see": "1"} if text is None else {"answer": text}
    return client.post(screen_url(participant), data)


def test_without_a_screen_the_participant_goes_straight_to_the_instructions(client, tmp_path):
    study = make_study(tmp_path, images_per_participant=2)
    participant = start(client, study)
    page = client.get(reverse("participant_page", args=[participant.public_id]))
    assert page.status_code == 200 and "Instructions" in page.content.decode()
    assert client.get(screen_url(participant))["Location"].endswith(f"/p/{participant.public_id}/")
    assert client.get(plate_url(participant, 1)).status_code == 404


def test_the_whole_screen_with_plain_forms_then_the_instructions(client, study):
    participant = start(client, study, PROLIFIC_PID=pid(1))
    page = client.get(reverse("participant_page", args=[participant.public_id]))
    assert page.status_code == 302 and page["Location"] == screen_url(participant)
    # Trials wait for the screen: a plain post goes back to it, a script is told in JSON.
    assert answer(client, participant, 1)["Location"] == screen_url(participant)
    refused = answer(client, participant, 1, **JSON)
    assert refused.status_code == 409 and refused.json()["resume_url"] == screen_url(participant)
    assert not participant.trials.filter(answer__isnull=False).exists()
    expected = plates(participant)
    for plate in expected:
        html = client.get(screen_url(participant)).content.decode()
        assert f"Plate {plate.position} of {cs.PLATES}" in html
        assert f'src="{plate_url(participant, plate.position)}"' in html
        assert ("a short colour-vision screen" in html) == (plate.position == 1)
        assert "not a diagnosis" in html or plate.position > 1
        text = str(plate.digit) if plate.position != 4 else None  # one "I can't see"
        response = post_plate(client, participant, plate.position, text)
        assert response.status_code == 302 and response["Location"] == screen_url(participant)
    after = client.get(screen_url(participant))
    assert after["Location"] == reverse("participant_page", args=[participant.public_id])
    page = client.get(after["Location"])
    assert page.status_code == 200 and "Instructions" in page.content.decode()
    participant.refresh_from_db()
    assert (participant.colour_screen_correct, participant.colour_screen_passed) == (5, True)
    stored = list(ColourScreenAnswer.objects.filter(participant=participant))
    assert [a.position for a in stored] == list(range(1, cs.PLATES + 1))
    assert [a.answer for a in stored if a.position == 4] == [""]
    assert [a.kind for a in stored] == [p.kind for p in expected]
    # The trials now take answers.
    assert answer(client, participant, 1, **JSON).status_code == 200


def test_a_reload_resumes_at_the_plate_and_a_repeated_post_stores_one_answer(client, study):
    participant = start(client, study)
    first, second = plates(participant)[:2]
    assert post_plate(client, participant, 1, str(first.digit)).status_code == 302
    again = post_plate(client, participant, 1, "3")  # the form posted twice, or an old tab
    assert again.status_code == 302
    assert list(
        ColourScreenAnswer.objects.filter(participant=participant).values_list("position", "answer")
    ) == [(1, str(first.digit))]
    for _ in range(2):  # reloads
        html = client.get(screen_url(participant)).content.decode()
        assert f"Plate 2 of {cs.PLATES}" in html
    # An answer to a plate not yet at hand stores nothing either.
    post_plate(client, participant, 3, "5")
    assert ColourScreenAnswer.objects.filter(participant=participant).count() == 1
    assert post_plate(client, participant, 2, str(second.digit)).status_code == 302
    assert ColourScreenAnswer.objects.filter(participant=participant).count() == 2


@pytest.mark.parametrize(
    ("typed", "words"),
    [("", "Please type the number you see"), ("  ", "Please type the number you see")]
    + [("seven", "digits only"), ("7.5", "digits only"), ("123", "digits only")],
)
def test_a_bad_answer_is_refused_in_words_and_nothing_is_lost(client, study, typed, words):
    participant = start(client, study)
    refused = post_plate(client, participant, 1, typed)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert words in html and 'aria-invalid="true"' in html and "Plate 1 of" in html
    assert not ColourScreenAnswer.objects.filter(participant=participant).exists()


def test_the_screen_speaks_the_study_language(tmp_path):
    study = make_study(tmp_path, images_per_participant=2, colour_screen=True, language="de")
    client = Client()
    participant = start(client, study)
    html = client.get(screen_url(participant)).content.decode()
    assert "Welche Zahl sehen Sie?" in html and "Ich sehe keine Zahl" in html
    assert "keine Diagnose" in html


def test_plates_only_for_their_browser_and_only_the_plate_at_hand(client, study):
    participant = start(client, study)
    image = client.get(plate_url(participant, 1))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image["Cache-Control"] == "private, no-store"
    assert "Content-Disposition" not in image
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert Client().get(plate_url(participant, 1)).status_code == 404  # another browser
    assert client.get(plate_url(participant, 2)).status_code == 404  # not yet
    post_plate(client, participant, 1, "2")
    assert client.get(plate_url(participant, 1)).status_code == 404  # answered
    assert client.get(plate_url(participant, 2)).status_code == 200


def test_nothing_in_the_page_names_the_digit(client, study):
    """The digit is in the image's dots only: not in the URL, the alt text, a name or a
    data attribute (the page is the same whatever the digit, apart from the plate's number
    and the form's token)."""
    pages = {}
    for i in range(12):
        browser = Client()
        participant = start(browser, study, PROLIFIC_PID=pid(100 + i))
        html = browser.get(screen_url(participant)).content.decode()
        token = browser.cookies["csrftoken"].value
        html = html.replace(participant.public_id, "ID")
        html = html.replace(token, "TOKEN")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
        pages.setdefault(html, set()).add(plates(participant)[0].digit)
    assert len(pages) == 1  # identical for every participant, whatever their digit
    (html,) = pages
    assert 'alt="A circle of coloured dots"' in html


def test_the_result_is_listed_and_excludes_only_when_ticked(tmp_path):
    study = make_study(tmp_path, images_per_participant=2, colour_screen=True)
    people = []
    for i, right in enumerate((6, 6, 3)):  # two pass, one fails (3 of 6)
        participant = take_part(study, i)  # the trials (the service does not gate)
        for plate in plates(participant):
            read = plate.is_control or plate.position - 1 <= right
            plate_answer(
                participant=participant,
                position=plate.position,
                answer=str(plate.digit) if read else "",
            )
        people.append(participant)
    failed = people[2]
    failed.refresh_from_db()
    assert (failed.colour_screen_correct, failed.colour_screen_passed) == (3, False)
    outcomes = {}
    for excludes in (False, True):
        # The same answers, read under either choice (the form freezes it at opening).
        Study.objects.filter(pk=study.pk).update(colour_screen_excludes=excludes)
        study.refresh_from_db()
        analysis = study_analysis(study=study)
        outcomes[excludes] = (
            analysis.participants.included,
            analysis.participants.failed_colour_screen,
            sum(sum(cells) for cells in study_counts(study=study).tables.values()),
        )
        monitor = study_monitor(study=study)
        assert sum(r["screen_failed"] for r in monitor) == 1  # counted either way
        assert sum(r["excluded"] for r in monitor) == int(excludes)
        rows = {r.public_id: r for r in plist.participant_rows(study=study)}
        row = rows[failed.public_id]
        assert (row.colour_screen_correct, row.colour_screen_passed) == (3, False)
        table = list(csv.DictReader(io.StringIO(plist.participants_csv(list(rows.values())))))
        by_id = {r["public_id"]: r for r in table}
        assert by_id[failed.public_id]["colour_screen_passed"] == "0"
        assert by_id[people[0].public_id]["colour_screen_correct"] == "6"
        if excludes:
            assert participant_exclusions(study=study) == {failed.pk: FAILED_COLOUR_SCREEN}
            assert failed not in included_participants(study=study)
            assert row.status == "excluded" and "colour-vision" in row.detail
            action, why = plist.approval(replace(row, prolific_pid=pid(9)))
            assert action == "approve" and "colour-vision screen" in why  # no ground to reject
            assert any("failed the colour-vision screen" in x for x in analysis.exclusion_rule)
        else:
            assert participant_exclusions(study=study) == {}
            assert row.status == "completed"
            assert any("recorded only" in line for line in analysis.exclusion_rule)
    assert outcomes == {False: (3, 0, 6), True: (2, 1, 4)}


def test_a_withdrawal_removes_the_screen_too(client, study):
    participant = start(client, study, PROLIFIC_PID=pid(7))
    for plate in plates(participant):
        post_plate(client, participant, plate.position, str(plate.digit))
    participant_withdraw(study=study, public_id=participant.public_id)
    participant.refresh_from_db()
    assert not ColourScreenAnswer.objects.filter(participant=participant).exists()
    assert (participant.colour_screen_correct, participant.colour_screen_passed) == (None, None)


def test_the_study_form_offers_the_screen_and_freezes_it_at_opening(tmp_path):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    study = make_study(tmp_path, owner=ada, images_per_participant=2, colour_screen=True)
    assert "colour_screen" not in StudyForm(instance=study).fields  # open: frozen
    assert {"colour_screen", "colour_screen_excludes"} <= set(StudyForm().fields)
    client = Client()
    client.force_login(ada)
    detail = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Colour-vision screen" in detail and "recorded only" in detail


def test_participants_page_shows_the_screen_column(tmp_path):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    study = make_study(tmp_path, owner=ada, images_per_participant=2, colour_screen=True)
    participant = participant_start(study=study, rng=random.Random(1))
    for plate in plates(participant):
        plate_answer(participant=participant, position=plate.position, answer=str(plate.digit))
    client = Client()
    client.force_login(ada)
    html = client.get(reverse("study_participants", args=[study.pk])).content.decode()
    assert "Colour-vision screen" in html and "passed (6/6)" in html
    assert Participant.objects.get(pk=participant.pk).colour_screen_passed is True
